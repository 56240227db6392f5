//! The sans-IO core of the Raceway Rust SDK.
//!
//! Most users want an adapter crate: `raceway-rt-tokio` for tokio/axum services,
//! `raceway-blocking` for threaded programs, `raceway-rt-async-std` for async-std and smol.
//! This crate holds everything that does not touch I/O, so the adapters stay thin:
//!
//! - [`event`]: the event model, wire-compatible with the Raceway server;
//! - [`clock`] and [`flow`]: vector clocks and flows, and why they find the right races;
//! - [`headers`]: `traceparent`, `tracestate` and `raceway-clock` codecs;
//! - [`encode`]: the batch encoder (bodies under a byte cap);
//! - [`export`]: the export state machine (queue, batching, retries) with time passed in;
//! - [`analysis`]: the local race analyser;
//! - [`boundary`]: the traits adapters implement (context store, sender).
//!
//! # Features
//! - `std` (default): fast default id generator and wall clock.
//! - `http`: `http::HeaderMap` adapters for the header codecs.
#![no_std]
#![warn(missing_docs)]
#![warn(clippy::std_instead_of_core, clippy::alloc_instead_of_core)]

extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

pub mod analysis;
pub mod boundary;
pub mod clock;
pub mod encode;
pub mod event;
pub mod export;
pub mod flow;
pub mod headers;
pub mod ids;
pub mod time;

pub use clock::{ClockOrdering, VectorClock};
pub use event::{AccessType, Event, EventKind, MemoryOrdering, Metadata, SourceLocation};
pub use flow::{Flow, FlowEnd, Service, Tracer};
pub use ids::{EventId, IdGenerator, SpanId, TraceId};
pub use time::{Instant, Timestamp, WallClock};

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
//! With `std`, it also holds what every adapter shares, so the adapters stay thin:
//! [`client`] (the `track_*` API over any context store, and the sink), [`config`]
//! (environment variables), [`driver`] (the export loop's logic), [`background`] (the
//! exporter thread that runs it, with flush and shutdown barriers), [`lifecycle`] (a
//! client built, flushed, shut down and dropped), [`sync`] (tracked `std::sync` locks),
//! [`system`] (default wall clock and id generator) and, with `ureq`, [`transport`] (the
//! HTTP sender every adapter uses).
//!
//! # Features
//! - `std` (default): fast default id generator and wall clock.
//! - `http`: `http::HeaderMap` adapters for the header codecs.
//! - `ureq`: the blocking HTTP sender ([`transport::UreqSender`]) the exporter thread uses.
//! - `rustls`: `https://` endpoints for that sender.
//! - `log`: diagnostics (an unusable configuration, the first dropped event, a refused
//!   API key) through the `log` facade; without it they are only counted in `stats()`.
//! - `tracing`: [`tracing_layer`], a `tracing-subscriber` layer (spans become
//!   `FunctionCall` events, `raceway.variable` events state changes).
#![no_std]
#![warn(missing_docs)]
#![warn(clippy::std_instead_of_core, clippy::alloc_instead_of_core)]

extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

pub mod analysis;
#[cfg(feature = "std")]
pub mod background;
pub mod boundary;
#[cfg(feature = "std")]
pub mod causal;
#[cfg(feature = "std")]
pub mod client;
pub mod clock;
#[cfg(feature = "std")]
pub mod config;
#[cfg(feature = "std")]
mod diag;
#[cfg(feature = "std")]
pub mod driver;
pub mod encode;
pub mod event;
pub mod export;
pub mod flow;
pub mod headers;
pub mod ids;
#[cfg(feature = "std")]
pub mod lifecycle;
pub mod record;
pub mod sampling;
#[cfg(feature = "std")]
pub mod sync;
#[cfg(feature = "std")]
pub mod system;
#[cfg(feature = "std")]
pub mod testing;
pub mod time;
#[cfg(feature = "tracing")]
pub mod tracing_layer;
#[cfg(feature = "std")]
pub mod tracked;
#[cfg(feature = "ureq")]
pub mod transport;

pub use clock::{ClockOrdering, VectorClock};
pub use event::{AccessType, Event, EventKind, MemoryOrdering, Metadata, SourceLocation};
pub use flow::{Flow, FlowEnd, Service, Tracer};
pub use ids::{EventId, IdGenerator, SpanId, TraceId};
pub use time::{Instant, Timestamp, WallClock};

/// The public names every adapter re-exports, the same in each
/// (`pub use raceway_proto::api::*;`): an adapter adds only its own on top.
#[cfg(feature = "std")]
pub mod api {
    pub use crate::analysis::{Race, RaceReport};
    pub use crate::background::FlushError;
    pub use crate::client::{ClientCore, CoreStats, IntoAccessType, PropagationError, SharedAnalyzer, Stats};
    pub use crate::config::{Config, ConfigError};
    pub use crate::export::ExportStats;
    pub use crate::lifecycle::ClientHandle;
    pub use crate::tracked::{NameOnly, Values};
    pub use crate::{AccessType, Flow, FlowEnd, MemoryOrdering};
}

pub use analysis::{Analyzer, AnalyzerConfig, Race, RaceReport};
pub use encode::{BatchEncoder, EncodeSummary};
pub use export::{
    BatchId, ExportConfig, ExportStats, Exporter, FlushTicket, PushOutcome, RecordQueue, SendOutcome,
    Transmit,
};
pub use headers::{extract, ClockHeader, ExtractError, Propagation, RemoteContext, TraceParent, TraceState};

//! Propagation header codecs: `traceparent`, `tracestate` and `raceway-clock`.
//!
//! SKELETON: the types and signatures below are the contract the rest of the crate uses;
//! the bodies are being written.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use core::str::FromStr;

use crate::clock::VectorClock;
use crate::ids::{EventId, SpanId, TraceId};

/// `traceparent` header name.
pub const TRACEPARENT: &str = "traceparent";
/// `tracestate` header name.
pub const TRACESTATE: &str = "tracestate";
/// `raceway-clock` header name.
pub const RACEWAY_CLOCK: &str = "raceway-clock";

/// A parsed W3C `traceparent`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceParent {
    /// Version byte (`00` today; higher versions are parsed, `ff` is invalid).
    pub version: u8,
    /// The trace id.
    pub trace_id: TraceId,
    /// The sender's span id (`parent-id`).
    pub parent_id: SpanId,
    /// Trace flags (`01` = sampled).
    pub flags: u8,
}

/// A parsed W3C `tracestate`: at most 32 `key=value` members, in order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TraceState {
    members: Vec<(String, String)>,
}

impl FromStr for TraceState {
    type Err = fmt::Error;
    fn from_str(_s: &str) -> Result<Self, fmt::Error> {
        todo!()
    }
}

impl fmt::Display for TraceState {
    fn fmt(&self, _f: &mut fmt::Formatter<'_>) -> fmt::Result {
        todo!()
    }
}

/// The `raceway-clock` v1 payload.
#[derive(Debug, Clone, PartialEq)]
pub struct ClockHeader {
    /// Trace id (UUID).
    pub trace_id: TraceId,
    /// The span the receiver adopts.
    pub span_id: SpanId,
    /// The sender's span.
    pub parent_span_id: Option<SpanId>,
    /// Sender's service.
    pub service: String,
    /// Sender's instance.
    pub instance: String,
    /// Sender's clock.
    pub clock: VectorClock,
    /// Sender's last event id (a Rust-SDK extension field `event_id`; others ignore it).
    pub event_id: Option<EventId>,
}

/// What a receiver learns from request headers.
#[derive(Debug, Clone, PartialEq)]
pub struct RemoteContext {
    /// Trace id.
    pub trace_id: TraceId,
    /// The span this side adopts.
    pub span_id: SpanId,
    /// The caller's span.
    pub parent_span_id: Option<SpanId>,
    /// Forwarded tracestate.
    pub tracestate: Option<TraceState>,
    /// The caller's clock (empty without `raceway-clock`).
    pub clock: VectorClock,
    /// The caller's last event.
    pub event_id: Option<EventId>,
}

/// Outgoing propagation headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Propagation {
    traceparent: String,
    tracestate: Option<String>,
    raceway_clock: String,
}

impl Propagation {
    /// Builds all headers from a clock payload.
    pub fn new(_clock: &ClockHeader, _tracestate: Option<&TraceState>) -> Self {
        todo!()
    }
}

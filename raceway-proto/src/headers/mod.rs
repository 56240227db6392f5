//! Propagation header codecs: `traceparent`, `tracestate` and `raceway-clock`.
//!
//! Everything here works on `&str` name/value pairs so any HTTP stack can feed it; the
//! `http` feature adds a thin [`http::HeaderMap`](::http::HeaderMap) layer on top.
//!
//! - Receiving: [`extract`] turns request headers into a [`RemoteContext`].
//! - Sending: [`Propagation::new`] builds the outgoing headers from a [`ClockHeader`].
//!
//! Every decoder bounds its input ([`MAX_CLOCK_HEADER_LEN`], [`MAX_CLOCK_COMPONENTS`],
//! [`MAX_TRACESTATE_LEN`], …) and never panics.
//!
//! ```
//! use raceway_proto::headers::{extract, TRACEPARENT};
//!
//! let ctx = extract([(TRACEPARENT, "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")])
//!     .unwrap();
//! assert_eq!(ctx.trace_id.to_string(), "0af76519-16cd-43dd-8448-eb211c80319c");
//! assert_eq!(ctx.span_id.to_string(), "b7ad6b7169203331");
//! assert!(ctx.clock.is_empty());
//! ```

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;

use crate::clock::VectorClock;
use crate::ids::{EventId, SpanId, TraceId};

mod clock_header;
#[cfg(feature = "http")]
mod http;
mod traceparent;
mod tracestate;

pub use clock_header::{
    ClockHeader, ClockHeaderError, CLOCK_V1_PREFIX, MAX_CLOCK_COMPONENTS, MAX_CLOCK_HEADER_LEN,
    MAX_COMPONENT_LEN, MAX_NAME_LEN,
};
#[cfg(feature = "http")]
pub use http::extract_from_header_map;
pub use traceparent::{TraceParent, TraceParentError, FLAG_SAMPLED};
pub use tracestate::{TraceState, TraceStateError, MAX_TRACESTATE_LEN, MAX_TRACESTATE_MEMBERS};

/// `traceparent` header name.
pub const TRACEPARENT: &str = "traceparent";
/// `tracestate` header name.
pub const TRACESTATE: &str = "tracestate";
/// `raceway-clock` header name.
pub const RACEWAY_CLOCK: &str = "raceway-clock";

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
    /// The caller's sampling decision: the W3C `traceparent` sampled flag, when a valid
    /// `traceparent` came (`None` otherwise: a `raceway-clock` alone carries none).
    pub sampled: Option<bool>,
}

impl RemoteContext {
    /// The context a `raceway-clock` alone gives.
    pub fn from_clock_header(header: ClockHeader) -> Self {
        Self {
            trace_id: header.trace_id,
            span_id: header.span_id,
            parent_span_id: header.parent_span_id,
            tracestate: None,
            clock: header.clock,
            event_id: header.event_id,
            sampled: None,
        }
    }

    /// The context a `traceparent` alone gives: its parent-id becomes this side's span,
    /// with no upstream span and an empty clock.
    pub fn from_traceparent(tp: &TraceParent) -> Self {
        Self {
            trace_id: tp.trace_id,
            span_id: tp.parent_id,
            parent_span_id: None,
            tracestate: None,
            clock: VectorClock::new(),
            event_id: None,
            sampled: Some(tp.is_sampled()),
        }
    }
}

/// Why no context could be extracted from request headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ExtractError {
    /// Neither `traceparent` nor `raceway-clock` is present.
    Missing,
    /// At least one is present, but none is valid.
    Invalid {
        /// Why `traceparent` was refused, when present.
        traceparent: Option<TraceParentError>,
        /// Why `raceway-clock` was refused, when present.
        raceway_clock: Option<ClockHeaderError>,
    },
}

impl fmt::Display for ExtractError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExtractError::Missing => f.write_str("no traceparent or raceway-clock header"),
            ExtractError::Invalid {
                traceparent,
                raceway_clock,
            } => {
                f.write_str("no valid propagation header")?;
                if let Some(e) = traceparent {
                    write!(f, ": {e}")?;
                }
                if let Some(e) = raceway_clock {
                    write!(f, ": {e}")?;
                }
                Ok(())
            }
        }
    }
}

impl core::error::Error for ExtractError {}

/// Collects the propagation headers of one request, in any order and casing.
#[derive(Default)]
pub(crate) struct HeaderCollector {
    traceparent: Option<Result<TraceParent, TraceParentError>>,
    tracestate: Option<Result<String, TraceStateError>>,
    raceway_clock: Option<Result<ClockHeader, ClockHeaderError>>,
}

impl HeaderCollector {
    /// Adds one header; `value` is `None` when it is not visible ASCII.
    pub(crate) fn add(&mut self, name: &str, value: Option<&str>) {
        if name.eq_ignore_ascii_case(TRACEPARENT) {
            self.traceparent = Some(match (&self.traceparent, value) {
                (Some(_), _) => Err(TraceParentError::Repeated),
                (None, Some(v)) => TraceParent::parse(v),
                (None, None) => Err(TraceParentError::NotVisibleAscii),
            });
        } else if name.eq_ignore_ascii_case(RACEWAY_CLOCK) {
            self.raceway_clock = Some(match (&self.raceway_clock, value) {
                (Some(_), _) => Err(ClockHeaderError::Repeated),
                (None, Some(v)) => ClockHeader::decode(v),
                (None, None) => Err(ClockHeaderError::NotVisibleAscii),
            });
        } else if name.eq_ignore_ascii_case(TRACESTATE) {
            self.tracestate = Some(match (self.tracestate.take(), value) {
                (Some(Err(e)), _) => Err(e),
                (_, None) => Err(TraceStateError::NotVisibleAscii),
                (None, Some(v)) if v.len() > MAX_TRACESTATE_LEN => Err(TraceStateError::TooLong),
                (None, Some(v)) => Ok(v.to_string()),
                (Some(Ok(mut joined)), Some(v)) => {
                    if joined.len() + 1 + v.len() > MAX_TRACESTATE_LEN {
                        Err(TraceStateError::TooLong)
                    } else {
                        joined.push(',');
                        joined.push_str(v);
                        Ok(joined)
                    }
                }
            });
        }
    }

    pub(crate) fn finish(self) -> Result<RemoteContext, ExtractError> {
        // W3C: tracestate is only read alongside a valid traceparent.
        let tracestate = match (&self.traceparent, self.tracestate) {
            (Some(Ok(_)), Some(Ok(s))) => TraceState::parse(&s).ok().filter(|t| !t.is_empty()),
            _ => None,
        };
        let sampled = match &self.traceparent {
            Some(Ok(tp)) => Some(tp.is_sampled()),
            _ => None,
        };
        let mut ctx = match (self.traceparent, self.raceway_clock) {
            (_, Some(Ok(header))) => RemoteContext::from_clock_header(header),
            (Some(Ok(tp)), _) => RemoteContext::from_traceparent(&tp),
            (None, None) => return Err(ExtractError::Missing),
            (tp, clock) => {
                return Err(ExtractError::Invalid {
                    traceparent: tp.and_then(Result::err),
                    raceway_clock: clock.and_then(Result::err),
                })
            }
        };
        ctx.tracestate = tracestate;
        ctx.sampled = sampled;
        Ok(ctx)
    }
}

/// Reads a [`RemoteContext`] from request headers (names in any casing).
///
/// - A valid `raceway-clock` gives the trace id, span ids, clock and event id; it wins over
///   `traceparent` when both are valid, and is enough alone.
/// - A valid `traceparent` alone gives the trace id and this side's span id (its
///   parent-id), no upstream span and an empty clock. An invalid `raceway-clock` falls back
///   to it.
/// - `traceparent` or `raceway-clock` present more than once counts as invalid.
/// - Several `tracestate` headers are joined with `,`. The tracestate is kept only with a
///   valid `traceparent` (W3C) and is dropped, without affecting the rest, when invalid
///   or empty.
///
/// The caller adds its own clock component (`clock.ensure(own, 0)`).
pub fn extract<'n, 'v, I>(headers: I) -> Result<RemoteContext, ExtractError>
where
    I: IntoIterator<Item = (&'n str, &'v str)>,
{
    extract_bytes(headers.into_iter().map(|(k, v)| (k, v.as_bytes())))
}

/// [`extract`] over raw header values, as every HTTP framework holds them: the one
/// function that turns request headers into a remote context, for every adapter.
///
/// A value that is not visible ASCII (a byte outside `0x20..=0x7e`, other than a tab)
/// makes its header invalid, exactly as a malformed value does: it is never skipped, so
/// a repeat is still seen as a repeat.
pub fn extract_bytes<'n, 'v, I>(headers: I) -> Result<RemoteContext, ExtractError>
where
    I: IntoIterator<Item = (&'n str, &'v [u8])>,
{
    let mut c = HeaderCollector::default();
    for (name, value) in headers {
        c.add(name, visible_ascii(value));
    }
    c.finish()
}

/// Reads the `raceway-clock` of a response (names in any casing): `Ok(None)` when absent;
/// a repeated header or a value that is not visible ASCII is an error, as a malformed one is.
pub fn response_clock<'n, 'v, I>(headers: I) -> Result<Option<ClockHeader>, ClockHeaderError>
where
    I: IntoIterator<Item = (&'n str, &'v [u8])>,
{
    let mut found = None;
    for (name, value) in headers {
        if name.eq_ignore_ascii_case(RACEWAY_CLOCK) {
            if found.is_some() {
                return Err(ClockHeaderError::Repeated);
            }
            found = Some(value);
        }
    }
    match found {
        None => Ok(None),
        Some(v) => {
            let v = visible_ascii(v).ok_or(ClockHeaderError::NotVisibleAscii)?;
            ClockHeader::decode(v).map(Some)
        }
    }
}

/// The value as `&str` when it is visible ASCII (what `http::HeaderValue::to_str` accepts).
fn visible_ascii(value: &[u8]) -> Option<&str> {
    if value.iter().all(|&b| b == b'\t' || (0x20..0x7f).contains(&b)) {
        core::str::from_utf8(value).ok()
    } else {
        None
    }
}

/// Outgoing propagation headers: `traceparent`, `raceway-clock` and, when there is one,
/// `tracestate`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Propagation {
    traceparent: String,
    tracestate: Option<String>,
    raceway_clock: Option<String>,
}

impl Propagation {
    /// Builds all headers from a clock payload: `traceparent` is
    /// `00-{trace id}-{clock.span_id}-01`, `tracestate` is forwarded when not empty.
    pub fn new(clock: &ClockHeader, tracestate: Option<&TraceState>) -> Self {
        Self {
            traceparent: TraceParent::sampled(clock.trace_id, clock.span_id).to_string(),
            tracestate: tracestate.filter(|t| !t.is_empty()).map(ToString::to_string),
            raceway_clock: Some(clock.to_header_value()),
        }
    }

    /// The headers of an unsampled trace ([`crate::sampling`]): `traceparent` with the
    /// sampled flag cleared (`-00`), the `tracestate` forwarded, and no `raceway-clock`.
    pub fn unsampled(trace_id: TraceId, span_id: SpanId, tracestate: Option<&str>) -> Self {
        let mut tp = TraceParent::sampled(trace_id, span_id);
        tp.flags &= !FLAG_SAMPLED;
        Self {
            traceparent: tp.to_string(),
            tracestate: tracestate.filter(|t| !t.is_empty()).map(ToString::to_string),
            raceway_clock: None,
        }
    }

    /// True when the trace is recorded (the `traceparent` sampled flag).
    pub fn is_sampled(&self) -> bool {
        self.raceway_clock.is_some()
    }

    /// The `traceparent` value.
    pub fn traceparent(&self) -> &str {
        &self.traceparent
    }

    /// The `tracestate` value, when there is one.
    pub fn tracestate(&self) -> Option<&str> {
        self.tracestate.as_deref()
    }

    /// The `raceway-clock` value (none for an unsampled trace).
    pub fn raceway_clock(&self) -> Option<&str> {
        self.raceway_clock.as_deref()
    }

    /// `(name, value)` for every header to send.
    pub fn iter(&self) -> PropagationIter<'_> {
        PropagationIter {
            propagation: self,
            next: 0,
        }
    }

    /// `(name, value)` for every header to send, owned.
    pub fn into_pairs(self) -> Vec<(&'static str, String)> {
        let mut v = Vec::with_capacity(3);
        v.push((TRACEPARENT, self.traceparent));
        if let Some(ts) = self.tracestate {
            v.push((TRACESTATE, ts));
        }
        if let Some(clock) = self.raceway_clock {
            v.push((RACEWAY_CLOCK, clock));
        }
        v
    }
}

impl<'a> IntoIterator for &'a Propagation {
    type Item = (&'static str, &'a str);
    type IntoIter = PropagationIter<'a>;
    fn into_iter(self) -> PropagationIter<'a> {
        self.iter()
    }
}

/// The headers of a [`Propagation`], from [`Propagation::iter`].
#[derive(Debug, Clone)]
pub struct PropagationIter<'a> {
    propagation: &'a Propagation,
    next: u8,
}

impl<'a> Iterator for PropagationIter<'a> {
    type Item = (&'static str, &'a str);
    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let i = self.next;
            self.next = self.next.saturating_add(1);
            match i {
                0 => return Some((TRACEPARENT, &self.propagation.traceparent)),
                1 => {
                    if let Some(ts) = &self.propagation.tracestate {
                        return Some((TRACESTATE, ts));
                    }
                }
                2 => {
                    if let Some(clock) = &self.propagation.raceway_clock {
                        return Some((RACEWAY_CLOCK, clock));
                    }
                }
                _ => return None,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TP: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

    #[test]
    fn missing_versus_invalid() {
        assert_eq!(extract([("x", "y")]), Err(ExtractError::Missing));
        assert_eq!(
            extract([(TRACEPARENT, "junk"), (RACEWAY_CLOCK, "v9;")]),
            Err(ExtractError::Invalid {
                traceparent: Some(TraceParentError::Length),
                raceway_clock: Some(ClockHeaderError::UnsupportedVersion),
            })
        );
        assert_eq!(
            extract([(TRACEPARENT, TP), ("TraceParent", TP)]),
            Err(ExtractError::Invalid {
                traceparent: Some(TraceParentError::Repeated),
                raceway_clock: None,
            })
        );
    }

    #[test]
    fn tracestate_needs_a_traceparent() {
        let ctx = extract([(TRACEPARENT, TP), (TRACESTATE, "a=1"), (TRACESTATE, "b=2")]).unwrap();
        assert_eq!(ctx.tracestate.unwrap().to_string(), "a=1,b=2");
        let ctx = extract([(TRACEPARENT, TP), (TRACESTATE, "A=1")]).unwrap();
        assert_eq!(ctx.tracestate, None);
    }

    #[test]
    fn propagation_iterates_present_headers() {
        let clock = ClockHeader {
            trace_id: "0af76519-16cd-43dd-8448-eb211c80319c".parse().unwrap(),
            span_id: "a71dd2f7c2ebe8fe".parse().unwrap(),
            parent_span_id: None,
            service: String::from("s"),
            instance: String::from("i"),
            clock: VectorClock::new(),
            event_id: None,
        };
        let p = Propagation::new(&clock, None);
        let names: Vec<_> = p.iter().map(|(n, _)| n).collect();
        assert_eq!(names, [TRACEPARENT, RACEWAY_CLOCK]);
        let ts: TraceState = "k=v".parse().unwrap();
        let p = Propagation::new(&clock, Some(&ts));
        assert_eq!(
            p.traceparent(),
            "00-0af7651916cd43dd8448eb211c80319c-a71dd2f7c2ebe8fe-01"
        );
        assert_eq!(p.tracestate(), Some("k=v"));
        assert_eq!((&p).into_iter().count(), 3);
        assert_eq!(p.clone().into_pairs().len(), 3);
        let back = extract(p.iter()).unwrap();
        assert_eq!(back.span_id, clock.span_id);
        assert_eq!(back.tracestate, Some(ts));
    }
}

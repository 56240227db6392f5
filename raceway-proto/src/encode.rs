//! The batch encoder: events to `{"events":[...]}` bodies under a byte cap.
//!
//! The server rejects a body over 2 MiB, and one bad body loses every event in it
//! (WIRE.md, "Limits"). [`BatchEncoder`] therefore never writes a body over its cap: it
//! stops before the event that would cross it (that event starts the next body), and an
//! event too big to fit in any body on its own is first cut down (its large values replaced
//! by a short `"<truncated: N bytes>"` marker) and, only if still too big, dropped and
//! counted. An oversized event never sinks the events batched with it.
//!
//! ```
//! use raceway_proto::encode::{BatchEncoder, DEFAULT_MAX_BODY_BYTES};
//! # let events: Vec<raceway_proto::Event> = Vec::new();
//! let mut encoder = BatchEncoder::new(DEFAULT_MAX_BODY_BYTES);
//! let mut body = Vec::new();
//! let mut rest = &events[..];
//! while !rest.is_empty() {
//!     body.clear();
//!     let summary = encoder.encode(rest, &mut body);
//!     if summary.encoded > 0 {
//!         // POST `body` to `{endpoint}/events`
//!     }
//!     rest = &rest[summary.consumed..];
//! }
//! ```

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::String;
use alloc::vec;
use alloc::vec::Vec;

use serde::Serialize;
use serde_json::Value;

use crate::event::{Event, EventKind};
use crate::record::{Record, RecordScratch};

/// An event as a body carries it: the event model's [`Event`], or the compact [`Record`]
/// the clients queue (written straight to JSON, see [`crate::record`]).
pub trait WireEvent: Sized {
    /// What the encoder keeps from one event to the next (caches of what events share).
    type Scratch: Default + core::fmt::Debug;

    /// Appends the event's JSON to `out`.
    fn write_json(&self, out: &mut Vec<u8>, scratch: &mut Self::Scratch) -> serde_json::Result<()>;

    /// The event's cut-down form (see [`cut_down`]); `scratch` is a reusable buffer.
    fn cut_down(&self, scratch: &mut Vec<u8>) -> Self;
}

impl WireEvent for Event {
    type Scratch = ();

    fn write_json(&self, out: &mut Vec<u8>, _: &mut ()) -> serde_json::Result<()> {
        write_json(out, self)
    }

    fn cut_down(&self, scratch: &mut Vec<u8>) -> Self {
        Event {
            kind: cut_kind(&self.kind, scratch),
            metadata: self.metadata.clone(),
            causality_vector: self.causality_vector.clone(),
            lock_set: self.lock_set.clone(),
            ..*self
        }
    }
}

impl WireEvent for Record {
    type Scratch = RecordScratch;

    fn write_json(&self, out: &mut Vec<u8>, scratch: &mut RecordScratch) -> serde_json::Result<()> {
        Record::write_json(self, out, scratch)
    }

    fn cut_down(&self, scratch: &mut Vec<u8>) -> Self {
        self.with_kind(cut_kind(&self.kind(), scratch))
    }
}

/// The default body cap: 1 MiB, half the server's limit (about 1,700 state changes of
/// some 600 bytes).
pub const DEFAULT_MAX_BODY_BYTES: usize = 1_048_576;

/// The server's body limit (axum's default): bodies over it are answered `413`.
pub const SERVER_MAX_BODY_BYTES: usize = 2 * 1_048_576;

/// The largest cap [`BatchEncoder::new`] accepts; larger caps are lowered to it, so a body
/// stays under the server's limit with room for a proxy's slack.
pub const MAX_BODY_BYTES_LIMIT: usize = SERVER_MAX_BODY_BYTES - 4096;

/// Values serialized at or below this many bytes are kept when an event is cut down.
const KEEP_VALUES_UP_TO: usize = 128;

const PREFIX: &[u8] = b"{\"events\":[";
const SUFFIX: &[u8] = b"]}";
/// Bytes of a body around its events: `{"events":[` and `]}`.
pub const BODY_OVERHEAD: usize = PREFIX.len() + SUFFIX.len();

/// What became of the leading events of one [`BatchEncoder::encode`] call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EncodeSummary {
    /// Leading events dealt with (`encoded + dropped`); the rest belong in the next body.
    pub consumed: usize,
    /// Events written into the body (truncated ones included).
    pub encoded: usize,
    /// Encoded events that were cut down to fit.
    pub truncated: usize,
    /// Events dropped: too big even when cut down, or not serializable.
    pub dropped: usize,
    /// Bytes of body appended (0 when nothing was encoded).
    pub bytes: usize,
}

/// What became of one event, as reported to [`BatchEncoder::encode_each`]'s callback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventOutcome {
    /// Written as it is.
    Encoded,
    /// Written in its cut-down form (see [`cut_down`]).
    Truncated,
    /// Dropped: too big even when cut down, or not serializable.
    Dropped,
}

/// Encodes events into request bodies of at most `max_body_bytes` bytes.
///
/// Holds a scratch buffer reused for the rare oversized event, so encoding allocates only
/// when the caller's buffer grows.
#[derive(Debug)]
pub struct BatchEncoder<E: WireEvent = Event> {
    max_body_bytes: usize,
    scratch: Vec<u8>,
    wire: E::Scratch,
}

impl<E: WireEvent> Default for BatchEncoder<E> {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_BODY_BYTES)
    }
}

impl<E: WireEvent> BatchEncoder<E> {
    /// An encoder for bodies of at most `max_body_bytes` (lowered to
    /// [`MAX_BODY_BYTES_LIMIT`]). A cap too small for an event's cut-down form drops it.
    pub fn new(max_body_bytes: usize) -> Self {
        Self {
            max_body_bytes: max_body_bytes.min(MAX_BODY_BYTES_LIMIT),
            scratch: Vec::new(),
            wire: E::Scratch::default(),
        }
    }

    /// The body cap in bytes.
    pub const fn max_body_bytes(&self) -> usize {
        self.max_body_bytes
    }

    /// Appends one body `{"events":[...]}` holding as many leading `events` as fit under
    /// the cap to `out`, and says how many were consumed. When no event could be encoded
    /// (`events` empty, or every consumed event dropped), `out` is left as it was and
    /// `bytes` is 0: there is nothing to send.
    pub fn encode(&mut self, events: &[E], out: &mut Vec<u8>) -> EncodeSummary {
        self.encode_each(events, out, |_, _| {})
    }

    /// As [`encode`](Self::encode), calling `on_event(index, outcome)` for each consumed
    /// event, in order, so a caller can tell which events were truncated or dropped.
    pub fn encode_each<F>(&mut self, events: &[E], out: &mut Vec<u8>, mut on_event: F) -> EncodeSummary
    where
        F: FnMut(usize, EventOutcome),
    {
        let max = self.max_body_bytes;
        let start = out.len();
        let mut s = EncodeSummary::default();
        out.extend_from_slice(PREFIX);
        for (i, ev) in events.iter().enumerate() {
            let mark = out.len();
            let sep = usize::from(s.encoded > 0);
            if sep == 1 {
                out.push(b',');
            }
            let ev_start = out.len();
            if ev.write_json(out, &mut self.wire).is_err() {
                out.truncate(mark);
                s.consumed += 1;
                s.dropped += 1;
                on_event(i, EventOutcome::Dropped);
                continue;
            }
            let ev_len = out.len() - ev_start;
            if out.len() - start + SUFFIX.len() <= max {
                s.consumed += 1;
                s.encoded += 1;
                on_event(i, EventOutcome::Encoded);
                continue;
            }
            out.truncate(mark);
            if ev_len + BODY_OVERHEAD <= max {
                // Fits in a body of its own: it starts the next one.
                break;
            }
            // Too big for any body: cut it down.
            let small = ev.cut_down(&mut self.scratch);
            self.scratch.clear();
            if small.write_json(&mut self.scratch, &mut self.wire).is_err()
                || self.scratch.len() + BODY_OVERHEAD > max
            {
                s.consumed += 1;
                s.dropped += 1;
                on_event(i, EventOutcome::Dropped);
                continue;
            }
            if mark - start + sep + self.scratch.len() + SUFFIX.len() > max {
                break; // the cut-down form starts the next body
            }
            if sep == 1 {
                out.push(b',');
            }
            out.extend_from_slice(&self.scratch);
            s.consumed += 1;
            s.encoded += 1;
            s.truncated += 1;
            on_event(i, EventOutcome::Truncated);
        }
        if s.encoded == 0 {
            out.truncate(start);
        } else {
            out.extend_from_slice(SUFFIX);
            s.bytes = out.len() - start;
        }
        if self.scratch.capacity() > 64 * 1024 {
            self.scratch = Vec::new(); // do not keep a huge oversized event's buffer around
        }
        s
    }
}

/// The cut-down form of an event: every large JSON value (`old_value`, `new_value`,
/// `args`, `data`, `body`, `stack_trace`, `headers`, `query`, `message`) serialized over
/// 128 bytes is replaced by the string `"<truncated: N bytes>"` (N its serialized size).
/// Typed fields keep their type, so the result is still an event the server accepts:
/// `headers` becomes `{"raceway.truncated": "<truncated: N bytes>"}` and `stack_trace`
/// a one-frame list.
pub fn cut_down(ev: &Event) -> Event {
    ev.cut_down(&mut Vec::new())
}

/// Appends `v` as compact JSON to `out`. With `std`, serde_json writes straight into the
/// buffer; without it serde_json offers no writer API, so each value goes through a
/// temporary `Vec` (one allocation per event).
#[cfg(feature = "std")]
pub(crate) fn write_json<T: Serialize + ?Sized>(out: &mut Vec<u8>, v: &T) -> serde_json::Result<()> {
    serde_json::to_writer(out, v)
}

#[cfg(not(feature = "std"))]
pub(crate) fn write_json<T: Serialize + ?Sized>(out: &mut Vec<u8>, v: &T) -> serde_json::Result<()> {
    let bytes = serde_json::to_vec(v)?;
    out.extend_from_slice(&bytes);
    Ok(())
}

fn json_len<T: Serialize + ?Sized>(v: &T, scratch: &mut Vec<u8>) -> usize {
    scratch.clear();
    match write_json(scratch, v) {
        Ok(()) => scratch.len(),
        Err(_) => usize::MAX,
    }
}

fn marker(n: usize) -> String {
    if n == usize::MAX {
        String::from("<truncated: unserializable>")
    } else {
        format!("<truncated: {n} bytes>")
    }
}

fn cut_value(v: &Value, scratch: &mut Vec<u8>) -> Value {
    let n = json_len(v, scratch);
    if n <= KEEP_VALUES_UP_TO {
        v.clone()
    } else {
        Value::String(marker(n))
    }
}

fn cut_opt(v: &Option<Value>, scratch: &mut Vec<u8>) -> Option<Value> {
    v.as_ref().map(|v| cut_value(v, scratch))
}

fn cut_str(s: &str, scratch: &mut Vec<u8>) -> String {
    let n = json_len(s, scratch);
    if n <= KEEP_VALUES_UP_TO {
        String::from(s)
    } else {
        marker(n)
    }
}

fn cut_headers(h: &BTreeMap<String, String>, scratch: &mut Vec<u8>) -> BTreeMap<String, String> {
    let n = json_len(h, scratch);
    if n <= KEEP_VALUES_UP_TO {
        h.clone()
    } else {
        let mut m = BTreeMap::new();
        m.insert(String::from("raceway.truncated"), marker(n));
        m
    }
}

fn cut_kind(kind: &EventKind, scratch: &mut Vec<u8>) -> EventKind {
    match kind {
        EventKind::StateChange {
            variable,
            old_value,
            new_value,
            location,
            access_type,
        } => EventKind::StateChange {
            variable: variable.clone(),
            old_value: cut_opt(old_value, scratch),
            new_value: cut_value(new_value, scratch),
            location: location.clone(),
            access_type: *access_type,
        },
        EventKind::FunctionCall {
            function_name,
            module,
            args,
            file,
            line,
        } => EventKind::FunctionCall {
            function_name: function_name.clone(),
            module: module.clone(),
            args: cut_value(args, scratch),
            file: file.clone(),
            line: *line,
        },
        EventKind::HttpRequest {
            method,
            url,
            headers,
            body,
        } => EventKind::HttpRequest {
            method: method.clone(),
            url: url.clone(),
            headers: cut_headers(headers, scratch),
            body: cut_opt(body, scratch),
        },
        EventKind::HttpResponse {
            status,
            headers,
            body,
            duration_ms,
        } => EventKind::HttpResponse {
            status: *status,
            headers: cut_headers(headers, scratch),
            body: cut_opt(body, scratch),
            duration_ms: *duration_ms,
        },
        EventKind::DatabaseQuery {
            query,
            database,
            duration_ms,
        } => EventKind::DatabaseQuery {
            query: cut_str(query, scratch),
            database: database.clone(),
            duration_ms: *duration_ms,
        },
        EventKind::Error {
            error_type,
            message,
            stack_trace,
        } => EventKind::Error {
            error_type: error_type.clone(),
            message: cut_str(message, scratch),
            stack_trace: {
                let n = json_len(stack_trace, scratch);
                if n <= KEEP_VALUES_UP_TO {
                    stack_trace.clone()
                } else {
                    vec![marker(n)]
                }
            },
        },
        EventKind::Custom { name, data } => EventKind::Custom {
            name: name.clone(),
            data: cut_value(data, scratch),
        },
        other => other.clone(),
    }
}

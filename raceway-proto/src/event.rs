//! The event model, wire-compatible with the Raceway server (WIRE.md, "Event").
//!
//! Every type here serializes to exactly what the server accepts, and nothing that the
//! public API can build is something the server rejects: access types and memory orderings
//! are enums, counters are unsigned, ids are UUIDs and timestamps are RFC 3339.

use alloc::borrow::Cow;
use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt;
use core::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use crate::clock::VectorClock;
use crate::ids::{EventId, SpanId, TraceId};
use crate::time::Timestamp;

/// One recorded event: what happened, in which flow, and its place in causal order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Event {
    /// This event's id.
    pub id: EventId,
    /// The trace it belongs to.
    pub trace_id: TraceId,
    /// The previous event of the same logical flow (or, for a flow's first event, the event
    /// that caused the flow: the fork, the upstream call).
    pub parent_id: Option<EventId>,
    /// Wall-clock time; never goes backwards within a flow.
    pub timestamp: Timestamp,
    /// What happened.
    pub kind: EventKind,
    /// Who recorded it.
    pub metadata: Metadata,
    /// The flow's vector clock after this event.
    pub causality_vector: VectorClock,
    /// Locks held; the server recomputes this, the SDK sends what it knows.
    pub lock_set: Vec<String>,
}

/// Free-form tags attached to every event of a service.
pub type Tags = BTreeMap<String, String>;

/// Who recorded an event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Metadata {
    /// The flow's id: one per logical thread of execution (see [`crate::flow`]).
    pub thread_id: Arc<str>,
    /// The OS process id.
    pub process_id: u32,
    /// The service name.
    pub service_name: Arc<str>,
    /// Deployment environment (`development`, `production`, ...).
    pub environment: Arc<str>,
    /// Service-wide tags.
    pub tags: Arc<Tags>,
    /// Duration of what the event measures: `None` omits the field, `Some(None)` is `null`.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "present_field"
    )]
    pub duration_ns: Option<Option<u64>>,
    /// The service instance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_id: Option<Arc<str>>,
    /// The span of the flow (shared with the upstream caller's child span).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub distributed_span_id: Option<SpanId>,
    /// The caller's span, for a flow that continues a call from another service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upstream_span_id: Option<SpanId>,
}

fn present_field<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<u64>>, D::Error> {
    Option::<u64>::deserialize(d).map(Some)
}

/// How a state change touches its variable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum AccessType {
    /// A plain read.
    Read,
    /// A plain write.
    Write,
    /// An atomic load.
    AtomicRead,
    /// An atomic store.
    AtomicWrite,
    /// An atomic read-modify-write (`fetch_add`, compare-and-swap, ...).
    #[serde(rename = "AtomicRMW")]
    AtomicRmw,
}

impl AccessType {
    /// The wire name.
    pub const fn as_str(self) -> &'static str {
        match self {
            AccessType::Read => "Read",
            AccessType::Write => "Write",
            AccessType::AtomicRead => "AtomicRead",
            AccessType::AtomicWrite => "AtomicWrite",
            AccessType::AtomicRmw => "AtomicRMW",
        }
    }
    /// True for reads (plain or atomic).
    pub const fn is_read(self) -> bool {
        matches!(self, AccessType::Read | AccessType::AtomicRead)
    }
    /// True for the atomic kinds.
    pub const fn is_atomic(self) -> bool {
        matches!(
            self,
            AccessType::AtomicRead | AccessType::AtomicWrite | AccessType::AtomicRmw
        )
    }
}

impl fmt::Display for AccessType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string that names no access type.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct UnknownAccessType;

impl fmt::Display for UnknownAccessType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("unknown access type (expected Read, Write, AtomicRead, AtomicWrite or AtomicRMW)")
    }
}

impl core::error::Error for UnknownAccessType {}

impl FromStr for AccessType {
    type Err = UnknownAccessType;
    /// The wire names, case-insensitively, plus `RMW` spellings (`AtomicRmw`, `atomic_rmw`).
    #[inline]
    fn from_str(s: &str) -> Result<Self, UnknownAccessType> {
        // The wire spellings first, inline: what nearly every call passes.
        match s {
            "Write" => Ok(AccessType::Write),
            "Read" => Ok(AccessType::Read),
            _ => parse_access_loosely(s),
        }
    }
}

/// [`AccessType::from_str`] past the two common spellings.
#[inline(never)]
fn parse_access_loosely(s: &str) -> Result<AccessType, UnknownAccessType> {
    let mut buf = [0u8; 16];
    let b = s.as_bytes();
    if b.len() > buf.len() {
        return Err(UnknownAccessType);
    }
    let mut n = 0;
    for &c in b {
        if c != b'_' && c != b'-' {
            buf[n] = c.to_ascii_lowercase();
            n += 1;
        }
    }
    match &buf[..n] {
        b"read" => Ok(AccessType::Read),
        b"write" => Ok(AccessType::Write),
        b"atomicread" => Ok(AccessType::AtomicRead),
        b"atomicwrite" => Ok(AccessType::AtomicWrite),
        b"atomicrmw" => Ok(AccessType::AtomicRmw),
        _ => Err(UnknownAccessType),
    }
}

/// A memory ordering, as `core::sync::atomic::Ordering` names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum MemoryOrdering {
    /// `Relaxed`.
    Relaxed,
    /// `Acquire`.
    Acquire,
    /// `Release`.
    Release,
    /// `AcqRel`.
    AcqRel,
    /// `SeqCst`.
    SeqCst,
}

impl MemoryOrdering {
    /// The name, as `core::sync::atomic::Ordering` spells it.
    pub const fn as_str(self) -> &'static str {
        match self {
            MemoryOrdering::Relaxed => "Relaxed",
            MemoryOrdering::Acquire => "Acquire",
            MemoryOrdering::Release => "Release",
            MemoryOrdering::AcqRel => "AcqRel",
            MemoryOrdering::SeqCst => "SeqCst",
        }
    }
}

impl From<core::sync::atomic::Ordering> for MemoryOrdering {
    fn from(o: core::sync::atomic::Ordering) -> Self {
        use core::sync::atomic::Ordering as O;
        match o {
            O::Relaxed => MemoryOrdering::Relaxed,
            O::Acquire => MemoryOrdering::Acquire,
            O::Release => MemoryOrdering::Release,
            O::AcqRel => MemoryOrdering::AcqRel,
            _ => MemoryOrdering::SeqCst,
        }
    }
}

/// Where in the source an event was recorded: `file:line` on the wire.
///
/// The static form costs nothing to record (it comes from `#[track_caller]`); the string is
/// only built when the event is encoded.
#[derive(Clone, PartialEq, Eq)]
pub enum SourceLocation {
    /// A file and line known at compile time.
    Static {
        /// Source file.
        file: &'static str,
        /// Line number.
        line: u32,
    },
    /// Any other text (decoded from the wire, or given by a user).
    Text(String),
}

impl SourceLocation {
    /// The caller's location (use from `#[track_caller]` functions).
    #[track_caller]
    pub fn caller() -> Self {
        let l = core::panic::Location::caller();
        SourceLocation::Static {
            file: l.file(),
            line: l.line(),
        }
    }
}

impl fmt::Display for SourceLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SourceLocation::Static { file, line } => write!(f, "{file}:{line}"),
            SourceLocation::Text(s) => f.write_str(s),
        }
    }
}

impl fmt::Debug for SourceLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\"{self}\"")
    }
}

impl From<&str> for SourceLocation {
    fn from(s: &str) -> Self {
        SourceLocation::Text(s.into())
    }
}

impl From<String> for SourceLocation {
    fn from(s: String) -> Self {
        SourceLocation::Text(s)
    }
}

impl Serialize for SourceLocation {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            SourceLocation::Text(t) => s.serialize_str(t),
            SourceLocation::Static { .. } => s.collect_str(self),
        }
    }
}

impl<'de> Deserialize<'de> for SourceLocation {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(SourceLocation::Text)
    }
}

/// What happened. Serialized externally tagged: `{"StateChange": {...}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum EventKind {
    /// A read or write of shared state.
    StateChange {
        /// The variable's name (races are found per variable).
        variable: String,
        /// The value before, if known.
        old_value: Option<Value>,
        /// The value after (or read).
        new_value: Value,
        /// Where the access is in the source.
        location: SourceLocation,
        /// Read, write or atomic.
        access_type: AccessType,
    },
    /// A function was called.
    FunctionCall {
        /// Its name.
        function_name: String,
        /// Its module.
        module: Arc<str>,
        /// Its arguments.
        args: Value,
        /// Source file.
        file: Cow<'static, str>,
        /// Source line.
        line: u32,
    },
    /// An HTTP request was received or sent.
    HttpRequest {
        /// Method.
        method: String,
        /// URL or path.
        url: String,
        /// Headers worth keeping.
        headers: BTreeMap<String, String>,
        /// Body, if recorded.
        body: Option<Value>,
    },
    /// An HTTP response was sent or received.
    HttpResponse {
        /// Status code.
        status: u16,
        /// Headers worth keeping.
        headers: BTreeMap<String, String>,
        /// Body, if recorded.
        body: Option<Value>,
        /// Time taken.
        duration_ms: u64,
    },
    /// A lock was taken.
    LockAcquire {
        /// The lock's name.
        lock_id: Arc<str>,
        /// `Mutex`, `RwLock::Read` or `RwLock::Write` by convention.
        lock_type: Cow<'static, str>,
        /// Where.
        location: SourceLocation,
    },
    /// A lock was released.
    LockRelease {
        /// The lock's name.
        lock_id: Arc<str>,
        /// As for the acquire.
        lock_type: Cow<'static, str>,
        /// Where.
        location: SourceLocation,
    },
    /// A task or thread was spawned (a flow forked).
    AsyncSpawn {
        /// The spawned task's id.
        task_id: EventId,
        /// Who spawned it.
        spawned_by: String,
    },
    /// A spawned task was awaited or joined.
    AsyncAwait {
        /// The awaited task's id.
        future_id: EventId,
        /// Where.
        awaited_at: String,
    },
    /// A memory fence.
    MemoryFence {
        /// Its ordering.
        ordering: MemoryOrdering,
        /// Where.
        location: SourceLocation,
    },
    /// A database query was sent.
    DatabaseQuery {
        /// The query text.
        query: String,
        /// The database's name.
        database: String,
        /// Time taken.
        duration_ms: u64,
    },
    /// A database query returned.
    DatabaseResult {
        /// Rows affected.
        rows_affected: u64,
    },
    /// An error happened.
    Error {
        /// The error's type.
        error_type: String,
        /// Its message.
        message: String,
        /// Stack frames, innermost first.
        stack_trace: Vec<String>,
    },
    /// Anything else.
    Custom {
        /// A name for it.
        name: String,
        /// Its data.
        data: Value,
    },
}

impl EventKind {
    /// The variant's wire name.
    pub fn name(&self) -> &'static str {
        match self {
            EventKind::StateChange { .. } => "StateChange",
            EventKind::FunctionCall { .. } => "FunctionCall",
            EventKind::HttpRequest { .. } => "HttpRequest",
            EventKind::HttpResponse { .. } => "HttpResponse",
            EventKind::LockAcquire { .. } => "LockAcquire",
            EventKind::LockRelease { .. } => "LockRelease",
            EventKind::AsyncSpawn { .. } => "AsyncSpawn",
            EventKind::AsyncAwait { .. } => "AsyncAwait",
            EventKind::MemoryFence { .. } => "MemoryFence",
            EventKind::DatabaseQuery { .. } => "DatabaseQuery",
            EventKind::DatabaseResult { .. } => "DatabaseResult",
            EventKind::Error { .. } => "Error",
            EventKind::Custom { .. } => "Custom",
        }
    }
}

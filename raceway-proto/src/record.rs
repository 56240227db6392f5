//! The compact record the hot path queues, and its wire JSON.
//!
//! A `track_*` call does as little as it can on the caller's thread: it takes the flow's
//! next position (its own clock counter and a timestamp) and queues a [`Record`] of 96
//! bytes that *refers* to everything the event shares with its flow instead of copying it:
//!
//! - the flow's identity (trace, `thread_id`, spans, service) through one `Arc` per flow;
//! - the event's id and its parent's, which are not stored: an event's id is its flow's
//!   random seed with the flow's own counter mixed in ([`FlowInfo::event_id`]), so its
//!   parent, the flow's event before it, is the id of the counter before, except for the
//!   first record of a clock base, whose parent the base holds;
//! - the vector clock as the flow's shared base plus the flow's own counter: the base is
//!   rebuilt only when causality moves (fork, join, propagate, merge), so recording costs
//!   the same with 1 component or 128;
//! - the lock set through one `Arc` per change of the locks held;
//! - a state change's variable, as it is, and its values, as JSON bytes serialized once
//!   (an integer in binary), written into the queue's slot itself, inline when they are
//!   small (43 bytes: `alice.balance` with two values that fit 64 bits does), on the heap
//!   otherwise;
//! - the call site as the `&'static` [`Location`] of `#[track_caller]`.
//!
//! The exporter turns records into the server's JSON ([`Record::write_json`]): what is
//! constant per flow (its metadata, its clock base) is encoded once and copied from a
//! cache ([`RecordScratch`]). The bytes are those of [`Event`]'s serde form
//! ([`Record::to_event`]), except that a struct value's fields keep their declaration
//! order where a `serde_json::Value` sorts them: the same JSON, as the server parses it.

use alloc::boxed::Box;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt;
use core::panic::Location;

use serde::Serialize;
use serde_json::Value;

use crate::clock::VectorClock;
use crate::event::{AccessType, Event, EventKind, MemoryOrdering, Metadata, SourceLocation, Tags};
use crate::flow::Service;
use crate::ids::{push_uuid, push_uuid_with_head, uuid_ascii, uuid_head, EventId, SpanId, TraceId};
use crate::time::Timestamp;

mod plain_json;

/// The tag a state change recorded with a memory ordering carries it in
/// (`"memory_ordering": "SeqCst"`).
pub const ORDERING_TAG: &str = "memory_ordering";

/// Bytes of JSON a state change keeps inside its record.
const INLINE: usize = 43;

/// A value that is a whole integer is kept as this byte (no JSON starts with it), then its
/// magnitude in 8 little-endian bytes; [`NEG_INT_TAG`] for a negative one.
const INT_TAG: u8 = 0;
const NEG_INT_TAG: u8 = 1;
const INT_LEN: usize = 9;

/// Room for a value's JSON text when the record keeps it as an integer in binary.
type ValueText = [u8; 21];

/// The JSON of the value a record keeps as `bytes`: the decimal of an integer kept in
/// binary (written into `text`), or the bytes themselves.
fn value_json<'a>(bytes: &'a [u8], text: &'a mut ValueText) -> &'a [u8] {
    let [tag @ (INT_TAG | NEG_INT_TAG), rest @ ..] = bytes else {
        return bytes;
    };
    let Ok(le) = <[u8; 8]>::try_from(rest) else {
        return bytes;
    };
    let Ok(digits) = <&mut [u8; 20]>::try_from(&mut text[1..]) else {
        return bytes;
    };
    let n = decimal(u64::from_le_bytes(le), digits).len();
    if *tag == NEG_INT_TAG {
        text[20 - n] = b'-';
        &text[20 - n..]
    } else {
        &text[21 - n..]
    }
}

/// What a flow's events share: its identity and its service. One per flow (rebuilt when a
/// flow is recorded by another client's tracer), shared by its records.
#[derive(Debug)]
pub struct FlowInfo {
    pub(crate) service: Arc<Service>,
    pub(crate) trace_id: TraceId,
    pub(crate) thread_id: Arc<str>,
    pub(crate) span_id: SpanId,
    pub(crate) upstream_span_id: Option<SpanId>,
    /// Random, in the UUID version 4 layout: the ids of the flow's events are made from it.
    pub(crate) seed: u128,
}

impl FlowInfo {
    /// The id of this flow's event whose own counter is `own`: the seed with `own` mixed
    /// into the low 62 bits (multiplying by an odd number is a bijection modulo 2^62, so
    /// two events of a flow never share an id), the UUID version and variant bits kept.
    pub(crate) fn event_id(&self, own: u64) -> EventId {
        const LOW_62: u64 = (1 << 62) - 1;
        let mixed = own.wrapping_mul(0x9e37_79b9_7f4a_7c15) & LOW_62;
        EventId::from_u128(self.seed ^ u128::from(mixed))
    }
}

/// What a flow's records share until its clock base or identity changes: one `Arc` per
/// record instead of one each (every reference count a record takes is a cache line the
/// exporter's thread touches again when it drops the record).
#[derive(Debug)]
pub struct RecordBase {
    pub(crate) info: Arc<FlowInfo>,
    /// The clock base; the value at `own_slot` is the record's own counter, not the base's.
    pub(crate) clock: Arc<VectorClock>,
    pub(crate) own_slot: u8,
    /// The sum of the base's counters other than the own slot's (see [`Record::order`]).
    pub(crate) others: u64,
    /// The own counter of the first record made with this base, and that record's parent
    /// (the flow's last event when the base was made). Every later record of the base has
    /// the counter after the one before it, and that one as its parent.
    pub(crate) first_own: u64,
    pub(crate) first_parent: Option<EventId>,
}

impl RecordBase {
    pub(crate) fn new(
        info: Arc<FlowInfo>,
        clock: Arc<VectorClock>,
        own_slot: u8,
        first_own: u64,
        first_parent: Option<EventId>,
    ) -> Self {
        let others = clock
            .entries()
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != usize::from(own_slot))
            .fold(0u64, |acc, (_, (_, v))| acc.saturating_add(*v));
        Self {
            info,
            clock,
            own_slot,
            others,
            first_own,
            first_parent,
        }
    }
}

/// The locks a flow holds, shared by its records until it takes or releases one.
pub(crate) type LockSet = Arc<Vec<Arc<str>>>;

/// One recorded event, as the exporter encodes it. See the module docs.
///
/// `B` is how it holds its base: an `Arc` (every record outside the queue), or, in the
/// queue, `Option<Arc>` ([`Pending`]), `None` where the record before it in its lane had
/// the same base.
pub struct Record<B = Arc<RecordBase>> {
    pub(crate) timestamp: Timestamp,
    pub(crate) base: B,
    /// The flow's own counter: the clock base's value at its own slot.
    pub(crate) own: u64,
    pub(crate) locks: Option<LockSet>,
    pub(crate) body: Body,
}

pub(crate) enum Body {
    /// A state change whose JSON fits inline.
    State {
        location: &'static Location<'static>,
        access: AccessType,
        ordering: Option<MemoryOrdering>,
        /// End of the variable's JSON, end of the old value's (empty: none), end of all.
        ends: [u8; 3],
        inline: [u8; INLINE],
    },
    /// Anything else.
    Boxed(Box<Large>),
}

pub(crate) struct Large {
    pub(crate) kind: LargeKind,
    pub(crate) duration_ns: Option<u64>,
    pub(crate) ordering: Option<MemoryOrdering>,
}

pub(crate) enum LargeKind {
    /// A state change with more JSON than fits inline, or a location that is not static.
    State {
        location: SourceLocation,
        access: AccessType,
        /// As [`Body::State`]'s `ends`.
        ends: [usize; 2],
        json: Box<[u8]>,
    },
    /// Any other event kind, as the event model has it.
    Event(EventKind),
}

/// A record in the export queue: its base is `None` when the record queued before it in
/// its lane had the same one (see [`crate::export::Queued`]).
pub type Pending = Record<Option<Arc<RecordBase>>>;

impl<B> Record<B> {
    fn with_base<C>(self, base: C) -> Record<C> {
        Record {
            timestamp: self.timestamp,
            base,
            own: self.own,
            locks: self.locks,
            body: self.body,
        }
    }
}

impl Record {
    /// The record without its base, for the queue, and its base (the queue is the std
    /// client's).
    #[cfg(any(feature = "std", test))]
    pub(crate) fn into_pending(self) -> (Pending, Arc<RecordBase>) {
        let base = self.base.clone();
        (self.with_base(None), base)
    }
}

impl Pending {
    /// A state change's record as the hot path makes it: its base is handed to the queue
    /// by reference, beside it.
    pub(crate) fn whole(self, base: Arc<RecordBase>) -> Record {
        self.with_base(base)
    }
}

#[cfg(feature = "std")]
impl crate::export::Queued for Pending {
    type Link = Arc<RecordBase>;
    type Last = Option<Arc<RecordBase>>;
    type Taken = Record;

    fn link(&mut self, base: &Arc<RecordBase>, last: &mut Option<Arc<RecordBase>>) {
        if last.as_ref().is_some_and(|l| Arc::ptr_eq(l, base)) {
            self.base = None;
        } else {
            *last = Some(base.clone());
            self.base = Some(base.clone());
        }
    }

    fn take(self, last: &mut Option<Arc<RecordBase>>) -> Option<Record> {
        let base = match &self.base {
            Some(b) => {
                *last = Some(b.clone());
                b.clone()
            }
            None => last.clone()?,
        };
        Some(self.with_base(base))
    }

    fn order(taken: &Record) -> (u64, u64) {
        taken.order()
    }
}

impl fmt::Debug for Record {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Record")
            .field("id", &self.id())
            .field("thread_id", &&*self.base.info.thread_id)
            .field("kind", &self.kind_name())
            .finish_non_exhaustive()
    }
}

/// The JSON of one state change: the variable's name, the old value (if any) and the new
/// one, serialized once by [`StateValues::old_value`] and [`StateValues::new_value`] into
/// the record that keeps them (in the export queue's slot itself, on the hot path).
pub struct StateValues<'a> {
    buf: Spill<'a>,
    var_end: usize,
    old_end: usize,
    has_new: bool,
}

impl fmt::Debug for StateValues<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StateValues")
            .field("bytes", &self.buf.len())
            .finish()
    }
}

/// Bytes written into a record's inline room until they outgrow it.
struct Spill<'a> {
    inline: &'a mut [u8; INLINE],
    len: usize,
    heap: Vec<u8>,
}

impl Spill<'_> {
    fn len(&self) -> usize {
        if self.heap.is_empty() {
            self.len
        } else {
            self.heap.len()
        }
    }

    fn bytes(&self) -> &[u8] {
        if self.heap.is_empty() {
            &self.inline[..self.len]
        } else {
            &self.heap
        }
    }

    #[inline]
    fn push(&mut self, bytes: &[u8]) {
        if self.heap.is_empty() && self.len + bytes.len() <= INLINE {
            self.inline[self.len..self.len + bytes.len()].copy_from_slice(bytes);
            self.len += bytes.len();
            return;
        }
        self.spill(bytes);
    }

    /// [`Spill::push`] past the inline bytes.
    #[cold]
    fn spill(&mut self, bytes: &[u8]) {
        if self.heap.is_empty() {
            self.heap.reserve(self.len + bytes.len() + 32);
            self.heap.extend_from_slice(&self.inline[..self.len]);
        }
        self.heap.extend_from_slice(bytes);
    }

    /// Appends the integer `v` (negated when `negative`) as [`INT_TAG`] or
    /// [`NEG_INT_TAG`] and its 8 bytes: the exporter writes the decimal
    /// ([`value_json`]), so the caller's thread does not divide by ten.
    fn push_int(&mut self, v: u64, negative: bool) {
        let tag = if negative { NEG_INT_TAG } else { INT_TAG };
        if self.heap.is_empty() && self.len + INT_LEN <= INLINE {
            let start = self.len;
            self.inline[start] = tag;
            self.inline[start + 1..start + INT_LEN].copy_from_slice(&v.to_le_bytes());
            self.len += INT_LEN;
        } else {
            self.push(&[tag]);
            self.push(&v.to_le_bytes());
        }
    }

    fn truncate(&mut self, n: usize) {
        if self.heap.is_empty() {
            self.len = self.len.min(n);
        } else {
            self.heap.truncate(n);
            if self.heap.is_empty() {
                self.len = 0;
            }
        }
    }
}

#[cfg(feature = "std")]
impl std::io::Write for Spill<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.push(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Serializes `v` as JSON onto `buf`; a value serde cannot write as JSON (a map with
/// non-string keys, say) becomes a string saying so, as [`crate::flow::to_json_value`]
/// does.
fn put_json<T: Serialize + ?Sized>(buf: &mut Spill<'_>, v: &T) {
    let mark = buf.len();
    if v.serialize(plain_json::Plain(buf)).is_ok() {
        return;
    }
    buf.truncate(mark);
    #[cfg(feature = "std")]
    let result = serde_json::to_writer(&mut *buf, v);
    #[cfg(not(feature = "std"))]
    let result = serde_json::to_vec(v).map(|bytes| buf.push(&bytes));
    if let Err(e) = result {
        buf.truncate(mark);
        let text = alloc::format!("<unserializable: {e}>");
        #[cfg(feature = "std")]
        let _ = serde_json::to_writer(&mut *buf, &text);
        #[cfg(not(feature = "std"))]
        if let Ok(bytes) = serde_json::to_vec(&text) {
            buf.push(&bytes);
        }
    }
}

/// Room for a state change's JSON outside a record, for values serialized before the
/// record is made ([`Tracked::update`](crate::tracked::Tracked::update) serializes the old
/// value before it changes it).
pub(crate) type StateBytes = [u8; INLINE];

/// What [`StateValues::finish`] leaves: where the inline bytes end, or the bytes that
/// outgrew them.
enum Finished {
    Inline([u8; 3]),
    Spilled { json: Box<[u8]>, ends: [usize; 2] },
}

impl<'a> StateValues<'a> {
    /// The values of a change of `variable`, written into `inline` while they fit; give
    /// the old value (if any), then the new.
    #[inline(always)]
    pub(crate) fn for_variable(variable: &str, inline: &'a mut StateBytes) -> Self {
        let mut values = Self::empty(inline);
        values.variable(variable);
        values
    }

    #[inline(always)]
    fn empty(inline: &'a mut StateBytes) -> Self {
        Self {
            buf: Spill {
                inline,
                len: 0,
                heap: Vec::new(),
            },
            var_end: 0,
            old_end: 0,
            has_new: false,
        }
    }

    /// Writes the variable's name as it is: the exporter quotes it (and escapes it, if it
    /// must).
    #[inline(always)]
    fn variable(&mut self, variable: &str) {
        self.buf.push(variable.as_bytes());
        self.var_end = self.buf.len();
        self.old_end = self.var_end;
    }

    /// The value before the change. Call it before [`StateValues::new_value`], at most once.
    pub fn old_value<T: Serialize + ?Sized>(&mut self, value: &T) {
        if self.has_new || self.old_end != self.var_end {
            return;
        }
        put_json(&mut self.buf, value);
        self.old_end = self.buf.len();
    }

    /// The value after the change (or the value read).
    pub fn new_value<T: Serialize + ?Sized>(&mut self, value: &T) {
        if self.has_new {
            return;
        }
        put_json(&mut self.buf, value);
        self.has_new = true;
    }

    /// Takes the old value `other` (values of the same change, made earlier) holds, as
    /// [`StateValues::old_value`] would.
    pub(crate) fn old_value_of(&mut self, other: &StateValues<'_>) {
        if self.has_new || self.old_end != self.var_end || other.old_end == other.var_end {
            return;
        }
        self.buf.push(&other.buf.bytes()[other.var_end..other.old_end]);
        self.old_end = self.buf.len();
    }

    #[inline(always)]
    fn finish(&mut self) -> Finished {
        if !self.has_new {
            self.buf.push(b"null");
            self.has_new = true;
        }
        if self.buf.heap.is_empty() {
            // Inline: every end is at most INLINE (43), so it fits a byte.
            Finished::Inline([self.var_end as u8, self.old_end as u8, self.buf.len as u8])
        } else {
            Finished::Spilled {
                json: core::mem::take(&mut self.buf.heap).into_boxed_slice(),
                ends: [self.var_end, self.old_end],
            }
        }
    }
}

impl Body {
    /// A state change of nothing yet: what a queue slot holds until it is written.
    fn empty_state() -> Self {
        Body::State {
            location: Location::caller(),
            access: AccessType::Write,
            ordering: None,
            ends: [0; 3],
            inline: [0; INLINE],
        }
    }
}

impl Default for Pending {
    fn default() -> Self {
        Record {
            timestamp: Timestamp::default(),
            base: None,
            own: 0,
            locks: None,
            body: Body::empty_state(),
        }
    }
}

impl Pending {
    /// Writes the content of a state change here, in place: the call site, and the values
    /// `make` serializes, which returns the access. (Its position in its flow is given
    /// after, by `Tracer::stamp_into`.)
    #[inline(always)]
    pub(crate) fn fill_state(
        &mut self,
        location: &'static Location<'static>,
        ordering: Option<MemoryOrdering>,
        variable: &str,
        make: impl FnOnce(&mut StateValues<'_>) -> AccessType,
    ) {
        if !matches!(self.body, Body::State { .. }) {
            self.body = Body::empty_state();
        }
        let Body::State {
            location: at,
            access: how,
            ordering: order,
            ends,
            inline,
        } = &mut self.body
        else {
            return;
        };
        // Built where it stays (a move would read back, sixteen bytes at a time, what was
        // just stored eight at a time, and stall).
        let mut values = StateValues::empty(inline);
        values.variable(variable);
        let access = make(&mut values);
        let finished = values.finish();
        match finished {
            Finished::Inline(e) => {
                *at = location;
                *how = access;
                *order = ordering;
                *ends = e;
            }
            Finished::Spilled { json, ends } => {
                self.body = Body::Boxed(Box::new(Large {
                    kind: LargeKind::State {
                        location: SourceLocation::Static {
                            file: location.file(),
                            line: location.line(),
                        },
                        access,
                        ends,
                        json,
                    },
                    duration_ns: None,
                    ordering,
                }));
            }
        }
    }
}

impl Record {
    /// The event's id.
    pub fn id(&self) -> EventId {
        self.base.info.event_id(self.own)
    }

    /// A key that sorts this record after every record that happened before it: its
    /// timestamp, then the sum of its clock. Along a flow both grow (the counter strictly);
    /// a forked flow starts at its parent's timestamp with a larger clock; a join comes
    /// later in time with the joined clock merged in.
    pub fn order(&self) -> (u64, u64) {
        (
            self.timestamp.unix_micros(),
            self.base.others.saturating_add(self.own),
        )
    }

    /// The event before it in its flow (or what caused the flow), if any.
    pub fn parent(&self) -> Option<EventId> {
        if self.own == self.base.first_own {
            self.base.first_parent
        } else {
            Some(self.base.info.event_id(self.own.wrapping_sub(1)))
        }
    }

    /// The wire name of the event's kind (`StateChange`, ...).
    pub fn kind_name(&self) -> &'static str {
        match &self.body {
            Body::State { .. } => "StateChange",
            Body::Boxed(large) => match &large.kind {
                LargeKind::State { .. } => "StateChange",
                LargeKind::Event(kind) => kind.name(),
            },
        }
    }

    fn ordering(&self) -> Option<MemoryOrdering> {
        match &self.body {
            Body::State { ordering, .. } => *ordering,
            Body::Boxed(large) => large.ordering,
        }
    }

    fn duration_ns(&self) -> Option<u64> {
        match &self.body {
            Body::State { .. } => None,
            Body::Boxed(large) => large.duration_ns,
        }
    }

    /// The flow's clock after this event, whole.
    pub fn clock(&self) -> VectorClock {
        let mut c = VectorClock::clone(&self.base.clock);
        c.set_at(usize::from(self.base.own_slot), self.own);
        c
    }

    /// A state change's parts (its JSON, where each value ends, the access, the call
    /// site), or the event kind of any other record.
    fn state(&self) -> Result<State<'_>, &EventKind> {
        match &self.body {
            Body::State {
                location,
                access,
                ends,
                inline,
                ..
            } => Ok(State {
                json: inline,
                ends: [usize::from(ends[0]), usize::from(ends[1]), usize::from(ends[2])],
                access: *access,
                location: Site::Static(location.file(), location.line()),
            }),
            Body::Boxed(large) => match &large.kind {
                LargeKind::State {
                    location,
                    access,
                    ends,
                    json,
                } => Ok(State {
                    json,
                    ends: [ends[0], ends[1], json.len()],
                    access: *access,
                    location: match location {
                        SourceLocation::Static { file, line } => Site::Static(file, *line),
                        SourceLocation::Text(t) => Site::Text(t),
                    },
                }),
                LargeKind::Event(kind) => Err(kind),
            },
        }
    }

    /// The event's kind, rebuilt as the event model has it (values parsed back from JSON).
    pub fn kind(&self) -> EventKind {
        match self.state() {
            Ok(st) => {
                let json = st.json;
                let [var_end, old_end, end] = st.ends;
                EventKind::StateChange {
                    variable: String::from_utf8_lossy(&json[..var_end]).into_owned(),
                    old_value: (old_end > var_end).then(|| {
                        serde_json::from_slice(value_json(&json[var_end..old_end], &mut [0; 21]))
                            .unwrap_or(Value::Null)
                    }),
                    new_value: serde_json::from_slice(value_json(&json[old_end..end], &mut [0; 21]))
                        .unwrap_or(Value::Null),
                    location: match st.location {
                        Site::Static(file, line) => SourceLocation::Static { file, line },
                        Site::Text(t) => SourceLocation::Text(t.into()),
                    },
                    access_type: st.access,
                }
            }
            Err(kind) => kind.clone(),
        }
    }

    /// The tags of the event: the service's, plus [`ORDERING_TAG`] for an access recorded
    /// with a memory ordering.
    fn tags(&self) -> Arc<Tags> {
        let base = &self.base.info.service.tags;
        match self.ordering() {
            None => base.clone(),
            Some(o) => {
                let mut tags = Tags::clone(base);
                tags.insert(ORDERING_TAG.into(), String::from(o.as_str()));
                Arc::new(tags)
            }
        }
    }

    /// The whole event, as the event model (and the local analyser) has it.
    pub fn to_event(&self) -> Event {
        let info = &self.base.info;
        let service = &info.service;
        Event {
            id: self.id(),
            trace_id: info.trace_id,
            parent_id: self.parent(),
            timestamp: self.timestamp,
            kind: self.kind(),
            metadata: Metadata {
                thread_id: info.thread_id.clone(),
                process_id: service.process_id,
                service_name: service.name.clone(),
                environment: service.environment.clone(),
                tags: self.tags(),
                // Left out when there is none, as the wire encoder leaves it out.
                duration_ns: self.duration_ns().map(Some),
                instance_id: Some(service.instance.clone()),
                distributed_span_id: Some(info.span_id),
                upstream_span_id: info.upstream_span_id,
            },
            causality_vector: self.clock(),
            lock_set: self
                .locks
                .as_deref()
                .map(|l| l.iter().map(|s| String::from(&**s)).collect())
                .unwrap_or_default(),
        }
    }

    /// This record with its kind replaced (the encoder's cut-down form).
    pub(crate) fn with_kind(&self, kind: EventKind) -> Record {
        Record {
            timestamp: self.timestamp,
            base: self.base.clone(),
            own: self.own,
            locks: self.locks.clone(),
            body: Body::Boxed(Box::new(Large {
                kind: LargeKind::Event(kind),
                duration_ns: self.duration_ns(),
                ordering: self.ordering(),
            })),
        }
    }

    /// Appends the event's wire JSON (one element of a body's `events`) to `out`, copying
    /// what its flow shares with other events from `scratch`.
    pub fn write_json(
        &self,
        out: &mut Vec<u8>,
        scratch: &mut RecordScratch,
    ) -> Result<(), serde_json::Error> {
        let ids = scratch.metadata(&self.base.info, self.ordering())?.ids;
        out.extend_from_slice(b"{\"id\":\"");
        ids.push_id(out, self.id());
        out.extend_from_slice(b"\",\"trace_id\":\"");
        out.extend_from_slice(&ids.trace);
        match self.parent() {
            Some(p) => {
                out.extend_from_slice(b"\",\"parent_id\":\"");
                ids.push_id(out, p);
                out.extend_from_slice(b"\",\"timestamp\":\"");
            }
            None => out.extend_from_slice(b"\",\"parent_id\":null,\"timestamp\":\""),
        }
        out.extend_from_slice(scratch.timestamp(self.timestamp));
        out.extend_from_slice(b"\",\"kind\":");
        self.write_kind(out, scratch)?;
        let meta = &scratch.metadata(&self.base.info, self.ordering())?.metadata;
        match self.duration_ns() {
            // The server takes a missing `duration_ns` as none (WIRE.md): one copy, and
            // 19 bytes an event fewer than `"duration_ns":null`.
            None => out.extend_from_slice(&meta.bytes),
            Some(d) => {
                out.extend_from_slice(&meta.bytes[..meta.split]);
                out.extend_from_slice(b",\"duration_ns\":");
                push_u64(out, d);
                out.extend_from_slice(&meta.bytes[meta.split..]);
            }
        }
        let clock = scratch.clock(&self.base.clock, self.base.own_slot)?;
        out.extend_from_slice(&clock.bytes[..clock.split]);
        if clock.split < clock.bytes.len() {
            push_u64(out, self.own);
            out.extend_from_slice(&clock.bytes[clock.split..]);
        }
        out.extend_from_slice(b",\"lock_set\":");
        match self.locks.as_deref() {
            Some(locks) if !locks.is_empty() => crate::encode::write_json(out, &**locks)?,
            _ => out.extend_from_slice(b"[]"),
        }
        out.push(b'}');
        Ok(())
    }

    fn write_kind(&self, out: &mut Vec<u8>, scratch: &mut RecordScratch) -> Result<(), serde_json::Error> {
        let st = match self.state() {
            Ok(st) => st,
            Err(kind) => return crate::encode::write_json(out, kind),
        };
        let (json, [var_end, old_end, end]) = (st.json, st.ends);
        out.extend_from_slice(b"{\"StateChange\":{\"variable\":");
        let name = &json[..var_end];
        if plain_json::is_plain(name) {
            out.push(b'"');
            out.extend_from_slice(name);
            out.push(b'"');
        } else {
            crate::encode::write_json(out, &*String::from_utf8_lossy(name))?;
        }
        out.extend_from_slice(b",\"old_value\":");
        let mut text = [0; 21];
        if old_end > var_end {
            out.extend_from_slice(value_json(&json[var_end..old_end], &mut text));
        } else {
            out.extend_from_slice(b"null");
        }
        out.extend_from_slice(b",\"new_value\":");
        out.extend_from_slice(value_json(&json[old_end..end], &mut text));
        out.extend_from_slice(b",\"location\":");
        match st.location {
            Site::Text(t) => crate::encode::write_json(out, t)?,
            Site::Static(file, line) => {
                // `"file:line"`: the file (escaped by serde_json if it needs it), then the
                // line inside the quotes.
                if scratch.is_plain_file(file) {
                    out.push(b'"');
                    out.extend_from_slice(file.as_bytes());
                } else {
                    crate::encode::write_json(out, file)?;
                    out.pop();
                }
                out.push(b':');
                push_u64(out, u64::from(line));
                out.push(b'"');
            }
        }
        out.extend_from_slice(b",\"access_type\":\"");
        out.extend_from_slice(st.access.as_str().as_bytes());
        out.extend_from_slice(b"\"}}");
        Ok(())
    }
}

/// A state change's parts, wherever the record keeps them.
struct State<'a> {
    json: &'a [u8],
    /// Ends of the variable's JSON, of the old value's (equal: none) and of the new value's.
    ends: [usize; 3],
    access: AccessType,
    location: Site<'a>,
}

/// A call site: `#[track_caller]`'s, or a text.
enum Site<'a> {
    Static(&'static str, u32),
    Text(&'a str),
}

/// `v` in decimal, written at the end of `buf`.
fn decimal(mut v: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    &buf[i..]
}

/// Appends `v` in decimal.
fn push_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(decimal(v, &mut [0; 20]));
}

/// The text of a flow's trace id, and the head its event ids share: a flow's event ids
/// are its seed with the flow's counter mixed into the low 64 bits (see
/// [`FlowInfo::event_id`]), so their first 19 characters are the same.
#[derive(Debug, Clone, Copy)]
struct FlowIds {
    trace: [u8; 36],
    high: u64,
    head: [u8; 19],
}

impl FlowIds {
    fn of(info: &FlowInfo) -> Self {
        let high = (info.seed >> 64) as u64;
        Self {
            trace: uuid_ascii(info.trace_id.as_u128()),
            high,
            head: uuid_head(high),
        }
    }

    /// Appends `id`'s text: from the flow's head when it is one of the flow's ids (a
    /// parent from another flow, after a fork or a join, is not).
    #[inline]
    fn push_id(&self, out: &mut Vec<u8>, id: EventId) {
        let v = id.as_u128();
        if (v >> 64) as u64 == self.high {
            push_uuid_with_head(out, &self.head, v as u64);
        } else {
            push_uuid(out, v);
        }
    }
}

/// What the encoder keeps of a flow: its `metadata` object and its ids' text.
#[derive(Debug)]
struct Meta {
    metadata: Split,
    ids: FlowIds,
}

/// Bytes split where a per-event value goes.
#[derive(Debug)]
struct Split {
    bytes: Vec<u8>,
    split: usize,
}

/// Entries each cache of [`RecordScratch`] keeps (flows recording at once, about).
const CACHED: usize = 64;

/// The encoder's cache of what flows share: each flow's `metadata` object (split where a
/// `duration_ns` goes, when there is one) and ids' text, and each clock base's
/// `causality_vector` (split where the flow's own counter goes), keyed by the `Arc` the
/// records share. Holding the `Arc` keeps the key
/// from being reused while it is cached.
#[derive(Debug, Default)]
pub struct RecordScratch {
    /// The last timestamp written, whole to the second: events come in time order, so the
    /// date and time of day rarely change from one to the next.
    second: Option<(u64, [u8; 27])>,
    /// The call site file last found to need no escaping: a caller's records mostly come
    /// from a few sites, so its bytes are not looked at again for each record.
    plain_file: Option<&'static str>,
    infos: Vec<(Arc<FlowInfo>, Option<MemoryOrdering>, Meta)>,
    clocks: Vec<(Arc<VectorClock>, u8, Split)>,
    next_info: usize,
    next_clock: usize,
    /// The entry each cache gave last: looked at first (a flow's records come in runs).
    last_info: usize,
    last_clock: usize,
}

fn cached<'a, K, F, V>(
    entries: &'a mut Vec<(Arc<K>, F, V)>,
    (next, last): (&mut usize, &mut usize),
    key: &Arc<K>,
    extra: F,
    build: impl FnOnce() -> Result<V, serde_json::Error>,
) -> Result<&'a V, serde_json::Error>
where
    F: PartialEq + Copy,
{
    let hit = |(k, e, _): &(Arc<K>, F, V)| Arc::ptr_eq(k, key) && *e == extra;
    if entries.get(*last).is_some_and(hit) {
        return Ok(&entries[*last].2);
    }
    if let Some(i) = entries.iter().position(hit) {
        *last = i;
        return Ok(&entries[i].2);
    }
    let split = build()?;
    let i = if entries.len() < CACHED {
        entries.push((key.clone(), extra, split));
        entries.len() - 1
    } else {
        let i = *next % CACHED;
        *next = next.wrapping_add(1);
        entries[i] = (key.clone(), extra, split);
        i
    };
    *last = i;
    Ok(&entries[i].2)
}

impl RecordScratch {
    fn timestamp(&mut self, t: Timestamp) -> &[u8; 27] {
        let micros = t.unix_micros();
        let (secs, frac) = (micros / 1_000_000, micros % 1_000_000);
        let hit = matches!(&self.second, Some((s, _)) if *s == secs && secs < 253_402_300_800);
        if !hit {
            self.second = Some((secs, t.rfc3339_ascii()));
        }
        let text = &mut self.second.get_or_insert_with(|| (secs, t.rfc3339_ascii())).1;
        if hit {
            // `.ffffff` after `YYYY-MM-DDTHH:MM:SS`.
            let mut v = frac;
            for b in text[20..26].iter_mut().rev() {
                *b = b'0' + (v % 10) as u8;
                v /= 10;
            }
        }
        text
    }

    /// True when `file` (a `#[track_caller]` location's) goes into JSON as it is.
    fn is_plain_file(&mut self, file: &'static str) -> bool {
        if self.plain_file.is_some_and(|f| core::ptr::eq(f, file)) {
            return true;
        }
        let plain = plain_json::is_plain(file.as_bytes());
        if plain {
            self.plain_file = Some(file);
        }
        plain
    }

    fn metadata(
        &mut self,
        info: &Arc<FlowInfo>,
        ordering: Option<MemoryOrdering>,
    ) -> Result<&Meta, serde_json::Error> {
        cached(
            &mut self.infos,
            (&mut self.next_info, &mut self.last_info),
            info,
            ordering,
            || {
                let s = &info.service;
                let mut bytes = Vec::with_capacity(256);
                bytes.extend_from_slice(b",\"metadata\":{\"thread_id\":");
                crate::encode::write_json(&mut bytes, &*info.thread_id)?;
                bytes.extend_from_slice(b",\"process_id\":");
                push_u64(&mut bytes, u64::from(s.process_id));
                bytes.extend_from_slice(b",\"service_name\":");
                crate::encode::write_json(&mut bytes, &*s.name)?;
                bytes.extend_from_slice(b",\"environment\":");
                crate::encode::write_json(&mut bytes, &*s.environment)?;
                bytes.extend_from_slice(b",\"tags\":");
                match ordering {
                    None => crate::encode::write_json(&mut bytes, &*s.tags)?,
                    Some(o) => {
                        let mut tags = Tags::clone(&s.tags);
                        tags.insert(ORDERING_TAG.into(), String::from(o.as_str()));
                        crate::encode::write_json(&mut bytes, &tags)?;
                    }
                }
                let split = bytes.len();
                bytes.extend_from_slice(b",\"instance_id\":");
                crate::encode::write_json(&mut bytes, &*s.instance)?;
                bytes.extend_from_slice(b",\"distributed_span_id\":");
                crate::encode::write_json(&mut bytes, &info.span_id)?;
                if let Some(up) = info.upstream_span_id {
                    bytes.extend_from_slice(b",\"upstream_span_id\":");
                    crate::encode::write_json(&mut bytes, &up)?;
                }
                bytes.push(b'}');
                Ok(Meta {
                    metadata: Split { bytes, split },
                    ids: FlowIds::of(info),
                })
            },
        )
    }

    fn clock(&mut self, base: &Arc<VectorClock>, own_slot: u8) -> Result<&Split, serde_json::Error> {
        cached(
            &mut self.clocks,
            (&mut self.next_clock, &mut self.last_clock),
            base,
            own_slot,
            || {
                let mut bytes = Vec::with_capacity(16 + 40 * base.len());
                bytes.extend_from_slice(b",\"causality_vector\":[");
                let mut split = None;
                for (i, (k, v)) in base.entries().iter().enumerate() {
                    if i > 0 {
                        bytes.push(b',');
                    }
                    bytes.push(b'[');
                    crate::encode::write_json(&mut bytes, &**k)?;
                    bytes.push(b',');
                    if i == usize::from(own_slot) {
                        split = Some(bytes.len());
                    } else {
                        push_u64(&mut bytes, *v);
                    }
                    bytes.push(b']');
                }
                bytes.push(b']');
                // Every record's base holds its own slot (the tracer makes them so); were one
                // not to, the clock is written as the base has it.
                let split = split.unwrap_or(bytes.len());
                Ok(Split { bytes, split })
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_is_at_most_96_bytes() {
        assert!(
            core::mem::size_of::<Record>() <= 96,
            "{}",
            core::mem::size_of::<Record>()
        );
    }
}

#[cfg(all(test, feature = "std"))]
mod queue_tests {
    use super::*;
    use crate::export::{Pipe, PushOutcome};
    use crate::flow::{Flow, Tracer};
    use crate::ids::SeededIds;
    use std::collections::HashMap;

    fn tracer() -> Tracer {
        Tracer::new(
            Service::new("svc", "i-1", "test", "m", 1),
            Arc::new(SeededIds::new(11)),
            Arc::new(crate::system::SystemClock::new()),
        )
    }

    fn change(t: &Tracer, flow: &mut Flow, i: u64) -> Record {
        t.stamp_state(flow, "v", AccessType::Write, Location::caller(), None, |v| {
            v.new_value(&i)
        })
    }

    /// Each record leaves its base out when the record before it in its flow's lane had the
    /// same one. Through bases changed by forks and joins, lanes replaced at joins, records
    /// of many flows interleaved, and drains of every size, every record comes out as it
    /// went in.
    #[test]
    fn records_that_left_their_base_to_the_record_before_come_out_whole() {
        let t = tracer();
        let mut flows: Vec<Flow> = (0..20).map(|_| t.new_trace()).collect();
        let pipe: Pipe<Pending> = Pipe::new(100_000, 64);
        let mut expected = HashMap::new();
        let push = |r: Record, flow: &mut Flow, expected: &mut HashMap<EventId, String>| {
            expected.insert(r.id(), serde_json::to_string(&r.to_event()).unwrap());
            let (p, base) = r.into_pending();
            assert!(matches!(
                pipe.push(p, &base, flow.lane().get_mut()),
                PushOutcome::Accepted { .. }
            ));
        };
        let mut out = Vec::new();
        let mut got = 0;
        for i in 0..3_000u64 {
            let f = (i * 7 % 20) as usize;
            if i % 97 == 0 {
                // A fork and a join: new bases for the parent.
                let (mut child, spawn) = t.fork(&mut flows[f], "spawn");
                push(spawn, &mut flows[f], &mut expected);
                let r = change(&t, &mut child, i);
                push(r, &mut child, &mut expected);
                let join = t.join(&mut flows[f], &child.end(), "join");
                push(join, &mut flows[f], &mut expected);
            }
            let r = change(&t, &mut flows[f], i);
            push(r, &mut flows[f], &mut expected);
            if i % 13 == 0 {
                out.clear();
                pipe.drain((i % 50) as usize + 1, &mut out);
                for r in &out {
                    let want = expected.remove(&r.id()).expect("a record that was pushed, once");
                    assert_eq!(serde_json::to_string(&r.to_event()).unwrap(), want);
                    got += 1;
                }
            }
        }
        out.clear();
        pipe.drain(usize::MAX, &mut out);
        for r in &out {
            let want = expected.remove(&r.id()).expect("a record that was pushed, once");
            assert_eq!(serde_json::to_string(&r.to_event()).unwrap(), want);
            got += 1;
        }
        assert!(expected.is_empty(), "{} records lost", expected.len());
        assert!(got > 3_000);
        assert_eq!(pipe.stats().dropped_queue_full, 0);
    }
}

//! Flows: one logical thread of execution each, with its own `thread_id` and clock component.
//!
//! # Why flows, and why this design finds the races the program has
//!
//! The server (WIRE.md, rules 1-6) orders two events by their vector clocks, and treats
//! two events with different `thread_id`s as candidates for a race. The published `raceway`
//! 0.1 crate used the OS thread id as `thread_id` and one `service#instance` component for
//! every request: two requests on one worker thread looked like one thread (missed races),
//! one request hopping threads looked like two (false races), and the shared component made
//! unrelated requests look ordered. Here every logical flow (a request's task, a spawned
//! task, a thread) is a [`Flow`] with:
//!
//! - its own `thread_id`, `service#instance#flow-N`, which is also its clock component;
//! - a vector clock that counts the flow's own events in that component and carries the
//!   components of every flow that causally precedes it.
//!
//! Causality moves between flows in exactly four ways, and each is an operation here:
//!
//! | operation | what happens |
//! |---|---|
//! | [`Tracer::fork`] (spawn) | the parent records `AsyncSpawn` (its component goes up), the child starts with the parent's clock plus its own component, and its first event's `parent_id` is the spawn event |
//! | [`Tracer::join`] | the parent merges the child's final clock and records `AsyncAwait` with `parent_id` = the child's last event |
//! | [`Tracer::propagate`] (outgoing call) | the caller's component goes up, and the headers carry the clock, a child span id and the caller's last event id |
//! | [`Tracer::merge_response`] (call returned) | the caller merges the callee's clock from the response's `raceway-clock`; its next event's `parent_id` is the callee's last event |
//!
//! Every transfer first increments the sender's own component. That is what makes the
//! server's comparison (rule 3: "every component `<=` and at least one strictly smaller",
//! with a missing component meaning *not before*) agree with the textbook one: the
//! receiver's clock always holds a strictly larger value of the sender's component than
//! any event the sender recorded before the transfer. Events of flows that no transfer
//! connects keep components the other lacks, and so are concurrent, as they should be.
//!
//! The `service#instance` component that the server overwrites with its own ingestion
//! counter (rule 1) is never sent: its value would be meaningless downstream and WIRE.md
//! measured that made-up values there produce false races. `parent_id` links across calls
//! and joins give the server's ancestry test (rule 5) the path it needs.
//!
//! Timestamps never go backwards within a flow (rule 4): each event takes the later of the
//! wall clock and the flow's previous timestamp, and a forked flow starts from its parent's.

use alloc::borrow::Cow;
use alloc::format;
use alloc::string::String;
use alloc::sync::Arc;
use core::sync::atomic::{AtomicUsize, Ordering};

use serde_json::Value;

use crate::clock::{Component, VectorClock};
use crate::event::{AccessType, Event, EventKind, MemoryOrdering, SourceLocation, Tags};
use crate::headers::{ClockHeader, Propagation, RemoteContext, TraceState};
use crate::ids::{EventId, IdGenerator, SpanId, TraceId};
use crate::record::{Body, FlowInfo, Large, LargeKind, LockSet, Pending, Record, RecordBase, StateValues};
use crate::sampling::Sampler;
use crate::time::{Timestamp, WallClock};

/// Who is recording: the service identity stamped on every event.
#[derive(Debug)]
pub struct Service {
    /// Service name.
    pub name: Arc<str>,
    /// Instance id (defaults to `hostname-pid` in the adapters).
    pub instance: Arc<str>,
    /// Environment.
    pub environment: Arc<str>,
    /// Module name used for function-call events.
    pub module: Arc<str>,
    /// OS process id.
    pub process_id: u32,
    /// Tags on every event.
    pub tags: Arc<Tags>,
    prefix: Arc<str>,
}

/// Flow numbers are unique in the process, whichever client or context made the flow.
static NEXT_FLOW: AtomicUsize = AtomicUsize::new(1);

fn thread_id_for(prefix: &str) -> Component {
    let n = NEXT_FLOW.fetch_add(1, Ordering::Relaxed);
    Arc::from(format!("{prefix}#flow-{n}").as_str())
}

impl Service {
    /// A service identity. `tags` gets `sdk_language=rust`.
    pub fn new(name: &str, instance: &str, environment: &str, module: &str, process_id: u32) -> Self {
        let mut tags = Tags::new();
        tags.insert("sdk_language".into(), "rust".into());
        Self {
            name: name.into(),
            instance: instance.into(),
            environment: environment.into(),
            module: module.into(),
            process_id,
            tags: Arc::new(tags),
            prefix: Arc::from(format!("{name}#{instance}").as_str()),
        }
    }

    fn next_thread_id(&self) -> Component {
        thread_id_for(&self.prefix)
    }
}

/// One logical thread of execution: its trace, identity, clock and position.
///
/// A clone is the same position, not the same flow: its records get ids of their own
/// (made from a new seed), so that two clones recording cannot make one id twice.
#[derive(Debug)]
pub struct Flow {
    prefix: Arc<str>,
    trace_id: TraceId,
    thread_id: Component,
    /// The clock base, shared with the records made since it was last rebuilt: the value
    /// of this flow's own component (at `own_slot`) is `own`, not the base's. Recording
    /// moves only `own`; fork, join, propagate and merge rebuild the base.
    clock: Arc<VectorClock>,
    own_slot: usize,
    own: u64,
    span_id: SpanId,
    upstream_span_id: Option<SpanId>,
    last_event: Option<EventId>,
    last_timestamp: Timestamp,
    tracestate: Option<Arc<str>>,
    locks: Option<LockSet>,
    task_id: Option<EventId>,
    distributed: bool,
    /// Recorded (see [`crate::sampling`]); an unsampled flow records nothing.
    sampled: bool,
    /// What this flow's records share, built by the first record (and again when another
    /// client's tracer records in this flow).
    info: Option<Arc<FlowInfo>>,
    /// `info` and the clock base as the records take them; dropped when either changes,
    /// and whenever the own counter or the last event moves other than by a record.
    record_base: Option<Arc<RecordBase>>,
    /// The lane of the export queue this flow's records go into: opened by its first
    /// record, and dropped when it learns of another flow's records (a join or a merge),
    /// so that what it records next is queued after them (see `export/pipe.rs`).
    lane: FlowLane,
}

/// A flow's lane of the export queue (std's client queues records; without std nothing
/// queues them).
#[cfg(feature = "std")]
pub(crate) type FlowLane = sync_wrapper::SyncWrapper<crate::export::LaneSlot<Pending>>;
#[cfg(not(feature = "std"))]
pub(crate) type FlowLane = ();

impl Clone for Flow {
    fn clone(&self) -> Self {
        Flow {
            prefix: self.prefix.clone(),
            trace_id: self.trace_id,
            thread_id: self.thread_id.clone(),
            clock: self.clock.clone(),
            own_slot: self.own_slot,
            own: self.own,
            span_id: self.span_id,
            upstream_span_id: self.upstream_span_id,
            last_event: self.last_event,
            last_timestamp: self.last_timestamp,
            tracestate: self.tracestate.clone(),
            locks: self.locks.clone(),
            task_id: self.task_id,
            distributed: self.distributed,
            sampled: self.sampled,
            // A seed of its own (see the type's docs).
            info: None,
            record_base: None,
            lane: FlowLane::default(),
        }
    }
}

impl Flow {
    /// True when this flow's trace is recorded ([`crate::sampling`]).
    pub fn is_sampled(&self) -> bool {
        self.sampled
    }

    /// The trace.
    pub fn trace_id(&self) -> TraceId {
        self.trace_id
    }
    /// The flow's `thread_id` (also its clock component).
    pub fn thread_id(&self) -> &str {
        &self.thread_id
    }
    /// The clock after the flow's last event.
    pub fn clock(&self) -> VectorClock {
        let mut c = VectorClock::clone(&self.clock);
        c.set_at(self.own_slot, self.own);
        c
    }

    /// Replaces the clock with `clock` plus this flow's own component (at 0 when missing).
    fn set_clock(&mut self, mut clock: VectorClock) {
        self.own = clock.ensure(&self.thread_id, 0);
        self.own_slot = clock.slot_of(&self.thread_id).unwrap_or(0);
        self.clock = Arc::new(clock);
        self.record_base = None;
    }

    /// Rebuilds the clock base with `f` (copying it when records still share it), then
    /// makes sure it holds this flow's own component.
    fn update_clock<R>(&mut self, f: impl FnOnce(&mut VectorClock, &Component) -> R) -> R {
        self.record_base = None;
        self.learn();
        let c = Arc::make_mut(&mut self.clock);
        c.set_at(self.own_slot, self.own);
        let r = f(c, &self.thread_id);
        self.own = c.ensure(&self.thread_id, 0);
        self.own_slot = c.slot_of(&self.thread_id).unwrap_or(0);
        r
    }

    /// Moves this flow's own component on by one for an event.
    fn tick(&mut self) -> u64 {
        self.own = self.own.saturating_add(1);
        self.own
    }

    /// Moves this flow's own component on by one for a transfer of causality (no event):
    /// the next record is not the counter after the last record's, so it takes a new base.
    fn tick_without_event(&mut self) {
        self.own = self.own.saturating_add(1);
        self.record_base = None;
    }

    /// Sets the event the next one follows (another flow's, or a callee's).
    fn follow(&mut self, event: EventId) {
        self.last_event = Some(event);
        self.record_base = None;
        self.learn();
    }

    /// This flow learns of another flow's events (it merges a clock, or follows an event):
    /// its lane is dropped, so its next records are queued in a lane opened after those
    /// events were (see `export/pipe.rs`).
    fn learn(&mut self) {
        self.lane = FlowLane::default();
    }

    /// The flow's lane of the export queue.
    pub(crate) fn lane(&mut self) -> &mut FlowLane {
        &mut self.lane
    }

    /// Gives back the place of the flow's last event, own counter `own`, whose parent was
    /// `parent`: it was not queued, and nothing refers to it. The next event takes that
    /// counter and that parent (the clock base stays: its records still follow one another).
    pub(crate) fn give_back(&mut self, own: u64, parent: Option<EventId>) {
        if self.own == own && own > 0 {
            self.own = own - 1;
            self.last_event = parent;
        }
    }

    /// Runs `f` with the flow's lane taken out of it (to push into the lane a record that
    /// `f` stamps with the flow), then puts the lane back. `f` must not make the flow learn
    /// of another's records (that drops the lane, and the lane put back would undo it).
    #[inline(always)]
    pub(crate) fn with_lane_out<R>(&mut self, f: impl FnOnce(&mut Flow, &mut FlowLane) -> R) -> R {
        let mut lane = core::mem::take(&mut self.lane);
        let r = f(self, &mut lane);
        self.lane = lane;
        r
    }

    /// What the record with own counter `own` (just ticked) shares with this flow's other
    /// records, for `service`'s tracer, whose `ids` seed a new flow identity; that record
    /// becomes the flow's last event.
    #[inline(always)]
    fn next_record_base(
        &mut self,
        service: &Arc<Service>,
        ids: &dyn IdGenerator,
        own: u64,
    ) -> &Arc<RecordBase> {
        // The base's identity is `self.info` (the two are cleared together): read from the
        // flow, not from the base, whose reference count the exporter's thread changes for
        // every record it takes (a cache miss here for every record, otherwise).
        let same = matches!(&self.info, Some(i) if Arc::ptr_eq(&i.service, service));
        let base = match self.record_base.take() {
            Some(b) if same => b,
            _ => self.new_record_base(service, ids, own),
        };
        self.last_event = self.info.as_ref().map(|i| i.event_id(own));
        self.record_base.insert(base)
    }

    #[cold]
    fn new_record_base(
        &mut self,
        service: &Arc<Service>,
        ids: &dyn IdGenerator,
        own: u64,
    ) -> Arc<RecordBase> {
        let info = match &self.info {
            Some(i) if Arc::ptr_eq(&i.service, service) => i.clone(),
            _ => {
                let i = Arc::new(FlowInfo {
                    service: service.clone(),
                    trace_id: self.trace_id,
                    thread_id: self.thread_id.clone(),
                    span_id: self.span_id,
                    upstream_span_id: self.upstream_span_id,
                    seed: ids.event_id().as_u128(),
                });
                self.info = Some(i.clone());
                i
            }
        };
        Arc::new(RecordBase::new(
            info,
            self.clock.clone(),
            u8::try_from(self.own_slot).unwrap_or(u8::MAX),
            own,
            self.last_event,
        ))
    }

    /// The flow's span id.
    pub fn span_id(&self) -> SpanId {
        self.span_id
    }
    /// The caller's span id, for a flow continued from headers.
    pub fn upstream_span_id(&self) -> Option<SpanId> {
        self.upstream_span_id
    }
    /// The id the next event will have as `parent_id`.
    pub fn last_event(&self) -> Option<EventId> {
        self.last_event
    }
    /// The forwarded `tracestate`, if any.
    pub fn tracestate(&self) -> Option<&str> {
        self.tracestate.as_deref()
    }
    /// Locks this flow holds now (by the tracked acquire/release events).
    pub fn held_locks(&self) -> &[Arc<str>] {
        self.locks.as_deref().map_or(&[], |l| l.as_slice())
    }
    /// True when the flow continues a trace received from another service.
    pub fn is_distributed(&self) -> bool {
        self.distributed
    }
    /// Forks a new flow without recording a spawn event, for contexts that are copied
    /// where no tracer is at hand (cloning a task-local context into a worker).
    ///
    /// The copy gets its own `thread_id` and a clock holding this flow's component one
    /// above its current value: every event this flow recorded so far is before the copy's
    /// events, and this flow's later events are concurrent with them (under the server's
    /// rule 3, an equal value with no strictly smaller component is not "before").
    pub fn fork_detached(&self) -> Flow {
        let mut child = self.clone();
        child.thread_id = thread_id_for(&self.prefix);
        child.locks = None;
        child.task_id = None;
        child.info = None;
        child.record_base = None;
        let mut clock = self.clock();
        clock.set_at(self.own_slot, self.own.saturating_add(1));
        child.set_clock(clock);
        child
    }

    /// A root flow of trace `trace_id` for `service#instance`, made without a tracer.
    pub fn detached_root(trace_id: TraceId, span_id: SpanId, service: &str, instance: &str) -> Flow {
        let prefix: Arc<str> = Arc::from(format!("{service}#{instance}").as_str());
        let thread_id = thread_id_for(&prefix);
        Flow::starting(prefix, trace_id, thread_id, span_id)
    }

    fn starting(prefix: Arc<str>, trace_id: TraceId, thread_id: Component, span_id: SpanId) -> Flow {
        let mut f = Flow {
            prefix,
            trace_id,
            thread_id,
            clock: Arc::new(VectorClock::new()),
            own_slot: 0,
            own: 0,
            span_id,
            upstream_span_id: None,
            last_event: None,
            last_timestamp: Timestamp::default(),
            tracestate: None,
            locks: None,
            task_id: None,
            distributed: false,
            sampled: true,
            info: None,
            record_base: None,
            lane: FlowLane::default(),
        };
        f.set_clock(VectorClock::new());
        f
    }

    /// What a joiner needs of a finished flow.
    pub fn end(&self) -> FlowEnd {
        FlowEnd {
            clock: self.clock(),
            last_event: self.last_event,
            task_id: self.task_id,
            trace_id: self.trace_id,
        }
    }
}

/// A finished (or finishing) flow, as [`Tracer::join`] takes it.
#[derive(Debug, Clone)]
pub struct FlowEnd {
    clock: VectorClock,
    last_event: Option<EventId>,
    task_id: Option<EventId>,
    trace_id: TraceId,
}

/// Builds flows and events. Holds the service identity and the id and time sources; owns
/// no I/O. Adapters keep one per client and call it with the current flow.
pub struct Tracer {
    service: Arc<Service>,
    ids: Arc<dyn IdGenerator>,
    wall: Arc<dyn WallClock>,
    sampler: Sampler,
}

impl core::fmt::Debug for Tracer {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Tracer")
            .field("service", &self.service)
            .field("sampler", &self.sampler)
            .finish_non_exhaustive()
    }
}

impl Tracer {
    /// A tracer for `service`, with ids from `ids` and timestamps from `wall`.
    pub fn new(service: Service, ids: Arc<dyn IdGenerator>, wall: Arc<dyn WallClock>) -> Self {
        Self {
            service: Arc::new(service),
            ids,
            wall,
            sampler: Sampler::default(),
        }
    }

    /// This tracer, deciding with `sampler` which traces are recorded (default:
    /// [`Sampler::default`], parent-based, always on).
    pub fn with_sampler(mut self, sampler: Sampler) -> Self {
        self.sampler = sampler;
        self
    }

    /// The sampler in use.
    pub fn sampler(&self) -> &Sampler {
        &self.sampler
    }

    /// The service identity.
    pub fn service(&self) -> &Service {
        &self.service
    }

    /// The id source.
    pub fn ids(&self) -> &dyn IdGenerator {
        &*self.ids
    }

    fn flow(&self, trace_id: TraceId, span_id: SpanId) -> Flow {
        Flow::starting(
            self.service.prefix.clone(),
            trace_id,
            self.service.next_thread_id(),
            span_id,
        )
    }

    /// A root flow of a new trace, recorded when the sampler says so.
    pub fn new_trace(&self) -> Flow {
        let mut f = self.flow(self.ids.trace_id(), self.ids.span_id());
        f.sampled = self.sampler.sample_root(f.trace_id);
        f
    }

    /// A flow that continues a trace received in request headers.
    ///
    /// The trace id is adopted, the received span id becomes this flow's span, the sender's
    /// span becomes the upstream span, the received clock is kept and this flow's component
    /// is added at 0. The first event's `parent_id` is the sender's last event, when the
    /// sender said which it was.
    pub fn continue_trace(&self, remote: &RemoteContext) -> Flow {
        let mut f = self.flow(remote.trace_id, remote.span_id);
        f.upstream_span_id = remote.parent_span_id;
        f.set_clock(remote.clock.clone());
        f.last_event = remote.event_id;
        f.tracestate = remote
            .tracestate
            .as_ref()
            .map(|t| Arc::from(alloc::string::ToString::to_string(t).as_str()));
        f.distributed = true;
        f.sampled = self.sampler.sample(remote.sampled, remote.trace_id);
        f
    }

    /// Records one event in `flow`: increments the flow's component, stamps ids, time and
    /// metadata, and moves the flow's position to the new event. The event model's form of
    /// [`Tracer::stamp`].
    pub fn record(&self, flow: &mut Flow, kind: EventKind, duration_ns: Option<u64>) -> Event {
        self.stamp(flow, kind, duration_ns).to_event()
    }

    /// Records one event of any kind in `flow`, as the compact [`Record`] the export queue
    /// holds.
    pub fn stamp(&self, flow: &mut Flow, kind: EventKind, duration_ns: Option<u64>) -> Record {
        match &kind {
            EventKind::LockAcquire { lock_id, .. } => {
                let mut held = flow.held_locks().to_vec();
                held.push(lock_id.clone());
                flow.locks = Some(Arc::new(held));
            }
            EventKind::LockRelease { lock_id, .. } => {
                let held = flow.held_locks();
                if let Some(i) = held.iter().rposition(|l| l == lock_id) {
                    let mut held = held.to_vec();
                    held.remove(i);
                    flow.locks = (!held.is_empty()).then(|| Arc::new(held));
                }
            }
            _ => {}
        }
        let body = Body::Boxed(alloc::boxed::Box::new(Large {
            kind: LargeKind::Event(kind),
            duration_ns,
            ordering: None,
        }));
        self.stamp_body(flow, body)
    }

    /// Records a state change of `variable` in `flow`: the values `values` serializes
    /// (once), the call site from `#[track_caller]`, and the memory ordering of an atomic
    /// access (in the [`ORDERING_TAG`](crate::record::ORDERING_TAG) tag).
    pub fn stamp_state(
        &self,
        flow: &mut Flow,
        variable: &str,
        access: AccessType,
        location: &'static core::panic::Location<'static>,
        ordering: Option<MemoryOrdering>,
        values: impl FnOnce(&mut StateValues<'_>),
    ) -> Record {
        let mut pending = Pending::default();
        pending.fill_state(location, ordering, variable, |v| {
            values(v);
            access
        });
        let base = self.stamp_into(flow, &mut pending).clone();
        pending.whole(base)
    }

    /// Gives `pending` the next position of `flow` (its counter ticked, a timestamp, the
    /// locks held) and returns the base it shares (the flow's, by reference: no reference
    /// count is taken here). Called once the record's content is written: a record that is
    /// never queued (the queue is full, or a value's `Serialize` panicked) takes no
    /// position, so the next record's parent is the last one queued.
    #[inline(always)]
    pub(crate) fn stamp_into<'f>(&self, flow: &'f mut Flow, pending: &mut Pending) -> &'f Arc<RecordBase> {
        let own = flow.tick();
        let timestamp = self.wall.now().max(flow.last_timestamp);
        flow.last_timestamp = timestamp;
        pending.timestamp = timestamp;
        pending.own = own;
        pending.locks = flow.locks.clone();
        flow.next_record_base(&self.service, &*self.ids, own)
    }

    fn stamp_body(&self, flow: &mut Flow, body: Body) -> Record {
        let mut pending = Pending {
            body,
            ..Pending::default()
        };
        let base = self.stamp_into(flow, &mut pending).clone();
        pending.whole(base)
    }

    /// Forks a child flow (a spawned task or thread). Returns the child and the parent's
    /// `AsyncSpawn` event, which the caller must emit.
    pub fn fork(&self, parent: &mut Flow, spawned_by: &str) -> (Flow, Record) {
        let task_id = self.ids.event_id();
        let spawn = self.stamp(
            parent,
            EventKind::AsyncSpawn {
                task_id,
                spawned_by: spawned_by.into(),
            },
            None,
        );
        let mut child = self.flow(parent.trace_id, parent.span_id);
        child.upstream_span_id = parent.upstream_span_id;
        child.set_clock(parent.clock());
        child.follow(spawn.id());
        child.last_timestamp = parent.last_timestamp;
        child.tracestate = parent.tracestate.clone();
        child.task_id = Some(task_id);
        child.distributed = parent.distributed;
        child.sampled = parent.sampled;
        (child, spawn)
    }

    /// Joins a finished child into `parent`: everything the child did happens before what
    /// the parent does next. Returns the parent's `AsyncAwait` event, which the caller must
    /// emit.
    pub fn join(&self, parent: &mut Flow, child: &FlowEnd, awaited_at: &str) -> Record {
        parent.update_clock(|c, own| c.merge(&child.clock, own));
        if child.trace_id == parent.trace_id {
            if let Some(last) = child.last_event {
                parent.follow(last);
            }
        }
        let future_id = child.task_id.unwrap_or_else(|| self.ids.event_id());
        self.stamp(
            parent,
            EventKind::AsyncAwait {
                future_id,
                awaited_at: awaited_at.into(),
            },
            None,
        )
    }

    /// Headers for an outgoing call: increments the flow's component and makes a child
    /// span. The callee continues the trace from them.
    pub fn propagate(&self, flow: &mut Flow) -> Propagation {
        flow.tick_without_event();
        let child = self.ids.span_id();
        if !flow.sampled {
            return Propagation::unsampled(flow.trace_id, child, flow.tracestate.as_deref());
        }
        self.headers_for(flow, child, Some(flow.span_id))
    }

    /// The `raceway-clock` a service answers a propagated call with: this flow's clock
    /// (its component incremented) and last event, so the caller can merge them back.
    pub fn response_clock(&self, flow: &mut Flow) -> ClockHeader {
        flow.tick_without_event();
        ClockHeader {
            trace_id: flow.trace_id,
            span_id: flow.span_id,
            parent_span_id: flow.upstream_span_id,
            service: String::from(&*self.service.name),
            instance: String::from(&*self.service.instance),
            clock: flow.clock(),
            event_id: flow.last_event,
        }
    }

    /// Merges a callee's response `raceway-clock` into `flow`. Ignored (returns false) when
    /// it belongs to another trace.
    pub fn merge_response(&self, flow: &mut Flow, response: &ClockHeader) -> bool {
        if response.trace_id != flow.trace_id {
            return false;
        }
        flow.update_clock(|c, own| c.merge(&response.clock, own));
        if let Some(ev) = response.event_id {
            flow.follow(ev);
        }
        true
    }

    fn headers_for(&self, flow: &Flow, span: SpanId, parent_span: Option<SpanId>) -> Propagation {
        let clock = ClockHeader {
            trace_id: flow.trace_id,
            span_id: span,
            parent_span_id: parent_span,
            service: String::from(&*self.service.name),
            instance: String::from(&*self.service.instance),
            clock: flow.clock(),
            event_id: flow.last_event,
        };
        Propagation::new(
            &clock,
            flow.tracestate
                .as_deref()
                .and_then(|t| t.parse::<TraceState>().ok())
                .as_ref(),
        )
    }
}

/// Converts any serializable value to JSON for an event, never failing: a value serde
/// cannot represent as JSON (a map with non-string keys, say) becomes a string saying so.
pub fn to_json_value<T: serde::Serialize + ?Sized>(value: &T) -> Value {
    serde_json::to_value(value).unwrap_or_else(|e| Value::String(format!("<unserializable: {e}>")))
}

/// Builders for event kinds with the argument shapes of the public `track_*` API.
impl EventKind {
    /// A `StateChange`.
    pub fn state_change(
        variable: &str,
        old_value: Option<Value>,
        new_value: Value,
        access_type: crate::event::AccessType,
        location: SourceLocation,
    ) -> Self {
        EventKind::StateChange {
            variable: variable.into(),
            old_value,
            new_value,
            location,
            access_type,
        }
    }

    /// A `FunctionCall` at `location` in `module`.
    pub fn function_call(name: &str, module: &Arc<str>, args: Value, location: &SourceLocation) -> Self {
        let (file, line) = match location {
            SourceLocation::Static { file, line } => (Cow::Borrowed(*file), *line),
            SourceLocation::Text(t) => (Cow::Owned(t.clone()), 0),
        };
        EventKind::FunctionCall {
            function_name: name.into(),
            module: module.clone(),
            args,
            file,
            line,
        }
    }
}

/// Declares an adapter's `RacewayContext`: one task's place in a trace, a [`Flow`] in a
/// `pub(crate) flow` field, whose `Clone` forks ([`Flow::fork_detached`]), with the
/// published crate's constructor `new(trace_id, service_name, instance_id)` and
/// `from_flow`, `flow`, `into_flow`, `trace_id` and `thread_id`. Written once here; an
/// adapter adds what is specific to it in an `impl` block of its own.
///
/// ```ignore
/// raceway_proto::flow_context! {
///     /// Docs of the adapter's type.
///     pub struct RacewayContext;
/// }
/// ```
#[macro_export]
macro_rules! flow_context {
    ($(#[$meta:meta])* $vis:vis struct $name:ident;) => {
        $(#[$meta])*
        #[derive(Debug)]
        $vis struct $name {
            pub(crate) flow: $crate::Flow,
        }

        impl ::core::clone::Clone for $name {
            fn clone(&self) -> Self {
                Self {
                    flow: self.flow.fork_detached(),
                }
            }
        }

        impl $name {
            /// A root context for `trace_id` (a UUID, or 32 hex digits; anything else
            /// starts a new trace), as the published crate's constructor.
            pub fn new(
                trace_id: ::std::string::String,
                service_name: ::std::string::String,
                instance_id: ::std::string::String,
            ) -> Self {
                use $crate::ids::IdGenerator as _;
                let ids = $crate::system::FastIds;
                let trace = trace_id
                    .parse::<$crate::TraceId>()
                    .unwrap_or_else(|_| ids.trace_id());
                let span: $crate::SpanId = ids.span_id();
                Self {
                    flow: $crate::Flow::detached_root(trace, span, &service_name, &instance_id),
                }
            }

            /// Wraps a flow.
            pub fn from_flow(flow: $crate::Flow) -> Self {
                Self { flow }
            }

            /// The flow.
            pub fn flow(&self) -> &$crate::Flow {
                &self.flow
            }

            /// Unwraps the flow.
            pub fn into_flow(self) -> $crate::Flow {
                self.flow
            }

            /// The trace id, hyphenated.
            pub fn trace_id(&self) -> ::std::string::String {
                ::std::string::ToString::to_string(&self.flow.trace_id())
            }

            /// The flow's `thread_id`.
            pub fn thread_id(&self) -> &str {
                self.flow.thread_id()
            }
        }
    };
}

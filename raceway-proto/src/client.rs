//! The client core every adapter wraps: the `track_*` API, propagation and the sink.
//!
//! An adapter's `RacewayClient` holds a [`ClientCore`] over its own [`ContextStore`] (a
//! tokio task-local, a thread-local, a future wrapper's slot) and dereferences to it, so the
//! tracking methods are written once, here, and the adapters add only what is specific to
//! their runtime: entering a flow, spawning, the background exporter and the sender.
//!
//! The hot path of every `track_*` call is: look up the current flow, build the event
//! ([`Tracer::record`]: a clock increment, an id, a timestamp, a few reference-count
//! bumps), and push it into a bounded queue under an uncontended mutex. Encoding, HTTP and
//! retries happen on the adapter's background exporter.

use core::future::Future;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use core::time::Duration;
use std::boxed::Box;
use std::collections::HashMap;
use std::string::{String, ToString};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::vec::Vec;

use serde::Serialize;

use crate::analysis::{Analyzer, RaceReport};
use crate::boundary::ContextStore;
use crate::config::Config;
use crate::event::{AccessType, EventKind, MemoryOrdering, SourceLocation};
use crate::export::{ExportStats, Pipe, PushOutcome};
use crate::flow::{to_json_value, Flow, FlowEnd, FlowLane, Service, Tracer};
use crate::headers::{self, ClockHeader, RemoteContext};
use crate::record::{Pending, Record, RecordBase, StateValues};
use crate::system::{FastIds, SystemClock};

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Something that names an access type: an [`AccessType`] or a string such as `"Read"`.
///
/// Strings that name no access type are recorded as `Write` (a write races with every
/// other access, so nothing is hidden) and counted in [`CoreStats::invalid_access_types`].
pub trait IntoAccessType {
    /// The access type, or `None` for a string that names none.
    fn into_access_type(self) -> Option<AccessType>;
}

impl IntoAccessType for AccessType {
    fn into_access_type(self) -> Option<AccessType> {
        Some(self)
    }
}

impl IntoAccessType for &str {
    fn into_access_type(self) -> Option<AccessType> {
        self.parse().ok()
    }
}

impl IntoAccessType for &String {
    fn into_access_type(self) -> Option<AccessType> {
        self.parse().ok()
    }
}

impl IntoAccessType for String {
    fn into_access_type(self) -> Option<AccessType> {
        self.parse().ok()
    }
}

/// Why propagation headers could not be made.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PropagationError {
    /// Called outside any flow (no request, task or thread context installed).
    NoContext,
    /// The SDK is disabled.
    Disabled,
}

impl core::fmt::Display for PropagationError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            PropagationError::NoContext => {
                "no raceway context here: call from inside a request, a tracked task or a flow"
            }
            PropagationError::Disabled => "the raceway sdk is disabled",
        })
    }
}

impl core::error::Error for PropagationError {}

/// Counters of the client core (the exporter has its own).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CoreStats {
    /// Events recorded (built and handed to the sink).
    pub recorded: u64,
    /// `track_*` calls made outside any flow (nothing recorded). Exact for calls from one
    /// thread; calls from several threads at once may be undercounted.
    pub no_context: u64,
    /// Access types given as strings that name none (recorded as `Write`).
    pub invalid_access_types: u64,
}

/// Every counter of a client.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Recording side: events built, calls outside a flow, bad access types.
    pub core: CoreStats,
    /// Export side: queued, sent, retried and dropped by reason.
    pub export: ExportStats,
}

/// A local analyser that several clients feed, so races across services running in one
/// process (an example, a test) are found. Put it in [`Config::analyzer`].
#[derive(Clone, Default)]
pub struct SharedAnalyzer(Arc<Mutex<Analyzer>>);

impl SharedAnalyzer {
    /// A new, empty analyser.
    pub fn new() -> Self {
        Self::default()
    }

    /// The race report so far.
    pub fn report(&self) -> RaceReport {
        lock(&self.0).report()
    }
}

impl core::fmt::Debug for SharedAnalyzer {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("SharedAnalyzer")
    }
}

/// Where events go: the export queue and/or the local analyser. Shared with the adapter's
/// background exporter.
pub struct Sink {
    queue: Option<Pipe<Pending>>,
    analyzer: Option<SharedAnalyzer>,
    wake: OnceLock<Box<dyn Fn() + Send + Sync>>,
    /// True while the exporter sleeps: only then does a full batch wake it (a wake is a
    /// system call, and a busy exporter takes the batch on its next turn anyway).
    exporter_idle: AtomicBool,
    /// A full batch woke the exporter and it has not drained since: waking it again would
    /// only cost another system call (and, in a VM, waking an idle CPU).
    batch_wake_sent: AtomicBool,
    urgent: AtomicBool,
    export_stats: Mutex<ExportStats>,
    recorded: AtomicU64,
    warned_drop: AtomicBool,
    /// The service name, for diagnostics.
    service: String,
    /// The statuses of refused batches already reported (each is reported once).
    warned_rejected: Mutex<Vec<u16>>,
    /// False after a send failed, until one succeeds: causal waits are skipped meanwhile.
    healthy: AtomicBool,
    no_context: AtomicU64,
    invalid_access: AtomicU64,
}

impl core::fmt::Debug for Sink {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Sink")
            .field("exporting", &self.queue.is_some())
            .field("analysing", &self.analyzer.is_some())
            .finish_non_exhaustive()
    }
}

impl Sink {
    fn new(config: &Config) -> Self {
        let exporting = config.enabled && config.endpoint.is_some();
        let analysing = config.enabled && (config.endpoint.is_none() || config.local_analysis);
        Sink {
            queue: exporting.then(|| Pipe::new(config.export.queue_capacity, config.export.max_batch_events)),
            analyzer: match &config.analyzer {
                Some(shared) if config.enabled => Some(shared.clone()),
                _ => analysing.then(SharedAnalyzer::new),
            },
            wake: OnceLock::new(),
            exporter_idle: AtomicBool::new(true),
            batch_wake_sent: AtomicBool::new(false),
            urgent: AtomicBool::new(false),
            export_stats: Mutex::new(ExportStats::default()),
            recorded: AtomicU64::new(0),
            warned_drop: AtomicBool::new(false),
            service: config.service_name.clone(),
            warned_rejected: Mutex::new(Vec::new()),
            healthy: AtomicBool::new(true),
            no_context: AtomicU64::new(0),
            invalid_access: AtomicU64::new(0),
        }
    }

    /// True when events go to a server (an exporter must run).
    pub fn is_exporting(&self) -> bool {
        self.queue.is_some()
    }

    /// Sets what to call when the queue wants the exporter to wake (a batch is full, or a
    /// call was propagated). Set once, by the adapter, when it starts its exporter.
    pub fn set_waker(&self, wake: Box<dyn Fn() + Send + Sync>) {
        let _ = self.wake.set(wake);
    }

    fn wake(&self) {
        if let Some(w) = self.wake.get() {
            w();
        }
    }

    /// Hands one event of `flow` (made by its tracer, in the flow's order) to the analyser
    /// and the queue.
    pub fn emit(&self, flow: &mut Flow, record: Record) {
        let (pending, base) = record.into_pending();
        self.emit_pending(pending, &base, flow.lane());
    }

    /// [`Sink::emit`] for the last event stamped in `flow`, when nothing else refers to its
    /// id (not a spawn, not a send, not propagated): dropped from a full queue, it gives its
    /// place in the flow back, so the next event's parent is the last one queued. (Not when
    /// the local analyser saw it: the next event would reuse its id there.)
    pub(crate) fn emit_last(&self, flow: &mut Flow, record: Record) {
        let (own, parent) = (record.own, record.parent());
        let (pending, base) = record.into_pending();
        let outcome = self.emit_pending(pending, &base, flow.lane());
        if self.analyzer.is_none() && matches!(outcome, Some(PushOutcome::Dropped)) {
            flow.give_back(own, parent);
        }
    }

    /// [`Sink::emit`] for a record made without its base, which is handed beside it (the
    /// queue takes a reference count only when the base changes), into its flow's lane.
    pub(crate) fn emit_pending(
        &self,
        mut pending: Pending,
        base: &Arc<RecordBase>,
        lane: &mut FlowLane,
    ) -> Option<PushOutcome> {
        if let Some(a) = &self.analyzer {
            let whole = pending.whole(base.clone());
            lock(&a.0).observe(&whole.to_event());
            pending = whole.into_pending().0;
        }
        match &self.queue {
            None => {
                self.recorded.fetch_add(1, Ordering::Relaxed);
                None
            }
            Some(q) => {
                let outcome = q.push(pending, base, lane.get_mut());
                self.pushed(outcome);
                Some(outcome)
            }
        }
    }

    /// [`Sink::emit_pending`] for a record of `flow` that `fill` writes in place and stamps
    /// with the flow (returning the base it shares): in its slot of the flow's lane when
    /// the queue is all there is (the hot path: when the queue is full, nothing is built
    /// and the flow does not move on), on the stack otherwise.
    #[inline(always)]
    pub(crate) fn emit_in_place(
        &self,
        flow: &mut Flow,
        fill: impl for<'f> FnOnce(&'f mut Flow, &mut Pending) -> &'f Arc<RecordBase>,
    ) {
        match &self.queue {
            Some(q) if self.analyzer.is_none() => {
                let outcome =
                    flow.with_lane_out(|flow, lane| q.push_with(lane.get_mut(), |slot| fill(flow, slot)));
                self.pushed(outcome);
            }
            _ => {
                let mut pending = Pending::default();
                let base = fill(flow, &mut pending).clone();
                // Without a queue, or with the analyser: not dropped here.
                let _ = self.emit_pending(pending, &base, flow.lane());
            }
        }
    }

    /// What follows a push: the exporter woken for a full batch, the first drop warned of.
    #[inline(always)]
    fn pushed(&self, outcome: PushOutcome) {
        match outcome {
            PushOutcome::Accepted { wake: true } => {
                if self.exporter_idle.load(Ordering::Acquire)
                    && !self.batch_wake_sent.swap(true, Ordering::AcqRel)
                {
                    self.wake();
                }
            }
            PushOutcome::Accepted { wake: false } => {}
            PushOutcome::Dropped => self.warn_drop(),
        }
    }

    #[cold]
    fn warn_drop(&self) {
        if !self.warned_drop.swap(true, Ordering::Relaxed) {
            crate::diag::warn(format_args!(
                "the export queue is full: events are being dropped (counted in stats().export.dropped_queue_full); \
                 raise RACEWAY_QUEUE_SIZE or check that the server keeps up"
            ));
        }
    }

    /// Counts a call made outside any flow.
    #[inline]
    pub(crate) fn count_no_context(&self) {
        // A load and a store, not an atomic add: this runs on every call made outside a
        // flow, and an add costs more than the rest of that path. Calls from several
        // threads at once may undercount (a diagnostic counter).
        let n = self.no_context.load(Ordering::Relaxed);
        self.no_context.store(n.wrapping_add(1), Ordering::Relaxed);
    }

    /// Asks the exporter to send what is pending soon (without waiting for the interval).
    pub fn send_soon(&self) {
        if self.queue.is_some() {
            self.urgent.store(true, Ordering::Release);
            self.wake();
        }
    }

    /// For the exporter: it is about to sleep (`true`) or awake (`false`). While it is
    /// awake, full batches do not wake it: it looks at the queue before it sleeps again.
    pub fn set_exporter_idle(&self, idle: bool) {
        self.exporter_idle.store(idle, Ordering::Release);
    }

    /// For the exporter: true (once) after [`Sink::send_soon`].
    pub fn take_urgent(&self) -> bool {
        self.urgent.swap(false, Ordering::AcqRel)
    }

    /// For the exporter: moves up to `max` queued events into `out`.
    pub fn drain(&self, max: usize, out: &mut Vec<Record>) {
        if let Some(q) = &self.queue {
            self.batch_wake_sent.store(false, Ordering::Release);
            q.drain(max, out);
        }
    }

    /// For the exporter: events waiting in the queue.
    pub fn queued(&self) -> usize {
        self.queue.as_ref().map_or(0, Pipe::len)
    }

    /// The local analyser's report so far (empty when the analyser is off).
    pub fn races(&self) -> RaceReport {
        match &self.analyzer {
            Some(a) => a.report(),
            None => Analyzer::new().report(),
        }
    }

    /// For the exporter: the server refused a batch of `events` events with `status`
    /// (counted in `dropped_rejected`, not retried). Reported through the `log` facade the
    /// first time each status is seen, so a wrong key is said once, not once a batch.
    pub fn report_rejected(&self, status: u16, events: u64) {
        {
            let mut seen = lock(&self.warned_rejected);
            if seen.contains(&status) {
                return;
            }
            seen.push(status);
        }
        let why = match status {
            401 | 403 => "the API key is missing or wrong: check RACEWAY_API_KEY (Config::api_key)",
            422 => "an event does not match the server's schema",
            400 => "the body is not JSON the server reads",
            _ => "the server does not take these events",
        };
        crate::diag::warn(format_args!(
            "service {:?}: the server refused a batch of {events} events with status {status} ({why}); \
             refused batches are dropped, not retried (counted in stats().export.dropped_rejected, \
             last_rejected_status); further refusals with {status} are not reported",
            self.service
        ));
    }

    /// For the exporter: whether the last send reached the server and was taken.
    pub fn set_healthy(&self, healthy: bool) {
        self.healthy.store(healthy, Ordering::Relaxed);
    }

    /// True unless the last send failed.
    pub fn is_healthy(&self) -> bool {
        self.healthy.load(Ordering::Relaxed)
    }

    /// For the exporter: publishes its counters for [`Sink::stats`].
    pub fn publish_export_stats(&self, stats: ExportStats) {
        *lock(&self.export_stats) = stats;
    }

    /// All counters: the recording side's and the exporter's last published ones.
    pub fn stats(&self) -> Stats {
        let mut export = *lock(&self.export_stats);
        if let Some(q) = &self.queue {
            export = export.with_queue(q.stats());
        }
        Stats {
            core: self.core_stats(),
            export,
        }
    }

    /// The recording side's counters.
    pub fn core_stats(&self) -> CoreStats {
        let queued = self.queue.as_ref().map_or(0, |q| {
            let s = q.stats();
            s.recorded + s.dropped_queue_full
        });
        CoreStats {
            recorded: self.recorded.load(Ordering::Relaxed) + queued,
            no_context: self.no_context.load(Ordering::Relaxed),
            invalid_access_types: self.invalid_access.load(Ordering::Relaxed),
        }
    }
}

/// The runtime-independent part of a Raceway client.
pub struct ClientCore<S> {
    tracer: Tracer,
    store: S,
    sink: Arc<Sink>,
    config: Arc<Config>,
}

impl<S> core::fmt::Debug for ClientCore<S> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("ClientCore")
            .field("service", &self.config.service_name)
            .field("endpoint", &self.config.redacted_endpoint())
            .field("sink", &self.sink)
            .finish_non_exhaustive()
    }
}

impl<S: ContextStore> ClientCore<S> {
    /// [`AdapterApi::with_flow`] when the store has no current flow: in a `tracing` span
    /// that carries one (see `tracing_layer`), or in a root flow the store makes for this
    /// execution context, where it does that (a thread).
    #[inline]
    fn with_flow_elsewhere(&self, f: &mut dyn FnMut(&mut Flow)) -> bool {
        #[cfg(feature = "tracing")]
        if crate::tracing_layer::with_entered_flow(&self.sink, f) {
            return true;
        }
        self.store.install_root(&mut || self.tracer.new_trace()) && self.store.with_flow(f)
    }

    /// A core for `config`, finding flows in `store`.
    pub fn new(config: Config, store: S) -> Self {
        let instance = config.resolved_instance_id();
        let service = Service::new(
            &config.service_name,
            &instance,
            &config.environment,
            &config.module,
            std::process::id(),
        );
        let tracer = Tracer::new(service, Arc::new(FastIds), Arc::new(SystemClock::new()))
            .with_sampler(config.sampler);
        let sink = Arc::new(Sink::new(&config));
        Self {
            tracer,
            store,
            sink,
            config: Arc::new(config),
        }
    }

    /// The configuration in force.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// True when events go to a server (an exporter runs).
    pub fn is_exporting(&self) -> bool {
        self.sink.is_exporting()
    }

    /// Events recorded and waiting in the export queue (not yet handed to the exporter).
    pub fn queued(&self) -> usize {
        self.sink.queued()
    }

    /// True when the SDK records anything.
    pub fn is_enabled(&self) -> bool {
        self.config.enabled
    }

    /// Records a read or write of `variable`.
    ///
    /// `access_type` is an [`AccessType`] or one of the strings `"Read"`, `"Write"`,
    /// `"AtomicRead"`, `"AtomicWrite"`, `"AtomicRMW"`.
    #[track_caller]
    pub fn track_state_change<T: Serialize>(
        &self,
        variable: &str,
        old_value: Option<T>,
        new_value: T,
        access_type: impl IntoAccessType,
    ) {
        if !self.config.enabled {
            return;
        }
        let mut access_type = Some(access_type);
        self.record_state(core::panic::Location::caller(), None, variable, |values| {
            let access = access_type
                .take()
                .and_then(IntoAccessType::into_access_type)
                .unwrap_or_else(|| {
                    self.sink.invalid_access.fetch_add(1, Ordering::Relaxed);
                    AccessType::Write
                });
            if let Some(old) = &old_value {
                values.old_value(old);
            }
            values.new_value(&new_value);
            access
        });
    }

    /// Records a state change of `variable` in the current flow, whose values `make`
    /// serializes (in place) and whose access it returns, only when the flow is recorded
    /// (sampled).
    #[inline]
    pub(crate) fn record_state(
        &self,
        location: &'static core::panic::Location<'static>,
        ordering: Option<MemoryOrdering>,
        variable: &str,
        mut make: impl FnMut(&mut StateValues) -> AccessType,
    ) -> bool {
        if !self.config.enabled {
            return false;
        }
        let mut emitted = false;
        // The closure stays small: an unsampled flow costs the lookup and one test.
        let found = self.with_flow(&mut |flow| {
            if flow.is_sampled() && !emitted {
                emitted = true;
                self.emit_state(flow, location, ordering, variable, &mut make);
            }
        });
        if !found {
            self.sink.count_no_context();
        }
        emitted
    }

    #[inline(never)]
    fn emit_state(
        &self,
        flow: &mut Flow,
        location: &'static core::panic::Location<'static>,
        ordering: Option<MemoryOrdering>,
        variable: &str,
        make: &mut impl FnMut(&mut StateValues) -> AccessType,
    ) {
        // Written in place, in the flow's lane: the values first, then the flow's next
        // position, so that a record not queued takes none. (A warning the queue gives
        // calls the logger with the flow borrowed; a `track_*` call made by the logger then
        // finds no flow, and is counted.)
        let tracer = &self.tracer;
        self.sink.emit_in_place(flow, |flow, pending| {
            pending.fill_state(location, ordering, variable, make);
            tracer.stamp_into(flow, pending)
        });
    }

    /// Records the event `make` builds in the current flow, building it only when the flow
    /// is recorded (sampled): nothing is serialized for an unsampled trace.
    fn record_with(&self, make: &mut dyn FnMut() -> Option<EventKind>, duration_ns: Option<u64>) -> bool {
        if !self.config.enabled {
            return false;
        }
        let mut emitted = false;
        let found = self.with_flow(&mut |flow| {
            if flow.is_sampled() && !emitted {
                if let Some(kind) = make() {
                    let record = self.tracer.stamp(flow, kind, duration_ns);
                    self.sink.emit_last(flow, record);
                    emitted = true;
                }
            }
        });
        if !found {
            self.sink.count_no_context();
        }
        emitted
    }

    /// Records a function call with its arguments.
    #[track_caller]
    pub fn track_function_call<T: Serialize>(&self, function_name: &str, args: T) {
        self.function_call(function_name, &args, None, &SourceLocation::caller());
    }

    fn function_call<T: Serialize + ?Sized>(
        &self,
        name: &str,
        args: &T,
        duration_ns: Option<u64>,
        location: &SourceLocation,
    ) {
        if !self.config.enabled {
            return;
        }
        let module = &self.tracer.service().module;
        self.record_with(
            &mut || {
                Some(EventKind::function_call(
                    name,
                    module,
                    to_json_value(args),
                    location,
                ))
            },
            duration_ns,
        );
    }

    /// Runs `f`, then records the call with its duration.
    #[track_caller]
    pub fn track_function_sync<F, T>(&self, function_name: &str, args: impl Serialize, f: F) -> T
    where
        F: FnOnce() -> T,
    {
        let location = SourceLocation::caller();
        let start = std::time::Instant::now();
        let out = f();
        let ns = u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.function_call(function_name, &args, Some(ns), &location);
        out
    }

    /// Awaits `f`, then records the call with its duration.
    #[track_caller]
    pub fn track_function<'a, F, T>(
        &'a self,
        function_name: &'a str,
        args: impl Serialize + 'a,
        f: F,
    ) -> impl Future<Output = T> + 'a
    where
        F: Future<Output = T> + 'a,
    {
        let location = SourceLocation::caller();
        async move {
            let start = std::time::Instant::now();
            let out = f.await;
            let ns = u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX);
            self.function_call(function_name, &args, Some(ns), &location);
            out
        }
    }

    /// Records an HTTP request (the middleware records incoming ones itself).
    pub fn track_http_request(&self, method: &str, url: &str) {
        self.record(
            EventKind::HttpRequest {
                method: method.into(),
                url: url.into(),
                headers: Default::default(),
                body: None,
            },
            None,
        );
    }

    /// Records an HTTP response.
    pub fn track_http_response(&self, status: u16, duration_ms: u64) {
        self.record(
            EventKind::HttpResponse {
                status,
                headers: Default::default(),
                body: None,
                duration_ms,
            },
            Some(duration_ms.saturating_mul(1_000_000)),
        );
    }

    /// Records that the current flow took `lock_id`. Lock types by convention: `Mutex`,
    /// `RwLock::Read`, `RwLock::Write`.
    #[track_caller]
    pub fn track_lock_acquire(&self, lock_id: &str, lock_type: &str) {
        self.lock_event(
            Arc::from(lock_id),
            lock_type_name(lock_type),
            true,
            SourceLocation::caller(),
        );
    }

    /// Records that the current flow released `lock_id`.
    #[track_caller]
    pub fn track_lock_release(&self, lock_id: &str, lock_type: &str) {
        self.lock_event(
            Arc::from(lock_id),
            lock_type_name(lock_type),
            false,
            SourceLocation::caller(),
        );
    }

    /// Records an error.
    pub fn track_error(&self, error_type: &str, message: &str, stack_trace: Vec<String>) {
        self.record(
            EventKind::Error {
                error_type: error_type.into(),
                message: message.into(),
                stack_trace,
            },
            None,
        );
    }

    /// Records a custom event.
    pub fn track_custom<T: Serialize>(&self, name: &str, data: T) {
        self.record_with(
            &mut || {
                Some(EventKind::Custom {
                    name: name.into(),
                    data: to_json_value(&data),
                })
            },
            None,
        );
    }

    /// Records a database query and how long it took.
    pub fn track_database_query(&self, query: &str, database: &str, duration_ms: u64) {
        self.record(
            EventKind::DatabaseQuery {
                query: query.into(),
                database: database.into(),
                duration_ms,
            },
            Some(duration_ms.saturating_mul(1_000_000)),
        );
    }

    /// Records a database result.
    pub fn track_database_result(&self, rows_affected: u64) {
        self.record(EventKind::DatabaseResult { rows_affected }, None);
    }

    /// Records a memory fence.
    #[track_caller]
    pub fn track_memory_fence(&self, ordering: impl Into<MemoryOrdering>) {
        let location = SourceLocation::caller();
        self.record(
            EventKind::MemoryFence {
                ordering: ordering.into(),
                location,
            },
            None,
        );
    }

    /// Forks the current flow for a task or thread about to start: records `AsyncSpawn`
    /// here and returns the child flow to install there. `None` outside any flow.
    pub fn fork_current(&self, spawned_by: &str) -> Option<Flow> {
        if !self.config.enabled {
            return None;
        }
        let mut out = None;
        self.with_flow(&mut |flow| {
            let (child, spawn) = self.tracer.fork(flow, spawned_by);
            if flow.is_sampled() {
                self.sink.emit(flow, spawn);
            }
            out = Some(child);
        });
        out
    }

    /// Joins a finished flow (a task or thread this one waited for) into the current flow,
    /// recording `AsyncAwait`: what it did happens before what this flow does next.
    pub fn join_flow(&self, end: &FlowEnd) {
        self.join_current(end, "join");
    }

    /// Joins a finished child into the current flow (records `AsyncAwait`), naming where.
    pub fn join_current(&self, child: &FlowEnd, awaited_at: &str) {
        if !self.config.enabled {
            return;
        }
        self.with_flow(&mut |flow| {
            if flow.is_sampled() {
                let ev = self.tracer.join(flow, child, awaited_at);
                self.sink.emit(flow, ev);
            }
        });
    }

    /// Headers for an outgoing call from the current flow: `traceparent`, `tracestate`
    /// (when the trace has one), `raceway-clock`, plus `extra`. Pending events are sent
    /// promptly, so the server usually sees the caller's events before the callee's.
    pub fn propagation_headers(
        &self,
        extra: Option<HashMap<String, String>>,
    ) -> Result<HashMap<String, String>, PropagationError> {
        let prop = self.propagate()?;
        let mut out = extra.unwrap_or_default();
        for (k, v) in prop.iter() {
            out.insert(k.to_string(), v.to_string());
        }
        Ok(out)
    }

    /// Merges a called service's response headers (its `raceway-clock`) into the current
    /// flow, so what the callee did happens before what this flow does next. Returns true
    /// when a clock was merged.
    pub fn merge_response_headers<'h>(&self, headers: impl IntoIterator<Item = (&'h str, &'h str)>) -> bool {
        match response_clock(headers) {
            Some(clock) => self.merge_clock(&clock),
            None => false,
        }
    }

    fn merge_clock(&self, clock: &ClockHeader) -> bool {
        let mut merged = false;
        self.with_flow(&mut |flow| merged = self.tracer.merge_response(flow, clock));
        merged
    }

    /// Injects the propagation headers of the current flow into `headers`, for any HTTP
    /// client that takes an `http::HeaderMap`.
    #[cfg(feature = "http")]
    pub fn inject_headers(&self, headers: &mut http::HeaderMap) -> Result<(), PropagationError> {
        self.propagate().map(|p| p.inject(headers))
    }

    /// Merges a response's `raceway-clock` into the current flow
    /// ([`ClientCore::merge_response_headers`] for an `http::HeaderMap`).
    #[cfg(feature = "http")]
    pub fn merge_response(&self, headers: &http::HeaderMap) -> bool {
        match ClockHeader::from_header_map(headers) {
            Ok(Some(clock)) => self.merge_clock(&clock),
            _ => false,
        }
    }

    /// A root flow of a new trace (for a thread, a job, a test).
    pub fn new_flow(&self) -> Flow {
        self.tracer.new_trace()
    }

    /// The trace the current flow belongs to, if there is a current flow. Unlike the
    /// `track_*` methods it never creates a flow.
    pub fn current_trace_id(&self) -> Option<crate::ids::TraceId> {
        let mut out = None;
        self.store.with_flow(&mut |flow| out = Some(flow.trace_id()));
        out
    }

    /// The race report of the local analyser so far.
    pub fn races(&self) -> RaceReport {
        self.sink.races()
    }

    /// All counters (recording side and exporter).
    pub fn stats(&self) -> Stats {
        self.sink.stats()
    }
}

/// What an adapter needs from a [`ClientCore`] beyond the user-facing API: the sink its
/// exporter drains, its context store, the tracer, and the request and flow primitives its
/// integrations are built from.
///
/// It is a trait so that these stay out of the methods a user sees on `RacewayClient`:
/// adapters import it (`use raceway_proto::client::AdapterApi as _;`), users do not need to.
pub trait AdapterApi<S> {
    /// Runs `f` on the current flow; where the store makes a root flow for an execution
    /// context that has none (a thread), it does so first.
    fn with_flow(&self, f: &mut dyn FnMut(&mut Flow)) -> bool;

    /// The tracer (flow and event builder).
    fn tracer(&self) -> &Tracer;

    /// The sink, shared with the exporter.
    fn sink(&self) -> &Arc<Sink>;

    /// The context store.
    fn store(&self) -> &S;

    /// Records `kind` in the current flow. Returns false when there is no flow here.
    fn record(&self, kind: EventKind, duration_ns: Option<u64>) -> bool;

    /// Records `kind` in `flow` (for adapters holding a flow outside the store).
    fn record_in(&self, flow: &mut Flow, kind: EventKind, duration_ns: Option<u64>);

    /// Records a lock event with an already shared lock id (used by the tracked locks).
    fn lock_event(
        &self,
        lock_id: Arc<str>,
        lock_type: std::borrow::Cow<'static, str>,
        acquire: bool,
        location: SourceLocation,
    );

    /// The propagation headers of the current flow, typed (see
    /// [`ClientCore::propagation_headers`]).
    fn propagate(&self) -> Result<headers::Propagation, PropagationError>;

    /// Starts the flow of an incoming request: continues the caller's trace when the
    /// headers carry one, else starts a new trace; records the `HttpRequest` event.
    fn begin_request(
        &self,
        remote: Result<RemoteContext, headers::ExtractError>,
        method: &str,
        url: &str,
    ) -> Flow;

    /// Ends the current request's flow: records the `HttpResponse` and, when the request
    /// continued a caller's trace, returns the `raceway-clock` value to answer with.
    fn end_request(&self, status: u16, elapsed: Duration) -> Option<String>;

    /// A flow continuing the trace in `headers`, or a new trace when they carry none.
    fn flow_from_headers<'h>(&self, headers: impl IntoIterator<Item = (&'h str, &'h str)>) -> Flow;

    /// A flow continuing a decoded remote context.
    fn continue_trace(&self, remote: &RemoteContext) -> Flow;
}

impl<S: ContextStore> AdapterApi<S> for ClientCore<S> {
    #[inline]
    fn with_flow(&self, f: &mut dyn FnMut(&mut Flow)) -> bool {
        self.store.with_flow(f) || self.with_flow_elsewhere(f)
    }

    fn tracer(&self) -> &Tracer {
        &self.tracer
    }

    fn sink(&self) -> &Arc<Sink> {
        &self.sink
    }

    fn store(&self) -> &S {
        &self.store
    }

    fn record(&self, kind: EventKind, duration_ns: Option<u64>) -> bool {
        let mut kind = Some(kind);
        self.record_with(&mut || kind.take(), duration_ns)
    }

    fn record_in(&self, flow: &mut Flow, kind: EventKind, duration_ns: Option<u64>) {
        if self.config.enabled && flow.is_sampled() {
            let record = self.tracer.stamp(flow, kind, duration_ns);
            self.sink.emit(flow, record);
        }
    }

    fn lock_event(
        &self,
        lock_id: Arc<str>,
        lock_type: std::borrow::Cow<'static, str>,
        acquire: bool,
        location: SourceLocation,
    ) {
        let kind = if acquire {
            EventKind::LockAcquire {
                lock_id,
                lock_type,
                location,
            }
        } else {
            EventKind::LockRelease {
                lock_id,
                lock_type,
                location,
            }
        };
        self.record(kind, None);
    }

    fn propagate(&self) -> Result<headers::Propagation, PropagationError> {
        if !self.config.enabled {
            return Err(PropagationError::Disabled);
        }
        let mut out = None;
        self.with_flow(&mut |flow| out = Some(self.tracer.propagate(flow)));
        let prop = out.ok_or(PropagationError::NoContext)?;
        self.sink.send_soon();
        Ok(prop)
    }

    fn begin_request(
        &self,
        remote: Result<RemoteContext, headers::ExtractError>,
        method: &str,
        url: &str,
    ) -> Flow {
        let mut flow = match remote {
            Ok(remote) => self.tracer.continue_trace(&remote),
            Err(_) => self.tracer.new_trace(),
        };
        self.record_in(
            &mut flow,
            EventKind::HttpRequest {
                method: method.into(),
                url: url.into(),
                headers: Default::default(),
                body: None,
            },
            None,
        );
        flow
    }

    fn end_request(&self, status: u16, elapsed: Duration) -> Option<String> {
        if !self.config.enabled {
            return None;
        }
        let ms = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX);
        let mut header = None;
        self.with_flow(&mut |flow| {
            if !flow.is_sampled() {
                return;
            }
            let ev = self.tracer.stamp(
                flow,
                EventKind::HttpResponse {
                    status,
                    headers: Default::default(),
                    body: None,
                    duration_ms: ms,
                },
                Some(u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX)),
            );
            self.sink.emit(flow, ev);
            if flow.is_distributed() {
                header = Some(self.tracer.response_clock(flow).to_header_value());
            }
        });
        if header.is_some() {
            self.sink.send_soon();
        }
        header
    }

    fn flow_from_headers<'h>(&self, headers: impl IntoIterator<Item = (&'h str, &'h str)>) -> Flow {
        match headers::extract(headers) {
            Ok(remote) => self.tracer.continue_trace(&remote),
            Err(_) => self.tracer.new_trace(),
        }
    }

    fn continue_trace(&self, remote: &RemoteContext) -> Flow {
        self.tracer.continue_trace(remote)
    }
}

/// Decodes the `raceway-clock` of a response (names in any casing), with the rules of
/// [`ClockHeader::from_header_map`]: absent, repeated or invalid gives `None`.
pub fn response_clock<'h>(headers: impl IntoIterator<Item = (&'h str, &'h str)>) -> Option<ClockHeader> {
    headers::response_clock(headers.into_iter().map(|(k, v)| (k, v.as_bytes())))
        .ok()
        .flatten()
}

/// Normalises the lock type spellings of the published crate (`RwLock-Read`) to the
/// server's convention (`RwLock::Read`); other strings pass through.
pub fn lock_type_name(t: &str) -> std::borrow::Cow<'static, str> {
    use std::borrow::Cow;
    match t {
        "Mutex" | "mutex" => Cow::Borrowed("Mutex"),
        "RwLock::Read" | "RwLock-Read" | "read" => Cow::Borrowed("RwLock::Read"),
        "RwLock::Write" | "RwLock-Write" | "write" => Cow::Borrowed("RwLock::Write"),
        other => Cow::Owned(other.into()),
    }
}

impl<S: ContextStore> crate::sync::LockTracker for ClientCore<S> {
    fn lock_event(
        &self,
        lock_id: Arc<str>,
        lock_type: std::borrow::Cow<'static, str>,
        acquire: bool,
        location: SourceLocation,
    ) {
        AdapterApi::lock_event(self, lock_id, lock_type, acquire, location);
    }
}

/// The published constructors (`new`, `new_with_auth`, `new_with_api_key`, `with_module`,
/// `local`, `from_env`, `from_config`) as inherent functions of an adapter's
/// `RacewayClient`, plus its `Deref` to [`ClientHandle`](crate::lifecycle::ClientHandle),
/// `Debug` and [`LockTracker`](crate::sync::LockTracker).
///
/// A macro because nothing else can give another crate's type inherent constructors: the
/// published README calls `RacewayClient::new(..)` with no trait in scope. Everything the
/// constructors do is [`ClientHandle::build`](crate::lifecycle::ClientHandle::build) and
/// [`ClientHandle::from_config`](crate::lifecycle::ClientHandle::from_config); the adapter
/// writes `pub struct RacewayClient { handle: ClientHandle<Store> }` and invokes
/// `adapter_client!(RacewayClient, Store, blocking_policy_expr)`.
#[macro_export]
macro_rules! adapter_client {
    ($client:ident, $store:ty, $policy:expr) => {
        impl ::core::fmt::Debug for $client {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                ::core::fmt::Debug::fmt(&self.handle, f)
            }
        }

        impl ::core::ops::Deref for $client {
            type Target = $crate::lifecycle::ClientHandle<$store>;
            fn deref(&self) -> &Self::Target {
                &self.handle
            }
        }

        impl $crate::sync::LockTracker for $client {
            fn lock_event(
                &self,
                lock_id: ::std::sync::Arc<str>,
                lock_type: ::std::borrow::Cow<'static, str>,
                acquire: bool,
                location: $crate::SourceLocation,
            ) {
                $crate::sync::LockTracker::lock_event(&self.handle, lock_id, lock_type, acquire, location);
            }
        }

        impl $client {
            fn build(
                endpoint: &str,
                service_name: &str,
                api_key: Option<&str>,
                module: Option<&str>,
            ) -> Self {
                let handle = $crate::lifecycle::ClientHandle::build(
                    endpoint,
                    service_name,
                    api_key,
                    module,
                    <$store>::default(),
                    $policy,
                );
                $client { handle }
            }

            /// A client from a full configuration; fails on an unusable endpoint or key (an
            /// `https://` endpoint without the `rustls` feature is
            /// [`ConfigError::TlsNotEnabled`](raceway_proto::config::ConfigError::TlsNotEnabled)).
            pub fn from_config(
                config: $crate::config::Config,
            ) -> ::core::result::Result<Self, $crate::config::ConfigError> {
                let handle =
                    $crate::lifecycle::ClientHandle::from_config(config, <$store>::default(), $policy)?;
                Ok($client { handle })
            }

            /// A client from a configuration and a sender of your own (an in-memory one in
            /// tests, another HTTP client). The sender runs on the exporter's thread and may
            /// block.
            pub fn with_sender(
                config: $crate::config::Config,
                sender: ::std::boxed::Box<dyn $crate::boundary::Sender + Send>,
            ) -> Self {
                let handle = $crate::lifecycle::ClientHandle::with_sender(
                    config,
                    <$store>::default(),
                    Some(sender),
                    $policy,
                );
                $client { handle }
            }

            /// A client sending to `endpoint` as `service_name` (module `app`). The API key,
            /// the instance id and the rest come from the environment when set (see
            /// [`raceway_proto::config`]). An empty endpoint keeps events for the local
            /// analyser; an unusable one (an `https://` endpoint without the `rustls`
            /// feature, say) is reported through the `log` facade and in
            /// [`init_error`](raceway_proto::lifecycle::ClientHandle::init_error), and
            /// events are kept for the local analyser instead.
            pub fn new(endpoint: &str, service_name: &str) -> Self {
                Self::build(endpoint, service_name, None, None)
            }

            /// As [`Self::new`], authenticating with `api_key`.
            pub fn new_with_auth(endpoint: &str, service_name: &str, api_key: &str) -> Self {
                Self::build(endpoint, service_name, Some(api_key), None)
            }

            /// As [`Self::new`], with an optional API key (the published crate's shape).
            pub fn new_with_api_key(
                endpoint: &str,
                service_name: &str,
                api_key: ::core::option::Option<&str>,
            ) -> Self {
                Self::build(endpoint, service_name, api_key, None)
            }

            /// As [`Self::new`], naming the module on function-call events.
            pub fn with_module(endpoint: &str, service_name: &str, module_name: &str) -> Self {
                Self::build(endpoint, service_name, None, Some(module_name))
            }

            /// A client that keeps events for the local analyser
            /// ([`races`](raceway_proto::client::ClientCore::races)) and sends nothing.
            pub fn local(service_name: &str) -> Self {
                Self::build("", service_name, None, None)
            }

            /// A client configured from `RACEWAY_*` environment variables: with
            /// `RACEWAY_ENDPOINT` it sends there, without it analyses locally.
            pub fn from_env() -> ::core::result::Result<Self, $crate::config::ConfigError> {
                Self::from_config($crate::config::Config::from_env()?)
            }
        }
    };
}

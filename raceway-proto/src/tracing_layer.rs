//! The `tracing` bridge: a `tracing-subscriber` [`Layer`] that turns what an application
//! already tells `tracing` into Raceway events, with no `track_*` calls.
//!
//! - **Spans become `FunctionCall` events.** When a span (`#[tracing::instrument]`,
//!   `info_span!`) closes, a `FunctionCall` is recorded: `function_name` is the span's
//!   name, `module` its target, `args` its fields as a JSON object (with the values
//!   `Span::record` added later), `file` and `line` its metadata's, and `duration_ns` the
//!   time from the span's creation to its close.
//! - **Events with agreed fields become state changes.** An event carrying
//!   `raceway.variable` is a `StateChange` of that variable, at the event's `file:line`:
//!   `raceway.access` names the access (`"Read"`, `"Write"`, `"AtomicRead"`,
//!   `"AtomicWrite"`, `"AtomicRMW"`; absent or unknown, `Write`, which hides no race),
//!   `raceway.old` is the old value (absent: none) and `raceway.new` the new value
//!   (absent: `null`). Integers, floats and booleans stay JSON numbers and booleans;
//!   `%value` and `?value` are recorded as the formatted string. Other fields, and
//!   events without `raceway.variable`, are ignored.
//! - **A span carries its flow.** A span created in a flow (a request, a tracked task, a
//!   thread) remembers it. Entered where there is no flow (a task started with
//!   `tokio::spawn(fut.instrument(span))`, a plain thread running `span.in_scope(..)`),
//!   it makes a flow of its own, forked from the one it was created in (same trace,
//!   ordered after everything recorded there before the span was created, concurrent
//!   with what happens there afterwards), and that flow is the current one while the span
//!   is entered: for the layer's events and for every `track_*` call, tracked lock,
//!   `spawn` or propagation made there. When such a span closes in a flow of its trace
//!   (it was awaited or called there), its flow is joined into that one (`AsyncAwait`).
//!
//! Outside any flow nothing is recorded and nothing panics: a span created where there is
//! no flow (in a tokio program, outside any request or tracked task) records no
//! `FunctionCall`, and a `raceway.variable` event there is counted in
//! `stats().core.no_context`, like a `track_state_change` call would be. (With
//! `raceway-blocking`, every thread is a flow, so there always is one.)
//!
//! # Use
//!
//! Every adapter's client has `tracing_layer()`; add the layer to the subscriber next to
//! the others:
//!
//! ```
//! # use core::cell::RefCell;
//! # use std::sync::Arc;
//! # use raceway_proto::boundary::{with_flow_in, ContextStore};
//! # use raceway_proto::Flow;
//! # thread_local!(static SLOT: RefCell<Option<Flow>> = const { RefCell::new(None) });
//! # #[derive(Default)]
//! # struct ThreadStore;
//! # impl ContextStore for ThreadStore {
//! #     fn with_flow(&self, f: &mut dyn FnMut(&mut Flow)) -> bool { SLOT.with(|s| with_flow_in(s, f)) }
//! #     fn install_root(&self, make: &mut dyn FnMut() -> Flow) -> bool {
//! #         SLOT.with(|s| { s.borrow_mut().get_or_insert_with(&mut *make); true })
//! #     }
//! # }
//! use raceway_proto::client::ClientCore;
//! use raceway_proto::config::Config;
//! use raceway_proto::tracing_layer::TracingLayer;
//! use tracing_subscriber::layer::SubscriberExt;
//!
//! // An adapter's client in real code (`client.tracing_layer()`); here the core over a
//! // thread-local store.
//! let client = Arc::new(ClientCore::new(Config::new("bank"), ThreadStore));
//! let subscriber = tracing_subscriber::registry().with(TracingLayer::new(client.clone()));
//!
//! tracing::subscriber::with_default(subscriber, || {
//!     let span = tracing::info_span!("transfer", from = "alice", amount = 10);
//!     span.in_scope(|| {
//!         tracing::info!(raceway.variable = "alice.balance", raceway.access = "Read", raceway.new = 100);
//!         tracing::info!(
//!             raceway.variable = "alice.balance",
//!             raceway.access = "Write",
//!             raceway.old = 100,
//!             raceway.new = 90
//!         );
//!         tracing::info!(user = "alice", "no raceway fields: ignored");
//!     });
//! }); // the span closes here: a FunctionCall "transfer" with its duration
//!
//! let report = client.races();
//! assert_eq!(report.accesses_observed(), 2);
//! assert_eq!(report.events_observed(), 3);
//! ```
//!
//! # Next to `tracing-opentelemetry`
//!
//! The two layers sit side by side on one registry and do not interfere: each keeps its
//! own data in the span's extensions. They share the W3C `traceparent`: the Raceway
//! middleware continues the trace id of an incoming `traceparent`, and the propagation
//! helpers send the current flow's one, so a request's Raceway events and its
//! OpenTelemetry spans carry the same trace id when the caller sent one. Raceway does not
//! read the OpenTelemetry context of a span (nor write it): a service whose outgoing
//! headers come from an OpenTelemetry propagator should send one `traceparent`, from one
//! of the two, and Raceway's own `raceway-clock` header next to it.
//!
//! # Limits
//!
//! - The layer holds a clone of the client: a client in a global subscriber is never
//!   dropped, so call its `shutdown()` (or `flush`) before the program exits.
//! - A span entered on several threads at once (rare; a span is usually one unit of
//!   work) gives each concurrent entry a flow of its own, and only one of them is kept for
//!   the join at close.
//! - `raceway.access` strings that name no access type are recorded as `Write` without
//!   being counted in `stats().core.invalid_access_types`.

use core::cell::RefCell;
use core::fmt;
use std::format;
use std::string::{String, ToString};
use std::sync::Arc;
use std::time::Instant;
use std::vec::Vec;

use serde_json::{Map, Number, Value};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Metadata, Subscriber};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::LookupSpan;

use crate::boundary::ContextStore;
use crate::client::{AdapterApi, ClientCore, Sink};
use crate::event::{AccessType, EventKind, SourceLocation};
use crate::flow::Flow;
use crate::lifecycle::ClientHandle;

/// The event field naming the variable of a state change.
pub const VARIABLE: &str = "raceway.variable";
/// The event field naming the access type (`"Read"`, `"Write"`, ...).
pub const ACCESS: &str = "raceway.access";
/// The event field holding the old value.
pub const OLD: &str = "raceway.old";
/// The event field holding the new value.
pub const NEW: &str = "raceway.new";

/// A handle on a [`ClientCore`] the layer can keep: an adapter's client handle, or an
/// `Arc<ClientCore<S>>`.
pub trait CoreHandle: Send + Sync + 'static {
    /// The client's context store.
    type Store: ContextStore;
    /// The client core.
    fn core(&self) -> &ClientCore<Self::Store>;
}

impl<S: ContextStore + Send + Sync + 'static> CoreHandle for ClientHandle<S> {
    type Store = S;
    fn core(&self) -> &ClientCore<S> {
        self
    }
}

impl<S: ContextStore + Send + Sync + 'static> CoreHandle for Arc<ClientCore<S>> {
    type Store = S;
    fn core(&self) -> &ClientCore<S> {
        self
    }
}

impl<S: ContextStore + Send + Sync + 'static> ClientHandle<S> {
    /// A `tracing-subscriber` layer recording into this client (see
    /// [`crate::tracing_layer`]): spans become `FunctionCall` events, `raceway.variable`
    /// events state changes, and spans carry their flow.
    pub fn tracing_layer(&self) -> TracingLayer<ClientHandle<S>> {
        TracingLayer::new(self.clone())
    }
}

/// The `tracing-subscriber` layer of the [module docs](self), recording into client `C`.
pub struct TracingLayer<C> {
    client: C,
}

impl<C> fmt::Debug for TracingLayer<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TracingLayer")
    }
}

impl<C: CoreHandle> TracingLayer<C> {
    /// A layer recording into `client`.
    pub fn new(client: C) -> Self {
        Self { client }
    }

    fn core(&self) -> &ClientCore<C::Store> {
        self.client.core()
    }

    /// Runs `f` on the current flow without making one: the store's, else the flow of the
    /// innermost span entered here that carries one.
    fn with_current(&self, f: &mut dyn FnMut(&mut Flow)) -> bool {
        let core = self.core();
        core.store().with_flow(f) || with_entered_flow(core.sink(), f)
    }
}

/// What the layer keeps in a span's extensions.
struct SpanData {
    start: Instant,
    args: Map<String, Value>,
    /// The flow the span was created in, as it was then.
    origin: Flow,
    /// The span's own flow, made the first time it is entered where there is no flow, and
    /// kept here while the span is not entered.
    carrier: Option<Flow>,
}

/// One span entered on this thread: for which client, and the flow it carries (`None`
/// when it was entered in a flow and carries nothing).
struct Entered {
    client: usize,
    span: Id,
    flow: Option<Flow>,
}

std::thread_local! {
    /// The spans entered on this thread, innermost last.
    static ENTERED: RefCell<Vec<Entered>> = const { RefCell::new(Vec::new()) };
}

fn client_key(sink: &Arc<Sink>) -> usize {
    Arc::as_ptr(sink) as *const () as usize
}

/// For [`AdapterApi::with_flow`]: runs `f` on the flow of the innermost span entered on
/// this thread that carries one for the client of `sink`. False when there is none (or
/// the thread's list is busy or gone).
pub(crate) fn with_entered_flow(sink: &Arc<Sink>, f: &mut dyn FnMut(&mut Flow)) -> bool {
    let key = client_key(sink);
    ENTERED
        .try_with(|cell| match cell.try_borrow_mut() {
            Ok(mut entered) => match entered
                .iter_mut()
                .rev()
                .find(|e| e.client == key && e.flow.is_some())
                .and_then(|e| e.flow.as_mut())
            {
                Some(flow) => {
                    f(flow);
                    true
                }
                None => false,
            },
            Err(_) => false,
        })
        .unwrap_or(false)
}

/// Removes and returns the innermost entry of `span` for `key` (all of them with `all`).
fn take_entered(key: usize, span: &Id, all: bool) -> Vec<Option<Flow>> {
    ENTERED
        .try_with(|cell| match cell.try_borrow_mut() {
            Ok(mut entered) => {
                let mut out = Vec::new();
                while let Some(i) = entered.iter().rposition(|e| e.client == key && e.span == *span) {
                    out.push(entered.remove(i).flow);
                    if !all {
                        break;
                    }
                }
                out
            }
            Err(_) => Vec::new(),
        })
        .unwrap_or_default()
}

fn is_entered(key: usize, span: &Id) -> bool {
    ENTERED
        .try_with(|cell| {
            cell.try_borrow()
                .map(|entered| entered.iter().any(|e| e.client == key && e.span == *span))
                .unwrap_or(false)
        })
        .unwrap_or(false)
}

/// Pushes `entry`; gives its flow back when the thread's list cannot be reached.
fn push_entered(entry: Entered) -> Option<Flow> {
    let mut entry = Some(entry);
    let _ = ENTERED.try_with(|cell| {
        if let Ok(mut entered) = cell.try_borrow_mut() {
            if let Some(e) = entry.take() {
                entered.push(e);
            }
        }
    });
    entry.and_then(|e| e.flow)
}

fn location(meta: &Metadata<'static>) -> SourceLocation {
    match (meta.file(), meta.line()) {
        (Some(file), Some(line)) => SourceLocation::Static { file, line },
        (Some(file), None) => SourceLocation::Static { file, line: 0 },
        _ => SourceLocation::Text(meta.target().to_string()),
    }
}

fn nanos(since: Instant) -> u64 {
    u64::try_from(since.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

/// Field values as JSON.
#[derive(Default)]
struct Fields(Map<String, Value>);

impl Fields {
    fn put(&mut self, field: &Field, value: Value) {
        self.0.insert(field.name().to_string(), value);
    }
}

impl Visit for Fields {
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.put(field, Number::from_f64(value).map_or(Value::Null, Value::Number));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, Value::from(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, Value::from(value));
    }
    fn record_i128(&mut self, field: &Field, value: i128) {
        let v = i64::try_from(value).map_or_else(|_| Value::String(value.to_string()), Value::from);
        self.put(field, v);
    }
    fn record_u128(&mut self, field: &Field, value: u128) {
        let v = u64::try_from(value).map_or_else(|_| Value::String(value.to_string()), Value::from);
        self.put(field, v);
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, Value::Bool(value));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, Value::String(value.to_string()));
    }
    fn record_error(&mut self, field: &Field, value: &(dyn core::error::Error + 'static)) {
        self.put(field, Value::String(value.to_string()));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.put(field, Value::String(format!("{value:?}")));
    }
}

/// The `raceway.*` fields of an event.
#[derive(Default)]
struct StateFields {
    variable: Option<Value>,
    access: Option<Value>,
    old: Option<Value>,
    new: Option<Value>,
    scratch: Fields,
}

impl StateFields {
    fn put(&mut self, field: &Field, value: Value) {
        match field.name() {
            VARIABLE => self.variable = Some(value),
            ACCESS => self.access = Some(value),
            OLD => self.old = Some(value),
            NEW => self.new = Some(value),
            _ => {}
        }
    }

    /// Converts through [`Fields`], keeping only the agreed names.
    fn via(&mut self, field: &Field, record: impl FnOnce(&mut Fields)) {
        if field.name().starts_with("raceway.") {
            record(&mut self.scratch);
            if let Some(v) = self.scratch.0.remove(field.name()) {
                self.put(field, v);
            }
        }
    }

    fn into_kind(self, meta: &Metadata<'static>) -> Option<EventKind> {
        let variable = match self.variable? {
            Value::String(s) => s,
            other => other.to_string(),
        };
        let access = match &self.access {
            Some(Value::String(s)) => s.parse().unwrap_or(AccessType::Write),
            _ => AccessType::Write,
        };
        Some(EventKind::state_change(
            &variable,
            self.old,
            self.new.unwrap_or(Value::Null),
            access,
            location(meta),
        ))
    }
}

impl Visit for StateFields {
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.via(field, |f| f.record_f64(field, value));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.via(field, |f| f.record_i64(field, value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.via(field, |f| f.record_u64(field, value));
    }
    fn record_i128(&mut self, field: &Field, value: i128) {
        self.via(field, |f| f.record_i128(field, value));
    }
    fn record_u128(&mut self, field: &Field, value: u128) {
        self.via(field, |f| f.record_u128(field, value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.via(field, |f| f.record_bool(field, value));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.via(field, |f| f.record_str(field, value));
    }
    fn record_error(&mut self, field: &Field, value: &(dyn core::error::Error + 'static)) {
        self.via(field, |f| f.record_error(field, value));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.via(field, |f| f.record_debug(field, value));
    }
}

impl<C, R> Layer<R> for TracingLayer<C>
where
    C: CoreHandle,
    R: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, R>) {
        let core = self.core();
        if !core.is_enabled() {
            return;
        }
        let mut origin = None;
        // Makes the thread's root flow where the store does that (raceway-blocking), as
        // any event there would.
        AdapterApi::with_flow(core, &mut |flow| origin = Some(flow.clone()));
        let (Some(origin), Some(span)) = (origin, ctx.span(id)) else {
            return;
        };
        let mut fields = Fields::default();
        attrs.record(&mut fields);
        span.extensions_mut().insert(SpanData {
            start: Instant::now(),
            args: fields.0,
            origin,
            carrier: None,
        });
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, R>) {
        let Some(span) = ctx.span(id) else {
            return;
        };
        let mut ext = span.extensions_mut();
        if let Some(data) = ext.get_mut::<SpanData>() {
            let mut fields = Fields(core::mem::take(&mut data.args));
            values.record(&mut fields);
            data.args = fields.0;
        }
    }

    fn on_enter(&self, id: &Id, ctx: Context<'_, R>) {
        let Some(span) = ctx.span(id) else {
            return;
        };
        let key = client_key(self.core().sink());
        // Where the span is entered: in the store's flow, or in the flow another entered
        // span carries (its thread id), or in none.
        let in_store = self.core().store().with_flow(&mut |_| {});
        // Entered again inside itself: its flow (if it carries one) is already current.
        let reentered = !in_store && is_entered(key, id);
        let mut carried_here = None;
        if !in_store && !reentered {
            with_entered_flow(self.core().sink(), &mut |flow| {
                carried_here = Some(flow.thread_id().to_string())
            });
        }
        let flow = {
            let mut ext = span.extensions_mut();
            let Some(data) = ext.get_mut::<SpanData>() else {
                return;
            };
            let created_here = carried_here.as_deref() == Some(data.origin.thread_id());
            if in_store || reentered || created_here {
                None
            } else {
                Some(data.carrier.take().unwrap_or_else(|| data.origin.fork_detached()))
            }
        };
        let entry = Entered {
            client: key,
            span: id.clone(),
            flow,
        };
        if let Some(flow) = push_entered(entry) {
            // The thread's list cannot be reached: keep the flow for the next entry.
            if let Some(data) = span.extensions_mut().get_mut::<SpanData>() {
                data.carrier = Some(flow);
            }
        }
    }

    fn on_exit(&self, id: &Id, ctx: Context<'_, R>) {
        let key = client_key(self.core().sink());
        let Some(Some(flow)) = take_entered(key, id, false).pop() else {
            return;
        };
        if let Some(span) = ctx.span(id) {
            if let Some(data) = span.extensions_mut().get_mut::<SpanData>() {
                data.carrier = Some(flow);
            }
        }
    }

    fn on_close(&self, id: Id, ctx: Context<'_, R>) {
        let core = self.core();
        let key = client_key(core.sink());
        let left = take_entered(key, &id, true);
        let Some(span) = ctx.span(&id) else {
            return;
        };
        let Some(mut data) = span.extensions_mut().remove::<SpanData>() else {
            return;
        };
        if data.carrier.is_none() {
            data.carrier = left.into_iter().flatten().next();
        }
        let meta = span.metadata();
        let duration = Some(nanos(data.start));
        let module: Arc<str> = Arc::from(meta.target());
        let mut kind = Some(EventKind::function_call(
            meta.name(),
            &module,
            Value::Object(data.args),
            &location(meta),
        ));
        let trace = data.origin.trace_id();
        let carrier = data.carrier.take();
        let carrier_end = carrier.as_ref().map(Flow::end);
        // Closed in a flow of its trace: the call returned there.
        self.with_current(&mut |flow| {
            if flow.trace_id() != trace {
                return;
            }
            if let Some(end) = &carrier_end {
                if core.is_enabled() && flow.is_sampled() {
                    let ev = core.tracer().join(flow, end, meta.name());
                    core.sink().emit(flow, ev);
                }
            }
            if let Some(kind) = kind.take() {
                core.record_in(flow, kind, duration);
            }
        });
        if let Some(kind) = kind.take() {
            let mut flow = carrier.unwrap_or_else(|| data.origin.fork_detached());
            core.record_in(&mut flow, kind, duration);
        }
    }

    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, R>) {
        let core = self.core();
        if !core.is_enabled() {
            return;
        }
        let mut fields = StateFields::default();
        event.record(&mut fields);
        if let Some(kind) = fields.into_kind(event.metadata()) {
            core.record(kind, None);
        }
    }
}

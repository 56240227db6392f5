//! Shared setup of the peer benchmarks (issue 11's baseline): the contenders beside the
//! SDK, and the clocks the benchmarks read.
//!
//! - [`capture`]: a `tracing` subscriber (`Registry` plus [`CaptureLayer`], a layer that
//!   copies every event's fields, its span and a timestamp into a shared `Vec`: the work a
//!   minimal in-memory event recorder does), installed as the global default once.
//! - [`otel`]: an OpenTelemetry `SdkTracerProvider` with a `BatchSpanProcessor` (its own
//!   background thread) over [`CountingExporter`], a no-op exporter that only counts what
//!   it is handed, as opentelemetry_sdk's own benches set one up.
//! - [`thread_cpu_ns`], [`process_cpu_ns`]: CPU time of the calling thread / this process.

use std::borrow::Cow;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime};

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{
    BatchConfigBuilder, BatchSpanProcessor, SdkTracer, SdkTracerProvider, SpanData, SpanExporter,
};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::prelude::*;
use tracing_subscriber::registry::LookupSpan;

/// The endpoint of a port nothing listens on (bound, then released: connections are refused).
pub fn refused_endpoint() -> String {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(9);
    format!("http://127.0.0.1:{port}")
}

// -- tracing --------------------------------------------------------------------------

/// What [`CaptureLayer`] keeps of one event.
#[derive(Debug, Clone, Default)]
pub struct Captured {
    /// The `variable` field (copied).
    pub variable: String,
    /// The `old` field.
    pub old: i64,
    /// The `new` field.
    pub new: i64,
    /// The id of the span the event happened in.
    pub span: u64,
    /// When the layer saw it.
    pub at: Option<SystemTime>,
}

struct Fields<'a>(&'a mut Captured);

impl Visit for Fields<'_> {
    fn record_i64(&mut self, field: &Field, value: i64) {
        match field.name() {
            "old" => self.0.old = value,
            "new" => self.0.new = value,
            _ => {}
        }
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "variable" {
            self.0.variable.push_str(value);
        }
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        if field.name() == "variable" {
            use std::fmt::Write as _;
            let _ = write!(self.0.variable, "{value:?}");
        }
    }
}

/// A layer that captures every event's fields into [`CaptureLayer::events`].
#[derive(Debug, Clone, Default)]
pub struct CaptureLayer {
    /// What was captured so far (the benchmarks empty it between timed chunks).
    pub events: Arc<Mutex<Vec<Captured>>>,
    /// How many events it captured in all.
    pub count: Arc<AtomicU64>,
}

impl<S> Layer<S> for CaptureLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut c = Captured {
            span: ctx.event_span(event).map(|s| s.id().into_u64()).unwrap_or(0),
            at: Some(SystemTime::now()),
            ..Captured::default()
        };
        event.record(&mut Fields(&mut c));
        self.events.lock().unwrap_or_else(|e| e.into_inner()).push(c);
        self.count.fetch_add(1, Ordering::Relaxed);
    }
}

/// The capture layer of the global `tracing` subscriber, installed on the first call.
pub fn capture() -> &'static CaptureLayer {
    static LAYER: OnceLock<CaptureLayer> = OnceLock::new();
    LAYER.get_or_init(|| {
        let layer = CaptureLayer::default();
        tracing_subscriber::registry()
            .with(layer.clone())
            .try_init()
            .expect("no other global tracing subscriber");
        layer
    })
}

/// One state change as a `tracing` event with three fields (inside the caller's span).
#[inline]
pub fn tracing_state_change(i: i64) {
    tracing::info!(variable = "alice.balance", old = i, new = i + 1);
}

// -- OpenTelemetry ----------------------------------------------------------------------

/// A no-op span exporter that counts the spans it is handed.
#[derive(Debug, Clone, Default)]
pub struct CountingExporter {
    /// Spans exported so far.
    pub exported: Arc<AtomicU64>,
}

impl SpanExporter for CountingExporter {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        self.exported.fetch_add(batch.len() as u64, Ordering::Relaxed);
        Ok(())
    }
}

/// An OpenTelemetry pipeline: provider, tracer, and the exporter's count.
pub struct Otel {
    /// The provider (force_flush between timed chunks).
    pub provider: SdkTracerProvider,
    /// Its tracer.
    pub tracer: SdkTracer,
    /// Spans the no-op exporter received.
    pub exported: Arc<AtomicU64>,
}

/// A provider with a batch span processor of `max_queue` spans over [`CountingExporter`];
/// `hold` makes it keep spans (export batch = queue, delay of an hour) for the memory test.
pub fn otel(max_queue: usize, hold: bool) -> Otel {
    let exporter = CountingExporter::default();
    let exported = exporter.exported.clone();
    let mut config = BatchConfigBuilder::default().with_max_queue_size(max_queue);
    if hold {
        config = config
            .with_max_export_batch_size(max_queue)
            .with_scheduled_delay(Duration::from_secs(3600));
    }
    let processor = BatchSpanProcessor::builder(exporter)
        .with_batch_config(config.build())
        .build();
    let provider = SdkTracerProvider::builder()
        .with_span_processor(processor)
        .build();
    let tracer = provider.tracer(Cow::Borrowed("bench"));
    Otel {
        provider,
        tracer,
        exported,
    }
}

/// One state change as an OpenTelemetry span with three attributes, ended at once, in the
/// current context (the caller's request span).
#[inline]
pub fn otel_state_change(tracer: &SdkTracer, i: i64) {
    use opentelemetry::trace::{Span as _, Tracer as _};
    use opentelemetry::KeyValue;
    let mut span = tracer
        .span_builder("state_change")
        .with_attributes([
            KeyValue::new("variable", "alice.balance"),
            KeyValue::new("old", i),
            KeyValue::new("new", i + 1),
        ])
        .start(tracer);
    span.end();
}

// -- clocks -----------------------------------------------------------------------------

fn timespec_ns(clock: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec into the valid pointer it is given.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// CPU time of the calling thread, in nanoseconds.
pub fn thread_cpu_ns() -> u64 {
    timespec_ns(libc::CLOCK_THREAD_CPUTIME_ID)
}

/// CPU time (user + system) of this process, all threads, in nanoseconds
/// (`CLOCK_PROCESS_CPUTIME_ID`: what `getrusage(RUSAGE_SELF)` reports, at nanosecond
/// resolution; child processes such as the real server are not counted).
pub fn process_cpu_ns() -> u64 {
    timespec_ns(libc::CLOCK_PROCESS_CPUTIME_ID)
}

/// CPU time of this process's threads, summed by thread name, in nanoseconds: the first
/// field of `/proc/self/task/<tid>/schedstat` (time spent on a CPU), keyed by that task's
/// `comm`. Threads that exit between two readings drop out of the later one. Empty where
/// `/proc` cannot be read.
pub fn cpu_by_thread_name() -> std::collections::BTreeMap<String, u64> {
    let mut by_name = std::collections::BTreeMap::new();
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return by_name;
    };
    for task in tasks.flatten() {
        let dir = task.path();
        let (Ok(comm), Ok(stat)) = (
            std::fs::read_to_string(dir.join("comm")),
            std::fs::read_to_string(dir.join("schedstat")),
        ) else {
            continue;
        };
        let Some(ns) = stat.split_whitespace().next().and_then(|v| v.parse::<u64>().ok()) else {
            continue;
        };
        *by_name.entry(comm.trim().to_string()).or_insert(0) += ns;
    }
    by_name
}

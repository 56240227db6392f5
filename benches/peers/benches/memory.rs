//! Issue 11's memory baseline: heap bytes held per queued state change with small values.
//!
//! A counting global allocator (allocated minus freed, all threads) is read before and
//! after `N` events are recorded in one flow while they cannot leave the process:
//! - this SDK (blocking and tokio clients): exporter pointed at a port nothing listens on
//!   (connections refused), queue capacity `N + 1,024`, no pacing; held = recorded - sent
//!   (queue + the exporter's batch in hand, which it keeps retrying);
//! - `raceway` 0.1: pointed at the same refused port, `N_PUBLISHED` events recorded within
//!   its first second (its timer has not posted yet: checked by timing);
//! - OpenTelemetry: batch span processor holding every span (queue and export batch of
//!   `N + 2`, a one-hour delay), no-op exporter (checked: nothing exported yet), counted
//!   from before the pipeline is built (its channel reserves every slot up front);
//! - the tracing capture layer's Vec.
//!
//! Containers that grow by doubling (the tracing layer's Vec, OpenTelemetry's) include the slack of
//! their last growth; the SDK's queue grows by lanes (16 records, then four times the
//! size of the full one, up to 4,096).
//!
//! Prints one `PEERS_MEM {json}` line per contender.
//!
//! `cargo bench --manifest-path benches/peers/Cargo.toml --bench memory`
#![allow(missing_docs)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::RefCell;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use opentelemetry::trace::{TraceContextExt as _, Tracer as _};
use raceway_peers_bench::{capture, otel, otel_state_change, refused_endpoint, tracing_state_change};
use raceway_proto::config::Config;
use raceway_proto::export::ExportStats;

struct Counting;

static LIVE: AtomicI64 = AtomicI64::new(0);

// SAFETY: every call is forwarded to `System` unchanged; the counter is only arithmetic.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc(layout);
        if !p.is_null() {
            LIVE.fetch_add(layout.size() as i64, Ordering::Relaxed);
        }
        p
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc_zeroed(layout);
        if !p.is_null() {
            LIVE.fetch_add(layout.size() as i64, Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout);
        LIVE.fetch_sub(layout.size() as i64, Ordering::Relaxed);
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = System.realloc(ptr, layout, new_size);
        if !p.is_null() {
            LIVE.fetch_add(new_size as i64 - layout.size() as i64, Ordering::Relaxed);
        }
        p
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn live() -> i64 {
    LIVE.load(Ordering::Relaxed)
}

const N: u64 = 100_000;
const N_PUBLISHED: u64 = 20_000;

fn config(url: &str) -> Config {
    let mut c = Config::new("mem");
    c.endpoint = Some(url.to_string());
    c.instance_id = Some("mem-1".into());
    c.export.server_capacity = None;
    c.export.queue_capacity = N as usize + 1_024;
    c.shutdown_timeout = Duration::from_millis(200);
    c.connect_timeout = Duration::from_millis(200);
    c
}

fn print(name: &str, events: u64, held: u64, bytes: i64, note: &str) {
    println!(
        "PEERS_MEM {{\"client\":\"{name}\",\"events\":{events},\"held\":{held},\"live_bytes\":{bytes},\
         \"bytes_per_queued_event\":{:.1},\"note\":\"{note}\"}}",
        bytes as f64 / held.max(1) as f64
    );
}

/// Records `n` state changes in one flow of a blocking client made from `config`, which
/// cannot send them, and prints the bytes held per event.
fn blocking_held(config: Config, n: u64, note: &str) {
    let client = raceway_blocking::RacewayClient::from_config(config).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let before = live();
    {
        let _flow = client.start_trace();
        for i in 0..n as i64 {
            client.track_state_change("alice.balance", Some(i), i + 1, "Write");
        }
    }
    report_held("raceway-blocking", n, before, &|| client.stats().export, note);
    let _ = client.shutdown_timeout(Duration::from_millis(200));
}

/// After `n` events were recorded since `before` (live bytes): lets the exporter take what
/// it can, then prints the live bytes per event the client still holds.
fn report_held(name: &str, n: u64, before: i64, export: &dyn Fn() -> ExportStats, note: &str) {
    std::thread::sleep(Duration::from_millis(200));
    let bytes = live() - before;
    let e = export();
    let held = e.recorded - e.sent - e.dropped();
    println!(
        "# {name}: recorded {}, sent {}, dropped {}, queued {}",
        e.recorded,
        e.sent,
        e.dropped(),
        held
    );
    print(name, n, held, bytes, note);
}

fn main() {
    let url = refused_endpoint();
    println!(
        "# size_of: raceway_proto Event {} B, tracing Captured {} B, otel SpanData {} B",
        std::mem::size_of::<raceway_proto::Event>(),
        std::mem::size_of::<raceway_peers_bench::Captured>(),
        std::mem::size_of::<opentelemetry_sdk::trace::SpanData>()
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");

    // raceway-blocking: a queue of N + 1,024, and the default queue (65,536) filled
    blocking_held(config(&url), N, "queue + exporter batch, collector refused");
    let mut c = config(&url);
    c.export.queue_capacity = Config::new("mem").export.queue_capacity;
    let n = c.export.queue_capacity as u64;
    blocking_held(
        c,
        n,
        "the default queue (65,536) filled: queue + exporter batch, collector refused",
    );

    // raceway-rt-tokio
    {
        let client =
            rt.block_on(async { raceway_rt_tokio::RacewayClient::from_config(config(&url)).unwrap() });
        std::thread::sleep(Duration::from_millis(100));
        let before = live();
        let _ = rt.block_on(client.in_new_trace(async {
            for i in 0..N as i64 {
                client.track_state_change("alice.balance", Some(i), i + 1, "Write");
            }
        }));
        report_held(
            "raceway-rt-tokio",
            N,
            before,
            &|| client.stats().export,
            "queue + exporter batch, collector refused",
        );
        let _ = client.shutdown_timeout(Duration::from_millis(200));
    }

    // raceway 0.1
    {
        let client = rt.block_on(async { raceway01::RacewayClient::new(&url, "mem") });
        // its timer ticks at once (nothing to post), then every second
        std::thread::sleep(Duration::from_millis(50));
        let t0 = Instant::now();
        let before = live();
        let ctx = raceway01::RacewayContext::new(
            "5f1c8d2e-8a7b-4c3d-9e2f-1a2b3c4d5e6f".into(),
            "mem".into(),
            "mem-1".into(),
        );
        raceway01::RACEWAY_CONTEXT.sync_scope(RefCell::new(ctx), || {
            for i in 0..N_PUBLISHED as i64 {
                client.track_state_change("alice.balance", Some(i), i + 1, "Write");
            }
        });
        let bytes = live() - before;
        let took = t0.elapsed();
        println!("# raceway-0.1: {N_PUBLISHED} recorded in {took:?} (must be under its 1 s flush timer)");
        assert!(
            took < Duration::from_millis(900),
            "raceway 0.1's timer may have posted meanwhile"
        );
        print(
            "raceway-0.1",
            N_PUBLISHED,
            N_PUBLISHED,
            bytes,
            "its unbounded buffer, before its timer posts",
        );
    }

    // OpenTelemetry
    {
        // Counted from before the pipeline is built: its channel reserves all its slots at
        // once (the SDK's queue grows as it fills), so the slots count either way.
        let before = live();
        let o = otel(N as usize + 2, true); // one above what it will hold: a full batch is exported
        {
            let parent = o.tracer.start("request");
            let _cx = opentelemetry::Context::current_with_span(parent).attach();
            for i in 0..N as i64 {
                otel_state_change(&o.tracer, i);
            }
        }
        std::thread::sleep(Duration::from_millis(300));
        let bytes = live() - before;
        let exported = o.exported.load(Ordering::Relaxed);
        println!("# otel: exported so far {exported}");
        assert_eq!(exported, 0, "the batch processor exported before the measurement");
        print(
            "otel",
            N,
            N + 1,
            bytes,
            "batch span processor holding every span (request span included)",
        );
        let _ = o.provider.shutdown();
    }

    // tracing capture layer
    {
        let layer = capture();
        let before = live();
        {
            let span = tracing::info_span!("request", method = "POST");
            let _e = span.enter();
            for i in 0..N as i64 {
                tracing_state_change(i);
            }
        }
        let bytes = live() - before;
        let held = layer.events.lock().unwrap().len() as u64;
        print(
            "tracing",
            N,
            held,
            bytes,
            "the capture layer's Vec (grown by doubling)",
        );
    }
    rt.shutdown_timeout(Duration::from_secs(1));
}

//! Issue 11's baseline: the caller's cost of recording one state change, this SDK beside
//! the published `raceway` 0.1, `tracing` (capturing layer) and OpenTelemetry (batch span
//! processor, no-op exporter), all in this one criterion run.
//!
//! Every contender records on its real path, exporting:
//! - `raceway-rt-tokio` (inside `client.in_new_trace(...)`) and `raceway-blocking` (inside
//!   `client.start_trace()`): `track_state_change(var, Some(i), i + 1, "Write")`, exporter
//!   on, pointed at a local collector that answers 200 (raceway-testkit, not decoding), no
//!   pacing (`server_capacity = None`: the collector is not the real server), queue large
//!   enough for a chunk per thread; the queue is flushed to the collector between timed
//!   chunks (untimed), and the run checks that nothing was dropped.
//! - `raceway-0.1`: the same call inside `RACEWAY_CONTEXT` (scope / sync_scope), its client
//!   pointed at the same collector (it buffers without bound and posts once a second).
//! - `tracing`: `info!(variable, old, new)` inside an entered span, global subscriber
//!   `Registry` + `CaptureLayer` (copies the fields, the span id and a timestamp into a
//!   shared Vec, emptied between chunks).
//! - `otel`: a span with three attributes started and ended in the context of a request
//!   span; `BatchSpanProcessor` (queue big enough, force_flush between chunks) over a
//!   counting no-op exporter; the run checks every span reached the exporter.
//!
//! Groups: `hot_path_record` (one thread, in a flow), `hot_path_clock/<client>/<n>` (a flow
//! whose vector clock holds n components), `hot_path_threads/<client>/<t>` (t threads at
//! once, each its own flow; criterion's time is the mean over the threads of each thread's
//! wall time, so it reads as ns per event per thread; the thread-CPU ns per event of the
//! same runs are printed as `PEERS_THREAD_CPU {json}` lines), `hot_path_noflow` (outside
//! any flow, and the SDK disabled).
//!
//! `cargo bench --manifest-path benches/peers/Cargo.toml --bench hot_path`
#![allow(missing_docs)]

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::hint::black_box;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Bencher, BenchmarkId, Criterion, Throughput};
use opentelemetry::trace::{TraceContextExt as _, Tracer as _};
use raceway_peers_bench::{capture, otel, otel_state_change, thread_cpu_ns, tracing_state_change, Otel};
use raceway_proto::client::AdapterApi as _;
use raceway_proto::config::Config;
use raceway_testkit::{Collector, Reply};

/// Events per timed chunk (one thread).
const CHUNK: u64 = 4096;
/// Events per thread per timed chunk when threads record at once: long enough (some 10 ms)
/// that the threads of a chunk really run at the same time, not one after another within
/// a scheduler time slice.
const THREAD_CHUNK: u64 = 32 * 1024;
/// The SDK's queue (and the batch span processor's): room for a chunk from each of 4 threads.
const QUEUE: usize = 4 * THREAD_CHUNK as usize + 8 * 1024;
const THREADS: [usize; 3] = [1, 2, 4];
const CLOCKS: [usize; 3] = [1, 16, 128];

type Record<'a> = &'a (dyn Fn(i64) + Sync);
type Flush<'a> = &'a (dyn Fn() + Sync);
/// Runs a body in a flow of the contender's kind on the current thread.
type InFlow<'a> = &'a (dyn Fn(&mut dyn FnMut()) + Sync);

/// For raceway 0.1, run last in its group: 10 samples in 0.5 s. It has no flush, and its
/// once-a-second POST of everything it holds outgrows the server's 2 MiB limit and is
/// refused, so it keeps every event it recorded: at criterion's usual iteration counts the
/// process held 19 GiB before the clock group ended, and was OOM-killed at 24 GiB.
fn few_samples(g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>) {
    g.sample_size(10);
    g.warm_up_time(Duration::from_millis(200));
    g.measurement_time(Duration::from_millis(500));
}

/// Times `record` in chunks of `CHUNK` calls, `flush` (untimed) after each.
fn chunked(b: &mut Bencher<'_>, record: Record<'_>, flush: Flush<'_>) {
    b.iter_custom(|iters| {
        let mut timed = Duration::ZERO;
        let mut left = iters;
        let mut i = 0i64;
        while left > 0 {
            let n = left.min(CHUNK);
            let start = Instant::now();
            for _ in 0..n {
                record(black_box(i));
                i += 1;
            }
            timed += start.elapsed();
            left -= n;
            flush();
        }
        timed
    });
}

/// Thread-CPU ns and events per `client/threads`, printed at the end.
static THREAD_CPU: Mutex<BTreeMap<String, (u64, u64)>> = Mutex::new(BTreeMap::new());

/// `threads` threads record at once, each in its own flow, in chunks of `THREAD_CHUNK` separated
/// by barriers; thread 0 flushes between chunks (untimed). Returns the mean of the threads'
/// timed wall time.
fn threaded(
    b: &mut Bencher<'_>,
    key: &str,
    threads: usize,
    in_flow: InFlow<'_>,
    record: Record<'_>,
    flush: Flush<'_>,
) {
    b.iter_custom(|iters| {
        let barrier = Barrier::new(threads);
        let totals = Mutex::new((Duration::ZERO, 0u64));
        std::thread::scope(|s| {
            for _ in 0..threads {
                let (barrier, totals) = (&barrier, &totals);
                s.spawn(move || {
                    let mut wall = Duration::ZERO;
                    let mut cpu = 0u64;
                    in_flow(&mut || {
                        let mut left = iters;
                        let mut i = 0i64;
                        while left > 0 {
                            let n = left.min(THREAD_CHUNK);
                            barrier.wait();
                            let (c0, start) = (thread_cpu_ns(), Instant::now());
                            for _ in 0..n {
                                record(black_box(i));
                                i += 1;
                            }
                            wall += start.elapsed();
                            cpu += thread_cpu_ns() - c0;
                            left -= n;
                            if barrier.wait().is_leader() {
                                flush();
                            }
                            barrier.wait();
                        }
                    });
                    let mut tot = totals.lock().unwrap();
                    tot.0 += wall;
                    tot.1 += cpu;
                });
            }
        });
        let (wall, cpu) = *totals.lock().unwrap();
        let mut m = THREAD_CPU.lock().unwrap();
        let e = m.entry(key.to_string()).or_default();
        e.0 += cpu;
        e.1 += iters * threads as u64;
        wall / threads as u32
    });
}

struct Env {
    url: String,
    rt: tokio::runtime::Runtime,
    _collector: Collector,
}

fn sdk_config(url: &str) -> Config {
    let mut c = Config::new("bench");
    c.endpoint = Some(url.to_string());
    c.instance_id = Some("bench-1".into());
    // The collector is not the real server: no pacing to the real server's capacity.
    c.export.server_capacity = None;
    c.export.queue_capacity = QUEUE;
    c.shutdown_timeout = Duration::from_millis(500);
    c
}

fn published_ctx(clock: usize) -> raceway01::RacewayContext {
    let mut ctx = raceway01::RacewayContext::new(
        "5f1c8d2e-8a7b-4c3d-9e2f-1a2b3c4d5e6f".into(),
        "bench".into(),
        "bench-1".into(),
    );
    for k in 1..clock {
        ctx.clock_vector.push((format!("bench#worker-{k}"), k as u64));
    }
    ctx
}

/// Grows the current flow's clock to `n` components by forking and joining `n - 1` flows;
/// evaluates to the clock's length.
macro_rules! grow_clock {
    ($client:expr, $n:expr) => {{
        for _ in 1..$n {
            let child = $client.fork_current("worker").expect("in a flow");
            $client.join_flow(&child.end());
        }
        let mut len = 0;
        $client.with_flow(&mut |f| len = f.clock().len());
        len
    }};
}

fn check_sdk(name: &str, stats: raceway_proto::client::Stats) {
    eprintln!(
        "# {name}: recorded {}, sent {}, dropped {} (queue full {})",
        stats.core.recorded,
        stats.export.sent,
        stats.export.dropped(),
        stats.export.dropped_queue_full
    );
    assert_eq!(
        stats.export.dropped(),
        0,
        "{name}: the benchmark measured a drop path"
    );
}

fn check_otel(name: &str, o: &Otel, made: u64) {
    let _ = o.provider.force_flush();
    let exported = o.exported.load(Ordering::Relaxed);
    eprintln!("# {name}: spans made {made} (request spans included), exported {exported}");
    assert_eq!(exported, made, "{name}: the batch processor dropped spans");
}

fn bench(c: &mut Criterion) {
    let collector = Collector::start();
    // Answer 200 without decoding: the caller's path is measured, and a decoding collector
    // on the same 2 cores would steal time from it.
    collector.set_always(Some(Reply::Status(200)));
    let env = Env {
        url: collector.url(),
        rt: tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime"),
        _collector: collector,
    };
    let rt = &env.rt;
    let tokio_client =
        rt.block_on(async { raceway_rt_tokio::RacewayClient::from_config(sdk_config(&env.url)).unwrap() });
    let blocking_client = raceway_blocking::RacewayClient::from_config(sdk_config(&env.url)).unwrap();
    let published = rt.block_on(async { Arc::new(raceway01::RacewayClient::new(&env.url, "bench")) });
    let layer = capture();
    let o = otel(QUEUE, false);
    let tracer = o.tracer.clone();
    let otel_made = std::sync::atomic::AtomicU64::new(0);

    // The collector keeps every body it is sent: forget them after each flush (with 128
    // clock components an event is some 6 KB on the wire, and the process ran out of memory).
    let t_flush = || {
        let _ = tokio_client.flush_blocking(Duration::from_secs(60));
        env._collector.clear();
    };
    let b_flush = || {
        let _ = blocking_client.flush(Duration::from_secs(60));
        env._collector.clear();
    };
    // raceway 0.1 has no flush: only forget what its timer posted.
    let no_flush = || env._collector.clear();
    let tr_flush = || layer.events.lock().unwrap().clear();
    let o_flush = || {
        let _ = o.provider.force_flush();
    };
    let t_rec = |i: i64| tokio_client.track_state_change("alice.balance", Some(i), i + 1, "Write");
    let b_rec = |i: i64| blocking_client.track_state_change("alice.balance", Some(i), i + 1, "Write");
    let p_rec = |i: i64| published.track_state_change("alice.balance", Some(i), i + 1, "Write");
    let tr_rec = |i: i64| tracing_state_change(i);
    let o_rec = |i: i64| {
        otel_made.fetch_add(1, Ordering::Relaxed);
        otel_state_change(&tracer, i)
    };

    // -- 1. one thread, in a request flow --------------------------------------------
    let mut g = c.benchmark_group("hot_path_record");
    g.throughput(Throughput::Elements(1));
    g.bench_function("raceway-rt-tokio", |b| {
        let _ = rt.block_on(tokio_client.in_new_trace(async { chunked(b, &t_rec, &t_flush) }));
    });
    g.bench_function("raceway-blocking", |b| {
        let _flow = blocking_client.start_trace();
        chunked(b, &b_rec, &b_flush);
    });
    g.bench_function("tracing", |b| {
        let span = tracing::info_span!("request", method = "POST");
        let _e = span.enter();
        chunked(b, &tr_rec, &tr_flush);
    });
    g.bench_function("otel", |b| {
        otel_made.fetch_add(1, Ordering::Relaxed);
        let parent = tracer.start("request");
        let _cx = opentelemetry::Context::current_with_span(parent).attach();
        chunked(b, &o_rec, &o_flush);
    });
    few_samples(&mut g);
    g.bench_function("raceway-0.1", |b| {
        rt.block_on(
            raceway01::RACEWAY_CONTEXT.scope(RefCell::new(published_ctx(1)), async {
                chunked(b, &p_rec, &no_flush)
            }),
        );
    });
    g.finish();

    // -- 2. vector clock size -------------------------------------------------------------
    let mut g = c.benchmark_group("hot_path_clock");
    g.throughput(Throughput::Elements(1));
    for n in CLOCKS {
        g.bench_with_input(BenchmarkId::new("raceway-rt-tokio", n), &n, |b, &n| {
            let _ = rt.block_on(tokio_client.in_new_trace(async {
                assert_eq!(grow_clock!(tokio_client, n), n);
                t_flush();
                chunked(b, &t_rec, &t_flush);
            }));
        });
        g.bench_with_input(BenchmarkId::new("raceway-blocking", n), &n, |b, &n| {
            let _flow = blocking_client.start_trace();
            assert_eq!(grow_clock!(blocking_client, n), n);
            b_flush();
            chunked(b, &b_rec, &b_flush);
        });
    }
    few_samples(&mut g);
    for n in CLOCKS {
        g.bench_with_input(BenchmarkId::new("raceway-0.1", n), &n, |b, &n| {
            rt.block_on(
                raceway01::RACEWAY_CONTEXT.scope(RefCell::new(published_ctx(n)), async {
                    chunked(b, &p_rec, &no_flush)
                }),
            );
        });
    }
    g.finish();

    // -- 3. threads recording at once -----------------------------------------------------
    let handle = rt.handle().clone();
    let t_flow = |body: &mut dyn FnMut()| {
        let _ = handle.block_on(tokio_client.in_new_trace(async { body() }));
    };
    let b_flow = |body: &mut dyn FnMut()| {
        let _flow = blocking_client.start_trace();
        body();
    };
    let p_flow = |body: &mut dyn FnMut()| {
        raceway01::RACEWAY_CONTEXT.sync_scope(RefCell::new(published_ctx(1)), body);
    };
    let tr_flow = |body: &mut dyn FnMut()| {
        let span = tracing::info_span!("request", method = "POST");
        let _e = span.enter();
        body();
    };
    let o_flow = |body: &mut dyn FnMut()| {
        otel_made.fetch_add(1, Ordering::Relaxed); // the request span is exported too
        let parent = tracer.start("request");
        let _cx = opentelemetry::Context::current_with_span(parent).attach();
        body();
    };
    // raceway 0.1 is left out here: it keeps every event it records (see `few_samples`),
    // and with several threads it outgrows the machine. Its single-thread and clock
    // figures are above.
    let _ = (&p_flow, &no_flush);
    let contenders: [(&str, InFlow<'_>, Record<'_>, Flush<'_>); 4] = [
        ("raceway-rt-tokio", &t_flow, &t_rec, &t_flush),
        ("raceway-blocking", &b_flow, &b_rec, &b_flush),
        ("tracing", &tr_flow, &tr_rec, &tr_flush),
        ("otel", &o_flow, &o_rec, &o_flush),
    ];
    let mut g = c.benchmark_group("hot_path_threads");
    g.throughput(Throughput::Elements(1));
    for t in THREADS {
        for (name, in_flow, record, flush) in contenders {
            let key = format!("{name}/{t}");
            g.bench_with_input(BenchmarkId::new(name, t), &t, |b, &t| {
                threaded(b, &key, t, in_flow, record, flush)
            });
        }
    }
    g.finish();
    for (key, (cpu, events)) in THREAD_CPU.lock().unwrap().iter() {
        let (client, threads) = key.rsplit_once('/').unwrap();
        println!(
            "PEERS_THREAD_CPU {{\"client\":\"{client}\",\"threads\":{threads},\"events\":{events},\"cpu_ns_per_event\":{:.2}}}",
            *cpu as f64 / (*events).max(1) as f64
        );
    }

    // -- 4. outside any flow, and disabled ------------------------------------------------
    let mut g = c.benchmark_group("hot_path_noflow");
    g.throughput(Throughput::Elements(1));
    let before = tokio_client.stats().core.no_context;
    let mut ran = false;
    g.bench_function("raceway-rt-tokio/outside-flow", |b| {
        ran = true;
        b.iter(|| t_rec(black_box(1)))
    });
    // Only when the bench ran: a filter (`cargo bench -- hot_path_record`) skips it.
    assert!(
        !ran || tokio_client.stats().core.no_context > before,
        "outside a flow: nothing to record"
    );
    g.bench_function("raceway-0.1/outside-scope", |b| b.iter(|| p_rec(black_box(1))));
    let mut cfg = sdk_config(&env.url);
    cfg.enabled = false;
    let t_off = rt.block_on(async { raceway_rt_tokio::RacewayClient::from_config(cfg.clone()).unwrap() });
    g.bench_function("raceway-rt-tokio/disabled", |b| {
        let _ = rt.block_on(t_off.in_new_trace(async {
            b.iter(|| t_off.track_state_change("alice.balance", Some(black_box(1i64)), 2i64, "Write"))
        }));
    });
    let b_off = raceway_blocking::RacewayClient::from_config(cfg).unwrap();
    g.bench_function("raceway-blocking/disabled", |b| {
        let _flow = b_off.start_trace();
        b.iter(|| b_off.track_state_change("alice.balance", Some(black_box(1i64)), 2i64, "Write"))
    });
    assert_eq!(t_off.stats().core.recorded + b_off.stats().core.recorded, 0);
    g.finish();

    check_sdk("raceway-rt-tokio", tokio_client.stats());
    check_sdk("raceway-blocking", blocking_client.stats());
    check_otel("otel", &o, otel_made.load(Ordering::Relaxed));
    eprintln!("# tracing: captured {}", layer.count.load(Ordering::Relaxed));
    let _ = tokio_client.shutdown_timeout(Duration::from_millis(500));
    let _ = blocking_client.shutdown_timeout(Duration::from_millis(500));
    let _ = o.provider.shutdown();
}

criterion_group!(benches, bench);
criterion_main!(benches);

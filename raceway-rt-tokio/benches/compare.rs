//! Per-event record cost of every client of this workspace against the published
//! `raceway` 0.1 crate, **in the same run** (so the ratios in BENCHMARKS.md compare
//! numbers taken on the same machine, minutes apart).
//!
//! Every client records `track_state_change` inside a flow on its real export-mode hot
//! path (record, then enqueue for export to a local collector). Events are recorded in
//! chunks that fit the default queue (8192), flushed to the collector between chunks
//! outside the timed part, so no timed call takes the cheaper full-queue drop path. The
//! collector is not the real server, so the clients do not pace to the real server's
//! capacity (paced, each flush waited seconds and criterion timed a handful of chunks).
//! `raceway` 0.1 records inside its task-local context, its client made in a tokio runtime
//! and pointed at the same collector (it buffers without bound and flushes on a timer).
//!
//! `cargo bench -p raceway-rt-tokio --bench compare` (`scripts/benchmarks.sh` runs it).
#![allow(missing_docs)] // criterion's macros generate undocumented items

use std::cell::RefCell;
use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Bencher, Criterion, Throughput};
use raceway_testkit::{Collector, Reply};

const CHUNK: u64 = 4096;

/// The clients' configuration: the collector at `url`, no pacing.
fn config(url: &str) -> raceway_proto::config::Config {
    let mut c = raceway_proto::config::Config::new("bench");
    c.endpoint = Some(url.to_string());
    c.export.server_capacity = None;
    c
}

/// Times `record` in chunks of `CHUNK`, calling `flush` (untimed) after each.
fn chunked(b: &mut Bencher<'_>, record: &dyn Fn(), flush: &dyn Fn()) {
    b.iter_custom(|iters| raceway_testkit::timing::in_chunks(iters, CHUNK, record, flush));
}

fn record_per_event(c: &mut Criterion) {
    let collector = Collector::start();
    // The collector answers 200 without decoding: what is measured is the client's hot
    // path, and a decoding collector on the same 2 cores would steal time from it.
    collector.set_always(Some(Reply::Status(200)));
    let url = collector.url();
    // The clients below are built by the published constructors, which read the
    // environment: the collector is not the real server, so no pacing to its capacity.
    std::env::set_var("RACEWAY_SERVER_BUFFER", "0");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let mut g = c.benchmark_group("record_per_event");
    g.throughput(Throughput::Elements(1));

    // raceway-rt-tokio
    let tokio_client = rt.block_on(async {
        raceway_rt_tokio::RacewayClient::from_config(config(&url)).expect("valid config")
    });
    g.bench_function("raceway-rt-tokio", |b| {
        rt.block_on(tokio_client.in_new_trace(async {
            chunked(
                b,
                &|| {
                    tokio_client.track_state_change(
                        "alice.balance",
                        Some(100_i64),
                        black_box(90_i64),
                        "Write",
                    )
                },
                &|| {
                    let _ = tokio_client.flush_blocking(Duration::from_secs(30));
                },
            )
        }));
    });
    tokio_client.shutdown();
    let tokio_drops = tokio_client.stats().export.dropped_queue_full;

    // raceway-blocking
    let blocking = raceway_blocking::RacewayClient::from_config(config(&url)).expect("valid config");
    g.bench_function("raceway-blocking", |b| {
        let _flow = blocking.start_trace();
        chunked(
            b,
            &|| blocking.track_state_change("alice.balance", Some(100_i64), black_box(90_i64), "Write"),
            &|| {
                let _ = blocking.flush(Duration::from_secs(30));
            },
        )
    });
    blocking.shutdown();
    let blocking_drops = blocking.stats().export.dropped_queue_full;

    // raceway-rt-async-std
    let async_std_client =
        raceway_rt_async_std::RacewayClient::from_config(config(&url)).expect("valid config");
    g.bench_function("raceway-rt-async-std", |b| {
        async_std::task::block_on(async_std_client.in_new_trace(async {
            chunked(
                b,
                &|| {
                    async_std_client.track_state_change(
                        "alice.balance",
                        Some(100_i64),
                        black_box(90_i64),
                        "Write",
                    )
                },
                &|| {
                    let _ = async_std_client.flush_blocking(Duration::from_secs(30));
                },
            )
        }));
    });
    async_std_client.shutdown();
    let async_std_drops = async_std_client.stats().export.dropped_queue_full;

    // raceway 0.1
    let published = rt.block_on(async { Arc::new(raceway01::RacewayClient::new(&url, "bench")) });
    g.bench_function("raceway-0.1", |b| {
        let ctx = raceway01::RacewayContext::new(
            "4bf92f35-77b3-4da6-a3ce-929d0e0e4736".into(),
            "bench".into(),
            "i-1".into(),
        );
        rt.block_on(raceway01::RACEWAY_CONTEXT.scope(RefCell::new(ctx), async {
            b.iter(|| {
                published.track_state_change("alice.balance", Some(100_i64), black_box(90_i64), "Write")
            })
        }));
    });
    g.finish();
    // Every timed call took the enqueue path.
    assert_eq!(
        (tokio_drops, blocking_drops, async_std_drops),
        (0, 0, 0),
        "a timed call hit the full-queue drop path"
    );
}

criterion_group!(benches, record_per_event);
criterion_main!(benches);

//! Per-event cost of `track_state_change` inside a request's flow: this crate against the
//! published `raceway` 0.1 crate, in the same run, both exporting to the same local
//! collector (so both hot paths are the real ones: record, then queue for export).
//!
//! `cargo bench -p raceway-rt-tokio --bench record`
#![allow(missing_docs)] // criterion's macros generate undocumented items

use std::cell::RefCell;
use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use raceway_testkit::{Collector, Reply};

fn track_state_change(c: &mut Criterion) {
    let collector = Collector::start();
    // The collector answers 200 without decoding: what is measured is the client's hot
    // path, and a decoding collector on the same 2 cores would steal time from it.
    collector.set_always(Some(Reply::Status(200)));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let mut g = c.benchmark_group("track_state_change");

    // This crate: export mode, default queue and batching. Events are recorded in chunks
    // that fit the queue, and the queue is flushed to the collector between chunks
    // (outside the timed part), so every timed call takes the real path: record, then
    // enqueue. None takes the cheaper drop path of a full queue. The collector is not the
    // real server: no pacing to the real server's capacity (with it, each flush waited
    // seconds and criterion timed a handful of chunks).
    let mut config = raceway_rt_tokio::Config::new("bench");
    config.endpoint = Some(collector.url());
    config.export.server_capacity = None;
    let ours =
        rt.block_on(async { raceway_rt_tokio::RacewayClient::from_config(config).expect("valid config") });
    const CHUNK: u64 = 4096;
    g.bench_function("raceway-rt-tokio", |b| {
        rt.block_on(ours.in_new_trace(async {
            b.iter_custom(|iters| {
                raceway_testkit::timing::in_chunks(
                    iters,
                    CHUNK,
                    || ours.track_state_change("alice.balance", Some(100_i64), black_box(90_i64), "Write"),
                    || {
                        let _ = ours.flush_blocking(Duration::from_secs(30));
                    },
                )
            })
        }));
    });
    ours.shutdown();
    // Say how many events took the drop path (queue full) rather than the queue.
    let stats = ours.stats();
    eprintln!(
        "raceway-rt-tokio: recorded {}, sent {}, dropped (queue full) {}",
        stats.core.recorded, stats.export.sent, stats.export.dropped_queue_full
    );

    // The published crate, inside its own task-local context.
    let published = rt.block_on(async { Arc::new(raceway01::RacewayClient::new(&collector.url(), "bench")) });
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
}

criterion_group!(benches, track_state_change);
criterion_main!(benches);

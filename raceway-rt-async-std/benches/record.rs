//! Per-event cost of `track_state_change` inside an instrumented flow, on the real hot
//! path: record the event, then queue it for export to a local collector (default queue
//! and batching; the exporter thread sends in the background). Events are recorded in
//! chunks that fit the queue, flushed between chunks outside the timed part, so no timed
//! call takes the full queue's drop path (checked at the end). The collector is not the
//! real server: no pacing to the real server's capacity.
//!
//! `cargo bench -p raceway-rt-async-std --bench record -- --warm-up-time 1 --measurement-time 3`

// criterion's macros define undocumented functions.
#![allow(missing_docs)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Bencher, Criterion};
use raceway_rt_async_std::{Config, RacewayClient};
use raceway_testkit::{Collector, Reply};

/// Events per timed chunk (the default queue holds 16 chunks).
const CHUNK: u64 = 4096;

/// Times `record` in chunks of `CHUNK`, flushing (untimed) after each.
fn chunked(b: &mut Bencher<'_>, client: &RacewayClient, record: &dyn Fn()) {
    b.iter_custom(|iters| {
        raceway_testkit::timing::in_chunks(iters, CHUNK, record, || {
            let _ = client.flush_blocking(Duration::from_secs(30));
        })
    });
}

fn track_state_change(c: &mut Criterion) {
    let collector = Collector::start();
    // The collector answers 200 without decoding: what is measured is the client's hot
    // path, and a decoding collector on the same 2 cores would steal time from it.
    collector.set_always(Some(Reply::Status(200)));
    let mut g = c.benchmark_group("track_state_change");

    let mut config = Config::new("bench");
    config.endpoint = Some(collector.url());
    config.export.server_capacity = None;
    let exporting = RacewayClient::from_config(config).expect("valid config");
    let record = || exporting.track_state_change("alice.balance", Some(100_i64), black_box(90_i64), "Write");
    g.bench_function("export, in Instrumented (async-std block_on)", |b| {
        async_std::task::block_on(exporting.in_new_trace(async { chunked(b, &exporting, &record) }));
    });
    g.bench_function("export, in Instrumented (futures block_on)", |b| {
        futures::executor::block_on(exporting.in_new_trace(async { chunked(b, &exporting, &record) }));
    });
    let dropped = exporting.stats().export.dropped_queue_full;
    assert_eq!(dropped, 0, "the benchmark measured the drop path");
    exporting.shutdown();

    // Outside any flow: the cost of finding no context (counted, nothing recorded).
    let local = RacewayClient::local("bench");
    g.bench_function("outside any flow", |b| {
        b.iter(|| local.track_state_change("alice.balance", Some(100_i64), black_box(90_i64), "Write"))
    });
    g.finish();
}

criterion_group!(benches, track_state_change);
criterion_main!(benches);

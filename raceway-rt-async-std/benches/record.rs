//! Per-event cost of `track_state_change` inside an instrumented flow, on the real hot
//! path: record the event, then queue it for export to a local collector (default queue
//! and batching; the exporter thread sends in the background).
//!
//! `cargo bench -p raceway-rt-async-std --bench record -- --warm-up-time 1 --measurement-time 3`

// criterion's macros define undocumented functions.
#![allow(missing_docs)]

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use raceway_rt_async_std::RacewayClient;
use raceway_testkit::{Collector, Reply};

fn track_state_change(c: &mut Criterion) {
    let collector = Collector::start();
    // The collector answers 200 without decoding: what is measured is the client's hot
    // path, and a decoding collector on the same 2 cores would steal time from it.
    collector.set_always(Some(Reply::Status(200)));
    let mut g = c.benchmark_group("track_state_change");

    let exporting = RacewayClient::new(&collector.url(), "bench");
    g.bench_function("export, in Instrumented (async-std block_on)", |b| {
        async_std::task::block_on(exporting.in_new_trace(async {
            b.iter(|| {
                exporting.track_state_change("alice.balance", Some(100_i64), black_box(90_i64), "Write")
            })
        }));
    });
    g.bench_function("export, in Instrumented (futures block_on)", |b| {
        futures::executor::block_on(exporting.in_new_trace(async {
            b.iter(|| {
                exporting.track_state_change("alice.balance", Some(100_i64), black_box(90_i64), "Write")
            })
        }));
    });
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

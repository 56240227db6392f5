//! Per-event cost of `track_state_change` inside a flow: this crate (export mode and local
//! mode) against the published `raceway` 0.1 crate, in the same run.
//!
//! - `raceway-blocking/export`: the export-mode hot path, record + push into the bounded
//!   queue (the exporter thread runs, pointed at an unused localhost port). Between timed
//!   chunks the benchmark empties the queue, untimed, so it never measures the full-queue
//!   drop path.
//! - `raceway-blocking/local`: local mode, record + the local analyser's `observe`.
//! - `raceway-blocking/unsampled`: inside a flow whose trace the sampler left out (the
//!   check before anything is built); `raceway-blocking/disabled`: `RACEWAY_DISABLED`.
//! - `raceway-0.1`: the published crate's `track_state_change` inside
//!   `RACEWAY_CONTEXT.scope(...)`, its client made inside a tokio runtime (its constructor
//!   spawns its flush task), pointed at the same unused port.
//!
//! `cargo bench -p raceway-blocking --bench record -- --warm-up-time 1 --measurement-time 3`

#![allow(missing_docs)] // criterion_group! generates an undocumented function

use raceway_proto::client::AdapterApi as _;
use std::cell::RefCell;
use std::net::TcpListener;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use raceway_blocking::{Config, RacewayClient};

/// Events recorded per timed chunk (the queue holds four chunks).
const CHUNK: u64 = 16 * 1024;

fn unused_endpoint() -> String {
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(9);
    format!("http://127.0.0.1:{port}")
}

fn record(c: &mut Criterion) {
    let endpoint = unused_endpoint();
    let mut group = c.benchmark_group("blocking_record");
    group.throughput(Throughput::Elements(1));

    // This crate, export mode.
    let mut config = Config::new("bench");
    config.endpoint = Some(endpoint.clone());
    config.export.queue_capacity = 4 * CHUNK as usize;
    config.shutdown_timeout = Duration::from_millis(100);
    let client = RacewayClient::from_config(config).expect("valid config");
    {
        let _flow = client.start_trace();
        let mut drained = Vec::new();
        group.bench_function("raceway-blocking/export", |b| {
            b.iter_custom(|iters| {
                raceway_testkit::timing::in_chunks(
                    iters,
                    CHUNK,
                    || client.track_state_change("balance", Some(100i64), 90i64, "Write"),
                    || {
                        client.sink().drain(usize::MAX, &mut drained);
                        drained.clear();
                    },
                )
            })
        });
    }
    let dropped = client.stats().export.dropped_queue_full;
    assert_eq!(dropped, 0, "the benchmark measured the drop path");
    drop(client);

    // This crate, local mode (the analyser sees every event).
    let local = RacewayClient::local("bench");
    {
        let _flow = local.start_trace();
        group.bench_function("raceway-blocking/local", |b| {
            b.iter(|| local.track_state_change("balance", Some(100i64), 90i64, "Write"))
        });
    }
    drop(local);

    // An unsampled trace (issue 13's goal: at most 5 ns), and the SDK disabled.
    let mut config = Config::new("bench");
    config.endpoint = Some(endpoint.clone());
    config.sampler = raceway_proto::sampling::Sampler::always_off();
    config.shutdown_timeout = Duration::from_millis(100);
    let unsampled = RacewayClient::from_config(config).expect("valid config");
    {
        let _flow = unsampled.start_trace();
        group.bench_function("raceway-blocking/unsampled", |b| {
            b.iter(|| unsampled.track_state_change("balance", Some(100i64), 90i64, "Write"))
        });
    }
    assert_eq!(
        unsampled.stats().core.recorded,
        0,
        "an unsampled trace recorded events"
    );
    drop(unsampled);
    let mut config = Config::new("bench");
    config.enabled = false;
    let disabled = RacewayClient::from_config(config).expect("valid config");
    group.bench_function("raceway-blocking/disabled", |b| {
        b.iter(|| disabled.track_state_change("balance", Some(100i64), 90i64, "Write"))
    });
    drop(disabled);

    // The published crate.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let old = runtime.block_on(async { raceway01::RacewayClient::new(&endpoint, "bench") });
    let context = raceway01::RacewayContext::new(
        "5f1c8d2e-8a7b-4c3d-9e2f-1a2b3c4d5e6f".into(),
        "bench".into(),
        "bench-1".into(),
    );
    runtime.block_on(raceway01::RACEWAY_CONTEXT.scope(RefCell::new(context), async {
        group.bench_function("raceway-0.1", |b| {
            b.iter(|| old.track_state_change("balance", Some(100i64), 90i64, "Write"))
        });
    }));
    group.finish();
    runtime.shutdown_timeout(Duration::from_millis(100));
}

criterion_group!(benches, record);
criterion_main!(benches);

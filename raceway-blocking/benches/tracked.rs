//! Tracked state against the equivalent `track_state_change` calls, in the same run
//! (issue 13: a tracked read or write costs no more than the call it replaces).
//!
//! Each pair records the same event (kind, values, access type) in export mode: record +
//! push into the bounded queue, with the exporter thread pointed at an unused localhost
//! port. Between timed chunks the queue is emptied, untimed, so the full-queue drop path
//! is never measured.
//!
//! - `read/...`: a `Read` with the value read; `write/...`: a `Write` with old and new
//!   values. Two baselines each: `track_state_change` alone (the value in an atomic, the
//!   cheapest storage there is), and `mutex+track_state_change`, the value in a
//!   `std::sync::Mutex` as shared state needs one (what the banking demo had before it used
//!   `Tracked`), against `tracked_get` / `tracked_set`;
//! - `atomic_rmw/fetch_add+track_state_change` vs `atomic_rmw/tracked_fetch_add`: an
//!   `AtomicU64::fetch_add` plus its `AtomicRMW` (the tracked one adds the ordering tag);
//! - `unsampled/...`: the same writes inside a trace the sampler left out.
//!
//! `cargo bench -p raceway-blocking --bench tracked -- --warm-up-time 1 --measurement-time 3`

#![allow(missing_docs)] // criterion_group! generates an undocumented function

use std::hint::black_box;
use std::net::TcpListener;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use raceway_blocking::{AccessType, Config, RacewayClient, Tracked, TrackedAtomicU64};
use raceway_proto::client::AdapterApi as _;

/// Events recorded per timed chunk (the queue holds four chunks).
const CHUNK: u64 = 16 * 1024;

fn unused_endpoint() -> String {
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(9);
    format!("http://127.0.0.1:{port}")
}

fn client(endpoint: &str, sampled: bool) -> Arc<RacewayClient> {
    let mut config = Config::new("bench");
    config.endpoint = Some(endpoint.to_string());
    config.export.queue_capacity = 4 * CHUNK as usize;
    config.shutdown_timeout = Duration::from_millis(100);
    if !sampled {
        config.sampler = raceway_proto::sampling::Sampler::always_off();
    }
    Arc::new(RacewayClient::from_config(config).expect("valid config"))
}

/// Times `op` in chunks, emptying the queue between chunks (untimed).
fn chunked(client: &RacewayClient, iters: u64, op: impl FnMut()) -> Duration {
    let mut drained = Vec::new();
    raceway_testkit::timing::in_chunks(iters, CHUNK, op, || {
        client.sink().drain(usize::MAX, &mut drained);
        drained.clear();
    })
}

fn tracked(c: &mut Criterion) {
    let endpoint = unused_endpoint();
    let rw = client(&endpoint, true);
    let _flow = rw.start_trace();
    let mut group = c.benchmark_group("tracked_vs_track_state_change");
    group.throughput(Throughput::Elements(1));

    let plain = AtomicU64::new(100);
    let locked = Mutex::new(100i64);
    let lock = || locked.lock().unwrap_or_else(PoisonError::into_inner);
    let balance = Tracked::new(100i64, rw.clone(), "balance");
    group.bench_function("read/track_state_change", |b| {
        b.iter_custom(|iters| {
            chunked(&rw, iters, || {
                let v = black_box(plain.load(Ordering::Relaxed) as i64);
                rw.track_state_change("balance", None::<i64>, v, "Read");
            })
        })
    });
    group.bench_function("read/mutex+track_state_change", |b| {
        b.iter_custom(|iters| {
            chunked(&rw, iters, || {
                let guard = lock();
                rw.track_state_change("balance", None::<i64>, *guard, "Read");
                black_box(*guard);
            })
        })
    });
    group.bench_function("read/tracked_get", |b| {
        b.iter_custom(|iters| {
            chunked(&rw, iters, || {
                black_box(balance.get());
            })
        })
    });
    group.bench_function("write/track_state_change", |b| {
        b.iter_custom(|iters| {
            chunked(&rw, iters, || {
                let old = plain.load(Ordering::Relaxed) as i64;
                plain.store(black_box(90), Ordering::Relaxed);
                rw.track_state_change("balance", Some(old), 90i64, "Write");
            })
        })
    });
    group.bench_function("write/mutex+track_state_change", |b| {
        b.iter_custom(|iters| {
            chunked(&rw, iters, || {
                let mut guard = lock();
                let new = black_box(90);
                rw.track_state_change("balance", Some(*guard), new, "Write");
                *guard = new;
            })
        })
    });
    group.bench_function("write/tracked_set", |b| {
        b.iter_custom(|iters| chunked(&rw, iters, || balance.set(black_box(90))))
    });

    let counter = TrackedAtomicU64::new(0, rw.clone(), "hits");
    group.bench_function("atomic_rmw/fetch_add+track_state_change", |b| {
        b.iter_custom(|iters| {
            chunked(&rw, iters, || {
                let old = plain.fetch_add(1, Ordering::SeqCst);
                rw.track_state_change("hits", Some(old), old.wrapping_add(1), AccessType::AtomicRmw);
            })
        })
    });
    group.bench_function("atomic_rmw/tracked_fetch_add", |b| {
        b.iter_custom(|iters| {
            chunked(&rw, iters, || {
                black_box(counter.fetch_add(1, Ordering::SeqCst));
            })
        })
    });
    assert_eq!(
        rw.stats().export.dropped_queue_full,
        0,
        "the benchmark measured the drop path"
    );

    let unsampled = client(&endpoint, false);
    {
        let _flow = unsampled.start_trace();
        let balance = Tracked::new(100i64, unsampled.clone(), "balance");
        group.bench_function("unsampled/track_state_change", |b| {
            b.iter(|| unsampled.track_state_change("balance", Some(100i64), black_box(90i64), "Write"))
        });
        group.bench_function("unsampled/mutex+track_state_change", |b| {
            b.iter(|| {
                let mut guard = lock();
                let new = black_box(90);
                unsampled.track_state_change("balance", Some(*guard), new, "Write");
                *guard = new;
            })
        });
        group.bench_function("unsampled/tracked_set", |b| b.iter(|| balance.set(black_box(90))));
    }
    assert_eq!(
        unsampled.stats().core.recorded,
        0,
        "an unsampled trace recorded events"
    );
    group.finish();
}

criterion_group!(benches, tracked);
criterion_main!(benches);

//! Batch encoding throughput: 1000 realistic `StateChange` events per iteration, from the
//! event model (`Event`, serde) and from the compact records the clients queue (`Record`,
//! written straight to JSON with per-flow parts cached), the same events.
//!
//! `cargo bench -p raceway-proto --bench encode`
#![allow(missing_docs)] // `criterion_group!` defines an undocumented `pub fn`

use std::hint::black_box;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use raceway_proto::encode::BatchEncoder;
use raceway_proto::event::AccessType;
use raceway_proto::ids::SeededIds;
use raceway_proto::record::Record;
use raceway_proto::{Event, Service, Timestamp, Tracer, WallClock};
use serde_json::json;

struct StepClock(std::sync::atomic::AtomicU64);

impl WallClock for StepClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_unix_micros(self.0.fetch_add(3, std::sync::atomic::Ordering::Relaxed))
    }
}

/// Events as a service records them: a few flows, read-modify-writes of account balances
/// with numeric and small object values, under a lock now and then.
fn records(n: usize) -> Vec<Record> {
    let tracer = Tracer::new(
        Service::new("banking", "i-1", "production", "banking::accounts", 4242),
        Arc::new(SeededIds::new(1)),
        Arc::new(StepClock(std::sync::atomic::AtomicU64::new(
            1_795_000_000_000_000,
        ))),
    );
    let mut root = tracer.new_trace();
    let mut flows: Vec<_> = (0..4).map(|_| tracer.fork(&mut root, "handler").0).collect();
    (0..n)
        .map(|i| {
            let flow = &mut flows[i % 4];
            let (old, new) = if i % 3 == 0 {
                (
                    json!({"balance": 1000 - i as i64, "currency": "EUR"}),
                    json!({"balance": 900 - i as i64, "currency": "EUR"}),
                )
            } else {
                (json!(1000 - i as i64), json!(900 - i as i64))
            };
            // As `track_state_change` records it: values serialized once, the call site.
            let access = if i % 2 == 0 {
                AccessType::Read
            } else {
                AccessType::Write
            };
            let variable = format!("account-{}.balance", i % 16);
            tracer.stamp_state(
                flow,
                &variable,
                access,
                std::panic::Location::caller(),
                None,
                |v| {
                    v.old_value(&old);
                    v.new_value(&new);
                },
            )
        })
        .collect()
}

fn encode(c: &mut Criterion) {
    let recs = records(1000);
    let evs: Vec<Event> = recs.iter().map(Record::to_event).collect();
    let mut encoder = BatchEncoder::default();
    let mut rec_encoder: BatchEncoder<Record> = BatchEncoder::default();
    let mut body = Vec::with_capacity(1 << 20);
    let bytes = encoder.encode(&evs, &mut body).bytes;

    let mut g = c.benchmark_group("encode");
    g.throughput(Throughput::Elements(evs.len() as u64));
    g.bench_function(BenchmarkId::new("state_change", "elements"), |b| {
        b.iter(|| {
            body.clear();
            black_box(encoder.encode(black_box(&evs), &mut body));
        })
    });
    g.bench_function(BenchmarkId::new("record_state_change", "elements"), |b| {
        b.iter(|| {
            body.clear();
            black_box(rec_encoder.encode(black_box(&recs), &mut body));
        })
    });
    g.throughput(Throughput::Bytes(bytes as u64));
    g.bench_function(BenchmarkId::new("state_change", "bytes"), |b| {
        b.iter(|| {
            body.clear();
            black_box(encoder.encode(black_box(&evs), &mut body));
        })
    });
    // Baseline: serde_json writing the same body in one call (no cap, no per-event checks).
    #[derive(serde::Serialize)]
    struct Body<'a> {
        events: &'a [Event],
    }
    g.bench_function(BenchmarkId::new("serde_json_to_writer_baseline", "bytes"), |b| {
        b.iter(|| {
            body.clear();
            serde_json::to_writer(&mut body, black_box(&Body { events: &evs })).unwrap();
            black_box(body.len());
        })
    });
    g.finish();
}

criterion_group!(benches, encode);
criterion_main!(benches);

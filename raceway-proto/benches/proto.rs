//! The core's cost of recording one state-change event in a flow: building the event
//! (clock increment, id, timestamp, metadata) with `Tracer::record`, values included.
#![allow(missing_docs)] // criterion's macros generate undocumented items

use std::hint::black_box;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion};
use raceway_proto::system::{FastIds, SystemClock};
use raceway_proto::{AccessType, EventKind, Service, SourceLocation, Tracer};

fn record(c: &mut Criterion) {
    let tracer = Tracer::new(
        Service::new("bench", "i-1", "development", "app", 1),
        Arc::new(FastIds),
        Arc::new(SystemClock::new()),
    );
    let mut flow = tracer.new_trace();
    let mut g = c.benchmark_group("core");
    g.bench_function("record_state_change", |b| {
        b.iter(|| {
            let kind = EventKind::state_change(
                "alice.balance",
                Some(serde_json::Value::from(100)),
                serde_json::Value::from(90),
                AccessType::Write,
                SourceLocation::caller(),
            );
            black_box(tracer.record(&mut flow, kind, None))
        })
    });
    g.finish();
}

criterion_group!(benches, record);
criterion_main!(benches);

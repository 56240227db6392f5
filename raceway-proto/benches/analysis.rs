//! The local race analyser on a million events: 10,000 flows (2,500 requests, each forking
//! three tasks and joining them) × 100 events, over 1,000 variables. 90% of the variables
//! are always accessed under a tracked lock; the rest are read-modify-written without one
//! and race. Flows of 20 requests at a time run interleaved, as a scheduler would run them.
//!
//! `hot` is the unhappy case: every access goes to one of 10 unprotected variables, so
//! nearly every pair of flows races and the analyser runs into its counting limit.

// `criterion_group!` generates an undocumented function.
#![allow(missing_docs)]

use std::collections::HashMap;
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use raceway_proto::analysis::Analyzer;
use raceway_proto::ids::{splitmix64, SeededIds};
use raceway_proto::{
    AccessType, Event, EventKind, Flow, Service, SourceLocation, Timestamp, Tracer, WallClock,
};
use serde_json::json;

const TRACES: usize = 2_500;
const CHILDREN: usize = 3;
const VARIABLES: u64 = 1_000;
const CONCURRENT_TRACES: usize = 20;

struct Ticks(AtomicU64);

impl WallClock for Ticks {
    fn now(&self) -> Timestamp {
        Timestamp::from_unix_micros(1_790_000_000_000_000 + self.0.fetch_add(1, Ordering::Relaxed))
    }
}

#[derive(Clone, Copy)]
enum Op {
    Fork(usize),
    Join(usize),
    Acquire(u64),
    Release(u64),
    Read(u64),
    Write(u64),
    Work,
}

struct Rng(u64);

impl Rng {
    fn next(&mut self, n: u64) -> u64 {
        self.0 += 1;
        splitmix64(self.0) % n
    }
}

/// Four events touching one of the flow's variables.
fn block(rng: &mut Rng, vars: &[u64], hot: bool, ops: &mut Vec<Op>) {
    let v = vars[rng.next(vars.len() as u64) as usize];
    if !hot && v % 10 != 0 {
        let lock = v % 64;
        ops.extend([Op::Acquire(lock), Op::Read(v), Op::Write(v), Op::Release(lock)]);
    } else {
        ops.extend([Op::Read(v), Op::Work, Op::Write(v), Op::Work]);
    }
}

fn program(rng: &mut Rng, root: bool, hot: bool) -> Vec<Op> {
    let vars: Vec<u64> = if hot {
        (0..10).collect()
    } else {
        (0..5).map(|_| rng.next(VARIABLES)).collect()
    };
    let mut ops = Vec::with_capacity(100);
    if root {
        ops.extend((1..=CHILDREN).map(Op::Fork));
        for _ in 0..23 {
            block(rng, &vars, hot, &mut ops);
        }
        ops.extend([Op::Work, Op::Work]);
        ops.extend((1..=CHILDREN).map(Op::Join));
    } else {
        for _ in 0..25 {
            block(rng, &vars, hot, &mut ops);
        }
    }
    ops
}

struct Running {
    flow: Option<Flow>,
    ops: Vec<Op>,
    pc: usize,
}

/// Records the workload through the SDK's `Tracer`, in the order a scheduler would.
fn workload(hot: bool) -> Vec<Event> {
    let t = Tracer::new(
        Service::new("bench", "i-1", "bench", "bench", 1),
        Arc::new(SeededIds::new(1)),
        Arc::new(Ticks(AtomicU64::new(0))),
    );
    let mut rng = Rng(7);
    let names: Vec<String> = (0..VARIABLES).map(|v| format!("account-{v}")).collect();
    let locks: Vec<Arc<str>> = (0..64).map(|l| Arc::from(format!("lock-{l}").as_str())).collect();
    let module: Arc<str> = Arc::from("bench");
    let mut events = Vec::with_capacity(TRACES * (CHILDREN + 1) * 100);
    for _ in 0..TRACES / CONCURRENT_TRACES {
        // flows[trace * 4 + k]: k = 0 the request, 1..=3 its tasks
        let mut flows: Vec<Running> = Vec::new();
        for _ in 0..CONCURRENT_TRACES {
            flows.push(Running {
                flow: Some(t.new_trace()),
                ops: program(&mut rng, true, hot),
                pc: 0,
            });
            for _ in 0..CHILDREN {
                flows.push(Running {
                    flow: None,
                    ops: program(&mut rng, false, hot),
                    pc: 0,
                });
            }
        }
        let mut holder: HashMap<u64, usize> = HashMap::new();
        let mut left = flows.len();
        while left > 0 {
            let i = rng.next(flows.len() as u64) as usize;
            let base = i - i % (CHILDREN + 1);
            let Some(op) = flows[i].ops.get(flows[i].pc).copied() else {
                continue;
            };
            if flows[i].flow.is_none() {
                continue; // not spawned yet
            }
            let runnable = match op {
                Op::Join(k) => flows[base + k].pc == flows[base + k].ops.len(),
                Op::Acquire(l) => holder.get(&l).is_none_or(|&h| h == i),
                _ => true,
            };
            if !runnable {
                continue;
            }
            let loc = SourceLocation::Static {
                file: "src/bank.rs",
                line: 40,
            };
            let ev = match op {
                Op::Fork(k) => {
                    let (child, ev) = t.fork(flows[i].flow.as_mut().unwrap(), "spawn");
                    flows[base + k].flow = Some(child);
                    ev.to_event()
                }
                Op::Join(k) => {
                    let end = flows[base + k].flow.as_ref().unwrap().end();
                    t.join(flows[i].flow.as_mut().unwrap(), &end, "join").to_event()
                }
                Op::Acquire(l) | Op::Release(l) => {
                    let kind = if matches!(op, Op::Acquire(_)) {
                        holder.insert(l, i);
                        EventKind::LockAcquire {
                            lock_id: locks[l as usize].clone(),
                            lock_type: "Mutex".into(),
                            location: loc,
                        }
                    } else {
                        holder.remove(&l);
                        EventKind::LockRelease {
                            lock_id: locks[l as usize].clone(),
                            lock_type: "Mutex".into(),
                            location: loc,
                        }
                    };
                    t.record(flows[i].flow.as_mut().unwrap(), kind, None)
                }
                Op::Read(v) | Op::Write(v) => {
                    let (ty, old) = if matches!(op, Op::Read(_)) {
                        (AccessType::Read, None)
                    } else {
                        (AccessType::Write, Some(json!(100)))
                    };
                    let kind = EventKind::state_change(&names[v as usize], old, json!(90), ty, loc);
                    t.record(flows[i].flow.as_mut().unwrap(), kind, None)
                }
                Op::Work => {
                    let kind = EventKind::function_call("work", &module, json!(null), &loc);
                    t.record(flows[i].flow.as_mut().unwrap(), kind, None)
                }
            };
            events.push(ev);
            flows[i].pc += 1;
            if flows[i].pc == flows[i].ops.len() {
                left -= 1;
            }
        }
    }
    events
}

fn analyse(events: &[Event]) -> u64 {
    let mut a = Analyzer::new();
    a.observe_all(events);
    a.report().racing_pairs()
}

fn bench(c: &mut Criterion) {
    for (name, hot) in [
        ("1M events, 10k flows, 1k variables", false),
        ("1M events, 10 hot unprotected variables", true),
    ] {
        let events = workload(hot);
        assert_eq!(events.len(), 1_000_000);
        let mut a = Analyzer::new();
        a.observe_all(&events);
        let report = a.report();
        eprintln!(
            "{name}: {} events, {} state changes, {} racing pairs ({} listed) on {} variables{}",
            report.events_observed(),
            report.accesses_observed(),
            report.racing_pairs(),
            report.len(),
            report.variables().len(),
            if report.is_saturated() { " (saturated)" } else { "" }
        );
        let mut g = c.benchmark_group("analysis");
        g.sample_size(10);
        g.throughput(Throughput::Elements(events.len() as u64));
        g.bench_function(name, |b| b.iter(|| black_box(analyse(black_box(&events)))));
        g.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);

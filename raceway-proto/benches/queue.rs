//! Issue 11's queue designs, side by side: what a recording thread pays to hand one
//! record-sized item (96 bytes, as a record) to the exporter, with 1 and 4 threads pushing at once and
//! the queue drained between chunks.
//!
//! - `pipe`: [`raceway_proto::export::Pipe`], one single-producer ring ([`Lane`]) per flow
//!   (here: per pushing thread), what the clients use;
//! - `mpsc_list`: std's lock-free linked-block `mpsc::channel`, bounded by an atomic length;
//! - `sync_channel`: std's preallocated lock-free ring (`sync_channel(capacity)` with
//!   `try_send`, OpenTelemetry's and Sentry's shape), which holds its whole capacity from the
//!   start.
//!
//! Criterion's time is ns per push per thread (each thread's wall time, averaged).
//!
//! `cargo bench -p raceway-proto --bench queue`
#![allow(missing_docs)]

use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use raceway_proto::export::{LaneSlot, Pipe, Queued};

/// A record-sized item: 12 words, the first naming its "flow" (the pushing thread).
#[derive(Clone, Copy, Default)]
struct Item([u64; 12]);

impl Queued for Item {
    type Link = ();
    type Last = ();
    type Taken = Item;
    fn link(&mut self, _: &(), _: &mut ()) {}
    fn take(self, _: &mut ()) -> Option<Item> {
        Some(self)
    }
    fn order(taken: &Item) -> (u64, u64) {
        (taken.0[1], 0)
    }
}
const CAPACITY: usize = 65_536;

trait Queue: Send + Sync {
    fn push(&self, item: Item);
    fn drain(&self, out: &mut Vec<Item>);
}

thread_local! {
    /// The pushing thread's lane of the pipe (a flow's, in the clients).
    static LANE: std::cell::RefCell<LaneSlot<Item>> = const { std::cell::RefCell::new(None) };
}

impl Queue for Pipe<Item> {
    fn push(&self, item: Item) {
        LANE.with_borrow_mut(|lane| {
            let _ = Pipe::push(self, item, &(), lane);
        });
    }
    fn drain(&self, out: &mut Vec<Item>) {
        Pipe::drain(self, usize::MAX, out);
    }
}

struct List(std::sync::mpsc::Sender<Item>, Mutex<Receiver<Item>>, AtomicUsize);

impl Queue for List {
    fn push(&self, item: Item) {
        if self.2.fetch_add(1, Ordering::AcqRel) >= CAPACITY {
            self.2.fetch_sub(1, Ordering::AcqRel);
            return;
        }
        let _ = self.0.send(item);
    }
    fn drain(&self, out: &mut Vec<Item>) {
        let before = out.len();
        out.extend(self.1.lock().unwrap().try_iter());
        self.2.fetch_sub(out.len() - before, Ordering::AcqRel);
    }
}

struct Ring(SyncSender<Item>, Mutex<Receiver<Item>>);

impl Queue for Ring {
    fn push(&self, item: Item) {
        let _ = self.0.try_send(item);
    }
    fn drain(&self, out: &mut Vec<Item>) {
        out.extend(self.1.lock().unwrap().try_iter());
    }
}

fn designs() -> Vec<(&'static str, Arc<dyn Queue>)> {
    let (tx, rx) = sync_channel(CAPACITY);
    let (ltx, lrx) = std::sync::mpsc::channel();
    vec![
        ("pipe", Arc::new(Pipe::<Item>::new(CAPACITY, 512))),
        (
            "mpsc_list",
            Arc::new(List(ltx, Mutex::new(lrx), AtomicUsize::new(0))),
        ),
        ("sync_channel", Arc::new(Ring(tx, Mutex::new(rx)))),
    ]
}

/// Pushes per thread between two drains: the queue never fills (4 threads: 16,384 of
/// 65,536), so what is timed is the accepting path, as in a client whose exporter keeps up.
const CHUNK: u64 = 4096;

fn queues(c: &mut Criterion) {
    let mut g = c.benchmark_group("queue_push");
    g.throughput(Throughput::Elements(1));
    for (name, q) in designs() {
        for threads in [1usize, 4] {
            g.bench_with_input(BenchmarkId::new(name, threads), &threads, |b, &threads| {
                b.iter_custom(|iters| {
                    let barrier = Arc::new(Barrier::new(threads));
                    let handles: Vec<_> = (0..threads)
                        .map(|t| {
                            let (q, barrier) = (q.clone(), barrier.clone());
                            std::thread::spawn(move || {
                                let mut timed = Duration::ZERO;
                                let mut out = Vec::new();
                                let mut left = iters;
                                while left > 0 {
                                    let n = left.min(CHUNK);
                                    barrier.wait();
                                    let start = Instant::now();
                                    for i in 0..n {
                                        let mut item = [i; 12];
                                        item[0] = t as u64;
                                        q.push(black_box(Item(item)));
                                    }
                                    timed += start.elapsed();
                                    left -= n;
                                    // Every thread's chunk is in: one of them drains (untimed).
                                    if barrier.wait().is_leader() {
                                        q.drain(&mut out);
                                        out.clear();
                                    }
                                }
                                timed
                            })
                        })
                        .collect();
                    let total: Duration = handles.into_iter().map(|h| h.join().unwrap()).sum();
                    total / threads as u32
                })
            });
        }
    }
    g.finish();
}

criterion_group!(benches, queues);
criterion_main!(benches);

//! The queue between recording threads and the exporter: sharded by flow, bounded, grown on
//! demand and kept.
//!
//! Each flow pushes into one of [`SHARDS`] shards (a `Mutex` around a `VecDeque`, on a
//! cache line of its own), chosen by the flow, so threads recording different flows do not
//! pass one lock's cache line back and forth: a push is an uncontended lock, a move of 96
//! bytes and an unlock. A flow's records stay in order in their shard. The length bound is
//! kept in a shared counter that each shard adds to once every 32 pushes, so the queue holds
//! at most `capacity` plus `31 × (SHARDS - 1)` items.
//!
//! The exporter takes a consistent cut: it holds every shard's lock at once while it takes
//! what they hold, so a record taken is never missing an earlier record it depends on (that
//! one was pushed first, on the same or another shard). When more than one shard gave
//! records, they are sorted by [`Queued::order`] (timestamp, then the sum of the clock), a
//! total order in which every record comes after those that happened before it; what does
//! not fit in the exporter's room waits, in that order, ahead of later pushes.
//!
//! The buffers grow as the queue fills and keep their memory once grown, so a steady stream
//! allocates nothing. `benches/queue.rs` compares this queue with std's lock-free channels.

use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::vec::Vec;

use super::{PushOutcome, QueueStats};

/// Shards of a [`Pipe`].
pub const SHARDS: usize = 8;

/// Pushes a shard makes before it adds them to the shared length.
const REPORT_EVERY: usize = 32;

/// What the queue needs of an item: which shard it goes to, and where it sorts.
pub trait Queued {
    /// A number naming the item's flow: items of one flow go to one shard, in order.
    fn shard(&self) -> usize;
    /// A key that sorts an item after every item that happened before it.
    fn order(&self) -> (u64, u64);
}

#[derive(Debug)]
struct ShardState<T> {
    items: VecDeque<T>,
    /// Pushed since this shard last added to the shared length.
    unreported: usize,
}

/// A shard on a cache line of its own (and the next, against adjacent-line prefetch).
#[derive(Debug)]
#[repr(align(128))]
struct Shard<T>(Mutex<ShardState<T>>);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A bounded multi-producer queue that drops (and counts) instead of growing past its
/// capacity. See the module docs.
#[derive(Debug)]
pub struct Pipe<T> {
    shards: Vec<Shard<T>>,
    /// Taken from the shards but not yet by the exporter (it had no room), in order.
    carry: Mutex<VecDeque<T>>,
    /// Items in the shards, less those each shard has not reported yet, plus the items in
    /// `carry`: the one counter a push reads.
    held: AtomicUsize,
    capacity: usize,
    wake_every: usize,
    report_every: usize,
    dropped: AtomicU64,
    taken: AtomicU64,
}

impl<T: Send + Queued> Pipe<T> {
    /// A queue of at most `capacity` items that asks for a wake-up every `wake_every`
    /// queued items (both at least 1).
    pub fn new(capacity: usize, wake_every: usize) -> Self {
        let wake_every = wake_every.max(1);
        Self {
            shards: (0..SHARDS)
                .map(|_| {
                    Shard(Mutex::new(ShardState {
                        items: VecDeque::new(),
                        unreported: 0,
                    }))
                })
                .collect(),
            carry: Mutex::new(VecDeque::new()),
            held: AtomicUsize::new(0),
            capacity: capacity.max(1),
            // Small batches (tests, tiny configs) are counted exactly.
            report_every: if wake_every >= REPORT_EVERY {
                REPORT_EVERY
            } else {
                1
            },
            wake_every,
            dropped: AtomicU64::new(0),
            taken: AtomicU64::new(0),
        }
    }

    /// Queues `item`, or drops and counts it when the queue is full.
    pub fn push(&self, item: T) -> PushOutcome {
        let shard = &self.shards[item.shard() % SHARDS];
        let mut st = lock(&shard.0);
        if self.held.load(Ordering::Relaxed) + st.unreported >= self.capacity {
            drop(st);
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return PushOutcome::Dropped;
        }
        st.items.push_back(item);
        st.unreported += 1;
        let mut wake = false;
        if st.unreported >= self.report_every {
            let n = st.unreported;
            st.unreported = 0;
            let total = self.held.fetch_add(n, Ordering::Relaxed) + n;
            // A multiple of `wake_every` was reached or passed.
            wake = total / self.wake_every > (total - n) / self.wake_every;
        }
        PushOutcome::Accepted { wake }
    }

    /// Moves up to `max` of the oldest items to the end of `out`, in an order that keeps
    /// every item after those that happened before it; returns how many.
    pub fn drain(&self, max: usize, out: &mut Vec<T>) -> usize {
        let mut carry = lock(&self.carry);
        let start = out.len();
        let carried_before = carry.len();
        // Items taken from the shards that were already counted in `held`.
        let mut counted_taken = 0;
        let from_carry = max.min(carry.len());
        out.extend(carry.drain(..from_carry));
        if out.len() - start < max {
            // `carry` is empty now. The exporter's emptied buffer becomes a shard's, whose
            // full one comes back.
            let mut fresh = if out.is_empty() {
                core::mem::take(out)
            } else {
                Vec::new()
            };
            let mut sources = 0;
            {
                // Every shard locked at once: a consistent cut.
                let mut guards: Vec<_> = self.shards.iter().map(|s| lock(&s.0)).collect();
                for st in guards.iter_mut() {
                    if st.items.is_empty() {
                        continue;
                    }
                    sources += 1;
                    counted_taken += st.items.len() - st.unreported;
                    st.unreported = 0;
                    if fresh.is_empty() {
                        // Swap buffers: no copy while the shard is locked.
                        let taken =
                            core::mem::replace(&mut st.items, VecDeque::from(core::mem::take(&mut fresh)));
                        fresh = Vec::from(taken);
                    } else {
                        fresh.extend(st.items.drain(..));
                    }
                }
            }
            if sources > 1 {
                fresh.sort_by_key(Queued::order);
            }
            let want = max - (out.len() - start);
            if fresh.len() <= want {
                if out.is_empty() {
                    *out = fresh;
                } else {
                    out.extend(fresh);
                }
            } else {
                // The cut's buffer becomes the carry: what waits is not copied.
                let mut rest = VecDeque::from(fresh);
                out.extend(rest.drain(..want));
                *carry = rest;
            }
        }
        // What the shards had counted now waits in `carry` or is gone to `out`.
        let (added, removed) = (carry.len(), counted_taken + carried_before);
        if added > removed {
            self.held.fetch_add(added - removed, Ordering::Relaxed);
        } else {
            self.held.fetch_sub(removed - added, Ordering::Relaxed);
        }
        drop(carry);
        let n = out.len() - start;
        self.taken.fetch_add(n as u64, Ordering::Relaxed);
        n
    }

    /// Items queued now (exact once the pushes under way are done).
    pub fn len(&self) -> usize {
        let carried = lock(&self.carry).len();
        carried + self.shards.iter().map(|s| lock(&s.0).items.len()).sum::<usize>()
    }

    /// True when nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The counters, for [`ExportStats::with_queue`](super::ExportStats::with_queue).
    pub fn stats(&self) -> QueueStats {
        let queued = self.len();
        QueueStats {
            recorded: self.taken.load(Ordering::Relaxed) + queued as u64,
            dropped_queue_full: self.dropped.load(Ordering::Relaxed),
            queued,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    /// (flow, sequence in the flow, key)
    #[derive(Debug, Clone, Copy, PartialEq)]
    struct It(usize, u64, u64);

    impl Queued for It {
        fn shard(&self) -> usize {
            self.0
        }
        fn order(&self) -> (u64, u64) {
            (self.2, self.1)
        }
    }

    #[test]
    fn one_flow_is_exact_about_capacity_and_order() {
        let p = Pipe::new(10, 4);
        let outcomes: Vec<_> = (0..15).map(|i| p.push(It(3, i, i))).collect();
        assert_eq!(
            outcomes
                .iter()
                .filter(|o| matches!(o, PushOutcome::Dropped))
                .count(),
            5
        );
        let wakes = outcomes
            .iter()
            .filter(|o| matches!(o, PushOutcome::Accepted { wake: true }))
            .count();
        assert_eq!(wakes, 2, "at 4 and 8 queued");
        assert_eq!(p.len(), 10);
        let mut out = Vec::new();
        assert_eq!(p.drain(usize::MAX, &mut out), 10);
        assert_eq!(
            out.iter().map(|i| i.1).collect::<Vec<_>>(),
            (0..10).collect::<Vec<_>>()
        );
        let s = p.stats();
        assert_eq!((s.recorded, s.dropped_queue_full, s.queued), (10, 5, 0));
    }

    #[test]
    fn what_waits_after_a_partial_drain_still_counts_against_the_bound() {
        let p = Pipe::new(10, 1);
        for i in 0..10 {
            assert!(matches!(p.push(It(0, i, i)), PushOutcome::Accepted { .. }));
        }
        let mut out = Vec::new();
        assert_eq!(p.drain(3, &mut out), 3);
        let accepted = (10..15)
            .filter(|&i| matches!(p.push(It(0, i, i)), PushOutcome::Accepted { .. }))
            .count();
        assert_eq!(accepted, 3, "7 wait in the carry, so 3 more fit");
        assert_eq!(p.len(), 10);
        out.clear();
        assert_eq!(p.drain(usize::MAX, &mut out), 10);
        assert_eq!(
            out.iter().map(|i| i.1).collect::<Vec<_>>(),
            (3..13).collect::<Vec<_>>()
        );
        assert!(matches!(p.push(It(0, 99, 99)), PushOutcome::Accepted { .. }));
    }

    #[test]
    fn several_flows_come_out_in_key_order_also_through_partial_drains() {
        let p = Pipe::new(1000, 64);
        // Keys interleave across flows; within a flow they grow.
        for i in 0..60u64 {
            let _ = p.push(It((i % 3) as usize, i / 3, i));
        }
        let mut all = Vec::new();
        let mut out = Vec::new();
        for max in [7, 1, 20, 100] {
            out.clear();
            p.drain(max, &mut out);
            assert!(out.len() <= max);
            all.extend(out.iter().copied());
            // Pushed meanwhile: comes after what was carried.
            if max == 1 {
                let _ = p.push(It(1, 20, 1_000));
            }
        }
        assert_eq!(all.len(), 61);
        let keys: Vec<u64> = all.iter().map(|i| i.2).collect();
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(keys, sorted);
        assert!(p.is_empty());
    }

    #[test]
    fn threads_pushing_while_the_exporter_drains_lose_nothing_and_keep_each_flow_in_order() {
        let p = Arc::new(Pipe::new(1 << 20, 512));
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let p = p.clone();
                std::thread::spawn(move || {
                    for i in 0..20_000u64 {
                        assert!(matches!(p.push(It(t, i, i)), PushOutcome::Accepted { .. }));
                    }
                })
            })
            .collect();
        let mut got: Vec<It> = Vec::new();
        let mut out = Vec::new();
        while threads.iter().any(|h| !h.is_finished()) {
            out.clear();
            p.drain(1000, &mut out);
            got.extend(out.iter().copied());
        }
        for h in threads {
            h.join().unwrap();
        }
        loop {
            out.clear();
            if p.drain(usize::MAX, &mut out) == 0 {
                break;
            }
            got.extend(out.iter().copied());
        }
        assert_eq!(got.len(), 80_000);
        for t in 0..4 {
            let seq: Vec<u64> = got.iter().filter(|i| i.0 == t).map(|i| i.1).collect();
            assert_eq!(seq, (0..20_000).collect::<Vec<_>>(), "flow {t}");
        }
        assert_eq!(p.stats().recorded, 80_000);
    }
}

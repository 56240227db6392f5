//! The queue between recording threads and the exporter: sharded by flow, bounded, grown on
//! demand and kept.
//!
//! Each flow pushes into one of [`SHARDS`] shards (a `Mutex` around blocks of [`BLOCK`]
//! items, on a cache line of its own), chosen by the flow, so threads recording different flows do not
//! pass one lock's cache line back and forth: a push is an uncontended lock, a move of 96
//! bytes and an unlock. A flow's records stay in order in their shard. A record whose
//! clock base is the one of the record pushed before it in the shard leaves it out, so the
//! recording thread takes no reference count on it (see [`Queued`]). The length bound is
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
//! The exporter completes the records it takes, in push order within each shard, outside
//! the shards' locks. A shard grows a block at a time: a push never copies what is queued
//! (a growing `VecDeque` moves everything it holds into a buffer twice the size, on the
//! recording thread: milliseconds for a full queue), and a shard holds at most one block
//! it has not filled, so a full queue takes about a record's size per event. The exporter
//! keeps emptied blocks for the shards, so a steady stream allocates nothing. `benches/queue.rs` compares this queue with std's lock-free channels.

use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::vec::Vec;

use super::{PushOutcome, QueueStats};

/// Shards of a [`Pipe`].
pub const SHARDS: usize = 8;

/// Pushes a shard makes before it adds them to the shared length.
const REPORT_EVERY: usize = 32;

/// What the queue needs of an item: which shard it goes to, what it may leave to the item
/// pushed before it in that shard, and the item as the exporter takes it.
///
/// A record's clock base is what consecutive records of a flow share: the queue keeps, per
/// shard, the base of the record pushed last, and a record with the same base leaves it
/// out (no reference count taken on the recording thread, whose count the exporter's
/// thread would then drop: a cache line passed between the two cores for every record).
/// The exporter fills it back in from the record before, in push order, when it takes the
/// shard's records.
pub trait Queued: Sized {
    /// What the pusher hands over beside the item, by reference (a record's base).
    type Link;
    /// What a shard keeps of its last item, on the pushing side and on the exporter's.
    type Last: Default;
    /// The item as the exporter takes it.
    type Taken;
    /// A number naming the item's flow: items of one flow go to one shard, in order.
    fn shard(&self, link: &Self::Link) -> usize;
    /// Called under the shard's lock when the item is accepted: `last` is what the shard
    /// kept of the item pushed into it before.
    fn link(&mut self, link: &Self::Link, last: &mut Self::Last);
    /// The item completed, in push order within its shard: `last` is what the exporter
    /// kept of the shard's item taken before. `None` only for an item that left out what
    /// nothing before it gave (never, when every push goes through [`Queued::link`]).
    fn take(self, last: &mut Self::Last) -> Option<Self::Taken>;
    /// A key that sorts a taken item after every item that happened before it.
    fn order(taken: &Self::Taken) -> (u64, u64);
}

/// Items in a block. A shard grows a block at a time, so a push never moves what is
/// queued (a growing `VecDeque` copies all it holds to a buffer twice the size, on the
/// recording thread), and a shard holds at most one block it has not filled.
pub const BLOCK: usize = 256;

/// Emptied blocks the exporter keeps for the shards (about 24 KB each with records).
const SPARE_BLOCKS: usize = 2 * SHARDS;

struct ShardState<T: Queued> {
    /// Full blocks, then the one being filled; every block has room for [`BLOCK`].
    blocks: VecDeque<Vec<T>>,
    /// Items in `blocks`.
    len: usize,
    /// Pushed since this shard last added to the shared length.
    unreported: usize,
    /// What the pushing side keeps of the last item pushed.
    last: T::Last,
}

/// A shard on a cache line of its own (and the next, against adjacent-line prefetch).
#[repr(align(128))]
struct Shard<T: Queued>(Mutex<ShardState<T>>);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The exporter's side: what waits for room, and what it kept of each shard's last item.
struct Taking<T: Queued> {
    /// Taken from the shards but not yet by the exporter (it had no room), in order.
    carry: VecDeque<T::Taken>,
    lasts: Vec<T::Last>,
}

/// A bounded multi-producer queue that drops (and counts) instead of growing past its
/// capacity. See the module docs.
pub struct Pipe<T: Queued> {
    shards: Vec<Shard<T>>,
    taking: Mutex<Taking<T>>,
    /// Emptied blocks, taken by a shard that fills its last one.
    spare: Mutex<Vec<Vec<T>>>,
    /// Items in the shards, less those each shard has not reported yet, plus the items in
    /// the carry: the one counter a push reads.
    held: AtomicUsize,
    capacity: usize,
    wake_every: usize,
    report_every: usize,
    dropped: AtomicU64,
    taken: AtomicU64,
}

impl<T: Queued> core::fmt::Debug for Pipe<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Pipe")
            .field("held", &self.held.load(Ordering::Relaxed))
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
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
                        blocks: VecDeque::new(),
                        len: 0,
                        unreported: 0,
                        last: T::Last::default(),
                    }))
                })
                .collect(),
            taking: Mutex::new(Taking {
                carry: VecDeque::new(),
                lasts: (0..SHARDS).map(|_| T::Last::default()).collect(),
            }),
            spare: Mutex::new(Vec::new()),
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

    /// Queues `item` (with `link`, see [`Queued`]), or drops and counts it when the queue
    /// is full.
    #[inline]
    pub fn push(&self, mut item: T, link: &T::Link) -> PushOutcome {
        let shard = &self.shards[item.shard(link) % SHARDS];
        let mut st = lock(&shard.0);
        if self.held.load(Ordering::Relaxed) + st.unreported >= self.capacity {
            drop(st);
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return PushOutcome::Dropped;
        }
        item.link(link, &mut st.last);
        match st.blocks.back_mut() {
            Some(block) if block.len() < BLOCK => block.push(item),
            _ => {
                let mut block = self.empty_block();
                block.push(item);
                st.blocks.push_back(block);
            }
        }
        st.len += 1;
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

    /// An emptied block, or a new one.
    #[cold]
    fn empty_block(&self) -> Vec<T> {
        lock(&self.spare)
            .pop()
            .unwrap_or_else(|| Vec::with_capacity(BLOCK))
    }

    /// Moves up to `max` of the oldest items to the end of `out`, in an order that keeps
    /// every item after those that happened before it; returns how many.
    pub fn drain(&self, max: usize, out: &mut Vec<T::Taken>) -> usize {
        let mut guard = lock(&self.taking);
        let taking = &mut *guard;
        let start = out.len();
        let carried_before = taking.carry.len();
        // Items taken from the shards that were already counted in `held`, and lost ones.
        let (mut counted_taken, mut lost) = (0, 0);
        let from_carry = max.min(taking.carry.len());
        out.extend(taking.carry.drain(..from_carry));
        if out.len() - start < max {
            // The carry is empty now. Every shard's blocks are taken (no copy while the
            // shards are locked), then completed in order and the blocks kept for reuse.
            let mut cut: Vec<(usize, VecDeque<Vec<T>>)> = Vec::new();
            let mut total = 0;
            {
                // Every shard locked at once: a consistent cut.
                let mut guards: Vec<_> = self.shards.iter().map(|s| lock(&s.0)).collect();
                for (i, st) in guards.iter_mut().enumerate() {
                    if st.len == 0 {
                        continue;
                    }
                    counted_taken += st.len - st.unreported;
                    total += st.len;
                    st.unreported = 0;
                    st.len = 0;
                    cut.push((i, core::mem::take(&mut st.blocks)));
                }
            }
            let sources = cut.len();
            let mut fresh = if out.is_empty() {
                core::mem::take(out)
            } else {
                Vec::new()
            };
            fresh.reserve_exact(total);
            let mut emptied = Vec::new();
            for (i, blocks) in cut {
                let last = &mut taking.lasts[i];
                for mut block in blocks {
                    for item in block.drain(..) {
                        match item.take(last) {
                            Some(t) => fresh.push(t),
                            None => lost += 1,
                        }
                    }
                    emptied.push(block);
                }
            }
            if !emptied.is_empty() {
                let mut spare = lock(&self.spare);
                let room = SPARE_BLOCKS.saturating_sub(spare.len());
                spare.extend(emptied.into_iter().take(room));
            }
            if sources > 1 {
                fresh.sort_by_key(T::order);
            }
            let want = max - (out.len() - start);
            if fresh.len() <= want {
                if out.is_empty() {
                    *out = fresh;
                } else {
                    out.extend(fresh);
                }
            } else {
                // What waits keeps the cut's buffer: it is not copied.
                let mut rest = VecDeque::from(fresh);
                out.extend(rest.drain(..want));
                taking.carry = rest;
            }
        }
        // What the shards had counted now waits in the carry or is gone to `out`.
        let (added, removed) = (taking.carry.len(), counted_taken + carried_before);
        if added > removed {
            self.held.fetch_add(added - removed, Ordering::Relaxed);
        } else {
            self.held.fetch_sub(removed - added, Ordering::Relaxed);
        }
        drop(guard);
        if lost > 0 {
            self.dropped.fetch_add(lost, Ordering::Relaxed);
        }
        let n = out.len() - start;
        self.taken.fetch_add(n as u64, Ordering::Relaxed);
        n
    }

    /// Items queued now (exact once the pushes under way are done).
    pub fn len(&self) -> usize {
        let carried = lock(&self.taking).carry.len();
        carried + self.shards.iter().map(|s| lock(&s.0).len).sum::<usize>()
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
        type Link = ();
        type Last = ();
        type Taken = It;
        fn shard(&self, _: &()) -> usize {
            self.0
        }
        fn link(&mut self, _: &(), _: &mut ()) {}
        fn take(self, _: &mut ()) -> Option<It> {
            Some(self)
        }
        fn order(taken: &It) -> (u64, u64) {
            (taken.2, taken.1)
        }
    }

    impl Pipe<It> {
        fn push_it(&self, it: It) -> PushOutcome {
            self.push(it, &())
        }
    }

    #[test]
    fn one_flow_is_exact_about_capacity_and_order() {
        let p = Pipe::new(10, 4);
        let outcomes: Vec<_> = (0..15).map(|i| p.push_it(It(3, i, i))).collect();
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
            assert!(matches!(p.push_it(It(0, i, i)), PushOutcome::Accepted { .. }));
        }
        let mut out = Vec::new();
        assert_eq!(p.drain(3, &mut out), 3);
        let accepted = (10..15)
            .filter(|&i| matches!(p.push_it(It(0, i, i)), PushOutcome::Accepted { .. }))
            .count();
        assert_eq!(accepted, 3, "7 wait in the carry, so 3 more fit");
        assert_eq!(p.len(), 10);
        out.clear();
        assert_eq!(p.drain(usize::MAX, &mut out), 10);
        assert_eq!(
            out.iter().map(|i| i.1).collect::<Vec<_>>(),
            (3..13).collect::<Vec<_>>()
        );
        assert!(matches!(p.push_it(It(0, 99, 99)), PushOutcome::Accepted { .. }));
    }

    #[test]
    fn several_flows_come_out_in_key_order_also_through_partial_drains() {
        let p = Pipe::new(1000, 64);
        // Keys interleave across flows; within a flow they grow.
        for i in 0..60u64 {
            let _ = p.push_it(It((i % 3) as usize, i / 3, i));
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
                let _ = p.push_it(It(1, 20, 1_000));
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
                        assert!(matches!(p.push_it(It(t, i, i)), PushOutcome::Accepted { .. }));
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

//! The queue between recording threads and the exporter: one single-producer ring per flow
//! (a [`Lane`]), bounded as a whole, grown on demand.
//!
//! A flow pushes into its own lane, an [`rtrb`] ring that the flow carries with it: a push
//! writes the record in its slot of the ring ([`Pipe::push_with`]) and makes a release
//! store of its tail, with no locked instruction (a mutex's lock and unlock were about
//! 40 % of a push, each waiting for the record's stores to drain). A lane is opened by the flow's first push, through the one
//! mutex of the pipe that the exporter also takes ([`Pipe`]'s `opened`); a full lane is
//! replaced by one four times its size (up to [`MAX_LANE`]), and a lane whose flow is
//! gone is dropped by the exporter once it is empty. A record whose clock base is the one
//! of the record pushed before it in its lane leaves it out, so the recording thread
//! takes no reference count on it (see [`Queued`]).
//!
//! The length bound is kept in a shared counter that each lane adds to once every 32
//! pushes (and when it is dropped), so the queue holds at most `capacity` plus 31 for
//! each lane being filled at that moment.
//!
//! **The cut.** The exporter takes what the lanes opened since its last cut, then reads
//! every lane's length, and takes that many records of each: a consistent cut, in which a
//! record taken is never missing a record it depends on.
//! - Within a flow, its records are in order in its lane; a flow that replaced its lane
//!   pushed everything in the old one before it opened the new one, and the exporter
//!   reads the old lane's length after it took the new one.
//! - Across flows, a flow depends on another's records only after it learns of them: a
//!   fork (the child is new, so its lane is opened after the parent's `AsyncSpawn` was
//!   pushed), a join, or a merge of a callee's clock. At a join or a merge the flow drops
//!   its lane (`Flow::update_clock`, `Flow::follow`), so what it records next goes into a
//!   lane opened after what it learnt of was pushed.
//!
//! When more than one lane gave records, they are sorted by [`Queued::order`] (timestamp,
//! then the sum of the clock), a total order in which every record comes after those that
//! happened before it; what does not fit in the exporter's room waits, in that order,
//! ahead of later pushes. `benches/queue.rs` compares this queue with std's channels.

use core::borrow::Borrow;
use core::sync::atomic::{fence, AtomicIsize, AtomicU64, Ordering};
use std::boxed::Box;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::vec::Vec;

use super::{PushOutcome, QueueStats};

/// Pushes a lane makes before it adds them to the shared length.
const REPORT_EVERY: usize = 32;

/// Records in a flow's first lane (about 1.5 KB of records): a flow that records a few
/// events holds little.
pub const MIN_LANE: usize = 16;

/// Records in the largest lane (about 384 KB of records): a full lane is replaced by one
/// four times its size, up to this. A flow that records at most this many between two
/// drains keeps its lane; a new one is fresh memory, whose page faults cost the pushing
/// thread (some 40 ns per record with 1,024, in `hot_path_record`).
pub const MAX_LANE: usize = 4096;

/// What the queue needs of an item: what it may leave to the item pushed before it in its
/// lane, and the item as the exporter takes it.
///
/// A record's clock base is what consecutive records of a flow share: a lane keeps the
/// base of the record pushed last, and a record with the same base leaves it out (no
/// reference count taken on the recording thread, whose count the exporter's thread would
/// then drop: a cache line passed between the two cores for every record). The exporter
/// fills it back in from the record before, in push order, when it takes the lane's
/// records.
pub trait Queued: Sized {
    /// What the pusher hands over beside the item, by reference (a record's base).
    type Link;
    /// What a lane keeps of its last item, on the pushing side and on the exporter's.
    type Last: Default;
    /// The item as the exporter takes it.
    type Taken;
    /// Called when the item is accepted: `last` is what the lane kept of the item pushed
    /// into it before.
    fn link(&mut self, link: &Self::Link, last: &mut Self::Last);
    /// The item completed, in push order within its lane: `last` is what the exporter
    /// kept of the lane's item taken before. `None` only for an item that left out what
    /// nothing before it gave (never, when every push goes through [`Queued::link`]).
    fn take(self, last: &mut Self::Last) -> Option<Self::Taken>;
    /// A key that sorts a taken item after every item that happened before it.
    fn order(taken: &Self::Taken) -> (u64, u64);
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// What the lanes and the exporter share.
struct Shared<T> {
    /// Lanes opened since the exporter's last cut.
    opened: Mutex<Vec<rtrb::Consumer<T>>>,
    /// Items reported by the lanes plus the carry, less the items taken by the exporter
    /// (below zero for a moment when the exporter took items not reported yet).
    held: AtomicIsize,
    capacity: isize,
    wake_every: isize,
    report_every: usize,
    dropped: AtomicU64,
}

/// A flow's lane: the producing side of its ring, kept in the flow. Dropping it (the flow
/// ended, or learnt of another's records) leaves what it holds to the exporter.
pub struct Lane<T: Queued> {
    shared: Arc<Shared<T>>,
    producer: rtrb::Producer<T>,
    last: T::Last,
    /// Pushed since this lane last added to the shared length.
    unreported: usize,
}

impl<T: Queued> core::fmt::Debug for Lane<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Lane")
            .field("capacity", &self.producer.buffer().capacity())
            .finish_non_exhaustive()
    }
}

impl<T: Queued> Drop for Lane<T> {
    fn drop(&mut self) {
        if self.unreported > 0 {
            self.shared
                .held
                .fetch_add(self.unreported as isize, Ordering::Relaxed);
        }
    }
}

/// Where a flow keeps its lane: boxed, so that taking it out of the flow for a push (see
/// `Flow::with_lane_out`) moves one pointer, not the lane.
pub type LaneSlot<T> = Option<Box<Lane<T>>>;

/// The exporter's side of a lane.
struct Source<T: Queued> {
    consumer: rtrb::Consumer<T>,
    last: T::Last,
}

/// The exporter's side: the lanes, and what waits for room.
struct Taking<T: Queued> {
    sources: Vec<Source<T>>,
    /// Taken from the lanes but not yet by the exporter (it had no room), in order.
    carry: VecDeque<T::Taken>,
}

/// A bounded multi-producer queue of one ring per flow, that drops (and counts) instead of
/// growing past its capacity. See the module docs.
pub struct Pipe<T: Queued> {
    shared: Arc<Shared<T>>,
    taking: Mutex<Taking<T>>,
    taken: AtomicU64,
}

impl<T: Queued> core::fmt::Debug for Pipe<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Pipe")
            .field("held", &self.shared.held.load(Ordering::Relaxed))
            .field("capacity", &self.shared.capacity)
            .finish_non_exhaustive()
    }
}

impl<T: Send + Queued> Pipe<T> {
    /// A queue of at most `capacity` items that asks for a wake-up every `wake_every`
    /// queued items (both at least 1).
    pub fn new(capacity: usize, wake_every: usize) -> Self {
        let wake_every = wake_every.max(1);
        Self {
            shared: Arc::new(Shared {
                opened: Mutex::new(Vec::new()),
                held: AtomicIsize::new(0),
                capacity: isize::try_from(capacity.max(1)).unwrap_or(isize::MAX),
                wake_every: isize::try_from(wake_every).unwrap_or(isize::MAX),
                // Small batches (tests, tiny configs) are counted exactly.
                report_every: if wake_every >= REPORT_EVERY {
                    REPORT_EVERY
                } else {
                    1
                },
                dropped: AtomicU64::new(0),
            }),
            taking: Mutex::new(Taking {
                sources: Vec::new(),
                carry: VecDeque::new(),
            }),
            taken: AtomicU64::new(0),
        }
    }

    /// Queues `item` (with `link`, see [`Queued`]) in `lane`, the pushing flow's (opened
    /// here when it is `None` or another pipe's, replaced when it is full), or drops and
    /// counts it when the queue is full.
    #[inline]
    pub fn push(&self, item: T, link: &T::Link, lane: &mut LaneSlot<T>) -> PushOutcome
    where
        T: Default,
    {
        self.push_with(lane, |slot| {
            *slot = item;
            link
        })
    }

    /// [`Pipe::push`] of an item that `fill` writes in place, into the next slot of the
    /// lane (which holds `T::default()`), returning its link: not built elsewhere and moved
    /// in (bytes stored one at a time and then read back sixteen at a time for a move stall
    /// the store buffer). When the queue is full, `fill` is not called: nothing is built,
    /// and nothing the item would have taken (a flow's next position) is taken.
    #[inline(always)]
    pub fn push_with<L: Borrow<T::Link>>(
        &self,
        lane: &mut LaneSlot<T>,
        fill: impl FnOnce(&mut T) -> L,
    ) -> PushOutcome
    where
        T: Default,
    {
        let shared = &*self.shared;
        if !matches!(lane, Some(l) if Arc::ptr_eq(&l.shared, &self.shared) && !l.producer.is_full()) {
            self.open(lane);
        }
        let Some(l) = lane.as_mut() else {
            return PushOutcome::Dropped;
        };
        if shared.held.load(Ordering::Relaxed) + l.unreported as isize >= shared.capacity {
            shared.dropped.fetch_add(1, Ordering::Relaxed);
            return PushOutcome::Dropped;
        }
        let Ok(mut chunk) = l.producer.write_chunk(1) else {
            // Not full: checked above, and only this flow pushes.
            shared.dropped.fetch_add(1, Ordering::Relaxed);
            return PushOutcome::Dropped;
        };
        let (first, _) = chunk.as_mut_slices();
        // A chunk of one slot: its first part is that slot.
        let item = &mut first[0];
        let link = fill(item);
        item.link(link.borrow(), &mut l.last);
        chunk.commit_all();
        l.unreported += 1;
        if l.unreported < shared.report_every {
            return PushOutcome::Accepted { wake: false };
        }
        let n = core::mem::take(&mut l.unreported) as isize;
        let total = shared.held.fetch_add(n, Ordering::Relaxed) + n;
        // A multiple of `wake_every` was reached or passed.
        let wake = total > 0 && total / shared.wake_every > (total - n).max(0) / shared.wake_every;
        PushOutcome::Accepted { wake }
    }

    /// Opens a lane in `lane`: the first for a flow, or one four times the size of the
    /// full one it replaces.
    #[cold]
    #[inline(never)]
    fn open(&self, lane: &mut LaneSlot<T>) {
        let size = match lane {
            Some(l) if Arc::ptr_eq(&l.shared, &self.shared) => {
                (l.producer.buffer().capacity() * 4).min(MAX_LANE)
            }
            _ => MIN_LANE,
        };
        // The old lane (if any) is dropped first: its count is reported, and everything it
        // holds was pushed before the new lane is opened (see the module docs).
        *lane = None;
        let (producer, consumer) = rtrb::RingBuffer::new(size);
        lock(&self.shared.opened).push(consumer);
        *lane = Some(Box::new(Lane {
            shared: self.shared.clone(),
            producer,
            last: T::Last::default(),
            unreported: 0,
        }));
    }

    /// Moves up to `max` of the oldest items to the end of `out`, in an order that keeps
    /// every item after those that happened before it; returns how many.
    pub fn drain(&self, max: usize, out: &mut Vec<T::Taken>) -> usize {
        let mut guard = lock(&self.taking);
        let taking = &mut *guard;
        let start = out.len();
        let mut lost = 0;
        let from_carry = max.min(taking.carry.len());
        out.extend(taking.carry.drain(..from_carry));
        if out.len() - start < max {
            // The carry is empty now. The cut: the lanes opened since the last one, then
            // every lane's length.
            let opened = core::mem::take(&mut *lock(&self.shared.opened));
            taking.sources.extend(opened.into_iter().map(|consumer| Source {
                consumer,
                last: T::Last::default(),
            }));
            let counts: Vec<usize> = taking.sources.iter().map(|s| s.consumer.slots()).collect();
            let total: usize = counts.iter().sum();
            let mut fresh = if out.is_empty() {
                core::mem::take(out)
            } else {
                Vec::new()
            };
            fresh.reserve_exact(total);
            let mut sources = 0;
            for (source, &n) in taking.sources.iter_mut().zip(&counts) {
                if n == 0 {
                    continue;
                }
                sources += 1;
                if let Ok(chunk) = source.consumer.read_chunk(n) {
                    for item in chunk {
                        match item.take(&mut source.last) {
                            Some(t) => fresh.push(t),
                            None => lost += 1,
                        }
                    }
                }
            }
            // A lane whose flow dropped it holds nothing more once it is empty.
            taking.sources.retain(|s| {
                if !s.consumer.is_abandoned() {
                    return true;
                }
                // Pairs with the release of the producer's drop: its last push is seen.
                fence(Ordering::Acquire);
                !s.consumer.is_empty()
            });
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
        let n = out.len() - start;
        // What left the lanes and the carry for `out`, or was lost, is no longer held.
        self.shared.held.fetch_sub((n + lost) as isize, Ordering::Relaxed);
        drop(guard);
        if lost > 0 {
            self.shared.dropped.fetch_add(lost as u64, Ordering::Relaxed);
        }
        self.taken.fetch_add(n as u64, Ordering::Relaxed);
        n
    }

    /// Items queued now (exact once the pushes under way are done).
    pub fn len(&self) -> usize {
        let taking = lock(&self.taking);
        let in_lanes: usize = taking.sources.iter().map(|s| s.consumer.slots()).sum();
        let opened: usize = lock(&self.shared.opened).iter().map(|c| c.slots()).sum();
        taking.carry.len() + in_lanes + opened
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
            dropped_queue_full: self.shared.dropped.load(Ordering::Relaxed),
            queued,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    /// (flow, sequence in the flow, key)
    #[derive(Debug, Clone, Copy, PartialEq, Default)]
    struct It(usize, u64, u64);

    impl Queued for It {
        type Link = ();
        type Last = ();
        type Taken = It;
        fn link(&mut self, _: &(), _: &mut ()) {}
        fn take(self, _: &mut ()) -> Option<It> {
            Some(self)
        }
        fn order(taken: &It) -> (u64, u64) {
            (taken.2, taken.1)
        }
    }

    /// Pushes through the lane of flow `it.0`, as that flow would.
    fn push_it(p: &Pipe<It>, lanes: &mut Lanes, it: It) -> PushOutcome {
        if lanes.len() <= it.0 {
            lanes.resize_with(it.0 + 1, || None);
        }
        p.push(it, &(), &mut lanes[it.0])
    }

    type Lanes = Vec<LaneSlot<It>>;

    #[test]
    fn one_flow_is_exact_about_capacity_and_order() {
        let p = Pipe::new(10, 4);
        let mut lanes = Lanes::new();
        let outcomes: Vec<_> = (0..15).map(|i| push_it(&p, &mut lanes, It(3, i, i))).collect();
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
        let mut lanes = Lanes::new();
        for i in 0..10 {
            assert!(matches!(
                push_it(&p, &mut lanes, It(0, i, i)),
                PushOutcome::Accepted { .. }
            ));
        }
        let mut out = Vec::new();
        assert_eq!(p.drain(3, &mut out), 3);
        let accepted = (10..15)
            .filter(|&i| matches!(push_it(&p, &mut lanes, It(0, i, i)), PushOutcome::Accepted { .. }))
            .count();
        assert_eq!(accepted, 3, "7 wait in the carry, so 3 more fit");
        assert_eq!(p.len(), 10);
        out.clear();
        assert_eq!(p.drain(usize::MAX, &mut out), 10);
        assert_eq!(
            out.iter().map(|i| i.1).collect::<Vec<_>>(),
            (3..13).collect::<Vec<_>>()
        );
        assert!(matches!(
            push_it(&p, &mut lanes, It(0, 99, 99)),
            PushOutcome::Accepted { .. }
        ));
    }

    #[test]
    fn several_flows_come_out_in_key_order_also_through_partial_drains() {
        let p = Pipe::new(1000, 64);
        let mut lanes = Lanes::new();
        // Keys interleave across flows; within a flow they grow.
        for i in 0..60u64 {
            let _ = push_it(&p, &mut lanes, It((i % 3) as usize, i / 3, i));
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
                let _ = push_it(&p, &mut lanes, It(1, 20, 1_000));
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
                    let mut lanes = Lanes::new();
                    for i in 0..20_000u64 {
                        assert!(matches!(
                            push_it(&p, &mut lanes, It(t, i, i)),
                            PushOutcome::Accepted { .. }
                        ));
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

    #[test]
    fn a_lane_dropped_with_unreported_pushes_leaves_them_queued_and_counted() {
        // Reports every 32 pushes: 10 pushes stay unreported until the lane is dropped.
        let p = Pipe::new(40, 64);
        let mut lanes = Lanes::new();
        for i in 0..10 {
            assert!(matches!(
                push_it(&p, &mut lanes, It(0, i, i)),
                PushOutcome::Accepted { .. }
            ));
        }
        lanes.clear();
        assert_eq!(p.len(), 10);
        // A new lane of the same flow (a join): what it pushes comes after.
        for i in 10..40 {
            assert!(matches!(
                push_it(&p, &mut lanes, It(0, i, i)),
                PushOutcome::Accepted { .. }
            ));
        }
        lanes.clear();
        assert!(
            matches!(push_it(&p, &mut lanes, It(0, 40, 40)), PushOutcome::Dropped),
            "40 held"
        );
        let mut out = Vec::new();
        assert_eq!(p.drain(usize::MAX, &mut out), 40);
        assert_eq!(
            out.iter().map(|i| i.1).collect::<Vec<_>>(),
            (0..40).collect::<Vec<_>>()
        );
        // Everything taken is no longer held, and the emptied lanes are gone.
        assert_eq!(
            p.taking.lock().unwrap().sources.len(),
            1,
            "only the open lane is left"
        );
        for i in 41..81 {
            assert!(matches!(
                push_it(&p, &mut lanes, It(0, i, i)),
                PushOutcome::Accepted { .. }
            ));
        }
        assert_eq!(p.stats().dropped_queue_full, 1);
    }

    #[test]
    fn a_flow_that_outgrows_its_lanes_keeps_its_order() {
        let p = Pipe::new(1 << 16, 1 << 16);
        let mut lanes = Lanes::new();
        let n = (MIN_LANE + 4 * MIN_LANE + MAX_LANE * 3) as u64;
        for i in 0..n {
            assert!(matches!(
                push_it(&p, &mut lanes, It(0, i, i)),
                PushOutcome::Accepted { .. }
            ));
        }
        assert_eq!(p.len(), n as usize);
        let mut out = Vec::new();
        assert_eq!(p.drain(usize::MAX, &mut out), n as usize);
        assert_eq!(
            out.iter().map(|i| i.1).collect::<Vec<_>>(),
            (0..n).collect::<Vec<_>>()
        );
    }
}

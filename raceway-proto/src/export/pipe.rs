//! The queue between recording threads and the exporter: bounded, grown on demand, kept.
//!
//! A `Mutex` around a `VecDeque` of compact records: a push is one uncontended lock, a
//! move of 112 bytes and an unlock; the exporter takes everything queued by swapping
//! buffers, so the lock is never held for a copy. The buffers grow as the queue fills (to
//! `capacity` records at most) and keep their memory once grown, so a steady stream
//! allocates nothing. `benches/queue.rs` compares it with
//! std's lock-free channels: the linked-block `mpsc::channel` (bounded by an atomic
//! length) paid a fresh block, and so fresh pages, every 31 records, about twice the
//! mutex's cost on one thread; the preallocated `sync_channel` ring was a little cheaper
//! on one thread but holds its whole capacity (8 MiB at 65,536 records) from the start,
//! in every client.

use core::sync::atomic::{AtomicU64, Ordering};
use std::collections::VecDeque;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::vec::Vec;

use super::{PushOutcome, QueueStats};

/// A bounded multi-producer queue that drops (and counts) instead of growing past its
/// capacity.
#[derive(Debug)]
pub struct Pipe<T> {
    items: Mutex<VecDeque<T>>,
    capacity: usize,
    wake_every: usize,
    dropped: AtomicU64,
    taken: AtomicU64,
}

impl<T: Send> Pipe<T> {
    /// A queue of at most `capacity` items that asks for a wake-up every `wake_every`
    /// queued items (both at least 1).
    pub fn new(capacity: usize, wake_every: usize) -> Self {
        Self {
            items: Mutex::new(VecDeque::new()),
            capacity: capacity.max(1),
            wake_every: wake_every.max(1),
            dropped: AtomicU64::new(0),
            taken: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> MutexGuard<'_, VecDeque<T>> {
        self.items.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues `item`, or drops and counts it when the queue is full.
    pub fn push(&self, item: T) -> PushOutcome {
        let mut q = self.lock();
        if q.len() >= self.capacity {
            drop(q);
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return PushOutcome::Dropped;
        }
        q.push_back(item);
        PushOutcome::Accepted {
            wake: q.len() % self.wake_every == 0,
        }
    }

    /// Moves up to `max` of the oldest items to the end of `out`; returns how many.
    ///
    /// Taking everything into an empty `out` swaps buffers under the lock instead of moving
    /// the items (the queue goes on in `out`'s old buffer), so recording threads never wait
    /// for a batch to be copied out.
    pub fn drain(&self, max: usize, out: &mut Vec<T>) -> usize {
        let mut q = self.lock();
        let n = max.min(q.len());
        if n == q.len() && out.is_empty() {
            let spare = VecDeque::from(core::mem::take(out));
            let taken = core::mem::replace(&mut *q, spare);
            drop(q);
            *out = Vec::from(taken);
        } else {
            out.extend(q.drain(..n));
            drop(q);
        }
        self.taken.fetch_add(n as u64, Ordering::Relaxed);
        n
    }

    /// Items queued now.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// True when nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The counters, for [`ExportStats::with_queue`](super::ExportStats::with_queue).
    pub fn stats(&self) -> QueueStats {
        let q = self.lock();
        QueueStats {
            recorded: self.taken.load(Ordering::Relaxed) + q.len() as u64,
            dropped_queue_full: self.dropped.load(Ordering::Relaxed),
            queued: q.len(),
        }
    }
}

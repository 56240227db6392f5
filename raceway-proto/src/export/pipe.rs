//! The queue between recording threads and the exporter: bounded, lock-free to push.
//!
//! Recording threads [`push`](Pipe::push) with two atomic operations and no lock: a
//! reservation on the length (which is what bounds the queue) and the send of std's
//! lock-free linked-block channel (`std::sync::mpsc`, crossbeam's design), which allocates
//! one block per 31 events as it grows and frees blocks as the exporter takes them, so an
//! idle queue holds next to nothing. Only the exporter [`drain`](Pipe::drain)s. This is
//! the shape of OpenTelemetry's and Sentry's bounded `try_send`; `benches/queue.rs`
//! compares it with a mutex around a `VecDeque` and std's preallocated `sync_channel`.

use core::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Mutex, PoisonError};
use std::vec::Vec;

use super::{PushOutcome, QueueStats};

/// A bounded multi-producer queue that drops (and counts) instead of growing past its
/// capacity.
#[derive(Debug)]
pub struct Pipe<T> {
    tx: Sender<T>,
    rx: Mutex<Receiver<T>>,
    len: AtomicUsize,
    capacity: usize,
    wake_every: usize,
    dropped: AtomicU64,
    taken: AtomicU64,
}

impl<T: Send> Pipe<T> {
    /// A queue of at most `capacity` items that asks for a wake-up every `wake_every`
    /// queued items (both at least 1).
    pub fn new(capacity: usize, wake_every: usize) -> Self {
        let (tx, rx) = mpsc::channel();
        Self {
            tx,
            rx: Mutex::new(rx),
            len: AtomicUsize::new(0),
            capacity: capacity.max(1),
            wake_every: wake_every.max(1),
            dropped: AtomicU64::new(0),
            taken: AtomicU64::new(0),
        }
    }

    /// Queues `item`, or drops and counts it when the queue is full.
    pub fn push(&self, item: T) -> PushOutcome {
        let before = self.len.fetch_add(1, Ordering::AcqRel);
        if before >= self.capacity {
            self.len.fetch_sub(1, Ordering::AcqRel);
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return PushOutcome::Dropped;
        }
        // The receiver lives as long as `self`: the send cannot fail.
        let _ = self.tx.send(item);
        PushOutcome::Accepted {
            wake: (before + 1) % self.wake_every == 0,
        }
    }

    /// Moves up to `max` of the oldest items to the end of `out`; returns how many.
    pub fn drain(&self, max: usize, out: &mut Vec<T>) -> usize {
        let rx = self.rx.lock().unwrap_or_else(PoisonError::into_inner);
        let mut n = 0;
        while n < max {
            match rx.try_recv() {
                Ok(item) => {
                    out.push(item);
                    n += 1;
                }
                Err(_) => break,
            }
        }
        drop(rx);
        if n > 0 {
            self.taken.fetch_add(n as u64, Ordering::Relaxed);
            self.len.fetch_sub(n, Ordering::AcqRel);
        }
        n
    }

    /// Items queued now (an item being pushed may already count).
    pub fn len(&self) -> usize {
        self.len.load(Ordering::Acquire).min(self.capacity)
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

//! Carrying a flow into new threads, and joining them back.

use std::panic::{self, AssertUnwindSafe};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::{self, JoinHandle, Scope, ScopedJoinHandle, Thread};

use raceway_proto::{Flow, FlowEnd};

use crate::context::{FlowGuard, ThreadLocalStore};
use crate::RacewayClient;

/// Where a thread leaves its flow's end for the joiner. Filled when the thread's closure
/// returns or unwinds; emptied by the first join.
type EndSlot = Arc<Mutex<Option<FlowEnd>>>;

fn take(slot: &EndSlot) -> Option<FlowEnd> {
    slot.lock().unwrap_or_else(PoisonError::into_inner).take()
}

/// Leaves the flow when dropped (also while unwinding) and stores its end in the slot.
struct FlowExit {
    guard: Option<FlowGuard>,
    slot: EndSlot,
}

impl Drop for FlowExit {
    fn drop(&mut self) {
        if let Some(flow) = self.guard.take().and_then(FlowGuard::exit) {
            *self.slot.lock().unwrap_or_else(PoisonError::into_inner) = Some(flow.end());
        }
    }
}

/// The body of every tracked thread: `f` inside `flow`, its end left in `slot`.
fn run_in<T>(flow: Flow, slot: EndSlot, f: impl FnOnce() -> T) -> T {
    let _exit = FlowExit {
        guard: Some(ThreadLocalStore.enter(flow)),
        slot,
    };
    f()
}

impl RacewayClient {
    /// The flow a new thread runs in: forked from this thread's flow (which records
    /// `AsyncSpawn`), or a new trace when the SDK is off.
    fn fork_for_thread(&self) -> Flow {
        self.fork_current("thread::spawn")
            .unwrap_or_else(|| self.new_flow())
    }

    /// Spawns a thread running `f` as a flow forked from this thread's: everything this
    /// thread recorded before is before what the new thread records.
    /// [`TrackedJoinHandle::join`] orders the thread before what follows the join.
    ///
    /// Panics where `std::thread::spawn` does (the OS refuses a thread).
    pub fn spawn<F, T>(&self, f: F) -> TrackedJoinHandle<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let flow = self.fork_for_thread();
        let slot = EndSlot::default();
        let in_thread = slot.clone();
        let handle = thread::spawn(move || run_in(flow, in_thread, f));
        TrackedJoinHandle {
            handle,
            end: slot,
            client: self.clone(),
        }
    }

    /// [`std::thread::scope`] with tracked threads: each thread spawned with
    /// [`TrackedScope::spawn`] is a flow forked from the spawning thread's, and when the
    /// scope ends every one of them is joined into this thread's flow (those joined
    /// explicitly with [`TrackedScopedJoinHandle::join`] already were), so what follows
    /// the scope happens after everything the scoped threads did.
    ///
    /// Panics like `std::thread::scope` when a scoped thread panicked and was not joined
    /// (the joins are recorded first).
    pub fn scope<'env, F, T>(&self, f: F) -> T
    where
        F: for<'scope> FnOnce(&TrackedScope<'scope, 'env>) -> T,
    {
        let slots: Arc<Mutex<Vec<EndSlot>>> = Arc::default();
        let result = panic::catch_unwind(AssertUnwindSafe(|| {
            thread::scope(|s| {
                let tracked = TrackedScope {
                    scope: s,
                    client: self.clone(),
                    slots: slots.clone(),
                };
                f(&tracked)
            })
        }));
        // Every scoped thread has ended here (std joined those not joined explicitly).
        let slots = std::mem::take(&mut *slots.lock().unwrap_or_else(PoisonError::into_inner));
        for slot in &slots {
            if let Some(end) = take(slot) {
                self.join_flow(&end);
            }
        }
        match result {
            Ok(out) => out,
            Err(payload) => panic::resume_unwind(payload),
        }
    }
}

/// A spawned thread's handle. [`TrackedJoinHandle::join`] joins the thread's flow into
/// the joining thread's: everything the thread recorded happens before what the joining
/// thread records next.
#[derive(Debug)]
#[must_use = "dropping the handle detaches the thread; join it to order it before what follows"]
pub struct TrackedJoinHandle<T> {
    handle: JoinHandle<T>,
    end: EndSlot,
    client: RacewayClient,
}

impl<T> TrackedJoinHandle<T> {
    /// Waits for the thread and joins its flow into this thread's (also when it
    /// panicked: it still ended before the join returns). Returns what
    /// `std::thread::JoinHandle::join` returns.
    pub fn join(self) -> thread::Result<T> {
        let out = self.handle.join();
        if let Some(end) = take(&self.end) {
            self.client.join_flow(&end);
        }
        out
    }

    /// True when the thread has finished.
    pub fn is_finished(&self) -> bool {
        self.handle.is_finished()
    }

    /// The thread.
    pub fn thread(&self) -> &Thread {
        self.handle.thread()
    }

    /// The underlying handle (joining it records no join).
    pub fn into_inner(self) -> JoinHandle<T> {
        self.handle
    }
}

/// A scope for tracked threads; see [`RacewayClient::scope`].
#[derive(Debug)]
pub struct TrackedScope<'scope, 'env: 'scope> {
    scope: &'scope Scope<'scope, 'env>,
    client: RacewayClient,
    slots: Arc<Mutex<Vec<EndSlot>>>,
}

impl<'scope, 'env> TrackedScope<'scope, 'env> {
    /// Spawns a scoped thread running `f` as a flow forked from the calling thread's.
    ///
    /// Panics where `std::thread::Scope::spawn` does (the OS refuses a thread).
    pub fn spawn<F, T>(&self, f: F) -> TrackedScopedJoinHandle<'scope, T>
    where
        F: FnOnce() -> T + Send + 'scope,
        T: Send + 'scope,
    {
        let flow = self.client.fork_for_thread();
        let slot = EndSlot::default();
        self.slots
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(slot.clone());
        let in_thread = slot.clone();
        let handle = self.scope.spawn(move || run_in(flow, in_thread, f));
        TrackedScopedJoinHandle {
            handle,
            end: slot,
            client: self.client.clone(),
        }
    }

    /// The underlying `std::thread::Scope`, for threads that should not be tracked.
    pub fn std_scope(&self) -> &'scope Scope<'scope, 'env> {
        self.scope
    }
}

/// A scoped thread's handle; [`TrackedScopedJoinHandle::join`] joins the thread's flow
/// into the joining thread's.
#[derive(Debug)]
#[must_use = "the scope joins the thread at its end anyway; join it to order it earlier"]
pub struct TrackedScopedJoinHandle<'scope, T> {
    handle: ScopedJoinHandle<'scope, T>,
    end: EndSlot,
    client: RacewayClient,
}

impl<T> TrackedScopedJoinHandle<'_, T> {
    /// Waits for the thread and joins its flow into this thread's.
    pub fn join(self) -> thread::Result<T> {
        let out = self.handle.join();
        if let Some(end) = take(&self.end) {
            self.client.join_flow(&end);
        }
        out
    }

    /// True when the thread has finished.
    pub fn is_finished(&self) -> bool {
        self.handle.is_finished()
    }

    /// The thread.
    pub fn thread(&self) -> &Thread {
        self.handle.thread()
    }
}

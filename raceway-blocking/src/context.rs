//! The thread-local context: which flow the current thread is.

use std::cell::RefCell;
use std::marker::PhantomData;

use raceway_proto::boundary::{with_flow_in, ContextStore};
use raceway_proto::Flow;

thread_local! {
    /// The current thread's flow. `None` until the thread's first event (which installs a
    /// root flow of a new trace) or until a guard installs one.
    static CURRENT: RefCell<Option<Flow>> = const { RefCell::new(None) };
}

/// Replaces the current thread's flow with `flow`, returning the one it replaces. `None`
/// when the slot cannot be reached (the thread's locals are being destroyed, or a flow is
/// borrowed right now); then nothing changed.
fn swap(flow: Option<Flow>) -> Option<Option<Flow>> {
    CURRENT
        .try_with(|cell| {
            cell.try_borrow_mut()
                .ok()
                .map(|mut slot| std::mem::replace(&mut *slot, flow))
        })
        .ok()
        .flatten()
}

/// [`ContextStore`] over a `thread_local!` slot: every thread is a flow.
///
/// A thread with no flow gets the root flow of a new trace on its first event
/// ([`ContextStore::install_root`]), so a plain `std::thread::spawn`ed thread is a flow of
/// its own. Flows are entered and left with [`FlowGuard`]s.
#[derive(Debug, Default, Clone, Copy)]
pub struct ThreadLocalStore;

impl ThreadLocalStore {
    /// Installs `flow` as the current thread's flow until the returned guard is dropped,
    /// which restores the previous one.
    pub fn enter(&self, flow: Flow) -> FlowGuard {
        // An unreachable slot installs nothing, and then the guard restores nothing.
        FlowGuard {
            previous: swap(Some(flow)),
            _not_send: PhantomData,
        }
    }
}

impl ContextStore for ThreadLocalStore {
    #[inline]
    fn with_flow(&self, f: &mut dyn FnMut(&mut Flow)) -> bool {
        CURRENT.try_with(|slot| with_flow_in(slot, f)).unwrap_or(false)
    }

    fn install_root(&self, make: &mut dyn FnMut() -> Flow) -> bool {
        CURRENT
            .try_with(|cell| match cell.try_borrow_mut() {
                Ok(mut slot) => {
                    if slot.is_none() {
                        *slot = Some(make());
                    }
                    true
                }
                Err(_) => false,
            })
            .unwrap_or(false)
    }
}

/// The current thread is in a flow until this guard is dropped; dropping it restores the
/// flow that was current before (or none).
///
/// Made by [`crate::RacewayClient::start_trace`], [`crate::RacewayClient::enter`],
/// [`crate::RacewayClient::continue_from_headers`] and
/// [`crate::RacewayClient::continue_from_header_map`]. It is neither `Send` nor `Sync`: it
/// restores the thread it was made on. Drop guards in the reverse order of their creation
/// (as scopes do); dropping an outer guard first restores the outer guard's predecessor.
#[must_use = "the flow is left as soon as the guard is dropped"]
#[derive(Debug)]
pub struct FlowGuard {
    /// `Some(previous)` while the guard is active; `None` once restored (or never entered).
    previous: Option<Option<Flow>>,
    _not_send: PhantomData<*const ()>,
}

impl FlowGuard {
    /// Leaves the flow now, restoring the previous one, and returns the flow that was
    /// current (with everything it recorded), for example to join it elsewhere with
    /// `client.join_flow(&flow.end())`.
    pub fn exit(mut self) -> Option<Flow> {
        self.restore()
    }

    fn restore(&mut self) -> Option<Flow> {
        let previous = self.previous.take()?;
        swap(previous).flatten()
    }
}

impl Drop for FlowGuard {
    fn drop(&mut self) {
        let _ = self.restore();
    }
}

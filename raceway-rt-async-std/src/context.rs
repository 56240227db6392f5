//! The context: which flow the code running on this thread belongs to right now.
//!
//! One thread-local slot per OS thread. A future that runs inside a flow
//! ([`crate::Instrumented`], [`crate::ServeRequest`]) owns its flow and moves it into the
//! slot for the duration of each poll, then moves it back out, even if the poll panics.
//! Between polls the flow lives in the future, so it follows the task to whichever
//! executor thread polls it next.

use std::cell::RefCell;

use raceway_proto::boundary::{with_flow_in, ContextStore};
use raceway_proto::Flow;

thread_local! {
    static CURRENT: RefCell<Option<Flow>> = const { RefCell::new(None) };
}

/// [`ContextStore`] over the thread-local slot that [`crate::Instrumented`] fills while it
/// polls its future.
#[derive(Debug, Default, Clone, Copy)]
pub struct ThreadLocalStore;

impl ContextStore for ThreadLocalStore {
    #[inline]
    fn with_flow(&self, f: &mut dyn FnMut(&mut Flow)) -> bool {
        CURRENT.try_with(|slot| with_flow_in(slot, f)).unwrap_or(false)
    }
}

/// Moves a flow into the thread-local slot for as long as it lives, then back to `home`.
///
/// Dropped at the end of a poll, including while unwinding from a panicking poll, so the
/// slot never keeps a flow that is not running on this thread.
pub(crate) struct Installed<'a> {
    home: &'a mut Option<Flow>,
    /// What the slot held before (restored on drop); `None` when nothing was installed.
    previous: Option<Option<Flow>>,
}

impl<'a> Installed<'a> {
    pub(crate) fn new(home: &'a mut Option<Flow>) -> Self {
        let mut previous = None;
        if home.is_some() {
            let _ = CURRENT.try_with(|slot| {
                if let Ok(mut slot) = slot.try_borrow_mut() {
                    previous = Some(std::mem::replace(&mut *slot, home.take()));
                }
            });
        }
        Self { home, previous }
    }
}

impl Drop for Installed<'_> {
    fn drop(&mut self) {
        let Some(previous) = self.previous.take() else {
            return;
        };
        let mut previous = Some(previous);
        let _ = CURRENT.try_with(|slot| {
            if let Ok(mut slot) = slot.try_borrow_mut() {
                if let Some(p) = previous.take() {
                    *self.home = std::mem::replace(&mut *slot, p);
                }
            }
        });
    }
}

raceway_proto::flow_context! {
/// One task's place in a trace: a [`Flow`] (trace, `thread_id`, vector clock, position).
///
/// **Cloning forks.** A clone is a new flow of the same trace whose clock orders it after
/// everything the original recorded so far, with its own `thread_id`: what a context copied
/// into a worker is. To fork *and* join, prefer [`crate::RacewayClient::spawn`] or
/// [`crate::RacewayClient::instrument`] with [`crate::RacewayClient::join_flow`].
pub struct RacewayContext;
}

impl RacewayContext {
    /// A copy of the current flow (forked, see the type's docs), or `None` outside any flow.
    /// Records nothing: use it to carry the context into code that has no client at hand.
    pub fn capture() -> Option<Self> {
        let mut out = None;
        ThreadLocalStore.with_flow(&mut |flow| out = Some(flow.fork_detached()));
        out.map(Self::from_flow)
    }

    /// Runs `future` in this context (see [`crate::Instrumented`]).
    pub fn scope<F: std::future::Future>(self, future: F) -> crate::Instrumented<F> {
        crate::Instrumented::new(self, future)
    }
}

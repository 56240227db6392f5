//! Traits at the boundary between the core and its adapters.
//!
//! - [`ContextStore`]: where the current [`Flow`] lives (a tokio task-local, a thread-local,
//!   a future wrapper's slot).
//! - [`Sender`]: how an encoded batch body reaches the collector. Blocking: it runs on
//!   the exporter's own thread ([`crate::background`]), whatever runtime the application
//!   uses.

use alloc::collections::VecDeque;
use alloc::vec::Vec;
use core::cell::RefCell;

use crate::export::SendOutcome;
use crate::flow::Flow;

/// Where the current flow lives. Object-safe; adapters implement it over their task-local
/// or thread-local storage.
pub trait ContextStore {
    /// Runs `f` on the current flow and returns true, or returns false when no flow is
    /// installed here.
    fn with_flow(&self, f: &mut dyn FnMut(&mut Flow)) -> bool;

    /// Installs the flow `make` builds as the current one where none is, for stores whose
    /// every execution context is a flow of its own (a thread). Returns false when the
    /// store does not do that (the default, which never calls `make`): then calls outside
    /// a flow record nothing and are counted.
    fn install_root(&self, make: &mut dyn FnMut() -> Flow) -> bool {
        let _ = make;
        false
    }
}

/// [`ContextStore::with_flow`] over a slot that may hold a flow (a `RefCell`, usually in a
/// thread-local): runs `f` on the flow and returns true, or returns false when the slot is
/// empty or already borrowed (a `track_*` call made from inside `f`).
#[inline]
pub fn with_flow_in(slot: &RefCell<Option<Flow>>, f: &mut dyn FnMut(&mut Flow)) -> bool {
    match slot.try_borrow_mut() {
        Ok(mut slot) => match slot.as_mut() {
            Some(flow) => {
                f(flow);
                true
            }
            None => false,
        },
        Err(_) => false,
    }
}

/// Sends one encoded body (`{"events":[...]}`) and says how it went. Blocking form, for
/// senders that own a thread.
pub trait Sender {
    /// POSTs `body`; never panics, maps every failure to a [`SendOutcome`].
    fn send(&mut self, body: &[u8]) -> SendOutcome;
}

/// A sender that keeps what it is given and answers from a script: for tests.
#[derive(Debug, Default)]
pub struct MemorySender {
    /// Bodies received, in order.
    pub bodies: Vec<Vec<u8>>,
    /// Outcomes to answer with, first to last; when empty, answers `Status(200)`.
    pub script: VecDeque<SendOutcome>,
}

impl Sender for MemorySender {
    fn send(&mut self, body: &[u8]) -> SendOutcome {
        self.bodies.push(body.to_vec());
        self.script.pop_front().unwrap_or(SendOutcome::status(200))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_sender_answers_from_its_script_then_200() {
        let mut sender = MemorySender::default();
        sender.script.push_back(SendOutcome::status(503));
        assert_eq!(sender.send(b"a"), SendOutcome::status(503));
        assert_eq!(sender.send(b"b"), SendOutcome::status(200));
        assert_eq!(sender.bodies, alloc::vec![b"a".to_vec(), b"b".to_vec()]);
    }
}

//! Traits at the boundary between the core and its adapters, each with an in-memory
//! implementation for tests.
//!
//! - [`ContextStore`]: where the current [`Flow`] lives (a tokio task-local, a thread-local,
//!   a future wrapper's slot).
//! - [`Sender`] and [`AsyncSender`]: how an encoded batch body reaches the collector.

use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::vec::Vec;
use core::cell::RefCell;
use core::future::Future;
use core::pin::Pin;

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

/// A context store holding one flow in a `RefCell`: for tests and single-threaded hosts.
#[derive(Debug, Default)]
pub struct MemoryContextStore {
    flow: RefCell<Option<Flow>>,
}

impl MemoryContextStore {
    /// An empty store.
    pub const fn new() -> Self {
        Self {
            flow: RefCell::new(None),
        }
    }
    /// Installs `flow`, returning the one it replaces.
    pub fn install(&self, flow: Flow) -> Option<Flow> {
        self.flow.borrow_mut().replace(flow)
    }
    /// Removes and returns the current flow.
    pub fn take(&self) -> Option<Flow> {
        self.flow.borrow_mut().take()
    }
}

impl ContextStore for MemoryContextStore {
    fn with_flow(&self, f: &mut dyn FnMut(&mut Flow)) -> bool {
        with_flow_in(&self.flow, f)
    }
}

/// [`ContextStore::with_flow`] over a slot that may hold a flow (a `RefCell`, usually in a
/// thread-local): runs `f` on the flow and returns true, or returns false when the slot is
/// empty or already borrowed (a `track_*` call made from inside `f`).
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

/// A boxed, `Send` future, as [`AsyncSender`] returns.
pub type SendFuture<'a> = Pin<Box<dyn Future<Output = SendOutcome> + Send + 'a>>;

/// Sends one encoded body. Async form, object-safe.
pub trait AsyncSender: Send + Sync {
    /// POSTs `body`; never panics, maps every failure to a [`SendOutcome`].
    fn send(&self, body: Vec<u8>) -> SendFuture<'_>;
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

/// The in-memory sender as an [`AsyncSender`] (behind a mutex, since async senders are
/// shared): for tests of async exporters.
#[cfg(feature = "std")]
impl AsyncSender for std::sync::Mutex<MemorySender> {
    fn send(&self, body: Vec<u8>) -> SendFuture<'_> {
        let outcome = match self.lock() {
            Ok(mut sender) => Sender::send(&mut *sender, &body),
            Err(_) => SendOutcome::ConnectionError,
        };
        Box::pin(core::future::ready(outcome))
    }
}

#[cfg(all(test, feature = "std"))]
mod tests {
    use super::*;

    #[test]
    fn memory_sender_answers_from_its_script_then_200() {
        let sender = std::sync::Mutex::new(MemorySender::default());
        sender.lock().unwrap().script.push_back(SendOutcome::status(503));
        let poll = |f: SendFuture<'_>| {
            let waker = core::task::Waker::noop();
            let mut cx = core::task::Context::from_waker(waker);
            let mut f = f;
            match f.as_mut().poll(&mut cx) {
                core::task::Poll::Ready(o) => o,
                core::task::Poll::Pending => panic!("ready at once"),
            }
        };
        assert_eq!(
            poll(AsyncSender::send(&sender, b"a".to_vec())),
            SendOutcome::status(503)
        );
        assert_eq!(
            poll(AsyncSender::send(&sender, b"b".to_vec())),
            SendOutcome::status(200)
        );
        assert_eq!(
            sender.lock().unwrap().bodies,
            alloc::vec![b"a".to_vec(), b"b".to_vec()]
        );
    }

    #[test]
    fn memory_context_store_holds_one_flow() {
        let store = MemoryContextStore::new();
        assert!(!store.with_flow(&mut |_| {}));
        let tracer = crate::Tracer::new(
            crate::Service::new("s", "i", "dev", "app", 1),
            alloc::sync::Arc::new(crate::ids::SeededIds::new(1)),
            alloc::sync::Arc::new(crate::system::SystemClock::new()),
        );
        store.install(tracer.new_trace());
        let mut seen = None;
        assert!(store.with_flow(&mut |f| seen = Some(alloc::string::String::from(f.thread_id()))));
        assert!(seen.unwrap().starts_with("s#i#flow-"));
        assert!(store.take().is_some());
    }
}

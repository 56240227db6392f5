//! [`Causal<T>`]: a message that carries its sender's causality, what every adapter's
//! tracked channels send through the runtime's own channel.
//!
//! At the send, [`Causal::send`] marks the send in the sender's flow (a `Custom`
//! `channel_send` event, which moves the flow's clock on) and keeps the flow's end (its
//! clock and last event, a [`FlowEnd`]) with the value. At the receive,
//! [`Causal::receive`] joins that end into the receiver's flow (an `AsyncAwait`, the
//! `join_flow` of spawned tasks): everything the sender did before the send happens before
//! whatever the receiver does after the receive, in the local analyser and on the server
//! (the receiver's next event has the send as `parent_id`, and a clock that holds the
//! sender's). What the sender does *after* the send stays concurrent with the receiver,
//! as it is.
//!
//! The receiver keeps its own flow: a worker that serves many senders is one flow whose
//! clock takes in each sender's in turn (one clock component per sending flow, not per
//! message). A message sent outside any flow (or by a disabled client) carries nothing and
//! joins nothing. A message that is never received costs nothing more.
//!
//! ```
//! # use std::cell::RefCell;
//! # use raceway_proto::boundary::{with_flow_in, ContextStore};
//! # use raceway_proto::Flow;
//! # thread_local!(static SLOT: RefCell<Option<Flow>> = const { RefCell::new(None) });
//! # #[derive(Default)]
//! # struct ThreadStore;
//! # impl ContextStore for ThreadStore {
//! #     fn with_flow(&self, f: &mut dyn FnMut(&mut Flow)) -> bool { SLOT.with(|s| with_flow_in(s, f)) }
//! #     fn install_root(&self, make: &mut dyn FnMut() -> Flow) -> bool {
//! #         SLOT.with(|s| { s.borrow_mut().get_or_insert_with(&mut *make); true })
//! #     }
//! # }
//! use std::sync::{mpsc, Arc};
//! use raceway_proto::causal::Causal;
//! use raceway_proto::client::ClientCore;
//! use raceway_proto::config::Config;
//!
//! let client = Arc::new(ClientCore::new(Config::new("svc"), ThreadStore));
//! let (tx, rx) = mpsc::channel::<Causal<u32>>();
//! let worker = {
//!     let client = client.clone();
//!     std::thread::spawn(move || {
//!         // Received in the worker thread's flow: the main thread's write is before it.
//!         let n = rx.recv().map(|m| m.receive(&client, "jobs")).unwrap_or(0);
//!         client.track_state_change("job", None::<u32>, n, "Read");
//!     })
//! };
//! client.track_state_change("job", None::<u32>, 7, "Write");
//! tx.send(Causal::send(&client, "jobs", 7)).ok();
//! worker.join().ok();
//! assert!(client.races().is_empty());
//! ```

use crate::event::SourceLocation;
use crate::flow::FlowEnd;
use crate::tracked::Tracker;

/// A value with its sender's causality: made by [`Causal::send`] where a message is sent,
/// opened by [`Causal::receive`] where it is received.
#[derive(Debug, Clone)]
pub struct Causal<T> {
    value: T,
    end: Option<FlowEnd>,
}

impl<T> Causal<T> {
    /// Wraps `value` for sending on `channel` (a name for the events): records the send in
    /// the current flow and keeps the flow's end with the value.
    #[track_caller]
    pub fn send<C: Tracker + ?Sized>(client: &C, channel: &str, value: T) -> Self {
        let end = client.send_point(channel, SourceLocation::caller());
        Self { value, end }
    }

    /// A value that carries no causality (nothing is recorded).
    pub fn detached(value: T) -> Self {
        Self { value, end: None }
    }

    /// Opens the message where it is received on `channel`: joins the sender's end into
    /// the current flow and returns the value.
    pub fn receive<C: Tracker + ?Sized>(self, client: &C, channel: &str) -> T {
        if let Some(end) = &self.end {
            client.receive_point(end, channel);
        }
        self.value
    }

    /// The value, without joining anything (a message handed back to its sender because
    /// the channel is closed, say).
    pub fn into_inner(self) -> T {
        self.value
    }

    /// The value, by reference.
    pub fn get(&self) -> &T {
        &self.value
    }

    /// The sender's flow end, when the send was made in a recorded flow.
    pub fn flow_end(&self) -> Option<&FlowEnd> {
        self.end.as_ref()
    }
}

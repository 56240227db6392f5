//! Tracked `async-channel` channels (the channels `async_std::channel` re-exports, and
//! smol's): each message carries the sender's causality
//! ([`raceway_proto::causal::Causal`]), so what a flow did before it sent a message
//! happens before what the receiving flow does after receiving it.
//!
//! The send records a `channel_send` event in the sender's flow; the receive joins the
//! sender's flow end into the receiver's flow (an `AsyncAwait` with `awaited_at` `"recv
//! <name>"`). Receive inside a flow ([`instrument`](crate::RacewayClient::instrument),
//! [`in_new_trace`](crate::RacewayClient::in_new_trace), a served request); a future
//! polled outside any flow joins nothing, as it records nothing.
//!
//! ```
//! use raceway_rt_async_std::channel;
//! use raceway_rt_async_std::RacewayClient;
//! use std::sync::Arc;
//!
//! let raceway = Arc::new(RacewayClient::local("jobs"));
//! let (jobs, queue) = channel::bounded::<u32>(8, raceway.clone(), "jobs");
//! let (replies, answers) = channel::bounded::<u32>(1, raceway.clone(), "replies");
//! let rw = raceway.clone();
//! let worker = std::thread::spawn({
//!     let raceway = raceway.clone();
//!     move || {
//!         async_io::block_on(raceway.in_new_trace(async move {
//!             while let Ok(n) = queue.recv().await {
//!                 rw.track_state_change("result", None::<u32>, n * 2, "Write");
//!                 let _ = replies.send(n * 2).await;
//!             }
//!         }));
//!     }
//! });
//! let rw = raceway.clone();
//! async_io::block_on(raceway.in_new_trace(async move {
//!     jobs.send(21).await.ok();
//!     let answer = answers.recv().await.unwrap_or(0);
//!     // The reply orders the worker's write before this read: no race.
//!     rw.track_state_change("result", None::<u32>, answer, "Read");
//! }));
//! worker.join().ok();
//! assert!(raceway.races().is_empty());
//! raceway.shutdown();
//! ```

use std::future::Future;
use std::sync::Arc;

pub use async_channel::{RecvError, SendError, TryRecvError, TrySendError};
use raceway_proto::causal::Causal;

use crate::RacewayClient;

/// A bounded channel of `cap` messages (at least 1: async-channel refuses 0), named
/// `name` in the events.
pub fn bounded<T>(
    cap: usize,
    client: Arc<RacewayClient>,
    name: impl Into<String>,
) -> (Sender<T>, Receiver<T>) {
    wrap(async_channel::bounded(cap.max(1)), client, name.into())
}

/// An unbounded channel, named `name` in the events.
pub fn unbounded<T>(client: Arc<RacewayClient>, name: impl Into<String>) -> (Sender<T>, Receiver<T>) {
    wrap(async_channel::unbounded(), client, name.into())
}

fn wrap<T>(
    (tx, rx): (
        async_channel::Sender<Causal<T>>,
        async_channel::Receiver<Causal<T>>,
    ),
    client: Arc<RacewayClient>,
    name: String,
) -> (Sender<T>, Receiver<T>) {
    let name: Arc<str> = Arc::from(name);
    (
        Sender {
            inner: tx,
            client: client.clone(),
            name: name.clone(),
        },
        Receiver {
            inner: rx,
            client,
            name,
        },
    )
}

/// The sending half of a tracked channel; clone it for more senders.
#[derive(Debug)]
pub struct Sender<T> {
    inner: async_channel::Sender<Causal<T>>,
    client: Arc<RacewayClient>,
    name: Arc<str>,
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            client: self.client.clone(),
            name: self.name.clone(),
        }
    }
}

impl<T> Sender<T> {
    /// Sends `value`, waiting for room; gives it back when the channel is closed. The send
    /// is marked (and the sender's causality taken) when this is called.
    #[track_caller]
    pub fn send(&self, value: T) -> impl Future<Output = Result<(), SendError<T>>> + '_ {
        let message = Causal::send(&self.client, &self.name, value);
        async move {
            self.inner
                .send(message)
                .await
                .map_err(|e| SendError(e.0.into_inner()))
        }
    }

    /// Sends `value` if there is room now.
    #[track_caller]
    pub fn try_send(&self, value: T) -> Result<(), TrySendError<T>> {
        let message = Causal::send(&self.client, &self.name, value);
        self.inner.try_send(message).map_err(|e| match e {
            TrySendError::Full(c) => TrySendError::Full(c.into_inner()),
            TrySendError::Closed(c) => TrySendError::Closed(c.into_inner()),
        })
    }

    /// Closes the channel; returns true when this call closed it.
    pub fn close(&self) -> bool {
        self.inner.close()
    }

    /// True when the channel is closed.
    pub fn is_closed(&self) -> bool {
        self.inner.is_closed()
    }

    /// The channel's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

/// The receiving half of a tracked channel; clone it for more receivers (each message
/// goes to one). Every receive joins the message's sender into the current flow.
#[derive(Debug)]
pub struct Receiver<T> {
    inner: async_channel::Receiver<Causal<T>>,
    client: Arc<RacewayClient>,
    name: Arc<str>,
}

impl<T> Clone for Receiver<T> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            client: self.client.clone(),
            name: self.name.clone(),
        }
    }
}

impl<T> Receiver<T> {
    /// Waits for a message; fails once the channel is closed and empty.
    pub async fn recv(&self) -> Result<T, RecvError> {
        let message = self.inner.recv().await?;
        Ok(message.receive(&self.client, &self.name))
    }

    /// Receives a message if one is there now.
    pub fn try_recv(&self) -> Result<T, TryRecvError> {
        self.inner.try_recv().map(|m| m.receive(&self.client, &self.name))
    }

    /// Closes the channel; returns true when this call closed it.
    pub fn close(&self) -> bool {
        self.inner.close()
    }

    /// True when the channel is closed.
    pub fn is_closed(&self) -> bool {
        self.inner.is_closed()
    }

    /// The channel's name.
    pub fn name(&self) -> &str {
        &self.name
    }
}

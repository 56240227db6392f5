//! Tracked `std::sync::mpsc` channels: each message carries the sender's causality
//! ([`raceway_proto::causal::Causal`]), so what a thread did before it sent a message
//! happens before what the receiving thread does after receiving it.
//!
//! The send records a `channel_send` event in the sender's flow; the receive joins the
//! sender's flow end into the receiving thread's flow (an `AsyncAwait` with `awaited_at`
//! `"recv <name>"`). Every thread is a flow here, so this works between plain
//! `std::thread::spawn`ed threads as well.
//!
//! ```
//! use std::sync::Arc;
//! use raceway_blocking::channel::mpsc;
//! use raceway_blocking::RacewayClient;
//!
//! let raceway = Arc::new(RacewayClient::local("jobs"));
//! let (jobs, queue) = mpsc::channel::<u32>(raceway.clone(), "jobs");
//! let (replies, answers) = mpsc::channel::<u32>(raceway.clone(), "replies");
//! let rw = raceway.clone();
//! let worker = std::thread::spawn(move || {
//!     for n in queue.iter() {
//!         rw.track_state_change("result", None::<u32>, n * 2, "Write");
//!         let _ = replies.send(n * 2);
//!     }
//! });
//! jobs.send(21).ok();
//! let answer = answers.recv().unwrap_or(0);
//! // The reply orders the worker's write before this read: no race.
//! raceway.track_state_change("result", None::<u32>, answer, "Read");
//! drop(jobs);
//! worker.join().ok();
//! assert!(raceway.races().is_empty());
//! raceway.shutdown();
//! ```

/// A tracked `std::sync::mpsc`: [`channel`](mpsc::channel) (unbounded) and
/// [`sync_channel`](mpsc::sync_channel) (bounded).
pub mod mpsc {
    use std::sync::mpsc as inner;
    pub use std::sync::mpsc::{RecvError, RecvTimeoutError, SendError, TryRecvError, TrySendError};
    use std::sync::Arc;
    use std::time::Duration;

    use raceway_proto::causal::Causal;

    use crate::RacewayClient;

    /// An unbounded channel, named `name` in the events.
    pub fn channel<T>(client: Arc<RacewayClient>, name: impl Into<String>) -> (Sender<T>, Receiver<T>) {
        let (tx, rx) = inner::channel();
        let name: Arc<str> = Arc::from(name.into());
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

    /// A bounded channel of `bound` messages (0: every send waits for its receive), named
    /// `name` in the events.
    pub fn sync_channel<T>(
        bound: usize,
        client: Arc<RacewayClient>,
        name: impl Into<String>,
    ) -> (SyncSender<T>, Receiver<T>) {
        let (tx, rx) = inner::sync_channel(bound);
        let name: Arc<str> = Arc::from(name.into());
        (
            SyncSender {
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

    /// The sending half of a tracked [`channel`]; clone it for more senders.
    #[derive(Debug)]
    pub struct Sender<T> {
        inner: inner::Sender<Causal<T>>,
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
        /// Sends `value`; gives it back when the receiver is gone.
        #[track_caller]
        pub fn send(&self, value: T) -> Result<(), SendError<T>> {
            let message = Causal::send(&self.client, &self.name, value);
            self.inner.send(message).map_err(|e| SendError(e.0.into_inner()))
        }

        /// The channel's name.
        pub fn name(&self) -> &str {
            &self.name
        }
    }

    /// The sending half of a tracked [`sync_channel`]; clone it for more senders.
    #[derive(Debug)]
    pub struct SyncSender<T> {
        inner: inner::SyncSender<Causal<T>>,
        client: Arc<RacewayClient>,
        name: Arc<str>,
    }

    impl<T> Clone for SyncSender<T> {
        fn clone(&self) -> Self {
            Self {
                inner: self.inner.clone(),
                client: self.client.clone(),
                name: self.name.clone(),
            }
        }
    }

    impl<T> SyncSender<T> {
        /// Sends `value`, waiting for room; gives it back when the receiver is gone.
        #[track_caller]
        pub fn send(&self, value: T) -> Result<(), SendError<T>> {
            let message = Causal::send(&self.client, &self.name, value);
            self.inner.send(message).map_err(|e| SendError(e.0.into_inner()))
        }

        /// Sends `value` if there is room now.
        #[track_caller]
        pub fn try_send(&self, value: T) -> Result<(), TrySendError<T>> {
            let message = Causal::send(&self.client, &self.name, value);
            self.inner.try_send(message).map_err(|e| match e {
                TrySendError::Full(c) => TrySendError::Full(c.into_inner()),
                TrySendError::Disconnected(c) => TrySendError::Disconnected(c.into_inner()),
            })
        }

        /// The channel's name.
        pub fn name(&self) -> &str {
            &self.name
        }
    }

    /// The receiving half of a tracked channel. Every receive joins the message's sender
    /// into the current thread's flow.
    #[derive(Debug)]
    pub struct Receiver<T> {
        inner: inner::Receiver<Causal<T>>,
        client: Arc<RacewayClient>,
        name: Arc<str>,
    }

    impl<T> Receiver<T> {
        /// Waits for a message; fails once every sender is gone and the buffer is empty.
        pub fn recv(&self) -> Result<T, RecvError> {
            self.inner.recv().map(|m| self.open(m))
        }

        /// Receives a message if one is there now.
        pub fn try_recv(&self) -> Result<T, TryRecvError> {
            self.inner.try_recv().map(|m| self.open(m))
        }

        /// Waits at most `timeout` for a message.
        pub fn recv_timeout(&self, timeout: Duration) -> Result<T, RecvTimeoutError> {
            self.inner.recv_timeout(timeout).map(|m| self.open(m))
        }

        /// The messages, until every sender is gone.
        pub fn iter(&self) -> Iter<'_, T> {
            Iter { rx: self }
        }

        /// The channel's name.
        pub fn name(&self) -> &str {
            &self.name
        }

        fn open(&self, message: Causal<T>) -> T {
            message.receive(&self.client, &self.name)
        }
    }

    /// The messages of a [`Receiver`], each joined as it is received.
    #[derive(Debug)]
    pub struct Iter<'a, T> {
        rx: &'a Receiver<T>,
    }

    impl<T> Iterator for Iter<'_, T> {
        type Item = T;
        fn next(&mut self) -> Option<T> {
            self.rx.recv().ok()
        }
    }

    impl<'a, T> IntoIterator for &'a Receiver<T> {
        type Item = T;
        type IntoIter = Iter<'a, T>;
        fn into_iter(self) -> Iter<'a, T> {
            self.iter()
        }
    }
}

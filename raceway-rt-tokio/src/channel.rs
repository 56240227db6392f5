//! Tracked channels: `tokio::sync::mpsc` and `tokio::sync::oneshot` whose messages carry
//! the sender's causality ([`raceway_proto::causal::Causal`]).
//!
//! What a flow did before it sent a message happens before what the receiving flow does
//! after it received it: a job handed to a worker, the worker's answer on a reply channel.
//! The send records a `channel_send` event in the sender's flow; the receive joins the
//! sender's flow end into the receiver's flow (an `AsyncAwait` with `awaited_at` `"recv
//! <name>"`). Receive in a task that has a flow (the middleware's, or one started with
//! [`spawn`](crate::RacewayClient::spawn) or [`in_new_trace`](crate::RacewayClient::in_new_trace)):
//! a task without one records nothing, so it joins nothing either.
//!
//! ```
//! use std::sync::Arc;
//! use raceway_rt_tokio::channel::{mpsc, oneshot};
//! use raceway_rt_tokio::RacewayClient;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let raceway = Arc::new(RacewayClient::local("jobs"));
//! let (jobs, mut queue) = mpsc::channel::<(u32, oneshot::Sender<u32>)>(8, raceway.clone(), "jobs");
//! let rw = raceway.clone();
//! let worker = raceway.spawn(async move {
//!     while let Some((n, reply)) = queue.recv().await {
//!         rw.track_state_change("result", None::<u32>, n * 2, "Write");
//!         let _ = reply.send(n * 2);
//!     }
//! });
//! let rw = raceway.clone();
//! raceway
//!     .in_new_trace(async move {
//!         let (tx, rx) = oneshot::channel(rw.clone(), "reply");
//!         jobs.send((21, tx)).await.ok();
//!         let answer = rx.await.unwrap_or(0);
//!         // The reply orders the worker's write before this read: no race.
//!         rw.track_state_change("result", None::<u32>, answer, "Read");
//!     })
//!     .await;
//! worker.join().await.ok();
//! assert!(raceway.races().is_empty());
//! raceway.shutdown();
//! # }
//! ```

/// A tracked `tokio::sync::mpsc` (bounded and unbounded).
pub mod mpsc {
    use std::future::Future;
    use std::sync::Arc;

    use raceway_proto::causal::Causal;
    use tokio::sync::mpsc as inner;
    pub use tokio::sync::mpsc::error::{SendError, TryRecvError, TrySendError};

    use crate::RacewayClient;

    fn unwrap_try<T>(e: TrySendError<Causal<T>>) -> TrySendError<T> {
        match e {
            TrySendError::Full(c) => TrySendError::Full(c.into_inner()),
            TrySendError::Closed(c) => TrySendError::Closed(c.into_inner()),
        }
    }

    /// A bounded channel of `buffer` messages (at least 1: tokio refuses 0), named `name`
    /// in the events.
    pub fn channel<T>(
        buffer: usize,
        client: Arc<RacewayClient>,
        name: impl Into<String>,
    ) -> (Sender<T>, Receiver<T>) {
        let (tx, rx) = inner::channel(buffer.max(1));
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

    /// An unbounded channel, named `name` in the events.
    pub fn unbounded_channel<T>(
        client: Arc<RacewayClient>,
        name: impl Into<String>,
    ) -> (UnboundedSender<T>, UnboundedReceiver<T>) {
        let (tx, rx) = inner::unbounded_channel();
        let name: Arc<str> = Arc::from(name.into());
        (
            UnboundedSender {
                inner: tx,
                client: client.clone(),
                name: name.clone(),
            },
            UnboundedReceiver {
                inner: rx,
                client,
                name,
            },
        )
    }

    /// The sending half of a tracked bounded channel; clone it for more senders.
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
        /// Sends `value`, waiting for room. The send is marked (and the sender's causality
        /// taken) when this is called.
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
            self.inner.try_send(message).map_err(unwrap_try)
        }

        /// True when the receiver is gone.
        pub fn is_closed(&self) -> bool {
            self.inner.is_closed()
        }

        /// Waits until the receiver is gone.
        pub async fn closed(&self) {
            self.inner.closed().await;
        }

        /// Room left in the buffer.
        pub fn capacity(&self) -> usize {
            self.inner.capacity()
        }

        /// The channel's name.
        pub fn name(&self) -> &str {
            &self.name
        }
    }

    /// The receiving half of a tracked bounded channel.
    #[derive(Debug)]
    pub struct Receiver<T> {
        inner: inner::Receiver<Causal<T>>,
        client: Arc<RacewayClient>,
        name: Arc<str>,
    }

    impl<T> Receiver<T> {
        /// Receives the next message and joins its sender's causality into the current
        /// flow; `None` once every sender is gone and the buffer is empty.
        pub async fn recv(&mut self) -> Option<T> {
            let message = self.inner.recv().await?;
            Some(message.receive(&self.client, &self.name))
        }

        /// Receives a message if one is there now (joined like [`Receiver::recv`]).
        pub fn try_recv(&mut self) -> Result<T, TryRecvError> {
            self.inner.try_recv().map(|m| m.receive(&self.client, &self.name))
        }

        /// Closes the channel: senders fail from now on; buffered messages can still be
        /// received.
        pub fn close(&mut self) {
            self.inner.close();
        }

        /// The channel's name.
        pub fn name(&self) -> &str {
            &self.name
        }
    }

    /// The sending half of a tracked unbounded channel; clone it for more senders.
    #[derive(Debug)]
    pub struct UnboundedSender<T> {
        inner: inner::UnboundedSender<Causal<T>>,
        client: Arc<RacewayClient>,
        name: Arc<str>,
    }

    impl<T> Clone for UnboundedSender<T> {
        fn clone(&self) -> Self {
            Self {
                inner: self.inner.clone(),
                client: self.client.clone(),
                name: self.name.clone(),
            }
        }
    }

    impl<T> UnboundedSender<T> {
        /// Sends `value` (never waits); fails only when the receiver is gone.
        #[track_caller]
        pub fn send(&self, value: T) -> Result<(), SendError<T>> {
            let message = Causal::send(&self.client, &self.name, value);
            self.inner.send(message).map_err(|e| SendError(e.0.into_inner()))
        }

        /// True when the receiver is gone.
        pub fn is_closed(&self) -> bool {
            self.inner.is_closed()
        }

        /// The channel's name.
        pub fn name(&self) -> &str {
            &self.name
        }
    }

    /// The receiving half of a tracked unbounded channel.
    #[derive(Debug)]
    pub struct UnboundedReceiver<T> {
        inner: inner::UnboundedReceiver<Causal<T>>,
        client: Arc<RacewayClient>,
        name: Arc<str>,
    }

    impl<T> UnboundedReceiver<T> {
        /// Receives the next message and joins its sender's causality into the current
        /// flow; `None` once every sender is gone and the buffer is empty.
        pub async fn recv(&mut self) -> Option<T> {
            let message = self.inner.recv().await?;
            Some(message.receive(&self.client, &self.name))
        }

        /// Receives a message if one is there now (joined like
        /// [`UnboundedReceiver::recv`]).
        pub fn try_recv(&mut self) -> Result<T, TryRecvError> {
            self.inner.try_recv().map(|m| m.receive(&self.client, &self.name))
        }

        /// Closes the channel: senders fail from now on.
        pub fn close(&mut self) {
            self.inner.close();
        }

        /// The channel's name.
        pub fn name(&self) -> &str {
            &self.name
        }
    }
}

/// A tracked `tokio::sync::oneshot`: a reply channel whose answer orders what the
/// answering flow did before what the awaiting flow does next.
pub mod oneshot {
    use std::future::Future;
    use std::pin::Pin;
    use std::sync::Arc;
    use std::task::{Context, Poll};

    use raceway_proto::causal::Causal;
    use tokio::sync::oneshot as inner;
    pub use tokio::sync::oneshot::error::{RecvError, TryRecvError};

    use crate::RacewayClient;

    /// A one-message channel, named `name` in the events.
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

    /// The sending half of a tracked oneshot channel.
    #[derive(Debug)]
    pub struct Sender<T> {
        inner: inner::Sender<Causal<T>>,
        client: Arc<RacewayClient>,
        name: Arc<str>,
    }

    impl<T> Sender<T> {
        /// Sends `value`; gives it back when the receiver is gone.
        #[track_caller]
        pub fn send(self, value: T) -> Result<(), T> {
            let message = Causal::send(&self.client, &self.name, value);
            self.inner.send(message).map_err(Causal::into_inner)
        }

        /// True when the receiver is gone.
        pub fn is_closed(&self) -> bool {
            self.inner.is_closed()
        }

        /// Waits until the receiver is gone.
        pub async fn closed(&mut self) {
            self.inner.closed().await;
        }
    }

    /// The receiving half of a tracked oneshot channel: await it. The answer's causality
    /// is joined into the flow of the task that awaits it.
    #[derive(Debug)]
    #[must_use = "futures do nothing unless you .await or poll them"]
    pub struct Receiver<T> {
        inner: inner::Receiver<Causal<T>>,
        client: Arc<RacewayClient>,
        name: Arc<str>,
    }

    impl<T> Receiver<T> {
        /// Takes the answer if it is there now (joined like awaiting).
        pub fn try_recv(&mut self) -> Result<T, TryRecvError> {
            self.inner.try_recv().map(|m| m.receive(&self.client, &self.name))
        }

        /// Closes the channel: the sender's `send` fails from now on.
        pub fn close(&mut self) {
            self.inner.close();
        }
    }

    impl<T> Future for Receiver<T> {
        type Output = Result<T, RecvError>;

        fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
            let this = self.get_mut();
            match Pin::new(&mut this.inner).poll(cx) {
                Poll::Ready(Ok(message)) => Poll::Ready(Ok(message.receive(&this.client, &this.name))),
                Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
                Poll::Pending => Poll::Pending,
            }
        }
    }
}

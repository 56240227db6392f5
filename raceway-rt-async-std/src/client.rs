//! `RacewayClient`: constructors, flows, flush and shutdown.

use std::future::Future;
use std::time::Duration;

use raceway_proto::background::FlushError;
use raceway_proto::lifecycle::{BlockingPolicy, ClientHandle};

use crate::context::{RacewayContext, ThreadLocalStore};
use crate::spawn::Instrumented;

/// The Raceway client for async-std, smol and any other executor.
///
/// Cheap to clone (an `Arc` inside); the tracking methods (`track_state_change`,
/// `track_function_call`, ..., `propagation_headers`, `races`, `stats`) come from
/// [`ClientCore`], which it dereferences to. It never panics: made outside any executor,
/// shut down twice or dropped without shutdown, it works.
///
/// ```
/// use raceway_rt_async_std::RacewayClient;
///
/// // No endpoint: events go to the built-in local analyser.
/// let client = RacewayClient::local("my-service");
/// client.track_state_change("balance", None::<i64>, 100, "Read"); // outside a flow: counted, not recorded
/// assert_eq!(client.stats().core.no_context, 1);
/// client.shutdown();
/// ```
#[derive(Clone)]
pub struct RacewayClient {
    handle: ClientHandle<ThreadLocalStore>,
}

raceway_proto::adapter_client!(RacewayClient, ThreadLocalStore, BlockingPolicy::BLOCK);

impl RacewayClient {
    /// A future that runs `future` as a new flow forked from the current one (or as a new
    /// trace when there is none); the fork's `AsyncSpawn` is recorded now, in the current
    /// flow. Await it, or spawn it on any executor (`smol::spawn`,
    /// `futures::executor::ThreadPool`, ...) and, once it is done, join its flow with
    /// [`RacewayClient::join_flow`]:
    ///
    /// ```
    /// # use raceway_rt_async_std::RacewayClient;
    /// # let client = RacewayClient::local("svc");
    /// futures::executor::block_on(client.in_new_trace(async {
    ///     let child = client.instrument(async { client.track_state_change("x", None::<i32>, 1, "Write") });
    ///     let ((), end) = child.await; // or: the output of a task spawned on any executor
    ///     client.join_flow(&end.expect("the child ran in a flow"));
    ///     client.track_state_change("x", None::<i32>, 1, "Read"); // ordered after the child
    /// }));
    /// assert!(client.races().is_empty());
    /// ```
    pub fn instrument<F: Future>(&self, future: F) -> Instrumented<F> {
        self.instrument_as(future, "instrument")
    }

    /// Runs `future` as the root flow of a new trace (a job, a message handler, a test).
    pub fn in_new_trace<F: Future>(&self, future: F) -> Instrumented<F> {
        Instrumented::new(RacewayContext::from_flow(self.new_flow()), future)
    }

    /// Spawns `future` on async-std's executor as a flow forked from the current one (a
    /// new trace when there is none); [`crate::TrackedJoinHandle::join`] orders it before
    /// what follows the join. Other executors: see [`RacewayClient::instrument`].
    #[cfg(feature = "async-std")]
    pub fn spawn<F>(&self, future: F) -> crate::TrackedJoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let handle = async_std::task::spawn(self.instrument_as(future, "spawn"));
        crate::TrackedJoinHandle {
            handle,
            client: self.clone(),
        }
    }

    fn instrument_as<F: Future>(&self, future: F, spawned_by: &str) -> Instrumented<F> {
        let flow = self.fork_current(spawned_by).unwrap_or_else(|| self.new_flow());
        Instrumented::new(RacewayContext::from_flow(flow), future)
    }

    /// Sends everything recorded so far; returns when it is sent (or dropped and counted)
    /// or at `timeout`. Immediate in local mode. Awaitable on any executor (the timeout is
    /// an `async-io` timer, which needs no particular runtime).
    pub async fn flush(&self, timeout: Duration) -> Result<(), FlushError> {
        self.handle.flush_with(async_io::Timer::after(timeout)).await
    }

    /// [`ClientHandle::shutdown_timeout`] without blocking the executor.
    pub async fn shutdown_async(&self, timeout: Duration) -> Result<(), FlushError> {
        self.handle.shutdown_with(timeout, async_io::Timer::after).await
    }
}

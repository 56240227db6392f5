//! `RacewayClient` for tokio: constructors, flows, flush and shutdown.

use std::future::Future;
use std::time::Duration;

use raceway_proto::background::FlushError;
use raceway_proto::lifecycle::{BlockingPolicy, ClientHandle};

use crate::context::{RacewayContext, TaskLocalStore};
use crate::spawn::{Instrumented, TrackedJoinHandle};

/// Drop and propagation wait for the exporter only off a tokio runtime: a runtime worker must not stall
/// for the shutdown timeout (see [`raceway_proto::lifecycle`]).
const BLOCKING_POLICY: BlockingPolicy = BlockingPolicy {
    may_block: off_runtime,
};

fn off_runtime() -> bool {
    tokio::runtime::Handle::try_current().is_err()
}

/// The Raceway client for tokio and axum services.
///
/// Cheap to clone (an `Arc` inside); the tracking methods (`track_state_change`,
/// `track_function_call`, ..., `propagation_headers`) come from
/// [`ClientCore`](raceway_proto::client::ClientCore), which it dereferences to (through
/// [`ClientHandle`], which adds `flush_blocking`, `shutdown` and `shutdown_timeout`). It never panics: made outside a runtime, in
/// a current-thread runtime, shut down twice or dropped without shutdown, it works.
///
/// ```
/// use raceway_rt_tokio::RacewayClient;
///
/// // No endpoint: events go to the built-in local analyser.
/// let client = RacewayClient::local("my-service");
/// client.track_state_change("balance", None::<i64>, 100, "Read"); // outside a flow: counted, not recorded
/// assert_eq!(client.stats().core.no_context, 1);
/// client.shutdown();
/// ```
#[derive(Clone)]
pub struct RacewayClient {
    handle: ClientHandle<TaskLocalStore>,
}

raceway_proto::adapter_client!(RacewayClient, TaskLocalStore, BLOCKING_POLICY);

impl RacewayClient {
    /// A future that runs `future` as a new flow forked from the current one (or as a new
    /// trace when there is none). Await it, or spawn it and join it with
    /// [`RacewayClient::join_flow`].
    pub fn instrument<F: Future>(&self, future: F) -> Instrumented<F> {
        let flow = self.fork_current("instrument").unwrap_or_else(|| self.new_flow());
        Instrumented::new(RacewayContext::from_flow(flow), future)
    }

    /// Runs `future` as the root flow of a new trace (a job, a message handler, a test).
    pub fn in_new_trace<F: Future>(&self, future: F) -> Instrumented<F> {
        Instrumented::new(RacewayContext::from_flow(self.new_flow()), future)
    }

    /// Spawns `future` on the current tokio runtime as a flow forked from the current one;
    /// [`TrackedJoinHandle::join`] orders it before what follows the join.
    ///
    /// Panics only where `tokio::spawn` does: outside a runtime.
    pub fn spawn<F>(&self, future: F) -> TrackedJoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let flow = self.fork_current("spawn").unwrap_or_else(|| self.new_flow());
        let handle = tokio::spawn(Instrumented::new(RacewayContext::from_flow(flow), future));
        TrackedJoinHandle {
            handle,
            client: self.clone(),
        }
    }

    /// Sends everything recorded so far; returns when it is sent (or dropped and counted)
    /// or at `timeout`. Immediate in local mode.
    pub async fn flush(&self, timeout: Duration) -> Result<(), FlushError> {
        self.handle.flush_with(tokio::time::sleep(timeout)).await
    }

    /// [`ClientHandle::shutdown_timeout`] without blocking the runtime.
    pub async fn shutdown_async(&self, timeout: Duration) -> Result<(), FlushError> {
        self.handle.shutdown_with(timeout, tokio::time::sleep).await
    }
}

//! `RacewayClient`: constructors, flows, flush and shutdown.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use futures::channel::oneshot;
use futures::future::{self, Either};
use raceway_proto::boundary::Sender;
use raceway_proto::client::ClientCore;
use raceway_proto::config::{Config, ConfigError};
use raceway_proto::FlowEnd;

use crate::context::{RacewayContext, ThreadLocalStore};
use crate::spawn::Instrumented;
use raceway_blocking::{ExportReply, ExporterThread, UreqSender};

raceway_proto::flush_error!();

impl FlushError {
    fn from_shared(e: raceway_blocking::FlushError) -> Self {
        match e {
            raceway_blocking::FlushError::Timeout => FlushError::Timeout,
            _ => FlushError::NotRunning,
        }
    }
}

struct Inner {
    core: ClientCore<ThreadLocalStore>,
    exporter: Option<ExporterThread>,
    init_error: Option<ConfigError>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(exporter) = &self.exporter {
            let _ = exporter.shutdown(self.core.config().shutdown_timeout);
        }
    }
}

fn boxed(sender: UreqSender) -> Box<dyn Sender + Send> {
    Box::new(sender)
}

/// A reply the exporter thread answers into a `futures` oneshot, awaitable on any executor.
fn async_reply() -> (ExportReply, oneshot::Receiver<bool>) {
    let (tx, rx) = oneshot::channel();
    (
        Box::new(move |done| {
            let _ = tx.send(done);
        }),
        rx,
    )
}

/// Waits for `rx` on any executor, for at most `timeout` (timer: `async-io`, which needs
/// no particular runtime).
async fn recv_within(rx: oneshot::Receiver<bool>, timeout: Duration) -> Option<Result<bool, ()>> {
    let timer = async_io::Timer::after(timeout);
    match future::select(rx, timer).await {
        Either::Left((answer, _)) => Some(answer.map_err(|_| ())),
        Either::Right(_) => None,
    }
}

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
    inner: Arc<Inner>,
}

raceway_proto::adapter_client_impls!(RacewayClient, crate::context::ThreadLocalStore);

impl RacewayClient {
    /// A client from a full configuration; fails on an unusable endpoint or key.
    pub fn from_config(config: Config) -> Result<Self, ConfigError> {
        let sender = config.make_sender(UreqSender::new)?;
        Ok(Self::assemble(config, sender.map(boxed), None))
    }

    /// A client from a configuration and a sender of your own (an in-memory one in tests,
    /// a different HTTP client). The sender runs on the exporter thread and may block.
    pub fn with_sender(config: Config, sender: Box<dyn Sender + Send>) -> Self {
        Self::assemble(config, Some(sender), None)
    }

    fn build(endpoint: &str, service_name: &str, api_key: Option<&str>, module: Option<&str>) -> Self {
        let tls = cfg!(feature = "rustls");
        let (config, sender, error) =
            Config::for_client_with(endpoint, service_name, api_key, module, tls, UreqSender::new);
        Self::assemble(config, sender.map(boxed), error)
    }

    fn assemble(
        config: Config,
        sender: Option<Box<dyn Sender + Send>>,
        init_error: Option<ConfigError>,
    ) -> Self {
        let core = ClientCore::new(config, ThreadLocalStore);
        let exporter = match sender {
            Some(s) if core.sink().is_exporting() => {
                ExporterThread::start(core.sink().clone(), s, core.config())
            }
            _ => None,
        };
        Self {
            inner: Arc::new(Inner {
                core,
                exporter,
                init_error,
            }),
        }
    }

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

    /// Joins a finished flow into the current one (records `AsyncAwait`): everything that
    /// flow recorded happens before what the current flow records next.
    pub fn join_flow(&self, end: &FlowEnd) {
        self.join_current(end, "join");
    }

    /// Sends everything recorded so far; returns when it is sent (or dropped and counted)
    /// or at `timeout`. Immediate in local mode. Awaitable on any executor.
    pub async fn flush(&self, timeout: Duration) -> Result<(), FlushError> {
        let Some(exporter) = &self.inner.exporter else {
            return Ok(());
        };
        let (reply, rx) = async_reply();
        if !exporter.request_flush(reply) {
            return Err(FlushError::NotRunning);
        }
        match recv_within(rx, timeout).await {
            Some(Ok(true)) => Ok(()),
            Some(Ok(false)) | None => Err(FlushError::Timeout),
            Some(Err(())) => Err(FlushError::NotRunning),
        }
    }

    /// [`RacewayClient::flush`] for code that is not async (blocks the calling thread).
    pub fn flush_blocking(&self, timeout: Duration) -> Result<(), FlushError> {
        match &self.inner.exporter {
            Some(exporter) => exporter.flush(timeout).map_err(FlushError::from_shared),
            None => Ok(()),
        }
    }

    /// Flushes everything and stops the exporter, waiting at most the configured shutdown
    /// timeout (`RACEWAY_SHUTDOWN_TIMEOUT_MS`, 5 s by default). Safe to call twice, from
    /// any thread, inside or outside an executor (it blocks the calling thread: inside an
    /// async task prefer [`RacewayClient::shutdown_async`]).
    pub fn shutdown(&self) {
        let _ = self.shutdown_timeout(self.config().shutdown_timeout);
    }

    /// Flushes and stops the exporter within `timeout`; what is left then is dropped and
    /// counted. Blocks the calling thread. A send already in flight to a collector that
    /// does not answer is left to finish on the exporter thread (at most the request
    /// timeout); this call returns on time regardless.
    pub fn shutdown_timeout(&self, timeout: Duration) -> Result<(), FlushError> {
        match &self.inner.exporter {
            Some(exporter) => exporter.shutdown(timeout).map_err(FlushError::from_shared),
            None => Ok(()),
        }
    }

    /// [`RacewayClient::shutdown_timeout`] without blocking the executor.
    pub async fn shutdown_async(&self, timeout: Duration) -> Result<(), FlushError> {
        let Some(exporter) = &self.inner.exporter else {
            return Ok(());
        };
        let (reply, rx) = async_reply();
        let Some(wait) = exporter.request_shutdown(timeout, reply) else {
            exporter.reap();
            return Ok(()); // already stopped
        };
        let result = match recv_within(rx, wait).await {
            Some(Ok(true)) | Some(Err(())) => Ok(()),
            Some(Ok(false)) | None => Err(FlushError::Timeout),
        };
        exporter.reap();
        result
    }
}

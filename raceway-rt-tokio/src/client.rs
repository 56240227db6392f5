//! `RacewayClient` for tokio: constructors, flows, flush and shutdown.

use std::future::Future;
use std::sync::mpsc as std_mpsc;
use std::sync::Arc;
use std::time::Duration;

use raceway_proto::client::ClientCore;
use raceway_proto::config::{Config, ConfigError};
use raceway_proto::FlowEnd;
use tokio::sync::oneshot;

use crate::context::{RacewayContext, TaskLocalStore};
use crate::exporter::{Command, ExporterHandle, Reply};
use crate::sender::HyperSender;
use crate::spawn::{Instrumented, TrackedJoinHandle};

raceway_proto::flush_error!();

struct Inner {
    core: ClientCore<TaskLocalStore>,
    exporter: Option<ExporterHandle>,
    init_error: Option<ConfigError>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(exporter) = &self.exporter {
            let (tx, rx) = std_mpsc::sync_channel(1);
            let within = self.core.config().shutdown_timeout;
            if exporter.send(Command::Shutdown {
                within,
                reply: Reply::Blocking(tx),
            }) {
                let _ = rx.recv_timeout(within + Duration::from_millis(200));
            }
            exporter.reap();
        }
    }
}

/// The Raceway client for tokio and axum services.
///
/// Cheap to clone (an `Arc` inside); the tracking methods (`track_state_change`,
/// `track_function_call`, ..., `propagation_headers`) come from
/// [`ClientCore`], which it dereferences to. It never panics: made outside a runtime, in
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
    inner: Arc<Inner>,
}

raceway_proto::adapter_client_impls!(RacewayClient, crate::context::TaskLocalStore);

impl RacewayClient {
    /// A client from a full configuration; fails on an unusable endpoint or key.
    pub fn from_config(config: Config) -> Result<Self, ConfigError> {
        let sender = config.make_sender(HyperSender::new)?;
        Ok(Self::assemble(config, sender, None))
    }

    fn build(endpoint: &str, service_name: &str, api_key: Option<&str>, module: Option<&str>) -> Self {
        let tls = cfg!(feature = "rustls");
        let (config, sender, error) =
            Config::for_client_with(endpoint, service_name, api_key, module, tls, HyperSender::new);
        Self::assemble(config, sender, error)
    }

    fn assemble(config: Config, sender: Option<HyperSender>, init_error: Option<ConfigError>) -> Self {
        let export = config.export.clone();
        let shutdown = config.shutdown_timeout;
        let core = ClientCore::new(config, TaskLocalStore);
        let exporter = match sender {
            Some(s) if core.sink().is_exporting() => {
                ExporterHandle::start(core.sink().clone(), Box::new(s), export, shutdown)
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

    /// Joins a finished flow into the current one (records `AsyncAwait`).
    pub fn join_flow(&self, end: &FlowEnd) {
        self.join_current(end, "join");
    }

    /// Sends everything recorded so far; returns when it is sent (or dropped and counted)
    /// or at `timeout`. Immediate in local mode.
    pub async fn flush(&self, timeout: Duration) -> Result<(), FlushError> {
        let Some(exporter) = &self.inner.exporter else {
            return Ok(());
        };
        let (tx, rx) = oneshot::channel();
        if !exporter.send(Command::Flush(Reply::Async(tx))) {
            return Err(FlushError::NotRunning);
        }
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(true)) => Ok(()),
            Ok(Ok(false)) | Err(_) => Err(FlushError::Timeout),
            Ok(Err(_)) => Err(FlushError::NotRunning),
        }
    }

    /// [`RacewayClient::flush`] for code that is not async (blocks the calling thread).
    pub fn flush_blocking(&self, timeout: Duration) -> Result<(), FlushError> {
        let Some(exporter) = &self.inner.exporter else {
            return Ok(());
        };
        let (tx, rx) = std_mpsc::sync_channel(1);
        if !exporter.send(Command::Flush(Reply::Blocking(tx))) {
            return Err(FlushError::NotRunning);
        }
        match rx.recv_timeout(timeout) {
            Ok(true) => Ok(()),
            Ok(false) | Err(std_mpsc::RecvTimeoutError::Timeout) => Err(FlushError::Timeout),
            Err(std_mpsc::RecvTimeoutError::Disconnected) => Err(FlushError::NotRunning),
        }
    }

    /// Flushes everything and stops the exporter, waiting at most the configured shutdown
    /// timeout (`RACEWAY_SHUTDOWN_TIMEOUT_MS`, 5 s by default). Safe to call twice, from
    /// any thread, inside or outside a runtime.
    pub fn shutdown(&self) {
        let _ = self.shutdown_timeout(self.config().shutdown_timeout);
    }

    /// Flushes and stops the exporter within `timeout`; what is left then is dropped and
    /// counted. Blocks the calling thread.
    pub fn shutdown_timeout(&self, timeout: Duration) -> Result<(), FlushError> {
        let Some(exporter) = &self.inner.exporter else {
            return Ok(());
        };
        let (tx, rx) = std_mpsc::sync_channel(1);
        if !exporter.send(Command::Shutdown {
            within: timeout,
            reply: Reply::Blocking(tx),
        }) {
            return Ok(()); // already stopped
        }
        let result = match rx.recv_timeout(timeout + Duration::from_millis(200)) {
            Ok(true) => Ok(()),
            Ok(false) | Err(std_mpsc::RecvTimeoutError::Timeout) => Err(FlushError::Timeout),
            Err(std_mpsc::RecvTimeoutError::Disconnected) => Ok(()),
        };
        exporter.reap();
        result
    }

    /// [`RacewayClient::shutdown_timeout`] without blocking the runtime.
    pub async fn shutdown_async(&self, timeout: Duration) -> Result<(), FlushError> {
        let Some(exporter) = &self.inner.exporter else {
            return Ok(());
        };
        let (tx, rx) = oneshot::channel();
        if !exporter.send(Command::Shutdown {
            within: timeout,
            reply: Reply::Async(tx),
        }) {
            return Ok(());
        }
        let result = match tokio::time::timeout(timeout + Duration::from_millis(200), rx).await {
            Ok(Ok(true)) | Ok(Err(_)) => Ok(()),
            Ok(Ok(false)) | Err(_) => Err(FlushError::Timeout),
        };
        exporter.reap();
        result
    }
}

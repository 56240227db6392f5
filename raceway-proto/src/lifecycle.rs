//! A client's life, written once for every adapter: built from a configuration with its
//! background exporter, flushed, shut down, dropped.
//!
//! An adapter's `RacewayClient` wraps a [`ClientHandle`] over its own context store and
//! adds only what is specific to its runtime (entering flows, spawning, its server and
//! client integrations, and the runtime timer its async `flush` races against). The
//! handle dereferences to the [`ClientCore`] (the `track_*` API).
//!
//! # Drop policy
//!
//! Dropping the last clone of a client shuts the exporter down. When the adapter says the
//! current thread may block ([`BlockingPolicy::may_block`]), the drop waits for the exporter
//! to drain, at most the configured shutdown timeout; otherwise (a tokio runtime worker,
//! which must not stall) it asks the exporter to drain within that timeout and returns at
//! once, and the exporter thread finishes on its own. A shutdown already asked for (and
//! perhaps stuck on a hanging server) is never waited for a second time.

use core::future::Future;
use core::ops::Deref;
use core::pin::Pin;
use core::task::{Context, Poll};
use core::time::Duration;
use std::boxed::Box;
use std::sync::Arc;

use crate::background::{Barrier, ExporterThread, FlushError};
use crate::boundary::{ContextStore, Sender};
use crate::client::{AdapterApi as _, ClientCore};
use crate::config::{Config, ConfigError};

/// When a client may block the calling thread on its exporter: at drop (see the
/// [module docs](self)), and for causal delivery when `propagation_headers` or
/// `inject_headers` are called (see [`ClientHandle::propagation_headers`]).
#[derive(Debug, Clone, Copy)]
pub struct BlockingPolicy {
    /// True when the calling thread may block (for the shutdown timeout at drop, for the
    /// causal timeout when propagating).
    pub may_block: fn() -> bool,
}

impl BlockingPolicy {
    /// Always wait (threads, async-std, smol: their executors are not starved by a
    /// dropping thread, or the drop happens outside them).
    pub const BLOCK: BlockingPolicy = BlockingPolicy { may_block: always };
}

fn always() -> bool {
    true
}

struct Inner<S> {
    core: ClientCore<S>,
    exporter: Option<ExporterThread>,
    init_error: Option<ConfigError>,
    blocking_policy: BlockingPolicy,
    shutdown_timeout: Duration,
}

impl<S> Drop for Inner<S> {
    fn drop(&mut self) {
        let Some(exporter) = &self.exporter else {
            return;
        };
        if exporter.shutdown_requested() {
            exporter.reap();
        } else if (self.blocking_policy.may_block)() {
            let _ = exporter.shutdown(self.shutdown_timeout);
        } else {
            let _ = exporter.request_shutdown(self.shutdown_timeout, Box::new(|_| {}));
        }
    }
}

/// The runtime-independent half of every adapter's `RacewayClient`: the client core, its
/// exporter thread, and their lifecycle. Cheap to clone (an `Arc` inside).
pub struct ClientHandle<S> {
    inner: Arc<Inner<S>>,
}

impl<S> Clone for ClientHandle<S> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

impl<S> core::fmt::Debug for ClientHandle<S> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("RacewayClient")
            .field("core", &self.inner.core)
            .field("exporting", &self.inner.exporter.is_some())
            .finish()
    }
}

impl<S> Deref for ClientHandle<S> {
    type Target = ClientCore<S>;
    fn deref(&self) -> &ClientCore<S> {
        &self.inner.core
    }
}

impl<S: ContextStore> ClientHandle<S> {
    /// A client for `config` sending with `sender` (which runs on the exporter's own
    /// thread and may block). With no sender, or a configuration that sends nowhere,
    /// nothing is exported.
    pub fn with_sender(
        config: Config,
        store: S,
        sender: Option<Box<dyn Sender + Send>>,
        blocking_policy: BlockingPolicy,
    ) -> Self {
        Self::assemble(config, store, sender, None, blocking_policy)
    }

    fn assemble(
        config: Config,
        store: S,
        sender: Option<Box<dyn Sender + Send>>,
        init_error: Option<ConfigError>,
        blocking_policy: BlockingPolicy,
    ) -> Self {
        let core = ClientCore::new(config, store);
        let exporter = match sender {
            Some(s) if core.is_exporting() => ExporterThread::start(core.sink().clone(), s, core.config()),
            _ => None,
        };
        let shutdown_timeout = core.config().shutdown_timeout;
        Self {
            inner: Arc::new(Inner {
                core,
                exporter,
                init_error,
                blocking_policy,
                shutdown_timeout,
            }),
        }
    }

    /// The configuration error that made this client fall back to local analysis, if any.
    pub fn init_error(&self) -> Option<&ConfigError> {
        self.inner.init_error.as_ref()
    }

    /// Sends everything recorded so far, blocking the calling thread; returns when it is
    /// sent (or dropped and counted) or at `timeout`. Immediate in local mode.
    pub fn flush_blocking(&self, timeout: Duration) -> Result<(), FlushError> {
        match &self.inner.exporter {
            Some(exporter) => exporter.flush(timeout),
            None => Ok(()),
        }
    }

    /// Flushes and stops the exporter within `timeout` (plus a few hundred milliseconds at
    /// most), blocking the calling thread; what is left then is dropped and counted, and a
    /// thread still stuck in a send is left to end on its own rather than joined. Safe to
    /// call twice, from any thread.
    pub fn shutdown_timeout(&self, timeout: Duration) -> Result<(), FlushError> {
        match &self.inner.exporter {
            Some(exporter) => exporter.shutdown(timeout),
            None => Ok(()),
        }
    }

    /// Flushes and stops the exporter, waiting at most the configured shutdown timeout
    /// (`RACEWAY_SHUTDOWN_TIMEOUT_MS`, 5 s by default).
    pub fn shutdown(&self) {
        let _ = self.shutdown_timeout(self.config().shutdown_timeout);
    }

    /// The causal-delivery wait, when it applies: exporting, `causal_delivery` on, and the
    /// last send did not fail.
    fn causal_wait(&self) -> Option<Duration> {
        let config = self.config();
        (self.inner.exporter.is_some() && config.causal_delivery && self.sink().is_healthy())
            .then_some(config.causal_timeout)
    }

    /// Causal delivery, blocking: waits (at most `causal_timeout`) until what was recorded
    /// so far is on the server. Adapters call it where a flow crosses a service boundary.
    pub fn causal_barrier_blocking(&self) {
        if let Some(t) = self.causal_wait() {
            let _ = self.flush_blocking(t);
        }
    }

    /// Causal delivery, awaited: `timer(wait)` is the runtime's sleep.
    pub async fn causal_barrier_with<T: Future>(&self, timer: impl FnOnce(Duration) -> T) {
        if let Some(t) = self.causal_wait() {
            let _ = self.flush_with(timer(t)).await;
        }
    }

    /// Headers for an outgoing call from the current flow
    /// ([`ClientCore::propagation_headers`]), with causal delivery: where the adapter lets
    /// this thread block (threads, async-std), it returns once what the flow recorded is on
    /// the server (at most `causal_timeout`), so the callee's events arrive after it. In a
    /// tokio task it does not wait; there the propagating HTTP-client integrations await
    /// it instead.
    pub fn propagation_headers(
        &self,
        extra: Option<std::collections::HashMap<std::string::String, std::string::String>>,
    ) -> Result<
        std::collections::HashMap<std::string::String, std::string::String>,
        crate::client::PropagationError,
    > {
        let headers = self.inner.core.propagation_headers(extra)?;
        if (self.inner.blocking_policy.may_block)() {
            self.causal_barrier_blocking();
        }
        Ok(headers)
    }

    /// [`ClientHandle::propagation_headers`] into an `http::HeaderMap`.
    #[cfg(feature = "http")]
    pub fn inject_headers(
        &self,
        headers: &mut http::HeaderMap,
    ) -> Result<(), crate::client::PropagationError> {
        self.inner.core.inject_headers(headers)?;
        if (self.inner.blocking_policy.may_block)() {
            self.causal_barrier_blocking();
        }
        Ok(())
    }

    /// [`ClientHandle::inject_headers`] without the causal wait, for integrations that
    /// await it themselves ([`ClientHandle::causal_barrier_with`]).
    #[cfg(feature = "http")]
    pub fn inject_headers_now(
        &self,
        headers: &mut http::HeaderMap,
    ) -> Result<(), crate::client::PropagationError> {
        self.inner.core.inject_headers(headers)
    }

    /// The async form of [`ClientHandle::flush_blocking`], for any executor: `timer` is
    /// that runtime's sleep for the timeout (`tokio::time::sleep(t)`,
    /// `async_io::Timer::after(t)`).
    pub async fn flush_with<T: Future>(&self, timer: T) -> Result<(), FlushError> {
        let Some(exporter) = &self.inner.exporter else {
            return Ok(());
        };
        let (reply, barrier) = Barrier::new();
        if !exporter.request_flush(reply) {
            return Err(FlushError::NotRunning);
        }
        match first(barrier, timer).await {
            Some(Some(true)) => Ok(()),
            Some(Some(false)) | None => Err(FlushError::Timeout),
            Some(None) => Err(FlushError::NotRunning),
        }
    }

    /// The async form of [`ClientHandle::shutdown_timeout`]: `timer(wait)` is that
    /// runtime's sleep.
    pub async fn shutdown_with<T: Future>(
        &self,
        timeout: Duration,
        timer: impl FnOnce(Duration) -> T,
    ) -> Result<(), FlushError> {
        let Some(exporter) = &self.inner.exporter else {
            return Ok(());
        };
        let (reply, barrier) = Barrier::new();
        let Some(wait) = exporter.request_shutdown(timeout, reply) else {
            exporter.reap();
            return Ok(()); // already stopped
        };
        let result = match first(barrier, timer(wait)).await {
            Some(Some(true)) | Some(None) => Ok(()),
            Some(Some(false)) | None => Err(FlushError::Timeout),
        };
        exporter.reap();
        result
    }
}

#[cfg(feature = "ureq")]
impl<S: ContextStore> ClientHandle<S> {
    /// A client from a full configuration, sending with [`crate::transport::UreqSender`];
    /// fails on an unusable endpoint or key (an `https://` endpoint without the `rustls`
    /// feature is [`ConfigError::TlsNotEnabled`]).
    pub fn from_config(
        config: Config,
        store: S,
        blocking_policy: BlockingPolicy,
    ) -> Result<Self, ConfigError> {
        let sender = config.make_sender(crate::transport::UreqSender::new)?;
        Ok(Self::assemble(
            config,
            store,
            sender.map(boxed),
            None,
            blocking_policy,
        ))
    }

    /// The published constructors' body: never fails; an unusable endpoint is reported
    /// (see [`ClientHandle::init_error`]) and events go to the local analyser instead.
    pub fn build(
        endpoint: &str,
        service_name: &str,
        api_key: Option<&str>,
        module: Option<&str>,
        store: S,
        blocking_policy: BlockingPolicy,
    ) -> Self {
        let tls = cfg!(feature = "rustls");
        let (config, sender, error) = Config::for_client_with(
            endpoint,
            service_name,
            api_key,
            module,
            tls,
            crate::transport::UreqSender::new,
        );
        Self::assemble(config, store, sender.map(boxed), error, blocking_policy)
    }
}

#[cfg(feature = "ureq")]
fn boxed(sender: crate::transport::UreqSender) -> Box<dyn Sender + Send> {
    Box::new(sender)
}

impl<S: ContextStore> crate::sync::LockTracker for ClientHandle<S> {
    fn lock_event(
        &self,
        lock_id: Arc<str>,
        lock_type: std::borrow::Cow<'static, str>,
        acquire: bool,
        location: crate::SourceLocation,
    ) {
        crate::sync::LockTracker::lock_event(&self.inner.core, lock_id, lock_type, acquire, location);
    }
}

/// Resolves to `Some(a)` when `a` finishes first, `None` when `b` does.
async fn first<A: Future, B: Future>(a: A, b: B) -> Option<A::Output> {
    let mut a = Box::pin(a);
    let mut b = Box::pin(b);
    core::future::poll_fn(move |cx: &mut Context<'_>| {
        if let Poll::Ready(out) = a.as_mut().poll(cx) {
            return Poll::Ready(Some(out));
        }
        match Pin::new(&mut b).as_mut().poll(cx) {
            Poll::Ready(_) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    })
    .await
}

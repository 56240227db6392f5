//! `RacewayClient` for threaded programs: constructors, flows, requests, flush and shutdown.

use std::sync::Arc;
use std::time::{Duration, Instant};

use http::HeaderMap;
use raceway_proto::client::ClientCore;
use raceway_proto::config::{Config, ConfigError};
use raceway_proto::headers::extract_from_header_map;
use raceway_proto::{Flow, FlowEnd};

use crate::context::{FlowGuard, ThreadLocalStore};
use crate::exporter::{ExporterThread, FlushError};
use crate::sender::UreqSender;

/// What [`RacewayClient::handle_request`] returns: the handler's answer, plus the
/// `raceway-clock` value to send back when the request continued a caller's trace.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct HandledRequest<B> {
    /// The status the handler answered.
    pub status: u16,
    /// The body the handler answered.
    pub body: B,
    /// The `raceway-clock` response header value, when the request came with propagation
    /// headers: add it to the response so the caller can order what it does next after
    /// what this request did.
    pub raceway_clock: Option<String>,
}

impl<B> HandledRequest<B> {
    /// The response headers to add: `raceway-clock` when there is one.
    pub fn response_headers(&self) -> Vec<(&'static str, String)> {
        self.raceway_clock
            .iter()
            .map(|v| (raceway_proto::headers::RACEWAY_CLOCK, v.clone()))
            .collect()
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
            // A shutdown already asked for (and perhaps stuck on a hanging collector) is
            // not waited for a second time.
            if !exporter.shutdown_requested() {
                let _ = exporter.shutdown(self.core.config().shutdown_timeout);
            }
        }
    }
}

/// The Raceway client for threaded programs (no async runtime).
///
/// Cheap to clone (an `Arc` inside). The tracking methods (`track_state_change`,
/// `track_function_call`, ..., `races`, `stats`) come from [`ClientCore`], which it
/// dereferences to; what is specific to threads is here: entering flows
/// ([`RacewayClient::start_trace`], [`RacewayClient::enter`]), request handling,
/// [`RacewayClient::spawn`] and [`RacewayClient::scope`], and the exporter thread's
/// [`RacewayClient::flush`] and [`RacewayClient::shutdown`].
///
/// It never panics: shut down twice, dropped without shutdown, or pointed at a collector
/// that is down or hangs, it works and drops (and counts) what it cannot send.
///
/// ```
/// use raceway_blocking::RacewayClient;
///
/// // No endpoint: events go to the built-in local analyser.
/// let client = RacewayClient::local("my-service");
/// client.track_state_change("balance", None::<i64>, 100, "Read"); // this thread's root flow
/// assert_eq!(client.stats().core.recorded, 1);
/// client.shutdown();
/// ```
#[derive(Clone)]
pub struct RacewayClient {
    inner: Arc<Inner>,
}

raceway_proto::adapter_client_impls!(RacewayClient, crate::context::ThreadLocalStore);

impl RacewayClient {
    /// A client from a full configuration; fails on an unusable endpoint or key (an
    /// `https://` endpoint without the `rustls` feature is
    /// [`ConfigError::TlsNotEnabled`]).
    pub fn from_config(config: Config) -> Result<Self, ConfigError> {
        let sender = config.make_sender(UreqSender::new)?;
        Ok(Self::assemble(config, sender, None))
    }

    fn build(endpoint: &str, service_name: &str, api_key: Option<&str>, module: Option<&str>) -> Self {
        let tls = cfg!(feature = "rustls");
        let (config, sender, error) =
            Config::for_client_with(endpoint, service_name, api_key, module, tls, UreqSender::new);
        Self::assemble(config, sender, error)
    }

    fn assemble(config: Config, sender: Option<UreqSender>, init_error: Option<ConfigError>) -> Self {
        let core = ClientCore::new(config, ThreadLocalStore);
        let exporter = match sender {
            Some(s) if core.sink().is_exporting() => {
                ExporterThread::start(core.sink().clone(), Box::new(s), core.config())
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

    // -- flows ----------------------------------------------------------------------

    /// Makes this thread the root flow of a new trace until the guard is dropped (a job, a
    /// message handler, a test). Without it, a thread's first event starts a trace anyway.
    pub fn start_trace(&self) -> FlowGuard {
        self.enter(self.new_flow())
    }

    /// Makes `flow` this thread's flow until the guard is dropped, which restores the
    /// previous one.
    pub fn enter(&self, flow: Flow) -> FlowGuard {
        ThreadLocalStore.enter(flow)
    }

    /// Runs `f` with `flow` as this thread's flow, then restores the previous one.
    pub fn in_flow<R>(&self, flow: Flow, f: impl FnOnce() -> R) -> R {
        let _guard = self.enter(flow);
        f()
    }

    /// Continues the trace carried by incoming request headers (`traceparent`,
    /// `tracestate`, `raceway-clock`, as `&str` pairs) until the guard is dropped; a new
    /// trace when they carry none.
    pub fn continue_from_headers<'h>(
        &self,
        headers: impl IntoIterator<Item = (&'h str, &'h str)>,
    ) -> FlowGuard {
        self.enter(self.flow_from_headers(headers))
    }

    /// [`RacewayClient::continue_from_headers`] for an `http::HeaderMap`.
    pub fn continue_from_header_map(&self, headers: &HeaderMap) -> FlowGuard {
        let flow = match extract_from_header_map(headers) {
            Ok(remote) => self.continue_trace(&remote),
            Err(_) => self.new_flow(),
        };
        self.enter(flow)
    }

    /// Handles one request of a blocking HTTP server as a flow of its own: continues the
    /// caller's trace from `headers` (or starts one), records the `HttpRequest`, runs
    /// `handler` in the flow, records the `HttpResponse` with the handler's status, and
    /// restores this thread's previous flow. Add
    /// [`HandledRequest::response_headers`] to the response.
    ///
    /// ```
    /// use raceway_blocking::RacewayClient;
    ///
    /// let client = RacewayClient::local("inventory");
    /// let headers = [("content-type", "application/json")];
    /// let answer = client.handle_request("POST", "/reserve", headers, || {
    ///     client.track_state_change("stock", None::<i64>, 5, "Read");
    ///     (200, "reserved")
    /// });
    /// assert_eq!((answer.status, answer.body), (200, "reserved"));
    /// assert!(answer.raceway_clock.is_none()); // the caller sent no propagation headers
    /// ```
    pub fn handle_request<'h, B>(
        &self,
        method: &str,
        path: &str,
        headers: impl IntoIterator<Item = (&'h str, &'h str)>,
        handler: impl FnOnce() -> (u16, B),
    ) -> HandledRequest<B> {
        let start = Instant::now();
        let flow = self.begin_request(headers, method, path);
        let guard = self.enter(flow);
        let (status, body) = handler();
        let raceway_clock = self.end_request(status, start.elapsed());
        drop(guard);
        HandledRequest {
            status,
            body,
            raceway_clock,
        }
    }

    /// Joins a finished flow into this thread's flow (records `AsyncAwait`): what it did
    /// happens before what this thread does next.
    pub fn join_flow(&self, end: &FlowEnd) {
        self.join_current(end, "join");
    }

    // -- propagation ----------------------------------------------------------------

    // -- export ---------------------------------------------------------------------

    /// Sends everything recorded so far; returns when it is sent (or dropped and counted)
    /// or at `timeout`. Immediate in local mode.
    pub fn flush(&self, timeout: Duration) -> Result<(), FlushError> {
        match &self.inner.exporter {
            Some(exporter) => exporter.flush(timeout),
            None => Ok(()),
        }
    }

    /// [`RacewayClient::flush`] under the name `raceway-rt-tokio` gives its blocking form.
    pub fn flush_blocking(&self, timeout: Duration) -> Result<(), FlushError> {
        self.flush(timeout)
    }

    /// Flushes everything and stops the exporter thread, waiting at most the configured
    /// shutdown timeout (`RACEWAY_SHUTDOWN_TIMEOUT_MS`, 5 s by default). Safe to call twice,
    /// from any thread. Dropping the last clone of the client does the same.
    pub fn shutdown(&self) {
        let _ = self.shutdown_timeout(self.config().shutdown_timeout);
    }

    /// Flushes and stops the exporter thread within `timeout` (plus a few hundred
    /// milliseconds at most); what is left then is dropped and counted, and a thread still
    /// stuck in a send is left to end on its own rather than joined.
    pub fn shutdown_timeout(&self, timeout: Duration) -> Result<(), FlushError> {
        match &self.inner.exporter {
            Some(exporter) => exporter.shutdown(timeout),
            None => Ok(()),
        }
    }
}

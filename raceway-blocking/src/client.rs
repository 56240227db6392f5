//! `RacewayClient` for threaded programs: constructors, flows, requests, flush and shutdown.

use std::time::{Duration, Instant};

use http::HeaderMap;
use raceway_proto::background::FlushError;
use raceway_proto::client::AdapterApi as _;
use raceway_proto::headers::extract_from_header_map;
use raceway_proto::lifecycle::{BlockingPolicy, ClientHandle};
use raceway_proto::Flow;

use crate::context::{FlowGuard, ThreadLocalStore};

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
    handle: ClientHandle<ThreadLocalStore>,
}

raceway_proto::adapter_client!(RacewayClient, ThreadLocalStore, BlockingPolicy::BLOCK);

impl RacewayClient {
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
        let flow = self.begin_request(raceway_proto::headers::extract(headers), method, path);
        let guard = self.enter(flow);
        let (status, body) = handler();
        let raceway_clock = self.end_request(status, start.elapsed());
        drop(guard);
        if raceway_clock.is_some() {
            // Causal delivery: this request's events reach the server before the caller
            // can record what follows the response.
            self.causal_barrier_blocking();
        }
        HandledRequest {
            status,
            body,
            raceway_clock,
        }
    }

    // -- export ---------------------------------------------------------------------

    /// Sends everything recorded so far; returns when it is sent (or dropped and counted)
    /// or at `timeout`. Immediate in local mode.
    pub fn flush(&self, timeout: Duration) -> Result<(), FlushError> {
        self.handle.flush_blocking(timeout)
    }
}

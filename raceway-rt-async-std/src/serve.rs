//! Serving requests: each incoming request runs as its own flow, with any HTTP server.
//!
//! [`RacewayClient::serve_request`] is the server-agnostic building block: give it the
//! request's headers, method and path and the handler's future; it continues the caller's
//! trace (or starts one), records the request and the response, and hands back the
//! handler's output with the `raceway-clock` value to answer with. Everything else
//! ([`RacewayClient::serve_http`], and the hyper wrapper behind the `hyper` feature) is a
//! few lines on top of it, so the same helper serves async-h1, tide, trillium, a hand-made
//! server, or hyper on smol or async-std.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use http::header::HeaderValue;
use http::HeaderMap;
use pin_project::pin_project;
use raceway_proto::client::AdapterApi as _;
use raceway_proto::headers::{extract_from_header_map, RACEWAY_CLOCK};
use raceway_proto::Flow;

use crate::context::Installed;
use crate::RacewayClient;

/// The status code of what a request handler returned, for the `HttpResponse` event.
pub trait ResponseStatus {
    /// The HTTP status code.
    fn status_code(&self) -> u16;
}

impl ResponseStatus for u16 {
    fn status_code(&self) -> u16 {
        *self
    }
}

impl ResponseStatus for http::StatusCode {
    fn status_code(&self) -> u16 {
        self.as_u16()
    }
}

impl<B> ResponseStatus for http::Response<B> {
    fn status_code(&self) -> u16 {
        self.status().as_u16()
    }
}

/// `Ok` gives its own status; `Err` counts as `500`.
impl<T: ResponseStatus, E> ResponseStatus for Result<T, E> {
    fn status_code(&self) -> u16 {
        match self {
            Ok(t) => t.status_code(),
            Err(_) => 500,
        }
    }
}

/// Sets the `raceway-clock` response header, when there is one to send.
pub fn insert_clock_header(headers: &mut HeaderMap, clock: Option<String>) {
    if let Some(v) = clock.and_then(|c| HeaderValue::from_str(&c).ok()) {
        headers.insert(RACEWAY_CLOCK, v);
    }
}

/// The future of [`RacewayClient::serve_request`]: runs the handler as the request's flow
/// (like [`crate::Instrumented`]), records the response, and resolves to the handler's
/// output and the `raceway-clock` value to answer with (`Some` when the caller sent
/// propagation headers).
#[pin_project]
#[must_use = "futures do nothing unless you .await or poll them"]
#[derive(Debug)]
pub struct ServeRequest<F> {
    #[pin]
    handler: F,
    flow: Option<Flow>,
    client: RacewayClient,
    start: Instant,
}

impl<F> Future for ServeRequest<F>
where
    F: Future,
    F::Output: ResponseStatus,
{
    type Output = (F::Output, Option<String>);

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let _installed = Installed::new(this.flow);
        match this.handler.poll(cx) {
            Poll::Ready(out) => {
                let clock = this.client.end_request(out.status_code(), this.start.elapsed());
                if clock.is_some() {
                    // Causal delivery: this request's events reach the server before the
                    // caller can record what follows the response. A blocking wait (at most
                    // `causal_timeout`, usually one local round trip), so that this future
                    // needs no timer of a particular runtime.
                    this.client.causal_barrier_blocking();
                }
                Poll::Ready((out, clock))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl RacewayClient {
    /// Runs `handler` as the flow of one incoming request, with any server: continues the
    /// caller's trace from `headers` (or starts a new one), records the `HttpRequest` now
    /// and the `HttpResponse` when `handler` finishes, and resolves to the handler's output
    /// and the `raceway-clock` value to put on the response (`Some` when the caller
    /// propagated its context, so it can merge what this request did).
    ///
    /// ```
    /// use raceway_rt_async_std::RacewayClient;
    ///
    /// let client = RacewayClient::local("svc");
    /// let incoming = [("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")];
    /// let (status, clock) = futures::executor::block_on(client.serve_request(incoming, "GET", "/", async {
    ///     client.track_state_change("hits", None::<u64>, 1, "Write");
    ///     200u16
    /// }));
    /// assert_eq!(status, 200);
    /// assert!(clock.is_some()); // the caller propagated: answer with `raceway-clock: {clock}`
    /// ```
    pub fn serve_request<'h, F>(
        &self,
        headers: impl IntoIterator<Item = (&'h str, &'h str)>,
        method: &str,
        path: &str,
        handler: F,
    ) -> ServeRequest<F>
    where
        F: Future,
        F::Output: ResponseStatus,
    {
        let flow = self.begin_request(raceway_proto::headers::extract(headers), method, path);
        ServeRequest {
            handler,
            flow: Some(flow),
            client: self.clone(),
            start: Instant::now(),
        }
    }

    /// [`RacewayClient::serve_request`] for servers built on the `http` crate's types:
    /// runs `handler(request)` as the request's flow and adds the `raceway-clock` header to
    /// its response. The handler may return an `http::Response` or a `Result` of one.
    pub fn serve_http<B, H, Fut>(&self, request: http::Request<B>, handler: H) -> ServeHttp<Fut>
    where
        H: FnOnce(http::Request<B>) -> Fut,
        Fut: Future,
        Fut::Output: ResponseStatus + ResponseHeaders,
    {
        let (parts, body) = request.into_parts();
        let remote = extract_from_header_map(&parts.headers);
        let mut flow = Some(self.begin_request(remote, parts.method.as_str(), parts.uri.path()));
        let start = Instant::now();
        // The handler itself (not only its future) runs in the request's flow.
        let handler = {
            let _installed = Installed::new(&mut flow);
            handler(http::Request::from_parts(parts, body))
        };
        ServeHttp {
            inner: ServeRequest {
                handler,
                flow,
                client: self.clone(),
                start,
            },
        }
    }
}

/// A response whose headers can be set: `http::Response`, or a `Result` of one.
pub trait ResponseHeaders {
    /// The response's headers, when there is a response.
    fn response_headers_mut(&mut self) -> Option<&mut HeaderMap>;
}

impl<B> ResponseHeaders for http::Response<B> {
    fn response_headers_mut(&mut self) -> Option<&mut HeaderMap> {
        Some(self.headers_mut())
    }
}

impl<T: ResponseHeaders, E> ResponseHeaders for Result<T, E> {
    fn response_headers_mut(&mut self) -> Option<&mut HeaderMap> {
        self.as_mut().ok().and_then(ResponseHeaders::response_headers_mut)
    }
}

/// The future of [`RacewayClient::serve_http`]: the handler's response, with the
/// `raceway-clock` header added when the caller propagated its context.
#[pin_project]
#[must_use = "futures do nothing unless you .await or poll them"]
#[derive(Debug)]
pub struct ServeHttp<F> {
    #[pin]
    inner: ServeRequest<F>,
}

impl<F> Future for ServeHttp<F>
where
    F: Future,
    F::Output: ResponseStatus + ResponseHeaders,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        match self.project().inner.poll(cx) {
            Poll::Ready((mut response, clock)) => {
                if let Some(headers) = response.response_headers_mut() {
                    insert_clock_header(headers, clock);
                }
                Poll::Ready(response)
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

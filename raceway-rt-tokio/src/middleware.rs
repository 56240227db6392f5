//! Server middleware (axum and tower) and the client-side propagation layer.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use http::header::HeaderValue;
use raceway_proto::client::AdapterApi as _;
use raceway_proto::headers::{extract_from_header_map, RACEWAY_CLOCK};
use tower::{Layer, Service};

use crate::context::{RacewayContext, RACEWAY_CONTEXT};
use crate::RacewayClient;

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

/// Runs `respond` as the flow of one incoming request: continues the caller's trace from
/// `parts.headers` (or starts one), records the request and the response, and answers
/// with this flow's `raceway-clock` when the caller sent one.
pub(crate) async fn serve_in_flow<F, B, E>(
    client: RacewayClient,
    parts: &http::request::Parts,
    respond: F,
) -> Result<http::Response<B>, E>
where
    F: Future<Output = Result<http::Response<B>, E>>,
{
    if !client.is_enabled() {
        return respond.await;
    }
    let remote = extract_from_header_map(&parts.headers);
    let flow = client.begin_request(remote, parts.method.as_str(), parts.uri.path());
    let start = Instant::now();
    let ctx = RefCell::new(RacewayContext::from_flow(flow));
    RACEWAY_CONTEXT
        .scope(ctx, async move {
            let mut response = respond.await?;
            let status = response.status().as_u16();
            if let Some(clock) = client.end_request(status, start.elapsed()) {
                if let Ok(v) = HeaderValue::from_str(&clock) {
                    response.headers_mut().insert(RACEWAY_CLOCK, v);
                }
                // Causal delivery: what this request recorded reaches the server before
                // the caller can record what follows the response.
                client.causal_barrier_with(tokio::time::sleep).await;
            }
            Ok(response)
        })
        .await
}

impl RacewayClient {
    /// Axum middleware: each request runs as its own flow.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use axum::{routing::get, Router};
    /// use raceway_rt_tokio::RacewayClient;
    ///
    /// let raceway = Arc::new(RacewayClient::local("my-service"));
    /// let app: Router = Router::new()
    ///     .route("/", get(|| async { "ok" }))
    ///     .layer(axum::middleware::from_fn_with_state(
    ///         raceway.clone(),
    ///         RacewayClient::middleware,
    ///     ))
    ///     .with_state(raceway);
    /// ```
    ///
    /// The published `raceway` 0.1 crate documents the same line, but its `middleware`
    /// takes the client as a plain first argument, which axum's `from_fn_with_state`
    /// cannot supply, so that line does not compile there. Here the client comes in
    /// through axum's `State` extractor, and the line compiles as written.
    pub async fn middleware(
        State(client): State<Arc<RacewayClient>>,
        request: Request,
        next: Next,
    ) -> Response {
        let (parts, body) = request.into_parts();
        let parts_for_flow = parts.clone();
        let request = Request::from_parts(parts, body);
        let result: Result<Response, std::convert::Infallible> =
            serve_in_flow((*client).clone(), &parts_for_flow, async move {
                Ok(next.run(request).await)
            })
            .await;
        match result {
            Ok(r) => r,
            Err(never) => match never {},
        }
    }

    /// A tower layer doing what [`RacewayClient::middleware`] does, for hyper, tonic or
    /// any tower-based server.
    pub fn layer(&self) -> RacewayLayer {
        RacewayLayer { client: self.clone() }
    }

    /// A tower layer for outgoing HTTP clients: injects the propagation headers into each
    /// request and merges the response's `raceway-clock` back into the calling flow.
    pub fn propagate_layer(&self) -> PropagateLayer {
        PropagateLayer { client: self.clone() }
    }
}

/// Tower layer: every request is its own flow (see [`RacewayClient::layer`]).
#[derive(Debug, Clone)]
pub struct RacewayLayer {
    client: RacewayClient,
}

impl<S> Layer<S> for RacewayLayer {
    type Service = RacewayService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        RacewayService {
            inner,
            client: self.client.clone(),
        }
    }
}

/// The service [`RacewayLayer`] makes.
#[derive(Debug, Clone)]
pub struct RacewayService<S> {
    inner: S,
    client: RacewayClient,
}

impl<S, B, RB> Service<http::Request<B>> for RacewayService<S>
where
    S: Service<http::Request<B>, Response = http::Response<RB>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    B: Send + 'static,
    RB: Send + 'static,
{
    type Response = http::Response<RB>;
    type Error = S::Error;
    type Future = BoxFuture<Result<http::Response<RB>, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        // The clone that was polled ready is the one that serves (tower's usual dance).
        let fresh = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, fresh);
        let client = self.client.clone();
        Box::pin(async move {
            let (parts, body) = request.into_parts();
            let flow_parts = parts.clone();
            let request = http::Request::from_parts(parts, body);
            serve_in_flow(client, &flow_parts, async move { inner.call(request).await }).await
        })
    }
}

/// Tower layer for outgoing calls (see [`RacewayClient::propagate_layer`]).
#[derive(Debug, Clone)]
pub struct PropagateLayer {
    client: RacewayClient,
}

impl<S> Layer<S> for PropagateLayer {
    type Service = PropagateService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        PropagateService {
            inner,
            client: self.client.clone(),
        }
    }
}

/// The service [`PropagateLayer`] makes.
#[derive(Debug, Clone)]
pub struct PropagateService<S> {
    inner: S,
    client: RacewayClient,
}

impl<S, B, RB> Service<http::Request<B>> for PropagateService<S>
where
    S: Service<http::Request<B>, Response = http::Response<RB>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    B: Send + 'static,
    RB: Send + 'static,
{
    type Response = http::Response<RB>;
    type Error = S::Error;
    type Future = BoxFuture<Result<http::Response<RB>, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        // Called in the caller's task, so the current flow is the caller's.
        inject_outgoing(&self.client, request.headers_mut());
        // The clone that was polled ready is the one that sends (tower's usual dance).
        let fresh = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, fresh);
        let client = self.client.clone();
        Box::pin(async move { send_outgoing(&client, || inner.call(request), http::Response::headers).await })
    }
}

/// The way out of a propagated call, shared by every HTTP-client integration of this crate
/// ([`PropagateService`], the reqwest `PropagateMiddleware`): puts the current flow's
/// propagation headers into the outgoing request. Call it in the caller's task (the current
/// flow is the caller's), then [`send_outgoing`].
pub(crate) fn inject_outgoing(client: &RacewayClient, headers: &mut http::HeaderMap) {
    // Outside a flow, or with the client disabled, the request goes out untouched.
    let _ = client.inject_headers_now(headers);
}

/// The rest of a propagated call, after [`inject_outgoing`]: causal delivery (what the
/// caller recorded so far reaches the server before the callee's events), then `send`,
/// then the callee's `raceway-clock` from the response merged into the calling flow, so
/// what the callee did happens before what the caller does next. A failed send merges
/// nothing.
pub(crate) async fn send_outgoing<R, E, F, Fut>(
    client: &RacewayClient,
    send: F,
    response_headers: fn(&R) -> &http::HeaderMap,
) -> Result<R, E>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<R, E>>,
{
    client.causal_barrier_with(tokio::time::sleep).await;
    let response = send().await?;
    client.merge_response(response_headers(&response));
    Ok(response)
}

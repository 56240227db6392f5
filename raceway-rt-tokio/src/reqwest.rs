//! The propagating client integration for reqwest (feature `reqwest`): a
//! [`reqwest_middleware`] middleware doing what [`RacewayClient::propagate_layer`] does for
//! tower clients.

use std::future::Future;
use std::pin::Pin;

use http::Extensions;
use reqwest12::{Request, Response};
use reqwest_middleware::{Middleware, Next};

use crate::middleware::{inject_outgoing, send_outgoing};
use crate::RacewayClient;

/// A [`reqwest_middleware`] middleware that carries the trace to the called service and
/// brings the callee's clock back: one line where the HTTP client is built, and every call
/// made through it is propagated.
///
/// For each request sent from a flow (a request handler behind the middleware, a spawned
/// task, [`RacewayClient::in_new_trace`]) it does what [`RacewayClient::propagate_layer`]
/// does, through the same code:
/// - it adds `traceparent`, `tracestate` (when the trace has one) and `raceway-clock`, so
///   the callee continues this flow's trace, ordered after what the flow did so far;
/// - it waits (at most `RACEWAY_CAUSAL_TIMEOUT_MS`) until what the flow recorded is on the
///   server, so the server has the caller's events before the callee's (causal delivery);
/// - it merges the response's `raceway-clock` into the flow, so what the callee did happens
///   before what the caller does after the response.
///
/// Sent outside a flow, or with the client disabled, a request goes out untouched. Errors
/// pass through unchanged; a failed call merges nothing.
///
/// The published crate's pattern, `propagation_headers(None)` and then `reqwest`, does the
/// first step only: the SDK never sees the response, so the server reports what the callee
/// did and what the caller does afterwards as a race (RACES.md's S5a gets one false pair).
///
/// ```
/// # use reqwest12 as reqwest;
/// use std::sync::Arc;
/// use axum::{extract::State, routing::post, Router};
/// use raceway_rt_tokio::RacewayClient;
/// use reqwest_middleware::{ClientBuilder, ClientWithMiddleware};
///
/// #[derive(Clone)]
/// struct Gateway {
///     raceway: Arc<RacewayClient>,
///     http: ClientWithMiddleware,
/// }
///
/// async fn checkout(State(gw): State<Gateway>) -> &'static str {
///     gw.raceway.track_state_change("order.total", Some(0), 120, "Write");
///     // Headers out, payments' clock back in: its accesses happen before the read below.
///     let charged = gw.http.post("http://127.0.0.1:3002/charge").send().await;
///     gw.raceway.track_state_change("order.total", None::<i64>, 120, "Read");
///     if charged.is_ok() { "ok" } else { "payments unavailable" }
/// }
///
/// let raceway = Arc::new(RacewayClient::local("gateway"));
/// let http = ClientBuilder::new(reqwest::Client::new())
///     .with(raceway.propagate_middleware())
///     .build();
/// let app: Router = Router::new()
///     .route("/checkout", post(checkout))
///     .layer(axum::middleware::from_fn_with_state(raceway.clone(), RacewayClient::middleware))
///     .with_state(Gateway { raceway, http });
/// ```
#[derive(Debug, Clone)]
pub struct PropagateMiddleware {
    client: RacewayClient,
}

impl PropagateMiddleware {
    /// A middleware propagating the flows of `client` (see
    /// [`RacewayClient::propagate_middleware`]).
    pub fn new(client: &RacewayClient) -> Self {
        PropagateMiddleware {
            client: client.clone(),
        }
    }
}

impl RacewayClient {
    /// A [`PropagateMiddleware`] for this client, for
    /// `reqwest_middleware::ClientBuilder::new(reqwest::Client::new()).with(..)`: what
    /// [`RacewayClient::propagate_layer`] is for tower clients (feature `reqwest`).
    pub fn propagate_middleware(&self) -> PropagateMiddleware {
        PropagateMiddleware::new(self)
    }
}

type HandleFuture<'a> = Pin<Box<dyn Future<Output = reqwest_middleware::Result<Response>> + Send + 'a>>;

// Written out rather than through `#[async_trait]` (the same signature the macro makes),
// to keep a proc-macro dependency out of this crate.
impl Middleware for PropagateMiddleware {
    fn handle<'life0, 'life1, 'life2, 'async_trait>(
        &'life0 self,
        mut req: Request,
        extensions: &'life1 mut Extensions,
        next: Next<'life2>,
    ) -> HandleFuture<'async_trait>
    where
        Self: 'async_trait,
        'life0: 'async_trait,
        'life1: 'async_trait,
        'life2: 'async_trait,
    {
        Box::pin(async move {
            // Runs when the caller awaits `send()`: the current flow is the caller's.
            inject_outgoing(&self.client, req.headers_mut());
            send_outgoing(&self.client, || next.run(req, extensions), Response::headers).await
        })
    }
}

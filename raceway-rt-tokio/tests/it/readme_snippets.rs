//! The README of the published `raceway` 0.1 crate, snippet by snippet, compiled against
//! this crate with only the crate name changed (`use raceway_rt_tokio as raceway;`). The
//! functions are never called: the test is that this file compiles.
//!
//! Only what a snippet assumes is added around it (the request and response types, the
//! helpers it calls, a function to put statement snippets in). Where the README itself
//! is wrong (it would not compile against any crate), the smallest change that makes it
//! compile is made and marked `README BUG`. Where it does not compile against the
//! published 0.1 crate but does here, that is marked `0.1:`.
// The snippets stay as the README writes them, lints and all.
#![allow(
    dead_code,
    unused_variables,
    unused_imports,
    clippy::needless_return,
    clippy::let_unit_value,
    clippy::let_and_return,
    clippy::needless_borrows_for_generic_args
)]

use raceway_rt_tokio as raceway;

/// "Quick Start / Axum Integration".
mod quick_start {
    use super::raceway;
    use axum::{
        extract::State,
        routing::{get, post},
        Json, Router,
    };
    use raceway::RacewayClient;
    use serde::{Deserialize, Serialize};
    use std::sync::Arc;

    // README BUG: the README derives only `Deserialize`, but `track_function_call("transfer",
    // &req)` needs `TransferRequest: Serialize` (in 0.1 too: `track_function_call<T: Serialize>`).
    #[derive(Deserialize, Serialize)]
    struct TransferRequest {
        from: String,
        to: String,
        amount: i64,
    }

    #[derive(Serialize)]
    struct TransferResponse {
        success: bool,
    }

    // Assumed by the snippet.
    async fn health() -> &'static str {
        "ok"
    }
    async fn get_balance(account: &str) -> i64 {
        100
    }
    async fn set_balance(account: &str, balance: i64) {}

    // `main` in the README.
    #[tokio::main]
    async fn main() {
        let raceway = Arc::new(RacewayClient::new("http://localhost:8080", "my-service"));

        // 0.1: this line does not compile against the published crate, whose `middleware`
        // takes the client as a plain first argument that `from_fn_with_state` cannot
        // supply; here it takes `State<Arc<RacewayClient>>` and compiles as written.
        let app = Router::new()
            .route("/health", get(health))
            .route("/api/transfer", post(transfer))
            .layer(axum::middleware::from_fn_with_state(
                raceway.clone(),
                RacewayClient::middleware,
            ))
            .with_state(raceway);

        let listener = tokio::net::TcpListener::bind("0.0.0.0:3000").await.unwrap();

        axum::serve(listener, app).await.unwrap();
    }

    async fn transfer(
        State(raceway): State<Arc<RacewayClient>>,
        Json(req): Json<TransferRequest>,
    ) -> Json<TransferResponse> {
        raceway.track_function_call("transfer", &req);

        // Track state changes
        let balance = get_balance(&req.from).await;
        raceway.track_state_change(&format!("{}.balance", req.from), None::<i64>, balance, "Read");

        if balance < req.amount {
            return Json(TransferResponse { success: false });
        }

        set_balance(&req.from, balance - req.amount).await;
        raceway.track_state_change(
            &format!("{}.balance", req.from),
            Some(balance),
            balance - req.amount,
            "Write",
        );

        Json(TransferResponse { success: true })
    }
}

/// "Distributed Tracing / Propagating Trace Context".
mod propagating_trace_context {
    use super::raceway::RacewayClient;
    use axum::{extract::State, Json};
    use std::sync::Arc;

    // Assumed by the snippet (fields read from its uses).
    #[derive(serde::Deserialize, serde::Serialize)]
    struct ProcessRequest {
        order_id: String,
    }
    #[derive(serde::Serialize)]
    struct ProcessResponse {
        success: bool,
        error: Option<String>,
    }

    use reqwest::Client;
    use serde_json::json;

    async fn process_handler(
        State(raceway): State<Arc<RacewayClient>>,
        Json(req): Json<ProcessRequest>,
    ) -> Json<ProcessResponse> {
        raceway.track_function_call("process_request", &req);

        // Get propagation headers
        let headers = match raceway.propagation_headers(None) {
            Ok(h) => h,
            Err(e) => {
                eprintln!("Error getting propagation headers: {}", e);
                // README BUG: `ProcessResponse { error: Some(e.to_string()) }` leaves out
                // `success`, which the README's other literal sets (`success: true`).
                return Json(ProcessResponse {
                    success: false,
                    error: Some(e.to_string()),
                });
            }
        };

        // Call downstream service
        let client = Client::new();
        let result = client
            .post("http://inventory-service/reserve")
            .json(&json!({ "orderId": req.order_id }))
            .header("traceparent", headers.get("traceparent").unwrap())
            .header("raceway-clock", headers.get("raceway-clock").unwrap())
            .send()
            .await;

        Json(ProcessResponse {
            success: true,
            error: None,
        })
    }
}

/// "Authentication" and "Without Authentication".
mod authentication {
    use super::raceway::RacewayClient;
    use std::sync::Arc;

    fn with_key() {
        use std::env;

        let raceway = Arc::new(RacewayClient::new_with_auth(
            "http://localhost:8080",
            "my-service",
            &env::var("RACEWAY_API_KEY").expect("RACEWAY_API_KEY must be set"),
        ));
    }

    fn without_key() {
        let raceway = Arc::new(RacewayClient::new("http://localhost:8080", "my-service"));
    }
}

/// "Configuration" and "API Reference / Client Creation".
mod configuration {
    use super::raceway::RacewayClient;
    use std::sync::Arc;

    fn configuration() {
        // Basic initialization
        let client = Arc::new(RacewayClient::new(
            "http://localhost:8080", // Raceway server URL
            "my-service",            // Service name
        ));

        // With custom module name
        // 0.1: `with_module` takes 4 arguments there (endpoint, service, module, api_key:
        // Option<&str>), so the README's 3-argument call does not compile against 0.1; here
        // it takes the README's 3.
        let client = Arc::new(RacewayClient::with_module(
            "http://localhost:8080",
            "my-service",
            "payments", // Module name for function tracking
        ));
    }

    fn client_creation() {
        let client = Arc::new(RacewayClient::new("http://localhost:8080", "my-service"));
        let client = Arc::new(RacewayClient::with_module(
            "http://localhost:8080",
            "my-service",
            "payments",
        ));
    }
}

/// "API Reference / Core Tracking Methods".
mod core_tracking {
    use super::raceway::RacewayClient;

    fn state_change(client: &RacewayClient) {
        // Track a read
        client.track_state_change("counter", None::<i64>, 5, "Read");

        // Track a write
        client.track_state_change("counter", Some(5), 6, "Write");
    }

    fn function_call(client: &RacewayClient) {
        client.track_function_call("process_payment", serde_json::json!({ "amount": 100 }));
    }

    // Assumed by the snippet.
    #[derive(Debug)]
    struct Error;
    async fn do_payment(amount: i64) -> Result<(), Error> {
        Ok(())
    }

    async fn process_payment(client: &RacewayClient, amount: i64) -> Result<(), Error> {
        client
            .track_function(
                "process_payment",
                serde_json::json!({ "amount": amount }),
                async {
                    let result = do_payment(amount).await?;
                    Ok(result)
                },
            )
            .await
    }

    fn calculate_total(client: &RacewayClient, items: &[i64]) -> i64 {
        client.track_function_sync(
            "calculate_total",
            serde_json::json!({ "item_count": items.len() }),
            || items.iter().sum(),
        )
    }

    fn http_response(client: &RacewayClient) {
        client.track_http_response(200, 45);
    }
}

/// "API Reference / Distributed Tracing Methods" and "Lifecycle Methods".
mod distributed_tracing_methods {
    use super::raceway::RacewayClient;
    use axum::{routing::post, Router};
    use std::sync::Arc;

    // README BUG: the snippet returns `Err(format!(..))` (so its function's error type is
    // `String`) and then applies `?` to reqwest's error, which does not convert into
    // `String`; no enclosing function makes both compile. The `?` gets a `map_err`.
    async fn call_downstream(
        client: &RacewayClient,
        downstream_url: &str,
        payload: &serde_json::Value,
    ) -> Result<(), String> {
        let headers = match client.propagation_headers(None) {
            Ok(h) => h,
            Err(e) => return Err(format!("Failed to get headers: {}", e)),
        };

        let http_client = reqwest::Client::new();
        http_client
            .post(downstream_url)
            .json(&payload)
            .header("traceparent", headers.get("traceparent").unwrap())
            .header("raceway-clock", headers.get("raceway-clock").unwrap())
            .send()
            .await
            .map_err(|e| e.to_string())?;
        Ok(())
    }

    // Assumed by the snippet.
    async fn handler() -> &'static str {
        "ok"
    }

    // 0.1: see `quick_start::main`; the README documents the middleware as
    // `RacewayClient::middleware(client, headers, request, next)`, which is 0.1's signature
    // and the reason this line does not compile there.
    fn middleware(raceway: Arc<RacewayClient>) -> Router {
        let app = Router::new()
            .route("/api/endpoint", post(handler))
            .layer(axum::middleware::from_fn_with_state(
                raceway.clone(),
                RacewayClient::middleware,
            ))
            .with_state(raceway);
        app
    }

    fn shutdown(client: &RacewayClient) {
        client.shutdown();
    }
}

/// "Working with Background Tasks / Pattern 1: Background Workers with Channels".
mod pattern_1_workers {
    use super::raceway;
    use axum::{extract::State, http::StatusCode, Json};
    use raceway::{RacewayClient, RACEWAY_CONTEXT};
    use std::cell::RefCell;
    use std::sync::Arc;
    use tokio::sync::{mpsc, oneshot};

    // Assumed by the snippet.
    struct AppState {
        tx: mpsc::Sender<Job>,
    }
    #[derive(serde::Deserialize)]
    struct JobPayload {
        data: String,
    }
    #[derive(serde::Serialize)]
    struct JobResult {
        result: String,
    }

    struct Job {
        data: String,
        response_tx: oneshot::Sender<String>,
        trace_context: Option<raceway::RacewayContext>, // Pass context through channel
    }

    // In your HTTP handler - capture context
    async fn enqueue_job(
        State(state): State<Arc<AppState>>,
        Json(payload): Json<JobPayload>,
    ) -> Result<Json<JobResult>, StatusCode> {
        // Capture the current trace context
        let trace_context = RACEWAY_CONTEXT.try_with(|ctx| ctx.borrow().clone()).ok();

        let (tx, rx) = oneshot::channel();
        let job = Job {
            data: payload.data,
            response_tx: tx,
            trace_context, // Include context in job
        };

        state
            .tx
            .send(job)
            .await
            .map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)?;

        let result = rx.await.map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)?;
        Ok(Json(JobResult { result }))
    }

    // Background worker - re-establish context
    async fn worker(mut rx: mpsc::Receiver<Job>, raceway: Arc<RacewayClient>) {
        while let Some(job) = rx.recv().await {
            let trace_context = job.trace_context;
            let raceway_clone = raceway.clone();
            let data = job.data.clone();

            let work = async move {
                // This will be tracked in the same trace as the HTTP request
                raceway_clone.track_function_call("worker_process_job", &data);

                // Do work...
                let result = format!("Processed: {}", data);
                let _ = job.response_tx.send(result);
            };

            // Re-establish the trace context for this work
            if let Some(ctx) = trace_context {
                RACEWAY_CONTEXT.scope(RefCell::new(ctx), work).await;
            } else {
                work.await;
            }
        }
    }

    // Not in the README: the handler really is an axum handler (its future is `Send`).
    fn route(state: Arc<AppState>) -> axum::Router {
        axum::Router::new()
            .route("/jobs", axum::routing::post(enqueue_job))
            .with_state(state)
    }
}

/// "Working with Background Tasks / Pattern 2: Spawned Tasks".
mod pattern_2_spawned_tasks {
    use super::raceway;
    use axum::{extract::State, http::StatusCode, Json};
    use raceway::{RacewayClient, RACEWAY_CONTEXT};
    use std::cell::RefCell;
    use std::sync::Arc;
    use tokio::time::{sleep, Duration};

    // Assumed by the snippet (the user's own `Request`, not axum's).
    #[derive(serde::Deserialize, serde::Serialize)]
    struct Request {
        id: String,
    }

    async fn handle_with_timeout(
        State(raceway): State<Arc<RacewayClient>>,
        Json(req): Json<Request>,
    ) -> StatusCode {
        raceway.track_function_call("handle_request", &req);

        // Capture context before spawning
        let ctx_for_spawn = RACEWAY_CONTEXT.try_with(|ctx| ctx.borrow().clone()).ok();
        let raceway_clone = raceway.clone();
        let req_id = req.id.clone();

        // Spawn a timeout task with context propagation
        let timeout_handle = tokio::spawn(async move {
            if let Some(ctx) = ctx_for_spawn {
                RACEWAY_CONTEXT
                    .scope(RefCell::new(ctx), async {
                        sleep(Duration::from_secs(30)).await;
                        // This tracking will be in the same trace as the parent request
                        raceway_clone
                            .track_function_call("timeout_expired", &format!("request_id={}", req_id));
                    })
                    .await;
            }
        });

        // Do work...

        StatusCode::OK
    }

    fn route(raceway: Arc<RacewayClient>) -> axum::Router {
        axum::Router::new()
            .route("/work", axum::routing::post(handle_with_timeout))
            .with_state(raceway)
    }
}

/// "Common Pitfall: Forgetting to Propagate".
mod common_pitfall {
    use super::raceway::{RacewayClient, RACEWAY_CONTEXT};
    use std::cell::RefCell;
    use std::sync::Arc;

    // README BUG: the README puts the wrong and the right version in one block; the first
    // `async move` moves `raceway` and `data`, so the second cannot use them. They are the
    // two alternatives, so each gets its own function.
    async fn wrong(raceway: Arc<RacewayClient>, data: String) {
        // ❌ WRONG - Creates orphaned trace events
        tokio::spawn(async move {
            // This will NOT be in the same trace - context is lost!
            raceway.track_function_call("background_task", &data);
        });
    }

    async fn correct(raceway: Arc<RacewayClient>, data: String) {
        // ✅ CORRECT - Propagates context
        let ctx = RACEWAY_CONTEXT.try_with(|ctx| ctx.borrow().clone()).ok();
        tokio::spawn(async move {
            if let Some(ctx) = ctx {
                RACEWAY_CONTEXT
                    .scope(RefCell::new(ctx), async {
                        // Now this is in the same trace
                        raceway.track_function_call("background_task", &data);
                    })
                    .await;
            }
        });
    }
}

/// "Best Practices", item 6 (graceful shutdown).
mod graceful_shutdown {
    use super::raceway::RacewayClient;

    async fn run(client: &RacewayClient) {
        // Assumed by the snippet.
        let ctrl_c = tokio::signal::ctrl_c();

        tokio::select! {
            _ = ctrl_c => {
                client.shutdown();
            },
        }
    }
}

/// "Distributed Example".
mod distributed_example {
    use super::raceway;
    use axum::{
        extract::State,
        http::{HeaderMap, StatusCode},
        middleware,
        response::Json,
        routing::post,
        Router,
    };
    use raceway::RacewayClient;
    use serde::{Deserialize, Serialize};
    use std::sync::Arc;

    // README BUG: as in the quick start, `track_function_call("createOrder", &req)` needs
    // `OrderRequest: Serialize`, which the README does not derive.
    #[derive(Deserialize, Serialize)]
    struct OrderRequest {
        order_id: String,
    }

    #[derive(Serialize)]
    struct OrderResponse {
        success: bool,
        order_id: String,
    }

    // `main` in the README.
    #[tokio::main]
    async fn main() {
        let raceway = Arc::new(RacewayClient::new("http://localhost:8080", "api-gateway"));

        let app = Router::new()
            .route("/api/order", post(create_order))
            .layer(middleware::from_fn_with_state(
                raceway.clone(),
                RacewayClient::middleware,
            ))
            .with_state(raceway);

        let listener = tokio::net::TcpListener::bind("0.0.0.0:3000").await.unwrap();

        axum::serve(listener, app).await.unwrap();
    }

    async fn create_order(
        State(raceway): State<Arc<RacewayClient>>,
        Json(req): Json<OrderRequest>,
    ) -> (StatusCode, Json<OrderResponse>) {
        raceway.track_function_call("createOrder", &req);

        // Get propagation headers
        let headers = match raceway.propagation_headers(None) {
            Ok(h) => h,
            Err(_) => {
                return (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    Json(OrderResponse {
                        success: false,
                        order_id: req.order_id.clone(),
                    }),
                )
            }
        };

        let client = reqwest::Client::new();

        // Call inventory service
        let _ = client
            .post("http://inventory-service:3001/reserve")
            .json(&serde_json::json!({ "orderId": &req.order_id }))
            .header("traceparent", headers.get("traceparent").unwrap())
            .header("raceway-clock", headers.get("raceway-clock").unwrap())
            .send()
            .await;

        // Call payment service
        let _ = client
            .post("http://payment-service:3002/charge")
            .json(&serde_json::json!({ "orderId": &req.order_id }))
            .header("traceparent", headers.get("traceparent").unwrap())
            .header("raceway-clock", headers.get("raceway-clock").unwrap())
            .send()
            .await;

        (
            StatusCode::OK,
            Json(OrderResponse {
                success: true,
                order_id: req.order_id,
            }),
        )
    }
}

/// Keeps the harness from reporting "0 tests" for this file: the test is that it compiled.
#[test]
fn readme_snippets_compile() {}

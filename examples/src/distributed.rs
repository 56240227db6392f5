//! One trace across three services on three runtimes.
//!
//! - **gateway**: tokio and axum, with `raceway-rt-tokio`'s middleware (the README line).
//! - **inventory**: a hyper 1 server on async-std (through `smol-hyper`'s `FuturesIo`),
//!   each request served through `raceway-rt-async-std`'s `hyper_service`.
//! - **payments**: its logic runs on blocking threads with `raceway-blocking`.
//!
//! All three run in this process on free 127.0.0.1 ports, each with its own client, and
//! all three clients feed one [`SharedAnalyzer`], so the local analyser sees the whole
//! trace (with `RACEWAY_ENDPOINT` set, each client also exports there).
//!
//! One `POST /checkout` reaches the gateway, with a `traceparent` and a `tracestate` from
//! "upstream" (a load balancer, say). The gateway then:
//!
//! 1. writes `order.total`, calls payments (which reads and writes `order.total`), merges
//!    payments' `raceway-clock` answer, and reads `order.total` again. That is RACES.md's
//!    S5a: every access is ordered by the call and its answer, so **no race**;
//! 2. reserves the order's two lines at inventory **in parallel** (`tokio::join!`). The
//!    inventory handler reads `stock`, awaits a warehouse check, and writes `stock`. That is
//!    S5b: the two inventory requests are not ordered, so **one race**, between the two
//!    inventory flows (and a real lost update: the stock goes down by one, not two).
//!
//! Every outgoing call carries `traceparent`, `tracestate` and `raceway-clock` (the
//! gateway's HTTP client is wrapped in [`RacewayClient::propagate_layer`], which injects
//! them and merges the answer's `raceway-clock` back), so the three services' events are
//! in the gateway request's trace.

use std::convert::Infallible;
use std::future::IntoFuture;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use raceway_proto::analysis::{Race, RaceReport};
use raceway_proto::boundary::ContextStore;
use raceway_proto::client::{ClientCore, SharedAnalyzer};
use raceway_proto::config::{Config, ConfigError};
use raceway_proto::headers::{TRACEPARENT, TRACESTATE};
use raceway_proto::ids::IdGenerator;
use raceway_proto::system::FastIds;
use raceway_proto::TraceId;
use raceway_rt_tokio::{PropagateService, RacewayClient};
use serde_json::{json, Value};
use tower::{Layer, ServiceExt};

use crate::http_client::{self, HttpClient};

/// Errors of the demo's plumbing (binding, HTTP, JSON).
pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// The variable of S5a (gateway → payments → gateway).
pub const ORDER_TOTAL: &str = "order.total";
/// The variable of S5b (two parallel inventory reservations).
pub const STOCK: &str = "stock";
/// The `tracestate` the "upstream" sends with the checkout, forwarded by every service.
pub const UPSTREAM_TRACESTATE: &str = "vendor=abc";

const INITIAL_STOCK: i64 = 10;
const ORDER_AMOUNT: i64 = 120;

/// What the services keep, as a database without transactions would: one store that all
/// three services read and write.
#[derive(Debug)]
struct Database {
    order_total: Mutex<i64>,
    stock: Mutex<i64>,
    ledger: Mutex<Vec<i64>>,
}

impl Database {
    fn new() -> Self {
        Self {
            order_total: Mutex::new(0),
            stock: Mutex::new(INITIAL_STOCK),
            ledger: Mutex::new(Vec::new()),
        }
    }
}

fn get(cell: &Mutex<i64>) -> i64 {
    *cell.lock().unwrap_or_else(|p| p.into_inner())
}

fn set(cell: &Mutex<i64>, value: i64) {
    *cell.lock().unwrap_or_else(|p| p.into_inner()) = value;
}

/// The three services' Raceway clients, all feeding one local analyser.
#[derive(Debug)]
pub struct Services {
    /// The analyser all three clients feed: races across services are found here.
    pub shared: SharedAnalyzer,
    /// The gateway's client (tokio, axum).
    pub gateway: Arc<RacewayClient>,
    /// The inventory service's client (async-std, hyper).
    pub inventory: raceway_rt_async_std::RacewayClient,
    /// The payments service's client (blocking threads).
    pub payments: raceway_blocking::RacewayClient,
}

impl Services {
    /// Three clients that analyse locally, ignoring the environment.
    pub fn local() -> Self {
        // Without an endpoint there is nothing that can fail.
        Self::build(|name| Ok(Config::new(name))).expect("local clients need no endpoint")
    }

    /// Three clients configured from `RACEWAY_*` environment variables (the service names
    /// stay `gateway`, `inventory` and `payments`). With `RACEWAY_ENDPOINT` set, each also
    /// exports there; the shared local analyser runs either way.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::build(|name| Config::new(name).fill_from_env(false))
    }

    fn build(config: impl Fn(&str) -> Result<Config, ConfigError>) -> Result<Self, ConfigError> {
        let shared = SharedAnalyzer::new();
        let config = |name: &str| -> Result<Config, ConfigError> {
            let mut c = config(name)?;
            c.analyzer = Some(shared.clone());
            Ok(c)
        };
        Ok(Self {
            gateway: Arc::new(RacewayClient::from_config(config("gateway")?)?),
            inventory: raceway_rt_async_std::RacewayClient::from_config(config("inventory")?)?,
            payments: raceway_blocking::RacewayClient::from_config(config("payments")?)?,
            shared,
        })
    }

    /// Where events are exported, when they are.
    pub fn endpoint(&self) -> Option<&str> {
        self.gateway.config().endpoint.as_deref()
    }

    /// Sends what every client recorded so far, the three clients at once, each within
    /// `timeout` (immediate in local mode). The error names every client that timed out.
    pub async fn flush(&self, timeout: Duration) -> Result<(), Error> {
        let payments = self.payments.clone();
        let (gateway, inventory, payments) = tokio::join!(
            self.gateway.flush(timeout),
            self.inventory.flush(timeout),
            tokio::task::spawn_blocking(move || payments.flush(timeout)),
        );
        let failed: Vec<String> = [
            ("gateway", gateway.err().map(|e| e.to_string())),
            ("inventory", inventory.err().map(|e| e.to_string())),
            (
                "payments",
                payments.map_or_else(|e| Some(e.to_string()), |r| r.err().map(|e| e.to_string())),
            ),
        ]
        .into_iter()
        .filter_map(|(service, e)| e.map(|e| format!("{service} flush: {e}")))
        .collect();
        if failed.is_empty() {
            Ok(())
        } else {
            Err(failed.join("; ").into())
        }
    }

    /// Stops the three clients' exporters at once, each within `timeout` (nothing to do in
    /// local mode); what is left then is dropped and counted.
    pub async fn shutdown(&self, timeout: Duration) {
        let payments = self.payments.clone();
        let _ = tokio::join!(
            self.gateway.shutdown_async(timeout),
            self.inventory.shutdown_async(timeout),
            tokio::task::spawn_blocking(move || payments.shutdown_timeout(timeout)),
        );
    }
}

/// The trace of the flow running here (the request being served), from any adapter's client.
fn current_trace<S: ContextStore>(client: &ClientCore<S>) -> Option<TraceId> {
    client.current_trace_id()
}

fn trace_json(trace: Option<TraceId>) -> Value {
    trace.map_or(Value::Null, |t| Value::String(t.to_string()))
}

// -- payments: blocking threads ------------------------------------------------------------

/// The payments service. Its HTTP front is a small axum server, but the payment logic runs
/// on a blocking thread (`spawn_blocking`) inside `raceway_blocking`'s `handle_request`,
/// which gives that thread the request's flow (a thread-local) for the duration of the
/// handler. Why axum in front rather than a blocking HTTP server crate (tiny_http, say):
/// that would add a dependency the workspace does not have, while axum is here already and
/// parses HTTP properly. What this service shows, payment code on a plain thread recording
/// into a thread-local flow, is the same behind any server that hands over the method, the
/// path and the headers.
struct Payments {
    raceway: raceway_blocking::RacewayClient,
    db: Arc<Database>,
}

impl Payments {
    /// Charges the order: reads the total, adds the card surcharge, writes it back and
    /// appends the charge to the ledger. Runs on a blocking thread, inside the request's flow.
    fn charge(&self, headers: &HeaderMap) -> (u16, String) {
        let rw = &self.raceway;
        let total = get(&self.db.order_total);
        rw.track_state_change(ORDER_TOTAL, None::<i64>, total, "Read");
        std::thread::sleep(Duration::from_millis(5)); // the card network
        let charged = total + total * 5 / 100; // 5% card surcharge
        set(&self.db.order_total, charged);
        rw.track_state_change(ORDER_TOTAL, Some(total), charged, "Write");
        let mut ledger = self.db.ledger.lock().unwrap_or_else(|p| p.into_inner());
        ledger.push(charged);
        rw.track_state_change("payments.ledger", None::<i64>, ledger.len() as i64, "Write");
        let body = json!({
            "charged": charged,
            "trace_id": trace_json(current_trace(rw)),
            "tracestate": headers.get(TRACESTATE).and_then(|v| v.to_str().ok()),
        });
        (200, body.to_string())
    }
}

async fn charge(
    State(payments): State<Arc<Payments>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let answer = tokio::task::spawn_blocking(move || {
        let pairs = headers
            .iter()
            .filter_map(|(k, v)| v.to_str().ok().map(|v| (k.as_str(), v)));
        payments
            .raceway
            .handle_request(method.as_str(), uri.path(), pairs, || payments.charge(&headers))
    })
    .await;
    let Ok(answer) = answer else {
        return (StatusCode::INTERNAL_SERVER_ERROR, "the payment thread panicked").into_response();
    };
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = (
        status,
        [(http::header::CONTENT_TYPE, "application/json")],
        answer.body.clone(),
    )
        .into_response();
    // `raceway-clock`: lets the gateway order what it does next after this request.
    for (name, value) in answer.response_headers() {
        if let Ok(value) = HeaderValue::from_str(&value) {
            response.headers_mut().insert(name, value);
        }
    }
    response
}

// -- inventory: hyper 1 on async-std -------------------------------------------------------

async fn reserve(
    raceway: raceway_rt_async_std::RacewayClient,
    db: Arc<Database>,
    request: http::Request<hyper::body::Incoming>,
) -> Result<http::Response<Full<Bytes>>, Infallible> {
    if request.uri().path() != "/reserve" {
        let mut not_found = http::Response::new(Full::new(Bytes::from_static(b"not found")));
        *not_found.status_mut() = http::StatusCode::NOT_FOUND;
        return Ok(not_found);
    }
    let stock = get(&db.stock);
    raceway.track_state_change(STOCK, None::<i64>, stock, "Read");
    async_std::task::sleep(Duration::from_millis(20)).await; // the warehouse check
    set(&db.stock, stock - 1);
    raceway.track_state_change(STOCK, Some(stock), stock - 1, "Write");
    let body = json!({
        "stock_left": stock - 1,
        "trace_id": trace_json(current_trace(&raceway)),
        "tracestate": request.headers().get(TRACESTATE).and_then(|v| v.to_str().ok()),
    });
    let mut response = http::Response::new(Full::new(Bytes::from(body.to_string())));
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(response)
}

async fn serve_inventory(
    listener: async_std::net::TcpListener,
    raceway: raceway_rt_async_std::RacewayClient,
    db: Arc<Database>,
) {
    while let Ok((stream, _)) = listener.accept().await {
        let (rw, db) = (raceway.clone(), db.clone());
        let handler = hyper::service::service_fn(move |request| reserve(rw.clone(), db.clone(), request));
        // Every request on this connection runs as its own flow, continuing the caller's
        // trace from its headers and answering with `raceway-clock`.
        let service = raceway.hyper_service(handler);
        async_std::task::spawn(async move {
            let io = smol_hyper::rt::FuturesIo::new(stream);
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(io, service)
                .await;
        });
    }
}

/// The inventory service on an OS thread of its own, driven by `async_std::task::block_on`;
/// its accept loop and connections are async-std tasks. Dropping `stop` (or sending on it)
/// ends the accept loop.
struct Inventory {
    addr: SocketAddr,
    stop: tokio::sync::oneshot::Sender<()>,
    thread: std::thread::JoinHandle<()>,
}

async fn start_inventory(
    raceway: raceway_rt_async_std::RacewayClient,
    db: Arc<Database>,
) -> Result<Inventory, Error> {
    let (addr_tx, addr_rx) = tokio::sync::oneshot::channel();
    // tokio's oneshot needs no runtime: async-std can await it.
    let (stop, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let thread = std::thread::Builder::new()
        .name("inventory".into())
        .spawn(move || {
            async_std::task::block_on(async move {
                let listener = match async_std::net::TcpListener::bind("127.0.0.1:0").await {
                    Ok(l) => l,
                    Err(e) => {
                        let _ = addr_tx.send(Err(e));
                        return;
                    }
                };
                let _ = addr_tx.send(listener.local_addr());
                let server = async_std::task::spawn(serve_inventory(listener, raceway, db));
                let _ = stop_rx.await;
                server.cancel().await;
            });
        })?;
    let addr = addr_rx
        .await
        .map_err(|_| "the inventory thread ended before binding")??;
    Ok(Inventory { addr, stop, thread })
}

// -- gateway: tokio and axum ---------------------------------------------------------------

/// The gateway's HTTP client: hyper-util's pooled client inside Raceway's propagation layer.
type PropagatingClient = PropagateService<HttpClient>;

struct Gateway {
    raceway: Arc<RacewayClient>,
    http: PropagatingClient,
    payments: SocketAddr,
    inventory: SocketAddr,
    db: Arc<Database>,
}

/// POSTs JSON through the propagating client: the layer injects `traceparent`,
/// `tracestate` and `raceway-clock` from the calling flow, and merges the answer's
/// `raceway-clock` into it.
async fn call(http: &PropagatingClient, url: &str, body: Value) -> Result<Value, Error> {
    let request = http::Request::post(url)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body.to_string())))?;
    let response = http.clone().oneshot(request).await?;
    let status = response.status();
    let bytes = response.into_body().collect().await?.to_bytes();
    if !status.is_success() {
        return Err(format!("{url} answered {status}").into());
    }
    Ok(serde_json::from_slice(&bytes)?)
}

async fn checkout(State(gw): State<Arc<Gateway>>) -> Result<Json<Value>, (StatusCode, String)> {
    let rw = &gw.raceway;
    let bad_gateway = |e: Error| (StatusCode::BAD_GATEWAY, e.to_string());

    // S5a: write the total, let payments read and write it, read it back after the answer.
    set(&gw.db.order_total, ORDER_AMOUNT);
    rw.track_state_change(ORDER_TOTAL, None::<i64>, ORDER_AMOUNT, "Write");
    let payment = call(
        &gw.http,
        &format!("http://{}/charge", gw.payments),
        json!({ "amount": ORDER_AMOUNT }),
    )
    .await
    .map_err(bad_gateway)?;
    let total = get(&gw.db.order_total);
    rw.track_state_change(ORDER_TOTAL, None::<i64>, total, "Read");

    // S5b: reserve the order's two lines at inventory in parallel.
    let reserve_url = format!("http://{}/reserve", gw.inventory);
    let (first, second) = tokio::join!(
        call(&gw.http, &reserve_url, json!({ "sku": "widget", "line": 1 })),
        call(&gw.http, &reserve_url, json!({ "sku": "widget", "line": 2 })),
    );
    let reservations = vec![first.map_err(bad_gateway)?, second.map_err(bad_gateway)?];

    Ok(Json(json!({
        "trace_id": trace_json(current_trace(rw)),
        "total": total,
        "payment": payment,
        "reservations": reservations,
    })))
}

// -- the run ---------------------------------------------------------------------------------

/// What a run found.
#[derive(Debug)]
pub struct Outcome {
    /// The shared analyser's report over all three services.
    pub report: RaceReport,
    /// The trace of the gateway's `/checkout` request.
    pub trace_id: TraceId,
    /// The trace the upstream's `traceparent` named (the gateway continues it).
    pub upstream_trace_id: TraceId,
    /// The trace of the payments request's flow.
    pub payments_trace_id: Option<TraceId>,
    /// The traces of the two inventory requests' flows.
    pub inventory_trace_ids: Vec<Option<TraceId>>,
    /// The `tracestate` each downstream request arrived with: payments, then inventory.
    pub tracestates: Vec<Option<String>>,
    /// `order.total` as the gateway read it after payments answered.
    pub order_total: i64,
    /// The stock after both reservations (started at 10; 8 would be right).
    pub stock_left: i64,
    /// Events each service recorded: gateway, inventory, payments.
    pub recorded: [u64; 3],
}

impl Outcome {
    /// Races on `order.total` (S5a; the truth is 0).
    pub fn s5a_races(&self) -> usize {
        self.report.races_on(ORDER_TOTAL).count()
    }

    /// Races on `stock` (S5b; the truth is 1).
    pub fn s5b_races(&self) -> Vec<&Race> {
        self.report.races_on(STOCK).collect()
    }

    /// True when all three services' flows are in the gateway request's trace.
    pub fn one_trace(&self) -> bool {
        self.payments_trace_id == Some(self.trace_id)
            && self.inventory_trace_ids.len() == 2
            && self.inventory_trace_ids.iter().all(|t| *t == Some(self.trace_id))
    }

    /// True when the report is the truth: exactly one race, on `stock`, between two
    /// inventory flows of the gateway's trace, and none on `order.total`.
    pub fn matches_truth(&self) -> bool {
        let stock = self.s5b_races();
        self.s5a_races() == 0
            && self.report.racing_pairs() == 1
            && stock.len() == 1
            && [&stock[0].first, &stock[0].second]
                .iter()
                .all(|a| a.thread_id.starts_with("inventory#") && a.trace_id == self.trace_id)
            && self.one_trace()
    }
}

fn trace_field(v: &Value, field: &str) -> Option<TraceId> {
    v.get(field)?.as_str()?.parse().ok()
}

/// Starts the three services, sends one `POST /checkout` to the gateway over HTTP (with
/// an upstream `traceparent` and `tracestate`), stops the services, flushes the clients
/// when they export, and returns what the shared analyser found.
pub async fn run(services: &Services) -> Result<Outcome, Error> {
    let db = Arc::new(Database::new());

    // payments: axum in front, the logic on blocking threads.
    let payments = Arc::new(Payments {
        raceway: services.payments.clone(),
        db: db.clone(),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let payments_addr = listener.local_addr()?;
    let app = Router::new().route("/charge", post(charge)).with_state(payments);
    let payments_server = tokio::spawn(axum::serve(listener, app).into_future());
    println!("payments  (blocking threads, raceway-blocking)      on http://{payments_addr}");

    // inventory: hyper 1 on async-std, in a thread of its own.
    let inventory = start_inventory(services.inventory.clone(), db.clone()).await?;
    println!(
        "inventory (async-std + hyper, raceway-rt-async-std) on http://{}",
        inventory.addr
    );

    // gateway: axum with the Raceway middleware; its client propagates.
    let gateway = Arc::new(Gateway {
        raceway: services.gateway.clone(),
        http: services.gateway.propagate_layer().layer(http_client::client()),
        payments: payments_addr,
        inventory: inventory.addr,
        db: db.clone(),
    });
    let app = Router::new()
        .route("/checkout", post(checkout))
        .layer(axum::middleware::from_fn_with_state(
            services.gateway.clone(),
            RacewayClient::middleware,
        ))
        .with_state(gateway);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let gateway_addr = listener.local_addr()?;
    let gateway_server = tokio::spawn(axum::serve(listener, app).into_future());
    println!("gateway   (tokio + axum, raceway-rt-tokio)          on http://{gateway_addr}");

    // The upstream (a load balancer, say) starts the trace; it is not a Raceway service.
    let upstream_trace = FastIds.trace_id();
    let traceparent = format!("00-{}-{}-01", upstream_trace.w3c_hex(), FastIds.span_id());
    let mut headers = http::HeaderMap::new();
    headers.insert(TRACEPARENT, HeaderValue::from_str(&traceparent)?);
    headers.insert(TRACESTATE, HeaderValue::from_static(UPSTREAM_TRACESTATE));
    println!("POST /checkout  traceparent: {traceparent}  tracestate: {UPSTREAM_TRACESTATE}");
    let answer = http_client::post_json(
        &http_client::client(),
        &format!("http://{gateway_addr}/checkout"),
        &headers,
        &json!({ "order": "A-1001", "lines": [{ "sku": "widget" }, { "sku": "widget" }] }),
    )
    .await;

    gateway_server.abort();
    payments_server.abort();
    let _ = inventory.stop.send(());
    let thread = inventory.thread;
    let _ = tokio::task::spawn_blocking(move || thread.join()).await;

    let (status, _, body) = answer?;
    if status != 200 {
        return Err(format!("the gateway answered {status}: {body}").into());
    }
    let answer: Value = serde_json::from_str(&body)?;
    println!("gateway answered 200: {answer}");
    let trace_id = trace_field(&answer, "trace_id").ok_or("the gateway's answer has no trace id")?;
    let reservations = answer["reservations"].as_array().cloned().unwrap_or_default();
    let tracestate = |v: &Value| v["tracestate"].as_str().map(str::to_string);
    let mut tracestates = vec![tracestate(&answer["payment"])];
    tracestates.extend(reservations.iter().map(tracestate));

    if let Err(e) = services.flush(Duration::from_secs(5)).await {
        // The local report is complete either way; only the server's view may be partial.
        eprintln!("warning: {e}: the server may not have every event");
    }
    Ok(Outcome {
        report: services.shared.report(),
        trace_id,
        upstream_trace_id: upstream_trace,
        payments_trace_id: trace_field(&answer["payment"], "trace_id"),
        inventory_trace_ids: reservations.iter().map(|r| trace_field(r, "trace_id")).collect(),
        tracestates,
        order_total: answer["total"].as_i64().unwrap_or_default(),
        stock_left: get(&db.stock),
        recorded: [
            services.gateway.stats().core.recorded,
            services.inventory.stats().core.recorded,
            services.payments.stats().core.recorded,
        ],
    })
}

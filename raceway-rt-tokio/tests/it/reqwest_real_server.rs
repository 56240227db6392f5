//! The reqwest integration ([`raceway_rt_tokio::PropagateMiddleware`], feature `reqwest`) on
//! the real Raceway server: services written as a user writes them (axum with the README's
//! middleware line, downstream calls with reqwest 0.12 through `reqwest-middleware` and
//! `propagate_middleware()`), real HTTP on 127.0.0.1, events exported to a fresh real
//! server, and the server's own race report (`/api/analyze/global`) compared with the truth,
//! pair by pair. Each scenario runs [`REPEAT`] times, each on a fresh server, because the
//! server's verdicts across services depend on arrival order (WIRE.md, "Measured on the real
//! server"). `published_pattern_*` pins what the published README's pattern
//! (`propagation_headers` and plain reqwest) gets from the same server.
//!
//! Without the server binary every test prints one line and passes; under CI
//! (`RACEWAY_REQUIRE_SERVER=1`) it fails (see `raceway_testkit::real_server`).

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use raceway_rt_tokio::RacewayClient;
use raceway_testkit::{RacePairs, RealServer};
use reqwest12 as reqwest;
use reqwest_middleware::{ClientBuilder, ClientWithMiddleware};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::common;
use crate::common::{real_client as client, real_verdict as verdict};

/// Runs of each scenario, each on a fresh server.
const REPEAT: usize = 10;
const AWAIT: Duration = Duration::from_millis(30);

/// The one line a reqwest user adds: a reqwest client whose calls carry `rw`'s flows.
fn traced_http(rw: &RacewayClient) -> ClientWithMiddleware {
    ClientBuilder::new(reqwest::Client::new())
        .with(rw.propagate_middleware())
        .build()
}

/// The services of `pairs` on `variable`: the part of each flow's id before the first `#`.
fn services(pairs: &RacePairs, variable: &str) -> Vec<(String, String)> {
    let service = |t: &str| t.split('#').next().unwrap_or(t).to_string();
    pairs
        .pairs(variable)
        .into_iter()
        .map(|(a, b)| (service(a), service(b)))
        .collect()
}

fn app<S: Clone + Send + Sync + 'static>(routes: Router<S>, rw: &Arc<RacewayClient>, state: S) -> Router {
    routes
        .layer(axum::middleware::from_fn_with_state(
            rw.clone(),
            RacewayClient::middleware,
        ))
        .with_state(state)
}

/// POSTs `body` to each of `urls` concurrently, from outside any flow, with a plain reqwest
/// client (each request starts its own trace at the first service); every answer must be 200.
async fn fire(urls: Vec<String>, body: impl Fn(usize) -> serde_json::Value) {
    let http = reqwest::Client::new();
    let mut tasks = Vec::new();
    for (i, url) in urls.into_iter().enumerate() {
        let request = http.post(url).json(&body(i));
        tasks.push(tokio::spawn(async move {
            let response = request.send().await.expect("request");
            (
                response.status().as_u16(),
                response.text().await.unwrap_or_default(),
            )
        }));
    }
    for t in tasks {
        let (status, body) = t.await.expect("task");
        assert_eq!(status, 200, "{body}");
    }
}

/// What a caller's handlers share: its Raceway client, the downstream base URL and the
/// reqwest client they call it with.
#[derive(Clone)]
struct Caller {
    rw: Arc<RacewayClient>,
    next_url: String,
    http: ClientWithMiddleware,
}

impl Caller {
    fn new(rw: &Arc<RacewayClient>, next_url: String) -> Caller {
        Caller {
            rw: rw.clone(),
            next_url,
            http: traced_http(rw),
        }
    }

    /// POSTs to `path` of the downstream service; its status.
    async fn call(&self, path: &str) -> u16 {
        let response = self
            .http
            .post(format!("{}{path}", self.next_url))
            .send()
            .await
            .expect("downstream call");
        response.status().as_u16()
    }
}

// S5a and S5b: two services ------------------------------------------------------------------

async fn b_total(State(rw): State<Arc<RacewayClient>>) -> &'static str {
    rw.track_state_change("total", None::<i64>, 10, "Read");
    rw.track_state_change("total", Some(10), 11, "Write");
    "ok"
}

async fn b_stock(State(rw): State<Arc<RacewayClient>>) -> &'static str {
    rw.track_state_change("stock", None::<i64>, 5, "Read");
    tokio::time::sleep(AWAIT).await;
    rw.track_state_change("stock", Some(5), 4, "Write");
    "ok"
}

/// S5a: A writes `total`, calls B (which reads and writes it) through the middleware, then
/// reads `total` after B answered.
async fn a_total(State(a): State<Caller>) -> &'static str {
    a.rw.track_state_change("total", Some(0), 10, "Write");
    assert_eq!(a.call("/total").await, 200);
    a.rw.track_state_change("total", None::<i64>, 11, "Read");
    "ok"
}

/// S5b: the same B handler twice in parallel, through the middleware.
async fn a_fan_out(State(a): State<Caller>) -> &'static str {
    let (s1, s2) = tokio::join!(a.call("/stock"), a.call("/stock"));
    assert_eq!((s1, s2), (200, 200));
    "ok"
}

/// Service B (`svc-b`) and service A (`svc-a`, calling B with reqwest through the
/// middleware); A's base URL.
async fn two_services(server: &RealServer) -> (Arc<RacewayClient>, Arc<RacewayClient>, String) {
    let a = client(server, "svc-a");
    let b = client(server, "svc-b");
    let b_routes = Router::new()
        .route("/total", post(b_total))
        .route("/stock", post(b_stock));
    let b_addr = common::serve(app(b_routes, &b, b.clone())).await;
    let a_routes = Router::new()
        .route("/total", post(a_total))
        .route("/fan-out", post(a_fan_out));
    let a_addr = common::serve(app(a_routes, &a, Caller::new(&a, format!("http://{b_addr}")))).await;
    (a, b, format!("http://{a_addr}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reqwest_s5a_call_and_return_does_not_race() {
    for run in 0..REPEAT {
        let Some(server) = RealServer::start_default() else {
            return;
        };
        let (a, b, url) = two_services(&server).await;
        fire(vec![format!("{url}/total")], |_| json!({})).await;
        let pairs = verdict(&server, &[&a, &b]).await;
        assert!(pairs.is_empty(), "run {run}: {pairs}");
        // One trace: B continued A's (a B in its own trace would race with A across traces).
        assert_eq!(server.trace_event_counts().len(), 1, "run {run}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reqwest_s5b_parallel_calls_race_between_the_two_b_flows() {
    for run in 0..REPEAT {
        let Some(server) = RealServer::start_default() else {
            return;
        };
        let (a, b, url) = two_services(&server).await;
        fire(vec![format!("{url}/fan-out")], |_| json!({})).await;
        let pairs = verdict(&server, &[&a, &b]).await;
        assert_eq!(pairs.count("stock"), 1, "run {run}: {pairs}");
        assert_eq!(pairs.flows("stock").len(), 2, "run {run}: {pairs}");
        assert!(
            pairs.flows("stock").iter().all(|f| f.starts_with("svc-b#")),
            "run {run}: {pairs}"
        );
        assert_eq!(pairs.total(), 1, "run {run}: {pairs}");
        assert_eq!(server.trace_event_counts().len(), 1, "run {run}");
    }
}

// A three-service chain ------------------------------------------------------------------------

/// The gateway: writes `chain`, calls B, reads `chain` after B answered.
async fn chain_gateway(State(gw): State<Caller>) -> &'static str {
    gw.rw.track_state_change("chain", Some(0), 1, "Write");
    assert_eq!(gw.call("/chain").await, 200);
    gw.rw.track_state_change("chain", None::<i64>, 4, "Read");
    "ok"
}

/// B: reads and writes `chain`, calls C with its own client, then reads and writes again.
async fn chain_b(State(b): State<Caller>) -> &'static str {
    b.rw.track_state_change("chain", None::<i64>, 1, "Read");
    b.rw.track_state_change("chain", Some(1), 2, "Write");
    assert_eq!(b.call("/chain").await, 200);
    b.rw.track_state_change("chain", None::<i64>, 3, "Read");
    b.rw.track_state_change("chain", Some(3), 4, "Write");
    "ok"
}

/// C, the end of the chain: reads and writes `chain`.
async fn chain_c(State(rw): State<Arc<RacewayClient>>) -> &'static str {
    rw.track_state_change("chain", None::<i64>, 2, "Read");
    tokio::time::sleep(AWAIT).await;
    rw.track_state_change("chain", Some(2), 3, "Write");
    "ok"
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reqwest_three_service_chain_does_not_race() {
    for run in 0..REPEAT {
        let Some(server) = RealServer::start_default() else {
            return;
        };
        let gw = client(&server, "gateway");
        let b = client(&server, "svc-b");
        let c = client(&server, "svc-c");
        let c_addr = common::serve(app(Router::new().route("/chain", post(chain_c)), &c, c.clone())).await;
        let b_state = Caller::new(&b, format!("http://{c_addr}"));
        let b_addr = common::serve(app(Router::new().route("/chain", post(chain_b)), &b, b_state)).await;
        let gw_state = Caller::new(&gw, format!("http://{b_addr}"));
        let gw_addr = common::serve(app(
            Router::new().route("/chain", post(chain_gateway)),
            &gw,
            gw_state,
        ))
        .await;
        fire(vec![format!("http://{gw_addr}/chain")], |_| json!({})).await;
        let pairs = verdict(&server, &[&gw, &b, &c]).await;
        assert!(pairs.is_empty(), "run {run}: {pairs}");
        assert_eq!(server.trace_event_counts().len(), 1, "run {run}");
    }
}

// The README's distributed example -----------------------------------------------------------

// The published README's "Distributed Example": an `api-gateway` whose `create_order`
// records `createOrder`, then calls the inventory service's `/reserve` and the payment
// service's `/charge` one after the other, with reqwest. Here the gateway's reqwest client
// has the middleware instead of the README's `propagation_headers` and hand-set headers, and
// the two services the README only names are written the obvious way: inventory reads the
// shared stock, awaits a warehouse check and writes it back (a lost update between two
// concurrent orders: a real race), then marks the order reserved; payment reads the order's
// status and marks it charged. Truth for two concurrent orders: `inventory.stock` races
// between the two inventory flows (1 pair); each order's status, written by inventory then
// read and written by payment after the gateway got inventory's answer, does not race.

#[derive(Deserialize, Serialize)]
struct OrderRequest {
    order_id: String,
}

#[derive(Serialize)]
struct OrderResponse {
    success: bool,
    order_id: String,
}

#[derive(Deserialize, Serialize)]
struct DownstreamRequest {
    #[serde(rename = "orderId")]
    order_id: String,
}

#[derive(Clone)]
struct ApiGateway {
    raceway: Arc<RacewayClient>,
    http: ClientWithMiddleware,
    inventory_url: String,
    payment_url: String,
}

async fn create_order(State(gw): State<ApiGateway>, Json(req): Json<OrderRequest>) -> Json<OrderResponse> {
    gw.raceway.track_function_call("createOrder", &req);

    // Call inventory service
    let reserved = gw
        .http
        .post(format!("{}/reserve", gw.inventory_url))
        .json(&json!({ "orderId": &req.order_id }))
        .send()
        .await;

    // Call payment service
    let charged = gw
        .http
        .post(format!("{}/charge", gw.payment_url))
        .json(&json!({ "orderId": &req.order_id }))
        .send()
        .await;

    let ok = |r: &reqwest_middleware::Result<reqwest::Response>| r.as_ref().is_ok_and(|r| r.status() == 200);
    Json(OrderResponse {
        success: ok(&reserved) && ok(&charged),
        order_id: req.order_id,
    })
}

async fn reserve(State(rw): State<Arc<RacewayClient>>, Json(req): Json<DownstreamRequest>) -> &'static str {
    rw.track_function_call("reserve", &req);
    rw.track_state_change("inventory.stock", None::<i64>, 10, "Read");
    tokio::time::sleep(AWAIT).await; // the warehouse check
    rw.track_state_change("inventory.stock", Some(10), 9, "Write");
    rw.track_state_change(
        &format!("order.{}.status", req.order_id),
        None::<&str>,
        "reserved",
        "Write",
    );
    "reserved"
}

async fn charge(State(rw): State<Arc<RacewayClient>>, Json(req): Json<DownstreamRequest>) -> &'static str {
    rw.track_function_call("charge", &req);
    let status = format!("order.{}.status", req.order_id);
    rw.track_state_change(&status, None::<&str>, "reserved", "Read");
    rw.track_state_change(&status, Some("reserved"), "charged", "Write");
    "charged"
}

/// The README's three services, with `gateway` as the api-gateway's state; the gateway's URL.
async fn readme_services(
    server: &RealServer,
    gateway: impl FnOnce(Arc<RacewayClient>, String, String) -> Router,
) -> ([Arc<RacewayClient>; 3], String) {
    let api = client(server, "api-gateway");
    let inventory = client(server, "inventory-service");
    let payment = client(server, "payment-service");
    let inv_addr = common::serve(app(
        Router::new().route("/reserve", post(reserve)),
        &inventory,
        inventory.clone(),
    ))
    .await;
    let pay_addr = common::serve(app(
        Router::new().route("/charge", post(charge)),
        &payment,
        payment.clone(),
    ))
    .await;
    let gw_addr = common::serve(gateway(
        api.clone(),
        format!("http://{inv_addr}"),
        format!("http://{pay_addr}"),
    ))
    .await;
    ([api, inventory, payment], format!("http://{gw_addr}/api/order"))
}

/// Two concurrent orders (`o-1`, `o-2`) at `url`.
async fn two_orders(url: &str) {
    fire(
        vec![url.to_string(); 2],
        |i| json!({ "order_id": format!("o-{}", i + 1) }),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reqwest_readme_distributed_example_finds_the_stock_race_only() {
    for run in 0..REPEAT {
        let Some(server) = RealServer::start_default() else {
            return;
        };
        let (clients, url) = readme_services(&server, |api, inventory_url, payment_url| {
            let gw = ApiGateway {
                http: traced_http(&api),
                raceway: api.clone(),
                inventory_url,
                payment_url,
            };
            app(Router::new().route("/api/order", post(create_order)), &api, gw)
        })
        .await;
        two_orders(&url).await;
        let [api, inventory, payment] = &clients;
        let pairs = verdict(&server, &[api, inventory, payment]).await;
        assert_eq!(pairs.count("inventory.stock"), 1, "run {run}: {pairs}");
        assert_eq!(
            services(&pairs, "inventory.stock"),
            [("inventory-service".to_string(), "inventory-service".to_string())],
            "run {run}: {pairs}"
        );
        assert_eq!(pairs.total(), 1, "run {run}: {pairs}");
        assert_eq!(server.trace_event_counts().len(), 2, "run {run}");
    }
}

// The published pattern: `propagation_headers` and plain reqwest ----------------------------

// These pin what the published README's call pattern gets from the real server, with this
// SDK and plain reqwest 0.12 (no middleware): the headers go out, but the SDK never sees the
// response, so the callee's `raceway-clock` answer is never merged. What the caller records
// after the response then has neither the callee's clock components nor a `parent_id` chain
// to the callee's events (WIRE.md rules 3 and 5), and the server reports the callee's
// accesses and the caller's later ones as a race. That false pair does not depend on arrival
// order, so the answer is the same in every run. (In a tokio task `propagation_headers` also
// cannot wait for causal delivery; here that changes no count, the pair is there anyway.)

/// S5a's A with the published pattern.
async fn a_total_published(State(a): State<Caller>) -> &'static str {
    a.rw.track_state_change("total", Some(0), 10, "Write");
    let headers = a.rw.propagation_headers(None).expect("headers");
    let response = reqwest::Client::new()
        .post(format!("{}/total", a.next_url))
        .header("traceparent", headers.get("traceparent").unwrap())
        .header("raceway-clock", headers.get("raceway-clock").unwrap())
        .send()
        .await
        .expect("B");
    assert_eq!(response.status(), 200);
    a.rw.track_state_change("total", None::<i64>, 11, "Read");
    "ok"
}

/// The published README's `create_order`, as printed (one set of headers for both calls).
async fn create_order_published(
    State(gw): State<ApiGateway>,
    Json(req): Json<OrderRequest>,
) -> Json<OrderResponse> {
    gw.raceway.track_function_call("createOrder", &req);
    let headers = gw.raceway.propagation_headers(None).expect("headers");
    let client = reqwest::Client::new();
    let mut success = true;
    for url in [
        format!("{}/reserve", gw.inventory_url),
        format!("{}/charge", gw.payment_url),
    ] {
        let answer = client
            .post(url)
            .json(&json!({ "orderId": &req.order_id }))
            .header("traceparent", headers.get("traceparent").unwrap())
            .header("raceway-clock", headers.get("raceway-clock").unwrap())
            .send()
            .await;
        success &= answer.is_ok_and(|r| r.status() == 200);
    }
    Json(OrderResponse {
        success,
        order_id: req.order_id,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn published_pattern_s5a_gets_one_false_pair() {
    for run in 0..3 {
        let Some(server) = RealServer::start_default() else {
            return;
        };
        let a = client(&server, "svc-a");
        let b = client(&server, "svc-b");
        let b_addr = common::serve(app(Router::new().route("/total", post(b_total)), &b, b.clone())).await;
        let a_state = Caller::new(&a, format!("http://{b_addr}"));
        let a_addr = common::serve(app(
            Router::new().route("/total", post(a_total_published)),
            &a,
            a_state,
        ))
        .await;
        fire(vec![format!("http://{a_addr}/total")], |_| json!({})).await;
        let pairs = verdict(&server, &[&a, &b]).await;
        // Truth: no race. The server: one (svc-a, svc-b) pair on `total`.
        assert_eq!(pairs.count("total"), 1, "run {run}: {pairs}");
        assert_eq!(
            services(&pairs, "total"),
            [("svc-a".to_string(), "svc-b".to_string())],
            "run {run}: {pairs}"
        );
        assert_eq!(pairs.total(), 1, "run {run}: {pairs}");
        // The trace was carried downstream: it is the way back that is missing.
        assert_eq!(server.trace_event_counts().len(), 1, "run {run}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn published_pattern_readme_distributed_example_gets_a_false_pair_per_order() {
    for run in 0..3 {
        let Some(server) = RealServer::start_default() else {
            return;
        };
        let (clients, url) = readme_services(&server, |api, inventory_url, payment_url| {
            let gw = ApiGateway {
                http: traced_http(&api), // unused: the handler calls plain reqwest
                raceway: api.clone(),
                inventory_url,
                payment_url,
            };
            app(
                Router::new().route("/api/order", post(create_order_published)),
                &api,
                gw,
            )
        })
        .await;
        two_orders(&url).await;
        let [api, inventory, payment] = &clients;
        let pairs = verdict(&server, &[api, inventory, payment]).await;
        // Truth: the stock race only. The server adds, for each order, a false pair between
        // inventory's status write and payment's status accesses: payment was called with
        // the gateway's clock from before inventory's call, and inventory's answer was never
        // merged, so nothing orders the two.
        assert_eq!(pairs.count("inventory.stock"), 1, "run {run}: {pairs}");
        for order in ["o-1", "o-2"] {
            let status = format!("order.{order}.status");
            assert_eq!(
                services(&pairs, &status),
                [("inventory-service".to_string(), "payment-service".to_string())],
                "run {run}: {pairs}"
            );
        }
        assert_eq!(pairs.total(), 3, "run {run}: {pairs}");
    }
}

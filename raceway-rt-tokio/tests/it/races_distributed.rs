//! RACES.md S5a and S5b: two services (two axum apps, two clients) in one process, calling
//! each other over real HTTP with the propagation headers.
//!
//! Each client has its own sink, so the two services' events are analysed together in two
//! ways, which must agree:
//! - a [`SharedAnalyzer`] both clients feed (`Config::analyzer`): it sees the events in the
//!   order they were recorded in this process, which is causal order;
//! - the events both clients exported to one testkit collector, analysed afterwards with
//!   [`Analyzer`]. The collector's ingestion order interleaves two exporters' batches, so it
//!   need not be causal (B's batch can land before A's earlier one). Before analysing, the
//!   events are stably sorted by the sum of their clock's counters: when `a` happened before
//!   `b` (server rule 3: every component of `a` in `b` with a value `<=`, one strictly
//!   smaller) `a`'s sum is strictly smaller, so that order is a linearization consistent
//!   with causality. The test also checks that in it every event comes after its `parent_id`.

use crate::common;

use std::collections::{BTreeSet, HashMap};
use std::future::poll_fn;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::post;
use axum::Router;
use raceway_proto::analysis::Analyzer;
use raceway_proto::{Event, EventKind};
use raceway_rt_tokio::{RaceReport, RacewayClient, SharedAnalyzer};
use raceway_testkit::Collector;
use tower::{Layer, Service};

type HandlerResult = Result<&'static str, (StatusCode, String)>;

fn fail(msg: impl Into<String>) -> (StatusCode, String) {
    (StatusCode::INTERNAL_SERVER_ERROR, msg.into())
}

// ---------------------------------------------------------------------------------------
// Service B

async fn b_total(State(rw): State<Arc<RacewayClient>>) -> &'static str {
    rw.track_state_change("total", None::<i64>, 10, "Read");
    rw.track_state_change("total", Some(10), 11, "Write");
    "ok"
}

async fn b_stock(State(rw): State<Arc<RacewayClient>>) -> &'static str {
    rw.track_state_change("stock", None::<i64>, 5, "Read");
    tokio::time::sleep(Duration::from_millis(50)).await;
    rw.track_state_change("stock", Some(5), 4, "Write");
    "ok"
}

// ---------------------------------------------------------------------------------------
// Service A

#[derive(Clone)]
struct A {
    rw: Arc<RacewayClient>,
    b_url: String,
    http: common::HttpClient,
}

/// S5a: write `total`, call B with the propagation headers, merge B's answer (or, for the
/// control, not), read `total`.
async fn a_total(State(st): State<A>, Path(merge): Path<bool>) -> HandlerResult {
    st.rw.track_state_change("total", Some(0), 10, "Write");
    let headers = st.rw.propagation_headers(None).map_err(|e| fail(e.to_string()))?;
    for h in ["traceparent", "raceway-clock"] {
        if !headers.contains_key(h) {
            return Err(fail(format!("no {h} in {headers:?}")));
        }
    }
    let url = format!("{}/total", st.b_url);
    let (status, answer, _) = common::post(&st.http, &url, &headers).await;
    if status != 200 {
        return Err(fail(format!("B answered {status}")));
    }
    if merge && !st.rw.merge_response(&answer) {
        return Err(fail(format!("no raceway-clock to merge in {answer:?}")));
    }
    st.rw.track_state_change("total", None::<i64>, 11, "Read");
    Ok("ok")
}

/// S5a again, through `propagate_layer()` on the hyper client instead of by hand.
async fn a_total_layer(State(st): State<A>) -> HandlerResult {
    st.rw.track_state_change("total", Some(0), 10, "Write");
    let mut svc = st.rw.propagate_layer().layer(st.http.clone());
    poll_fn(|cx| svc.poll_ready(cx))
        .await
        .map_err(|e| fail(e.to_string()))?;
    let request = common::post_request(&format!("{}/total", st.b_url), &HashMap::new());
    let response = svc.call(request).await.map_err(|e| fail(e.to_string()))?;
    if response.status() != 200 || !response.headers().contains_key("raceway-clock") {
        return Err(fail(format!("B answered {response:?}")));
    }
    st.rw.track_state_change("total", None::<i64>, 11, "Read");
    Ok("ok")
}

/// S5b: call the same B handler twice in parallel.
async fn a_fan_out(State(st): State<A>) -> HandlerResult {
    let h1 = st.rw.propagation_headers(None).map_err(|e| fail(e.to_string()))?;
    let h2 = st.rw.propagation_headers(None).map_err(|e| fail(e.to_string()))?;
    let url = format!("{}/stock", st.b_url);
    let ((s1, r1, _), (s2, r2, _)) = tokio::join!(
        common::post(&st.http, &url, &h1),
        common::post(&st.http, &url, &h2)
    );
    if s1 != 200 || s2 != 200 {
        return Err(fail(format!("B answered {s1} and {s2}")));
    }
    if !st.rw.merge_response(&r1) || !st.rw.merge_response(&r2) {
        return Err(fail("no raceway-clock to merge"));
    }
    Ok("ok")
}

struct Services {
    collector: Collector,
    shared: SharedAnalyzer,
    a: Arc<RacewayClient>,
    b: Arc<RacewayClient>,
    a_url: String,
}

async fn start_services() -> Services {
    let collector = Collector::start();
    let shared = SharedAnalyzer::new();
    let client = |name: &str| {
        let mut config = common::fast_config(name, &collector.url());
        config.analyzer = Some(shared.clone());
        Arc::new(RacewayClient::from_config(config).unwrap())
    };
    let a = client("svc-a");
    let b = client("svc-b");

    let b_app = Router::new()
        .route("/total", post(b_total))
        .route("/stock", post(b_stock))
        .layer(axum::middleware::from_fn_with_state(
            b.clone(),
            RacewayClient::middleware,
        ))
        .with_state(b.clone());
    let b_addr = common::serve(b_app).await;

    let a_state = A {
        rw: a.clone(),
        b_url: format!("http://{b_addr}"),
        http: common::http_client(),
    };
    let a_app = Router::new()
        .route("/total/{merge}", post(a_total))
        .route("/total-layer", post(a_total_layer))
        .route("/fan-out", post(a_fan_out))
        .layer(axum::middleware::from_fn_with_state(
            a.clone(),
            RacewayClient::middleware,
        ))
        .with_state(a_state);
    let a_addr = common::serve(a_app).await;
    Services {
        collector,
        shared,
        a,
        b,
        a_url: format!("http://{a_addr}"),
    }
}

impl Services {
    /// Calls A at `path` (a new trace), then flushes both services.
    async fn call_a(&self, path: &str) {
        let http = common::http_client();
        let (status, _, body) = common::post(&http, &format!("{}{path}", self.a_url), &HashMap::new()).await;
        assert_eq!(status, 200, "{body:?}");
        self.a.flush(Duration::from_secs(5)).await.unwrap();
        self.b.flush(Duration::from_secs(5)).await.unwrap();
    }

    /// The collector's events in a causal order (see the module docs), checked.
    fn causal_events(&self) -> Vec<Event> {
        let mut events = self.collector.events();
        events.sort_by_key(|e| e.causality_vector.entries().iter().map(|(_, v)| *v).sum::<u64>());
        let position: HashMap<String, usize> = events
            .iter()
            .enumerate()
            .map(|(i, e)| (e.id.to_string(), i))
            .collect();
        for (i, e) in events.iter().enumerate() {
            if let Some(p) = e.parent_id.and_then(|p| position.get(&p.to_string())) {
                assert!(*p < i, "event {} sorted before its parent", e.id);
            }
        }
        events
    }

    /// The report of the shared analyser, checked against the collector's events.
    fn report(&self) -> RaceReport {
        let shared = self.shared.report();
        let mut analyzer = Analyzer::new();
        analyzer.observe_all(&self.causal_events());
        let exported = analyzer.into_report();
        assert_eq!(exported.events_observed(), shared.events_observed());
        assert_eq!(
            exported.racing_pairs(),
            shared.racing_pairs(),
            "{exported}\nvs\n{shared}"
        );
        assert_eq!(pair_set(&exported), pair_set(&shared));
        shared
    }
}

fn pair_set(report: &RaceReport) -> BTreeSet<(String, String, String)> {
    report
        .races()
        .iter()
        .map(|r| {
            let (a, b) = (r.first.thread_id.to_string(), r.second.thread_id.to_string());
            let (a, b) = if a < b { (a, b) } else { (b, a) };
            (r.variable.to_string(), a, b)
        })
        .collect()
}

fn find<'e>(events: &'e [Event], service: &str, what: impl Fn(&EventKind) -> bool) -> Vec<&'e Event> {
    events
        .iter()
        .filter(|e| &*e.metadata.service_name == service && what(&e.kind))
        .collect()
}

fn access(variable: &'static str, access: &'static str) -> impl Fn(&EventKind) -> bool {
    move |k| {
        matches!(k, EventKind::StateChange { variable: v, access_type, .. }
            if v == variable && access_type.to_string() == access)
    }
}

fn is_request(k: &EventKind) -> bool {
    matches!(k, EventKind::HttpRequest { .. })
}

fn is_response(k: &EventKind) -> bool {
    matches!(k, EventKind::HttpResponse { .. })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn s5a_call_and_return_with_propagated_headers_does_not_race() {
    let s = start_services().await;
    s.call_a("/total/true").await;

    let report = s.report();
    assert!(report.is_empty(), "{report}");
    assert_eq!(report.accesses_observed(), 4);

    let events = s.collector.events();
    // A: request, write, read, response; B: request, read, write, response.
    assert_eq!(events.len(), 8);
    let trace = events[0].trace_id;
    assert!(
        events.iter().all(|e| e.trace_id == trace),
        "one trace across both services"
    );
    let a_write = find(&events, "svc-a", access("total", "Write"))[0];
    let a_read = find(&events, "svc-a", access("total", "Read"))[0];
    let b_request = find(&events, "svc-b", is_request)[0];
    let b_response = find(&events, "svc-b", is_response)[0];
    // The call links B's first event to A's last event before the call ...
    assert_eq!(b_request.parent_id, Some(a_write.id));
    // ... and the merged answer links A's next event to B's last one.
    assert_eq!(a_read.parent_id, Some(b_response.id));
    // The distributed edge: B's upstream span is A's span.
    assert_eq!(
        b_request.metadata.upstream_span_id,
        a_write.metadata.distributed_span_id
    );
    assert!(a_write
        .causality_vector
        .happened_before(&b_request.causality_vector));
    assert!(b_response
        .causality_vector
        .happened_before(&a_read.causality_vector));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn s5a_through_the_propagate_layer_does_not_race() {
    let s = start_services().await;
    s.call_a("/total-layer").await;

    let report = s.report();
    assert!(report.is_empty(), "{report}");
    assert_eq!(report.accesses_observed(), 4);
    let events = s.collector.events();
    let a_read = find(&events, "svc-a", access("total", "Read"))[0];
    let b_response = find(&events, "svc-b", is_response)[0];
    assert_eq!(a_read.parent_id, Some(b_response.id));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn s5a_control_without_merging_the_answer_the_read_races_with_b() {
    let s = start_services().await;
    s.call_a("/total/false").await;

    let report = s.report();
    assert_eq!(report.racing_pairs(), 1, "{report}");
    let race = report.races_on("total").next().unwrap();
    let services: BTreeSet<String> = [&race.first.thread_id, &race.second.thread_id]
        .iter()
        .map(|t| t.split('#').next().unwrap().to_string())
        .collect();
    assert_eq!(
        services,
        ["svc-a", "svc-b"].into_iter().map(String::from).collect()
    );
    let events = s.collector.events();
    let a_write = find(&events, "svc-a", access("total", "Write"))[0];
    let a_read = find(&events, "svc-a", access("total", "Read"))[0];
    assert_eq!(a_read.parent_id, Some(a_write.id));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn s5b_parallel_calls_to_one_handler_race_between_the_two_b_flows() {
    let s = start_services().await;
    s.call_a("/fan-out").await;

    let report = s.report();
    assert_eq!(report.racing_pairs(), 1, "{report}");
    let race = report.races_on("stock").next().expect("a race on stock");
    assert!(race.first.thread_id.starts_with("svc-b#"), "{race}");
    assert!(race.second.thread_id.starts_with("svc-b#"), "{race}");
    assert_ne!(race.first.thread_id, race.second.thread_id);
    assert!(!race.crosses_traces());

    let events = s.collector.events();
    let b_requests = find(&events, "svc-b", is_request);
    assert_eq!(b_requests.len(), 2);
    // Two calls, two child spans of A's span.
    assert_ne!(
        b_requests[0].metadata.distributed_span_id,
        b_requests[1].metadata.distributed_span_id
    );
    assert_eq!(
        b_requests[0].metadata.upstream_span_id,
        b_requests[1].metadata.upstream_span_id
    );
    // A's response comes after both B flows.
    let a_response = find(&events, "svc-a", is_response)[0];
    for b_response in find(&events, "svc-b", is_response) {
        assert!(b_response
            .causality_vector
            .happened_before(&a_response.causality_vector));
    }
}

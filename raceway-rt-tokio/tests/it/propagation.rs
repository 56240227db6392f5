//! Incoming propagation headers through the axum middleware: a W3C `traceparent` alone (as
//! another SDK or a proxy sends it) continues the trace and is answered with a
//! `raceway-clock`; garbage starts a new trace and is still served.

use crate::common;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::routing::post;
use axum::Router;
use raceway_proto::{ClockHeader, TraceId};
use raceway_rt_tokio::RacewayClient;
use raceway_testkit::Collector;

async fn touch(State(rw): State<Arc<RacewayClient>>) -> &'static str {
    rw.track_state_change("x", None::<i64>, 1, "Read");
    "ok"
}

async fn service(collector: &Collector) -> (Arc<RacewayClient>, String) {
    let rw = Arc::new(common::fast_client("svc", &collector.url()));
    let app = Router::new()
        .route("/", post(touch))
        .layer(axum::middleware::from_fn_with_state(
            rw.clone(),
            RacewayClient::middleware,
        ))
        .with_state(rw.clone());
    let addr = common::serve(app).await;
    (rw, format!("http://{addr}/"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_traceparent_alone_continues_the_trace_and_gets_a_clock_back() {
    let collector = Collector::start();
    let (rw, url) = service(&collector).await;
    let trace_hex = "4bf92f3577b34da6a3ce929d0e0e4736";
    let headers = HashMap::from([(
        "traceparent".to_string(),
        format!("00-{trace_hex}-00f067aa0ba902b7-01"),
    )]);
    let (status, answer, _) = common::post(&common::http_client(), &url, &headers).await;
    assert_eq!(status, 200);
    let clock = answer
        .get("raceway-clock")
        .expect("a continued trace is answered with its clock")
        .to_str()
        .unwrap();
    let clock = ClockHeader::decode(clock).expect("a valid raceway-clock");
    let trace: TraceId = trace_hex.parse().unwrap();
    assert_eq!(clock.trace_id, trace);
    assert_eq!(clock.trace_id.to_string(), "4bf92f35-77b3-4da6-a3ce-929d0e0e4736");

    rw.flush(Duration::from_secs(5)).await.unwrap();
    let events = collector.events();
    assert_eq!(events.len(), 3); // HttpRequest, Read, HttpResponse
    assert!(events.iter().all(|e| e.trace_id == trace));
    // The span the caller made for this call is this flow's span.
    assert!(events
        .iter()
        .all(|e| e.metadata.distributed_span_id.map(|s| s.to_string()) == Some("00f067aa0ba902b7".into())));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_headers_start_a_new_trace_and_are_still_served() {
    let collector = Collector::start();
    let (rw, url) = service(&collector).await;
    let headers = HashMap::from([
        ("traceparent".to_string(), "00-zzzz-yyyy-01".to_string()),
        ("raceway-clock".to_string(), "v1;!!!not-base64!!!".to_string()),
        ("tracestate".to_string(), "=,=,=".to_string()),
    ]);
    let (status, answer, _) = common::post(&common::http_client(), &url, &headers).await;
    assert_eq!(status, 200);
    assert!(
        answer.get("raceway-clock").is_none(),
        "a new trace has no caller to answer"
    );
    rw.flush(Duration::from_secs(5)).await.unwrap();
    let events = collector.events();
    assert_eq!(events.len(), 3);
    assert!(events.iter().all(|e| e.trace_id == events[0].trace_id));
    assert!(events.iter().all(|e| e.metadata.upstream_span_id.is_none()));
}

/// The middleware reads headers with the core's one rule (`extract_from_header_map`): a
/// `traceparent` value that is not visible ASCII is invalid, not skipped, so a second copy
/// makes a repeat and the request starts a new trace, as every other adapter decides.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_non_ascii_traceparent_beside_a_valid_one_starts_a_new_trace() {
    use axum::http::HeaderValue;
    let collector = Collector::start();
    let (rw, url) = service(&collector).await;
    let trace_hex = "4bf92f3577b34da6a3ce929d0e0e4736";
    let mut request = common::post_request(&url, &HashMap::new());
    let headers = request.headers_mut();
    headers.append("traceparent", HeaderValue::from_bytes(b"00-\x80\x81").unwrap());
    headers.append(
        "traceparent",
        HeaderValue::from_str(&format!("00-{trace_hex}-00f067aa0ba902b7-01")).unwrap(),
    );
    let response = common::http_client().request(request).await.expect("request");
    assert_eq!(response.status(), 200);
    assert!(
        response.headers().get("raceway-clock").is_none(),
        "not a continued trace"
    );
    rw.flush(Duration::from_secs(5)).await.unwrap();
    let events = collector.events();
    assert_eq!(events.len(), 3);
    let trace: TraceId = trace_hex.parse().unwrap();
    assert!(
        events.iter().all(|e| e.trace_id != trace),
        "the skipped-value bug is back"
    );
}

//! Sampling: a trace is recorded whole or not at all, the caller's `traceparent` decision
//! wins (parent-based, the default), and an unsampled trace propagates its decision
//! downstream: `traceparent` ending in `-00`, no `raceway-clock`.

use crate::common;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::routing::post;
use axum::Router;
use raceway_proto::sampling::Sampler;
use raceway_rt_tokio::RacewayClient;
use raceway_testkit::Collector;

/// Records a write, spawns a task that writes too, joins it, and answers with the
/// headers it would send downstream.
async fn work(State(rw): State<Arc<RacewayClient>>) -> String {
    rw.track_state_change("x", None::<i64>, 1, "Write");
    let task_rw = rw.clone();
    let task = rw.spawn(async move {
        task_rw.track_state_change("x", Some(1), 2, "Write");
    });
    task.join().await.expect("task");
    let headers = rw.propagation_headers(None).unwrap_or_default();
    let mut names: Vec<_> = headers.into_iter().map(|(k, v)| format!("{k}={v}")).collect();
    names.sort();
    names.join("\n")
}

async fn service(collector: &Collector, sampler: Sampler) -> (Arc<RacewayClient>, String) {
    let mut config = common::fast_config("sampled", &collector.url());
    config.sampler = sampler;
    let rw = Arc::new(RacewayClient::from_config(config).expect("config"));
    let app = Router::new()
        .route("/", post(work))
        .layer(axum::middleware::from_fn_with_state(
            rw.clone(),
            RacewayClient::middleware,
        ))
        .with_state(rw.clone());
    let addr = common::serve(app).await;
    (rw, format!("http://{addr}/"))
}

fn traceparent(trace_hex: &str, flags: &str) -> HashMap<String, String> {
    HashMap::from([(
        "traceparent".to_string(),
        format!("00-{trace_hex}-00f067aa0ba902b7-{flags}"),
    )])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_callers_unsampled_decision_is_honoured_and_passed_on() {
    let collector = Collector::start();
    let (rw, url) = service(&collector, Sampler::default()).await;
    let http = common::http_client();

    let unsampled = "4bf92f3577b34da6a3ce929d0e0e4736";
    let (status, answer, body) = common::post(&http, &url, &traceparent(unsampled, "00")).await;
    assert_eq!(status, 200);
    assert!(answer.get("raceway-clock").is_none(), "nothing to merge back");
    let body = String::from_utf8_lossy(&body).to_string();
    // Downstream gets the trace id with the sampled flag cleared, and no raceway-clock.
    assert!(
        body.starts_with(&format!("traceparent=00-{unsampled}-")) && body.ends_with("-00"),
        "{body}"
    );
    assert_eq!(body.lines().count(), 1, "{body}");

    let sampled = "0af7651916cd43dd8448eb211c80319c";
    let (status, answer, body) = common::post(&http, &url, &traceparent(sampled, "01")).await;
    assert_eq!(status, 200);
    let body = String::from_utf8_lossy(&body).to_string();
    assert!(answer.get("raceway-clock").is_some());
    assert!(body.contains("raceway-clock=v1;"), "{body}");
    assert!(body.contains(&format!("traceparent=00-{sampled}-")), "{body}");
    assert!(
        body.lines()
            .any(|l| l.starts_with("traceparent=") && l.ends_with("-01")),
        "{body}"
    );

    rw.flush(Duration::from_secs(5)).await.expect("flush");
    let events = collector.events_json();
    let traces: Vec<&str> = events.iter().filter_map(|e| e["trace_id"].as_str()).collect();
    assert!(!traces.is_empty());
    assert!(
        traces.iter().all(|t| t.replace('-', "") == sampled),
        "only the sampled trace is recorded: {traces:?}"
    );
    // HttpRequest, Write, AsyncSpawn, the task's Write, AsyncAwait, HttpResponse.
    assert_eq!(traces.len(), 6, "{events:?}");
    assert_eq!(rw.stats().export.dropped(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ratio_records_whole_traces_and_about_that_share() {
    let collector = Collector::start();
    let (rw, url) = service(&collector, Sampler::ratio(0.5).parent_based()).await;
    let http = common::http_client();
    const REQUESTS: usize = 200;
    for _ in 0..REQUESTS {
        let (status, _, _) = common::post(&http, &url, &HashMap::new()).await;
        assert_eq!(status, 200);
    }
    rw.flush(Duration::from_secs(10)).await.expect("flush");
    let mut per_trace: BTreeMap<String, usize> = BTreeMap::new();
    for e in collector.events_json() {
        *per_trace
            .entry(e["trace_id"].as_str().unwrap_or_default().to_string())
            .or_default() += 1;
    }
    assert!(
        per_trace.values().all(|&n| n == 6),
        "every recorded trace is whole: {per_trace:?}"
    );
    let share = per_trace.len() as f64 / REQUESTS as f64;
    // Binomial(200, 0.5): 0.35..0.65 is more than four standard deviations each side.
    assert!(
        (0.35..0.65).contains(&share),
        "{} of {REQUESTS} traces recorded",
        per_trace.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn always_off_records_nothing_and_still_serves() {
    let collector = Collector::start();
    let (rw, url) = service(&collector, Sampler::always_off()).await;
    let (status, answer, _) = common::post(&common::http_client(), &url, &HashMap::new()).await;
    assert_eq!(status, 200);
    assert!(answer.get("raceway-clock").is_none());
    rw.flush(Duration::from_secs(5)).await.expect("flush");
    assert_eq!(collector.event_count(), 0);
    assert_eq!(rw.stats().core.recorded, 0);
}

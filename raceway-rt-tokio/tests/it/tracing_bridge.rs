//! The `tracing` bridge (issue 13 item 5) in an axum service: the README's middleware, a
//! registry with `client.tracing_layer()`, `#[tracing::instrument]` handlers and
//! `raceway.variable` events, and no `track_*` calls. Spans arrive at a real collector as
//! `FunctionCall` events with their durations, in their request's trace; a task spawned
//! with the request's span carries the request's flow; and `raceway.variable` events race
//! in the local analyser exactly as the equivalent `track_state_change` calls do.
//!
//! The tests run on a current-thread runtime so that the subscriber set for the test's
//! thread (`set_default`, not a process-wide one: the other tests of this binary run in
//! parallel) sees the server, its handlers and the client alike.

use crate::common;

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::routing::post;
use axum::Router;
use raceway_proto::{Event, EventKind, TraceId};
use raceway_rt_tokio::{AsyncTrackedMutex, RaceReport, RacewayClient};
use raceway_testkit::Collector;
use tracing::Instrument;
use tracing_subscriber::layer::SubscriberExt;

const AWAIT: Duration = Duration::from_millis(30);

fn with_raceway<S: Clone + Send + Sync + 'static>(
    routes: Router<S>,
    rw: &Arc<RacewayClient>,
    state: S,
) -> Router {
    routes
        .layer(axum::middleware::from_fn_with_state(
            rw.clone(),
            RacewayClient::middleware,
        ))
        .with_state(state)
}

/// The subscriber for this test's thread: a registry with the client's layer.
fn subscribe(rw: &RacewayClient) -> tracing::subscriber::DefaultGuard {
    tracing::subscriber::set_default(tracing_subscriber::registry().with(rw.tracing_layer()))
}

async fn fire(addr: SocketAddr, paths: Vec<String>) {
    let http = common::http_client();
    let mut tasks = Vec::new();
    for p in paths {
        let http = http.clone();
        let url = format!("http://{addr}{p}");
        tasks.push(tokio::spawn(async move {
            common::post(&http, &url, &HashMap::new()).await
        }));
    }
    for t in tasks {
        let (status, _, body) = t.await.unwrap();
        assert_eq!(status, 200, "{body:?}");
    }
}

// ---------------------------------------------------------------------------------------
// Spans to a real collector.

#[tracing::instrument(skip(rw))]
async fn transfer(State(rw): State<Arc<RacewayClient>>, Path(id): Path<u32>) -> &'static str {
    debit(id, 10).await;
    // A task of its own, instrumented with the request's span: it has no task-local
    // context, so the span carries the request's flow into it.
    let audit = tokio::spawn(
        async move {
            tracing::info!(
                raceway.variable = "audit.log",
                raceway.access = "Write",
                raceway.new = id
            );
            rw.track_state_change("audit.count", None::<u32>, 1, "Write");
        }
        .in_current_span(),
    );
    audit.await.unwrap();
    "ok"
}

#[tracing::instrument]
async fn debit(account: u32, amount: i64) {
    tracing::info!(
        raceway.variable = "balance",
        raceway.access = "Read",
        raceway.new = 100
    );
    tokio::time::sleep(AWAIT).await;
    tracing::info!(
        raceway.variable = "balance",
        raceway.access = "Write",
        raceway.old = 100,
        raceway.new = 100 - amount
    );
}

fn calls<'e>(events: &'e [Event], name: &str) -> Vec<&'e Event> {
    events
        .iter()
        .filter(|e| matches!(&e.kind, EventKind::FunctionCall { function_name, .. } if function_name == name))
        .collect()
}

fn duration(e: &Event) -> u64 {
    e.metadata.duration_ns.flatten().unwrap_or(0)
}

#[tokio::test]
async fn instrumented_handlers_arrive_as_function_calls_with_durations_in_their_request_trace() {
    let collector = Collector::start();
    let rw = Arc::new(common::fast_client("bank", &collector.url()));
    let _subscriber = subscribe(&rw);
    let app = with_raceway(
        Router::new().route("/transfer/{id}", post(transfer)),
        &rw,
        rw.clone(),
    );
    let addr = common::serve(app).await;
    fire(addr, vec!["/transfer/1".into(), "/transfer/2".into()]).await;
    rw.flush(Duration::from_secs(5)).await.expect("flush");

    let events = collector.events();
    let requests: Vec<&Event> = events
        .iter()
        .filter(|e| matches!(e.kind, EventKind::HttpRequest { .. }))
        .collect();
    assert_eq!(requests.len(), 2);
    let traces: BTreeSet<TraceId> = requests.iter().map(|e| e.trace_id).collect();
    assert_eq!(traces.len(), 2, "one trace per request");

    let transfers = calls(&events, "transfer");
    let debits = calls(&events, "debit");
    assert_eq!(transfers.len(), 2, "{events:#?}");
    assert_eq!(debits.len(), 2, "{events:#?}");
    for req in &requests {
        let in_trace = |list: &[&Event]| -> Vec<Event> {
            list.iter()
                .filter(|e| e.trace_id == req.trace_id)
                .map(|e| (*e).clone())
                .collect()
        };
        let (t, d) = (in_trace(&transfers), in_trace(&debits));
        assert_eq!(
            (t.len(), d.len()),
            (1, 1),
            "one of each in trace {}",
            req.trace_id
        );
        let (t, d) = (&t[0], &d[0]);
        // Recorded in the request's own flow (the spans closed inside the request).
        assert_eq!(t.metadata.thread_id, req.metadata.thread_id);
        assert_eq!(d.metadata.thread_id, req.metadata.thread_id);
        // Durations: debit slept AWAIT; transfer contains debit.
        assert!(duration(d) >= AWAIT.as_nanos() as u64, "{d:?}");
        assert!(duration(t) >= duration(d), "{t:?} {d:?}");
        let EventKind::FunctionCall {
            module,
            args,
            file,
            line,
            ..
        } = &d.kind
        else {
            unreachable!()
        };
        assert_eq!(&**module, module_path!(), "the span's target");
        assert_eq!(args["amount"], 10, "{args}");
        assert!(args["account"] == 1 || args["account"] == 2, "{args}");
        assert!(file.ends_with("tracing_bridge.rs") && *line > 0, "{file}:{line}");
    }

    // The spawned audit tasks: both of their events (the layer's and the explicit
    // `track_state_change`) are in their request's trace, in a flow of their own.
    for variable in ["audit.log", "audit.count"] {
        let writes: Vec<&Event> = events
            .iter()
            .filter(|e| matches!(&e.kind, EventKind::StateChange { variable: v, .. } if v == variable))
            .collect();
        assert_eq!(writes.len(), 2, "{variable}: {events:#?}");
        for w in writes {
            let req = requests
                .iter()
                .find(|r| r.trace_id == w.trace_id)
                .expect("a request's trace");
            assert_ne!(
                w.metadata.thread_id, req.metadata.thread_id,
                "the task is a flow of its own"
            );
        }
    }
    let stats = rw.stats();
    assert_eq!(stats.core.no_context, 0, "{stats:?}");
    // 2 x (HttpRequest, Read, Write, FunctionCall debit, audit.log, audit.count,
    //      AsyncAwait of the audit task's flow, FunctionCall transfer, HttpResponse)
    assert_eq!(events.len(), 2 * 9, "{events:#?}");
}

#[tokio::test]
async fn outside_any_flow_nothing_is_recorded_and_nothing_panics() {
    let rw = RacewayClient::local("bank");
    let _subscriber = subscribe(&rw);
    debit(7, 1).await;
    tracing::info_span!("outside").in_scope(|| {
        tracing::info!(raceway.variable = "x", raceway.access = "Write", raceway.new = 1);
    });
    let report = rw.races();
    assert_eq!(report.events_observed(), 0, "{report}");
    assert_eq!(
        rw.stats().core.no_context,
        3,
        "the three raceway.variable events are counted"
    );
}

// ---------------------------------------------------------------------------------------
// Races in the local analyser: S1 through `tracing`, next to the same program written
// with `track_state_change`, and S3 (one tracked lock) through `tracing`.

#[tracing::instrument(skip(_rw))]
async fn traced_read_await_write(State(_rw): State<Arc<RacewayClient>>, Path(i): Path<u32>) -> &'static str {
    tracing::info!(
        raceway.variable = "balance",
        raceway.access = "Read",
        raceway.new = 100
    );
    tokio::time::sleep(AWAIT).await;
    tracing::info!(
        raceway.variable = "balance",
        raceway.access = "Write",
        raceway.old = 100,
        raceway.new = 90
    );
    "ok"
}

async fn tracked_read_await_write(State(rw): State<Arc<RacewayClient>>, Path(_i): Path<u32>) -> &'static str {
    rw.track_state_change("balance", None::<i64>, 100, "Read");
    tokio::time::sleep(AWAIT).await;
    rw.track_state_change("balance", Some(100), 90, "Write");
    "ok"
}

/// The unordered pairs of flows racing on `variable`, by their order of first request.
fn racing_pairs(report: &RaceReport, variable: &str) -> BTreeSet<(String, String)> {
    let mut pairs = BTreeSet::new();
    for r in report.races_on(variable) {
        let (a, b) = (r.first.thread_id.to_string(), r.second.thread_id.to_string());
        assert_ne!(a, b, "a flow racing with itself: {r}");
        pairs.insert(if a < b { (a, b) } else { (b, a) });
    }
    pairs
}

async fn four_requests(traced: bool) -> RaceReport {
    let rw = Arc::new(RacewayClient::local("bank"));
    let _subscriber = subscribe(&rw);
    let routes = if traced {
        Router::new().route("/transfer/{i}", post(traced_read_await_write))
    } else {
        Router::new().route("/transfer/{i}", post(tracked_read_await_write))
    };
    let addr = common::serve(with_raceway(routes, &rw, rw.clone())).await;
    fire(addr, (0..4).map(|i| format!("/transfer/{i}")).collect()).await;
    rw.races()
}

#[tokio::test]
async fn s1_raceway_variable_events_race_exactly_as_track_state_change_calls_do() {
    let traced = four_requests(true).await;
    let tracked = four_requests(false).await;

    let pairs = racing_pairs(&traced, "balance");
    assert_eq!(pairs.len(), 6, "{traced}");
    assert_eq!(traced.racing_pairs(), 6, "{traced}");
    assert_eq!(traced.accesses_observed(), 8);
    let flows: BTreeSet<&String> = pairs.iter().flat_map(|(a, b)| [a, b]).collect();
    assert_eq!(flows.len(), 4, "every pair of the 4 request flows");

    // The same verdict as the program written with track_state_change.
    assert_eq!(traced.racing_pairs(), tracked.racing_pairs());
    assert_eq!(
        traced.races_on("balance").count(),
        tracked.races_on("balance").count()
    );
    assert_eq!(traced.accesses_observed(), tracked.accesses_observed());
    assert_eq!(traced.variables(), tracked.variables());
    // One FunctionCall more per request: the handler's span.
    assert_eq!(traced.events_observed(), tracked.events_observed() + 4);
}

#[derive(Clone)]
struct Locked {
    balance: Arc<AsyncTrackedMutex<i64>>,
}

#[tracing::instrument(skip(st))]
async fn traced_locked_read_await_write(State(st): State<Locked>) -> &'static str {
    let mut guard = st.balance.lock().await;
    let v = *guard;
    tracing::info!(
        raceway.variable = "balance",
        raceway.access = "Read",
        raceway.new = v
    );
    tokio::time::sleep(AWAIT).await;
    *guard = v - 10;
    tracing::info!(
        raceway.variable = "balance",
        raceway.access = "Write",
        raceway.old = v,
        raceway.new = v - 10
    );
    drop(guard);
    "ok"
}

#[tokio::test]
async fn s3_raceway_variable_events_under_one_tracked_lock_do_not_race() {
    let rw = Arc::new(RacewayClient::local("bank"));
    let _subscriber = subscribe(&rw);
    let st = Locked {
        balance: Arc::new(AsyncTrackedMutex::new(100, rw.clone(), "balance-lock")),
    };
    let routes = Router::new().route("/transfer", post(traced_locked_read_await_write));
    let addr = common::serve(with_raceway(routes, &rw, st.clone())).await;
    fire(addr, vec!["/transfer".into(); 4]).await;

    let report = rw.races();
    assert!(report.is_empty(), "{report}");
    assert_eq!(report.accesses_observed(), 8);
    // 4 x (HttpRequest, LockAcquire, Read, Write, LockRelease, FunctionCall, HttpResponse)
    assert_eq!(report.events_observed(), 28);
    assert_eq!(
        *st.balance.lock().await,
        60,
        "the lock did serialise the requests"
    );
}

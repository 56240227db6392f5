//! RACES.md S1-S4, S6 and S7 as a user writes them: HTTP requests through the axum
//! middleware (the README's line), real requests on 127.0.0.1, the local analyser. Each
//! scenario is checked against its truth column with exact counts; the controls next to
//! them show that the same program without the ordering (lock, join) does race.

use crate::common;

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::routing::post;
use axum::Router;
use raceway_rt_tokio::{AsyncTrackedMutex, AsyncTrackedRwLock, RaceReport, RacewayClient};

const AWAIT: Duration = Duration::from_millis(50);

/// The router with the Raceway middleware, exactly as the README writes it.
fn with_raceway<S: Clone + Send + Sync + 'static>(
    routes: Router<S>,
    raceway: &Arc<RacewayClient>,
    state: S,
) -> Router {
    routes
        .layer(axum::middleware::from_fn_with_state(
            raceway.clone(),
            RacewayClient::middleware,
        ))
        .with_state(state)
}

/// POSTs every path concurrently, each from its own task; all must answer 200.
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

/// The unordered pairs of flows racing on `variable`, checked to be distinct.
fn racing_pairs(report: &RaceReport, variable: &str) -> BTreeSet<(String, String)> {
    let mut pairs = BTreeSet::new();
    for r in report.races_on(variable) {
        let (a, b) = (r.first.thread_id.to_string(), r.second.thread_id.to_string());
        assert_ne!(a, b, "a flow racing with itself: {r}");
        let pair = if a < b { (a, b) } else { (b, a) };
        assert!(pairs.insert(pair), "pair reported twice: {r}");
    }
    pairs
}

fn flows_in(pairs: &BTreeSet<(String, String)>) -> BTreeSet<String> {
    pairs.iter().flat_map(|(a, b)| [a.clone(), b.clone()]).collect()
}

// ---------------------------------------------------------------------------------------
// S1 and S2: unprotected read-await-write of `balance` by 4 concurrent requests.

async fn read_await_write(State(rw): State<Arc<RacewayClient>>, Path(i): Path<u32>) -> &'static str {
    if i % 2 == 1 {
        // S2: odd requests record two extra events before touching `balance`.
        rw.track_function_call("audit", i);
        rw.track_custom("extra", i);
    }
    rw.track_state_change("balance", None::<i64>, 100, "Read");
    tokio::time::sleep(AWAIT).await;
    rw.track_state_change("balance", Some(100), 90, "Write");
    "ok"
}

/// S1: four requests with even numbers, so none records the extra events.
async fn four_requests_race_pairwise() {
    let rw = Arc::new(RacewayClient::local("bank"));
    let app = with_raceway(
        Router::new().route("/transfer/{i}", post(read_await_write)),
        &rw,
        rw.clone(),
    );
    let addr = common::serve(app).await;
    fire(addr, (0..4).map(|k| format!("/transfer/{}", 2 * k)).collect()).await;

    let report = rw.races();
    let pairs = racing_pairs(&report, "balance");
    assert_eq!(pairs.len(), 6, "{report}");
    assert_eq!(report.racing_pairs(), 6, "{report}");
    assert_eq!(flows_in(&pairs).len(), 4, "every pair of the 4 request flows");
    assert_eq!(report.variables().len(), 1);
    assert_eq!(report.accesses_observed(), 8);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn s1_four_unprotected_requests_race_pairwise_multi_thread() {
    four_requests_race_pairwise().await;
}

#[tokio::test]
async fn s1_four_unprotected_requests_race_pairwise_current_thread() {
    four_requests_race_pairwise().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn s2_extra_events_in_odd_requests_do_not_change_the_count() {
    let rw = Arc::new(RacewayClient::local("bank"));
    let app = with_raceway(
        Router::new().route("/transfer/{i}", post(read_await_write)),
        &rw,
        rw.clone(),
    );
    let addr = common::serve(app).await;
    fire(addr, (0..4).map(|i| format!("/transfer/{i}")).collect()).await;

    let report = rw.races();
    let pairs = racing_pairs(&report, "balance");
    assert_eq!(pairs.len(), 6, "{report}");
    assert_eq!(report.racing_pairs(), 6, "{report}");
    assert_eq!(flows_in(&pairs).len(), 4);
    // 4 requests x (HttpRequest, Read, Write, HttpResponse) + 2 x 2 extra events.
    assert_eq!(report.events_observed(), 4 * 4 + 4);
}

// ---------------------------------------------------------------------------------------
// S3: the same, each request holding one tracked lock around its read and write.

#[derive(Clone)]
struct Locked {
    rw: Arc<RacewayClient>,
    balance: Arc<AsyncTrackedMutex<i64>>,
}

async fn locked_read_await_write(State(st): State<Locked>) -> &'static str {
    let mut guard = st.balance.lock().await;
    let v = *guard;
    st.rw.track_state_change("balance", None::<i64>, v, "Read");
    tokio::time::sleep(AWAIT).await;
    *guard = v - 10;
    st.rw.track_state_change("balance", Some(v), v - 10, "Write");
    drop(guard);
    "ok"
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn s3_requests_holding_one_tracked_lock_do_not_race() {
    let rw = Arc::new(RacewayClient::local("bank"));
    let st = Locked {
        rw: rw.clone(),
        balance: Arc::new(AsyncTrackedMutex::new(100, rw.clone(), "balance-lock")),
    };
    let app = with_raceway(
        Router::new().route("/transfer", post(locked_read_await_write)),
        &rw,
        st.clone(),
    );
    let addr = common::serve(app).await;
    fire(addr, vec!["/transfer".into(); 4]).await;

    let report = rw.races();
    assert!(report.is_empty(), "{report}");
    assert_eq!(report.racing_pairs(), 0);
    assert_eq!(report.accesses_observed(), 8);
    // 4 x (HttpRequest, LockAcquire, Read, Write, LockRelease, HttpResponse)
    assert_eq!(report.events_observed(), 24);
    assert_eq!(
        *st.balance.lock().await,
        60,
        "the lock did serialise the requests"
    );
}

// ---------------------------------------------------------------------------------------
// S4: one request reads then writes `balance` twice.

async fn read_write_twice(State(rw): State<Arc<RacewayClient>>) -> &'static str {
    for v in [100, 90] {
        rw.track_state_change("balance", None::<i64>, v, "Read");
        tokio::time::sleep(Duration::from_millis(5)).await;
        rw.track_state_change("balance", Some(v), v - 10, "Write");
    }
    "ok"
}

#[tokio::test]
async fn s4_one_request_in_program_order_does_not_race_with_itself() {
    let rw = Arc::new(RacewayClient::local("bank"));
    let app = with_raceway(
        Router::new().route("/twice", post(read_write_twice)),
        &rw,
        rw.clone(),
    );
    let addr = common::serve(app).await;
    fire(addr, vec!["/twice".into()]).await;

    let report = rw.races();
    assert!(report.is_empty(), "{report}");
    assert_eq!(report.accesses_observed(), 4);
    assert_eq!(report.events_observed(), 6);
}

// ---------------------------------------------------------------------------------------
// S6: write, spawn a task that writes, join it, read.

async fn spawn_and_join(State(rw): State<Arc<RacewayClient>>, Path(join_first): Path<bool>) -> &'static str {
    rw.track_state_change("cache", None::<i64>, 1, "Write");
    let task_rw = rw.clone();
    let handle = rw.spawn(async move {
        tokio::time::sleep(Duration::from_millis(10)).await;
        task_rw.track_state_change("cache", Some(1), 2, "Write");
    });
    if join_first {
        handle.join().await.unwrap();
        rw.track_state_change("cache", None::<i64>, 2, "Read");
    } else {
        // Control: the read is not ordered after the task's write.
        rw.track_state_change("cache", None::<i64>, 2, "Read");
        handle.join().await.unwrap();
    }
    "ok"
}

async fn s6_report(join_first: bool) -> RaceReport {
    let rw = Arc::new(RacewayClient::local("svc"));
    let app = with_raceway(
        Router::new().route("/spawn/{join_first}", post(spawn_and_join)),
        &rw,
        rw.clone(),
    );
    let addr = common::serve(app).await;
    fire(addr, vec![format!("/spawn/{join_first}")]).await;
    rw.races()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s6_spawn_and_join_order_the_task_between_the_write_and_the_read() {
    let report = s6_report(true).await;
    assert!(report.is_empty(), "{report}");
    assert_eq!(report.accesses_observed(), 3);
    // HttpRequest, Write, AsyncSpawn, (task) Write, AsyncAwait, Read, HttpResponse
    assert_eq!(report.events_observed(), 7);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s6_control_reading_before_the_join_races_with_the_task() {
    let report = s6_report(false).await;
    let pairs = racing_pairs(&report, "cache");
    assert_eq!(pairs.len(), 1, "{report}");
    assert_eq!(report.racing_pairs(), 1);
    let race = report.races_on("cache").next().unwrap();
    let kinds: BTreeSet<String> = [race.first.access_type, race.second.access_type]
        .iter()
        .map(|a| a.to_string())
        .collect();
    assert_eq!(kinds, ["Read", "Write"].into_iter().map(String::from).collect());
}

#[tokio::test]
async fn s6_in_a_current_thread_runtime() {
    let report = s6_report(true).await;
    assert!(report.is_empty(), "{report}");
    let report = s6_report(false).await;
    assert_eq!(report.racing_pairs(), 1, "{report}");
}

// ---------------------------------------------------------------------------------------
// S7: readers under a tracked read lock, a writer under the same lock as write lock.

#[derive(Clone)]
struct Configured {
    rw: Arc<RacewayClient>,
    config: Arc<AsyncTrackedRwLock<i64>>,
}

async fn read_config(State(st): State<Configured>) -> &'static str {
    let guard = st.config.read().await;
    st.rw.track_state_change("config", None::<i64>, *guard, "Read");
    tokio::time::sleep(AWAIT).await;
    drop(guard);
    "ok"
}

async fn write_config(State(st): State<Configured>, Path(locked): Path<bool>) -> &'static str {
    if locked {
        let mut guard = st.config.write().await;
        *guard += 1;
        st.rw
            .track_state_change("config", Some(*guard - 1), *guard, "Write");
    } else {
        st.rw.track_state_change("config", Some(0), 1, "Write");
    }
    "ok"
}

async fn s7_report(writer_locks: bool) -> RaceReport {
    let rw = Arc::new(RacewayClient::local("svc"));
    let st = Configured {
        rw: rw.clone(),
        config: Arc::new(AsyncTrackedRwLock::new(0, rw.clone(), "config-lock")),
    };
    let app = with_raceway(
        Router::new()
            .route("/read", post(read_config))
            .route("/write/{locked}", post(write_config)),
        &rw,
        st,
    );
    let addr = common::serve(app).await;
    let mut paths: Vec<String> = vec!["/read".into(); 3];
    paths.insert(1, format!("/write/{writer_locks}"));
    fire(addr, paths).await;
    rw.races()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn s7_readers_and_a_writer_under_one_rwlock_do_not_race() {
    let report = s7_report(true).await;
    assert!(report.is_empty(), "{report}");
    assert_eq!(report.accesses_observed(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn s7_control_a_writer_without_the_lock_races_with_every_reader() {
    let report = s7_report(false).await;
    let pairs = racing_pairs(&report, "config");
    assert_eq!(pairs.len(), 3, "{report}");
    assert_eq!(report.racing_pairs(), 3);
    assert_eq!(flows_in(&pairs).len(), 4);
}

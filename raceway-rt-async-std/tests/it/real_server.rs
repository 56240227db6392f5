//! RACES.md on the real Raceway server, with the async-std client: requests served with
//! `serve_request` on async-std tasks (S1, S3, S4), a forked and joined future (S6), and a
//! call-and-return between two services in one process through `serve_request` with the
//! propagation headers (S5a). Each scenario runs on a fresh real server, 5 times, and the
//! server's race report is compared with the truth column exactly.
//!
//! Without the server binary every test prints one line and passes; under CI
//! (`RACEWAY_REQUIRE_SERVER=1`) it fails.

use std::time::Duration;

use async_std::task;
use raceway_rt_async_std::{AsyncTrackedMutex, Config, RacewayClient};
use raceway_testkit::{RacePairs, RealServer};

const REPEAT: usize = 5;

fn client(server: &RealServer, service: &str) -> RacewayClient {
    let mut config = Config::new(service);
    config.endpoint = Some(server.url());
    config.instance_id = Some("test".into());
    config.export.flush_interval = Duration::from_millis(50);
    RacewayClient::from_config(config).expect("config")
}

async fn verdict(server: &RealServer, clients: &[&RacewayClient]) -> RacePairs {
    let mut recorded = 0;
    for c in clients {
        c.flush(Duration::from_secs(10)).await.expect("flush");
        let s = c.stats();
        assert_eq!(s.export.dropped(), 0, "{s:?}");
        recorded += s.core.recorded;
    }
    server.race_pairs_after(recorded)
}

async fn four_requests(rw: &RacewayClient, lock: Option<AsyncTrackedMutex<i64>>) {
    let lock = std::sync::Arc::new(lock);
    let mut requests = Vec::new();
    for _ in 0..4 {
        let (rw, lock) = (rw.clone(), lock.clone());
        requests.push(task::spawn(async move {
            rw.serve_request([], "POST", "/transfer", async {
                let guard = match lock.as_ref() {
                    Some(l) => Some(l.lock().await),
                    None => None,
                };
                rw.track_state_change("balance", None::<i64>, 100, "Read");
                task::sleep(Duration::from_millis(20)).await;
                rw.track_state_change("balance", Some(100), 90, "Write");
                drop(guard);
                200u16
            })
            .await
        }));
    }
    for r in requests {
        assert_eq!(r.await.0, 200);
    }
}

#[async_std::test]
async fn s1_four_unlocked_requests_race_pairwise() {
    for _ in 0..REPEAT {
        let Some(server) = RealServer::start_default() else {
            return;
        };
        let rw = client(&server, "bank");
        four_requests(&rw, None).await;
        let pairs = verdict(&server, &[&rw]).await;
        assert_eq!(pairs.count("balance"), 6, "{pairs}");
        assert_eq!(pairs.total(), 6, "{pairs}");
    }
}

#[async_std::test]
async fn s3_requests_holding_one_tracked_lock_do_not_race() {
    for _ in 0..REPEAT {
        let Some(server) = RealServer::start_default() else {
            return;
        };
        let rw = client(&server, "bank");
        let lock = AsyncTrackedMutex::new(100, std::sync::Arc::new(rw.clone()), "balance-lock");
        four_requests(&rw, Some(lock)).await;
        let pairs = verdict(&server, &[&rw]).await;
        assert!(pairs.is_empty(), "{pairs}");
    }
}

#[async_std::test]
async fn s4_and_s6_program_order_and_fork_join_do_not_race() {
    for _ in 0..REPEAT {
        let Some(server) = RealServer::start_default() else {
            return;
        };
        let rw = client(&server, "cache");
        rw.in_new_trace(async {
            rw.track_state_change("cache", None::<i64>, 1, "Read");
            rw.track_state_change("cache", Some(1), 2, "Write");
            let child = rw.instrument(async { rw.track_state_change("cache", Some(2), 3, "Write") });
            let ((), end) = child.await;
            rw.join_flow(&end.expect("the child ran in a flow"));
            rw.track_state_change("cache", None::<i64>, 3, "Read");
        })
        .await;
        let pairs = verdict(&server, &[&rw]).await;
        assert!(pairs.is_empty(), "{pairs}");
    }
}

#[async_std::test]
async fn s5a_call_and_return_between_two_services_does_not_race() {
    for _ in 0..REPEAT {
        let Some(server) = RealServer::start_default() else {
            return;
        };
        let a = client(&server, "svc-a");
        let b = client(&server, "svc-b");
        a.in_new_trace(async {
            a.track_state_change("total", Some(0), 10, "Write");
            let headers = a.propagation_headers(None).expect("in a flow");
            // Service B, serving the call with the headers A sent.
            let pairs: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            let (status, clock) = b
                .serve_request(pairs, "POST", "/total", async {
                    b.track_state_change("total", None::<i64>, 10, "Read");
                    b.track_state_change("total", Some(10), 11, "Write");
                    200u16
                })
                .await;
            assert_eq!(status, 200);
            let clock = clock.expect("B answers with its clock");
            assert!(a.merge_response_headers([("raceway-clock", clock.as_str())]));
            a.track_state_change("total", None::<i64>, 11, "Read");
        })
        .await;
        let pairs = verdict(&server, &[&a, &b]).await;
        assert!(pairs.is_empty(), "{pairs}");
    }
}

//! The race scenarios of RACES.md with a known answer (S1, S3, S5a, S6), written as a user
//! would write them, on async-std, with a real local collector on 127.0.0.1: every client
//! exports there and also feeds the local analyser, whose `races()` is checked against the
//! truth column; each test also checks that the collector received every event.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_std::task;
use raceway_rt_async_std::{AsyncTrackedMutex, Config, RacewayClient};
use raceway_testkit::Collector;

/// A client exporting to a fresh local collector, with the local analyser on as well.
fn client(service: &str) -> (RacewayClient, Collector) {
    let collector = Collector::start();
    let mut config = Config::new(service);
    config.endpoint = Some(collector.url());
    config.local_analysis = true;
    config.export.flush_interval = Duration::from_millis(50);
    (
        RacewayClient::from_config(config).expect("valid config"),
        collector,
    )
}

/// Every recorded event reached the collector.
fn delivered(rw: &RacewayClient, collector: &Collector) {
    rw.flush_blocking(Duration::from_secs(10)).expect("flushed");
    let recorded = rw.stats().core.recorded;
    assert!(recorded > 0);
    assert_eq!(collector.event_count() as u64, recorded);
}

/// S1: 4 concurrent requests each read `balance`, await, write `balance`; no lock.
#[async_std::test]
async fn s1_four_unlocked_requests_race_pairwise() {
    let (rw, collector) = client("bank");
    let mut requests = Vec::new();
    for _ in 0..4 {
        let rw = rw.clone();
        requests.push(task::spawn(async move {
            rw.serve_request([], "POST", "/transfer", async {
                rw.track_state_change("balance", None::<i64>, 100, "Read");
                task::sleep(Duration::from_millis(20)).await;
                rw.track_state_change("balance", Some(100), 90, "Write");
                200u16
            })
            .await
        }));
    }
    for r in requests {
        assert_eq!(r.await.0, 200);
    }
    let report = rw.races();
    println!("{report}");
    assert_eq!(report.races_on("balance").count(), 6);
    assert_eq!(report.racing_pairs(), 6);
    delivered(&rw, &collector);
    rw.shutdown();
}

/// S3: like S1, but each request holds one tracked async lock around its read and write.
#[async_std::test]
async fn s3_one_tracked_lock_means_no_race() {
    let (rw, collector) = client("bank");
    let rw = Arc::new(rw);
    let balance = Arc::new(AsyncTrackedMutex::new(100_i64, rw.clone(), "balance-lock"));
    let mut requests = Vec::new();
    for _ in 0..4 {
        let (rw, balance) = (rw.clone(), balance.clone());
        requests.push(task::spawn(async move {
            rw.serve_request([], "POST", "/transfer", async {
                let mut guard = balance.lock().await;
                rw.track_state_change("balance", None::<i64>, *guard, "Read");
                task::sleep(Duration::from_millis(20)).await;
                *guard -= 10;
                rw.track_state_change("balance", Some(*guard + 10), *guard, "Write");
                200u16
            })
            .await
        }));
    }
    for r in requests {
        r.await;
    }
    let report = rw.races();
    println!("{report}");
    assert_eq!(report.racing_pairs(), 0);
    assert!(report.accesses_observed() >= 8);
    delivered(&rw, &collector);
    rw.shutdown();
}

/// S5a: service A writes `total`, calls service B with propagated headers, B reads and
/// writes `total`, A reads `total` after B answered (the HTTP hop simulated in-process:
/// A's headers go to B's `serve_request`, B's `raceway-clock` back to A). No race.
#[async_std::test]
async fn s5a_call_and_return_across_services_does_not_race() {
    // One analyser sees both services' events, as the server would.
    let (rw, collector) = client("shop");
    let a = rw.clone();
    let b = rw.clone();
    let (status, _) = a
        .serve_request([], "POST", "/checkout", async {
            a.track_state_change("total", None::<i64>, 10, "Write");
            let headers: HashMap<String, String> = a.propagation_headers(None).expect("in a flow");
            // "Service B" serves the call on another task.
            let reply_clock = task::spawn({
                let b = b.clone();
                async move {
                    let pairs: Vec<(&str, &str)> =
                        headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
                    let (_, clock) = b
                        .serve_request(pairs, "POST", "/reserve", async {
                            b.track_state_change("total", None::<i64>, 10, "Read");
                            task::sleep(Duration::from_millis(10)).await;
                            b.track_state_change("total", Some(10), 20, "Write");
                            200u16
                        })
                        .await;
                    clock.expect("B answers a propagated call with its clock")
                }
            })
            .await;
            assert!(a.merge_response_headers([("raceway-clock", reply_clock.as_str())]));
            a.track_state_change("total", None::<i64>, 20, "Read");
            200u16
        })
        .await;
    assert_eq!(status, 200);
    let report = rw.races();
    println!("{report}");
    assert_eq!(report.accesses_observed(), 4);
    assert_eq!(report.racing_pairs(), 0);
    delivered(&rw, &collector);
}

/// S6: a request writes `cache`, spawns a task (context carried over) that writes `cache`,
/// awaits the join handle, then reads `cache`. No race.
#[async_std::test]
async fn s6_spawn_and_join_order_the_task() {
    let (rw, collector) = client("svc");
    rw.serve_request([], "GET", "/warm", async {
        rw.track_state_change("cache", None::<&str>, "a", "Write");
        let worker = rw.spawn({
            let rw = rw.clone();
            async move {
                task::sleep(Duration::from_millis(5)).await;
                rw.track_state_change("cache", Some("a"), "b", "Write");
                7
            }
        });
        assert_eq!(worker.join().await, 7);
        rw.track_state_change("cache", None::<&str>, "b", "Read");
        200u16
    })
    .await;
    let report = rw.races();
    println!("{report}");
    assert_eq!(report.accesses_observed(), 3);
    assert_eq!(report.racing_pairs(), 0);
    delivered(&rw, &collector);
}

/// The control for S6: the same program without the join races (1 pair on `cache`).
#[async_std::test]
async fn s6_control_without_join_races() {
    let (rw, collector) = client("svc");
    let (tx, rx) = futures::channel::oneshot::channel();
    rw.serve_request([], "GET", "/warm", async {
        rw.track_state_change("cache", None::<&str>, "a", "Write");
        let worker = rw.spawn({
            let rw = rw.clone();
            async move {
                rw.track_state_change("cache", Some("a"), "b", "Write");
                let _ = tx.send(());
            }
        });
        let _ = rx.await; // ordered in time, not by a join: still a race
        rw.track_state_change("cache", None::<&str>, "b", "Read");
        drop(worker);
        200u16
    })
    .await;
    assert_eq!(rw.races().races_on("cache").count(), 1);
    delivered(&rw, &collector);
}

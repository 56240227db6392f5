//! RACES.md on the real Raceway server, with the async-std client: requests served with
//! `serve_request` on async-std tasks (S1, S2, S3, S4, S7), a forked and joined future (S6),
//! a call-and-return between two services in one process through `serve_request` with the
//! propagation headers (S5a), and S5a and S5b again over real HTTP on 127.0.0.1 (service B
//! a hyper 1 server on async-std serving with `serve_http`). Each scenario runs on a fresh
//! real server, 5 times, and the server's race report is compared with the truth column
//! exactly. S8 is a threaded program (two OS threads and an atomic): it is
//! raceway-blocking's scenario, not an async one.
//!
//! Without the server binary every test prints one line and passes; under CI
//! (`RACEWAY_REQUIRE_SERVER=1`) it fails.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use async_std::task;
use bytes::Bytes;
use http_body_util::Full;
use raceway_rt_async_std::{AsyncTrackedMutex, AsyncTrackedRwLock, Config, RacewayClient};
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

// S2 ------------------------------------------------------------------------------------

#[async_std::test]
async fn s2_odd_requests_record_more_events_first_still_six_pairs() {
    for _ in 0..REPEAT {
        let Some(server) = RealServer::start_default() else {
            return;
        };
        let rw = client(&server, "bank");
        let requests: Vec<_> = (0..4u32)
            .map(|i| {
                let rw = rw.clone();
                task::spawn(async move {
                    rw.serve_request([], "POST", "/transfer", async {
                        if i % 2 == 1 {
                            rw.track_function_call("audit", i);
                            rw.track_custom("extra", i);
                        }
                        rw.track_state_change("balance", None::<i64>, 100, "Read");
                        task::sleep(Duration::from_millis(20)).await;
                        rw.track_state_change("balance", Some(100), 90, "Write");
                        200u16
                    })
                    .await
                })
            })
            .collect();
        for r in requests {
            assert_eq!(r.await.0, 200);
        }
        let pairs = verdict(&server, &[&rw]).await;
        assert_eq!(pairs.count("balance"), 6, "{pairs}");
        assert_eq!(pairs.flows("balance").len(), 4, "{pairs}");
        assert_eq!(pairs.total(), 6, "{pairs}");
    }
}

// S7 ------------------------------------------------------------------------------------

#[async_std::test]
async fn s7_readers_and_a_writer_under_one_async_rwlock_do_not_race() {
    for _ in 0..REPEAT {
        let Some(server) = RealServer::start_default() else {
            return;
        };
        let rw = client(&server, "config");
        let lock = Arc::new(AsyncTrackedRwLock::new(1u32, Arc::new(rw.clone()), "config-lock"));
        let mut requests = Vec::new();
        for i in 0..4 {
            let (rw, lock) = (rw.clone(), lock.clone());
            requests.push(task::spawn(async move {
                let path = if i < 3 { "/read" } else { "/write" };
                rw.serve_request([], "POST", path, async {
                    if i < 3 {
                        let guard = lock.read().await;
                        rw.track_state_change("config", None::<u32>, *guard, "Read");
                        task::sleep(Duration::from_millis(20)).await;
                    } else {
                        let mut guard = lock.write().await;
                        *guard += 1;
                        rw.track_state_change("config", Some(*guard - 1), *guard, "Write");
                    }
                    200u16
                })
                .await
            }));
        }
        for r in requests {
            assert_eq!(r.await.0, 200);
        }
        let pairs = verdict(&server, &[&rw]).await;
        assert!(pairs.is_empty(), "{pairs}");
    }
}

// S5a and S5b over HTTP: service B is hyper 1 on async-std with `serve_http` ------------------

/// Service B: a hyper 1 server on async-std (smol-hyper's futures-io adapter), each request
/// served with `serve_http` (which adds `raceway-clock` to the answer). `/total` (S5a)
/// reads and writes `total`; `/stock` (S5b) reads `stock`, awaits, writes it. Returns the
/// address and the accept loop's task (cancel it to stop).
fn start_service_b(b: RacewayClient) -> (SocketAddr, task::JoinHandle<()>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let listener = async_std::net::TcpListener::from(listener);
    let accept = task::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let b = b.clone();
            task::spawn(async move {
                let service =
                    hyper::service::service_fn(move |request: http::Request<hyper::body::Incoming>| {
                        let b = b.clone();
                        async move {
                            let rw = b.clone();
                            b.serve_http(request, |request| async move {
                                match request.uri().path() {
                                    "/total" => {
                                        rw.track_state_change("total", None::<i64>, 10, "Read");
                                        rw.track_state_change("total", Some(10), 11, "Write");
                                    }
                                    _ => {
                                        rw.track_state_change("stock", None::<i64>, 5, "Read");
                                        task::sleep(Duration::from_millis(30)).await;
                                        rw.track_state_change("stock", Some(5), 4, "Write");
                                    }
                                }
                                Ok::<_, Infallible>(http::Response::new(Full::new(Bytes::from_static(b"ok"))))
                            })
                            .await
                        }
                    });
                let io = smol_hyper::rt::FuturesIo::new(stream);
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(io, service)
                    .await;
            });
        }
    });
    (addr, accept)
}

/// POSTs `url` with `headers` (ureq, on a blocking thread); returns the status and B's
/// `raceway-clock`.
async fn post(url: String, headers: HashMap<String, String>) -> (u16, Option<String>) {
    task::spawn_blocking(move || {
        let mut request = ureq::post(&url);
        for (k, v) in &headers {
            request = request.header(k.as_str(), v.as_str());
        }
        let response = request.send_empty().expect("B answers");
        let clock = response
            .headers()
            .get("raceway-clock")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        (response.status().as_u16(), clock)
    })
    .await
}

fn merge(a: &RacewayClient, (status, clock): (u16, Option<String>)) {
    assert_eq!(status, 200);
    let clock = clock.expect("B answers a propagated call with raceway-clock");
    assert!(a.merge_response_headers([("raceway-clock", clock.as_str())]));
}

#[async_std::test]
async fn s5a_call_and_return_over_http_with_serve_http_does_not_race() {
    for _ in 0..REPEAT {
        let Some(server) = RealServer::start_default() else {
            return;
        };
        let (a, b) = (client(&server, "svc-a"), client(&server, "svc-b"));
        let (addr, accept) = start_service_b(b.clone());
        a.in_new_trace(async {
            a.track_state_change("total", Some(0), 10, "Write");
            // Sends A's pending events first (causal delivery), then the headers.
            let headers = a.propagation_headers(None).expect("in a flow");
            merge(&a, post(format!("http://{addr}/total"), headers).await);
            a.track_state_change("total", None::<i64>, 11, "Read");
        })
        .await;
        accept.cancel().await;
        let pairs = verdict(&server, &[&a, &b]).await;
        assert!(pairs.is_empty(), "{pairs}");
    }
}

#[async_std::test]
async fn s5b_two_parallel_calls_to_one_handler_race_between_the_two_b_flows() {
    for _ in 0..REPEAT {
        let Some(server) = RealServer::start_default() else {
            return;
        };
        let (a, b) = (client(&server, "svc-a"), client(&server, "svc-b"));
        let (addr, accept) = start_service_b(b.clone());
        a.in_new_trace(async {
            // Two outgoing calls of one flow, in flight together.
            let url = format!("http://{addr}/stock");
            let first = a.propagation_headers(None).expect("in a flow");
            let second = a.propagation_headers(None).expect("in a flow");
            let (r1, r2) = futures::future::join(post(url.clone(), first), post(url, second)).await;
            merge(&a, r1);
            merge(&a, r2);
        })
        .await;
        accept.cancel().await;
        let pairs = verdict(&server, &[&a, &b]).await;
        assert_eq!(pairs.count("stock"), 1, "{pairs}");
        let flows = pairs.flows("stock");
        assert_eq!(flows.len(), 2, "{pairs}");
        assert!(flows.iter().all(|f| f.starts_with("svc-b#")), "{pairs}");
        assert_eq!(pairs.total(), 1, "{pairs}");
    }
}

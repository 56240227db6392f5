//! S5a over real HTTP: service B is a hyper 1 server on async-std (through smol-hyper's
//! futures-io adapter) wrapped with `RacewayClient::hyper_service`; service A calls it with
//! its propagation headers and merges B's `raceway-clock` answer. Both services export to
//! one real local collector, and the analyser runs over what the collector ingested.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use async_std::net::TcpListener;
use async_std::task;
use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use raceway_proto::Analyzer;
use raceway_rt_async_std::RacewayClient;
use raceway_testkit::Collector;

async fn start_service_b(b: RacewayClient) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    task::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let b = b.clone();
            task::spawn(async move {
                let handler = {
                    let b = b.clone();
                    service_fn(move |_req: http::Request<hyper::body::Incoming>| {
                        let b = b.clone();
                        async move {
                            b.track_state_change("total", None::<i64>, 10, "Read");
                            task::sleep(Duration::from_millis(10)).await;
                            b.track_state_change("total", Some(10), 20, "Write");
                            Ok::<_, Infallible>(http::Response::new(Full::new(Bytes::from_static(b"ok"))))
                        }
                    })
                };
                let io = smol_hyper::rt::FuturesIo::new(stream);
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(io, b.hyper_service(handler))
                    .await;
            });
        }
    });
    addr
}

#[async_std::test]
async fn s5a_over_http_with_hyper_on_async_std() {
    let collector = Collector::start();
    let a = RacewayClient::new(&collector.url(), "svc-a");
    let b = RacewayClient::new(&collector.url(), "svc-b");
    let addr = start_service_b(b.clone()).await;

    a.in_new_trace(async {
        a.track_state_change("total", None::<i64>, 10, "Write");
        let headers = a.propagation_headers(None).expect("in a flow");
        let url = format!("http://{addr}/reserve");
        let (status, clock) = task::spawn_blocking(move || {
            let mut req = ureq::post(&url);
            for (k, v) in &headers {
                req = req.header(k.as_str(), v.as_str());
            }
            let resp = req.send_empty().expect("B answers");
            let clock = resp
                .headers()
                .get("raceway-clock")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            (resp.status().as_u16(), clock)
        })
        .await;
        assert_eq!(status, 200);
        let clock = clock.expect("B answers a propagated call with raceway-clock");
        assert!(a.merge_response_headers([("raceway-clock", clock.as_str())]));
        a.track_state_change("total", None::<i64>, 20, "Read");
    })
    .await;

    a.shutdown_async(Duration::from_secs(5)).await.expect("A drained");
    b.shutdown_async(Duration::from_secs(5)).await.expect("B drained");
    let events = collector.events();
    // A: 2 accesses; B: request, 2 accesses, response.
    assert_eq!(events.len(), 6, "{events:#?}");
    let b_events: Vec<_> = events
        .iter()
        .filter(|e| &*e.metadata.service_name == "svc-b")
        .collect();
    let a_events: Vec<_> = events
        .iter()
        .filter(|e| &*e.metadata.service_name == "svc-a")
        .collect();
    assert_eq!(b_events.len(), 4);
    assert!(
        b_events.iter().all(|e| e.trace_id == a_events[0].trace_id),
        "B continued A's trace"
    );
    let mut analyzer = Analyzer::new();
    analyzer.observe_all(&events);
    let report = analyzer.report();
    assert_eq!(report.accesses_observed(), 4);
    assert_eq!(report.racing_pairs(), 0, "{report}");
}

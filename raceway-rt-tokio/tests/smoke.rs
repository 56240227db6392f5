//! Smoke test: S1 through real HTTP and the axum middleware, local analyser.

use std::sync::Arc;
use std::time::Duration;

use axum::{extract::State, routing::post, Router};
use raceway_rt_tokio::RacewayClient;

async fn racy(State(rw): State<Arc<RacewayClient>>) -> &'static str {
    rw.track_state_change("balance", None::<i64>, 100, "Read");
    tokio::time::sleep(Duration::from_millis(50)).await;
    rw.track_state_change("balance", Some(100), 90, "Write");
    "ok"
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s1_four_concurrent_requests_race_pairwise() {
    let rw = Arc::new(RacewayClient::local("bank"));
    let app = Router::new()
        .route("/racy", post(racy))
        .layer(axum::middleware::from_fn_with_state(
            rw.clone(),
            RacewayClient::middleware,
        ))
        .with_state(rw.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let mut tasks = Vec::new();
    for _ in 0..4 {
        tasks.push(tokio::task::spawn_blocking(move || {
            let mut s = std::net::TcpStream::connect(addr).unwrap();
            use std::io::{Read, Write};
            s.write_all(b"POST /racy HTTP/1.1\r\nhost: x\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                .unwrap();
            let mut out = String::new();
            s.read_to_string(&mut out).unwrap();
            out
        }));
    }
    for t in tasks {
        assert!(t.await.unwrap().starts_with("HTTP/1.1 200"));
    }
    let report = rw.races();
    println!("{report}");
    assert_eq!(report.races_on("balance").count(), 6);
}

//! Helpers shared by the integration tests: short-timed configs, an axum server on
//! 127.0.0.1 and a plain hyper client to call it.
#![allow(dead_code)]

use std::collections::{BTreeSet, HashMap};
use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use raceway_proto::Event;
use raceway_rt_tokio::{Config, RacewayClient};

/// A config sending to `endpoint` with every timing shortened, so a test takes
/// milliseconds rather than seconds.
pub fn fast_config(service: &str, endpoint: &str) -> Config {
    let mut c = Config::new(service);
    c.endpoint = Some(endpoint.to_string());
    c.instance_id = Some("test".into());
    c.export.flush_interval = Duration::from_millis(50);
    c.export.initial_backoff = Duration::from_millis(50);
    c.export.max_backoff = Duration::from_millis(200);
    c.request_timeout = Duration::from_secs(5);
    c.connect_timeout = Duration::from_millis(500);
    c.shutdown_timeout = Duration::from_secs(5);
    c
}

/// `fast_config` whose exporter sends only when asked (flush, shutdown, propagation) or
/// when a batch is full: for tests that count the POSTs, which a flush interval firing in
/// the middle of the recording (a slow, loaded test machine) would split.
pub fn quiet_config(service: &str, endpoint: &str) -> Config {
    let mut c = fast_config(service, endpoint);
    c.export.flush_interval = Duration::from_secs(3600);
    c
}

/// A client for `quiet_config(service, endpoint)`.
pub fn quiet_client(service: &str, endpoint: &str) -> RacewayClient {
    RacewayClient::from_config(quiet_config(service, endpoint)).expect("valid config")
}

/// A client for `fast_config(service, endpoint)`.
pub fn fast_client(service: &str, endpoint: &str) -> RacewayClient {
    RacewayClient::from_config(fast_config(service, endpoint)).expect("valid config")
}

/// Records `n` writes of `variable` (values `0..n`) in a new trace.
pub async fn record_writes(client: &RacewayClient, variable: &str, n: usize) {
    client
        .in_new_trace(async {
            for i in 0..n {
                client.track_state_change(variable, None::<u64>, i as u64, "Write");
            }
        })
        .await;
}

/// Serves `app` on a fresh port of 127.0.0.1 (on the current runtime).
pub async fn serve(app: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        axum::serve(listener, app).await.expect("serve");
    });
    addr
}

pub type HttpClient = Client<HttpConnector, Full<Bytes>>;

/// A plain hyper 1 client (http1, pooled).
pub fn http_client() -> HttpClient {
    Client::builder(TokioExecutor::new()).build(HttpConnector::new())
}

/// A POST request to `url` with `headers` and an empty body.
pub fn post_request(url: &str, headers: &HashMap<String, String>) -> Request<Full<Bytes>> {
    let mut req = Request::builder()
        .method(Method::POST)
        .uri(url)
        .body(Full::new(Bytes::new()))
        .expect("request");
    for (k, v) in headers {
        req.headers_mut().insert(
            HeaderName::from_bytes(k.as_bytes()).expect("header name"),
            HeaderValue::from_str(v).expect("header value"),
        );
    }
    req
}

/// POSTs to `url` with `headers`; returns the status, the response headers and the body.
pub async fn post(
    client: &HttpClient,
    url: &str,
    headers: &HashMap<String, String>,
) -> (StatusCode, HeaderMap, Bytes) {
    let resp = client.request(post_request(url, headers)).await.expect("request");
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = resp.into_body().collect().await.expect("body").to_bytes();
    (status, headers, body)
}

/// The distinct event ids of `events`; panics on a duplicate.
pub fn unique_ids(events: &[Event]) -> BTreeSet<String> {
    let mut ids = BTreeSet::new();
    for e in events {
        assert!(ids.insert(e.id.to_string()), "event {} arrived twice", e.id);
    }
    ids
}

/// The `new_value`s of the `StateChange` events of `events` on `variable`, as u64s, sorted.
pub fn written_values(events: &[Event], variable: &str) -> Vec<u64> {
    let mut out: Vec<u64> = events
        .iter()
        .filter_map(|e| match &e.kind {
            raceway_proto::EventKind::StateChange {
                variable: v,
                new_value,
                ..
            } if v.as_str() == variable => new_value.as_u64(),
            _ => None,
        })
        .collect();
    out.sort_unstable();
    out
}

/// A client of the real server `server` for `service`, with `fast_config`.
pub fn real_client(server: &raceway_testkit::RealServer, service: &str) -> std::sync::Arc<RacewayClient> {
    let config = fast_config(service, &server.url());
    std::sync::Arc::new(RacewayClient::from_config(config).expect("config"))
}

/// Flushes every client (none may have dropped anything), waits until the real server holds
/// every event they recorded, and returns its race pairs.
pub async fn real_verdict(
    server: &raceway_testkit::RealServer,
    clients: &[&std::sync::Arc<RacewayClient>],
) -> raceway_testkit::RacePairs {
    let mut recorded = 0;
    for c in clients {
        c.flush(Duration::from_secs(10)).await.expect("flush");
        let s = c.stats();
        assert_eq!(s.export.dropped(), 0, "{s:?}");
        recorded += s.core.recorded;
    }
    server.race_pairs_after(recorded)
}

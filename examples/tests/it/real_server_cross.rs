//! RACES.md's two cross-service scenarios on the real Raceway server, across clients: a
//! tokio gateway (axum, with the README's middleware line) calls, over real HTTP on
//! 127.0.0.1, (a) a threaded service (`raceway-blocking`, a std::net server with a thread
//! per connection, each request served with `handle_request`) and (b) an async-std service
//! (hyper 1 on async-std through smol-hyper, each request served through `hyper_service`).
//! The gateway's HTTP client is wrapped in `propagate_layer()`: it injects the headers,
//! sends the gateway's pending events first, and merges the callee's `raceway-clock` back.
//!
//! - S5a: the gateway writes `total`, calls the service, which reads and writes `total`,
//!   and reads `total` after the answer: **no race**.
//! - S5b: the gateway calls the same handler twice in parallel (`tokio::join!`); it reads
//!   `stock`, waits, writes `stock`: **one pair**, between the two downstream flows.
//!
//! Each run is on a fresh server (arrival order varies), [`REPEAT`] times; the server's
//! `/api/analyze/global` is compared with the truth, pair by pair. Without the server
//! binary every test prints one line and passes; under CI (`RACEWAY_REQUIRE_SERVER=1`)
//! it fails.

use std::convert::Infallible;
use std::future::IntoFuture;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::routing::post;
use axum::Router;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use raceway_examples::http_client::{self, HttpClient};
use raceway_proto::config::Config;
use raceway_rt_tokio::{PropagateService, RacewayClient};
use raceway_testkit::{RacePairs, RealServer};
use tower::{Layer, ServiceExt};

/// Runs of each scenario, each on a fresh server.
const REPEAT: usize = 5;
const AWAIT: Duration = Duration::from_millis(30);

fn config(server: &RealServer, service: &str) -> Config {
    let mut c = Config::new(service);
    c.endpoint = Some(server.url());
    c.instance_id = Some("test".into());
    c.export.flush_interval = Duration::from_millis(50);
    c
}

// -- the downstream services' handlers --------------------------------------------------------

/// What the downstream handler does on `path`, with any client's core: `/total` (S5a)
/// reads and writes `total`; `/stock` (S5b) reads `stock`, then (after `wait`) writes it.
fn touch<S: raceway_proto::boundary::ContextStore>(
    rw: &raceway_proto::client::ClientCore<S>,
    path: &str,
    first: bool,
) -> bool {
    match (path, first) {
        ("/total", true) => {
            rw.track_state_change("total", None::<i64>, 10, "Read");
            rw.track_state_change("total", Some(10), 11, "Write");
            false
        }
        ("/stock", true) => {
            rw.track_state_change("stock", None::<i64>, 5, "Read");
            true // wait, then the second half
        }
        ("/stock", false) => {
            rw.track_state_change("stock", Some(5), 4, "Write");
            false
        }
        _ => false,
    }
}

// -- (a) the threaded service: std::net, raceway-blocking -----------------------------------

/// A threaded HTTP/1.1 server on 127.0.0.1: a thread per connection, one request per
/// connection, each served with `handle_request`, its `raceway-clock` on the response.
struct ThreadedService {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    accept: Option<std::thread::JoinHandle<()>>,
}

impl ThreadedService {
    fn start(rw: raceway_blocking::RacewayClient) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let accept = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stopping.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(stream) = stream else { continue };
                let rw = rw.clone();
                std::thread::spawn(move || {
                    let _ = serve_connection(stream, &rw);
                });
            }
        });
        Self {
            addr,
            stop,
            accept: Some(accept),
        }
    }
}

impl Drop for ThreadedService {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr); // wakes the accept loop
        if let Some(t) = self.accept.take() {
            let _ = t.join();
        }
    }
}

fn serve_connection(stream: TcpStream, rw: &raceway_blocking::RacewayClient) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut first = String::new();
    reader.read_line(&mut first)?;
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            break;
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    let length = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse::<u64>().ok())
        .unwrap_or(0);
    std::io::copy(&mut reader.by_ref().take(length), &mut std::io::sink())?;
    let mut parts = first.split_whitespace();
    let (method, path) = (parts.next().unwrap_or("GET"), parts.next().unwrap_or("/"));
    let pairs = headers.iter().map(|(k, v)| (k.as_str(), v.as_str()));
    let answer = rw.handle_request(method, path, pairs, || {
        if touch(rw, path, true) {
            std::thread::sleep(AWAIT);
            touch(rw, path, false);
        }
        (200, "ok")
    });
    let mut out = format!(
        "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n",
        answer.body.len()
    );
    for (name, value) in answer.response_headers() {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    out.push_str("\r\n");
    out.push_str(answer.body);
    let mut stream = stream;
    stream.write_all(out.as_bytes())?;
    stream.flush()
}

// -- (b) the async-std service: hyper 1 on async-std, raceway-rt-async-std ------------------

/// The accept loop runs as an async-std task (async-std's own executor, whatever runtime
/// started it); cancel it to stop.
struct AsyncStdService {
    addr: SocketAddr,
    accept: async_std::task::JoinHandle<()>,
}

impl AsyncStdService {
    fn start(rw: raceway_rt_async_std::RacewayClient) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let listener = async_std::net::TcpListener::from(listener);
        let accept = async_std::task::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let handler = {
                    let rw = rw.clone();
                    hyper::service::service_fn(move |request: http::Request<hyper::body::Incoming>| {
                        let rw = rw.clone();
                        async move {
                            let path = request.uri().path();
                            if touch(&rw, path, true) {
                                async_std::task::sleep(AWAIT).await;
                                touch(&rw, path, false);
                            }
                            Ok::<_, Infallible>(http::Response::new(Full::new(Bytes::from_static(b"ok"))))
                        }
                    })
                };
                // Every request its own flow, continuing the gateway's trace, answering
                // with `raceway-clock`.
                let service = rw.hyper_service(handler);
                async_std::task::spawn(async move {
                    let io = smol_hyper::rt::FuturesIo::new(stream);
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(io, service)
                        .await;
                });
            }
        });
        Self { addr, accept }
    }
}

// -- the gateway: tokio, axum, propagate_layer ----------------------------------------------

#[derive(Clone)]
struct Gateway {
    rw: Arc<RacewayClient>,
    http: PropagateService<HttpClient>,
    downstream: String,
}

impl Gateway {
    /// One call through the propagating client (inject, send pending events first, merge
    /// the answer's `raceway-clock`).
    async fn call(&self, path: &str) -> u16 {
        let request = http::Request::post(format!("{}{path}", self.downstream))
            .body(Full::new(Bytes::new()))
            .expect("request");
        let response = self.http.clone().oneshot(request).await.expect("downstream");
        let status = response.status().as_u16();
        let _ = response.into_body().collect().await.expect("body");
        status
    }
}

/// S5a: write, call, read after the answer.
async fn gateway_total(State(gw): State<Gateway>) -> &'static str {
    gw.rw.track_state_change("total", Some(0), 10, "Write");
    assert_eq!(gw.call("/total").await, 200);
    gw.rw.track_state_change("total", None::<i64>, 11, "Read");
    "ok"
}

/// S5b: the same handler twice in parallel.
async fn gateway_fan_out(State(gw): State<Gateway>) -> &'static str {
    let (a, b) = tokio::join!(gw.call("/stock"), gw.call("/stock"));
    assert_eq!((a, b), (200, 200));
    "ok"
}

/// The gateway on a free port, calling `downstream`; returns its address.
async fn start_gateway(rw: &Arc<RacewayClient>, downstream: SocketAddr) -> SocketAddr {
    let gw = Gateway {
        rw: rw.clone(),
        http: rw.propagate_layer().layer(http_client::client()),
        downstream: format!("http://{downstream}"),
    };
    let app = Router::new()
        .route("/total", post(gateway_total))
        .route("/fan-out", post(gateway_fan_out))
        .layer(axum::middleware::from_fn_with_state(
            rw.clone(),
            RacewayClient::middleware,
        ))
        .with_state(gw);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(axum::serve(listener, app).into_future());
    addr
}

/// One request to the gateway from a plain (not Raceway) client.
async fn hit(gateway: SocketAddr, path: &str) {
    let (status, _, body) = http_client::post_json(
        &http_client::client(),
        &format!("http://{gateway}{path}"),
        &http::HeaderMap::new(),
        &serde_json::json!({}),
    )
    .await
    .expect("gateway");
    assert_eq!(status, 200, "{body}");
}

/// Which downstream service the gateway calls.
#[derive(Clone, Copy, Debug)]
enum Downstream {
    Threaded,
    AsyncStd,
}

/// One run on a fresh server: starts the gateway and the downstream service, sends one
/// request to the gateway's `path`, flushes both clients, and returns the server's pairs
/// (`None` when the server binary is missing).
async fn run(downstream: Downstream, path: &str) -> Option<RacePairs> {
    let server = RealServer::start_default()?;
    let gateway = Arc::new(RacewayClient::from_config(config(&server, "gateway")).expect("config"));
    let (mut threaded, mut async_std) = (None, None);
    let addr = match downstream {
        Downstream::Threaded => {
            let rw = raceway_blocking::RacewayClient::from_config(config(&server, "svc-b")).expect("config");
            let service = ThreadedService::start(rw.clone());
            let addr = service.addr;
            threaded = Some((rw, service));
            addr
        }
        Downstream::AsyncStd => {
            let rw =
                raceway_rt_async_std::RacewayClient::from_config(config(&server, "svc-b")).expect("config");
            let service = AsyncStdService::start(rw.clone());
            let addr = service.addr;
            async_std = Some((rw, service));
            addr
        }
    };
    let gateway_addr = start_gateway(&gateway, addr).await;
    hit(gateway_addr, path).await;

    gateway.flush(Duration::from_secs(10)).await.expect("flush");
    let mut stats = vec![gateway.stats()];
    if let Some((rw, service)) = threaded {
        drop(service);
        let rw = tokio::task::spawn_blocking(move || {
            rw.flush(Duration::from_secs(10)).expect("flush");
            rw
        })
        .await
        .expect("flush");
        stats.push(rw.stats());
    }
    if let Some((rw, service)) = async_std {
        service.accept.cancel().await;
        rw.flush(Duration::from_secs(10)).await.expect("flush");
        stats.push(rw.stats());
    }
    let mut recorded = 0;
    for s in &stats {
        assert_eq!(s.export.dropped(), 0, "{s:?}");
        recorded += s.core.recorded;
    }
    Some(
        tokio::task::spawn_blocking(move || server.race_pairs_after(recorded))
            .await
            .expect("verdict"),
    )
}

async fn s5a(downstream: Downstream) {
    for _ in 0..REPEAT {
        let Some(pairs) = run(downstream, "/total").await else {
            return;
        };
        assert!(pairs.is_empty(), "{downstream:?}: {pairs}");
    }
}

async fn s5b(downstream: Downstream) {
    for _ in 0..REPEAT {
        let Some(pairs) = run(downstream, "/fan-out").await else {
            return;
        };
        assert_eq!(pairs.count("stock"), 1, "{downstream:?}: {pairs}");
        let flows = pairs.flows("stock");
        assert_eq!(flows.len(), 2, "{downstream:?}: {pairs}");
        assert!(
            flows.iter().all(|f| f.starts_with("svc-b#")),
            "{downstream:?}: {pairs}"
        );
        assert_eq!(pairs.total(), 1, "{downstream:?}: {pairs}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn s5a_tokio_gateway_calling_a_threaded_service_does_not_race() {
    s5a(Downstream::Threaded).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn s5a_tokio_gateway_calling_an_async_std_service_does_not_race() {
    s5a(Downstream::AsyncStd).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn s5b_tokio_gateway_fanning_out_to_a_threaded_service_one_pair_between_its_flows() {
    s5b(Downstream::Threaded).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn s5b_tokio_gateway_fanning_out_to_an_async_std_service_one_pair_between_its_flows() {
    s5b(Downstream::AsyncStd).await;
}

//! What causal delivery (`Config::causal_delivery`, on by default) adds to a call's and to a
//! request's latency, measured on the real code path: the real Raceway server
//! (`raceway_testkit::RealServer`, which decodes and stores what it gets), and two axum
//! services on 127.0.0.1, a gateway and a downstream service, each with its own SDK client
//! exporting to that server, talking real HTTP (hyper).
//!
//! Per request, the gateway handler (under the README's middleware line) records
//! [`STATE_CHANGES`] `StateChange`s, then calls the downstream service once through
//! `propagate_layer()` on a hyper client; the downstream handler records one `StateChange`.
//! With causal delivery on, two barriers lie on the path: the gateway's before the call
//! leaves (its request event and its state changes reach the server first), and the
//! downstream's before its response leaves (its events reach the server before the
//! gateway records what follows). The load client is a plain hyper client that propagates
//! nothing, so the gateway's own response waits for nothing (an instrumented caller would
//! add a third barrier there).
//!
//! Measured in the same run, each with causal delivery off and on (two service pairs,
//! same code, only that setting differs):
//! - `causal_call/{off,on}`: the downstream call as the gateway handler sees it, from
//!   `svc.call(request)` until the response body has been read (timed in the handler,
//!   handed back in a response header);
//! - `causal_request/{off,on}`: the whole request to the gateway, as its client sees it;
//! - `causal_barrier_idle/{off,on}`: the barrier alone (`causal_barrier_with`) in a flow
//!   with nothing pending (everything flushed just before, untimed).
//!
//! The real server analyses about 1,000 events/s and drops what does not fit in its buffer
//! (answering `206`), and the client paces itself to that estimate: the iterations are
//! spaced by [`GAP`] (untimed), which keeps the event rate near 500/s; the export counters
//! and the server's `events_captured` are printed at the end, so a reader sees whether
//! anything was dropped. The clients keep the default flush interval (1 s): with causal
//! delivery off nothing on the path waits for the exporter (a propagated call only asks it
//! to send soon, in the background).
//!
//! Besides criterion's own estimates, the per-iteration timings of each measurement phase
//! are kept, and a summary with their medians (and the on − off difference and ratio) is
//! printed at the end (`CAUSAL {json}` lines).
//!
//! `cargo bench -p raceway-rt-tokio --bench causal`
//! (without the server binary it prints one `skipped: ...` line and exits 0).
#![allow(missing_docs)] // criterion's types in signatures; nothing here is public API

use std::future::poll_fn;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::routing::post;
use axum::Router;
use bytes::Bytes;
use criterion::{Criterion, SamplingMode};
use http::{Method, Request};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use raceway_rt_tokio::{Config, RacewayClient};
use raceway_testkit::RealServer;
use tokio::runtime::Runtime;
use tower::{Layer, Service};

/// State changes the gateway handler records before its downstream call.
const STATE_CHANGES: u64 = 10;
/// Untimed pause before each iteration that records events (keeps the event rate under
/// what the real server analyses: about 16 events per iteration here).
const GAP: Duration = Duration::from_millis(30);
/// Criterion samples per benchmark (its minimum is 10).
const SAMPLES: usize = 20;
/// Iterations aimed at in each measurement phase (the warm-up runs about a tenth of that).
const TARGET_ITERS: f64 = 300.0;
/// Untimed iterations that estimate a benchmark's time before criterion is configured.
const CALIBRATION_ITERS: u32 = 10;
/// The response header carrying the gateway's call time, in nanoseconds.
const CALL_NS: &str = "x-call-ns";

type Http = Client<HttpConnector, Full<Bytes>>;

fn http_client() -> Http {
    Client::builder(TokioExecutor::new()).build(HttpConnector::new())
}

fn post_request(url: &str) -> Request<Full<Bytes>> {
    Request::builder()
        .method(Method::POST)
        .uri(url)
        .body(Full::new(Bytes::new()))
        .expect("request")
}

fn config(service: &str, endpoint: &str, causal: bool) -> Config {
    let mut c = Config::new(service);
    c.endpoint = Some(endpoint.to_string());
    c.instance_id = Some("bench".into());
    c.causal_delivery = causal;
    c
}

#[derive(Clone)]
struct Gateway {
    rw: Arc<RacewayClient>,
    http: Http,
    downstream: String,
}

async fn gateway(State(g): State<Gateway>) -> ([(&'static str, String); 1], &'static str) {
    for i in 0..STATE_CHANGES {
        g.rw.track_state_change("gateway.balance", Some(i), i + 1, "Write");
    }
    let mut svc = g.rw.propagate_layer().layer(g.http.clone());
    let request = post_request(&g.downstream);
    let start = Instant::now();
    poll_fn(|cx| svc.poll_ready(cx)).await.expect("ready");
    let response = svc.call(request).await.expect("downstream");
    assert_eq!(response.status(), 200);
    let _ = response.into_body().collect().await.expect("body");
    let took = start.elapsed();
    ([(CALL_NS, took.as_nanos().to_string())], "ok")
}

async fn downstream(State(rw): State<Arc<RacewayClient>>) -> &'static str {
    rw.track_state_change("downstream.stock", None::<i64>, 5, "Read");
    "ok"
}

fn with_middleware<S: Clone + Send + Sync + 'static>(
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

async fn serve(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        axum::serve(listener, app).await.expect("serve");
    });
    format!("http://{addr}")
}

/// A gateway and its downstream service, both with causal delivery `causal`.
struct Pair {
    gateway: Arc<RacewayClient>,
    downstream: Arc<RacewayClient>,
    url: String,
}

impl Pair {
    async fn start(server: &str, causal: bool) -> Pair {
        let ds = Arc::new(RacewayClient::from_config(config("downstream", server, causal)).expect("config"));
        let gw = Arc::new(RacewayClient::from_config(config("gateway", server, causal)).expect("config"));
        let ds_url = serve(with_middleware(
            Router::new().route("/stock", post(downstream)),
            &ds,
            ds.clone(),
        ))
        .await;
        let state = Gateway {
            rw: gw.clone(),
            http: http_client(),
            downstream: format!("{ds_url}/stock"),
        };
        let url = serve(with_middleware(
            Router::new().route("/checkout", post(gateway)),
            &gw,
            state,
        ))
        .await;
        Pair {
            gateway: gw,
            downstream: ds,
            url: format!("{url}/checkout"),
        }
    }

    fn clients(&self) -> [&Arc<RacewayClient>; 2] {
        [&self.gateway, &self.downstream]
    }
}

/// One request to the gateway: (the request as its client saw it, the gateway's call).
async fn request_once(http: &Http, url: &str) -> (Duration, Duration) {
    let start = Instant::now();
    let response = http.request(post_request(url)).await.expect("gateway");
    let status = response.status();
    let call = response
        .headers()
        .get(CALL_NS)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        .map(Duration::from_nanos);
    let _ = response.into_body().collect().await.expect("body");
    let took = start.elapsed();
    assert_eq!(status, 200);
    (took, call.expect("the gateway's call time"))
}

/// What a benchmark times.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Case {
    Call,
    Request,
    BarrierIdle,
}

impl Case {
    fn group(self) -> &'static str {
        match self {
            Case::Call => "causal_call",
            Case::Request => "causal_request",
            Case::BarrierIdle => "causal_barrier_idle",
        }
    }
}

/// Runs `iters` iterations of `case` against `pair`, returning each one's timed part.
fn run(rt: &Runtime, http: &Http, pair: &Pair, case: Case, iters: u64) -> Vec<Duration> {
    rt.block_on(async {
        let mut out = Vec::with_capacity(usize::try_from(iters).unwrap_or(0));
        match case {
            Case::Call | Case::Request => {
                for _ in 0..iters {
                    tokio::time::sleep(GAP).await;
                    let (request, call) = request_once(http, &pair.url).await;
                    out.push(if case == Case::Call { call } else { request });
                }
            }
            Case::BarrierIdle => {
                let rw = &pair.gateway;
                rw.in_new_trace(async {
                    for _ in 0..iters {
                        rw.flush(Duration::from_secs(10)).await.expect("flush");
                        let start = Instant::now();
                        rw.causal_barrier_with(tokio::time::sleep).await;
                        out.push(start.elapsed());
                    }
                })
                .await;
            }
        }
        out
    })
}

/// Per-iteration timings of one benchmark's measurement phase.
#[derive(Debug, Clone, Default)]
struct Timings(Vec<Duration>);

impl Timings {
    fn quantile(&self, q: f64) -> Duration {
        let mut v = self.0.clone();
        v.sort_unstable();
        if v.is_empty() {
            return Duration::ZERO;
        }
        let i = ((v.len() - 1) as f64 * q).round() as usize;
        v[i.min(v.len() - 1)]
    }
    fn median(&self) -> Duration {
        self.quantile(0.5)
    }
    fn max(&self) -> Duration {
        self.0.iter().copied().max().unwrap_or_default()
    }
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// Benchmarks `case` off and on in one criterion group; returns each one's timings.
fn bench_case(
    c: &mut Criterion,
    rt: &Runtime,
    http: &Http,
    pairs: &[(&str, &Pair)],
    case: Case,
) -> Vec<Timings> {
    let mut g = c.benchmark_group(case.group());
    g.sampling_mode(SamplingMode::Flat).sample_size(SAMPLES);
    let mut all = Vec::new();
    for (name, pair) in pairs {
        // Calibrate: in `iter_custom` criterion sizes its samples from the wall time of its
        // warm-up (untimed gaps and flushes included), so the target times are set from the
        // wall time of a few iterations, for about `TARGET_ITERS` measured ones.
        let start = Instant::now();
        let _ = run(rt, http, pair, case, u64::from(CALIBRATION_ITERS));
        let one = (start.elapsed() / CALIBRATION_ITERS).max(Duration::from_nanos(1));
        g.warm_up_time(one.mul_f64(TARGET_ITERS / 10.0))
            .measurement_time(one.mul_f64(TARGET_ITERS));
        // One entry per call of the routine; the last `SAMPLES` are the measurement phase.
        let calls: Mutex<Vec<Vec<Duration>>> = Mutex::new(Vec::new());
        g.bench_function(*name, |b| {
            b.iter_custom(|iters| {
                let t = run(rt, http, pair, case, iters);
                let total = t.iter().sum();
                calls.lock().unwrap().push(t);
                total
            })
        });
        let calls = calls.into_inner().unwrap();
        let measured = calls.len().saturating_sub(SAMPLES);
        all.push(Timings(calls.into_iter().skip(measured).flatten().collect()));
    }
    g.finish();
    all
}

fn main() {
    // Prints one `skipped: ...` line itself when the binary is missing.
    let Some(server) = RealServer::start_default() else {
        return;
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let url = server.url();
    let (off, on) = rt.block_on(async { (Pair::start(&url, false).await, Pair::start(&url, true).await) });
    for (name, pair) in [("off", &off), ("on", &on)] {
        for c in pair.clients() {
            let cfg = c.config();
            println!(
                "# {name}: {} causal_delivery={} causal_timeout={:?} flush_interval={:?} server_capacity={:?}",
                cfg.service_name, cfg.causal_delivery, cfg.causal_timeout, cfg.export.flush_interval,
                cfg.export.server_capacity
            );
        }
    }
    let http = http_client();
    let started = Instant::now();

    let mut c = Criterion::default().configure_from_args();
    let pairs = [("off", &off), ("on", &on)];
    let mut results = Vec::new();
    for case in [Case::Call, Case::Request, Case::BarrierIdle] {
        let t = bench_case(&mut c, &rt, &http, &pairs, case);
        results.push((case, t));
    }
    c.final_summary();
    let wall = started.elapsed();

    // What reached the server.
    let mut recorded = 0;
    let mut dropped = 0;
    for (name, pair) in [("off", &off), ("on", &on)] {
        for cl in pair.clients() {
            let _ = cl.flush_blocking(Duration::from_secs(30));
            let s = cl.stats();
            let e = &s.export;
            recorded += s.core.recorded;
            dropped += e.dropped();
            println!(
                "# {name}: {}: recorded {} sent {} dropped {} (server full {}) batches {} partial {} \
                 requeued_server_full {} retried {}",
                cl.config().service_name,
                s.core.recorded,
                e.sent,
                e.dropped(),
                e.dropped_server_full,
                e.batches_sent,
                e.batches_partial,
                e.requeued_server_full,
                e.retried
            );
        }
    }
    let captured = server.wait_for_captured(recorded, Duration::from_secs(60));
    println!(
        "# run: {:.1} s, {recorded} events recorded ({:.0}/s), {captured} captured by the server, {dropped} dropped by the clients",
        wall.as_secs_f64(),
        recorded as f64 / wall.as_secs_f64()
    );

    println!("# medians of the measurement phases' per-iteration timings (µs):");
    for (case, t) in &results {
        let (off, on) = (&t[0], &t[1]);
        let (m_off, m_on) = (us(off.median()), us(on.median()));
        println!(
            "CAUSAL {{\"case\":\"{}\",\"iters_off\":{},\"iters_on\":{},\"median_off_us\":{m_off:.1},\
             \"median_on_us\":{m_on:.1},\"added_us\":{:.1},\"ratio\":{:.2},\"p90_off_us\":{:.1},\
             \"p90_on_us\":{:.1},\"max_off_us\":{:.1},\"max_on_us\":{:.1}}}",
            case.group(),
            off.0.len(),
            on.0.len(),
            m_on - m_off,
            if m_off > 0.0 { m_on / m_off } else { f64::NAN },
            us(off.quantile(0.9)),
            us(on.quantile(0.9)),
            us(off.max()),
            us(on.max()),
        );
    }

    for pair in [&off, &on] {
        for cl in pair.clients() {
            let _ = cl.shutdown_timeout(Duration::from_secs(2));
        }
    }
    drop(rt);
}

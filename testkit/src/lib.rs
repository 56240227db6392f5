//! Test support for the Raceway Rust SDK (dev-only, never published).
//!
//! [`Collector`] is a real local Raceway collector: an axum server on `127.0.0.1` that
//! answers `POST /events` and `GET /health` the way the real server does (see
//! `shared/wire/WIRE.md`, "Ingestion" and "Limits"), records what it accepted, and can be
//! told to misbehave.
//!
//! It runs on its own OS thread with its own tokio runtime, and every method is blocking
//! and runtime-agnostic, so the same collector serves tests of the tokio, async-std and
//! plain-thread adapters. A test on a single-threaded async runtime should not call the
//! blocking waits ([`Collector::wait_for_events`], ...) from inside a task that the SDK
//! needs to make progress; it can await [`Collector::until_events`] instead (with its
//! runtime's own timeout).
//!
//! ```no_run
//! use std::time::Duration;
//! use raceway_testkit::{Collector, Reply};
//!
//! let collector = Collector::start();
//! collector.script(vec![Reply::StatusRetryAfter(429, 1), Reply::Status(503)]);
//! // ... point the SDK at collector.url() and record some events ...
//! assert!(collector.wait_for_events(3, Duration::from_secs(5)));
//! assert_eq!(collector.statuses(), vec![Some(429), Some(503), Some(200)]);
//! ```
//!
//! # Behaviour of `POST /events`
//!
//! The body is always read in full first (up to 64 MiB; bytes past [`BODY_LIMIT`] are
//! counted and dropped), so that a client always gets a clean answer rather than a reset
//! connection. Then, in this order:
//!
//! 1. an injected reply (the next [`Collector::script`] entry, else the
//!    [`Collector::set_always`] reply), if any and other than [`Reply::Ok`], decides the
//!    answer and nothing is recorded as ingested;
//! 2. auth, when a key is set: neither `Authorization: Bearer <key>` nor
//!    `X-Raceway-Key: <key>` → `401`;
//! 3. body over [`BODY_LIMIT`] (2 MiB) → `413`;
//! 4. `content-type` not JSON → `415` (the server uses axum's `Json` extractor);
//! 5. body not JSON (syntax error, including an array with trailing elements where a
//!    `[component, counter]` pair is expected) → `400`;
//! 6. any event not decoding as [`raceway_proto::Event`], or no `events` array → `422`,
//!    the whole batch rejected;
//! 7. else `200` and every event recorded, in order.
//!
//! Every `POST /events` is recorded as a [`RecordedPost`] (headers, body, size, answer),
//! whatever it was answered.

#![warn(missing_docs)]

use std::collections::VecDeque;
use std::future::{Future, IntoFuture};
use std::io;
use std::net::TcpListener as StdListener;
use std::pin::Pin;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::State as AxState;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures::StreamExt;
use raceway_proto::Event;
use serde::Deserialize;
use serde_json::{json, Value};

pub mod local;
pub mod logs;
pub mod real_server;
pub mod timing;
pub mod tls;
pub use real_server::{PostReply, RacePairs, RealServer, ServerOptions};

/// The server's body limit: 2 MiB (axum's default). Larger bodies get `413`.
pub const BODY_LIMIT: usize = 2 * 1024 * 1024;

/// The most bytes of one body the collector reads before answering `413` anyway.
const DRAIN_CAP: usize = 64 * 1024 * 1024;

/// The `Content-Length` that [`Reply::HugeContentLength`] announces.
pub const HUGE_CONTENT_LENGTH: u64 = 10_000_000_000;

/// An injected answer to one `POST /events` (see [`Collector::script`] and
/// [`Collector::set_always`]).
///
/// Every reply other than [`Reply::Ok`] and [`Reply::Delay`] ingests nothing: the events of
/// that POST are not recorded, whatever the status code says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// Handle the POST normally (validate, record, answer 200/4xx): a placeholder in a script.
    Ok,
    /// Answer this status code with a small JSON body, ingesting nothing (even for a 2xx:
    /// a "lost" batch). An invalid code (outside 100..=999) answers 500.
    Status(u16),
    /// As [`Reply::Status`], plus a `Retry-After: <secs>` header.
    StatusRetryAfter(u16, u64),
    /// Never answer: the request stays open until the collector stops (other requests are
    /// served meanwhile). Recorded with status `None`.
    Hang,
    /// Answer `200` with `Content-Length: 10000000000`, send a few bytes of body and then
    /// nothing more, until the collector stops. Ingests nothing.
    HugeContentLength,
    /// Wait this long, then handle the POST normally.
    Delay(Duration),
}

/// One `POST /events` as the collector saw it.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedPost {
    /// Request headers in arrival order, names lower-case, values lossily decoded.
    pub headers: Vec<(String, String)>,
    /// The body, when it was within [`BODY_LIMIT`]; empty for a larger one.
    pub body: Vec<u8>,
    /// How many body bytes were received (for a body over 64 MiB, at least that many).
    pub body_size: usize,
    /// The injected reply that decided the answer, if any ([`Reply::Ok`] is not kept).
    pub injected: Option<Reply>,
    /// The status answered; `None` for a [`Reply::Hang`].
    pub status: Option<u16>,
    /// How many events were ingested (recorded) from this POST.
    pub accepted: usize,
}

impl RecordedPost {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON, if it is.
    pub fn body_json(&self) -> Option<Value> {
        serde_json::from_slice(&self.body).ok()
    }
}

#[derive(Default)]
struct State {
    key: Option<String>,
    script: VecDeque<Reply>,
    always: Option<Reply>,
    events: Vec<Event>,
    events_json: Vec<Value>,
    posts: Vec<RecordedPost>,
    health_checks: usize,
    wakers: Vec<Waker>,
}

#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    changed: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records a post (and its events), then wakes every waiter.
    fn record(&self, post: RecordedPost, events: Vec<Event>, raw: Vec<Value>) {
        let mut st = self.lock();
        st.events.extend(events);
        st.events_json.extend(raw);
        st.posts.push(post);
        for w in st.wakers.drain(..) {
            w.wake();
        }
        drop(st);
        self.changed.notify_all();
    }
}

struct Running {
    shutdown: tokio::sync::oneshot::Sender<()>,
    thread: JoinHandle<()>,
}

/// A real local collector on `127.0.0.1`; see the [crate docs](crate) for its behaviour.
///
/// Every method takes `&self`, so a collector can be shared between threads (`Arc`).
/// Dropping it stops it.
pub struct Collector {
    shared: Arc<Shared>,
    port: u16,
    running: Mutex<Option<Running>>,
}

impl std::fmt::Debug for Collector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Collector")
            .field("url", &self.url())
            .field("running", &self.is_running())
            .finish()
    }
}

/// Options for starting a [`Collector`].
#[derive(Debug, Clone, Default)]
pub struct CollectorBuilder {
    port: u16,
    key: Option<String>,
}

impl CollectorBuilder {
    /// Listen on this port (`0`, the default, picks a free one).
    pub fn port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// Require this API key (`Authorization: Bearer <key>` or `X-Raceway-Key: <key>`).
    pub fn key(mut self, key: impl Into<String>) -> Self {
        self.key = Some(key.into());
        self
    }

    /// Binds `127.0.0.1:port` and starts serving.
    ///
    /// # Errors
    /// The port is taken, or the runtime or thread could not be created.
    pub fn start(self) -> io::Result<Collector> {
        let shared = Arc::new(Shared::default());
        shared.lock().key = self.key;
        let (port, running) = serve(shared.clone(), self.port)?;
        Ok(Collector {
            shared,
            port,
            running: Mutex::new(Some(running)),
        })
    }
}

impl Collector {
    /// Options: port and key.
    pub fn builder() -> CollectorBuilder {
        CollectorBuilder::default()
    }

    /// Starts a collector on a free port of `127.0.0.1`, without auth.
    ///
    /// # Panics
    /// If no loopback port can be bound at all.
    pub fn start() -> Collector {
        Self::builder()
            .start()
            .expect("raceway-testkit: cannot start a collector on 127.0.0.1:0")
    }

    /// Starts a collector on `127.0.0.1:port`, without auth.
    ///
    /// # Errors
    /// The port is taken (or the runtime could not be created).
    pub fn start_on(port: u16) -> io::Result<Collector> {
        Self::builder().port(port).start()
    }

    /// Starts a collector on a free port that requires `key`.
    ///
    /// # Panics
    /// If no loopback port can be bound at all.
    pub fn start_with_key(key: impl Into<String>) -> Collector {
        Self::builder()
            .key(key)
            .start()
            .expect("raceway-testkit: cannot start a collector on 127.0.0.1:0")
    }

    /// `http://127.0.0.1:PORT`: the endpoint to configure an SDK with.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// `http://127.0.0.1:PORT/events`.
    pub fn events_url(&self) -> String {
        format!("{}/events", self.url())
    }

    /// The port (kept across [`Collector::stop`] and [`Collector::restart`]).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// True between start/restart and stop.
    pub fn is_running(&self) -> bool {
        self.running.lock().unwrap_or_else(|e| e.into_inner()).is_some()
    }

    /// Stops serving: closes the listener and every connection (hung requests and endless
    /// bodies included), and returns once the port is free. Recorded state, the script and
    /// the key are kept. Does nothing if already stopped.
    pub fn stop(&self) {
        let running = self.running.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(r) = running {
            let _ = r.shutdown.send(());
            let _ = r.thread.join();
        }
    }

    /// Stops if running, then serves again on the same port, keeping everything recorded.
    ///
    /// # Errors
    /// The port was taken by someone else meanwhile; the collector stays stopped.
    pub fn restart(&self) -> io::Result<()> {
        self.stop();
        let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        let (_, r) = serve(self.shared.clone(), self.port)?;
        *running = Some(r);
        Ok(())
    }

    /// Sets (or with `None` removes) the required API key, effective for the next request.
    pub fn set_key(&self, key: Option<String>) {
        self.shared.lock().key = key;
    }

    /// Replaces the pending script: each following `POST /events` consumes the next reply,
    /// and once the script is used up normal behaviour (or [`Collector::set_always`])
    /// resumes. A scripted reply takes precedence over `set_always`.
    pub fn script(&self, replies: Vec<Reply>) {
        self.shared.lock().script = replies.into();
    }

    /// How many scripted replies have not been consumed yet.
    pub fn script_remaining(&self) -> usize {
        self.shared.lock().script.len()
    }

    /// Makes every `POST /events` without a scripted reply answer `reply`, until cleared
    /// with `None`.
    pub fn set_always(&self, reply: Option<Reply>) {
        self.shared.lock().always = reply;
    }

    /// Every event ingested so far, in ingestion order.
    pub fn events(&self) -> Vec<Event> {
        self.shared.lock().events.clone()
    }

    /// Every event ingested so far, as the raw JSON objects received.
    pub fn events_json(&self) -> Vec<Value> {
        self.shared.lock().events_json.clone()
    }

    /// The ingested `StateChange`s of `variable`, in arrival order, each as
    /// `[access_type, old_value, new_value, location, memory_ordering tag]` (absent fields
    /// as `null`), with the event's `thread_id` (its flow).
    pub fn state_changes(&self, variable: &str) -> Vec<(Value, String)> {
        self.events_json()
            .into_iter()
            .filter_map(|e| {
                let sc = &e["kind"]["StateChange"];
                (sc["variable"] == variable).then(|| {
                    let shape = serde_json::json!([
                        sc["access_type"],
                        sc["old_value"],
                        sc["new_value"],
                        sc["location"],
                        e["metadata"]["tags"]["memory_ordering"],
                    ]);
                    let flow = e["metadata"]["thread_id"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string();
                    (shape, flow)
                })
            })
            .collect()
    }

    /// How many events were ingested.
    pub fn event_count(&self) -> usize {
        self.shared.lock().events.len()
    }

    /// Every `POST /events` received, in the order they were answered (a hung one when it
    /// started hanging).
    pub fn posts(&self) -> Vec<RecordedPost> {
        self.shared.lock().posts.clone()
    }

    /// How many `POST /events` were received.
    pub fn post_count(&self) -> usize {
        self.shared.lock().posts.len()
    }

    /// The status answered to each POST (`None`: hung).
    pub fn statuses(&self) -> Vec<Option<u16>> {
        self.shared.lock().posts.iter().map(|p| p.status).collect()
    }

    /// The body size of each POST, in bytes.
    pub fn body_sizes(&self) -> Vec<usize> {
        self.shared.lock().posts.iter().map(|p| p.body_size).collect()
    }

    /// The last POST received.
    pub fn last_post(&self) -> Option<RecordedPost> {
        self.shared.lock().posts.last().cloned()
    }

    /// The headers of the last POST (empty if none).
    pub fn last_headers(&self) -> Vec<(String, String)> {
        self.last_post().map(|p| p.headers).unwrap_or_default()
    }

    /// How many `GET /health` were answered.
    pub fn health_checks(&self) -> usize {
        self.shared.lock().health_checks
    }

    /// Forgets every recorded event, POST and health check (script, `always` and key stay).
    pub fn clear(&self) {
        let mut st = self.shared.lock();
        st.events.clear();
        st.events_json.clear();
        st.posts.clear();
        st.health_checks = 0;
    }

    /// Blocks until at least `n` events were ingested or `timeout` passed; true if reached.
    pub fn wait_for_events(&self, n: usize, timeout: Duration) -> bool {
        self.wait_until(timeout, |st| st.events.len() >= n)
    }

    /// Blocks until at least `n` POSTs were recorded or `timeout` passed; true if reached.
    pub fn wait_for_posts(&self, n: usize, timeout: Duration) -> bool {
        self.wait_until(timeout, |st| st.posts.len() >= n)
    }

    fn wait_until(&self, timeout: Duration, done: impl Fn(&State) -> bool) -> bool {
        let deadline = Instant::now() + timeout;
        let mut st = self.shared.lock();
        loop {
            if done(&st) {
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            st = self
                .shared
                .changed
                .wait_timeout(st, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// A runtime-agnostic future that completes once at least `n` events were ingested.
    /// It has no timeout of its own: wrap it in the runtime's timeout.
    pub fn until_events(&self, n: usize) -> UntilEvents {
        UntilEvents {
            shared: self.shared.clone(),
            n,
        }
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The future of [`Collector::until_events`].
#[derive(Clone)]
#[must_use = "futures do nothing unless awaited"]
pub struct UntilEvents {
    shared: Arc<Shared>,
    n: usize,
}

impl std::fmt::Debug for UntilEvents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UntilEvents").field("n", &self.n).finish()
    }
}

impl Future for UntilEvents {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let mut st = self.shared.lock();
        if st.events.len() >= self.n {
            Poll::Ready(())
        } else {
            st.wakers.push(cx.waker().clone());
            Poll::Pending
        }
    }
}

/// Binds the port, then runs the server on its own thread and runtime.
fn serve(shared: Arc<Shared>, port: u16) -> io::Result<(u16, Running)> {
    let listener = StdListener::bind(("127.0.0.1", port))?;
    listener.set_nonblocking(true)?;
    let port = listener.local_addr()?.port();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("raceway-testkit-worker")
        .enable_all()
        .build()?;
    let listener = {
        let _guard = rt.enter();
        tokio::net::TcpListener::from_std(listener)?
    };
    let app = router(shared);
    let (shutdown, stopped) = tokio::sync::oneshot::channel::<()>();
    let thread = std::thread::Builder::new()
        .name(format!("raceway-testkit-{port}"))
        .spawn(move || {
            rt.block_on(async move {
                let server = axum::serve(listener, app).into_future();
                tokio::select! {
                    _ = server => {}
                    _ = stopped => {}
                }
            });
            // Dropping the runtime cancels every connection task: hung requests and endless
            // bodies end and their sockets close. The listener closed with the serve future.
            drop(rt);
        })?;
    Ok((port, Running { shutdown, thread }))
}

fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/events", post(ingest))
        .with_state(shared)
}

async fn health(AxState(shared): AxState<Arc<Shared>>) -> Json<Value> {
    shared.lock().health_checks += 1;
    Json(json!({"status": "healthy"}))
}

#[derive(Deserialize)]
struct Batch {
    events: Vec<Event>,
}

struct Received {
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    size: usize,
}

impl Received {
    fn post(self, injected: Option<Reply>, status: Option<u16>, accepted: usize) -> RecordedPost {
        RecordedPost {
            headers: self.headers,
            body: if self.size <= BODY_LIMIT {
                self.body
            } else {
                Vec::new()
            },
            body_size: self.size,
            injected,
            status,
            accepted,
        }
    }
}

async fn ingest(AxState(shared): AxState<Arc<Shared>>, headers: HeaderMap, body: Body) -> Response {
    // Read the whole body (bounded) so that every answer reaches the client cleanly.
    let mut stream = body.into_data_stream();
    let mut buf = Vec::new();
    let mut size = 0usize;
    while let Some(chunk) = stream.next().await {
        let Ok(chunk) = chunk else {
            // The client went away mid-body: nobody to answer.
            return StatusCode::BAD_REQUEST.into_response();
        };
        size += chunk.len();
        if size <= BODY_LIMIT {
            buf.extend_from_slice(&chunk);
        } else {
            buf = Vec::new();
            if size > DRAIN_CAP {
                break;
            }
        }
    }
    let received = Received {
        headers: headers
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body: buf,
        size,
    };

    let injected = {
        let mut st = shared.lock();
        st.script.pop_front().or_else(|| st.always.clone())
    };
    match injected {
        None | Some(Reply::Ok) => ingest_normally(&shared, &headers, received),
        Some(Reply::Delay(d)) => {
            tokio::time::sleep(d).await;
            ingest_normally(&shared, &headers, received)
        }
        Some(reply @ (Reply::Status(code) | Reply::StatusRetryAfter(code, _))) => {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let retry_after = match reply {
                Reply::StatusRetryAfter(_, secs) => Some(secs),
                _ => None,
            };
            shared.record(
                received.post(Some(reply), Some(status.as_u16()), 0),
                Vec::new(),
                Vec::new(),
            );
            let mut resp = (
                status,
                Json(json!({"error": "injected by raceway-testkit", "status": status.as_u16()})),
            )
                .into_response();
            if let Some(secs) = retry_after {
                resp.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(secs));
            }
            resp
        }
        Some(Reply::Hang) => {
            shared.record(received.post(Some(Reply::Hang), None, 0), Vec::new(), Vec::new());
            std::future::pending::<Response>().await
        }
        Some(Reply::HugeContentLength) => {
            shared.record(
                received.post(Some(Reply::HugeContentLength), Some(200), 0),
                Vec::new(),
                Vec::new(),
            );
            // A few bytes, then nothing ever again; the announced length is never reached.
            let stream =
                futures::stream::once(async { Ok::<_, io::Error>(Bytes::from_static(b"{\"success\":")) })
                    .chain(futures::stream::pending());
            let mut resp = Response::new(Body::from_stream(stream));
            resp.headers_mut()
                .insert(header::CONTENT_LENGTH, HeaderValue::from(HUGE_CONTENT_LENGTH));
            resp.headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
            resp
        }
    }
}

fn authorized(headers: &HeaderMap, key: &str) -> bool {
    let bearer = headers
        .get_all(header::AUTHORIZATION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.strip_prefix("Bearer ") == Some(key));
    let api_key = headers
        .get_all("x-raceway-key")
        .iter()
        .any(|v| v.as_bytes() == key.as_bytes());
    bearer || api_key
}

/// `application/json` or `application/<anything>+json`, as axum's `Json` extractor wants.
fn is_json(headers: &HeaderMap) -> bool {
    let Some(ct) = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let essence = ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    match essence.strip_prefix("application/") {
        Some(sub) => sub == "json" || sub.ends_with("+json"),
        None => false,
    }
}

fn ingest_normally(shared: &Shared, headers: &HeaderMap, received: Received) -> Response {
    let key = shared.lock().key.clone();
    let refuse = |received: Received, status: StatusCode, error: String| {
        shared.record(
            received.post(None, Some(status.as_u16()), 0),
            Vec::new(),
            Vec::new(),
        );
        (status, Json(json!({"error": error}))).into_response()
    };
    if let Some(key) = key {
        if !authorized(headers, &key) {
            return refuse(
                received,
                StatusCode::UNAUTHORIZED,
                "missing or wrong API key".into(),
            );
        }
    }
    if received.size > BODY_LIMIT {
        return refuse(
            received,
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("body over {BODY_LIMIT} bytes"),
        );
    }
    if !is_json(headers) {
        return refuse(
            received,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "expected content-type: application/json".into(),
        );
    }
    let batch = match serde_json::from_slice::<Batch>(&received.body) {
        Ok(b) => b,
        Err(e) => {
            let status = match e.classify() {
                serde_json::error::Category::Data => StatusCode::UNPROCESSABLE_ENTITY,
                _ => StatusCode::BAD_REQUEST,
            };
            return refuse(received, status, e.to_string());
        }
    };
    let raw = match serde_json::from_slice::<Value>(&received.body) {
        Ok(Value::Object(mut o)) => match o.remove("events") {
            Some(Value::Array(a)) => a,
            _ => Vec::new(),
        },
        _ => Vec::new(),
    };
    let n = batch.events.len();
    shared.record(received.post(None, Some(200), n), batch.events, raw);
    (
        StatusCode::OK,
        Json(json!({"success": true, "events_received": n})),
    )
        .into_response()
}

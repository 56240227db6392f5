//! The real Raceway server (0.1.0), started for one test.
//!
//! [`RealServer`] runs the actual `raceway-server` binary (see
//! `shared/raceway-server/README.md`) on a free port of `127.0.0.1`, with in-memory storage,
//! in a fresh temporary folder, and stops it when dropped (also when the test panics). Its
//! queries read what the server holds and what its global race analysis reports, as
//! measured in `shared/wire/WIRE.md` ("Measured on the real server").
//!
//! The binary is a test dependency, not part of the project: when it cannot be found,
//! [`RealServer::start`] prints one `skipped: ...` line and returns `None`, so a test can
//! begin with
//!
//! ```no_run
//! use std::time::Duration;
//! use raceway_testkit::{RealServer, ServerOptions};
//!
//! let Some(server) = RealServer::start(ServerOptions::default()) else { return };
//! // ... point the SDK at server.url(), record, flush ...
//! assert_eq!(server.wait_for_captured(3, Duration::from_secs(10)), 3);
//! let races = server.race_pairs();
//! assert_eq!(races.pairs("balance"), [("flow-1", "flow-2")], "{races}");
//! ```
//!
//! CI sets `RACEWAY_REQUIRE_SERVER=1`, which turns a missing binary into a panic instead.
//!
//! # Where the binary is looked for ([`RealServer::locate`])
//! 1. `RACEWAY_SERVER_BIN`, if set and not empty: that file, which must exist (a missing
//!    file panics, naming the path: a typo should not silently skip every test);
//! 2. else `<workspace root>/../shared/raceway-server/raceway-server`, the workspace root
//!    being the parent of this crate's folder at compile time.
//!
//! # What the server is started with
//! A `raceway.toml` in the temporary folder (the server reads `./raceway.toml`):
//! `[server]` on `127.0.0.1:PORT`, CORS off, auth on only with
//! [`ServerOptions::api_key`], rate limiting on only with [`ServerOptions::rate_limit_rpm`];
//! `[storage] backend = "memory"`; `[engine]` from [`ServerOptions`]; race detection,
//! anomaly detection and distributed tracing on; log level `error`. Its stdout and stderr go
//! to `server.log` in that folder ([`RealServer::log`]).

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;
use std::fmt;
use std::fs;
use std::io;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The environment variable naming the server binary.
pub const SERVER_BIN_ENV: &str = "RACEWAY_SERVER_BIN";

/// The environment variable that, set to `1`, makes a missing server binary a panic.
pub const REQUIRE_SERVER_ENV: &str = "RACEWAY_REQUIRE_SERVER";

/// How long [`RealServer::start`] waits for `GET /health` to answer.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// How many ports [`RealServer::start`] tries when the server cannot bind the one picked.
const BIND_ATTEMPTS: usize = 5;

/// Timeout of one query (the global analysis is quadratic in the `StateChange`s held).
const QUERY_TIMEOUT: Duration = Duration::from_secs(60);

/// The page size used to list traces.
const TRACES_PAGE_SIZE: usize = 1000;

/// Settings of a [`RealServer`]; `ServerOptions::default()` is the server's own defaults,
/// without auth or rate limiting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerOptions {
    /// Turns auth on with this one key (`Authorization: Bearer <key>` or
    /// `X-Raceway-Key: <key>`); every route, `/health` too, then answers `401` without it.
    /// The queries of [`RealServer`] send it. Default: `None` (auth off).
    pub api_key: Option<String>,
    /// Turns rate limiting on: past this many requests a minute the server answers `429`
    /// (without `Retry-After`). Default: `None` (off).
    pub rate_limit_rpm: Option<u32>,
    /// `[engine] buffer_size`: how many events the capture buffer holds; events of a POST
    /// that do not fit are dropped and the POST answers `206`. Default: 10,000.
    pub buffer: usize,
    /// `[engine] batch_size`: how many buffered events are analysed per tick. Default: 100.
    pub batch: usize,
    /// `[engine] flush_interval_ms`: the tick, in milliseconds. Default: 100 (so about
    /// 1,000 events/s with the default batch).
    pub interval_ms: u64,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            api_key: None,
            rate_limit_rpm: None,
            buffer: 10_000,
            batch: 100,
            interval_ms: 100,
        }
    }
}

/// The answer to a `POST /events` ([`RealServer::post_events`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostReply {
    /// The HTTP status (`200`, `206`, `401`, `413`, `422`, `429`, ...).
    pub status: u16,
    /// The body as received, for example
    /// `{"success":true,"data":"Ingested 50 events, 150 errors","error":null}`.
    pub body: String,
}

impl PostReply {
    /// The counts of a `200`/`206` answer: `(ingested, errors)` parsed from its `data`
    /// string, `"Ingested N events"` (errors 0) or `"Ingested N events, M errors"` (the
    /// `M` events did not fit in the buffer and were dropped). `None` for any other body.
    pub fn counts(&self) -> Option<(u64, u64)> {
        let v: Value = serde_json::from_str(&self.body).ok()?;
        parse_ingest_counts(v.get("data")?.as_str()?)
    }
}

/// Parses `"Ingested N events"` or `"Ingested N events, M errors"`.
fn parse_ingest_counts(data: &str) -> Option<(u64, u64)> {
    let rest = data.trim().strip_prefix("Ingested ")?;
    let (n, rest) = rest.split_once(' ')?;
    let ingested = n.parse().ok()?;
    let rest = rest.strip_prefix("events")?.trim();
    if rest.is_empty() {
        return Some((ingested, 0));
    }
    let m = rest.strip_prefix(',')?.trim().strip_suffix("errors")?.trim();
    Some((ingested, m.parse().ok()?))
}

/// The races of `GET /api/analyze/global`, by variable: for each variable, the set of
/// unordered pairs `(event1_thread, event2_thread)` reported on it, each normalised so that
/// the smaller string comes first. The raw `race_details[]` entries are kept too
/// ([`RacePairs::details`]).
///
/// **The server lists at most 100 entries** in `race_details[]` (one entry per racing
/// *event* pair, so two threads that each touch a variable twice give 4 entries), while
/// `potential_races` counts them all. When more were found, the pairs here are only those of
/// the first 100 entries: check [`RacePairs::is_complete`] before asserting that a pair is
/// *absent* (its `Display` says when the list was cut).
///
/// Its `Display` lists every variable with its pairs, one per line, for assertion messages;
/// its `Debug` is the map of pairs plus the number of raw details.
#[derive(Clone, Default, PartialEq)]
pub struct RacePairs {
    pairs: BTreeMap<String, BTreeSet<(String, String)>>,
    details: Vec<Value>,
    potential_races: u64,
}

impl RacePairs {
    /// Builds the pairs from a `race_details[]` array (entries without a string `variable`,
    /// `event1_thread` and `event2_thread` are kept in the details but give no pair) and
    /// the server's `potential_races` count (`None`: as many as there are details).
    pub fn from_details(details: Vec<Value>, potential_races: Option<u64>) -> RacePairs {
        let mut pairs: BTreeMap<String, BTreeSet<(String, String)>> = BTreeMap::new();
        for d in &details {
            let field = |name: &str| d.get(name).and_then(Value::as_str);
            if let (Some(var), Some(a), Some(b)) =
                (field("variable"), field("event1_thread"), field("event2_thread"))
            {
                pairs.entry(var.to_owned()).or_default().insert(ordered(a, b));
            }
        }
        let potential_races = potential_races.unwrap_or(details.len() as u64);
        RacePairs {
            pairs,
            details,
            potential_races,
        }
    }

    /// The variables with at least one race, sorted.
    pub fn variables(&self) -> Vec<&str> {
        self.pairs.keys().map(String::as_str).collect()
    }

    /// The thread pairs racing on `var`, sorted, each with the smaller thread id first
    /// (empty if none): `assert_eq!(races.pairs("x"), [("t-a", "t-b")])`.
    pub fn pairs(&self, var: &str) -> Vec<(&str, &str)> {
        self.pairs
            .get(var)
            .map(|set| set.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect())
            .unwrap_or_default()
    }

    /// The flows (thread ids) that appear in the pairs on `var`.
    pub fn flows(&self, var: &str) -> std::collections::BTreeSet<String> {
        self.pairs(var)
            .into_iter()
            .flat_map(|(a, b)| [a.to_string(), b.to_string()])
            .collect()
    }

    /// Whether threads `a` and `b` (in either order) race on `var`.
    pub fn contains(&self, var: &str, a: &str, b: &str) -> bool {
        let (a, b) = ordered(a, b);
        self.pairs.get(var).is_some_and(|set| set.contains(&(a, b)))
    }

    /// How many distinct thread pairs race on `var`.
    pub fn count(&self, var: &str) -> usize {
        self.pairs.get(var).map_or(0, BTreeSet::len)
    }

    /// How many distinct (variable, thread pair)s there are in all.
    pub fn total(&self) -> usize {
        self.pairs.values().map(BTreeSet::len).sum()
    }

    /// True if no race was reported.
    pub fn is_empty(&self) -> bool {
        self.pairs.is_empty()
    }

    /// The whole map: variable → set of normalised thread pairs.
    pub fn as_map(&self) -> &BTreeMap<String, BTreeSet<(String, String)>> {
        &self.pairs
    }

    /// The raw `race_details[]` entries, as the server sent them (several entries can give
    /// the same pair: [`RacePairs::total`] counts distinct pairs, `details().len()` entries).
    pub fn details(&self) -> &[Value] {
        &self.details
    }

    /// The server's `potential_races`: how many racing event pairs it found in all, listed
    /// or not.
    pub fn potential_races(&self) -> u64 {
        self.potential_races
    }

    /// True if every racing event pair the server found is in [`RacePairs::details`] (it
    /// lists at most 100): only then is a pair missing here really not reported.
    pub fn is_complete(&self) -> bool {
        self.potential_races <= self.details.len() as u64
    }
}

fn ordered(a: &str, b: &str) -> (String, String) {
    if a <= b {
        (a.to_owned(), b.to_owned())
    } else {
        (b.to_owned(), a.to_owned())
    }
}

impl fmt::Debug for RacePairs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RacePairs")
            .field("pairs", &self.pairs)
            .field("details", &self.details.len())
            .field("potential_races", &self.potential_races)
            .finish()
    }
}

impl fmt::Display for RacePairs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} race pair(s) on {} variable(s), {} detail(s)",
            self.total(),
            self.pairs.len(),
            self.details.len()
        )?;
        if !self.is_complete() {
            write!(
                f,
                " (INCOMPLETE: the server found {} racing event pairs and listed only {})",
                self.potential_races,
                self.details.len()
            )?;
        }
        for (var, set) in &self.pairs {
            write!(f, "\n  {var}:")?;
            for (a, b) in set {
                write!(f, " ({a} | {b})")?;
            }
        }
        Ok(())
    }
}

/// The real Raceway server, running for one test; see the [module docs](self).
///
/// Dropping it kills the server process, waits for it and removes its folder (this also
/// happens while a panicking test unwinds). Every query is blocking and panics on a
/// transport error or an unexpected answer, naming the route, status and body.
pub struct RealServer {
    child: Child,
    dir: PathBuf,
    port: u16,
    opts: ServerOptions,
    agent: ureq::Agent,
}

impl fmt::Debug for RealServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RealServer")
            .field("url", &self.url())
            .field("pid", &self.child.id())
            .field("dir", &self.dir)
            .field("opts", &self.opts)
            .finish()
    }
}

impl RealServer {
    /// Where the server binary is: `RACEWAY_SERVER_BIN` if set (and not empty), else
    /// `<workspace root>/../shared/raceway-server/raceway-server` if that file exists, else
    /// `None`.
    ///
    /// # Panics
    /// `RACEWAY_SERVER_BIN` is set to a path that does not exist.
    pub fn locate() -> Option<PathBuf> {
        locate_from(std::env::var_os(SERVER_BIN_ENV), &default_server_path())
            .unwrap_or_else(|msg| panic!("{msg}"))
    }

    /// Starts a server with the defaults ([`ServerOptions::default`]).
    ///
    /// # Panics
    /// As [`RealServer::start`].
    pub fn start_default() -> Option<RealServer> {
        Self::start(ServerOptions::default())
    }

    /// Starts a server with `opts` on a free port and waits (up to 10 s) until `GET /health`
    /// answers. When the binary is not found ([`RealServer::locate`]), prints one
    /// `skipped: ...` line to stderr and returns `None`, unless `RACEWAY_REQUIRE_SERVER=1`.
    ///
    /// # Panics
    /// The binary is not found and `RACEWAY_REQUIRE_SERVER=1`; `RACEWAY_SERVER_BIN` names
    /// a missing file; the folder or config cannot be written; the process cannot be
    /// spawned; it exits before answering (the panic message holds its log), other than
    /// for a port taken meanwhile, which is retried on another port a few times; or it does
    /// not answer within 10 s.
    pub fn start(opts: ServerOptions) -> Option<RealServer> {
        let Some(bin) = Self::locate() else {
            match missing_binary(std::env::var_os(REQUIRE_SERVER_ENV)) {
                Ok(line) => {
                    // Once per test binary, and straight to the process's stderr: the test
                    // harness captures `eprintln!` of passing tests, and the user must see
                    // that these tests did not run.
                    static SAID: std::sync::Once = std::sync::Once::new();
                    SAID.call_once(|| {
                        use std::io::Write as _;
                        let _ = writeln!(std::io::stderr(), "{line}");
                    });
                    return None;
                }
                Err(msg) => panic!("{msg}"),
            }
        };
        let agent = make_agent(QUERY_TIMEOUT);
        let mut last_log = String::new();
        for _ in 0..BIND_ATTEMPTS {
            let dir = make_temp_dir().unwrap_or_else(|e| {
                panic!("raceway-testkit: cannot create a folder for the real server: {e}")
            });
            let port =
                free_port().unwrap_or_else(|e| panic!("raceway-testkit: cannot find a free port: {e}"));
            let mut server = match spawn(&bin, &dir, port, &opts) {
                Ok(child) => RealServer {
                    child,
                    dir,
                    port,
                    opts: opts.clone(),
                    agent: agent.clone(),
                },
                Err(e) => {
                    let _ = fs::remove_dir_all(&dir);
                    panic!("raceway-testkit: cannot start {}: {e}", bin.display());
                }
            };
            match server.wait_ready() {
                Ready::Yes => return Some(server),
                Ready::PortTaken => last_log = server.log(),
                Ready::Exited(status) => panic!(
                    "raceway-testkit: the real server ({}) exited before answering /health \
                     ({status}); its log:\n{}",
                    bin.display(),
                    server.log()
                ),
                Ready::Timeout => panic!(
                    "raceway-testkit: the real server ({}) did not answer /health on {} within \
                     {:?}; its log:\n{}",
                    bin.display(),
                    server.url(),
                    START_TIMEOUT,
                    server.log()
                ),
            }
            // `server` drops here: killed, waited for, folder removed; try another port.
        }
        panic!(
            "raceway-testkit: the real server could not bind a port in {BIND_ATTEMPTS} \
             attempts; its last log:\n{last_log}"
        )
    }

    /// Polls `GET /health` until it answers `200` (or `401` with auth on).
    fn wait_ready(&mut self) -> Ready {
        let probe = make_agent(Duration::from_secs(1));
        let deadline = Instant::now() + START_TIMEOUT;
        let url = format!("{}/health", self.url());
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return if self.log().contains("Address already in use") {
                    Ready::PortTaken
                } else {
                    Ready::Exited(status.to_string())
                };
            }
            if let Ok(resp) = probe.get(&url).call() {
                let code = resp.status().as_u16();
                let expected = if self.opts.api_key.is_some() {
                    code == 200 || code == 401
                } else {
                    code == 200
                };
                // Someone else could have taken the port meanwhile: then our process exits.
                if expected && matches!(self.child.try_wait(), Ok(None)) {
                    return Ready::Yes;
                }
            }
            if Instant::now() >= deadline {
                return Ready::Timeout;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `http://127.0.0.1:PORT`: the endpoint to configure an SDK with.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The port the server listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The API key the server requires, if auth is on.
    pub fn api_key(&self) -> Option<&str> {
        self.opts.api_key.as_deref()
    }

    /// The options it was started with.
    pub fn options(&self) -> &ServerOptions {
        &self.opts
    }

    /// The server's temporary folder (its `raceway.toml` and `server.log`), removed on drop.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The process id of the server.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything the server printed so far (stdout and stderr), lossily decoded.
    pub fn log(&self) -> String {
        fs::read(self.dir.join("server.log"))
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    }

    /// `GET {url}{path}` with the key (if any); returns the status and body, whatever the
    /// status.
    ///
    /// # Panics
    /// On a transport error (no answer).
    pub fn get(&self, path: &str) -> (u16, String) {
        let url = format!("{}{path}", self.url());
        let mut req = self.agent.get(&url);
        if let Some(key) = self.api_key() {
            req = req.header("authorization", format!("Bearer {key}"));
        }
        let resp = req
            .call()
            .unwrap_or_else(|e| panic!("raceway-testkit: GET {url} failed: {e}"));
        read_reply(&url, resp)
    }

    /// `POST {url}/events` of `body` as `application/json`, with the key (if any); returns
    /// the answer, whatever its status.
    ///
    /// # Panics
    /// On a transport error (no answer).
    pub fn post_events(&self, body: &[u8]) -> PostReply {
        let url = format!("{}/events", self.url());
        let mut req = self.agent.post(&url).header("content-type", "application/json");
        if let Some(key) = self.api_key() {
            req = req.header("authorization", format!("Bearer {key}"));
        }
        let resp = req
            .send(body)
            .unwrap_or_else(|e| panic!("raceway-testkit: POST {url} failed: {e}"));
        let (status, body) = read_reply(&url, resp);
        PostReply { status, body }
    }

    /// `GET {path}`, expecting `200` and `{"success": true, "data": ...}`; returns `data`.
    fn get_data(&self, path: &str) -> Value {
        let (status, body) = self.get(path);
        let v: Value = match serde_json::from_str(&body) {
            Ok(v) if status == 200 => v,
            _ => panic!("raceway-testkit: GET {path} answered {status}: {body}"),
        };
        if v.get("success") != Some(&Value::Bool(true)) {
            panic!("raceway-testkit: GET {path} answered {status} without success: {body}");
        }
        match v.get("data") {
            Some(data) => data.clone(),
            None => panic!("raceway-testkit: GET {path}: no `data` in {body}"),
        }
    }

    /// `GET /status` → `data.events_captured`: how many distinct event ids the server
    /// holds. Events still waiting in the capture buffer are not counted yet.
    ///
    /// # Panics
    /// No answer, not `200`, or no `events_captured` number.
    pub fn events_captured(&self) -> u64 {
        let data = self.get_data("/status");
        data.get("events_captured")
            .and_then(Value::as_u64)
            .unwrap_or_else(|| panic!("raceway-testkit: /status: no data.events_captured: {data}"))
    }

    /// `GET /api/traces?page_size=1000` (every page): each trace id with its `event_count`,
    /// in the server's order. `event_count` counts an event once per time it arrived, so a
    /// sum above [`RealServer::events_captured`] means duplicates were sent.
    ///
    /// # Panics
    /// No answer, not `200`, or an unexpected shape.
    pub fn trace_event_counts(&self) -> Vec<(String, u64)> {
        let mut out = Vec::new();
        let mut page = 1u64;
        loop {
            let path = format!("/api/traces?page_size={TRACES_PAGE_SIZE}&page={page}");
            let data = self.get_data(&path);
            let traces = data
                .get("traces")
                .and_then(Value::as_array)
                .unwrap_or_else(|| panic!("raceway-testkit: {path}: no data.traces[]: {data}"));
            for t in traces {
                let id = t.get("trace_id").and_then(Value::as_str);
                let n = t.get("event_count").and_then(Value::as_u64);
                match (id, n) {
                    (Some(id), Some(n)) => out.push((id.to_owned(), n)),
                    _ => panic!("raceway-testkit: {path}: unexpected trace entry {t}"),
                }
            }
            let pages = data.get("total_pages").and_then(Value::as_u64).unwrap_or(1);
            if page >= pages || traces.is_empty() {
                return out;
            }
            page += 1;
        }
    }

    /// `GET /api/analyze/global` → `data.race_details[]` (and `data.potential_races`) as
    /// [`RacePairs`]. The analysis compares every pair of `StateChange`s the server holds, at
    /// query time; it lists at most 100 racing event pairs (see [`RacePairs::is_complete`]).
    ///
    /// # Panics
    /// No answer, not `200`, or no `race_details` array.
    pub fn race_pairs(&self) -> RacePairs {
        let data = self.get_data("/api/analyze/global");
        match data.get("race_details") {
            Some(Value::Array(details)) => RacePairs::from_details(
                details.clone(),
                data.get("potential_races").and_then(Value::as_u64),
            ),
            _ => panic!("raceway-testkit: /api/analyze/global: no data.race_details[]: {data}"),
        }
    }

    /// The server's verdict once it holds all `recorded` events: waits for them (at most
    /// 30 s, the server analyses about 1,000 a second), panics if any is missing, and
    /// returns [`RealServer::race_pairs`].
    pub fn race_pairs_after(&self, recorded: u64) -> RacePairs {
        let captured = self.wait_for_captured(recorded, Duration::from_secs(30));
        assert_eq!(captured, recorded, "events on the server");
        self.race_pairs()
    }

    /// Polls `GET /status` until `events_captured >= n` and it has not changed for a while
    /// (at least 300 ms and two engine ticks, so that events still in the capture buffer
    /// show up), or until `timeout`; returns the last value seen (compare it with `n`).
    ///
    /// With the default engine settings the server takes in about 1,000 events/s, so give
    /// `timeout` at least `n / 1000` seconds plus a margin.
    ///
    /// # Panics
    /// As [`RealServer::events_captured`].
    pub fn wait_for_captured(&self, n: u64, timeout: Duration) -> u64 {
        let stable_for = Duration::from_millis(self.opts.interval_ms.saturating_mul(2).saturating_add(100))
            .max(Duration::from_millis(300));
        let deadline = Instant::now() + timeout;
        let mut last = self.events_captured();
        let mut since = Instant::now();
        loop {
            let now = Instant::now();
            if last >= n && now.duration_since(since) >= stable_for {
                return last;
            }
            if now >= deadline {
                return last;
            }
            std::thread::sleep(Duration::from_millis(50));
            let v = self.events_captured();
            if v != last {
                last = v;
                since = Instant::now();
            }
        }
    }
}

impl Drop for RealServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = fs::remove_dir_all(&self.dir);
    }
}

enum Ready {
    Yes,
    PortTaken,
    Exited(String),
    Timeout,
}

/// `<workspace root>/../shared/raceway-server/raceway-server`.
fn default_server_path() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest
        .parent()
        .unwrap_or(manifest)
        .join("../shared/raceway-server/raceway-server")
}

/// The lookup of [`RealServer::locate`], from the value of `RACEWAY_SERVER_BIN` and the
/// default path: `Err` (the panic message) when the variable names a missing file.
fn locate_from(env_value: Option<OsString>, default: &Path) -> Result<Option<PathBuf>, String> {
    match env_value {
        Some(v) if !v.is_empty() => {
            let path = PathBuf::from(v);
            if path.is_file() {
                Ok(Some(path))
            } else {
                Err(format!(
                    "raceway-testkit: {SERVER_BIN_ENV} is set to {}, which does not exist \
                     (or is not a file)",
                    path.display()
                ))
            }
        }
        _ => Ok(default.is_file().then(|| default.to_path_buf())),
    }
}

/// What to do when the binary is not found, from the value of `RACEWAY_REQUIRE_SERVER`:
/// `Ok(the skip line)`, or `Err(the panic message)` when it is `1`.
fn missing_binary(require: Option<OsString>) -> Result<String, String> {
    if require.as_deref() == Some("1".as_ref()) {
        Err(format!(
            "raceway-testkit: {REQUIRE_SERVER_ENV}=1 but the real Raceway server was not \
             found: set {SERVER_BIN_ENV} to the raceway-server binary, or put it at {}",
            default_server_path().display()
        ))
    } else {
        Ok(format!(
            "skipped: the real Raceway server was not found (set {SERVER_BIN_ENV}, or put it \
             in ../shared/raceway-server/)"
        ))
    }
}

fn make_agent(timeout: Duration) -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .proxy(None)
        .timeout_connect(Some(Duration::from_secs(2)))
        .timeout_global(Some(timeout))
        .build()
        .into()
}

fn read_reply(url: &str, mut resp: ureq::http::Response<ureq::Body>) -> (u16, String) {
    let status = resp.status().as_u16();
    let body = resp
        .body_mut()
        .with_config()
        .limit(1 << 30)
        .read_to_string()
        .unwrap_or_else(|e| panic!("raceway-testkit: reading the answer of {url}: {e}"));
    (status, body)
}

/// A free port of `127.0.0.1` (bound, read, released: the server binds it right after).
fn free_port() -> io::Result<u16> {
    let listener = TcpListener::bind(("127.0.0.1", 0))?;
    Ok(listener.local_addr()?.port())
}

/// A new, empty folder under the system temp dir, named with the pid and a counter.
fn make_temp_dir() -> io::Result<PathBuf> {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let base = std::env::temp_dir();
    loop {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let dir = base.join(format!("raceway-real-server-{}-{n}", std::process::id()));
        match fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            // Left over by an earlier process with the same pid: take the next name.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
}

/// A TOML basic string.
fn toml_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\u{:04X}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The `raceway.toml` for `opts` on `port`.
fn config_toml(port: u16, opts: &ServerOptions) -> String {
    let auth = opts.api_key.is_some();
    let keys = opts
        .api_key
        .as_deref()
        .map(|k| format!("api_keys = [{}]\n", toml_string(k)))
        .unwrap_or_default();
    format!(
        "[server]\n\
         host = \"127.0.0.1\"\n\
         port = {port}\n\
         verbose = false\n\
         cors_enabled = false\n\
         rate_limit_enabled = {rl}\n\
         rate_limit_rpm = {rpm}\n\
         auth_enabled = {auth}\n\
         {keys}\
         [storage]\n\
         backend = \"memory\"\n\
         [engine]\n\
         buffer_size = {buffer}\n\
         batch_size = {batch}\n\
         flush_interval_ms = {interval}\n\
         [race_detection]\n\
         enabled = true\n\
         [anomaly_detection]\n\
         enabled = true\n\
         [distributed_tracing]\n\
         enabled = true\n\
         [logging]\n\
         level = \"error\"\n",
        rl = opts.rate_limit_rpm.is_some(),
        rpm = opts.rate_limit_rpm.unwrap_or(1000),
        buffer = opts.buffer,
        batch = opts.batch,
        interval = opts.interval_ms,
    )
}

/// Writes the config into `dir` and spawns `bin serve` there, output to `server.log`.
fn spawn(bin: &Path, dir: &Path, port: u16, opts: &ServerOptions) -> io::Result<Child> {
    fs::write(dir.join("raceway.toml"), config_toml(port, opts))?;
    let log = fs::File::create(dir.join("server.log"))?;
    let log2 = log.try_clone()?;
    Command::new(bin)
        .arg("serve")
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log2)
        .spawn()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locate_prefers_the_env_variable_and_checks_it() {
        let here = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml");
        let missing = PathBuf::from("/nonexistent/raceway-server");
        // Set and present: that file, whatever the default.
        assert_eq!(
            locate_from(Some(here.clone().into()), &missing),
            Ok(Some(here.clone()))
        );
        // Set and missing: an error naming the path.
        let err = locate_from(Some(missing.clone().into()), &here).unwrap_err();
        assert!(err.contains("/nonexistent/raceway-server"), "{err}");
        // A folder is not a binary.
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        assert!(locate_from(Some(dir.into()), &here).is_err());
    }

    #[test]
    fn locate_falls_back_to_the_default_path() {
        let here = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml");
        let missing = PathBuf::from("/nonexistent/raceway-server");
        assert_eq!(locate_from(None, &here), Ok(Some(here.clone())));
        assert_eq!(locate_from(Some(OsString::new()), &here), Ok(Some(here)));
        // Not found anywhere: None, the skip path.
        assert_eq!(locate_from(None, &missing), Ok(None));
        assert_eq!(locate_from(Some(OsString::new()), &missing), Ok(None));
    }

    #[test]
    fn default_path_is_beside_the_workspace() {
        let p = default_server_path();
        assert!(
            p.ends_with("../shared/raceway-server/raceway-server"),
            "{}",
            p.display()
        );
        assert_eq!(
            p.parent()
                .and_then(Path::parent)
                .and_then(Path::parent)
                .and_then(Path::parent),
            Path::new(env!("CARGO_MANIFEST_DIR")).parent()
        );
    }

    #[test]
    fn missing_binary_skips_unless_required() {
        let line = missing_binary(None).unwrap();
        assert!(
            line.starts_with("skipped: the real Raceway server was not found"),
            "{line}"
        );
        assert!(!line.contains('\n'));
        assert!(missing_binary(Some("0".into())).is_ok());
        assert!(missing_binary(Some("".into())).is_ok());
        let err = missing_binary(Some("1".into())).unwrap_err();
        assert!(
            err.contains(REQUIRE_SERVER_ENV) && err.contains(SERVER_BIN_ENV),
            "{err}"
        );
    }

    #[test]
    fn ingest_counts_parse() {
        assert_eq!(parse_ingest_counts("Ingested 18 events"), Some((18, 0)));
        assert_eq!(
            parse_ingest_counts("Ingested 50 events, 150 errors"),
            Some((50, 150))
        );
        assert_eq!(parse_ingest_counts("Ingested x events"), None);
        assert_eq!(parse_ingest_counts("Unauthorized"), None);
        let reply = PostReply {
            status: 206,
            body: r#"{"success":true,"data":"Ingested 1500 events, 1500 errors","error":null}"#.into(),
        };
        assert_eq!(reply.counts(), Some((1500, 1500)));
    }

    #[test]
    fn race_pairs_normalise_and_dedupe() {
        let d = |v: &str, a: &str, b: &str| serde_json::json!({"variable": v, "event1_thread": a, "event2_thread": b});
        let r = RacePairs::from_details(
            vec![
                d("x", "t-b", "t-a"),
                d("x", "t-a", "t-b"),
                d("x", "t-c", "t-a"),
                d("y", "t-z", "t-z"),
                serde_json::json!({"unexpected": true}),
            ],
            None,
        );
        assert_eq!(r.variables(), ["x", "y"]);
        assert_eq!(r.pairs("x"), [("t-a", "t-b"), ("t-a", "t-c")]);
        assert_eq!(r.count("x"), 2);
        assert_eq!(r.count("nope"), 0);
        assert!(r.pairs("nope").is_empty());
        assert!(r.contains("x", "t-b", "t-a"));
        assert_eq!(r.total(), 3);
        assert_eq!(r.details().len(), 5);
        assert!(r.is_complete());
        assert_eq!(r.potential_races(), 5);
        let shown = r.to_string();
        assert!(shown.contains("x: (t-a | t-b) (t-a | t-c)"), "{shown}");
        assert!(format!("{r:?}").contains("\"t-a\""));
        assert!(!shown.contains("INCOMPLETE"));
        let cut = RacePairs::from_details(vec![d("x", "a", "b")], Some(450));
        assert!(!cut.is_complete());
        assert_eq!(cut.potential_races(), 450);
        assert!(cut.to_string().contains("INCOMPLETE"), "{cut}");
    }

    #[test]
    fn config_has_every_option() {
        let toml = config_toml(
            4321,
            &ServerOptions {
                api_key: Some("k\"1".into()),
                rate_limit_rpm: Some(7),
                buffer: 50,
                batch: 10,
                interval_ms: 20,
            },
        );
        for line in [
            "port = 4321",
            "auth_enabled = true",
            r#"api_keys = ["k\"1"]"#,
            "rate_limit_enabled = true",
            "rate_limit_rpm = 7",
            "backend = \"memory\"",
            "buffer_size = 50",
            "batch_size = 10",
            "flush_interval_ms = 20",
        ] {
            assert!(toml.lines().any(|l| l == line), "{line} missing in\n{toml}");
        }
        let toml = config_toml(1, &ServerOptions::default());
        assert!(toml.contains("auth_enabled = false\n[storage]"), "{toml}");
        assert!(toml.contains("rate_limit_enabled = false"));
        assert!(!toml.contains("api_keys"));
    }
}

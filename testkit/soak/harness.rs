//! The soak harness shared by `raceway-{blocking,rt-tokio,rt-async-std}/tests/soak.rs`
//! (included with `#[path]`; not part of the testkit crate).
//!
//! The collector runs in a **child process** (this same test binary, re-run with
//! `RACEWAY_SOAK_CHILD=1` on its `collector_child` test), so the peak RSS measured here is
//! the SDK's alone: the collector keeps every event it ingested, hundreds of MiB for a
//! million. The parent talks to it over stdin/stdout lines (`restart`, `script ...`,
//! `count`, `verify N`, `quit`).
//!
//! Scenario (N = `RACEWAY_SOAK_EVENTS`, default 1,000,000): one flow records `N`
//! `StateChange`s whose `new_value` is its index `0..N`, pacing itself lightly on the
//! queue length (as a busy service would, never blocking for long), while the collector
//! answers 429 (`Retry-After: 1`) and 503s at 20 %, restarts at 35 %, answers 503/429
//! at 55 % and restarts again at 75 %. Then the client flushes and shuts down.
//!
//! Checks: every index the collector ingested, ingested once; arrived + counted drops
//! (queue full) = N and no other drop; the client's `sent` counter = arrived; peak RSS
//! (`VmHWM`) growth within [`rss_bound_kib`] of the configuration.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use raceway_proto::client::Stats;
use raceway_proto::config::Config;

/// Env var holding the event count.
pub const EVENTS_VAR: &str = "RACEWAY_SOAK_EVENTS";
const CHILD_VAR: &str = "RACEWAY_SOAK_CHILD";

/// Events to push: `RACEWAY_SOAK_EVENTS`, default 1,000,000.
pub fn events() -> u64 {
    std::env::var(EVENTS_VAR)
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(1_000_000)
}

/// Body of the `collector_child` test: a no-op unless started by [`ChildCollector::spawn`].
pub fn collector_child_main() {
    if std::env::var_os(CHILD_VAR).is_none() {
        return;
    }
    use raceway_testkit::{Collector, Reply};
    let c = Collector::start();
    let mut out = std::io::stdout().lock();
    writeln!(out, "SOAK PORT {}", c.port()).unwrap();
    out.flush().unwrap();
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        let mut words = line.split_whitespace();
        let reply = match words.next() {
            Some("restart") => match c.restart() {
                Ok(()) => "OK".to_string(),
                Err(e) => format!("ERR {e}"),
            },
            Some("script") => {
                let replies = words
                    .map(|w| match w.split_once(':') {
                        Some((s, ra)) => Reply::StatusRetryAfter(s.parse().unwrap(), ra.parse().unwrap()),
                        None => Reply::Status(w.parse().unwrap()),
                    })
                    .collect();
                c.script(replies);
                "OK".to_string()
            }
            Some("remaining") => format!("REMAINING {}", c.script_remaining()),
            Some("count") => format!("COUNT {} {}", c.event_count(), c.post_count()),
            Some("verify") => {
                let n: u64 = words.next().unwrap().parse().unwrap();
                let mut seen = vec![0u8; n as usize];
                let (mut dups, mut bad) = (0u64, 0u64);
                for ev in c.events() {
                    let idx = match &ev.kind {
                        raceway_proto::EventKind::StateChange { new_value, .. } => new_value.as_u64(),
                        _ => None,
                    };
                    match idx.filter(|&i| i < n) {
                        Some(i) => {
                            let s = &mut seen[i as usize];
                            if *s > 0 {
                                dups += 1;
                            }
                            *s = s.saturating_add(1);
                        }
                        None => bad += 1,
                    }
                }
                let arrived = seen.iter().filter(|&&s| s > 0).count();
                let statuses = c.statuses();
                let count = |code: u16| statuses.iter().filter(|s| **s == Some(code)).count();
                format!(
                    "VERIFY {arrived} {dups} {bad} {} {} {} {}",
                    statuses.len(),
                    count(200),
                    count(429),
                    count(503)
                )
            }
            Some("quit") | None => break,
            Some(other) => format!("ERR unknown {other}"),
        };
        writeln!(out, "SOAK {reply}").unwrap();
        out.flush().unwrap();
    }
    c.stop();
}

/// The child process running the collector.
pub struct ChildCollector {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
}

/// What the collector saw, from `verify`.
#[derive(Debug, Clone, Copy)]
pub struct Verified {
    /// Distinct indices ingested.
    pub arrived: u64,
    /// Indices ingested more than once (extra copies).
    pub duplicates: u64,
    /// Events that are not one of ours.
    pub foreign: u64,
    /// POSTs, and how many were answered 200, 429, 503.
    pub posts: u64,
    pub ok: u64,
    pub s429: u64,
    pub s503: u64,
}

impl ChildCollector {
    /// Re-runs this test binary as the collector.
    pub fn spawn() -> Self {
        let exe = std::env::current_exe().expect("current_exe");
        let mut child = Command::new(exe)
            .args([
                "collector_child",
                "--exact",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_VAR, "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn the collector child");
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let mut me = Self {
            child,
            stdin,
            stdout,
            url: String::new(),
        };
        let port = me.read_reply();
        let port = port.strip_prefix("PORT ").expect("PORT line").to_string();
        me.url = format!("http://127.0.0.1:{port}");
        me
    }

    fn read_reply(&mut self) -> String {
        let mut line = String::new();
        loop {
            line.clear();
            let n = self
                .stdout
                .read_line(&mut line)
                .expect("read from the collector child");
            assert!(n > 0, "the collector child exited");
            // libtest prints `test collector_child ... ` without a newline before it.
            if let Some(at) = line.find("SOAK ") {
                return line.trim_end()[at + 5..].to_string();
            }
        }
    }

    /// Sends one command line, returns the reply (without `SOAK `).
    pub fn cmd(&mut self, line: &str) -> String {
        writeln!(self.stdin, "{line}").expect("write to the collector child");
        self.stdin.flush().unwrap();
        self.read_reply()
    }

    /// `verify n`.
    pub fn verify(&mut self, n: u64) -> Verified {
        let r = self.cmd(&format!("verify {n}"));
        let v: Vec<u64> = r
            .strip_prefix("VERIFY ")
            .expect("VERIFY reply")
            .split(' ')
            .map(|x| x.parse().unwrap())
            .collect();
        Verified {
            arrived: v[0],
            duplicates: v[1],
            foreign: v[2],
            posts: v[3],
            ok: v[4],
            s429: v[5],
            s503: v[6],
        }
    }
}

impl Drop for ChildCollector {
    fn drop(&mut self) {
        let _ = writeln!(self.stdin, "quit");
        let _ = self.stdin.flush();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A field of /proc/self/status in KiB (`VmHWM`: peak resident set).
pub fn status_kib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// The soak configuration: defaults (queue 65,536, batches of 512, 4 pending batches,
/// 1 MiB bodies), short timings so restarts cost milliseconds, and no pacing to the real
/// server's capacity (the collector takes whatever it gets, as fast as it can).
pub fn config(service: &str, url: &str) -> Config {
    let mut c = Config::new(service);
    c.endpoint = Some(url.to_string());
    c.export.server_capacity = None;
    c.instance_id = Some("soak".into());
    c.export.flush_interval = Duration::from_millis(50);
    c.export.initial_backoff = Duration::from_millis(50);
    c.export.max_backoff = Duration::from_millis(500);
    c.export.max_retry_after = Duration::from_secs(1);
    c.request_timeout = Duration::from_secs(10);
    c.connect_timeout = Duration::from_millis(500);
    c.shutdown_timeout = Duration::from_secs(30);
    c
}

/// The peak-RSS bound implied by a configuration, in KiB: every event the client may hold
/// (queue + pending batches) at 2 KiB each (a recorded `StateChange` is ~0.5 KiB), plus
/// one encode buffer and one HTTP body copy per pending batch, plus 24 MiB for the
/// runtime, HTTP client and allocator slack.
pub fn rss_bound_kib(c: &Config) -> u64 {
    let e = &c.export;
    let events = (e.queue_capacity + e.max_pending_batches * e.max_batch_events) as u64;
    events * 2 + (2 * (e.max_pending_batches as u64 + 1) * e.max_body_bytes as u64) / 1024 + 24 * 1024
}

/// Drives the scenario. `record(i)` records event `i` in the caller's flow; `queued()` is
/// the client's queue length; `stats()` its counters; `finish()` flushes and shuts down.
pub struct Soak<'a> {
    pub collector: &'a mut ChildCollector,
    pub n: u64,
    pub capacity: usize,
    pub faults_done: u32,
    pub hwm_before: u64,
    pub started: Instant,
    pub waits: u64,
}

impl<'a> Soak<'a> {
    pub fn new(collector: &'a mut ChildCollector, n: u64, config: &Config) -> Self {
        Self {
            collector,
            n,
            capacity: config.export.queue_capacity,
            faults_done: 0,
            hwm_before: status_kib("VmHWM").unwrap_or(0),
            started: Instant::now(),
            waits: 0,
        }
    }

    /// Call after recording event `i` (cheap unless `i` is a multiple of 256): injects the
    /// faults at their points and paces the producer on the queue length, at most 20 ms
    /// per call, so during an outage the queue fills and drops.
    pub fn tick(&mut self, i: u64, queued: impl Fn() -> usize) {
        if i % 256 != 0 {
            return;
        }
        let at = |pct: u64| self.n * pct / 100;
        if self.faults_done < 4 && i >= at([20, 35, 55, 75][self.faults_done as usize]) {
            // The previous script is answered in full before the next fault (a new script
            // would replace what is left of it).
            let deadline = Instant::now() + Duration::from_secs(30);
            while self.collector.cmd("remaining") != "REMAINING 0" && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        if self.faults_done == 0 && i >= at(20) {
            self.faults_done = 1;
            assert_eq!(self.collector.cmd("script 429:1 503 503"), "OK");
        } else if self.faults_done == 1 && i >= at(35) {
            self.faults_done = 2;
            assert_eq!(self.collector.cmd("restart"), "OK");
        } else if self.faults_done == 2 && i >= at(55) {
            self.faults_done = 3;
            assert_eq!(self.collector.cmd("script 503 429:1 503"), "OK");
        } else if self.faults_done == 3 && i >= at(75) {
            self.faults_done = 4;
            assert_eq!(self.collector.cmd("restart"), "OK");
        }
        let start = Instant::now();
        while queued() > self.capacity / 2 && start.elapsed() < Duration::from_millis(20) {
            self.waits += 1;
            std::thread::sleep(Duration::from_micros(500));
        }
    }

    /// After `finish` (flush + shutdown): checks and prints the results.
    pub fn check(self, client: &str, config: &Config, stats: Stats, finish_ok: bool) {
        let took = self.started.elapsed();
        let hwm_after = status_kib("VmHWM").unwrap_or(0);
        let v = self.collector.verify(self.n);
        let e = stats.export;
        let bound = rss_bound_kib(config);
        let grew = hwm_after.saturating_sub(self.hwm_before);
        println!(
            "SOAK-RESULT client={client} events={} arrived={} duplicates={} foreign={} \
             dropped_queue_full={} dropped_other={} sent={} retried={} posts={} ok={} \
             s429={} s503={} faults={} finish_ok={finish_ok} secs={:.1} \
             hwm_before_kib={} hwm_after_kib={} grew_kib={grew} bound_kib={bound}",
            self.n,
            v.arrived,
            v.duplicates,
            v.foreign,
            e.dropped_queue_full,
            e.dropped() - e.dropped_queue_full,
            e.sent,
            e.retried,
            v.posts,
            v.ok,
            v.s429,
            v.s503,
            self.faults_done,
            took.as_secs_f64(),
            self.hwm_before,
            hwm_after,
        );
        assert_eq!(self.faults_done, 4, "every fault injected");
        assert!(finish_ok, "flush/shutdown did not complete");
        assert_eq!(stats.core.recorded, self.n, "every event recorded");
        assert_eq!(v.duplicates, 0, "events ingested twice");
        assert_eq!(v.foreign, 0, "events that are not ours");
        assert_eq!(
            e.dropped() - e.dropped_queue_full,
            0,
            "drops other than queue-full: {e:?}"
        );
        assert_eq!(e.sent, v.arrived, "client's sent counter vs what arrived");
        assert_eq!(
            v.arrived + e.dropped_queue_full,
            self.n,
            "arrived + dropped = recorded"
        );
        assert!(v.s429 >= 2 && v.s503 >= 4, "the faults were answered: {v:?}");
        assert!(grew <= bound, "peak RSS grew {grew} KiB > bound {bound} KiB");
    }
}

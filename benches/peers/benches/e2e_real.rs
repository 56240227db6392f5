//! Issue 11's end-to-end baseline: process CPU per event delivered to the REAL Raceway
//! server (raceway-testkit's `RealServer`), and the caller's wall time per event.
//!
//! For each client, a fresh server; for each of `ROUNDS` rounds (SDK clients; one for 0.1), `N` (default 9,000: the server's buffer of 10,000
//! never fills) `track_state_change` calls in one flow, exporting with the default pacing
//! (the real server's capacity), then flush, then `wait_for_captured(N)`. This process's
//! CPU time (`CLOCK_PROCESS_CPUTIME_ID`, as `getrusage(RUSAGE_SELF)` at ns resolution: caller + encoder + HTTP + every other thread of this
//! process; the server is a child process and is not counted) is read before the first
//! record and after the flush, and again once the server has captured all `N`.
//! `raceway` 0.1 has no public flush: it records in bursts of 1,000 (its once-a-second
//! POST of a burst stays under the server's 2 MiB body limit) and sleeps 1.2 s after each
//! for its timer; "to flush" is read after the last of those sleeps. "To captured"
//! includes `wait_for_captured`'s polling of the server (a query every 50 ms).
//!
//! The CPU to the flush is also split by thread (`cpu_by_thread_name`): the SDK's
//! `raceway-exporter` (encoding) and `raceway-sender` (HTTP) threads, and every other
//! thread together (the caller among them).
//!
//! Prints one `PEERS_E2E {json}` line per round. Skips (one line) without the server.
//!
//! `cargo bench --manifest-path benches/peers/Cargo.toml --bench e2e_real`
#![allow(missing_docs)]

use std::cell::RefCell;
use std::time::{Duration, Instant};

use raceway_peers_bench::{cpu_by_thread_name, process_cpu_ns, thread_cpu_ns};
use raceway_proto::config::Config;
use raceway_testkit::RealServer;

/// Rounds per SDK client (one server each client; every round waits until the server has
/// captured its events, so its buffer is empty again before the next).
const ROUNDS: usize = 3;

struct Run {
    client: &'static str,
    n: u64,
    caller_wall: Duration,
    caller_cpu: u64,
    cpu_to_flush: Option<u64>,
    cpu_to_captured: u64,
    captured: u64,
    secs: f64,
    /// Seconds from the first record to the flush's return, and this process's idle CPU
    /// rate (ns/s) measured just before: `to_flush_less_idle` subtracts their product.
    secs_to_flush: f64,
    idle_ns_per_sec: f64,
    /// Per-thread CPU from the first record to the flush's return (ns): the SDK's
    /// exporter and sender threads, and all other threads of this process together
    /// (the caller among them). `None` for 0.1, whose threads are tokio's.
    threads: Option<ThreadSplit>,
}

#[derive(Clone, Copy)]
struct ThreadSplit {
    exporter: u64,
    sender: u64,
    others: u64,
}

impl ThreadSplit {
    fn between(
        before: &std::collections::BTreeMap<String, u64>,
        after: &std::collections::BTreeMap<String, u64>,
    ) -> Self {
        let mut split = ThreadSplit {
            exporter: 0,
            sender: 0,
            others: 0,
        };
        for (name, &ns) in after {
            let d = ns.saturating_sub(before.get(name).copied().unwrap_or(0));
            match name.as_str() {
                // `comm` holds 15 bytes: "raceway-exporte".
                n if n.starts_with("raceway-export") => split.exporter += d,
                "raceway-sender" => split.sender += d,
                _ => split.others += d,
            }
        }
        split
    }
}

impl Run {
    fn print(&self) {
        let n = self.n as f64;
        let flush = self
            .cpu_to_flush
            .map(|c| format!("{:.1}", c as f64 / n))
            .unwrap_or_else(|| "null".into());
        let less = self
            .cpu_to_flush
            .map(|c| {
                format!(
                    "{:.1}",
                    (c as f64 - self.idle_ns_per_sec * self.secs_to_flush).max(0.0) / n
                )
            })
            .unwrap_or_else(|| "null".into());
        let per = |v: u64| format!("{:.1}", v as f64 / n);
        let (exporter, sender, others) = match self.threads {
            Some(t) => (per(t.exporter), per(t.sender), per(t.others)),
            None => ("null".into(), "null".into(), "null".into()),
        };
        println!(
            "PEERS_E2E {{\"client\":\"{}\",\"events\":{},\"captured\":{},\"secs\":{:.2},\
             \"caller_wall_ns_per_event\":{:.1},\"caller_cpu_ns_per_event\":{:.1},\
             \"process_cpu_ns_per_event_to_flush\":{flush},\"process_cpu_ns_per_event_to_flush_less_idle\":{less},\
             \"exporter_cpu_ns_per_event\":{exporter},\"sender_cpu_ns_per_event\":{sender},\"other_threads_cpu_ns_per_event\":{others},\
             \"secs_to_flush\":{:.2},\"idle_cpu_ns_per_sec\":{:.0},\"process_cpu_ns_per_event_to_captured\":{:.1}}}",
            self.client,
            self.n,
            self.captured,
            self.secs,
            self.caller_wall.as_nanos() as f64 / n,
            self.caller_cpu as f64 / n,
            self.secs_to_flush,
            self.idle_ns_per_sec,
            self.cpu_to_captured as f64 / n,
        );
    }
}

fn config(url: &str) -> Config {
    let mut c = Config::new("e2e");
    c.endpoint = Some(url.to_string());
    c.instance_id = Some("e2e-1".into());
    c.shutdown_timeout = Duration::from_secs(5);
    // Default pacing (`export.server_capacity` left at the real server's defaults) and the
    // default queue (65,536), which holds all N.
    c
}

/// Idle CPU of this process over `d` (ns per second), for judging the numbers.
fn idle_cpu_rate(d: Duration) -> f64 {
    let c0 = process_cpu_ns();
    std::thread::sleep(d);
    (process_cpu_ns() - c0) as f64 / d.as_secs_f64()
}

fn sdk_run(
    name: &'static str,
    n: u64,
    record_all: &dyn Fn(u64) -> (Duration, u64),
    flush: &dyn Fn() -> bool,
    server: &RealServer,
    idle_ns_per_sec: f64,
) -> Run {
    let already = server.events_captured();
    let start = Instant::now();
    let t0 = cpu_by_thread_name();
    let c0 = process_cpu_ns();
    let (caller_wall, caller_cpu) = record_all(n);
    assert!(flush(), "{name}: flush");
    let c1 = process_cpu_ns();
    let threads = ThreadSplit::between(&t0, &cpu_by_thread_name());
    let secs_to_flush = start.elapsed().as_secs_f64();
    let captured = server.wait_for_captured(already + n, Duration::from_secs(120)) - already;
    let c2 = process_cpu_ns();
    Run {
        client: name,
        n,
        caller_wall,
        caller_cpu,
        cpu_to_flush: Some(c1 - c0),
        cpu_to_captured: c2 - c0,
        captured,
        secs: start.elapsed().as_secs_f64(),
        secs_to_flush,
        idle_ns_per_sec,
        threads: Some(threads),
    }
}

fn main() {
    let n: u64 = std::env::var("RACEWAY_PEERS_E2E_EVENTS")
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(9_000);
    assert!(
        n <= 9_000,
        "keep N at most 9,000 so the server's buffer never fills"
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");

    // raceway-blocking
    {
        let Some(server) = RealServer::start_default() else {
            return;
        };
        let client = raceway_blocking::RacewayClient::from_config(config(&server.url())).unwrap();
        let idle = idle_cpu_rate(Duration::from_secs(2));
        println!("# idle process CPU with the blocking client: {idle:.0} ns/s");
        for _round in 0..ROUNDS {
            let run = sdk_run(
                "raceway-blocking",
                n,
                &|n| {
                    let _flow = client.start_trace();
                    let (t0, c0) = (Instant::now(), thread_cpu_ns());
                    for i in 0..n as i64 {
                        client.track_state_change("alice.balance", Some(i), i + 1, "Write");
                    }
                    (t0.elapsed(), thread_cpu_ns() - c0)
                },
                &|| client.flush(Duration::from_secs(120)).is_ok(),
                &server,
                idle,
            );
            let e = client.stats().export;
            println!(
                "# raceway-blocking: sent {}, dropped {}, in {} bodies ({} answered 206), {} retried, {} split",
                e.sent, e.dropped(), e.batches_sent, e.batches_partial, e.retried, e.split
            );
            run.print();
        }
        let _ = client.shutdown_timeout(Duration::from_secs(5));
    }

    // raceway-rt-tokio
    {
        let Some(server) = RealServer::start_default() else {
            return;
        };
        let client = rt
            .block_on(async { raceway_rt_tokio::RacewayClient::from_config(config(&server.url())).unwrap() });
        let idle = idle_cpu_rate(Duration::from_secs(2));
        println!("# idle process CPU with the tokio client: {idle:.0} ns/s");
        for _round in 0..ROUNDS {
            let run = sdk_run(
                "raceway-rt-tokio",
                n,
                &|n| {
                    let (out, _) = rt.block_on(client.in_new_trace(async {
                        let (t0, c0) = (Instant::now(), thread_cpu_ns());
                        for i in 0..n as i64 {
                            client.track_state_change("alice.balance", Some(i), i + 1, "Write");
                        }
                        (t0.elapsed(), thread_cpu_ns() - c0)
                    }));
                    out
                },
                &|| client.flush_blocking(Duration::from_secs(120)).is_ok(),
                &server,
                idle,
            );
            let e = client.stats().export;
            println!(
                "# raceway-rt-tokio: sent {}, dropped {}, in {} bodies ({} answered 206), {} retried, {} split",
                e.sent, e.dropped(), e.batches_sent, e.batches_partial, e.retried, e.split
            );
            run.print();
        }
        let _ = client.shutdown_timeout(Duration::from_secs(5));
    }

    // raceway 0.1
    {
        let Some(server) = RealServer::start_default() else {
            return;
        };
        let client = rt.block_on(async { raceway01::RacewayClient::new(&server.url(), "e2e") });
        let idle = idle_cpu_rate(Duration::from_secs(2));
        println!("# idle process CPU with raceway 0.1: {idle:.0} ns/s");
        const BURST: u64 = 1_000;
        let start = Instant::now();
        let c0 = process_cpu_ns();
        let mut wall = Duration::ZERO;
        let mut cpu = 0;
        let ctx = raceway01::RacewayContext::new(
            "5f1c8d2e-8a7b-4c3d-9e2f-1a2b3c4d5e6f".into(),
            "e2e".into(),
            "e2e-1".into(),
        );
        raceway01::RACEWAY_CONTEXT.sync_scope(RefCell::new(ctx), || {
            let mut i = 0i64;
            while (i as u64) < n {
                let (t0, tc) = (Instant::now(), thread_cpu_ns());
                for _ in 0..BURST.min(n - i as u64) {
                    client.track_state_change("alice.balance", Some(i), i + 1, "Write");
                    i += 1;
                }
                wall += t0.elapsed();
                cpu += thread_cpu_ns() - tc;
                // its timer posts what it holds once a second (no polling meanwhile: the
                // server's queries would count as this process's CPU)
                std::thread::sleep(Duration::from_millis(1_200));
            }
        });
        let c1 = process_cpu_ns();
        let secs_to_flush = start.elapsed().as_secs_f64();
        let captured = server.wait_for_captured(n, Duration::from_secs(120));
        let c2 = process_cpu_ns();
        Run {
            client: "raceway-0.1",
            n,
            caller_wall: wall,
            caller_cpu: cpu,
            cpu_to_flush: Some(c1 - c0),
            cpu_to_captured: c2 - c0,
            captured,
            secs: start.elapsed().as_secs_f64(),
            secs_to_flush,
            idle_ns_per_sec: idle,
            threads: None,
        }
        .print();
    }
    rt.shutdown_timeout(Duration::from_secs(1));
}

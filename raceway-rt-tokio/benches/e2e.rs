//! End-to-end numbers for every client of the workspace (not criterion: one measured run
//! each, printed as `E2E {json}` lines that `scripts/benchmarks.sh` puts in BENCHMARKS.md):
//!
//! - `events_per_sec`: `RACEWAY_E2E_EVENTS` (default 200,000) `StateChange`s recorded in
//!   one flow and sent to a real local collector (raceway-testkit, in this process: it
//!   decodes every event, sharing the machine's cores with the client), from the first
//!   record to the end of the final flush. The producer waits while the queue is more
//!   than half full, so nothing is dropped (checked).
//! - `bytes_per_event`: request body bytes received by the collector per event, same run.
//! - `bytes_per_queued_event`: live heap bytes per event held by a client whose collector
//!   is down (queue capacity raised to 100,000; counted by a global counting allocator,
//!   `stats_alloc`, as allocated minus freed while recording).
//!
//! `cargo bench -p raceway-rt-tokio --bench e2e`
#![allow(missing_docs)]

use raceway_proto::client::AdapterApi as _;
use std::alloc::System;
use std::time::{Duration, Instant};

use raceway_proto::config::Config;
use raceway_testkit::Collector;
use stats_alloc::{Region, StatsAlloc, INSTRUMENTED_SYSTEM};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const QUEUE_FOR_MEMORY: usize = 100_000;

fn config(url: &str) -> Config {
    let mut c = Config::new("e2e");
    c.endpoint = Some(url.to_string());
    c.instance_id = Some("bench".into());
    c.shutdown_timeout = Duration::from_millis(200);
    c.connect_timeout = Duration::from_millis(200);
    // The collector is not the real server: no pacing to the real server's capacity.
    c.export.server_capacity = None;
    c
}

fn record_one(i: u64) -> (&'static str, Option<u64>, u64, &'static str) {
    ("alice.balance", Some(i), i + 1, "Write")
}

/// Records `n` events in one flow; `pace(i)` is called after each.
type Run<'a> = &'a dyn Fn(u64, &mut dyn FnMut(u64));
/// Builds a client for a config and hands its operations to the callback.
type WithClient<'a> = &'a dyn Fn(&Config, &mut dyn FnMut(Ops<'_>));

/// Client-agnostic operations.
struct Ops<'a> {
    run: Run<'a>,
    queued: &'a dyn Fn() -> usize,
    flush: &'a dyn Fn(Duration) -> bool,
    sent_dropped: &'a dyn Fn() -> (u64, u64, usize),
}

fn measure(name: &str, n: u64, ops_for: WithClient<'_>) {
    // End to end.
    let collector = Collector::start();
    let cfg = config(&collector.url());
    let cap = cfg.export.queue_capacity;
    let mut e2e = None;
    ops_for(&cfg, &mut |ops: Ops<'_>| {
        let start = Instant::now();
        (ops.run)(n, &mut |i| {
            if i % 64 == 0 {
                while (ops.queued)() > cap / 2 {
                    std::thread::sleep(Duration::from_micros(200));
                }
            }
        });
        assert!((ops.flush)(Duration::from_secs(300)), "{name}: flush");
        let took = start.elapsed();
        let (sent, dropped, _) = (ops.sent_dropped)();
        assert_eq!((sent, dropped), (n, 0), "{name}: every event sent, none dropped");
        e2e = Some(took);
    });
    let took = e2e.unwrap();
    assert!(collector.wait_for_events(n as usize, Duration::from_secs(30)));
    let bytes: usize = collector.body_sizes().iter().sum();
    let posts = collector.post_count();
    drop(collector);

    // Memory per queued event: the collector is down.
    let down = Collector::start();
    let mut cfg = config(&down.url());
    down.stop();
    cfg.export.queue_capacity = QUEUE_FOR_MEMORY;
    let mut per_event = 0.0;
    ops_for(&cfg, &mut |ops: Ops<'_>| {
        let m = QUEUE_FOR_MEMORY as u64;
        let region = Region::new(GLOBAL);
        (ops.run)(m, &mut |_| {});
        let s = region.change();
        let live = s.bytes_allocated as i64 - s.bytes_deallocated as i64;
        let (sent, dropped, held) = (ops.sent_dropped)();
        assert_eq!(sent, 0);
        per_event = live as f64 / held.max(1) as f64;
        println!(
            "# {name}: {m} recorded, held {held} (queue + exporter), dropped {dropped}, live heap {live} B"
        );
    });

    println!(
        "E2E {{\"client\":\"{name}\",\"events\":{n},\"secs\":{:.3},\"events_per_sec\":{:.0},\"posts\":{posts},\
         \"bytes_per_event\":{:.1},\"bytes_per_queued_event\":{:.0}}}",
        took.as_secs_f64(),
        n as f64 / took.as_secs_f64(),
        bytes as f64 / n as f64,
        per_event
    );
}

fn main() {
    // `cargo bench` passes `--bench`; a filter argument is not supported.
    let n: u64 = std::env::var("RACEWAY_E2E_EVENTS")
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(200_000);

    measure("raceway-rt-tokio", n, &|cfg, with| {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let c = rt.block_on(async { raceway_rt_tokio::RacewayClient::from_config(cfg.clone()).unwrap() });
        with(Ops {
            run: &|n, pace| {
                let _ = rt.block_on(c.in_new_trace(async {
                    for i in 0..n {
                        let (v, o, x, a) = record_one(i);
                        c.track_state_change(v, o, x, a);
                        pace(i);
                    }
                }));
            },
            queued: &|| c.sink().queued(),
            flush: &|t| c.flush_blocking(t).is_ok(),
            sent_dropped: &|| {
                let e = c.stats().export;
                (e.sent, e.dropped(), (e.recorded - e.sent) as usize)
            },
        });
        let _ = c.shutdown_timeout(Duration::from_millis(200));
    });

    measure("raceway-blocking", n, &|cfg, with| {
        let c = raceway_blocking::RacewayClient::from_config(cfg.clone()).unwrap();
        with(Ops {
            run: &|n, pace| {
                let _flow = c.start_trace();
                for i in 0..n {
                    let (v, o, x, a) = record_one(i);
                    c.track_state_change(v, o, x, a);
                    pace(i);
                }
            },
            queued: &|| c.sink().queued(),
            flush: &|t| c.flush(t).is_ok(),
            sent_dropped: &|| {
                let e = c.stats().export;
                (e.sent, e.dropped(), (e.recorded - e.sent) as usize)
            },
        });
        let _ = c.shutdown_timeout(Duration::from_millis(200));
    });

    measure("raceway-rt-async-std", n, &|cfg, with| {
        let c = raceway_rt_async_std::RacewayClient::from_config(cfg.clone()).unwrap();
        with(Ops {
            run: &|n, pace| {
                let _ = async_std::task::block_on(c.in_new_trace(async {
                    for i in 0..n {
                        let (v, o, x, a) = record_one(i);
                        c.track_state_change(v, o, x, a);
                        pace(i);
                    }
                }));
            },
            queued: &|| c.sink().queued(),
            flush: &|t| c.flush_blocking(t).is_ok(),
            sent_dropped: &|| {
                let e = c.stats().export;
                (e.sent, e.dropped(), (e.recorded - e.sent) as usize)
            },
        });
        let _ = c.shutdown_timeout(Duration::from_millis(200));
    });
}

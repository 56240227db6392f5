//! Memory stays bounded while the collector is down: a million events against a queue of
//! 10,000 are dropped and counted, not buffered.
//!
//! Slow in debug builds, so it runs on demand:
//! `cargo test -p raceway-rt-tokio --release --test it -- --ignored --nocapture memory::`

use crate::common;

use std::time::{Duration, Instant};

use raceway_rt_tokio::RacewayClient;
use raceway_testkit::Collector;

/// A field of /proc/self/status in KiB (`VmHWM`: peak resident set; `VmRSS`: now).
fn status_kib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

#[test]
#[ignore = "records a million events; run with --release --ignored"]
fn a_million_events_with_the_collector_down_keep_memory_bounded() {
    const EVENTS: u64 = 1_000_000;
    const CAPACITY: usize = 10_000;
    let collector = Collector::start();
    collector.stop();
    let mut config = common::fast_config("svc", &collector.url());
    config.export.queue_capacity = CAPACITY;
    config.shutdown_timeout = Duration::from_millis(200);
    let batch = config.export.max_batch_events;
    let held_by_exporter = config.export.max_pending_batches * batch;
    let client = RacewayClient::from_config(config).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();

    let hwm_before = status_kib("VmHWM");
    let rss_before = status_kib("VmRSS");
    let start = Instant::now();
    rt.block_on(client.in_new_trace(async {
        for i in 0..EVENTS {
            client.track_state_change("counter", Some(i), i + 1, "Write");
        }
    }));
    let took = start.elapsed();
    let hwm_after = status_kib("VmHWM");
    let rss_after = status_kib("VmRSS");

    let stats = client.stats();
    let accepted = stats.export.recorded;
    println!(
        "{EVENTS} events in {took:?} ({:.0} ns/event); queue accepted {accepted}, dropped \
         (queue full) {}, retried sends {}",
        took.as_nanos() as f64 / EVENTS as f64,
        stats.export.dropped_queue_full,
        stats.export.retried,
    );
    println!(
        "VmHWM before {hwm_before:?} KiB, after {hwm_after:?} KiB; VmRSS before {rss_before:?} KiB, \
         after {rss_after:?} KiB"
    );

    assert_eq!(stats.core.recorded, EVENTS);
    // The queue filled to its capacity, plus what the exporter took out of it (at most
    // `max_pending_batches` batches, held while the connection fails); the rest dropped.
    assert!(accepted >= CAPACITY as u64, "accepted {accepted}");
    assert!(
        accepted <= (CAPACITY + held_by_exporter) as u64,
        "accepted {accepted} > {CAPACITY} + {held_by_exporter}"
    );
    assert_eq!(stats.export.dropped_queue_full, EVENTS - accepted);
    assert_eq!(stats.export.sent, 0);
    if let (Some(before), Some(after)) = (hwm_before, hwm_after) {
        // A million buffered events would take hundreds of MiB.
        assert!(
            after - before < 64 * 1024,
            "peak RSS grew by {} KiB",
            after - before
        );
    }

    // Shutdown gives up on the rest and counts it: every event is accounted for.
    assert!(client.shutdown_timeout(Duration::from_millis(200)).is_err());
    let stats = client.stats();
    assert_eq!(stats.export.dropped_shutdown, accepted);
    assert_eq!(stats.export.dropped(), EVENTS);
    assert_eq!(collector.post_count(), 0);
}

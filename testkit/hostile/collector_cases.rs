//! The hostile-collector cases, written once for the three clients (each has a blocking
//! `flush_blocking`/`shutdown_timeout` surface, whatever its runtime). Each crate's
//! `tests/hostile_collector.rs` defines `RacewayClient`, `Config`, `FlushError`, `Stats`,
//! `record`, `flush` and `shutdown` for its client and includes this file with `#[path]`.

use std::time::{Duration, Instant};

use raceway_testkit::{Collector, Reply};

use super::{flush, record, shutdown, Config, RacewayClient, Stats};

static TURN: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// One test at a time: the peak-RSS check is process-wide.
fn turn() -> std::sync::MutexGuard<'static, ()> {
    TURN.lock().unwrap_or_else(|e| e.into_inner())
}

/// A config with short timings against `url`.
fn config(url: &str, request_timeout: Duration) -> Config {
    let mut c = Config::new("hostile");
    c.endpoint = Some(url.to_string());
    c.instance_id = Some("t".into());
    c.export.flush_interval = Duration::from_millis(50);
    c.export.initial_backoff = Duration::from_millis(50);
    c.export.max_backoff = Duration::from_millis(200);
    c.export.max_retry_after = Duration::from_secs(1);
    c.request_timeout = request_timeout;
    c.connect_timeout = Duration::from_millis(500);
    c.shutdown_timeout = Duration::from_secs(2);
    c
}

/// A field of /proc/self/status in KiB (`VmHWM`: peak resident set).
fn status_kib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

fn assert_accounted(stats: &Stats, n: u64) {
    let e = stats.export;
    let held = e.recorded - e.sent - (e.dropped() - e.dropped_queue_full);
    assert_eq!(stats.core.recorded, n);
    assert!(e.sent + e.dropped() <= n, "{e:?}");
    assert_eq!(e.recorded + e.dropped_queue_full, n, "{e:?} (held {held})");
}

#[test]
fn a_10_gb_content_length_costs_bounded_time_and_memory() {
    let _turn = turn();
    let collector = Collector::start();
    collector.set_always(Some(Reply::HugeContentLength));
    let client = RacewayClient::from_config(config(&collector.url(), Duration::from_secs(1))).unwrap();
    let hwm_before = status_kib("VmHWM");
    record(&client, 200);
    let start = Instant::now();
    let first = flush(&client, Duration::from_secs(3));
    let took = start.elapsed();
    let hwm_after = status_kib("VmHWM");
    println!("flush against a 10 GB Content-Length: {first:?} in {took:?}; VmHWM {hwm_before:?} -> {hwm_after:?} KiB");
    assert!(took < Duration::from_secs(4), "flush took {took:?}");
    if let (Some(b), Some(a)) = (hwm_before, hwm_after) {
        assert!(a - b < 32 * 1024, "peak RSS grew {} KiB", a - b);
    }
    assert!(collector.post_count() >= 1);
    assert_accounted(&client.stats(), 200);

    // The collector comes back: the client still sends, and new events arrive.
    collector.set_always(None);
    let before = collector.event_count();
    record(&client, 50);
    flush(&client, Duration::from_secs(10)).expect("flushed once the collector is sane");
    let stats = client.stats();
    assert_accounted(&stats, 250);
    assert!(collector.event_count() >= before + 50, "new events arrive");
    let mut ids: Vec<_> = collector.events().iter().map(|e| e.id).collect();
    let all = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), all, "no event twice");
    // The POSTs answered with the endless body ingested nothing; the client either
    // counted their events as sent (it saw a 200) or timed out and resent them.
    println!(
        "after recovery: sent {} / ingested {} / dropped {}",
        stats.export.sent,
        collector.event_count(),
        stats.export.dropped()
    );
    shutdown(&client, Duration::from_secs(2)).expect("clean shutdown");
}

#[test]
fn a_collector_that_never_answers_blocks_nothing_and_loses_nothing() {
    let _turn = turn();
    let collector = Collector::start();
    collector.set_always(Some(Reply::Hang));
    let client = RacewayClient::from_config(config(&collector.url(), Duration::from_secs(1))).unwrap();
    record(&client, 100);
    let start = Instant::now();
    let r = flush(&client, Duration::from_millis(500));
    let took = start.elapsed();
    assert!(r.is_err(), "{r:?}");
    assert!(took < Duration::from_millis(1500), "flush took {took:?}");
    // Recording is never slowed by the hung send.
    let start = Instant::now();
    record(&client, 10_000);
    let took = start.elapsed();
    assert!(
        took < Duration::from_secs(5),
        "recording 10,000 events took {took:?}"
    );
    assert_accounted(&client.stats(), 10_100);

    // It starts answering: the hung send times out, is retried, and every event that the
    // queue accepted arrives exactly once.
    collector.set_always(None);
    flush(&client, Duration::from_secs(15)).expect("flushed once the collector answers");
    let stats = client.stats();
    let e = stats.export;
    assert_eq!(e.dropped() - e.dropped_queue_full, 0, "{e:?}");
    assert_eq!(e.sent, e.recorded, "{e:?}");
    assert_eq!(collector.event_count() as u64, e.sent);
    let mut ids: Vec<_> = collector.events().iter().map(|e| e.id).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len() as u64, e.sent, "no event twice");
    assert!(e.retried >= 1);
    shutdown(&client, Duration::from_secs(2)).expect("clean shutdown");
}

#[test]
fn shutdown_against_a_collector_that_never_answers_returns_at_its_deadline() {
    let _turn = turn();
    let collector = Collector::start();
    collector.set_always(Some(Reply::Hang));
    let client = RacewayClient::from_config(config(&collector.url(), Duration::from_secs(30))).unwrap();
    record(&client, 100);
    let start = Instant::now();
    let r = shutdown(&client, Duration::from_millis(500));
    let took = start.elapsed();
    assert!(r.is_err(), "{r:?}");
    assert!(took < Duration::from_millis(1500), "shutdown took {took:?}");
}

#[test]
fn events_left_at_a_timed_out_shutdown_are_counted_as_dropped_when_it_returns() {
    let _turn = turn();
    let collector = Collector::start();
    collector.set_always(Some(Reply::Hang));
    let client = RacewayClient::from_config(config(&collector.url(), Duration::from_secs(30))).unwrap();
    record(&client, 100);
    assert!(
        collector.wait_for_posts(1, Duration::from_secs(5)),
        "a send is hanging"
    );
    assert!(shutdown(&client, Duration::from_millis(500)).is_err());
    let e = client.stats().export;
    assert_eq!(e.sent, 0);
    assert_eq!(e.dropped(), 100, "counted as dropped at shutdown: {e:?}");
}

#[test]
fn a_huge_retry_after_is_capped() {
    let _turn = turn();
    let collector = Collector::start();
    collector.script(vec![
        Reply::StatusRetryAfter(429, 1_000_000_000),
        Reply::StatusRetryAfter(503, u64::MAX / 2),
    ]);
    let client = RacewayClient::from_config(config(&collector.url(), Duration::from_secs(5))).unwrap();
    record(&client, 10);
    let start = Instant::now();
    flush(&client, Duration::from_secs(10)).expect("flushed within max_retry_after (1 s) per retry");
    assert!(start.elapsed() < Duration::from_secs(5));
    assert_eq!(collector.event_count(), 10);
    assert_eq!(collector.statuses(), vec![Some(429), Some(503), Some(200)]);
    shutdown(&client, Duration::from_secs(2)).expect("clean shutdown");
}

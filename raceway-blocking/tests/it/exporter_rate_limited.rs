//! A 429 with `Retry-After` is honoured: the retry waits that long, and nothing is lost.

use crate::common;

use std::time::{Duration, Instant};

use raceway_blocking::RacewayClient;
use raceway_testkit::{Collector, Reply};

#[test]
fn a_rate_limited_batch_is_retried_after_retry_after_and_not_lost() {
    let collector = Collector::start();
    collector.script(vec![Reply::StatusRetryAfter(429, 1)]);
    let client = RacewayClient::from_config(common::export_config(&collector.url())).unwrap();

    let start = Instant::now();
    common::record_writes(&client, "ledger", 50);
    client.flush(Duration::from_secs(5)).unwrap();
    let elapsed = start.elapsed();

    // The backoff alone (50 ms) would have retried much sooner than the 1 s asked for.
    assert!(elapsed >= Duration::from_millis(950), "retried after {elapsed:?}");
    assert!(elapsed < Duration::from_secs(3), "retried after {elapsed:?}");
    assert_eq!(collector.statuses(), vec![Some(429), Some(200)]);
    assert_eq!(collector.event_count(), 50);
    let stats = client.stats();
    assert_eq!(stats.export.retried, 1);
    assert_eq!(stats.export.sent, 50);
    assert_eq!(stats.export.dropped(), 0);
    client.shutdown_timeout(Duration::from_secs(2)).unwrap();
}

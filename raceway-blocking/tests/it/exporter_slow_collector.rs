//! A slow collector slows the exporter thread, never the recording threads.

use crate::common;

use std::time::{Duration, Instant};

use raceway_blocking::RacewayClient;
use raceway_testkit::{Collector, Reply};

#[test]
fn recording_does_not_wait_for_a_slow_collector_and_everything_arrives() {
    let collector = Collector::start();
    collector.set_always(Some(Reply::Delay(Duration::from_millis(300))));
    let mut config = common::export_config(&collector.url());
    config.export.max_batch_events = 200;
    let client = RacewayClient::from_config(config).unwrap();

    let start = Instant::now();
    common::record_writes(&client, "ledger", 1000);
    let recording = start.elapsed();
    // Five batches at 300 ms each: a recording path that waited would take 1.5 s.
    assert!(
        recording < Duration::from_millis(250),
        "recording took {recording:?}"
    );

    client.flush(Duration::from_secs(10)).unwrap();
    assert!(start.elapsed() >= Duration::from_millis(300));
    assert_eq!(collector.event_count(), 1000);
    assert!(collector.statuses().iter().all(|s| *s == Some(200)));
    let stats = client.stats();
    assert_eq!(stats.export.sent, 1000);
    assert_eq!(stats.export.dropped(), 0);
    client.shutdown_timeout(Duration::from_secs(2)).unwrap();
}

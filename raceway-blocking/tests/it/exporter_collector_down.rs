//! The collector is down when events are recorded, then comes back: nothing within the
//! queue's capacity is lost.

use crate::common;

use std::time::Duration;

use raceway_blocking::RacewayClient;
use raceway_testkit::Collector;

#[test]
fn events_recorded_while_the_collector_is_down_arrive_after_it_restarts() {
    let collector = Collector::start();
    collector.stop();
    let mut config = common::export_config(&collector.url());
    config.export.max_batch_events = 100;
    config.export.queue_capacity = 4096;
    let client = RacewayClient::from_config(config).unwrap();

    common::record_writes(&client, "ledger", 2000);
    std::thread::sleep(Duration::from_millis(400));
    let stats = client.stats();
    assert!(
        stats.export.retried >= 1,
        "sends to a stopped collector are retried: {stats:?}"
    );
    assert_eq!(stats.export.sent, 0);
    assert_eq!(stats.export.dropped(), 0);

    collector.restart().unwrap();
    client.flush(Duration::from_secs(10)).unwrap();
    assert_eq!(collector.event_count(), 2000);
    let stats = client.stats();
    assert_eq!(stats.export.sent, 2000);
    assert_eq!(stats.export.dropped(), 0);
    assert_eq!(stats.export.dropped_queue_full, 0);
    assert!(collector.body_sizes().iter().all(|&b| b < 2 * 1024 * 1024));
    client.shutdown_timeout(Duration::from_secs(2)).unwrap();
}

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

/// The queue fills while the collector is down: the state changes and function calls that
/// do not fit are dropped (and counted) without keeping a place in their flow, so every
/// event that arrives has as `parent_id` an event that arrived too (the server's ancestry walk
/// follows these links; a gap would cut a flow's later events off from its earlier ones).
#[test]
fn events_dropped_from_a_full_queue_leave_no_gap_in_the_parent_chain() {
    let collector = Collector::start();
    collector.stop();
    let mut config = common::export_config(&collector.url());
    config.export.max_batch_events = 16;
    config.export.queue_capacity = 64;
    let client = RacewayClient::from_config(config).unwrap();

    for i in 0..500u64 {
        client.track_state_change("ledger", None::<u64>, i, "Write");
        client.track_function_call("audit", i);
    }
    let dropped = client.stats().export.dropped_queue_full;
    assert!(dropped > 0, "the queue was full");

    collector.restart().unwrap();
    client.flush(Duration::from_secs(10)).unwrap();
    // Queued after the drops: the first of these follows the last event that was queued.
    for i in 0..5u64 {
        client.track_function_call("audit", i);
        client.track_state_change("ledger", None::<u64>, i, "Write");
    }
    client.flush(Duration::from_secs(10)).unwrap();
    let events = collector.events_json();
    assert_eq!(
        events.len() as u64 + dropped,
        1010,
        "every event arrived or was counted"
    );
    let ids: std::collections::HashSet<&str> = events.iter().filter_map(|e| e["id"].as_str()).collect();
    for e in &events[1..] {
        let parent = e["parent_id"].as_str().expect("a parent");
        assert!(ids.contains(parent), "the parent of {} did not arrive", e["id"]);
    }
    client.shutdown_timeout(Duration::from_secs(2)).unwrap();
}

//! The collector is down, then up again: connection errors are retried (not counted as
//! drops), and once it is back every event arrives exactly once.

use crate::common;

use std::time::Duration;

use raceway_testkit::Collector;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_recorded_while_the_collector_is_down_arrive_exactly_once_after_restart() {
    const N: usize = 300;
    let collector = Collector::start();
    collector.stop();
    let mut config = common::fast_config("svc", &collector.url());
    config.export.max_batch_events = 64; // several batches, all held back behind the first
    let client = raceway_rt_tokio::RacewayClient::from_config(config).unwrap();

    common::record_writes(&client, "x", N).await;
    // Let the exporter fail to connect a few times (backoff 50 ms .. 200 ms).
    tokio::time::sleep(Duration::from_millis(600)).await;
    let stats = client.stats();
    assert!(stats.export.retried >= 2, "connection errors retried: {stats:?}");
    assert_eq!(stats.export.sent, 0);
    assert_eq!(stats.export.dropped(), 0, "{stats:?}");
    assert_eq!(stats.export.dropped_queue_full, 0);
    // A flush while it is down times out and keeps the events.
    assert_eq!(
        client.flush(Duration::from_millis(100)).await,
        Err(raceway_rt_tokio::FlushError::Timeout)
    );
    assert_eq!(collector.post_count(), 0);

    collector.restart().expect("same port free again");
    client
        .flush(Duration::from_secs(10))
        .await
        .expect("delivered after restart");

    let events = collector.events();
    assert_eq!(events.len(), N);
    assert_eq!(common::unique_ids(&events).len(), N);
    assert_eq!(
        common::written_values(&events, "x"),
        (0..N as u64).collect::<Vec<_>>()
    );
    // The batches left in order: the values of one flow arrive in recording order.
    let in_arrival_order: Vec<u64> = events
        .iter()
        .filter_map(|e| match &e.kind {
            raceway_proto::EventKind::StateChange { new_value, .. } => new_value.as_u64(),
            _ => None,
        })
        .collect();
    assert_eq!(in_arrival_order, (0..N as u64).collect::<Vec<_>>());
    assert!(collector.statuses().iter().all(|s| *s == Some(200)));

    let stats = client.stats();
    assert_eq!(stats.export.sent, N as u64);
    assert_eq!(stats.export.dropped(), 0, "{stats:?}");
    assert_eq!(stats.export.dropped_queue_full, 0);
    client.shutdown_async(Duration::from_secs(5)).await.unwrap();
    assert_eq!(collector.event_count(), N, "nothing sent twice at shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn beyond_the_queue_capacity_events_are_dropped_and_counted_the_rest_arrive() {
    const N: u64 = 2_000;
    const CAPACITY: usize = 100;
    let collector = Collector::start();
    collector.stop();
    let mut config = common::fast_config("svc", &collector.url());
    config.export.queue_capacity = CAPACITY;
    config.export.max_batch_events = 10;
    let held = config.export.max_pending_batches * 10;
    let client = raceway_rt_tokio::RacewayClient::from_config(config).unwrap();

    common::record_writes(&client, "x", N as usize).await;
    let stats = client.stats();
    let accepted = stats.export.recorded;
    assert_eq!(stats.core.recorded, N);
    assert!(
        (CAPACITY as u64..=(CAPACITY + held) as u64).contains(&accepted),
        "accepted {accepted}"
    );
    assert_eq!(stats.export.dropped_queue_full, N - accepted);
    assert_eq!(stats.export.dropped_queue_full, N - accepted);

    collector.restart().unwrap();
    client.flush(Duration::from_secs(10)).await.expect("delivered");
    let events = collector.events();
    assert_eq!(events.len() as u64, accepted);
    assert_eq!(common::unique_ids(&events).len() as u64, accepted);
    let stats = client.stats();
    assert_eq!(stats.export.sent, accepted);
    assert_eq!(stats.export.dropped(), N - accepted);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_while_the_collector_is_down_gives_up_at_the_deadline() {
    let collector = Collector::start();
    collector.stop();
    let client = common::fast_client("svc", &collector.url());
    common::record_writes(&client, "x", 5).await;
    let start = std::time::Instant::now();
    let result = client.shutdown_timeout(Duration::from_millis(300));
    let took = start.elapsed();
    assert_eq!(result, Err(raceway_rt_tokio::FlushError::Timeout));
    assert!(
        took >= Duration::from_millis(250) && took < Duration::from_secs(2),
        "{took:?}"
    );
    assert_eq!(client.stats().export.dropped_shutdown, 5);
}

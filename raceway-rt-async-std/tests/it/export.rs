//! Export to a real local collector (raceway-testkit), flush and shutdown behaviour.

use std::time::{Duration, Instant};

use raceway_rt_async_std::{Config, FlushError, RacewayClient};
use raceway_testkit::{Collector, Reply};

#[async_std::test]
async fn events_reach_the_collector_with_flush() {
    let collector = Collector::start();
    let rw = RacewayClient::new_with_auth(&collector.url(), "exporter-test", "k-123");
    rw.in_new_trace(async {
        rw.track_state_change("balance", None::<i64>, 100, "Read");
        rw.track_state_change("balance", Some(100), 90, "Write");
        rw.track_function_call("transfer", ("alice", 10));
    })
    .await;
    rw.flush(Duration::from_secs(5)).await.expect("flushed");
    async_std::future::timeout(Duration::from_secs(5), collector.until_events(3))
        .await
        .expect("3 events reach the collector");
    let events = collector.events();
    assert_eq!(events.len(), 3);
    assert!(events
        .iter()
        .all(|e| &*e.metadata.service_name == "exporter-test"));
    // One flow: one thread_id, program order by parent_id.
    assert_eq!(events[0].metadata.thread_id, events[2].metadata.thread_id);
    assert_eq!(events[1].parent_id, Some(events[0].id));
    let post = collector.last_post().expect("a post");
    assert_eq!(post.header("x-raceway-key"), Some("k-123"));
    assert_eq!(post.header("authorization"), Some("Bearer k-123"));
    assert_eq!(rw.stats().export.dropped(), 0);
    rw.shutdown_async(Duration::from_secs(2))
        .await
        .expect("clean shutdown");
}

#[test]
fn shutdown_sends_what_is_left_without_any_executor() {
    let collector = Collector::start();
    let rw = RacewayClient::new(&collector.url(), "no-runtime");
    futures::executor::block_on(rw.in_new_trace(async {
        rw.track_custom("job", "done");
    }));
    rw.shutdown_timeout(Duration::from_secs(5)).expect("drained");
    assert!(collector.wait_for_events(1, Duration::from_secs(1)));
    // Twice is fine, and so is a flush after shutdown.
    rw.shutdown();
    assert_eq!(
        rw.flush_blocking(Duration::from_millis(100)),
        Err(FlushError::NotRunning)
    );
}

#[test]
fn shutdown_against_a_hanging_collector_returns_within_its_timeout() {
    let collector = Collector::start();
    collector.set_always(Some(Reply::Hang));
    let rw = RacewayClient::new(&collector.url(), "hang");
    futures::executor::block_on(rw.in_new_trace(async {
        rw.track_custom("x", 1);
    }));
    // Make sure a POST is in flight (the exporter thread is blocked in it).
    let _ = rw.flush_blocking(Duration::from_millis(300));
    assert!(collector.wait_for_posts(1, Duration::from_secs(5)));
    let timeout = Duration::from_millis(300);
    let start = Instant::now();
    let result = rw.shutdown_timeout(timeout);
    let took = start.elapsed();
    assert_eq!(result, Err(FlushError::Timeout));
    assert!(took < timeout + Duration::from_millis(500), "took {took:?}");
    // Dropping the client now must not hang either.
    let start = Instant::now();
    drop(rw);
    assert!(start.elapsed() < Duration::from_secs(1));
}

#[async_std::test]
async fn async_flush_and_shutdown_time_out_against_a_hanging_collector() {
    let collector = Collector::start();
    collector.set_always(Some(Reply::Hang));
    let rw = RacewayClient::new(&collector.url(), "hang-async");
    rw.in_new_trace(async { rw.track_custom("x", 1) }).await;
    let start = Instant::now();
    assert_eq!(
        rw.flush(Duration::from_millis(200)).await,
        Err(FlushError::Timeout)
    );
    assert_eq!(
        rw.shutdown_async(Duration::from_millis(200)).await,
        Err(FlushError::Timeout)
    );
    assert!(start.elapsed() < Duration::from_secs(2));
}

#[test]
fn dropped_without_shutdown_still_drains() {
    let collector = Collector::start();
    {
        let mut config = Config::new("dropped");
        config.endpoint = Some(collector.url());
        config.shutdown_timeout = Duration::from_secs(3);
        let rw = RacewayClient::from_config(config).expect("valid config");
        futures::executor::block_on(rw.in_new_trace(async { rw.track_custom("x", 1) }));
    }
    assert!(collector.wait_for_events(1, Duration::from_secs(1)));
}

#[test]
fn bad_endpoints_fall_back_or_fail_cleanly() {
    let rw = RacewayClient::new("ftp://nope", "bad");
    assert!(rw.init_error().is_some());
    let mut config = Config::new("bad");
    config.endpoint = Some("not a url".into());
    assert!(RacewayClient::from_config(config).is_err());
    // A collector that is not there: shutdown gives up within its timeout.
    let rw = RacewayClient::new("http://127.0.0.1:9", "down");
    futures::executor::block_on(rw.in_new_trace(async { rw.track_custom("x", 1) }));
    let start = Instant::now();
    let _ = rw.shutdown_timeout(Duration::from_millis(300));
    assert!(start.elapsed() < Duration::from_secs(2));
}

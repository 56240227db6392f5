//! Authentication: the key goes out in both headers the server accepts; a wrong or missing
//! key is answered 401 and the events are dropped and counted, not retried forever.

use crate::common;

use std::time::Duration;

use raceway_rt_tokio::RacewayClient;
use raceway_testkit::Collector;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn right_key_delivers_with_both_auth_headers_and_json_content_type() {
    let collector = Collector::start_with_key("k3y");
    let client = RacewayClient::new_with_auth(&collector.url(), "svc", "k3y");
    assert!(client.init_error().is_none());
    common::record_writes(&client, "x", 7).await;
    client.flush(Duration::from_secs(10)).await.expect("flushed");

    let events = collector.events();
    assert_eq!(events.len(), 7);
    assert_eq!(common::unique_ids(&events).len(), 7);
    assert_eq!(common::written_values(&events, "x"), (0..7).collect::<Vec<u64>>());
    let posts = collector.posts();
    assert!(!posts.is_empty());
    for p in &posts {
        assert_eq!(p.status, Some(200));
        assert_eq!(p.header("authorization"), Some("Bearer k3y"));
        assert_eq!(p.header("x-raceway-key"), Some("k3y"));
        assert_eq!(p.header("content-type"), Some("application/json"));
    }
    let stats = client.stats();
    assert_eq!(stats.export.sent, 7);
    assert_eq!(stats.export.dropped(), 0);
    assert_eq!(stats.export.last_rejected_status, None);
    assert_eq!(client.shutdown_async(Duration::from_secs(5)).await, Ok(()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_key_is_refused_401_and_counted_as_rejected() {
    let collector = Collector::start_with_key("k3y");
    let client = RacewayClient::new_with_auth(&collector.url(), "svc", "wrong");
    common::record_writes(&client, "x", 5).await;
    client
        .flush(Duration::from_secs(10))
        .await
        .expect("flushed (dropped counts)");

    assert_eq!(collector.event_count(), 0);
    let posts = collector.posts();
    // One body, answered 401 and not retried.
    assert_eq!(collector.statuses(), vec![Some(401)]);
    assert_eq!(posts[0].header("authorization"), Some("Bearer wrong"));
    let stats = client.stats();
    assert_eq!(stats.export.dropped_rejected, 5);
    assert_eq!(stats.export.last_rejected_status, Some(401));
    assert_eq!(stats.export.sent, 0);
    assert_eq!(stats.export.retried, 0);
    assert_eq!(stats.export.dropped(), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_key_is_refused_401_and_sends_no_auth_headers() {
    let collector = Collector::start_with_key("k3y");
    let client = common::quiet_client("svc", &collector.url());
    common::record_writes(&client, "x", 3).await;
    client
        .flush(Duration::from_secs(10))
        .await
        .expect("flushed (dropped counts)");

    assert_eq!(collector.event_count(), 0);
    let posts = collector.posts();
    assert_eq!(collector.statuses(), vec![Some(401)]);
    assert_eq!(posts[0].header("authorization"), None);
    assert_eq!(posts[0].header("x-raceway-key"), None);
    assert_eq!(client.stats().export.dropped_rejected, 3);
}

#[test]
fn key_that_cannot_be_a_header_falls_back_to_local_analysis() {
    let client = RacewayClient::new_with_auth("http://127.0.0.1:9", "svc", "bad\nkey");
    assert_eq!(
        client.init_error(),
        Some(&raceway_rt_tokio::ConfigError::InvalidApiKey)
    );
    assert!(!client.is_exporting());
}

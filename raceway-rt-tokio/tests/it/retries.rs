//! Retryable answers: 5xx is retried with backoff, 429 after its Retry-After; nothing is
//! lost; the counters say what happened.

use crate::common;

use std::time::{Duration, Instant};

use raceway_rt_tokio::RacewayClient;
use raceway_testkit::{Collector, Reply};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_then_success_lose_nothing() {
    let collector = Collector::start();
    collector.script(vec![Reply::Status(500), Reply::Status(503), Reply::Status(500)]);
    let client = common::quiet_client("svc", &collector.url());
    common::record_writes(&client, "x", 20).await;
    client.flush(Duration::from_secs(10)).await.expect("delivered");

    assert_eq!(
        collector.statuses(),
        vec![Some(500), Some(503), Some(500), Some(200)]
    );
    let events = collector.events();
    assert_eq!(events.len(), 20);
    assert_eq!(common::unique_ids(&events).len(), 20);
    // Every attempt carried the same body.
    let bodies: Vec<Vec<u8>> = collector.posts().into_iter().map(|p| p.body).collect();
    assert!(bodies.windows(2).all(|w| w[0] == w[1]));
    let stats = client.stats();
    assert_eq!(stats.export.retried, 3);
    assert_eq!(stats.export.sent, 20);
    assert_eq!(stats.export.dropped(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_many_requests_waits_for_retry_after() {
    let collector = Collector::start();
    collector.script(vec![Reply::StatusRetryAfter(429, 1)]);
    // Nothing is sent before the flush below: the clock starts before the first send.
    let client = common::quiet_client("svc", &collector.url());
    common::record_writes(&client, "x", 10).await;

    let start = Instant::now();
    client.flush(Duration::from_secs(10)).await.expect("delivered");
    let flushed = start.elapsed();

    assert_eq!(collector.statuses(), vec![Some(429), Some(200)]);
    assert_eq!(collector.event_count(), 10);
    // The retry came after the 1 s Retry-After, not after the 50 ms backoff...
    assert!(flushed >= Duration::from_millis(950), "retried after {flushed:?}");
    // ... and not much later.
    assert!(flushed < Duration::from_secs(3), "retried after {flushed:?}");
    let stats = client.stats();
    assert_eq!(stats.export.retried, 1);
    assert_eq!(stats.export.sent, 10);
    assert_eq!(stats.export.dropped(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_always_fails_exhausts_the_attempts_and_counts_the_drop() {
    let collector = Collector::start();
    collector.set_always(Some(Reply::Status(503)));
    let mut config = common::quiet_config("svc", &collector.url());
    config.export.max_attempts = 3;
    let client = RacewayClient::from_config(config).unwrap();
    common::record_writes(&client, "x", 4).await;
    client
        .flush(Duration::from_secs(10))
        .await
        .expect("dropped counts as done");

    assert_eq!(collector.statuses(), vec![Some(503); 3]);
    assert_eq!(collector.event_count(), 0);
    let stats = client.stats();
    assert_eq!(stats.export.retried, 2);
    assert_eq!(stats.export.dropped_retries_exhausted, 4);
    assert_eq!(stats.export.sent, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payload_too_large_splits_the_batch_in_halves() {
    let collector = Collector::start();
    collector.script(vec![Reply::Status(413)]);
    let client = common::quiet_client("svc", &collector.url());
    common::record_writes(&client, "x", 10).await;
    client.flush(Duration::from_secs(10)).await.expect("delivered");

    assert_eq!(collector.statuses(), vec![Some(413), Some(200), Some(200)]);
    let accepted: Vec<usize> = collector.posts().iter().map(|p| p.accepted).collect();
    assert_eq!(accepted, vec![0, 5, 5]);
    let events = collector.events();
    assert_eq!(common::unique_ids(&events).len(), 10);
    assert_eq!(
        common::written_values(&events, "x"),
        (0..10).collect::<Vec<u64>>()
    );
    let stats = client.stats();
    assert_eq!(stats.export.split, 1);
    assert_eq!(stats.export.sent, 10);
    assert_eq!(stats.export.dropped(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_200_whose_body_never_ends_counts_as_delivered_and_is_not_resent() {
    let collector = Collector::start();
    collector.script(vec![Reply::HugeContentLength]);
    let mut config = common::quiet_config("svc", &collector.url());
    config.request_timeout = Duration::from_millis(300);
    let client = RacewayClient::from_config(config).unwrap();
    common::record_writes(&client, "x", 6).await;

    let start = Instant::now();
    client.flush(Duration::from_secs(10)).await.expect("delivered");
    let took = start.elapsed();

    // The status is the server's answer: a 200 means ingested, whatever its body does
    // next, so the batch is not resent (a resend would duplicate events). The test
    // collector's fake 200 ingests nothing, hence no events there.
    assert_eq!(collector.statuses(), vec![Some(200)]);
    assert_eq!(collector.event_count(), 0);
    assert!(took < Duration::from_secs(2), "{took:?}");
    let stats = client.stats();
    assert_eq!(stats.export.retried, 0);
    assert_eq!(stats.export.sent, 6);
    assert_eq!(stats.export.dropped(), 0);
}

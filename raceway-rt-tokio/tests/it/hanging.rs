//! A collector that never answers: shutdown and drop give up at their timeout, count what
//! they dropped, and never hang the application.

use crate::common;

use raceway_proto::client::AdapterApi as _;
use std::time::{Duration, Instant};

use raceway_rt_tokio::{FlushError, RacewayClient};
use raceway_testkit::{Collector, Reply};

fn hanging_client(collector: &Collector, shutdown_timeout: Duration) -> RacewayClient {
    let mut config = common::fast_config("svc", &collector.url());
    // Longer than the test: only the shutdown deadline can end the hung send.
    config.request_timeout = Duration::from_secs(60);
    config.shutdown_timeout = shutdown_timeout;
    RacewayClient::from_config(config).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_timeout_returns_at_its_deadline_and_counts_the_drops() {
    let collector = Collector::start();
    collector.set_always(Some(Reply::Hang));
    let client = hanging_client(&collector, Duration::from_secs(30));
    common::record_writes(&client, "x", 20).await;
    assert!(
        collector.wait_for_posts(1, Duration::from_secs(5)),
        "a send is in flight"
    );
    // A flush cannot finish either.
    assert_eq!(
        client.flush(Duration::from_millis(100)).await,
        Err(FlushError::Timeout)
    );

    let start = Instant::now();
    let result = client.shutdown_timeout(Duration::from_millis(500));
    let took = start.elapsed();
    assert_eq!(result, Err(FlushError::Timeout));
    assert!(took >= Duration::from_millis(450), "gave up early: {took:?}");
    assert!(took < Duration::from_secs(2), "took {took:?}");
    let stats = client.stats();
    assert_eq!(stats.export.dropped_shutdown, 20, "{stats:?}");
    assert_eq!(stats.export.sent, 0);
    assert_eq!(collector.event_count(), 0);
    // Stopped: a second shutdown and a flush answer at once.
    let start = Instant::now();
    assert_eq!(client.shutdown_timeout(Duration::from_secs(5)), Ok(()));
    assert_eq!(
        client.flush(Duration::from_secs(5)).await,
        Err(FlushError::NotRunning)
    );
    assert!(start.elapsed() < Duration::from_millis(500));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_shutdown_returns_at_its_deadline() {
    let collector = Collector::start();
    collector.set_always(Some(Reply::Hang));
    let client = hanging_client(&collector, Duration::from_secs(30));
    common::record_writes(&client, "x", 5).await;
    assert!(collector.wait_for_posts(1, Duration::from_secs(5)));

    let start = Instant::now();
    let result = client.shutdown_async(Duration::from_millis(300)).await;
    let took = start.elapsed();
    assert_eq!(result, Err(FlushError::Timeout));
    assert!(took < Duration::from_secs(2), "took {took:?}");
    assert_eq!(client.stats().export.dropped_shutdown, 5);
}

#[test]
fn drop_without_shutdown_waits_no_longer_than_the_shutdown_timeout() {
    let collector = Collector::start();
    collector.set_always(Some(Reply::Hang));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let client = hanging_client(&collector, Duration::from_millis(500));
    rt.block_on(common::record_writes(&client, "x", 8));
    assert!(collector.wait_for_posts(1, Duration::from_secs(5)));
    let sink = client.sink().clone();

    let start = Instant::now();
    drop(client);
    let took = start.elapsed();
    assert!(took < Duration::from_secs(2), "drop took {took:?}");
    assert!(took >= Duration::from_millis(450), "drop gave up early: {took:?}");
    let stats = sink.stats();
    assert_eq!(stats.export.dropped_shutdown, 8, "{stats:?}");
    assert_eq!(collector.event_count(), 0);
}

#[tokio::test]
async fn drop_inside_a_current_thread_runtime_with_a_hung_send_does_not_deadlock() {
    let collector = Collector::start();
    collector.set_always(Some(Reply::Hang));
    let client = hanging_client(&collector, Duration::from_millis(300));
    common::record_writes(&client, "x", 3).await;
    // Not the blocking wait: this runtime has one thread.
    tokio::time::timeout(Duration::from_secs(5), async {
        while collector.post_count() == 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("a send is in flight");
    let start = Instant::now();
    drop(client);
    assert!(start.elapsed() < Duration::from_secs(2));
}

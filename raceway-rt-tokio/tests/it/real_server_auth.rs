//! Auth against the real Raceway server started with `--api-key`, from the tokio client:
//! the right key delivers; a wrong or missing key is refused with 401, dropped and counted
//! as rejected, reported once through the `log` facade, and not retried (counted on the
//! testkit's collector, which counts POSTs; the real server does not).

use crate::common;

use std::time::Duration;

use raceway_rt_tokio::RacewayClient;
use raceway_testkit::{logs, Collector, RealServer, ServerOptions};

const KEY: &str = "tokio-auth-key";

fn server() -> Option<RealServer> {
    RealServer::start(ServerOptions {
        api_key: Some(KEY.into()),
        ..ServerOptions::default()
    })
}

fn client(service: &str, url: &str, key: Option<&str>) -> RacewayClient {
    let mut config = common::quiet_config(service, url);
    config.api_key = key.map(Into::into);
    RacewayClient::from_config(config).expect("a valid config")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_right_key_delivers_to_the_real_server() {
    let Some(server) = server() else { return };
    let client = client("auth-right-tokio", &server.url(), Some(KEY));
    common::record_writes(&client, "v", 6).await;
    client.flush(Duration::from_secs(10)).await.expect("flushed");
    let stats = client.stats().export;
    assert_eq!(
        (stats.sent, stats.dropped_rejected, stats.last_rejected_status),
        (6, 0, None)
    );
    let captured = tokio::task::spawn_blocking(move || server.wait_for_captured(6, Duration::from_secs(10)))
        .await
        .unwrap();
    assert_eq!(captured, 6);
    assert_eq!(client.shutdown_async(Duration::from_secs(2)).await, Ok(()));
}

async fn assert_refused_by_real_server(service: &str, key: Option<&str>) {
    let Some(server) = server() else { return };
    let logs = logs::capture();
    let client = client(service, &server.url(), key);
    for round in 1..=3u64 {
        common::record_writes(&client, "v", 4).await;
        client
            .flush(Duration::from_secs(10))
            .await
            .expect("flushed (dropped and counted)");
        let stats = client.stats().export;
        assert_eq!(stats.dropped_rejected, 4 * round, "{stats:?}");
        assert_eq!(stats.last_rejected_status, Some(401));
        assert_eq!((stats.sent, stats.retried), (0, 0));
    }
    let said = logs.containing(&format!("service {service:?}"));
    assert_eq!(said.len(), 1, "one report for three refused batches: {said:?}");
    assert!(said[0].contains("status 401"), "{}", said[0]);
    let captured = tokio::task::spawn_blocking(move || server.events_captured())
        .await
        .unwrap();
    assert_eq!(captured, 0);
    assert_eq!(client.shutdown_async(Duration::from_secs(2)).await, Ok(()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_key_is_refused_401_by_the_real_server() {
    assert_refused_by_real_server("auth-wrong-tokio", Some("not-the-key")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_key_is_refused_401_by_the_real_server() {
    assert_refused_by_real_server("auth-missing-tokio", None).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_key_is_not_retried() {
    let collector = Collector::start_with_key(KEY);
    let client = client("auth-no-retry-tokio", &collector.url(), Some("not-the-key"));
    for _ in 0..3 {
        common::record_writes(&client, "v", 2).await;
        client.flush(Duration::from_secs(5)).await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(
        collector.statuses(),
        vec![Some(401); 3],
        "one POST a batch, none again"
    );
    let stats = client.stats().export;
    assert_eq!((stats.dropped_rejected, stats.retried), (6, 0));
    assert_eq!(client.shutdown_async(Duration::from_secs(2)).await, Ok(()));
    assert_eq!(collector.post_count(), 3);
}

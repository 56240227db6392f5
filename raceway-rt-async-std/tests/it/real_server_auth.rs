//! Auth against the real Raceway server started with `--api-key`, from the async-std
//! client: the right key delivers; a wrong or missing key is refused with 401, dropped and
//! counted as rejected, reported once through the `log` facade, and not retried (counted on
//! the testkit's collector, which counts POSTs; the real server does not).

use std::time::Duration;

use raceway_rt_async_std::{Config, RacewayClient};
use raceway_testkit::{logs, Collector, RealServer, ServerOptions};

const KEY: &str = "async-std-auth-key";

fn server() -> Option<RealServer> {
    RealServer::start(ServerOptions {
        api_key: Some(KEY.into()),
        ..ServerOptions::default()
    })
}

fn client(service: &str, url: &str, key: Option<&str>) -> RacewayClient {
    let mut config = Config::new(service);
    config.endpoint = Some(url.into());
    config.api_key = key.map(Into::into);
    config.export.flush_interval = Duration::from_secs(3600); // only flushes send
    config.shutdown_timeout = Duration::from_secs(2);
    RacewayClient::from_config(config).expect("a valid config")
}

async fn record_writes(client: &RacewayClient, n: usize) {
    client
        .in_new_trace(async {
            for i in 0..n {
                client.track_state_change("v", None::<u64>, i as u64, "Write");
            }
        })
        .await;
}

#[async_std::test]
async fn the_right_key_delivers_to_the_real_server() {
    let Some(server) = server() else { return };
    let client = client("auth-right-async-std", &server.url(), Some(KEY));
    record_writes(&client, 6).await;
    client.flush(Duration::from_secs(10)).await.expect("flushed");
    let stats = client.stats().export;
    assert_eq!(
        (stats.sent, stats.dropped_rejected, stats.last_rejected_status),
        (6, 0, None)
    );
    assert_eq!(server.wait_for_captured(6, Duration::from_secs(10)), 6);
    client.shutdown_async(Duration::from_secs(2)).await.unwrap();
}

async fn assert_refused_by_real_server(service: &str, key: Option<&str>) {
    let Some(server) = server() else { return };
    let logs = logs::capture();
    let client = client(service, &server.url(), key);
    for round in 1..=3u64 {
        record_writes(&client, 4).await;
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
    assert_eq!(server.events_captured(), 0);
    client.shutdown_async(Duration::from_secs(2)).await.unwrap();
}

#[async_std::test]
async fn a_wrong_key_is_refused_401_by_the_real_server() {
    assert_refused_by_real_server("auth-wrong-async-std", Some("not-the-key")).await;
}

#[async_std::test]
async fn a_missing_key_is_refused_401_by_the_real_server() {
    assert_refused_by_real_server("auth-missing-async-std", None).await;
}

#[async_std::test]
async fn a_refused_key_is_not_retried() {
    let collector = Collector::start_with_key(KEY);
    let client = client("auth-no-retry-async-std", &collector.url(), Some("not-the-key"));
    for _ in 0..3 {
        record_writes(&client, 2).await;
        client.flush(Duration::from_secs(5)).await.unwrap();
    }
    async_std::task::sleep(Duration::from_millis(800)).await;
    assert_eq!(
        collector.statuses(),
        vec![Some(401); 3],
        "one POST a batch, none again"
    );
    let stats = client.stats().export;
    assert_eq!((stats.dropped_rejected, stats.retried), (6, 0));
    client.shutdown_async(Duration::from_secs(2)).await.unwrap();
    assert_eq!(collector.post_count(), 3);
}

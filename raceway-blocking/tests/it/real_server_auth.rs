//! Auth against the real Raceway server started with `--api-key`: the right key delivers;
//! a wrong or missing key is refused with 401, dropped and counted as rejected, reported
//! once through the `log` facade, and not retried (counted on the testkit's collector,
//! which counts POSTs; the real server does not).

use std::time::Duration;

use raceway_blocking::RacewayClient;
use raceway_testkit::{logs, Collector, RealServer, ServerOptions};

const KEY: &str = "blocking-auth-key";

fn server() -> Option<RealServer> {
    RealServer::start(ServerOptions {
        api_key: Some(KEY.into()),
        ..ServerOptions::default()
    })
}

fn client(service: &str, url: &str, key: Option<&str>) -> RacewayClient {
    let mut config = crate::common::export_config(url);
    config.service_name = service.into();
    config.api_key = key.map(Into::into);
    RacewayClient::from_config(config).expect("a valid config")
}

#[test]
fn the_right_key_delivers_to_the_real_server() {
    let Some(server) = server() else { return };
    let client = client("auth-right-blocking", &server.url(), Some(KEY));
    crate::common::record_writes(&client, "v", 6);
    client.flush(Duration::from_secs(10)).expect("flushed");
    let stats = client.stats().export;
    assert_eq!((stats.sent, stats.dropped_rejected), (6, 0));
    assert_eq!(stats.last_rejected_status, None);
    assert_eq!(server.wait_for_captured(6, Duration::from_secs(10)), 6);
    client.shutdown();
}

/// A refused key on the real server: 401, counted, said once however many batches.
fn assert_refused_by_real_server(service: &str, key: Option<&str>) {
    let Some(server) = server() else { return };
    let logs = logs::capture();
    let client = client(service, &server.url(), key);
    for round in 1..=3u64 {
        crate::common::record_writes(&client, "v", 4);
        client
            .flush(Duration::from_secs(10))
            .expect("flushed (dropped and counted)");
        let stats = client.stats().export;
        assert_eq!(stats.dropped_rejected, 4 * round, "{stats:?}");
        assert_eq!(stats.last_rejected_status, Some(401));
        assert_eq!((stats.sent, stats.retried), (0, 0));
    }
    let said = logs.containing(&format!("service {service:?}"));
    assert_eq!(said.len(), 1, "one report for three refused batches: {said:?}");
    assert!(said[0].contains("status 401"), "{}", said[0]);
    assert!(said[0].contains("RACEWAY_API_KEY"), "{}", said[0]);
    if let Some(k) = key {
        assert!(!said[0].contains(k));
    }
    assert_eq!(server.events_captured(), 0);
    client.shutdown();
}

#[test]
fn a_wrong_key_is_refused_401_by_the_real_server() {
    assert_refused_by_real_server("auth-wrong-blocking", Some("not-the-key"));
}

#[test]
fn a_missing_key_is_refused_401_by_the_real_server() {
    assert_refused_by_real_server("auth-missing-blocking", None);
}

#[test]
fn a_refused_key_is_not_retried() {
    let collector = Collector::start_with_key(KEY);
    let mut config = crate::common::export_config(&collector.url());
    config.api_key = Some("not-the-key".into());
    config.export.flush_interval = Duration::from_secs(3600); // only flushes send
    let client = RacewayClient::from_config(config).unwrap();
    for _ in 0..3 {
        crate::common::record_writes(&client, "v", 2);
        client.flush(Duration::from_secs(5)).unwrap();
    }
    // Time for any retry to show.
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(
        collector.statuses(),
        vec![Some(401); 3],
        "one POST a batch, none again"
    );
    assert_eq!(collector.event_count(), 0);
    let stats = client.stats().export;
    assert_eq!((stats.dropped_rejected, stats.retried), (6, 0));
    client.shutdown();
    assert_eq!(collector.post_count(), 3);
}

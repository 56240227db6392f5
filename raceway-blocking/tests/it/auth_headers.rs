//! Every POST carries the API key (both forms) and a JSON content type.

use crate::common;

use std::time::Duration;

use raceway_blocking::RacewayClient;
use raceway_testkit::Collector;

#[test]
fn posts_carry_the_api_key_and_are_accepted() {
    let collector = Collector::start_with_key("s3cret-key");
    let mut config = common::export_config(&collector.url());
    config.api_key = Some("s3cret-key".into());
    let client = RacewayClient::from_config(config).unwrap();

    common::record_writes(&client, "ledger", 3);
    client.flush(Duration::from_secs(5)).unwrap();

    let post = collector.last_post().unwrap();
    assert_eq!(post.header("authorization"), Some("Bearer s3cret-key"));
    assert_eq!(post.header("x-raceway-key"), Some("s3cret-key"));
    assert_eq!(post.header("content-type"), Some("application/json"));
    assert_eq!(post.status, Some(200));
    assert_eq!(collector.event_count(), 3);
    client.shutdown_timeout(Duration::from_secs(2)).unwrap();
}

#[test]
fn new_with_auth_sends_the_key() {
    let collector = Collector::start_with_key("other-key");
    let client = RacewayClient::new_with_auth(&collector.url(), "svc", "other-key");
    common::record_writes(&client, "ledger", 1);
    client.flush(Duration::from_secs(5)).unwrap();
    assert_eq!(collector.event_count(), 1);
    assert_eq!(
        collector.last_post().unwrap().header("x-raceway-key"),
        Some("other-key")
    );
    client.shutdown();
}

#[test]
fn a_wrong_key_is_refused_and_counted() {
    let collector = Collector::start_with_key("right");
    let mut config = common::export_config(&collector.url());
    config.api_key = Some("wrong".into());
    let client = RacewayClient::from_config(config).unwrap();
    common::record_writes(&client, "ledger", 2);
    client.flush(Duration::from_secs(5)).unwrap();
    assert_eq!(collector.event_count(), 0);
    let stats = client.stats();
    assert_eq!(stats.export.dropped_rejected, 2);
    assert_eq!(stats.export.last_rejected_status, Some(401));
    client.shutdown();
}

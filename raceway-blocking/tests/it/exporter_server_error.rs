//! A 500 is retried, and the retry delivers every event once.

use crate::common;

use std::collections::HashSet;
use std::time::Duration;

use raceway_blocking::RacewayClient;
use raceway_testkit::{Collector, Reply};

#[test]
fn a_server_error_is_retried_until_it_succeeds() {
    let collector = Collector::start();
    collector.script(vec![Reply::Status(500)]);
    let client = RacewayClient::from_config(common::export_config(&collector.url())).unwrap();

    common::record_writes(&client, "ledger", 20);
    client.flush(Duration::from_secs(5)).unwrap();

    assert_eq!(collector.statuses(), vec![Some(500), Some(200)]);
    let events = collector.events();
    assert_eq!(events.len(), 20);
    let ids: HashSet<_> = events.iter().map(|e| e.id).collect();
    assert_eq!(ids.len(), 20, "no event delivered twice");
    let stats = client.stats();
    assert_eq!(stats.export.retried, 1);
    assert_eq!(stats.export.sent, 20);
    assert_eq!(stats.export.dropped(), 0);
    client.shutdown_timeout(Duration::from_secs(2)).unwrap();
}

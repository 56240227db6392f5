//! Shutdown, flush and drop stay within their timeouts when the collector never answers.

use crate::common;

use std::time::{Duration, Instant};

use raceway_blocking::{FlushError, RacewayClient};
use raceway_testkit::{Collector, Reply};

const MARGIN: Duration = Duration::from_millis(500);

#[test]
fn shutdown_returns_within_its_timeout_against_a_hanging_collector() {
    let collector = Collector::start();
    collector.set_always(Some(Reply::Hang));
    let mut config = common::export_config(&collector.url());
    config.request_timeout = Duration::from_secs(30); // the send itself would wait 30 s
    let client = RacewayClient::from_config(config).unwrap();

    common::record_writes(&client, "ledger", 10);
    assert!(
        collector.wait_for_posts(1, Duration::from_secs(5)),
        "a send is hanging"
    );

    let start = Instant::now();
    assert_eq!(client.flush(Duration::from_millis(300)), Err(FlushError::Timeout));
    assert!(start.elapsed() < Duration::from_millis(300) + MARGIN);

    let timeout = Duration::from_millis(500);
    let start = Instant::now();
    let result = client.shutdown_timeout(timeout);
    let took = start.elapsed();
    assert_eq!(result, Err(FlushError::Timeout));
    assert!(took >= timeout, "waited {took:?}");
    assert!(took < timeout + MARGIN, "waited {took:?}");

    // Shutting down again and dropping are bounded too, and never panic.
    let start = Instant::now();
    let _ = client.shutdown_timeout(Duration::from_millis(100));
    assert_eq!(
        client.flush(Duration::from_millis(100)),
        Err(FlushError::NotRunning)
    );
    drop(client);
    assert!(start.elapsed() < Duration::from_millis(100) + MARGIN);
}

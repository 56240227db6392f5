//! The client never panics and never hangs: shut down twice, dropped without shutdown,
//! flushed after shutdown, pointed at a collector that is down.

use crate::common;

use std::time::{Duration, Instant};

use raceway_blocking::{FlushError, RacewayClient};
use raceway_testkit::Collector;

#[test]
fn shutdown_twice_and_flush_after_shutdown() {
    let collector = Collector::start();
    let client = RacewayClient::from_config(common::export_config(&collector.url())).unwrap();
    common::record_writes(&client, "v", 5);
    assert_eq!(client.shutdown_timeout(Duration::from_secs(2)), Ok(()));
    assert_eq!(collector.event_count(), 5);
    assert_eq!(client.shutdown_timeout(Duration::from_secs(2)), Ok(()));
    client.shutdown();
    assert_eq!(
        client.flush(Duration::from_millis(100)),
        Err(FlushError::NotRunning)
    );
    // Recording after shutdown is harmless: queued, never sent.
    common::record_writes(&client, "v", 1);
}

#[test]
fn dropping_without_shutdown_drains() {
    let collector = Collector::start();
    let mut config = common::export_config(&collector.url());
    config.export.flush_interval = Duration::from_secs(60); // only the drop sends
    let client = RacewayClient::from_config(config).unwrap();
    let clone = client.clone();
    common::record_writes(&client, "v", 7);
    drop(client);
    assert_eq!(collector.event_count(), 0, "a clone keeps the exporter running");
    drop(clone);
    assert_eq!(collector.event_count(), 7);
}

#[test]
fn shutdown_against_a_collector_that_is_down_abandons_within_the_timeout() {
    let collector = Collector::start();
    collector.stop();
    let client = RacewayClient::from_config(common::export_config(&collector.url())).unwrap();
    common::record_writes(&client, "v", 5);
    let start = Instant::now();
    assert_eq!(
        client.shutdown_timeout(Duration::from_millis(300)),
        Err(FlushError::Timeout)
    );
    assert!(start.elapsed() < Duration::from_millis(800));
    assert_eq!(client.stats().export.dropped_shutdown, 5);
}

#[test]
fn local_mode_has_no_exporter() {
    let client = RacewayClient::local("local");
    common::record_writes(&client, "v", 2);
    assert_eq!(client.flush(Duration::from_millis(10)), Ok(()));
    assert_eq!(client.shutdown_timeout(Duration::from_millis(10)), Ok(()));
    assert_eq!(client.races().events_observed(), 2);
}

#[cfg(not(feature = "rustls"))]
#[test]
fn https_without_the_rustls_feature_is_refused_clearly() {
    let mut config = common::export_config("https://raceway.example");
    config.endpoint = Some("https://raceway.example".into());
    use raceway_blocking::ConfigError;

    let err = RacewayClient::from_config(config).unwrap_err();
    assert_eq!(err, ConfigError::TlsNotEnabled);
    assert!(err.to_string().contains("rustls"));
    // The README constructors fall back to local analysis and say why.
    let client = RacewayClient::new("https://raceway.example", "svc");
    assert_eq!(client.init_error(), Some(&ConfigError::TlsNotEnabled));
    client.track_state_change("v", None::<u8>, 1, "Write");
    assert_eq!(client.races().events_observed(), 1);
}

#[cfg(feature = "rustls")]
#[test]
fn https_with_the_rustls_feature_is_accepted() {
    let config = common::export_config("https://raceway.example");
    let client = RacewayClient::from_config(config).unwrap();
    assert!(client.init_error().is_none());
    assert_eq!(client.shutdown_timeout(Duration::from_millis(200)), Ok(()));
}

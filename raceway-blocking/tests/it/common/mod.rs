//! Shared by the integration tests: a configuration with short intervals.
#![allow(dead_code)]

use std::time::Duration;

use raceway_blocking::Config;

/// A configuration exporting to `url`, with short intervals so tests stay fast.
pub fn export_config(url: &str) -> Config {
    let mut config = Config::new("blocking-test");
    config.endpoint = Some(url.to_string());
    config.instance_id = Some("test-instance".into());
    config.export.flush_interval = Duration::from_millis(50);
    config.export.initial_backoff = Duration::from_millis(50);
    config.export.max_backoff = Duration::from_millis(200);
    config.request_timeout = Duration::from_secs(5);
    config.connect_timeout = Duration::from_secs(1);
    config.shutdown_timeout = Duration::from_secs(2);
    config
}

/// Records `n` writes of `variable` in the current thread's flow.
pub fn record_writes(client: &raceway_blocking::RacewayClient, variable: &str, n: usize) {
    for i in 0..n {
        client.track_state_change(variable, None::<u64>, i as u64, "Write");
    }
}

/// A client named `service` exporting to a fresh local collector, with the local analyser
/// on as well (the race scenarios check `races()` and that every event arrived).
pub fn analysed_client(service: &str) -> (raceway_blocking::RacewayClient, raceway_testkit::Collector) {
    let collector = raceway_testkit::Collector::start();
    let mut config = export_config(&collector.url());
    config.service_name = service.into();
    config.local_analysis = true;
    let client = raceway_blocking::RacewayClient::from_config(config).expect("valid config");
    (client, collector)
}

/// Every event the client recorded reached the collector.
pub fn assert_delivered(client: &raceway_blocking::RacewayClient, collector: &raceway_testkit::Collector) {
    client.flush(Duration::from_secs(10)).expect("flushed");
    let recorded = client.stats().core.recorded;
    assert!(recorded > 0);
    assert_eq!(collector.event_count() as u64, recorded);
}

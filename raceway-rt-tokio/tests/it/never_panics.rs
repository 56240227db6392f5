//! The client never panics and never deadlocks, whatever the application does with
//! runtimes: made outside any runtime, made and shut down inside a current-thread runtime,
//! shut down twice, dropped without shutdown, used outside a flow, misconfigured.

use crate::common;

use std::time::{Duration, Instant};

use raceway_rt_tokio::{ConfigError, FlushError, PropagationError, RacewayClient};
use raceway_testkit::Collector;

#[test]
fn created_outside_any_runtime_then_used_inside_one() {
    let collector = Collector::start();
    let client = common::fast_client("svc", &collector.url());
    let local = RacewayClient::local("svc");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        common::record_writes(&client, "x", 4).await;
        common::record_writes(&local, "x", 4).await;
        client.flush(Duration::from_secs(5)).await.expect("flushed");
    });
    assert_eq!(collector.event_count(), 4);
    assert_eq!(local.races().accesses_observed(), 4);
    drop(rt);
    // Shut down outside any runtime, after the runtime is gone.
    assert_eq!(client.shutdown_timeout(Duration::from_secs(5)), Ok(()));
    local.shutdown();
}

#[test]
fn used_from_two_runtimes_one_after_the_other() {
    let collector = Collector::start();
    let client = common::fast_client("svc", &collector.url());
    for _ in 0..2 {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            common::record_writes(&client, "x", 3).await;
            client.flush(Duration::from_secs(5)).await.expect("flushed");
        });
    }
    assert_eq!(collector.event_count(), 6);
    client.shutdown();
}

#[tokio::test]
async fn created_and_shut_down_inside_a_current_thread_runtime() {
    let collector = Collector::start();
    let client = common::fast_client("svc", &collector.url());
    common::record_writes(&client, "x", 5).await;
    let start = Instant::now();
    // The blocking shutdown, from the only thread of this runtime: the exporter has its
    // own thread, so this neither deadlocks nor panics, and it drains first.
    client.shutdown();
    assert!(start.elapsed() < Duration::from_secs(3));
    assert_eq!(collector.event_count(), 5);
    assert_eq!(client.stats().export.sent, 5);
    // Twice is fine; a flush after shutdown says the exporter is gone.
    client.shutdown();
    assert_eq!(client.shutdown_timeout(Duration::from_secs(1)), Ok(()));
    assert_eq!(
        client.flush(Duration::from_secs(1)).await,
        Err(FlushError::NotRunning)
    );
    assert_eq!(
        client.flush_blocking(Duration::from_secs(1)),
        Err(FlushError::NotRunning)
    );
    assert_eq!(client.shutdown_async(Duration::from_secs(1)).await, Ok(()));
}

#[tokio::test]
async fn flush_blocking_in_a_current_thread_runtime_does_not_deadlock() {
    let collector = Collector::start();
    let client = common::fast_client("svc", &collector.url());
    common::record_writes(&client, "x", 2).await;
    assert_eq!(client.flush_blocking(Duration::from_secs(5)), Ok(()));
    assert_eq!(collector.event_count(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shut_down_concurrently_from_two_threads() {
    let collector = Collector::start();
    let client = common::fast_client("svc", &collector.url());
    common::record_writes(&client, "x", 10).await;
    let a = client.clone();
    let b = client.clone();
    let ta = std::thread::spawn(move || a.shutdown_timeout(Duration::from_secs(5)));
    let tb = std::thread::spawn(move || b.shutdown_timeout(Duration::from_secs(5)));
    assert_eq!(ta.join().unwrap(), Ok(()));
    assert_eq!(tb.join().unwrap(), Ok(()));
    assert_eq!(collector.event_count(), 10);
}

#[tokio::test]
async fn dropped_without_shutdown_still_delivers() {
    let collector = Collector::start();
    let client = common::fast_client("svc", &collector.url());
    let clone = client.clone();
    common::record_writes(&client, "x", 6).await;
    drop(client); // not the last handle: nothing happens yet
    assert_eq!(clone.stats().core.recorded, 6);
    let start = Instant::now();
    drop(clone); // the last one: asks the exporter to drain, and does not block this worker
    assert!(
        start.elapsed() < Duration::from_millis(100),
        "{:?}",
        start.elapsed()
    );
    // The exporter thread drains on its own, within the shutdown timeout.
    let arrived = tokio::time::timeout(Duration::from_secs(3), collector.until_events(6)).await;
    assert!(arrived.is_ok(), "the exporter did not drain after the drop");
    assert_eq!(collector.event_count(), 6);
}

#[test]
fn dropped_without_shutdown_outside_any_runtime() {
    let collector = Collector::start();
    let client = common::fast_client("svc", &collector.url());
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(common::record_writes(&client, "x", 3));
    drop(client);
    assert_eq!(collector.event_count(), 3);
}

#[test]
fn tracking_outside_any_flow_is_counted_not_recorded() {
    let client = RacewayClient::local("svc");
    client.track_state_change("x", None::<i64>, 1, "Read");
    client.track_function_call("f", 1);
    client.track_lock_acquire("m", "Mutex");
    assert_eq!(client.propagation_headers(None), Err(PropagationError::NoContext));
    let mut headers = http::HeaderMap::new();
    assert_eq!(
        client.inject_headers(&mut headers),
        Err(PropagationError::NoContext)
    );
    assert!(headers.is_empty());
    let stats = client.stats();
    assert_eq!(stats.core.no_context, 3);
    assert_eq!(stats.core.recorded, 0);
    assert_eq!(client.races().events_observed(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tracking_in_a_plain_spawned_task_is_counted_not_recorded() {
    let client = RacewayClient::local("svc");
    let c = client.clone();
    tokio::spawn(async move {
        c.track_state_change("x", None::<i64>, 1, "Write");
    })
    .await
    .unwrap();
    assert_eq!(client.stats().core.no_context, 1);
    assert_eq!(client.stats().core.recorded, 0);
    // Inside a flow it is recorded.
    common::record_writes(&client, "x", 1).await;
    assert_eq!(client.stats().core.recorded, 1);
    assert_eq!(client.stats().core.no_context, 1);
}

#[test]
fn an_access_type_that_names_none_is_recorded_as_write_and_counted() {
    let client = RacewayClient::local("svc");
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    rt.block_on(client.in_new_trace(async {
        client.track_state_change("x", None::<i64>, 1, "Scribble");
    }));
    assert_eq!(client.stats().core.invalid_access_types, 1);
    assert_eq!(client.stats().core.recorded, 1);
}

#[test]
fn a_bad_endpoint_falls_back_to_local_analysis_with_init_error() {
    let client = RacewayClient::new("not a url", "svc");
    assert_eq!(
        client.init_error(),
        Some(&ConfigError::InvalidEndpoint("not a url".into()))
    );
    assert!(!client.is_exporting());
    assert_eq!(client.config().endpoint, None);
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    rt.block_on(client.in_new_trace(async {
        client.track_state_change("x", None::<i64>, 1, "Read");
    }));
    // Kept for the local analyser, nothing queued for export.
    assert_eq!(client.races().accesses_observed(), 1);
    assert_eq!(client.stats().export.recorded, 0);
    assert_eq!(client.flush_blocking(Duration::from_secs(1)), Ok(()));
    client.shutdown();
    client.shutdown();

    let err = RacewayClient::from_config({
        let mut c = raceway_rt_tokio::Config::new("svc");
        c.endpoint = Some("not a url".into());
        c
    })
    .unwrap_err();
    assert_eq!(err, ConfigError::InvalidEndpoint("not a url".into()));
}

#[cfg(not(feature = "rustls"))]
#[test]
fn an_https_endpoint_without_the_rustls_feature_is_a_clear_error() {
    let mut config = raceway_rt_tokio::Config::new("svc");
    config.endpoint = Some("https://raceway.example.com".into());
    let err = RacewayClient::from_config(config).unwrap_err();
    assert_eq!(err, ConfigError::TlsNotEnabled);
    assert!(err.to_string().contains("rustls"), "{err}");

    let fallback = RacewayClient::new("https://raceway.example.com", "svc");
    assert_eq!(fallback.init_error(), Some(&ConfigError::TlsNotEnabled));
    assert!(!fallback.is_exporting());
}

#[cfg(feature = "rustls")]
#[test]
fn an_https_endpoint_with_the_rustls_feature_is_accepted() {
    let mut config = raceway_rt_tokio::Config::new("svc");
    config.endpoint = Some("https://raceway.example.com".into());
    config.shutdown_timeout = Duration::from_millis(100);
    let client = RacewayClient::from_config(config).expect("https supported");
    assert!(client.is_exporting());
}

#[test]
fn a_disabled_client_records_nothing_and_serves_requests() {
    let mut config = raceway_rt_tokio::Config::new("svc");
    config.enabled = false;
    let client = RacewayClient::from_config(config).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
    rt.block_on(client.in_new_trace(async {
        client.track_state_change("x", None::<i64>, 1, "Read");
        assert_eq!(client.propagation_headers(None), Err(PropagationError::Disabled));
    }));
    assert_eq!(client.stats().core.recorded, 0);
    client.shutdown();
}

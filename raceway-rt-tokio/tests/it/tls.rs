//! https end to end: the tokio client sends through the testkit's TLS proxy (rustls, with
//! a certificate made at test time) to a local collector. A private CA is trusted through
//! `Config::ca_file`; a certificate for another name, or from a CA that is not trusted, is
//! refused: nothing arrives, the failed sends are counted, the reason is reported once, and
//! nothing panics.

use crate::common;

use std::time::Duration;

use raceway_rt_tokio::{Config, RacewayClient};
use raceway_testkit::tls::{PemFile, TestCa, TlsProxy};
use raceway_testkit::{logs, Collector};

fn https_config(service: &str, proxy: &TlsProxy, ca_file: Option<&PemFile>) -> Config {
    let mut config = common::fast_config(service, &proxy.url());
    config.ca_file = ca_file.map(|f| f.path().to_path_buf());
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn https_with_a_private_ca_delivers() {
    let collector = Collector::start();
    let ca = TestCa::new("tokio test CA");
    let proxy = TlsProxy::in_front_of(&collector, &ca.issue(&["127.0.0.1"])).unwrap();
    let ca_file = ca.write_pem().unwrap();
    let client = RacewayClient::from_config(https_config("tls-ok-tokio", &proxy, Some(&ca_file))).unwrap();

    common::record_writes(&client, "v", 5).await;
    client
        .flush(Duration::from_secs(10))
        .await
        .expect("flushed over https");

    assert_eq!(collector.event_count(), 5);
    assert_eq!(
        common::written_values(&collector.events(), "v"),
        (0..5).collect::<Vec<u64>>()
    );
    let stats = client.stats().export;
    assert_eq!((stats.sent, stats.dropped(), stats.retried), (5, 0, 0));
    assert!(proxy.handshakes_ok() >= 1);
    assert_eq!(proxy.handshakes_failed(), 0, "{:?}", proxy.handshake_errors());
    assert_eq!(client.shutdown_async(Duration::from_secs(2)).await, Ok(()));
}

async fn assert_refused(
    service: &str,
    proxy: &TlsProxy,
    collector: &Collector,
    ca_file: Option<&PemFile>,
    reason: &str,
) {
    let logs = logs::capture();
    let client = RacewayClient::from_config(https_config(service, proxy, ca_file)).unwrap();
    common::record_writes(&client, "v", 3).await;
    assert!(
        client.flush(Duration::from_millis(1500)).await.is_err(),
        "nothing can be delivered"
    );

    assert_eq!(collector.event_count(), 0);
    let stats = client.stats().export;
    assert_eq!(stats.sent, 0);
    assert!(stats.retried >= 2, "each refused send is counted: {stats:?}");
    assert!(proxy.handshakes_failed() >= 2);
    assert_eq!(proxy.handshakes_ok(), 0);
    let said = logs.containing(&format!("https to {}/events", proxy.url()));
    assert_eq!(said.len(), 1, "reported once, not once a retry: {said:?}");
    assert!(said[0].contains(reason), "the reason is given: {}", said[0]);

    let _ = client.shutdown_async(Duration::from_millis(300)).await;
    let stats = client.stats().export;
    assert_eq!((stats.dropped(), stats.dropped_shutdown), (3, 3), "{stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_for_another_name_is_refused() {
    let collector = Collector::start();
    let ca = TestCa::new("tokio test CA");
    let proxy = TlsProxy::in_front_of(&collector, &ca.issue(&["raceway.other.example"])).unwrap();
    let ca_file = ca.write_pem().unwrap();
    assert_refused(
        "tls-name-tokio",
        &proxy,
        &collector,
        Some(&ca_file),
        "not valid for name",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_from_an_untrusted_ca_is_refused() {
    let collector = Collector::start();
    let trusted = TestCa::new("trusted CA");
    let other = TestCa::new("unknown CA");
    let proxy = TlsProxy::in_front_of(&collector, &other.issue(&["127.0.0.1"])).unwrap();
    let ca_file = trusted.write_pem().unwrap();
    assert_refused(
        "tls-ca-tokio",
        &proxy,
        &collector,
        Some(&ca_file),
        "UnknownIssuer",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_default_roots_do_not_trust_a_private_ca() {
    let collector = Collector::start();
    let ca = TestCa::new("private CA");
    let proxy = TlsProxy::in_front_of(&collector, &ca.issue(&["127.0.0.1"])).unwrap();
    assert_refused("tls-roots-tokio", &proxy, &collector, None, "UnknownIssuer").await;
}

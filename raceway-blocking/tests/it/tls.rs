//! https end to end: the client sends through the testkit's TLS proxy (rustls, with a
//! certificate made at test time) to a local collector. A private CA is trusted through
//! `Config::ca_file` or `RACEWAY_CA_FILE`; a certificate for another name, or from a CA that
//! is not trusted, is refused: nothing arrives, the failed sends are counted, the reason is
//! reported once, and nothing panics.

use std::process::Command;
use std::time::Duration;

use raceway_blocking::{Config, ConfigError, RacewayClient};
use raceway_testkit::tls::{PemFile, TestCa, TlsProxy};
use raceway_testkit::{logs, Collector};

fn https_config(service: &str, proxy: &TlsProxy, ca_file: Option<&PemFile>) -> Config {
    let mut config = crate::common::export_config(&proxy.url());
    config.service_name = service.into();
    config.ca_file = ca_file.map(|f| f.path().to_path_buf());
    config
}

#[test]
fn https_with_a_private_ca_from_config_delivers() {
    let collector = Collector::start();
    let ca = TestCa::new("blocking test CA");
    let proxy = TlsProxy::in_front_of(&collector, &ca.issue(&["127.0.0.1"])).unwrap();
    let ca_file = ca.write_pem().unwrap();
    let client = RacewayClient::from_config(https_config("tls-ok", &proxy, Some(&ca_file))).unwrap();

    crate::common::record_writes(&client, "v", 5);
    client.flush(Duration::from_secs(10)).expect("flushed over https");

    assert_eq!(collector.event_count(), 5);
    let stats = client.stats().export;
    assert_eq!((stats.sent, stats.dropped(), stats.retried), (5, 0, 0));
    assert!(proxy.handshakes_ok() >= 1);
    assert_eq!(proxy.handshakes_failed(), 0, "{:?}", proxy.handshake_errors());
    client.shutdown_timeout(Duration::from_secs(2)).unwrap();
}

/// Sends `n` events to `proxy` with `ca_file` and checks they are refused: none arrives,
/// the sends are counted as failed (retried), the reason (`reason`) is logged once for
/// this endpoint, and shutdown drops and counts the events.
fn assert_refused(
    service: &str,
    proxy: &TlsProxy,
    collector: &Collector,
    ca_file: Option<&PemFile>,
    reason: &str,
) {
    let logs = logs::capture();
    let client = RacewayClient::from_config(https_config(service, proxy, ca_file)).unwrap();
    crate::common::record_writes(&client, "v", 3);
    assert!(
        client.flush(Duration::from_millis(1500)).is_err(),
        "nothing can be delivered"
    );

    assert_eq!(collector.event_count(), 0);
    let stats = client.stats().export;
    assert_eq!(stats.sent, 0);
    assert!(stats.retried >= 2, "each refused send is counted: {stats:?}");
    assert!(
        proxy.handshakes_failed() >= 2,
        "the client aborted the handshakes"
    );
    assert_eq!(proxy.handshakes_ok(), 0);
    let said = logs.containing(&format!("https to {}/events", proxy.url()));
    assert_eq!(said.len(), 1, "reported once, not once a retry: {said:?}");
    assert!(said[0].contains("TLS connection failed"), "{}", said[0]);
    assert!(said[0].contains(reason), "the reason is given: {}", said[0]);
    assert!(said[0].starts_with("WARN raceway"), "{}", said[0]);

    let _ = client.shutdown_timeout(Duration::from_millis(300));
    let stats = client.stats().export;
    assert_eq!(stats.dropped(), 3, "dropped and counted at shutdown: {stats:?}");
    assert_eq!(stats.dropped_shutdown, 3);
}

#[test]
fn a_certificate_for_another_name_is_refused() {
    let collector = Collector::start();
    let ca = TestCa::new("blocking test CA");
    let proxy = TlsProxy::in_front_of(&collector, &ca.issue(&["raceway.other.example"])).unwrap();
    let ca_file = ca.write_pem().unwrap();
    assert_refused(
        "tls-wrong-name",
        &proxy,
        &collector,
        Some(&ca_file),
        "not valid for name",
    );
}

#[test]
fn a_certificate_from_an_untrusted_ca_is_refused() {
    let collector = Collector::start();
    let trusted = TestCa::new("trusted CA");
    let other = TestCa::new("unknown CA");
    let proxy = TlsProxy::in_front_of(&collector, &other.issue(&["127.0.0.1"])).unwrap();
    let ca_file = trusted.write_pem().unwrap();
    assert_refused(
        "tls-unknown-ca",
        &proxy,
        &collector,
        Some(&ca_file),
        "UnknownIssuer",
    );
}

#[test]
fn the_default_roots_do_not_trust_a_private_ca() {
    // No ca_file: Mozilla's roots, which never hold a CA made here.
    let collector = Collector::start();
    let ca = TestCa::new("private CA");
    let proxy = TlsProxy::in_front_of(&collector, &ca.issue(&["127.0.0.1"])).unwrap();
    assert_refused("tls-default-roots", &proxy, &collector, None, "UnknownIssuer");
}

#[test]
fn an_unusable_ca_file_is_a_clear_error() {
    let mut config = crate::common::export_config("https://127.0.0.1:9");
    config.ca_file = Some("/nonexistent/ca.pem".into());
    let err = RacewayClient::from_config(config.clone()).unwrap_err();
    assert!(
        matches!(&err, ConfigError::InvalidCaFile { path, .. } if path.ends_with("ca.pem")),
        "{err:?}"
    );
    assert!(err.to_string().contains("/nonexistent/ca.pem"), "{err}");
    assert!(err.to_string().contains("RACEWAY_CA_FILE"), "{err}");

    let not_pem = PemFile::write(b"this is not a certificate\n").unwrap();
    config.ca_file = Some(not_pem.path().to_path_buf());
    let err = RacewayClient::from_config(config.clone()).unwrap_err();
    assert!(err.to_string().contains("no PEM CERTIFICATE"), "{err}");

    // An http endpoint does not read it.
    config.endpoint = Some("http://127.0.0.1:9".into());
    config.ca_file = Some("/nonexistent/ca.pem".into());
    config.shutdown_timeout = Duration::from_millis(50);
    let client = RacewayClient::from_config(config).expect("ca_file is for https only");
    client.shutdown();
}

/// The `RACEWAY_CA_FILE` path, in a child process of this test binary (the environment is
/// the process's: changing it here would reach every other test).
#[test]
fn the_ca_file_from_the_environment_is_trusted() {
    let collector = Collector::start();
    let ca = TestCa::new("env CA");
    let proxy = TlsProxy::in_front_of(&collector, &ca.issue(&["127.0.0.1"])).unwrap();
    let ca_file = ca.write_pem().unwrap();
    let exe = std::env::current_exe().unwrap();
    let run = |ca: Option<&std::path::Path>| {
        let mut cmd = Command::new(&exe);
        cmd.args(["tls::tls_env_child", "--exact", "--ignored", "--nocapture"])
            .env("RACEWAY_TLS_ENV_CHILD", "1")
            .env("RACEWAY_ENDPOINT", proxy.url())
            .env("RACEWAY_SERVICE_NAME", "tls-env")
            .env("RACEWAY_FLUSH_INTERVAL_MS", "50")
            .env("RACEWAY_SHUTDOWN_TIMEOUT_MS", "500")
            .env_remove("RACEWAY_API_KEY")
            .env_remove("RACEWAY_CA_FILE");
        if let Some(ca) = ca {
            cmd.env("RACEWAY_CA_FILE", ca);
        }
        let out = cmd.output().unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
    };

    let trusted = run(Some(ca_file.path()));
    assert!(trusted.contains("child: sent=4 dropped=0"), "{trusted}");
    assert_eq!(collector.event_count(), 4);

    // Without the variable, the default roots refuse the same server.
    let untrusted = run(None);
    assert!(untrusted.contains("child: sent=0"), "{untrusted}");
    assert_eq!(collector.event_count(), 4);
}

/// The child of `the_ca_file_from_the_environment_is_trusted`; a no-op otherwise.
#[test]
#[ignore = "a child process of the_ca_file_from_the_environment_is_trusted"]
fn tls_env_child() {
    if std::env::var_os("RACEWAY_TLS_ENV_CHILD").is_none() {
        return;
    }
    let client = RacewayClient::from_env().expect("a valid environment");
    crate::common::record_writes(&client, "v", 4);
    let _ = client.flush(Duration::from_secs(3));
    let stats = client.stats().export;
    println!("child: sent={} dropped={}", stats.sent, stats.dropped());
    client.shutdown();
}

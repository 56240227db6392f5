//! No secret in any output: `Debug` and `Display` of every public config, client, sender and
//! error type, and what the SDK logs, never show the API key nor the endpoint's password.

use std::time::Duration;

use raceway_blocking::{Config, ConfigError, FlushError, RacewayClient};
use raceway_proto::transport::UreqSender;
use raceway_testkit::{logs, Collector};

const KEY: &str = "rk_live_KEY7f3a9c1e";
const PASSWORD: &str = "s3cr3t";

/// Panics naming the first formatted value that shows a secret.
fn assert_no_secret(outputs: &[(&str, String)]) {
    for (what, text) in outputs {
        assert!(!text.contains(KEY), "{what} shows the API key: {text}");
        assert!(
            !text.contains(PASSWORD),
            "{what} shows the endpoint's password: {text}"
        );
    }
}

fn both<T: std::fmt::Debug + std::fmt::Display>(what: &'static str, v: &T) -> Vec<(&'static str, String)> {
    vec![
        (what, format!("{v:?}")),
        (what, format!("{v:#?}")),
        (what, v.to_string()),
    ]
}

#[test]
fn debug_and_display_never_show_the_key_or_the_password() {
    let logs = logs::capture();
    let mut config = Config::new("secrets-blocking");
    config.endpoint = Some(format!("https://user:{PASSWORD}@127.0.0.1:9"));
    config.api_key = Some(KEY.into());
    config.shutdown_timeout = Duration::from_millis(100);
    config.connect_timeout = Duration::from_millis(200);

    let client = RacewayClient::from_config(config.clone()).expect("a valid config");
    let sender = UreqSender::new(&config).expect("a valid sender");
    let mut out = vec![
        ("Config", format!("{config:?}")),
        ("Config (pretty)", format!("{config:#?}")),
        ("client.config()", format!("{:?}", client.config())),
        ("RacewayClient", format!("{client:?}")),
        ("RacewayClient (pretty)", format!("{client:#?}")),
        ("ClientHandle", format!("{:?}", *client)),
        ("ClientCore", format!("{:?}", **client)),
        ("UreqSender", format!("{sender:?}")),
        ("UreqSender (pretty)", format!("{sender:#?}")),
        ("stats", format!("{:?}", client.stats())),
    ];
    // What is shown instead.
    assert!(out[0].1.contains("<redacted>"), "{}", out[0].1);
    assert!(out[0].1.contains("https://***@127.0.0.1:9"), "{}", out[0].1);
    assert!(out[3].1.contains("https://***@127.0.0.1:9"), "{}", out[3].1);

    // Every error, made with the secrets inside what was refused.
    let mut bad = config.clone();
    bad.endpoint = Some(format!("ftp://user:{PASSWORD}@raceway.example"));
    let invalid_endpoint = RacewayClient::from_config(bad).unwrap_err();
    assert!(matches!(invalid_endpoint, ConfigError::InvalidEndpoint(_)));
    out.extend(both("InvalidEndpoint", &invalid_endpoint));
    let mut bad = config.clone();
    bad.endpoint = Some(format!(
        "https://user:{PASSWORD}@raceway.example/?key={KEY}#{KEY}"
    ));
    bad.api_key = Some(format!("{KEY}\nx-injected: 1"));
    let invalid_key = RacewayClient::from_config(bad).unwrap_err();
    assert_eq!(invalid_key, ConfigError::InvalidApiKey);
    out.extend(both("InvalidApiKey", &invalid_key));
    let mut bad = config.clone();
    bad.ca_file = Some("/nonexistent/raceway-ca.pem".into());
    let invalid_ca = RacewayClient::from_config(bad).unwrap_err();
    assert!(
        matches!(invalid_ca, ConfigError::InvalidCaFile { .. }),
        "{invalid_ca:?}"
    );
    out.extend(both("InvalidCaFile", &invalid_ca));
    // The published constructors keep the error beside a local client.
    let fallback = RacewayClient::new_with_auth(&format!("ftp://user:{PASSWORD}@h"), "svc", KEY);
    let init_error = fallback.init_error().expect("refused").clone();
    out.extend(both("init_error", &init_error));
    out.push(("fallback client", format!("{fallback:?}")));
    out.extend(both("FlushError::Timeout", &FlushError::Timeout));
    out.extend(both("FlushError::NotRunning", &FlushError::NotRunning));
    out.extend(both("TlsNotEnabled", &ConfigError::TlsNotEnabled));
    assert_no_secret(&out);

    // A refused key is reported (once) without the key.
    let collector = Collector::start_with_key("the-right-key");
    let mut wrong = crate::common::export_config(&collector.url());
    wrong.service_name = "secrets-blocking-refused".into();
    wrong.api_key = Some(KEY.into());
    let refused = RacewayClient::from_config(wrong).unwrap();
    crate::common::record_writes(&refused, "v", 2);
    refused.flush(Duration::from_secs(5)).unwrap();
    assert_eq!(refused.stats().export.last_rejected_status, Some(401));
    assert!(logs.wait_for("secrets-blocking-refused", Duration::from_secs(2)));
    refused.shutdown();
    client.shutdown();
    fallback.shutdown();

    let lines: Vec<(&str, String)> = logs.lines().into_iter().map(|l| ("log line", l)).collect();
    assert!(!lines.is_empty());
    assert_no_secret(&lines);
}

//! No secret in any output: `Debug` and `Display` of the tokio client, its layers, config
//! and errors, and what the SDK logs, never show the API key nor the endpoint's password.

use crate::common;

use std::time::Duration;

use raceway_rt_tokio::{Config, ConfigError, RacewayClient};
use raceway_testkit::{logs, Collector};
use tower::Layer as _;

const KEY: &str = "rk_live_KEY_tokio_e4c8";
const PASSWORD: &str = "s3cr3t";

fn assert_no_secret(outputs: &[(&str, String)]) {
    for (what, text) in outputs {
        assert!(!text.contains(KEY), "{what} shows the API key: {text}");
        assert!(
            !text.contains(PASSWORD),
            "{what} shows the endpoint's password: {text}"
        );
    }
}

fn forms<T: std::fmt::Debug + std::fmt::Display>(what: &'static str, v: &T) -> Vec<(&'static str, String)> {
    vec![
        (what, format!("{v:?}")),
        (what, format!("{v:#?}")),
        (what, v.to_string()),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn debug_and_display_never_show_the_key_or_the_password() {
    let logs = logs::capture();
    let mut config = Config::new("secrets-tokio");
    config.endpoint = Some(format!("https://user:{PASSWORD}@127.0.0.1:9"));
    config.api_key = Some(KEY.into());
    config.shutdown_timeout = Duration::from_millis(100);
    let client = RacewayClient::from_config(config.clone()).expect("a valid config");
    let mut out = vec![
        ("Config", format!("{config:?}")),
        ("Config (pretty)", format!("{config:#?}")),
        ("RacewayClient", format!("{client:?}")),
        ("RacewayClient (pretty)", format!("{client:#?}")),
        ("ClientHandle", format!("{:?}", *client)),
        ("RacewayLayer", format!("{:?}", client.layer())),
        ("RacewayService", format!("{:?}", client.layer().layer(()))),
        ("PropagateLayer", format!("{:?}", client.propagate_layer())),
        (
            "PropagateService",
            format!("{:?}", client.propagate_layer().layer(())),
        ),
    ];
    assert!(out[2].1.contains("https://***@127.0.0.1:9"), "{}", out[2].1);

    let mut bad = config.clone();
    bad.endpoint = Some(format!("ftp://user:{PASSWORD}@raceway.example"));
    out.extend(forms(
        "InvalidEndpoint",
        &RacewayClient::from_config(bad).unwrap_err(),
    ));
    let mut bad = config.clone();
    bad.api_key = Some(format!("{KEY}\r\n"));
    let e = RacewayClient::from_config(bad).unwrap_err();
    assert_eq!(e, ConfigError::InvalidApiKey);
    out.extend(forms("InvalidApiKey", &e));
    let fallback = RacewayClient::new_with_auth(&format!("ftp://user:{PASSWORD}@h"), "svc", KEY);
    out.extend(forms("init_error", fallback.init_error().expect("refused")));
    out.push(("fallback", format!("{fallback:?}")));

    // A refused key is reported without the key.
    let collector = Collector::start_with_key("the-right-key");
    let mut wrong = common::quiet_config("secrets-tokio-refused", &collector.url());
    wrong.api_key = Some(KEY.into());
    let refused = RacewayClient::from_config(wrong).unwrap();
    common::record_writes(&refused, "v", 1).await;
    refused.flush(Duration::from_secs(5)).await.unwrap();
    assert_eq!(refused.stats().export.last_rejected_status, Some(401));
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    while logs.containing("secrets-tokio-refused").is_empty() && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(logs.containing("secrets-tokio-refused").len(), 1);
    let _ = refused.shutdown_async(Duration::from_secs(1)).await;
    let _ = client.shutdown_async(Duration::from_millis(200)).await;
    out.extend(logs.lines().into_iter().map(|l| ("log line", l)));
    assert_no_secret(&out);
}

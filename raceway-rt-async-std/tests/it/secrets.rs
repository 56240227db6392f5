//! No secret in any output: `Debug` and `Display` of the async-std client, its config and
//! errors, and what the SDK logs, never show the API key nor the endpoint's password.

use std::time::Duration;

use raceway_rt_async_std::{Config, ConfigError, RacewayClient};
use raceway_testkit::{logs, Collector};

const KEY: &str = "rk_live_KEY_async_5b2d";
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

#[test]
fn debug_and_display_never_show_the_key_or_the_password() {
    let logs = logs::capture();
    let mut config = Config::new("secrets-async-std");
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
    ];
    assert!(out[2].1.contains("https://***@127.0.0.1:9"), "{}", out[2].1);

    let mut bad = config.clone();
    bad.endpoint = Some(format!("ftp://user:{PASSWORD}@raceway.example"));
    out.extend(forms(
        "InvalidEndpoint",
        &RacewayClient::from_config(bad).unwrap_err(),
    ));
    let mut bad = config.clone();
    bad.api_key = Some(format!("{KEY} with spaces"));
    let e = RacewayClient::from_config(bad).unwrap_err();
    assert_eq!(e, ConfigError::InvalidApiKey);
    out.extend(forms("InvalidApiKey", &e));
    let fallback = RacewayClient::new_with_auth(&format!("ftp://user:{PASSWORD}@h"), "svc", KEY);
    out.extend(forms("init_error", fallback.init_error().expect("refused")));
    out.push(("fallback", format!("{fallback:?}")));

    // A refused key is reported without the key.
    let collector = Collector::start_with_key("the-right-key");
    let mut wrong = Config::new("secrets-async-std-refused");
    wrong.endpoint = Some(collector.url());
    wrong.api_key = Some(KEY.into());
    let refused = RacewayClient::from_config(wrong).unwrap();
    futures::executor::block_on(async {
        refused
            .in_new_trace(async { refused.track_state_change("v", None::<u8>, 1, "Write") })
            .await;
        refused.flush(Duration::from_secs(5)).await.unwrap();
    });
    assert_eq!(refused.stats().export.last_rejected_status, Some(401));
    assert!(logs.wait_for("secrets-async-std-refused", Duration::from_secs(2)));
    refused.shutdown();
    client.shutdown();
    out.extend(logs.lines().into_iter().map(|l| ("log line", l)));
    assert_no_secret(&out);
}

//! Configuration from `RACEWAY_*` environment variables: one test, because the process
//! environment is shared by every thread of this test binary.

use std::time::Duration;

use raceway_proto::config::{Config, ConfigError};
use raceway_proto::export::ServerCapacity;
use raceway_proto::sampling::Sampler;

const VARS: [&str; 14] = [
    "RACEWAY_SAMPLE_RATIO",
    "OTEL_TRACES_SAMPLER",
    "OTEL_TRACES_SAMPLER_ARG",
    "RACEWAY_SERVER_BUFFER",
    "RACEWAY_SERVER_EVENTS_PER_SEC",
    "RACEWAY_ENDPOINT",
    "RACEWAY_API_KEY",
    "RACEWAY_SERVICE_NAME",
    "RACEWAY_INSTANCE_ID",
    "RACEWAY_DISABLED",
    "RACEWAY_QUEUE_SIZE",
    "RACEWAY_BATCH_SIZE",
    "RACEWAY_FLUSH_INTERVAL_MS",
    "RACEWAY_MAX_BODY_BYTES",
];

fn clear() {
    for v in VARS {
        std::env::remove_var(v);
    }
}

#[test]
fn environment_variables() {
    clear();
    // Nothing set: local analysis, defaults.
    let c = Config::from_env().unwrap();
    assert_eq!(c.endpoint, None);
    assert!(c.enabled);
    assert_eq!(c.export.queue_capacity, 65_536);
    assert_eq!(c.export.flush_interval, Duration::from_secs(1));
    assert_eq!(c.export.server_capacity, Some(ServerCapacity::RACEWAY_DEFAULT));

    // The server's capacity: either value alone keeps the other's default; a buffer of
    // 0 turns pacing off.
    std::env::set_var("RACEWAY_SERVER_EVENTS_PER_SEC", "5000");
    let c = Config::from_env().unwrap();
    assert_eq!(
        c.export.server_capacity,
        Some(ServerCapacity {
            buffer_events: 10_000,
            events_per_sec: 5_000
        })
    );
    std::env::set_var("RACEWAY_SERVER_BUFFER", "0");
    assert_eq!(Config::from_env().unwrap().export.server_capacity, None);
    std::env::set_var("RACEWAY_SERVER_BUFFER", "-1");
    assert!(matches!(
        Config::from_env(),
        Err(ConfigError::InvalidVar {
            name: "RACEWAY_SERVER_BUFFER",
            ..
        })
    ));
    clear();

    // Sampling: parent-based always on by default; RACEWAY_SAMPLE_RATIO wins over
    // OpenTelemetry's variables, which are read when it is unset.
    assert_eq!(Config::from_env().unwrap().sampler, Sampler::default());
    std::env::set_var("OTEL_TRACES_SAMPLER", "parentbased_traceidratio");
    std::env::set_var("OTEL_TRACES_SAMPLER_ARG", "0.25");
    assert_eq!(
        Config::from_env().unwrap().sampler,
        Sampler::ratio(0.25).parent_based()
    );
    std::env::set_var("RACEWAY_SAMPLE_RATIO", "0.1");
    assert_eq!(
        Config::from_env().unwrap().sampler,
        Sampler::ratio(0.1).parent_based()
    );
    std::env::set_var("RACEWAY_SAMPLE_RATIO", "1.5");
    assert!(matches!(
        Config::from_env(),
        Err(ConfigError::InvalidVar {
            name: "RACEWAY_SAMPLE_RATIO",
            ..
        })
    ));
    std::env::remove_var("RACEWAY_SAMPLE_RATIO");
    std::env::set_var("OTEL_TRACES_SAMPLER", "jaeger_remote");
    assert!(matches!(
        Config::from_env(),
        Err(ConfigError::InvalidVar {
            name: "OTEL_TRACES_SAMPLER",
            ..
        })
    ));
    clear();

    // Everything set.
    std::env::set_var("RACEWAY_ENDPOINT", "http://127.0.0.1:8080/");
    std::env::set_var("RACEWAY_API_KEY", "k3y");
    std::env::set_var("RACEWAY_SERVICE_NAME", "payments");
    std::env::set_var("RACEWAY_INSTANCE_ID", "pay-1");
    std::env::set_var("RACEWAY_QUEUE_SIZE", "100");
    std::env::set_var("RACEWAY_BATCH_SIZE", "10");
    std::env::set_var("RACEWAY_FLUSH_INTERVAL_MS", "250");
    std::env::set_var("RACEWAY_MAX_BODY_BYTES", "999999999");
    let c = Config::from_env().unwrap();
    assert_eq!(c.endpoint.as_deref(), Some("http://127.0.0.1:8080/"));
    assert_eq!(c.events_url().as_deref(), Some("http://127.0.0.1:8080/events"));
    assert_eq!(c.service_name, "payments");
    assert_eq!(c.resolved_instance_id(), "pay-1");
    assert_eq!(c.export.queue_capacity, 100);
    assert_eq!(c.export.max_batch_events, 10);
    assert_eq!(c.export.flush_interval, Duration::from_millis(250));
    assert!(
        c.export.max_body_bytes < 2 * 1024 * 1024,
        "capped under the server's 2 MiB"
    );
    assert_eq!(
        c.auth_headers(),
        vec![
            ("authorization", "Bearer k3y".to_string()),
            ("x-raceway-key", "k3y".to_string())
        ]
    );
    assert_eq!(c.validate(false), Ok(()));

    // Values given in code win over the environment ...
    let (c, err) = Config::for_client("http://127.0.0.1:9", "orders", Some("code-key"), None, false);
    assert_eq!(err, None);
    assert_eq!(c.endpoint.as_deref(), Some("http://127.0.0.1:9"));
    assert_eq!(c.service_name, "orders");
    assert_eq!(c.api_key.as_deref(), Some("code-key"));
    // ... except the kill switch, which always applies.
    std::env::set_var("RACEWAY_DISABLED", "true");
    let (c, _) = Config::for_client("http://127.0.0.1:9", "orders", None, None, false);
    assert!(!c.enabled);
    std::env::remove_var("RACEWAY_DISABLED");

    // Bad values are clear errors, never a panic.
    std::env::set_var("RACEWAY_QUEUE_SIZE", "lots");
    let e = Config::from_env().unwrap_err();
    assert_eq!(
        e,
        ConfigError::InvalidVar {
            name: "RACEWAY_QUEUE_SIZE",
            expected: "a whole number"
        }
    );
    assert_eq!(
        e.to_string(),
        "environment variable RACEWAY_QUEUE_SIZE must be a whole number"
    );
    std::env::remove_var("RACEWAY_QUEUE_SIZE");
    std::env::set_var("RACEWAY_DISABLED", "maybe");
    assert!(matches!(
        Config::from_env(),
        Err(ConfigError::InvalidVar {
            name: "RACEWAY_DISABLED",
            ..
        })
    ));
    clear();

    // Endpoint and key checks; a failing check falls back to local analysis.
    let (c, err) = Config::for_client("not a url", "svc", None, None, false);
    assert_eq!(c.endpoint, None);
    assert_eq!(err, Some(ConfigError::InvalidEndpoint("not a url".into())));
    let (_, err) = Config::for_client("https://127.0.0.1:9", "svc", None, None, false);
    assert_eq!(err, Some(ConfigError::TlsNotEnabled));
    let (_, err) = Config::for_client("https://127.0.0.1:9", "svc", None, None, true);
    assert_eq!(err, None);
    let (_, err) = Config::for_client("http://127.0.0.1:1", "svc", Some("bad\r\nkey"), None, false);
    assert_eq!(err, Some(ConfigError::InvalidApiKey));
    let (c, err) = Config::for_client("", "svc", None, None, false);
    assert_eq!(
        (c.endpoint, err),
        (None, None),
        "an empty endpoint means local analysis"
    );
}

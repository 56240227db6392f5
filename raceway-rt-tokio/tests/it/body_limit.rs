//! Bodies stay under the cap (1 MiB by default, the server refuses over 2 MiB), a large
//! backlog is cut into many bodies without losing an event, and one event too big for any
//! body is cut down rather than sinking its batch.

use crate::common;

use std::time::Duration;

use raceway_proto::encode::DEFAULT_MAX_BODY_BYTES;
use raceway_proto::EventKind;
use raceway_testkit::Collector;

const BIG: usize = 50 * 1024;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_large_events_are_split_into_bodies_under_the_cap() {
    const N: usize = 200; // ~10 MB of values
    let collector = Collector::start();
    let client = common::fast_client("svc", &collector.url());
    assert_eq!(client.config().export.max_body_bytes, DEFAULT_MAX_BODY_BYTES);
    client
        .in_new_trace(async {
            for i in 0..N {
                let value = format!("{i:06}{}", "v".repeat(BIG));
                client.track_state_change("blob", None::<String>, value, "Write");
            }
        })
        .await;
    client.flush(Duration::from_secs(30)).await.expect("delivered");

    let sizes = collector.body_sizes();
    // ~10 MB in bodies of at most the cap: at least 10 of them.
    let least = (N * BIG).div_ceil(DEFAULT_MAX_BODY_BYTES);
    assert!(least >= 6, "{least}");
    assert!(sizes.len() >= least, "{} bodies for ~10 MB", sizes.len());
    for s in &sizes {
        assert!(*s <= DEFAULT_MAX_BODY_BYTES, "a body of {s} bytes");
    }
    assert!(collector.statuses().iter().all(|s| *s == Some(200)));
    let events = collector.events();
    assert_eq!(events.len(), N);
    assert_eq!(common::unique_ids(&events).len(), N);
    // Every value arrived whole, in order.
    for (i, e) in events.iter().enumerate() {
        match &e.kind {
            EventKind::StateChange { new_value, .. } => {
                let s = new_value.as_str().expect("string value");
                assert_eq!(s.len(), 6 + BIG);
                assert_eq!(&s[..6], format!("{i:06}"));
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    let stats = client.stats();
    assert_eq!(stats.export.sent, N as u64);
    assert_eq!(stats.export.truncated, 0);
    assert_eq!(stats.export.split, 0, "no 413 needed");
    assert_eq!(stats.export.dropped(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_event_over_any_body_is_cut_down_and_its_batch_still_arrives() {
    let collector = Collector::start();
    let client = common::fast_client("svc", &collector.url());
    client
        .in_new_trace(async {
            client.track_state_change("before", None::<u64>, 1u64, "Write");
            client.track_state_change("huge", None::<String>, "h".repeat(3_000_000), "Write");
            client.track_state_change("after", None::<u64>, 2u64, "Write");
        })
        .await;
    client.flush(Duration::from_secs(10)).await.expect("delivered");

    assert!(collector.statuses().iter().all(|s| *s == Some(200)));
    for s in collector.body_sizes() {
        assert!(s <= DEFAULT_MAX_BODY_BYTES, "a body of {s} bytes");
    }
    let events = collector.events();
    let vars: Vec<(String, serde_json::Value)> = events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::StateChange {
                variable, new_value, ..
            } => Some((variable.clone(), new_value.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(vars.len(), 3);
    assert_eq!(vars[0], ("before".into(), serde_json::json!(1)));
    assert_eq!(vars[1].0, "huge");
    // 3,000,000 characters serialize to 3,000,002 bytes with the quotes.
    assert_eq!(vars[1].1, serde_json::json!("<truncated: 3000002 bytes>"));
    assert_eq!(vars[2], ("after".into(), serde_json::json!(2)));
    let stats = client.stats();
    assert_eq!(stats.export.truncated, 1);
    assert_eq!(stats.export.sent, 3);
    assert_eq!(stats.export.dropped(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_cap_above_the_server_limit_is_lowered_under_it() {
    use raceway_proto::encode::MAX_BODY_BYTES_LIMIT;
    const N: usize = 100; // ~5 MB
    let collector = Collector::start();
    let mut config = common::fast_config("svc", &collector.url());
    config.export.max_body_bytes = 10 * 1024 * 1024;
    let client = raceway_rt_tokio::RacewayClient::from_config(config).unwrap();
    client
        .in_new_trace(async {
            for i in 0..N {
                client.track_state_change("blob", None::<String>, format!("{i}{}", "w".repeat(BIG)), "Write");
            }
        })
        .await;
    client.flush(Duration::from_secs(30)).await.expect("delivered");

    let sizes = collector.body_sizes();
    assert!(sizes.len() >= 3, "{sizes:?}");
    assert!(
        sizes.iter().any(|s| *s > DEFAULT_MAX_BODY_BYTES),
        "the larger cap is used: {sizes:?}"
    );
    for s in &sizes {
        assert!(*s <= MAX_BODY_BYTES_LIMIT, "a body of {s} bytes");
    }
    assert!(collector.statuses().iter().all(|s| *s == Some(200)), "no 413");
    assert_eq!(collector.event_count(), N);
    assert_eq!(client.stats().export.dropped(), 0);
}

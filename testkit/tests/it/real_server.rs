//! The harness around the real Raceway server ([`RealServer`]), against the real binary.
//!
//! Every test skips (one `skipped: ...` line) when the binary is not found, unless
//! `RACEWAY_REQUIRE_SERVER=1`.

use std::collections::BTreeMap;
use std::time::Duration;

use raceway_testkit::{RealServer, ServerOptions};
use serde_json::{json, Value};

const ACCEPTED: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/data/accepted-batch.json"
));

fn accepted_events() -> Vec<Value> {
    let v: Value = serde_json::from_str(ACCEPTED).unwrap();
    v["events"].as_array().unwrap().clone()
}

/// A `StateChange` write of `variable` on `thread`, with no parent and its own clock
/// component, so nothing orders it against another thread's.
fn write_event(id: &str, trace: &str, thread: &str, variable: &str, value: u64, micros: u32) -> Value {
    json!({
        "id": id,
        "trace_id": trace,
        "parent_id": null,
        "timestamp": format!("2026-11-29T08:00:01.{micros:06}Z"),
        "kind": {"StateChange": {
            "variable": variable,
            "old_value": null,
            "new_value": value,
            "location": format!("tests/real_server.rs:{value}"),
            "access_type": "Write",
        }},
        "metadata": {
            "thread_id": thread,
            "process_id": 4242,
            "service_name": "harness",
            "environment": "test",
            "tags": {"sdk_language": "rust"},
            "duration_ns": null,
        },
        "causality_vector": [[format!("harness#{thread}"), 1]],
        "lock_set": [],
    })
}

/// `n` `Custom` events of one trace and one thread, chained by `parent_id`.
fn custom_events(n: usize) -> Vec<Value> {
    let trace = "7bf92f35-77b3-4da6-a3ce-929d0e0e4736";
    (0..n)
        .map(|i| {
            let parent = if i == 0 {
                Value::Null
            } else {
                json!(format!("c0000000-0000-4000-8000-{:012x}", i - 1))
            };
            json!({
                "id": format!("c0000000-0000-4000-8000-{i:012x}"),
                "trace_id": trace,
                "parent_id": parent,
                "timestamp": format!("2026-11-29T08:00:02.{i:06}Z"),
                "kind": {"Custom": {"name": "tick", "data": i}},
                "metadata": {
                    "thread_id": "harness#flow-1",
                    "process_id": 4242,
                    "service_name": "harness",
                    "environment": "test",
                    "tags": {},
                    "duration_ns": null,
                },
                "causality_vector": [["harness#flow-1", i + 1]],
                "lock_set": [],
            })
        })
        .collect()
}

fn batch(events: &[Value]) -> Vec<u8> {
    serde_json::to_vec(&json!({ "events": events })).unwrap()
}

#[test]
fn accepted_fixture_is_captured_and_counted() {
    let Some(server) = RealServer::start(ServerOptions::default()) else {
        return;
    };
    assert!(server.url().starts_with("http://127.0.0.1:"));
    assert_eq!(server.api_key(), None);
    assert_eq!(server.events_captured(), 0);
    assert!(server.trace_event_counts().is_empty());
    assert!(server.race_pairs().is_empty());

    let expected = accepted_events();
    let reply = server.post_events(ACCEPTED.as_bytes());
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(reply.counts(), Some((expected.len() as u64, 0)), "{reply:?}");

    let captured = server.wait_for_captured(expected.len() as u64, Duration::from_secs(10));
    assert_eq!(captured, expected.len() as u64, "log:\n{}", server.log());

    let mut per_trace: BTreeMap<String, u64> = BTreeMap::new();
    for e in &expected {
        *per_trace
            .entry(e["trace_id"].as_str().unwrap().to_owned())
            .or_default() += 1;
    }
    let counts: BTreeMap<String, u64> = server.trace_event_counts().into_iter().collect();
    assert_eq!(counts, per_trace);
    assert_eq!(counts.values().sum::<u64>(), captured);

    // The fixture has one thread: no race in it.
    let races = server.race_pairs();
    assert!(races.is_empty(), "{races}");
}

#[test]
fn two_unordered_writes_are_one_race() {
    let Some(server) = RealServer::start_default() else {
        return;
    };
    let trace = "5bf92f35-77b3-4da6-a3ce-929d0e0e4736";
    let events = [
        write_event(
            "b0000000-0000-4000-8000-000000000001",
            trace,
            "flow-b",
            "harness.x",
            1,
            0,
        ),
        write_event(
            "b0000000-0000-4000-8000-000000000002",
            trace,
            "flow-a",
            "harness.x",
            2,
            1,
        ),
    ];
    let reply = server.post_events(&batch(&events));
    assert_eq!(reply.status, 200, "{reply:?}");
    assert_eq!(server.wait_for_captured(2, Duration::from_secs(10)), 2);
    assert_eq!(server.trace_event_counts(), [(trace.to_owned(), 2)]);

    let races = server.race_pairs();
    assert_eq!(races.variables(), ["harness.x"], "{races}");
    assert_eq!(races.pairs("harness.x"), [("flow-a", "flow-b")], "{races}");
    assert!(races.contains("harness.x", "flow-b", "flow-a"));
    assert_eq!(races.count("harness.x"), 1);
    assert_eq!(races.total(), 1, "{races}");
    assert_eq!(races.details().len(), 1, "{races:?}");
    assert!(races.is_complete());
    assert_eq!(races.potential_races(), 1);
    let d = &races.details()[0];
    assert_eq!(d["trace1_id"], trace);
    assert_eq!(d["trace2_id"], trace);
}

#[test]
fn auth_on_needs_the_key() {
    let opts = ServerOptions {
        api_key: Some("harness-key".into()),
        ..ServerOptions::default()
    };
    let Some(server) = RealServer::start(opts) else {
        return;
    };
    assert_eq!(server.api_key(), Some("harness-key"));

    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(5)))
        .build()
        .into();
    let unauth = |path: &str| {
        agent
            .get(format!("{}{path}", server.url()))
            .call()
            .unwrap()
            .status()
            .as_u16()
    };
    assert_eq!(unauth("/health"), 401);
    assert_eq!(unauth("/status"), 401);
    let wrong = agent
        .get(format!("{}/health", server.url()))
        .header("authorization", "Bearer not-the-key")
        .call()
        .unwrap();
    assert_eq!(wrong.status().as_u16(), 401);

    // The harness sends the key.
    assert_eq!(server.get("/health").0, 200);
    let reply = server.post_events(ACCEPTED.as_bytes());
    assert_eq!(reply.status, 200, "{reply:?}");
    let n = accepted_events().len() as u64;
    assert_eq!(server.wait_for_captured(n, Duration::from_secs(10)), n);
    assert_eq!(server.trace_event_counts().iter().map(|(_, c)| c).sum::<u64>(), n);
    assert!(server.race_pairs().is_empty());
}

#[test]
fn small_buffer_answers_206_and_drops_the_rest() {
    let opts = ServerOptions {
        buffer: 50,
        ..ServerOptions::default()
    };
    let Some(server) = RealServer::start(opts) else {
        return;
    };
    let reply = server.post_events(&batch(&custom_events(200)));
    assert_eq!(reply.status, 206, "{reply:?}");
    let (ingested, errors) = reply.counts().unwrap_or_else(|| panic!("{reply:?}"));
    assert_eq!(ingested + errors, 200, "{reply:?}");
    assert_eq!(ingested, 50, "{reply:?}");
    // Only what fitted in the buffer is ever stored.
    assert_eq!(
        server.wait_for_captured(ingested, Duration::from_secs(10)),
        ingested
    );
    let total: u64 = server.trace_event_counts().iter().map(|(_, c)| c).sum();
    assert_eq!(total, ingested);
}

#[test]
fn drop_stops_the_server_and_removes_its_folder() {
    let Some(server) = RealServer::start_default() else {
        return;
    };
    let pid = server.pid();
    let dir = server.dir().to_path_buf();
    assert!(dir.join("raceway.toml").is_file());
    assert!(server.log().contains("Raceway"), "{}", server.log());
    drop(server);
    assert!(!dir.exists());
    // Killed and reaped (the port itself may already serve another test's server).
    if cfg!(target_os = "linux") {
        assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists());
    }
}

#[test]
fn a_resent_event_is_captured_once_but_counted_twice_per_trace() {
    let Some(server) = RealServer::start_default() else {
        return;
    };
    let n = accepted_events().len() as u64;
    assert_eq!(server.post_events(ACCEPTED.as_bytes()).status, 200);
    assert_eq!(server.wait_for_captured(n, Duration::from_secs(10)), n);
    assert_eq!(server.post_events(ACCEPTED.as_bytes()).status, 200);
    // Give the second copy time to go through the engine, then compare.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(server.events_captured(), n, "distinct ids");
    let counted: u64 = server.trace_event_counts().iter().map(|(_, c)| c).sum();
    assert_eq!(counted, 2 * n, "event_count counts every arrival");
}

#[test]
fn race_details_stop_at_100() {
    let Some(server) = RealServer::start_default() else {
        return;
    };
    let trace = "9bf92f35-77b3-4da6-a3ce-929d0e0e4736";
    // 15 threads writing one variable once each: 105 racing pairs.
    let events: Vec<Value> = (0..15u32)
        .map(|i| {
            write_event(
                &format!("e0000000-0000-4000-8000-{i:012x}"),
                trace,
                &format!("flow-{i:02}"),
                "harness.crowded",
                u64::from(i),
                i,
            )
        })
        .collect();
    assert_eq!(server.post_events(&batch(&events)).status, 200);
    assert_eq!(server.wait_for_captured(15, Duration::from_secs(10)), 15);
    let races = server.race_pairs();
    assert_eq!(races.potential_races(), 105, "{races}");
    assert_eq!(races.details().len(), 100, "{races}");
    assert!(!races.is_complete());
    assert_eq!(races.total(), 100, "{races}");
    assert!(races.to_string().contains("INCOMPLETE"), "{races}");
}

//! The event model and the batch encoder against the server's own fixtures
//! (`tests/data/`, copied from the project's shared wire fixtures): what the server accepted must round-trip, what it refused
//! must not decode.

use raceway_proto::encode::{BatchEncoder, DEFAULT_MAX_BODY_BYTES};
use raceway_proto::{Event, EventKind};
use serde_json::Value;

const ACCEPTED: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/data/accepted-batch.json"
));
const REJECTED: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/rejected.json"));

#[derive(serde::Deserialize)]
struct Body {
    events: Vec<Event>,
}

fn accepted_values() -> Vec<Value> {
    let v: Value = serde_json::from_str(ACCEPTED).unwrap();
    v["events"].as_array().unwrap().clone()
}

fn accepted_events() -> Vec<Event> {
    serde_json::from_str::<Body>(ACCEPTED).unwrap().events
}

#[test]
fn every_accepted_event_decodes_and_reencodes_to_the_same_json() {
    let values = accepted_values();
    assert_eq!(values.len(), 18);
    for (i, v) in values.iter().enumerate() {
        // From text, as the server's bodies arrive (ids deserialize borrowed `&str`s).
        let text = serde_json::to_string(v).unwrap();
        let ev: Event = serde_json::from_str(&text).unwrap_or_else(|e| panic!("event {i}: {e}"));
        let back = serde_json::to_value(&ev).unwrap();
        assert_eq!(&back, v, "event {i} ({}) did not round-trip", ev.kind.name());
    }
}

#[test]
fn fixture_covers_every_kind() {
    let mut names: Vec<&str> = accepted_events().iter().map(|e| e.kind.name()).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), 13, "{names:?}");
}

#[test]
fn the_whole_batch_round_trips_through_the_encoder() {
    let events = accepted_events();
    let mut encoder = BatchEncoder::default();
    let mut body = b"prefix kept".to_vec();
    let s = encoder.encode(&events, &mut body);
    assert_eq!((s.consumed, s.encoded, s.truncated, s.dropped), (18, 18, 0, 0));
    assert!(body.starts_with(b"prefix kept"));
    let body = &body[b"prefix kept".len()..];
    assert_eq!(s.bytes, body.len());
    let decoded: Value = serde_json::from_slice(body).unwrap();
    let original: Value = serde_json::from_str(ACCEPTED).unwrap();
    assert_eq!(decoded, original);
    let again: Body = serde_json::from_slice(body).unwrap();
    assert_eq!(again.events, events);
}

#[test]
fn every_rejected_body_fails_to_decode_or_is_the_413_case() {
    let cases: Value = serde_json::from_str(REJECTED).unwrap();
    let cases = cases.as_array().unwrap();
    assert_eq!(cases.len(), 9);
    let mut decode_failures = 0;
    let mut too_large = 0;
    for case in cases {
        let what = case["what"].as_str().unwrap();
        let status = case["status"].as_u64().unwrap();
        if status == 413 {
            assert!(case["body"].is_null(), "{what}: the 413 case carries no body");
            assert!(case["bytes"].as_u64().unwrap() > 2 * 1024 * 1024);
            too_large += 1;
            continue;
        }
        assert!(matches!(status, 400 | 422), "{what}: {status}");
        let body = serde_json::to_string(&case["body"]).unwrap();
        assert!(
            serde_json::from_str::<Body>(&body).is_err(),
            "{what}: decoded, but the server refused it"
        );
        decode_failures += 1;
    }
    assert_eq!((decode_failures, too_large), (8, 1));
}

#[test]
fn six_thousand_function_calls_make_several_bodies_under_the_cap() {
    let call = accepted_events()
        .into_iter()
        .find(|e| matches!(e.kind, EventKind::FunctionCall { .. }))
        .unwrap();
    let events = vec![call; 6000];
    let mut encoder = BatchEncoder::new(DEFAULT_MAX_BODY_BYTES);
    let mut rest = &events[..];
    let mut bodies = 0;
    let mut total = 0;
    let mut body = Vec::new();
    while !rest.is_empty() {
        body.clear();
        let s = encoder.encode(rest, &mut body);
        assert!(s.encoded > 0);
        assert_eq!((s.truncated, s.dropped), (0, 0));
        assert_eq!(s.bytes, body.len());
        assert!(
            body.len() <= DEFAULT_MAX_BODY_BYTES,
            "body of {} bytes",
            body.len()
        );
        let decoded: Body = serde_json::from_slice(&body).unwrap();
        assert_eq!(decoded.events.len(), s.encoded);
        total += s.encoded;
        rest = &rest[s.consumed..];
        bodies += 1;
    }
    assert_eq!(total, 6000);
    // The compact body of 6000 is about 3.6 MB: four bodies of at most 1 MiB.
    assert_eq!(bodies, 4);
}

//! The hot path's compact `Record` writes the same JSON as the event model's serde form:
//! every kind, inline and heap values, escaping, lock sets, memory orderings, continued
//! traces, clocks rebuilt by fork, join, propagate and merge, clocks of 128 components, the
//! encoder's cut-down form, and whole bodies.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use proptest::prelude::*;
use raceway_proto::encode::BatchEncoder;
use raceway_proto::headers::{self, ClockHeader};
use raceway_proto::ids::SeededIds;
use raceway_proto::record::{Record, RecordScratch};
use raceway_proto::{
    AccessType, Event, EventKind, Flow, MemoryOrdering, Service, SourceLocation, Timestamp, Tracer, WallClock,
};
use serde_json::{json, Value};

#[derive(Default)]
struct TestClock(AtomicU64);

impl WallClock for TestClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_unix_micros(1_790_000_000_000_000 + self.0.fetch_add(7, Ordering::Relaxed))
    }
}

fn tracer(service: &str) -> Tracer {
    let mut s = Service::new(service, "i-\"1\"", "test", "mod", 4242);
    Arc::get_mut(&mut s.tags)
        .unwrap()
        .insert("team".into(), "ré\u{1}".into());
    Tracer::new(s, Arc::new(SeededIds::new(7)), Arc::new(TestClock::default()))
}

fn state(t: &Tracer, flow: &mut Flow, var: &str, old: Option<&Value>, new: &Value) -> Record {
    state_with(t, flow, var, old, new, None)
}

#[track_caller]
fn state_with(
    t: &Tracer,
    flow: &mut Flow,
    var: &str,
    old: Option<&Value>,
    new: &Value,
    ordering: Option<MemoryOrdering>,
) -> Record {
    t.stamp_state(
        flow,
        var,
        AccessType::Write,
        core::panic::Location::caller(),
        ordering,
        |v| {
            if let Some(old) = old {
                v.old_value(old);
            }
            v.new_value(new);
        },
    )
}

/// The record's JSON, and the serde JSON of its event: byte for byte the same.
fn assert_same(r: &Record, scratch: &mut RecordScratch) {
    let mut fast = Vec::new();
    r.write_json(&mut fast, scratch).unwrap();
    let slow = serde_json::to_vec(&r.to_event()).unwrap();
    assert_eq!(
        String::from_utf8_lossy(&fast),
        String::from_utf8_lossy(&slow),
        "record JSON differs from the event's"
    );
    // And the server's schema reads it back as the same event.
    let back: Event = serde_json::from_slice(&fast).unwrap();
    // A `Static` location comes back as text: compare the wire forms.
    assert_eq!(
        serde_json::to_value(&back).unwrap(),
        serde_json::to_value(r.to_event()).unwrap()
    );
}

#[test]
fn every_kind_writes_the_events_json() {
    let t = tracer("svc");
    let mut scratch = RecordScratch::default();
    let mut f = t.new_trace();
    let loc = SourceLocation::Static {
        file: "src\\win\"dows.rs",
        line: 9,
    };
    let kinds = vec![
        EventKind::function_call("f", &Arc::from("m"), json!({"a": [1, 2.5, null]}), &loc),
        EventKind::HttpRequest {
            method: "GET".into(),
            url: "/x?y=\"z\"".into(),
            headers: [("h".to_string(), "v".to_string())].into(),
            body: Some(json!("b")),
        },
        EventKind::HttpResponse {
            status: 201,
            headers: Default::default(),
            body: None,
            duration_ms: 3,
        },
        EventKind::LockAcquire {
            lock_id: Arc::from("l1"),
            lock_type: "Mutex".into(),
            location: loc.clone(),
        },
        EventKind::LockAcquire {
            lock_id: Arc::from("l\"2"),
            lock_type: "RwLock::Read".into(),
            location: "text:3".into(),
        },
        EventKind::MemoryFence {
            ordering: MemoryOrdering::SeqCst,
            location: loc.clone(),
        },
        EventKind::DatabaseQuery {
            query: "select 1".into(),
            database: "db".into(),
            duration_ms: 4,
        },
        EventKind::DatabaseResult { rows_affected: 5 },
        EventKind::Error {
            error_type: "E".into(),
            message: "m\n".into(),
            stack_trace: vec!["a".into()],
        },
        EventKind::Custom {
            name: "c".into(),
            data: json!({"k": true}),
        },
        EventKind::LockRelease {
            lock_id: Arc::from("l1"),
            lock_type: "Mutex".into(),
            location: loc.clone(),
        },
    ];
    for (i, kind) in kinds.into_iter().enumerate() {
        let r = t.stamp(&mut f, kind, (i % 2 == 0).then_some(i as u64 * 1000));
        assert_same(&r, &mut scratch);
        // A state change while the locks are held carries them.
        assert_same(&state(&t, &mut f, "x", None, &json!(i)), &mut scratch);
    }
    assert_eq!(f.held_locks().len(), 1);
}

#[test]
fn state_changes_inline_heap_escaped_and_with_orderings() {
    let t = tracer("svc");
    let mut scratch = RecordScratch::default();
    let mut f = t.new_trace();
    let big = json!("x".repeat(300));
    let cases: Vec<(&str, Option<Value>, Value)> = vec![
        ("a", None, json!(1)),
        ("alice.balance", Some(json!(100)), json!(90)),
        ("", Some(json!(null)), json!(null)),
        (
            "quote\"back\\slash\u{7}é",
            Some(json!("\"")),
            json!([1, {"b": 2, "a": 1}]),
        ),
        ("heap", Some(big.clone()), big.clone()),
        ("exactly-inline-size", Some(json!(12)), json!(3)),
        ("neg", Some(json!(-1.5e300)), json!(u64::MAX)),
    ];
    for (var, old, new) in &cases {
        assert_same(&state(&t, &mut f, var, old.as_ref(), new), &mut scratch);
    }
    for o in [
        MemoryOrdering::Relaxed,
        MemoryOrdering::SeqCst,
        MemoryOrdering::AcqRel,
    ] {
        let r = state_with(&t, &mut f, "atomic", Some(&json!(1)), &json!(2), Some(o));
        assert_same(&r, &mut scratch);
        assert_eq!(
            r.to_event()
                .metadata
                .tags
                .get("memory_ordering")
                .map(String::as_str),
            Some(o.as_str())
        );
        let r = state_with(&t, &mut f, "atomic", None, &big, Some(o));
        assert_same(&r, &mut scratch);
    }
    // A value serde cannot write as JSON: a string saying so, as before.
    let r = t.stamp_state(
        &mut f,
        "map",
        AccessType::Read,
        core::panic::Location::caller(),
        None,
        |v| v.new_value(&HashMap::from([((1, 2), 3)])),
    );
    assert_same(&r, &mut scratch);
    match r.kind() {
        EventKind::StateChange { new_value, .. } => {
            assert!(
                new_value.as_str().unwrap().starts_with("<unserializable: "),
                "{new_value}"
            )
        }
        other => panic!("{other:?}"),
    }
}

/// A wall clock that jumps `step` microseconds per reading.
struct Jumps(AtomicU64, u64);

impl WallClock for Jumps {
    fn now(&self) -> Timestamp {
        Timestamp::from_unix_micros(self.0.fetch_add(self.1, Ordering::Relaxed))
    }
}

#[test]
fn timestamps_across_seconds_days_and_the_end_of_rfc3339() {
    for (start, step) in [
        (1_790_000_000_999_990, 3),
        (1_790_000_000_000_000, 400_000),
        (1_790_006_399_999_999, 86_400_000_001),
        (253_402_300_799_999_990, 5),
        (u64::MAX - 20, 7),
    ] {
        let t = Tracer::new(
            Service::new("svc", "i", "e", "m", 1),
            Arc::new(SeededIds::new(1)),
            Arc::new(Jumps(AtomicU64::new(start), step)),
        );
        let mut scratch = RecordScratch::default();
        let mut f = t.new_trace();
        for i in 0..6 {
            assert_same(&state(&t, &mut f, "v", None, &json!(i)), &mut scratch);
        }
    }
}

#[test]
fn clocks_rebuilt_by_fork_join_propagate_and_merge_write_whole() {
    let t = tracer("svc");
    let callee = tracer("callee");
    let mut scratch = RecordScratch::default();
    let mut root = t.new_trace();
    let a = state(&t, &mut root, "v", None, &json!(1));
    let (mut child, spawn) = t.fork(&mut root, "spawn");
    let b = state(&t, &mut child, "v", None, &json!(2));
    let c = state(&t, &mut root, "v", None, &json!(3));
    let join = t.join(&mut root, &child.end(), "join");
    let d = state(&t, &mut root, "v", None, &json!(4));
    // A call: propagate, continue on the callee, answer, merge.
    let prop = t.propagate(&mut root);
    let remote = headers::extract(prop.iter()).unwrap();
    let mut served = callee.continue_trace(&remote);
    let e = state(&callee, &mut served, "w", None, &json!(5));
    let answer = ClockHeader::decode(&callee.response_clock(&mut served).to_header_value()).unwrap();
    assert!(t.merge_response(&mut root, &answer));
    let g = state(&t, &mut root, "w", None, &json!(6));
    for r in [&a, &spawn, &b, &c, &join, &d, &e, &g] {
        assert_same(r, &mut scratch);
    }
    // The records kept the clock of their moment, though the flow's base was rebuilt.
    let clock = |r: &Record| r.to_event().causality_vector;
    assert!(clock(&a).happened_before(&clock(&b)));
    assert_eq!(
        clock(&b).compare(&clock(&c)),
        raceway_proto::ClockOrdering::Concurrent
    );
    assert!(clock(&b).happened_before(&clock(&d)));
    assert!(clock(&d).happened_before(&clock(&e)));
    assert!(clock(&e).happened_before(&clock(&g)));
    assert_eq!(e.to_event().metadata.upstream_span_id, Some(root.span_id()));
    assert_eq!(root.clock(), clock(&g));
}

#[test]
fn a_clock_of_128_components_writes_whole_and_records_share_its_base() {
    let t = tracer("svc");
    let mut scratch = RecordScratch::default();
    let mut root = t.new_trace();
    for _ in 0..140 {
        let (child, _) = t.fork(&mut root, "spawn");
        t.join(&mut root, &child.end(), "join");
    }
    assert_eq!(root.clock().len(), raceway_proto::clock::MAX_COMPONENTS);
    let mut last = None;
    for i in 0..5 {
        let r = state(&t, &mut root, "v", None, &json!(i));
        assert_same(&r, &mut scratch);
        if let Some(prev) = &last {
            let prev: &Record = prev;
            assert!(prev
                .to_event()
                .causality_vector
                .happened_before(&r.to_event().causality_vector));
        }
        last = Some(r);
    }
}

#[test]
fn bodies_of_records_and_of_their_events_are_the_same_cut_down_included() {
    let t = tracer("svc");
    let mut f = t.new_trace();
    let mut records = Vec::new();
    for i in 0..40 {
        let v = if i % 7 == 3 {
            json!("y".repeat(5000))
        } else {
            json!(i)
        };
        records.push(state(&t, &mut f, "v", Some(&json!(i)), &v));
    }
    let events: Vec<Event> = records.iter().map(Record::to_event).collect();
    for cap in [4096, 9000, 1 << 20] {
        let mut enc_r: BatchEncoder<Record> = BatchEncoder::new(cap);
        let mut enc_e: BatchEncoder<Event> = BatchEncoder::new(cap);
        let (mut rest_r, mut rest_e) = (&records[..], &events[..]);
        while !rest_r.is_empty() {
            let (mut br, mut be) = (Vec::new(), Vec::new());
            let sr = enc_r.encode(rest_r, &mut br);
            let se = enc_e.encode(rest_e, &mut be);
            assert_eq!(sr, se, "cap {cap}");
            assert_eq!(
                String::from_utf8_lossy(&br),
                String::from_utf8_lossy(&be),
                "cap {cap}"
            );
            rest_r = &rest_r[sr.consumed..];
            rest_e = &rest_e[se.consumed..];
        }
    }
}

proptest! {
    #[test]
    fn any_variable_and_values_write_the_events_json(
        var in "\\PC{0,40}",
        old in proptest::option::of(any::<i64>()),
        new in "\\PC{0,60}",
        n in 0usize..3,
    ) {
        let t = tracer("svc");
        let mut scratch = RecordScratch::default();
        let mut f = t.new_trace();
        for _ in 0..n {
            let _ = t.fork(&mut f, "spawn");
        }
        let old = old.map(Value::from);
        let r = state(&t, &mut f, &var, old.as_ref(), &Value::from(new));
        assert_same(&r, &mut scratch);
    }
}

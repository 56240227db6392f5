//! The Python SDK's header vectors (`tests/data/python-sdk-headers.json`, copied from the project's shared facts), both ways:
//! headers built here from the same inputs are byte-identical, and headers the Python SDK
//! built parse to what that SDK parses out of them.

use std::sync::Arc;

use raceway_proto::headers::{extract, ClockHeader, Propagation, TraceState};
use raceway_proto::{SpanId, TraceId, VectorClock};
use serde_json::Value;

const VECTORS: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/data/python-sdk-headers.json"
));

fn vectors() -> Value {
    serde_json::from_str(VECTORS).unwrap()
}

fn clock(v: &Value) -> VectorClock {
    let pairs = v.as_array().unwrap().iter().map(|p| {
        let p = p.as_array().unwrap();
        (Arc::<str>::from(p[0].as_str().unwrap()), p[1].as_u64().unwrap())
    });
    let c = VectorClock::from_pairs(pairs);
    assert_eq!(
        c.len(),
        v.as_array().unwrap().len(),
        "vector has duplicate components"
    );
    c
}

fn s(v: &Value) -> &str {
    v.as_str().unwrap()
}

#[test]
fn builds_the_same_headers_as_the_python_sdk() {
    let all = vectors();
    let cases = all["propagation"].as_array().unwrap();
    assert!(!cases.is_empty());
    for case in cases {
        let inputs = &case["inputs"];
        let mut c = clock(&inputs["clock_vector"]);
        let own: Arc<str> =
            Arc::from(format!("{}#{}", s(&inputs["service"]), s(&inputs["instance"])).as_str());
        c.increment(&own);
        assert_eq!(c, clock(&case["clock_after"]));
        let header = ClockHeader {
            trace_id: s(&inputs["trace_id"]).parse::<TraceId>().unwrap(),
            span_id: s(&case["child_span_id"]).parse::<SpanId>().unwrap(),
            parent_span_id: Some(s(&inputs["current_span_id"]).parse::<SpanId>().unwrap()),
            service: s(&inputs["service"]).to_owned(),
            instance: s(&inputs["instance"]).to_owned(),
            clock: c,
            event_id: None,
        };
        let tracestate = inputs["tracestate"]
            .as_str()
            .map(|t| t.parse::<TraceState>().unwrap());
        let p = Propagation::new(&header, tracestate.as_ref());

        let expected = case["headers"].as_object().unwrap();
        assert_eq!(p.traceparent(), s(&expected["traceparent"]));
        assert_eq!(p.raceway_clock(), Some(s(&expected["raceway-clock"])));
        assert_eq!(p.tracestate(), expected.get("tracestate").map(s));
        // exactly the headers the Python SDK sends, no more
        let mut names: Vec<&str> = p.iter().map(|(n, _)| n).collect();
        let mut want: Vec<&str> = expected.keys().map(String::as_str).collect();
        names.sort_unstable();
        want.sort_unstable();
        assert_eq!(names, want);
        for (n, v) in &p {
            assert_eq!(v, s(&expected[n]));
        }
        // and decoding our own header gives the payload back
        assert_eq!(
            p.raceway_clock()
                .unwrap_or_default()
                .parse::<ClockHeader>()
                .unwrap(),
            header
        );
    }
}

#[test]
fn parses_python_sdk_headers_like_the_python_sdk() {
    let all = vectors();
    let cases = all["parse"].as_array().unwrap();
    assert!(!cases.is_empty());
    for case in cases {
        let headers = case["headers"].as_object().unwrap();
        let mut ctx = extract(headers.iter().map(|(k, v)| (k.as_str(), s(v)))).unwrap();

        assert_eq!(ctx.trace_id.to_string(), s(&case["trace_id"]));
        assert_eq!(ctx.span_id.to_string(), s(&case["span_id"]));
        assert_eq!(
            ctx.parent_span_id.map(|p| p.to_string()).as_deref(),
            case["parent_span_id"].as_str()
        );
        assert_eq!(
            ctx.tracestate.as_ref().map(ToString::to_string).as_deref(),
            case["tracestate"].as_str()
        );
        assert_eq!(ctx.event_id, None);
        // The receiver adds its own component at 0 (done by the caller, `Tracer::continue_trace`).
        let own: Arc<str> = Arc::from(format!("{}#{}", s(&case["service"]), s(&case["instance"])).as_str());
        ctx.clock.ensure(&own, 0);
        assert_eq!(ctx.clock, clock(&case["clock_vector"]), "clock order and values");
        assert_eq!(case["distributed"], Value::Bool(true));
    }
}

#[test]
fn raceway_clock_wins_and_invalid_parts_fall_back() {
    let all = vectors();
    let case = &all["parse"][1];
    let tp = s(&case["headers"]["traceparent"]);
    let rc = s(&case["headers"]["raceway-clock"]);
    let other_tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

    // both valid but different: raceway-clock's ids win
    let ctx = extract([("traceparent", other_tp), ("raceway-clock", rc)]).unwrap();
    assert_eq!(ctx.trace_id.to_string(), s(&case["trace_id"]));
    assert_eq!(ctx.span_id.to_string(), s(&case["span_id"]));

    // raceway-clock alone is enough
    let ctx = extract([("Raceway-Clock", rc)]).unwrap();
    assert_eq!(
        ctx.parent_span_id.unwrap().to_string(),
        s(&case["parent_span_id"])
    );
    assert_eq!(ctx.clock.len(), 2);

    // an invalid raceway-clock falls back to traceparent
    let ctx = extract([("traceparent", tp), ("raceway-clock", "v1;not json")]).unwrap();
    assert_eq!(ctx.span_id.to_string(), "f48a0e313963012b");
    assert_eq!(ctx.parent_span_id, None);
    assert!(ctx.clock.is_empty());

    // an invalid traceparent does not void a valid raceway-clock
    let ctx = extract([("traceparent", "garbage"), ("raceway-clock", rc)]).unwrap();
    assert_eq!(ctx.clock.len(), 2);

    // a bad tracestate never voids the rest
    let ctx = extract([("traceparent", tp), ("raceway-clock", rc), ("tracestate", "BAD")]).unwrap();
    assert_eq!(ctx.tracestate, None);
    assert_eq!(ctx.clock.len(), 2);
}

/// The Python SDK writes the `raceway-clock` JSON with `json.dumps`, which escapes every
/// non-ASCII character as `\uXXXX` (UTF-16, lowercase). The expected value below is what
/// Python 3's `json.dumps(payload, separators=(",", ":"))` gives for this payload, base64url
/// without padding.
#[test]
fn non_ascii_service_names_are_escaped_like_the_python_sdk() {
    let service = "caf\u{e9}-\u{1F680}";
    let own: Arc<str> = Arc::from(format!("{service}#gw-1").as_str());
    let mut c = VectorClock::default();
    c.increment(&own);
    let header = ClockHeader {
        trace_id: "0af76519-16cd-43dd-8448-eb211c80319c".parse().unwrap(),
        span_id: "a71dd2f7c2ebe8fe".parse().unwrap(),
        parent_span_id: Some("b7ad6b7169203331".parse().unwrap()),
        service: service.to_owned(),
        instance: "gw-1".to_owned(),
        clock: c,
        event_id: None,
    };
    let expected = "v1;eyJ0cmFjZV9pZCI6IjBhZjc2NTE5LTE2Y2QtNDNkZC04NDQ4LWViMjExYzgwMzE5YyIsInNwYW5faWQiOiJhNzFkZDJmN2MyZWJlOGZlIiwicGFyZW50X3NwYW5faWQiOiJiN2FkNmI3MTY5MjAzMzMxIiwic2VydmljZSI6ImNhZlx1MDBlOS1cdWQ4M2RcdWRlODAiLCJpbnN0YW5jZSI6Imd3LTEiLCJjbG9jayI6W1siY2FmXHUwMGU5LVx1ZDgzZFx1ZGU4MCNndy0xIiwxXV19";
    assert_eq!(header.to_header_value(), expected);
    // and it reads back to the same names
    assert_eq!(expected.parse::<ClockHeader>().unwrap(), header);
}

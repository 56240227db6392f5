//! Hostile peers, header side: oversized and malformed propagation headers cost a bounded
//! amount of time and memory, give a clear error (or are dropped without affecting the
//! rest), and never panic.
//!
//! The cost is measured with a counting allocator: bytes allocated during one decode,
//! whatever the input size (the tests take turns so the count is theirs).

use std::alloc::System;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use base64::Engine as _;
use http::header::{HeaderMap, HeaderName, HeaderValue};
use raceway_proto::client::response_clock;
use raceway_proto::headers::{
    extract, extract_from_header_map, ClockHeader, ClockHeaderError, ExtractError, TraceParentError,
    TraceState, TraceStateError, MAX_CLOCK_COMPONENTS, MAX_CLOCK_HEADER_LEN, MAX_TRACESTATE_MEMBERS,
    RACEWAY_CLOCK, TRACEPARENT, TRACESTATE,
};
use stats_alloc::{Region, StatsAlloc, INSTRUMENTED_SYSTEM};

// ---------------------------------------------------------------------------------------
// Counting allocator (global: the tests of this file take turns, see `cost`)

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

static TURN: Mutex<()> = Mutex::new(());

/// One test at a time, so the global allocation count is this test's.
fn turn() -> MutexGuard<'static, ()> {
    TURN.lock().unwrap_or_else(|e| e.into_inner())
}

/// Runs `f`, returns its result, the bytes it allocated and the time it took.
fn cost<T>(f: impl FnOnce() -> T) -> (T, usize, Duration) {
    let region = Region::new(GLOBAL);
    let start = Instant::now();
    let out = f();
    let took = start.elapsed();
    (out, region.change().bytes_allocated, took)
}

/// Bytes that count as "nothing" (libtest's own threads may allocate meanwhile).
const NOTHING: usize = 1024;

/// The bound asserted for one decode of a hostile header: a few times the header cap,
/// never proportional to the input.
const ALLOC_BOUND: usize = 8 * MAX_CLOCK_HEADER_LEN;
/// Generous wall-clock bound for one decode (debug build, loaded 2-core CI machine).
const TIME_BOUND: Duration = Duration::from_millis(250);

const TP: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

fn clock_value(json: &str) -> String {
    let mut v = String::from("v1;");
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode_string(json.as_bytes(), &mut v);
    v
}

fn clock_json(service: &str, components: &str) -> String {
    format!(
        r#"{{"trace_id":"4bf92f35-77b3-4da6-a3ce-929d0e0e4736","span_id":"00f067aa0ba902b7","parent_span_id":null,"service":{},"instance":"i-1","clock":[{components}]}}"#,
        serde_json::to_string(service).unwrap()
    )
}

fn components(n: usize) -> String {
    (0..n)
        .map(|i| format!(r#"["c{i}",{i}]"#))
        .collect::<Vec<_>>()
        .join(",")
}

fn map(pairs: &[(&'static str, &[u8])]) -> HeaderMap {
    let mut m = HeaderMap::new();
    for (n, v) in pairs {
        m.append(
            HeaderName::from_static(n),
            HeaderValue::from_bytes(v).expect("a valid header value"),
        );
    }
    m
}

// ---------------------------------------------------------------------------------------
// 1 MiB raceway-clock

#[test]
fn a_1_mib_raceway_clock_is_refused_before_any_work() {
    let _turn = turn();
    let mib = 1 << 20;
    // Garbage, and a well-formed header whose payload is simply huge.
    let garbage = format!("v1;{}", "A".repeat(mib));
    let big_service = "s".repeat(mib);
    let well_formed = clock_value(&clock_json(&big_service, r#"["a",1]"#));
    assert!(well_formed.len() > mib);
    for value in [&garbage, &well_formed] {
        let (r, bytes, took) = cost(|| ClockHeader::decode(value));
        assert_eq!(r, Err(ClockHeaderError::TooLong));
        assert!(bytes < NOTHING, "allocated {bytes} bytes");
        assert!(took < TIME_BOUND, "took {took:?}");

        // Through extract: the invalid clock is reported; with a valid traceparent the
        // context falls back to it.
        let (r, bytes, _) = cost(|| extract([(RACEWAY_CLOCK, value.as_str())]));
        assert_eq!(
            r,
            Err(ExtractError::Invalid {
                traceparent: None,
                raceway_clock: Some(ClockHeaderError::TooLong)
            })
        );
        assert!(bytes < ALLOC_BOUND, "allocated {bytes} bytes");
        let ctx = extract([(RACEWAY_CLOCK, value.as_str()), (TRACEPARENT, TP)]).expect("falls back");
        assert!(ctx.clock.is_empty());

        // Through an http::HeaderMap, and as a response clock.
        let m = map(&[(RACEWAY_CLOCK, value.as_bytes()), (TRACEPARENT, TP.as_bytes())]);
        let (r, bytes, took) = cost(|| extract_from_header_map(&m));
        assert!(r.is_ok());
        assert!(bytes < ALLOC_BOUND, "allocated {bytes} bytes");
        assert!(took < TIME_BOUND, "took {took:?}");
        let (r, bytes, _) = cost(|| response_clock([(RACEWAY_CLOCK, value.as_str())]));
        assert!(r.is_none());
        assert!(bytes < NOTHING, "allocated {bytes}");
    }
}

// ---------------------------------------------------------------------------------------
// 10,000 clock components

#[test]
fn ten_thousand_clock_components_are_refused_with_bounded_cost() {
    let _turn = turn();
    let value = clock_value(&clock_json("svc", &components(10_000)));
    assert!(value.len() > MAX_CLOCK_HEADER_LEN);
    let (r, bytes, took) = cost(|| ClockHeader::decode(&value));
    assert_eq!(r, Err(ClockHeaderError::TooLong));
    assert!(bytes < NOTHING, "allocated {bytes}");
    assert!(took < TIME_BOUND);

    // The most that fits under the length cap, past the component cap: refused by count,
    // with allocations bounded by the cap.
    let mut n = MAX_CLOCK_COMPONENTS + 1;
    while clock_value(&clock_json("svc", &components(n + 1))).len() <= MAX_CLOCK_HEADER_LEN {
        n += 1;
    }
    let value = clock_value(&clock_json("svc", &components(n)));
    assert!(
        value.len() <= MAX_CLOCK_HEADER_LEN && n > MAX_CLOCK_COMPONENTS,
        "n = {n}"
    );
    let (r, bytes, took) = cost(|| ClockHeader::decode(&value));
    assert_eq!(r, Err(ClockHeaderError::TooManyComponents));
    assert!(bytes < ALLOC_BOUND, "{n} components: allocated {bytes} bytes");
    assert!(took < TIME_BOUND, "took {took:?}");

    // Exactly the cap decodes.
    let value = clock_value(&clock_json("svc", &components(MAX_CLOCK_COMPONENTS)));
    let h = ClockHeader::decode(&value).expect("the cap itself is fine");
    assert_eq!(h.clock.len(), MAX_CLOCK_COMPONENTS);
}

#[test]
fn deeply_nested_unknown_fields_and_duplicate_components_do_not_blow_the_stack() {
    let _turn = turn();
    // Arrays nested as deep as the length cap allows (a stack overflow would abort).
    let depth = (MAX_CLOCK_HEADER_LEN * 3 / 4 - 300) / 2;
    let json = format!(
        r#"{{"x":{}{},"trace_id":"4bf92f35-77b3-4da6-a3ce-929d0e0e4736","span_id":"00f067aa0ba902b7","service":"s","instance":"i","clock":[]}}"#,
        "[".repeat(depth),
        "]".repeat(depth)
    );
    let value = clock_value(&json);
    assert!(value.len() <= MAX_CLOCK_HEADER_LEN);
    // Unknown fields are ignored (WIRE.md), however deep: serde_json skips them without
    // recursing.
    let (r, bytes, took) = cost(|| ClockHeader::decode(&value));
    assert!(r.is_ok(), "{r:?}");
    assert!(bytes < ALLOC_BOUND && took < TIME_BOUND);
    // Nesting in a known field: refused by serde_json's recursion limit.
    let json = format!(
        r#"{{"trace_id":"4bf92f35-77b3-4da6-a3ce-929d0e0e4736","span_id":"00f067aa0ba902b7","service":"s","instance":"i","clock":{}{}}}"#,
        "[".repeat(depth),
        "]".repeat(depth)
    );
    assert_eq!(
        ClockHeader::decode(&clock_value(&json)),
        Err(ClockHeaderError::Json)
    );

    // The same component many times: one entry (the largest counter or the last, but one).
    let dup = (0..MAX_CLOCK_COMPONENTS)
        .map(|i| format!(r#"["a",{i}]"#))
        .collect::<Vec<_>>()
        .join(",");
    let h = ClockHeader::decode(&clock_value(&clock_json("svc", &dup))).expect("decodes");
    assert_eq!(h.clock.len(), 1);

    // Counters at u64::MAX, and past it.
    let max = clock_value(&clock_json("svc", &format!(r#"["a",{}]"#, u64::MAX)));
    assert!(ClockHeader::decode(&max).is_ok());
    let over = clock_value(&clock_json("svc", r#"["a",18446744073709551616]"#));
    assert_eq!(ClockHeader::decode(&over), Err(ClockHeaderError::Json));
    let neg = clock_value(&clock_json("svc", r#"["a",-1]"#));
    assert_eq!(ClockHeader::decode(&neg), Err(ClockHeaderError::Json));
}

// ---------------------------------------------------------------------------------------
// tracestate of 33 members

fn members(n: usize) -> String {
    (0..n).map(|i| format!("k{i}=v{i}")).collect::<Vec<_>>().join(",")
}

#[test]
fn a_tracestate_of_33_members_is_refused_and_dropped_alone() {
    let _turn = turn();
    assert_eq!(MAX_TRACESTATE_MEMBERS, 32);
    assert_eq!(TraceState::parse(&members(32)).map(|t| t.len()), Ok(32));
    assert_eq!(
        TraceState::parse(&members(33)),
        Err(TraceStateError::TooManyMembers)
    );
    // 10,000 members: refused (by length or count) with bounded cost.
    let huge = members(10_000);
    let (r, bytes, took) = cost(|| TraceState::parse(&huge));
    assert!(r.is_err());
    assert!(bytes < ALLOC_BOUND, "allocated {bytes}");
    assert!(took < TIME_BOUND);

    // Through extract: the rest of the context survives, the tracestate is dropped.
    let s33 = members(33);
    let ctx = extract([(TRACEPARENT, TP), (TRACESTATE, s33.as_str())]).expect("context");
    assert_eq!(ctx.tracestate, None);
    // 33 members split over two headers: the same.
    let (a, b) = (
        members(20),
        (20..33).map(|i| format!("x{i}=v")).collect::<Vec<_>>().join(","),
    );
    let ctx = extract([
        (TRACEPARENT, TP),
        (TRACESTATE, a.as_str()),
        (TRACESTATE, b.as_str()),
    ])
    .expect("context");
    assert_eq!(ctx.tracestate, None);
    let m = map(&[(TRACEPARENT, TP.as_bytes()), (TRACESTATE, s33.as_bytes())]);
    assert_eq!(extract_from_header_map(&m).expect("context").tracestate, None);
    // Many tracestate headers: the joined length is capped as they are added.
    let one = members(30);
    let many: Vec<(&str, &str)> = std::iter::once((TRACEPARENT, TP))
        .chain(std::iter::repeat_n((TRACESTATE, one.as_str()), 10_000))
        .collect();
    let (r, bytes, took) = cost(|| extract(many.iter().copied()));
    assert_eq!(r.expect("context").tracestate, None);
    assert!(bytes < ALLOC_BOUND, "allocated {bytes}");
    assert!(took < TIME_BOUND * 4, "took {took:?}");
}

// ---------------------------------------------------------------------------------------
// CR/LF inside service names and header values

#[test]
fn cr_lf_inside_header_values_is_refused() {
    let _turn = turn();
    for bad in [
        format!("{TP}\r\nx-injected: 1"),
        format!("{TP}\n"),
        format!("\r{TP}"),
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0\r".to_string(),
    ] {
        let r = extract([(TRACEPARENT, bad.as_str())]);
        assert!(
            matches!(
                r,
                Err(ExtractError::Invalid {
                    traceparent: Some(_),
                    ..
                })
            ),
            "{bad:?}: {r:?}"
        );
    }
    assert!(TraceState::parse("a=1\r\nb=2").is_err());
    assert!(TraceState::parse("a=1,b=\n2").is_err());
    let clock = clock_value(&clock_json("svc", r#"["a",1]"#));
    assert!(ClockHeader::decode(&format!("{clock}\r\nx: y")).is_err());
    // HeaderValue itself refuses CR/LF, so through http nothing gets that far.
    assert!(HeaderValue::from_bytes(b"a\r\nb").is_err());
}

#[test]
fn cr_lf_inside_service_names_never_reaches_a_header() {
    let _turn = turn();
    // A peer's clock with CR/LF (JSON-escaped) in its service, instance and component
    // names: decodes (those names are opaque data), and anything re-encoded from it is
    // base64, so it cannot split a header.
    let json = clock_json("svc\r\nx-injected: 1", r#"["a\r\nb#i\u0000",1]"#)
        .replace(r#""instance":"i-1""#, r#""instance":"i\r\n""#);
    let value = clock_value(&json);
    let h = ClockHeader::decode(&value).expect("opaque names decode");
    assert_eq!(h.service, "svc\r\nx-injected: 1");
    let again = h.to_header_value();
    assert!(HeaderValue::from_str(&again).is_ok());
    assert!(again.bytes().all(|b| b.is_ascii_graphic()));
    let ctx = extract([(RACEWAY_CLOCK, value.as_str())]).expect("context");
    assert_eq!(ctx.clock.len(), 1);

    // Our own service name with CR/LF: propagation headers stay valid header values.
    let h = ClockHeader {
        service: "svc\r\nx-injected: 1".into(),
        instance: "i\r\n".into(),
        ..h
    };
    let p = raceway_proto::Propagation::new(&h, None);
    for (_, v) in &p {
        assert!(HeaderValue::from_str(v).is_ok(), "{v:?}");
    }
    let mut m = HeaderMap::new();
    p.inject(&mut m);
    assert_eq!(m.len(), 2);

    // An API key with CR/LF is a configuration error, not a header.
    let mut c = raceway_proto::config::Config::new("svc\r\nx: y");
    c.endpoint = Some("http://127.0.0.1:1".into());
    c.api_key = Some("k\r\nx-injected: 1".into());
    assert_eq!(
        c.validate(false),
        Err(raceway_proto::config::ConfigError::InvalidApiKey)
    );
    c.api_key = None;
    c.endpoint = Some("http://127.0.0.1:1/\r\nx: y".into());
    assert!(matches!(
        c.validate(false),
        Err(raceway_proto::config::ConfigError::InvalidEndpoint(_))
    ));
}

// ---------------------------------------------------------------------------------------
// Non-UTF-8 header bytes

#[test]
fn non_utf8_header_bytes_are_refused_without_panic() {
    let _turn = turn();
    let mut tp_bad = TP.as_bytes().to_vec();
    tp_bad[10] = 0xff;
    let m = map(&[(TRACEPARENT, &tp_bad)]);
    assert_eq!(
        extract_from_header_map(&m),
        Err(ExtractError::Invalid {
            traceparent: Some(TraceParentError::NotVisibleAscii),
            raceway_clock: None
        })
    );
    let m = map(&[(RACEWAY_CLOCK, b"v1;\x80\x81\xfe\xff")]);
    assert_eq!(
        extract_from_header_map(&m),
        Err(ExtractError::Invalid {
            traceparent: None,
            raceway_clock: Some(ClockHeaderError::NotVisibleAscii)
        })
    );
    // A non-UTF-8 tracestate is dropped alone; a non-UTF-8 clock falls back to traceparent.
    let m = map(&[
        (TRACEPARENT, TP.as_bytes()),
        (TRACESTATE, b"a=\xc3\x28"),
        (RACEWAY_CLOCK, b"v1;\xe2\x82"),
    ]);
    let ctx = extract_from_header_map(&m).expect("context from traceparent");
    assert_eq!(ctx.tracestate, None);
    assert!(ctx.clock.is_empty());
    // Valid UTF-8 but not ASCII through the &str API.
    assert!(extract([(
        TRACEPARENT,
        "00-4bf92f3577b34da6a3ce929d0e0e47é-00f067aa0ba902b7-01"
    )])
    .is_err());
    assert!(TraceState::parse("a=é").is_err());
    assert!(ClockHeader::decode("v1;é").is_err());
    // Every single byte value, alone and appended to a valid value: no panic.
    for b in 0u8..=255 {
        let mut v = TP.as_bytes().to_vec();
        v.push(b);
        if let Ok(hv) = HeaderValue::from_bytes(&v) {
            let mut m = HeaderMap::new();
            m.insert(HeaderName::from_static(TRACEPARENT), hv.clone());
            m.insert(HeaderName::from_static(RACEWAY_CLOCK), hv.clone());
            m.insert(HeaderName::from_static(TRACESTATE), hv);
            let _ = extract_from_header_map(&m);
        }
    }
}

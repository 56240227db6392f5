//! One input, one answer: every way of handing request or response headers to the core
//! (`&str` pairs, raw bytes, `http::HeaderMap`) reads them with the same rules. A value
//! that is not visible ASCII makes its header invalid (it is never skipped, which would let
//! a later copy of the same header through); a repeated `raceway-clock` is refused.

use http::{HeaderMap, HeaderValue};
use raceway_proto::client::response_clock;
use raceway_proto::headers::{
    extract_bytes, extract_from_header_map, response_clock as response_clock_bytes,
};
use raceway_proto::{ClockHeader, TraceParent};

const TP: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

fn valid_clock() -> String {
    let tp: TraceParent = TP.parse().unwrap();
    let remote = raceway_proto::extract([("traceparent", TP)]).unwrap();
    let header = ClockHeader {
        trace_id: tp.trace_id,
        span_id: remote.span_id,
        parent_span_id: None,
        service: "up".into(),
        instance: "1".into(),
        clock: Default::default(),
        event_id: None,
    };
    header.to_header_value()
}

#[test]
fn a_non_ascii_copy_of_traceparent_is_a_repeat_everywhere() {
    let mut map = HeaderMap::new();
    map.append("traceparent", HeaderValue::from_bytes(b"00-\x80").unwrap());
    map.append("traceparent", HeaderValue::from_static(TP));
    let from_map = extract_from_header_map(&map);
    let from_bytes = extract_bytes(map.iter().map(|(k, v)| (k.as_str(), v.as_bytes())));
    assert_eq!(from_map, from_bytes);
    assert!(
        from_map.is_err(),
        "a repeated traceparent must not continue the trace: {from_map:?}"
    );
    // With the valid copy alone the trace continues.
    let mut one = HeaderMap::new();
    one.insert("traceparent", HeaderValue::from_static(TP));
    assert!(extract_from_header_map(&one).is_ok());
}

#[test]
fn response_clocks_are_read_with_one_rule() {
    let clock = valid_clock();
    let pairs_once = [("raceway-clock", clock.as_str())];
    let pairs_twice = [
        ("raceway-clock", clock.as_str()),
        ("Raceway-Clock", clock.as_str()),
    ];
    assert!(response_clock(pairs_once).is_some());
    assert!(response_clock(pairs_twice).is_none(), "a repeat is refused");

    let mut map = HeaderMap::new();
    map.append("raceway-clock", HeaderValue::from_str(&clock).unwrap());
    assert!(ClockHeader::from_header_map(&map).unwrap().is_some());
    map.append("raceway-clock", HeaderValue::from_str(&clock).unwrap());
    assert!(ClockHeader::from_header_map(&map).is_err());
    let bytes = response_clock_bytes(map.iter().map(|(k, v)| (k.as_str(), v.as_bytes())));
    assert_eq!(bytes, ClockHeader::from_header_map(&map));

    // A non-ASCII value is an error, not a header that is skipped.
    let mut bad = HeaderMap::new();
    bad.append("raceway-clock", HeaderValue::from_bytes(b"v1;\xff").unwrap());
    bad.append("raceway-clock", HeaderValue::from_str(&clock).unwrap());
    assert!(ClockHeader::from_header_map(&bad).is_err());
}

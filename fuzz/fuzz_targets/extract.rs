//! `extract` over header pairs made from arbitrary bytes, through both the `&str` API and
//! the `http::HeaderMap` layer: never panics, and both agree when every value is text.
#![no_main]

use http::header::{HeaderMap, HeaderName, HeaderValue};
use libfuzzer_sys::fuzz_target;
use raceway_proto::headers::{
    extract, extract_from_header_map, RACEWAY_CLOCK, TRACEPARENT, TRACESTATE,
};

const NAMES: [&str; 7] = [
    TRACEPARENT,
    TRACESTATE,
    RACEWAY_CLOCK,
    "TraceParent",
    "TRACESTATE",
    "Raceway-Clock",
    "x-other",
];

fuzz_target!(|data: &[u8]| {
    // Records: one name selector byte, then the value up to the next 0x00.
    let mut pairs: Vec<(&str, &[u8])> = Vec::new();
    for record in data.split(|&b| b == 0) {
        if let Some((&sel, value)) = record.split_first() {
            pairs.push((NAMES[usize::from(sel) % NAMES.len()], value));
        }
    }
    let text: Vec<(&str, &str)> = pairs
        .iter()
        .filter_map(|(n, v)| core::str::from_utf8(v).ok().map(|v| (*n, v)))
        .collect();
    let by_str = extract(text.iter().copied());

    let mut map = HeaderMap::new();
    let mut all_visible = text.len() == pairs.len();
    for (n, v) in &pairs {
        match HeaderValue::from_bytes(v) {
            Ok(hv) => {
                all_visible &= hv.to_str().is_ok();
                map.append(HeaderName::from_bytes(n.as_bytes()).unwrap(), hv);
            }
            Err(_) => all_visible = false,
        }
    }
    let by_map = extract_from_header_map(&map);
    if all_visible {
        // HeaderMap groups values by name but keeps their order within a name, which is
        // all `extract` depends on.
        assert_eq!(by_str, by_map);
    }
});

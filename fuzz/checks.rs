//! The checks every fuzz target runs on its input, in one place: the fuzz targets in
//! `fuzz_targets/` call them under libFuzzer, and `raceway-proto/tests/fuzz_regressions.rs`
//! replays the committed inputs of `regressions/` through them under `cargo test`.
#![allow(dead_code)] // each fuzz target uses one check

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use http::header::{HeaderMap, HeaderName, HeaderValue};
use raceway_proto::client::response_clock;
use raceway_proto::export::{parse_retry_after, ExportConfig, Exporter, SendOutcome};
use raceway_proto::headers::{
    extract, extract_from_header_map, ClockHeader, TraceParent, TraceState, MAX_CLOCK_COMPONENTS,
    MAX_TRACESTATE_MEMBERS, RACEWAY_CLOCK, TRACEPARENT, TRACESTATE,
};
use raceway_proto::ids::SeededIds;
use raceway_proto::{Event, EventKind, Instant, Service, Timestamp, Tracer, WallClock};

pub fn check_traceparent(data: &[u8]) {
    let Ok(s) = core::str::from_utf8(data) else {
        return;
    };
    if let Ok(tp) = s.parse::<TraceParent>() {
        assert_ne!(tp.version, 0xff);
        let again: TraceParent = tp.to_string().parse().expect("re-encoded traceparent parses");
        assert_eq!(again.trace_id, tp.trace_id);
        assert_eq!(again.parent_id, tp.parent_id);
        assert_eq!(again.flags, tp.flags);
    }
}

pub fn check_tracestate(data: &[u8]) {
    let Ok(s) = core::str::from_utf8(data) else {
        return;
    };
    if let Ok(ts) = s.parse::<TraceState>() {
        assert!(ts.len() <= MAX_TRACESTATE_MEMBERS);
        let again: TraceState = ts.to_string().parse().expect("re-encoded tracestate parses");
        assert_eq!(again, ts);
    }
}

pub fn check_raceway_clock(data: &[u8]) {
    let Ok(s) = core::str::from_utf8(data) else {
        return;
    };
    let mut wrapped = String::from("v1;");
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode_string(data, &mut wrapped);
    for candidate in [s, wrapped.as_str()] {
        if let Ok(h) = candidate.parse::<ClockHeader>() {
            assert!(h.clock.len() <= MAX_CLOCK_COMPONENTS);
            let again: ClockHeader = h.to_header_value().parse().expect("re-encoded header decodes");
            assert_eq!(again, h);
        }
    }
}

pub fn check_extract(data: &[u8]) {
    const NAMES: [&str; 7] = [
        TRACEPARENT,
        TRACESTATE,
        RACEWAY_CLOCK,
        "TraceParent",
        "TRACESTATE",
        "Raceway-Clock",
        "x-other",
    ];
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
        assert_eq!(by_str, by_map);
    }
}

struct Fixed;
impl WallClock for Fixed {
    fn now(&self) -> Timestamp {
        Timestamp::from_unix_micros(1_795_000_000_000_000)
    }
}

fn events(n: usize) -> Vec<Event> {
    let t = Tracer::new(
        Service::new("svc", "i-1", "fuzz", "app", 1),
        Arc::new(SeededIds::new(1)),
        Arc::new(Fixed),
    );
    let mut flow = t.new_trace();
    (0..n)
        .map(|i| {
            t.record(
                &mut flow,
                EventKind::Custom {
                    name: "e".into(),
                    data: serde_json::json!(i),
                },
                None,
            )
        })
        .collect()
}

pub fn check_server_response(data: &[u8]) {
    const NAMES: [&str; 6] = [
        "retry-after",
        "Retry-After",
        "raceway-clock",
        "Raceway-Clock",
        "content-length",
        "x-other",
    ];
    if data.len() < 4 {
        return;
    }
    let status = u16::from_be_bytes([data[0], data[1]]);
    let n = usize::from(data[2] % 8) + 1;
    let repeats = usize::from(data[3] % 12) + 1;
    let mut pairs: Vec<(&str, &str)> = Vec::new();
    for record in data[4..].split(|&b| b == 0) {
        if let Some((&sel, value)) = record.split_first() {
            if let Ok(v) = core::str::from_utf8(value) {
                pairs.push((NAMES[usize::from(sel) % NAMES.len()], v));
            }
        }
    }
    let retry_after = pairs
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("retry-after"))
        .and_then(|(_, v)| {
            let d = parse_retry_after(v);
            let digits = v.trim_matches([' ', '\t']);
            if let Some(d) = d {
                // delta-seconds, saturating past u64 (the exporter caps it anyway)
                assert!(
                    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()),
                    "{v:?}"
                );
                assert_eq!(digits.parse::<u64>().unwrap_or(u64::MAX), d.as_secs(), "{v:?}");
            } else {
                assert!(
                    digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()),
                    "{v:?} refused"
                );
            }
            d
        });
    if let Some(h) = response_clock(pairs.iter().copied()) {
        assert!(h.clock.len() <= MAX_CLOCK_COMPONENTS);
    }
    let config = {
        let mut c = ExportConfig::default();
        c.max_attempts = 5;
        c
    };
    let cap = config
        .max_retry_after
        .max(config.max_backoff)
        .max(config.flush_interval);
    let mut ex = Exporter::new(config, Instant::ZERO);
    let mut now = Instant::ZERO;
    ex.handle_events(events(n), now);
    let mut buf = Vec::new();
    for _ in 0..repeats {
        let Some(t) = ex.poll_transmit(now, &mut buf) else {
            match ex.poll_timeout() {
                Some(next) => {
                    let wait = next.saturating_duration_since(now);
                    assert!(wait <= cap, "waits {wait:?}");
                    now = next.max(now);
                    continue;
                }
                None => break,
            }
        };
        assert!(t.events >= 1 && t.events <= n);
        ex.handle_outcome(t.id, SendOutcome::Status { status, retry_after }, now);
        let s = ex.stats();
        assert_eq!(s.settled() + ex.held_events() as u64, n as u64, "{s:?}");
        if let Some(next) = ex.poll_timeout() {
            assert!(next.saturating_duration_since(now) <= cap);
            now = next.max(now.saturating_add(Duration::from_millis(1)));
        }
    }
}

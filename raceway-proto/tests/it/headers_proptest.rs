//! Property tests for the header codecs: encode then decode is the identity, and no
//! decoder panics on any input.

use std::sync::Arc;

use proptest::prelude::*;
use raceway_proto::headers::{extract, ClockHeader, TraceParent, TraceState};
use raceway_proto::{EventId, SpanId, TraceId, VectorClock};

fn span_id() -> impl Strategy<Value = SpanId> {
    (1u64..).prop_map(|v| SpanId::new(v).unwrap())
}

fn trace_id() -> impl Strategy<Value = TraceId> {
    (1u128..).prop_map(TraceId::from_u128)
}

fn tracestate_key() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z][a-z0-9_*/-]{0,30}",
        "[a-z0-9][a-z0-9_*/-]{0,20}@[a-z][a-z0-9_*/-]{0,13}",
    ]
}

fn tracestate_value() -> impl Strategy<Value = String> {
    "[\\x20-\\x2B\\x2D-\\x3C\\x3E-\\x7E]{0,40}[\\x21-\\x2B\\x2D-\\x3C\\x3E-\\x7E]"
}

fn tracestate() -> impl Strategy<Value = Vec<(String, String)>> {
    prop::collection::vec((tracestate_key(), tracestate_value()), 0..=32).prop_map(|mut v| {
        let mut seen = std::collections::HashSet::new();
        v.retain(|(k, _)| seen.insert(k.clone()));
        v
    })
}

fn clock_header() -> impl Strategy<Value = ClockHeader> {
    (
        trace_id(),
        span_id(),
        proptest::option::of(span_id()),
        ".{0,40}",
        ".{0,40}",
        prop::collection::vec((".{1,24}", any::<u64>()), 0..16),
        proptest::option::of(any::<u128>()),
    )
        .prop_map(
            |(trace_id, span_id, parent_span_id, service, instance, pairs, event)| {
                let mut seen = std::collections::HashSet::new();
                let clock = VectorClock::from_pairs(
                    pairs
                        .into_iter()
                        .filter(|(k, _)| seen.insert(k.clone()))
                        .map(|(k, v)| (Arc::<str>::from(k.as_str()), v)),
                );
                ClockHeader {
                    trace_id,
                    span_id,
                    parent_span_id,
                    service,
                    instance,
                    clock,
                    event_id: event.map(EventId::from_u128),
                }
            },
        )
}

/// Replaces one byte-position's character with another, keeping UTF-8 valid.
fn mutate(s: &str, at: usize, with: char) -> String {
    let mut out: Vec<char> = s.chars().collect();
    if !out.is_empty() {
        let i = at % out.len();
        out[i] = with;
    }
    out.into_iter().collect()
}

proptest! {
    #[test]
    fn traceparent_round_trips(trace_id in trace_id(), parent_id in span_id(), flags in any::<u8>()) {
        let tp = TraceParent { version: 0, trace_id, parent_id, flags };
        let text = tp.to_string();
        prop_assert_eq!(text.len(), 55);
        prop_assert_eq!(text.parse::<TraceParent>(), Ok(tp));
    }

    #[test]
    fn tracestate_round_trips(members in tracestate()) {
        let text = members.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",");
        let ts: TraceState = text.parse().unwrap();
        prop_assert_eq!(ts.to_string(), text.clone());
        prop_assert_eq!(ts.len(), members.len());
        for (k, v) in &members {
            prop_assert_eq!(ts.get(k), Some(v.as_str()));
        }
        // OWS around members is ignored
        let spaced = members.iter().map(|(k, v)| format!(" \t{k}={v}\t ")).collect::<Vec<_>>().join(",");
        prop_assert_eq!(spaced.parse::<TraceState>(), Ok(ts));
    }

    #[test]
    fn raceway_clock_round_trips(h in clock_header()) {
        let text = h.to_header_value();
        prop_assert!(text.starts_with("v1;"));
        prop_assert!(!text.contains('='));
        prop_assert_eq!(text.parse::<ClockHeader>(), Ok(h));
    }

    #[test]
    fn decoders_never_panic_on_arbitrary_strings(s in "\\PC{0,200}", any_s in any::<String>()) {
        for input in [&s, &any_s] {
            let _ = input.parse::<TraceParent>();
            let _ = input.parse::<TraceState>();
            let _ = input.parse::<ClockHeader>();
            let _ = format!("v1;{input}").parse::<ClockHeader>();
        }
    }

    #[test]
    fn decoders_never_panic_on_near_valid_input(
        tp in (trace_id(), span_id()).prop_map(|(t, s)| TraceParent::sampled(t, s).to_string()),
        h in clock_header(),
        at in any::<usize>(),
        with in any::<char>(),
    ) {
        let _ = mutate(&tp, at, with).parse::<TraceParent>();
        let rc = h.to_header_value();
        let _ = mutate(&rc, at, with).parse::<ClockHeader>();
        let _ = rc.get(..rc.len().saturating_sub(at % 8)).map(|t| t.parse::<ClockHeader>());
    }

    #[test]
    fn extract_never_panics(pairs in prop::collection::vec((
        prop_oneof![Just("traceparent".to_owned()), Just("TRACESTATE".to_owned()), Just("raceway-clock".to_owned()), "\\PC{0,12}"],
        "\\PC{0,120}",
    ), 0..8)) {
        let _ = extract(pairs.iter().map(|(n, v)| (n.as_str(), v.as_str())));
    }
}

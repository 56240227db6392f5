//! Decoding a collector's (or a called service's) response: what the SDK reads from it is
//! the status, `Retry-After` ([`parse_retry_after`]) and, on the caller side, a
//! `raceway-clock` ([`response_clock`] over the header pairs).
//!
//! Input: 2 bytes status (big endian), 1 byte events in the batch, 1 byte how many times
//! the same answer is given, then header records (one name selector byte, the value up to
//! the next 0x00), as in the `extract` target.
//!
//! Checks: nothing panics; `Retry-After` decodes only from its delta-seconds form; the
//! exporter fed that answer keeps every event accounted for (sent + dropped + held), never
//! waits longer than its configured caps, and a decoded clock respects its bounds.
#![no_main]

use std::sync::Arc;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use raceway_proto::client::response_clock;
use raceway_proto::export::{parse_retry_after, ExportConfig, Exporter, SendOutcome};
use raceway_proto::headers::MAX_CLOCK_COMPONENTS;
use raceway_proto::ids::SeededIds;
use raceway_proto::{Event, EventKind, Instant, Service, Timestamp, Tracer, WallClock};

const NAMES: [&str; 6] = [
    "retry-after",
    "Retry-After",
    "raceway-clock",
    "Raceway-Clock",
    "content-length",
    "x-other",
];

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

fuzz_target!(|data: &[u8]| {
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

    // Retry-After: the first one, as an HTTP client hands it over.
    let retry_after = pairs
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("retry-after"))
        .and_then(|(_, v)| {
            let d = parse_retry_after(v);
            let digits = v.trim_matches([' ', '\t']);
            if let Some(d) = d {
                // delta-seconds, saturating past u64 (the exporter caps it anyway)
                assert!(!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()), "{v:?}");
                assert_eq!(digits.parse::<u64>().unwrap_or(u64::MAX), d.as_secs(), "{v:?}");
            } else {
                assert!(digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()), "{v:?} refused");
            }
            d
        });

    // The caller side: a response's raceway-clock.
    if let Some(h) = response_clock(pairs.iter().copied()) {
        assert!(h.clock.len() <= MAX_CLOCK_COMPONENTS);
    }

    // The exporter given this answer `repeats` times.
    let config = ExportConfig {
        max_attempts: 5,
        ..ExportConfig::default()
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
        assert_eq!(s.sent + s.dropped() + ex.held_events() as u64, n as u64, "{s:?}");
        if let Some(next) = ex.poll_timeout() {
            assert!(next.saturating_duration_since(now) <= cap);
            now = next.max(now.saturating_add(Duration::from_millis(1)));
        }
    }
});

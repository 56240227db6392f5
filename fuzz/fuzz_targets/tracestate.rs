//! `tracestate` decoder: never panics; whatever parses re-encodes to the same list.
#![no_main]

use libfuzzer_sys::fuzz_target;
use raceway_proto::headers::{TraceState, MAX_TRACESTATE_MEMBERS};

fuzz_target!(|data: &[u8]| {
    let Ok(s) = core::str::from_utf8(data) else {
        return;
    };
    if let Ok(ts) = s.parse::<TraceState>() {
        assert!(ts.len() <= MAX_TRACESTATE_MEMBERS);
        let text = ts.to_string();
        let again: TraceState = text.parse().expect("re-encoded tracestate parses");
        assert_eq!(again, ts);
    }
});

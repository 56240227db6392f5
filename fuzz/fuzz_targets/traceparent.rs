//! `traceparent` decoder: never panics; whatever parses re-encodes to a value that parses
//! back to the same ids.
#![no_main]

use libfuzzer_sys::fuzz_target;
use raceway_proto::headers::TraceParent;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = core::str::from_utf8(data) else {
        return;
    };
    if let Ok(tp) = s.parse::<TraceParent>() {
        assert_ne!(tp.version, 0xff);
        let again: TraceParent = tp
            .to_string()
            .parse()
            .expect("re-encoded traceparent parses");
        assert_eq!(again.trace_id, tp.trace_id);
        assert_eq!(again.parent_id, tp.parent_id);
        assert_eq!(again.flags, tp.flags);
    }
});

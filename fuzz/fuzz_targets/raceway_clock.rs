//! `raceway-clock` decoder: never panics, respects its bounds; whatever decodes re-encodes
//! to a value that decodes to the same payload.
#![no_main]

use libfuzzer_sys::fuzz_target;
use raceway_proto::headers::{ClockHeader, MAX_CLOCK_COMPONENTS};

fuzz_target!(|data: &[u8]| {
    let Ok(s) = core::str::from_utf8(data) else {
        return;
    };
    // Raw input, and the same bytes as a well-formed base64url payload so the fuzzer
    // reaches the JSON layer quickly.
    let mut wrapped = String::from("v1;");
    {
        use base64::Engine as _;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode_string(data, &mut wrapped);
    }
    for candidate in [s, wrapped.as_str()] {
        if let Ok(h) = candidate.parse::<ClockHeader>() {
            assert!(h.clock.len() <= MAX_CLOCK_COMPONENTS);
            let again: ClockHeader = h
                .to_header_value()
                .parse()
                .expect("re-encoded header decodes");
            assert_eq!(again, h);
        }
    }
});

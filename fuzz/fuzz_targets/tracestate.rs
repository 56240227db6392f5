//! `tracestate` decoder: never panics; whatever parses re-encodes to the same list.
#![no_main]

#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::check_tracestate(data));

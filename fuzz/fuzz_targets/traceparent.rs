//! `traceparent` decoder: never panics; whatever parses re-encodes to a value that parses
//! back to the same ids.
#![no_main]

#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::check_traceparent(data));

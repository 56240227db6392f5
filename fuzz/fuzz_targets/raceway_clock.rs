//! `raceway-clock` decoder: never panics, respects its bounds; whatever decodes re-encodes
//! to a value that decodes to the same payload.
#![no_main]

#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::check_raceway_clock(data));

//! `extract` over header pairs made from arbitrary bytes, through both the `&str` API and
//! the `http::HeaderMap` layer: never panics, and both agree when every value is text.
#![no_main]

#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::check_extract(data));

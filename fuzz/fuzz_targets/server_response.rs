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

#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::check_server_response(data));

//! raceway-proto's integration tests: one binary, one module per behaviour.
//! (`tests/hostile_headers.rs` is a binary of its own: it installs a counting global
//! allocator, which other tests running beside it would disturb.)

mod export_support;

mod clock_proptest;
mod config_env;
mod export_batching;
mod export_flush_shutdown;
mod export_pacing;
mod export_partial;
mod export_queue;
mod export_rejected;
mod export_retry;
mod export_split;
mod fixtures;
// Header decoders over `http::HeaderMap` too: the adapters turn `http` on, so
// `cargo test --workspace` runs them (or `cargo test -p raceway-proto --features http`).
#[cfg(feature = "http")]
mod fuzz_regressions;
#[cfg(feature = "http")]
mod headers_one_rule;
mod headers_proptest;
mod headers_vectors;
mod headers_w3c;
mod races;
mod record_ids;
mod record_wire;
mod secrets_env;

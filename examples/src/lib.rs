//! The example programs, as library functions so that tests run exactly what the
//! binaries run.
//!
//! - [`bank`]: the main demo, a banking service on axum with a racy and a safe transfer.
//! - [`background`]: the published SDK's two background-task patterns, with this SDK's helpers.
//! - [`distributed`]: a gateway (tokio), an inventory service (async-std) and a payments
//!   service (blocking threads) in one trace: the cross-service race of S5b, no false S5a.

pub mod background;
pub mod bank;
pub mod distributed;
pub mod http_client;
pub mod report;

/// The README's Rust snippets, compiled (and, where they need no server, run) as doc tests.
#[doc = include_str!("../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;

//! The example programs, as library functions so that tests run exactly what the
//! binaries run.
//!
//! - [`bank`]: the main demo, a banking service on axum with a racy and a safe transfer.

pub mod bank;
pub mod http_client;
pub mod report;

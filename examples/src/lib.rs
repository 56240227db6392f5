//! The example programs, as library functions so that tests run exactly what the
//! binaries run.
//!
//! - [`bank`]: the main demo, a banking service on axum with a racy and a safe transfer.
//! - [`background`]: the published SDK's two background-task patterns, with this SDK's helpers.

pub mod background;
pub mod bank;
pub mod http_client;
pub mod report;

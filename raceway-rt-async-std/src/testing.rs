//! Races as test results, for async code: run a future under a fresh local analyser and
//! assert on the [`Report`] (see [`raceway_proto::testing`] for the format and
//! `RACEWAY_REPORT=json`).
//!
//! ```
//! # async_std::task::block_on(async {
//! use raceway_rt_async_std::testing;
//!
//! // Two tasks write `counter` with nothing ordering them: one race.
//! let report = testing::check(|rw| async move {
//!     let (a, b) = (rw.clone(), rw.clone());
//!     let first = rw.spawn(async move { a.track_state_change("counter", Some(0), 1, "Write") });
//!     let second = rw.spawn(async move { b.track_state_change("counter", Some(0), 1, "Write") });
//!     first.join().await;
//!     second.join().await;
//! })
//! .await;
//! report.assert_races_exactly(&["counter"]);
//! # });
//! ```

use std::future::Future;
use std::sync::Arc;

pub use raceway_proto::testing::{source_line, Report};

use crate::{Config, RacewayClient};

/// Runs the future `f` makes in a new trace of a fresh local client (nothing is sent,
/// whatever the environment says) and returns what its analyser found.
pub async fn check<F, Fut>(f: F) -> Report
where
    F: FnOnce(Arc<RacewayClient>) -> Fut,
    Fut: Future,
{
    check_with(f).await.1
}

/// [`check`], also returning the future's output.
pub async fn check_with<F, Fut>(f: F) -> (Fut::Output, Report)
where
    F: FnOnce(Arc<RacewayClient>) -> Fut,
    Fut: Future,
{
    let rw = Arc::new(
        RacewayClient::from_config(Config::new("test")).unwrap_or_else(|_| RacewayClient::local("test")),
    );
    let (out, _end) = rw.in_new_trace(f(rw.clone())).await;
    let report = Report::from(rw.races());
    (out, report)
}

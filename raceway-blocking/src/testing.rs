//! Races as test results, for threaded code: run a closure under a fresh local analyser and
//! assert on the [`Report`] (see [`raceway_proto::testing`] for the format and
//! `RACEWAY_REPORT=json`).
//!
//! ```
//! use raceway_blocking::testing;
//!
//! // Two threads write `counter` with nothing ordering them: one race.
//! let report = testing::check(|rw| {
//!     rw.scope(|s| {
//!         let _ = s.spawn(|| rw.track_state_change("counter", Some(0), 1, "Write"));
//!         let _ = s.spawn(|| rw.track_state_change("counter", Some(0), 1, "Write"));
//!     });
//! });
//! report.assert_races_exactly(&["counter"]);
//!
//! // The same under one tracked lock: none.
//! let report = testing::check(|rw| {
//!     let lock = raceway_blocking::TrackedMutex::new(0, rw.clone(), "counter-lock");
//!     rw.scope(|s| {
//!         for _ in 0..2 {
//!             let _ = s.spawn(|| {
//!                 let mut n = lock.lock("Mutex");
//!                 *n += 1;
//!                 rw.track_state_change("counter", Some(*n - 1), *n, "Write");
//!             });
//!         }
//!     });
//! });
//! report.assert_no_races();
//! ```

pub use raceway_proto::testing::{source_line, Report};

use std::sync::Arc;

use crate::{Config, RacewayClient};

/// Runs `f` in a new trace of a fresh local client (nothing is sent, whatever the
/// environment says) and returns what its analyser found.
pub fn check<R>(f: impl FnOnce(&Arc<RacewayClient>) -> R) -> Report {
    check_with(f).1
}

/// [`check`], also returning what `f` returned.
pub fn check_with<R>(f: impl FnOnce(&Arc<RacewayClient>) -> R) -> (R, Report) {
    let rw = Arc::new(
        RacewayClient::from_config(Config::new("test")).unwrap_or_else(|_| RacewayClient::local("test")),
    );
    let out = {
        let _trace = rw.start_trace();
        f(&rw)
    };
    let report = Report::from(rw.races());
    (out, report)
}

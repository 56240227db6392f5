//! Pattern 1 of the published README (examples/src/background.rs) with tracked channels:
//! the reply channel alone orders the worker's write before the handler's read.

use std::sync::Arc;

use raceway_examples::{background, report};
use raceway_rt_tokio::RacewayClient;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tracked_channel_job_worker_has_no_race_and_no_plumbing() {
    let raceway = Arc::new(RacewayClient::local("jobs"));
    let report = background::tracked::run(raceway.clone()).await;
    assert!(report.is_empty(), "{}", report::render(&report));
    // the worker's write and the handler's read
    assert_eq!(report.accesses_observed(), 2, "{}", report::render(&report));
    assert_eq!(raceway.stats().core.no_context, 0);
    raceway.shutdown();
}

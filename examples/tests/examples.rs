//! Every example runs here, so none can rot.

use std::sync::Arc;

use raceway_examples::{background, bank, report};
use raceway_rt_tokio::RacewayClient;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bank_demo_finds_the_racy_handler_and_not_the_safe_one() {
    let raceway = Arc::new(RacewayClient::local("bank"));
    let outcome = bank::run(raceway.clone(), 4).await.expect("demo runs");
    let report = &outcome.report;
    assert_eq!(
        report.races_on("alice.balance").count(),
        6,
        "{}",
        report::render(report)
    );
    assert_eq!(
        report.races_on("bob.balance").count(),
        0,
        "{}",
        report::render(report)
    );
    // the safe handler's balance is right, the racy one's is not
    assert_eq!(outcome.balances.1, 600);
    assert!(outcome.balances.0 > 600);
    let text = report::render(report);
    assert!(text.contains("alice.balance"));
    assert!(
        text.contains("examples/src/bank.rs:"),
        "locations are the caller's file:line"
    );
    raceway.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn background_patterns_join_their_flows() {
    let raceway = Arc::new(RacewayClient::local("jobs"));
    let report = background::run(raceway.clone()).await;
    // the worker's write is joined before the handler's read: no race
    assert!(report.is_empty(), "{}", report::render(&report));
    // handler: spawn + call + read + spawn-join...; worker: call + write; timeout task: call
    assert!(report.events_observed() >= 8, "{}", report.events_observed());
    assert_eq!(raceway.stats().core.no_context, 0);
    raceway.shutdown();
}

//! Every example runs here, so none can rot.

use std::sync::Arc;

use raceway_examples::{background, bank, distributed, report};
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn distributed_demo_finds_the_cross_service_race_and_no_false_one() {
    let services = distributed::Services::local();
    let outcome = distributed::run(&services).await.expect("demo runs");
    let report = &outcome.report;
    let text = report::render(report);
    // every access of the three services reached the shared analyser:
    // gateway 2 on order.total, payments 2 on order.total + 1 on payments.ledger, inventory 2 x 2 on stock
    assert_eq!(report.accesses_observed(), 9, "{text}");
    // S5a: gateway -> payments -> gateway on order.total is ordered by the call and its answer
    assert_eq!(report.races_on(distributed::ORDER_TOTAL).count(), 0, "{text}");
    // S5b: the two parallel inventory requests race, once, and nothing else does
    let stock: Vec<_> = report.races_on(distributed::STOCK).collect();
    assert_eq!(stock.len(), 1, "{text}");
    assert_eq!(report.racing_pairs(), 1, "{text}");
    let race = stock[0];
    assert_ne!(race.first.thread_id, race.second.thread_id, "{text}");
    for access in [&race.first, &race.second] {
        assert!(access.thread_id.starts_with("inventory#"), "{text}");
        assert_eq!(
            access.trace_id, outcome.trace_id,
            "the race is in the gateway's trace: {text}"
        );
    }
    // one trace: the upstream's, continued by the gateway and propagated to both services
    assert_eq!(outcome.trace_id, outcome.upstream_trace_id);
    assert_eq!(outcome.payments_trace_id, Some(outcome.trace_id));
    assert_eq!(outcome.inventory_trace_ids, vec![Some(outcome.trace_id); 2]);
    assert_eq!(
        outcome.tracestates,
        vec![Some(distributed::UPSTREAM_TRACESTATE.to_string()); 3],
        "tracestate is forwarded as received"
    );
    assert!(outcome.matches_truth());
    // the race is real: one of the two reservations was lost
    assert_eq!(outcome.stock_left, 9);
    assert_eq!(services.gateway.stats().core.no_context, 0);
    assert_eq!(services.inventory.stats().core.no_context, 0);
    services.shutdown(std::time::Duration::from_secs(5)).await;
}

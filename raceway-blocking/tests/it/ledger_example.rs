//! The ledger example's scenario: its functions, run as the example runs them.

use std::sync::Arc;

use raceway_blocking::RacewayClient;

#[allow(dead_code)]
#[path = "../../examples/ledger.rs"]
mod ledger;

#[test]
fn the_unlocked_ledger_races_pairwise_and_the_locked_one_does_not() {
    let client = Arc::new(RacewayClient::local("ledger"));
    let workers = 4;
    let _ = ledger::unlocked_ledger(&client, workers);
    assert_eq!(
        ledger::locked_ledger(&client, workers),
        1000 - 10 * workers as i64
    );
    let report = client.races();
    println!("{report}");
    assert_eq!(report.races_on(ledger::UNLOCKED).count(), 6);
    assert_eq!(report.races_on(ledger::LOCKED).count(), 0);
    assert_eq!(report.racing_pairs(), 6);
}

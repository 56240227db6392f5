//! The testing API: a closure under a fresh local analyser, its report, and assertions whose
//! failure messages show both accesses' code and flows.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use raceway_blocking::{testing, RacewayClient, TrackedMutex};

/// RACES.md S1: four threads each read then write `balance`, unprotected.
fn four_unprotected_transfers(rw: &Arc<RacewayClient>) {
    rw.scope(|s| {
        for _ in 0..4 {
            let _ = s.spawn(|| {
                rw.track_state_change("balance", None::<i64>, 100, "Read");
                rw.track_state_change("balance", Some(100), 90, "Write");
            });
        }
    });
}

#[test]
fn a_racy_closure_reports_its_variable_grouped_with_code_and_flows() {
    let report = testing::check(four_unprotected_transfers);
    report.assert_races_exactly(&["balance"]);
    assert_eq!(report.races().racing_pairs(), 6, "{report}");
    let text = report.to_string();
    assert_eq!(
        text.matches("WARNING: data race on `balance`").count(),
        1,
        "{text}"
    );
    assert_eq!(text.matches("  pair ").count(), 6, "each pair once: {text}");
    // The code of both accesses, not only file:line.
    assert!(
        text.contains(r#"| rw.track_state_change("balance", Some(100), 90, "Write");"#),
        "{text}"
    );
    assert!(text.contains("(flow test#"), "{text}");
    assert!(text.contains("why: neither happened before the other"), "{text}");
    assert!(!text.contains("clock"), "clock detail only on request: {text}");
    assert!(format!("{report:#}").contains("clock"), "{report:#}");
}

#[test]
fn the_same_under_one_tracked_lock_has_no_races() {
    let report = testing::check(|rw| {
        let lock = TrackedMutex::new(100i64, rw.clone(), "balance-lock");
        rw.scope(|s| {
            for _ in 0..4 {
                let _ = s.spawn(|| {
                    let mut b = lock.lock("Mutex");
                    rw.track_state_change("balance", None::<i64>, *b, "Read");
                    *b -= 10;
                    rw.track_state_change("balance", Some(*b + 10), *b, "Write");
                });
            }
        });
    });
    report.assert_no_races();
    assert!(report.to_string().starts_with("raceway: no races"), "{report}");
}

#[test]
fn a_failed_assertion_shows_both_accesses_code_and_flows() {
    let report = testing::check(four_unprotected_transfers);
    let message = catch_unwind(AssertUnwindSafe(|| report.assert_no_races()))
        .expect_err("the assertion fails")
        .downcast::<String>()
        .map(|s| *s)
        .unwrap_or_default();
    assert!(message.starts_with("expected no races, found:"), "{message}");
    assert!(
        message.contains(r#"| rw.track_state_change("balance", None::<i64>, 100, "Read");"#),
        "{message}"
    );
    assert!(message.contains("tests/it/testing_api.rs:"), "{message}");
    let message = catch_unwind(AssertUnwindSafe(|| report.assert_races_exactly(&["other"])))
        .expect_err("the assertion fails")
        .downcast::<String>()
        .map(|s| *s)
        .unwrap_or_default();
    assert!(
        message.contains(r#"expected races on exactly {"other"}, found them on {"balance"}"#),
        "{message}"
    );
}

#[test]
fn the_json_report_is_machine_readable() {
    let report = testing::check(four_unprotected_transfers);
    let json = report.to_json();
    assert_eq!(json["racing_pairs"], 6);
    let vars = json["variables"].as_array().expect("variables");
    assert_eq!(vars.len(), 1);
    assert_eq!(vars[0]["variable"], "balance");
    let races = vars[0]["races"].as_array().expect("races");
    assert_eq!(races.len(), 6);
    for r in races {
        for side in ["first", "second"] {
            assert!(
                r[side]["code"]
                    .as_str()
                    .is_some_and(|c| c.contains("track_state_change")),
                "{r}"
            );
            assert!(
                r[side]["flow"].as_str().is_some_and(|f| f.starts_with("test#")),
                "{r}"
            );
        }
        assert!(r["why"].as_str().is_some(), "{r}");
    }
}

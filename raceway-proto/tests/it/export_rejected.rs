//! Export: answers that refuse a batch for good are not retried; the events are counted.

use crate::export_support;

use export_support::*;
use raceway_proto::export::{ExportConfig, SendOutcome};

fn refuse(status: u16) {
    let mut sim = Sim::new({
        let mut c = ExportConfig::default();
        c.max_batch_events = 10;
        c
    });
    sim.record(state_changes(15));
    sim.set(at(ms(1000)));
    assert_eq!(
        sim.round(SendOutcome::status(status)),
        Some(10),
        "status {status}"
    );
    let s = sim.exporter.stats();
    assert_eq!(
        (
            s.dropped_rejected,
            s.dropped(),
            s.retried,
            s.sent,
            s.last_rejected_status
        ),
        (10, 10, 0, 0, Some(status)),
        "status {status}"
    );
    // Not retried: the next batch is the other five events, and nothing else follows.
    assert_eq!(sim.round(SendOutcome::status(200)), Some(5), "status {status}");
    sim.advance(ms(120_000));
    assert_eq!(sim.round(SendOutcome::status(200)), None, "status {status}");
    let s = sim.exporter.stats();
    assert_eq!((s.sent, s.dropped_rejected), (5, 10));
}

#[test]
fn bad_request_400_is_dropped() {
    refuse(400);
}

#[test]
fn unauthorized_401_is_dropped() {
    refuse(401);
}

#[test]
fn forbidden_403_is_dropped() {
    refuse(403);
}

#[test]
fn not_found_404_is_dropped() {
    refuse(404);
}

#[test]
fn unprocessable_422_is_dropped() {
    refuse(422);
}

#[test]
fn other_client_errors_and_odd_statuses_are_dropped() {
    for status in [405, 409, 410, 418, 451, 301, 100] {
        refuse(status);
    }
}

#[test]
fn rejections_accumulate_by_reason() {
    let mut sim = Sim::new({
        let mut c = ExportConfig::default();
        c.max_batch_events = 5;
        c.max_attempts = 1;
        c
    });
    sim.record(state_changes(20));
    assert_eq!(sim.round(SendOutcome::status(401)), Some(5));
    assert_eq!(sim.round(SendOutcome::status(422)), Some(5));
    assert_eq!(sim.round(SendOutcome::status(500)), Some(5));
    assert_eq!(sim.round(SendOutcome::status(200)), Some(5));
    let s = sim.exporter.stats();
    assert_eq!(
        (
            s.dropped_rejected,
            s.dropped_retries_exhausted,
            s.sent,
            s.last_rejected_status
        ),
        (10, 5, 5, Some(422))
    );
}

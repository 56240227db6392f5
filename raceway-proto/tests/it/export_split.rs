//! Export: `413 Payload Too Large` splits the batch in half, down to single events.

use crate::export_support;

use export_support::*;
use raceway_proto::export::{ExportConfig, SendOutcome};

#[test]
fn payload_too_large_splits_in_half_and_resends_both_halves() {
    let mut sim = Sim::new({
        let mut c = ExportConfig::default();
        c.max_batch_events = 8;
        c
    });
    let events = state_changes(8);
    let ids: Vec<_> = events.iter().map(|e| e.id).collect();
    sim.record(events);
    assert_eq!(sim.round(SendOutcome::status(413)), Some(8));
    assert_eq!(sim.round(SendOutcome::status(200)), Some(4));
    assert_eq!(sim.round(SendOutcome::status(200)), Some(4));
    assert_eq!(sim.round(SendOutcome::status(200)), None);
    let s = sim.exporter.stats();
    assert_eq!(
        (s.sent, s.split, s.retried, s.dropped(), s.batches_sent),
        (8, 1, 0, 0, 2)
    );
    assert_eq!(sim.delivered, ids);
}

#[test]
fn payload_too_large_splits_down_to_single_events_which_are_then_dropped() {
    let mut sim = Sim::new({
        let mut c = ExportConfig::default();
        c.max_batch_events = 8;
        c
    });
    sim.record(state_changes(8));
    let mut sizes = Vec::new();
    while let Some(n) = sim.round(SendOutcome::status(413)) {
        sizes.push(n);
    }
    // Depth-first, in order: 8, 4, 2, 1, 1, 2, 1, 1, 4, 2, 1, 1, 2, 1, 1.
    assert_eq!(sizes, [8, 4, 2, 1, 1, 2, 1, 1, 4, 2, 1, 1, 2, 1, 1]);
    let s = sim.exporter.stats();
    assert_eq!((s.split, s.dropped_oversized, s.dropped(), s.sent), (7, 8, 8, 0));
    assert!(sim.exporter.is_idle());
}

#[test]
fn an_odd_batch_splits_into_the_smaller_half_first() {
    let mut sim = Sim::new({
        let mut c = ExportConfig::default();
        c.max_batch_events = 7;
        c
    });
    let events = state_changes(7);
    let ids: Vec<_> = events.iter().map(|e| e.id).collect();
    sim.record(events);
    assert_eq!(sim.round(SendOutcome::status(413)), Some(7));
    assert_eq!(sim.round(SendOutcome::status(413)), Some(3));
    assert_eq!(sim.round(SendOutcome::status(200)), Some(1));
    assert_eq!(sim.round(SendOutcome::status(200)), Some(2));
    assert_eq!(sim.round(SendOutcome::status(200)), Some(4));
    assert_eq!(sim.delivered, ids);
    assert_eq!(sim.exporter.stats().split, 2);
}

//! Export: what is sent when, and that every body stays under the cap.

use crate::export_support;

use export_support::*;
use raceway_proto::encode::BODY_OVERHEAD;
use raceway_proto::export::{ExportConfig, SendOutcome};
use serde_json::json;

fn config() -> ExportConfig {
    {
        let mut c = ExportConfig::default();
        c.max_batch_events = 10;
        c
    }
}

#[test]
fn ok_answer_sends_and_counts() {
    let mut sim = Sim::new(config());
    let events = state_changes(10);
    let ids: Vec<_> = events.iter().map(|e| e.id).collect();
    assert_eq!(sim.record(events), 1);
    assert_eq!(sim.round(SendOutcome::status(200)), Some(10));
    let s = sim.exporter.stats().with_queue(sim.queue.stats());
    assert_eq!(
        (s.recorded, s.sent, s.dropped(), s.retried, s.batches_sent),
        (10, 10, 0, 0, 1)
    );
    assert_eq!(s.bytes_sent, sim.buf.len() as u64);
    assert_eq!(sim.delivered, ids);
    assert!(sim.exporter.is_idle());
    assert!(!sim.exporter.is_sending());
}

/// A bare `206` (no readable counts: see `export_partial.rs` for the ones with counts) is
/// not resent, but not counted as sent either.
#[test]
fn partial_success_206_without_counts_is_unconfirmed_not_retried() {
    let mut sim = Sim::new(config());
    sim.record(state_changes(10));
    assert_eq!(sim.round(SendOutcome::status(206)), Some(10));
    let s = sim.exporter.stats();
    assert_eq!(
        (
            s.sent,
            s.retried,
            s.dropped(),
            s.batches_sent,
            s.unconfirmed_partial,
            s.batches_partial
        ),
        (0, 0, 0, 0, 10, 1)
    );
    assert!(sim.exporter.is_idle());
    sim.advance(ms(60_000));
    assert_eq!(sim.round(SendOutcome::status(200)), None);
}

#[test]
fn nothing_is_sent_before_the_interval_unless_a_batch_is_full() {
    let mut sim = Sim::new(config());
    assert_eq!(sim.record(state_changes(3)), 0, "no wake below the batch size");
    assert_eq!(sim.exporter.poll_timeout(), Some(at(ms(1000))));
    sim.set(at(ms(999)));
    assert_eq!(sim.drain(), 0);
    assert!(sim.transmit().is_none());
    sim.set(at(ms(1000)));
    assert_eq!(sim.round(SendOutcome::status(200)), Some(3));
    // The next interval starts at the drain.
    assert_eq!(sim.exporter.poll_timeout(), Some(at(ms(2000))));
    sim.record(state_changes(4));
    sim.set(at(ms(1500)));
    assert_eq!(sim.round(SendOutcome::status(200)), None);
    sim.set(at(ms(2000)));
    assert_eq!(sim.round(SendOutcome::status(200)), Some(4));
    assert_eq!(sim.exporter.stats().sent, 7);
}

#[test]
fn an_idle_interval_moves_the_deadline_on() {
    let mut sim = Sim::new(config());
    sim.set(at(ms(1000)));
    assert_eq!(sim.drain(), 0);
    assert_eq!(sim.exporter.poll_timeout(), Some(at(ms(2000))));
}

#[test]
fn full_batches_go_at_once_and_the_partial_rest_waits() {
    let mut sim = Sim::new(config());
    assert_eq!(sim.record(state_changes(25)), 2, "wakes at 10 and 20 queued");
    sim.set(at(ms(10)));
    assert_eq!(sim.drain(), 20);
    assert_eq!(sim.queue.len(), 5);
    assert_eq!(sim.deliver_all(), 2);
    assert_eq!(sim.exporter.stats().sent, 20);
    sim.set(at(ms(1000)));
    assert_eq!(sim.round(SendOutcome::status(200)), Some(5));
    assert_eq!(sim.exporter.stats().batches_sent, 3);
}

#[test]
fn small_handoffs_fill_one_batch_until_it_is_sent() {
    let mut sim = Sim::new(config());
    sim.exporter.handle_events(state_changes(3), sim.now);
    sim.exporter.handle_events(state_changes(4), sim.now);
    sim.exporter.handle_events(state_changes(5), sim.now);
    let (t, _) = sim.transmit().unwrap();
    assert_eq!(t.events, 10);
    sim.exporter
        .handle_outcome(t.id, SendOutcome::status(200), sim.now);
    let (t, _) = sim.transmit().unwrap();
    assert_eq!(t.events, 2);
}

#[test]
fn pending_capacity_stops_draining_until_a_batch_completes() {
    let mut sim = Sim::new({
        let mut c = ExportConfig::default();
        c.max_batch_events = 10;
        c.max_pending_batches = 2;
        c
    });
    sim.record(state_changes(50));
    assert_eq!(sim.drain(), 20);
    assert_eq!(sim.drain(), 0);
    // No interval timer while there is no room: nothing to drain until a send finishes.
    assert_eq!(sim.exporter.poll_timeout(), Some(at(ms(0))));
    let (t, _) = sim.transmit().unwrap();
    assert_eq!(sim.exporter.poll_timeout(), None);
    sim.exporter
        .handle_outcome(t.id, SendOutcome::status(200), sim.now);
    assert_eq!(sim.drain(), 10);
    assert_eq!(sim.exporter.held_events(), 20);
}

#[test]
fn size_based_batching_cuts_bodies_at_the_byte_cap() {
    let big = "x".repeat(1000);
    let events = state_changes_with(100, |_| json!(big));
    let one = serde_json::to_vec(&events[0]).unwrap().len();
    let cap = BODY_OVERHEAD + 3 * one + 2 + one / 2; // room for three events and a half
    let mut sim = Sim::new({
        let mut c = ExportConfig::default();
        c.max_batch_events = 100;
        c.max_body_bytes = cap;
        c
    });
    sim.record(events);
    let mut sizes = Vec::new();
    while let Some(n) = sim.round(SendOutcome::status(200)) {
        sizes.push(n);
    }
    assert_eq!(sizes.len(), 34);
    assert!(sizes[..33].iter().all(|&n| n == 3), "{sizes:?}");
    assert_eq!(sizes[33], 1);
    let s = sim.exporter.stats();
    assert_eq!(
        (s.sent, s.batches_sent, s.truncated, s.dropped()),
        (100, 34, 0, 0)
    );
}

#[test]
fn no_body_exceeds_the_cap_and_oversized_events_are_cut_down_or_dropped() {
    let cap = 16 * 1024;
    let mut events = state_changes(30);
    // Event 5: too big, but small once cut down. Event 20: too big even cut down.
    let huge = "y".repeat(64 * 1024);
    if let raceway_proto::EventKind::StateChange { new_value, .. } = &mut events[5].kind {
        *new_value = json!(huge);
    }
    events[20].lock_set = vec![huge.clone()];
    let ids: Vec<_> = events.iter().map(|e| e.id).collect();
    let mut sim = Sim::new({
        let mut c = ExportConfig::default();
        c.max_batch_events = 30;
        c.max_body_bytes = cap;
        c
    });
    sim.record(events);
    sim.deliver_all();
    let s = sim.exporter.stats();
    assert_eq!(
        (s.sent, s.truncated, s.dropped_oversized, s.dropped()),
        (29, 1, 1, 1)
    );
    let expected: Vec<_> = ids
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != 20)
        .map(|(_, id)| *id)
        .collect();
    assert_eq!(sim.delivered, expected, "the others are sent, in order");
}

#[test]
fn a_truncated_event_is_resent_in_the_same_form() {
    let cap = 8 * 1024;
    let mut events = state_changes(2);
    if let raceway_proto::EventKind::StateChange { new_value, .. } = &mut events[1].kind {
        *new_value = json!("z".repeat(20_000));
    }
    let mut sim = Sim::new({
        let mut c = ExportConfig::default();
        c.max_body_bytes = cap;
        c
    });
    sim.exporter.handle_events(events, sim.now);
    let (t, first) = sim.transmit().unwrap();
    let first_body = sim.buf.clone();
    sim.exporter
        .handle_outcome(t.id, SendOutcome::status(503), sim.now);
    sim.advance(ms(60_000));
    let (t2, second) = sim.transmit().unwrap();
    assert_ne!(t.id, t2.id);
    assert_eq!(first_body, sim.buf);
    assert_eq!(first.events, second.events);
    assert_eq!(sim.exporter.stats().truncated, 1, "counted once");
    let raceway_proto::EventKind::StateChange { new_value, .. } = &second.events[1].kind else {
        panic!()
    };
    assert_eq!(new_value, &json!("<truncated: 20002 bytes>"));
}

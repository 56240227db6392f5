//! Export: flush is a barrier; shutdown sends what it can by a deadline and counts the rest.

use crate::export_support;

use export_support::*;
use raceway_proto::export::{ExportConfig, SendOutcome};

fn config() -> ExportConfig {
    {
        let mut c = ExportConfig::default();
        c.max_batch_events = 10;
        c
    }
}

/// What an adapter's `flush` does: move the whole queue in, then ask for the barrier.
fn flush(sim: &mut Sim) -> raceway_proto::export::FlushTicket {
    let mut v = Vec::new();
    sim.queue.drain(usize::MAX, &mut v);
    sim.exporter.handle_events(v, sim.now);
    sim.exporter.request_flush(sim.now)
}

#[test]
fn flush_sends_partial_batches_at_once() {
    let mut sim = Sim::new(config());
    sim.record(state_changes(3));
    sim.set(at(ms(100)));
    let ticket = flush(&mut sim);
    assert!(!sim.exporter.is_flushed(ticket));
    assert_eq!(sim.round(SendOutcome::status(200)), Some(3));
    assert!(sim.exporter.is_flushed(ticket));
    // The interval restarts at the flush.
    assert_eq!(sim.exporter.poll_timeout(), Some(at(ms(1100))));
}

#[test]
fn flush_is_a_barrier_for_earlier_events_only() {
    let mut sim = Sim::new(config());
    sim.record(state_changes(15));
    let ticket = flush(&mut sim);
    sim.record(state_changes(10));
    sim.drain(); // a full batch after the flush
    assert_eq!(sim.exporter.held_events(), 25);
    assert_eq!(sim.round(SendOutcome::status(200)), Some(10));
    assert!(!sim.exporter.is_flushed(ticket));
    // The flushed batch's last five, topped up with five later events.
    assert_eq!(sim.round(SendOutcome::status(200)), Some(10));
    assert!(
        sim.exporter.is_flushed(ticket),
        "later events do not hold the flush back"
    );
    let later = sim.exporter.request_flush(sim.now);
    assert!(!sim.exporter.is_flushed(later));
    assert_eq!(sim.round(SendOutcome::status(200)), Some(5));
    assert!(sim.exporter.is_flushed(later));
}

#[test]
fn flush_waits_for_retries_and_counts_dropped_events_as_done() {
    let mut sim = Sim::new(config());
    sim.record(state_changes(20));
    let ticket = flush(&mut sim);
    assert_eq!(sim.round(SendOutcome::status(503)), Some(10));
    assert!(sim.transmit().is_none(), "flush does not cut a retry wait short");
    assert!(!sim.exporter.is_flushed(ticket));
    sim.sleep_until_timeout();
    assert_eq!(sim.round(SendOutcome::status(422)), Some(10));
    assert!(!sim.exporter.is_flushed(ticket));
    assert_eq!(sim.round(SendOutcome::status(200)), Some(10));
    assert!(sim.exporter.is_flushed(ticket));
    let s = sim.exporter.stats();
    assert_eq!((s.sent, s.dropped_rejected, s.retried), (10, 10, 1));
}

#[test]
fn an_empty_flush_is_done_at_once() {
    let mut sim = Sim::new(config());
    let ticket = flush(&mut sim);
    assert!(sim.exporter.is_flushed(ticket));
}

#[test]
fn shutdown_makes_everything_due_and_ends_idle() {
    let mut sim = Sim::new(config());
    sim.record(state_changes(25));
    // Two full batches are taken, the first is waiting to retry.
    assert_eq!(sim.round(SendOutcome::status(503)), Some(10));
    assert_eq!(sim.queue.len(), 5);
    sim.set(at(ms(20)));
    assert_eq!(sim.drain(), 0);
    sim.exporter.begin_shutdown(sim.now, at(ms(5020)));
    assert_eq!(sim.exporter.shutdown_deadline(), Some(at(ms(5020))));
    assert_eq!(sim.drain(), 5, "the partial batch too");
    assert_eq!(sim.deliver_all(), 3, "the retry wait is cut short");
    assert!(sim.exporter.is_idle() && sim.queue.is_empty());
    let s = sim.exporter.stats();
    assert_eq!((s.sent, s.dropped()), (25, 0));
    assert_eq!(sim.exporter.poll_timeout(), Some(at(ms(5020))));
}

#[test]
fn at_the_deadline_abandon_drops_and_counts_the_rest() {
    let mut sim = Sim::new(config());
    sim.record(state_changes(35));
    assert_eq!(sim.round(SendOutcome::status(200)), Some(10));
    sim.exporter.begin_shutdown(sim.now, at(ms(2000)));
    sim.drain();
    // The server is down until the deadline.
    while sim.now < at(ms(2000)) {
        if sim.round(SendOutcome::ConnectionError).is_none() {
            let t = sim.exporter.poll_timeout().unwrap();
            sim.set(t.min(at(ms(2000))).max(sim.now));
        }
    }
    assert_eq!(
        sim.exporter.poll_timeout(),
        Some(at(ms(2000))),
        "the deadline is past: abandon now"
    );
    // A send is out when the deadline passes.
    sim.drain();
    let in_flight = sim.transmit().map(|(t, _)| t);
    assert_eq!(sim.exporter.abandon(sim.now), 25);
    if let Some(t) = in_flight {
        sim.exporter
            .handle_outcome(t.id, SendOutcome::status(200), sim.now);
    }
    assert!(sim.exporter.is_idle());
    assert_eq!(sim.exporter.poll_timeout(), None);
    assert!(sim.transmit().is_none());
    // Stragglers recorded after abandon are counted too.
    sim.record(state_changes(4));
    assert_eq!(sim.drain(), 4);
    let s = sim.exporter.stats().with_queue(sim.queue.stats());
    assert_eq!(
        (s.recorded, s.sent, s.dropped_shutdown, s.dropped()),
        (39, 10, 29, 29)
    );
    assert_eq!(s.recorded, s.sent + s.dropped());
}

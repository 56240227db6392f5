//! Export: the record queue is bounded, counts what it drops and wakes once per batch.

use crate::export_support;

use export_support::*;
use raceway_proto::export::{ExportConfig, PushOutcome, RecordQueue, SendOutcome};

#[test]
fn a_full_queue_drops_and_counts() {
    let mut q = RecordQueue::new(5, 100);
    let outcomes: Vec<_> = state_changes(8).into_iter().map(|e| q.push(e)).collect();
    assert!(outcomes[..5]
        .iter()
        .all(|o| *o == PushOutcome::Accepted { wake: false }));
    assert!(outcomes[5..].iter().all(|o| *o == PushOutcome::Dropped));
    let s = q.stats();
    assert_eq!((s.recorded, s.dropped_queue_full, s.queued), (5, 3, 5));
    let mut out = Vec::new();
    assert_eq!(q.drain(2, &mut out), 2);
    assert_eq!(q.len(), 3);
    assert!(matches!(
        q.push(state_changes(1).pop().unwrap()),
        PushOutcome::Accepted { .. }
    ));
    assert_eq!((q.recorded(), q.dropped_queue_full()), (6, 3));
}

#[test]
fn drains_oldest_first() {
    let events = state_changes(6);
    let ids: Vec<_> = events.iter().map(|e| e.id).collect();
    let mut q = RecordQueue::new(10, 3);
    for e in events {
        let _ = q.push(e);
    }
    let mut out = Vec::new();
    assert_eq!(q.drain(4, &mut out), 4);
    assert_eq!(q.drain(10, &mut out), 2);
    assert_eq!(q.drain(10, &mut out), 0);
    assert!(q.is_empty());
    assert_eq!(out.iter().map(|e| e.id).collect::<Vec<_>>(), ids);
}

#[test]
fn wakes_each_time_a_batch_fills() {
    let mut q = RecordQueue::new(100, 4);
    let wakes: Vec<usize> = state_changes(13)
        .into_iter()
        .enumerate()
        .filter_map(|(i, e)| matches!(q.push(e), PushOutcome::Accepted { wake: true }).then_some(i + 1))
        .collect();
    assert_eq!(wakes, [4, 8, 12]);
}

#[test]
fn drops_while_the_exporter_is_stalled_are_counted_end_to_end() {
    let mut sim = Sim::new({
        let mut c = ExportConfig::default();
        c.max_batch_events = 10;
        c.max_pending_batches = 1;
        c.queue_capacity = 20;
        c
    });
    sim.record(state_changes(10));
    sim.drain();
    let (t, _) = sim.transmit().unwrap();
    // The server hangs; meanwhile the application records 35 more.
    sim.record(state_changes(35));
    assert_eq!(sim.drain(), 0, "no room while the batch is out");
    sim.exporter
        .handle_outcome(t.id, SendOutcome::status(200), sim.now);
    sim.deliver_all();
    sim.set(at(ms(1000)));
    sim.deliver_all();
    let s = sim.exporter.stats().with_queue(sim.queue.stats());
    assert_eq!(
        (s.recorded, s.dropped_queue_full, s.sent, s.dropped()),
        (30, 15, 30, 15)
    );
}

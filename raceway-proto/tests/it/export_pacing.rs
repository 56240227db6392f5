//! Export: pacing to the server's room ([`ExportConfig::server_capacity`]).
//!
//! A model of the real server's capture buffer (WIRE.md, "Measured on the real server"):
//! `buffer` events at most, `batch` of them taken out every `interval`. A body's events go
//! in one by one; those that do not fit are dropped and the answer is `206`. The exporter,
//! told the server's capacity, must never fill it, however large the burst.

use crate::export_support::*;

use std::time::Duration;

use raceway_proto::export::{ExportConfig, SendOutcome, ServerCapacity};
use raceway_proto::Instant;

/// The server's capture buffer, drained on its own clock.
struct ServerModel {
    buffer: usize,
    batch: usize,
    interval: Duration,
    held: usize,
    next_drain: Instant,
    dropped: usize,
}

impl ServerModel {
    fn new(buffer: usize, batch: usize, interval: Duration) -> Self {
        Self {
            buffer,
            batch,
            interval,
            held: 0,
            next_drain: Instant::ZERO,
            dropped: 0,
        }
    }

    fn catch_up(&mut self, now: Instant) {
        while self.next_drain <= now {
            self.held = self.held.saturating_sub(self.batch);
            self.next_drain = self.next_drain.saturating_add(self.interval);
        }
    }

    /// A body of `n` events arrives at `now`.
    fn take(&mut self, n: usize, now: Instant) -> SendOutcome {
        self.catch_up(now);
        let accepted = n.min(self.buffer - self.held);
        self.held += accepted;
        self.dropped += n - accepted;
        if accepted == n {
            SendOutcome::status(200)
        } else {
            SendOutcome::Partial {
                accepted,
                dropped: n - accepted,
            }
        }
    }
}

fn paced(capacity: Option<ServerCapacity>) -> ExportConfig {
    let mut c = ExportConfig::default();
    c.queue_capacity = 100_000;
    c.max_pending_batches = 1_000;
    c.server_capacity = capacity;
    c
}

/// Hands `events` in at time zero and answers every body from `server` until all are
/// delivered; returns (bodies, 206 answers, time of the last delivery).
fn run(config: ExportConfig, server: &mut ServerModel, events: usize) -> (usize, usize, Instant) {
    let mut sim = Sim::new(config);
    sim.record(state_changes(events));
    let (mut bodies, mut partial) = (0, 0);
    for _ in 0..1_000_000 {
        sim.drain();
        if let Some((t, _)) = sim.transmit() {
            let outcome = server.take(t.events, sim.now);
            if matches!(outcome, SendOutcome::Partial { .. }) {
                partial += 1;
            }
            bodies += 1;
            sim.exporter.handle_outcome(t.id, outcome, sim.now);
            continue;
        }
        if sim.exporter.is_idle() && sim.queue.is_empty() {
            return (bodies, partial, sim.now);
        }
        sim.sleep_until_timeout();
    }
    panic!("never delivered");
}

#[test]
fn a_burst_three_times_the_buffer_never_fills_the_default_server() {
    // The real server's defaults: 10,000 events, 100 taken every 100 ms.
    let mut server = ServerModel::new(10_000, 100, ms(100));
    let config = paced(Some(ServerCapacity::RACEWAY_DEFAULT));
    let batch = config.max_batch_events;
    let (bodies, partial, done) = run(config, &mut server, 30_000);
    assert_eq!((partial, server.dropped), (0, 0), "the server was filled");
    assert!(bodies >= 30_000 / batch, "{bodies} bodies");
    // 9,000 at once, then 900 a second: 23.3 s, never faster than the server drains.
    let secs = done.as_nanos() as f64 / 1e9;
    assert!((20.0..30.0).contains(&secs), "took {secs:.1} s");
}

#[test]
fn without_pacing_the_same_burst_fills_the_server() {
    // The check above can fail: unpaced, the model server drops events.
    let mut server = ServerModel::new(10_000, 100, ms(100));
    let (_, partial, _) = run(paced(None), &mut server, 30_000);
    assert!(partial > 0 && server.dropped > 0, "the model never dropped");
}

#[test]
fn a_server_smaller_than_configured_is_learnt_from_its_first_206() {
    // `--buffer 500` while the client assumes the default 10,000.
    let mut server = ServerModel::new(500, 100, ms(100));
    let (_, partial, _) = run(paced(Some(ServerCapacity::RACEWAY_DEFAULT)), &mut server, 5_000);
    // The first body finds 500 of its 512 places; after that the exporter sends at most
    // what the server has room for, learnt from the answers.
    assert!(partial >= 1, "the first body fills the small server");
    assert!(partial <= 3, "{partial} answers 206: the exporter did not learn");
}

#[test]
fn bodies_are_cut_to_the_room_the_server_has() {
    let mut c = paced(Some(ServerCapacity {
        buffer_events: 100,
        events_per_sec: 1_000,
    }));
    c.max_batch_events = 512;
    let mut sim = Sim::new(c);
    sim.record(state_changes(512));
    sim.drain();
    let (t, _) = sim.transmit().expect("a body");
    assert_eq!(t.events, 90, "the buffer less its margin");
    sim.exporter
        .handle_outcome(t.id, SendOutcome::status(200), sim.now);
    assert!(sim.transmit().is_none(), "no room left at once");
    let next = sim.exporter.poll_timeout().expect("a timeout");
    // 90 more places at 900 a second.
    assert_eq!(next, at(ms(100)).saturating_add(Duration::from_nanos(1)));
}

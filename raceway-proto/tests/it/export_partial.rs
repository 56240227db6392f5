//! Export: `206` answers (the server's buffer was full) and `429` without `Retry-After`.
//!
//! The real server (0.1.0) takes a body's events into a bounded buffer in body order and
//! answers `206` with `{"success":true,"data":"Ingested N events, M errors","error":null}`
//! when it had to drop the last `M` (WIRE.md, "Measured on the real server"): only those
//! are resent, first in line, at a pace that backs off while the server stays full.

use crate::export_support;

use std::collections::HashSet;
use std::time::Duration;

use export_support::*;
use raceway_proto::export::{
    classify_response, ExportConfig, SendOutcome, Transmit, MAX_RESPONSE_BODY_BYTES,
};
use raceway_proto::{EventId, Instant};

/// Defaults without pacing to the server's room: these tests answer `206` by hand to check
/// what happens to the dropped tail; how a `206` corrects the pacing is `export_pacing`'s.
fn unpaced() -> ExportConfig {
    let mut c = ExportConfig::default();
    c.server_capacity = None;
    c
}

fn config() -> ExportConfig {
    {
        let mut c = unpaced();
        c.max_batch_events = 10;
        c
    }
}

/// The server's body for a `206` that took `n` events and dropped `m`.
fn body_206(n: usize, m: usize) -> String {
    format!(r#"{{"success":true,"data":"Ingested {n} events, {m} errors","error":null}}"#)
}

/// What a sender reports for that answer.
fn answer_206(n: usize, m: usize) -> SendOutcome {
    classify_response(206, None, body_206(n, m).as_bytes())
}

/// `n` events and `m` later ones of the same flow (`state_changes` ids are seeded: two calls
/// give the same ids, so take both parts from one stream).
fn two_parts(n: usize, m: usize) -> (Vec<raceway_proto::Event>, Vec<raceway_proto::Event>) {
    let mut first = state_changes(n + m);
    let second = first.split_off(n);
    (first, second)
}

fn ids(events: &[raceway_proto::Event]) -> Vec<EventId> {
    events.iter().map(|e| e.id).collect()
}

/// Steps from timeout to timeout until a body is due and returns it (with its ids).
fn next_body(sim: &mut Sim) -> (Transmit, Vec<EventId>) {
    for _ in 0..10_000 {
        sim.drain();
        if let Some((t, body)) = sim.transmit() {
            return (t, ids(&body.events));
        }
        let t = sim.exporter.poll_timeout().expect("a timeout");
        assert!(t > sim.now, "a past timeout with nothing to do");
        sim.set(t);
    }
    panic!("no body became due");
}

/// Sends the next due body, answers `outcome`; returns the body's ids and when it left.
fn send(sim: &mut Sim, outcome: SendOutcome) -> (Vec<EventId>, Instant) {
    let (t, body) = next_body(sim);
    sim.exporter.handle_outcome(t.id, outcome, sim.now);
    (body, sim.now)
}

fn assert_backoff(delay: Duration, n: u32, cfg: &ExportConfig) {
    let base = cfg
        .initial_backoff
        .checked_mul(1 << (n - 1))
        .unwrap()
        .min(cfg.max_backoff);
    assert!(
        delay >= base / 2 && delay <= base,
        "#{n}: {delay:?} not in [{:?}, {base:?}]",
        base / 2
    );
}

// ---------------------------------------------------------------------------------------
// classify_response

#[test]
fn classify_reads_the_servers_206_body_with_serde_json() {
    // As measured on the server: 15 events into a buffer with room for 6.
    let real = br#"{"success":true,"data":"Ingested 6 events, 9 errors","error":null}"#;
    assert_eq!(
        classify_response(206, None, real),
        SendOutcome::Partial {
            accepted: 6,
            dropped: 9
        }
    );
    assert_eq!(
        classify_response(
            206,
            None,
            br#"{"success":true,"data":"Ingested 0 events, 3 errors","error":null}"#
        ),
        SendOutcome::Partial {
            accepted: 0,
            dropped: 3
        }
    );
    // JSON, not text matching: escapes, spacing and field order do not matter.
    let escaped = b"{ \"error\" : null, \"data\" : \"Ingested\\u00206 events, 9 errors\" }\n";
    assert_eq!(
        classify_response(206, None, escaped),
        SendOutcome::Partial {
            accepted: 6,
            dropped: 9
        }
    );
    assert_eq!(
        classify_response(206, None, br#"{"data":"Ingested 4 events"}"#),
        SendOutcome::Partial {
            accepted: 4,
            dropped: 0
        }
    );
}

#[test]
fn classify_gives_a_bare_206_for_anything_it_cannot_read() {
    let padded = format!("{}{}", body_206(6, 9), " ".repeat(MAX_RESPONSE_BODY_BYTES));
    let bad: [&[u8]; 12] = [
        b"",
        b"Ingested 6 events, 9 errors",
        br#"{"success":true,"data":null,"error":null}"#,
        br#"{"success":true,"data":15,"error":null}"#,
        br#"{"success":true,"data":"Ingested six events, 9 errors"}"#,
        br#"{"success":true,"data":"Ingested 6 events, 9 error"}"#,
        br#"{"success":true,"data":"Ingested +6 events, 9 errors"}"#,
        br#"{"success":true,"data":"Ingested 6 events, -9 errors"}"#,
        br#"{"success":true,"data":"Ingested 6 events, 9 errors, 2 more"}"#,
        br#"{"success":true,"data":"Ingested 99999999999999999999999 events, 9 errors"}"#,
        br#"{"success":true,"data":"Ingested 6 events, 9 errors""#,
        padded.as_bytes(),
    ];
    for body in bad {
        assert_eq!(
            classify_response(206, None, body),
            SendOutcome::status(206),
            "{:?}",
            String::from_utf8_lossy(body)
        );
    }
}

#[test]
fn classify_maps_other_statuses_as_before() {
    let body = br#"{"success":false,"data":null,"error":"Too Many Requests"}"#;
    assert_eq!(classify_response(429, None, body), SendOutcome::status(429));
    assert_eq!(
        classify_response(503, Some(" 7 "), b""),
        SendOutcome::Status {
            status: 503,
            retry_after: Some(Duration::from_secs(7))
        }
    );
    assert_eq!(
        classify_response(429, Some("Wed, 21 Oct 2015 07:28:00 GMT"), b""),
        SendOutcome::status(429)
    );
    // A 200's body is not needed.
    assert_eq!(
        classify_response(200, None, body_206(6, 9).as_bytes()),
        SendOutcome::status(200)
    );
}

// ---------------------------------------------------------------------------------------
// The exporter

#[test]
fn a_206_requeues_exactly_the_dropped_tail_ahead_of_newer_events() {
    let mut sim = Sim::new(config());
    let (first, second) = two_parts(10, 10);
    let a = ids(&first);
    sim.record(first);
    let (body, sent_at) = send(&mut sim, answer_206(6, 4));
    assert_eq!(body, a);
    let s = sim.exporter.stats();
    assert_eq!(
        (
            s.sent,
            s.requeued_server_full,
            s.retried,
            s.batches_partial,
            s.batches_sent
        ),
        (6, 4, 1, 1, 0)
    );
    assert_eq!((s.dropped(), s.unconfirmed_partial), (0, 0));
    assert_eq!(sim.exporter.held_events(), 4);

    // Newer events arrive while the tail waits.
    let b = ids(&second);
    sim.record(second);
    sim.drain();
    assert!(sim.transmit().is_none(), "nothing leaves right after a 206");

    let (tail, resent_at) = send(&mut sim, SendOutcome::status(200));
    assert_eq!(tail, a[6..], "exactly the dropped tail, in order, alone");
    assert_backoff(resent_at.saturating_duration_since(sent_at), 1, &config());
    let (next, _) = send(&mut sim, SendOutcome::status(200));
    assert_eq!(next, b, "then the newer events");

    let mut all = a.clone();
    all.extend(&b);
    let s = sim.exporter.stats();
    assert_eq!((s.sent, s.batches_sent, s.dropped(), s.settled()), (20, 2, 0, 20));
    assert!(sim.exporter.is_idle());
    // What the server holds: the head of the 206, then the tail, then the newer batch.
    let mut server = a[..6].to_vec();
    server.extend(&tail);
    server.extend(&next);
    assert_eq!(server, all);
}

#[test]
fn no_duplicates_over_206_206_200() {
    let mut sim = Sim::new(config());
    let events = state_changes(25);
    let all = ids(&events);
    sim.record(events);
    let mut server: Vec<EventId> = Vec::new();

    let (b1, _) = send(&mut sim, answer_206(3, 7));
    assert_eq!(b1, all[..10]);
    server.extend(&b1[..3]);
    let (b2, _) = send(&mut sim, answer_206(2, 5));
    assert_eq!(b2, all[3..10]);
    server.extend(&b2[..2]);
    let (b3, _) = send(&mut sim, SendOutcome::status(200));
    assert_eq!(b3, all[5..10]);
    server.extend(&b3);
    while sim.exporter.stats().settled() < 25 {
        let (body, _) = send(&mut sim, SendOutcome::status(200));
        server.extend(body);
    }

    assert_eq!(server, all, "everything once, in order");
    let unique: HashSet<_> = server.iter().collect();
    assert_eq!(unique.len(), server.len());
    let s = sim.exporter.stats();
    assert_eq!(
        (
            s.sent,
            s.requeued_server_full,
            s.batches_partial,
            s.batches_sent,
            s.dropped()
        ),
        (25, 12, 2, 3, 0)
    );
}

#[test]
fn backoff_after_206_grows_and_resets_after_a_full_200() {
    let cfg = {
        let mut c = unpaced();
        c.max_batch_events = 10;
        c.initial_backoff = ms(100);
        c.max_backoff = ms(1600);
        c
    };
    let mut sim = Sim::new(cfg.clone());
    sim.record(state_changes(20));
    // The server takes one event of each body for a while.
    let (_, mut last) = send(&mut sim, answer_206(1, 9));
    let mut delays = Vec::new();
    for dropped in (5..=8).rev() {
        let (body, at) = send(&mut sim, answer_206(1, dropped));
        assert_eq!(body.len(), dropped + 1);
        delays.push(at.saturating_duration_since(last));
        last = at;
    }
    for (i, d) in delays.iter().enumerate() {
        assert_backoff(*d, i as u32 + 1, &cfg);
    }
    assert!(delays[3] > delays[0] && delays[3] >= ms(400), "{delays:?}");
    // The last 5 are taken whole: the pace starts over.
    let (body, at) = send(&mut sim, SendOutcome::status(200));
    assert_eq!(body.len(), 5);
    assert_backoff(at.saturating_duration_since(last), 5, &cfg);
    let (_, first_of_next) = send(&mut sim, answer_206(4, 6));
    assert_eq!(first_of_next, at, "a full 200 leaves no pace behind");
    let (body, resent) = send(&mut sim, SendOutcome::status(200));
    assert_eq!(body.len(), 6);
    assert_backoff(resent.saturating_duration_since(first_of_next), 1, &cfg);
    let s = sim.exporter.stats();
    assert_eq!(
        (s.sent, s.dropped(), s.batches_partial, s.batches_sent),
        (20, 0, 6, 2)
    );
}

#[test]
fn a_full_server_holds_back_every_batch_not_only_the_tail() {
    let mut sim = Sim::new(config());
    let (first, later) = two_parts(10, 30);
    sim.record(first);
    // Everything dropped: the whole batch is the tail.
    let (body, at) = send(&mut sim, answer_206(0, 10));
    assert_eq!(body.len(), 10);
    sim.record(later);
    sim.drain();
    assert!(sim.transmit().is_none());
    let due = sim.exporter.poll_timeout().unwrap();
    assert_backoff(due.saturating_duration_since(at), 1, &config());
    sim.set(due);
    let (body2, _) = send(&mut sim, SendOutcome::status(200));
    assert_eq!(body2, body, "the dropped batch goes first");
    assert_eq!(sim.deliver_all(), 3);
    let s = sim.exporter.stats();
    assert_eq!((s.sent, s.requeued_server_full, s.dropped()), (40, 10, 0));
}

#[test]
fn a_429_without_retry_after_backs_off_exponentially() {
    let cfg = {
        let mut c = unpaced();
        c.max_batch_events = 10;
        c.max_attempts = 100;
        c.initial_backoff = ms(100);
        c.max_backoff = ms(10_000);
        c
    };
    let mut sim = Sim::new(cfg.clone());
    let events = state_changes(10);
    let all = ids(&events);
    sim.record(events);
    // The server's 429: no Retry-After header, a JSON error body.
    let rate_limited = classify_response(
        429,
        None,
        br#"{"success":false,"data":null,"error":"Too Many Requests"}"#,
    );
    let (_, mut last) = send(&mut sim, rate_limited);
    let mut delays = Vec::new();
    for _ in 0..6 {
        let (body, at) = send(&mut sim, rate_limited);
        assert_eq!(body, all, "the same batch, whole");
        delays.push(at.saturating_duration_since(last));
        last = at;
    }
    for (i, d) in delays.iter().enumerate() {
        assert_backoff(*d, i as u32 + 1, &cfg);
    }
    assert!(delays[5] >= ms(1600), "{delays:?}");
    let (body, at) = send(&mut sim, SendOutcome::status(200));
    assert_eq!(body, all);
    assert_backoff(at.saturating_duration_since(last), 7, &cfg);
    let s = sim.exporter.stats();
    assert_eq!((s.sent, s.retried, s.dropped()), (10, 7, 0));
}

#[test]
fn an_unreadable_or_inconsistent_206_is_not_resent_and_counted_unconfirmed() {
    let cases: [(&str, SendOutcome); 5] = [
        ("bare 206", SendOutcome::status(206)),
        ("not JSON", classify_response(206, None, b"<html>busy</html>")),
        // N is the events the server took, not the events of the body: 10 + 4 != 10.
        ("N + M over the body", answer_206(10, 4)),
        ("N + M under the body", answer_206(3, 4)),
        ("M over the body", answer_206(0, 11)),
    ];
    for (name, outcome) in cases {
        let mut sim = Sim::new(config());
        let (first, second) = two_parts(10, 10);
        let a: HashSet<_> = ids(&first).into_iter().collect();
        sim.record(first);
        let (_, at) = send(&mut sim, outcome);
        let s = sim.exporter.stats();
        assert_eq!(
            (
                s.sent,
                s.dropped(),
                s.unconfirmed_partial,
                s.retried,
                s.requeued_server_full
            ),
            (0, 0, 10, 0, 0),
            "{name}"
        );
        assert_eq!((s.batches_partial, s.settled()), (1, 10), "{name}");
        assert!(sim.exporter.is_idle(), "{name}");
        // The server is full all the same: the next batch waits for the pace.
        sim.record(second);
        sim.drain();
        assert!(sim.transmit().is_none(), "{name}");
        let (body, resent) = send(&mut sim, SendOutcome::status(200));
        assert_backoff(resent.saturating_duration_since(at), 1, &config());
        assert_eq!(body.len(), 10, "{name}");
        assert!(body.iter().all(|id| !a.contains(id)), "{name}: nothing resent");
        sim.advance(ms(120_000));
        assert_eq!(sim.round(SendOutcome::status(200)), None, "{name}");
        let s = sim.exporter.stats();
        assert_eq!((s.sent, s.unconfirmed_partial), (10, 10), "{name}");
    }
}

#[test]
fn a_tail_the_server_never_takes_is_lost_to_server_capacity() {
    let mut sim = Sim::new({
        let mut c = unpaced();
        c.max_batch_events = 10;
        c.max_attempts = 3;
        c
    });
    sim.record(state_changes(20));
    send(&mut sim, answer_206(4, 6));
    // Progress restarts the attempts; three sends that take nothing end them.
    send(&mut sim, answer_206(0, 6));
    send(&mut sim, answer_206(0, 6));
    let s = sim.exporter.stats();
    assert_eq!((s.sent, s.dropped()), (4, 0));
    let (body, _) = send(&mut sim, answer_206(0, 6));
    assert_eq!(body.len(), 6);
    let s = sim.exporter.stats();
    assert_eq!(
        (
            s.sent,
            s.dropped_server_full,
            s.dropped_retries_exhausted,
            s.dropped()
        ),
        (4, 6, 0, 6)
    );
    assert_eq!(s.requeued_server_full, 6 + 6 + 6);
    // The next batch goes on.
    let (body, _) = send(&mut sim, SendOutcome::status(200));
    assert_eq!(body.len(), 10);
    assert_eq!(sim.exporter.stats().settled(), 20);
}

#[test]
fn a_tail_that_then_meets_server_errors_is_still_a_capacity_loss() {
    let mut sim = Sim::new({
        let mut c = unpaced();
        c.max_batch_events = 10;
        c.max_attempts = 2;
        c
    });
    sim.record(state_changes(20));
    send(&mut sim, answer_206(7, 3));
    send(&mut sim, SendOutcome::status(503));
    send(&mut sim, SendOutcome::status(429));
    // The next batch never met a full server: its losses are retries exhausted.
    send(&mut sim, SendOutcome::status(503));
    send(&mut sim, SendOutcome::status(503));
    let s = sim.exporter.stats();
    assert_eq!(
        (
            s.sent,
            s.dropped_server_full,
            s.dropped_retries_exhausted,
            s.dropped()
        ),
        (7, 3, 10, 13)
    );
    assert!(sim.exporter.is_idle());
}

#[test]
fn a_tail_still_held_at_the_shutdown_deadline_is_a_capacity_loss() {
    let mut sim = Sim::new(config());
    sim.record(state_changes(25));
    send(&mut sim, answer_206(4, 6));
    let deadline = sim.now.saturating_add(ms(3000));
    sim.exporter.begin_shutdown(sim.now, deadline);
    assert_eq!(sim.drain(), 5);
    assert_eq!(sim.exporter.held_events(), 6 + 10 + 5);
    // The pace is cut short once; the server stays down until the deadline.
    let (body, _) = send(&mut sim, SendOutcome::ConnectionError);
    assert_eq!(body.len(), 6, "the tail first, at once");
    assert!(sim.exporter.poll_timeout().unwrap() < deadline);
    sim.set(deadline);
    assert_eq!(sim.exporter.abandon(sim.now), 21);
    sim.record(state_changes(2));
    sim.drain();
    let s = sim.exporter.stats().with_queue(sim.queue.stats());
    assert_eq!(
        (
            s.sent,
            s.dropped_server_full,
            s.dropped_shutdown,
            s.abandoned,
            s.dropped()
        ),
        (4, 6, 17, 23, 23)
    );
    assert_eq!(s.recorded, s.settled());
}

#[test]
fn a_flush_waits_for_the_requeued_tail() {
    let mut sim = Sim::new(config());
    let (before, after) = two_parts(10, 10);
    sim.record(before);
    let mut v = Vec::new();
    sim.queue.drain(usize::MAX, &mut v);
    sim.exporter.handle_events(v, sim.now);
    let ticket = sim.exporter.request_flush(sim.now);
    // Later events, not covered by the ticket.
    sim.record(after);
    sim.drain();

    send(&mut sim, answer_206(6, 4));
    assert!(
        !sim.exporter.is_flushed(ticket),
        "four events from before the ticket are still to be sent"
    );
    let (body, _) = send(&mut sim, answer_206(1, 3));
    assert_eq!(body.len(), 4);
    assert!(!sim.exporter.is_flushed(ticket));
    let (body, _) = send(&mut sim, SendOutcome::status(200));
    assert_eq!(body.len(), 3);
    assert!(
        sim.exporter.is_flushed(ticket),
        "the later batch does not hold the flush back"
    );
    assert_eq!(sim.exporter.held_events(), 10);
    let later = sim.exporter.request_flush(sim.now);
    assert!(!sim.exporter.is_flushed(later));
    send(&mut sim, SendOutcome::status(200));
    assert!(sim.exporter.is_flushed(later));
}

#[test]
fn a_flush_counts_a_lost_tail_as_done() {
    let mut sim = Sim::new({
        let mut c = unpaced();
        c.max_batch_events = 10;
        c.max_attempts = 1;
        c
    });
    sim.record(state_changes(10));
    sim.drain();
    let ticket = sim.exporter.request_flush(sim.now);
    send(&mut sim, answer_206(5, 5));
    assert!(!sim.exporter.is_flushed(ticket));
    send(&mut sim, answer_206(0, 5));
    assert!(sim.exporter.is_flushed(ticket), "dropped and counted");
    assert_eq!(sim.exporter.stats().dropped_server_full, 5);
}

/// A model of the real server's capture buffer: `capacity` events, emptied at `rate`
/// events a second; a body's events are taken in order while there is room.
struct FullServer {
    capacity: usize,
    rate_per_s: u64,
    held: usize,
    last: Instant,
    stored: Vec<EventId>,
}

impl FullServer {
    fn post(&mut self, now: Instant, body: &[EventId]) -> SendOutcome {
        let elapsed = now.saturating_duration_since(self.last);
        let drained = (elapsed.as_millis() as u64 * self.rate_per_s / 1000) as usize;
        if drained > 0 {
            self.held = self.held.saturating_sub(drained);
            self.last = now;
        }
        let take = body.len().min(self.capacity - self.held);
        self.held += take;
        self.stored.extend(&body[..take]);
        if take == body.len() {
            let reply = format!(r#"{{"success":true,"data":"Ingested {take} events","error":null}}"#);
            classify_response(200, None, reply.as_bytes())
        } else {
            classify_response(206, None, body_206(take, body.len() - take).as_bytes())
        }
    }
}

#[test]
fn a_burst_into_a_full_server_arrives_once_and_in_order() {
    let mut sim = Sim::new({
        let mut c = unpaced();
        c.max_batch_events = 100;
        c
    });
    let events = state_changes(3000);
    let all = ids(&events);
    sim.record(events);
    let mut server = FullServer {
        capacity: 500,
        rate_per_s: 1000,
        held: 0,
        last: Instant::ZERO,
        stored: Vec::new(),
    };
    let mut posts = 0;
    while sim.exporter.stats().settled() < 3000 {
        let (t, body) = next_body(&mut sim);
        let outcome = server.post(sim.now, &body);
        sim.exporter.handle_outcome(t.id, outcome, sim.now);
        posts += 1;
        assert!(posts < 1000, "too many posts");
    }
    assert_eq!(server.stored, all, "every event once, in order");
    let s = sim.exporter.stats();
    assert_eq!((s.sent, s.dropped(), s.unconfirmed_partial), (3000, 0, 0));
    assert!(s.batches_partial > 0 && s.requeued_server_full > 0, "{s:?}");
    // The server drains 1000 events a second and holds 500: it cannot take 3000 events
    // in less than 2.5 s, and pacing keeps the exporter from hammering it meanwhile.
    assert!(sim.now >= at(ms(2500)), "{:?}", sim.now);
    assert!(posts < 100, "{posts} posts for 30 batches");
}

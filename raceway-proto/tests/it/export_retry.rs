//! Export: answers that are retried (408, 429, 5xx, connection errors, timeouts).

use crate::export_support;

use std::time::Duration;

use export_support::*;
use raceway_proto::export::{ExportConfig, SendOutcome};
use raceway_proto::Instant;

fn config() -> ExportConfig {
    {
        let mut c = ExportConfig::default();
        c.max_batch_events = 10;
        c
    }
}

fn with_retry_after(status: u16, d: Duration) -> SendOutcome {
    SendOutcome::Status {
        status,
        retry_after: Some(d),
    }
}

/// Sleeps from timeout to timeout until a batch is due, sends it and answers `outcome`;
/// returns the time it was sent.
fn send_when_due(sim: &mut Sim, outcome: SendOutcome) -> Instant {
    loop {
        sim.drain();
        if let Some((t, _)) = sim.transmit() {
            sim.exporter.handle_outcome(t.id, outcome, sim.now);
            return sim.now;
        }
        let t = sim.exporter.poll_timeout().expect("a timeout");
        assert!(t > sim.now, "a past timeout with nothing to do");
        sim.set(t);
    }
}

/// Sends when due, fails with `outcome`, and returns how long until the retry went out
/// (the retry is answered 200 unless more failures follow in the caller).
fn fail_once(sim: &mut Sim, outcome: SendOutcome) -> Duration {
    let sent = send_when_due(sim, outcome);
    assert!(sim.transmit().is_none(), "nothing is due right after a failure");
    // Find when the retry is due without sending it: step through timeouts.
    loop {
        let t = sim.exporter.poll_timeout().unwrap();
        assert!(t > sim.now);
        sim.set(t);
        sim.drain();
        if sim.exporter.is_idle() {
            panic!("the batch was dropped");
        }
        if let Some(due) = due_now(sim) {
            return due.saturating_duration_since(sent);
        }
    }
}

/// The current time when the front batch is due now: right after a drain has moved the
/// interval timer on, a timeout that is not in the future is the retry time.
fn due_now(sim: &mut Sim) -> Option<Instant> {
    (sim.exporter.poll_timeout()? <= sim.now && !sim.exporter.is_sending()).then_some(sim.now)
}

fn assert_backoff(delay: Duration, failures: u32, cfg: &ExportConfig) {
    let base = cfg
        .initial_backoff
        .checked_mul(1 << (failures - 1))
        .unwrap()
        .min(cfg.max_backoff);
    assert!(
        delay >= base / 2 && delay <= base,
        "failure {failures}: {delay:?} not in [{:?}, {base:?}]",
        base / 2
    );
}

#[test]
fn request_timeout_408_is_retried_with_backoff() {
    let mut sim = Sim::new(config());
    sim.record(state_changes(10));
    let d = fail_once(&mut sim, SendOutcome::status(408));
    assert_backoff(d, 1, &config());
    assert_eq!(sim.round(SendOutcome::status(200)), Some(10));
    let s = sim.exporter.stats();
    assert_eq!((s.sent, s.retried, s.dropped(), s.batches_sent), (10, 1, 0, 1));
}

#[test]
fn rate_limited_429_without_retry_after_uses_backoff() {
    let mut sim = Sim::new(config());
    sim.record(state_changes(10));
    let d1 = fail_once(&mut sim, SendOutcome::status(429));
    let d2 = fail_once(&mut sim, SendOutcome::status(429));
    assert_backoff(d1, 1, &config());
    assert_backoff(d2, 2, &config());
    assert_eq!(sim.round(SendOutcome::status(200)), Some(10));
    assert_eq!(sim.exporter.stats().retried, 2);
}

#[test]
fn rate_limited_429_honours_retry_after_exactly() {
    let mut sim = Sim::new(config());
    sim.record(state_changes(10));
    sim.set(at(ms(5)));
    let d = fail_once(&mut sim, with_retry_after(429, Duration::from_secs(7)));
    assert_eq!(d, Duration::from_secs(7));
    assert_eq!(sim.now, at(ms(7005)));
    assert_eq!(sim.round(SendOutcome::status(200)), Some(10));
    let s = sim.exporter.stats();
    assert_eq!((s.sent, s.retried, s.dropped()), (10, 1, 0));
}

#[test]
fn a_huge_retry_after_is_capped() {
    let mut sim = Sim::new(config());
    sim.record(state_changes(10));
    let d = fail_once(&mut sim, with_retry_after(429, Duration::from_secs(86_400)));
    assert_eq!(d, Duration::from_secs(60));
    let d = fail_once(&mut sim, with_retry_after(503, Duration::from_secs(u64::MAX)));
    assert_eq!(d, Duration::from_secs(60));
    assert_eq!(sim.round(SendOutcome::status(200)), Some(10));
}

#[test]
fn server_errors_back_off_exponentially_up_to_the_cap() {
    let cfg = {
        let mut c = ExportConfig::default();
        c.max_batch_events = 10;
        c.max_attempts = 100;
        c.initial_backoff = ms(100);
        c.max_backoff = ms(1600);
        c
    };
    let mut sim = Sim::new(cfg.clone());
    sim.record(state_changes(10));
    let mut delays = Vec::new();
    for failure in 1..=8u32 {
        let status = if failure % 2 == 0 { 503 } else { 500 };
        let d = fail_once(&mut sim, SendOutcome::status(status));
        assert_backoff(d, failure, &cfg);
        delays.push(d);
    }
    // Grows: each of the first five is at least the previous one's lower bound doubled.
    assert!(delays[4] >= ms(800) && delays[7] <= ms(1600), "{delays:?}");
    assert_eq!(sim.round(SendOutcome::status(200)), Some(10));
    let s = sim.exporter.stats();
    assert_eq!((s.sent, s.retried, s.dropped()), (10, 8, 0));
}

#[test]
fn server_errors_stop_after_max_attempts() {
    let mut sim = Sim::new({
        let mut c = ExportConfig::default();
        c.max_batch_events = 10;
        c.max_attempts = 3;
        c
    });
    sim.record(state_changes(20));
    fail_once(&mut sim, SendOutcome::status(500));
    fail_once(&mut sim, SendOutcome::status(502));
    // Third answer: dropped, and the next batch goes at once.
    assert_eq!(sim.round(SendOutcome::status(503)), Some(10));
    let s = sim.exporter.stats();
    assert_eq!(
        (s.retried, s.dropped_retries_exhausted, s.dropped(), s.sent),
        (2, 10, 10, 0)
    );
    assert_eq!(sim.round(SendOutcome::status(200)), Some(10));
    assert_eq!(sim.exporter.stats().sent, 10);
    assert!(sim.exporter.is_idle());
}

#[test]
fn connection_errors_are_retried_until_they_succeed_and_nothing_is_lost() {
    let cfg = {
        let mut c = ExportConfig::default();
        c.max_batch_events = 10;
        c.max_attempts = 2;
        c
    };
    let mut sim = Sim::new(cfg.clone());
    let events = state_changes(30);
    let ids: Vec<_> = events.iter().map(|e| e.id).collect();
    sim.record(events);
    for failure in 1..=25u32 {
        let outcome = if failure % 3 == 0 {
            SendOutcome::Timeout
        } else {
            SendOutcome::ConnectionError
        };
        let d = fail_once(&mut sim, outcome);
        assert_backoff(d, failure, &cfg);
    }
    assert_eq!(sim.deliver_all(), 3);
    let s = sim.exporter.stats();
    assert_eq!((s.sent, s.retried, s.dropped(), s.batches_sent), (30, 25, 0, 3));
    assert_eq!(sim.delivered, ids, "everything, in order");
}

#[test]
fn a_retrying_batch_holds_back_later_ones() {
    let mut sim = Sim::new(config());
    let events = state_changes(20);
    let ids: Vec<_> = events.iter().map(|e| e.id).collect();
    sim.record(events);
    fail_once(&mut sim, SendOutcome::status(503));
    assert_eq!(sim.deliver_all(), 2);
    assert_eq!(sim.delivered, ids);
}

#[test]
fn outcomes_of_unknown_sends_are_ignored() {
    let mut sim = Sim::new(config());
    sim.record(state_changes(10));
    sim.drain();
    let (t, _) = sim.transmit().unwrap();
    sim.exporter
        .handle_outcome(t.id, SendOutcome::status(200), sim.now);
    sim.exporter
        .handle_outcome(t.id, SendOutcome::status(500), sim.now);
    let s = sim.exporter.stats();
    assert_eq!((s.sent, s.retried, s.dropped()), (10, 0, 0));
}

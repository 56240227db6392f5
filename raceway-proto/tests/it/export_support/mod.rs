//! Shared simulation harness for the `export_*` tests: events from a seeded tracer, and a
//! driver that runs the exporter's calling order with simulated time.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use raceway_proto::event::AccessType;
use raceway_proto::export::{ExportConfig, Exporter, RecordQueue, SendOutcome, Transmit};
use raceway_proto::ids::SeededIds;
use raceway_proto::{Event, EventKind, Instant, Service, SourceLocation, Timestamp, Tracer, WallClock};
use serde_json::{json, Value};

/// A wall clock stuck at one time (the tracer keeps timestamps monotonic per flow).
pub struct FixedWallClock;

impl WallClock for FixedWallClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_unix_micros(1_795_000_000_000_000)
    }
}

pub fn tracer() -> Tracer {
    Tracer::new(
        Service::new("banking", "i-1", "test", "app", 4242),
        Arc::new(SeededIds::new(7)),
        Arc::new(FixedWallClock),
    )
}

/// `n` realistic `StateChange` events of one flow.
pub fn state_changes(n: usize) -> Vec<Event> {
    state_changes_with(n, |i| json!(i))
}

/// `n` `StateChange` events whose `new_value` is `value(i)`.
pub fn state_changes_with(n: usize, value: impl Fn(usize) -> Value) -> Vec<Event> {
    let t = tracer();
    let mut flow = t.new_trace();
    (0..n)
        .map(|i| {
            let kind = EventKind::state_change(
                "alice.balance",
                Some(json!(i)),
                value(i),
                if i % 2 == 0 {
                    AccessType::Read
                } else {
                    AccessType::Write
                },
                SourceLocation::Static {
                    file: "src/main.rs",
                    line: 42,
                },
            );
            t.record(&mut flow, kind, None)
        })
        .collect()
}

pub const fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

pub fn at(d: Duration) -> Instant {
    Instant::ZERO.saturating_add(d)
}

#[derive(serde::Deserialize)]
pub struct Body {
    pub events: Vec<Event>,
}

/// The exporter and queue of one adapter, driven by hand with simulated time.
pub struct Sim {
    pub exporter: Exporter,
    pub queue: RecordQueue,
    pub now: Instant,
    pub buf: Vec<u8>,
    pub cap: usize,
    /// Every event id the server acknowledged, in order (whole bodies answered 2xx other
    /// than 206, and the accepted head of a [`SendOutcome::Partial`]).
    pub delivered: Vec<raceway_proto::EventId>,
}

impl Sim {
    pub fn new(config: ExportConfig) -> Self {
        let cap = config.max_body_bytes;
        Self {
            queue: RecordQueue::from_config(&config),
            exporter: Exporter::new(config, Instant::ZERO),
            now: Instant::ZERO,
            buf: Vec::new(),
            cap,
            delivered: Vec::new(),
        }
    }

    pub fn record(&mut self, events: Vec<Event>) -> usize {
        let mut wakes = 0;
        for ev in events {
            if let raceway_proto::export::PushOutcome::Accepted { wake: true } = self.queue.push(ev) {
                wakes += 1;
            }
        }
        wakes
    }

    pub fn advance(&mut self, d: Duration) {
        self.now = self.now.saturating_add(d);
    }

    pub fn set(&mut self, t: Instant) {
        assert!(t >= self.now);
        self.now = t;
    }

    /// Step 2 of the calling order: move what the exporter wants from the queue.
    pub fn drain(&mut self) -> usize {
        let n = self.exporter.poll_drain(self.now, self.queue.len());
        if n > 0 {
            let mut v = Vec::new();
            assert_eq!(self.queue.drain(n, &mut v), n);
            self.exporter.handle_events(v, self.now);
        }
        n
    }

    /// Step 3: the next body, checked against the cap and decoded.
    pub fn transmit(&mut self) -> Option<(Transmit, Body)> {
        let t = self.exporter.poll_transmit(self.now, &mut self.buf)?;
        assert_eq!(t.bytes, self.buf.len());
        assert!(
            self.buf.len() <= self.cap,
            "body of {} bytes over the cap {}",
            self.buf.len(),
            self.cap
        );
        let body: Body = serde_json::from_slice(&self.buf).expect("body decodes");
        assert_eq!(body.events.len(), t.events);
        Some((t, body))
    }

    /// Drain, transmit, answer with `outcome`; returns the number of events sent.
    pub fn round(&mut self, outcome: SendOutcome) -> Option<usize> {
        self.drain();
        let (t, body) = self.transmit()?;
        match outcome {
            // A bare 206 says nothing about which events the server took.
            SendOutcome::Status { status: 206, .. } => {}
            SendOutcome::Status {
                status: 200..=299, ..
            } => self.delivered.extend(body.events.iter().map(|e| e.id)),
            // The head the server took, when the counts fit the body.
            SendOutcome::Partial { accepted, dropped } if accepted + dropped == t.events => {
                self.delivered
                    .extend(body.events[..accepted].iter().map(|e| e.id));
            }
            _ => {}
        }
        self.exporter.handle_outcome(t.id, outcome, self.now);
        Some(t.events)
    }

    /// Runs rounds answered 200 until nothing is due; returns the bodies sent.
    pub fn deliver_all(&mut self) -> usize {
        let mut bodies = 0;
        while self.round(SendOutcome::status(200)).is_some() {
            bodies += 1;
        }
        bodies
    }

    /// Waits until the exporter's timeout (asserting it is in the future) .
    pub fn sleep_until_timeout(&mut self) -> Instant {
        let t = self.exporter.poll_timeout().expect("a timeout");
        if t > self.now {
            self.now = t;
        }
        t
    }
}

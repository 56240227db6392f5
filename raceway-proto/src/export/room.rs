//! Pacing to the server's room: an estimate of how many events the server can take now.
//!
//! The real server (0.1.0) puts each event of a body into a bounded capture buffer with a
//! non-blocking send, while its engine takes `batch_size` events out every
//! `flush_interval_ms` (WIRE.md, "Measured on the real server"). When the buffer is full it
//! drops the events that do not fit and answers `206`. Under load its engine frees room
//! while a body is being taken in, so the events it dropped are not always the tail of the
//! body: they cannot be resent exactly. The only way to deliver every event exactly once is
//! never to fill the buffer. This estimate is a token bucket the size of the buffer, filled
//! at the server's analysis rate, both with a tenth left as margin (the engine's own work
//! slows its rate: 970 events/s were measured with the default 1,000). A `206` empties it
//! and slows its rate by a quarter; every body taken whole speeds it up again by 1/32 of
//! the configured rate.
//!
//! Bodies are bounded too. The first holds at most [`FIRST_BODY_EVENTS`], and the bound
//! doubles with each body taken whole, up to the estimated buffer: a server whose buffer
//! is smaller than configured then overflows by a few events, not by a whole large batch
//! (and a `206`'s dropped events cannot always be resent exactly). A `206` bounds bodies
//! by the room that body found; the bound grows back (by an eighth a body) only after
//! [`PROBE_AFTER`] bodies in a row were taken whole, so such a server is probed every so
//! often, not every other body.

use core::time::Duration;

use crate::time::Instant;

/// What the server can take; see [`ExportConfig::server_capacity`](super::ExportConfig).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerCapacity {
    /// Events the server's capture buffer holds (its `[engine] buffer_size`).
    pub buffer_events: u32,
    /// Events a second the server takes out of that buffer (its `batch_size` per
    /// `flush_interval_ms`).
    pub events_per_sec: u32,
}

impl ServerCapacity {
    /// The real Raceway server's defaults: a buffer of 10,000 events, 100 events taken
    /// every 100 ms.
    pub const RACEWAY_DEFAULT: Self = Self {
        buffer_events: 10_000,
        events_per_sec: 1_000,
    };
}

/// Milli-events: the bucket counts thousandths of an event, so slow rates still refill.
const MILLI: u64 = 1000;

/// The most events the first body holds (see the module docs).
pub(crate) const FIRST_BODY_EVENTS: u64 = 512;

/// Bodies taken whole in a row, after a `206`, before the body size bound grows again.
pub(crate) const PROBE_AFTER: u32 = 16;

/// The token bucket (see the module docs).
#[derive(Debug, Clone)]
pub(crate) struct Room {
    /// Most milli-events the bucket holds, as estimated now.
    cap: u64,
    /// The configured buffer, less the margin.
    max_cap: u64,
    /// Milli-events the server is estimated to have room for at `last`.
    tokens: u64,
    /// Milli-events a second, as estimated now.
    rate: u64,
    /// The configured rate, less the margin.
    max_rate: u64,
    /// The estimate never goes below this.
    min_rate: u64,
    last: Instant,
    /// Bodies taken whole since the last `206` (saturating).
    whole_in_a_row: u32,
    /// Most milli-events in one body: [`FIRST_BODY_EVENTS`] at first, never above `cap`.
    body_cap: u64,
    /// True once the server answered `206`: the bound then grows slowly.
    learnt: bool,
}

impl Room {
    /// A bucket for `capacity`, full at `now` (the server is assumed empty at first).
    pub(crate) fn new(capacity: ServerCapacity, now: Instant) -> Self {
        let cap = (u64::from(capacity.buffer_events.max(1)) * MILLI * 9 / 10).max(MILLI);
        let max_rate = (u64::from(capacity.events_per_sec.max(1)) * MILLI * 9 / 10).max(MILLI);
        Self {
            cap,
            max_cap: cap,
            tokens: cap,
            rate: max_rate,
            max_rate,
            min_rate: (max_rate / 64).max(MILLI),
            last: now,
            whole_in_a_row: 0,
            body_cap: cap.min(FIRST_BODY_EVENTS * MILLI),
            learnt: false,
        }
    }

    fn refill(&mut self, now: Instant) {
        let dt = self.last_elapsed(now);
        if dt == 0 {
            return;
        }
        let add = u128::from(dt) * u128::from(self.rate) / 1_000_000_000;
        let add = u64::try_from(add).unwrap_or(u64::MAX);
        self.tokens = self.tokens.saturating_add(add).min(self.cap);
        self.last = now;
    }

    fn last_elapsed(&self, now: Instant) -> u64 {
        u64::try_from(now.saturating_duration_since(self.last).as_nanos()).unwrap_or(u64::MAX)
    }

    /// The most events one body may hold now (at most the whole estimated buffer).
    pub(crate) fn max_body_events(&self) -> usize {
        usize::try_from(self.body_cap.min(self.cap) / MILLI)
            .unwrap_or(usize::MAX)
            .max(1)
    }

    /// Whole events the server has room for at `now`.
    pub(crate) fn available(&mut self, now: Instant) -> usize {
        self.refill(now);
        usize::try_from(self.tokens / MILLI).unwrap_or(usize::MAX)
    }

    /// When there will be room for `events` (at most [`Self::max_body_events`]); a time
    /// already past when there is room now.
    pub(crate) fn ready_at(&self, events: usize) -> Instant {
        let need = (events.min(self.max_body_events()) as u64).saturating_mul(MILLI);
        let missing = need.saturating_sub(self.tokens);
        if missing == 0 {
            return self.last;
        }
        let nanos = u128::from(missing) * 1_000_000_000 / u128::from(self.rate) + 1;
        self.last
            .saturating_add(Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX)))
    }

    /// `events` were sent.
    pub(crate) fn take(&mut self, events: usize, now: Instant) {
        self.refill(now);
        self.tokens = self.tokens.saturating_sub((events as u64).saturating_mul(MILLI));
    }

    /// The server said its buffer was full after taking `accepted` events of a body: it
    /// has no room now, it drains more slowly than estimated, and no body should be larger
    /// than the room this one found (half the estimate when it found none).
    pub(crate) fn full(&mut self, accepted: usize, now: Instant) {
        self.refill(now);
        self.tokens = 0;
        self.whole_in_a_row = 0;
        self.learnt = true;
        self.rate = (self.rate / 4 * 3).max(self.min_rate);
        let found = (accepted as u64).saturating_mul(MILLI);
        let bound = if found == 0 { self.cap / 2 } else { found };
        self.cap = self.cap.min(bound).max(MILLI);
        self.body_cap = self.body_cap.min(self.cap);
    }

    /// A body was taken whole: the estimates may creep back up to the configured ones.
    pub(crate) fn taken_whole(&mut self, now: Instant) {
        self.refill(now);
        self.rate = self.rate.saturating_add(self.max_rate / 32).min(self.max_rate);
        self.whole_in_a_row = self.whole_in_a_row.saturating_add(1);
        if self.whole_in_a_row >= PROBE_AFTER {
            self.cap = self
                .cap
                .saturating_add((self.cap / 8).max(MILLI))
                .min(self.max_cap);
        }
        self.body_cap = if self.learnt {
            self.cap
        } else {
            self.body_cap.saturating_mul(2).min(self.cap)
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: u64) -> Instant {
        Instant::from_nanos(ms * 1_000_000)
    }

    #[test]
    fn starts_full_less_the_margin_and_refills_at_the_rate() {
        let mut r = Room::new(ServerCapacity::RACEWAY_DEFAULT, at(0));
        assert_eq!(r.available(at(0)), 9_000);
        r.take(9_000, at(0));
        assert_eq!(r.available(at(0)), 0);
        assert_eq!(r.available(at(1_000)), 900);
        assert_eq!(
            r.ready_at(1_800),
            at(1_000),
            "the first body holds at most FIRST_BODY_EVENTS: there is room for it"
        );
        for _ in 0..4 {
            r.taken_whole(at(1_000));
        }
        assert_eq!(
            r.ready_at(1_800),
            at(2_000).saturating_add(Duration::from_nanos(1))
        );
        assert_eq!(r.available(at(100_000)), 9_000, "never above the buffer");
    }

    #[test]
    fn bodies_start_small_and_double_while_taken_whole() {
        let mut r = Room::new(ServerCapacity::RACEWAY_DEFAULT, at(0));
        assert_eq!(r.available(at(0)), 9_000, "the bucket is not bounded by the body");
        let mut sizes = alloc::vec::Vec::new();
        for _ in 0..6 {
            sizes.push(r.max_body_events());
            r.taken_whole(at(0));
        }
        assert_eq!(sizes, [512, 1_024, 2_048, 4_096, 8_192, 9_000]);
    }

    #[test]
    fn a_full_server_empties_the_bucket_and_slows_the_rate() {
        let mut r = Room::new(ServerCapacity::RACEWAY_DEFAULT, at(0));
        for _ in 0..5 {
            r.taken_whole(at(0));
        }
        assert_eq!(r.max_body_events(), 9_000);
        r.full(8_000, at(0));
        assert_eq!(r.available(at(0)), 0);
        assert_eq!(r.available(at(1_000)), 675);
        assert_eq!(r.max_body_events(), 8_000, "what the body found room for");
        r.full(0, at(1_000));
        assert_eq!(r.max_body_events(), 4_000, "halved when it found none");
        r.full(10, at(1_000));
        assert_eq!(r.max_body_events(), 10);
        for _ in 1..PROBE_AFTER {
            r.taken_whole(at(1_000));
        }
        assert_eq!(
            r.max_body_events(),
            10,
            "not probed before PROBE_AFTER whole bodies"
        );
        r.taken_whole(at(1_000));
        assert_eq!(r.max_body_events(), 11, "then probed");
        for _ in 0..1_000 {
            r.taken_whole(at(1_000));
        }
        assert_eq!(r.max_body_events(), 9_000, "back to the configured buffer");
        r.take(10_000, at(1_000));
        assert_eq!(r.available(at(2_000)), 900, "back to the configured rate");
    }

    #[test]
    fn tiny_capacities_still_let_one_event_through() {
        let mut r = Room::new(
            ServerCapacity {
                buffer_events: 1,
                events_per_sec: 1,
            },
            at(0),
        );
        assert_eq!(r.max_body_events(), 1);
        assert_eq!(r.available(at(0)), 1);
        r.take(1, at(0));
        for _ in 0..100 {
            r.full(0, at(0));
        }
        assert!(r.ready_at(1) <= at(1_000).saturating_add(Duration::from_nanos(1)));
    }
}

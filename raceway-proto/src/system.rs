//! Defaults for programs with `std`: a wall clock and a fast id generator.

use core::cell::Cell;
use core::hash::{BuildHasher, Hasher};
use std::collections::hash_map::RandomState;
use std::time::{Instant as StdInstant, SystemTime, UNIX_EPOCH};

use crate::ids::{splitmix64, IdGenerator};
use crate::time::{Timestamp, WallClock};

/// Wall-clock time read as "system time at start + monotonic time since".
///
/// Timestamps from it never go backwards, even when the system clock is stepped, which the
/// server's per-flow ordering (WIRE.md rule 4) needs. It reads the monotonic clock (a vDSO
/// call on Linux, no system call).
#[derive(Debug, Clone, Copy)]
pub struct SystemClock {
    base_micros: u64,
    origin: StdInstant,
}

impl SystemClock {
    /// Anchors the clock to the system time now.
    pub fn new() -> Self {
        let base_micros = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
            .unwrap_or(0);
        Self {
            base_micros,
            origin: StdInstant::now(),
        }
    }

    /// Monotonic time since this clock was made, for the export state machine.
    pub fn instant(&self) -> crate::time::Instant {
        crate::time::Instant::from_nanos(u64::try_from(self.origin.elapsed().as_nanos()).unwrap_or(u64::MAX))
    }
}

impl Default for SystemClock {
    fn default() -> Self {
        Self::new()
    }
}

impl WallClock for SystemClock {
    fn now(&self) -> Timestamp {
        // Seconds and microseconds apart: `as_micros` is a 128-bit division.
        let d = self.origin.elapsed();
        let us = d
            .as_secs()
            .saturating_mul(1_000_000)
            .saturating_add(u64::from(d.subsec_micros()));
        Timestamp::from_unix_micros(self.base_micros.saturating_add(us))
    }
}

std::thread_local! {
    static ID_STATE: Cell<u64> = const { Cell::new(0) };
}

/// Random ids without a system call per id: each thread seeds a SplitMix64 sequence once
/// from the OS-seeded `RandomState`, then mixes a counter.
#[derive(Debug, Default, Clone, Copy)]
pub struct FastIds;

fn next_u64() -> u64 {
    ID_STATE.with(|s| {
        let mut v = s.get();
        if v == 0 {
            let mut h = RandomState::new().build_hasher();
            h.write_u64(0x5241_4345_5741_5921);
            v = h.finish() | 1;
        }
        v = v.wrapping_add(0x9e37_79b9_7f4a_7c15);
        s.set(v);
        splitmix64(v)
    })
}

impl IdGenerator for FastIds {
    fn next_u128(&self) -> u128 {
        (u128::from(next_u64()) << 64) | u128::from(next_u64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_differ_across_threads() {
        let a = FastIds.event_id();
        let b = std::thread::spawn(|| FastIds.event_id()).join().unwrap();
        assert_ne!(a, b);
        assert_ne!(a, FastIds.event_id());
    }

    #[test]
    fn clock_is_monotonic_and_recent() {
        let c = SystemClock::new();
        let a = c.now();
        let b = c.now();
        assert!(b >= a);
        assert!(a.unix_micros() > 1_700_000_000_000_000);
    }
}

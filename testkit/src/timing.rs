//! Timing for the benchmarks that must never measure a full queue: the calls are timed in
//! chunks that fit the queue, and the queue is emptied (flushed or drained) between chunks,
//! outside the timed part.

use std::time::{Duration, Instant};

/// Calls `op` `iters` times in chunks of `chunk`, running `between` after each chunk, and
/// returns the time spent in `op` only (for criterion's `iter_custom`).
pub fn in_chunks(iters: u64, chunk: u64, mut op: impl FnMut(), mut between: impl FnMut()) -> Duration {
    let chunk = chunk.max(1);
    let mut timed = Duration::ZERO;
    let mut left = iters;
    while left > 0 {
        let n = left.min(chunk);
        let start = Instant::now();
        for _ in 0..n {
            op();
        }
        timed += start.elapsed();
        left -= n;
        between();
    }
    timed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_call_is_made_and_the_gaps_come_after_each_chunk() {
        let (mut calls, mut gaps) = (0, Vec::new());
        let calls_ref = std::cell::Cell::new(0u64);
        let _ = in_chunks(
            10,
            4,
            || calls_ref.set(calls_ref.get() + 1),
            || gaps.push(calls_ref.get()),
        );
        calls += calls_ref.get();
        assert_eq!(calls, 10);
        assert_eq!(gaps, vec![4, 8, 10]);
    }
}

//! Hostile collectors against the blocking client: one that announces a 10 GB
//! `Content-Length` and sends a few bytes, one that never answers, one that asks to wait
//! a billion seconds. For each: bounded time and memory, a clear error or counted drops,
//! nothing lost once it behaves, no panic.

use std::time::Duration;

use raceway_blocking::{Config, FlushError, RacewayClient, Stats};

fn record(client: &RacewayClient, n: u64) {
    let _flow = client.start_trace();
    for i in 0..n {
        client.track_state_change("hostile", None::<u64>, i, "Write");
    }
}

fn flush(client: &RacewayClient, timeout: Duration) -> Result<(), FlushError> {
    client.flush(timeout)
}

fn shutdown(client: &RacewayClient, timeout: Duration) -> Result<(), FlushError> {
    client.shutdown_timeout(timeout)
}

#[path = "../../../testkit/hostile/collector_cases.rs"]
mod cases;

//! Soak: `RACEWAY_SOAK_EVENTS` (default 1,000,000) events through the async-std client to
//! a real local collector (in a child process) that restarts twice and answers 429s and
//! 503s; every event arrives exactly once or is counted as dropped (queue full), and peak
//! RSS stays within the configuration's bound. See `testkit/soak/harness.rs`.
//!
//! `cargo test -p raceway-rt-async-std --release --test it -- --ignored --nocapture soak::`
//!
//! The harness's `collector_child` test is at the root of the binary (`main.rs`): the
//! harness re-runs this binary with `collector_child --exact`.

use crate::harness;

use std::time::Duration;

use raceway_rt_async_std::RacewayClient;

#[test]
#[ignore = "soak: a million events by default; set RACEWAY_SOAK_EVENTS"]
fn soak_async_std() {
    let n = harness::events();
    let mut collector = harness::ChildCollector::spawn();
    let config = harness::config("soak-async-std", &collector.url);
    let client = RacewayClient::from_config(config.clone()).expect("valid config");
    let mut soak = harness::Soak::new(&mut collector, n, &config);
    async_std::task::block_on(client.in_new_trace(async {
        for i in 0..n {
            client.track_state_change("soak", None::<u64>, i, "Write");
            soak.tick(i, || client.queued());
        }
    }));
    let flushed = client.flush_blocking(Duration::from_secs(120));
    let shut = client.shutdown_timeout(Duration::from_secs(30));
    println!("flush {flushed:?} shutdown {shut:?} pacing waits {}", soak.waits);
    let stats = client.stats();
    soak.check(
        "raceway-rt-async-std",
        &config,
        stats,
        flushed.is_ok() && shut.is_ok(),
    );
}

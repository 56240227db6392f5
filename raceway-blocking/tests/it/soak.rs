//! Soak: `RACEWAY_SOAK_EVENTS` (default 1,000,000) events through the blocking client to
//! a real local collector (in a child process) that restarts twice and answers 429s and
//! 503s; every event arrives exactly once or is counted as dropped (queue full), and peak
//! RSS stays within the configuration's bound. See `testkit/soak/harness.rs`.
//!
//! `cargo test -p raceway-blocking --release --test it -- --ignored --nocapture soak::`
//!
//! The harness's `collector_child` test is at the root of the binary (`main.rs`): the
//! harness re-runs this binary with `collector_child --exact`.

use crate::harness;

use std::time::Duration;

use raceway_blocking::RacewayClient;

#[test]
#[ignore = "soak: a million events by default; set RACEWAY_SOAK_EVENTS"]
fn soak_blocking() {
    let n = harness::events();
    let mut collector = harness::ChildCollector::spawn();
    let config = harness::config("soak-blocking", &collector.url);
    let client = RacewayClient::from_config(config.clone()).expect("valid config");
    let mut soak = harness::Soak::new(&mut collector, n, &config);
    {
        let _flow = client.start_trace();
        for i in 0..n {
            client.track_state_change("soak", None::<u64>, i, "Write");
            soak.tick(i, || client.queued());
        }
    }
    let flushed = client.flush(Duration::from_secs(120));
    let shut = client.shutdown_timeout(Duration::from_secs(30));
    println!("flush {flushed:?} shutdown {shut:?} pacing waits {}", soak.waits);
    let stats = client.stats();
    soak.check(
        "raceway-blocking",
        &config,
        stats,
        flushed.is_ok() && shut.is_ok(),
    );
}

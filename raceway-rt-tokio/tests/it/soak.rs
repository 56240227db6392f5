//! Soak: `RACEWAY_SOAK_EVENTS` (default 1,000,000) events through the tokio client to a
//! real local collector (in a child process) that restarts twice and answers 429s and
//! 503s; every event arrives exactly once or is counted as dropped (queue full), and peak
//! RSS stays within the configuration's bound. See `testkit/soak/harness.rs`.
//!
//! `cargo test -p raceway-rt-tokio --release --test it -- --ignored --nocapture soak::`
//!
//! The harness's `collector_child` test is at the root of the binary (`main.rs`): the
//! harness re-runs this binary with `collector_child --exact`.

use crate::harness;

use std::time::Duration;

use raceway_rt_tokio::RacewayClient;

#[test]
#[ignore = "soak: a million events by default; set RACEWAY_SOAK_EVENTS"]
fn soak_tokio() {
    let n = harness::events();
    let mut collector = harness::ChildCollector::spawn();
    let config = harness::config("soak-tokio", &collector.url);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    // Made inside the runtime, as a service would.
    let client = rt.block_on(async { RacewayClient::from_config(config.clone()).expect("valid config") });
    let mut soak = harness::Soak::new(&mut collector, n, &config);
    rt.block_on(client.in_new_trace(async {
        for i in 0..n {
            client.track_state_change("soak", None::<u64>, i, "Write");
            // Pacing sleeps the thread that drives this future (block_on's), never a worker.
            soak.tick(i, || client.queued());
        }
    }));
    let flushed = client.flush_blocking(Duration::from_secs(120));
    let shut = client.shutdown_timeout(Duration::from_secs(30));
    println!("flush {flushed:?} shutdown {shut:?} pacing waits {}", soak.waits);
    let stats = client.stats();
    soak.check(
        "raceway-rt-tokio",
        &config,
        stats,
        flushed.is_ok() && shut.is_ok(),
    );
    drop(rt);
}

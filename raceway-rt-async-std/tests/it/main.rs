//! The integration tests of raceway-rt-async-std, in one test binary (one link): a module
//! per behaviour and the soak harness's collector child.

#[path = "../../../testkit/soak/harness.rs"]
mod harness;

mod channels;
mod executors;
mod export;
mod hostile_collector;
#[cfg(feature = "hyper")]
mod hyper_server;
mod races;
mod real_server;
mod real_server_auth;
mod secrets;
mod serve;
mod soak;
mod tls;
mod tracked;

/// The soak test's collector, in a child process: at the root of the binary, because the
/// harness re-runs this binary with `collector_child --exact` (see `soak`).
#[test]
#[ignore = "the collector child; a no-op unless started by the soak test"]
fn collector_child() {
    harness::collector_child_main();
}

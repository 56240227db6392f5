//! The integration tests of raceway-rt-tokio, in one test binary (one link): a module per
//! behaviour, the helpers they share, and the soak harness's collector child.

mod common;
#[path = "../../../testkit/soak/harness.rs"]
mod harness;

mod auth;
mod body_limit;
mod channels;
mod collector_down;
mod hanging;
mod hostile_collector;
mod memory;
mod never_panics;
mod propagation;
mod races_distributed;
mod races_local;
mod readme_snippets;
mod real_server;
mod real_server_auth;
mod reqwest_real_server;
mod retries;
mod sampling;
mod secrets;
mod soak;
mod tls;
mod tracing_bridge;
mod tracked;

/// The soak test's collector, in a child process: at the root of the binary, because the
/// harness re-runs this binary with `collector_child --exact` (see `soak`).
#[test]
#[ignore = "the collector child; a no-op unless started by the soak test"]
fn collector_child() {
    harness::collector_child_main();
}

//! The integration tests of raceway-blocking, in one test binary (one link): a module per
//! behaviour, the helpers they share, and the soak harness's collector child.

mod common;
#[path = "../../../testkit/soak/harness.rs"]
mod harness;

mod auth_headers;
mod channels;
mod context_guards;
mod exporter_collector_down;
mod exporter_rate_limited;
mod exporter_server_error;
mod exporter_slow_collector;
mod hostile_collector;
mod ledger_example;
mod lifecycle;
mod panicking_value;
mod real_server;
mod real_server_auth;
mod s1_unlocked_balance;
mod s3_locked_balance;
mod s4_program_order;
mod s8_atomic_counter;
mod secrets;
mod shutdown_hanging_collector;
mod soak;
mod spawn_join;
mod testing_api;
mod tls;
mod tracing_bridge;
mod tracked_state;

/// The soak test's collector, in a child process: at the root of the binary, because the
/// harness re-runs this binary with `collector_child --exact` (see `soak`).
#[test]
#[ignore = "the collector child; a no-op unless started by the soak test"]
fn collector_child() {
    harness::collector_child_main();
}

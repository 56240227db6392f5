//! The background-task patterns of the published SDK's README, with this SDK's helpers.
//!
//! `cargo run -p raceway-examples --bin background`

use std::sync::Arc;

use raceway_examples::{background, report};
use raceway_rt_tokio::RacewayClient;

#[tokio::main]
async fn main() {
    let raceway = Arc::new(RacewayClient::local("jobs"));
    let races = background::run(raceway.clone()).await;
    print!("{}", report::render(&races));
    raceway.shutdown();

    // Pattern 1 again, with tracked channels instead of FlowEnd plumbing.
    let raceway = Arc::new(RacewayClient::local("jobs"));
    let races = background::tracked::run(raceway.clone()).await;
    print!("{}", report::render(&races));
    raceway.shutdown();
}

//! The main demo: a banking service with a racy and a safe transfer handler.
//!
//! `cargo run -p raceway-examples --bin bank`
//!
//! With no `RACEWAY_ENDPOINT`, the built-in local analyser reports the races here. With
//! `RACEWAY_ENDPOINT` (and optionally `RACEWAY_API_KEY`) set, events go to that Raceway
//! server instead. Exit code: 0 when no race was found (or events were sent to a
//! server), 1 when races were found, 2 on an error.

use std::process::ExitCode;
use std::sync::Arc;

use raceway_examples::{bank, report};
use raceway_rt_tokio::{Config, RacewayClient};

#[tokio::main]
async fn main() -> ExitCode {
    let config = match Config::from_env() {
        Ok(mut c) => {
            if c.service_name == "unknown-service" {
                c.service_name = "bank".into();
            }
            c
        }
        Err(e) => {
            eprintln!("raceway configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    let raceway = match RacewayClient::from_config(config) {
        Ok(c) => Arc::new(c),
        Err(e) => {
            eprintln!("raceway configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    match &raceway.config().endpoint {
        Some(e) => println!("Raceway: sending events to {e}"),
        None => println!("Raceway: no RACEWAY_ENDPOINT set, using the built-in local analyser"),
    }
    let outcome = match bank::run(raceway.clone(), 4).await {
        Ok(o) => o,
        Err(e) => {
            eprintln!("demo failed: {e}");
            return ExitCode::from(2);
        }
    };
    let expected = 1000 - outcome.transfers as i64 * 100;
    println!();
    for (name, handler, balance) in [
        ("alice", "racy", outcome.balances.0),
        ("bob", "safe", outcome.balances.1),
    ] {
        let verdict = if balance == expected {
            "correct".to_string()
        } else {
            format!(
                "wrong: {} appeared out of thin air (lost updates)",
                balance - expected
            )
        };
        println!("{name:<5} ({handler} handler): balance {balance}, expected {expected}: {verdict}");
    }
    println!();
    let code = if let Some(endpoint) = &outcome.endpoint {
        let stats = raceway.stats();
        println!(
            "sent {} events to {endpoint} ({} dropped); races: {endpoint}/api/analyze/global",
            stats.export.sent,
            stats.export.dropped()
        );
        ExitCode::SUCCESS
    } else {
        print!("{}", report::render(&outcome.report));
        if outcome.report.is_empty() {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        }
    };
    raceway.shutdown();
    code
}

//! A gateway on tokio/axum calls an inventory service on async-std and a payments service
//! on blocking threads, propagating `traceparent`, `tracestate` and `raceway-clock`. All
//! three share one trace; the report shows the cross-service race of S5b and no false race
//! for S5a.
//!
//! `cargo run -p raceway-examples --bin distributed`
//!
//! With no `RACEWAY_ENDPOINT`, one local analyser fed by all three services reports the
//! races. With `RACEWAY_ENDPOINT` (and optionally `RACEWAY_API_KEY`) set, every service
//! also sends its events there. Exit code: 0 when the report is the truth (one race on
//! `stock`, none on `order.total`), 1 when it is not, 2 on an error.

use std::process::ExitCode;
use std::time::Duration;

use raceway_examples::distributed::{self, Services, ORDER_TOTAL, STOCK};
use raceway_examples::report;

/// How long the exporters get to send what is left (everything was flushed already).
const SHUTDOWN: Duration = Duration::from_secs(2);

#[tokio::main]
async fn main() -> ExitCode {
    let services = match Services::from_env() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("raceway configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    match services.endpoint() {
        Some(e) => {
            println!("Raceway: each service sends its events to {e}, and one local analyser sees all three")
        }
        None => println!("Raceway: no RACEWAY_ENDPOINT set, one local analyser sees all three services"),
    }
    let outcome = match distributed::run(&services).await {
        Ok(o) => o,
        Err(e) => {
            eprintln!("demo failed: {e}");
            services.shutdown(SHUTDOWN).await;
            return ExitCode::from(2);
        }
    };
    println!(
        "order.total after payments: {}; stock left: {} (started at 10, two reservations of 1: 8 would be right)",
        outcome.order_total, outcome.stock_left
    );
    println!();
    print!("{}", report::render(&outcome.report));
    println!();
    println!(
        "S5a (gateway → payments → gateway on {ORDER_TOTAL}): {} races (expected 0)",
        outcome.s5a_races()
    );
    println!(
        "S5b (two parallel inventory reservations on {STOCK}): {} races (expected 1)",
        outcome.s5b_races().len()
    );
    let same = |t: Option<raceway_proto::TraceId>| {
        if t == Some(outcome.trace_id) {
            "same trace"
        } else {
            "ANOTHER TRACE"
        }
    };
    println!(
        "trace {} (continued from the upstream's traceparent: {})",
        outcome.trace_id,
        if outcome.upstream_trace_id == outcome.trace_id {
            "yes"
        } else {
            "no"
        }
    );
    println!(
        "  gateway: {} events; payments: {} events, {}; inventory: {} events, {} and {}",
        outcome.recorded[0],
        outcome.recorded[2],
        same(outcome.payments_trace_id),
        outcome.recorded[1],
        same(outcome.inventory_trace_ids.first().copied().flatten()),
        same(outcome.inventory_trace_ids.get(1).copied().flatten()),
    );
    let states: Vec<&str> = outcome
        .tracestates
        .iter()
        .map(|t| t.as_deref().unwrap_or("(none)"))
        .collect();
    println!("  tracestate as payments and the two inventory requests received it: {states:?}");
    if let Some(endpoint) = services.endpoint() {
        let endpoint = endpoint.trim_end_matches('/');
        println!("races on the server: {endpoint}/api/analyze/global");
        println!("the trace: {endpoint}/api/traces/{}", outcome.trace_id);
    }
    let code = if outcome.matches_truth() {
        println!("result: the report is the truth");
        ExitCode::SUCCESS
    } else {
        println!("result: the report is NOT the truth");
        ExitCode::from(1)
    };
    services.shutdown(SHUTDOWN).await;
    code
}

//! The main demo: a banking service on axum, instrumented with `raceway-rt-tokio`.
//!
//! `POST /transfer/racy` reads the balance, awaits (a slow fraud check), and writes the new balance,
//! with no lock: concurrent transfers lose money. `POST /transfer/safe` does the same under a tracked
//! lock. Balances are tracked state (`Tracked<i64>`): no handler calls `track_state_change`. The demo
//! serves both on a free local port, fires concurrent transfers at each, and prints what Raceway found.

use std::collections::HashMap;
use std::future::IntoFuture;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use raceway_proto::analysis::RaceReport;
use raceway_rt_tokio::{AsyncTrackedMutex, RacewayClient, Tracked};
use serde::Deserialize;

use crate::http_client;

/// The accounts, as a database without transactions would keep them: each balance is
/// tracked state named `<account>.balance`; every read and write of it is one access.
pub struct Ledger {
    balances: HashMap<String, Tracked<i64>>,
}

impl Ledger {
    fn open(raceway: &Arc<RacewayClient>, accounts: &[(&str, i64)]) -> Self {
        let balances = accounts
            .iter()
            .map(|&(name, opening)| {
                let balance = Tracked::new(opening, raceway.clone(), format!("{name}.balance"));
                (name.to_string(), balance)
            })
            .collect();
        Self { balances }
    }
    fn account(&self, name: &str) -> Result<&Tracked<i64>, StatusCode> {
        self.balances.get(name).ok_or(StatusCode::NOT_FOUND)
    }
}

/// The service's state.
pub struct Bank {
    raceway: Arc<RacewayClient>,
    ledger: Ledger,
    /// The lock the safe handler holds around its read-modify-write.
    account_lock: AsyncTrackedMutex<()>,
}

#[derive(Deserialize)]
struct Transfer {
    from: String,
    amount: i64,
}

async fn fraud_check() {
    tokio::time::sleep(Duration::from_millis(30)).await;
}

type Answer = Result<Json<serde_json::Value>, StatusCode>;

async fn transfer_racy(State(bank): State<Arc<Bank>>, Json(t): Json<Transfer>) -> Answer {
    let account = bank.ledger.account(&t.from)?;
    let balance = account.get();
    fraud_check().await;
    // Another transfer may have written the balance meanwhile: this write loses it.
    account.set(balance - t.amount);
    Ok(Json(serde_json::json!({ "balance": balance - t.amount })))
}

async fn transfer_safe(State(bank): State<Arc<Bank>>, Json(t): Json<Transfer>) -> Answer {
    let account = bank.ledger.account(&t.from)?;
    let _guard = bank.account_lock.lock().await;
    let balance = account.get();
    fraud_check().await;
    account.set(balance - t.amount);
    Ok(Json(serde_json::json!({ "balance": balance - t.amount })))
}

/// The service's routes, with the Raceway middleware (the published SDK's README line).
pub fn app(bank: Arc<Bank>) -> Router {
    Router::new()
        .route("/transfer/racy", post(transfer_racy))
        .route("/transfer/safe", post(transfer_safe))
        .layer(axum::middleware::from_fn_with_state(
            bank.raceway.clone(),
            RacewayClient::middleware,
        ))
        .with_state(bank)
}

/// What a run of the demo found.
#[derive(Debug)]
pub struct Outcome {
    /// The race report (empty when events went to a server instead).
    pub report: RaceReport,
    /// Final balances of alice (racy handler) and bob (safe handler), each started at 1000.
    pub balances: (i64, i64),
    /// Transfers fired at each handler.
    pub transfers: usize,
    /// Where events were sent, when not analysed locally.
    pub endpoint: Option<String>,
}

/// Runs the demo with `raceway`: serves the bank on 127.0.0.1, fires `transfers`
/// concurrent transfers of 100 at each handler, and returns what was found.
pub async fn run(
    raceway: Arc<RacewayClient>,
    transfers: usize,
) -> Result<Outcome, Box<dyn std::error::Error + Send + Sync>> {
    let bank = Arc::new(Bank {
        account_lock: AsyncTrackedMutex::new((), raceway.clone(), "accounts"),
        raceway: raceway.clone(),
        ledger: Ledger::open(&raceway, &[("alice", 1000), ("bob", 1000)]),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let server = tokio::spawn(axum::serve(listener, app(bank.clone())).into_future());
    println!("bank service listening on http://{addr}");

    let client = http_client::client();
    for (handler, account) in [("racy", "alice"), ("safe", "bob")] {
        println!("firing {transfers} concurrent transfers of 100 from {account} at /transfer/{handler} ...");
        let mut calls = Vec::new();
        for _ in 0..transfers {
            let client = client.clone();
            let url = format!("http://{addr}/transfer/{handler}");
            let body = serde_json::json!({ "from": account, "amount": 100 });
            calls.push(tokio::spawn(async move {
                http_client::post_json(&client, &url, &http::HeaderMap::new(), &body).await
            }));
        }
        for c in calls {
            let (status, _, _) = c.await??;
            if status != 200 {
                return Err(format!("transfer answered {status}").into());
            }
        }
    }
    // Read for the summary, outside any request flow: not recorded (counted as outside a flow).
    let balance = |name| bank.ledger.account(name).map(|a| a.get()).unwrap_or(0);
    let balances = (balance("alice"), balance("bob"));
    server.abort();
    let endpoint = raceway.config().endpoint.clone();
    if endpoint.is_some() {
        raceway
            .flush(Duration::from_secs(10))
            .await
            .map_err(|e| format!("flush: {e}"))?;
    }
    Ok(Outcome {
        report: raceway.races(),
        balances,
        transfers,
        endpoint,
    })
}

//! Worker threads race on a shared ledger, then do the same under a tracked lock.
//!
//! Each worker reads the balance, thinks for a moment, and writes it back: without a lock
//! that loses updates, and Raceway reports every pair of workers; with a `TrackedMutex`
//! held around the read and the write, it reports none.
//!
//! ```text
//! cargo run -p raceway-blocking --example ledger                      # local analysis
//! RACEWAY_ENDPOINT=http://localhost:8080 cargo run -p raceway-blocking --example ledger
//! ```

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use raceway_blocking::{RacewayClient, TrackedMutex};

/// Variable of the unlocked ledger.
pub const UNLOCKED: &str = "ledger.balance";
/// Variable of the locked ledger.
pub const LOCKED: &str = "ledger.locked_balance";

/// `workers` threads each withdraw 10 from a ledger of 1000 with no lock (read, sleep,
/// write). Returns the final balance (often not `1000 - 10 * workers`: lost updates).
pub fn unlocked_ledger(client: &RacewayClient, workers: usize) -> i64 {
    let balance = Arc::new(AtomicI64::new(1000));
    let threads: Vec<_> = (0..workers)
        .map(|_| {
            let (rw, balance) = (client.clone(), balance.clone());
            client.spawn(move || {
                let seen = balance.load(Ordering::SeqCst);
                rw.track_state_change(UNLOCKED, None::<i64>, seen, "Read");
                std::thread::sleep(Duration::from_millis(20));
                balance.store(seen - 10, Ordering::SeqCst);
                rw.track_state_change(UNLOCKED, Some(seen), seen - 10, "Write");
            })
        })
        .collect();
    for t in threads {
        let _ = t.join();
    }
    balance.load(Ordering::SeqCst)
}

/// The same withdrawals with a tracked mutex held around each read and write. Returns the
/// final balance (always `1000 - 10 * workers`).
pub fn locked_ledger(client: &Arc<RacewayClient>, workers: usize) -> i64 {
    let ledger = Arc::new(TrackedMutex::new(1000i64, client.clone(), "ledger-lock"));
    let threads: Vec<_> = (0..workers)
        .map(|_| {
            let (rw, ledger) = (client.clone(), ledger.clone());
            client.spawn(move || {
                let mut balance = ledger.lock("Mutex");
                let seen = *balance;
                rw.track_state_change(LOCKED, None::<i64>, seen, "Read");
                std::thread::sleep(Duration::from_millis(5));
                *balance = seen - 10;
                rw.track_state_change(LOCKED, Some(seen), seen - 10, "Write");
            })
        })
        .collect();
    for t in threads {
        let _ = t.join();
    }
    let balance = *ledger.lock("Mutex");
    balance
}

fn main() {
    let client = match RacewayClient::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("raceway: {e}; analysing locally instead");
            RacewayClient::local("ledger")
        }
    };
    let client = Arc::new(client);
    let workers = 4;
    let unlocked = unlocked_ledger(&client, workers);
    let locked = locked_ledger(&client, workers);
    println!("unlocked ledger: 1000 - {workers} x 10 = {unlocked} (lost updates when above 960)");
    println!("locked ledger:   1000 - {workers} x 10 = {locked}");

    if client.config().endpoint.is_some() {
        let sent = client.flush(Duration::from_secs(5));
        let stats = client.stats();
        println!(
            "sent {} events to {} ({:?}); see the server's race analysis",
            stats.export.sent,
            client.config().endpoint.as_deref().unwrap_or_default(),
            sent
        );
    }
    if client.races().events_observed() > 0 {
        println!("{}", client.races());
    }
    client.shutdown();
}

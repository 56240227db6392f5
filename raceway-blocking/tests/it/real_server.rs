//! RACES.md on the real Raceway server, with the threaded client: the scenarios that a
//! plain threaded program has (S1, S3, S4, S6, S8), written with the public API, exported
//! to a fresh real server each time, and the server's race report compared with the truth
//! column exactly. S8's atomic counter is left out of the comparison: the server lists
//! `AtomicRMW` pairs by design (RACES.md).
//!
//! Without the server binary every test prints one line and passes; under CI
//! (`RACEWAY_REQUIRE_SERVER=1`) it fails.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use raceway_blocking::{Config, RacewayClient, TrackedMutex};
use raceway_testkit::{RacePairs, RealServer};

const REPEAT: usize = 5;

fn client(server: &RealServer, service: &str) -> Arc<RacewayClient> {
    let mut config = Config::new(service);
    config.endpoint = Some(server.url());
    config.instance_id = Some("test".into());
    config.export.flush_interval = Duration::from_millis(50);
    Arc::new(RacewayClient::from_config(config).expect("config"))
}

fn verdict(server: &RealServer, client: &RacewayClient) -> RacePairs {
    client.flush(Duration::from_secs(10)).expect("flush");
    let s = client.stats();
    assert_eq!(s.export.dropped(), 0, "{s:?}");
    server.race_pairs_after(s.core.recorded)
}

#[test]
fn s1_four_threads_read_sleep_write_race_pairwise() {
    for _ in 0..REPEAT {
        let Some(server) = RealServer::start_default() else {
            return;
        };
        let rw = client(&server, "ledger");
        let balance = Arc::new(AtomicI64::new(100));
        let workers: Vec<_> = (0..4)
            .map(|_| {
                let (rw2, balance) = (rw.clone(), balance.clone());
                rw.spawn(move || {
                    let seen = balance.load(Ordering::SeqCst);
                    rw2.track_state_change("balance", None::<i64>, seen, "Read");
                    std::thread::sleep(Duration::from_millis(20));
                    balance.store(seen - 10, Ordering::SeqCst);
                    rw2.track_state_change("balance", Some(seen), seen - 10, "Write");
                })
            })
            .collect();
        // Not joined into the main flow before the verdict: the four threads race pairwise.
        for w in workers {
            w.join().expect("worker");
        }
        let pairs = verdict(&server, &rw);
        assert_eq!(pairs.count("balance"), 6, "{pairs}");
        assert_eq!(pairs.total(), 6, "{pairs}");
    }
}

#[test]
fn s3_threads_holding_one_tracked_lock_do_not_race() {
    for _ in 0..REPEAT {
        let Some(server) = RealServer::start_default() else {
            return;
        };
        let rw = client(&server, "ledger");
        let lock = Arc::new(TrackedMutex::new(100i64, rw.clone(), "balance-lock"));
        let workers: Vec<_> = (0..4)
            .map(|_| {
                let (rw2, lock) = (rw.clone(), lock.clone());
                rw.spawn(move || {
                    let mut guard = lock.lock("Mutex");
                    rw2.track_state_change("balance", None::<i64>, *guard, "Read");
                    *guard -= 10;
                    rw2.track_state_change("balance", Some(*guard + 10), *guard, "Write");
                })
            })
            .collect();
        for w in workers {
            w.join().expect("worker");
        }
        let pairs = verdict(&server, &rw);
        assert!(pairs.is_empty(), "{pairs}");
    }
}

#[test]
fn s4_program_order_does_not_race() {
    for _ in 0..REPEAT {
        let Some(server) = RealServer::start_default() else {
            return;
        };
        let rw = client(&server, "ledger");
        let _trace = rw.start_trace();
        for v in [100, 90] {
            rw.track_state_change("balance", None::<i64>, v, "Read");
            rw.track_state_change("balance", Some(v), v - 10, "Write");
        }
        let pairs = verdict(&server, &rw);
        assert!(pairs.is_empty(), "{pairs}");
    }
}

#[test]
fn s6_spawn_and_join_order_the_thread() {
    for _ in 0..REPEAT {
        let Some(server) = RealServer::start_default() else {
            return;
        };
        let rw = client(&server, "cache");
        let _trace = rw.start_trace();
        rw.track_state_change("cache", None::<i64>, 1, "Write");
        let rw2 = rw.clone();
        let handle = rw.spawn(move || rw2.track_state_change("cache", Some(1), 2, "Write"));
        handle.join().expect("thread");
        rw.track_state_change("cache", None::<i64>, 2, "Read");
        let pairs = verdict(&server, &rw);
        assert!(pairs.is_empty(), "{pairs}");
    }
}

#[test]
fn s8_two_threads_write_total_without_a_lock_one_pair() {
    for _ in 0..REPEAT {
        let Some(server) = RealServer::start_default() else {
            return;
        };
        let rw = client(&server, "counter");
        let counter = Arc::new(AtomicI64::new(0));
        let threads: Vec<_> = (0..2)
            .map(|i| {
                let (rw, counter) = (rw.clone(), counter.clone());
                std::thread::spawn(move || {
                    let before = counter.fetch_add(1, Ordering::SeqCst);
                    rw.track_state_change("counter", Some(before), before + 1, "AtomicRMW");
                    rw.track_state_change("total", None::<i64>, i, "Write");
                    rw.flush(Duration::from_secs(5)).expect("flush");
                })
            })
            .collect();
        for t in threads {
            t.join().expect("thread");
        }
        let pairs = verdict(&server, &rw);
        assert_eq!(pairs.count("total"), 1, "{pairs}");
        // The server lists AtomicRMW pairs by design (RACES.md S8): not compared.
        assert_eq!(pairs.total() - pairs.count("counter"), 1, "{pairs}");
    }
}

// Delivery at the server's capacity ------------------------------------------------------

/// Records `n` state changes in one flow, as fast as the caller can.
fn burst(rw: &RacewayClient, n: u64) {
    let _trace = rw.start_trace();
    for i in 0..n {
        rw.track_state_change("burst", Some(i), i + 1, "Write");
    }
}

/// The server's count of event arrivals, summed over its traces (an event that arrived
/// twice counts twice there, once in `events_captured`).
fn arrivals(server: &RealServer) -> u64 {
    server.trace_event_counts().iter().map(|(_, n)| n).sum()
}

#[test]
fn a_burst_of_25000_with_a_queue_of_30000_arrives_exactly_once() {
    let Some(server) = RealServer::start_default() else {
        return;
    };
    let mut config = Config::new("burst");
    config.endpoint = Some(server.url());
    config.export.queue_capacity = 30_000;
    let rw = RacewayClient::from_config(config).expect("config");
    burst(&rw, 25_000);
    // The server takes about 1,000 events a second into a 10,000-event buffer: the
    // exporter paces itself to it (ExportConfig::server_capacity, the server's defaults),
    // so the buffer never fills: 9,000 at once, then about 900 a second, about 18 s.
    let started = std::time::Instant::now();
    rw.flush(Duration::from_secs(120)).expect("flushed");
    let took = started.elapsed();
    rw.shutdown_timeout(Duration::from_secs(10)).expect("drained");
    let s = rw.stats();
    println!("burst 25000: delivered in {took:?}: {:?}", s.export);
    assert_eq!((s.core.recorded, s.export.sent), (25_000, 25_000), "{s:?}");
    assert_eq!(s.export.dropped(), 0, "{s:?}");
    assert_eq!(s.export.unconfirmed_partial, 0, "{s:?}");
    assert_eq!(server.wait_for_captured(25_000, Duration::from_secs(60)), 25_000);
    assert_eq!(arrivals(&server), 25_000, "duplicates on the server");
}

#[test]
fn a_burst_against_a_500_event_buffer_is_on_the_server_or_counted() {
    let opts = raceway_testkit::ServerOptions {
        buffer: 500,
        ..Default::default()
    };
    let Some(server) = RealServer::start(opts) else {
        return;
    };
    let mut config = Config::new("burst");
    config.endpoint = Some(server.url());
    config.export.queue_capacity = 10_000;
    config.export.max_backoff = Duration::from_secs(2);
    let rw = RacewayClient::from_config(config).expect("config");
    burst(&rw, 5_000);
    let _ = rw.shutdown_timeout(Duration::from_secs(60));
    let s = rw.stats();
    println!("burst against --buffer 500: {:?}", s.export);
    assert!(s.export.batches_partial > 0, "the server was never full: {s:?}");
    let captured = server.wait_for_captured(s.export.sent, Duration::from_secs(30));
    assert_eq!(
        captured, s.export.sent,
        "every event counted as sent is on the server: {s:?}"
    );
    assert_eq!(
        captured + s.export.dropped() + s.export.unconfirmed_partial,
        5_000,
        "every event is on the server or counted: {s:?}"
    );
    assert_eq!(arrivals(&server), captured, "duplicates on the server");
}

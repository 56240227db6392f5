//! RACES.md S3 with threads: like S1, but each thread holds one tracked mutex around its
//! read and write. No race.

use crate::common;

use std::sync::{Arc, Barrier};
use std::time::Duration;

use raceway_blocking::{TrackedMutex, TrackedRwLock};

#[test]
fn s3_four_threads_under_one_tracked_mutex_do_not_race() {
    let (client, collector) = common::analysed_client("s3");
    let client = Arc::new(client);
    let balance = Arc::new(TrackedMutex::new(100i64, client.clone(), "balance-lock"));
    let barrier = Arc::new(Barrier::new(4));
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let (rw, balance, barrier) = (client.clone(), balance.clone(), barrier.clone());
            client.spawn(move || {
                barrier.wait();
                let mut b = balance.lock("Mutex");
                rw.track_state_change("balance", None::<i64>, *b, "Read");
                std::thread::sleep(Duration::from_millis(5));
                *b -= 10;
                rw.track_state_change("balance", Some(*b + 10), *b, "Write");
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(*balance.lock("Mutex"), 60);
    let report = client.races();
    println!("{report}");
    assert!(report.is_empty(), "{report}");
    assert_eq!(report.accesses_observed(), 8);
    common::assert_delivered(&client, &collector);
}

#[test]
fn s7_readers_and_a_writer_under_one_tracked_rwlock_do_not_race() {
    let (client, collector) = common::analysed_client("s7");
    let client = Arc::new(client);
    let config = Arc::new(TrackedRwLock::new(1u32, client.clone(), "config-lock"));
    let threads: Vec<_> = (0..3)
        .map(|i| {
            let (rw, config) = (client.clone(), config.clone());
            client.spawn(move || {
                if i == 0 {
                    let mut c = config.write();
                    *c += 1;
                    rw.track_state_change("config", None::<u32>, *c, "Write");
                } else {
                    let c = config.read();
                    rw.track_state_change("config", None::<u32>, *c, "Read");
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert!(client.races().is_empty());
    common::assert_delivered(&client, &collector);
}

//! RACES.md S1 with threads: 4 threads each read `balance`, wait at a barrier, write
//! `balance`; no lock. Every pair of threads races: 6 pairs.

use crate::common;

use std::sync::{Arc, Barrier};

use raceway_blocking::RacewayClient;

fn read_then_write(client: &RacewayClient, barrier: &Barrier) {
    client.track_state_change("balance", None::<i64>, 100, "Read");
    barrier.wait();
    client.track_state_change("balance", Some(100), 90, "Write");
}

#[test]
fn s1_four_spawned_threads_race_pairwise() {
    let (client, collector) = common::analysed_client("s1");
    let barrier = Arc::new(Barrier::new(4));
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let (rw, barrier) = (client.clone(), barrier.clone());
            client.spawn(move || read_then_write(&rw, &barrier))
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let report = client.races();
    println!("{report}");
    assert_eq!(report.races_on("balance").count(), 6);
    assert_eq!(report.racing_pairs(), 6);
    common::assert_delivered(&client, &collector);
}

#[test]
fn s1_four_plain_std_threads_are_four_flows() {
    // No spawn helper: each thread gets a root flow of its own on its first event.
    let (client, collector) = common::analysed_client("s1-plain");
    let barrier = Arc::new(Barrier::new(4));
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let (rw, barrier) = (client.clone(), barrier.clone());
            std::thread::spawn(move || read_then_write(&rw, &barrier))
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(client.races().races_on("balance").count(), 6);
    assert_eq!(client.stats().core.no_context, 0);
    common::assert_delivered(&client, &collector);
}

#[test]
fn s2_extra_events_before_the_access_do_not_matter() {
    let (client, collector) = common::analysed_client("s2");
    let barrier = Arc::new(Barrier::new(4));
    let threads: Vec<_> = (0..4)
        .map(|i| {
            let (rw, barrier) = (client.clone(), barrier.clone());
            client.spawn(move || {
                if i % 2 == 1 {
                    rw.track_function_call("audit", i);
                    rw.track_custom("note", "extra");
                }
                read_then_write(&rw, &barrier);
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(client.races().races_on("balance").count(), 6);
    common::assert_delivered(&client, &collector);
}

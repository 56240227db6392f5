//! Spawn and join order threads (RACES.md S6, with threads); scopes join their threads.

use std::sync::{Arc, Barrier};

use raceway_blocking::RacewayClient;

#[test]
fn s6_spawn_and_join_order_the_thread_between_the_parent_events() {
    let client = RacewayClient::local("s6");
    client.track_state_change("cache", None::<u32>, 1, "Write");
    let rw = client.clone();
    let handle = client.spawn(move || {
        rw.track_state_change("cache", None::<u32>, 2, "Write");
        7
    });
    assert_eq!(handle.join().unwrap(), 7);
    client.track_state_change("cache", None::<u32>, 2, "Read");
    let report = client.races();
    assert!(report.is_empty(), "{report}");
}

#[test]
fn an_access_before_the_join_races_with_the_thread() {
    let client = RacewayClient::local("s6-negative");
    let (rw, started) = (client.clone(), Arc::new(Barrier::new(2)));
    let in_thread = started.clone();
    let handle = client.spawn(move || {
        rw.track_state_change("cache", None::<u32>, 2, "Write");
        in_thread.wait();
    });
    started.wait();
    client.track_state_change("cache", None::<u32>, 3, "Read"); // not joined yet
    handle.join().unwrap();
    client.track_state_change("cache", None::<u32>, 4, "Read"); // joined
    assert_eq!(client.races().races_on("cache").count(), 1);
}

#[test]
fn a_panicked_thread_is_still_joined() {
    let client = RacewayClient::local("panic");
    let rw = client.clone();
    let handle = client.spawn(move || {
        rw.track_state_change("x", None::<u32>, 1, "Write");
        panic!("worker failed");
    });
    assert!(handle.join().is_err());
    client.track_state_change("x", None::<u32>, 2, "Write");
    assert!(client.races().is_empty());
}

#[test]
fn the_scope_joins_its_threads_into_what_follows() {
    let client = RacewayClient::local("scope");
    let mut results = Vec::new();
    client.scope(|s| {
        for i in 0..2u32 {
            let rw = &client;
            // Not joined explicitly: the scope joins them at its end.
            let _ = s.spawn(move || rw.track_state_change("x", None::<u32>, i, "Write"));
        }
    });
    client.scope(|s| {
        let rw = &client;
        let h = s.spawn(move || {
            rw.track_state_change("y", None::<u32>, 1, "Write");
            5u32
        });
        results.push(h.join().unwrap());
        // Joined explicitly: ordered before this write.
        client.track_state_change("y", None::<u32>, 2, "Write");
    });
    client.track_state_change("x", None::<u32>, 9, "Write");
    client.track_state_change("y", None::<u32>, 9, "Write");
    assert_eq!(results, vec![5]);
    let report = client.races();
    println!("{report}");
    // Only the two scoped writers of `x` race with each other.
    assert_eq!(report.races_on("x").count(), 1);
    assert_eq!(report.races_on("y").count(), 0);
    assert_eq!(report.racing_pairs(), 1);
}

#[test]
fn a_panic_in_an_unjoined_scoped_thread_propagates_after_the_joins() {
    let client = RacewayClient::local("scope-panic");
    let out = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        client.scope(|s| {
            let rw = &client;
            let _ = s.spawn(move || {
                rw.track_state_change("z", None::<u32>, 1, "Write");
                panic!("scoped worker failed");
            });
        })
    }));
    assert!(out.is_err());
    client.track_state_change("z", None::<u32>, 2, "Write");
    assert!(client.races().is_empty());
}

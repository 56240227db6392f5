//! RACES.md S8 as a threaded program: two threads `fetch_add` a shared counter (recorded
//! as `AtomicRMW`) and each write `total` without a lock. `total` races (1 pair); the
//! atomic counter does not.

use crate::common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use raceway_blocking::AccessType;

#[test]
fn s8_total_races_once_and_the_atomic_counter_does_not() {
    let (client, collector) = common::analysed_client("s8");
    let counter = Arc::new(AtomicU64::new(0));
    let total = Arc::new(AtomicU64::new(0));

    let threads: Vec<_> = (0..2)
        .map(|_| {
            let (rw, counter, total) = (client.clone(), counter.clone(), total.clone());
            client.spawn(move || {
                let old = counter.fetch_add(1, Ordering::SeqCst);
                rw.track_state_change("counter", Some(old), old + 1, AccessType::AtomicRmw);
                // A plain (lost-update prone) write: a load and a store, no lock.
                let t = total.load(Ordering::SeqCst) + 10;
                total.store(t, Ordering::SeqCst);
                rw.track_state_change("total", None::<u64>, t, "Write");
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(counter.load(Ordering::SeqCst), 2);

    let report = client.races();
    println!("{report}");
    assert_eq!(report.racing_pairs(), 1);
    assert_eq!(report.races_on("total").count(), 1);
    assert_eq!(report.races_on("counter").count(), 0);
    assert_eq!(client.stats().core.no_context, 0);
    common::assert_delivered(&client, &collector);
}

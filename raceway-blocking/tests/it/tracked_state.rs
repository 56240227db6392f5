//! Tracked state (`Tracked<T>`, `TrackedOpaque<T>`) and tracked atomics, over the public
//! API, with a real local collector: the events that reach it (kind, values, location,
//! ordering tag) and the local analyser's verdicts (RACES.md S1, S3 and S8 written with
//! tracked state instead of `track_state_change`).

use crate::common;

use std::sync::atomic::Ordering;
use std::sync::Arc;

use raceway_blocking::{
    RacewayClient, Tracked, TrackedAtomicBool, TrackedAtomicU64, TrackedAtomicUsize, TrackedMutex,
    TrackedOpaque,
};
use serde_json::{json, Value};

fn client(service: &str) -> (Arc<RacewayClient>, raceway_testkit::Collector) {
    let (c, collector) = common::analysed_client(service);
    (Arc::new(c), collector)
}

/// The `StateChange` bodies of the collected events for `variable`, with their tags.
fn changes(collector: &raceway_testkit::Collector, variable: &str) -> Vec<(Value, Value)> {
    collector
        .events_json()
        .into_iter()
        .filter_map(|e| {
            let sc = e["kind"]["StateChange"].clone();
            (sc["variable"] == variable).then(|| (sc, e["metadata"]["tags"].clone()))
        })
        .collect()
}

#[test]
fn s1_tracked_value_without_lock_races_with_values_and_caller_locations() {
    let (rw, collector) = client("tracked-s1");
    let balance = Arc::new(Tracked::new(100i64, rw.clone(), "balance"));
    let threads: Vec<_> = (0..2)
        .map(|_| {
            let balance = balance.clone();
            rw.spawn(move || {
                let seen = balance.get();
                std::thread::sleep(std::time::Duration::from_millis(10));
                balance.set(seen - 10);
            })
        })
        .collect();
    for t in threads {
        t.join().expect("thread");
    }
    let report = rw.races();
    assert_eq!(report.races_on("balance").count(), 1, "{report}");
    assert_eq!(report.racing_pairs(), 1, "{report}");

    common::assert_delivered(&rw, &collector);
    let events = changes(&collector, "balance");
    assert_eq!(events.len(), 4);
    let this_file = file!();
    for (sc, _) in &events {
        let location = sc["location"].as_str().unwrap_or("");
        assert!(
            location.starts_with(this_file),
            "{location} is the caller's file:line"
        );
        match sc["access_type"].as_str() {
            Some("Read") => {
                assert_eq!(sc["old_value"], Value::Null);
                assert!(sc["new_value"].is_i64(), "{sc}");
            }
            Some("Write") => {
                let (old, new) = (sc["old_value"].as_i64(), sc["new_value"].as_i64());
                assert!(old.is_some() && new.is_some(), "{sc}");
            }
            other => panic!("unexpected access {other:?}"),
        }
    }
    // the lost update: both threads read 100 and wrote 90
    assert_eq!(balance.get(), 90);
}

#[test]
fn s3_tracked_value_under_a_tracked_lock_does_not_race() {
    let (rw, collector) = client("tracked-s3");
    let balance = Arc::new(Tracked::new(100i64, rw.clone(), "balance"));
    let lock = Arc::new(TrackedMutex::new((), rw.clone(), "accounts"));
    let threads: Vec<_> = (0..2)
        .map(|_| {
            let (balance, lock) = (balance.clone(), lock.clone());
            rw.spawn(move || {
                let _held = lock.lock("Mutex");
                let seen = balance.get();
                balance.set(seen - 10);
            })
        })
        .collect();
    for t in threads {
        t.join().expect("thread");
    }
    let report = rw.races();
    assert!(report.is_empty(), "{report}");
    assert_eq!(report.accesses_observed(), 4);
    assert_eq!(balance.get(), 80);
    common::assert_delivered(&rw, &collector);
}

#[test]
fn update_and_replace_record_one_write_with_old_and_new_values() {
    let (rw, collector) = client("tracked-update");
    let cart: Tracked<Vec<u32>> = Tracked::new(vec![1], rw.clone(), "cart");
    let _guard = rw.start_trace();
    assert_eq!(
        cart.update(|c| {
            c.push(2);
            c.len()
        }),
        2
    );
    assert_eq!(cart.replace(vec![9]), vec![1, 2]);
    assert_eq!(cart.read(|c| c[0]), 9);
    drop(_guard);
    common::assert_delivered(&rw, &collector);
    let events: Vec<Value> = changes(&collector, "cart")
        .into_iter()
        .map(|(sc, _)| sc)
        .collect();
    let shape: Vec<(Value, Value, Value)> = events
        .iter()
        .map(|sc| {
            (
                sc["access_type"].clone(),
                sc["old_value"].clone(),
                sc["new_value"].clone(),
            )
        })
        .collect();
    assert_eq!(
        shape,
        vec![
            (json!("Write"), json!([1]), json!([1, 2])),
            (json!("Write"), json!([1, 2]), json!([9])),
            (json!("Read"), Value::Null, json!([9])),
        ]
    );
}

/// Not `Serialize`: only its name can be recorded.
struct Connection {
    open: bool,
}

#[test]
fn opaque_values_are_recorded_by_name_only_and_still_race() {
    let (rw, collector) = client("tracked-opaque");
    let conn: Arc<TrackedOpaque<Connection>> =
        Arc::new(Tracked::new_opaque(Connection { open: true }, rw.clone(), "conn"));
    let threads: Vec<_> = (0..2)
        .map(|i| {
            let conn = conn.clone();
            rw.spawn(move || conn.update(|c| c.open = i == 0))
        })
        .collect();
    for t in threads {
        t.join().expect("thread");
    }
    let report = rw.races();
    assert_eq!(report.races_on("conn").count(), 1, "{report}");
    common::assert_delivered(&rw, &collector);
    let events = changes(&collector, "conn");
    assert_eq!(events.len(), 2);
    for (sc, _) in events {
        assert_eq!(sc["access_type"], "Write");
        assert_eq!(sc["old_value"], Value::Null);
        assert_eq!(sc["new_value"], Value::Null);
    }
    assert!(conn.read(|c| c.open) || !conn.read(|c| c.open));
}

#[test]
fn s8_tracked_atomic_counter_does_not_race_and_records_orderings() {
    let (rw, collector) = client("tracked-s8");
    let counter = Arc::new(TrackedAtomicU64::new(0, rw.clone(), "counter"));
    let total = Arc::new(Tracked::new(0u64, rw.clone(), "total"));
    let threads: Vec<_> = (0..2)
        .map(|_| {
            let (counter, total) = (counter.clone(), total.clone());
            rw.spawn(move || {
                counter.fetch_add(1, Ordering::SeqCst);
                let t = total.get() + 10;
                total.set(t);
            })
        })
        .collect();
    for t in threads {
        t.join().expect("thread");
    }
    let report = rw.races();
    assert_eq!(report.races_on("total").count(), 1, "{report}");
    assert_eq!(report.races_on("counter").count(), 0, "{report}");
    assert_eq!(report.racing_pairs(), 1, "{report}");
    assert_eq!(counter.load(Ordering::Acquire), 2);
    common::assert_delivered(&rw, &collector);

    let counter_events = changes(&collector, "counter");
    assert_eq!(counter_events.len(), 3);
    let mut olds: Vec<i64> = Vec::new();
    for (sc, tags) in &counter_events[..2] {
        assert_eq!(sc["access_type"], "AtomicRMW");
        assert_eq!(tags["memory_ordering"], "SeqCst");
        let (old, new) = (
            sc["old_value"].as_i64().unwrap_or(-1),
            sc["new_value"].as_i64().unwrap_or(-1),
        );
        assert_eq!(new, old + 1);
        olds.push(old);
    }
    olds.sort_unstable();
    assert_eq!(olds, [0, 1]);
    let (load, tags) = &counter_events[2];
    assert_eq!(load["access_type"], "AtomicRead");
    assert_eq!(load["new_value"], 2);
    assert_eq!(tags["memory_ordering"], "Acquire");
    // plain tracked state carries no ordering tag
    for (_, tags) in changes(&collector, "total") {
        assert!(tags.get("memory_ordering").is_none(), "{tags}");
    }
}

#[test]
fn atomic_bool_and_usize_record_store_load_and_compare_exchange() {
    let (rw, collector) = client("tracked-atomics");
    let ready = TrackedAtomicBool::new(false, rw.clone(), "ready");
    let slots = TrackedAtomicUsize::new(3, rw.clone(), "slots");
    {
        let _guard = rw.start_trace();
        ready.store(true, Ordering::Release);
        assert!(ready.load(Ordering::Acquire));
        assert_eq!(
            slots.compare_exchange(3, 2, Ordering::AcqRel, Ordering::Relaxed),
            Ok(3)
        );
        assert_eq!(
            slots.compare_exchange(3, 1, Ordering::AcqRel, Ordering::Relaxed),
            Err(2)
        );
        assert_eq!(slots.swap(7, Ordering::SeqCst), 2);
    }
    common::assert_delivered(&rw, &collector);
    let summary = |var: &str| -> Vec<(Value, Value, Value, Value)> {
        changes(&collector, var)
            .into_iter()
            .map(|(sc, tags)| {
                (
                    sc["access_type"].clone(),
                    sc["old_value"].clone(),
                    sc["new_value"].clone(),
                    tags["memory_ordering"].clone(),
                )
            })
            .collect()
    };
    assert_eq!(
        summary("ready"),
        vec![
            (json!("AtomicWrite"), Value::Null, json!(true), json!("Release")),
            (json!("AtomicRead"), Value::Null, json!(true), json!("Acquire")),
        ]
    );
    assert_eq!(
        summary("slots"),
        vec![
            (json!("AtomicRMW"), json!(3), json!(2), json!("AcqRel")),
            (json!("AtomicRead"), Value::Null, json!(2), json!("Relaxed")),
            (json!("AtomicRMW"), json!(2), json!(7), json!("SeqCst")),
        ]
    );
}

#[test]
fn tracked_records_the_same_events_as_track_state_change() {
    let (rw, collector) = client("tracked-same");
    let balance = Tracked::new(100i64, rw.clone(), "by-wrapper");
    {
        let _guard = rw.start_trace();
        let seen = balance.get();
        balance.set(seen - 10);
        rw.track_state_change("by-hand", None::<i64>, 100, "Read");
        rw.track_state_change("by-hand", Some(100i64), 90, "Write");
    }
    common::assert_delivered(&rw, &collector);
    let strip = |var: &str| -> Vec<Value> {
        changes(&collector, var)
            .into_iter()
            .map(|(mut sc, tags)| {
                sc["variable"] = Value::Null;
                sc["location"] = Value::Null;
                json!([sc, tags])
            })
            .collect()
    };
    assert_eq!(strip("by-wrapper"), strip("by-hand"));
    assert_eq!(strip("by-hand").len(), 2);
}

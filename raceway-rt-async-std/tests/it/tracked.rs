//! Tracked state (`Tracked<T>`, `TrackedOpaque<T>`, `TrackedAtomicU64`) in tasks spawned
//! with `RacewayClient::spawn` on async-std, over the public API: the local analyser's
//! verdicts (through `testing::check` and `races()`), the caller's `file:line` carried
//! through the adapter (`#[track_caller]`), the events a real local collector receives
//! (kind, values, `memory_ordering` tag), and an always-off sampler recording nothing.

use std::collections::BTreeSet;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use async_std::task;
use futures::channel::oneshot;
use raceway_proto::sampling::Sampler;
use raceway_rt_async_std::testing::{self, source_line};
use raceway_rt_async_std::{
    AccessType, Config, RaceReport, RacewayClient, Tracked, TrackedAtomicU64, TrackedMutex, TrackedOpaque,
};
use raceway_testkit::local::{access_kinds, only_race};
use raceway_testkit::Collector;
use serde_json::{json, Value};

/// `file:line` of `line` in this file, as the events carry it.
fn at(line: u32) -> String {
    format!("{}:{line}", file!())
}

/// A client exporting to `collector` under `sampler`, with the local analyser on as well.
fn analysed_client(service: &str, collector: &Collector, sampler: Sampler) -> Arc<RacewayClient> {
    let mut config = Config::new(service);
    config.endpoint = Some(collector.url());
    config.local_analysis = true;
    config.export.flush_interval = Duration::from_millis(50);
    config.sampler = sampler;
    Arc::new(RacewayClient::from_config(config).expect("valid config"))
}

/// Flushes `rw`: nothing dropped, and the collector holds every event recorded.
async fn delivered(rw: &RacewayClient, collector: &Collector) {
    rw.flush(Duration::from_secs(10)).await.expect("flushed");
    let stats = rw.stats();
    assert_eq!(stats.export.dropped(), 0, "{stats:?}");
    assert_eq!(
        collector.event_count() as u64,
        stats.core.recorded,
        "every event delivered"
    );
}

/// Two tasks spawned from the current flow: `writer` sets `balance` to 1, then `reader`
/// gets it. A plain oneshot makes the read come after the write in time (so the values,
/// and the order the analyser sees the accesses in, are fixed) without ordering them for
/// the analyser. With `lock`, each task holds it around its access. Returns the lines of
/// the write and of the read.
async fn write_then_read(
    rw: &Arc<RacewayClient>,
    balance: &Arc<Tracked<i64>>,
    lock: Option<Arc<TrackedMutex<()>>>,
) -> (u32, u32) {
    let (done, written) = oneshot::channel::<()>();
    let writer = rw.spawn({
        let (balance, lock) = (balance.clone(), lock.clone());
        async move {
            let held = lock.as_ref().map(|l| l.lock("Mutex"));
            let line = line!() + 1;
            balance.set(1);
            drop(held);
            done.send(()).expect("the reader waits");
            line
        }
    });
    let reader = rw.spawn({
        let balance = balance.clone();
        async move {
            written.await.expect("the writer ran");
            let held = lock.as_ref().map(|l| l.lock("Mutex"));
            let line = line!() + 1;
            let seen = balance.get();
            drop(held);
            (line, seen)
        }
    });
    let write_line = writer.join().await;
    let (read_line, seen) = reader.join().await;
    assert_eq!(seen, 1, "the read came after the write");
    (write_line, read_line)
}

// ---------------------------------------------------------------------------------------
// 1. No lock: the two tasks race on `balance`, at the lines of this file.

#[async_std::test]
async fn unlocked_tasks_race_on_balance_at_their_lines() {
    let ((write_line, read_line), report) = testing::check_with(|rw| async move {
        let balance = Arc::new(Tracked::new(100i64, rw.clone(), "balance"));
        write_then_read(&rw, &balance, None).await
    })
    .await;
    report.assert_races_exactly(&["balance"]);
    let races = report.races();
    assert_eq!(races.accesses_observed(), 2, "{report}");
    // AsyncSpawn x2, Write, Read, AsyncAwait x2
    assert_eq!(races.events_observed(), 6, "{report}");
    let race = only_race(races, "balance");
    assert!(!race.crosses_traces(), "one trace: {report}");
    assert_ne!(race.first.thread_id, race.second.thread_id);

    assert_eq!(race.first.access_type, AccessType::Write);
    assert_eq!(race.first.location.to_string(), at(write_line));
    assert_eq!(
        source_line(&race.first.location).as_deref(),
        Some("balance.set(1);")
    );
    assert_eq!(race.first.old_value, Some(json!(100)));
    assert_eq!(race.first.new_value, json!(1));

    assert_eq!(race.second.access_type, AccessType::Read);
    assert_eq!(race.second.location.to_string(), at(read_line));
    assert_eq!(
        source_line(&race.second.location).as_deref(),
        Some("let seen = balance.get();")
    );
    assert_eq!(race.second.old_value, None);
    assert_eq!(race.second.new_value, json!(1));
}

// ---------------------------------------------------------------------------------------
// 2. The same under a tracked lock, or with the task joined first: no race.

#[async_std::test]
async fn tasks_holding_a_tracked_lock_do_not_race() {
    let (final_value, report) = testing::check_with(|rw| async move {
        let balance = Arc::new(Tracked::new(100i64, rw.clone(), "balance"));
        let lock = Arc::new(TrackedMutex::new((), rw.clone(), "balance-lock"));
        write_then_read(&rw, &balance, Some(lock)).await;
        Arc::into_inner(balance).expect("tasks done").into_inner()
    })
    .await;
    report.assert_no_races();
    assert_eq!(report.races().racing_pairs(), 0);
    assert_eq!(report.races().accesses_observed(), 2, "{report}");
    // AsyncSpawn x2, (LockAcquire, Write, LockRelease), (LockAcquire, Read, LockRelease),
    // AsyncAwait x2
    assert_eq!(report.races().events_observed(), 10, "{report}");
    assert_eq!(final_value, 1);
}

/// A task sets `balance`; the parent reads it after joining the task (`join_first`) or
/// before (the control).
async fn parent_reads_after_or_before_the_join(join_first: bool) -> testing::Report {
    testing::check(|rw| async move {
        let balance = Arc::new(Tracked::new(100i64, rw.clone(), "balance"));
        let worker = rw.spawn({
            let balance = balance.clone();
            async move {
                task::sleep(Duration::from_millis(5)).await;
                balance.set(1);
            }
        });
        if join_first {
            worker.join().await;
            assert_eq!(balance.get(), 1);
        } else {
            let _ = balance.get();
            worker.join().await;
        }
    })
    .await
}

#[async_std::test]
async fn the_parent_reading_after_the_join_does_not_race() {
    let report = parent_reads_after_or_before_the_join(true).await;
    report.assert_no_races();
    assert_eq!(report.races().accesses_observed(), 2, "{report}");

    let report = parent_reads_after_or_before_the_join(false).await;
    report.assert_races_exactly(&["balance"]);
    let race = only_race(report.races(), "balance");
    assert_eq!(access_kinds(race), BTreeSet::from(["Read", "Write"]), "{report}");
}

// ---------------------------------------------------------------------------------------
// 3. Tracked atomics: AtomicRMW events with old and new values and the ordering tag, and
//    (analysis.rs, rule 4) two atomic accesses never race, an atomic and a plain one do.

#[async_std::test]
async fn atomic_fetch_adds_record_rmw_with_ordering_and_do_not_race() {
    let collector = Collector::start();
    let rw = analysed_client("tracked-atomic", &collector, Sampler::default());
    let hits = Arc::new(TrackedAtomicU64::new(0, rw.clone(), "hits"));
    let ((add_lines, load_line, total), _end) = rw
        .in_new_trace({
            let (rw, hits) = (rw.clone(), hits.clone());
            async move {
                let tasks: Vec<_> = (0..2)
                    .map(|_| {
                        let hits = hits.clone();
                        rw.spawn(async move {
                            let line = line!() + 1;
                            hits.fetch_add(1, Ordering::SeqCst);
                            line
                        })
                    })
                    .collect();
                let mut add_lines = BTreeSet::new();
                for t in tasks {
                    add_lines.insert(t.join().await);
                }
                let load_line = line!() + 1;
                let total = hits.load(Ordering::Acquire);
                (add_lines, load_line, total)
            }
        })
        .await;
    assert_eq!(total, 2);
    assert_eq!(add_lines.len(), 1, "both tasks run the same line");
    let add_line = *add_lines.first().expect("a line");

    let report = rw.races();
    assert!(report.is_empty(), "two atomic accesses never race: {report}");
    assert_eq!(report.racing_pairs(), 0);
    assert_eq!(report.accesses_observed(), 3, "{report}");

    delivered(&rw, &collector).await;
    let events = collector.state_changes("hits");
    assert_eq!(events.len(), 3, "{events:?}");
    let mut rmws: Vec<Value> = events[..2].iter().map(|(shape, _)| shape.clone()).collect();
    rmws.sort_by_key(|shape| shape[1].as_u64());
    assert_eq!(
        rmws,
        [
            json!(["AtomicRMW", 0, 1, at(add_line), "SeqCst"]),
            json!(["AtomicRMW", 1, 2, at(add_line), "SeqCst"]),
        ]
    );
    assert_ne!(events[0].1, events[1].1, "two flows: {events:?}");
    assert_eq!(
        events[2].0,
        json!(["AtomicRead", null, 2, at(load_line), "Acquire"])
    );
    rw.shutdown_async(Duration::from_secs(5)).await.expect("shutdown");
}

#[async_std::test]
async fn an_atomic_and_a_plain_access_of_one_variable_race() {
    let report = testing::check(|rw| async move {
        let atomic = Arc::new(TrackedAtomicU64::new(0, rw.clone(), "hits"));
        let plain = Arc::new(Tracked::new(0u64, rw.clone(), "hits"));
        let a = rw.spawn(async move {
            atomic.fetch_add(1, Ordering::SeqCst);
        });
        let b = rw.spawn(async move { plain.set(5) });
        a.join().await;
        b.join().await;
    })
    .await;
    report.assert_races_exactly(&["hits"]);
    let race = only_race(report.races(), "hits");
    assert_eq!(
        access_kinds(race),
        BTreeSet::from(["AtomicRMW", "Write"]),
        "{report}"
    );
}

// ---------------------------------------------------------------------------------------
// 4. NameOnly (`TrackedOpaque`) for a value that is not Serialize: null values, same races.

/// Not `Serialize`: only its name can be recorded.
struct Connection {
    open: bool,
}

#[async_std::test]
async fn opaque_values_are_recorded_as_null_and_still_race() {
    let collector = Collector::start();
    let rw = analysed_client("tracked-opaque", &collector, Sampler::default());
    let conn: Arc<TrackedOpaque<Connection>> =
        Arc::new(Tracked::new_opaque(Connection { open: true }, rw.clone(), "conn"));
    let ((write_line, read_line), _end) = rw
        .in_new_trace({
            let (rw, conn) = (rw.clone(), conn.clone());
            async move {
                let (done, written) = oneshot::channel::<()>();
                let writer = rw.spawn({
                    let conn = conn.clone();
                    async move {
                        let line = line!() + 1;
                        conn.update(|c| c.open = false);
                        done.send(()).expect("the reader waits");
                        line
                    }
                });
                let reader = rw.spawn(async move {
                    written.await.expect("the writer ran");
                    let line = line!() + 1;
                    let open = conn.read(|c| c.open);
                    (line, open)
                });
                let write_line = writer.join().await;
                let (read_line, open) = reader.join().await;
                assert!(!open, "the read came after the write");
                (write_line, read_line)
            }
        })
        .await;

    let report = rw.races();
    testing::Report::from(report.clone()).assert_races_exactly(&["conn"]);
    let race = only_race(&report, "conn");
    assert_eq!(race.first.access_type, AccessType::Write);
    assert_eq!(race.first.location.to_string(), at(write_line));
    assert_eq!(race.first.old_value, Some(Value::Null));
    assert_eq!(race.first.new_value, Value::Null);
    assert_eq!(race.second.access_type, AccessType::Read);
    assert_eq!(race.second.location.to_string(), at(read_line));
    assert_eq!(race.second.new_value, Value::Null);

    delivered(&rw, &collector).await;
    let events: Vec<Value> = collector
        .state_changes("conn")
        .into_iter()
        .map(|(shape, _)| shape)
        .collect();
    assert_eq!(
        events,
        [
            json!(["Write", null, null, at(write_line), null]),
            json!(["Read", null, null, at(read_line), null]),
        ]
    );
    rw.shutdown_async(Duration::from_secs(5)).await.expect("shutdown");
}

// ---------------------------------------------------------------------------------------
// 5. An always-off sampler: tracked accesses record nothing.

/// What a run of the unlocked scenario (plus a tracked atomic) under `sampler` recorded:
/// the analyser's report, and the events recorded and collected.
async fn run_sampled(sampler: Sampler) -> (RaceReport, u64, usize) {
    let collector = Collector::start();
    let rw = analysed_client("tracked-sampling", &collector, sampler);
    let balance = Arc::new(Tracked::new(100i64, rw.clone(), "balance"));
    let hits = Arc::new(TrackedAtomicU64::new(0, rw.clone(), "hits"));
    let ((), _end) = rw
        .in_new_trace({
            let (rw, hits) = (rw.clone(), hits.clone());
            async move {
                let (done, written) = oneshot::channel::<()>();
                let writer = rw.spawn({
                    let (balance, hits) = (balance.clone(), hits.clone());
                    async move {
                        balance.set(1);
                        hits.fetch_add(1, Ordering::SeqCst);
                        done.send(()).expect("the reader waits");
                    }
                });
                let reader = rw.spawn(async move {
                    written.await.expect("the writer ran");
                    balance.get()
                });
                writer.join().await;
                assert_eq!(reader.join().await, 1, "the value is stored");
            }
        })
        .await;
    assert_eq!(Arc::into_inner(hits).expect("tasks done").into_inner(), 1);
    rw.flush(Duration::from_secs(10)).await.expect("flushed");
    let stats = rw.stats();
    assert_eq!(stats.export.dropped(), 0, "{stats:?}");
    let out = (rw.races(), stats.core.recorded, collector.event_count());
    rw.shutdown_async(Duration::from_secs(5)).await.expect("shutdown");
    out
}

#[async_std::test]
async fn always_off_records_nothing() {
    let (report, recorded, collected) = run_sampled(Sampler::always_off()).await;
    assert!(report.is_empty(), "{report}");
    assert_eq!(report.events_observed(), 0, "{report}");
    assert_eq!(report.accesses_observed(), 0, "{report}");
    assert_eq!(recorded, 0);
    assert_eq!(collected, 0);

    // The control: the same run, sampled.
    let (report, recorded, collected) = run_sampled(Sampler::always_on()).await;
    testing::Report::from(report.clone()).assert_races_exactly(&["balance"]);
    assert_eq!(report.accesses_observed(), 3, "{report}");
    // AsyncSpawn x2, Write, AtomicRMW, Read, AsyncAwait x2
    assert_eq!(recorded, 7);
    assert_eq!(collected, 7);
}

//! The `tracing` bridge (issue 13 item 5) with threads: spans created in a traced thread
//! and run on plain `std::thread`s (no `client.spawn`) carry the trace there. Their
//! `raceway.variable` events, and the `track_*` calls and tracked locks used inside them,
//! land in a flow of their own forked from the creating thread's, in its trace; the
//! spans arrive at a real collector as `FunctionCall` events with their durations.

use crate::common;

use std::collections::BTreeSet;
use std::sync::{Arc, Barrier};
use std::time::Duration;

use raceway_blocking::{RacewayClient, TrackedMutex};
use raceway_proto::{Event, EventKind};
use tracing::Dispatch;
use tracing_subscriber::layer::SubscriberExt;

const WORK: Duration = Duration::from_millis(20);

fn dispatch(client: &RacewayClient) -> Dispatch {
    Dispatch::new(tracing_subscriber::registry().with(client.tracing_layer()))
}

fn state_changes<'e>(events: &'e [Event], variable: &str) -> Vec<&'e Event> {
    events
        .iter()
        .filter(|e| matches!(&e.kind, EventKind::StateChange { variable: v, .. } if v == variable))
        .collect()
}

/// Two spans made in the main thread's trace (after its `setup` write), each run on a
/// plain thread of its own: a read-sleep-write of `balance` through `tracing` and an
/// explicit `track_state_change` of `explicit`, under `lock` if given.
fn two_plain_threads(client: &Arc<RacewayClient>, lock: Option<Arc<TrackedMutex<i64>>>) {
    let dispatch = dispatch(client);
    let _trace = client.start_trace();
    let barrier = Arc::new(Barrier::new(2));
    tracing::dispatcher::with_default(&dispatch, || {
        client.track_state_change("setup", None::<i64>, 1, "Write");
        let threads: Vec<_> = (0..2i64)
            .map(|n| {
                let span = tracing::info_span!("worker", n);
                let (dispatch, barrier, client, lock) =
                    (dispatch.clone(), barrier.clone(), client.clone(), lock.clone());
                std::thread::spawn(move || {
                    tracing::dispatcher::with_default(&dispatch, || {
                        span.in_scope(|| {
                            barrier.wait();
                            let guard = lock.as_ref().map(|l| l.lock("Mutex"));
                            tracing::info!(
                                raceway.variable = "balance",
                                raceway.access = "Read",
                                raceway.new = 100
                            );
                            std::thread::sleep(WORK);
                            tracing::info!(
                                raceway.variable = "balance",
                                raceway.access = "Write",
                                raceway.old = 100,
                                raceway.new = 90
                            );
                            client.track_state_change("explicit", None::<i64>, n, "Write");
                            drop(guard);
                        });
                        drop(span); // closes here, on the worker: its FunctionCall
                    });
                })
            })
            .collect();
        for t in threads {
            t.join().expect("worker");
        }
    });
}

#[test]
fn spans_run_on_plain_threads_carry_the_trace_and_race_there() {
    let (client, collector) = common::analysed_client("tracing-threads");
    let client = Arc::new(client);
    two_plain_threads(&client, None);
    common::assert_delivered(&client, &collector);
    assert_eq!(client.stats().core.no_context, 0);

    let events = collector.events();
    let setup = state_changes(&events, "setup");
    assert_eq!(setup.len(), 1);
    let main = setup[0];

    let balance = state_changes(&events, "balance");
    assert_eq!(balance.len(), 4, "{events:#?}");
    let workers: BTreeSet<String> = balance.iter().map(|e| e.metadata.thread_id.to_string()).collect();
    assert_eq!(workers.len(), 2, "a flow per span");
    assert!(
        !workers.contains(&*main.metadata.thread_id),
        "not the main thread's flow"
    );
    for e in &balance {
        assert_eq!(e.trace_id, main.trace_id, "the main thread's trace");
        let seen = e.causality_vector.get(&main.metadata.thread_id).unwrap_or(0);
        let at_setup = main
            .causality_vector
            .get(&main.metadata.thread_id)
            .unwrap_or(u64::MAX);
        assert!(seen >= at_setup, "ordered after setup: {e:?}");
    }
    // The explicit calls inside the spans are in the spans' flows too.
    let explicit = state_changes(&events, "explicit");
    assert_eq!(explicit.len(), 2);
    for e in &explicit {
        assert_eq!(e.trace_id, main.trace_id);
        assert!(workers.contains(&*e.metadata.thread_id), "{e:?}");
    }

    // The spans: FunctionCall "worker" in each worker flow, with the sleep in the duration.
    let calls: Vec<&Event> = events
        .iter()
        .filter(
            |e| matches!(&e.kind, EventKind::FunctionCall { function_name, .. } if function_name == "worker"),
        )
        .collect();
    assert_eq!(calls.len(), 2, "{events:#?}");
    for c in &calls {
        assert_eq!(c.trace_id, main.trace_id);
        assert!(workers.contains(&*c.metadata.thread_id), "{c:?}");
        assert!(
            c.metadata.duration_ns.flatten().unwrap_or(0) >= WORK.as_nanos() as u64,
            "{c:?}"
        );
        let EventKind::FunctionCall { args, .. } = &c.kind else {
            unreachable!()
        };
        assert!(args["n"] == 0 || args["n"] == 1, "{args}");
    }

    // Not joined (plain threads): the two workers race on balance and nothing else.
    let report = client.races();
    assert_eq!(report.racing_pairs(), 2, "{report}"); // balance and explicit
    let pairs: BTreeSet<(String, String)> = report
        .races_on("balance")
        .map(|r| {
            let (a, b) = (r.first.thread_id.to_string(), r.second.thread_id.to_string());
            if a < b {
                (a, b)
            } else {
                (b, a)
            }
        })
        .collect();
    assert_eq!(pairs.len(), 1, "{report}");
    client.shutdown();
}

#[test]
fn spans_run_on_plain_threads_under_one_tracked_lock_do_not_race() {
    let (client, collector) = common::analysed_client("tracing-threads-locked");
    let client = Arc::new(client);
    let lock = Arc::new(TrackedMutex::new(100i64, client.clone(), "balance-lock"));
    two_plain_threads(&client, Some(lock));
    common::assert_delivered(&client, &collector);

    let report = client.races();
    assert_eq!(report.races_on("balance").count(), 0, "{report}");
    // `explicit` is written under the lock too.
    assert!(report.is_empty(), "{report}");
    assert_eq!(report.accesses_observed(), 1 + 4 + 2);
    let events = collector.events();
    let locks = events
        .iter()
        .filter(|e| matches!(e.kind, EventKind::LockAcquire { .. }))
        .filter(|e| e.trace_id == state_changes(&events, "setup")[0].trace_id)
        .count();
    assert_eq!(
        locks, 2,
        "the lock events are in the spans' flows, in the main trace"
    );
    client.shutdown();
}

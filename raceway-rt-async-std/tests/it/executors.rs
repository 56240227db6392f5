//! The context wrapper (`Instrumented`) on executors other than async-std: the flow follows
//! the task, whichever executor and thread polls it.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures::executor::{block_on, LocalPool};
use futures::task::{noop_waker, LocalSpawnExt};
use raceway_rt_async_std::{RacewayClient, RacewayContext};
use raceway_testkit::Collector;

/// Pending once, then ready: a task switch point.
struct YieldOnce(bool);

impl Future for YieldOnce {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            Poll::Ready(())
        } else {
            self.0 = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }
}

fn thread_ids(collector: &Collector) -> Vec<(String, String)> {
    collector
        .events()
        .iter()
        .map(|e| (e.kind.name().to_string(), e.metadata.thread_id.to_string()))
        .collect()
}

#[test]
fn interleaved_tasks_on_a_local_pool_keep_their_own_flows() {
    let rw = RacewayClient::local("pool");
    let mut pool = LocalPool::new();
    let spawner = pool.spawner();
    let mut ends = Vec::new();
    for i in 0..3 {
        let rw2 = rw.clone();
        let fut = rw.in_new_trace(async move {
            rw2.track_state_change("shared", None::<i32>, i, "Read");
            YieldOnce(false).await; // the other tasks run here, on the same thread
            rw2.track_state_change("shared", Some(i), i + 1, "Write");
            RacewayContext::capture().map(|c| c.thread_id().to_string())
        });
        ends.push(spawner.spawn_local_with_handle(fut).expect("spawned"));
    }
    let outs: Vec<_> = pool.run_until(futures::future::join_all(ends));
    // Outside the futures, no flow is installed.
    assert!(RacewayContext::capture().is_none());
    let flows: std::collections::HashSet<_> = outs.iter().map(|(_, end)| end.is_some()).collect();
    assert_eq!(flows, [true].into_iter().collect());
    // 3 interleaved unlocked read-modify-writes on one thread: 3 racing pairs, as it should
    // be (the OS thread id would have hidden them all).
    assert_eq!(rw.races().races_on("shared").count(), 3);
}

#[test]
fn the_flow_follows_a_future_to_another_thread() {
    let collector = Collector::start();
    let rw = RacewayClient::new(&collector.url(), "hop");
    let rw2 = rw.clone();
    let mut fut = Box::pin(rw.in_new_trace(async move {
        rw2.track_custom("before", 1);
        YieldOnce(false).await;
        rw2.track_custom("after", 2);
    }));
    let flow_thread = fut.flow().expect("not polled yet").thread_id().to_string();
    // First poll here, the rest on another OS thread.
    let waker = noop_waker();
    assert!(fut.as_mut().poll(&mut Context::from_waker(&waker)).is_pending());
    assert!(
        RacewayContext::capture().is_none(),
        "the slot is emptied after each poll"
    );
    let ((), end) = std::thread::spawn(move || block_on(fut))
        .join()
        .expect("no panic");
    assert!(end.is_some());
    rw.shutdown();
    let events = thread_ids(&collector);
    assert_eq!(events.len(), 2);
    assert!(events.iter().all(|(_, t)| *t == flow_thread), "{events:?}");
}

#[test]
fn fork_and_join_order_a_child_run_on_another_executor() {
    let rw = RacewayClient::local("forkjoin");
    let pool = futures::executor::ThreadPool::builder()
        .pool_size(2)
        .create()
        .expect("pool");
    block_on(rw.in_new_trace(async {
        rw.track_state_change("cache", None::<i32>, 1, "Write");
        let child = rw.instrument({
            let rw = rw.clone();
            async move { rw.track_state_change("cache", Some(1), 2, "Write") }
        });
        let handle = futures::task::SpawnExt::spawn_with_handle(&pool, child).expect("spawned");
        let ((), end) = handle.await;
        rw.join_flow(&end.expect("child flow"));
        rw.track_state_change("cache", None::<i32>, 2, "Read");
    }));
    let report = rw.races();
    assert_eq!(report.accesses_observed(), 3);
    assert_eq!(report.racing_pairs(), 0, "{report}");
}

#[test]
fn a_panicking_poll_leaves_no_flow_behind() {
    let rw = RacewayClient::local("panics");
    let rw2 = rw.clone();
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        block_on(rw.in_new_trace(async move {
            rw2.track_custom("x", 1);
            panic!("handler failed");
        }))
    }));
    assert!(result.is_err());
    assert!(RacewayContext::capture().is_none());
    rw.track_custom("outside", 1);
    assert_eq!(rw.stats().core.no_context, 1);
}

#[test]
fn nested_instrumented_futures_restore_the_outer_flow() {
    let rw = RacewayClient::local("nested");
    block_on(rw.in_new_trace(async {
        let outer = RacewayContext::capture().expect("outer").flow().trace_id();
        let ((), _) = rw.in_new_trace(YieldOnce(false)).await;
        let again = RacewayContext::capture().expect("outer again").flow().trace_id();
        assert_eq!(outer, again);
    }));
}

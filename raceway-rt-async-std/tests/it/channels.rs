//! Tracked `async-channel` channels (`raceway_rt_async_std::channel`): a reply channel
//! orders the worker's write before the handler's next read. The same code with tracked
//! and with plain async-channel channels: 0 races, then 1 (the local analyser, every event
//! delivered to a real local collector).

use std::sync::Arc;
use std::time::Duration;

use raceway_proto::analysis::RaceReport;
use raceway_rt_async_std::{channel, Config, RacewayClient};
use raceway_testkit::Collector;

/// The worker (its own flow, on a thread of its own) gets jobs over a plain channel in
/// both variants, writes `result`, and answers; the handler reads `result` after the
/// answer. `tracked` picks the reply channel.
fn reply_scenario(rw: &Arc<RacewayClient>, tracked: bool) {
    let (jobs, queue) = async_channel::bounded::<u32>(4);
    let (tracked_reply, tracked_answer) = channel::bounded::<u32>(1, rw.clone(), "reply");
    let (plain_reply, plain_answer) = async_channel::bounded::<u32>(1);
    let rw2 = rw.clone();
    let worker = std::thread::spawn(move || {
        async_io::block_on(rw2.clone().in_new_trace(async move {
            while let Ok(n) = queue.recv().await {
                rw2.track_state_change("result", None::<u32>, n * 2, "Write");
                if tracked {
                    tracked_reply.send(n * 2).await.ok();
                } else {
                    plain_reply.send(n * 2).await.ok();
                }
            }
        }));
    });
    let rw2 = rw.clone();
    async_io::block_on(rw.in_new_trace(async move {
        jobs.send(21).await.ok();
        let got = if tracked {
            tracked_answer.recv().await.unwrap_or(0)
        } else {
            plain_answer.recv().await.unwrap_or(0)
        };
        rw2.track_state_change("result", None::<u32>, got, "Read");
    }));
    worker.join().ok();
}

fn local(service: &str, tracked: bool) -> RaceReport {
    let collector = Collector::start();
    let mut config = Config::new(service);
    config.endpoint = Some(collector.url());
    config.local_analysis = true;
    config.export.flush_interval = Duration::from_millis(50);
    let rw = Arc::new(RacewayClient::from_config(config).expect("valid config"));
    reply_scenario(&rw, tracked);
    rw.flush_blocking(Duration::from_secs(10)).expect("flushed");
    assert_eq!(collector.event_count() as u64, rw.stats().core.recorded);
    assert_eq!(rw.stats().core.no_context, 0);
    rw.races()
}

#[test]
fn reply_channel_orders_the_workers_write_before_the_handlers_read() {
    let report = local("reply-tracked", true);
    assert!(report.is_empty(), "{report}");
    assert_eq!(report.accesses_observed(), 2);
    let report = local("reply-plain", false);
    assert_eq!(report.races_on("result").count(), 1, "{report}");
    assert_eq!(report.racing_pairs(), 1, "{report}");
}

#[test]
fn closed_channels_give_the_value_back() {
    let rw = Arc::new(RacewayClient::local("channel-api"));
    let (tx, rx) = channel::bounded::<u32>(0, rw.clone(), "bounded");
    assert_eq!(tx.name(), "bounded");
    tx.try_send(1).expect("capacity 0 becomes 1");
    match tx.try_send(2) {
        Err(channel::TrySendError::Full(v)) => assert_eq!(v, 2),
        other => panic!("expected Full, got {other:?}"),
    }
    assert_eq!(rx.try_recv(), Ok(1));
    assert!(rx.close());
    assert!(tx.is_closed());
    assert_eq!(async_io::block_on(tx.send(3)).map_err(|e| e.0), Err(3));
    let (tx, rx) = channel::unbounded::<u32>(rw.clone(), "unbounded");
    drop(tx);
    assert!(async_io::block_on(rx.recv()).is_err());
    rw.shutdown();
}

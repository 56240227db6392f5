//! Tracked tokio channels (`raceway_rt_tokio::channel::{mpsc, oneshot}`): a message orders
//! what its sender did before the send before what the receiver does after the receive.
//! Each scenario is run twice, the same code with tracked and with plain tokio channels: 0
//! races with tracked ones, 1 without, from the local analyser (with every event delivered
//! to a real local collector) and from the real server when its binary is there.

use std::sync::Arc;
use std::time::Duration;

use raceway_proto::analysis::RaceReport;
use raceway_rt_tokio::channel::{mpsc, oneshot};
use raceway_rt_tokio::{Config, RacewayClient};
use raceway_testkit::{Collector, RealServer};

fn client(service: &str, endpoint: &str) -> Arc<RacewayClient> {
    let mut config = Config::new(service);
    config.endpoint = Some(endpoint.to_string());
    config.instance_id = Some("test".into());
    config.local_analysis = true;
    config.export.flush_interval = Duration::from_millis(50);
    Arc::new(RacewayClient::from_config(config).expect("valid config"))
}

/// The worker (its own flow, a trace of its own) takes jobs over a plain channel in both
/// variants and writes `result`; the handler (another trace) awaits the reply and reads
/// `result`. Only the reply channel can order the two.
async fn reply_scenario(rw: Arc<RacewayClient>, tracked: bool) {
    let (jobs, mut queue) = tokio::sync::mpsc::channel::<(u32, Reply)>(4);
    let rw2 = rw.clone();
    let worker = rw.spawn(async move {
        while let Some((n, reply)) = queue.recv().await {
            rw2.track_state_change("result", None::<u32>, n * 2, "Write");
            reply.send(n * 2);
        }
    });
    let rw2 = rw.clone();
    rw.in_new_trace(async move {
        let (reply, answer) = Reply::channel(&rw2, tracked);
        jobs.send((21, reply)).await.ok();
        let got = answer.recv().await;
        rw2.track_state_change("result", None::<u32>, got, "Read");
    })
    .await;
    worker.join().await.ok();
}

/// A tracked or a plain oneshot, so that both variants run the very same scenario code.
enum Reply {
    Tracked(oneshot::Sender<u32>),
    Plain(tokio::sync::oneshot::Sender<u32>),
}

enum Answer {
    Tracked(oneshot::Receiver<u32>),
    Plain(tokio::sync::oneshot::Receiver<u32>),
}

impl Reply {
    fn channel(rw: &Arc<RacewayClient>, tracked: bool) -> (Reply, Answer) {
        if tracked {
            let (tx, rx) = oneshot::channel(rw.clone(), "reply");
            (Reply::Tracked(tx), Answer::Tracked(rx))
        } else {
            let (tx, rx) = tokio::sync::oneshot::channel();
            (Reply::Plain(tx), Answer::Plain(rx))
        }
    }

    fn send(self, v: u32) {
        let _ = match self {
            Reply::Tracked(tx) => tx.send(v),
            Reply::Plain(tx) => tx.send(v),
        };
    }
}

impl Answer {
    async fn recv(self) -> u32 {
        match self {
            Answer::Tracked(rx) => rx.await.unwrap_or(0),
            Answer::Plain(rx) => rx.await.unwrap_or(0),
        }
    }
}

/// The handler writes `input` and sends a job; the worker reads `input` after receiving
/// it. Only the job channel can order the two.
async fn job_scenario(rw: Arc<RacewayClient>, tracked: bool) {
    let rw2 = rw.clone();
    let (tracked_tx, plain_tx, worker) = if tracked {
        let (tx, mut rx) = mpsc::unbounded_channel::<u32>(rw.clone(), "jobs");
        let worker = rw.spawn(async move {
            if let Some(n) = rx.recv().await {
                rw2.track_state_change("input", None::<u32>, n, "Read");
            }
        });
        (Some(tx), None, worker)
    } else {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<u32>();
        let worker = rw.spawn(async move {
            if let Some(n) = rx.recv().await {
                rw2.track_state_change("input", None::<u32>, n, "Read");
            }
        });
        (None, Some(tx), worker)
    };
    let rw2 = rw.clone();
    rw.in_new_trace(async move {
        rw2.track_state_change("input", None::<u32>, 7, "Write");
        if let Some(tx) = tracked_tx {
            tx.send(7).ok();
        }
        if let Some(tx) = plain_tx {
            tx.send(7).ok();
        }
    })
    .await;
    worker.join().await.ok();
}

async fn local(service: &str, tracked: bool, job: bool) -> RaceReport {
    let collector = Collector::start();
    let rw = client(service, &collector.url());
    if job {
        job_scenario(rw.clone(), tracked).await;
    } else {
        reply_scenario(rw.clone(), tracked).await;
    }
    rw.flush(Duration::from_secs(10)).await.expect("flushed");
    let recorded = rw.stats().core.recorded;
    assert_eq!(collector.event_count() as u64, recorded, "every event delivered");
    assert_eq!(rw.stats().core.no_context, 0);
    rw.races()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reply_oneshot_orders_the_workers_write_before_the_handlers_read() {
    let report = local("reply-tracked", true, false).await;
    assert!(report.is_empty(), "{report}");
    assert_eq!(report.accesses_observed(), 2);
    let report = local("reply-plain", false, false).await;
    assert_eq!(report.races_on("result").count(), 1, "{report}");
    assert_eq!(report.racing_pairs(), 1, "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn job_mpsc_orders_the_handlers_write_before_the_workers_read() {
    let report = local("job-tracked", true, true).await;
    assert!(report.is_empty(), "{report}");
    assert_eq!(report.accesses_observed(), 2);
    let report = local("job-plain", false, true).await;
    assert_eq!(report.races_on("input").count(), 1, "{report}");
    assert_eq!(report.racing_pairs(), 1, "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bounded_mpsc_and_oneshot_keep_tokios_semantics() {
    let rw = Arc::new(RacewayClient::local("channel-api"));
    let rw2 = rw.clone();
    rw.in_new_trace(async move {
        // capacity 0 is refused by tokio; the wrapper makes it 1 instead of panicking
        let (tx, mut rx) = mpsc::channel::<String>(0, rw2.clone(), "bounded");
        assert_eq!(tx.name(), "bounded");
        tx.try_send("a".into()).expect("room for one");
        match tx.try_send("b".into()) {
            Err(mpsc::TrySendError::Full(v)) => assert_eq!(v, "b"),
            other => panic!("expected Full, got {other:?}"),
        }
        assert_eq!(rx.recv().await.as_deref(), Some("a"));
        assert_eq!(rx.try_recv(), Err(mpsc::TryRecvError::Empty));
        let tx2 = tx.clone();
        tx2.send("c".into()).await.expect("send");
        drop((tx, tx2));
        assert_eq!(rx.recv().await.as_deref(), Some("c"));
        assert_eq!(rx.recv().await, None);

        let (tx, rx) = mpsc::unbounded_channel::<u32>(rw2.clone(), "unbounded");
        drop(rx);
        assert_eq!(tx.send(3).map_err(|e| e.0), Err(3));

        let (tx, rx) = oneshot::channel::<u32>(rw2.clone(), "dropped");
        drop(tx);
        assert!(rx.await.is_err());
        let (tx, rx) = oneshot::channel::<u32>(rw2.clone(), "closed");
        drop(rx);
        assert!(tx.is_closed());
        assert_eq!(tx.send(9), Err(9));
    })
    .await;
    // every send and receive above was recorded in the flow
    assert_eq!(rw.stats().core.no_context, 0);
    rw.shutdown();
}

async fn server_count(tracked: bool, job: bool) -> Option<usize> {
    let server = tokio::task::spawn_blocking(RealServer::start_default)
        .await
        .ok()
        .flatten()?;
    let mut config = Config::new("channels");
    config.endpoint = Some(server.url());
    config.instance_id = Some("test".into());
    config.export.flush_interval = Duration::from_millis(50);
    let rw = Arc::new(RacewayClient::from_config(config).expect("config"));
    let variable = if job {
        job_scenario(rw.clone(), tracked).await;
        "input"
    } else {
        reply_scenario(rw.clone(), tracked).await;
        "result"
    };
    rw.flush(Duration::from_secs(10)).await.expect("flush");
    let recorded = rw.stats().core.recorded;
    let races = tokio::task::spawn_blocking(move || server.race_pairs_after(recorded).count(variable))
        .await
        .ok()?;
    Some(races)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_server_agrees_on_the_reply_and_job_channels() {
    let Some(tracked) = server_count(true, false).await else {
        return;
    };
    assert_eq!(tracked, 0, "reply, tracked");
    assert_eq!(server_count(false, false).await, Some(1), "reply, plain");
    assert_eq!(server_count(true, true).await, Some(0), "job, tracked");
    assert_eq!(server_count(false, true).await, Some(1), "job, plain");
}

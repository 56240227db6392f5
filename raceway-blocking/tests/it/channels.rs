//! Tracked `std::sync::mpsc` channels (`raceway_blocking::channel::mpsc`): a message
//! orders what its sender did before the send before what the receiver does after the
//! receive. Each scenario runs twice, the same code with tracked and with plain channels:
//! 0 races with tracked ones, 1 without (the local analyser, and the real server when its
//! binary is there). The worker is a plain `std::thread::spawn`ed thread: nothing but the
//! channels connects it to the handler.

use crate::common;

use std::sync::mpsc as plain;
use std::sync::Arc;
use std::time::Duration;

use raceway_blocking::channel::mpsc;
use raceway_blocking::{RacewayClient, Tracked};
use raceway_proto::analysis::RaceReport;
use raceway_testkit::RealServer;
use serde_json::Value;

fn client(service: &str) -> (Arc<RacewayClient>, raceway_testkit::Collector) {
    let (c, collector) = common::analysed_client(service);
    (Arc::new(c), collector)
}

/// A reply channel orders the worker's write before the handler's next read. The job goes
/// over a plain channel in both variants, so only the reply can order anything.
fn reply_scenario(rw: &Arc<RacewayClient>, tracked: bool) {
    let result = Arc::new(Tracked::new(0u32, rw.clone(), "result"));
    let (jobs, queue) = plain::channel::<u32>();
    if tracked {
        let (replies, answers) = mpsc::channel::<()>(rw.clone(), "replies");
        let result2 = result.clone();
        let worker = std::thread::spawn(move || {
            for n in queue.iter() {
                result2.set(n * 2); // the worker's write
                let _ = replies.send(());
            }
        });
        jobs.send(21).ok();
        answers.recv().ok();
        assert_eq!(result.get(), 42); // the handler's next read
        drop(jobs);
        worker.join().ok();
    } else {
        let (replies, answers) = plain::channel::<()>();
        let result2 = result.clone();
        let worker = std::thread::spawn(move || {
            for n in queue.iter() {
                result2.set(n * 2); // the worker's write
                let _ = replies.send(());
            }
        });
        jobs.send(21).ok();
        answers.recv().ok();
        assert_eq!(result.get(), 42); // the handler's next read
        drop(jobs);
        worker.join().ok();
    }
}

/// A job channel orders what the handler wrote before the send before the worker's read.
fn job_scenario(rw: &Arc<RacewayClient>, tracked: bool) {
    let input = Arc::new(Tracked::new(0u32, rw.clone(), "input"));
    let input2 = input.clone();
    if tracked {
        let (jobs, queue) = mpsc::sync_channel::<()>(1, rw.clone(), "jobs");
        let worker = std::thread::spawn(move || {
            queue.recv().ok();
            input2.get()
        });
        input.set(7);
        jobs.send(()).ok();
        assert_eq!(worker.join().unwrap_or(0), 7);
    } else {
        let (jobs, queue) = plain::sync_channel::<()>(1);
        let worker = std::thread::spawn(move || {
            queue.recv().ok();
            input2.get()
        });
        input.set(7);
        jobs.send(()).ok();
        assert_eq!(worker.join().unwrap_or(0), 7);
    }
}

fn local(service: &str, scenario: fn(&Arc<RacewayClient>, bool), tracked: bool) -> RaceReport {
    let (rw, collector) = client(service);
    scenario(&rw, tracked);
    let report = rw.races();
    common::assert_delivered(&rw, &collector);
    report
}

#[test]
fn reply_channel_orders_the_workers_write_before_the_handlers_read() {
    let report = local("reply-tracked", reply_scenario, true);
    assert!(report.is_empty(), "{report}");
    assert_eq!(report.accesses_observed(), 2);
    let report = local("reply-plain", reply_scenario, false);
    assert_eq!(report.races_on("result").count(), 1, "{report}");
    assert_eq!(report.racing_pairs(), 1, "{report}");
}

#[test]
fn job_channel_orders_the_handlers_write_before_the_workers_read() {
    let report = local("job-tracked", job_scenario, true);
    assert!(report.is_empty(), "{report}");
    assert_eq!(report.accesses_observed(), 2);
    let report = local("job-plain", job_scenario, false);
    assert_eq!(report.races_on("input").count(), 1, "{report}");
    assert_eq!(report.racing_pairs(), 1, "{report}");
}

#[test]
fn the_receive_joins_the_send_for_the_servers_ancestry_walk() {
    let (rw, collector) = client("channel-events");
    reply_scenario(&rw, true);
    common::assert_delivered(&rw, &collector);
    let events = collector.events_json();
    let send = events
        .iter()
        .find(|e| e["kind"]["Custom"]["name"] == "channel_send")
        .expect("a channel_send event");
    assert_eq!(send["kind"]["Custom"]["data"]["channel"], "replies");
    let location = send["kind"]["Custom"]["data"]["location"].as_str().unwrap_or("");
    assert!(location.starts_with(file!()), "{location}");
    let recv = events
        .iter()
        .find(|e| e["kind"]["AsyncAwait"]["awaited_at"] == "recv replies")
        .expect("an AsyncAwait for the receive");
    // the receive's parent is the send (different threads, different traces here: the
    // clock orders them; in one trace the parent link is what the server walks)
    assert_ne!(recv["metadata"]["thread_id"], send["metadata"]["thread_id"]);
    let send_clock = clock(send);
    let recv_clock = clock(recv);
    for (component, v) in &send_clock {
        let got = recv_clock.iter().find(|(c, _)| c == component).map(|(_, v)| *v);
        assert!(got >= Some(*v), "{component}: {got:?} < {v}");
    }
}

#[test]
fn a_send_in_one_trace_is_the_parent_of_the_receive() {
    let (rw, collector) = client("channel-parent");
    let (tx, rx) = mpsc::channel::<u8>(rw.clone(), "same-trace");
    {
        let _trace = rw.start_trace();
        let flow = rw.fork_current("worker").expect("in a flow");
        let rw2 = rw.clone();
        let worker = std::thread::spawn(move || rw2.in_flow(flow, || rx.recv().ok()));
        tx.send(5).ok();
        assert_eq!(worker.join().ok().flatten(), Some(5));
    }
    common::assert_delivered(&rw, &collector);
    let events = collector.events_json();
    let send = events
        .iter()
        .find(|e| e["kind"]["Custom"]["name"] == "channel_send")
        .expect("send");
    let recv = events
        .iter()
        .find(|e| e["kind"]["AsyncAwait"]["awaited_at"] == "recv same-trace")
        .expect("receive");
    assert_eq!(recv["trace_id"], send["trace_id"]);
    assert_eq!(recv["parent_id"], send["id"]);
}

fn clock(e: &Value) -> Vec<(String, u64)> {
    e["causality_vector"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|p| Some((p[0].as_str()?.to_string(), p[1].as_u64()?)))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn errors_give_the_value_back_and_iteration_ends_with_the_senders() {
    let rw = Arc::new(RacewayClient::local("channel-errors"));
    let (tx, rx) = mpsc::sync_channel::<String>(1, rw.clone(), "bounded");
    assert_eq!(tx.name(), "bounded");
    tx.try_send("a".into()).expect("room for one");
    match tx.try_send("b".into()) {
        Err(mpsc::TrySendError::Full(v)) => assert_eq!(v, "b"),
        other => panic!("expected Full, got {other:?}"),
    }
    assert_eq!(rx.recv_timeout(Duration::from_millis(100)).as_deref(), Ok("a"));
    assert_eq!(rx.try_recv(), Err(mpsc::TryRecvError::Empty));
    let tx2 = tx.clone();
    tx2.send("c".into()).expect("send");
    drop((tx, tx2));
    assert_eq!(rx.iter().collect::<Vec<_>>(), ["c"]);
    assert_eq!(rx.recv(), Err(mpsc::RecvError));

    let (tx, rx) = mpsc::channel::<u32>(rw.clone(), "unbounded");
    drop(rx);
    assert_eq!(tx.send(3).map_err(|e| e.0), Err(3));
    rw.shutdown();
}

fn server_verdict(scenario: fn(&Arc<RacewayClient>, bool), tracked: bool, variable: &str) -> Option<usize> {
    let server = RealServer::start_default()?;
    let mut config = raceway_blocking::Config::new("channels");
    config.endpoint = Some(server.url());
    config.instance_id = Some("test".into());
    config.export.flush_interval = Duration::from_millis(50);
    let rw = Arc::new(RacewayClient::from_config(config).expect("config"));
    scenario(&rw, tracked);
    rw.flush(Duration::from_secs(10)).expect("flush");
    let races = server.race_pairs_after(rw.stats().core.recorded);
    Some(races.count(variable))
}

#[test]
fn real_server_reply_channel_gives_no_race_and_a_plain_one_gives_one() {
    let Some(tracked) = server_verdict(reply_scenario, true, "result") else {
        return;
    };
    assert_eq!(tracked, 0);
    assert_eq!(server_verdict(reply_scenario, false, "result"), Some(1));
}

#[test]
fn real_server_job_channel_gives_no_race_and_a_plain_one_gives_one() {
    let Some(tracked) = server_verdict(job_scenario, true, "input") else {
        return;
    };
    assert_eq!(tracked, 0);
    assert_eq!(server_verdict(job_scenario, false, "input"), Some(1));
}

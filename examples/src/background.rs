//! The two background-task patterns of the published SDK's README, written with this
//! SDK's helpers.
//!
//! 1. A job-queue worker: the handler forks a flow for the job and sends it through the
//!    channel with the job; the worker runs the job in that flow
//!    ([`Instrumented`]) and answers with the result and the flow's end; the handler joins
//!    it, so what the worker did happens before what the handler does next.
//! 2. A spawned timeout task: [`RacewayClient::spawn`] runs it as a flow forked from the
//!    request, in the same trace.
//!
//! [`tracked`] is pattern 1 again with tracked channels
//! ([`raceway_rt_tokio::channel`]): no context in the job, no flow end in the answer, no
//! join by hand; the channels carry the causality.

use std::sync::Arc;
use std::time::Duration;

use raceway_proto::analysis::RaceReport;
use raceway_proto::FlowEnd;
use raceway_rt_tokio::{Instrumented, RacewayClient, RacewayContext};
use tokio::sync::{mpsc, oneshot};

/// A job and where its answer goes.
pub struct Job {
    /// What to process.
    pub data: String,
    /// The flow the job runs in, forked from the request that enqueued it.
    pub context: Option<RacewayContext>,
    /// The answer: the result and the end of the job's flow, for the join.
    pub reply: oneshot::Sender<(String, Option<FlowEnd>)>,
}

/// The worker: processes jobs, each in the flow that came with it.
pub async fn worker(mut jobs: mpsc::Receiver<Job>, raceway: Arc<RacewayClient>) {
    while let Some(job) = jobs.recv().await {
        let rw = raceway.clone();
        let data = job.data.clone();
        let work = async move {
            rw.track_function_call("worker_process_job", &data);
            rw.track_state_change(
                "jobs.last_result",
                None::<String>,
                format!("processed {data}"),
                "Write",
            );
            format!("processed {data}")
        };
        let (result, end) = match job.context {
            Some(ctx) => Instrumented::new(ctx, work).await,
            None => (work.await, None),
        };
        let _ = job.reply.send((result, end));
    }
}

/// Pattern 1, as a handler would do it: enqueue a job in a forked flow, wait for the
/// answer, join the job's flow, then read what the worker wrote.
pub async fn enqueue_and_wait(
    raceway: &RacewayClient,
    jobs: &mpsc::Sender<Job>,
    data: &str,
) -> Option<String> {
    let context = raceway.fork_current("enqueue_job").map(RacewayContext::from_flow);
    let (tx, rx) = oneshot::channel();
    jobs.send(Job {
        data: data.into(),
        context,
        reply: tx,
    })
    .await
    .ok()?;
    let (result, end) = rx.await.ok()?;
    if let Some(end) = end {
        raceway.join_flow(&end);
    }
    raceway.track_state_change("jobs.last_result", None::<String>, result.clone(), "Read");
    Some(result)
}

/// Pattern 2: a request that spawns a timeout task in a forked flow and does not wait.
pub async fn handle_with_timeout(raceway: &RacewayClient, request_id: &str, timeout: Duration) {
    raceway.track_function_call("handle_request", request_id);
    let rw = raceway.clone();
    let id = request_id.to_string();
    let _detached = raceway.spawn(async move {
        tokio::time::sleep(timeout).await;
        rw.track_function_call("timeout_expired", format!("request_id={id}"));
    });
}

/// Runs both patterns in one request each and returns the race report (expected empty).
pub async fn run(raceway: Arc<RacewayClient>) -> RaceReport {
    let (tx, rx) = mpsc::channel(8);
    let worker = tokio::spawn(worker(rx, raceway.clone()));
    let rw = raceway.clone();
    let answer = raceway
        .in_new_trace(async move { enqueue_and_wait(&rw, &tx, "order-42").await })
        .await
        .0;
    println!("job answered: {answer:?}");
    let rw = raceway.clone();
    raceway
        .in_new_trace(async move { handle_with_timeout(&rw, "req-7", Duration::from_millis(20)).await })
        .await;
    tokio::time::sleep(Duration::from_millis(60)).await;
    worker.abort();
    raceway.races()
}

/// Pattern 1 with tracked channels: the job goes over a tracked `mpsc`, the answer over a
/// tracked `oneshot`. The worker is one long-lived flow; each receive joins the sender's
/// flow into it, and the handler's await of the answer joins the worker's, so the
/// worker's write happens before the handler's read with no `FlowEnd` plumbing.
pub mod tracked {
    use std::sync::Arc;

    use raceway_proto::analysis::RaceReport;
    use raceway_rt_tokio::channel::{mpsc, oneshot};
    use raceway_rt_tokio::RacewayClient;

    /// A job and where its answer goes: nothing but the data and a tracked reply channel.
    pub struct Job {
        /// What to process.
        pub data: String,
        /// The answer.
        pub reply: oneshot::Sender<String>,
    }

    /// The worker: processes jobs in its own flow (start it with [`RacewayClient::spawn`]).
    pub async fn worker(mut jobs: mpsc::Receiver<Job>, raceway: Arc<RacewayClient>) {
        while let Some(job) = jobs.recv().await {
            raceway.track_function_call("worker_process_job", &job.data);
            let result = format!("processed {}", job.data);
            raceway.track_state_change("jobs.last_result", None::<String>, result.clone(), "Write");
            let _ = job.reply.send(result);
        }
    }

    /// Enqueue a job, wait for the answer, then read what the worker wrote: ordered by the
    /// reply channel alone.
    pub async fn enqueue_and_wait(
        raceway: &Arc<RacewayClient>,
        jobs: &mpsc::Sender<Job>,
        data: &str,
    ) -> Option<String> {
        let (reply, answer) = oneshot::channel(raceway.clone(), "job-reply");
        jobs.send(Job {
            data: data.into(),
            reply,
        })
        .await
        .ok()?;
        let result = answer.await.ok()?;
        raceway.track_state_change("jobs.last_result", None::<String>, result.clone(), "Read");
        Some(result)
    }

    /// Runs one request through the worker and returns the race report (expected empty).
    pub async fn run(raceway: Arc<RacewayClient>) -> RaceReport {
        let (tx, rx) = mpsc::channel(8, raceway.clone(), "jobs");
        let worker = raceway.spawn(worker(rx, raceway.clone()));
        let rw = raceway.clone();
        let answer = raceway
            .in_new_trace(async move { enqueue_and_wait(&rw, &tx, "order-42").await })
            .await
            .0;
        println!("job answered: {answer:?}");
        worker.abort();
        raceway.races()
    }
}

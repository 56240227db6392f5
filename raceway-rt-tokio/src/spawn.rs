//! Carrying a flow into spawned tasks, and joining them back.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use pin_project::pin_project;
use raceway_proto::FlowEnd;
use tokio::task::futures::TaskLocalFuture;
use tokio::task::{JoinError, JoinHandle};

use crate::context::{RacewayContext, RACEWAY_CONTEXT};
use crate::RacewayClient;

/// A future running inside a flow of its own: [`RACEWAY_CONTEXT`] holds that flow while
/// the future is polled. Made by [`RacewayClient::instrument`] (which forks the current
/// flow) or [`Instrumented::new`]. Its output carries the flow's end, for
/// [`RacewayClient::join_flow`].
#[pin_project]
#[must_use = "futures do nothing unless you .await or poll them"]
pub struct Instrumented<F: Future> {
    #[pin]
    inner: TaskLocalFuture<RefCell<RacewayContext>, F>,
}

impl<F: Future> Instrumented<F> {
    /// Runs `future` in `context`.
    pub fn new(context: RacewayContext, future: F) -> Self {
        Self {
            inner: RACEWAY_CONTEXT.scope(RefCell::new(context), future),
        }
    }
}

impl<F: Future> Future for Instrumented<F> {
    type Output = (F::Output, Option<FlowEnd>);

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        match this.inner.as_mut().poll(cx) {
            Poll::Ready(out) => {
                let end = this.inner.take_value().map(|cell| cell.into_inner().flow.end());
                Poll::Ready((out, end))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

/// A spawned task's handle. Awaiting [`TrackedJoinHandle::join`] joins the task's flow
/// into the awaiting flow: everything the task recorded happens before what the awaiting
/// flow records next.
#[derive(Debug)]
#[must_use = "dropping the handle detaches the task; join it to order it before what follows"]
pub struct TrackedJoinHandle<T> {
    pub(crate) handle: JoinHandle<(T, Option<FlowEnd>)>,
    pub(crate) client: RacewayClient,
}

impl<T> TrackedJoinHandle<T> {
    /// Waits for the task and joins its flow into the current one.
    pub async fn join(self) -> Result<T, JoinError> {
        let (out, end) = self.handle.await?;
        if let Some(end) = end {
            self.client.join_flow(&end);
        }
        Ok(out)
    }

    /// Aborts the task.
    pub fn abort(&self) {
        self.handle.abort();
    }

    /// True when the task has finished.
    pub fn is_finished(&self) -> bool {
        self.handle.is_finished()
    }
}

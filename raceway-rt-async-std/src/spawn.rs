//! Futures that run inside a flow, and carrying flows into spawned tasks and back.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use pin_project::pin_project;
use raceway_proto::{Flow, FlowEnd};

use crate::context::{Installed, RacewayContext};

/// A future running inside a flow of its own.
///
/// It owns the flow and moves it into this thread's slot (the crate's
/// [`ContextStore`](raceway_proto::boundary::ContextStore)) for the duration of each poll,
/// moving it back out afterwards (also when the poll panics). So `track_*` calls made
/// while the future runs land in its flow, whichever executor polls it and on whichever
/// thread. Made by [`crate::RacewayClient::instrument`] (which forks the current flow),
/// [`crate::RacewayClient::in_new_trace`], [`RacewayContext::scope`] or
/// [`Instrumented::new`]. Its output carries the flow's end, for
/// [`crate::RacewayClient::join_flow`].
#[pin_project]
#[must_use = "futures do nothing unless you .await or poll them"]
#[derive(Debug)]
pub struct Instrumented<F> {
    #[pin]
    inner: F,
    flow: Option<Flow>,
}

impl<F: Future> Instrumented<F> {
    /// Runs `future` in `context`.
    pub fn new(context: RacewayContext, future: F) -> Self {
        Self {
            inner: future,
            flow: Some(context.flow),
        }
    }

    /// The flow the future runs in (`None` only while it is being polled).
    pub fn flow(&self) -> Option<&Flow> {
        self.flow.as_ref()
    }
}

impl<F: Future> Future for Instrumented<F> {
    type Output = (F::Output, Option<FlowEnd>);

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let polled = {
            let _installed = Installed::new(&mut *this.flow);
            this.inner.poll(cx)
        };
        match polled {
            Poll::Ready(out) => Poll::Ready((out, this.flow.as_ref().map(Flow::end))),
            Poll::Pending => Poll::Pending,
        }
    }
}

/// A task spawned by [`crate::RacewayClient::spawn`]. Awaiting [`TrackedJoinHandle::join`]
/// joins the task's flow into the awaiting flow: everything the task recorded happens
/// before what the awaiting flow records next.
#[cfg(feature = "async-std")]
#[derive(Debug)]
#[must_use = "dropping the handle detaches the task; join it to order it before what follows"]
pub struct TrackedJoinHandle<T> {
    pub(crate) handle: async_std::task::JoinHandle<(T, Option<FlowEnd>)>,
    pub(crate) client: crate::RacewayClient,
}

#[cfg(feature = "async-std")]
impl<T> TrackedJoinHandle<T> {
    /// Waits for the task and joins its flow into the current one. A panic in the task is
    /// propagated here, as `async_std::task::JoinHandle` does.
    pub async fn join(self) -> T {
        let (out, end) = self.handle.await;
        if let Some(end) = end {
            self.client.join_flow(&end);
        }
        out
    }

    /// Cancels the task (its flow is not joined).
    pub async fn cancel(self) -> Option<T> {
        self.handle.cancel().await.map(|(out, _)| out)
    }

    /// The async-std task.
    pub fn task(&self) -> &async_std::task::Task {
        self.handle.task()
    }
}

//! The task-local context: which flow the current task is.

use std::cell::RefCell;

use raceway_proto::boundary::ContextStore;
use raceway_proto::ids::{IdGenerator, SpanId, TraceId};
use raceway_proto::system::FastIds;
use raceway_proto::Flow;

tokio::task_local! {
    /// The current task's Raceway context. The middleware and the spawn helpers install
    /// it; `track_*` calls read it. Both background-task patterns of the published SDK's
    /// README work with it as written:
    ///
    /// ```
    /// # use raceway_rt_tokio::{RacewayContext, RACEWAY_CONTEXT};
    /// # use std::cell::RefCell;
    /// # async fn f() {
    /// let captured = RACEWAY_CONTEXT.try_with(|ctx| ctx.borrow().clone()).ok();
    /// if let Some(ctx) = captured {
    ///     RACEWAY_CONTEXT.scope(RefCell::new(ctx), async { /* tracked work */ }).await;
    /// }
    /// # }
    /// ```
    pub static RACEWAY_CONTEXT: RefCell<RacewayContext>;
}

/// One task's place in a trace: a [`Flow`] (trace, `thread_id`, vector clock, position).
///
/// **Cloning forks.** A clone is a new flow of the same trace whose clock orders it after
/// everything the original recorded so far, with its own `thread_id`: exactly what a
/// context copied into a worker or a spawned task is. (The published crate's clone shared
/// the flow, so a worker and its request looked like one thread and their races were
/// invisible.) To fork *and* join, prefer [`crate::RacewayClient::spawn`].
#[derive(Debug)]
pub struct RacewayContext {
    pub(crate) flow: Flow,
}

impl Clone for RacewayContext {
    fn clone(&self) -> Self {
        Self {
            flow: self.flow.fork_detached(),
        }
    }
}

impl RacewayContext {
    /// A root context for `trace_id` (a UUID, or 32 hex digits; anything else starts a new
    /// trace), as the published crate's constructor.
    pub fn new(trace_id: String, service_name: String, instance_id: String) -> Self {
        let trace = trace_id.parse::<TraceId>().unwrap_or_else(|_| FastIds.trace_id());
        let span: SpanId = FastIds.span_id();
        Self {
            flow: Flow::detached_root(trace, span, &service_name, &instance_id),
        }
    }

    /// Wraps a flow.
    pub fn from_flow(flow: Flow) -> Self {
        Self { flow }
    }

    /// The flow.
    pub fn flow(&self) -> &Flow {
        &self.flow
    }

    /// Unwraps the flow.
    pub fn into_flow(self) -> Flow {
        self.flow
    }

    /// The trace id, hyphenated.
    pub fn trace_id(&self) -> String {
        self.flow.trace_id().to_string()
    }

    /// The flow's `thread_id`.
    pub fn thread_id(&self) -> &str {
        self.flow.thread_id()
    }
}

/// [`ContextStore`] over [`RACEWAY_CONTEXT`].
#[derive(Debug, Default, Clone, Copy)]
pub struct TaskLocalStore;

impl ContextStore for TaskLocalStore {
    fn with_flow(&self, f: &mut dyn FnMut(&mut Flow)) -> bool {
        RACEWAY_CONTEXT
            .try_with(|cell| match cell.try_borrow_mut() {
                Ok(mut ctx) => {
                    f(&mut ctx.flow);
                    true
                }
                Err(_) => false,
            })
            .unwrap_or(false)
    }
}

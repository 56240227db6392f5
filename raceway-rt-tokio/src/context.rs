//! The task-local context: which flow the current task is.

use std::cell::RefCell;

use raceway_proto::boundary::ContextStore;
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

raceway_proto::flow_context! {
/// One task's place in a trace: a [`Flow`] (trace, `thread_id`, vector clock, position).
///
/// **Cloning forks.** A clone is a new flow of the same trace whose clock orders it after
/// everything the original recorded so far, with its own `thread_id`: exactly what a
/// context copied into a worker or a spawned task is. (The published crate's clone shared
/// the flow, so a worker and its request looked like one thread and their races were
/// invisible.) To fork *and* join, prefer [`crate::RacewayClient::spawn`].
pub struct RacewayContext;
}

/// [`ContextStore`] over [`RACEWAY_CONTEXT`].
#[derive(Debug, Default, Clone, Copy)]
pub struct TaskLocalStore;

impl ContextStore for TaskLocalStore {
    #[inline]
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

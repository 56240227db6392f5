//! Raceway race detection and distributed tracing for tokio and axum services.
//!
//! Add the middleware, record what your handlers do to shared state, and Raceway tells
//! you which of those accesses race. With no endpoint configured, the built-in local
//! analyser finds the races in-process ([`ClientCore::races`](raceway_proto::client::ClientCore::races)); with one, events go to
//! a Raceway server in the background.
//!
//! ```
//! use std::sync::Arc;
//! use axum::{extract::State, routing::post, Router};
//! use raceway_rt_tokio::RacewayClient;
//!
//! async fn transfer(State(raceway): State<Arc<RacewayClient>>) -> &'static str {
//!     raceway.track_state_change("alice.balance", None::<i64>, 100, "Read");
//!     raceway.track_state_change("alice.balance", Some(100), 90, "Write");
//!     "ok"
//! }
//!
//! let raceway = Arc::new(RacewayClient::local("bank"));
//! let app: Router = Router::new()
//!     .route("/transfer", post(transfer))
//!     .layer(axum::middleware::from_fn_with_state(raceway.clone(), RacewayClient::middleware))
//!     .with_state(raceway);
//! ```
//!
//! Moving from the published `raceway` 0.1 crate: change the dependency line; the
//! README's API is here as written (and its middleware line compiles here, which it does
//! not against 0.1). Differences worth knowing: every request, spawned task and cloned
//! context is its own flow (its own `thread_id` and clock component), which is what lets
//! the server find the races that exist and no others; events outside any flow are
//! counted, not silently attributed to an OS thread.
//!
//! # Features
//! - `rustls`: `https://` endpoints.
//! - `reqwest`: `PropagateMiddleware`, the propagating client integration for reqwest
//!   (through `reqwest-middleware`), what [`RacewayClient::propagate_layer`] is for tower
//!   clients.
#![warn(missing_docs)]

pub mod channel;
mod client;
mod context;
mod middleware;
#[cfg(feature = "reqwest")]
mod reqwest;
mod spawn;
mod sync;
pub mod testing;
mod tracked;

pub use client::RacewayClient;
pub use context::{RacewayContext, TaskLocalStore, RACEWAY_CONTEXT};
pub use middleware::{PropagateLayer, PropagateService, RacewayLayer, RacewayService};
pub use raceway_proto::api::*;
/// The `tracing` layer with this crate's client filled in (`client.tracing_layer()`).
#[cfg(feature = "tracing")]
pub type TracingLayer =
    raceway_proto::tracing_layer::TracingLayer<raceway_proto::lifecycle::ClientHandle<TaskLocalStore>>;
#[cfg(feature = "reqwest")]
pub use reqwest::PropagateMiddleware;
pub use spawn::{Instrumented, TrackedJoinHandle};
pub use sync::{
    AsyncTrackedGuard, AsyncTrackedMutex, AsyncTrackedRwLock, TrackedMutex, TrackedMutexGuard, TrackedRwLock,
    TrackedRwLockReadGuard, TrackedRwLockWriteGuard,
};
pub use tracked::{
    Tracked, TrackedAtomicBool, TrackedAtomicI64, TrackedAtomicU32, TrackedAtomicU64, TrackedAtomicUsize,
    TrackedOpaque,
};

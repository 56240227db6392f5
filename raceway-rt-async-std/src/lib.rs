//! Raceway race detection and distributed tracing for async-std, smol and any other
//! executor.
//!
//! Run each request, task or job as a flow, record what it does to shared state, and
//! Raceway tells you which of those accesses race. With no endpoint configured, the
//! built-in local analyser finds the races in-process ([`ClientCore::races`](raceway_proto::client::ClientCore::races)); with
//! one, events go to a Raceway server in the background. The logic (events, clocks,
//! batching, retries, encoding, analysis) lives in `raceway-proto`; this crate only
//! carries flows through futures, serves requests, and runs the exporter.
//!
//! ```
//! use std::time::Duration;
//! use raceway_rt_async_std::RacewayClient;
//!
//! let client = RacewayClient::local("bank");
//! async_std::task::block_on(async {
//!     // Two requests, each its own flow, both read then write the balance without a lock.
//!     let transfer = |c: RacewayClient| async move {
//!         c.serve_request([], "POST", "/transfer", async {
//!             c.track_state_change("alice.balance", None::<i64>, 100, "Read");
//!             async_std::task::sleep(Duration::from_millis(5)).await;
//!             c.track_state_change("alice.balance", Some(100), 90, "Write");
//!             200u16
//!         })
//!         .await
//!     };
//!     let a = async_std::task::spawn(transfer(client.clone()));
//!     let b = async_std::task::spawn(transfer(client.clone()));
//!     a.await;
//!     b.await;
//! });
//! assert_eq!(client.races().races_on("alice.balance").count(), 1);
//! client.shutdown();
//! ```
//!
//! async-std has been discontinued upstream in favour of smol. Nothing here depends on
//! async-std except [`RacewayClient::spawn`] (the `async-std` feature): on smol or any
//! other executor, wrap a future with [`RacewayClient::instrument`], spawn it there, and
//! join its flow with [`RacewayClient::join_flow`].
//!
//! # Design
//!
//! **Context: a future wrapper over a thread-local slot.** [`Instrumented`] owns its
//! flow and moves it into a thread-local slot for the duration of each poll, moving it
//! back out afterwards (through a drop guard, so also when the poll panics); the
//! [`ContextStore`](raceway_proto::boundary::ContextStore) is that slot
//! ([`ThreadLocalStore`]). Between polls the flow travels with the future, so it follows
//! the task across `.await` points and across executor threads. Chosen over async-std's
//! task-locals because:
//! - it is runtime-agnostic: the same wrapper works on async-std, smol,
//!   `futures::executor`, or a hand-written poll loop, and stays right after async-std is
//!   gone;
//! - a task-local belongs to the task that is running: it cannot be handed to a task
//!   about to be spawned, whereas a forked flow is a value that moves into the new
//!   task's future, and the wrapper's output hands the flow's end back for the join;
//! - task-locals exist only inside tasks (`block_on` and other executors' tasks have
//!   none), while a wrapper gives any future, even a sub-future of a task, a flow of its
//!   own (a request served inside a connection task, a `select!` branch).
//!
//! **Requests: a server-agnostic helper, plus hyper.** [`RacewayClient::serve_request`]
//! takes the request's headers, method and path and the handler's future and works with
//! any server; [`RacewayClient::serve_http`] does the same for servers on the `http`
//! crate's types and adds the `raceway-clock` response header. tide and async-h1 (http-rs)
//! are unmaintained, so the concrete integration, behind the `hyper` feature, is a hyper 1
//! `Service` wrapper ([`RacewayClient::hyper_service`]): hyper is well kept, owns no
//! runtime and runs on async-std or smol through `smol-hyper`'s `futures-io` adapter.
//!
//! **Exporter: the core's, on a thread of its own.** The export loop
//! ([`raceway_proto::driver`]) runs on a dedicated OS thread
//! ([`raceway_proto::background`], the same for every adapter) with the core's blocking
//! `UreqSender` (keep-alive, connect and request timeouts, auth headers, `Retry-After`).
//! It never blocks or depends on the application's executor, so it works with async-std,
//! smol or none, and a client can be made outside any executor and shut down from inside
//! one. Flush and shutdown are barriers awaitable on any executor (bounded by an
//! `async-io` timer), or blocking with a timeout.
//!
//! # Features
//! - `async-std` (default): [`RacewayClient::spawn`] and [`TrackedJoinHandle`].
//! - `hyper`: [`RacewayClient::hyper_service`].
//! - `rustls`: `https://` endpoints.
#![warn(missing_docs)]

pub mod channel;
mod client;
mod context;
#[cfg(feature = "hyper")]
mod hyper_service;
mod serve;
mod spawn;
mod sync;
pub mod testing;
mod tracked;

pub use client::RacewayClient;
pub use context::{RacewayContext, ThreadLocalStore};
#[cfg(feature = "hyper")]
pub use hyper_service::RacewayHyperService;
pub use raceway_proto::api::*;
/// The `tracing` layer with this crate's client filled in (`client.tracing_layer()`).
#[cfg(feature = "tracing")]
pub type TracingLayer =
    raceway_proto::tracing_layer::TracingLayer<raceway_proto::lifecycle::ClientHandle<ThreadLocalStore>>;
pub use serve::{insert_clock_header, ResponseHeaders, ResponseStatus, ServeHttp, ServeRequest};
pub use spawn::Instrumented;
#[cfg(feature = "async-std")]
pub use spawn::TrackedJoinHandle;
pub use sync::{
    AsyncTrackedGuard, AsyncTrackedMutex, AsyncTrackedRwLock, TrackedMutex, TrackedMutexGuard, TrackedRwLock,
    TrackedRwLockReadGuard, TrackedRwLockWriteGuard,
};
pub use tracked::{
    Tracked, TrackedAtomicBool, TrackedAtomicI64, TrackedAtomicU32, TrackedAtomicU64, TrackedAtomicUsize,
    TrackedOpaque,
};

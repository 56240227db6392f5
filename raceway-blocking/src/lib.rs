//! Raceway race detection and distributed tracing for threaded programs, with no async
//! runtime.
//!
//! Record what your threads do to shared state, and Raceway tells you which of those
//! accesses race. With no endpoint configured, the built-in local analyser finds the races
//! in-process (`client.races()`); with one, events go to a Raceway server from one
//! background thread. The client has the same surface as `raceway-rt-tokio`'s (same
//! method names and argument shapes): moving between them changes an import. All the
//! logic (events, vector clocks, flows, batching, retries, encoding, analysis) lives in
//! `raceway-proto`; this crate only adds what is specific to threads.
//!
//! # Quick start
//!
//! ```
//! use std::sync::atomic::{AtomicI64, Ordering};
//! use std::sync::Arc;
//! use raceway_blocking::RacewayClient;
//!
//! let client = RacewayClient::local("bank"); // no endpoint: analyse locally
//! let balance = Arc::new(AtomicI64::new(100));
//!
//! let workers: Vec<_> = (0..2)
//!     .map(|_| {
//!         let (client, balance) = (client.clone(), balance.clone());
//!         client.clone().spawn(move || {
//!             let seen = balance.load(Ordering::SeqCst);
//!             client.track_state_change("balance", None::<i64>, seen, "Read");
//!             balance.store(seen - 10, Ordering::SeqCst); // not atomic as a whole: a race
//!             client.track_state_change("balance", Some(seen), seen - 10, "Write");
//!         })
//!     })
//!     .collect();
//! for w in workers {
//!     w.join().unwrap();
//! }
//! // Joined: this read is ordered after both workers and races with neither.
//! client.track_state_change("balance", None::<i64>, balance.load(Ordering::SeqCst), "Read");
//!
//! let report = client.races();
//! println!("{report}");
//! assert_eq!(report.races_on("balance").count(), 1); // the two workers, and nothing else
//! client.shutdown();
//! ```
//!
//! Set `RACEWAY_ENDPOINT` and build the client with [`RacewayClient::from_env`] (or pass
//! the endpoint to [`RacewayClient::new`]) to send the same events to a Raceway server.
//!
//! # Why no runtime
//!
//! A threaded program (a CLI, a batch job, a blocking HTTP server, a test suite) should
//! not have to start an async runtime to be traced. Recording is a few clock increments
//! and a push into a bounded queue on the calling thread; exporting is blocking HTTP
//! (`ureq`) on one background thread. Nothing here depends on tokio or any executor.
//!
//! # The thread-local context, and guards
//!
//! Every thread is a flow: its own `thread_id` and vector-clock component, held in a
//! thread-local ([`ThreadLocalStore`]). A thread with no flow gets the root flow of a new
//! trace on its first event, so `std::thread::spawn`ed threads are analysed correctly as
//! they are. To choose the flow, enter one with a guard that restores the previous flow
//! when dropped:
//!
//! - [`RacewayClient::start_trace`]: a new trace (a job, a message);
//! - [`RacewayClient::enter`] / [`RacewayClient::in_flow`]: a flow you hold;
//! - [`RacewayClient::continue_from_headers`] / [`RacewayClient::continue_from_header_map`]:
//!   the trace of an incoming request, and [`RacewayClient::handle_request`], which also
//!   records the request and response and gives the `raceway-clock` to answer with.
//!
//! For outgoing calls, `propagation_headers` (`&str` map) and
//! [`ClientCore::inject_headers`] (`http::HeaderMap`) give the headers, and
//! [`ClientCore::merge_response`] (or `merge_response_headers` with `&str` pairs) takes
//! the callee's clock back from its response.
//!
//! # Spawn, join and scope
//!
//! [`RacewayClient::spawn`] starts a thread as a flow forked from the current one (what
//! happened before the spawn is before the thread), and [`TrackedJoinHandle::join`] joins
//! it back (what the thread did is before what follows the join). [`RacewayClient::scope`]
//! wraps `std::thread::scope` the same way; every scoped thread is joined into the
//! caller's flow at the end of the scope. Tracked locks ([`TrackedMutex`],
//! [`TrackedRwLock`]) record their acquires and releases, so accesses they protect do not
//! race.
//!
//! # The exporter thread
//!
//! With an endpoint, one thread named `raceway-exporter` runs the core's export loop: it
//! sleeps on a condition variable until a batch is full, the flush interval passes, or a
//! request comes; sends with `raceway_proto`'s `UreqSender` (keep-alive, connect and request timeouts,
//! `Authorization: Bearer` and `X-Raceway-Key` when a key is set); and retries as the core
//! decides (backoff, `Retry-After`). The queue is bounded: when the server is down for
//! long, new events are dropped and counted ([`ClientCore::stats`]), never blocking the
//! program. [`RacewayClient::flush`] is a barrier with a timeout;
//! [`RacewayClient::shutdown`] (and dropping the last clone) drains and stops the thread
//! within the shutdown timeout, and never waits on a thread stuck on a hanging server.
//!
//! # Features
//! - `rustls`: `https://` endpoints (ureq's rustls support). Without it, an `https://`
//!   endpoint is refused with [`ConfigError::TlsNotEnabled`].
//!
//! [`ClientCore::stats`]: raceway_proto::client::ClientCore::stats
#![warn(missing_docs)]

pub mod channel;
mod client;
mod context;
mod spawn;
mod sync;
pub mod testing;
mod tracked;

pub use client::{HandledRequest, RacewayClient};
pub use context::{FlowGuard, ThreadLocalStore};
pub use raceway_proto::api::*;
/// The `tracing` layer with this crate's client filled in (`client.tracing_layer()`).
#[cfg(feature = "tracing")]
pub type TracingLayer =
    raceway_proto::tracing_layer::TracingLayer<raceway_proto::lifecycle::ClientHandle<ThreadLocalStore>>;
pub use spawn::{TrackedJoinHandle, TrackedScope, TrackedScopedJoinHandle};
pub use sync::{
    TrackedMutex, TrackedMutexGuard, TrackedRwLock, TrackedRwLockReadGuard, TrackedRwLockWriteGuard,
};
pub use tracked::{
    Tracked, TrackedAtomicBool, TrackedAtomicI64, TrackedAtomicU32, TrackedAtomicU64, TrackedAtomicUsize,
    TrackedOpaque,
};

//! The background exporter every adapter runs: one OS thread running the core's
//! [`ExportDriver`] loop, and the flush and shutdown barriers answered from it.
//!
//! The thread sleeps on a `Condvar` until the next deadline the driver names, a wake from
//! the sink (a batch is full, a call was propagated), or a request (flush, shutdown). It
//! sends with a blocking [`Sender`] (`UreqSender` by default, feature `ureq`) on a second
//! thread, so that a shutdown can give up on a send stuck on a hanging server at its
//! deadline. Everything else (batching, retries, backoff, `Retry-After`, splitting, drop
//! counting) is the driver's.
//!
//! A thread of its own, with no executor in it, means the exporter works whatever the
//! application runs: a tokio runtime (multi- or current-thread), async-std, smol, plain
//! threads, several executors, or none, and a shutdown can block on it without deadlocking
//! the application's runtime. Flush and shutdown are barriers answered through an
//! [`ExportReply`] callback, so each caller picks its own way to wait: blocking
//! ([`ExporterThread::flush`], [`ExporterThread::shutdown`]) or a [`Barrier`] future that
//! any executor can await, raced against that runtime's own timer.
//!
//! Requests never block on the thread for longer than the caller's timeout, and a thread
//! still busy then (a send to a hanging collector) is left to finish on its own: it is
//! only joined once it said it finished.

use core::future::Future;
use core::mem;
use core::pin::Pin;
use core::task::{Context, Poll, Waker};
use core::time::Duration;
use std::boxed::Box;
use std::string::ToString;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Instant as StdInstant;
use std::vec::Vec;

use crate::boundary::Sender;
use crate::client::Sink;
use crate::config::Config;
use crate::driver::{ExportDriver, Step};
use crate::export::{ExportConfig, FlushTicket, SendOutcome};
use crate::system::SystemClock;

/// How much longer than its timeout a shutdown waits for the thread to report back.
pub const SHUTDOWN_MARGIN: Duration = Duration::from_millis(200);

/// The longest the loop sleeps without a deadline (it wakes on any request anyway).
const IDLE_NAP: Duration = Duration::from_secs(3600);

/// Where the exporter thread answers a flush or shutdown: called once, on the exporter
/// thread, with `true` when the barrier was reached (everything sent, or dropped and
/// counted before the call) and `false` when the exporter stopped first (a flush) or
/// abandoned events (a shutdown).
pub type ExportReply = Box<dyn FnOnce(bool) + Send>;

/// Why a flush or shutdown did not complete.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FlushError {
    /// The timeout passed first; what is left stays queued (flush) or was dropped and
    /// counted (shutdown).
    Timeout,
    /// The exporter is not running (already shut down, or could not start).
    NotRunning,
}

impl core::fmt::Display for FlushError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            FlushError::Timeout => "timed out before every event was sent",
            FlushError::NotRunning => "the exporter is not running",
        })
    }
}

impl core::error::Error for FlushError {}

#[derive(Default)]
struct State {
    /// Something happened: the exporter must not go to sleep.
    woken: bool,
    /// Flush requests not yet seen by the thread.
    flushes: Vec<ExportReply>,
    /// Shutdown asked for, with this drain timeout (the first request wins).
    shutdown: Option<Duration>,
    /// When the first shutdown asked the exporter to be done by: later shutdowns wait no
    /// longer than that, so a collector that hangs costs one timeout, once.
    shutdown_by: Option<StdInstant>,
    /// Answered with "nothing abandoned" once the thread ends.
    shutdown_replies: Vec<ExportReply>,
    /// The thread ended; `true` when nothing was abandoned.
    finished: Option<bool>,
}

#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    /// The exporter thread sleeps on it.
    wake: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn wake(&self) {
        self.lock().woken = true;
        self.wake.notify_one();
    }
}

/// The application's side of the exporter thread (named `raceway-exporter`), which runs
/// the core's export loop with a blocking [`Sender`].
///
/// Dropping it without a shutdown asks the thread to drain within the configured
/// shutdown timeout, and does not wait for it.
pub struct ExporterThread {
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
    default_shutdown: Duration,
}

impl core::fmt::Debug for ExporterThread {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let st = self.shared.lock();
        f.debug_struct("ExporterThread")
            .field("shutdown", &st.shutdown)
            .field("finished", &st.finished)
            .finish_non_exhaustive()
    }
}

impl ExporterThread {
    /// Starts the exporter thread for `sink` (a [`crate::client::ClientCore`]'s),
    /// with the export settings and shutdown timeout of `config`. `None` if the OS refuses
    /// a thread.
    pub fn start(sink: Arc<Sink>, sender: Box<dyn Sender + Send>, config: &Config) -> Option<Self> {
        let shared = Arc::new(Shared::default());
        let waker = shared.clone();
        sink.set_waker(Box::new(move || waker.wake()));
        let in_thread = shared.clone();
        let export = config.export.clone();
        let thread = std::thread::Builder::new()
            .name("raceway-exporter".to_string())
            .spawn(move || run(&in_thread, sink, export, sender))
            .ok()?;
        Some(Self {
            shared,
            thread: Mutex::new(Some(thread)),
            default_shutdown: config.shutdown_timeout,
        })
    }

    /// Asks for a flush barrier: `reply(true)` once everything recorded before the call
    /// was sent (or dropped and counted), `reply(false)` if the exporter stops first.
    /// `false` (and `reply` dropped uncalled) when the exporter is stopped or stopping.
    pub fn request_flush(&self, reply: ExportReply) -> bool {
        {
            let mut st = self.shared.lock();
            if st.finished.is_some() || st.shutdown.is_some() {
                return false;
            }
            st.flushes.push(reply);
            st.woken = true;
        }
        self.shared.wake.notify_one();
        true
    }

    /// Asks the thread to drain and stop within `within` (the first request's timeout
    /// wins); `reply(nothing_abandoned)` once it has stopped. `None` (and `reply` dropped
    /// uncalled) when it had already stopped; otherwise how long the caller should wait
    /// for the reply: `within`, or what is left of the first shutdown's time if that is
    /// less, plus [`SHUTDOWN_MARGIN`].
    pub fn request_shutdown(&self, within: Duration, reply: ExportReply) -> Option<Duration> {
        let wait = {
            let mut st = self.shared.lock();
            if st.finished.is_some() {
                return None;
            }
            let now = StdInstant::now();
            let wait = match st.shutdown_by {
                Some(deadline) => deadline.saturating_duration_since(now).min(within),
                None => {
                    st.shutdown_by = now.checked_add(within);
                    within
                }
            };
            st.shutdown.get_or_insert(within);
            st.shutdown_replies.push(reply);
            st.woken = true;
            wait
        };
        self.shared.wake.notify_one();
        Some(wait + SHUTDOWN_MARGIN)
    }

    /// True once a shutdown was asked for.
    pub fn shutdown_requested(&self) -> bool {
        self.shared.lock().shutdown.is_some()
    }

    /// A flush barrier, blocking the calling thread: `Ok` once everything recorded before
    /// the call was sent (or dropped and counted), `Err(Timeout)` at `timeout`.
    pub fn flush(&self, timeout: Duration) -> Result<(), FlushError> {
        let (reply, rx) = std_reply();
        if !self.request_flush(reply) {
            return Err(FlushError::NotRunning);
        }
        match rx.recv_timeout(timeout) {
            Ok(true) => Ok(()),
            Ok(false) | Err(RecvTimeoutError::Timeout) => Err(FlushError::Timeout),
            Err(RecvTimeoutError::Disconnected) => Err(FlushError::NotRunning),
        }
    }

    /// Drains, stops and joins the thread, blocking the calling thread for at most the
    /// wait [`ExporterThread::request_shutdown`] names. `Ok` when it had already stopped.
    pub fn shutdown(&self, within: Duration) -> Result<(), FlushError> {
        let (reply, rx) = std_reply();
        let Some(wait) = self.request_shutdown(within, reply) else {
            self.reap();
            return Ok(()); // already stopped
        };
        let result = match rx.recv_timeout(wait) {
            Ok(true) | Err(RecvTimeoutError::Disconnected) => Ok(()),
            Ok(false) | Err(RecvTimeoutError::Timeout) => Err(FlushError::Timeout),
        };
        self.reap();
        result
    }

    /// Joins the thread once it has said it finished (never blocks on a busy thread).
    pub fn reap(&self) {
        if self.shared.lock().finished.is_none() {
            return;
        }
        let mut slot = self.thread.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(t) = slot.take() {
            let _ = t.join();
        }
    }
}

impl Drop for ExporterThread {
    fn drop(&mut self) {
        let mut st = self.shared.lock();
        st.shutdown.get_or_insert(self.default_shutdown);
        st.woken = true;
        drop(st);
        self.shared.wake.notify_one();
    }
}

/// The answer to a flush or shutdown request, as a future any executor can await (race it
/// against that runtime's timer for a timeout). Resolves to `Some(done)` with the
/// exporter's answer, or `None` when the exporter went away without answering.
#[derive(Debug)]
#[must_use = "futures do nothing unless you .await or poll them"]
pub struct Barrier {
    slot: Arc<Mutex<BarrierSlot>>,
}

#[derive(Debug, Default)]
struct BarrierSlot {
    answer: Option<Option<bool>>,
    waker: Option<Waker>,
}

/// Calls the barrier's [`ExportReply`] with `None` when it is dropped unanswered.
struct BarrierReply {
    slot: Arc<Mutex<BarrierSlot>>,
    answered: bool,
}

impl BarrierReply {
    fn answer(&mut self, answer: Option<bool>) {
        self.answered = true;
        let waker = {
            let mut slot = self.slot.lock().unwrap_or_else(PoisonError::into_inner);
            slot.answer = Some(answer);
            slot.waker.take()
        };
        if let Some(w) = waker {
            w.wake();
        }
    }
}

impl Drop for BarrierReply {
    fn drop(&mut self) {
        if !self.answered {
            self.answer(None);
        }
    }
}

impl Barrier {
    /// A barrier and the reply that answers it.
    pub fn new() -> (ExportReply, Barrier) {
        let slot = Arc::new(Mutex::new(BarrierSlot::default()));
        let mut reply = BarrierReply {
            slot: slot.clone(),
            answered: false,
        };
        (Box::new(move |done| reply.answer(Some(done))), Barrier { slot })
    }
}

impl Future for Barrier {
    type Output = Option<bool>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<bool>> {
        let mut slot = self.slot.lock().unwrap_or_else(PoisonError::into_inner);
        match slot.answer {
            Some(answer) => Poll::Ready(answer),
            None => {
                slot.waker = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

/// A reply into a std channel, for a caller that blocks.
fn std_reply() -> (ExportReply, mpsc::Receiver<bool>) {
    let (tx, rx) = mpsc::sync_channel(1);
    (
        Box::new(move |done| {
            let _ = tx.try_send(done);
        }),
        rx,
    )
}

/// How often the exporter looks for a shutdown while a send is out.
const SEND_POLL: Duration = Duration::from_millis(50);

/// The thread that does the blocking sends, so that the exporter itself can give up on a
/// send at the shutdown deadline (a blocking send cannot be interrupted; a send given up
/// on finishes, or times out, on this thread, which then ends).
type Sent = (SendOutcome, Vec<u8>);

struct SendWorker {
    bodies: mpsc::Sender<(Vec<u8>, mpsc::SyncSender<Sent>)>,
}

impl SendWorker {
    fn start(mut sender: Box<dyn Sender + Send>) -> Option<Self> {
        let (bodies, rx) = mpsc::channel::<(Vec<u8>, mpsc::SyncSender<Sent>)>();
        std::thread::Builder::new()
            .name("raceway-sender".to_string())
            .spawn(move || {
                while let Ok((body, reply)) = rx.recv() {
                    let outcome = sender.send(&body);
                    let _ = reply.try_send((outcome, body));
                }
            })
            .ok()?;
        Some(Self { bodies })
    }

    /// Hands `body` to the sending thread; the outcome arrives on the returned channel.
    fn send(&self, body: Vec<u8>) -> Option<mpsc::Receiver<Sent>> {
        let (tx, rx) = mpsc::sync_channel(1);
        self.bodies.send((body, tx)).ok()?;
        Some(rx)
    }
}

/// Waits for a send's outcome, taking in a shutdown that arrives meanwhile; at the
/// shutdown deadline the send is given up on (reported as a timeout, so the driver then
/// abandons and counts what it holds).
fn await_outcome(
    shared: &Shared,
    driver: &mut ExportDriver,
    rx: &mpsc::Receiver<Sent>,
    now: &dyn Fn() -> crate::Instant,
) -> SendOutcome {
    loop {
        let t = now();
        let wait = driver
            .shutdown_deadline()
            .map_or(SEND_POLL, |d| d.saturating_duration_since(t).min(SEND_POLL));
        match rx.recv_timeout(wait) {
            Ok((outcome, body)) => {
                driver.recycle(body);
                return outcome;
            }
            Err(RecvTimeoutError::Disconnected) => return SendOutcome::ConnectionError,
            Err(RecvTimeoutError::Timeout) => {
                let shutdown = shared.lock().shutdown;
                if let Some(within) = shutdown {
                    if !driver.is_shutting_down() {
                        let t = now();
                        driver.begin_shutdown(t, t.saturating_add(within));
                    }
                }
                if driver.shutdown_deadline().is_some_and(|d| now() >= d) {
                    return SendOutcome::Timeout;
                }
            }
        }
    }
}

fn run(shared: &Shared, sink: Arc<Sink>, config: ExportConfig, sender: Box<dyn Sender + Send>) {
    let worker = SendWorker::start(sender);
    let clock = SystemClock::new();
    let now = || clock.instant();
    let idle = sink.clone();
    let mut driver = ExportDriver::new(sink, config, now());
    let mut flushes: Vec<(FlushTicket, ExportReply)> = Vec::new();

    let answer = |driver: &ExportDriver, flushes: &mut Vec<(FlushTicket, ExportReply)>| {
        let mut i = 0;
        while i < flushes.len() {
            if driver.is_flushed(flushes[i].0) {
                (flushes.swap_remove(i).1)(true);
            } else {
                i += 1;
            }
        }
    };

    loop {
        let (new_flushes, shutdown) = {
            let mut st = shared.lock();
            st.woken = false;
            (mem::take(&mut st.flushes), st.shutdown)
        };
        for reply in new_flushes {
            let ticket = driver.request_flush(now());
            flushes.push((ticket, reply));
        }
        if let Some(within) = shutdown {
            if !driver.is_shutting_down() {
                let t = now();
                driver.begin_shutdown(t, t.saturating_add(within));
            }
        }
        answer(&driver, &mut flushes);
        match driver.step(now()) {
            Step::Send { id, body } => {
                let outcome = match worker.as_ref().and_then(|w| w.send(body)) {
                    Some(rx) => await_outcome(shared, &mut driver, &rx, &now),
                    None => SendOutcome::ConnectionError,
                };
                driver.handle_outcome(id, outcome, now());
            }
            Step::Wait { until } => {
                let st = shared.lock();
                if !st.woken {
                    let t = now();
                    let wake_at = match (until, driver.shutdown_deadline()) {
                        (Some(u), Some(d)) => Some(u.min(d)),
                        (u, d) => u.or(d),
                    };
                    let nap = wake_at.map_or(IDLE_NAP, |u| u.saturating_duration_since(t));
                    // A spurious wake-up only costs one more turn of the loop. A batch
                    // that filled between the step and this point wakes nobody: it leaves
                    // at `wake_at` (the flush interval at the latest), like a partial one.
                    idle.set_exporter_idle(true);
                    let _ = shared.wake.wait_timeout(st, nap);
                    idle.set_exporter_idle(false);
                }
            }
            Step::Finished => break,
        }
        answer(&driver, &mut flushes);
    }

    let all_sent = driver.stats().abandoned == 0;
    drop(driver);
    drop(worker);
    let (late_flushes, shutdown_replies) = {
        let mut st = shared.lock();
        st.finished = Some(all_sent);
        (mem::take(&mut st.flushes), mem::take(&mut st.shutdown_replies))
    };
    for reply in flushes.into_iter().map(|(_, r)| r).chain(late_flushes) {
        reply(false);
    }
    for reply in shutdown_replies {
        reply(all_sent);
    }
}

//! The background exporter: one OS thread running the core's [`ExportDriver`] loop.
//!
//! The thread sleeps on a `Condvar` until the next deadline the driver names, a wake from
//! the sink (a batch is full, a call was propagated), or a request (flush, shutdown). It
//! sends with a blocking [`Sender`]. Everything else (batching, retries, backoff,
//! `Retry-After`, splitting, drop counting) is the driver's.
//!
//! Requests never block on the thread for longer than the caller's timeout: a flush
//! waits on a reply channel with a timeout, a shutdown waits on a `Condvar` for the thread
//! to say it finished, and the thread is only joined once it has.

use std::mem;
use std::sync::mpsc::{self, RecvTimeoutError, SyncSender};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant as StdInstant};

use raceway_proto::boundary::Sender;
use raceway_proto::client::Sink;
use raceway_proto::driver::{ExportDriver, Step};
use raceway_proto::export::{ExportConfig, FlushTicket};
use raceway_proto::system::SystemClock;

use crate::client::FlushError;

/// How much longer than its timeout a shutdown waits for the thread to report back.
pub(crate) const SHUTDOWN_MARGIN: Duration = Duration::from_millis(200);

#[derive(Default)]
struct State {
    /// Something happened: the exporter must not go to sleep.
    woken: bool,
    /// Flush requests not yet seen by the thread.
    flushes: Vec<SyncSender<bool>>,
    /// Shutdown asked for, with this drain timeout (the first request wins).
    shutdown: Option<Duration>,
    /// The thread ended; `true` when nothing was abandoned.
    finished: Option<bool>,
}

#[derive(Default)]
struct Shared {
    state: Mutex<State>,
    /// The exporter thread sleeps on it.
    wake: Condvar,
    /// Shutdown callers sleep on it.
    done: Condvar,
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

/// The application's side of the exporter.
pub(crate) struct ExporterHandle {
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl ExporterHandle {
    /// Starts the exporter thread. `None` if the OS refuses a thread.
    pub(crate) fn start(
        sink: Arc<Sink>,
        sender: Box<dyn Sender + Send>,
        config: ExportConfig,
    ) -> Option<Self> {
        let shared = Arc::new(Shared::default());
        let waker = shared.clone();
        sink.set_waker(Box::new(move || waker.wake()));
        let in_thread = shared.clone();
        let thread = std::thread::Builder::new()
            .name("raceway-exporter".into())
            .spawn(move || run(&in_thread, sink, sender, config))
            .ok()?;
        Some(Self {
            shared,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// A flush barrier: `Ok` once everything recorded before the call was sent (or dropped
    /// and counted), `Err(Timeout)` at `timeout`.
    pub(crate) fn flush(&self, timeout: Duration) -> Result<(), FlushError> {
        let (tx, rx) = mpsc::sync_channel(1);
        {
            let mut st = self.shared.lock();
            if st.finished.is_some() || st.shutdown.is_some() {
                return Err(FlushError::NotRunning);
            }
            st.flushes.push(tx);
            st.woken = true;
        }
        self.shared.wake.notify_one();
        match rx.recv_timeout(timeout) {
            Ok(true) => Ok(()),
            Ok(false) | Err(RecvTimeoutError::Timeout) => Err(FlushError::Timeout),
            Err(RecvTimeoutError::Disconnected) => Err(FlushError::NotRunning),
        }
    }

    /// True once a shutdown was asked for (by `shutdown` or drop).
    pub(crate) fn shutdown_requested(&self) -> bool {
        self.shared.lock().shutdown.is_some()
    }

    /// Drains, stops and joins the thread, waiting at most `within` plus a small margin. A
    /// thread still busy then (a send to a hanging collector) is left to finish on its own.
    pub(crate) fn shutdown(&self, within: Duration) -> Result<(), FlushError> {
        let deadline = StdInstant::now() + within + SHUTDOWN_MARGIN;
        let mut st = self.shared.lock();
        if st.finished.is_some() {
            drop(st);
            self.reap();
            return Ok(()); // already stopped
        }
        if st.shutdown.is_none() {
            st.shutdown = Some(within);
        }
        st.woken = true;
        self.shared.wake.notify_one();
        while st.finished.is_none() {
            let left = deadline.saturating_duration_since(StdInstant::now());
            if left.is_zero() {
                break;
            }
            st = self
                .shared
                .done
                .wait_timeout(st, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        let finished = st.finished;
        drop(st);
        self.reap();
        match finished {
            Some(true) => Ok(()),
            Some(false) | None => Err(FlushError::Timeout),
        }
    }

    /// Joins the thread once it has said it finished (never blocks on a busy thread).
    fn reap(&self) {
        if self.shared.lock().finished.is_none() {
            return;
        }
        let mut slot = self.thread.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(t) = slot.take() {
            let _ = t.join();
        }
    }
}

fn run(shared: &Shared, sink: Arc<Sink>, mut sender: Box<dyn Sender + Send>, config: ExportConfig) {
    let clock = SystemClock::new();
    let now = || clock.instant();
    let mut driver = ExportDriver::new(sink, config, now());
    let mut flushes: Vec<(FlushTicket, SyncSender<bool>)> = Vec::new();

    let answer = |driver: &ExportDriver, flushes: &mut Vec<(FlushTicket, SyncSender<bool>)>| {
        flushes.retain(|(ticket, reply)| {
            let done = driver.is_flushed(*ticket);
            if done {
                let _ = reply.try_send(true);
            }
            !done
        });
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
                let outcome = sender.send(&body);
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
                    let nap = wake_at.map_or(Duration::from_secs(3600), |u| u.saturating_duration_since(t));
                    // A spurious wake-up only costs one more turn of the loop.
                    let _ = shared.wake.wait_timeout(st, nap);
                }
            }
            Step::Finished => break,
        }
        answer(&driver, &mut flushes);
    }

    let all_sent = driver.stats().dropped_shutdown == 0;
    for (_, reply) in flushes {
        let _ = reply.try_send(false);
    }
    drop(driver);
    drop(sender);
    let mut st = shared.lock();
    for reply in st.flushes.drain(..) {
        let _ = reply.try_send(false);
    }
    st.finished = Some(all_sent);
    drop(st);
    shared.done.notify_all();
}

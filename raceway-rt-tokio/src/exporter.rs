//! The background exporter: one thread running a current-thread tokio runtime.
//!
//! A thread of its own means the exporter works whatever the application does with
//! runtimes: a client made outside any runtime, inside a current-thread runtime, or shut
//! down from one. `shutdown()` can block on it without deadlocking the application's
//! runtime, because the exporter never needs that runtime to make progress.

use std::sync::mpsc as std_mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use raceway_proto::boundary::AsyncSender;
use raceway_proto::client::Sink;
use raceway_proto::driver::{ExportDriver, Step};
use raceway_proto::export::{ExportConfig, FlushTicket, SendOutcome};
use raceway_proto::system::SystemClock;
use raceway_proto::Instant;
use tokio::sync::{mpsc, oneshot, Notify};

/// Where an answer goes: a blocked thread or an awaiting task.
pub(crate) enum Reply {
    Blocking(std_mpsc::SyncSender<bool>),
    Async(oneshot::Sender<bool>),
}

impl Reply {
    fn send(self, done: bool) {
        match self {
            Reply::Blocking(tx) => {
                let _ = tx.try_send(done);
            }
            Reply::Async(tx) => {
                let _ = tx.send(done);
            }
        }
    }
}

pub(crate) enum Command {
    Flush(Reply),
    Shutdown { within: Duration, reply: Reply },
}

/// The application's side of the exporter.
pub(crate) struct ExporterHandle {
    commands: mpsc::UnboundedSender<Command>,
    thread: std::sync::Mutex<Option<JoinHandle<()>>>,
}

impl ExporterHandle {
    /// Starts the exporter thread. `None` if the OS refuses a thread or a runtime.
    pub(crate) fn start(
        sink: Arc<Sink>,
        sender: Box<dyn AsyncSender>,
        config: ExportConfig,
        default_shutdown: Duration,
    ) -> Option<Self> {
        let notify = Arc::new(Notify::new());
        let waker = notify.clone();
        sink.set_waker(Box::new(move || waker.notify_one()));
        let (tx, rx) = mpsc::unbounded_channel();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .ok()?;
        let thread = std::thread::Builder::new()
            .name("raceway-exporter".into())
            .spawn(move || {
                runtime.block_on(run(sink, sender, config, notify, rx, default_shutdown));
            })
            .ok()?;
        Some(Self {
            commands: tx,
            thread: std::sync::Mutex::new(Some(thread)),
        })
    }

    pub(crate) fn send(&self, command: Command) -> bool {
        self.commands.send(command).is_ok()
    }

    /// Joins the thread if it has finished (never blocks on a stuck thread).
    pub(crate) fn reap(&self) {
        let mut slot = self.thread.lock().unwrap_or_else(|p| p.into_inner());
        if slot.as_ref().is_some_and(|t| t.is_finished()) {
            if let Some(t) = slot.take() {
                let _ = t.join();
            }
        }
    }
}

async fn run(
    sink: Arc<Sink>,
    sender: Box<dyn AsyncSender>,
    config: ExportConfig,
    notify: Arc<Notify>,
    mut commands: mpsc::UnboundedReceiver<Command>,
    default_shutdown: Duration,
) {
    let clock = SystemClock::new();
    let now = || clock.instant();
    let mut driver = ExportDriver::new(sink, config, now());
    let mut flushes: Vec<(FlushTicket, Reply)> = Vec::new();
    let mut shutdown_replies: Vec<Reply> = Vec::new();
    let mut closed = false;

    let handle = |cmd: Option<Command>,
                  driver: &mut ExportDriver,
                  flushes: &mut Vec<(FlushTicket, Reply)>,
                  shutdown_replies: &mut Vec<Reply>,
                  closed: &mut bool| match cmd {
        Some(Command::Flush(reply)) => {
            let ticket = driver.request_flush(now());
            flushes.push((ticket, reply));
        }
        Some(Command::Shutdown { within, reply }) => {
            if !driver.is_shutting_down() {
                let t = now();
                driver.begin_shutdown(t, t.saturating_add(within));
            }
            shutdown_replies.push(reply);
        }
        None => {
            *closed = true;
            if !driver.is_shutting_down() {
                let t = now();
                driver.begin_shutdown(t, t.saturating_add(default_shutdown));
            }
        }
    };

    loop {
        while let Ok(cmd) = commands.try_recv() {
            handle(
                Some(cmd),
                &mut driver,
                &mut flushes,
                &mut shutdown_replies,
                &mut closed,
            );
        }
        match driver.step(now()) {
            Step::Send { id, body } => {
                let send = sender.send(body);
                tokio::pin!(send);
                let outcome = loop {
                    let deadline = shutdown_sleep(&driver, now());
                    tokio::select! {
                        outcome = &mut send => break outcome,
                        cmd = commands.recv(), if !closed => {
                            handle(cmd, &mut driver, &mut flushes, &mut shutdown_replies, &mut closed);
                        }
                        _ = tokio::time::sleep(deadline), if driver.is_shutting_down() => break SendOutcome::Timeout,
                    }
                };
                driver.handle_outcome(id, outcome, now());
            }
            Step::Wait { until } => {
                let t = now();
                let nap = until.map_or(Duration::from_secs(3600), |u| u.saturating_duration_since(t));
                tokio::select! {
                    _ = notify.notified() => {}
                    cmd = commands.recv(), if !closed => {
                        handle(cmd, &mut driver, &mut flushes, &mut shutdown_replies, &mut closed);
                    }
                    _ = tokio::time::sleep(nap) => {}
                }
            }
            Step::Finished => break,
        }
        let mut i = 0;
        while i < flushes.len() {
            if driver.is_flushed(flushes[i].0) {
                flushes.swap_remove(i).1.send(true);
            } else {
                i += 1;
            }
        }
    }
    let all_sent = driver.stats().dropped_shutdown == 0;
    for (_, r) in flushes {
        r.send(false);
    }
    for r in shutdown_replies {
        r.send(all_sent);
    }
}

fn shutdown_sleep(driver: &ExportDriver, now: Instant) -> Duration {
    driver
        .shutdown_deadline()
        .map_or(Duration::from_secs(3600), |d| d.saturating_duration_since(now))
}

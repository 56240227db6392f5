//! The background exporter: one OS thread running the core's export loop
//! ([`raceway_proto::driver`]) with a blocking [`Sender`].
//!
//! A thread of its own, with no executor in it, means the exporter works whatever the
//! application runs: async-std, smol, several executors, or none; a client made outside
//! any executor, or shut down from inside one. Flush and shutdown are barrier messages
//! answered on a reply channel: a `futures` oneshot for async callers (awaitable on any
//! executor), a std channel for blocking ones.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use futures::channel::oneshot;
use raceway_proto::boundary::Sender;
use raceway_proto::client::Sink;
use raceway_proto::driver::{ExportDriver, Step};
use raceway_proto::export::{ExportConfig, FlushTicket};
use raceway_proto::system::SystemClock;
use raceway_proto::Instant;

/// The longest the loop sleeps without a deadline (it wakes on any message anyway).
const IDLE_NAP: Duration = Duration::from_secs(3600);

/// Where an answer goes: a blocked thread or an awaiting task.
pub(crate) enum Reply {
    Blocking(mpsc::SyncSender<bool>),
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
    /// The queue wants attention (a batch is full, or a call was propagated).
    Wake,
    Flush(Reply),
    Shutdown {
        within: Duration,
        reply: Reply,
    },
}

/// The application's side of the exporter.
pub(crate) struct ExporterHandle {
    commands: mpsc::Sender<Command>,
    thread: std::sync::Mutex<Option<JoinHandle<()>>>,
    /// When the first shutdown asked the exporter to be done by: later shutdowns (and the
    /// drop) wait no longer than that, so a collector that hangs costs one timeout, once.
    shutdown_by: std::sync::Mutex<Option<std::time::Instant>>,
}

impl ExporterHandle {
    /// Starts the exporter thread. `None` if the OS refuses a thread.
    pub(crate) fn start(
        sink: Arc<Sink>,
        sender: Box<dyn Sender + Send>,
        config: ExportConfig,
        default_shutdown: Duration,
    ) -> Option<Self> {
        let (tx, rx) = mpsc::channel();
        let woken = Arc::new(AtomicBool::new(false));
        let thread = {
            let woken = woken.clone();
            let sink = sink.clone();
            std::thread::Builder::new()
                .name("raceway-exporter".into())
                .spawn(move || run(sink, sender, config, rx, woken, default_shutdown))
                .ok()?
        };
        // One pending wake at a time: a burst of full batches sends one message.
        let waker = tx.clone();
        sink.set_waker(Box::new(move || {
            if !woken.swap(true, Ordering::AcqRel) {
                let _ = waker.send(Command::Wake);
            }
        }));
        Some(Self {
            commands: tx,
            thread: std::sync::Mutex::new(Some(thread)),
            shutdown_by: std::sync::Mutex::new(None),
        })
    }

    pub(crate) fn send(&self, command: Command) -> bool {
        self.commands.send(command).is_ok()
    }

    /// How long a shutdown asked to finish `within` should wait for the exporter: `within`
    /// for the first one, what is left of the first one's time for later ones.
    pub(crate) fn shutdown_wait(&self, within: Duration) -> Duration {
        let mut by = self.shutdown_by.lock().unwrap_or_else(|p| p.into_inner());
        let now = std::time::Instant::now();
        match *by {
            Some(deadline) => deadline.saturating_duration_since(now),
            None => {
                *by = now.checked_add(within);
                within
            }
        }
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

struct Loop {
    driver: ExportDriver,
    clock: SystemClock,
    flushes: Vec<(FlushTicket, Reply)>,
    shutdown_replies: Vec<Reply>,
    closed: bool,
    default_shutdown: Duration,
    woken: Arc<AtomicBool>,
}

impl Loop {
    fn now(&self) -> Instant {
        self.clock.instant()
    }

    fn begin_shutdown(&mut self, within: Duration) {
        if !self.driver.is_shutting_down() {
            let t = self.now();
            self.driver.begin_shutdown(t, t.saturating_add(within));
        }
    }

    fn handle(&mut self, command: Result<Command, ()>) {
        match command {
            Ok(Command::Wake) => self.woken.store(false, Ordering::Release),
            Ok(Command::Flush(reply)) => {
                let ticket = self.driver.request_flush(self.now());
                self.flushes.push((ticket, reply));
            }
            Ok(Command::Shutdown { within, reply }) => {
                self.begin_shutdown(within);
                self.shutdown_replies.push(reply);
            }
            Err(()) => {
                self.closed = true;
                self.begin_shutdown(self.default_shutdown);
            }
        }
    }

    fn answer_flushes(&mut self) {
        let mut i = 0;
        while i < self.flushes.len() {
            if self.driver.is_flushed(self.flushes[i].0) {
                self.flushes.swap_remove(i).1.send(true);
            } else {
                i += 1;
            }
        }
    }
}

fn run(
    sink: Arc<Sink>,
    mut sender: Box<dyn Sender + Send>,
    config: ExportConfig,
    commands: mpsc::Receiver<Command>,
    woken: Arc<AtomicBool>,
    default_shutdown: Duration,
) {
    let clock = SystemClock::new();
    let driver = ExportDriver::new(sink, config, clock.instant());
    let mut lp = Loop {
        driver,
        clock,
        flushes: Vec::new(),
        shutdown_replies: Vec::new(),
        closed: false,
        default_shutdown,
        woken,
    };

    loop {
        while !lp.closed {
            match commands.try_recv() {
                Ok(cmd) => lp.handle(Ok(cmd)),
                Err(mpsc::TryRecvError::Empty) => break,
                Err(mpsc::TryRecvError::Disconnected) => lp.handle(Err(())),
            }
        }
        let now = lp.now();
        match lp.driver.step(now) {
            Step::Send { id, body } => {
                // Blocks this thread only, for at most the request timeout.
                let outcome = sender.send(&body);
                let t = lp.now();
                lp.driver.handle_outcome(id, outcome, t);
            }
            Step::Wait { until } => {
                let mut nap = until.map_or(IDLE_NAP, |u| u.saturating_duration_since(now));
                if let Some(d) = lp.driver.shutdown_deadline() {
                    nap = nap.min(d.saturating_duration_since(now));
                }
                if lp.closed {
                    std::thread::sleep(nap.min(Duration::from_millis(50)));
                } else {
                    match commands.recv_timeout(nap) {
                        Ok(cmd) => lp.handle(Ok(cmd)),
                        Err(mpsc::RecvTimeoutError::Timeout) => {}
                        Err(mpsc::RecvTimeoutError::Disconnected) => lp.handle(Err(())),
                    }
                }
            }
            Step::Finished => break,
        }
        lp.answer_flushes();
    }
    let all_sent = lp.driver.stats().dropped_shutdown == 0;
    for (_, r) in lp.flushes.drain(..) {
        r.send(false);
    }
    for r in lp.shutdown_replies.drain(..) {
        r.send(all_sent);
    }
}

//! The export loop's logic, shared by every adapter: the [`Exporter`] state machine fed
//! from a client's [`Sink`].
//!
//! [`crate::background`] runs it on the exporter thread, whose loop is:
//!
//! ```text
//! loop {
//!     match driver.step(now()) {
//!         Step::Send { id, body } => {
//!             let outcome = sender.send(&body);
//!             driver.recycle(body);
//!             driver.handle_outcome(id, outcome, now());
//!         }
//!         Step::Wait { until } => wait for a wake, a command, or `until`,
//!         Step::Finished => break,
//!     }
//!     answer flush and shutdown requests with `is_flushed` / `Step::Finished`
//! }
//! ```

use std::sync::Arc;
use std::vec::Vec;

use crate::client::Sink;
use crate::export::{BatchId, ExportConfig, ExportStats, Exporter, FlushTicket, SendOutcome};
use crate::record::Record;
use crate::time::Instant;

/// What the export loop should do next.
#[derive(Debug)]
pub enum Step {
    /// POST `body` and report the outcome for `id`.
    Send {
        /// Pass back to [`ExportDriver::handle_outcome`].
        id: BatchId,
        /// The encoded `{"events":[...]}` body.
        body: Vec<u8>,
    },
    /// Nothing to do until `until` (or a wake, or a command). `None`: only a wake.
    Wait {
        /// The next deadline.
        until: Option<Instant>,
    },
    /// Shut down and drained (or abandoned at the deadline): the loop can end.
    Finished,
}

/// Couples an [`Exporter`] to a [`Sink`]'s queue.
#[derive(Debug)]
pub struct ExportDriver {
    exporter: Exporter<Record>,
    sink: Arc<Sink>,
    scratch: Vec<Record>,
    /// The body buffer, lent out with [`Step::Send`] and given back with
    /// [`ExportDriver::recycle`], so steady-state sending allocates no bodies.
    spare: Vec<u8>,
    body_capacity: usize,
    shutting_down: bool,
}

impl ExportDriver {
    /// A driver over `sink`'s queue with `config`; `now` starts the first interval.
    pub fn new(sink: Arc<Sink>, config: ExportConfig, now: Instant) -> Self {
        let body_capacity = config.max_body_bytes.min(64 * 1024);
        Self {
            exporter: Exporter::new(config, now),
            sink,
            scratch: Vec::new(),
            spare: Vec::new(),
            body_capacity,
            shutting_down: false,
        }
    }

    fn pull(&mut self, now: Instant) {
        let queued = self.sink.queued();
        let n = self.exporter.poll_drain(now, queued);
        if n > 0 {
            self.sink.drain(n, &mut self.scratch);
            self.exporter.handle_events_from(&mut self.scratch, now);
        }
    }

    /// The next thing to do at `now`.
    pub fn step(&mut self, now: Instant) -> Step {
        if self.sink.take_urgent() {
            self.pull_all(now);
            let _ = self.exporter.request_flush(now);
        }
        self.pull(now);
        if self.shutting_down {
            let past = self.exporter.shutdown_deadline().is_some_and(|d| now >= d);
            if past {
                self.pull_all(now);
                let _ = self.exporter.abandon(now);
                self.publish();
                return Step::Finished;
            }
            if self.exporter.is_idle() && self.sink.queued() == 0 {
                self.publish();
                return Step::Finished;
            }
        }
        let mut body = core::mem::take(&mut self.spare);
        body.clear();
        body.reserve(self.body_capacity);
        let step = match self.exporter.poll_transmit(now, &mut body) {
            Some(t) => Step::Send { id: t.id, body },
            None => {
                self.spare = body;
                Step::Wait {
                    until: self.exporter.poll_timeout(),
                }
            }
        };
        self.publish();
        step
    }

    fn pull_all(&mut self, now: Instant) {
        loop {
            let queued = self.sink.queued();
            if queued == 0 {
                break;
            }
            self.sink.drain(queued, &mut self.scratch);
            self.exporter.handle_events_from(&mut self.scratch, now);
        }
    }

    /// Gives a sent body's buffer back for the next one.
    pub fn recycle(&mut self, body: Vec<u8>) {
        if body.capacity() > self.spare.capacity() {
            self.spare = body;
        }
    }

    /// Reports how a send went.
    pub fn handle_outcome(&mut self, id: BatchId, outcome: SendOutcome, now: Instant) {
        let ok = matches!(outcome, SendOutcome::Status { status, .. } if (200..300).contains(&status) && status != 206);
        self.sink.set_healthy(ok);
        let rejected_before = self.exporter.stats().dropped_rejected;
        self.exporter.handle_outcome(id, outcome, now);
        let stats = self.exporter.stats();
        if stats.dropped_rejected > rejected_before {
            if let Some(status) = stats.last_rejected_status {
                self.sink
                    .report_rejected(status, stats.dropped_rejected - rejected_before);
            }
        }
        self.publish();
    }

    /// Moves everything queued into the exporter and returns a barrier ticket.
    pub fn request_flush(&mut self, now: Instant) -> FlushTicket {
        self.pull_all(now);
        self.exporter.request_flush(now)
    }

    /// True once every event handed in before `ticket` was sent or dropped.
    pub fn is_flushed(&self, ticket: FlushTicket) -> bool {
        self.exporter.is_flushed(ticket)
    }

    /// Starts draining for shutdown; [`ExportDriver::step`] returns
    /// [`Step::Finished`] when done or at `deadline`.
    pub fn begin_shutdown(&mut self, now: Instant, deadline: Instant) {
        self.pull_all(now);
        self.exporter.begin_shutdown(now, deadline);
        self.shutting_down = true;
    }

    /// The shutdown deadline, once shutting down.
    pub fn shutdown_deadline(&self) -> Option<Instant> {
        self.exporter.shutdown_deadline()
    }

    /// True after [`ExportDriver::begin_shutdown`].
    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down
    }

    /// The exporter's counters.
    pub fn stats(&self) -> ExportStats {
        self.exporter.stats()
    }

    fn publish(&self) {
        self.sink.publish_export_stats(self.exporter.stats());
    }
}

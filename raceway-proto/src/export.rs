//! The export state machine: bounded queue, batching, retry decisions; time passed in.
//!
//! Two parts, split where the adapters' locking splits them:
//!
//! - [`RecordQueue`]: the hot path. Recording code pushes events into it (behind the
//!   adapter's mutex); it never grows past its capacity and counts what it drops.
//! - [`Exporter`]: the background path. Owned by the adapter's export task, it takes
//!   events from the queue in batches, encodes bodies with [`BatchEncoder`], and decides
//!   what to do with every answer (done, retry later, split, drop). It reads no clock and
//!   does no I/O: time comes in as [`Instant`], bodies go out in the caller's buffer.
//!
//! See [`Exporter`] for the order in which an adapter calls the methods.

use alloc::collections::VecDeque;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use core::time::Duration;

use serde::Deserialize;

use crate::encode::{BatchEncoder, EventOutcome, WireEvent, DEFAULT_MAX_BODY_BYTES};
use crate::event::Event;
use crate::ids::splitmix64;
use crate::time::Instant;

#[cfg(feature = "std")]
mod pipe;
#[cfg(feature = "std")]
pub use pipe::{Lane, LaneSlot, Pipe, Queued, MAX_LANE, MIN_LANE};
mod room;
use room::Room;
pub use room::ServerCapacity;

// ---------------------------------------------------------------------------------------
// Configuration and counters

/// How the exporter batches, paces and retries.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ExportConfig {
    /// Most events per body (default 512). Also the queue length that wakes the exporter.
    ///
    /// Each POST costs the sending thread a fixed amount (the request, the answer, the
    /// syscalls, a wake-up) beside its bytes: against the real server (`benches/peers`,
    /// `e2e_real`), the sender thread's CPU per event was 551-711 ns with bodies of 512
    /// events and 323-464 ns with bodies of about 2,500 (`RACEWAY_BATCH_SIZE`, with
    /// `RACEWAY_MAX_BODY_BYTES` raised to fit). The default stays at 512: with 2,048 the
    /// exporter's batches held about 30 bytes more per queued event when the server is
    /// down (`benches/peers`, `memory`: 131 bytes with the default queue full).
    pub max_batch_events: usize,
    /// Most bytes per body (default 1 MiB, room for about 1,700 small events; see
    /// [`BatchEncoder::new`]).
    pub max_body_bytes: usize,
    /// Longest an event waits in the queue for its batch to fill (default 1 s).
    pub flush_interval: Duration,
    /// Batches the exporter holds (sending, waiting to retry or ready) before it stops
    /// taking events from the queue, which then fills and drops (default 4).
    pub max_pending_batches: usize,
    /// Most events queued for the exporter (default 65,536: about 8 MiB with small values,
    /// taken as the queue fills). Also the capacity of [`RecordQueue::from_config`].
    pub queue_capacity: usize,
    /// First retry delay (default 100 ms); doubled on each failure of the same batch.
    pub initial_backoff: Duration,
    /// Longest retry delay from backoff (default 30 s).
    pub max_backoff: Duration,
    /// Longest `Retry-After` honoured (default 60 s); longer ones are cut to it.
    pub max_retry_after: Duration,
    /// Sends of one batch answered `408`, `429` or `5xx` before it is dropped (default 10).
    /// Connection errors and timeouts do not count: they are retried until shutdown.
    pub max_attempts: u32,
    /// Seed of the backoff jitter (deterministic, for tests and simulations).
    pub jitter_seed: u64,
    /// What the server can take (default [`ServerCapacity::RACEWAY_DEFAULT`], the real
    /// server's own defaults). Bodies leave only as fast as the server is estimated to make
    /// room, so its buffer never fills: a full buffer drops events in a way that cannot be
    /// resent exactly (see the `room` module docs). `None` sends as fast as answers come.
    pub server_capacity: Option<ServerCapacity>,
}

impl Default for ExportConfig {
    fn default() -> Self {
        Self {
            max_batch_events: 512,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            flush_interval: Duration::from_secs(1),
            max_pending_batches: 4,
            queue_capacity: 65_536,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(30),
            max_retry_after: Duration::from_secs(60),
            max_attempts: 10,
            jitter_seed: 0x5eed,
            server_capacity: Some(ServerCapacity::RACEWAY_DEFAULT),
        }
    }
}

/// Counters of what the queue and exporter did with events. Cheap to copy.
///
/// [`Exporter::stats`] fills the exporter's counters; `recorded` and `dropped_queue_full`
/// come from the queue, merged with [`ExportStats::with_queue`].
///
/// Every recorded event ends up in exactly one of `sent`, one `dropped_*` counter (their
/// sum is [`dropped`](Self::dropped)) or `unconfirmed_partial` (the three together are
/// [`settled`](Self::settled)), or is still held by the exporter or queued. The other
/// counters (`truncated`, `retried`, `requeued_server_full`, `abandoned`, the batch and
/// byte counts) count again events or bodies already counted there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct ExportStats {
    /// Events accepted by the queue.
    pub recorded: u64,
    /// Events the server took: those of bodies answered `2xx` other than `206`, plus the
    /// accepted head of each `206` ([`SendOutcome::Partial`]).
    pub sent: u64,
    /// Events dropped because the queue was full.
    pub dropped_queue_full: u64,
    /// Events dropped because the server refused their batch (`4xx` other than 408, 413, 429).
    pub dropped_rejected: u64,
    /// Events dropped because they were too big even when cut down, or a one-event batch
    /// answered `413`.
    pub dropped_oversized: u64,
    /// Events dropped after `max_attempts` retryable answers.
    pub dropped_retries_exhausted: u64,
    /// Events dropped at shutdown ([`Exporter::abandon`], and events handed in after it)
    /// other than those counted in `dropped_server_full`.
    pub dropped_shutdown: u64,
    /// Events lost to the server's capacity: events a `206` said the server dropped
    /// (its buffer was full), requeued, and then given up on, because their resends were
    /// answered `206` taking nothing, `408`, `429` or `5xx` `max_attempts` times in a row, or
    /// because they were still held at the shutdown deadline. (Requeueing itself never
    /// loses events: the dropped tail takes the place of the batch it came from, so it
    /// needs no room.) Part of [`dropped`](Self::dropped), separate from the other reasons.
    pub dropped_server_full: u64,
    /// Events of `206` answers that could not be split into taken and dropped: the body
    /// was not `{"data":"Ingested N events, M errors",...}` (or was not read), or its
    /// counts did not add up to the events of the body. The server may have taken some
    /// or all of them: they are not resent (that could duplicate them), and counted here
    /// instead of in `sent` or [`dropped`](Self::dropped).
    pub unconfirmed_partial: u64,
    /// Events sent in cut-down form.
    pub truncated: u64,
    /// Retries scheduled (one per failed send that will be resent, a `206` that dropped
    /// events included).
    pub retried: u64,
    /// Events put back to be resent because a `206` said the server dropped them (each
    /// time it happened: an event dropped twice counts twice).
    pub requeued_server_full: u64,
    /// Batches split in half after a `413`.
    pub split: u64,
    /// Bodies acknowledged whole (`2xx` other than `206`).
    pub batches_sent: u64,
    /// Bodies answered `206` (the server's buffer was full), whether or not their counts
    /// could be read.
    pub batches_partial: u64,
    /// Bytes of the bodies counted in `batches_sent`.
    pub bytes_sent: u64,
    /// Events given up at shutdown, whatever they were held for: those
    /// [`Exporter::abandon`] dropped and those handed in after it. Each is also counted in
    /// `dropped_shutdown` or `dropped_server_full`; zero means shutdown left nothing behind.
    pub abandoned: u64,
    /// The status of the last refused batch, to tell a bad key (401) from a bad event (422).
    pub last_rejected_status: Option<u16>,
}

impl ExportStats {
    /// All dropped events, whatever the reason (`unconfirmed_partial` is not included).
    pub const fn dropped(&self) -> u64 {
        self.dropped_queue_full
            + self.dropped_rejected
            + self.dropped_oversized
            + self.dropped_retries_exhausted
            + self.dropped_shutdown
            + self.dropped_server_full
    }

    /// Events the exporter is done with: `sent + dropped() + unconfirmed_partial`. With
    /// the queue merged in, `recorded - settled()` events are still queued or held.
    pub const fn settled(&self) -> u64 {
        self.sent + self.dropped() + self.unconfirmed_partial
    }

    /// These counters with the queue's `recorded` and `dropped_queue_full` filled in.
    pub const fn with_queue(mut self, queue: QueueStats) -> Self {
        self.recorded = queue.recorded;
        self.dropped_queue_full = queue.dropped_queue_full;
        self
    }
}

// ---------------------------------------------------------------------------------------
// The record queue

/// What [`RecordQueue::push`] did with an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use = "wake the export task when `wake` is true"]
pub enum PushOutcome {
    /// Queued. `wake` is true when the queue just reached a multiple of the batch size:
    /// notify the export task then (and only then; the task wakes on its own timer for
    /// partial batches).
    Accepted {
        /// Whether to notify the export task.
        wake: bool,
    },
    /// The queue was full: the event was dropped and counted.
    Dropped,
}

/// The queue's counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct QueueStats {
    /// Events accepted.
    pub recorded: u64,
    /// Events dropped because the queue was full.
    pub dropped_queue_full: u64,
    /// Events in the queue now.
    pub queued: usize,
}

/// A bounded FIFO of recorded events that drops (and counts) instead of growing.
///
/// Pushing is O(1) and allocation-free once the buffer has grown to its working size.
#[derive(Debug)]
pub struct RecordQueue<E = Event> {
    events: VecDeque<E>,
    capacity: usize,
    wake_every: usize,
    recorded: u64,
    dropped_queue_full: u64,
}

impl<E> RecordQueue<E> {
    /// A queue of at most `capacity` events that asks for a wake-up every `wake_every`
    /// queued events (both at least 1). Memory is reserved as the queue fills.
    pub fn new(capacity: usize, wake_every: usize) -> Self {
        Self {
            events: VecDeque::new(),
            capacity: capacity.max(1),
            wake_every: wake_every.max(1),
            recorded: 0,
            dropped_queue_full: 0,
        }
    }

    /// A queue sized by `config.queue_capacity`, waking every `config.max_batch_events`.
    pub fn from_config(config: &ExportConfig) -> Self {
        Self::new(config.queue_capacity, config.max_batch_events)
    }

    /// Queues `event`, or drops and counts it when the queue is full.
    pub fn push(&mut self, event: E) -> PushOutcome {
        if self.events.len() >= self.capacity {
            self.dropped_queue_full += 1;
            return PushOutcome::Dropped;
        }
        self.events.push_back(event);
        self.recorded += 1;
        PushOutcome::Accepted {
            wake: self.events.len() % self.wake_every == 0,
        }
    }

    /// Moves up to `max` of the oldest events to the end of `out`; returns how many.
    pub fn drain(&mut self, max: usize, out: &mut Vec<E>) -> usize {
        let n = max.min(self.events.len());
        out.extend(self.events.drain(..n));
        n
    }

    /// Events queued now.
    pub fn len(&self) -> usize {
        self.events.len()
    }

    /// True when no event is queued.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// The most events the queue holds.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Events accepted so far.
    pub fn recorded(&self) -> u64 {
        self.recorded
    }

    /// Events dropped so far because the queue was full.
    pub fn dropped_queue_full(&self) -> u64 {
        self.dropped_queue_full
    }

    /// The counters, for [`ExportStats::with_queue`].
    pub fn stats(&self) -> QueueStats {
        QueueStats {
            recorded: self.recorded,
            dropped_queue_full: self.dropped_queue_full,
            queued: self.events.len(),
        }
    }
}

// ---------------------------------------------------------------------------------------
// The exporter's inputs and outputs

/// Identifies one transmission; [`Exporter::handle_outcome`] takes it back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BatchId(u64);

impl BatchId {
    /// The raw number (unique per exporter, increasing).
    pub const fn as_u64(self) -> u64 {
        self.0
    }
}

impl fmt::Display for BatchId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "batch-{}", self.0)
    }
}

/// What became of a send.
///
/// A sender builds it with [`classify_response`] when the server answered, so that a
/// `206` is read the same way everywhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SendOutcome {
    /// The server answered (a `206` here is one whose counts could not be read; see
    /// [`classify_response`]).
    Status {
        /// The HTTP status.
        status: u16,
        /// The `Retry-After` delay, if the answer had one (see [`parse_retry_after`]).
        retry_after: Option<Duration>,
    },
    /// `206` with readable counts: the server's buffer filled up while it took the body.
    /// It took the first `accepted` events of the body, in order, and dropped the last
    /// `dropped`; the exporter counts the first as sent and resends the others.
    Partial {
        /// Events at the head of the body the server took (`N` of "Ingested N events").
        accepted: usize,
        /// Events at the tail of the body the server dropped (`M` of "M errors").
        dropped: usize,
    },
    /// No answer: the connection could not be made or broke.
    ConnectionError,
    /// No answer in time.
    Timeout,
}

impl SendOutcome {
    /// An answer without `Retry-After`.
    pub const fn status(status: u16) -> Self {
        SendOutcome::Status {
            status,
            retry_after: None,
        }
    }
}

/// The most bytes of a response body a sender reads and passes to [`classify_response`].
///
/// The Raceway server's answers to `POST /events` are about 70 bytes; a body longer than
/// this is not one of them, so it is not read further (and a `206` with it counts as
/// unconfirmed). Senders read at most this many bytes, then drop the rest of the body.
pub const MAX_RESPONSE_BODY_BYTES: usize = 4096;

/// Turns the server's answer to `POST /events` into a [`SendOutcome`]: what every sender
/// calls once it has the status, the `Retry-After` header value (if any) and the first
/// [`MAX_RESPONSE_BODY_BYTES`] bytes of the body, at most.
///
/// - `206`: the Raceway server answers it when its capture buffer (`buffer_size` events,
///   10,000 by default) filled up while it took the body: it takes events in body order
///   until the buffer is full, drops the rest, and says so in its body,
///   `{"success":true,"data":"Ingested N events, M errors","error":null}`, where `N` is
///   the number of events it took and `M` the number it dropped (`N + M` events in the
///   body; measured on the server 0.1.0: a body of 15 events into a buffer with room for 6
///   got `"Ingested 6 events, 9 errors"`). The body is read with `serde_json`; its `data`
///   string must be exactly `"Ingested N events, M errors"` (or `"Ingested N events"`, read
///   as `M = 0`) with decimal counts, and then the outcome is
///   [`SendOutcome::Partial`] `{ accepted: N, dropped: M }`. Anything else (a body that is
///   not that JSON, a longer body than [`MAX_RESPONSE_BODY_BYTES`], an empty body because
///   the sender could not read it) gives `Status { status: 206, .. }`, which the exporter
///   counts as [`ExportStats::unconfirmed_partial`] and does not resend. The exporter also
///   checks that `N + M` is the number of events in the body it sent, and counts the batch
///   as unconfirmed when it is not.
/// - Any other status: `Status { status, retry_after }`, with `retry_after` parsed by
///   [`parse_retry_after`] (the server's `429` has no `Retry-After`: the exporter then
///   backs off exponentially).
///
/// A `Retry-After` on a `206` is not used: the exporter paces resends with its backoff.
///
/// Known limit of what the server reports: it fills its buffer in body order, so the
/// dropped events are the tail, except when its analysis loop (which takes `batch_size`,
/// by default 100, events every `flush_interval_ms`, by default 100 ms) frees room while it
/// is still taking this very body. Then a few events after the first dropped one were
/// taken, as many before the reported split were dropped, and resending the last `M`
/// sends those few again (the server stores an event id once; its trace counts show the
/// extra arrivals). The counts alone cannot tell.
pub fn classify_response(status: u16, retry_after: Option<&str>, body: &[u8]) -> SendOutcome {
    let retry_after = retry_after.and_then(parse_retry_after);
    if status == 206 {
        if let Some((accepted, dropped)) = parse_partial_body(body) {
            return SendOutcome::Partial { accepted, dropped };
        }
    }
    SendOutcome::Status { status, retry_after }
}

/// The JSON envelope of the server's answers: `{"success":..,"data":..,"error":..}`.
#[derive(Deserialize)]
struct IngestReply {
    data: String,
}

/// `(N, M)` from a `206` body `{"data":"Ingested N events, M errors",...}`.
fn parse_partial_body(body: &[u8]) -> Option<(usize, usize)> {
    if body.len() > MAX_RESPONSE_BODY_BYTES {
        return None;
    }
    let reply: IngestReply = serde_json::from_slice(body).ok()?;
    parse_ingest_counts(&reply.data)
}

/// Reads `"Ingested N events, M errors"` or `"Ingested N events"` (then `M = 0`).
fn parse_ingest_counts(data: &str) -> Option<(usize, usize)> {
    let rest = data.strip_prefix("Ingested ")?;
    if let Some((n, rest)) = rest.split_once(" events, ") {
        let m = rest.strip_suffix(" errors")?;
        Some((decimal(n)?, decimal(m)?))
    } else {
        Some((decimal(rest.strip_suffix(" events")?)?, 0))
    }
}

/// A non-empty run of ASCII digits that fits in `usize`.
fn decimal(s: &str) -> Option<usize> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Parses a `Retry-After` header value in its delta-seconds form (`"120"`). The HTTP-date
/// form (and anything else) gives `None`, and the exporter falls back to its backoff.
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let v = value.trim_matches([' ', '\t']);
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // Any number of digits: a value past u64 saturates, and the exporter's cap applies.
    let secs = v.bytes().fold(0u64, |acc, b| {
        acc.saturating_mul(10).saturating_add(u64::from(b - b'0'))
    });
    Some(Duration::from_secs(secs))
}

/// A body to send, written into the buffer given to [`Exporter::poll_transmit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[must_use = "send the body and report the outcome with `handle_outcome`"]
pub struct Transmit {
    /// Pass it back to [`Exporter::handle_outcome`].
    pub id: BatchId,
    /// Events in the body.
    pub events: usize,
    /// Bytes of the body (the whole buffer).
    pub bytes: usize,
}

/// Proof of a flush request; see [`Exporter::is_flushed`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[must_use = "check it with `is_flushed`"]
pub struct FlushTicket(u64);

// ---------------------------------------------------------------------------------------
// The exporter

#[derive(Debug)]
struct Batch<E> {
    events: Vec<E>,
    /// Sequence number of the first event handed in with this batch (flush barrier).
    first_seq: u64,
    not_before: Instant,
    /// Sends answered 408, 429 or 5xx.
    status_failures: u32,
    /// All failed sends (backoff exponent).
    failures: u32,
    /// Bytes of the body in flight.
    bytes: usize,
    /// Never sent: may still be topped up with new events.
    fresh: bool,
    /// Holds events a `206` said the server dropped for lack of room: if they are lost in
    /// the end, they count as `dropped_server_full`.
    server_full: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Running,
    ShuttingDown { deadline: Instant },
    Abandoned,
}

/// The export state machine, owned by the adapter's background task.
///
/// Batches leave in the order their events were recorded, one body in flight at a time: a
/// batch waiting to retry holds back the ones after it, so a flow's events reach the
/// server in order (which the server's analysis needs, WIRE.md rules 1 and 4).
///
/// # Calling order
///
/// Like quinn's `Connection`: inputs are `handle_*`, outputs are `poll_*`, and the task
/// loops over them, each time with a fresh `now`:
///
/// 1. [`handle_outcome`](Self::handle_outcome) for every send that finished.
/// 2. `let n = exporter.poll_drain(now, queue.len())`; when `n > 0`, move `n` events
///    out of the [`RecordQueue`] ([`RecordQueue::drain`]) and pass them to
///    [`handle_events`](Self::handle_events).
/// 3. [`poll_transmit`](Self::poll_transmit) with the body buffer; when it returns a
///    [`Transmit`], POST the buffer and, when the send finishes, go to 1.
/// 4. During shutdown, once `now` reaches the deadline, [`abandon`](Self::abandon).
/// 5. Sleep until [`poll_timeout`](Self::poll_timeout), a wake from
///    [`RecordQueue::push`], a flush or shutdown request, or the end of the send.
///
/// Flush: move every queued event in with [`handle_events`](Self::handle_events), then
/// [`request_flush`](Self::request_flush); loop until
/// [`is_flushed`](Self::is_flushed) or the caller's timeout. Shutdown: the same with
/// [`begin_shutdown`](Self::begin_shutdown), until [`is_idle`](Self::is_idle) and the
/// queue is empty, or the deadline (then [`abandon`](Self::abandon)).
///
/// Answers (build them with [`classify_response`]): `2xx` other than `206` are done;
/// `408`, `429` and `5xx` are retried with exponential backoff and jitter, or after
/// `Retry-After` (capped), at most `max_attempts` sends; connection errors and timeouts
/// are retried until shutdown; `413` splits the batch in half (a one-event batch is
/// dropped as oversized); other answers drop the batch as rejected.
///
/// Bodies leave no faster than the server is estimated to make room
/// ([`ExportConfig::server_capacity`]): a body waits until the estimate has room for it, and
/// one larger than the server's whole (estimated) buffer is cut to it. So the server's
/// buffer does not fill, and a `206` is the exception: it corrects the estimate.
///
/// `206` means the server's buffer was full. With readable counts
/// ([`SendOutcome::Partial`]) the taken head of the batch is done and the dropped tail
/// stays first in line, in order, ahead of every later event; without them the batch is
/// counted as [`ExportStats::unconfirmed_partial`] and not resent. Either way no body
/// leaves until a backoff (`initial_backoff` doubled on each `206` in a row, capped at
/// `max_backoff`, jittered; back to `initial_backoff` once a body is taken whole) has
/// passed, so resends come at the pace the server drains. A tail resent `max_attempts`
/// times without the server taking any of it, or still held at the shutdown deadline, is
/// counted as [`ExportStats::dropped_server_full`].
#[derive(Debug)]
pub struct Exporter<E: WireEvent = Event> {
    config: ExportConfig,
    encoder: BatchEncoder<E>,
    /// Batches in order; the front one may be in flight.
    pending: VecDeque<Batch<E>>,
    in_flight: Option<BatchId>,
    next_id: u64,
    /// Sequence number of the next event handed in.
    next_seq: u64,
    next_drain: Instant,
    phase: Phase,
    rng: u64,
    stats: ExportStats,
    outcomes: Vec<(usize, EventOutcome)>,
    /// `206` answers since the last body taken whole (backoff exponent of the pacing).
    server_full_streak: u32,
    /// No body leaves before this: the server said its buffer was full.
    paced_until: Instant,
    /// The server's estimated room (`None`: not paced).
    room: Option<Room>,
    /// Emptied event buffers of delivered batches, reused for new ones (at most
    /// `max_pending_batches`), so a steady stream allocates no batches.
    spare_batches: Vec<Vec<E>>,
}

impl<E: WireEvent + fmt::Debug> Exporter<E> {
    /// A new exporter; `now` starts the first flush interval. Zero sizes in `config` are
    /// raised to 1.
    pub fn new(mut config: ExportConfig, now: Instant) -> Self {
        config.max_batch_events = config.max_batch_events.max(1);
        config.max_pending_batches = config.max_pending_batches.max(1);
        config.max_attempts = config.max_attempts.max(1);
        config.queue_capacity = config.queue_capacity.max(1);
        Self {
            encoder: BatchEncoder::new(config.max_body_bytes),
            next_drain: now.saturating_add(config.flush_interval),
            rng: config.jitter_seed,
            room: config.server_capacity.map(|c| Room::new(c, now)),
            config,
            pending: VecDeque::new(),
            spare_batches: Vec::new(),
            in_flight: None,
            next_id: 0,
            next_seq: 0,
            phase: Phase::Running,
            stats: ExportStats::default(),
            outcomes: Vec::new(),
            server_full_streak: 0,
            paced_until: now,
        }
    }

    /// The configuration in use.
    pub fn config(&self) -> &ExportConfig {
        &self.config
    }

    /// The exporter's counters (merge the queue's with [`ExportStats::with_queue`]).
    pub fn stats(&self) -> ExportStats {
        self.stats
    }

    /// Events held (ready, in flight or waiting to retry).
    pub fn held_events(&self) -> usize {
        self.pending.iter().map(|b| b.events.len()).sum()
    }

    /// True when the exporter holds no event.
    pub fn is_idle(&self) -> bool {
        self.pending.is_empty()
    }

    /// True while a body is out and its outcome not yet handled.
    pub fn is_sending(&self) -> bool {
        self.in_flight.is_some()
    }

    fn has_room(&self) -> bool {
        self.pending.len() < self.config.max_pending_batches
    }

    /// How many events to move from the queue now (0: none), given `queued` events in it.
    ///
    /// Full batches are taken as soon as there is room for them; a partial batch once the
    /// flush interval has passed since the last interval drain, and during shutdown. Room
    /// is `max_pending_batches` batches; while they are all taken the queue fills up.
    #[must_use]
    pub fn poll_drain(&mut self, now: Instant, queued: usize) -> usize {
        match self.phase {
            Phase::Abandoned => return queued,
            Phase::ShuttingDown { .. } => return queued,
            Phase::Running => {}
        }
        if !self.has_room() {
            return 0;
        }
        let batch = self.config.max_batch_events;
        let room = (self.config.max_pending_batches - self.pending.len()).saturating_mul(batch);
        let interval_due = now >= self.next_drain;
        if interval_due {
            self.next_drain = now.saturating_add(self.config.flush_interval);
            queued.min(room)
        } else {
            (queued / batch * batch).min(room)
        }
    }

    /// Takes events moved out of the queue, oldest first. They are due at once (after any
    /// batch waiting to retry). After [`abandon`](Self::abandon) they are dropped and
    /// counted as `dropped_shutdown`.
    pub fn handle_events(&mut self, mut events: Vec<E>, now: Instant) {
        self.handle_events_from(&mut events, now);
    }

    /// [`Exporter::handle_events`] draining `events`, whose buffer the caller keeps and
    /// reuses (the export loop hands in the same scratch vector every time).
    pub fn handle_events_from(&mut self, events: &mut Vec<E>, now: Instant) {
        if events.is_empty() {
            return;
        }
        if self.phase == Phase::Abandoned {
            self.stats.dropped_shutdown += events.len() as u64;
            self.stats.abandoned += events.len() as u64;
            self.next_seq += events.len() as u64;
            events.clear();
            return;
        }
        let batch = self.config.max_batch_events;
        // Top up the last batch if it has not been sent yet.
        let in_flight_idx = self.in_flight.map(|_| 0);
        let last_idx = self.pending.len().checked_sub(1);
        let top_up = last_idx
            .filter(|&i| Some(i) != in_flight_idx)
            .is_some_and(|i| self.pending[i].fresh && self.pending[i].events.len() < batch);
        if !top_up && events.len() <= batch {
            // One batch: it takes the caller's buffer whole (no move of each event), and
            // the caller gets an emptied one back.
            let mut taken = self.spare_batches.pop().unwrap_or_default();
            core::mem::swap(&mut taken, events);
            self.push_batch(taken, now);
            return;
        }
        let mut iter = events.drain(..).peekable();
        if let Some(last) = last_idx.filter(|&i| Some(i) != in_flight_idx) {
            let b = &mut self.pending[last];
            if b.fresh {
                while b.events.len() < batch {
                    match iter.next() {
                        Some(ev) => {
                            b.events.push(ev);
                            self.next_seq += 1;
                        }
                        None => break,
                    }
                }
            }
        }
        while iter.peek().is_some() {
            let mut events = self
                .spare_batches
                .pop()
                .unwrap_or_else(|| Vec::with_capacity(batch.min(iter.len())));
            events.extend(iter.by_ref().take(batch));
            self.push_batch(events, now);
        }
    }

    fn push_batch(&mut self, events: Vec<E>, now: Instant) {
        let first_seq = self.next_seq;
        self.next_seq += events.len() as u64;
        self.pending.push_back(Batch {
            events,
            first_seq,
            not_before: now,
            status_failures: 0,
            failures: 0,
            bytes: 0,
            fresh: true,
            server_full: false,
        });
    }

    /// Encodes the next due batch into `buf` (cleared first, capacity kept) and returns
    /// what to send, or `None` when a body is already out or nothing is due.
    ///
    /// A batch too big for one body is cut at the body cap (the rest is sent next); an
    /// event too big for any body is cut down or dropped, never the batch.
    #[must_use]
    pub fn poll_transmit(&mut self, now: Instant, buf: &mut Vec<u8>) -> Option<Transmit> {
        if self.in_flight.is_some() || self.phase == Phase::Abandoned || now < self.paced_until {
            return None;
        }
        loop {
            let front = self.pending.front_mut()?;
            if front.not_before > now {
                return None;
            }
            if let Some(room) = &mut self.room {
                let len = front.events.len();
                let available = room.available(now);
                let most = available.min(room.max_body_events());
                if most < len.min(room.max_body_events()) {
                    return None;
                }
                if most < len {
                    self.split_front(most);
                }
            }
            let front = self.pending.front_mut()?;
            buf.clear();
            self.outcomes.clear();
            let outcomes = &mut self.outcomes;
            let summary = self.encoder.encode_each(&front.events, buf, |i, o| {
                if o != EventOutcome::Encoded {
                    outcomes.push((i, o));
                }
            });
            if summary.consumed < front.events.len() {
                self.split_front(summary.consumed);
            }
            let front = self.pending.front_mut()?;
            // Keep the batch as it was sent, so a retry sends the same body.
            for &(i, o) in self.outcomes.iter().rev() {
                match o {
                    EventOutcome::Truncated => {
                        front.events[i] = front.events[i].cut_down(&mut Vec::new());
                        self.stats.truncated += 1;
                    }
                    EventOutcome::Dropped => {
                        front.events.remove(i);
                        self.stats.dropped_oversized += 1;
                    }
                    EventOutcome::Encoded => {}
                }
            }
            if summary.encoded == 0 {
                self.pending.pop_front();
                continue;
            }
            front.bytes = summary.bytes;
            front.fresh = false;
            if let Some(room) = &mut self.room {
                room.take(summary.encoded, now);
            }
            let id = BatchId(self.next_id);
            self.next_id += 1;
            self.in_flight = Some(id);
            return Some(Transmit {
                id,
                events: summary.encoded,
                bytes: summary.bytes,
            });
        }
    }

    /// Cuts the front batch after its first `at` events (`0 < at < len`); the rest is next
    /// in line, due when the front was, and may still be topped up if the front could.
    fn split_front(&mut self, at: usize) {
        let Some(front) = self.pending.front_mut() else {
            return;
        };
        if at == 0 || at >= front.events.len() {
            return;
        }
        let rest = Batch {
            events: front.events.split_off(at),
            first_seq: front.first_seq + at as u64,
            not_before: front.not_before,
            status_failures: 0,
            failures: 0,
            bytes: 0,
            fresh: !front.server_full,
            server_full: front.server_full,
        };
        self.pending.insert(1, rest);
    }

    /// Handles the outcome of the send `id`. Outcomes of unknown ids (sends of an
    /// abandoned exporter, duplicates) are ignored.
    pub fn handle_outcome(&mut self, id: BatchId, outcome: SendOutcome, now: Instant) {
        if self.in_flight != Some(id) {
            return;
        }
        self.in_flight = None;
        let Some(front) = self.pending.front_mut() else {
            return;
        };
        let len = front.events.len();
        let n = len as u64;
        match outcome {
            SendOutcome::Partial { accepted, dropped } if dropped == 0 && accepted == len => {
                self.delivered_whole(now);
            }
            SendOutcome::Partial { accepted, dropped } if accepted.checked_add(dropped) == Some(len) => {
                self.partial(accepted, dropped, now);
            }
            SendOutcome::Partial { .. } | SendOutcome::Status { status: 206, .. } => {
                // The server took some of the body, but which part cannot be told: resending
                // could duplicate events, so count them apart and move on, more slowly.
                self.stats.unconfirmed_partial += n;
                self.stats.batches_partial += 1;
                self.pending.pop_front();
                self.pace_server_full(0, now);
            }
            SendOutcome::Status { status, .. } if (200..300).contains(&status) => {
                self.delivered_whole(now);
            }
            SendOutcome::Status { status: 413, .. } => {
                if front.events.len() <= 1 {
                    self.stats.dropped_oversized += n;
                    self.pending.pop_front();
                } else {
                    let half = front.events.len() / 2;
                    let second = Batch {
                        events: front.events.split_off(half),
                        first_seq: front.first_seq + half as u64,
                        not_before: now,
                        status_failures: 0,
                        failures: 0,
                        bytes: 0,
                        fresh: false,
                        server_full: front.server_full,
                    };
                    front.not_before = now;
                    front.status_failures = 0;
                    front.failures = 0;
                    self.pending.insert(1, second);
                    self.stats.split += 1;
                }
            }
            SendOutcome::Status {
                status: 408 | 429 | 500..=599,
                retry_after,
            } => {
                front.status_failures += 1;
                front.failures = front.failures.saturating_add(1);
                if front.status_failures >= self.config.max_attempts {
                    if front.server_full {
                        self.stats.dropped_server_full += n;
                    } else {
                        self.stats.dropped_retries_exhausted += n;
                    }
                    self.pending.pop_front();
                } else {
                    let delay = match retry_after {
                        Some(d) => d.min(self.config.max_retry_after),
                        None => {
                            let failures = front.failures;
                            self.backoff(failures)
                        }
                    };
                    if let Some(front) = self.pending.front_mut() {
                        front.not_before = now.saturating_add(delay);
                    }
                    self.stats.retried += 1;
                }
            }
            SendOutcome::Status { status, .. } => {
                self.stats.dropped_rejected += n;
                self.stats.last_rejected_status = Some(status);
                self.pending.pop_front();
            }
            SendOutcome::ConnectionError | SendOutcome::Timeout => {
                front.failures = front.failures.saturating_add(1);
                let failures = front.failures;
                let delay = self.backoff(failures);
                if let Some(front) = self.pending.front_mut() {
                    front.not_before = now.saturating_add(delay);
                }
                self.stats.retried += 1;
            }
        }
    }

    /// The front batch was taken whole: done, and the server has room again.
    fn delivered_whole(&mut self, now: Instant) {
        if let Some(mut front) = self.pending.pop_front() {
            self.stats.sent += front.events.len() as u64;
            self.stats.batches_sent += 1;
            self.stats.bytes_sent += front.bytes as u64;
            if self.spare_batches.len() < self.config.max_pending_batches {
                front.events.clear();
                self.spare_batches.push(front.events);
            }
        }
        self.server_full_streak = 0;
        if let Some(room) = &mut self.room {
            room.taken_whole(now);
        }
    }

    /// A `206` whose counts add up: the head of the front batch is done, its tail (the
    /// `dropped` last events, `dropped > 0`) stays in front, in order, to be resent once the
    /// server has had time to make room.
    fn partial(&mut self, accepted: usize, dropped: usize, now: Instant) {
        self.stats.sent += accepted as u64;
        self.stats.batches_partial += 1;
        let max_attempts = self.config.max_attempts;
        let Some(front) = self.pending.front_mut() else {
            return;
        };
        front.events.drain(..accepted);
        // A lower bound of the tail's first sequence number (events the encoder dropped
        // from the batch leave gaps), so a flush barrier never passes it too early.
        front.first_seq += accepted as u64;
        front.bytes = 0;
        front.fresh = false;
        front.server_full = true;
        // A `206` that took nothing counts as a failed send of what is left; one that took
        // some made progress, and the attempts of the tail start over.
        front.status_failures = if accepted == 0 {
            front.status_failures.saturating_add(1)
        } else {
            0
        };
        if front.status_failures >= max_attempts {
            self.stats.dropped_server_full += dropped as u64;
            self.pending.pop_front();
        } else {
            self.stats.requeued_server_full += dropped as u64;
            self.stats.retried += 1;
        }
        self.pace_server_full(accepted, now);
    }

    /// After a `206`: no body leaves before a backoff that grows with every `206` in a row
    /// (as after a `429` without `Retry-After`), and starts over once a body is taken whole.
    fn pace_server_full(&mut self, accepted: usize, now: Instant) {
        if let Some(room) = &mut self.room {
            room.full(accepted, now);
        }
        self.server_full_streak = self.server_full_streak.saturating_add(1);
        let delay = self.backoff(self.server_full_streak);
        self.paced_until = now.saturating_add(delay);
    }

    /// Backoff after `failures` failed sends: `initial * 2^(failures-1)` capped at
    /// `max_backoff`, then jittered into its upper half (`[d/2, d]`).
    fn backoff(&mut self, failures: u32) -> Duration {
        let exp = failures.saturating_sub(1).min(32);
        let base = self
            .config
            .initial_backoff
            .checked_mul(1u32 << exp.min(31))
            .unwrap_or(self.config.max_backoff)
            .min(self.config.max_backoff);
        let nanos = u64::try_from(base.as_nanos()).unwrap_or(u64::MAX);
        let half = nanos / 2;
        self.rng = self.rng.wrapping_add(1);
        let r = splitmix64(self.rng);
        let jitter = if half == 0 { 0 } else { r % (nanos - half + 1) };
        Duration::from_nanos(half + jitter)
    }

    /// The next time the task must run even if nothing else wakes it: the end of the
    /// flush interval (when there is room for events), the retry time of the next batch
    /// (when none is in flight) and the shutdown deadline. `None` after
    /// [`abandon`](Self::abandon). A time already past means "call the `poll_*` methods
    /// now".
    #[must_use]
    pub fn poll_timeout(&self) -> Option<Instant> {
        let mut t: Option<Instant> = None;
        let mut consider = |x: Instant| t = Some(t.map_or(x, |t| t.min(x)));
        match self.phase {
            Phase::Abandoned => return None,
            Phase::ShuttingDown { deadline } => consider(deadline),
            Phase::Running => {
                if self.has_room() {
                    consider(self.next_drain);
                }
            }
        }
        if self.in_flight.is_none() {
            if let Some(b) = self.pending.front() {
                let mut due = b.not_before.max(self.paced_until);
                if let Some(room) = &self.room {
                    due = due.max(room.ready_at(b.events.len()));
                }
                consider(due);
            }
        }
        t
    }

    /// Asks for every event handed in so far to be sent. Partial batches are already due
    /// once handed in, so move the queue's events in with
    /// [`handle_events`](Self::handle_events) first; the next flush interval starts at
    /// `now`. Batches waiting to retry keep their retry time.
    pub fn request_flush(&mut self, now: Instant) -> FlushTicket {
        if self.phase == Phase::Running {
            self.next_drain = now.saturating_add(self.config.flush_interval);
        }
        FlushTicket(self.next_seq)
    }

    /// True when every event handed in before `ticket` was sent or dropped.
    pub fn is_flushed(&self, ticket: FlushTicket) -> bool {
        let low = self.pending.front().map_or(self.next_seq, |b| b.first_seq);
        low >= ticket.0
    }

    /// Starts shutdown: from now on every queued event is taken at once and every held
    /// batch is due now (retry waits are cut short once). Send until
    /// [`is_idle`](Self::is_idle) (and the queue is empty); at `deadline`, call
    /// [`abandon`](Self::abandon).
    pub fn begin_shutdown(&mut self, now: Instant, deadline: Instant) {
        if self.phase == Phase::Abandoned {
            return;
        }
        self.phase = Phase::ShuttingDown { deadline };
        self.paced_until = self.paced_until.min(now);
        for b in &mut self.pending {
            b.not_before = b.not_before.min(now);
        }
    }

    /// The shutdown deadline, once [`begin_shutdown`](Self::begin_shutdown) was called.
    pub fn shutdown_deadline(&self) -> Option<Instant> {
        match self.phase {
            Phase::ShuttingDown { deadline } => Some(deadline),
            _ => None,
        }
    }

    /// Gives up: drops every held event (the one in flight too; its outcome will be
    /// ignored), counts them as `dropped_shutdown` (or, for events a `206` said the server
    /// had dropped for lack of room, `dropped_server_full`), all of them as `abandoned`,
    /// and returns how many. Events handed in afterwards are dropped and counted as
    /// `dropped_shutdown` and `abandoned`.
    pub fn abandon(&mut self, _now: Instant) -> usize {
        let n = self.held_events();
        for b in &self.pending {
            let k = b.events.len() as u64;
            if b.server_full {
                self.stats.dropped_server_full += k;
            } else {
                self.stats.dropped_shutdown += k;
            }
        }
        self.stats.abandoned += n as u64;
        self.pending.clear();
        self.in_flight = None;
        self.phase = Phase::Abandoned;
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_caps_and_jitters_into_upper_half() {
        let mut e: Exporter = Exporter::new(ExportConfig::default(), Instant::ZERO);
        for f in 1..=20u32 {
            let d = e.backoff(f);
            let base = Duration::from_millis(100)
                .checked_mul(1 << (f - 1).min(20))
                .unwrap()
                .min(Duration::from_secs(30));
            assert!(d >= base / 2 && d <= base, "failure {f}: {d:?} vs {base:?}");
        }
        assert!(e.backoff(u32::MAX) <= Duration::from_secs(30));
    }

    #[test]
    fn retry_after_parses_delta_seconds_only() {
        assert_eq!(parse_retry_after(" 120 "), Some(Duration::from_secs(120)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
        assert_eq!(parse_retry_after("-1"), None);
        assert_eq!(parse_retry_after(""), None);
    }
}

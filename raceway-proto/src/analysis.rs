//! The local race analyser: the races the Raceway server would report, found in-process.
//!
//! Adapters keep one [`Analyzer`] behind a lock as the "local sink", feed it every event
//! they record ([`Analyzer::observe`]) and ask for a [`RaceReport`] whenever they like. It
//! never keeps the event stream: per variable it keeps a small summary of each flow's latest
//! accesses, and it stops short of an all-pairs scan.
//!
//! # What counts as a race
//!
//! The server's rule 6 (WIRE.md), with the local refinement for atomics (RACES.md, S8). Two
//! `StateChange` events `a` and `b` race when
//!
//! 1. they touch the same `variable`;
//! 2. they come from different flows: a different `metadata.thread_id`, or a different
//!    trace (a flow is the pair *(trace id, thread id)*; two events of one flow are ordered
//!    by program order and never race);
//! 3. they are not both reads (`Read`/`AtomicRead`);
//! 4. they are not both atomic (`AtomicRead`/`AtomicWrite`/`AtomicRMW`): two atomic accesses
//!    never race, an atomic and a plain access do. The server does list atomic pairs; the
//!    local analyser does not;
//! 5. neither happened before the other by [`VectorClock::happened_before`] (server rule 3:
//!    every component present in the other clock with a value `<=`, one strictly smaller);
//! 6. their lock sets share no lock. As in the server's rule 2, lock sets are recomputed per
//!    `thread_id` from `LockAcquire` (adds the lock) and `LockRelease` (removes one
//!    occurrence) events in the order observed; the event's own `lock_set` field is ignored.
//!
//! Races are reported once per *(variable, unordered pair of flows)*, with one representative
//! pair of accesses ([`Race`]) and a reason ([`Race::reason`]).
//!
//! # Input
//!
//! Events are observed in recording order, which must be a linearization consistent with
//! causality: an event comes after every event that happened before it. Every adapter's
//! sink sees exactly that, because an event is recorded after the events it depends on.
//! Events of flows built with [`crate::flow`] have the two properties the argument below
//! needs: each flow's clock has its own component, incremented on each of its events, and
//! no component ever disappears or decreases along a flow (as long as clocks stay under
//! [`crate::clock::MAX_COMPONENTS`]; past it, evicted components can make the analyser
//! miss pairs the server would report).
//!
//! # How it stays cheap, and why that finds every race
//!
//! Per variable, accesses are kept in *groups* by lock set (interned), and within a group,
//! per flow, only the latest access of each *class*: read, write, atomic read, atomic write
//! (`AtomicWrite` and `AtomicRMW`). Each kept access carries a per-variable sequence number.
//! A new access `e` of flow `f` with lock set `L` is checked only against kept accesses in
//! groups whose lock set is disjoint from `L`, and only against those newer than `f`'s own
//! last kept access in `L`'s group whose class covers `e`'s (the *mark*, below). That is
//! sound and complete (every racing pair of flows is found, and every reported pair really
//! races) for four reasons:
//!
//! * **Program order is happens-before.** Along flow `g` each event increments `g`'s own
//!   component and never lowers or drops another, so an earlier access `a` of `g` happened
//!   before a later one `a'` by rule 3 (every component of `a` is in `a'` with a value `<=`,
//!   and `g`'s own is strictly smaller).
//! * **Rule 3 is transitive.** If `a` is before `a'` and `a'` is before `e`, then every
//!   component of `a` is in `e` with a value `<=`, and the strictly smaller one stays
//!   strictly smaller. So if the *latest* access of `g` (in a class and lock set) happened
//!   before `e`, so did every earlier one: checking the latest is enough. Conversely, if an
//!   earlier one did not, the latest did not either, and it races with `e` whenever the
//!   earlier one does (same class, same lock set). The other half of rule 3 (`e` before an
//!   earlier access) cannot hold for an input consistent with causality; it is still
//!   checked before a race is reported, so every reported pair satisfies the full rule.
//! * **Covering classes.** Class `c'` *covers* `c` when everything `c` conflicts with,
//!   `c'` conflicts with too: a write covers every class, a plain read and an atomic write
//!   cover an atomic read. A newer access of `g` in the same lock set whose class covers an
//!   older one's races with everything the older one races with (previous point), so the
//!   older one is dropped. Lock sets are never merged this way: a flow that wrote `x`
//!   without a lock and then under lock `m` keeps both writes, because only the first races
//!   with another flow's write under `m`.
//! * **Marks.** When flow `f`'s earlier access `e'` (same lock set `L`, class covering `e`'s)
//!   was observed, it was checked against every kept access then present in groups disjoint
//!   from `L`. Each of those either raced with `e'` (the pair is already known), or happened
//!   before `e'` and so before `e`, or does not conflict with `e'`'s class and so not with
//!   `e`'s. So `e` only needs the accesses kept since `e'`. This makes a flow's repeated
//!   accesses to a variable cost only the accesses other flows made in between, and a
//!   variable always accessed under one lock costs `O(log n)` per access, whatever the
//!   number of flows.
//!
//! # Costs
//!
//! Memory: per variable, at most 4 kept accesses per (flow, lock set the flow used on it);
//! per `thread_id`, its held locks; the reported races; and, for deduplication, 8 bytes (plus
//! tree overhead) per racing pair of flows found, up to [`AnalyzerConfig::max_counted_races`].
//! Time per access: logarithmic map operations plus one check per kept access of another
//! flow added since the mark, in lock groups disjoint from the access's.
//!
//! Once [`AnalyzerConfig::max_counted_races`] racing pairs are known, the analyser stops
//! looking for new ones (it could no longer tell a new pair from a known one) and the
//! report says the count is a lower bound.
//!
//! # Example
//!
//! ```
//! use raceway_proto::analysis::Analyzer;
//! # use raceway_proto::event::{Event, EventKind};
//! # fn events() -> Vec<Event> { Vec::new() }
//! let mut analyzer = Analyzer::new();
//! analyzer.observe_all(&events());
//! let report = analyzer.report();
//! for race in report.races() {
//!     println!("{} races between {} and {}", race.variable, race.first.thread_id, race.second.thread_id);
//! }
//! println!("{report}");
//! ```

use alloc::collections::{BTreeMap, BTreeSet};
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt;

use serde_json::Value;

use crate::clock::VectorClock;
use crate::event::{AccessType, Event, EventKind, SourceLocation};
use crate::ids::{EventId, TraceId};

/// How many races a report lists in full by default.
pub const DEFAULT_MAX_RACES: usize = 10_000;
/// How many racing pairs the analyser remembers (to count and deduplicate) by default.
pub const DEFAULT_MAX_COUNTED_RACES: u64 = 1_000_000;

/// Limits of an [`Analyzer`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct AnalyzerConfig {
    /// Races kept in full (both accesses, clocks, values). Further racing pairs are only
    /// counted ([`RaceReport::left_out`]). Default [`DEFAULT_MAX_RACES`].
    pub max_races: usize,
    /// Racing pairs remembered, reported or not. Past it the analyser stops looking for new
    /// races. Default [`DEFAULT_MAX_COUNTED_RACES`].
    pub max_counted_races: u64,
}

impl AnalyzerConfig {
    /// The default limits.
    pub const fn new() -> Self {
        Self {
            max_races: DEFAULT_MAX_RACES,
            max_counted_races: DEFAULT_MAX_COUNTED_RACES,
        }
    }
    /// Sets [`AnalyzerConfig::max_races`].
    #[must_use]
    pub const fn with_max_races(mut self, max_races: usize) -> Self {
        self.max_races = max_races;
        self
    }
    /// Sets [`AnalyzerConfig::max_counted_races`].
    #[must_use]
    pub const fn with_max_counted_races(mut self, max_counted_races: u64) -> Self {
        self.max_counted_races = max_counted_races;
        self
    }
}

impl Default for AnalyzerConfig {
    fn default() -> Self {
        Self::new()
    }
}

/// One side of a race: an access as it was recorded.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Access {
    /// The `StateChange` event's id.
    pub event_id: EventId,
    /// The flow's `thread_id`.
    pub thread_id: Arc<str>,
    /// The trace.
    pub trace_id: TraceId,
    /// How it touched the variable.
    pub access_type: AccessType,
    /// Where in the source.
    pub location: SourceLocation,
    /// The value before, if recorded.
    pub old_value: Option<Value>,
    /// The value after (or read).
    pub new_value: Value,
    /// The event's vector clock.
    pub clock: VectorClock,
    /// Locks the flow held (recomputed from lock events), sorted, without duplicates.
    pub lock_set: Vec<Arc<str>>,
}

/// A race: two accesses to one variable from two flows, neither ordered before the other
/// and under no common lock.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Race {
    /// The variable.
    pub variable: Arc<str>,
    /// The access observed first.
    pub first: Access,
    /// The access observed second (when the race was found).
    pub second: Access,
}

impl Race {
    /// Why the two accesses are concurrent and unprotected, for people: which clock
    /// component keeps each from being before the other, and the two lock sets.
    pub fn reason(&self) -> String {
        let mut s = String::new();
        let _ = write_reason(&mut s, self);
        s
    }

    /// True when the two flows belong to different traces.
    pub fn crosses_traces(&self) -> bool {
        self.first.trace_id != self.second.trace_id
    }
}

fn write_not_before(
    out: &mut impl fmt::Write,
    a: &VectorClock,
    an: &str,
    b: &VectorClock,
    bn: &str,
) -> fmt::Result {
    if a.is_empty() {
        return write!(out, "{an} has an empty clock");
    }
    for (k, v) in a.entries() {
        match b.get(k) {
            None => return write!(out, "{an} has {k}={v} which {bn} lacks"),
            Some(w) if w < *v => return write!(out, "{an} has {k}={v} which {bn} has at {w}"),
            _ => {}
        }
    }
    write!(out, "{an} is not strictly smaller than {bn} in any component")
}

fn write_locks(out: &mut impl fmt::Write, locks: &[Arc<str>]) -> fmt::Result {
    out.write_str("{")?;
    for (i, l) in locks.iter().enumerate() {
        if i > 0 {
            out.write_str(", ")?;
        }
        out.write_str(l)?;
    }
    out.write_str("}")
}

fn write_reason(out: &mut impl fmt::Write, race: &Race) -> fmt::Result {
    out.write_str("neither clock is before the other: ")?;
    write_not_before(out, &race.first.clock, "first", &race.second.clock, "second")?;
    out.write_str("; ")?;
    write_not_before(out, &race.second.clock, "second", &race.first.clock, "first")?;
    out.write_str("; no common lock: ")?;
    write_locks(out, &race.first.lock_set)?;
    out.write_str(" vs ")?;
    write_locks(out, &race.second.lock_set)
}

fn write_access(f: &mut fmt::Formatter<'_>, label: &str, a: &Access) -> fmt::Result {
    writeln!(
        f,
        "  {label} {} at {}, flow {} (trace {}), event {}",
        a.access_type, a.location, a.thread_id, a.trace_id, a.event_id
    )?;
    f.write_str("          value ")?;
    if let Some(old) = &a.old_value {
        write!(f, "{old} -> ")?;
    }
    write!(f, "{}, clock {}, locks ", a.new_value, a.clock)?;
    write_locks(f, &a.lock_set)?;
    writeln!(f)
}

impl fmt::Display for Race {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "race on `{}`:", self.variable)?;
        write_access(f, "first: ", &self.first)?;
        write_access(f, "second:", &self.second)?;
        f.write_str("  why:    ")?;
        write_reason(f, self)?;
        writeln!(f)
    }
}

/// Per-variable summary of a report.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct VariableRaces {
    /// The variable.
    pub variable: Arc<str>,
    /// Racing pairs of flows found on it (listed or left out).
    pub racing_pairs: u64,
    /// Of those, how many the report lists.
    pub listed: usize,
    /// How many flows accessed it.
    pub flows: usize,
}

/// What the analyser found so far.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RaceReport {
    races: Vec<Race>,
    left_out: u64,
    saturated: bool,
    events_observed: u64,
    accesses_observed: u64,
    variables: Vec<VariableRaces>,
    max_races: usize,
}

impl RaceReport {
    /// The races listed in full, in the order they were found: one per (variable, pair of
    /// flows).
    pub fn races(&self) -> &[Race] {
        &self.races
    }
    /// Number of races listed.
    pub fn len(&self) -> usize {
        self.races.len()
    }
    /// True when no race was found at all (listed or left out).
    pub fn is_empty(&self) -> bool {
        self.races.is_empty() && self.left_out == 0
    }
    /// Racing pairs found but not listed, because [`AnalyzerConfig::max_races`] was reached.
    pub fn left_out(&self) -> u64 {
        self.left_out
    }
    /// All racing pairs found: listed plus left out.
    pub fn racing_pairs(&self) -> u64 {
        self.races.len() as u64 + self.left_out
    }
    /// True when [`AnalyzerConfig::max_counted_races`] was reached: the analyser stopped
    /// looking, and [`RaceReport::racing_pairs`] is a lower bound.
    pub fn is_saturated(&self) -> bool {
        self.saturated
    }
    /// Events observed (of every kind).
    pub fn events_observed(&self) -> u64 {
        self.events_observed
    }
    /// `StateChange` events observed.
    pub fn accesses_observed(&self) -> u64 {
        self.accesses_observed
    }
    /// The variables with at least one race, by name.
    pub fn variables(&self) -> &[VariableRaces] {
        &self.variables
    }
    /// The listed races on `variable`.
    pub fn races_on<'a>(&'a self, variable: &'a str) -> impl Iterator<Item = &'a Race> + 'a {
        self.races.iter().filter(move |r| &*r.variable == variable)
    }
}

impl fmt::Display for RaceReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Raceway local race analysis: {} events observed ({} state changes), ",
            self.events_observed, self.accesses_observed
        )?;
        if self.is_empty() {
            return writeln!(f, "no races");
        }
        let at_least = if self.saturated { "at least " } else { "" };
        writeln!(
            f,
            "{at_least}{} racing flow pair(s) on {} variable(s)",
            self.racing_pairs(),
            self.variables.len()
        )?;
        for v in &self.variables {
            writeln!(
                f,
                "  `{}`: {} racing flow pair(s) among {} flow(s)",
                v.variable, v.racing_pairs, v.flows
            )?;
        }
        for (i, race) in self.races.iter().enumerate() {
            write!(f, "\n#{} {race}", i + 1)?;
        }
        if self.left_out > 0 {
            writeln!(
                f,
                "\n{} more racing pair(s) not listed (limit of {} listed races reached)",
                self.left_out, self.max_races
            )?;
        }
        if self.saturated {
            writeln!(
                f,
                "stopped looking for new races: too many racing pairs to remember"
            )?;
        }
        Ok(())
    }
}

/// Access classes. `AtomicRMW` is an atomic write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Read = 0,
    Write = 1,
    AtomicRead = 2,
    AtomicWrite = 3,
}

const CLASSES: [Class; 4] = [Class::Read, Class::Write, Class::AtomicRead, Class::AtomicWrite];

impl Class {
    const fn of(a: AccessType) -> Self {
        match a {
            AccessType::Read => Class::Read,
            AccessType::Write => Class::Write,
            AccessType::AtomicRead => Class::AtomicRead,
            AccessType::AtomicWrite | AccessType::AtomicRmw => Class::AtomicWrite,
        }
    }
    const fn is_read(self) -> bool {
        matches!(self, Class::Read | Class::AtomicRead)
    }
    const fn is_atomic(self) -> bool {
        matches!(self, Class::AtomicRead | Class::AtomicWrite)
    }
    /// Rules 3 and 4: not both reads, not both atomic.
    const fn conflicts(self, other: Class) -> bool {
        let both_reads = self.is_read() && other.is_read();
        let both_atomic = self.is_atomic() && other.is_atomic();
        !both_reads && !both_atomic
    }
    /// True when everything `older` conflicts with, `self` conflicts with too.
    fn covers(self, older: Class) -> bool {
        CLASSES.iter().all(|&x| !older.conflicts(x) || self.conflicts(x))
    }
}

/// Interned lock sets: sorted, deduplicated lock names. Id 0 is the empty set.
#[derive(Debug)]
struct LockSets {
    ids: BTreeMap<Vec<Arc<str>>, u32>,
    sets: Vec<Vec<Arc<str>>>,
}

impl LockSets {
    fn new() -> Self {
        let mut ids = BTreeMap::new();
        ids.insert(Vec::new(), 0);
        Self {
            ids,
            sets: alloc::vec![Vec::new()],
        }
    }

    fn intern(&mut self, held: &[Arc<str>]) -> u32 {
        if held.is_empty() {
            return 0;
        }
        let mut set = held.to_vec();
        set.sort_unstable();
        set.dedup();
        if let Some(&id) = self.ids.get(&set) {
            return id;
        }
        let id = u32::try_from(self.sets.len()).unwrap_or(u32::MAX);
        self.sets.push(set.clone());
        self.ids.insert(set, id);
        id
    }

    fn get(&self, id: u32) -> &[Arc<str>] {
        self.sets.get(id as usize).map_or(&[], Vec::as_slice)
    }

    fn disjoint(&self, a: u32, b: u32) -> bool {
        if a == 0 || b == 0 {
            return true;
        }
        if a == b {
            return false;
        }
        let (x, y) = (self.get(a), self.get(b));
        let (mut i, mut j) = (0, 0);
        while i < x.len() && j < y.len() {
            match x[i].cmp(&y[j]) {
                core::cmp::Ordering::Less => i += 1,
                core::cmp::Ordering::Greater => j += 1,
                core::cmp::Ordering::Equal => return false,
            }
        }
        true
    }
}

/// Locks held by one `thread_id`, and the flows (one per trace) that use it.
#[derive(Debug)]
struct ThreadState {
    held: Vec<Arc<str>>,
    lockset: u32,
    flows: Vec<(TraceId, u32)>,
}

#[derive(Debug)]
struct FlowInfo {
    thread_id: Arc<str>,
    trace_id: TraceId,
}

/// A kept access, without what its group and flow say.
#[derive(Debug)]
struct Recorded {
    event_id: EventId,
    access_type: AccessType,
    location: SourceLocation,
    old_value: Option<Value>,
    new_value: Value,
    clock: VectorClock,
}

#[derive(Debug)]
struct Entry {
    flow: u32,
    class: Class,
    access: Recorded,
}

/// The kept accesses of one variable under one lock set.
#[derive(Debug)]
struct Group {
    lockset: u32,
    /// Kept accesses by sequence number.
    log: BTreeMap<u64, Entry>,
    /// Per flow, the sequence number of its kept access of each class.
    latest: BTreeMap<u32, [Option<u64>; 4]>,
}

impl Group {
    fn new(lockset: u32) -> Self {
        Self {
            lockset,
            log: BTreeMap::new(),
            latest: BTreeMap::new(),
        }
    }

    /// The newest kept access of `flow` here whose class covers `class`.
    fn mark(&self, flow: u32, class: Class) -> Option<u64> {
        let slots = self.latest.get(&flow)?;
        CLASSES
            .iter()
            .filter(|c| c.covers(class))
            .filter_map(|c| slots[*c as usize])
            .max()
    }

    /// Keeps `entry` as its flow's latest of its class, dropping the accesses it covers.
    fn keep(&mut self, seq: u64, entry: Entry) {
        let slots = self.latest.entry(entry.flow).or_insert([None; 4]);
        for c in CLASSES {
            if entry.class.covers(c) {
                if let Some(old) = slots[c as usize].take() {
                    self.log.remove(&old);
                }
            }
        }
        slots[entry.class as usize] = Some(seq);
        self.log.insert(seq, entry);
    }
}

#[derive(Debug)]
struct VarState {
    name: Arc<str>,
    next_seq: u64,
    groups: Vec<Group>,
    /// Racing pairs of flows found, `(smaller, larger)` flow index.
    raced: BTreeSet<(u32, u32)>,
    listed: usize,
    flows: usize,
}

impl VarState {
    fn new(name: Arc<str>) -> Self {
        Self {
            name,
            next_seq: 0,
            groups: Vec::new(),
            raced: BTreeSet::new(),
            listed: 0,
            flows: 0,
        }
    }
}

/// The local race analyser. See the [module docs](self) for the rules and the algorithm.
///
/// Feed it events in recording order with [`Analyzer::observe`]; call
/// [`Analyzer::report`] at any time.
pub struct Analyzer {
    config: AnalyzerConfig,
    events: u64,
    accesses: u64,
    threads: BTreeMap<Arc<str>, ThreadState>,
    flows: Vec<FlowInfo>,
    locksets: LockSets,
    vars: BTreeMap<Arc<str>, VarState>,
    races: Vec<Race>,
    counted: u64,
    saturated: bool,
}

impl fmt::Debug for Analyzer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Analyzer")
            .field("config", &self.config)
            .field("events", &self.events)
            .field("accesses", &self.accesses)
            .field("flows", &self.flows.len())
            .field("variables", &self.vars.len())
            .field("racing_pairs", &self.counted)
            .finish_non_exhaustive()
    }
}

impl Default for Analyzer {
    fn default() -> Self {
        Self::new()
    }
}

impl Analyzer {
    /// An analyser with the default limits.
    pub fn new() -> Self {
        Self::with_config(AnalyzerConfig::new())
    }

    /// An analyser with the given limits.
    pub fn with_config(config: AnalyzerConfig) -> Self {
        Self {
            config,
            events: 0,
            accesses: 0,
            threads: BTreeMap::new(),
            flows: Vec::new(),
            locksets: LockSets::new(),
            vars: BTreeMap::new(),
            races: Vec::new(),
            counted: 0,
            saturated: false,
        }
    }

    /// The limits.
    pub fn config(&self) -> AnalyzerConfig {
        self.config
    }

    /// Events observed so far.
    pub fn events_observed(&self) -> u64 {
        self.events
    }

    /// The races listed so far (see [`RaceReport::races`]).
    pub fn races(&self) -> &[Race] {
        &self.races
    }

    /// Observes every event of `events`, in order.
    pub fn observe_all<'a, I: IntoIterator<Item = &'a Event>>(&mut self, events: I) {
        for e in events {
            self.observe(e);
        }
    }

    /// Observes one event. Events must come in recording order (see the module docs).
    pub fn observe(&mut self, event: &Event) {
        self.events += 1;
        match &event.kind {
            EventKind::LockAcquire { lock_id, .. } => {
                let t = thread_state(&mut self.threads, &event.metadata.thread_id);
                t.held.push(lock_id.clone());
                t.lockset = self.locksets.intern(&t.held);
            }
            EventKind::LockRelease { lock_id, .. } => {
                let t = thread_state(&mut self.threads, &event.metadata.thread_id);
                if let Some(i) = t.held.iter().rposition(|l| l == lock_id) {
                    t.held.remove(i);
                    t.lockset = self.locksets.intern(&t.held);
                }
            }
            EventKind::StateChange {
                variable,
                old_value,
                new_value,
                location,
                access_type,
            } => {
                self.accesses += 1;
                self.on_access(event, variable, *access_type, location, old_value, new_value);
            }
            _ => {}
        }
    }

    fn on_access(
        &mut self,
        event: &Event,
        variable: &str,
        access_type: AccessType,
        location: &SourceLocation,
        old_value: &Option<Value>,
        new_value: &Value,
    ) {
        let t = thread_state(&mut self.threads, &event.metadata.thread_id);
        let lockset = t.lockset;
        let flow = match t.flows.iter().find(|(tr, _)| *tr == event.trace_id) {
            Some(&(_, f)) => f,
            None => {
                let f = u32::try_from(self.flows.len()).unwrap_or(u32::MAX);
                self.flows.push(FlowInfo {
                    thread_id: event.metadata.thread_id.clone(),
                    trace_id: event.trace_id,
                });
                t.flows.push((event.trace_id, f));
                f
            }
        };
        let class = Class::of(access_type);
        let var = match self.vars.get_mut(variable) {
            Some(v) => v,
            None => {
                let name: Arc<str> = Arc::from(variable);
                self.vars
                    .entry(name.clone())
                    .or_insert_with(|| VarState::new(name))
            }
        };
        let own_group = var.groups.iter().position(|g| g.lockset == lockset);
        let start = own_group
            .and_then(|i| var.groups[i].mark(flow, class))
            .map_or(0, |m| m + 1);

        if !self.saturated {
            let mut second: Option<Access> = None;
            'groups: for g in &var.groups {
                if !self.locksets.disjoint(g.lockset, lockset) {
                    continue;
                }
                for entry in g.log.range(start..).map(|(_, e)| e) {
                    if entry.flow == flow || !entry.class.conflicts(class) {
                        continue;
                    }
                    let pair = if entry.flow < flow {
                        (entry.flow, flow)
                    } else {
                        (flow, entry.flow)
                    };
                    if var.raced.contains(&pair)
                        || entry.access.clock.happened_before(&event.causality_vector)
                        || event.causality_vector.happened_before(&entry.access.clock)
                    {
                        continue;
                    }
                    if self.counted >= self.config.max_counted_races {
                        self.saturated = true;
                        break 'groups;
                    }
                    var.raced.insert(pair);
                    self.counted += 1;
                    if self.races.len() < self.config.max_races {
                        let other = &self.flows[entry.flow as usize];
                        let first = Access {
                            event_id: entry.access.event_id,
                            thread_id: other.thread_id.clone(),
                            trace_id: other.trace_id,
                            access_type: entry.access.access_type,
                            location: entry.access.location.clone(),
                            old_value: entry.access.old_value.clone(),
                            new_value: entry.access.new_value.clone(),
                            clock: entry.access.clock.clone(),
                            lock_set: self.locksets.get(g.lockset).to_vec(),
                        };
                        let second = second
                            .get_or_insert_with(|| Access {
                                event_id: event.id,
                                thread_id: event.metadata.thread_id.clone(),
                                trace_id: event.trace_id,
                                access_type,
                                location: location.clone(),
                                old_value: old_value.clone(),
                                new_value: new_value.clone(),
                                clock: event.causality_vector.clone(),
                                lock_set: self.locksets.get(lockset).to_vec(),
                            })
                            .clone();
                        self.races.push(Race {
                            variable: var.name.clone(),
                            first,
                            second,
                        });
                        var.listed += 1;
                    }
                }
            }
        }

        if !var.groups.iter().any(|g| g.latest.contains_key(&flow)) {
            var.flows += 1;
        }
        let seq = var.next_seq;
        var.next_seq += 1;
        let gi = match own_group {
            Some(i) => i,
            None => {
                var.groups.push(Group::new(lockset));
                var.groups.len() - 1
            }
        };
        var.groups[gi].keep(
            seq,
            Entry {
                flow,
                class,
                access: Recorded {
                    event_id: event.id,
                    access_type,
                    location: location.clone(),
                    old_value: old_value.clone(),
                    new_value: new_value.clone(),
                    clock: event.causality_vector.clone(),
                },
            },
        );
    }

    /// What was found so far.
    pub fn report(&self) -> RaceReport {
        RaceReport {
            races: self.races.clone(),
            left_out: self.counted - self.races.len() as u64,
            saturated: self.saturated,
            events_observed: self.events,
            accesses_observed: self.accesses,
            variables: self.variable_races(),
            max_races: self.config.max_races,
        }
    }

    /// What was found, without copying the races.
    pub fn into_report(self) -> RaceReport {
        let variables = self.variable_races();
        RaceReport {
            left_out: self.counted - self.races.len() as u64,
            races: self.races,
            saturated: self.saturated,
            events_observed: self.events,
            accesses_observed: self.accesses,
            variables,
            max_races: self.config.max_races,
        }
    }

    fn variable_races(&self) -> Vec<VariableRaces> {
        self.vars
            .values()
            .filter(|v| !v.raced.is_empty())
            .map(|v| VariableRaces {
                variable: v.name.clone(),
                racing_pairs: v.raced.len() as u64,
                listed: v.listed,
                flows: v.flows,
            })
            .collect()
    }
}

fn thread_state<'a>(
    threads: &'a mut BTreeMap<Arc<str>, ThreadState>,
    thread_id: &Arc<str>,
) -> &'a mut ThreadState {
    threads.entry(thread_id.clone()).or_insert_with(|| ThreadState {
        held: Vec::new(),
        lockset: 0,
        flows: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn class_conflicts_and_covers() {
        use Class::*;
        assert!(!Read.conflicts(Read));
        assert!(!Read.conflicts(AtomicRead));
        assert!(Read.conflicts(Write));
        assert!(Read.conflicts(AtomicWrite));
        assert!(!AtomicWrite.conflicts(AtomicWrite));
        assert!(!AtomicWrite.conflicts(AtomicRead));
        assert!(AtomicWrite.conflicts(Write));
        for c in CLASSES {
            assert!(Write.covers(c));
            assert!(c.covers(c));
        }
        assert!(Read.covers(AtomicRead));
        assert!(AtomicWrite.covers(AtomicRead));
        assert!(!Read.covers(AtomicWrite));
        assert!(!AtomicWrite.covers(Read));
        assert!(!Read.covers(Write));
    }

    #[test]
    fn lock_sets_intern_and_intersect() {
        let mut ls = LockSets::new();
        let a: Arc<str> = Arc::from("a");
        let b: Arc<str> = Arc::from("b");
        let c: Arc<str> = Arc::from("c");
        let ab = ls.intern(&[b.clone(), a.clone(), a.clone()]);
        assert_eq!(ls.intern(&[a.clone(), b.clone()]), ab);
        let bc = ls.intern(&[c.clone(), b]);
        let only_c = ls.intern(&[c]);
        let only_a = ls.intern(&[a]);
        assert!(!ls.disjoint(ab, bc));
        assert!(ls.disjoint(ab, only_c));
        assert!(!ls.disjoint(only_a, ab));
        assert!(ls.disjoint(0, ab));
        assert!(ls.disjoint(0, 0));
        assert!(!ls.disjoint(only_c, only_c));
    }
}

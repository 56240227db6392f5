//! The race scenarios of RACES.md (S1-S8), built the way the SDK builds their events
//! (through `Tracer`), fed to the local analyser, which must report exactly the truth
//! column; plus lock-set edge cases, limits, the report text, and a randomized comparison
//! against a brute-force all-pairs implementation of the same rules.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use raceway_proto::analysis::{Analyzer, AnalyzerConfig, RaceReport};
use raceway_proto::headers::{self, ClockHeader, RemoteContext};
use raceway_proto::ids::{splitmix64, SeededIds};
use raceway_proto::{
    AccessType, Event, EventKind, Flow, Service, SourceLocation, Timestamp, TraceId, Tracer, WallClock,
};
use serde_json::{json, Value};

// ---------------------------------------------------------------------------------------
// How the SDK builds events

/// A wall clock that ticks one microsecond per reading.
#[derive(Default)]
struct TestClock(AtomicU64);

impl WallClock for TestClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_unix_micros(1_790_000_000_000_000 + self.0.fetch_add(1, Ordering::Relaxed))
    }
}

fn tracer(service: &str, seed: u64) -> Tracer {
    Tracer::new(
        Service::new(service, "i-1", "test", service, 4242),
        Arc::new(SeededIds::new(seed)),
        Arc::new(TestClock::default()),
    )
}

/// A service's tracer plus the events it recorded, in recording order (the local sink).
struct App {
    t: Tracer,
    events: Vec<Event>,
    /// Calls go through the real header codecs (`Tracer::propagate`, `headers::extract`,
    /// `ClockHeader` encode/decode) instead of handing the values over directly.
    via_headers: bool,
}

impl App {
    fn new(service: &str, seed: u64) -> Self {
        Self {
            t: tracer(service, seed),
            events: Vec::new(),
            via_headers: false,
        }
    }

    /// What the middleware does for an incoming request without propagation headers.
    fn request(&mut self, path: &str) -> Flow {
        let mut f = self.t.new_trace();
        self.http_request(&mut f, path);
        f
    }

    fn http_request(&mut self, f: &mut Flow, path: &str) {
        let kind = EventKind::HttpRequest {
            method: "POST".into(),
            url: path.into(),
            headers: BTreeMap::new(),
            body: None,
        };
        self.events.push(self.t.record(f, kind, None));
    }

    fn respond(&mut self, f: &mut Flow) {
        let kind = EventKind::HttpResponse {
            status: 200,
            headers: BTreeMap::new(),
            body: None,
            duration_ms: 50,
        };
        self.events.push(self.t.record(f, kind, None));
    }

    #[track_caller]
    fn access(&mut self, f: &mut Flow, var: &str, access: AccessType, old: Option<Value>, new: Value) {
        let kind = EventKind::state_change(var, old, new, access, SourceLocation::caller());
        self.events.push(self.t.record(f, kind, None));
    }

    #[track_caller]
    fn read(&mut self, f: &mut Flow, var: &str, value: Value) {
        let kind = EventKind::state_change(var, None, value, AccessType::Read, SourceLocation::caller());
        self.events.push(self.t.record(f, kind, None));
    }

    #[track_caller]
    fn write(&mut self, f: &mut Flow, var: &str, old: Value, new: Value) {
        let kind = EventKind::state_change(var, Some(old), new, AccessType::Write, SourceLocation::caller());
        self.events.push(self.t.record(f, kind, None));
    }

    #[track_caller]
    fn lock(&mut self, f: &mut Flow, lock: &str, lock_type: &'static str) {
        let kind = EventKind::LockAcquire {
            lock_id: Arc::from(lock),
            lock_type: lock_type.into(),
            location: SourceLocation::caller(),
        };
        self.events.push(self.t.record(f, kind, None));
    }

    #[track_caller]
    fn unlock(&mut self, f: &mut Flow, lock: &str, lock_type: &'static str) {
        let kind = EventKind::LockRelease {
            lock_id: Arc::from(lock),
            lock_type: lock_type.into(),
            location: SourceLocation::caller(),
        };
        self.events.push(self.t.record(f, kind, None));
    }

    fn other(&mut self, f: &mut Flow, name: &str) {
        let kind = EventKind::function_call(name, &Arc::from("app"), json!([]), &SourceLocation::caller());
        self.events.push(self.t.record(f, kind, None));
    }

    /// `spawn` with the context carried over.
    fn spawn(&mut self, parent: &mut Flow) -> Flow {
        let (child, ev) = self.t.fork(parent, "spawn");
        self.events.push(ev.to_event());
        child
    }

    /// Awaiting the join handle of a finished child.
    fn join(&mut self, parent: &mut Flow, child: &Flow) {
        let ev = self.t.join(parent, &child.end(), "join");
        self.events.push(ev.to_event());
    }

    /// What `Tracer::propagate` does, without the header codec (being written elsewhere):
    /// increment the caller's component, make a child span, and hand the callee the clock
    /// and the caller's last event. `response_clock` does the increment and returns the
    /// clock and last event; the callee side is exactly what decoding the headers gives.
    fn call(&mut self, caller: &mut Flow) -> RemoteContext {
        if self.via_headers {
            let headers = self.t.propagate(caller);
            return headers::extract(headers.iter()).expect("propagated headers parse");
        }
        let sent: ClockHeader = self.t.response_clock(caller);
        RemoteContext {
            trace_id: sent.trace_id,
            span_id: self.t.ids().span_id(),
            parent_span_id: Some(caller.span_id()),
            tracestate: None,
            clock: sent.clock,
            event_id: sent.event_id,
            sampled: None,
        }
    }

    /// An incoming request with propagation headers.
    fn serve(&mut self, remote: &RemoteContext, path: &str) -> Flow {
        let mut f = self.t.continue_trace(remote);
        self.http_request(&mut f, path);
        f
    }

    /// The answer's `raceway-clock`.
    fn answer(&mut self, f: &mut Flow) -> ClockHeader {
        self.respond(f);
        let answer = self.t.response_clock(f);
        if self.via_headers {
            return ClockHeader::decode(&answer.to_header_value()).expect("response clock parses");
        }
        answer
    }

    /// The caller merges the callee's answer.
    fn returned(&mut self, caller: &mut Flow, answer: &ClockHeader) {
        assert!(self.t.merge_response(caller, answer));
    }
}

/// Merges the recording streams of several services in the given order of (app, index).
fn analyze(events: &[Event]) -> RaceReport {
    let mut a = Analyzer::new();
    a.observe_all(events);
    assert_eq!(a.events_observed(), events.len() as u64);
    a.report()
}

type Pair = (String, String, String);

fn pair(var: &str, x: &str, y: &str) -> Pair {
    let (a, b) = if x < y { (x, y) } else { (y, x) };
    (var.into(), a.into(), b.into())
}

/// The racing (variable, flow, flow) triples of a report; each appears once.
fn pairs(report: &RaceReport) -> BTreeSet<Pair> {
    let mut out = BTreeSet::new();
    for r in report.races() {
        assert!(
            out.insert(pair(&r.variable, &r.first.thread_id, &r.second.thread_id)),
            "pair reported twice: {r}"
        );
    }
    assert_eq!(report.left_out(), 0);
    out
}

fn all_pairs(var: &str, flows: &[&Flow]) -> BTreeSet<Pair> {
    let mut out = BTreeSet::new();
    for (i, a) in flows.iter().enumerate() {
        for b in &flows[i + 1..] {
            out.insert(pair(var, a.thread_id(), b.thread_id()));
        }
    }
    out
}

// ---------------------------------------------------------------------------------------
// RACES.md

/// S1: 4 concurrent requests each read `balance`, await, write `balance`; no lock.
#[test]
fn s1_unprotected_read_modify_write_races_pairwise() {
    let mut app = App::new("banking", 1);
    let mut reqs: Vec<Flow> = (0..4).map(|_| app.request("/transfer")).collect();
    for r in &mut reqs {
        app.read(r, "balance", json!(100));
    }
    for (i, r) in reqs.iter_mut().enumerate() {
        app.write(r, "balance", json!(100), json!(100 + 10 * i));
    }
    for r in &mut reqs {
        app.respond(r);
    }
    let report = analyze(&app.events);
    let flows: Vec<&Flow> = reqs.iter().collect();
    assert_eq!(pairs(&report), all_pairs("balance", &flows));
    assert_eq!(report.len(), 6);
    // the first write finds the three other reads: read-write; later ones write-write or read-write
    assert!(report
        .races()
        .iter()
        .any(|r| r.first.access_type == AccessType::Read));
    assert!(report
        .races()
        .iter()
        .all(|r| r.second.access_type == AccessType::Write));
    assert_eq!(report.variables().len(), 1);
    assert_eq!(report.variables()[0].racing_pairs, 6);
    assert_eq!(report.variables()[0].flows, 4);
    assert_eq!(report.accesses_observed(), 8);
}

/// S1 written as read-write-read-write per request, fully interleaved: write-write pairs too.
#[test]
fn s1_write_write_pairs() {
    let mut app = App::new("banking", 11);
    let mut reqs: Vec<Flow> = (0..4).map(|_| app.request("/transfer")).collect();
    for r in &mut reqs {
        app.write(r, "balance", json!(0), json!(1));
    }
    let report = analyze(&app.events);
    assert_eq!(report.len(), 6);
    assert!(report
        .races()
        .iter()
        .all(|r| r.first.access_type == AccessType::Write && r.second.access_type == AccessType::Write));
}

/// S2: like S1, but odd requests record two extra events first.
#[test]
fn s2_earlier_event_count_does_not_matter() {
    let mut app = App::new("banking", 2);
    let mut reqs: Vec<Flow> = (0..4).map(|_| app.request("/transfer")).collect();
    for (i, r) in reqs.iter_mut().enumerate() {
        if i % 2 == 1 {
            app.other(r, "validate");
            app.access(r, "audit_log", AccessType::Write, None, json!(i));
        }
    }
    for r in &mut reqs {
        app.read(r, "balance", json!(100));
    }
    for r in &mut reqs {
        app.write(r, "balance", json!(100), json!(50));
    }
    let report = analyze(&app.events);
    let flows: Vec<&Flow> = reqs.iter().collect();
    let mut expected = all_pairs("balance", &flows);
    // the two odd requests also both write `audit_log`: a real race of its own
    expected.insert(pair("audit_log", reqs[1].thread_id(), reqs[3].thread_id()));
    assert_eq!(pairs(&report), expected);
    assert_eq!(report.races_on("balance").count(), 6);
}

/// S3: each request holds one tracked lock around its read and write.
#[test]
fn s3_common_lock_no_race() {
    let mut app = App::new("banking", 3);
    let mut reqs: Vec<Flow> = (0..4).map(|_| app.request("/transfer")).collect();
    // the lock serializes the critical sections; the rest of each request interleaves
    for i in 0..4 {
        let (done, rest) = reqs.split_at_mut(i);
        let (r, after) = rest.split_first_mut().unwrap();
        app.lock(r, "balance_lock", "Mutex");
        app.read(r, "balance", json!(100 - 10 * i));
        for other in done.iter_mut().chain(after.iter_mut()) {
            app.other(other, "unrelated");
        }
        app.write(r, "balance", json!(100 - 10 * i), json!(90 - 10 * i));
        app.unlock(r, "balance_lock", "Mutex");
    }
    let report = analyze(&app.events);
    assert!(report.is_empty(), "{report}");
    // the lock_set the server would recompute is what the events carry, too
    assert!(app
        .events
        .iter()
        .filter(|e| matches!(e.kind, EventKind::StateChange { .. }))
        .all(|e| e.lock_set == ["balance_lock"]));
}

/// S4: one request reads then writes `balance` twice.
#[test]
fn s4_program_order_no_race() {
    let mut app = App::new("banking", 4);
    let mut r = app.request("/transfer");
    for _ in 0..2 {
        app.read(&mut r, "balance", json!(100));
        app.write(&mut r, "balance", json!(100), json!(90));
    }
    app.respond(&mut r);
    assert!(analyze(&app.events).is_empty());
}

/// S5a: A writes `total`, calls B; B reads and writes `total`; A reads it after B answered.
#[test]
fn s5a_call_and_return_no_race() {
    for via_headers in [false, true] {
        s5a(via_headers);
    }
}

fn s5a(via_headers: bool) {
    let mut a = App::new("gateway", 51);
    let mut b = App::new("ledger", 52);
    a.via_headers = via_headers;
    b.via_headers = via_headers;
    let mut req = a.request("/checkout");
    a.write(&mut req, "total", json!(0), json!(10));
    let headers = a.call(&mut req);
    let mut handler = b.serve(&headers, "/apply");
    b.read(&mut handler, "total", json!(10));
    b.write(&mut handler, "total", json!(10), json!(12));
    let answer = b.answer(&mut handler);
    a.returned(&mut req, &answer);
    a.read(&mut req, "total", json!(12));
    a.respond(&mut req);

    // one local sink seeing both services, in either order of arrival of A's and B's
    // events that respects causality (A's write, then B, then A's read)
    let a_before_call: Vec<Event> = a.events[..2].to_vec();
    let a_after: Vec<Event> = a.events[2..].to_vec();
    let mut all = a_before_call;
    all.extend(b.events.iter().cloned());
    all.extend(a_after);
    let report = analyze(&all);
    assert!(report.is_empty(), "{report}");
    assert_eq!(report.accesses_observed(), 4);
}

/// S5b: A calls the same handler of B twice in parallel; it reads, awaits, writes `stock`.
#[test]
fn s5b_parallel_calls_race_in_callee() {
    for via_headers in [false, true] {
        s5b(via_headers);
    }
}

fn s5b(via_headers: bool) {
    let mut a = App::new("gateway", 53);
    let mut b = App::new("inventory", 54);
    a.via_headers = via_headers;
    b.via_headers = via_headers;
    let mut req = a.request("/order");
    let h1 = a.call(&mut req);
    let h2 = a.call(&mut req);
    let mut b1 = b.serve(&h1, "/reserve");
    let mut b2 = b.serve(&h2, "/reserve");
    b.read(&mut b1, "stock", json!(5));
    b.read(&mut b2, "stock", json!(5));
    b.write(&mut b1, "stock", json!(5), json!(4));
    b.write(&mut b2, "stock", json!(5), json!(4));
    let r1 = b.answer(&mut b1);
    let r2 = b.answer(&mut b2);
    a.returned(&mut req, &r1);
    a.returned(&mut req, &r2);
    a.respond(&mut req);

    let mut all = a.events[..1].to_vec();
    all.extend(b.events.iter().cloned());
    all.extend(a.events[1..].iter().cloned());
    let report = analyze(&all);
    let expected: BTreeSet<Pair> = [pair("stock", b1.thread_id(), b2.thread_id())].into();
    assert_eq!(pairs(&report), expected);
    let race = &report.races()[0];
    assert_eq!(race.first.trace_id, race.second.trace_id);
    assert!(!race.crosses_traces());
}

/// S6: write, spawn a task (context carried over) that writes, join it, read.
#[test]
fn s6_spawn_and_join_order_no_race() {
    let mut app = App::new("web", 6);
    let mut req = app.request("/refresh");
    app.write(&mut req, "cache", json!(null), json!("v1"));
    let mut task = app.spawn(&mut req);
    app.other(&mut req, "await_join_handle");
    app.write(&mut task, "cache", json!("v1"), json!("v2"));
    app.join(&mut req, &task);
    app.read(&mut req, "cache", json!("v2"));
    app.respond(&mut req);
    let report = analyze(&app.events);
    assert!(report.is_empty(), "{report}");
}

/// S6 without the join: the parent's read races with the task's write.
#[test]
fn s6_without_join_races() {
    let mut app = App::new("web", 61);
    let mut req = app.request("/refresh");
    app.write(&mut req, "cache", json!(null), json!("v1"));
    let mut task = app.spawn(&mut req);
    app.write(&mut task, "cache", json!("v1"), json!("v2"));
    app.read(&mut req, "cache", json!("v2"));
    let report = analyze(&app.events);
    let expected: BTreeSet<Pair> = [pair("cache", req.thread_id(), task.thread_id())].into();
    assert_eq!(pairs(&report), expected);
    // the write before the spawn is ordered: the representative is the read after it
    assert_eq!(report.races()[0].first.access_type, AccessType::Write);
    assert_eq!(report.races()[0].second.access_type, AccessType::Read);
}

/// S7: readers hold a tracked read lock, a writer the same lock as write lock.
#[test]
fn s7_rwlock_no_race() {
    let mut app = App::new("config-svc", 7);
    let mut readers: Vec<Flow> = (0..3).map(|_| app.request("/get")).collect();
    let mut writer = app.request("/set");
    for r in &mut readers {
        app.lock(r, "config_lock", "RwLock::Read");
    }
    for r in &mut readers {
        app.read(r, "config", json!({"v": 1}));
    }
    for r in &mut readers {
        app.unlock(r, "config_lock", "RwLock::Read");
    }
    app.lock(&mut writer, "config_lock", "RwLock::Write");
    app.write(&mut writer, "config", json!({"v": 1}), json!({"v": 2}));
    app.unlock(&mut writer, "config_lock", "RwLock::Write");
    for r in &mut readers {
        app.lock(r, "config_lock", "RwLock::Read");
        app.read(r, "config", json!({"v": 2}));
        app.unlock(r, "config_lock", "RwLock::Read");
    }
    let report = analyze(&app.events);
    assert!(report.is_empty(), "{report}");
}

/// S8: two threads `fetch_add` a counter and write `total` without a lock.
#[test]
fn s8_threads_atomic_counter_and_plain_total() {
    let mut app = App::new("batch", 8);
    let mut main = app.t.new_trace();
    app.access(&mut main, "counter", AccessType::AtomicWrite, None, json!(0));
    let mut t1 = app.spawn(&mut main);
    let mut t2 = app.spawn(&mut main);
    app.access(
        &mut t1,
        "counter",
        AccessType::AtomicRmw,
        Some(json!(0)),
        json!(1),
    );
    app.access(
        &mut t2,
        "counter",
        AccessType::AtomicRmw,
        Some(json!(1)),
        json!(2),
    );
    app.write(&mut t1, "total", json!(0), json!(1));
    app.write(&mut t2, "total", json!(0), json!(2));
    app.join(&mut main, &t1);
    app.join(&mut main, &t2);
    app.access(&mut main, "counter", AccessType::Read, None, json!(2));
    app.read(&mut main, "total", json!(2));
    let report = analyze(&app.events);
    let expected: BTreeSet<Pair> = [pair("total", t1.thread_id(), t2.thread_id())].into();
    assert_eq!(pairs(&report), expected);
    assert_eq!(report.races_on("counter").count(), 0);
}

// ---------------------------------------------------------------------------------------
// Rules in detail

fn two_requests(seed: u64) -> (App, Flow, Flow) {
    let mut app = App::new("svc", seed);
    let f = app.request("/a");
    let g = app.request("/b");
    (app, f, g)
}

#[test]
fn atomic_and_plain_accesses_race_but_two_atomics_do_not() {
    let cases = [
        (AccessType::AtomicWrite, AccessType::AtomicRmw, false),
        (AccessType::AtomicRead, AccessType::AtomicRmw, false),
        (AccessType::AtomicRead, AccessType::Read, false),
        (AccessType::AtomicRead, AccessType::Write, true),
        (AccessType::AtomicRmw, AccessType::Read, true),
        (AccessType::Read, AccessType::AtomicWrite, true),
        (AccessType::Read, AccessType::Read, false),
        (AccessType::Write, AccessType::Read, true),
    ];
    for (i, (x, y, races)) in cases.into_iter().enumerate() {
        let (mut app, mut f, mut g) = two_requests(100 + i as u64);
        app.access(&mut f, "v", x, None, json!(1));
        app.access(&mut g, "v", y, None, json!(2));
        assert_eq!(analyze(&app.events).len(), usize::from(races), "{x} vs {y}");
    }
}

#[test]
fn the_events_lock_set_field_is_not_trusted() {
    // claims a common lock that no lock event took: still a race
    let (mut app, mut f, mut g) = two_requests(20);
    app.write(&mut f, "v", json!(0), json!(1));
    app.write(&mut g, "v", json!(0), json!(2));
    for e in &mut app.events {
        e.lock_set = vec!["m".into()];
    }
    assert_eq!(analyze(&app.events).len(), 1);

    // lock events took a common lock but the field says nothing: no race
    let (mut app, mut f, mut g) = two_requests(21);
    app.lock(&mut f, "m", "Mutex");
    app.write(&mut f, "v", json!(0), json!(1));
    app.unlock(&mut f, "m", "Mutex");
    app.lock(&mut g, "m", "Mutex");
    app.write(&mut g, "v", json!(0), json!(2));
    app.unlock(&mut g, "m", "Mutex");
    for e in &mut app.events {
        e.lock_set.clear();
    }
    assert!(analyze(&app.events).is_empty());
}

#[test]
fn reentrant_acquire_needs_as_many_releases() {
    let (mut app, mut f, mut g) = two_requests(22);
    app.lock(&mut f, "m", "Mutex");
    app.lock(&mut f, "m", "Mutex");
    app.unlock(&mut f, "m", "Mutex");
    app.write(&mut f, "v", json!(0), json!(1)); // still holds m once
    app.unlock(&mut f, "m", "Mutex");
    app.lock(&mut g, "m", "Mutex");
    app.write(&mut g, "v", json!(0), json!(2));
    app.unlock(&mut g, "m", "Mutex");
    assert!(analyze(&app.events).is_empty());

    // ... and after the last release the lock is gone
    let (mut app, mut f, mut g) = two_requests(23);
    app.lock(&mut f, "m", "Mutex");
    app.lock(&mut f, "m", "Mutex");
    app.unlock(&mut f, "m", "Mutex");
    app.unlock(&mut f, "m", "Mutex");
    app.write(&mut f, "v", json!(0), json!(1));
    app.lock(&mut g, "m", "Mutex");
    app.write(&mut g, "v", json!(0), json!(2));
    assert_eq!(analyze(&app.events).len(), 1);
}

#[test]
fn releasing_an_unheld_lock_or_another_threads_lock_changes_nothing() {
    let (mut app, mut f, mut g) = two_requests(24);
    app.lock(&mut f, "m", "Mutex");
    app.unlock(&mut g, "m", "Mutex"); // g never held m: f still does
    app.unlock(&mut g, "n", "Mutex");
    app.write(&mut f, "v", json!(0), json!(1));
    app.lock(&mut g, "m", "Mutex");
    app.write(&mut g, "v", json!(0), json!(2));
    assert!(analyze(&app.events).is_empty());
}

#[test]
fn lock_sets_need_one_common_lock_not_equal_sets() {
    let (mut app, mut f, mut g) = two_requests(25);
    app.lock(&mut f, "a", "Mutex");
    app.lock(&mut f, "b", "Mutex");
    app.write(&mut f, "v", json!(0), json!(1));
    app.lock(&mut g, "c", "Mutex");
    app.lock(&mut g, "b", "Mutex");
    app.write(&mut g, "v", json!(0), json!(2));
    assert!(analyze(&app.events).is_empty());

    let (mut app, mut f, mut g) = two_requests(26);
    app.lock(&mut f, "a", "Mutex");
    app.write(&mut f, "v", json!(0), json!(1));
    app.lock(&mut g, "b", "Mutex");
    app.write(&mut g, "v", json!(0), json!(2));
    assert_eq!(analyze(&app.events).len(), 1);
}

/// A flow's unlocked write is followed by a locked one: only the first races with another
/// flow's locked write, so keeping only "the latest write per flow" would miss it.
#[test]
fn an_older_access_under_fewer_locks_is_not_forgotten() {
    let (mut app, mut f, mut g) = two_requests(27);
    app.write(&mut g, "v", json!(0), json!(1));
    app.lock(&mut g, "m", "Mutex");
    app.write(&mut g, "v", json!(1), json!(2));
    app.unlock(&mut g, "m", "Mutex");
    app.lock(&mut f, "m", "Mutex");
    app.write(&mut f, "v", json!(2), json!(3));
    app.unlock(&mut f, "m", "Mutex");
    let report = analyze(&app.events);
    assert_eq!(report.len(), 1);
    let race = &report.races()[0];
    assert_eq!(race.first.thread_id.as_ref(), g.thread_id());
    assert_eq!(race.first.new_value, json!(1));
    assert!(race.first.lock_set.is_empty());
    assert_eq!(race.second.lock_set, [Arc::<str>::from("m")]);
}

/// A flow's read, then its atomic write: the atomic write does not cover the read (only
/// the read races with an atomic write), so both are kept.
#[test]
fn an_older_access_of_another_class_is_not_forgotten() {
    let (mut app, mut f, mut g) = two_requests(28);
    app.access(&mut g, "v", AccessType::Read, None, json!(0));
    app.access(&mut g, "v", AccessType::AtomicWrite, None, json!(1));
    app.access(&mut f, "v", AccessType::AtomicRmw, None, json!(2));
    let report = analyze(&app.events);
    assert_eq!(report.len(), 1);
    assert_eq!(report.races()[0].first.access_type, AccessType::Read);
}

/// A flow's second access is only checked against what others did since its first; what
/// others did before is still found if the second access conflicts where the first did not.
#[test]
fn repeated_accesses_find_new_and_old_partners() {
    let mut app = App::new("svc", 29);
    let mut f = app.request("/f");
    let mut g = app.request("/g");
    let mut h = app.request("/h");
    app.read(&mut g, "v", json!(0));
    app.read(&mut f, "v", json!(0)); // no race: both reads
    app.write(&mut h, "v", json!(0), json!(1)); // races g and f
    app.read(&mut f, "v", json!(1)); // f-h already known
    app.write(&mut f, "v", json!(1), json!(2)); // f-g: found now (write covers read, old partner)
    let report = analyze(&app.events);
    let expected: BTreeSet<Pair> = [
        pair("v", g.thread_id(), h.thread_id()),
        pair("v", f.thread_id(), h.thread_id()),
        pair("v", f.thread_id(), g.thread_id()),
    ]
    .into();
    assert_eq!(pairs(&report), expected);
}

#[test]
fn same_thread_id_in_another_trace_is_another_flow() {
    let mut app = App::new("svc", 30);
    let mut f = app.request("/f");
    app.write(&mut f, "v", json!(0), json!(1));
    let mut copy = app.events.last().cloned().unwrap();
    copy.trace_id = TraceId::from_u128(7);
    copy.id = app.t.ids().event_id();
    app.events.push(copy);
    let report = analyze(&app.events);
    assert_eq!(report.len(), 1);
    assert!(report.races()[0].crosses_traces());
}

// ---------------------------------------------------------------------------------------
// Limits and the report

#[test]
fn limits_count_what_they_leave_out() {
    let mut app = App::new("banking", 40);
    let mut reqs: Vec<Flow> = (0..5).map(|_| app.request("/t")).collect();
    for r in &mut reqs {
        app.write(r, "balance", json!(0), json!(1));
    }
    for r in &mut reqs {
        app.write(r, "balance", json!(1), json!(2));
    }
    let mut a = Analyzer::with_config(AnalyzerConfig::new().with_max_races(3));
    a.observe_all(&app.events);
    let report = a.report();
    assert_eq!(report.len(), 3);
    assert_eq!(report.left_out(), 7);
    assert_eq!(report.racing_pairs(), 10);
    assert!(!report.is_saturated());
    assert_eq!(report.variables()[0].racing_pairs, 10);
    assert_eq!(report.variables()[0].listed, 3);
    assert!(report
        .to_string()
        .contains("7 more racing pair(s) not listed (limit of 3"));

    let mut a = Analyzer::with_config(AnalyzerConfig::new().with_max_races(2).with_max_counted_races(4));
    a.observe_all(&app.events);
    let report = a.into_report();
    assert_eq!(report.len(), 2);
    assert_eq!(report.racing_pairs(), 4);
    assert!(report.is_saturated());
    assert!(report.to_string().contains("at least 4 racing flow pair(s)"));
}

#[test]
fn report_text_says_where_who_and_why() {
    let (mut app, mut f, mut g) = two_requests(41);
    app.lock(&mut f, "audit", "Mutex");
    app.read(&mut f, "balance", json!(100));
    let read_line = line!() - 1;
    app.write(&mut g, "balance", json!(100), json!(150));
    let write_line = line!() - 1;
    let report = analyze(&app.events);
    assert_eq!(report.len(), 1);
    let race = &report.races()[0];
    let why = race.reason();
    // f's clock at the read: {f: 3} (request, lock, read); g's at the write: {g: 2}
    assert_eq!(
        why,
        format!(
            "neither clock is before the other: first has {f}=3 which second lacks; \
             second has {g}=2 which first lacks; no common lock: {{audit}} vs {{}}",
            f = f.thread_id(),
            g = g.thread_id()
        )
    );
    let text = report.to_string();
    for needle in [
        format!("{} events observed (2 state changes)", app.events.len()),
        "1 racing flow pair(s) on 1 variable(s)".into(),
        "`balance`: 1 racing flow pair(s) among 2 flow(s)".into(),
        "#1 race on `balance`".into(),
        format!("Read at {}:{read_line}, flow {}", file!(), f.thread_id()),
        format!("Write at {}:{write_line}, flow {}", file!(), g.thread_id()),
        "value 100 -> 150".into(),
        format!("trace {}", g.trace_id()),
        "locks {audit}".into(),
        format!("why:    {why}"),
    ] {
        assert!(text.contains(&needle), "missing {needle:?} in\n{text}");
    }
    assert_eq!(report.events_observed(), app.events.len() as u64);
}

#[test]
fn reason_explains_a_smaller_component_and_equal_clocks() {
    // a child forked from a parent: the parent's later write has the parent's component
    // higher than the child's copy, and the child has its own component
    let mut app = App::new("svc", 42);
    let mut p = app.request("/p");
    let mut c = app.spawn(&mut p);
    app.write(&mut p, "v", json!(0), json!(1));
    app.write(&mut c, "v", json!(0), json!(2));
    let report = analyze(&app.events);
    let why = report.races()[0].reason();
    assert!(
        why.contains(&format!("first has {}=3 which second has at 2", p.thread_id())),
        "{why}"
    );
    assert!(
        why.contains(&format!("second has {}=1 which first lacks", c.thread_id())),
        "{why}"
    );
}

#[test]
fn empty_report_text() {
    let report = Analyzer::new().report();
    assert!(report.is_empty());
    assert_eq!(
        report.to_string(),
        "Raceway local race analysis: 0 events observed (0 state changes), no races\n"
    );
}

// ---------------------------------------------------------------------------------------
// Randomized: the analyser finds exactly the pairs an all-pairs check of the rules finds

struct Rng(u64);
impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 += 1;
        (splitmix64(self.0) % n as u64) as usize
    }
}

/// A random program of a few services, traces, spawned tasks, calls and locks.
fn random_program(seed: u64) -> Vec<Event> {
    let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9));
    let mut apps = [App::new("a", seed * 3), App::new("b", seed * 3 + 1)];
    for app in &mut apps {
        app.via_headers = seed % 2 == 0;
    }
    struct Live {
        app: usize,
        flow: Flow,
        parent: Option<usize>,
        done: bool,
        call: bool,
    }
    let mut flows: Vec<Live> = Vec::new();
    // recording order: each step records events in one service only (a call records
    // nothing on the caller's side, an answer is merged without an event), so appending
    // each step's new events keeps the order consistent with causality
    let mut order: Vec<(usize, usize)> = Vec::new(); // (app, index into app.events)
    let vars = ["x", "y", "z"];
    let locks = ["m", "n", "o"];
    let types = [
        AccessType::Read,
        AccessType::Write,
        AccessType::AtomicRead,
        AccessType::AtomicWrite,
        AccessType::AtomicRmw,
    ];
    for _ in 0..(1 + rng.below(3)) {
        let app = rng.below(2);
        let f = apps[app].request("/r");
        flows.push(Live {
            app,
            flow: f,
            parent: None,
            done: false,
            call: false,
        });
    }
    let steps = 20 + rng.below(60);
    for _ in 0..steps {
        let i = rng.below(flows.len());
        if flows[i].done {
            continue;
        }
        let app = flows[i].app;
        let before = [apps[0].events.len(), apps[1].events.len()];
        match rng.below(12) {
            0..=4 => {
                let var = vars[rng.below(vars.len())];
                let ty = types[rng.below(types.len())];
                apps[app].access(&mut flows[i].flow, var, ty, None, json!(1));
            }
            5 => {
                let l = locks[rng.below(locks.len())];
                apps[app].lock(&mut flows[i].flow, l, "Mutex");
            }
            6 => {
                let held: Vec<Arc<str>> = flows[i].flow.held_locks().to_vec();
                let l: String = if !held.is_empty() && rng.below(4) > 0 {
                    held[rng.below(held.len())].to_string()
                } else {
                    locks[rng.below(locks.len())].into()
                };
                apps[app].unlock(&mut flows[i].flow, &l, "Mutex");
            }
            7 if flows.len() < 10 => {
                let child = apps[app].spawn(&mut flows[i].flow);
                flows.push(Live {
                    app,
                    flow: child,
                    parent: Some(i),
                    done: false,
                    call: false,
                });
            }
            8 if flows.len() < 10 => {
                // a call to the other service
                let remote = apps[app].call(&mut flows[i].flow);
                let other = 1 - app;
                let callee = apps[other].serve(&remote, "/c");
                flows.push(Live {
                    app: other,
                    flow: callee,
                    parent: Some(i),
                    done: false,
                    call: true,
                });
            }
            9 => {
                // finish a live child of i: join it, or merge its answer
                if let Some(c) = (0..flows.len()).find(|&c| flows[c].parent == Some(i) && !flows[c].done) {
                    flows[c].done = true;
                    if flows[c].call {
                        let capp = flows[c].app;
                        let answer = apps[capp].answer(&mut flows[c].flow);
                        apps[app].returned(&mut flows[i].flow, &answer);
                    } else {
                        let child = flows[c].flow.clone();
                        apps[app].join(&mut flows[i].flow, &child);
                    }
                }
            }
            10 => {
                let f = apps[app].request("/new");
                flows.push(Live {
                    app,
                    flow: f,
                    parent: None,
                    done: false,
                    call: false,
                });
            }
            _ => apps[app].other(&mut flows[i].flow, "noise"),
        }
        for (a, from) in before.into_iter().enumerate() {
            for k in from..apps[a].events.len() {
                order.push((a, k));
            }
        }
    }
    order
        .into_iter()
        .map(|(a, k)| apps[a].events[k].clone())
        .collect()
}

/// (variable, flow, flow), a flow being (trace id, thread id).
type RacingFlows = (String, (u128, String), (u128, String));

/// The rules, applied to every pair of accesses.
fn brute_force(events: &[Event]) -> BTreeSet<RacingFlows> {
    let mut held: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut accesses = Vec::new();
    for e in events {
        let h = held.entry(e.metadata.thread_id.to_string()).or_default();
        match &e.kind {
            EventKind::LockAcquire { lock_id, .. } => h.push(lock_id.to_string()),
            EventKind::LockRelease { lock_id, .. } => {
                if let Some(i) = h.iter().rposition(|l| **l == **lock_id) {
                    h.remove(i);
                }
            }
            EventKind::StateChange {
                variable,
                access_type,
                ..
            } => {
                accesses.push((variable.clone(), *access_type, h.clone(), e));
            }
            _ => {}
        }
    }
    let mut out = BTreeSet::new();
    for (i, (va, ta, la, a)) in accesses.iter().enumerate() {
        for (vb, tb, lb, b) in &accesses[i + 1..] {
            let fa = (a.trace_id.as_u128(), a.metadata.thread_id.to_string());
            let fb = (b.trace_id.as_u128(), b.metadata.thread_id.to_string());
            if va != vb
                || fa == fb
                || (ta.is_read() && tb.is_read())
                || (ta.is_atomic() && tb.is_atomic())
                || a.causality_vector.happened_before(&b.causality_vector)
                || b.causality_vector.happened_before(&a.causality_vector)
                || la.iter().any(|l| lb.contains(l))
            {
                continue;
            }
            let (x, y) = if fa < fb { (fa, fb) } else { (fb, fa) };
            out.insert((va.clone(), x, y));
        }
    }
    out
}

#[test]
fn randomized_programs_match_the_all_pairs_rules() {
    let mut total = 0;
    for seed in 1..=400u64 {
        let events = random_program(seed);
        // recording order must be consistent with causality
        for (i, a) in events.iter().enumerate() {
            for b in &events[..i] {
                assert!(
                    !a.causality_vector.happened_before(&b.causality_vector),
                    "seed {seed}: order"
                );
            }
        }
        let expected = brute_force(&events);
        let mut an = Analyzer::new();
        an.observe_all(&events);
        let report = an.report();
        let mut got = BTreeSet::new();
        for r in report.races() {
            let x = (r.first.trace_id.as_u128(), r.first.thread_id.to_string());
            let y = (r.second.trace_id.as_u128(), r.second.thread_id.to_string());
            let (x, y) = if x < y { (x, y) } else { (y, x) };
            assert!(
                got.insert((r.variable.to_string(), x, y)),
                "seed {seed}: duplicate"
            );
            // the representative pair itself satisfies every rule
            assert!(!(r.first.access_type.is_read() && r.second.access_type.is_read()));
            assert!(!(r.first.access_type.is_atomic() && r.second.access_type.is_atomic()));
            assert!(!r.first.clock.happened_before(&r.second.clock));
            assert!(!r.second.clock.happened_before(&r.first.clock));
            assert!(r.first.lock_set.iter().all(|l| !r.second.lock_set.contains(l)));
        }
        assert_eq!(got, expected, "seed {seed}");
        total += expected.len();
    }
    assert!(
        total > 400,
        "the random programs should race now and then ({total})"
    );
}

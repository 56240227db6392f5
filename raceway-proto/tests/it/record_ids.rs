//! A record stores no id: its id is made from its flow's seed and own counter, and its
//! parent is the flow's event before it. These tests pin down what every `parent_id` is
//! through the moves that change a flow's position without an event of its own (propagate,
//! answer a call), that make it follow another flow's event (fork, join, merge a callee's
//! answer, continue a trace from headers), and for clones of a flow.

use std::collections::HashSet;
use std::sync::Arc;

use raceway_proto::headers::{self, ClockHeader};
use raceway_proto::ids::SeededIds;
use raceway_proto::record::Record;
use raceway_proto::{AccessType, EventId, Flow, Service, Tracer};

fn tracer(service: &str, seed: u64) -> Tracer {
    let s = Service::new(service, "i-1", "test", "mod", 1);
    Tracer::new(
        s,
        Arc::new(SeededIds::new(seed)),
        Arc::new(raceway_proto::system::SystemClock::new()),
    )
}

#[track_caller]
fn change(t: &Tracer, flow: &mut Flow) -> Record {
    t.stamp_state(
        flow,
        "v",
        AccessType::Write,
        core::panic::Location::caller(),
        None,
        |v| v.new_value(&1),
    )
}

fn is_uuid_v4(id: EventId) -> bool {
    let v = id.as_u128();
    (v >> 76) & 0xf == 4 && (v >> 62) & 0b11 == 0b10
}

#[test]
fn each_record_follows_the_one_before_it_in_its_flow_across_propagate_and_answers() {
    let t = tracer("svc", 1);
    let callee = tracer("callee", 2);
    let mut f = t.new_trace();
    let a = change(&t, &mut f);
    assert_eq!(a.parent(), None, "the first event of a new trace");
    let b = change(&t, &mut f);
    assert_eq!(b.parent(), Some(a.id()));
    // An outgoing call moves the flow's counter without an event.
    let prop = t.propagate(&mut f);
    let c = change(&t, &mut f);
    assert_eq!(c.parent(), Some(b.id()), "propagate makes no event");
    // The callee continues from the caller's last event, answers, and its answer is merged.
    let remote = headers::extract(prop.iter()).unwrap();
    let mut served = callee.continue_trace(&remote);
    let d = change(&callee, &mut served);
    assert_eq!(
        d.parent(),
        Some(b.id()),
        "the callee's first event follows the caller's last one sent"
    );
    let answer = callee.response_clock(&mut served);
    let e = change(&callee, &mut served);
    assert_eq!(e.parent(), Some(d.id()), "answering makes no event");
    let answer = ClockHeader::decode(&answer.to_header_value()).unwrap();
    assert!(t.merge_response(&mut f, &answer));
    let g = change(&t, &mut f);
    assert_eq!(
        g.parent(),
        Some(d.id()),
        "after the merge, the caller follows the callee's answer"
    );
    let h = change(&t, &mut f);
    assert_eq!(h.parent(), Some(g.id()));
    for r in [&a, &b, &c, &d, &e, &g, &h] {
        assert!(is_uuid_v4(r.id()), "{:?}", r.id());
        assert_eq!(r.to_event().id, r.id());
        assert_eq!(r.to_event().parent_id, r.parent());
    }
}

#[test]
fn fork_and_join_link_the_two_flows() {
    let t = tracer("svc", 3);
    let mut root = t.new_trace();
    let a = change(&t, &mut root);
    let (mut child, spawn) = t.fork(&mut root, "spawn");
    assert_eq!(spawn.parent(), Some(a.id()));
    let b = change(&t, &mut child);
    assert_eq!(
        b.parent(),
        Some(spawn.id()),
        "the child's first event follows the spawn"
    );
    let b2 = change(&t, &mut child);
    let c = change(&t, &mut root);
    assert_eq!(c.parent(), Some(spawn.id()));
    let join = t.join(&mut root, &child.end(), "join");
    assert_eq!(
        join.parent(),
        Some(b2.id()),
        "the join follows the child's last event"
    );
    let d = change(&t, &mut root);
    assert_eq!(d.parent(), Some(join.id()));
}

#[test]
fn ids_never_repeat_within_a_flow_across_flows_or_in_clones() {
    let t = tracer("svc", 4);
    let mut seen = HashSet::new();
    let mut root = t.new_trace();
    for _ in 0..50_000 {
        assert!(seen.insert(change(&t, &mut root).id()));
    }
    // A clone at the same position records other ids (and follows the same last event).
    let last = root.last_event();
    let mut copy = root.clone();
    let x = change(&t, &mut copy);
    let y = change(&t, &mut root);
    assert_ne!(x.id(), y.id());
    assert_eq!(x.parent(), last);
    assert_eq!(y.parent(), last);
    assert!(seen.insert(x.id()) && seen.insert(y.id()));
    for _ in 0..100 {
        let mut f = t.new_trace();
        for _ in 0..100 {
            assert!(seen.insert(change(&t, &mut f).id()));
        }
    }
    // Recorded by another client's tracer: other ids, and the chain goes on.
    let other = tracer("svc", 4);
    let z = change(&other, &mut root);
    assert_eq!(z.parent(), Some(y.id()));
    assert!(seen.insert(z.id()));
    let w = change(&t, &mut root);
    assert_eq!(w.parent(), Some(z.id()));
    assert!(seen.insert(w.id()));
}

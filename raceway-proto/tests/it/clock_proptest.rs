//! Property tests of the vector clock's partial order (server rule 3).

use std::sync::Arc;

use proptest::prelude::*;
use raceway_proto::clock::{ClockOrdering, Component, VectorClock};

fn clock() -> impl Strategy<Value = VectorClock> {
    // few component names, so that clocks overlap often
    prop::collection::vec((0u8..5, 0u64..6), 0..6).prop_map(|pairs| {
        VectorClock::from_pairs(
            pairs
                .into_iter()
                .map(|(k, v)| (Arc::from(format!("c{k}").as_str()), v)),
        )
    })
}

proptest! {
    #[test]
    fn happened_before_is_irreflexive(a in clock()) {
        prop_assert!(!a.happened_before(&a));
        prop_assert!(a.is_empty() || a.compare(&a) == ClockOrdering::Equal);
    }

    #[test]
    fn compare_is_antisymmetric(a in clock(), b in clock()) {
        let ab = a.compare(&b);
        let ba = b.compare(&a);
        let expected = match ab {
            ClockOrdering::Before => ClockOrdering::After,
            ClockOrdering::After => ClockOrdering::Before,
            other => other,
        };
        prop_assert_eq!(ba, expected);
        prop_assert!(!(a.happened_before(&b) && b.happened_before(&a)));
    }

    #[test]
    fn happened_before_is_transitive(a in clock(), b in clock(), c in clock()) {
        if a.happened_before(&b) && b.happened_before(&c) {
            prop_assert!(a.happened_before(&c));
        }
    }

    #[test]
    fn merge_then_increment_is_after_both(a in clock(), b in clock(), own in 0u8..5) {
        let own: Component = Arc::from(format!("c{own}").as_str());
        let mut m = a.clone();
        m.merge(&b, &own);
        m.increment(&own);
        // the merge is an upper bound of both inputs ...
        for (k, v) in a.entries() {
            prop_assert!(m.get(k).is_some_and(|w| w >= *v));
        }
        // ... and a clock that carries the receiver's component is strictly before it
        if a.get(&own).is_some() {
            prop_assert!(a.happened_before(&m));
        }
        for (k, v) in b.entries() {
            prop_assert!(m.get(k).is_some_and(|w| w >= *v));
        }
    }

    #[test]
    fn increment_orders_a_flow_after_itself(a in clock(), own in 0u8..5) {
        let own: Component = Arc::from(format!("c{own}").as_str());
        let mut next = a.clone();
        next.increment(&own);
        if a.get(&own).is_some() {
            prop_assert!(a.happened_before(&next));
            prop_assert_eq!(next.compare(&a), ClockOrdering::After);
        }
    }

    #[test]
    fn wire_form_round_trips(a in clock()) {
        let json = serde_json::to_string(&a).unwrap();
        prop_assert_eq!(serde_json::from_str::<VectorClock>(&json).unwrap(), a);
    }
}

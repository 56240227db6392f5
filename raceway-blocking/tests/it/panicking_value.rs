//! A value whose `Serialize` panics while its state change is written in place, in its
//! slot of the export queue: the panic reaches the caller, nothing half-written is queued,
//! and the client goes on recording in the same flow, whose chain of `parent_id`s has no
//! gap.

use crate::common;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Duration;

use raceway_blocking::RacewayClient;
use raceway_testkit::Collector;
use serde::{Serialize, Serializer};

struct Boom;

impl Serialize for Boom {
    fn serialize<S: Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
        panic!("a value that cannot be serialized");
    }
}

#[test]
fn a_value_that_panics_while_serialized_queues_nothing_and_the_flow_goes_on() {
    let collector = Collector::start();
    let client = RacewayClient::from_config(common::export_config(&collector.url())).unwrap();
    client.track_state_change("before", None::<u64>, 1u64, "Write");
    let caught = catch_unwind(AssertUnwindSafe(|| {
        client.track_state_change("boom", None::<Boom>, Boom, "Write");
    }));
    assert!(caught.is_err(), "the value's panic reaches the caller");
    client.track_state_change("after", None::<u64>, 2u64, "Write");
    client.flush(Duration::from_secs(10)).unwrap();

    let events = collector.events_json();
    let variables: Vec<&str> = events
        .iter()
        .filter_map(|e| e["kind"]["StateChange"]["variable"].as_str())
        .collect();
    assert_eq!(variables, ["before", "after"]);
    let threads: Vec<&str> = events
        .iter()
        .filter_map(|e| e["metadata"]["thread_id"].as_str())
        .collect();
    assert_eq!(threads.len(), 2);
    assert_eq!(threads[0], threads[1], "both in the thread's one flow");
    assert_eq!(
        events[1]["parent_id"], events[0]["id"],
        "the change that panicked took no place in the flow: the next one follows the one before"
    );
    let stats = client.stats();
    assert_eq!(stats.export.dropped(), 0, "{stats:?}");
    client.shutdown_timeout(Duration::from_secs(2)).unwrap();
}

//! RACES.md S4: one thread reads then writes `balance` twice. No race (program order).

use crate::common;

#[test]
fn s4_one_thread_reading_and_writing_twice_does_not_race() {
    let (client, collector) = common::analysed_client("s4");
    let rw = client.clone();
    client
        .spawn(move || {
            for _ in 0..2 {
                rw.track_state_change("balance", None::<i64>, 100, "Read");
                rw.track_state_change("balance", Some(100), 90, "Write");
            }
        })
        .join()
        .unwrap();
    let report = client.races();
    assert!(report.is_empty(), "{report}");
    assert_eq!(report.accesses_observed(), 4);
    common::assert_delivered(&client, &collector);
}

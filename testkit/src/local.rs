//! Helpers over the local analyser's report, shared by the adapters' tests.

use std::collections::BTreeSet;

use raceway_proto::analysis::{Race, RaceReport};

/// The only race on `variable` in `report` (panics, with the report, unless there is
/// exactly one racing pair in all).
pub fn only_race<'a>(report: &'a RaceReport, variable: &'a str) -> &'a Race {
    let races: Vec<_> = report.races_on(variable).collect();
    assert_eq!(races.len(), 1, "{report}");
    assert_eq!(report.racing_pairs(), 1, "{report}");
    races[0]
}

/// The access types of `race`'s two accesses.
pub fn access_kinds(race: &Race) -> BTreeSet<&'static str> {
    [race.first.access_type, race.second.access_type]
        .iter()
        .map(|a| a.as_str())
        .collect()
}

//! Printing a race report for a terminal, in the testing API's format
//! ([`raceway_proto::testing::Report`]): grouped by variable, each racing pair once, both
//! accesses' code and flows, the why in one line. `RACEWAY_REPORT=json` prints JSON.

use raceway_proto::analysis::RaceReport;
use raceway_proto::testing::Report;

/// The report as text (or JSON, with `RACEWAY_REPORT=json`).
pub fn render(report: &RaceReport) -> String {
    Report::from(report.clone()).render()
}

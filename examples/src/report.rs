//! Printing a race report for a terminal: a summary table, then each race.

use std::fmt::Write;

use raceway_proto::analysis::RaceReport;

/// The summary table and the details of every listed race.
pub fn render(report: &RaceReport) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} events analysed, {} racing pairs",
        report.events_observed(),
        report.racing_pairs()
    );
    if report.variables().is_empty() {
        let _ = writeln!(out, "no races found");
        return out;
    }
    let _ = writeln!(out);
    let _ = writeln!(out, "  {:<24} {:>13} {:>7}", "variable", "racing pairs", "flows");
    let _ = writeln!(out, "  {:-<24} {:->13} {:->7}", "", "", "");
    for v in report.variables() {
        let _ = writeln!(out, "  {:<24} {:>13} {:>7}", v.variable, v.racing_pairs, v.flows);
    }
    let _ = writeln!(out);
    for (i, race) in report.races().iter().enumerate() {
        let _ = writeln!(out, "race {}: `{}`", i + 1, race.variable);
        for (label, a) in [("first ", &race.first), ("second", &race.second)] {
            let _ = writeln!(
                out,
                "  {label} {:<11} at {}  (flow {}, trace {})",
                a.access_type.as_str(),
                a.location,
                a.thread_id,
                a.trace_id
            );
        }
        let _ = writeln!(out, "  why: {}", race.reason());
    }
    out
}

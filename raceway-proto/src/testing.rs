//! Races as test results: a report that reads like ThreadSanitizer's, and assertions.
//!
//! Each client crate has a `testing` module that runs a closure (or a future) under a fresh
//! local analyser and hands back a [`Report`]; this module is what they share. A report
//! groups the races by variable and lists each racing pair of accesses once, with both
//! accesses' source lines (the code itself, read from the source file when it can be found),
//! their flows and one line saying why they race. `{:#}` adds the vector clocks and the
//! values. With `RACEWAY_REPORT=json`, [`Report::render`] (and so the assertion messages)
//! is one JSON object instead, for CI tools.
//!
//! ```
//! use raceway_proto::testing::Report;
//!
//! let report = Report::from(raceway_proto::analysis::RaceReport::default());
//! report.assert_no_races();
//! assert!(report.racing_variables().is_empty());
//! ```

use core::fmt;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::string::{String, ToString};
use std::vec::Vec;

use serde_json::{json, Value};

use crate::analysis::{Access, Race, RaceReport};
use crate::event::SourceLocation;

/// The races a test run found (see the [module docs](self)).
#[derive(Debug, Clone)]
pub struct Report {
    inner: RaceReport,
}

impl From<RaceReport> for Report {
    fn from(inner: RaceReport) -> Self {
        Self { inner }
    }
}

impl Report {
    /// The analyser's full report.
    pub fn races(&self) -> &RaceReport {
        &self.inner
    }

    /// True when nothing races.
    pub fn is_empty(&self) -> bool {
        self.inner.is_empty()
    }

    /// The variables with at least one race, sorted.
    pub fn racing_variables(&self) -> Vec<&str> {
        let set: BTreeSet<&str> = self.inner.variables().iter().map(|v| &*v.variable).collect();
        set.into_iter().collect()
    }

    /// Panics, with the report, when anything races.
    #[track_caller]
    pub fn assert_no_races(&self) {
        if !self.is_empty() {
            panic!("expected no races, found:\n{}", self.render());
        }
    }

    /// Panics, with the report, unless the variables that race are exactly `variables`
    /// (in any order).
    #[track_caller]
    pub fn assert_races_exactly(&self, variables: &[&str]) {
        let want: BTreeSet<&str> = variables.iter().copied().collect();
        let got: BTreeSet<&str> = self.racing_variables().into_iter().collect();
        if want != got {
            panic!(
                "expected races on exactly {:?}, found them on {:?}:\n{}",
                want,
                got,
                self.render()
            );
        }
    }

    /// The report as `RACEWAY_REPORT` asks: `json` gives [`Report::to_json`], anything
    /// else (or unset) the text of `Display`.
    pub fn render(&self) -> String {
        match std::env::var("RACEWAY_REPORT") {
            Ok(v) if v.eq_ignore_ascii_case("json") => self.to_json().to_string(),
            _ => self.to_string(),
        }
    }

    /// The report as JSON: `{"racing_pairs", "events", "variables": [{"variable",
    /// "races": [{"first", "second", "why"}]}]}`, each access with `access`, `location`,
    /// `code` (the source line, or null), `flow` and `trace`.
    pub fn to_json(&self) -> Value {
        let variables: Vec<Value> = self
            .groups()
            .into_iter()
            .map(|(variable, races)| {
                let races: Vec<Value> = races
                    .into_iter()
                    .map(|r| {
                        json!({
                            "first": access_json(&r.first),
                            "second": access_json(&r.second),
                            "why": r.reason(),
                        })
                    })
                    .collect();
                json!({ "variable": variable, "races": races })
            })
            .collect();
        json!({
            "racing_pairs": self.inner.racing_pairs(),
            "events": self.inner.events_observed(),
            "variables": variables,
        })
    }

    /// The listed races grouped by variable, in order of the variables' names.
    fn groups(&self) -> Vec<(&str, Vec<&Race>)> {
        let mut out: Vec<(&str, Vec<&Race>)> = Vec::new();
        for v in self.racing_variables() {
            out.push((v, self.inner.races_on(v).collect()));
        }
        out
    }
}

impl fmt::Display for Report {
    /// Text for people; `{:#}` adds each access's clock, values and locks.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.inner.is_empty() {
            return writeln!(
                f,
                "raceway: no races ({} events analysed)",
                self.inner.events_observed()
            );
        }
        let vars = self.inner.variables().len();
        writeln!(
            f,
            "raceway: {} racing pair(s) on {} variable(s) ({} events analysed)",
            self.inner.racing_pairs(),
            vars,
            self.inner.events_observed()
        )?;
        for (variable, races) in self.groups() {
            writeln!(f, "\nWARNING: data race on `{variable}`")?;
            for (i, race) in races.iter().enumerate() {
                writeln!(f, "  pair {}:", i + 1)?;
                write_access(f, &race.first)?;
                write_access(f, &race.second)?;
                writeln!(f, "    why: {}", short_reason(race))?;
                if f.alternate() {
                    writeln!(f, "    detail: {}", race.reason())?;
                }
            }
        }
        if self.inner.left_out() > 0 {
            writeln!(f, "\n{} more racing pair(s) not listed", self.inner.left_out())?;
        }
        Ok(())
    }
}

fn write_access(f: &mut fmt::Formatter<'_>, a: &Access) -> fmt::Result {
    writeln!(
        f,
        "    {:<11} at {}  (flow {})",
        a.access_type.as_str(),
        a.location,
        a.thread_id
    )?;
    if let Some(code) = source_line(&a.location) {
        writeln!(f, "      | {code}")?;
    }
    if f.alternate() {
        write!(f, "      value ")?;
        if let Some(old) = &a.old_value {
            write!(f, "{old} -> ")?;
        }
        writeln!(f, "{}, clock {}, trace {}", a.new_value, a.clock, a.trace_id)?;
    }
    Ok(())
}

/// The why in one line: unordered, and the locks (or none) each side held.
fn short_reason(race: &Race) -> String {
    let locks = |a: &Access| {
        if a.lock_set.is_empty() {
            "no lock".to_string()
        } else {
            a.lock_set
                .iter()
                .map(|l| l.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        }
    };
    let scope = if race.crosses_traces() {
        "two traces"
    } else {
        "one trace"
    };
    std::format!(
        "neither happened before the other ({scope}); locks held: {} vs {}",
        locks(&race.first),
        locks(&race.second)
    )
}

fn access_json(a: &Access) -> Value {
    json!({
        "access": a.access_type.as_str(),
        "location": a.location.to_string(),
        "code": source_line(&a.location),
        "flow": &*a.thread_id,
        "trace": a.trace_id.to_string(),
    })
}

/// The source line at `location`, trimmed, when the file can be found: as written, or
/// relative to the current directory or one of its ancestors (test binaries run in their
/// crate's directory; `file!()` paths start at the workspace root).
pub fn source_line(location: &SourceLocation) -> Option<String> {
    let (file, line) = match location {
        SourceLocation::Static { file, line } => ((*file).to_string(), *line),
        SourceLocation::Text(t) => {
            let (file, line) = t.rsplit_once(':')?;
            (file.to_string(), line.parse().ok()?)
        }
    };
    let path = find_file(Path::new(&file))?;
    let text = std::fs::read_to_string(path).ok()?;
    let index = usize::try_from(line).ok()?.checked_sub(1)?;
    text.lines().nth(index).map(|l| l.trim().to_string())
}

fn find_file(file: &Path) -> Option<PathBuf> {
    if file.is_absolute() {
        return file.is_file().then(|| file.to_path_buf());
    }
    let cwd = std::env::current_dir().ok()?;
    cwd.ancestors().map(|dir| dir.join(file)).find(|p| p.is_file())
}

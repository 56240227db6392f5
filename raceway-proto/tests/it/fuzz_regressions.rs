//! The fuzz targets' committed inputs (`fuzz/regressions/<target>/*`: crashes the fuzzer
//! found, and seeds worth keeping), replayed through **every** decoder with the same
//! checks as the targets in `fuzz/fuzz_targets/`, so `cargo test --workspace` runs them
//! without nightly or cargo-fuzz.
//!
//! The checks live in `fuzz/checks.rs`, shared with the fuzz targets.

use std::path::{Path, PathBuf};

#[path = "../../../fuzz/checks.rs"]
mod checks;
use checks::{
    check_extract, check_raceway_clock, check_server_response, check_traceparent, check_tracestate,
};

const TARGETS: [&str; 5] = [
    "traceparent",
    "tracestate",
    "raceway_clock",
    "extract",
    "server_response",
];

fn regressions_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/regressions")
}

fn inputs() -> Vec<(String, PathBuf)> {
    let mut out = Vec::new();
    for dir in std::fs::read_dir(regressions_dir()).expect("fuzz/regressions exists") {
        let dir = dir.unwrap().path();
        if !dir.is_dir() {
            continue;
        }
        let target = dir.file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            TARGETS.contains(&target.as_str()),
            "fuzz/regressions/{target}: no such target"
        );
        for f in std::fs::read_dir(&dir).unwrap() {
            let f = f.unwrap().path();
            if f.is_file() {
                out.push((target.clone(), f));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn every_target_has_regression_inputs() {
    let inputs = inputs();
    for t in TARGETS {
        assert!(
            inputs.iter().any(|(d, _)| d == t),
            "fuzz/regressions/{t} is empty"
        );
    }
}

#[test]
fn every_decoder_over_every_regression_input() {
    type Check = (&'static str, fn(&[u8]));
    let checks: [Check; 5] = [
        ("traceparent", check_traceparent),
        ("tracestate", check_tracestate),
        ("raceway_clock", check_raceway_clock),
        ("extract", check_extract),
        ("server_response", check_server_response),
    ];
    let inputs = inputs();
    let mut failures = Vec::new();
    for (dir, path) in &inputs {
        let data = std::fs::read(path).unwrap();
        for (name, check) in checks {
            if std::panic::catch_unwind(|| check(&data)).is_err() {
                failures.push(format!(
                    "{name} on {dir}/{}",
                    path.file_name().unwrap().to_string_lossy()
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} inputs failed: {failures:#?}",
        failures.len(),
        inputs.len()
    );
}

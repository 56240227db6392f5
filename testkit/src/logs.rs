//! What the SDK reports through the `log` facade, captured for assertions.
//!
//! [`capture`] installs a process-wide logger once (the first call in a test binary) that
//! keeps every record of every crate, down to `debug`, as `LEVEL target: message`. Tests of one
//! binary share it, so a test looks for lines that name something of its own (its service
//! name, its port).
//!
//! ```
//! let logs = raceway_testkit::logs::capture();
//! log::warn!(target: "raceway", "service \"doc-example\": something");
//! assert_eq!(logs.containing("doc-example").len(), 1);
//! ```

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The most lines kept; later ones are counted in [`Logs::overflowed`] only.
pub const MAX_LINES: usize = 50_000;

/// The captured log lines; see the [module docs](self).
#[derive(Debug)]
pub struct Logs {
    lines: Mutex<Vec<String>>,
    overflowed: Mutex<u64>,
    installed: Mutex<bool>,
}

static LOGS: Logs = Logs {
    lines: Mutex::new(Vec::new()),
    overflowed: Mutex::new(0),
    installed: Mutex::new(false),
};

/// Installs the capturing logger (once per process) and returns it.
///
/// # Panics
/// If another logger was installed first in this process: then nothing would be captured.
pub fn capture() -> &'static Logs {
    let mut installed = LOGS.installed.lock().unwrap_or_else(|e| e.into_inner());
    if !*installed {
        log::set_logger(&LOGS)
            .expect("raceway-testkit: another logger is installed; logs::capture() cannot see records");
        log::set_max_level(log::LevelFilter::Debug);
        *installed = true;
    }
    &LOGS
}

impl Logs {
    /// Every line so far (at most [`MAX_LINES`]).
    pub fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The lines that contain `needle`.
    pub fn containing(&self, needle: &str) -> Vec<String> {
        self.lines
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|l| l.contains(needle))
            .cloned()
            .collect()
    }

    /// Waits until some line contains `needle`, at most `timeout`; true if one does.
    pub fn wait_for(&self, needle: &str, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        loop {
            if !self.containing(needle).is_empty() {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Lines not kept because [`MAX_LINES`] were already.
    pub fn overflowed(&self) -> u64 {
        *self.overflowed.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl log::Log for Logs {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }

    fn log(&self, record: &log::Record<'_>) {
        let mut lines = self.lines.lock().unwrap_or_else(|e| e.into_inner());
        if lines.len() < MAX_LINES {
            lines.push(format!(
                "{} {}: {}",
                record.level(),
                record.target(),
                record.args()
            ));
        } else {
            drop(lines);
            *self.overflowed.lock().unwrap_or_else(|e| e.into_inner()) += 1;
        }
    }

    fn flush(&self) {}
}

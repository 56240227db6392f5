//! Diagnostics: what a library reports goes through the `log` facade (feature `log`), never
//! to stderr on its own. Without the feature nothing is printed; every such condition is
//! also counted in `stats()` or returned as an error.

/// Reports a warning.
pub(crate) fn warn(message: core::fmt::Arguments<'_>) {
    #[cfg(feature = "log")]
    log::warn!(target: "raceway", "{message}");
    #[cfg(not(feature = "log"))]
    let _ = message;
}

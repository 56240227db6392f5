//! The local race analyser.

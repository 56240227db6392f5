//! testkit's integration tests: one binary, one module per behaviour.

mod collector;
mod real_server;

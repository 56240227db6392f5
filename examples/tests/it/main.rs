//! The integration tests of raceway-examples, in one test binary: a module per behaviour.

mod channels;
mod examples;
mod real_server_cross;

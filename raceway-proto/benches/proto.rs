//! Benchmarks of the core: the cost of recording one event in a flow.
fn main() {}

//! The export state machine: bounded queue, batching, retry decisions; time passed in.

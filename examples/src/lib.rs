//! Examples: being written.

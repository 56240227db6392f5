//! Traits at the boundary between the core and its adapters.

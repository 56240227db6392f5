//! Tracked `std::sync` locks, with the published crate's shapes.

use std::sync::Arc;

use crate::RacewayClient;

/// A `std::sync::Mutex` whose acquire and release are recorded:
/// `TrackedMutex::new(data, client.clone(), "lock-id")`, then `.lock("Mutex")`.
pub type TrackedMutex<T> = raceway_proto::sync::TrackedMutex<T, Arc<RacewayClient>>;
/// Guard of a [`TrackedMutex`].
pub type TrackedMutexGuard<'a, T> = raceway_proto::sync::TrackedMutexGuard<'a, T, Arc<RacewayClient>>;
/// A `std::sync::RwLock` whose acquires and releases are recorded.
pub type TrackedRwLock<T> = raceway_proto::sync::TrackedRwLock<T, Arc<RacewayClient>>;
/// Read guard of a [`TrackedRwLock`].
pub type TrackedRwLockReadGuard<'a, T> =
    raceway_proto::sync::TrackedRwLockReadGuard<'a, T, Arc<RacewayClient>>;
/// Write guard of a [`TrackedRwLock`].
pub type TrackedRwLockWriteGuard<'a, T> =
    raceway_proto::sync::TrackedRwLockWriteGuard<'a, T, Arc<RacewayClient>>;

//! Tracked locks: `std::sync` ones with the published crate's shapes, and async ones over
//! `tokio::sync` for locks held across `.await`.

use std::future::Future;
use std::sync::Arc;

use raceway_proto::SourceLocation;

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

/// A `tokio::sync::Mutex` whose acquire and release are recorded; hold it across `.await`.
#[derive(Debug)]
pub struct AsyncTrackedMutex<T> {
    inner: tokio::sync::Mutex<T>,
    client: Arc<RacewayClient>,
    lock_id: Arc<str>,
}

impl<T> AsyncTrackedMutex<T> {
    /// Wraps `data`; `lock_id` names the lock in events.
    pub fn new(data: T, client: Arc<RacewayClient>, lock_id: impl Into<String>) -> Self {
        Self {
            inner: tokio::sync::Mutex::new(data),
            client,
            lock_id: Arc::from(lock_id.into()),
        }
    }

    /// Locks (recorded once held); the guard records the release when dropped.
    #[track_caller]
    pub fn lock(&self) -> impl Future<Output = AsyncTrackedGuard<'_, tokio::sync::MutexGuard<'_, T>>> {
        let location = SourceLocation::caller();
        async move {
            let guard = self.inner.lock().await;
            AsyncTrackedGuard::acquired(guard, &self.client, &self.lock_id, "Mutex", location)
        }
    }
}

/// A `tokio::sync::RwLock` whose acquires and releases are recorded.
#[derive(Debug)]
pub struct AsyncTrackedRwLock<T> {
    inner: tokio::sync::RwLock<T>,
    client: Arc<RacewayClient>,
    lock_id: Arc<str>,
}

impl<T> AsyncTrackedRwLock<T> {
    /// Wraps `data`; `lock_id` names the lock in events.
    pub fn new(data: T, client: Arc<RacewayClient>, lock_id: impl Into<String>) -> Self {
        Self {
            inner: tokio::sync::RwLock::new(data),
            client,
            lock_id: Arc::from(lock_id.into()),
        }
    }

    /// Takes a read lock (`RwLock::Read`).
    #[track_caller]
    pub fn read(&self) -> impl Future<Output = AsyncTrackedGuard<'_, tokio::sync::RwLockReadGuard<'_, T>>> {
        let location = SourceLocation::caller();
        async move {
            let guard = self.inner.read().await;
            AsyncTrackedGuard::acquired(guard, &self.client, &self.lock_id, "RwLock::Read", location)
        }
    }

    /// Takes the write lock (`RwLock::Write`).
    #[track_caller]
    pub fn write(&self) -> impl Future<Output = AsyncTrackedGuard<'_, tokio::sync::RwLockWriteGuard<'_, T>>> {
        let location = SourceLocation::caller();
        async move {
            let guard = self.inner.write().await;
            AsyncTrackedGuard::acquired(guard, &self.client, &self.lock_id, "RwLock::Write", location)
        }
    }
}

/// Guard of the async tracked locks: derefs to the inner guard's data and records the
/// release (before letting go) when dropped.
pub type AsyncTrackedGuard<'a, G> = raceway_proto::sync::TrackedGuard<'a, G, Arc<RacewayClient>>;

//! Tracked `std::sync` locks: a lock whose acquire and release are recorded, so the
//! analyser knows which accesses it protects.
//!
//! Each adapter re-exports these with its own client type filled in
//! (`raceway_rt_tokio::TrackedMutex<T>`), with the shapes of the published crate:
//! `TrackedMutex::new(data, client, "lock-id")`, `.lock("Mutex")`, `TrackedRwLock::read()`
//! and `write()`. The acquire is recorded after the lock is held and the release before
//! it is let go, so no other flow's acquire can be recorded between them.
//!
//! A poisoned lock (a holder panicked) is entered anyway: the SDK never turns a poisoned
//! lock into a second panic.

use core::ops::{Deref, DerefMut};
use std::borrow::Cow;
use std::string::String;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use crate::event::SourceLocation;

/// Records lock events in the current flow. Implemented by every adapter's client.
pub trait LockTracker {
    /// Records an acquire (`acquire = true`) or a release of `lock_id`.
    fn lock_event(
        &self,
        lock_id: Arc<str>,
        lock_type: Cow<'static, str>,
        acquire: bool,
        location: SourceLocation,
    );
}

impl<T: LockTracker + ?Sized> LockTracker for Arc<T> {
    fn lock_event(
        &self,
        lock_id: Arc<str>,
        lock_type: Cow<'static, str>,
        acquire: bool,
        location: SourceLocation,
    ) {
        (**self).lock_event(lock_id, lock_type, acquire, location);
    }
}

impl<T: LockTracker + ?Sized> LockTracker for &T {
    fn lock_event(
        &self,
        lock_id: Arc<str>,
        lock_type: Cow<'static, str>,
        acquire: bool,
        location: SourceLocation,
    ) {
        (**self).lock_event(lock_id, lock_type, acquire, location);
    }
}

/// A `std::sync::Mutex` whose acquire and release are recorded.
#[derive(Debug)]
pub struct TrackedMutex<T, C> {
    inner: Mutex<T>,
    client: C,
    lock_id: Arc<str>,
}

impl<T, C: LockTracker> TrackedMutex<T, C> {
    /// Wraps `data`; `lock_id` names the lock in events.
    pub fn new(data: T, client: C, lock_id: impl Into<String>) -> Self {
        let id: String = lock_id.into();
        Self {
            inner: Mutex::new(data),
            client,
            lock_id: Arc::from(id),
        }
    }

    /// Locks, recording the acquire; the guard records the release when dropped.
    /// `lock_type` is `"Mutex"` by convention.
    #[track_caller]
    pub fn lock(&self, lock_type: &str) -> TrackedMutexGuard<'_, T, C> {
        let location = SourceLocation::caller();
        let guard = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let kind = crate::client::lock_type_name(lock_type);
        TrackedGuard::acquired(guard, &self.client, &self.lock_id, kind, location)
    }

    /// The lock's name.
    pub fn lock_id(&self) -> &str {
        &self.lock_id
    }

    /// Consumes the lock and returns the data.
    pub fn into_inner(self) -> T {
        self.inner.into_inner().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Guard of a [`TrackedMutex`].
pub type TrackedMutexGuard<'a, T, C> = TrackedGuard<'a, MutexGuard<'a, T>, C>;

#[cold]
fn unreachable_guard() -> ! {
    // The guard is only taken in `drop`, after which it cannot be dereferenced.
    unreachable!("tracked lock guard used after release")
}

/// A `std::sync::RwLock` whose acquires and releases are recorded as `RwLock::Read` and
/// `RwLock::Write`.
#[derive(Debug)]
pub struct TrackedRwLock<T, C> {
    inner: RwLock<T>,
    client: C,
    lock_id: Arc<str>,
}

impl<T, C: LockTracker> TrackedRwLock<T, C> {
    /// Wraps `data`; `lock_id` names the lock in events.
    pub fn new(data: T, client: C, lock_id: impl Into<String>) -> Self {
        let id: String = lock_id.into();
        Self {
            inner: RwLock::new(data),
            client,
            lock_id: Arc::from(id),
        }
    }

    /// Takes a read lock.
    #[track_caller]
    pub fn read(&self) -> TrackedRwLockReadGuard<'_, T, C> {
        let location = SourceLocation::caller();
        let guard = self.inner.read().unwrap_or_else(PoisonError::into_inner);
        TrackedGuard::acquired(guard, &self.client, &self.lock_id, "RwLock::Read", location)
    }

    /// Takes the write lock.
    #[track_caller]
    pub fn write(&self) -> TrackedRwLockWriteGuard<'_, T, C> {
        let location = SourceLocation::caller();
        let guard = self.inner.write().unwrap_or_else(PoisonError::into_inner);
        TrackedGuard::acquired(guard, &self.client, &self.lock_id, "RwLock::Write", location)
    }

    /// The lock's name.
    pub fn lock_id(&self) -> &str {
        &self.lock_id
    }
}

/// Read guard of a [`TrackedRwLock`].
pub type TrackedRwLockReadGuard<'a, T, C> = TrackedGuard<'a, RwLockReadGuard<'a, T>, C>;

/// Write guard of a [`TrackedRwLock`].
pub type TrackedRwLockWriteGuard<'a, T, C> = TrackedGuard<'a, RwLockWriteGuard<'a, T>, C>;

/// A guard of any lock whose release is recorded when dropped: the guard of every tracked
/// lock, the `std::sync` ones here and the adapters' async ones.
///
/// Adapters wrap their runtime's locks (`tokio::sync`, `async-lock`) with it: take the
/// inner lock, then [`TrackedGuard::acquired`] records the acquire; dropping records the
/// release before the inner guard lets go.
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct TrackedGuard<'a, G, C: LockTracker> {
    guard: Option<G>,
    client: &'a C,
    lock_id: &'a Arc<str>,
    kind: Cow<'static, str>,
    location: SourceLocation,
}

impl<'a, G, C: LockTracker> TrackedGuard<'a, G, C> {
    /// Records the acquire of `lock_id` (as `kind`: `Mutex`, `RwLock::Read`, ...) and
    /// wraps the inner `guard`.
    pub fn acquired(
        guard: G,
        client: &'a C,
        lock_id: &'a Arc<str>,
        kind: impl Into<Cow<'static, str>>,
        location: SourceLocation,
    ) -> Self {
        let kind = kind.into();
        client.lock_event(lock_id.clone(), kind.clone(), true, location.clone());
        Self {
            guard: Some(guard),
            client,
            lock_id,
            kind,
            location,
        }
    }
}

impl<G, C: LockTracker> Drop for TrackedGuard<'_, G, C> {
    fn drop(&mut self) {
        self.client.lock_event(
            self.lock_id.clone(),
            core::mem::take(&mut self.kind),
            false,
            self.location.clone(),
        );
        drop(self.guard.take());
    }
}

impl<G: Deref, C: LockTracker> Deref for TrackedGuard<'_, G, C> {
    type Target = G::Target;
    fn deref(&self) -> &G::Target {
        match &self.guard {
            Some(g) => g,
            None => unreachable_guard(),
        }
    }
}

impl<G: DerefMut, C: LockTracker> DerefMut for TrackedGuard<'_, G, C> {
    fn deref_mut(&mut self) -> &mut G::Target {
        match &mut self.guard {
            Some(g) => g,
            None => unreachable_guard(),
        }
    }
}

/// Declares an adapter's tracked `std::sync` locks (`TrackedMutex<T>`,
/// `TrackedMutexGuard`, `TrackedRwLock<T>` and its guards) as aliases of this module's
/// types with the adapter's client type `$client` filled in.
#[macro_export]
macro_rules! tracked_std_locks {
    ($client:ty) => {
        /// A `std::sync::Mutex` whose acquire and release are recorded:
        /// `TrackedMutex::new(data, client.clone(), "lock-id")`, then `.lock("Mutex")`.
        pub type TrackedMutex<T> = $crate::sync::TrackedMutex<T, $client>;
        /// Guard of a [`TrackedMutex`].
        pub type TrackedMutexGuard<'a, T> = $crate::sync::TrackedMutexGuard<'a, T, $client>;
        /// A `std::sync::RwLock` whose acquires and releases are recorded.
        pub type TrackedRwLock<T> = $crate::sync::TrackedRwLock<T, $client>;
        /// Read guard of a [`TrackedRwLock`].
        pub type TrackedRwLockReadGuard<'a, T> = $crate::sync::TrackedRwLockReadGuard<'a, T, $client>;
        /// Write guard of a [`TrackedRwLock`].
        pub type TrackedRwLockWriteGuard<'a, T> = $crate::sync::TrackedRwLockWriteGuard<'a, T, $client>;
    };
}

/// Declares an adapter's async tracked locks, `AsyncTrackedMutex<T>` and
/// `AsyncTrackedRwLock<T>` (hold them across `.await`), over an async lock module
/// `$($lock)::+` that has `Mutex`, `MutexGuard`, `RwLock`, `RwLockReadGuard` and
/// `RwLockWriteGuard` with `tokio::sync`'s shapes (`tokio::sync`, `async_lock`), and their
/// guard `AsyncTrackedGuard` (a [`TrackedGuard`]). `$name` names the module in the docs.
#[macro_export]
macro_rules! async_tracked_locks {
    ($name:literal, $($lock:ident)::+, $client:ty) => {
        $crate::async_tracked_locks!(@lock
            concat!("A `", $name, "::Mutex` whose acquire and release are recorded; hold it across `.await`."),
            AsyncTrackedMutex, $($lock)::+::Mutex<T>, $client;
            /// Locks (recorded once held); the guard records the release when dropped.
            lock, $($lock)::+::MutexGuard<'_, T>, "Mutex"
        );
        $crate::async_tracked_locks!(@lock
            concat!("A `", $name, "::RwLock` whose acquires and releases are recorded."),
            AsyncTrackedRwLock, $($lock)::+::RwLock<T>, $client;
            /// Takes a read lock (`RwLock::Read`).
            read, $($lock)::+::RwLockReadGuard<'_, T>, "RwLock::Read";
            /// Takes the write lock (`RwLock::Write`).
            write, $($lock)::+::RwLockWriteGuard<'_, T>, "RwLock::Write"
        );

        /// Guard of the async tracked locks: derefs to the inner guard's data and records the
        /// release (before letting go) when dropped.
        pub type AsyncTrackedGuard<'a, G> = $crate::sync::TrackedGuard<'a, G, $client>;
    };
    (@lock $doc:expr, $ty:ident, $inner:ty, $client:ty; $(#[$m:meta] $method:ident, $guard:ty, $kind:literal);+) => {
        #[doc = $doc]
        #[derive(Debug)]
        pub struct $ty<T> {
            inner: $inner,
            client: $client,
            lock_id: ::std::sync::Arc<str>,
        }

        impl<T> $ty<T> {
            /// Wraps `data`; `lock_id` names the lock in events.
            pub fn new(data: T, client: $client, lock_id: impl ::core::convert::Into<::std::string::String>) -> Self {
                Self {
                    inner: <$inner>::new(data),
                    client,
                    lock_id: ::std::sync::Arc::from(lock_id.into()),
                }
            }

            $(
                #[$m]
                #[track_caller]
                pub fn $method(&self) -> impl ::core::future::Future<Output = AsyncTrackedGuard<'_, $guard>> {
                    let location = $crate::SourceLocation::caller();
                    async move {
                        let guard = self.inner.$method().await;
                        AsyncTrackedGuard::acquired(guard, &self.client, &self.lock_id, $kind, location)
                    }
                }
            )+
        }
    };
}

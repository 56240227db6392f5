//! Tracked state: values and atomics whose every read and write is recorded as a
//! `StateChange`, so user code does not call `track_state_change` by hand.
//!
//! - [`Tracked<T, C, M>`](Tracked) is a shared cell (an untracked `std::sync::Mutex` inside,
//!   so each access is memory-safe; a read-modify-write made of two accesses is still a
//!   race, exactly as with a database without transactions). Its name is given once, where
//!   it is created; every access records the caller's `file:line` (`#[track_caller]`).
//! - [`TrackedAtomicU64`], [`TrackedAtomicI64`], [`TrackedAtomicU32`],
//!   [`TrackedAtomicUsize`] and [`TrackedAtomicBool`] wrap the `core::sync::atomic` types and
//!   record `AtomicRead` (loads, failed compare-exchanges), `AtomicWrite` (stores) and
//!   `AtomicRMW` (swaps, `fetch_*`, successful compare-exchanges), with old and new values.
//!
//! # Values, or only the name: the value mode `M`
//!
//! Stable Rust has no specialization, so one type cannot record values "when `T:
//! Serialize`" and nothing otherwise. The choice is a type parameter instead, checked at
//! compile time and with one implementation for both:
//!
//! - [`Values`] (the default): `T: Serialize`; a read records the value read as
//!   `new_value`, a write records `old_value` and `new_value`, serialized only when the
//!   flow is recorded (nothing is serialized for an unsampled trace or a disabled client).
//! - [`NameOnly`]: any `T`; the events carry the variable name and `null` values. Adapters
//!   also name it `TrackedOpaque<T>`. It is also the mode for a serializable value too
//!   large to copy into every event.
//!
//! A parameter rather than two types keeps one set of methods and one set of docs, lets a
//! generic helper take either, and makes switching a value from opaque to recorded a
//! change of one type argument.
//!
//! # Memory orderings of the tracked atomics
//!
//! The `StateChange` event has no ordering field (WIRE.md), and the server refuses a whole
//! batch with an unknown field value, so the ordering goes in the event's metadata tags
//! under [`ORDERING_TAG`] (`"memory_ordering": "SeqCst"`): the tags are a string map the
//! schema already has, every server stores them, and nothing else reads them. The
//! alternatives were worse: an extra `MemoryFence` event would double the cost of every
//! atomic access and claim a fence the program does not have (an `Acquire` load is not an
//! acquire fence), and text appended to `location` would break every tool that reads it
//! as `file:line`. A failed `compare_exchange` records its failure ordering.
//!
//! # Where it goes
//!
//! The types are generic over the client, [`Tracker`], like the tracked locks: each
//! adapter declares aliases with its own client filled in
//! ([`tracked_state!`](crate::tracked_state)), so users write
//! `raceway_rt_tokio::Tracked<i64>` and `Tracked::new(100, raceway.clone(), "balance")`.
//!
//! ```
//! # use std::cell::RefCell;
//! # use raceway_proto::boundary::{with_flow_in, ContextStore};
//! # use raceway_proto::Flow;
//! # thread_local!(static SLOT: RefCell<Option<Flow>> = const { RefCell::new(None) });
//! # #[derive(Default)]
//! # struct ThreadStore;
//! # impl ContextStore for ThreadStore {
//! #     fn with_flow(&self, f: &mut dyn FnMut(&mut Flow)) -> bool { SLOT.with(|s| with_flow_in(s, f)) }
//! #     fn install_root(&self, make: &mut dyn FnMut() -> Flow) -> bool {
//! #         SLOT.with(|s| { s.borrow_mut().get_or_insert_with(&mut *make); true })
//! #     }
//! # }
//! use std::sync::atomic::Ordering;
//! use std::sync::Arc;
//! use raceway_proto::client::ClientCore;
//! use raceway_proto::config::Config;
//! use raceway_proto::tracked::{Tracked, TrackedAtomicU64};
//!
//! // An adapter's client in real code; here the core over a thread-local store.
//! let client = Arc::new(ClientCore::new(Config::new("svc"), ThreadStore));
//! let balance: Tracked<i64, _> = Tracked::new(100, client.clone(), "balance");
//! let hits = TrackedAtomicU64::new(0, client.clone(), "hits");
//!
//! let seen = balance.get(); // Read, new_value 100
//! balance.set(seen - 10); // Write, old_value 100, new_value 90
//! hits.fetch_add(1, Ordering::Relaxed); // AtomicRMW, tagged memory_ordering=Relaxed
//! assert_eq!(balance.get(), 90);
//! assert_eq!(client.races().events_observed(), 4);
//! ```

use core::fmt;
use core::marker::PhantomData;
use core::ops::Deref;
use core::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::format;
use std::string::String;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, TryLockError};

use serde::Serialize;

use crate::boundary::ContextStore;
use crate::client::{AdapterApi, ClientCore};
use crate::event::{AccessType, EventKind, MemoryOrdering, SourceLocation};
use crate::flow::FlowEnd;
pub use crate::record::ORDERING_TAG;
use crate::record::{StateBytes, StateValues};

/// The `Custom` event name a tracked channel records where a message is sent.
pub const CHANNEL_SEND_EVENT: &str = "channel_send";

/// What tracked state and tracked channels need from a client: record a state change, and
/// carry causality from a send to a receive. Implemented by [`ClientCore`] and, through
/// `Deref`, by everything that dereferences to a tracker (every adapter's
/// `RacewayClient`, `Arc<RacewayClient>`, `&RacewayClient`).
pub trait Tracker {
    /// Records a `StateChange` of `variable` in the current flow. `values` serializes the
    /// old and new values into the event (in place), and is called only when the event is
    /// recorded; `ordering`, when given, goes in the [`ORDERING_TAG`] tag.
    fn state_change(
        &self,
        access: AccessType,
        ordering: Option<MemoryOrdering>,
        location: &'static core::panic::Location<'static>,
        variable: &str,
        values: impl FnMut(&mut StateValues),
    );

    /// Marks a send on `channel` in the current flow (a `Custom` event
    /// [`CHANNEL_SEND_EVENT`], which also moves the flow's clock on) and returns the flow's
    /// end at that point, for the receiver to join. `None` outside any flow or when the
    /// client is disabled.
    fn send_point(&self, channel: &str, location: SourceLocation) -> Option<FlowEnd>;

    /// Joins a sender's end into the current flow (an `AsyncAwait` with `awaited_at`
    /// `"recv <channel>"`): what the sender did before the send happens before what this
    /// flow does next.
    fn receive_point(&self, end: &FlowEnd, channel: &str);
}

impl<S: ContextStore> Tracker for ClientCore<S> {
    #[inline]
    fn state_change(
        &self,
        access: AccessType,
        ordering: Option<MemoryOrdering>,
        location: &'static core::panic::Location<'static>,
        variable: &str,
        mut values: impl FnMut(&mut StateValues),
    ) {
        self.record_state(location, ordering, variable, move |v| {
            values(v);
            access
        });
    }

    fn send_point(&self, channel: &str, location: SourceLocation) -> Option<FlowEnd> {
        if !self.is_enabled() {
            return None;
        }
        let mut end = None;
        self.with_flow(&mut |flow| {
            if flow.is_sampled() {
                let kind = EventKind::Custom {
                    name: CHANNEL_SEND_EVENT.into(),
                    data: serde_json::json!({ "channel": channel, "location": &location }),
                };
                let ev = self.tracer().stamp(flow, kind, None);
                self.sink().emit(flow, ev);
            }
            end = Some(flow.end());
        });
        end
    }

    fn receive_point(&self, end: &FlowEnd, channel: &str) {
        self.join_current(end, &format!("recv {channel}"));
    }
}

impl<P> Tracker for P
where
    P: Deref,
    P::Target: Tracker,
{
    #[inline]
    fn state_change(
        &self,
        access: AccessType,
        ordering: Option<MemoryOrdering>,
        location: &'static core::panic::Location<'static>,
        variable: &str,
        values: impl FnMut(&mut StateValues),
    ) {
        (**self).state_change(access, ordering, location, variable, values);
    }

    #[inline]
    fn send_point(&self, channel: &str, location: SourceLocation) -> Option<FlowEnd> {
        (**self).send_point(channel, location)
    }

    #[inline]
    fn receive_point(&self, end: &FlowEnd, channel: &str) {
        (**self).receive_point(end, channel);
    }
}

/// How a [`Tracked`] value appears in its events: [`Values`] or [`NameOnly`].
pub trait ValueMode<T: ?Sized> {
    /// Writes `value` as the event's old value.
    fn old_value(value: &T, out: &mut StateValues);
    /// Writes `value` as the event's new value.
    fn new_value(value: &T, out: &mut StateValues);
}

/// Value mode recording old and new values (`T: Serialize`); the default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Values;

/// Value mode recording only the variable's name: the events' values are `null`. For
/// values that are not `Serialize`, or too large to copy into every event.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NameOnly;

impl<T: Serialize + ?Sized> ValueMode<T> for Values {
    fn old_value(value: &T, out: &mut StateValues) {
        out.old_value(value);
    }
    fn new_value(value: &T, out: &mut StateValues) {
        out.new_value(value);
    }
}

impl<T: ?Sized> ValueMode<T> for NameOnly {
    fn old_value(_: &T, out: &mut StateValues) {
        out.old_value(&());
    }
    fn new_value(_: &T, out: &mut StateValues) {
        out.new_value(&());
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A shared value whose reads and writes are recorded as `StateChange`s of one variable.
///
/// Each access takes an internal, untracked mutex for the duration of the access only, so
/// the value is safe to share (`Arc<Tracked<..>>`, a field of shared state) and the
/// recorded old and new values are the real ones; a read followed by a write is two
/// accesses and races like one, which is what the analyser should be told. Hold a tracked
/// lock around such a pair to make it safe. The event is recorded while the access holds
/// the internal mutex, so the events of one variable are in the order of its accesses.
///
/// `M` is the [value mode](self#values-or-only-the-name-the-value-mode-m): [`Values`]
/// (default, `T: Serialize`) or [`NameOnly`].
///
/// ```
/// # use std::cell::RefCell;
/// # use raceway_proto::boundary::{with_flow_in, ContextStore};
/// # use raceway_proto::Flow;
/// # thread_local!(static SLOT: RefCell<Option<Flow>> = const { RefCell::new(None) });
/// # #[derive(Default)]
/// # struct ThreadStore;
/// # impl ContextStore for ThreadStore {
/// #     fn with_flow(&self, f: &mut dyn FnMut(&mut Flow)) -> bool { SLOT.with(|s| with_flow_in(s, f)) }
/// #     fn install_root(&self, make: &mut dyn FnMut() -> Flow) -> bool {
/// #         SLOT.with(|s| { s.borrow_mut().get_or_insert_with(&mut *make); true })
/// #     }
/// # }
/// use raceway_proto::client::ClientCore;
/// use raceway_proto::config::Config;
/// use raceway_proto::tracked::{NameOnly, Tracked};
///
/// let client = ClientCore::new(Config::new("svc"), ThreadStore);
/// let cart: Tracked<Vec<u32>, _> = Tracked::new(vec![], &client, "cart");
/// cart.update(|items| items.push(7)); // one Write: old [], new [7]
/// assert_eq!(cart.read(|items| items.len()), 1); // one Read
///
/// struct Connection; // not Serialize
/// let conn: Tracked<Connection, _, NameOnly> = Tracked::new_opaque(Connection, &client, "conn");
/// conn.read(|_| ()); // a Read of `conn`, values null
/// assert_eq!(client.races().events_observed(), 3);
/// ```
pub struct Tracked<T, C, M = Values> {
    value: Mutex<T>,
    name: Arc<str>,
    client: C,
    mode: PhantomData<fn() -> M>,
}

impl<T, C> Tracked<T, C, Values> {
    /// Wraps `value`, recording values ([`Values`]); `name` names the variable in every
    /// event (races are found per name). Creating records nothing: the first access does.
    pub fn new(value: T, client: C, name: impl Into<String>) -> Self {
        Self::with_mode(value, client, name)
    }
}

impl<T, C> Tracked<T, C, NameOnly> {
    /// Wraps `value`, recording only the name ([`NameOnly`]): for values that are not
    /// `Serialize`. Creating records nothing.
    pub fn new_opaque(value: T, client: C, name: impl Into<String>) -> Self {
        Self::with_mode(value, client, name)
    }
}

impl<T, C, M> Tracked<T, C, M> {
    /// Wraps `value` in the value mode `M` named by the type (`Tracked::<_, _,
    /// NameOnly>::with_mode(..)`); [`Tracked::new`] and [`Tracked::new_opaque`] name it for
    /// you. (Two constructors rather than one: a default type parameter does not guide
    /// inference in an expression, so a single generic `new` would need the mode spelled
    /// out at every call.)
    pub fn with_mode(value: T, client: C, name: impl Into<String>) -> Self {
        let name: String = name.into();
        Self {
            value: Mutex::new(value),
            name: Arc::from(name),
            client,
            mode: PhantomData,
        }
    }

    /// The variable's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The client the accesses are recorded with.
    pub fn client(&self) -> &C {
        &self.client
    }

    /// The value, through exclusive access: not recorded (no other flow can be accessing
    /// it), like setting up state before sharing it.
    pub fn get_mut(&mut self) -> &mut T {
        self.value.get_mut().unwrap_or_else(PoisonError::into_inner)
    }

    /// Consumes the wrapper and returns the value (not recorded).
    pub fn into_inner(self) -> T {
        self.value.into_inner().unwrap_or_else(PoisonError::into_inner)
    }
}

impl<T, C: Tracker, M: ValueMode<T>> Tracked<T, C, M> {
    /// Reads a copy of the value; records a `Read` (`new_value` = the value read).
    #[track_caller]
    pub fn get(&self) -> T
    where
        T: Clone,
    {
        let location = core::panic::Location::caller();
        let guard = lock(&self.value);
        self.record(AccessType::Read, location, |v| M::new_value(&guard, v));
        guard.clone()
    }

    /// Runs `f` on the value; records a `Read` (`new_value` = the value `f` sees). `f`
    /// runs under the internal mutex: it must not access this same `Tracked`.
    #[track_caller]
    pub fn read<R>(&self, f: impl FnOnce(&T) -> R) -> R {
        let location = core::panic::Location::caller();
        let guard = lock(&self.value);
        self.record(AccessType::Read, location, |v| M::new_value(&guard, v));
        f(&guard)
    }

    /// Stores `value`; records a `Write` with the old and new values.
    #[track_caller]
    pub fn set(&self, value: T) {
        let location = core::panic::Location::caller();
        drop(self.swap(value, location));
    }

    /// Stores `value` and returns the old one; records a `Write` with both.
    #[track_caller]
    pub fn replace(&self, value: T) -> T {
        let location = core::panic::Location::caller();
        self.swap(value, location)
    }

    /// Changes the value in place with `f`; records one `Write` with the value before and
    /// after. (With [`Values`] the old value is serialized before `f` runs, also when the
    /// flow turns out to be unsampled; `get` and `set` serialize lazily.) `f` runs under
    /// the internal mutex: it must not access this same `Tracked`.
    #[track_caller]
    pub fn update<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        let location = core::panic::Location::caller();
        let mut guard = lock(&self.value);
        let mut bytes: StateBytes = [0; core::mem::size_of::<StateBytes>()];
        let mut before = StateValues::for_variable(&self.name, &mut bytes);
        M::old_value(&guard, &mut before);
        let out = f(&mut guard);
        self.client
            .state_change(AccessType::Write, None, location, &self.name, |v| {
                v.old_value_of(&before);
                M::new_value(&guard, v);
            });
        out
    }

    #[inline]
    fn swap(&self, value: T, location: &'static core::panic::Location<'static>) -> T {
        let mut guard = lock(&self.value);
        self.record(AccessType::Write, location, |v| {
            M::old_value(&guard, v);
            M::new_value(&value, v);
        });
        core::mem::replace(&mut *guard, value)
    }

    #[inline]
    fn record(
        &self,
        access: AccessType,
        location: &'static core::panic::Location<'static>,
        values: impl FnMut(&mut StateValues),
    ) {
        self.client
            .state_change(access, None, location, &self.name, values);
    }
}

impl<T: fmt::Debug, C, M> fmt::Debug for Tracked<T, C, M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Tracked");
        d.field("name", &&*self.name);
        match self.value.try_lock() {
            Ok(v) => d.field("value", &*v),
            Err(TryLockError::Poisoned(p)) => d.field("value", &*p.into_inner()),
            Err(TryLockError::WouldBlock) => d.field("value", &format_args!("<locked>")),
        };
        d.finish()
    }
}

/// Records an access of a tracked atomic named `name`.
fn atomic_access<C: Tracker, V: Serialize>(
    client: &C,
    name: &str,
    access: AccessType,
    order: Ordering,
    location: &'static core::panic::Location<'static>,
    old: Option<V>,
    new: V,
) {
    client.state_change(access, Some(order.into()), location, name, |v| {
        if let Some(old) = &old {
            v.old_value(old);
        }
        v.new_value(&new);
    });
}

macro_rules! tracked_atomic_int {
    ($(#[$doc:meta])* $name:ident, $atomic:ident, $int:ty) => {
        $(#[$doc])*
        pub struct $name<C> {
            inner: $atomic,
            name: Arc<str>,
            client: C,
        }

        impl<C> $name<C> {
            #[doc = concat!("Wraps a `", stringify!($atomic), "` holding `value`; `name` names the variable in events.")]
            pub fn new(value: $int, client: C, name: impl Into<String>) -> Self {
                let name: String = name.into();
                Self { inner: $atomic::new(value), name: Arc::from(name), client }
            }

            /// The variable's name.
            pub fn name(&self) -> &str {
                &self.name
            }

            /// The value, through exclusive access (not recorded).
            pub fn get_mut(&mut self) -> &mut $int {
                self.inner.get_mut()
            }

            /// Consumes the atomic and returns the value (not recorded).
            pub fn into_inner(self) -> $int {
                self.inner.into_inner()
            }
        }

        impl<C: Tracker> $name<C> {
            fn record(
                &self,
                access: AccessType,
                order: Ordering,
                location: &'static core::panic::Location<'static>,
                old: Option<$int>,
                new: $int,
            ) {
                atomic_access(&self.client, &self.name, access, order, location, old, new);
            }

            /// Loads the value; records an `AtomicRead`.
            #[track_caller]
            pub fn load(&self, order: Ordering) -> $int {
                let location = core::panic::Location::caller();
                let v = self.inner.load(order);
                self.record(AccessType::AtomicRead, order, location, None, v);
                v
            }

            /// Stores `value`; records an `AtomicWrite`.
            #[track_caller]
            pub fn store(&self, value: $int, order: Ordering) {
                let location = core::panic::Location::caller();
                self.inner.store(value, order);
                self.record(AccessType::AtomicWrite, order, location, None, value);
            }

            /// Stores `value`, returning the previous value; records an `AtomicRMW`.
            #[track_caller]
            pub fn swap(&self, value: $int, order: Ordering) -> $int {
                let location = core::panic::Location::caller();
                let old = self.inner.swap(value, order);
                self.record(AccessType::AtomicRmw, order, location, Some(old), value);
                old
            }

            /// Adds `value` (wrapping), returning the previous value; records an `AtomicRMW`.
            #[track_caller]
            pub fn fetch_add(&self, value: $int, order: Ordering) -> $int {
                let location = core::panic::Location::caller();
                let old = self.inner.fetch_add(value, order);
                self.record(AccessType::AtomicRmw, order, location, Some(old), old.wrapping_add(value));
                old
            }

            /// Subtracts `value` (wrapping), returning the previous value; records an
            /// `AtomicRMW`.
            #[track_caller]
            pub fn fetch_sub(&self, value: $int, order: Ordering) -> $int {
                let location = core::panic::Location::caller();
                let old = self.inner.fetch_sub(value, order);
                self.record(AccessType::AtomicRmw, order, location, Some(old), old.wrapping_sub(value));
                old
            }

            /// Stores the maximum of the value and `value`, returning the previous value;
            /// records an `AtomicRMW`.
            #[track_caller]
            pub fn fetch_max(&self, value: $int, order: Ordering) -> $int {
                let location = core::panic::Location::caller();
                let old = self.inner.fetch_max(value, order);
                self.record(AccessType::AtomicRmw, order, location, Some(old), old.max(value));
                old
            }

            /// Stores `new` if the value is `current`. On success records an `AtomicRMW`
            /// (ordering `success`); on failure an `AtomicRead` of the value found
            /// (ordering `failure`).
            #[track_caller]
            pub fn compare_exchange(
                &self,
                current: $int,
                new: $int,
                success: Ordering,
                failure: Ordering,
            ) -> Result<$int, $int> {
                let location = core::panic::Location::caller();
                let out = self.inner.compare_exchange(current, new, success, failure);
                match out {
                    Ok(old) => self.record(AccessType::AtomicRmw, success, location, Some(old), new),
                    Err(found) => self.record(AccessType::AtomicRead, failure, location, None, found),
                }
                out
            }
        }

        impl<C> fmt::Debug for $name<C> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($name))
                    .field("name", &&*self.name)
                    .field("value", &self.inner.load(Ordering::Relaxed))
                    .finish()
            }
        }
    };
}

tracked_atomic_int!(
    /// An `AtomicU64` whose operations are recorded (`AtomicRead`, `AtomicWrite`,
    /// `AtomicRMW`, each tagged with its [`ORDERING_TAG`]).
    ///
    /// ```
    /// # use std::cell::RefCell;
    /// # use raceway_proto::boundary::{with_flow_in, ContextStore};
    /// # use raceway_proto::Flow;
    /// # thread_local!(static SLOT: RefCell<Option<Flow>> = const { RefCell::new(None) });
    /// # #[derive(Default)]
    /// # struct ThreadStore;
    /// # impl ContextStore for ThreadStore {
    /// #     fn with_flow(&self, f: &mut dyn FnMut(&mut Flow)) -> bool { SLOT.with(|s| with_flow_in(s, f)) }
    /// #     fn install_root(&self, make: &mut dyn FnMut() -> Flow) -> bool {
    /// #         SLOT.with(|s| { s.borrow_mut().get_or_insert_with(&mut *make); true })
    /// #     }
    /// # }
    /// use std::sync::atomic::Ordering;
    /// use raceway_proto::client::ClientCore;
    /// use raceway_proto::config::Config;
    /// use raceway_proto::tracked::TrackedAtomicU64;
    ///
    /// let client = ClientCore::new(Config::new("svc"), ThreadStore);
    /// let hits = TrackedAtomicU64::new(0, &client, "hits");
    /// assert_eq!(hits.fetch_add(2, Ordering::AcqRel), 0); // AtomicRMW 0 -> 2, AcqRel
    /// assert_eq!(hits.compare_exchange(2, 5, Ordering::SeqCst, Ordering::Relaxed), Ok(2));
    /// assert_eq!(hits.load(Ordering::Acquire), 5); // AtomicRead
    /// assert_eq!(client.races().events_observed(), 3);
    /// ```
    TrackedAtomicU64,
    AtomicU64,
    u64
);

tracked_atomic_int!(
    /// An `AtomicI64` whose operations are recorded (see [`TrackedAtomicU64`]).
    TrackedAtomicI64,
    AtomicI64,
    i64
);

tracked_atomic_int!(
    /// An `AtomicU32` whose operations are recorded (see [`TrackedAtomicU64`]).
    TrackedAtomicU32,
    AtomicU32,
    u32
);

tracked_atomic_int!(
    /// An `AtomicUsize` whose operations are recorded (see [`TrackedAtomicU64`]).
    TrackedAtomicUsize,
    AtomicUsize,
    usize
);

/// An `AtomicBool` whose operations are recorded (`AtomicRead`, `AtomicWrite`,
/// `AtomicRMW`, each tagged with its [`ORDERING_TAG`]).
///
/// ```
/// # use std::cell::RefCell;
/// # use raceway_proto::boundary::{with_flow_in, ContextStore};
/// # use raceway_proto::Flow;
/// # thread_local!(static SLOT: RefCell<Option<Flow>> = const { RefCell::new(None) });
/// # #[derive(Default)]
/// # struct ThreadStore;
/// # impl ContextStore for ThreadStore {
/// #     fn with_flow(&self, f: &mut dyn FnMut(&mut Flow)) -> bool { SLOT.with(|s| with_flow_in(s, f)) }
/// #     fn install_root(&self, make: &mut dyn FnMut() -> Flow) -> bool {
/// #         SLOT.with(|s| { s.borrow_mut().get_or_insert_with(&mut *make); true })
/// #     }
/// # }
/// use std::sync::atomic::Ordering;
/// use raceway_proto::client::ClientCore;
/// use raceway_proto::config::Config;
/// use raceway_proto::tracked::TrackedAtomicBool;
///
/// let client = ClientCore::new(Config::new("svc"), ThreadStore);
/// let ready = TrackedAtomicBool::new(false, &client, "ready");
/// ready.store(true, Ordering::Release); // AtomicWrite, Release
/// assert!(ready.load(Ordering::Acquire)); // AtomicRead, Acquire
/// assert_eq!(client.races().events_observed(), 2);
/// ```
pub struct TrackedAtomicBool<C> {
    inner: AtomicBool,
    name: Arc<str>,
    client: C,
}

impl<C> TrackedAtomicBool<C> {
    /// Wraps an `AtomicBool` holding `value`; `name` names the variable in events.
    pub fn new(value: bool, client: C, name: impl Into<String>) -> Self {
        let name: String = name.into();
        Self {
            inner: AtomicBool::new(value),
            name: Arc::from(name),
            client,
        }
    }

    /// The variable's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Consumes the atomic and returns the value (not recorded).
    pub fn into_inner(self) -> bool {
        self.inner.into_inner()
    }
}

impl<C: Tracker> TrackedAtomicBool<C> {
    fn record(
        &self,
        access: AccessType,
        order: Ordering,
        location: &'static core::panic::Location<'static>,
        old: Option<bool>,
        new: bool,
    ) {
        atomic_access(&self.client, &self.name, access, order, location, old, new);
    }

    /// Loads the value; records an `AtomicRead`.
    #[track_caller]
    pub fn load(&self, order: Ordering) -> bool {
        let location = core::panic::Location::caller();
        let v = self.inner.load(order);
        self.record(AccessType::AtomicRead, order, location, None, v);
        v
    }

    /// Stores `value`; records an `AtomicWrite`.
    #[track_caller]
    pub fn store(&self, value: bool, order: Ordering) {
        let location = core::panic::Location::caller();
        self.inner.store(value, order);
        self.record(AccessType::AtomicWrite, order, location, None, value);
    }

    /// Stores `value`, returning the previous value; records an `AtomicRMW`.
    #[track_caller]
    pub fn swap(&self, value: bool, order: Ordering) -> bool {
        let location = core::panic::Location::caller();
        let old = self.inner.swap(value, order);
        self.record(AccessType::AtomicRmw, order, location, Some(old), value);
        old
    }

    /// Logical "or" with `value`, returning the previous value; records an `AtomicRMW`.
    #[track_caller]
    pub fn fetch_or(&self, value: bool, order: Ordering) -> bool {
        let location = core::panic::Location::caller();
        let old = self.inner.fetch_or(value, order);
        self.record(AccessType::AtomicRmw, order, location, Some(old), old | value);
        old
    }

    /// Logical "and" with `value`, returning the previous value; records an `AtomicRMW`.
    #[track_caller]
    pub fn fetch_and(&self, value: bool, order: Ordering) -> bool {
        let location = core::panic::Location::caller();
        let old = self.inner.fetch_and(value, order);
        self.record(AccessType::AtomicRmw, order, location, Some(old), old & value);
        old
    }

    /// Stores `new` if the value is `current`. On success records an `AtomicRMW` (ordering
    /// `success`); on failure an `AtomicRead` of the value found (ordering `failure`).
    #[track_caller]
    pub fn compare_exchange(
        &self,
        current: bool,
        new: bool,
        success: Ordering,
        failure: Ordering,
    ) -> Result<bool, bool> {
        let location = core::panic::Location::caller();
        let out = self.inner.compare_exchange(current, new, success, failure);
        match out {
            Ok(old) => self.record(AccessType::AtomicRmw, success, location, Some(old), new),
            Err(found) => self.record(AccessType::AtomicRead, failure, location, None, found),
        }
        out
    }
}

impl<C> fmt::Debug for TrackedAtomicBool<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TrackedAtomicBool")
            .field("name", &&*self.name)
            .field("value", &self.inner.load(Ordering::Relaxed))
            .finish()
    }
}

/// Declares an adapter's tracked state types as aliases of this module's with the
/// adapter's client type `$client` filled in: `Tracked<T, M = Values>`,
/// `TrackedOpaque<T>` (name-only values), `TrackedAtomicU64`, `TrackedAtomicI64`,
/// `TrackedAtomicU32`, `TrackedAtomicUsize`, `TrackedAtomicBool`. `$krate` is the adapter's
/// crate name, for the examples in the docs.
#[macro_export]
macro_rules! tracked_state {
    ($krate:literal, $client:ty) => {
        #[doc = concat!(
            "A shared value whose reads and writes are recorded (see [`raceway_proto::tracked`]):\n",
            "`Tracked::new(value, client.clone(), \"name\")` (or `Tracked::new_opaque` for a value that is not\n",
            "`Serialize`: [`TrackedOpaque`]), then `get`, `read`, `set`, `replace`, `update`.\n\n",
            "```\n",
            "use std::sync::Arc;\n",
            "use ", $krate, "::{RacewayClient, Tracked, TrackedOpaque};\n\n",
            "let raceway = Arc::new(RacewayClient::local(\"svc\"));\n",
            "let balance: Tracked<i64> = Tracked::new(100, raceway.clone(), \"balance\");\n",
            "let seen = balance.get(); // a Read of `balance`, value 100\n",
            "balance.set(seen - 10); // a Write, old 100, new 90\n",
            "assert_eq!(balance.get(), 90);\n\n",
            "struct Socket; // not Serialize: only the name is recorded\n",
            "let socket: TrackedOpaque<Socket> = Tracked::new_opaque(Socket, raceway.clone(), \"socket\");\n",
            "socket.read(|_s| ());\n",
            "raceway.shutdown();\n",
            "```"
        )]
        pub type Tracked<T, M = $crate::tracked::Values> = $crate::tracked::Tracked<T, $client, M>;
        /// A shared value of any type whose reads and writes are recorded by name only
        /// (`null` values): [`Tracked`] in the [`NameOnly`](raceway_proto::tracked::NameOnly) mode.
        pub type TrackedOpaque<T> = $crate::tracked::Tracked<T, $client, $crate::tracked::NameOnly>;
        #[doc = concat!(
            "An `AtomicU64` whose operations are recorded as `AtomicRead`, `AtomicWrite` or ",
            "`AtomicRMW`, with the ordering in the `memory_ordering` tag.\n\n",
            "```\n",
            "use std::sync::atomic::Ordering;\n",
            "use std::sync::Arc;\n",
            "use ", $krate, "::{RacewayClient, TrackedAtomicU64};\n\n",
            "let raceway = Arc::new(RacewayClient::local(\"svc\"));\n",
            "let hits = TrackedAtomicU64::new(0, raceway.clone(), \"hits\");\n",
            "assert_eq!(hits.fetch_add(1, Ordering::SeqCst), 0);\n",
            "assert_eq!(hits.load(Ordering::SeqCst), 1);\n",
            "raceway.shutdown();\n",
            "```"
        )]
        pub type TrackedAtomicU64 = $crate::tracked::TrackedAtomicU64<$client>;
        /// An `AtomicI64` whose operations are recorded (see [`TrackedAtomicU64`]).
        pub type TrackedAtomicI64 = $crate::tracked::TrackedAtomicI64<$client>;
        /// An `AtomicU32` whose operations are recorded (see [`TrackedAtomicU64`]).
        pub type TrackedAtomicU32 = $crate::tracked::TrackedAtomicU32<$client>;
        /// An `AtomicUsize` whose operations are recorded (see [`TrackedAtomicU64`]).
        pub type TrackedAtomicUsize = $crate::tracked::TrackedAtomicUsize<$client>;
        /// An `AtomicBool` whose operations are recorded (see [`TrackedAtomicU64`]).
        pub type TrackedAtomicBool = $crate::tracked::TrackedAtomicBool<$client>;
    };
}

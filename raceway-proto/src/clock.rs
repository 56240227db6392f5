//! Bounded vector clocks, compared by the Raceway server's own rule.

use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt;

use serde::de::{SeqAccess, Visitor};
use serde::ser::SerializeSeq;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The most components a clock keeps. Beyond it the oldest foreign component is evicted
/// (see [`VectorClock::increment`] and [`VectorClock::merge`]).
pub const MAX_COMPONENTS: usize = 128;

/// A clock component's name: the `thread_id` of the flow that owns it.
pub type Component = Arc<str>;

/// How two clocks (and so the events that carry them) are ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClockOrdering {
    /// The left clock happened before the right one.
    Before,
    /// The left clock happened after the right one.
    After,
    /// The same clock.
    Equal,
    /// Neither happened before the other.
    Concurrent,
}

/// A vector clock: `(component, counter)` pairs in insertion order, at most
/// [`MAX_COMPONENTS`] of them.
///
/// Ordering follows the server's rule 3 (WIRE.md): `a` is before `b` when every component
/// of `a` is present in `b` with a value `<=`, and at least one is strictly smaller. A
/// component of `a` missing in `b` makes `a` not before `b`. The flow discipline in
/// [`crate::flow`] (increment the sender's component on every transfer of causality)
/// guarantees that this rule and the textbook one (missing = 0) agree on every clock the
/// SDK produces.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct VectorClock {
    entries: Vec<(Component, u64)>,
}

impl VectorClock {
    /// An empty clock.
    pub const fn new() -> Self {
        Self { entries: Vec::new() }
    }

    /// Builds a clock from pairs. Later duplicates keep the larger value; beyond
    /// [`MAX_COMPONENTS`] pairs the rest are ignored.
    pub fn from_pairs<I: IntoIterator<Item = (Component, u64)>>(pairs: I) -> Self {
        let mut c = Self::new();
        for (k, v) in pairs {
            if let Some(slot) = c.slot(&k) {
                c.entries[slot].1 = c.entries[slot].1.max(v);
            } else if c.entries.len() < MAX_COMPONENTS {
                c.entries.push((k, v));
            }
        }
        c
    }

    fn slot(&self, component: &str) -> Option<usize> {
        self.entries.iter().position(|(k, _)| &**k == component)
    }

    /// The counter of `component`, if present.
    pub fn get(&self, component: &str) -> Option<u64> {
        self.slot(component).map(|i| self.entries[i].1)
    }

    /// The position of `component`, if present.
    pub(crate) fn slot_of(&self, component: &str) -> Option<usize> {
        self.slot(component)
    }

    /// Sets the value at position `i` (nothing when there is none).
    pub(crate) fn set_at(&mut self, i: usize, value: u64) {
        if let Some(e) = self.entries.get_mut(i) {
            e.1 = value;
        }
    }

    /// The pairs, in insertion order.
    pub fn entries(&self) -> &[(Component, u64)] {
        &self.entries
    }

    /// Number of components.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when the clock has no component.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn make_room(&mut self, keep: &str) {
        while self.entries.len() >= MAX_COMPONENTS {
            match self.entries.iter().position(|(k, _)| &**k != keep) {
                Some(i) => {
                    self.entries.remove(i);
                }
                None => break,
            }
        }
    }

    /// Inserts `component` with `value` when it is missing; returns its current value.
    pub fn ensure(&mut self, component: &Component, value: u64) -> u64 {
        match self.slot(component) {
            Some(i) => self.entries[i].1,
            None => {
                self.make_room(component);
                self.entries.push((component.clone(), value));
                value
            }
        }
    }

    /// Adds one to `component` (inserting it at 1 when missing) and returns the new value.
    /// Saturates at `u64::MAX`.
    pub fn increment(&mut self, component: &Component) -> u64 {
        match self.slot(component) {
            Some(i) => {
                let v = &mut self.entries[i].1;
                *v = v.saturating_add(1);
                *v
            }
            None => {
                self.make_room(component);
                self.entries.push((component.clone(), 1));
                1
            }
        }
    }

    /// Component-wise maximum with `other`. `own` is never evicted to make room.
    pub fn merge(&mut self, other: &VectorClock, own: &str) {
        for (k, v) in &other.entries {
            match self.slot(k) {
                Some(i) => self.entries[i].1 = self.entries[i].1.max(*v),
                None => {
                    self.make_room(own);
                    if self.entries.len() < MAX_COMPONENTS {
                        self.entries.push((k.clone(), *v));
                    }
                }
            }
        }
    }

    /// True when `self` happened before `other` (server rule 3).
    pub fn happened_before(&self, other: &VectorClock) -> bool {
        if self.entries.is_empty() {
            return false;
        }
        let mut strictly = false;
        for (k, v) in &self.entries {
            match other.get(k) {
                Some(o) if *v <= o => strictly |= *v < o,
                _ => return false,
            }
        }
        strictly
    }

    /// Orders two clocks.
    pub fn compare(&self, other: &VectorClock) -> ClockOrdering {
        if self.happened_before(other) {
            ClockOrdering::Before
        } else if other.happened_before(self) {
            ClockOrdering::After
        } else if self.entries.len() == other.entries.len()
            && self.entries.iter().all(|(k, v)| other.get(k) == Some(*v))
        {
            ClockOrdering::Equal
        } else {
            ClockOrdering::Concurrent
        }
    }
}

impl fmt::Debug for VectorClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.entries.iter().map(|(k, v)| (&**k, v)))
            .finish()
    }
}

impl fmt::Display for VectorClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("{")?;
        for (i, (k, v)) in self.entries.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{k}: {v}")?;
        }
        f.write_str("}")
    }
}

impl Serialize for VectorClock {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.entries.len()))?;
        for (k, v) in &self.entries {
            seq.serialize_element(&(&**k, v))?;
        }
        seq.end()
    }
}

impl<'de> Deserialize<'de> for VectorClock {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = VectorClock;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an array of [component, counter] pairs")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<VectorClock, A::Error> {
                let mut c = VectorClock::new();
                while let Some((k, v)) = seq.next_element::<(alloc::string::String, u64)>()? {
                    if c.entries.len() >= MAX_COMPONENTS {
                        return Err(serde::de::Error::custom("too many clock components"));
                    }
                    c.entries.push((Arc::from(k), v));
                }
                Ok(c)
            }
        }
        d.deserialize_seq(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(pairs: &[(&str, u64)]) -> VectorClock {
        VectorClock::from_pairs(pairs.iter().map(|(k, v)| (Arc::from(*k), *v)))
    }

    #[test]
    fn orders_like_the_server() {
        assert_eq!(c(&[("a", 1)]).compare(&c(&[("a", 2)])), ClockOrdering::Before);
        assert_eq!(c(&[("a", 2)]).compare(&c(&[("a", 1)])), ClockOrdering::After);
        assert_eq!(c(&[("a", 1)]).compare(&c(&[("a", 1)])), ClockOrdering::Equal);
        assert_eq!(c(&[("a", 1)]).compare(&c(&[("b", 1)])), ClockOrdering::Concurrent);
        // a missing component means "not before", even with all shared values smaller
        assert_eq!(
            c(&[("a", 1), ("x", 1)]).compare(&c(&[("a", 2)])),
            ClockOrdering::Concurrent
        );
        // no strictly smaller component: not before (server rule), so concurrent
        assert_eq!(
            c(&[("a", 1)]).compare(&c(&[("a", 1), ("b", 1)])),
            ClockOrdering::Concurrent
        );
        assert_eq!(
            c(&[("a", 1)]).compare(&c(&[("a", 2), ("b", 1)])),
            ClockOrdering::Before
        );
    }

    #[test]
    fn merge_and_increment() {
        let a: Component = Arc::from("a");
        let mut x = c(&[("a", 3), ("b", 1)]);
        x.merge(&c(&[("b", 5), ("z", 2)]), "a");
        assert_eq!(x, c(&[("a", 3), ("b", 5), ("z", 2)]));
        assert_eq!(x.increment(&a), 4);
        assert_eq!(x.increment(&Arc::from("new")), 1);
    }

    #[test]
    fn bounded() {
        let own: Component = Arc::from("own");
        let mut x = VectorClock::new();
        x.increment(&own);
        for i in 0..500u64 {
            let other = c(&[(alloc::format!("c{i}").as_str(), 1)]);
            x.merge(&other, "own");
        }
        assert_eq!(x.len(), MAX_COMPONENTS);
        assert_eq!(x.get("own"), Some(1));
        assert_eq!(x.get("c499"), Some(1));
    }

    #[test]
    fn wire_form() {
        let x = c(&[("banking#i-1", 1), ("banking#i-1#flow-3", 2)]);
        let s = serde_json::to_string(&x).unwrap();
        assert_eq!(s, r#"[["banking#i-1",1],["banking#i-1#flow-3",2]]"#);
        assert_eq!(serde_json::from_str::<VectorClock>(&s).unwrap(), x);
        assert!(serde_json::from_str::<VectorClock>(r#"[["a",-1]]"#).is_err());
        assert!(serde_json::from_str::<VectorClock>(r#"[["a"]]"#).is_err());
    }
}

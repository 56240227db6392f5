//! The W3C `tracestate` header.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use core::str::FromStr;

use super::traceparent::trim_ows;

/// The most list members a `tracestate` may hold (W3C); a 33rd makes it invalid.
pub const MAX_TRACESTATE_MEMBERS: usize = 32;

/// The longest `tracestate` value (all `tracestate` headers of a request joined with `,`)
/// this crate reads, in bytes. W3C asks that at least 512 characters be supported; the cap
/// bounds what a peer can make a service store and forward.
pub const MAX_TRACESTATE_LEN: usize = 8 * 1024;

const MAX_SIMPLE_KEY: usize = 256;
const MAX_TENANT: usize = 241;
const MAX_SYSTEM: usize = 14;
const MAX_VALUE: usize = 256;

/// A parsed W3C `tracestate`: at most 32 `key=value` members, in order.
///
/// Parsing follows the W3C grammar: members are separated by `,` with optional spaces and
/// tabs around them, empty members are skipped, keys are `simple-key` or
/// `tenant@system`, values are 1..=256 printable ASCII characters other than `,` and `=`
/// that do not end with a space, and a repeated key makes the whole header invalid.
/// [`Display`](fmt::Display) writes `k=v,k=v` without spaces.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TraceState {
    members: Vec<(String, String)>,
}

/// Why a `tracestate` value was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TraceStateError {
    /// Longer than [`MAX_TRACESTATE_LEN`] bytes.
    TooLong,
    /// More than [`MAX_TRACESTATE_MEMBERS`] members.
    TooManyMembers,
    /// A member has no `=`.
    MissingEquals,
    /// A key does not follow the W3C key grammar.
    InvalidKey,
    /// A value is empty, too long, ends with a space or has a forbidden character.
    InvalidValue,
    /// The same key appears twice.
    DuplicateKey,
    /// The header value is not visible ASCII (only reported by the `http` layer).
    NotVisibleAscii,
}

impl fmt::Display for TraceStateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TraceStateError::TooLong => "tracestate is too long",
            TraceStateError::TooManyMembers => "tracestate has more than 32 members",
            TraceStateError::MissingEquals => "tracestate member has no `=`",
            TraceStateError::InvalidKey => "tracestate key is invalid",
            TraceStateError::InvalidValue => "tracestate value is invalid",
            TraceStateError::DuplicateKey => "tracestate key appears more than once",
            TraceStateError::NotVisibleAscii => "tracestate value is not visible ascii",
        })
    }
}

impl core::error::Error for TraceStateError {}

fn is_key_char(b: u8) -> bool {
    matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-' | b'*' | b'/')
}

/// `simple-key` or `tenant-id "@" system-id`.
pub(crate) fn valid_key(key: &str) -> bool {
    let b = key.as_bytes();
    match b.iter().position(|&c| c == b'@') {
        None => {
            !b.is_empty()
                && b.len() <= MAX_SIMPLE_KEY
                && b[0].is_ascii_lowercase()
                && b.iter().all(|&c| is_key_char(c))
        }
        Some(at) => {
            let (tenant, system) = (&b[..at], &b[at + 1..]);
            !tenant.is_empty()
                && tenant.len() <= MAX_TENANT
                && (tenant[0].is_ascii_lowercase() || tenant[0].is_ascii_digit())
                && tenant.iter().all(|&c| is_key_char(c))
                && !system.is_empty()
                && system.len() <= MAX_SYSTEM
                && system[0].is_ascii_lowercase()
                && system.iter().all(|&c| is_key_char(c))
        }
    }
}

/// 1..=256 of `0x20..=0x7E` except `,` and `=`, not ending with a space.
pub(crate) fn valid_value(value: &str) -> bool {
    let b = value.as_bytes();
    !b.is_empty()
        && b.len() <= MAX_VALUE
        && b.last() != Some(&b' ')
        && b.iter()
            .all(|&c| (0x20..=0x7e).contains(&c) && c != b',' && c != b'=')
}

impl TraceState {
    /// An empty list.
    pub const fn new() -> Self {
        Self { members: Vec::new() }
    }

    /// Parses a header value (or several `tracestate` headers joined with `,`).
    pub fn parse(value: &str) -> Result<Self, TraceStateError> {
        if value.len() > MAX_TRACESTATE_LEN {
            return Err(TraceStateError::TooLong);
        }
        let mut members: Vec<(String, String)> = Vec::new();
        for raw in value.split(',') {
            let member = trim_ows(raw);
            if member.is_empty() {
                continue;
            }
            let (key, val) = member.split_once('=').ok_or(TraceStateError::MissingEquals)?;
            if !valid_key(key) {
                return Err(TraceStateError::InvalidKey);
            }
            if !valid_value(val) {
                return Err(TraceStateError::InvalidValue);
            }
            if members.len() == MAX_TRACESTATE_MEMBERS {
                return Err(TraceStateError::TooManyMembers);
            }
            if members.iter().any(|(k, _)| k == key) {
                return Err(TraceStateError::DuplicateKey);
            }
            members.push((String::from(key), String::from(val)));
        }
        Ok(Self { members })
    }

    /// The value stored under `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.members
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The members, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        self.members.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Number of members.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// True when there is no member.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Sets `key` to `value` and moves it to the front, as W3C asks of a vendor that
    /// updates its own entry. When the list is full, the last member is dropped.
    pub fn insert(&mut self, key: &str, value: &str) -> Result<(), TraceStateError> {
        if !valid_key(key) {
            return Err(TraceStateError::InvalidKey);
        }
        if !valid_value(value) {
            return Err(TraceStateError::InvalidValue);
        }
        self.members.retain(|(k, _)| k != key);
        self.members.truncate(MAX_TRACESTATE_MEMBERS - 1);
        self.members.insert(0, (String::from(key), String::from(value)));
        Ok(())
    }

    /// Removes `key`; returns its value.
    pub fn remove(&mut self, key: &str) -> Option<String> {
        let i = self.members.iter().position(|(k, _)| k == key)?;
        Some(self.members.remove(i).1)
    }
}

impl FromStr for TraceState {
    type Err = TraceStateError;
    fn from_str(s: &str) -> Result<Self, TraceStateError> {
        Self::parse(s)
    }
}

impl fmt::Display for TraceState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (k, v)) in self.members.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            f.write_str(k)?;
            f.write_str("=")?;
            f.write_str(v)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    #[test]
    fn parses_and_displays() {
        let ts: TraceState = " rojo=00f067aa0ba902b7 ,\t,congo=t61rcWkgMzE\t".parse().unwrap();
        assert_eq!(ts.len(), 2);
        assert_eq!(ts.get("congo"), Some("t61rcWkgMzE"));
        assert_eq!(ts.to_string(), "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE");
        assert!("".parse::<TraceState>().unwrap().is_empty());
    }

    #[test]
    fn errors() {
        let e = |s: &str| s.parse::<TraceState>().unwrap_err();
        assert_eq!(e("foo"), TraceStateError::MissingEquals);
        assert_eq!(e("Foo=1"), TraceStateError::InvalidKey);
        assert_eq!(e("foo=,bar=1"), TraceStateError::InvalidValue);
        assert_eq!(e("foo=a\u{7f}"), TraceStateError::InvalidValue);
        assert_eq!(e("foo=bar=baz"), TraceStateError::InvalidValue);
        assert_eq!(e("foo=1,foo=2"), TraceStateError::DuplicateKey);
        assert_eq!(e("foo=é"), TraceStateError::InvalidValue);
        assert_eq!(e("é=1"), TraceStateError::InvalidKey);
    }

    #[test]
    fn insert_moves_to_front() {
        let mut ts: TraceState = "a=1,b=2".parse().unwrap();
        ts.insert("b", "3").unwrap();
        assert_eq!(ts.to_string(), "b=3,a=1");
        assert_eq!(ts.remove("a").as_deref(), Some("1"));
        assert!(ts.insert("B", "1").is_err());
    }
}

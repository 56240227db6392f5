//! The W3C `traceparent` header.

use core::fmt;
use core::str::FromStr;

use crate::ids::{SpanId, TraceId};

/// Length of a version-00 `traceparent`, and of the part of a higher version that is read.
const TRACEPARENT_LEN: usize = 55;

/// The "sampled" trace flag.
pub const FLAG_SAMPLED: u8 = 0x01;

/// A parsed W3C `traceparent`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceParent {
    /// Version byte (`00` today; higher versions are parsed, `ff` is invalid).
    pub version: u8,
    /// The trace id.
    pub trace_id: TraceId,
    /// The sender's span id (`parent-id`).
    pub parent_id: SpanId,
    /// Trace flags (`01` = sampled).
    pub flags: u8,
}

/// Why a `traceparent` value was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TraceParentError {
    /// Too short, or a version-00 value that is not exactly 55 characters.
    Length,
    /// A `-` is missing where the format puts one.
    Delimiter,
    /// The version is not two lowercase hex digits, or is the forbidden `ff`.
    Version,
    /// The trace id is not 32 lowercase hex digits, or is all zeroes.
    TraceId,
    /// The parent id is not 16 lowercase hex digits, or is all zeroes.
    ParentId,
    /// The flags are not two lowercase hex digits.
    Flags,
    /// The header appeared more than once in one request.
    Repeated,
    /// The header value is not visible ASCII (only reported by the `http` layer).
    NotVisibleAscii,
}

impl fmt::Display for TraceParentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TraceParentError::Length => "traceparent has the wrong length",
            TraceParentError::Delimiter => "traceparent is missing a `-` delimiter",
            TraceParentError::Version => "traceparent version is invalid",
            TraceParentError::TraceId => "traceparent trace-id is invalid",
            TraceParentError::ParentId => "traceparent parent-id is invalid",
            TraceParentError::Flags => "traceparent trace-flags are invalid",
            TraceParentError::Repeated => "traceparent header appears more than once",
            TraceParentError::NotVisibleAscii => "traceparent value is not visible ascii",
        })
    }
}

impl core::error::Error for TraceParentError {}

/// Two lowercase hex digits.
fn hex_byte(hi: u8, lo: u8) -> Option<u8> {
    fn nibble(b: u8) -> Option<u8> {
        match b {
            b'0'..=b'9' => Some(b - b'0'),
            b'a'..=b'f' => Some(b - b'a' + 10),
            _ => None,
        }
    }
    Some((nibble(hi)? << 4) | nibble(lo)?)
}

/// Trims HTTP optional whitespace (spaces and tabs) from both ends.
pub(crate) fn trim_ows(s: &str) -> &str {
    s.trim_matches(|c| c == ' ' || c == '\t')
}

impl TraceParent {
    /// A version-00 `traceparent` with the sampled flag set.
    pub const fn sampled(trace_id: TraceId, parent_id: SpanId) -> Self {
        Self {
            version: 0,
            trace_id,
            parent_id,
            flags: FLAG_SAMPLED,
        }
    }

    /// True when the sampled flag is set.
    pub const fn is_sampled(&self) -> bool {
        self.flags & FLAG_SAMPLED != 0
    }

    /// Parses a header value, ignoring surrounding spaces and tabs.
    ///
    /// Version `00` must be exactly 55 characters. A higher version (`01`..=`fe`) is read
    /// from its first 55 characters and may carry more only after a `-` at index 55.
    pub fn parse(value: &str) -> Result<Self, TraceParentError> {
        let s = trim_ows(value);
        let b = s.as_bytes();
        if b.len() < TRACEPARENT_LEN {
            return Err(TraceParentError::Length);
        }
        let version = hex_byte(b[0], b[1]).ok_or(TraceParentError::Version)?;
        if version == 0xff {
            return Err(TraceParentError::Version);
        }
        if version == 0 && b.len() != TRACEPARENT_LEN {
            return Err(TraceParentError::Length);
        }
        if b.len() > TRACEPARENT_LEN && b[TRACEPARENT_LEN] != b'-' {
            return Err(TraceParentError::Delimiter);
        }
        if b[2] != b'-' || b[35] != b'-' || b[52] != b'-' {
            return Err(TraceParentError::Delimiter);
        }
        // The delimiters are ASCII, so these ranges are on char boundaries; `get` keeps
        // that an invariant checked at run time rather than a possible panic.
        let trace_id = s
            .get(3..35)
            .and_then(|t| TraceId::from_w3c_hex(t).ok())
            .ok_or(TraceParentError::TraceId)?;
        let parent_id = s
            .get(36..52)
            .and_then(|p| p.parse::<SpanId>().ok())
            .ok_or(TraceParentError::ParentId)?;
        let flags = hex_byte(b[53], b[54]).ok_or(TraceParentError::Flags)?;
        Ok(Self {
            version,
            trace_id,
            parent_id,
            flags,
        })
    }
}

impl FromStr for TraceParent {
    type Err = TraceParentError;
    fn from_str(s: &str) -> Result<Self, TraceParentError> {
        Self::parse(s)
    }
}

impl fmt::Display for TraceParent {
    /// Always writes version `00` (the only version this crate produces).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "00-{}-{}-{:02x}",
            self.trace_id.w3c_hex(),
            self.parent_id,
            self.flags
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    const GOOD: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn round_trip() {
        let tp: TraceParent = GOOD.parse().unwrap();
        assert_eq!(tp.version, 0);
        assert_eq!(tp.flags, 1);
        assert!(tp.is_sampled());
        assert_eq!(tp.parent_id.to_string(), "00f067aa0ba902b7");
        assert_eq!(tp.to_string(), GOOD);
    }

    #[test]
    fn errors_name_the_field() {
        let e = |s: &str| s.parse::<TraceParent>().unwrap_err();
        assert_eq!(e(""), TraceParentError::Length);
        assert_eq!(
            e("ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
            TraceParentError::Version
        );
        assert_eq!(
            e("0A-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
            TraceParentError::Version
        );
        assert_eq!(
            e("00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
            TraceParentError::Delimiter
        );
        assert_eq!(
            e("00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01"),
            TraceParentError::TraceId
        );
        assert_eq!(
            e("00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01"),
            TraceParentError::ParentId
        );
        assert_eq!(
            e("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0g"),
            TraceParentError::Flags
        );
        // multi-byte characters where ids belong must not panic
        assert_eq!(
            e("00-4bf92f3577b34da6a3ce929d0e0e47é-00f067aa0ba902b7-01"),
            TraceParentError::TraceId
        );
        assert_eq!(
            e("00-4bf92f3577b34da6a3ce929d0e0e473é-00f067aa0ba902b7-0"),
            TraceParentError::Delimiter
        );
        assert_eq!(
            e("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0é"),
            TraceParentError::Length
        );
    }

    #[test]
    fn future_versions() {
        let tp: TraceParent = "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-more"
            .parse()
            .unwrap();
        assert_eq!(tp.version, 0xcc);
        assert_eq!(tp.to_string(), GOOD);
    }
}

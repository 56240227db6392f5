//! `http::HeaderMap` adapters (feature `http`).

use http::header::{HeaderMap, HeaderName, HeaderValue};

use super::{ClockHeader, ClockHeaderError, ExtractError, Propagation, RemoteContext, RACEWAY_CLOCK};

/// Reads a [`RemoteContext`] from request headers, with the rules of [`super::extract`].
///
/// A value that is not visible ASCII makes its header invalid; it never panics.
pub fn extract_from_header_map(map: &HeaderMap) -> Result<RemoteContext, ExtractError> {
    super::extract_bytes(map.iter().map(|(k, v)| (k.as_str(), v.as_bytes())))
}

impl Propagation {
    /// Inserts the headers into `map`, replacing earlier values of the same names and
    /// removing a stale `tracestate` when there is none to send.
    pub fn inject(&self, map: &mut HeaderMap) {
        for (name, value) in self {
            if let Ok(v) = HeaderValue::from_str(value) {
                map.insert(HeaderName::from_static(name), v);
            }
        }
        if self.tracestate().is_none() {
            map.remove(super::TRACESTATE);
        }
        if self.raceway_clock().is_none() {
            map.remove(RACEWAY_CLOCK);
        }
    }
}

impl ClockHeader {
    /// Inserts this payload as the `raceway-clock` header (for a response), replacing an
    /// earlier value.
    pub fn inject(&self, map: &mut HeaderMap) {
        if let Ok(v) = HeaderValue::from_str(&self.to_header_value()) {
            map.insert(HeaderName::from_static(RACEWAY_CLOCK), v);
        }
    }

    /// Reads the `raceway-clock` header of a response: `Ok(None)` when absent.
    pub fn from_header_map(map: &HeaderMap) -> Result<Option<Self>, ClockHeaderError> {
        super::response_clock(map.iter().map(|(k, v)| (k.as_str(), v.as_bytes())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::headers::{TraceParentError, TRACEPARENT, TRACESTATE};

    const TP: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

    #[test]
    fn non_ascii_values_are_invalid_not_panics() {
        let mut map = HeaderMap::new();
        map.insert(TRACEPARENT, HeaderValue::from_bytes(b"00-\xff").unwrap());
        assert_eq!(
            extract_from_header_map(&map),
            Err(ExtractError::Invalid {
                traceparent: Some(TraceParentError::NotVisibleAscii),
                raceway_clock: None,
            })
        );
        map.insert(TRACEPARENT, HeaderValue::from_static(TP));
        map.insert(TRACESTATE, HeaderValue::from_bytes(b"a=\xe9").unwrap());
        let ctx = extract_from_header_map(&map).unwrap();
        assert_eq!(ctx.tracestate, None);
        map.insert(RACEWAY_CLOCK, HeaderValue::from_bytes(b"v1;\x80").unwrap());
        assert_eq!(
            ClockHeader::from_header_map(&map),
            Err(ClockHeaderError::NotVisibleAscii)
        );
    }
}

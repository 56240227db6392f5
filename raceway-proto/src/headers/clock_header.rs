//! The `raceway-clock` header: `v1;` + base64url (no padding) of compact JSON.

use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt;
use core::str::FromStr;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde::{Deserialize, Serialize};

use super::traceparent::trim_ows;
use crate::clock::VectorClock;
use crate::ids::{EventId, SpanId, TraceId};

/// The version prefix of a `raceway-clock` v1 value.
pub const CLOCK_V1_PREFIX: &str = "v1;";

/// The longest `raceway-clock` value this crate decodes, in bytes.
pub const MAX_CLOCK_HEADER_LEN: usize = 8 * 1024;

/// The most clock components a `raceway-clock` may carry: the bound of
/// [`VectorClock`] itself ([`crate::clock::MAX_COMPONENTS`]), so every clock this SDK
/// sends can be read back.
pub const MAX_CLOCK_COMPONENTS: usize = crate::clock::MAX_COMPONENTS;

/// The longest clock component name accepted, in bytes.
pub const MAX_COMPONENT_LEN: usize = 256;

/// The longest `service` or `instance` accepted, in bytes.
pub const MAX_NAME_LEN: usize = 256;

/// The `raceway-clock` v1 payload.
///
/// Encoded as `v1;` + base64url without padding of the compact JSON
/// `{"trace_id":…,"span_id":…,"parent_span_id":…,"service":…,"instance":…,"clock":[[c,n],…]}`
/// in that order, plus `"event_id":…` at the end when [`event_id`](Self::event_id) is set
/// (a Rust-SDK extension other SDKs ignore). Decoding ignores unknown fields and accepts
/// padded base64 too.
#[derive(Debug, Clone, PartialEq)]
pub struct ClockHeader {
    /// Trace id (UUID).
    pub trace_id: TraceId,
    /// The span the receiver adopts.
    pub span_id: SpanId,
    /// The sender's span.
    pub parent_span_id: Option<SpanId>,
    /// Sender's service.
    pub service: String,
    /// Sender's instance.
    pub instance: String,
    /// Sender's clock.
    pub clock: VectorClock,
    /// Sender's last event id (a Rust-SDK extension field `event_id`; others ignore it).
    pub event_id: Option<EventId>,
}

/// Why a `raceway-clock` value was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClockHeaderError {
    /// Longer than [`MAX_CLOCK_HEADER_LEN`] bytes.
    TooLong,
    /// The value does not start with `v1;`.
    UnsupportedVersion,
    /// The payload is not base64url.
    Base64,
    /// The payload is not the expected JSON object.
    Json,
    /// `trace_id` is not a UUID, or is all zeroes.
    TraceId,
    /// `span_id` is not 16 lowercase hex digits, or is all zeroes.
    SpanId,
    /// `parent_span_id` is neither null nor a valid span id.
    ParentSpanId,
    /// `event_id` is neither null nor a UUID.
    EventId,
    /// `service` or `instance` is longer than [`MAX_NAME_LEN`].
    NameTooLong,
    /// More than [`MAX_CLOCK_COMPONENTS`] clock components.
    TooManyComponents,
    /// A clock component name is empty or longer than [`MAX_COMPONENT_LEN`].
    InvalidComponent,
    /// The header appeared more than once in one request.
    Repeated,
    /// The header value is not visible ASCII (only reported by the `http` layer).
    NotVisibleAscii,
}

impl fmt::Display for ClockHeaderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ClockHeaderError::TooLong => "raceway-clock is too long",
            ClockHeaderError::UnsupportedVersion => "raceway-clock does not start with `v1;`",
            ClockHeaderError::Base64 => "raceway-clock payload is not base64url",
            ClockHeaderError::Json => "raceway-clock payload is not the expected json",
            ClockHeaderError::TraceId => "raceway-clock trace_id is invalid",
            ClockHeaderError::SpanId => "raceway-clock span_id is invalid",
            ClockHeaderError::ParentSpanId => "raceway-clock parent_span_id is invalid",
            ClockHeaderError::EventId => "raceway-clock event_id is invalid",
            ClockHeaderError::NameTooLong => "raceway-clock service or instance is too long",
            ClockHeaderError::TooManyComponents => "raceway-clock has too many clock components",
            ClockHeaderError::InvalidComponent => "raceway-clock has an invalid clock component name",
            ClockHeaderError::Repeated => "raceway-clock header appears more than once",
            ClockHeaderError::NotVisibleAscii => "raceway-clock value is not visible ascii",
        })
    }
}

impl core::error::Error for ClockHeaderError {}

/// The JSON written: field order is the wire order.
#[derive(Serialize)]
struct WireOut<'a> {
    trace_id: TraceId,
    span_id: SpanId,
    parent_span_id: Option<SpanId>,
    service: &'a str,
    instance: &'a str,
    clock: &'a VectorClock,
    #[serde(skip_serializing_if = "Option::is_none")]
    event_id: Option<EventId>,
}

/// The JSON read: plain strings first, checked afterwards for typed errors. The length
/// cap on the header bounds every allocation made here.
#[derive(Deserialize)]
struct WireIn {
    trace_id: String,
    span_id: String,
    #[serde(default)]
    parent_span_id: Option<String>,
    service: String,
    instance: String,
    clock: Vec<(String, u64)>,
    #[serde(default)]
    event_id: Option<String>,
}

/// `json` with every non-ASCII character written as `\uXXXX` (UTF-16, lowercase hex), as
/// Python's `json.dumps` writes it by default: the Python SDK's headers, byte for byte.
/// Outside strings JSON is ASCII, so only string contents change, and they decode the same.
fn ascii_escaped(json: &str) -> alloc::borrow::Cow<'_, str> {
    use core::fmt::Write as _;
    if json.is_ascii() {
        return alloc::borrow::Cow::Borrowed(json);
    }
    let mut out = String::with_capacity(json.len() + 16);
    for c in json.chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                let _ = write!(out, "\\u{unit:04x}");
            }
        }
    }
    alloc::borrow::Cow::Owned(out)
}

impl ClockHeader {
    /// Appends the header value (`v1;…`) to `out`.
    pub fn encode(&self, out: &mut String) {
        let wire = WireOut {
            trace_id: self.trace_id,
            span_id: self.span_id,
            parent_span_id: self.parent_span_id,
            service: &self.service,
            instance: &self.instance,
            clock: &self.clock,
            event_id: self.event_id,
        };
        // Serializing this struct cannot fail: every field is a string, number or list.
        let json = serde_json::to_string(&wire).unwrap_or_default();
        out.push_str(CLOCK_V1_PREFIX);
        URL_SAFE_NO_PAD.encode_string(ascii_escaped(&json).as_bytes(), out);
    }

    /// The header value (`v1;…`).
    pub fn to_header_value(&self) -> String {
        let mut s = String::new();
        self.encode(&mut s);
        s
    }

    /// Decodes a header value, ignoring surrounding spaces and tabs.
    pub fn decode(value: &str) -> Result<Self, ClockHeaderError> {
        let s = trim_ows(value);
        if s.len() > MAX_CLOCK_HEADER_LEN {
            return Err(ClockHeaderError::TooLong);
        }
        let payload = s
            .strip_prefix(CLOCK_V1_PREFIX)
            .ok_or(ClockHeaderError::UnsupportedVersion)?;
        // Padding is not sent, but tolerated: at most two `=` at the end.
        let unpadded = payload
            .strip_suffix("==")
            .or_else(|| payload.strip_suffix('='))
            .unwrap_or(payload);
        let json = URL_SAFE_NO_PAD
            .decode(unpadded)
            .map_err(|_| ClockHeaderError::Base64)?;
        let wire: WireIn = serde_json::from_slice(&json).map_err(|_| ClockHeaderError::Json)?;

        let trace_id = wire
            .trace_id
            .parse::<TraceId>()
            .ok()
            .filter(|t| t.as_u128() != 0)
            .ok_or(ClockHeaderError::TraceId)?;
        let span_id = wire
            .span_id
            .parse::<SpanId>()
            .map_err(|_| ClockHeaderError::SpanId)?;
        let parent_span_id = match wire.parent_span_id {
            None => None,
            Some(p) => Some(p.parse::<SpanId>().map_err(|_| ClockHeaderError::ParentSpanId)?),
        };
        let event_id = match wire.event_id {
            None => None,
            Some(e) => Some(e.parse::<EventId>().map_err(|_| ClockHeaderError::EventId)?),
        };
        if wire.service.len() > MAX_NAME_LEN || wire.instance.len() > MAX_NAME_LEN {
            return Err(ClockHeaderError::NameTooLong);
        }
        if wire.clock.len() > MAX_CLOCK_COMPONENTS {
            return Err(ClockHeaderError::TooManyComponents);
        }
        if wire
            .clock
            .iter()
            .any(|(c, _)| c.is_empty() || c.len() > MAX_COMPONENT_LEN)
        {
            return Err(ClockHeaderError::InvalidComponent);
        }
        let clock = VectorClock::from_pairs(
            wire.clock
                .into_iter()
                .map(|(c, n)| (Arc::<str>::from(c.as_str()), n)),
        );
        Ok(Self {
            trace_id,
            span_id,
            parent_span_id,
            service: wire.service,
            instance: wire.instance,
            clock,
            event_id,
        })
    }
}

impl FromStr for ClockHeader {
    type Err = ClockHeaderError;
    fn from_str(s: &str) -> Result<Self, ClockHeaderError> {
        Self::decode(s)
    }
}

impl fmt::Display for ClockHeader {
    /// Writes the header value (`v1;…`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_header_value())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> ClockHeader {
        ClockHeader {
            trace_id: "0af76519-16cd-43dd-8448-eb211c80319c".parse().unwrap(),
            span_id: "a71dd2f7c2ebe8fe".parse().unwrap(),
            parent_span_id: Some("b7ad6b7169203331".parse().unwrap()),
            service: String::from("gateway"),
            instance: String::from("gw-1"),
            clock: VectorClock::from_pairs([(Arc::from("gateway#gw-1"), 1)]),
            event_id: None,
        }
    }

    fn payload(json: &str) -> String {
        let mut s = String::from(CLOCK_V1_PREFIX);
        URL_SAFE_NO_PAD.encode_string(json.as_bytes(), &mut s);
        s
    }

    #[test]
    fn matches_the_python_sdk() {
        assert_eq!(
            sample().to_header_value(),
            "v1;eyJ0cmFjZV9pZCI6IjBhZjc2NTE5LTE2Y2QtNDNkZC04NDQ4LWViMjExYzgwMzE5YyIsInNwYW5faWQiOiJhNzFkZDJmN2MyZWJlOGZlIiwicGFyZW50X3NwYW5faWQiOiJiN2FkNmI3MTY5MjAzMzMxIiwic2VydmljZSI6ImdhdGV3YXkiLCJpbnN0YW5jZSI6Imd3LTEiLCJjbG9jayI6W1siZ2F0ZXdheSNndy0xIiwxXV19"
        );
    }

    #[test]
    fn event_id_extension_round_trips() {
        let mut h = sample();
        h.event_id = Some("a0000000-0000-4000-8000-00000000000a".parse().unwrap());
        let v = h.to_header_value();
        assert_eq!(ClockHeader::decode(&v), Ok(h));
    }

    #[test]
    fn padding_and_unknown_fields() {
        let json = r#"{"trace_id":"0af76519-16cd-43dd-8448-eb211c80319c","span_id":"a71dd2f7c2ebe8fe","parent_span_id":null,"service":"s","instance":"i","clock":[],"future":{"x":[1,2]}}"#;
        let h = ClockHeader::decode(&payload(json)).unwrap();
        assert_eq!(h.parent_span_id, None);
        let mut padded = String::from(CLOCK_V1_PREFIX);
        base64::engine::general_purpose::URL_SAFE.encode_string(json.as_bytes(), &mut padded);
        assert_eq!(ClockHeader::decode(&padded), Ok(h));
    }

    #[test]
    fn typed_errors() {
        let d = |s: &str| ClockHeader::decode(s).unwrap_err();
        assert_eq!(d("v2;e30"), ClockHeaderError::UnsupportedVersion);
        assert_eq!(d("v1;!!"), ClockHeaderError::Base64);
        assert_eq!(d("v1;e30"), ClockHeaderError::Json);
        let too_long = alloc::format!("v1;{}", "A".repeat(MAX_CLOCK_HEADER_LEN));
        assert_eq!(d(&too_long), ClockHeaderError::TooLong);
        let base = |extra: &str, clock: &str| {
            payload(&alloc::format!(
                r#"{{"trace_id":"0af76519-16cd-43dd-8448-eb211c80319c","span_id":"a71dd2f7c2ebe8fe","service":"s","instance":"i","clock":{clock}{extra}}}"#
            ))
        };
        assert_eq!(d(&base(r#","event_id":"nope""#, "[]")), ClockHeaderError::EventId);
        assert_eq!(d(&base("", r#"[["",1]]"#)), ClockHeaderError::InvalidComponent);
        assert_eq!(d(&base("", r#"[["a",-1]]"#)), ClockHeaderError::Json);
        let many: Vec<String> = (0..=MAX_CLOCK_COMPONENTS)
            .map(|i| alloc::format!(r#"["c{i}",1]"#))
            .collect();
        assert_eq!(
            d(&base("", &alloc::format!("[{}]", many.join(",")))),
            ClockHeaderError::TooManyComponents
        );
    }
}

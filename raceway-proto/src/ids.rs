//! Typed identifiers: trace ids, span ids and event ids, and where new ones come from.

use core::fmt;
use core::str::FromStr;

use alloc::vec::Vec;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Why a string is not a valid identifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum IdError {
    /// The string has the wrong length for this kind of id.
    Length,
    /// A character is not a lowercase hex digit (or a hyphen where one belongs).
    Character,
    /// The id is all zeroes, which W3C Trace Context reserves as invalid.
    Zero,
}

impl fmt::Display for IdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            IdError::Length => "identifier has the wrong length",
            IdError::Character => "identifier has a character that is not lowercase hex",
            IdError::Zero => "identifier is all zeroes",
        })
    }
}

impl core::error::Error for IdError {}

const HEX: &[u8; 16] = b"0123456789abcdef";

fn hex_val(b: u8, allow_upper: bool) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' if allow_upper => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Parses exactly `N*2` hex digits (lowercase only unless `allow_upper`).
pub(crate) fn parse_hex_u128(s: &[u8], allow_upper: bool) -> Result<u128, IdError> {
    if s.is_empty() || s.len() > 32 {
        return Err(IdError::Length);
    }
    let mut v: u128 = 0;
    for &b in s {
        v = (v << 4) | u128::from(hex_val(b, allow_upper).ok_or(IdError::Character)?);
    }
    Ok(v)
}

fn write_hex(f: &mut fmt::Formatter<'_>, v: u128, digits: u32) -> fmt::Result {
    let mut buf = [0u8; 32];
    for i in 0..digits {
        let shift = (digits - 1 - i) * 4;
        buf[i as usize] = HEX[((v >> shift) & 0xf) as usize];
    }
    // SAFETY-free: the buffer holds only ASCII hex digits.
    f.write_str(core::str::from_utf8(&buf[..digits as usize]).map_err(|_| fmt::Error)?)
}

/// Parses a UUID in hyphenated (`8-4-4-4-12`) or simple (32 hex) form.
///
/// Uppercase hex is accepted, as the server accepts it; output is always lowercase.
fn parse_uuid(s: &str) -> Result<u128, IdError> {
    let b = s.as_bytes();
    match b.len() {
        32 => parse_hex_u128(b, true),
        36 => {
            if b[8] != b'-' || b[13] != b'-' || b[18] != b'-' || b[23] != b'-' {
                return Err(IdError::Character);
            }
            let mut v: u128 = 0;
            for (i, &c) in b.iter().enumerate() {
                if matches!(i, 8 | 13 | 18 | 23) {
                    continue;
                }
                v = (v << 4) | u128::from(hex_val(c, true).ok_or(IdError::Character)?);
            }
            Ok(v)
        }
        _ => Err(IdError::Length),
    }
}

/// The 8 lowercase hex digits of `v`, most significant first, made in one 64-bit
/// register (a digit a byte) instead of a table lookup a digit.
#[inline]
fn hex8(v: u32) -> [u8; 8] {
    let mut x = u64::from(v);
    // Spread the nibbles to a byte each: 0xABCDEFGH -> 0x0A0B0C0D0E0F0G0H.
    x = ((x & 0xffff_0000) << 16) | (x & 0x0000_ffff);
    x = ((x & 0x0000_ff00_0000_ff00) << 8) | (x & 0x0000_00ff_0000_00ff);
    x = ((x & 0x00f0_00f0_00f0_00f0) << 4) | (x & 0x000f_000f_000f_000f);
    // A byte holding 10..=15 gets `'a' - '0' - 10` (39) more than one holding 0..=9.
    let letters = ((x + 0x0606_0606_0606_0606) >> 4) & 0x0101_0101_0101_0101;
    (x + 0x3030_3030_3030_3030 + letters * 39).to_be_bytes()
}

/// The 4 lowercase hex digits of `v`.
#[inline]
fn hex4(v: u16) -> [u8; 4] {
    let [_, _, _, _, a, b, c, d] = hex8(u32::from(v));
    [a, b, c, d]
}

/// The first 19 bytes of the text of a UUID whose high 64 bits are `high`: three groups
/// and the hyphen after them (`xxxxxxxx-xxxx-xxxx-`).
#[inline]
pub(crate) fn uuid_head(high: u64) -> [u8; 19] {
    let mut head = [b'-'; 19];
    head[..8].copy_from_slice(&hex8((high >> 32) as u32));
    head[9..13].copy_from_slice(&hex4((high >> 16) as u16));
    head[14..18].copy_from_slice(&hex4(high as u16));
    head
}

/// Writes the text of the UUID whose head is `head` (see [`uuid_head`]) and whose low 64
/// bits are `low` into `u`.
#[inline]
fn fill_uuid(u: &mut [u8; 36], head: &[u8; 19], low: u64) {
    u[..19].copy_from_slice(head);
    u[19..23].copy_from_slice(&hex4((low >> 48) as u16));
    u[23] = b'-';
    u[24..28].copy_from_slice(&hex4((low >> 32) as u16));
    u[28..].copy_from_slice(&hex8(low as u32));
}

/// Appends the hyphenated lowercase text (36 bytes) of the UUID whose head is `head` (see
/// [`uuid_head`]) and whose low 64 bits are `low` to `out`. The digits go straight into
/// `out`, a group at a time: no buffer on the stack written a byte at a time and then
/// copied. The wire encoder keeps the heads of a flow's ids, which its events share.
#[inline]
pub(crate) fn push_uuid_with_head(out: &mut Vec<u8>, head: &[u8; 19], low: u64) {
    let start = out.len();
    out.resize(start + 36, b'-');
    if let Some(u) = out
        .get_mut(start..)
        .and_then(|u| <&mut [u8; 36]>::try_from(u).ok())
    {
        fill_uuid(u, head, low);
    }
}

/// Appends `v`'s hyphenated lowercase UUID form (36 bytes) to `out`, as `Display` writes it.
#[inline]
pub(crate) fn push_uuid(out: &mut Vec<u8>, v: u128) {
    push_uuid_with_head(out, &uuid_head((v >> 64) as u64), v as u64);
}

/// The 36 ASCII bytes of `v`'s hyphenated lowercase UUID form (what `Display` writes).
pub(crate) fn uuid_ascii(v: u128) -> [u8; 36] {
    let mut out = [b'-'; 36];
    fill_uuid(&mut out, &uuid_head((v >> 64) as u64), v as u64);
    out
}

fn write_uuid(f: &mut fmt::Formatter<'_>, v: u128) -> fmt::Result {
    let buf = uuid_ascii(v);
    f.write_str(core::str::from_utf8(&buf).map_err(|_| fmt::Error)?)
}

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(u128);

        impl $name {
            /// Wraps raw bits. Zero is allowed here; the header codecs refuse it on input.
            pub const fn from_u128(v: u128) -> Self {
                Self(v)
            }
            /// The raw bits.
            pub const fn as_u128(self) -> u128 {
                self.0
            }
        }

        impl fmt::Display for $name {
            /// Hyphenated lowercase UUID form, as the server stores it.
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write_uuid(f, self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({})", stringify!($name), self)
            }
        }

        impl FromStr for $name {
            type Err = IdError;
            /// Accepts the hyphenated and the simple 32-hex form.
            fn from_str(s: &str) -> Result<Self, IdError> {
                parse_uuid(s).map(Self)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = alloc::string::String::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

uuid_id!(
    /// A Raceway trace id. On the wire of `traceparent` it is 32 lowercase hex digits; in
    /// events it is a hyphenated UUID.
    TraceId
);
uuid_id!(
    /// The id of one recorded event.
    EventId
);

impl TraceId {
    /// Parses the 32 lowercase hex digits of a W3C `trace-id` (all zeroes is invalid).
    pub fn from_w3c_hex(s: &str) -> Result<Self, IdError> {
        if s.len() != 32 {
            return Err(IdError::Length);
        }
        let v = parse_hex_u128(s.as_bytes(), false)?;
        if v == 0 {
            return Err(IdError::Zero);
        }
        Ok(Self(v))
    }

    /// The 32 lowercase hex digits of the W3C `trace-id` form.
    pub fn w3c_hex(self) -> W3cHex {
        W3cHex(self.0)
    }
}

/// Displays a trace id as 32 lowercase hex digits without hyphens.
#[derive(Clone, Copy)]
pub struct W3cHex(u128);

impl fmt::Display for W3cHex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_hex(f, self.0, 32)
    }
}

/// A W3C span id (`parent-id` in `traceparent`): 16 lowercase hex digits, never zero.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SpanId(u64);

impl SpanId {
    /// Wraps raw bits; returns `None` for zero, which W3C reserves as invalid.
    pub const fn new(v: u64) -> Option<Self> {
        if v == 0 {
            None
        } else {
            Some(Self(v))
        }
    }
    /// The raw bits.
    pub const fn as_u64(self) -> u64 {
        self.0
    }
}

impl fmt::Display for SpanId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_hex(f, u128::from(self.0), 16)
    }
}

impl fmt::Debug for SpanId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SpanId({self})")
    }
}

impl FromStr for SpanId {
    type Err = IdError;
    /// Exactly 16 lowercase hex digits, not all zero.
    fn from_str(s: &str) -> Result<Self, IdError> {
        if s.len() != 16 {
            return Err(IdError::Length);
        }
        let v = parse_hex_u128(s.as_bytes(), false)? as u64;
        SpanId::new(v).ok_or(IdError::Zero)
    }
}

impl Serialize for SpanId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for SpanId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = alloc::string::String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A source of random identifiers, passed into the core (which owns no random source).
///
/// Implementations must be cheap: one is called for every recorded event.
pub trait IdGenerator: Send + Sync {
    /// 128 random bits. Callers shape them into ids.
    fn next_u128(&self) -> u128;

    /// A new event id (UUID version 4 layout).
    fn event_id(&self) -> EventId {
        EventId(uuid_v4_bits(self.next_u128()))
    }
    /// A new trace id (UUID version 4 layout, never zero).
    fn trace_id(&self) -> TraceId {
        TraceId(uuid_v4_bits(self.next_u128()))
    }
    /// A new span id, never zero.
    fn span_id(&self) -> SpanId {
        let v = self.next_u128() as u64;
        SpanId::new(v).unwrap_or(SpanId(0x5eed_5eed_5eed_5eed))
    }
}

/// Sets the UUID version (4) and variant (RFC 4122) bits.
pub const fn uuid_v4_bits(v: u128) -> u128 {
    (v & !(0xf << 76) & !(0x3 << 62)) | (0x4 << 76) | (0x2 << 62)
}

/// SplitMix64: a small, fast bijective mixer, used to turn a counter into random-looking ids.
pub const fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A deterministic id source for tests and simulations: SplitMix64 over a counter.
#[derive(Debug, Default)]
pub struct SeededIds {
    state: core::sync::atomic::AtomicUsize,
}

impl SeededIds {
    /// Starts the sequence at `seed`.
    pub const fn new(seed: u64) -> Self {
        Self {
            // `usize` atomics exist on every target with atomics (64-bit ones do not).
            state: core::sync::atomic::AtomicUsize::new(seed as usize),
        }
    }
}

impl IdGenerator for SeededIds {
    fn next_u128(&self) -> u128 {
        let n = self.state.fetch_add(2, core::sync::atomic::Ordering::Relaxed) as u64;
        (u128::from(splitmix64(n)) << 64) | u128::from(splitmix64(n.wrapping_add(1)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    /// A digit at a time, from the table: what the register-wide [`hex8`] must equal.
    fn uuid_by_table(v: u128) -> Vec<u8> {
        let mut out = Vec::new();
        for (i, b) in v.to_be_bytes().into_iter().enumerate() {
            if matches!(i, 4 | 6 | 8 | 10) {
                out.push(b'-');
            }
            out.push(HEX[usize::from(b >> 4)]);
            out.push(HEX[usize::from(b & 0xf)]);
        }
        out
    }

    #[test]
    fn uuid_text_matches_the_table_for_every_digit_in_every_place() {
        let mut values = alloc::vec![0u128, u128::MAX, 0x0123_4567_89ab_cdef_fedc_ba98_7654_3210];
        // Each of the 16 digits in each of the 32 places.
        for place in 0..32 {
            for digit in 0..16u128 {
                values.push(digit << (4 * place));
            }
        }
        let mut x = 0x9e37_79b9_7f4a_7c15_u128;
        for _ in 0..1000 {
            x = x
                .wrapping_mul(0x2545_f491_4f6c_dd1d_0000_0000_0000_0001)
                .wrapping_add(0x9e37);
            values.push(x);
        }
        for v in values {
            let want = uuid_by_table(v);
            assert_eq!(uuid_ascii(v).as_slice(), want.as_slice(), "{v:#x}");
            let mut out = b"prefix".to_vec();
            push_uuid(&mut out, v);
            assert_eq!(&out[6..], want.as_slice(), "{v:#x}");
            out.clear();
            push_uuid_with_head(&mut out, &uuid_head((v >> 64) as u64), v as u64);
            assert_eq!(out, want, "{v:#x}");
        }
    }

    #[test]
    fn uuid_forms_parse_and_print_hyphenated() {
        let a: EventId = "a0000000-0000-4000-8000-00000000000a".parse().unwrap();
        let b: EventId = "a000000000004000800000000000000a".parse().unwrap();
        assert_eq!(a, b);
        assert_eq!(a.to_string(), "a0000000-0000-4000-8000-00000000000a");
        assert_eq!(
            "4bf92f35-77b3-4da6-a3ce-929d0e0e4736"
                .parse::<TraceId>()
                .unwrap()
                .w3c_hex()
                .to_string(),
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert!("not-a-uuid".parse::<EventId>().is_err());
        assert!("a0000000-0000-4000-8000-00000000000g".parse::<EventId>().is_err());
        assert!("a0000000x0000-4000-8000-00000000000a".parse::<EventId>().is_err());
    }

    #[test]
    fn span_ids_are_strict() {
        assert_eq!(
            "00f067aa0ba902b7".parse::<SpanId>().unwrap().to_string(),
            "00f067aa0ba902b7"
        );
        assert_eq!("0000000000000000".parse::<SpanId>(), Err(IdError::Zero));
        assert_eq!("00F067AA0BA902B7".parse::<SpanId>(), Err(IdError::Character));
        assert_eq!("00f067aa0ba902b".parse::<SpanId>(), Err(IdError::Length));
        assert!(TraceId::from_w3c_hex("00000000000000000000000000000000").is_err());
    }

    #[test]
    fn generated_ids_are_v4_and_distinct() {
        let g = SeededIds::new(7);
        let a = g.event_id();
        let b = g.event_id();
        assert_ne!(a, b);
        let s = a.to_string();
        assert_eq!(&s[14..15], "4");
        assert!(matches!(&s[19..20], "8" | "9" | "a" | "b"));
    }
}

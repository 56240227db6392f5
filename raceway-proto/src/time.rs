//! Time as the core sees it: passed in, never read.
//!
//! Two kinds of time exist. [`Timestamp`] is wall-clock time stamped on events (RFC 3339 on
//! the wire, microsecond precision). [`Instant`] is monotonic time for the export state
//! machine's deadlines (nanoseconds from an origin the caller chooses).

use core::fmt;
use core::str::FromStr;
use core::time::Duration;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Wall-clock time of an event: microseconds since the Unix epoch (UTC).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp(u64);

impl Timestamp {
    /// From microseconds since the Unix epoch.
    pub const fn from_unix_micros(us: u64) -> Self {
        Self(us)
    }
    /// Microseconds since the Unix epoch.
    pub const fn unix_micros(self) -> u64 {
        self.0
    }
}

/// Why a string is not an RFC 3339 timestamp this crate accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct TimestampError;

impl fmt::Display for TimestampError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("timestamp is not an RFC 3339 date-time at or after 1970")
    }
}

impl core::error::Error for TimestampError {}

// Howard Hinnant's days-from-civil and civil-from-days, proleptic Gregorian calendar.
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = i64::from((m + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

impl Timestamp {
    /// The 27 ASCII bytes `YYYY-MM-DDTHH:MM:SS.ffffffZ` (what `Display` writes, and what
    /// the wire encoder copies without going through `fmt`). Times past the last
    /// microsecond of 9999, which RFC 3339 cannot write and no wall clock reaches, are
    /// written as that microsecond.
    pub(crate) fn rfc3339_ascii(self) -> [u8; 27] {
        /// 9999-12-31T23:59:59.999999Z.
        const LAST: u64 = 253_402_300_799_999_999;
        fn put(out: &mut [u8], v: u64) {
            let mut v = v;
            for b in out.iter_mut().rev() {
                *b = b'0' + (v % 10) as u8;
                v /= 10;
            }
        }
        let t = self.0.min(LAST);
        let secs = t / 1_000_000;
        let micros = t % 1_000_000;
        let days = (secs / 86_400) as i64;
        let sod = secs % 86_400;
        let (y, m, d) = civil_from_days(days);
        let mut out = *b"0000-00-00T00:00:00.000000Z";
        put(&mut out[0..4], y.unsigned_abs() % 10_000);
        put(&mut out[5..7], u64::from(m));
        put(&mut out[8..10], u64::from(d));
        put(&mut out[11..13], sod / 3600);
        put(&mut out[14..16], (sod / 60) % 60);
        put(&mut out[17..19], sod % 60);
        put(&mut out[20..26], micros);
        out
    }
}

impl fmt::Display for Timestamp {
    /// `YYYY-MM-DDTHH:MM:SS.ffffffZ`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let buf = self.rfc3339_ascii();
        f.write_str(core::str::from_utf8(&buf).map_err(|_| fmt::Error)?)
    }
}

impl fmt::Debug for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Timestamp({self})")
    }
}

fn digits(s: &[u8]) -> Result<u32, TimestampError> {
    let mut v = 0u32;
    for &b in s {
        if !b.is_ascii_digit() {
            return Err(TimestampError);
        }
        v = v * 10 + u32::from(b - b'0');
    }
    Ok(v)
}

impl FromStr for Timestamp {
    type Err = TimestampError;
    /// RFC 3339 with `Z` or a numeric offset and any number of fractional digits
    /// (digits past microseconds are truncated).
    fn from_str(s: &str) -> Result<Self, TimestampError> {
        let b = s.as_bytes();
        if b.len() < 20 || b.len() > 64 {
            return Err(TimestampError);
        }
        if b[4] != b'-'
            || b[7] != b'-'
            || !matches!(b[10], b'T' | b't' | b' ')
            || b[13] != b':'
            || b[16] != b':'
        {
            return Err(TimestampError);
        }
        let (y, mo, d) = (digits(&b[0..4])?, digits(&b[5..7])?, digits(&b[8..10])?);
        let (h, mi, se) = (digits(&b[11..13])?, digits(&b[14..16])?, digits(&b[17..19])?);
        if !(1..=12).contains(&mo) || d == 0 || d > 31 || h > 23 || mi > 59 || se > 60 || y < 1970 {
            return Err(TimestampError);
        }
        let mut i = 19;
        let mut micros = 0u64;
        if b[i] == b'.' {
            i += 1;
            let start = i;
            while i < b.len() && b[i].is_ascii_digit() {
                if i - start < 6 {
                    micros = micros * 10 + u64::from(b[i] - b'0');
                }
                i += 1;
            }
            let n = i - start;
            if n == 0 {
                return Err(TimestampError);
            }
            for _ in n..6 {
                micros *= 10;
            }
        }
        let offset_secs: i64 = match b.get(i..) {
            Some([b'Z' | b'z']) => 0,
            Some([sign @ (b'+' | b'-'), h1, h2, b':', m1, m2]) => {
                let oh = i64::from(digits(&[*h1, *h2])?);
                let om = i64::from(digits(&[*m1, *m2])?);
                if oh > 23 || om > 59 {
                    return Err(TimestampError);
                }
                let v = oh * 3600 + om * 60;
                if *sign == b'+' {
                    v
                } else {
                    -v
                }
            }
            _ => return Err(TimestampError),
        };
        let days = days_from_civil(i64::from(y), mo, d);
        let (cy, cm, cd) = civil_from_days(days);
        if (cy, cm, cd) != (i64::from(y), mo, d) {
            return Err(TimestampError); // e.g. February 30th
        }
        let secs =
            days * 86_400 + i64::from(h) * 3600 + i64::from(mi) * 60 + i64::from(se.min(59)) - offset_secs;
        if secs < 0 {
            return Err(TimestampError);
        }
        Ok(Timestamp(secs as u64 * 1_000_000 + micros))
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = alloc::string::String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Monotonic time for deadlines: nanoseconds since an origin the caller picks.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Debug)]
pub struct Instant(u64);

impl Instant {
    /// The origin.
    pub const ZERO: Instant = Instant(0);
    /// From nanoseconds since the caller's origin.
    pub const fn from_nanos(n: u64) -> Self {
        Self(n)
    }
    /// Nanoseconds since the caller's origin.
    pub const fn as_nanos(self) -> u64 {
        self.0
    }
    /// `self + d`, saturating.
    pub fn saturating_add(self, d: Duration) -> Self {
        Self(
            self.0
                .saturating_add(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)),
        )
    }
    /// Time from `earlier` to `self`, zero if `earlier` is later.
    pub fn saturating_duration_since(self, earlier: Instant) -> Duration {
        Duration::from_nanos(self.0.saturating_sub(earlier.0))
    }
}

/// A source of wall-clock time for event timestamps.
pub trait WallClock: Send + Sync {
    /// Now, as a Unix timestamp.
    fn now(&self) -> Timestamp;
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    #[test]
    fn formats_and_parses_fixture_timestamps() {
        let t: Timestamp = "2026-11-29T08:00:00.000016Z".parse().unwrap();
        assert_eq!(t.to_string(), "2026-11-29T08:00:00.000016Z");
        let u: Timestamp = "2026-11-29T09:00:00.000016+01:00".parse().unwrap();
        assert_eq!(t, u);
        assert_eq!(
            "1970-01-01T00:00:00Z".parse::<Timestamp>().unwrap().unix_micros(),
            0
        );
        assert!("2026-02-30T00:00:00Z".parse::<Timestamp>().is_err());
        assert!("yesterday".parse::<Timestamp>().is_err());
        assert!("2026-11-29 08:00:00".parse::<Timestamp>().is_err());
    }

    #[test]
    fn leap_years_and_far_dates_round_trip() {
        for s in [
            "2024-02-29T23:59:59.999999Z",
            "2100-03-01T00:00:00.000000Z",
            "1999-12-31T12:34:56.000001Z",
        ] {
            assert_eq!(s.parse::<Timestamp>().unwrap().to_string(), s);
        }
        let last = "9999-12-31T23:59:59.999999Z";
        assert_eq!(last.parse::<Timestamp>().unwrap().to_string(), last);
        assert_eq!(Timestamp::from_unix_micros(u64::MAX).to_string(), last);
    }
}

//! Which traces are recorded: the sampler, with OpenTelemetry's semantics.
//!
//! A trace is recorded whole or not at all. The decision is taken once, where the trace
//! starts (a new root flow, or a request whose caller sent no usable sampling decision),
//! and every flow of the trace inherits it: spawned tasks and threads, joins, and the
//! services it calls, through the W3C `traceparent` sampled flag. The default,
//! [`Sampler::default`], is parent-based, always on for new traces: an incoming
//! `traceparent` with the sampled flag cleared (`-00`) is not recorded, and neither is
//! anything it calls.
//!
//! The ratio sampler decides from the trace id alone: its rightmost 7 bytes (56 bits), which
//! W3C Trace Context Level 2 requires to be random and which are random in a v4 UUID too
//! (Raceway's trace ids), are compared with `ratio × 2^56`. Every service using the same
//! ratio takes the same decision for the same trace. (OpenTelemetry's older
//! `TraceIdRatioBased` reads 63 bits instead; UUIDs fix two of them, which would bias it.)
//!
//! An unsampled flow records nothing and costs a flag check per `track_*` call. It still
//! propagates: its outgoing `traceparent` carries the trace id with the sampled flag
//! cleared, and no `raceway-clock`.

use core::fmt;

use crate::ids::TraceId;

/// The decision for traces that start here.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Root {
    AlwaysOn,
    AlwaysOff,
    /// Sampled when the trace id's 56 random bits fall below this bound (`ratio × 2^56`).
    Ratio {
        ratio: f64,
        bound: u64,
    },
}

/// Decides which traces are recorded (see the [module docs](self)).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sampler {
    root: Root,
    parent_based: bool,
}

impl Default for Sampler {
    /// Parent-based, always on: OpenTelemetry's default.
    fn default() -> Self {
        Self::always_on().parent_based()
    }
}

impl Sampler {
    /// Every new trace is recorded.
    pub const fn always_on() -> Self {
        Self {
            root: Root::AlwaysOn,
            parent_based: false,
        }
    }

    /// No new trace is recorded.
    pub const fn always_off() -> Self {
        Self {
            root: Root::AlwaysOff,
            parent_based: false,
        }
    }

    /// A share `ratio` of new traces (clamped to `0.0..=1.0`; not a number means 0),
    /// chosen by trace id.
    pub fn ratio(ratio: f64) -> Self {
        let ratio = if ratio.is_nan() {
            0.0
        } else {
            ratio.clamp(0.0, 1.0)
        };
        let root = if ratio >= 1.0 {
            Root::AlwaysOn
        } else if ratio <= 0.0 {
            Root::AlwaysOff
        } else {
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let bound = (ratio * (1u64 << 56) as f64) as u64;
            Root::Ratio { ratio, bound }
        };
        Self {
            root,
            parent_based: false,
        }
    }

    /// The same for new traces, but a caller's decision (the `traceparent` sampled flag)
    /// wins when there is one.
    pub const fn parent_based(mut self) -> Self {
        self.parent_based = true;
        self
    }

    /// True when a caller's decision wins over this sampler's.
    pub const fn is_parent_based(&self) -> bool {
        self.parent_based
    }

    /// The share of new traces recorded (1.0 always on, 0.0 always off).
    pub const fn root_ratio(&self) -> f64 {
        match self.root {
            Root::AlwaysOn => 1.0,
            Root::AlwaysOff => 0.0,
            Root::Ratio { ratio, .. } => ratio,
        }
    }

    /// Whether a trace that starts here is recorded.
    pub fn sample_root(&self, trace_id: TraceId) -> bool {
        match self.root {
            Root::AlwaysOn => true,
            Root::AlwaysOff => false,
            Root::Ratio { bound, .. } => {
                #[allow(clippy::cast_possible_truncation)]
                let random = (trace_id.as_u128() as u64) & ((1 << 56) - 1);
                random < bound
            }
        }
    }

    /// Whether a trace continued from a caller is recorded here: the caller's sampled flag
    /// (`None`: the caller sent none) when parent-based, else this sampler's own decision.
    pub fn sample(&self, parent_sampled: Option<bool>, trace_id: TraceId) -> bool {
        match parent_sampled {
            Some(decision) if self.parent_based => decision,
            _ => self.sample_root(trace_id),
        }
    }

    /// The sampler that OpenTelemetry's `OTEL_TRACES_SAMPLER` and `OTEL_TRACES_SAMPLER_ARG`
    /// name: `always_on`, `always_off`, `traceidratio`, `parentbased_always_on`,
    /// `parentbased_always_off` or `parentbased_traceidratio`; the argument is the ratio of
    /// the two ratio samplers (1.0 when absent, as OpenTelemetry specifies).
    pub fn from_otel(name: &str, arg: Option<&str>) -> Result<Self, SamplerError> {
        let ratio = || match arg.map(str::trim) {
            None | Some("") => Ok(1.0),
            Some(a) => parse_ratio(a),
        };
        Ok(match name.trim() {
            "always_on" => Self::always_on(),
            "always_off" => Self::always_off(),
            "traceidratio" => Self::ratio(ratio()?),
            "parentbased_always_on" => Self::always_on().parent_based(),
            "parentbased_always_off" => Self::always_off().parent_based(),
            "parentbased_traceidratio" => Self::ratio(ratio()?).parent_based(),
            _ => return Err(SamplerError::UnknownSampler),
        })
    }
}

/// A ratio written as a decimal number from 0 to 1.
pub fn parse_ratio(s: &str) -> Result<f64, SamplerError> {
    match s.trim().parse::<f64>() {
        Ok(r) if (0.0..=1.0).contains(&r) => Ok(r),
        _ => Err(SamplerError::InvalidRatio),
    }
}

/// Why a sampler setting cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SamplerError {
    /// Not one of OpenTelemetry's sampler names this SDK knows.
    UnknownSampler,
    /// Not a number from 0 to 1.
    InvalidRatio,
}

impl fmt::Display for SamplerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::UnknownSampler => "an unknown sampler name",
            Self::InvalidRatio => "a ratio that is not a number from 0 to 1",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trace(low: u64) -> TraceId {
        TraceId::from_u128((0xabcd_u128 << 64) | u128::from(low))
    }

    #[test]
    fn the_ratio_decides_by_the_trace_ids_low_bits() {
        let s = Sampler::ratio(0.25);
        assert!(s.sample_root(trace(0)));
        assert!(
            s.sample_root(trace((1 << 54) - 1)),
            "just below a quarter of 2^56"
        );
        assert!(!s.sample_root(trace(1 << 54)));
        assert!(!s.sample_root(trace(u64::MAX)));
        assert!(
            s.sample_root(trace(0xff00_0000_0000_0000)),
            "the top byte is not read"
        );
        let sampled = (0..10_000u64)
            .filter(|i| s.sample_root(trace(i.wrapping_mul(0x9e37_79b9_7f4a_7c15))))
            .count();
        assert!((2_300..2_700).contains(&sampled), "{sampled} of 10,000");
    }

    #[test]
    fn parent_based_follows_the_caller_and_decides_alone_without_one() {
        let s = Sampler::always_off().parent_based();
        assert!(s.sample(Some(true), trace(1)));
        assert!(!s.sample(None, trace(1)));
        let s = Sampler::default();
        assert!(!s.sample(Some(false), trace(1)));
        assert!(s.sample(None, trace(1)));
        assert!(
            Sampler::always_on().sample(Some(false), trace(1)),
            "not parent-based"
        );
    }

    #[test]
    fn otel_names_and_bad_values() {
        assert_eq!(
            Sampler::from_otel("parentbased_traceidratio", Some("0.5")),
            Ok(Sampler::ratio(0.5).parent_based())
        );
        assert_eq!(Sampler::from_otel("traceidratio", None), Ok(Sampler::always_on()));
        assert_eq!(
            Sampler::from_otel("jaeger_remote", None),
            Err(SamplerError::UnknownSampler)
        );
        assert_eq!(
            Sampler::from_otel("traceidratio", Some("2")),
            Err(SamplerError::InvalidRatio)
        );
        assert_eq!(Sampler::ratio(f64::NAN), Sampler::always_off());
        assert_eq!(Sampler::ratio(7.0), Sampler::always_on());
    }
}

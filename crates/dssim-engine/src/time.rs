//! Simulated time: an integer count of nanoseconds, and the duration grammar users type.

use std::fmt;
use std::ops::{Add, AddAssign, Sub};

/// A point in simulated time (or a span of it), in integer nanoseconds.
///
/// There is no floating-point clock anywhere in a run: sums of durations are exact,
/// so event order never depends on rounding.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SimTime(pub u64);

impl SimTime {
    /// Time zero, the start of every run.
    pub const ZERO: SimTime = SimTime(0);
    /// The far future: a timer that never fires.
    pub const MAX: SimTime = SimTime(u64::MAX);

    /// A non-negative real number of nanoseconds, rounded half away from zero as
    /// `f64::round` does (negative and NaN give zero, huge values saturate), without the
    /// libm call `round` costs on baseline x86-64: distributions sample through it.
    ///
    /// Tried on Dec 7 and not kept: the bare truncating conversion (`_mm_cvttsd_si64`)
    /// instead of `x as i64`, whose saturation costs 6 instructions a call for values the
    /// branch has ruled out (about 10 M of the production run's 1,089 M at 20 s): the
    /// intrinsic needs `unsafe`, as would `to_int_unchecked`.
    ///
    /// Below 2^52 (every latency and service time a model draws), adding 2^52 rounds `x` to
    /// the nearest integer, ties to even, in the mantissa of the sum, whose bits less those
    /// of 2^52 are that integer (2^53's bits too, when `x` rounds up to 2^52); a tie rounded
    /// down (`x` 0.5 above it, the one case the difference reaches 0.5, exactly) goes up, as
    /// `round` goes away from zero. One unsigned compare of the bits admits exactly
    /// `+0.0 <= x < 2^52` (negatives, NaN and larger values fail it and take the path
    /// below). 13 instructions where the truncating conversion, whose saturation the branch
    /// does not remove, took 17: production 20 s 948.1 -> 941.8 M instructions (outputs
    /// byte-identical).
    #[inline]
    pub fn from_nanos_f64(x: f64) -> Self {
        if x.to_bits() < Self::TWO_52.to_bits() {
            return Self::from_small_nanos_f64(x);
        }
        if x < 9.2e18 {
            // Below 2^63 the signed conversions give the same values as the unsigned ones
            // further down, in one instruction each (u64 <-> f64 takes several on x86-64).
            // Negatives round to 0 or below and clamp to 0, as `as u64` saturates them.
            let i = x as i64;
            let r = if x - i as f64 >= 0.5 { i + 1 } else { i };
            return SimTime(r.max(0) as u64);
        }
        if x >= 1.8e19 {
            return SimTime::MAX;
        }
        // `as` truncates (and saturates NaN to 0). Below 2^53 the fraction x - trunc(x) is
        // exact; above, x is already a whole number and the fraction is 0.
        let i = x as u64;
        SimTime(if x - i as f64 >= 0.5 { i + 1 } else { i })
    }

    /// 2^52 as a float: below it, [`Self::from_small_nanos_f64`] converts.
    pub const TWO_52: f64 = 4_503_599_627_370_496.0;

    /// [`Self::from_nanos_f64`] for an `x` known to be in `+0.0 <= x < 2^52` (checked in
    /// debug builds only): its first branch, without the test. The network's one-region
    /// uniform latency ([`crate::Network::transit`]), whose every draw is in that range
    /// when its bounds are ([`crate::dist::Dist::small_uniform`]), converts through it:
    /// production 20 s (834,672 messages) 875.0 -> 872.9 M instructions (4 fewer a
    /// message than the test and the branch, less register shuffling); 120 s CPU 0.74 ->
    /// 0.73 s median of 6 interleaved rounds (within noise); M/M/1 250 s, which never
    /// draws a latency, 286.9 -> 287.3 M (register allocation in `Client::send_new`,
    /// +2 a customer); outputs byte-identical.
    #[inline(always)]
    pub fn from_small_nanos_f64(x: f64) -> Self {
        debug_assert!(x.to_bits() < Self::TWO_52.to_bits());
        let y = x + Self::TWO_52;
        let n = y.to_bits() - Self::TWO_52.to_bits();
        SimTime(n + u64::from(x - (y - Self::TWO_52) >= 0.5))
    }

    /// Nanoseconds.
    pub const fn from_nanos(ns: u64) -> Self {
        SimTime(ns)
    }
    /// Microseconds.
    pub const fn from_micros(us: u64) -> Self {
        SimTime(us * 1_000)
    }
    /// Milliseconds.
    pub const fn from_millis(ms: u64) -> Self {
        SimTime(ms * 1_000_000)
    }
    /// Whole seconds.
    pub const fn from_secs(s: u64) -> Self {
        SimTime(s * 1_000_000_000)
    }
    /// Seconds as a float, rounded to the nearest nanosecond (negative and NaN give zero).
    pub fn from_secs_f64(s: f64) -> Self {
        if s.is_nan() || s <= 0.0 {
            SimTime(0)
        } else if s >= u64::MAX as f64 / 1e9 {
            SimTime::MAX
        } else {
            SimTime((s * 1e9).round() as u64)
        }
    }
    /// Nanoseconds.
    pub const fn as_nanos(self) -> u64 {
        self.0
    }
    /// Seconds as a float (for reporting only).
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / 1e9
    }
    /// Milliseconds as a float (for reporting only).
    pub fn as_millis_f64(self) -> f64 {
        self.0 as f64 / 1e6
    }
    /// `self + d`, saturating at [`SimTime::MAX`].
    pub fn saturating_add(self, d: SimTime) -> SimTime {
        SimTime(self.0.saturating_add(d.0))
    }
    /// `self - d`, saturating at zero.
    pub fn saturating_sub(self, d: SimTime) -> SimTime {
        SimTime(self.0.saturating_sub(d.0))
    }
}

impl Add for SimTime {
    type Output = SimTime;
    fn add(self, rhs: SimTime) -> SimTime {
        self.saturating_add(rhs)
    }
}

impl AddAssign for SimTime {
    fn add_assign(&mut self, rhs: SimTime) {
        *self = self.saturating_add(rhs);
    }
}

impl Sub for SimTime {
    type Output = SimTime;
    fn sub(self, rhs: SimTime) -> SimTime {
        self.saturating_sub(rhs)
    }
}

impl fmt::Display for SimTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ns = self.0;
        let units: [(u64, &str); 6] = [
            (3_600_000_000_000, "h"),
            (60_000_000_000, "m"),
            (1_000_000_000, "s"),
            (1_000_000, "ms"),
            (1_000, "us"),
            (1, "ns"),
        ];
        if ns == 0 {
            return write!(f, "0s");
        }
        for (size, unit) in units {
            if ns.is_multiple_of(size) {
                return write!(f, "{}{}", ns / size, unit);
            }
        }
        write!(f, "{ns}ns")
    }
}

/// Why a duration string did not parse.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DurationError {
    /// The text had no number in front.
    #[error(
        "expected a duration such as \"250us\", \"5ms\", \"2s\", \"10m\" or \"24h\", found {0:?}"
    )]
    Syntax(String),
    /// The unit is not one we know.
    #[error("unknown time unit {unit:?} in {text:?}: use ns, us, ms, s, m, h or d")]
    Unit {
        /// The unit as written.
        unit: String,
        /// The whole text.
        text: String,
    },
    /// Negative, NaN or too large.
    #[error("duration {0:?} is out of range (must be finite and not negative)")]
    Range(String),
}

/// Parses `"250us"`, `"5ms"`, `"2s"`, `"1.5s"`, `"10m"`, `"24h"`, `"2d"` into [`SimTime`].
/// A bare `0` is accepted as zero; any other bare number is an error (a unit is required).
pub fn parse_duration(text: &str) -> Result<SimTime, DurationError> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-' || c == '+'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let unit = unit.trim();
    if num.is_empty() {
        return Err(DurationError::Syntax(text.to_string()));
    }
    let value: f64 = num
        .parse()
        .map_err(|_| DurationError::Syntax(text.to_string()))?;
    if !value.is_finite() || value < 0.0 {
        return Err(DurationError::Range(text.to_string()));
    }
    let scale = match unit {
        "ns" => 1.0,
        "us" | "µs" => 1e3,
        "ms" => 1e6,
        "s" => 1e9,
        "m" | "min" => 60e9,
        "h" => 3600e9,
        "d" => 86400e9,
        "" if value == 0.0 => 1.0,
        "" => return Err(DurationError::Syntax(text.to_string())),
        other => {
            return Err(DurationError::Unit {
                unit: other.to_string(),
                text: text.to_string(),
            })
        }
    };
    let ns = value * scale;
    if ns > 1e19 {
        return Err(DurationError::Range(text.to_string()));
    }
    Ok(SimTime(ns.round() as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_nanos_f64_rounds_like_f64_round() {
        let xs = [
            0.0,
            0.49999999999999994,
            0.5,
            1.5,
            2.5,
            2.4999999,
            1e6 + 0.5,
            4503599627370495.5,
            9007199254740993.0,
            1.7e19,
            -0.3,
            -0.7,
            f64::NAN,
        ];
        for x in xs {
            let want = if x.is_nan() { 0 } else { x.round() as u64 };
            assert_eq!(SimTime::from_nanos_f64(x).0, want, "x = {x}");
        }
        assert_eq!(SimTime::from_nanos_f64(1e30), SimTime::MAX);
        // Both paths, against `round`, over many magnitudes, ties and near-ties.
        let mut r = crate::rng::stream(5, "round");
        for _ in 0..200_000 {
            use rand::Rng as _;
            let e = r.random_range(-3..56);
            let base = r.random::<f64>() * 2f64.powi(e);
            for x in [base, base.trunc() + 0.5, base.floor() - 0.5, -base] {
                let want = x.round().max(0.0) as u64;
                assert_eq!(SimTime::from_nanos_f64(x).0, want, "x = {x}");
            }
        }
        for x in [
            4503599627370496.0,
            4503599627370495.0,
            4503599627370495.75,
            -0.0,
        ] {
            assert_eq!(
                SimTime::from_nanos_f64(x).0,
                x.round().max(0.0) as u64,
                "x = {x}"
            );
        }
    }

    #[test]
    fn parses_units() {
        assert_eq!(parse_duration("250us").unwrap(), SimTime::from_micros(250));
        assert_eq!(parse_duration("5ms").unwrap(), SimTime::from_millis(5));
        assert_eq!(parse_duration("1.5s").unwrap(), SimTime::from_millis(1500));
        assert_eq!(parse_duration("10m").unwrap(), SimTime::from_secs(600));
        assert_eq!(parse_duration("24h").unwrap(), SimTime::from_secs(86400));
        assert_eq!(parse_duration("0").unwrap(), SimTime::ZERO);
        assert!(parse_duration("5").is_err());
        assert!(parse_duration("5parsecs").is_err());
        assert!(parse_duration("-5ms").is_err());
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn displays_round_units() {
        assert_eq!(SimTime::from_millis(5).to_string(), "5ms");
        assert_eq!(SimTime::from_secs(120).to_string(), "2m");
        assert_eq!(SimTime(1500).to_string(), "1500ns");
    }
}

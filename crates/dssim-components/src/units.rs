//! Value types of model files: durations and distributions written as strings.
//! They deserialize with messages that say what was expected, and serialize back to the
//! same text (the manifest records every run's fully expanded configuration).

use std::fmt;
use std::marker::PhantomData;

use dssim_engine::{parse_duration, Dist, SimTime};
use serde::de::{self, Deserializer, Unexpected, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// A value written as text in model files. One visitor ([`TextVisitor`]) deserializes every
/// such type, with the type's own messages, and serializes it back to the same text.
trait TextValue: Sized {
    /// What the value looks like, for serde's "invalid type" messages.
    const EXPECTING: &'static str;
    /// The value from its text.
    fn parse(text: &str) -> Result<Self, String>;
    /// A bare integer: `None` where the type takes none (serde's "invalid type" message).
    fn from_i64(_v: i64) -> Option<Result<Self, String>> {
        None
    }
    /// A bare unsigned integer; by default as [`TextValue::from_i64`] (clamped).
    fn from_u64(v: u64) -> Option<Result<Self, String>> {
        Self::from_i64(v.min(i64::MAX as u64) as i64)
    }
    /// A bare float: `None` where the type takes none.
    fn from_f64(_v: f64) -> Option<Result<Self, String>> {
        None
    }
    /// The text it serializes to.
    fn to_text(&self) -> String;
}

struct TextVisitor<T>(PhantomData<T>);

impl<T: TextValue> Visitor<'_> for TextVisitor<T> {
    type Value = T;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(T::EXPECTING)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
        T::parse(v).map_err(E::custom)
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<T, E> {
        match T::from_i64(v) {
            Some(r) => r.map_err(E::custom),
            None => Err(E::invalid_type(Unexpected::Signed(v), &self)),
        }
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<T, E> {
        match T::from_u64(v) {
            Some(r) => r.map_err(E::custom),
            None => Err(E::invalid_type(Unexpected::Unsigned(v), &self)),
        }
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<T, E> {
        match T::from_f64(v) {
            Some(r) => r.map_err(E::custom),
            None => Err(E::invalid_type(Unexpected::Float(v), &self)),
        }
    }
}

/// `Deserialize` and `Serialize` through [`TextValue`].
macro_rules! text_value {
    ($($t:ty),*) => {$(
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                d.deserialize_any(TextVisitor(PhantomData))
            }
        }
        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.to_text())
            }
        }
    )*};
}

/// A duration such as `"5ms"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Dur(pub SimTime);

impl TextValue for Dur {
    const EXPECTING: &'static str = "a duration string such as \"5ms\", \"2s\" or \"10m\"";
    fn parse(text: &str) -> Result<Self, String> {
        parse_duration(text).map(Dur).map_err(|e| e.to_string())
    }
    fn from_i64(v: i64) -> Option<Result<Self, String>> {
        Some(if v == 0 {
            Ok(Dur(SimTime::ZERO))
        } else {
            Err(format!(
                "a duration needs a unit: write \"{v}ms\" or \"{v}s\", not {v}"
            ))
        })
    }
    fn from_f64(v: f64) -> Option<Result<Self, String>> {
        Some(Err(format!(
            "a duration needs a unit: write \"{v}ms\" or \"{v}s\", not {v}"
        )))
    }
    fn to_text(&self) -> String {
        self.0.to_string()
    }
}

/// A distribution such as `"exp(5ms)"` (see [`dssim_engine::dist`]).
#[derive(Clone, Debug, PartialEq)]
pub struct DistSpec(pub Dist);

/// A distribution's parse error, with "did you mean" for a misspelt name.
fn with_hint(e: dssim_engine::DistError) -> String {
    let Some(name) = &e.unknown_name else {
        return e.message;
    };
    let names = dssim_engine::dist::DIST_NAMES;
    let hint = crate::did_you_mean(name, names.iter().copied())
        .map(|s| format!(" (did you mean {s:?}?)"))
        .unwrap_or_default();
    format!(
        "unknown distribution {name:?}{hint}; expected one of {}",
        names.join(", ")
    )
}

impl TextValue for DistSpec {
    const EXPECTING: &'static str =
        "a distribution such as \"exp(5ms)\" or a duration such as \"5ms\"";
    fn parse(text: &str) -> Result<Self, String> {
        Dist::parse(text).map(DistSpec).map_err(with_hint)
    }
    fn from_i64(v: i64) -> Option<Result<Self, String>> {
        Some(Err(format!(
            "a distribution needs units: write \"exp({v}ms)\" or \"{v}ms\", not {v}"
        )))
    }
    fn from_f64(v: f64) -> Option<Result<Self, String>> {
        Some(Err(format!(
            "a distribution needs units: write \"exp({v}ms)\" or \"{v}ms\", not {v}"
        )))
    }
    fn to_text(&self) -> String {
        self.0.to_string()
    }
}

/// A number that must be finite and not negative (rates, ratios).
pub fn check_non_negative(path: &str, v: f64) -> Result<(), crate::ConfigError> {
    if v.is_finite() && v >= 0.0 {
        Ok(())
    } else {
        Err(crate::ConfigError::new(
            path,
            format!("must be a finite number, zero or more; found {v}"),
        ))
    }
}

/// A probability in [0, 1].
pub fn check_ratio(path: &str, v: f64) -> Result<(), crate::ConfigError> {
    if (0.0..=1.0).contains(&v) {
        Ok(())
    } else {
        Err(crate::ConfigError::new(
            path,
            format!("must be a ratio between 0 and 1; found {v}"),
        ))
    }
}

/// Splits `text` into its leading number and its unit (trimmed); `what` and `example` word
/// the message when it does not start with a number.
fn number_and_unit<'a>(text: &'a str, what: &str, example: &str) -> Result<(f64, &'a str), String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let v: f64 = num.parse().map_err(|_| {
        format!("{text:?} is not a {what}: write a number and a unit, such as {example}")
    })?;
    Ok((v, unit.trim()))
}

/// A size in bytes such as `"8GiB"`, `"512MB"` or `"2KB"` (KB = 1000 bytes, KiB = 1024);
/// a bare integer is a count of bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Bytes(pub u64);

/// Parses a size: a number and a unit among B, KB, MB, GB, TB, KiB, MiB, GiB, TiB.
pub fn parse_bytes(text: &str) -> Result<u64, String> {
    let (v, unit) = number_and_unit(text, "size", "\"2KB\" or \"8GiB\"")?;
    let mult = match unit {
        "" | "B" => 1.0,
        "KB" | "kB" => 1e3,
        "MB" => 1e6,
        "GB" => 1e9,
        "TB" => 1e12,
        "KiB" => 1024.0,
        "MiB" => 1024.0 * 1024.0,
        "GiB" => 1024.0 * 1024.0 * 1024.0,
        "TiB" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        u => {
            return Err(format!(
                "unknown size unit {u:?} in {text:?}: use B, KB, MB, GB, TB, KiB, MiB, GiB or TiB"
            ))
        }
    };
    let b = v * mult;
    if !b.is_finite() || b < 0.0 || b > u64::MAX as f64 {
        return Err(format!("{text:?} is out of range"));
    }
    Ok(b.round() as u64)
}

fn fmt_bytes(b: u64) -> String {
    const UNITS: [(&str, u64); 4] = [
        ("GiB", 1 << 30),
        ("MiB", 1 << 20),
        ("KiB", 1 << 10),
        ("GB", 1_000_000_000),
    ];
    for (u, m) in UNITS {
        if b >= m && b.is_multiple_of(m) {
            return format!("{}{u}", b / m);
        }
    }
    for (u, m) in [("MB", 1_000_000u64), ("KB", 1_000)] {
        if b >= m && b.is_multiple_of(m) {
            return format!("{}{u}", b / m);
        }
    }
    format!("{b}B")
}

impl TextValue for Bytes {
    const EXPECTING: &'static str = "a size such as \"2KB\" or \"8GiB\"";
    fn parse(text: &str) -> Result<Self, String> {
        parse_bytes(text).map(Bytes)
    }
    fn from_i64(v: i64) -> Option<Result<Self, String>> {
        Some(
            u64::try_from(v)
                .map(Bytes)
                .map_err(|_| "a size cannot be negative".to_string()),
        )
    }
    fn from_u64(v: u64) -> Option<Result<Self, String>> {
        Some(Ok(Bytes(v)))
    }
    fn to_text(&self) -> String {
        fmt_bytes(self.0)
    }
}

/// A link speed such as `"1Gbps"`, `"100Mbps"` (bits per second).
#[derive(Clone, Copy, Debug, PartialEq, PartialOrd, Default)]
pub struct Bandwidth(pub f64);

/// Parses a link speed: a number and a unit among bps, Kbps, Mbps, Gbps, Tbps.
pub fn parse_bandwidth(text: &str) -> Result<f64, String> {
    let (v, unit) = number_and_unit(text, "bandwidth", "\"1Gbps\"")?;
    let mult = match unit {
        "bps" => 1.0,
        "Kbps" | "kbps" => 1e3,
        "Mbps" => 1e6,
        "Gbps" => 1e9,
        "Tbps" => 1e12,
        u => {
            return Err(format!(
                "unknown bandwidth unit {u:?} in {text:?}: use bps, Kbps, Mbps, Gbps or Tbps"
            ))
        }
    };
    let b = v * mult;
    if !(b.is_finite() && b > 0.0) {
        return Err(format!("{text:?}: a bandwidth must be above zero"));
    }
    Ok(b)
}

impl TextValue for Bandwidth {
    const EXPECTING: &'static str = "a bandwidth such as \"1Gbps\" or \"100Mbps\"";
    fn parse(text: &str) -> Result<Self, String> {
        parse_bandwidth(text).map(Bandwidth)
    }
    fn to_text(&self) -> String {
        let b = self.0;
        [("Tbps", 1e12), ("Gbps", 1e9), ("Mbps", 1e6), ("Kbps", 1e3)]
            .iter()
            .find(|(_, m)| b >= *m)
            .map_or_else(|| format!("{b}bps"), |(u, m)| format!("{}{u}", b / m))
    }
}

text_value!(Dur, DistSpec, Bytes, Bandwidth);

#[cfg(test)]
mod size_tests {
    use super::*;

    #[test]
    fn sizes_and_bandwidths_parse_with_units() {
        assert_eq!(parse_bytes("2KB"), Ok(2000));
        assert_eq!(parse_bytes("8GiB"), Ok(8 << 30));
        assert_eq!(parse_bytes("1.5MB"), Ok(1_500_000));
        assert!(parse_bytes("2 parsecs").is_err());
        assert_eq!(parse_bandwidth("1Gbps"), Ok(1e9));
        assert_eq!(parse_bandwidth("100Mbps"), Ok(1e8));
        assert!(parse_bandwidth("1GB").is_err());
        assert!(parse_bandwidth("0Gbps").is_err());
        assert_eq!(fmt_bytes(8 << 30), "8GiB");
        assert_eq!(fmt_bytes(2000), "2KB");
    }
}

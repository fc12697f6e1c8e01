//! Value types of model files: durations and distributions written as strings.
//! They deserialize with messages that say what was expected, and serialize back to the
//! same text (the manifest records every run's fully expanded configuration).

use std::fmt;

use dssim_engine::{parse_duration, Dist, SimTime};
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

/// A duration such as `"5ms"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Dur(pub SimTime);

impl<'de> Deserialize<'de> for Dur {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Dur;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a duration string such as \"5ms\", \"2s\" or \"10m\"")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Dur, E> {
                parse_duration(v).map(Dur).map_err(E::custom)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Dur, E> {
                if v == 0 {
                    Ok(Dur(SimTime::ZERO))
                } else {
                    Err(E::custom(format!(
                        "a duration needs a unit: write \"{v}ms\" or \"{v}s\", not {v}"
                    )))
                }
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Dur, E> {
                self.visit_i64(v.min(i64::MAX as u64) as i64)
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Dur, E> {
                Err(E::custom(format!(
                    "a duration needs a unit: write \"{v}ms\" or \"{v}s\", not {v}"
                )))
            }
        }
        d.deserialize_any(V)
    }
}

impl Serialize for Dur {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0.to_string())
    }
}

/// A distribution such as `"exp(5ms)"` (see [`dssim_engine::dist`]).
#[derive(Clone, Debug, PartialEq)]
pub struct DistSpec(pub Dist);

impl<'de> Deserialize<'de> for DistSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = DistSpec;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a distribution such as \"exp(5ms)\" or a duration such as \"5ms\"")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<DistSpec, E> {
                Dist::parse(v).map(DistSpec).map_err(E::custom)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<DistSpec, E> {
                Err(E::custom(format!(
                    "a distribution needs units: write \"exp({v}ms)\" or \"{v}ms\", not {v}"
                )))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<DistSpec, E> {
                self.visit_i64(v.min(i64::MAX as u64) as i64)
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<DistSpec, E> {
                Err(E::custom(format!(
                    "a distribution needs units: write \"exp({v}ms)\" or \"{v}ms\", not {v}"
                )))
            }
        }
        d.deserialize_any(V)
    }
}

impl Serialize for DistSpec {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0.to_string())
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

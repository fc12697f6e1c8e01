//! Key popularity: which key a request touches.
//!
//! | text | meaning |
//! |---|---|
//! | `uniform` | every key equally likely |
//! | `zipf(a)` | key of rank i (0-based key i) with probability ∝ (i+1)^−a |
//! | `hotspot(f, p)` | a share `p` of requests go to the first `f` of the keys |

use std::fmt;

use rand::Rng as _;
use rand_distr::{Distribution, Zipf};
use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize, Serializer};

use dssim_engine::Rng;

/// A key-popularity law (see the module docs).
#[derive(Clone, Debug, PartialEq, Default)]
pub enum Popularity {
    /// Uniform over the keys.
    #[default]
    Uniform,
    /// Zipf with exponent `a`.
    Zipf(f64),
    /// Share `p` of requests on the first `f` of keys.
    Hotspot(f64, f64),
}

impl Popularity {
    /// Parses `uniform`, `zipf(0.99)`, `hotspot(0.01, 0.5)`.
    pub fn parse(text: &str) -> Result<Popularity, String> {
        let t = text.trim();
        let args = |name: &str| -> Option<Vec<f64>> {
            let inner = t
                .strip_prefix(name)?
                .trim()
                .strip_prefix('(')?
                .strip_suffix(')')?;
            inner
                .split(',')
                .map(|a| a.trim().parse::<f64>().ok())
                .collect()
        };
        if t == "uniform" {
            return Ok(Popularity::Uniform);
        }
        if t.starts_with("zipf") {
            return match args("zipf").as_deref() {
                Some([a]) if a.is_finite() && *a >= 0.0 => Ok(Popularity::Zipf(*a)),
                _ => Err(format!(
                    "expected zipf(a) with a >= 0, such as \"zipf(0.99)\", found {text:?}"
                )),
            };
        }
        if t.starts_with("hotspot") {
            return match args("hotspot").as_deref() {
                Some([f, p]) if (0.0..=1.0).contains(f) && (0.0..=1.0).contains(p) => Ok(Popularity::Hotspot(*f, *p)),
                _ => Err(format!(
                    "expected hotspot(f, p) with f and p between 0 and 1, such as \"hotspot(0.01, 0.5)\", found {text:?}"
                )),
            };
        }
        Err(format!(
            "unknown popularity {text:?}: expected uniform, zipf(a) or hotspot(f, p)"
        ))
    }

    /// A sampler over `keys` keys.
    pub fn sampler(&self, keys: u64) -> KeySampler {
        let keys = keys.max(1);
        match self {
            Popularity::Uniform => KeySampler::Uniform(keys),
            Popularity::Zipf(a) => match Zipf::new(keys as f64, *a) {
                Ok(z) => KeySampler::Zipf(z, keys),
                Err(_) => KeySampler::Uniform(keys),
            },
            Popularity::Hotspot(f, p) => {
                let hot = ((keys as f64 * f).round() as u64).clamp(1, keys);
                KeySampler::Hotspot { keys, hot, p: *p }
            }
        }
    }

    /// Probability of the key of 0-based rank `i` among `keys` (for theory checks).
    pub fn probability(&self, i: u64, keys: u64) -> f64 {
        match self {
            Popularity::Uniform => 1.0 / keys as f64,
            Popularity::Zipf(a) => {
                let h: f64 = (1..=keys).map(|k| (k as f64).powf(-a)).sum();
                ((i + 1) as f64).powf(-a) / h
            }
            Popularity::Hotspot(f, p) => {
                let hot = ((keys as f64 * f).round() as u64).clamp(1, keys);
                if i < hot {
                    p / hot as f64
                } else if keys > hot {
                    (1.0 - p) / (keys - hot) as f64
                } else {
                    0.0
                }
            }
        }
    }
}

impl fmt::Display for Popularity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Popularity::Uniform => write!(f, "uniform"),
            Popularity::Zipf(a) => write!(f, "zipf({a})"),
            Popularity::Hotspot(h, p) => write!(f, "hotspot({h}, {p})"),
        }
    }
}

impl<'de> Deserialize<'de> for Popularity {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Popularity::parse(&s).map_err(de::Error::custom)
    }
}

impl Serialize for Popularity {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

/// Draws keys (0-based; key 0 is the most popular).
#[derive(Clone, Debug)]
pub enum KeySampler {
    /// Uniform over `0..n`.
    Uniform(u64),
    /// Zipf over ranks.
    Zipf(Zipf<f64>, u64),
    /// Hot set first.
    Hotspot {
        /// All keys.
        keys: u64,
        /// Keys in the hot set.
        hot: u64,
        /// Share of requests to the hot set.
        p: f64,
    },
}

impl KeySampler {
    /// One key.
    #[inline]
    pub fn sample(&self, rng: &mut Rng) -> u64 {
        match self {
            KeySampler::Uniform(n) => rng.random_range(0..*n),
            KeySampler::Zipf(z, n) => (z.sample(rng) as u64).clamp(1, *n) - 1,
            KeySampler::Hotspot { keys, hot, p } => {
                if *hot >= *keys || rng.random::<f64>() < *p {
                    rng.random_range(0..*hot)
                } else {
                    rng.random_range(*hot..*keys)
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zipf_frequencies_match_probabilities() {
        let pop = Popularity::parse("zipf(0.99)").unwrap();
        let s = pop.sampler(100);
        let mut r = dssim_engine::rng::stream(3, "k");
        let n = 200_000;
        let mut c0 = 0;
        for _ in 0..n {
            if s.sample(&mut r) == 0 {
                c0 += 1;
            }
        }
        let p0 = pop.probability(0, 100);
        let sd = (p0 * (1.0 - p0) / n as f64).sqrt();
        assert!(
            ((c0 as f64 / n as f64) - p0).abs() < 4.0 * sd,
            "{c0} vs {p0}"
        );
        assert!(Popularity::parse("zipf(x)").is_err());
        assert_eq!(
            Popularity::parse("hotspot(0.01, 0.5)").unwrap(),
            Popularity::Hotspot(0.01, 0.5)
        );
    }
}

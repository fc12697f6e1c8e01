//! Key popularity: which key a request touches.
//!
//! | text | meaning |
//! |---|---|
//! | `uniform` | every key equally likely |
//! | `zipf(a)` | key of rank i (0-based key i) with probability ∝ (i+1)^−a |
//! | `hotspot(f, p)` | a share `p` of requests go to the first `f` of the keys |

use std::fmt;

use rand::Rng as _;
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
            Popularity::Zipf(a) => match ZipfRanks::new(keys as f64, *a) {
                Some(z) => KeySampler::Zipf(z, keys),
                None => KeySampler::Uniform(keys),
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

/// Zipf ranks `1..=n` with exponent `s`: `rand_distr::Zipf` (0.5), rejection-inversion
/// (Hörmann–Derflinger), with the same random draws and bit for bit the same results, but
/// one `powf` per draw where that does three.
///
/// Each round draws `u` and `y`, inverts the envelope's integral at `u` to `inv_b` (one
/// `powf`), takes rank `x = ⌊inv_b + 1⌋` and accepts it when `y < x^−s · inv_b^s` (two more
/// `powf`). Since `x − 1 ≤ inv_b < x`, that ratio is at least `1 − max(s, 1)/x` (Bernoulli's
/// inequality); when `y` is below that bound (less a 10⁻¹² margin, far above the few ulps the
/// two `powf`s may be off) the rank is accepted without computing the ratio, and rank 1's
/// ratio is exactly 1. Otherwise the ratio is computed exactly as rand_distr does, so every
/// decision is the same. In the production model (`zipf(0.9)` over 100,000 keys) this took
/// libm `pow` from 3.3 % of the run's CPU samples to 1.7 % (`perf record`, 120 s at 5,800/s).
#[derive(Clone, Debug)]
pub struct ZipfRanks {
    s: f64,
    t: f64,
    q: f64,
    /// `max(s, 1)`, for the acceptance bound.
    bound_s: f64,
    /// `q` as a whole number when it is one but for rounding (`1/(1-s)` of the usual
    /// exponents: 0.5, 0.8, 0.9, 0.99, 1.2, 2), so a rank may come from [`pow_whole`];
    /// 0 when it is not (or is beyond ±1024).
    whole_q: i32,
}

/// `z^q` for a whole `q` (nonzero, `|q| <= 1024`) by repeated squaring: at most 21
/// products and a quotient, each off by half an ulp, so within `(|q| + 1) · 2^-52`
/// (relative) of the exact power, far below [`ZipfRanks::sample_both`]'s margin.
#[inline]
fn pow_whole(z: f64, q: i32) -> f64 {
    let mut e = q.unsigned_abs();
    let mut b = z;
    let mut v = 1.0;
    loop {
        if e & 1 != 0 {
            v *= b;
        }
        e >>= 1;
        if e == 0 {
            break;
        }
        b *= b;
    }
    if q < 0 {
        1.0 / v
    } else {
        v
    }
}

/// [`ZipfRanks::whole_q`] for exponent `q` over `n` ranks: the whole number nearest `q`
/// where `z^q` and `z^round(q)` differ by under 10⁻¹² (relative) for every `z` the
/// sampler raises (`|ln z| <= ln n / |q|`), else 0.
fn whole(q: f64, n: f64) -> i32 {
    let r = q.round();
    if r != 0.0 && r.abs() <= 1024.0 && ((q - r) / q).abs() * n.ln().max(1.0) <= 1e-12 {
        r as i32
    } else {
        0
    }
}

impl ZipfRanks {
    /// rand_distr's `Zipf::new(n, s)`: `None` where it fails (`s` negative or NaN, `n < 1`).
    pub fn new(n: f64, s: f64) -> Option<Self> {
        if s.is_nan() || s < 0.0 || n < 1.0 {
            return None;
        }
        // The same arithmetic as rand_distr, so `t` and `q` are the same numbers.
        let q = if s != 1.0 { 1.0 / (1.0 - s) } else { 0.0 };
        let t = if s != 1.0 {
            (n.powf(1.0 - s) - s) * q
        } else {
            1.0 + n.ln()
        };
        Some(ZipfRanks {
            s,
            t,
            q,
            bound_s: s.max(1.0),
            whole_q: whole(q, n),
        })
    }

    #[inline]
    fn inv_cdf(&self, p: f64) -> f64 {
        let pt = p * self.t;
        if pt <= 1.0 {
            pt
        } else if self.s != 1.0 {
            (pt * (1.0 - self.s) + self.s).powf(self.q)
        } else {
            (pt - 1.0).exp()
        }
    }

    /// One rank, as a float in `1..=n` (as rand_distr returns it).
    #[inline]
    pub fn sample(&self, rng: &mut Rng) -> f64 {
        self.sample_both(rng).0
    }

    /// One rank as [`Self::sample`] draws it, and that rank `as u64`.
    ///
    /// The rank is `⌊inv_b + 1⌋`; below 2^52 it is taken as the integer the truncating
    /// conversion gives (the floor of a positive number), which is also the rank `as u64`,
    /// rather than by a libm `floor` call and a saturating float-to-`u64` conversion: 24
    /// instructions a key fewer (production 20 s, 116,387 keys: 1,102.7 -> 1,099.9 M
    /// instructions; outputs byte-identical).
    ///
    /// Where `q` is whole but for rounding (see [`ZipfRanks::whole_q`]), the rank comes from
    /// [`pow_whole`] (no libm call) when its `inv_b + 1` lies more than 10⁻⁹ (relative)
    /// from an integer: the two powers differ by under 10⁻¹¹, so the floor is the one
    /// libm's `powf` gives. Otherwise, and when the acceptance ratio must be computed,
    /// `inv_b` is libm's, as before. Production 20 s (`zipf(0.9)`, `q` = 10, 122,781
    /// draws): libm `pow` 15.3 -> 2.2 M instructions, the draws' own code 8.6 -> 12.8 M,
    /// the run ~936.9 -> 928.1 M (941.8 -> 928.1 M with the histogram change); outputs
    /// byte-identical. Tried first and not kept: any `q` up to ±64 through a polynomial
    /// `ln` and `exp` (no libm, relative error under 10⁻¹¹): about 90 instructions a draw
    /// against libm's 125, the draws' own code 8.6 -> 19.2 M, 2.4 M off the run.
    #[inline]
    pub fn sample_both(&self, rng: &mut Rng) -> (f64, u64) {
        loop {
            let p: f64 = rng.random();
            // The rank, and `inv_b` when it had to be computed for it.
            let (x, k, inv_b) = match self.whole_rank(p) {
                Some(k) => (k as f64, k, None),
                None => {
                    let inv_b = self.inv_cdf(p);
                    let b1 = inv_b + 1.0;
                    let (x, k) = if b1 > 0.0 && b1 < 4_503_599_627_370_496.0 {
                        let k = b1 as i64;
                        (k as f64, k as u64)
                    } else {
                        let x = b1.floor();
                        (x, x as u64)
                    };
                    (x, k, Some(inv_b))
                }
            };
            let y: f64 = rng.random();
            // Rank 1: the ratio is 1.0.powf(-s) = 1 exactly, and y < 1.
            if x <= 1.0 || y < (1.0 - self.bound_s / x) * (1.0 - 1e-12) {
                return (x, k);
            }
            let inv_b = inv_b.unwrap_or_else(|| self.inv_cdf(p));
            let ratio = x.powf(-self.s) * inv_b.powf(self.s);
            if y < ratio {
                return (x, k);
            }
        }
    }

    /// The rank for `p` from [`pow_whole`] when `q` is whole ([`Self::whole_q`]) and the
    /// power's `inv_b + 1` lies more than 10⁻⁹ (relative) from an integer, so its floor is
    /// the one libm's `powf` gives; `None` otherwise (the caller then uses libm).
    #[inline]
    fn whole_rank(&self, p: f64) -> Option<u64> {
        let pt = p * self.t;
        if self.whole_q == 0 || pt <= 1.0 {
            return None;
        }
        let z = pt * (1.0 - self.s) + self.s;
        let b1 = pow_whole(z, self.whole_q) + 1.0;
        if !(b1 > 1.0 && b1 < 2_251_799_813_685_248.0) {
            return None;
        }
        let k = b1 as i64;
        let frac = b1 - k as f64;
        let tol = b1 * 1e-9;
        (frac > tol && 1.0 - frac > tol).then_some(k as u64)
    }
}

/// Draws keys (0-based; key 0 is the most popular).
#[derive(Clone, Debug)]
pub enum KeySampler {
    /// Uniform over `0..n`.
    Uniform(u64),
    /// Zipf over ranks.
    Zipf(ZipfRanks, u64),
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
            KeySampler::Zipf(z, n) => z.sample_both(rng).1.clamp(1, *n) - 1,
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
    fn zipf_ranks_are_rand_distrs_draw_for_draw() {
        use rand_distr::{Distribution, Zipf};
        for (n, a) in [
            (100_000.0, 0.9),
            (100.0, 0.99),
            (1000.0, 0.0),
            (50.0, 0.5),
            (1000.0, 1.0),
            (10_000.0, 1.2),
            (7.0, 2.5),
            (1.0, 0.9),
            // Ranks beyond 2^52 (the floor path of `sample_both`).
            (1e18, 0.5),
            // Whole `q` (`pow_whole`), and not.
            (100_000.0, 0.8),
            (1e6, 0.95),
            (1e5, 0.99),
            (1e9, 0.999),
            (1e12, 2.0),
            (1e5, 0.7),
            (3.0, 0.3),
        ] {
            let ours = ZipfRanks::new(n, a).unwrap();
            let theirs = Zipf::new(n, a).unwrap();
            let mut r1 = dssim_engine::rng::stream(11, "z");
            let mut r2 = dssim_engine::rng::stream(11, "z");
            for _ in 0..200_000 {
                let (x, k) = ours.sample_both(&mut r1);
                assert_eq!(x.to_bits(), theirs.sample(&mut r2).to_bits());
                assert_eq!(k, x as u64);
            }
            // The streams are still in step: the same number of draws was taken.
            assert_eq!(r1.random::<u64>(), r2.random::<u64>());
        }
        assert!(ZipfRanks::new(10.0, -1.0).is_none() && Zipf::new(10.0, -1.0).is_err());
        assert!(ZipfRanks::new(10.0, f64::NAN).is_none() && Zipf::new(10.0, f64::NAN).is_err());
    }

    #[test]
    fn pow_whole_is_near() {
        let mut r = dssim_engine::rng::stream(12, "p");
        for _ in 0..1_000_000 {
            let q: i32 = match r.random_range(-1024..=1024) {
                0 => 1,
                q => q,
            };
            let z = 2f64.powf((r.random::<f64>() * 2.0 - 1.0) * 1000.0 / f64::from(q.abs()));
            let want = z.powf(f64::from(q));
            let got = pow_whole(z, q);
            assert!(
                ((got - want) / want).abs() < 1e-12,
                "{z}^{q}: {got} vs {want}"
            );
        }
        assert_eq!(whole(1.0 / (1.0 - 0.9), 1e5), 10);
        assert_eq!(whole(1.0 / (1.0 - 1.2), 1e5), -5);
        assert_eq!(whole(1.0 / (1.0 - 0.7), 1e5), 0);
    }

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

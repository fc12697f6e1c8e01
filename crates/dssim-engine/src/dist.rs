//! The distribution grammar of model files: `"exp(5ms)"`, `"uniform(1ms, 9ms)"`, ...
//!
//! | text | meaning |
//! |---|---|
//! | `const(5ms)` or `5ms` | always 5 ms |
//! | `exp(5ms)` | exponential with mean 5 ms |
//! | `uniform(1ms, 9ms)` | uniform between the two |
//! | `normal(10ms, 2ms)` | normal (mean, sd), redrawn while negative |
//! | `lognormal(10ms, 5ms)` | lognormal with that mean and sd |
//! | `erlang(3, 6ms)` | sum of 3 exponentials, mean 6 ms in all |
//! | `pareto(2ms, 1.5)` | Pareto with scale 2 ms and shape 1.5 |
//! | `hyperexp(0.9, 1ms, 10ms)` | exp(1ms) with probability 0.9, else exp(10ms) |
//!
//! Samples are integer nanoseconds.

use std::fmt;

use rand::Rng as _;
use rand_distr::{Distribution, Exp1, Gamma, LogNormal, StandardNormal};

use crate::rng::Rng;
use crate::time::{parse_duration, SimTime};

/// A uniform draw on `[low, low + scale]` exactly as rand 0.9's
/// `rng.random_range(low..=high)` makes it for `f64` with `scale = high - low` (its
/// `UniformFloat::sample_single_inclusive`): the same one `u64`, its top 52 bits as a
/// float in `[1, 2)`, minus 1, times the width, plus the low end, with the same rounding.
/// Without rand's range checks, which the caller has made once: `low < high` and a finite
/// width.
#[inline(always)]
pub fn uniform_f64(low: f64, scale: f64, rng: &mut Rng) -> f64 {
    use rand::RngCore as _;
    let value1_2 = f64::from_bits((rng.next_u64() >> 12) | (1023u64 << 52));
    (value1_2 - 1.0) * scale + low
}

/// A distribution of durations.
#[derive(Clone, Debug, PartialEq)]
pub enum Dist {
    /// Always the same value (ns).
    Const(f64),
    /// Exponential with this mean (ns).
    Exp(f64),
    /// Uniform on `[lo, hi]` (ns).
    Uniform(f64, f64),
    /// Normal (mean, sd) in ns, redrawn while negative.
    Normal(f64, f64),
    /// Lognormal given by its own mean and sd (ns); `mu`/`sigma` precomputed.
    LogNormal {
        /// Mean of the distribution (ns).
        mean: f64,
        /// Standard deviation (ns).
        sd: f64,
        /// The sampler.
        inner: LogNormal<f64>,
    },
    /// Erlang-k with total mean (ns).
    Erlang {
        /// Number of phases.
        k: u32,
        /// Mean (ns).
        mean: f64,
        /// The sampler.
        inner: Gamma<f64>,
    },
    /// Pareto with scale (ns) and shape.
    Pareto(f64, f64),
    /// Two-phase hyperexponential: probability p of mean1, else mean2 (ns).
    HyperExp(f64, f64, f64),
}

/// Why a distribution string did not parse.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct DistError {
    /// What went wrong, with what was expected.
    pub message: String,
    /// The distribution name when it is not one of [`DIST_NAMES`] (callers add a "did you
    /// mean" hint: the engine has no spelling suggestions).
    pub unknown_name: Option<String>,
}

fn err(message: impl Into<String>) -> DistError {
    DistError {
        message: message.into(),
        unknown_name: None,
    }
}

/// The names a distribution may have, for "did you mean" hints.
pub const DIST_NAMES: &[&str] = &[
    "const",
    "exp",
    "uniform",
    "normal",
    "lognormal",
    "erlang",
    "pareto",
    "hyperexp",
];

impl Dist {
    /// Parses the grammar above; a bare duration means `const`.
    pub fn parse(text: &str) -> Result<Dist, DistError> {
        let t = text.trim();
        let Some(open) = t.find('(') else {
            return parse_duration(t)
                .map(|d| Dist::Const(d.0 as f64))
                .map_err(|_| {
                    err(format!(
                        "expected a distribution such as \"exp(5ms)\", \"uniform(1ms, 9ms)\" or a duration, found {text:?}"
                    ))
                });
        };
        if !t.ends_with(')') {
            return Err(err(format!("missing closing parenthesis in {text:?}")));
        }
        let name = t[..open].trim();
        let args: Vec<&str> = t[open + 1..t.len() - 1].split(',').map(str::trim).collect();
        let want = |n: usize, shape: &str| -> Result<(), DistError> {
            if args.len() == n && args.iter().all(|a| !a.is_empty()) {
                Ok(())
            } else {
                Err(err(format!(
                    "{name}() takes {n} argument{}: {name}({shape}), found {text:?}",
                    if n == 1 { "" } else { "s" }
                )))
            }
        };
        let dur = |s: &str| -> Result<f64, DistError> {
            parse_duration(s)
                .map(|d| d.0 as f64)
                .map_err(|e| err(format!("in {text:?}: {e}")))
        };
        let num = |s: &str| -> Result<f64, DistError> {
            match s.parse::<f64>() {
                Ok(v) if v.is_finite() => Ok(v),
                _ => Err(err(format!("in {text:?}: expected a number, found {s:?}"))),
            }
        };
        let d = match name {
            "const" => {
                want(1, "5ms")?;
                Dist::Const(dur(args[0])?)
            }
            "exp" => {
                want(1, "mean")?;
                Dist::Exp(dur(args[0])?)
            }
            "uniform" => {
                want(2, "low, high")?;
                let (a, b) = (dur(args[0])?, dur(args[1])?);
                if a > b {
                    return Err(err(format!("in {text:?}: low is above high")));
                }
                Dist::Uniform(a, b)
            }
            "normal" => {
                want(2, "mean, sd")?;
                Dist::Normal(dur(args[0])?, dur(args[1])?)
            }
            "lognormal" => {
                want(2, "mean, sd")?;
                let (mean, sd) = (dur(args[0])?, dur(args[1])?);
                if mean <= 0.0 {
                    return Err(err(format!("in {text:?}: the mean must be above zero")));
                }
                let s2 = (1.0 + (sd * sd) / (mean * mean)).ln();
                let inner = LogNormal::new(mean.ln() - s2 / 2.0, s2.sqrt())
                    .map_err(|e| err(format!("in {text:?}: {e}")))?;
                Dist::LogNormal { mean, sd, inner }
            }
            "erlang" => {
                want(2, "k, mean")?;
                let k = num(args[0])?;
                if k < 1.0 || k.fract() != 0.0 || k > 1e6 {
                    return Err(err(format!(
                        "in {text:?}: k must be a whole number of phases, 1 or more"
                    )));
                }
                let mean = dur(args[1])?;
                if mean <= 0.0 {
                    return Err(err(format!("in {text:?}: the mean must be above zero")));
                }
                let inner =
                    Gamma::new(k, mean / k).map_err(|e| err(format!("in {text:?}: {e}")))?;
                Dist::Erlang {
                    k: k as u32,
                    mean,
                    inner,
                }
            }
            "pareto" => {
                want(2, "scale, shape")?;
                let (scale, shape) = (dur(args[0])?, num(args[1])?);
                if shape <= 0.0 || scale <= 0.0 {
                    return Err(err(format!(
                        "in {text:?}: scale and shape must be above zero"
                    )));
                }
                Dist::Pareto(scale, shape)
            }
            "hyperexp" => {
                want(3, "p, mean1, mean2")?;
                let p = num(args[0])?;
                if !(0.0..=1.0).contains(&p) {
                    return Err(err(format!(
                        "in {text:?}: p must be a probability between 0 and 1"
                    )));
                }
                Dist::HyperExp(p, dur(args[1])?, dur(args[2])?)
            }
            other => {
                return Err(DistError {
                    message: format!(
                        "unknown distribution {other:?}; expected one of {}",
                        DIST_NAMES.join(", ")
                    ),
                    unknown_name: Some(other.to_string()),
                });
            }
        };
        Ok(d)
    }

    /// Draws one value, in nanoseconds.
    ///
    /// The exponential and the constant, the service times of most models, are drawn
    /// inline at the call; the other shapes in [`Self::sample_other`], out of line. As one
    /// out-of-line function for all shapes it cost a call, a prologue and an epilogue per
    /// draw (M/M/1 250 s, 200k customers: 329.3 -> 326.2 M instructions, 1,646 -> 1,631 a
    /// customer; with a 1 s timeout 1,820 -> 1,807; outputs byte-identical).
    #[inline(always)]
    pub fn sample(&self, rng: &mut Rng) -> SimTime {
        match self {
            Dist::Exp(m) => {
                let e: f64 = Exp1.sample(rng);
                SimTime::from_nanos_f64(e * m)
            }
            Dist::Const(v) => SimTime::from_nanos_f64(*v),
            _ => self.sample_other(rng),
        }
    }

    /// [`Self::sample`] for the shapes other than the exponential and the constant: a
    /// uniform drawn here, a leaf that saves no registers, the rest in
    /// [`Self::sample_rest`]. Production 20 s (116,387 uniform CDN latencies, 83,860
    /// lognormal service times): 1,091.4 -> 1,088.8 M instructions; outputs byte-identical.
    #[inline(never)]
    fn sample_other(&self, rng: &mut Rng) -> SimTime {
        if let Some((low, scale)) = self.proper_uniform() {
            return SimTime::from_nanos_f64(uniform_f64(low, scale, rng));
        }
        self.sample_rest(rng)
    }

    /// `(low, high - low)` of a uniform that [`uniform_f64`] draws as rand would: `low <
    /// high` and a finite width (rand's `random_range(a..=b)` panics on the others, or
    /// draws nothing when `a == b`).
    #[inline(always)]
    pub fn proper_uniform(&self) -> Option<(f64, f64)> {
        match *self {
            Dist::Uniform(a, b) if a < b && (b - a).is_finite() => Some((a, b - a)),
            _ => None,
        }
    }

    /// [`Self::proper_uniform`] whose every draw lies in `+0.0 <= x < 2^52`, so that
    /// [`SimTime::from_small_nanos_f64`] converts it: `low >= 0` and `low + width` (as a
    /// float) below 2^52. The draw is `u * width + low` with `0 <= u < 1`, and rounding is
    /// monotone, so it is at most the float `low + width` and at least `+0.0`.
    #[inline]
    pub fn small_uniform(&self) -> Option<(f64, f64)> {
        self.proper_uniform()
            .filter(|&(low, width)| low >= 0.0 && low + width < SimTime::TWO_52)
    }

    /// [`Self::sample_other`] for the shapes other than a proper uniform.
    #[inline(never)]
    fn sample_rest(&self, rng: &mut Rng) -> SimTime {
        let x = match self {
            Dist::Const(v) => *v,
            Dist::Exp(m) => {
                let e: f64 = Exp1.sample(rng);
                e * m
            }
            // A proper uniform was drawn in `sample_other`.
            Dist::Uniform(a, b) => {
                if a == b {
                    *a
                } else {
                    rng.random_range(*a..=*b)
                }
            }
            Dist::Normal(m, s) => {
                let mut v = -1.0;
                for _ in 0..64 {
                    let z: f64 = StandardNormal.sample(rng);
                    v = m + s * z;
                    if v >= 0.0 {
                        break;
                    }
                }
                v.max(0.0)
            }
            Dist::LogNormal { inner, .. } => inner.sample(rng),
            Dist::Erlang { inner, .. } => inner.sample(rng),
            Dist::Pareto(scale, shape) => {
                let u: f64 = rng.random::<f64>();
                scale / (1.0 - u).powf(1.0 / shape)
            }
            Dist::HyperExp(p, m1, m2) => {
                let e: f64 = Exp1.sample(rng);
                if rng.random::<f64>() < *p {
                    e * m1
                } else {
                    e * m2
                }
            }
        };
        SimTime::from_nanos_f64(x)
    }

    /// The mean, in nanoseconds (infinite for a Pareto with shape ≤ 1).
    pub fn mean(&self) -> f64 {
        match self {
            Dist::Const(v) | Dist::Exp(v) => *v,
            Dist::Uniform(a, b) => (a + b) / 2.0,
            Dist::Normal(m, _) => *m,
            Dist::LogNormal { mean, .. } => *mean,
            Dist::Erlang { mean, .. } => *mean,
            Dist::Pareto(scale, shape) => {
                if *shape <= 1.0 {
                    f64::INFINITY
                } else {
                    shape * scale / (shape - 1.0)
                }
            }
            Dist::HyperExp(p, m1, m2) => p * m1 + (1.0 - p) * m2,
        }
    }

    /// The second moment E[X²], in ns².
    pub fn second_moment(&self) -> f64 {
        let m = self.mean();
        match self {
            Dist::Const(v) => v * v,
            Dist::Exp(v) => 2.0 * v * v,
            Dist::Uniform(a, b) => (a * a + a * b + b * b) / 3.0,
            Dist::Normal(m, s) => m * m + s * s,
            Dist::LogNormal { sd, .. } => m * m + sd * sd,
            Dist::Erlang { k, .. } => m * m * (1.0 + 1.0 / f64::from(*k)),
            Dist::Pareto(scale, shape) => {
                if *shape <= 2.0 {
                    f64::INFINITY
                } else {
                    shape * scale * scale / (shape - 2.0)
                }
            }
            Dist::HyperExp(p, m1, m2) => 2.0 * (p * m1 * m1 + (1.0 - p) * m2 * m2),
        }
    }

    /// Squared coefficient of variation, Var/mean² (0 for const, 1 for exp).
    pub fn scv(&self) -> f64 {
        let m = self.mean();
        if m == 0.0 {
            return 0.0;
        }
        (self.second_moment() - m * m) / (m * m)
    }

    /// The same shape with every duration multiplied by `factor` (speed scaling).
    pub fn scaled(&self, factor: f64) -> Dist {
        let f = factor;
        match self {
            Dist::Const(v) => Dist::Const(v * f),
            Dist::Exp(v) => Dist::Exp(v * f),
            Dist::Uniform(a, b) => Dist::Uniform(a * f, b * f),
            Dist::Normal(m, s) => Dist::Normal(m * f, s * f),
            Dist::LogNormal { mean, sd, .. } => {
                let (mean, sd) = (mean * f, sd * f);
                let s2 = (1.0 + (sd * sd) / (mean * mean)).ln();
                let inner = LogNormal::new(mean.ln() - s2 / 2.0, s2.sqrt())
                    .unwrap_or_else(|_| LogNormal::new(0.0, 0.0).expect("valid lognormal"));
                Dist::LogNormal { mean, sd, inner }
            }
            Dist::Erlang { k, mean, .. } => {
                let mean = mean * f;
                let kf = f64::from(*k);
                let inner = Gamma::new(kf, (mean / kf).max(f64::MIN_POSITIVE))
                    .unwrap_or_else(|_| Gamma::new(1.0, 1.0).expect("valid gamma"));
                Dist::Erlang { k: *k, mean, inner }
            }
            Dist::Pareto(scale, shape) => Dist::Pareto(scale * f, *shape),
            Dist::HyperExp(p, m1, m2) => Dist::HyperExp(*p, m1 * f, m2 * f),
        }
    }
}

impl fmt::Display for Dist {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = |v: f64| SimTime::from_nanos(v.round() as u64);
        match self {
            Dist::Const(v) => write!(f, "const({})", d(*v)),
            Dist::Exp(v) => write!(f, "exp({})", d(*v)),
            Dist::Uniform(a, b) => write!(f, "uniform({}, {})", d(*a), d(*b)),
            Dist::Normal(m, s) => write!(f, "normal({}, {})", d(*m), d(*s)),
            Dist::LogNormal { mean, sd, .. } => write!(f, "lognormal({}, {})", d(*mean), d(*sd)),
            Dist::Erlang { k, mean, .. } => write!(f, "erlang({k}, {})", d(*mean)),
            Dist::Pareto(s, a) => write!(f, "pareto({}, {a})", d(*s)),
            Dist::HyperExp(p, m1, m2) => write!(f, "hyperexp({p}, {}, {})", d(*m1), d(*m2)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::stream;

    fn sample_mean(d: &Dist, n: usize) -> f64 {
        let mut r = stream(1, "t");
        (0..n).map(|_| d.sample(&mut r).0 as f64).sum::<f64>() / n as f64
    }

    #[test]
    fn grammar_parses_every_form() {
        for s in [
            "5ms",
            "const(5ms)",
            "exp(5ms)",
            "uniform(1ms, 9ms)",
            "normal(10ms, 2ms)",
            "lognormal(10ms, 5ms)",
            "erlang(3, 6ms)",
            "pareto(2ms, 1.5)",
            "hyperexp(0.9, 1ms, 10ms)",
        ] {
            Dist::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"));
        }
        let e = Dist::parse("expo(5ms)").unwrap_err();
        assert_eq!(e.unknown_name.as_deref(), Some("expo"));
        assert!(e.message.contains("expected one of const, exp"), "{e}");
        assert!(Dist::parse("uniform(5ms)").is_err());
        assert!(Dist::parse("exp(5ms").is_err());
    }

    #[test]
    fn sample_means_match_declared_means() {
        // n = 200k: the standard error of the mean is sd/sqrt(n) <= 1.2% of the mean for
        // these shapes (SCV <= 5.5); 5% is more than four standard errors.
        for s in [
            "exp(5ms)",
            "uniform(1ms, 9ms)",
            "lognormal(10ms, 5ms)",
            "erlang(3, 6ms)",
            "hyperexp(0.9, 1ms, 10ms)",
        ] {
            let d = Dist::parse(s).unwrap();
            let m = sample_mean(&d, 200_000);
            assert!(
                (m / d.mean() - 1.0).abs() < 0.05,
                "{s}: {m} vs {}",
                d.mean()
            );
        }
    }

    /// [`uniform_f64`] draws what rand's `random_range(a..=b)` draws, bit for bit, and
    /// leaves the stream where it leaves it.
    #[test]
    fn uniform_f64_is_rands_inclusive_range() {
        use rand::Rng as _;
        let bounds = [
            (200_000.0, 800_000.0),
            (5e6, 1.5e7),
            (0.0, 1.0),
            (-3.5, 7.25),
            (1e-300, 1e300),
            (0.1, 0.1 + f64::EPSILON),
        ];
        for (a, b) in bounds {
            let mut r = stream(3, "u");
            let mut twin = stream(3, "u");
            for _ in 0..10_000 {
                let x = uniform_f64(a, b - a, &mut r);
                let y: f64 = twin.random_range(a..=b);
                assert_eq!(x.to_bits(), y.to_bits(), "[{a}, {b}]");
            }
            assert_eq!(r.random::<u64>(), twin.random::<u64>());
            let d = Dist::Uniform(a, b);
            for _ in 0..1_000 {
                let y: f64 = twin.random_range(a..=b);
                assert_eq!(d.sample(&mut r), SimTime::from_nanos_f64(y), "[{a}, {b}]");
            }
        }
    }

    #[test]
    fn scv_of_known_shapes() {
        assert_eq!(Dist::parse("const(5ms)").unwrap().scv(), 0.0);
        assert!((Dist::parse("exp(5ms)").unwrap().scv() - 1.0).abs() < 1e-12);
        assert!((Dist::parse("erlang(4, 5ms)").unwrap().scv() - 0.25).abs() < 1e-12);
    }
}

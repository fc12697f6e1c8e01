//! Queueing formulas for back-of-envelope estimates and theory checks: Erlang B and C,
//! M/M/c waiting time, Pollaczek–Khinchine for M/G/1, M/M/1/K blocking.
//!
//! Split by model family: `load_dependent` (the USL database node), `chains` (birth–death
//! chains, M/M/c+D, E_k/M/1, E_k/M/c), `mva` (closed networks), `pool` (worker pools over fewer
//! connections). Everything public is re-exported here, so `queueing::X` names it.

mod chains;
mod load_dependent;
mod mva;
mod pool;

pub use chains::{ekm1_wait, ekmc_wait, mmc_deadline, BirthDeath, Deadline};
pub use load_dependent::{LoadDependent, NodeLoad};
pub use mva::{mva, Mva, Station};
pub use pool::{pool_chain, pool_fes, PoolChain};

/// Erlang B: blocking probability of `c` servers offered `a` erlangs, by the stable
/// recursion B_k = a·B_{k−1} / (k + a·B_{k−1}).
pub fn erlang_b(c: u32, a: f64) -> f64 {
    let mut b = 1.0;
    for k in 1..=c {
        b = a * b / (f64::from(k) + a * b);
    }
    b
}

/// Erlang C: probability an arrival waits, `c` servers, `a` = λ/μ erlangs (needs a < c).
pub fn erlang_c(c: u32, a: f64) -> f64 {
    let rho = a / f64::from(c);
    if rho >= 1.0 {
        return 1.0;
    }
    let b = erlang_b(c, a);
    b / (1.0 - rho * (1.0 - b))
}

/// Mean wait in queue of M/M/c (seconds): C(c, a) / (cμ − λ); infinite when saturated.
pub fn mmc_wait(c: u32, lambda: f64, mean_service_s: f64) -> f64 {
    let mu = 1.0 / mean_service_s;
    let a = lambda / mu;
    if a >= f64::from(c) {
        return f64::INFINITY;
    }
    erlang_c(c, a) / (f64::from(c) * mu - lambda)
}

/// Mean wait in queue of M/G/1 (seconds) by Pollaczek–Khinchine: λE[S²] / (2(1−ρ)).
pub fn mg1_wait(lambda: f64, mean_s: f64, second_moment_s2: f64) -> f64 {
    let rho = lambda * mean_s;
    if rho >= 1.0 {
        return f64::INFINITY;
    }
    lambda * second_moment_s2 / (2.0 * (1.0 - rho))
}

/// Allen–Cunneen approximation of the M/G/c mean wait: the M/M/c wait scaled by
/// (1 + SCV)/2 of the service time. Exact for c = 1 (Pollaczek–Khinchine).
pub fn mgc_wait(c: u32, lambda: f64, mean_service_s: f64, scv: f64) -> f64 {
    let w = mmc_wait(c, lambda, mean_service_s);
    if w == 0.0 {
        0.0 // no wait, whatever the variability (an unbounded SCV included)
    } else {
        w * (1.0 + scv) / 2.0
    }
}

/// Allen–Cunneen approximation of the G/G/c mean wait: the M/M/c wait scaled by
/// (ca² + cs²)/2, the squared coefficients of variation of interarrival and service times.
pub fn ggc_wait(c: u32, lambda: f64, mean_service_s: f64, ca2: f64, cs2: f64) -> f64 {
    let w = mmc_wait(c, lambda, mean_service_s);
    if w == 0.0 {
        0.0
    } else {
        w * (ca2 + cs2) / 2.0
    }
}

/// Mean wait in queue of each class of a non-preemptive priority queue with `c` servers
/// (seconds; the first class is the most urgent, FIFO within a class): Cobham's formula
/// W_k = W0 / ((1 − σ_{k−1})(1 − σ_k)), σ_k the load of classes 1..k over the servers and
/// W0 the mean time until a server frees, W0 = C(c, a)·(S/c)·(1 + cs²)/2 (every class with
/// the same service time, mean `mean_service_s`, squared coefficient of variation `scv`).
/// Exact for M/G/1 (W0 = λE[S²]/2) and for M/M/c; for M/G/c the (1 + cs²)/2 scaling is
/// Allen–Cunneen's. `lambdas`: arrival rate per class. A class whose σ_k reaches 1 waits
/// without bound (infinite); the more urgent ones keep finite waits past saturation (the
/// servers are then always busy: C = 1).
pub fn priority_waits(c: u32, lambdas: &[f64], mean_service_s: f64, scv: f64) -> Vec<f64> {
    let cf = f64::from(c.max(1));
    let s = mean_service_s.max(0.0);
    let lambda: f64 = lambdas.iter().map(|l| l.max(0.0)).sum();
    if s == 0.0 || lambda == 0.0 {
        return vec![0.0; lambdas.len()];
    }
    let scv = if scv.is_nan() {
        f64::INFINITY
    } else {
        scv.max(0.0)
    };
    let a = (lambda * s).min(cf);
    let w0 = erlang_c(c.max(1), a) * s / cf * (1.0 + scv) / 2.0;
    let mut sigma = 0.0;
    lambdas
        .iter()
        .map(|l| {
            let before = sigma;
            sigma += l.max(0.0) * s / cf;
            if sigma >= 1.0 || !w0.is_finite() {
                f64::INFINITY
            } else {
                w0 / ((1.0 - before) * (1.0 - sigma))
            }
        })
        .collect()
}

/// Blocking probability of M/M/1/K (K = most requests in the system).
pub fn mm1k_blocking(rho: f64, k: u32) -> f64 {
    if (rho - 1.0).abs() < 1e-12 {
        return 1.0 / f64::from(k + 1);
    }
    (1.0 - rho) * rho.powi(k as i32) / (1.0 - rho.powi(k as i32 + 1))
}

/// P(T > t) for the time in an M/M/c queue (wait + service): with probability 1 − C no
/// wait, else an exponential wait of rate cμ − λ before an exponential service of rate μ.
pub fn mmc_sojourn_survival(c: u32, lambda: f64, mean_service_s: f64, t: f64) -> f64 {
    let mu = 1.0 / mean_service_s;
    let theta = f64::from(c) * mu - lambda;
    if theta <= 0.0 {
        return 1.0;
    }
    let pc = erlang_c(c, lambda * mean_service_s);
    let after_wait = if (theta - mu).abs() < 1e-9 * mu {
        (1.0 + mu * t) * (-mu * t).exp()
    } else {
        (theta * (-mu * t).exp() - mu * (-theta * t).exp()) / (theta - mu)
    };
    (1.0 - pc) * (-mu * t).exp() + pc * after_wait
}

/// E[max of independent T_i] = ∫₀^∞ (1 − ∏ P(T_i ≤ t)) dt, by the trapezoid rule on a grid
/// fine against the smallest mean and long enough that every survival is below 1e-9.
/// `survival[i](t)` is P(T_i > t); `means` their means (for the grid).
pub fn expected_max(survival: &[&dyn Fn(f64) -> f64], means: &[f64]) -> f64 {
    let (lo, hi) = means.iter().fold((f64::INFINITY, 0.0f64), |(lo, hi), &m| {
        (lo.min(m), hi.max(m))
    });
    if survival.is_empty() || !(lo > 0.0 && hi.is_finite()) {
        return means.iter().copied().fold(0.0, f64::max);
    }
    let dt = lo / 200.0;
    let g = |t: f64| 1.0 - survival.iter().map(|s| 1.0 - s(t)).product::<f64>();
    let mut sum = 0.0;
    let mut prev = g(0.0);
    let mut t = 0.0;
    // Stop once the integrand is negligible (at most 10^6 steps).
    for _ in 0..1_000_000 {
        t += dt;
        let cur = g(t);
        sum += 0.5 * (prev + cur) * dt;
        prev = cur;
        if cur < 1e-9 && t > hi {
            break;
        }
    }
    sum
}

/// E[max of N independent exponentials of mean m] = H_N × m.
pub fn max_of_exponentials(n: u32, mean: f64) -> f64 {
    (1..=n).map(|k| 1.0 / f64::from(k)).sum::<f64>() * mean
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod exact_tests;

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

/// Blocking probability of M/M/1/K (K = most requests in the system).
pub fn mm1k_blocking(rho: f64, k: u32) -> f64 {
    if (rho - 1.0).abs() < 1e-12 {
        return 1.0 / f64::from(k + 1);
    }
    (1.0 - rho) * rho.powi(k as i32) / (1.0 - rho.powi(k as i32 + 1))
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod exact_tests;

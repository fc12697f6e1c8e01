//! Queueing formulas for back-of-envelope estimates and theory checks: Erlang B and C,
//! M/M/c waiting time, Pollaczek–Khinchine for M/G/1, M/M/1/K blocking.

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
    mmc_wait(c, lambda, mean_service_s) * (1.0 + scv) / 2.0
}

/// Blocking probability of M/M/1/K (K = most requests in the system).
pub fn mm1k_blocking(rho: f64, k: u32) -> f64 {
    if (rho - 1.0).abs() < 1e-12 {
        return 1.0 / f64::from(k + 1);
    }
    (1.0 - rho) * rho.powi(k as i32) / (1.0 - rho.powi(k as i32 + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn erlang_c_matches_the_published_example() {
        // A = 10 erlangs, 14 agents, 180 s handling time: P(wait) = 0.1741, mean wait 7.836 s.
        let p = erlang_c(14, 10.0);
        assert!((p - 0.1741).abs() < 5e-4, "{p}");
        let w = mmc_wait(14, 10.0 / 180.0, 180.0);
        assert!((w - 7.836).abs() < 0.01, "{w}");
    }

    #[test]
    fn small_cases_reduce_to_mm1() {
        // M/M/1: Wq = ρ/(μ−λ); P-K with exponential service gives the same.
        let (l, s) = (80.0, 0.01);
        let mm1 = 0.8 / (100.0 - 80.0);
        assert!((mmc_wait(1, l, s) - mm1).abs() < 1e-12);
        assert!((mg1_wait(l, s, 2.0 * s * s) - mm1).abs() < 1e-12);
        assert!((mm1k_blocking(0.5, 1) - 1.0 / 3.0).abs() < 1e-12);
    }
}

//! More queueing theory (see validation.md), beyond the headline checks of `theory`: the
//! whole M/M/1 sojourn distribution and its queue lengths, the M/M/c sojourn tail, M/M/1/K
//! in overload, and the closed loop of the machine-repairman model.
//!
//! Each test builds a model from TOML, runs 20 independent replications with fixed seeds
//! and compares the mean over replications with the closed-form result. The tolerance is
//! `SIGMAS` standard errors of that mean (estimated from the spread of the replications, so
//! it follows the real variance of the estimate, autocorrelation included) plus the known
//! resolution of the latency histograms; each check also asserts that its band is narrow,
//! so that it can fail. Runs are sized to take well under a second each in `--release`.

use dssim_engine::SimTime;

use crate::support::{
    assert_theory, component, erlang_c, metric, model, replicate, users_to, Estimate, Plan,
    HDR_RESOLUTION,
};

/// Replications per check (see `support::SIGMAS` for why 20).
const R: u64 = 20;

/// The `q`-quantile of a continuous, decreasing tail function `tail(t) = P(T > t)`, by
/// bisection on `[0, hi]`.
fn quantile_of_tail(q: f64, hi: f64, tail: impl Fn(f64) -> f64) -> f64 {
    let (mut lo, mut hi) = (0.0, hi);
    assert!(tail(hi) < 1.0 - q, "bisection bracket too small");
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if tail(mid) > 1.0 - q {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi)
}

/// M/M/1 at ρ = 0.8 (λ = 800/s, mean service 1 ms): the sojourn time is Exp(μ − λ), so its
/// mean is 1/(μ − λ) = 5 ms and its p-quantile −ln(1 − p)/(μ − λ); the server is busy a
/// share ρ of the time, the mean queue (waiting, not in service) is Lq = ρ²/(1 − ρ), and
/// the mean number in system L = ρ/(1 − ρ) (Little's law on the client side).
#[test]
fn mm1_sojourn_time_is_exponential() {
    let m = model(&users_to(
        "server",
        800,
        &[],
        r#"
        service_time = "exp(1ms)"
        "#,
    ));
    // 400 s per replication: about 320,000 requests; the relaxation time of this queue is
    // 1/(μ(1 − √ρ)²) ≈ 0.09 s, so 10 s of warm-up leaves no trace of the empty start.
    let reports = replicate(
        &m,
        Plan {
            timeseries: Some(SimTime::from_secs(10)),
            ..Plan::new(10, 410, R, 1000)
        },
    );
    let (lambda, mu) = (800.0, 1000.0);
    let rho: f64 = lambda / mu;
    let rate_ms = (mu - lambda) / 1000.0; // of the sojourn time, per ms
    let mean = Estimate::over(&reports, |r| metric(r, "latency_mean_ms"));
    assert_theory(
        "M/M/1 mean sojourn (ms)",
        mean,
        1.0 / rate_ms,
        HDR_RESOLUTION,
        0.03,
    );
    for (col, p) in [("p50_ms", 0.5), ("p90_ms", 0.9), ("p99_ms", 0.99)] {
        let est = Estimate::over(&reports, |r| metric(r, col));
        let theory = -(1.0f64 - p).ln() / rate_ms;
        assert_theory(&format!("M/M/1 {col}"), est, theory, HDR_RESOLUTION, 0.05);
    }
    let util = Estimate::over(&reports, |r| component(r, "server").utilization.unwrap());
    assert_theory("M/M/1 utilization", util, rho, 0.0, 0.01);
    let lq = Estimate::over(&reports, |r| component(r, "server").mean_queue.unwrap());
    assert_theory(
        "M/M/1 mean queue Lq",
        lq,
        rho * rho / (1.0 - rho),
        0.0,
        0.05,
    );
    let l = Estimate::over(&reports, |r| {
        let rows: Vec<_> = r.series.iter().filter(|s| s.t_s >= 10.0).collect();
        rows.iter().map(|s| s.in_flight).sum::<f64>() / rows.len() as f64
    });
    assert_theory("M/M/1 mean in system L", l, rho / (1.0 - rho), 0.0, 0.05);
}

/// M/M/c against Erlang C, on validation.md's example scaled to milliseconds: offered
/// load A = 10 Erl on c = 14 servers (λ = 1000/s, mean service 10 ms). The mean wait is
/// Wq = C/(cμ − λ), the mean number waiting in line Lq = λ·Wq, and the sojourn time is a
/// mixture: with probability 1 − C just the service, otherwise Exp(γ) + Exp(μ) with
/// γ = cμ − λ, so P(T > t) = (1 − C)e^{−μt} + C(γe^{−μt} − μe^{−γt})/(γ − μ).
#[test]
fn mmc_wait_matches_erlang_c() {
    let m = model(
        r#"
        [[clients]]
        name = "calls"
        target = "agents"
        rate = 1000

        [[services]]
        name = "agents"
        workers = 14
        service_time = "exp(10ms)"
        "#,
    );
    let reports = replicate(&m, Plan::new(5, 205, R, 2000));
    let (c, lambda, mu) = (14u32, 1000.0, 100.0); // per second
    let a = lambda / mu;
    let pc = erlang_c(c, a);
    let gamma = f64::from(c) * mu - lambda;
    let wq_ms = 1000.0 * pc / gamma;
    // Lq = λ·Wq = C·ρ/(1 − ρ): the time-average of the waiting line.
    let lq = Estimate::over(&reports, |r| component(r, "agents").mean_queue.unwrap());
    assert_theory(
        "M/M/14 mean queue Lq",
        lq,
        lambda * wq_ms / 1000.0,
        0.0,
        0.06,
    );
    let util = Estimate::over(&reports, |r| component(r, "agents").utilization.unwrap());
    assert_theory("M/M/14 utilization", util, a / f64::from(c), 0.0, 0.01);
    let mean = Estimate::over(&reports, |r| metric(r, "latency_mean_ms"));
    assert_theory(
        "M/M/14 mean sojourn (ms)",
        mean,
        wq_ms + 1000.0 / mu,
        HDR_RESOLUTION,
        0.01,
    );
    // The tail: waiting shows in the p99 (service alone would give ln(100)·10 ms = 46 ms).
    let tail = |t_s: f64| {
        (1.0 - pc) * (-mu * t_s).exp()
            + pc * (gamma * (-mu * t_s).exp() - mu * (-gamma * t_s).exp()) / (gamma - mu)
    };
    let p99_ms = 1000.0 * quantile_of_tail(0.99, 10.0, tail);
    let p99 = Estimate::over(&reports, |r| metric(r, "p99_ms"));
    assert_theory("M/M/14 p99 sojourn (ms)", p99, p99_ms, HDR_RESOLUTION, 0.03);
}

/// M/M/1/K (K = 5 in the system: one in service, four waiting): an arrival that finds K
/// is shed, with probability P_K = (1 − ρ)ρ^K/(1 − ρ^{K+1}) (PASTA); the accepted ones stay
/// W = L/(λ(1 − P_K)) with L = Σ n·p_n. Checked below capacity (ρ = 0.9) and in overload
/// (ρ = 1.5), where only the bounded queue keeps the system stable.
#[test]
fn mm1k_blocking_probability() {
    for (rate, rho) in [(900.0, 0.9), (1500.0, 1.5)] {
        let m = model(&format!(
            r#"
            [[clients]]
            name = "users"
            target = "server"
            rate = {rate}

            [[services]]
            name = "server"
            queue = 4
            service_time = "exp(1ms)"
            "#
        ));
        let reports = replicate(&m, Plan::new(2, 102, R, 3000));
        let k = 5;
        let norm: f64 = (0..=k).map(|n| f64::powi(rho, n)).sum();
        let p = |n: i32| f64::powi(rho, n) / norm;
        let pk = p(k);
        let l: f64 = (0..=k).map(|n| f64::from(n) * p(n)).sum();
        let w_ms = 1000.0 * l / (rate * (1.0 - pk));
        let blocked = Estimate::over(&reports, |r| metric(r, "shed") / metric(r, "requests"));
        assert_theory(
            &format!("M/M/1/5 at ρ = {rho}: blocking P_K"),
            blocked,
            pk,
            0.0,
            0.04,
        );
        let w = Estimate::over(&reports, |r| metric(r, "latency_mean_ms"));
        assert_theory(
            &format!("M/M/1/5 at ρ = {rho}: mean sojourn of accepted (ms)"),
            w,
            w_ms,
            HDR_RESOLUTION,
            0.02,
        );
        for r in &reports {
            let ok = metric(r, "ok");
            let shed = metric(r, "shed");
            assert_eq!(ok + shed, metric(r, "requests"), "every request ends once");
        }
    }
}

/// A closed loop of N users who think Exp(Z) between an answer and the next request, on
/// one exponential server: the machine-repairman model M/M/1//N, solved exactly by
/// p_n ∝ N!/(N − n)!·(1/(Zμ))^n. Throughput X = μ(1 − p_0), response time R = N/X − Z
/// (the interactive response time law).
#[test]
fn closed_loop_matches_the_machine_repairman_model() {
    let m = model(
        r#"
        [[clients]]
        name = "users"
        target = "server"
        arrival = "closed"
        users = 10
        think = "exp(40ms)"

        [[services]]
        name = "server"
        service_time = "exp(5ms)"
        "#,
    );
    let reports = replicate(&m, Plan::new(5, 205, R, 6000));
    let (n, z, s) = (10, 0.040, 0.005);
    let r = s / z; // arrival rate of one thinking user / service rate
    let mut weights = vec![1.0f64];
    for k in 1..=n {
        let prev = weights[k - 1];
        weights.push(prev * (n - k + 1) as f64 * r);
    }
    let total: f64 = weights.iter().sum();
    let p0 = weights[0] / total;
    let x = (1.0 - p0) / s;
    let resp_ms = 1000.0 * (n as f64 / x - z);
    let thr = Estimate::over(&reports, |r| metric(r, "throughput_rps"));
    assert_theory("M/M/1//10 throughput (1/s)", thr, x, 0.0, 0.01);
    let resp = Estimate::over(&reports, |r| metric(r, "latency_mean_ms"));
    assert_theory(
        "M/M/1//10 mean response (ms)",
        resp,
        resp_ms,
        HDR_RESOLUTION,
        0.03,
    );
}

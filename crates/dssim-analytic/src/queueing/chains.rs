//! Exact single-station results: birth–death chains (M/M/c, M/M/c/K, Erlang loss,
//! flow-equivalent servers), M/M/c+D deadline shedding, E_k/M/1 and E_k/M/c (GI/M/c) for round robin.

use super::erlang_b;

/// A birth–death chain on the requests at a station: arrivals at `lambda`, departures at
/// `rates[n − 1]` with n requests present (n = 1..=c), and `rates[c − 1]` beyond c (the
/// station's full speed); at most c + `room` present, an arrival finding it full is refused.
/// Covers M/M/c (room unbounded), M/M/c/K (K = c + room, Gross & Harris §2.5), Erlang's loss
/// system (room 0) and flow-equivalent servers (any rates).
#[derive(Clone, Debug, PartialEq)]
pub struct BirthDeath {
    /// P(n present) for n < c (index n).
    pub low: Vec<f64>,
    /// P(c or more present).
    pub high: f64,
    /// Mean requests waiting beyond the c in service, E[max(n − c, 0)].
    pub waiting: f64,
    /// Share of arrivals refused (found c + room present).
    pub refused: f64,
    /// Mean requests present.
    pub present: f64,
}

impl BirthDeath {
    /// Solves the chain; `None` when it has no steady state (unbounded room, arrivals at or
    /// above the full speed).
    pub fn solve(lambda: f64, rates: &[f64], room: Option<u64>) -> Option<BirthDeath> {
        let c = rates.len();
        if c == 0
            || !(lambda.is_finite() && lambda >= 0.0)
            || rates.iter().any(|r| r.is_nan() || *r <= 0.0)
        {
            return None;
        }
        // log weights of states 0..=c relative to state 0.
        let mut logw = vec![0.0f64; c + 1];
        for n in 1..=c {
            logw[n] = logw[n - 1] + (lambda / rates[n - 1]).ln();
        }
        if lambda == 0.0 {
            let mut low = vec![0.0; c];
            low[0] = 1.0;
            return Some(BirthDeath {
                low,
                high: 0.0,
                waiting: 0.0,
                refused: 0.0,
                present: 0.0,
            });
        }
        let rho = lambda / rates[c - 1];
        // Beyond c: weight(c + j) = weight(c)·ρ^j, j = 1..=q. Sums g0 = Σρ^j, g1 = Σ jρ^j,
        // and the top state's ρ^q, all scaled by exp(-shift) to stay finite.
        let q = room.unwrap_or(u64::MAX);
        let (g0, g1, top, shift) = geometric_sums(rho, q)?;
        // A tail sum g (times exp(−shift)) as a log weight relative to state 0.
        let tail_log = |g: f64| {
            if g > 0.0 {
                logw[c] + shift + g.ln()
            } else {
                f64::NEG_INFINITY
            }
        };
        let best = logw
            .iter()
            .copied()
            .chain([tail_log(g0)])
            .fold(f64::NEG_INFINITY, f64::max);
        let w: Vec<f64> = logw.iter().map(|l| (l - best).exp()).collect();
        let tail0 = (tail_log(g0) - best).exp();
        let tail1 = (tail_log(g1) - best).exp();
        let total: f64 = w.iter().sum::<f64>() + tail0;
        if !(total.is_finite() && total > 0.0) {
            return None;
        }
        let low: Vec<f64> = w[..c].iter().map(|x| x / total).collect();
        let high = (w[c] + tail0) / total;
        let waiting = tail1 / total;
        let refused = match room {
            None => 0.0,
            Some(0) => w[c] / total,
            Some(_) => (tail_log(top) - best).exp() / total,
        };
        let present = low
            .iter()
            .enumerate()
            .map(|(n, p)| n as f64 * p)
            .sum::<f64>()
            + c as f64 * high
            + waiting;
        Some(BirthDeath {
            low,
            high,
            waiting,
            refused,
            present,
        })
    }

    /// E[f(min(n, c))]: a figure of the c-or-fewer state averaged over the chain.
    pub fn mean_of(&self, f: impl Fn(usize) -> f64) -> f64 {
        let c = self.low.len();
        self.low
            .iter()
            .enumerate()
            .map(|(n, p)| p * f(n))
            .sum::<f64>()
            + self.high * f(c)
    }
}

/// For ρ^j, j = 1..=q (q = u64::MAX: unbounded): (Σρ^j, Σ jρ^j, ρ^q) all times exp(−shift),
/// and shift; `None` when the unbounded sums diverge.
fn geometric_sums(rho: f64, q: u64) -> Option<(f64, f64, f64, f64)> {
    if q == 0 {
        return Some((0.0, 0.0, 1.0, 0.0));
    }
    if q == u64::MAX {
        if rho >= 1.0 {
            return None;
        }
        let g0 = rho / (1.0 - rho);
        let g1 = rho / ((1.0 - rho) * (1.0 - rho));
        return Some((g0, g1, 0.0, 0.0));
    }
    let qf = q as f64;
    if (rho - 1.0).abs() < 1e-12 {
        return Some((qf, qf * (qf + 1.0) / 2.0, 1.0, 0.0));
    }
    if rho < 1.0 {
        let rq = rho.powf(qf);
        let g0 = rho * (1.0 - rq) / (1.0 - rho);
        // Σ_{j=1}^q jρ^j = ρ(1 − (q+1)ρ^q + qρ^{q+1}) / (1 − ρ)².
        let g1 = rho * (1.0 - (qf + 1.0) * rq + qf * rq * rho) / ((1.0 - rho) * (1.0 - rho));
        return Some((g0, g1.max(0.0), rq, 0.0));
    }
    // ρ > 1: count from the top, r = 1/ρ, j = q − i: ρ^j = ρ^q r^i; shift = q ln ρ.
    let r = 1.0 / rho;
    let rq = r.powf(qf); // ρ^0 relative to ρ^q
    let g0 = (1.0 - rq) / (1.0 - r); // Σ_{i=0}^{q−1} r^i
                                     // Σ_{i=0}^{q−1} (q − i) r^i = q·g0 − Σ i r^i
    let si = r * (1.0 - qf * r.powf(qf - 1.0) + (qf - 1.0) * rq) / ((1.0 - r) * (1.0 - r));
    let g1 = qf * g0 - si;
    Some((g0, g1.max(0.0), 1.0, qf * rho.ln()))
}

/// What [`mmc_deadline`] predicts.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Deadline {
    /// Share of arrivals served (the rest waited longer than the deadline and are shed).
    pub served: f64,
    /// Mean wait of a served request, seconds.
    pub wait_s: f64,
    /// Mean requests waiting (shed ones included until a worker reaches them).
    pub waiting: f64,
    /// Mean busy servers.
    pub busy: f64,
}

/// M/M/c+D: c exponential servers (mean `mean_s`), Poisson arrivals at `lambda`, FIFO, and
/// a request whose wait would exceed `tau` is never served (dssim's `deadline(τ)`: shed
/// when a worker would take it, so it costs no work). Its offered wait V (the wait it would
/// have) has an atom at 0 of P(fewer than c busy) and the density
/// f(x) = π_{c−1}·λ·e^{−(cμ−λ)x} up to τ, f(τ)·e^{−cμ(x−τ)} beyond (Barrer 1957 for c = 1;
/// Baccelli & Hébuterne 1981); a request is served iff V ≤ τ. Stable at any load.
pub fn mmc_deadline(c: u32, lambda: f64, mean_s: f64, tau: f64) -> Option<Deadline> {
    if !(lambda > 0.0 && mean_s > 0.0 && tau >= 0.0 && lambda.is_finite() && c > 0) {
        return None;
    }
    let mu = 1.0 / mean_s;
    let cmu = f64::from(c) * mu;
    let a = lambda / mu;
    let theta = cmu - lambda;
    // Everything below is scaled by e^{θτ} when θ < 0 so that nothing overflows:
    // e = e^{−θτ}·s, i0 = ∫_0^τ e^{−θx} dx · s, i1 = ∫_0^τ x e^{−θx} dx · s, s = scale.
    let (e, i0, i1, s) = if theta.abs() * tau < 1e-9 {
        (1.0, tau, tau * tau / 2.0, 1.0)
    } else if theta > 0.0 {
        let e = (-theta * tau).exp();
        (
            e,
            (1.0 - e) / theta,
            (1.0 - e * (1.0 + theta * tau)) / (theta * theta),
            1.0,
        )
    } else {
        // θ < 0: multiply by s = e^{θτ} (≤ 1).
        let s = (theta * tau).exp();
        let u = -theta; // > 0: ∫_0^τ e^{ux} dx = (e^{uτ} − 1)/u
        (1.0, (1.0 - s) / u, (tau - (1.0 - s) / u) / u, s)
    };
    // π_k for k < c relative to π_{c−1}: Σ = 1/B(c−1, a) (Erlang B, B(0, a) = 1).
    let low = if c == 1 {
        1.0
    } else {
        1.0 / erlang_b(c - 1, a)
    };
    // Normalisation (times s): π_{c−1}·(low·s + λ(i0 + e/cμ)) = s.
    let tail_mass = e / cmu;
    let tail_mean = e * (tau / cmu + 1.0 / (cmu * cmu));
    let norm = low * s + lambda * (i0 + tail_mass);
    if !(norm.is_finite() && norm > 0.0) {
        return None;
    }
    // P(V = 0), P(0 < V ≤ τ), ∫_0^τ x f, E[V]: each (π_{c−1}·λ·integral·/s)/… = integral/norm.
    let p_zero = low * s / norm;
    let p_served_wait = lambda * i0 / norm;
    let served = (p_zero + p_served_wait).clamp(0.0, 1.0);
    let wait_sum = lambda * i1 / norm;
    let v_mean = lambda * (i1 + tail_mean) / norm;
    Some(Deadline {
        served,
        wait_s: if served > 0.0 { wait_sum / served } else { 0.0 },
        waiting: lambda * v_mean,
        busy: lambda * served * mean_s,
    })
}

/// Mean wait in queue of E_k/M/1: Erlang-k interarrival times (k stages of rate `stage`,
/// mean k/stage) at one exponential server of mean `mean_s` — each of k servers fed in
/// turn by a round robin over a Poisson stream of rate `stage`. GI/M/1 (Gross & Harris
/// §6.3): W_q = σ/(μ(1−σ)), σ the root in (0, 1) of σ = A*(μ(1−σ)), A*(s) = (stage/(stage+s))^k.
/// Infinite when saturated.
pub fn ekm1_wait(k: u32, stage: f64, mean_s: f64) -> f64 {
    let mu = 1.0 / mean_s;
    let rho = stage / f64::from(k.max(1)) * mean_s;
    if rho.is_nan() || rho >= 1.0 {
        return f64::INFINITY;
    }
    if rho <= 0.0 {
        return 0.0;
    }
    let g = |x: f64| (stage / (stage + mu * (1.0 - x))).powi(k.max(1) as i32) - x;
    // g(0) > 0, g < 0 just below 1 (ρ < 1): bisection.
    let sigma = root_in_unit(g);
    sigma / (mu * (1.0 - sigma))
}

/// The root σ in (0, 1) of `g` (g(0) > 0, g < 0 just below 1), by 200 bisections.
fn root_in_unit(g: impl Fn(f64) -> f64) -> f64 {
    let (mut lo, mut hi) = (0.0, 1.0 - 1e-15);
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if g(mid) > 0.0 {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi)
}

/// Most work (elementary steps) [`ekmc_wait`] spends before it gives up (the caller then
/// approximates): the k Erlang stages over the levels it keeps, plus c³ for its system.
const GIMC_WORK: f64 = 5e7;

/// Mean wait in queue of E_k/M/c, exact: Erlang-k interarrival times (k stages of rate
/// `stage`) at `c` exponential servers of mean `mean_s` — an instance with c workers fed
/// every k-th request of a Poisson stream of rate `stage` by a round robin over k.
///
/// GI/M/c (Gross & Harris §6.3.2; Takács): seen by arrivals, the number present is
/// geometric from c − 1 up, q_n = q_{c−1} σ^(n−c+1), σ the root in (0, 1) of
/// σ = A*(cμ(1−σ)), A*(s) = (stage/(stage+s))^k, and a waiting arrival waits an exponential
/// time of rate cμ(1−σ), so W_q = q_{c−1} σ / (cμ(1−σ)²). The c unknowns q_0, …, q_{c−1}
/// solve the embedded chain's balance at states 1 … c−1 and the normalisation: the
/// transition probabilities are those of the pure-death process (rates min(n, c)μ) over an
/// Erlang-k time, computed stage by stage (each stage one pass down the levels), the
/// geometric tail summed as one vector down to where σ^n is below 10⁻¹⁸ of its head —
/// so the result is exact to rounding. `None` when the work would pass [`GIMC_WORK`] or
/// the solution comes out negative (rounding), for the caller to approximate; infinite
/// when saturated.
#[allow(clippy::needless_range_loop)] // index arithmetic over levels and states
pub fn ekmc_wait(k: u32, stage: f64, c: u32, mean_s: f64) -> Option<f64> {
    let k = k.max(1);
    let c = c.max(1);
    if c == 1 {
        return Some(ekm1_wait(k, stage, mean_s));
    }
    let mu = 1.0 / mean_s;
    let cf = f64::from(c);
    let rho = stage / f64::from(k) * mean_s / cf;
    if rho.is_nan() || rho >= 1.0 {
        return Some(f64::INFINITY);
    }
    if rho <= 0.0 || !mu.is_finite() {
        return Some(0.0);
    }
    let ki = k as i32;
    let g = |x: f64| (stage / (stage + cf * mu * (1.0 - x))).powi(ki) - x;
    let sigma = root_in_unit(g);
    if !(sigma > 0.0 && sigma < 1.0) {
        return None;
    }
    let cu = c as usize;
    // Levels kept for the tail: σ^(top − c) < 1e-18.
    let extra = (18.0 * std::f64::consts::LN_10 / -sigma.ln()).ceil() + 2.0;
    let top = cu as f64 + extra;
    let work = f64::from(k) * (top + 0.5 * cf * cf) + cf * cf * cf;
    if work.is_nan() || work > GIMC_WORK {
        return None;
    }
    let top = top as usize;
    // One Erlang stage (an exponential time of rate `stage`) of the pure-death process,
    // applied to a row vector of masses on levels 0..x.len(): from the top down, the mass
    // reaching level m leaves before the clock with probability d_m/(stage + d_m).
    let death = |m: usize| (m.min(cu) as f64) * mu;
    let step = |x: &mut Vec<f64>| {
        let mut carry = 0.0;
        for m in (0..x.len()).rev() {
            let y = x[m] + carry;
            let d = death(m);
            x[m] = y * stage / (stage + d);
            carry = y * d / (stage + d);
        }
    };
    // p[i][j]: from i seen (i + 1 just after the arrival) to j seen by the next, i < c − 1.
    let mut p = vec![vec![0.0f64; cu]; cu.saturating_sub(1)];
    for (i, row) in p.iter_mut().enumerate() {
        let mut x = vec![0.0f64; i + 2];
        x[i + 1] = 1.0;
        for _ in 0..k {
            step(&mut x);
        }
        for (j, v) in x.into_iter().enumerate().take(cu) {
            row[j] = v;
        }
    }
    // The tail from c − 1 up, per unit of q_{c−1}: σ^(i−c+1) at i, i.e. at level i + 1.
    let mut x = vec![0.0f64; top + 1];
    let mut w = 1.0;
    for level in cu..=top {
        x[level] = w;
        w *= sigma;
    }
    for _ in 0..k {
        step(&mut x);
    }
    let tail = &x[..cu];
    // Unknowns q_0 … q_{c−1}: rows j = 1 … c−1 the balance q_j = Σ_i q_i p_ij (the tail's
    // share through q_{c−1}), row 0 the normalisation Σ_{i<c−1} q_i + q_{c−1}/(1 − σ) = 1.
    let mut a = vec![vec![0.0f64; cu + 1]; cu];
    for j in 1..cu {
        a[j][j] += 1.0;
        for i in 0..cu - 1 {
            a[j][i] -= p[i][j];
        }
        a[j][cu - 1] -= tail[j];
    }
    for i in 0..cu - 1 {
        a[0][i] = 1.0;
    }
    a[0][cu - 1] = 1.0 / (1.0 - sigma);
    a[0][cu] = 1.0;
    // Gaussian elimination, partial pivoting.
    for col in 0..cu {
        let piv = (col..cu).max_by(|&r, &s| a[r][col].abs().total_cmp(&a[s][col].abs()))?;
        if a[piv][col].abs() < 1e-300 {
            return None;
        }
        a.swap(col, piv);
        for r in col + 1..cu {
            let f = a[r][col] / a[col][col];
            if f != 0.0 {
                for t in col..=cu {
                    a[r][t] -= f * a[col][t];
                }
            }
        }
    }
    let mut q = vec![0.0f64; cu];
    for r in (0..cu).rev() {
        let s: f64 = (r + 1..cu).map(|t| a[r][t] * q[t]).sum();
        q[r] = (a[r][cu] - s) / a[r][r];
    }
    if q.iter().any(|v| !v.is_finite() || *v < -1e-9) {
        return None;
    }
    let wq = q[cu - 1] * sigma / (cf * mu * (1.0 - sigma) * (1.0 - sigma));
    (wq.is_finite() && wq >= 0.0).then_some(wq)
}

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

/// A node that serves every request it holds at once, each slowed by the Universal
/// Scalability Law factor `1 + σ(n−1) + κn(n−1)` for the n requests in it (a database
/// node), with at most `cap` requests inside.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LoadDependent {
    /// Time of a request alone: the part the law stretches, seconds.
    pub base_s: f64,
    /// Time it does not stretch (disk reads, waiting for replicas), seconds.
    pub fixed_s: f64,
    /// Contention σ and coherency κ; none for a node whose requests do not slow each other.
    pub usl: Option<(f64, f64)>,
    /// Most requests inside, and what happens to one more: refused (`true`, connections
    /// full) or held back upstream until one leaves (`false`: callers' workers or pools).
    pub cap: Option<(u64, bool)>,
    /// With a cap held upstream (`false`), the time per request each of those slots is
    /// busy outside the node (a worker's own CPU time): fewer than `cap` are inside at
    /// saturation.
    pub outside_s: f64,
}

/// What [`LoadDependent::solve`] predicts at one arrival rate.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct NodeLoad {
    /// Requests served per second (refusals taken off).
    pub carried: f64,
    /// Share of arrivals refused.
    pub refused: f64,
    /// Mean requests inside (connections in use).
    pub inside: f64,
    /// Mean time inside, seconds.
    pub sojourn_s: f64,
    /// Mean stretch of the base time by the law (1 without contention).
    pub stretch: f64,
}

/// Erlang B for any number of servers: the recursion stops once the blocking is
/// negligible (it only falls past `a` servers).
fn erlang_b_capped(c: u64, a: f64) -> f64 {
    if c as f64 > a + 40.0 * a.sqrt() + 100.0 {
        return 0.0; // beyond 40 standard deviations of the offered load
    }
    if c > 5_000_000 {
        return (1.0 - c as f64 / a).max(0.0); // the fluid limit, for huge systems
    }
    let mut b = 1.0;
    let mut k = 0u64;
    while k < c {
        k += 1;
        b = a * b / (k as f64 + a * b);
        if b < 1e-300 || (k as f64 > a && b < 1e-18) {
            return 0.0;
        }
    }
    b
}

/// States summed at most for a load-dependent node.
const MAX_STATES: u64 = 200_000;

impl LoadDependent {
    fn factor(&self, n: u64) -> f64 {
        self.factor_f(n as f64)
    }

    /// The law's stretch with `n` (not necessarily whole) requests inside.
    fn factor_f(&self, n: f64) -> f64 {
        let n = n.max(1.0);
        match self.usl {
            Some((s, k)) => 1.0 + s * (n - 1.0) + k * n * (n - 1.0),
            None => 1.0,
        }
    }

    /// Throughput with n requests inside: n / (base·factor(n) + fixed).
    pub fn rate(&self, n: u64) -> f64 {
        self.rate_f(n as f64)
    }

    fn rate_f(&self, n: f64) -> f64 {
        let t = self.base_s * self.factor_f(n) + self.fixed_s;
        if t > 0.0 {
            n / t
        } else {
            f64::INFINITY
        }
    }

    /// Requests inside at the highest throughput (infinite when more always helps).
    fn peak_n(&self) -> f64 {
        match self.usl {
            Some((s, k)) if k > 0.0 => {
                // rate_f is unimodal: golden-section search around √((1−σ)/κ).
                let guess = ((1.0 - s).max(0.0) / k).sqrt().max(1.0);
                let (mut a, mut b) = (1.0, 4.0 * guess + 4.0);
                let g = 0.5 * (5f64.sqrt() - 1.0);
                for _ in 0..200 {
                    let c = b - g * (b - a);
                    let d = a + g * (b - a);
                    if self.rate_f(c) < self.rate_f(d) {
                        a = c;
                    } else {
                        b = d;
                    }
                }
                0.5 * (a + b)
            }
            _ => f64::INFINITY,
        }
    }

    /// With a cap held upstream by slots that also work outside the node, the requests
    /// inside when every slot is busy: n with n + rate(n)·outside = cap.
    fn busy_inside(&self) -> Option<f64> {
        let (c, refuse) = self.cap?;
        let c = c.max(1) as f64;
        if refuse || self.outside_s <= 0.0 {
            return Some(c);
        }
        let g = |n: f64| n + self.rate_f(n) * self.outside_s;
        if g(c) <= c {
            return Some(c);
        }
        let (mut lo, mut hi) = (0.0, c);
        for _ in 0..100 {
            let mid = 0.5 * (lo + hi);
            if g(mid) <= c {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        Some(lo.max(1e-9))
    }

    /// The highest rate it sustains on its own: pinned at its connection cap (refusing
    /// beyond it); else its peak (κ > 0), the limit of its throughput (σ > 0, κ = 0:
    /// 1/(base·σ)) or unbounded; but callers that can push it past its peak (with every
    /// slot busy, more inside than the peak wants) drag it down to the rate there.
    pub fn saturation(&self) -> f64 {
        if let Some((c, true)) = self.cap {
            return self.rate(c.max(1));
        }
        let own = match self.usl {
            None => f64::INFINITY,
            Some((s, k)) if k <= 0.0 && s > 0.0 && self.base_s > 0.0 => 1.0 / (self.base_s * s),
            Some((_, k)) if k <= 0.0 => f64::INFINITY,
            Some(_) => self.rate_f(self.peak_n()),
        };
        match self.busy_inside() {
            Some(n) if n > self.peak_n() => self.rate_f(n),
            _ => own,
        }
    }

    /// The rate at which the callers' slots run out before this node does (every slot busy,
    /// fewer inside than its peak): the callers are the bottleneck. None otherwise.
    pub fn callers_limit(&self) -> Option<f64> {
        let (_, refuse) = self.cap?;
        if refuse {
            return None;
        }
        let n = self.busy_inside()?;
        (n <= self.peak_n()).then(|| self.rate_f(n))
    }

    /// The cap as the chain sees it: with slots held upstream that also work outside the
    /// node, the requests inside when every slot is busy, rounded up.
    pub fn effective_cap(&self) -> Option<(u64, bool)> {
        match (self.cap, self.busy_inside()) {
            (Some((_, false)), Some(n)) => Some(((n.ceil() as u64).max(1), false)),
            (other, _) => other,
        }
    }

    /// The node pinned at its cap with a backlog upstream (a saturated closed loop): as
    /// many requests inside as the busy slots allow.
    pub fn pinned(&self) -> Option<NodeLoad> {
        let n = self.busy_inside()?;
        let x = self.rate_f(n);
        x.is_finite().then(|| NodeLoad {
            carried: x,
            refused: 0.0,
            inside: n,
            sojourn_s: self.base_s * self.factor_f(n) + self.fixed_s,
            stretch: self.factor_f(n),
        })
    }

    /// The node fed Poisson arrivals at `lambda` per second: a birth–death chain on the
    /// requests inside (death rate `rate(n)`; exact without contention, where it is
    /// M/G/∞, Erlang's loss system or M/G/c, all insensitive to the service law). `None`
    /// when it cannot keep up.
    pub fn solve(&self, lambda: f64) -> Option<NodeLoad> {
        let time = |n: u64| self.base_s * self.factor(n) + self.fixed_s;
        if !(lambda.is_finite() && lambda >= 0.0) {
            return None;
        }
        if lambda == 0.0 {
            return Some(NodeLoad {
                carried: 0.0,
                refused: 0.0,
                inside: 0.0,
                sojourn_s: time(1),
                stretch: 1.0,
            });
        }
        let (cap, refuse) = match self.effective_cap() {
            Some((c, r)) => (c.max(1), r),
            None => (u64::MAX, false),
        };
        if self.usl.is_none() {
            // M/G/∞, Erlang's loss system M/G/c/c, or M/G/c with the queue upstream.
            let s = time(1);
            let a = lambda * s;
            let refused = if refuse { erlang_b_capped(cap, a) } else { 0.0 };
            if !refuse && cap != u64::MAX && a >= cap as f64 {
                return None;
            }
            let carried = lambda * (1.0 - refused);
            return Some(NodeLoad {
                carried,
                refused,
                inside: carried * s,
                sojourn_s: s,
                stretch: 1.0,
            });
        }
        // log of the stationary weight of state n, relative to state 0.
        let mut logw = 0.0f64;
        let mut best = 0.0f64;
        let mut w: Vec<f64> = vec![0.0];
        let mut n = 0u64;
        let mut tail_ratio = None;
        loop {
            if n >= cap {
                if !refuse {
                    // Beyond the cap requests wait upstream; the node runs at rate(cap).
                    let r = lambda / self.rate(cap);
                    if r >= 1.0 {
                        return None;
                    }
                    tail_ratio = Some(r);
                }
                break;
            }
            let mu = self.rate(n + 1);
            let ratio = lambda / mu;
            logw += ratio.ln();
            n += 1;
            w.push(logw);
            best = best.max(logw);
            // Stop once the weights fall fast and far below the largest: the rest is
            // negligible, unless a retrograde law could make them climb again (USL with
            // κ > 0 past its peak: then the chain runs to the cap, or reports no steady state).
            let falling_for_good = ratio < 1.0
                && match self.usl {
                    Some((_, k)) if k > 0.0 => {
                        self.rate(n + 1) >= self.rate(n) || lambda < self.rate(n + 1) * 1e-3
                    }
                    _ => true,
                };
            if logw < best - 40.0 && falling_for_good {
                break;
            }
            if n >= MAX_STATES {
                if cap == u64::MAX && logw >= best - 40.0 {
                    return None; // no steady state within reach
                }
                break;
            }
            if cap == u64::MAX && ratio >= 1.0 && self.usl.is_some_and(|(_, k)| k > 0.0) {
                // Past the USL peak with arrivals faster than the node drains: metastable
                // at best; the chain is cut here (the node's collapse is not modelled).
                if lambda >= self.saturation() {
                    return None;
                }
                break;
            }
        }
        let p: Vec<f64> = w.iter().map(|l| (l - best).exp()).collect();
        let mut total: f64 = p.iter().sum();
        let last = *p.last().unwrap_or(&0.0);
        let tail = tail_ratio.map_or(0.0, |r| last * r / (1.0 - r));
        total += tail;
        if !(total.is_finite() && total > 0.0) {
            return None;
        }
        // Arrivals see the chain's state (PASTA) and take time(n + 1), or time(cap) once
        // they get in from upstream; an arrival at a full node with `refuse` is refused.
        let full = if refuse && n >= cap {
            last / total
        } else {
            0.0
        };
        let mut time_sum = 0.0;
        let mut stretch_sum = 0.0;
        let mut admitted = 0.0;
        for (i, pi) in p.iter().enumerate() {
            let i = i as u64;
            if refuse && i >= cap {
                continue;
            }
            let k = (i + 1).min(cap);
            time_sum += pi * time(k);
            stretch_sum += pi * self.factor(k);
            admitted += pi;
        }
        if tail > 0.0 {
            time_sum += tail * time(cap);
            stretch_sum += tail * self.factor(cap);
            admitted += tail;
        }
        if admitted <= 0.0 {
            return None;
        }
        let sojourn = time_sum / admitted;
        let carried = lambda * (1.0 - full);
        Some(NodeLoad {
            carried,
            refused: full,
            inside: carried * sojourn,
            sojourn_s: sojourn,
            stretch: stretch_sum / admitted,
        })
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

    fn node(usl: Option<(f64, f64)>, cap: Option<(u64, bool)>) -> LoadDependent {
        LoadDependent {
            base_s: 0.001,
            fixed_s: 0.0,
            usl,
            cap,
            outside_s: 0.0,
        }
    }

    #[test]
    fn a_node_without_contention_is_mg_infinity_erlang_loss_or_mgc() {
        // M/G/∞: 3.2 erlangs inside, no refusals.
        let inf = node(None, None).solve(3200.0).unwrap();
        assert!((inf.inside - 3.2).abs() < 1e-12 && inf.refused == 0.0);
        // M/G/4/4: Erlang B.
        let loss = node(None, Some((4, true))).solve(3200.0).unwrap();
        assert!((loss.refused - erlang_b(4, 3.2)).abs() < 1e-12);
        assert!((loss.inside - 3.2 * (1.0 - erlang_b(4, 3.2))).abs() < 1e-12);
        // Four slots upstream: stable below 4 erlangs; at 4,000/s the callers' slots run
        // out, not the node.
        let q = node(None, Some((4, false)));
        assert!((q.solve(3200.0).unwrap().inside - 3.2).abs() < 1e-12);
        assert!(q.solve(4000.0).is_none());
        assert!(q.saturation().is_infinite());
        assert!((q.callers_limit().unwrap() - 4000.0).abs() < 1e-9);
    }

    #[test]
    fn a_usl_node_peaks_where_the_law_says() {
        // experiments/db-connections.toml: σ = 0.05, κ = 0.002, S = 1 ms: the peak is at
        // N* = √(0.95/0.002) ≈ 21.8 connections, about 7,400 requests/s.
        let n = node(Some((0.05, 0.002)), None);
        let peak = n.saturation();
        let best = (1..200).map(|k| n.rate(k)).fold(0.0, f64::max);
        assert!(
            peak >= best - 1e-9 && peak < best * 1.001,
            "{peak} vs {best}"
        );
        assert!((peak - 7400.0).abs() < 50.0, "{peak}");
        // Light load: almost one request at a time, barely stretched.
        let light = n.solve(100.0).unwrap();
        assert!(light.stretch < 1.01 && (light.sojourn_s - 0.001).abs() < 1e-4);
        // Callers with 64 slots push it past its peak: it saturates lower, at rate(64).
        let pushed = node(Some((0.05, 0.002)), Some((64, false)));
        assert!((pushed.saturation() - pushed.rate(64)).abs() < 1e-9);
        assert!(pushed.saturation() < peak * 0.8 && pushed.callers_limit().is_none());
        // With 8 slots the callers run out first.
        let few = node(Some((0.05, 0.002)), Some((8, false)));
        assert!((few.callers_limit().unwrap() - few.rate(8)).abs() < 1e-9);
        assert!((few.saturation() - peak).abs() < 1e-9);
        // Slots that also spend 1 ms outside: fewer inside when all are busy.
        let busy = LoadDependent {
            outside_s: 0.001,
            ..few
        };
        let inside = busy.pinned().unwrap().inside;
        assert!(
            (inside + busy.pinned().unwrap().carried * 0.001 - 8.0).abs() < 1e-6 && inside < 8.0
        );
    }

    #[test]
    fn a_load_dependent_node_never_returns_nan() {
        for usl in [
            None,
            Some((0.0, 0.0)),
            Some((0.5, 0.0)),
            Some((0.1, 1e-9)),
            Some((0.9, 10.0)),
        ] {
            for cap in [
                None,
                Some((1, true)),
                Some((1, false)),
                Some((u64::MAX, true)),
                Some((1 << 40, false)),
            ] {
                for lambda in [0.0, 1e-9, 1.0, 1e3, 1e9, f64::INFINITY, f64::NAN] {
                    let n = LoadDependent {
                        base_s: 0.002,
                        fixed_s: 0.001,
                        usl,
                        cap,
                        outside_s: 0.003,
                    };
                    assert!(!n.saturation().is_nan());
                    if let Some(x) = n.solve(lambda) {
                        assert!(
                            [x.carried, x.refused, x.inside, x.sojourn_s, x.stretch]
                                .iter()
                                .all(|v| v.is_finite()),
                            "{usl:?} {cap:?} {lambda}: {x:?}"
                        );
                    }
                }
            }
        }
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

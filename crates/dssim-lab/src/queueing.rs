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

    /// The law's stretch with `n` requests inside.
    pub fn factor_at(&self, n: u32) -> f64 {
        self.factor(u64::from(n))
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
    let (mut lo, mut hi) = (0.0, 1.0 - 1e-15);
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if g(mid) > 0.0 {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    let sigma = 0.5 * (lo + hi);
    sigma / (mu * (1.0 - sigma))
}

/// A station of a closed network: its service rate with j requests present is
/// `rates[j − 1]`/D (D the demand of the request class), and `rates.last()`/D beyond;
/// `rates = [1]` is one server, `[1, 2, …, c]` c servers; empty: a delay (infinite
/// servers, no queueing).
#[derive(Clone, Debug, PartialEq)]
pub struct Station {
    /// Relative speed with 1, 2, … requests present (constant past the last).
    pub rates: Vec<f64>,
}

impl Station {
    /// c identical servers.
    pub fn servers(c: u32) -> Station {
        Station {
            rates: (1..=c.max(1)).map(f64::from).collect(),
        }
    }
}

/// What [`mva`] finds for a closed network at its full population.
#[derive(Clone, Debug, PartialEq)]
pub struct Mva {
    /// Throughput per class, per second (cycles through the think time).
    pub throughput: Vec<f64>,
    /// Residence time per class and station, seconds (wait + demand).
    pub residence: Vec<Vec<f64>>,
    /// Mean requests per station.
    pub queue: Vec<f64>,
    /// Per station: P(j present) for j < its rates' length, then P(that many or more).
    pub marginal: Vec<Vec<f64>>,
    /// The algorithm used: `exact MVA` or `Schweitzer–Bard AMVA`.
    pub method: &'static str,
}

/// Population vectors (Π (N_r + 1)) × stations above which [`mva`] turns approximate.
const MVA_EXACT_STATES: f64 = 4e6;

/// Mean Value Analysis of a closed product-form network: classes r with `population[r]`
/// requests, each thinking `think[r]` (a delay) and asking `demand[r][k]` seconds of
/// station k per cycle. Exact (Reiser & Lavenberg 1980; load-dependent stations by their
/// marginal probabilities, Lazowska et al. 1984, ch. 20, keeping only the first c of them
/// since the rate is constant beyond: Σ_{j≥c} P_j follows from the utilization) while the
/// population vectors are few; Schweitzer–Bard approximate MVA beyond (multi-server
/// stations by Seidmann's approximation: one server D/c plus a delay D(c−1)/c).
pub fn mva(stations: &[Station], demand: &[Vec<f64>], think: &[f64], population: &[u64]) -> Mva {
    let states: f64 = population.iter().map(|n| *n as f64 + 1.0).product();
    let width: f64 = stations.iter().map(|s| s.rates.len() as f64 + 1.0).sum();
    if states * width <= MVA_EXACT_STATES {
        mva_exact(stations, demand, think, population)
    } else {
        mva_schweitzer(stations, demand, think, population)
    }
}

/// Residence time per unit demand at a load-dependent station with rates α and the
/// state seen by an arrival (queue length q, marginals p[j] for j < c):
/// Σ_{j=1}^{c} (j/α_j)·p(j−1) + (q + 1 − Σ_{i<c}(i+1)p(i))/α_c.
#[allow(clippy::needless_range_loop)] // index arithmetic over stations and classes
fn ld_residence(rates: &[f64], q: f64, p: &[f64]) -> f64 {
    let c = rates.len();
    let mut r = 0.0;
    let mut covered = 0.0;
    for i in 0..c {
        r += (i + 1) as f64 / rates[i] * p[i];
        covered += (i + 1) as f64 * p[i];
    }
    r + (q + 1.0 - covered).max(0.0) / rates[c - 1]
}

#[allow(clippy::needless_range_loop)] // index arithmetic over stations and classes
fn mva_exact(stations: &[Station], demand: &[Vec<f64>], think: &[f64], pop: &[u64]) -> Mva {
    let rc = pop.len();
    let kc = stations.len();
    let radix: Vec<usize> = pop.iter().map(|n| *n as usize + 1).collect();
    let total: usize = radix.iter().product();
    // stride of class r in the mixed-radix index
    let mut stride = vec![1usize; rc];
    for r in 1..rc {
        stride[r] = stride[r - 1] * radix[r - 1];
    }
    let cs: Vec<usize> = stations.iter().map(|s| s.rates.len()).collect();
    // Per population vector: queue length per station, marginals P(j) j < c per station.
    let mut q = vec![0.0f64; total * kc];
    let moff: Vec<usize> = cs
        .iter()
        .scan(0usize, |acc, &c| {
            let o = *acc;
            *acc += c;
            Some(o)
        })
        .collect();
    let mw: usize = cs.iter().sum();
    let mut marg = vec![0.0f64; total * mw];
    // The empty network: P(0) = 1 everywhere.
    for k in 0..kc {
        if cs[k] > 0 {
            marg[moff[k]] = 1.0;
        }
    }
    let mut x = vec![0.0f64; rc];
    let mut res = vec![vec![0.0f64; kc]; rc];
    let mut digits = vec![0usize; rc];
    for idx in 1..total {
        // next population vector (mixed radix increment)
        for r in 0..rc {
            digits[r] += 1;
            if digits[r] < radix[r] {
                break;
            }
            digits[r] = 0;
        }
        for r in 0..rc {
            x[r] = 0.0;
            for k in 0..kc {
                res[r][k] = 0.0;
            }
            if digits[r] == 0 {
                continue;
            }
            let prev = idx - stride[r];
            let mut cycle = think[r];
            for k in 0..kc {
                let d = demand[r][k];
                if d <= 0.0 {
                    continue;
                }
                let rk = if cs[k] == 0 {
                    d
                } else {
                    let p = &marg[prev * mw + moff[k]..prev * mw + moff[k] + cs[k]];
                    d * ld_residence(&stations[k].rates, q[prev * kc + k], p)
                };
                res[r][k] = rk;
                cycle += rk;
            }
            x[r] = if cycle > 0.0 {
                digits[r] as f64 / cycle
            } else {
                0.0
            };
        }
        for k in 0..kc {
            q[idx * kc + k] = (0..rc).map(|r| x[r] * res[r][k]).sum();
            let c = cs[k];
            if c == 0 {
                continue;
            }
            let rates = &stations[k].rates;
            // P(j | n) = Σ_r D_rk X_r P(j−1 | n − e_r) / α_j, 1 ≤ j < c.
            let mut p = vec![0.0f64; c];
            for j in 1..c {
                let mut v = 0.0;
                for r in 0..rc {
                    if digits[r] == 0 || demand[r][k] <= 0.0 {
                        continue;
                    }
                    let prev = idx - stride[r];
                    v += demand[r][k] * x[r] * marg[prev * mw + moff[k] + j - 1];
                }
                p[j] = v / rates[j - 1];
            }
            // Σ_j α_j P(j) = U = Σ_r X_r D_rk gives P(≥ c); P(0) what is left.
            let u: f64 = (0..rc).map(|r| x[r] * demand[r][k]).sum();
            let below: f64 = (1..c).map(|j| rates[j - 1] * p[j]).sum();
            let at_c = ((u - below) / rates[c - 1]).max(0.0);
            p[0] = (1.0 - p[1..].iter().sum::<f64>() - at_c).max(0.0);
            marg[idx * mw + moff[k]..idx * mw + moff[k] + c].copy_from_slice(&p);
        }
    }
    let last = total - 1;
    let marginal = (0..kc)
        .map(|k| {
            let c = cs[k];
            let mut v: Vec<f64> = marg[last * mw + moff[k]..last * mw + moff[k] + c].to_vec();
            let s: f64 = v.iter().sum();
            v.push((1.0 - s).max(0.0));
            v
        })
        .collect();
    Mva {
        throughput: x,
        residence: res,
        queue: q[last * kc..(last + 1) * kc].to_vec(),
        marginal,
        method: "exact MVA",
    }
}

#[allow(clippy::needless_range_loop)] // index arithmetic over stations and classes
fn mva_schweitzer(stations: &[Station], demand: &[Vec<f64>], think: &[f64], pop: &[u64]) -> Mva {
    let rc = pop.len();
    let kc = stations.len();
    // Seidmann: a station whose rate grows to c behaves as one server of D/c plus a delay
    // of D(c−1)/c; the delay part joins the cycle.
    let speed: Vec<f64> = stations
        .iter()
        .map(|s| s.rates.last().copied().unwrap_or(0.0))
        .collect();
    let split = |r: usize, k: usize| -> (f64, f64) {
        let d = demand[r][k];
        if stations[k].rates.is_empty() {
            (0.0, d)
        } else {
            let c = speed[k].max(1e-300);
            (d / c, d - d / c)
        }
    };
    let n: Vec<f64> = pop.iter().map(|x| *x as f64).collect();
    // Per class per station queue lengths; start spread evenly over the queueing stations.
    let mut qrk = vec![vec![0.0f64; kc]; rc];
    for r in 0..rc {
        let busy: Vec<usize> = (0..kc)
            .filter(|&k| demand[r][k] > 0.0 && !stations[k].rates.is_empty())
            .collect();
        for &k in &busy {
            qrk[r][k] = n[r] / busy.len() as f64;
        }
    }
    let mut x = vec![0.0f64; rc];
    let mut res = vec![vec![0.0f64; kc]; rc];
    for _ in 0..100_000 {
        let qk: Vec<f64> = (0..kc).map(|k| (0..rc).map(|r| qrk[r][k]).sum()).collect();
        let mut change = 0.0f64;
        for r in 0..rc {
            if n[r] <= 0.0 {
                continue;
            }
            let mut cycle = think[r];
            for k in 0..kc {
                let (dq, dd) = split(r, k);
                // Schweitzer: the arrival sees the queue less its own share 1/N_r.
                let seen = qk[k] - qrk[r][k] / n[r];
                res[r][k] = dq * (1.0 + seen) + dd;
                cycle += res[r][k];
            }
            x[r] = if cycle > 0.0 { n[r] / cycle } else { 0.0 };
        }
        for r in 0..rc {
            for k in 0..kc {
                let newq = if stations[k].rates.is_empty() {
                    0.0
                } else {
                    x[r] * (res[r][k] - split(r, k).1)
                };
                change = change.max((newq - qrk[r][k]).abs());
                qrk[r][k] = newq;
            }
        }
        if change < 1e-10 {
            break;
        }
    }
    let queue = (0..kc)
        .map(|k| (0..rc).map(|r| x[r] * res[r][k]).sum())
        .collect();
    // Marginals are not part of the approximation: the busy servers, U per server, spread
    // as all-or-nothing (used only for the utilization).
    let marginal = (0..kc)
        .map(|k| {
            let c = stations[k].rates.len();
            let u: f64 = (0..rc).map(|r| x[r] * demand[r][k]).sum();
            let mut v = vec![0.0; c + 1];
            if c > 0 {
                let full = (u / speed[k]).clamp(0.0, 1.0);
                v[c] = full;
                v[0] = 1.0 - full;
            }
            v
        })
        .collect();
    Mva {
        throughput: x,
        residence: res,
        queue,
        marginal,
        method: "Schweitzer–Bard AMVA (Seidmann for multi-server stations)",
    }
}

/// A pool of `conns` connections shared by `workers` workers, each of which, while it
/// holds a request, works `outside_s` on its own (a delay) and then needs a connection for
/// `call_s` (FCFS, exponential): for m = 0..=workers busy workers, the requests they
/// complete per second and the mean number of them waiting for a connection — the closed
/// network solved by exact MVA for every population, i.e. the flow-equivalent server
/// (Chandy, Herzog & Woo 1975) of the workers' loop, exact for product-form networks.
#[allow(clippy::needless_range_loop)] // index arithmetic over stations and classes
pub fn pool_fes(outside_s: f64, call_s: f64, conns: u32, workers: u32) -> Vec<(f64, f64)> {
    let c = conns.max(1) as usize;
    let mut out = vec![(0.0, 0.0)];
    let mut q = 0.0f64;
    let mut p = vec![0.0f64; c];
    p[0] = 1.0;
    for m in 1..=workers.max(1) as usize {
        let rates: Vec<f64> = (1..=c).map(|j| j as f64).collect();
        let r = call_s * ld_residence(&rates, q, &p);
        let x = m as f64 / (outside_s + r);
        q = x * r;
        let mut np = vec![0.0f64; c];
        for j in 1..c {
            np[j] = call_s * x * p[j - 1] / j as f64;
        }
        let u = x * call_s;
        let below: f64 = (1..c).map(|j| j as f64 * np[j]).sum();
        let at_c = ((u - below) / c as f64).max(0.0);
        np[0] = (1.0 - np[1..].iter().sum::<f64>() - at_c).max(0.0);
        p = np;
        // Waiting = queue − connections in use (X·call).
        out.push((x, (q - u).max(0.0)));
    }
    out
}

/// What [`pool_chain`] finds for one instance.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PoolChain {
    /// Mean requests waiting for a worker.
    pub waiting: f64,
    /// Mean requests waiting for a connection.
    pub pool_waiting: f64,
    /// Mean busy workers.
    pub busy: f64,
    /// Share of arrivals refused (a full waiting room).
    pub refused: f64,
    /// Mean requests in the instance.
    pub present: f64,
}

type Mat = Vec<Vec<f64>>;

#[allow(clippy::needless_range_loop)] // index arithmetic over stations and classes
fn mat_mul(a: &Mat, b: &Mat) -> Mat {
    let (n, m) = (a.len(), b.first().map_or(0, Vec::len));
    let mut c = vec![vec![0.0; m]; n];
    for i in 0..n {
        for (k, bk) in b.iter().enumerate() {
            let x = a[i][k];
            if x != 0.0 {
                for j in 0..m {
                    c[i][j] += x * bk[j];
                }
            }
        }
    }
    c
}

/// Inverse by Gauss–Jordan with partial pivoting; `None` when singular.
fn mat_inv(a: &Mat) -> Option<Mat> {
    let n = a.len();
    let mut m: Mat = a.clone();
    let mut inv: Mat = (0..n)
        .map(|i| (0..n).map(|j| f64::from(u8::from(i == j))).collect())
        .collect();
    for col in 0..n {
        let piv = (col..n).max_by(|&x, &y| m[x][col].abs().total_cmp(&m[y][col].abs()))?;
        if m[piv][col].abs() < 1e-300 {
            return None;
        }
        m.swap(col, piv);
        inv.swap(col, piv);
        let d = m[col][col];
        for j in 0..n {
            m[col][j] /= d;
            inv[col][j] /= d;
        }
        for i in 0..n {
            if i != col && m[i][col] != 0.0 {
                let f = m[i][col];
                for j in 0..n {
                    m[i][j] -= f * m[col][j];
                    inv[i][j] -= f * inv[col][j];
                }
            }
        }
    }
    Some(inv)
}

/// Most (levels × block³) the exact chain of [`pool_chain`] works through.
const POOL_CHAIN_WORK: f64 = 3e7;

/// One instance of `workers` workers sharing `conns` connections, fed Poisson arrivals at
/// `lambda`: a request takes a worker (or waits for one, at most `room` waiting), works
/// `outside_s` (exponential) on its own, then holds a connection (FCFS, exponential
/// `call_s`) and leaves. Solved exactly as the Markov chain on (requests in the instance,
/// requests at the pool) by linear level reduction (block Gaussian elimination from the top
/// level, Gaver, Jacobs & Latouche 1984); the chain is cut where the tail is below 1e-13.
/// `None` when it has no steady state or is too large to solve this way (then the
/// flow-equivalent server, [`pool_fes`], stands in).
#[allow(clippy::needless_range_loop)] // index arithmetic over stations and classes
pub fn pool_chain(
    lambda: f64,
    outside_s: f64,
    call_s: f64,
    conns: u32,
    workers: u32,
    room: Option<u64>,
) -> Option<PoolChain> {
    let c = workers.max(1) as usize;
    let p = conns.max(1) as usize;
    if !(lambda > 0.0 && outside_s > 0.0 && call_s > 0.0 && lambda.is_finite()) {
        return None;
    }
    let top_rate = pool_fes(outside_s, call_s, conns, workers)
        .last()
        .map_or(0.0, |x| x.0);
    let levels = match room {
        Some(q) => c as u64 + q,
        None => {
            let r = lambda / top_rate;
            if r >= 1.0 {
                return None;
            }
            c as u64 + ((1e-13f64).ln() / r.ln()).ceil().max(1.0) as u64
        }
    };
    let b = (c + 1) as f64;
    if levels as f64 * b * b * b > POOL_CHAIN_WORK {
        return None;
    }
    let n_top = levels as usize;
    let size = |n: usize| n.min(c) + 1;
    // Up: level n → n+1, k → k at λ. Down: level n → n−1, k → k−1 at min(k, p)/call.
    let up = |n: usize| -> Mat {
        let (a, b) = (size(n), size(n + 1));
        let mut m = vec![vec![0.0; b]; a];
        for (k, row) in m.iter_mut().enumerate() {
            row[k] = lambda;
        }
        m
    };
    let down = |n: usize| -> Mat {
        let (a, b) = (size(n), size(n - 1));
        let mut m = vec![vec![0.0; b]; a];
        for (k, row) in m.iter_mut().enumerate().skip(1) {
            row[k - 1] = k.min(p) as f64 / call_s;
        }
        m
    };
    let local = |n: usize| -> Mat {
        let a = size(n);
        let busy = n.min(c);
        let mut m = vec![vec![0.0; a]; a];
        for k in 0..a {
            let cpu = (busy - k) as f64 / outside_s;
            let out = if n < n_top { lambda } else { 0.0 } + cpu + k.min(p) as f64 / call_s;
            if k + 1 < a {
                m[k][k + 1] = cpu;
            }
            m[k][k] = -out;
        }
        m
    };
    // R_n with π_n = π_{n−1} R_n, from the top down.
    let mut rs: Vec<Mat> = vec![Vec::new(); n_top + 1];
    let neg = |m: Mat| -> Mat {
        m.into_iter()
            .map(|r| r.into_iter().map(|x| -x).collect())
            .collect()
    };
    let mut acc = local(n_top);
    for n in (1..=n_top).rev() {
        let r = neg(mat_mul(&up(n - 1), &mat_inv(&acc)?));
        if n > 1 {
            let mut next = local(n - 1);
            let rd = mat_mul(&r, &down(n));
            for (i, row) in next.iter_mut().enumerate() {
                for (j, x) in row.iter_mut().enumerate() {
                    *x += rd[i][j];
                }
            }
            acc = next;
        }
        rs[n] = r;
    }
    let mut pi: Vec<Vec<f64>> = vec![vec![1.0]];
    for n in 1..=n_top {
        let prev = &pi[n - 1];
        let v = (0..size(n))
            .map(|j| prev.iter().enumerate().map(|(i, x)| x * rs[n][i][j]).sum())
            .collect();
        pi.push(v);
    }
    let total: f64 = pi.iter().flatten().sum();
    if !(total.is_finite() && total > 0.0) {
        return None;
    }
    let mut out = PoolChain {
        waiting: 0.0,
        pool_waiting: 0.0,
        busy: 0.0,
        refused: 0.0,
        present: 0.0,
    };
    for (n, level) in pi.iter().enumerate() {
        for (k, x) in level.iter().enumerate() {
            let q = x / total;
            out.waiting += q * n.saturating_sub(c) as f64;
            out.pool_waiting += q * k.saturating_sub(p) as f64;
            out.busy += q * n.min(c) as f64;
            out.present += q * n as f64;
            if room.is_some() && n == n_top {
                out.refused += q;
            }
        }
    }
    Some(out)
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

#[cfg(test)]
#[allow(clippy::needless_range_loop)]
mod exact_tests {
    use super::*;

    /// M/M/c/K by brute force: the truncated chain summed state by state.
    fn brute(lambda: f64, s: f64, c: usize, k: usize) -> (f64, f64) {
        let mut w = vec![1.0f64];
        for n in 1..=k {
            let prev = w[n - 1];
            w.push(prev * lambda * s / n.min(c) as f64);
        }
        let t: f64 = w.iter().sum();
        let lq: f64 = (0..=k).map(|n| n.saturating_sub(c) as f64 * w[n] / t).sum();
        (lq, w[k] / t)
    }

    #[test]
    fn mmck_is_its_birth_death_chain() {
        // The issue's case: M/M/3 with 5 waiting places, 10 ms, 270/s: 1.485 waiting and
        // 16.01 ms; at 390/s (offered 1.3 per server) 2.943 waiting, 26.5% refused.
        for (lambda, room) in [
            (270.0, 5u64),
            (390.0, 5),
            (100.0, 0),
            (290.0, 40),
            (2000.0, 3),
        ] {
            let rates: Vec<f64> = (1..=3).map(|j| f64::from(j) / 0.01).collect();
            let b = BirthDeath::solve(lambda, &rates, Some(room)).unwrap();
            let (lq, block) = brute(lambda, 0.01, 3, 3 + room as usize);
            assert!(
                (b.waiting - lq).abs() < 1e-9 * (1.0 + lq),
                "{lambda} {room}: {b:?} {lq}"
            );
            assert!(
                (b.refused - block).abs() < 1e-12,
                "{lambda} {room}: {b:?} {block}"
            );
        }
        let b = BirthDeath::solve(270.0, &[100.0, 200.0, 300.0], Some(5)).unwrap();
        let w_ms = 1e3 * (b.waiting / (270.0 * (1.0 - b.refused)) + 0.01);
        assert!(
            (b.waiting - 1.485).abs() < 1e-3 && (w_ms - 16.01).abs() < 0.01,
            "{w_ms}"
        );
        // Room 0 is Erlang's loss system: the standard table's 5 erlangs on 10 lines, B = 0.01838.
        let rates: Vec<f64> = (1..=10).map(f64::from).collect();
        let loss = BirthDeath::solve(5.0, &rates, Some(0)).unwrap();
        assert!(
            (loss.refused - 0.01838).abs() < 5e-5
                && (loss.refused - erlang_b(10, 5.0)).abs() < 1e-12
        );
        // Unbounded room is M/M/c: Erlang C.
        let mmc = BirthDeath::solve(270.0, &[100.0, 200.0, 300.0], None).unwrap();
        assert!((mmc.waiting / 270.0 - mmc_wait(3, 270.0, 0.01)).abs() < 1e-12);
        assert!(BirthDeath::solve(300.0, &[100.0, 200.0, 300.0], None).is_none());
        // A huge room past saturation stays finite.
        let big = BirthDeath::solve(600.0, &[100.0, 200.0, 300.0], Some(1_000_000)).unwrap();
        assert!(
            (big.refused - 0.5).abs() < 1e-9 && big.waiting.is_finite(),
            "{big:?}"
        );
    }

    #[test]
    fn mm1_with_a_deadline_matches_the_issue_and_a_direct_integration() {
        // deadline(5ms) at 900/s on one exp(1 ms) server: served requests spend 2.79 ms.
        let d = mmc_deadline(1, 900.0, 0.001, 0.005).unwrap();
        let sojourn_ms = 1e3 * (d.wait_s + 0.001);
        assert!((sojourn_ms - 2.7877).abs() < 1e-3, "{sojourn_ms} {d:?}");
        // No deadline to speak of: M/M/c.
        let far = mmc_deadline(3, 270.0, 0.01, 10.0).unwrap();
        assert!((far.wait_s - mmc_wait(3, 270.0, 0.01)).abs() < 1e-9 && far.served > 1.0 - 1e-12);
        // Overloaded (θ < 0): still a steady state; carried work below c.
        let over = mmc_deadline(2, 500.0, 0.01, 0.02).unwrap();
        assert!(
            over.busy < 2.0 && over.busy > 1.5 && over.wait_s < 0.02,
            "{over:?}"
        );
        // Deadline 0: served only when a worker is free, Erlang B.
        let zero = mmc_deadline(4, 320.0, 0.01, 0.0).unwrap();
        assert!(
            (1.0 - zero.served - erlang_b(4, 3.2)).abs() < 1e-12,
            "{zero:?}"
        );
    }

    #[test]
    fn round_robin_over_three_is_e3_m1() {
        // 240/s over 3 exp(10 ms) servers in turn: E3/M/1 at ρ = 0.8, sojourn 34.59 ms.
        let w = ekm1_wait(3, 240.0, 0.01);
        assert!(((w + 0.01) * 1e3 - 34.59).abs() < 0.01, "{w}");
        // k = 1 is M/M/1.
        assert!((ekm1_wait(1, 80.0, 0.01) - mmc_wait(1, 80.0, 0.01)).abs() < 1e-12);
    }

    /// Buzen's convolution for one class: the normalising constants G(n) of stations with
    /// rates α, then X(N) = G(N−1)/G(N) (with the think time as a delay station).
    fn buzen(stations: &[Station], d: &[f64], z: f64, n: usize) -> f64 {
        let mut g = vec![0.0f64; n + 1];
        // delay (think): z^j / j!
        let mut t = 1.0;
        for j in 0..=n {
            if j > 0 {
                t *= z / j as f64;
            }
            g[j] = t;
        }
        for (s, dk) in stations.iter().zip(d) {
            let f = |j: usize| -> f64 {
                let mut v = 1.0;
                for i in 1..=j {
                    let a = s
                        .rates
                        .get(i - 1)
                        .or(s.rates.last())
                        .copied()
                        .unwrap_or(i as f64);
                    v *= dk / a;
                }
                v
            };
            let old = g.clone();
            for m in 0..=n {
                g[m] = (0..=m).map(|j| f(j) * old[m - j]).sum();
            }
        }
        g[n - 1] / g[n]
    }

    #[test]
    fn mva_matches_the_issue_machine_repairman_and_convolution() {
        // 9 users thinking 40 ms at one exp(5 ms) server: X = 165.37/s, R = 14.42 ms.
        let one = mva(&[Station::servers(1)], &[vec![0.005]], &[0.040], &[9]);
        let r = one.residence[0][0];
        assert!((one.throughput[0] - 165.37).abs() < 0.01 && (r * 1e3 - 14.423).abs() < 1e-3);
        let solo = mva(&[Station::servers(1)], &[vec![0.005]], &[0.040], &[1]);
        assert!((solo.residence[0][0] - 0.005).abs() < 1e-15);
        // Single class, a 3-server station, a single server and a delay: Buzen's
        // convolution agrees to 1e-9.
        let st = [
            Station::servers(3),
            Station::servers(1),
            Station { rates: vec![] },
        ];
        let d = [0.030, 0.008, 0.050];
        for n in [1usize, 2, 5, 17, 60] {
            let m = mva(&st, &[d.to_vec()], &[0.1], &[n as u64]);
            let x = buzen(&st, &d, 0.1, n);
            assert!(
                (m.throughput[0] - x).abs() < 1e-9 * x,
                "{n}: {} vs {x}",
                m.throughput[0]
            );
            // Little: N = X (Z + Σ R).
            let cycle: f64 = 0.1 + m.residence[0].iter().sum::<f64>();
            assert!((m.throughput[0] * cycle - n as f64).abs() < 1e-9);
        }
        // Two classes: with the same demands they are one class of the summed population.
        let two = mva(&st, &[d.to_vec(), d.to_vec()], &[0.1, 0.1], &[7, 10]);
        let merged = mva(&st, &[d.to_vec()], &[0.1], &[17]);
        let x2 = two.throughput[0] + two.throughput[1];
        assert!(
            (x2 - merged.throughput[0]).abs() < 1e-9 * x2,
            "{x2} {merged:?}"
        );
        assert!((two.throughput[0] / two.throughput[1] - 0.7).abs() < 1e-9);
    }

    #[test]
    fn a_pool_without_outside_work_is_mmc() {
        // No time outside the pool: m busy workers are m requests at an M/M/2 pool.
        let f = pool_fes(0.0, 0.006, 2, 6);
        for (m, (x, w)) in f.iter().enumerate() {
            assert!((x - m.min(2) as f64 / 0.006).abs() < 1e-9, "{m}: {x}");
            assert!((w - m.saturating_sub(2) as f64).abs() < 1e-9, "{m}: {w}");
        }
        // With outside work the pool's throughput matches the network's convolution.
        let f = pool_fes(0.004, 0.006, 2, 4);
        let st = [Station { rates: vec![] }, Station::servers(2)];
        for m in 1..=4usize {
            let x = buzen(&st, &[0.004, 0.006], 0.0, m);
            assert!((f[m].0 - x).abs() < 1e-9 * x, "{m}: {} vs {x}", f[m].0);
        }
    }

    #[test]
    fn the_pool_chain_is_mmc_without_outside_work_and_little_holds() {
        // Almost no work outside the pool: M/M/2 on the connections (Erlang C).
        let ch = pool_chain(250.0, 1e-7, 0.006, 2, 12, None).unwrap();
        let lq = 250.0 * mmc_wait(2, 250.0, 0.006);
        assert!(
            (ch.pool_waiting + ch.waiting - lq).abs() < 1e-3 * lq,
            "{ch:?} {lq}"
        );
        // Little's law: busy workers = carried × (outside + pool wait + call).
        let ch = pool_chain(250.0, 0.004, 0.006, 2, 4, Some(20)).unwrap();
        let carried = 250.0 * (1.0 - ch.refused);
        let hold = 0.004 + ch.pool_waiting / carried + 0.006;
        assert!((ch.busy - carried * hold).abs() < 1e-9, "{ch:?}");
        assert!((ch.present - ch.busy - ch.waiting).abs() < 1e-12);
    }

    #[test]
    fn schweitzer_bard_is_close_for_large_populations() {
        let st = [Station::servers(1), Station::servers(4)];
        let d = vec![0.002, 0.010];
        let exact = mva_exact(&st, std::slice::from_ref(&d), &[0.5], &[400]);
        let approx = mva_schweitzer(&st, &[d], &[0.5], &[400]);
        let rel = (approx.throughput[0] - exact.throughput[0]).abs() / exact.throughput[0];
        assert!(rel < 0.02, "{rel}");
    }
}

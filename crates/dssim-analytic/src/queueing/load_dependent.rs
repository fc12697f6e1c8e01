//! The load-dependent database node: every request it holds served at once (or at most
//! `cores` of them, the others waiting in FIFO order), slowed by the Universal Scalability
//! Law, with at most `cap` inside (Erlang loss or callers' slots).

/// A node that serves the requests it holds at once — all of them, or at most `cores`
/// with the others waiting for a core — each slowed by the Universal Scalability Law
/// factor `1 + σ(e−1) + κe(e−1)` for the e requests executing (a database node), with at
/// most `cap` requests inside (executing or waiting).
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
    /// Most requests executing at once (a node's `cores`); the others wait inside, in FIFO
    /// order. None: every request executes at once.
    pub cores: Option<u64>,
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
    /// Mean wait for a core before executing, seconds (0 without `cores`).
    pub wait_s: f64,
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

    /// Requests executing with `n` inside: all of them, or at most `cores`.
    fn executing(&self, n: f64) -> f64 {
        match self.cores {
            Some(c) => n.min(c.max(1) as f64),
            None => n,
        }
    }

    /// The law's stretch with `n` (not necessarily whole) requests inside (the executing
    /// ones slow each other).
    fn factor_f(&self, n: f64) -> f64 {
        let n = self.executing(n).max(1.0);
        match self.usl {
            Some((s, k)) => 1.0 + s * (n - 1.0) + k * n * (n - 1.0),
            None => 1.0,
        }
    }

    /// The law's stretch with `n` requests inside.
    pub fn factor_at(&self, n: u32) -> f64 {
        self.factor(u64::from(n))
    }

    /// Throughput with n requests inside: e / (base·factor(e) + fixed), e = n executing
    /// (n, or at most `cores`).
    pub fn rate(&self, n: u64) -> f64 {
        self.rate_f(n as f64)
    }

    fn rate_f(&self, n: f64) -> f64 {
        let t = self.base_s * self.factor_f(n) + self.fixed_s;
        if t > 0.0 {
            self.executing(n) / t
        } else {
            f64::INFINITY
        }
    }

    /// Requests inside at the highest throughput (infinite when more always helps; at most
    /// `cores`, past which the rate stays flat).
    fn peak_n(&self) -> f64 {
        let c = self.cores.map_or(f64::INFINITY, |c| c.max(1) as f64);
        let free = match self.usl {
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
        };
        free.min(c)
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
            // With cores and a law that never turns back, full speed is all cores busy.
            _ if self.cores.is_some() && self.usl.is_none_or(|(_, k)| k <= 0.0) => {
                self.rate_f(self.peak_n())
            }
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
        let service = self.base_s * self.factor_f(n) + self.fixed_s;
        // Inside n, of which executing(n) are served at once: the rest wait (Little).
        let sojourn = if self.cores.is_some() && x > 0.0 {
            n / x
        } else {
            service
        };
        x.is_finite().then(|| NodeLoad {
            carried: x,
            refused: 0.0,
            inside: n,
            sojourn_s: sojourn,
            stretch: self.factor_f(n),
            wait_s: (sojourn - service).max(0.0),
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
                wait_s: 0.0,
            });
        }
        let (cap, refuse) = match self.effective_cap() {
            Some((c, r)) => (c.max(1), r),
            None => (u64::MAX, false),
        };
        // Cores fewer than the cap (or no cap): requests wait inside for a core.
        let queues = self.cores.is_some_and(|c| c < cap);
        if queues && cap == u64::MAX && lambda >= self.saturation() {
            return None;
        }
        if self.usl.is_none() && !queues {
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
                wait_s: 0.0,
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
            if cap == u64::MAX
                && ratio >= 1.0
                && n as f64 > self.peak_n()
                && self.usl.is_some_and(|(_, k)| k > 0.0)
            {
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
        let carried = lambda * (1.0 - full);
        if queues {
            // Requests inside and executing from the chain itself; times by Little's law
            // (an arrival's time depends on those behind it too, so not state by state).
            let (mut inside, mut busy) = (0.0, 0.0);
            for (i, pi) in p.iter().enumerate() {
                inside += pi * i as f64;
                busy += pi * self.executing(i as f64);
            }
            inside += tail * cap as f64;
            busy += tail * self.executing(cap as f64);
            let (inside, busy) = (inside / total, busy / total);
            if carried <= 0.0 {
                return None;
            }
            return Some(NodeLoad {
                carried,
                refused: full,
                inside,
                sojourn_s: inside / carried,
                stretch: stretch_sum / admitted,
                wait_s: (inside - busy).max(0.0) / carried,
            });
        }
        let sojourn = time_sum / admitted;
        Some(NodeLoad {
            carried,
            refused: full,
            inside: carried * sojourn,
            sojourn_s: sojourn,
            stretch: stretch_sum / admitted,
            wait_s: 0.0,
        })
    }
}

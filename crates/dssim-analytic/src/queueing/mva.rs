//! Closed networks: exact (load-dependent, multi-class) Mean Value Analysis and
//! Schweitzer–Bard approximate MVA past a population-vector budget.

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
pub(super) fn ld_residence(rates: &[f64], q: f64, p: &[f64]) -> f64 {
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
pub(super) fn mva_exact(
    stations: &[Station],
    demand: &[Vec<f64>],
    think: &[f64],
    pop: &[u64],
) -> Mva {
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
pub(super) fn mva_schweitzer(
    stations: &[Station],
    demand: &[Vec<f64>],
    think: &[f64],
    pop: &[u64],
) -> Mva {
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

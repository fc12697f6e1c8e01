//! Closed loops: the closed network one pass describes, solved by MVA (exact or
//! Schweitzer–Bard), and its figures written back into the pass.

use super::flow;

/// A closed network built from one pass: each closed client is a class of its users,
/// thinking Z plus the time its requests spend outside the service they queue in; each
/// instance of such a service is a station (c workers, or the flow-equivalent server of
/// its workers and pool), one pooled station behind a balancer that watches load.
pub(super) struct ClosedSolution {
    /// Client index per class.
    class_of: Vec<usize>,
    /// Per class: visits to its service per request, and time outside it, seconds.
    visits: Vec<f64>,
    outside: Vec<f64>,
    /// Per station: (the pass's station index, its instance or None when pooled).
    at: Vec<(usize, Option<usize>)>,
    mva: crate::queueing::Mva,
    /// Requests per second of open clients at each station's service.
    open: Vec<f64>,
}

pub(super) fn closed_solution(
    pass: &flow::FlowResult,
    pops: &[(usize, u64, f64)],
    rates: &[f64],
) -> Option<ClosedSolution> {
    use crate::queueing::{mva, Station};
    let mut stations: Vec<Station> = Vec::new();
    let mut at: Vec<(usize, Option<usize>)> = Vec::new();
    let mut hold_of: Vec<f64> = Vec::new(); // demand per visit to the service
    let mut inflate: Vec<f64> = Vec::new();
    let mut open: Vec<f64> = Vec::new();
    let svc_of = |i: usize| -> Option<(usize, f64)> {
        let (name, v) = pass.reach.get(i)?.as_ref()?;
        let k = pass.stations.iter().position(|s| &s.name == name)?;
        (*v > 0.0).then_some((k, *v))
    };
    for (k, st) in pass.stations.iter().enumerate() {
        let closed_rate: f64 = pops
            .iter()
            .filter_map(|&(i, _, _)| {
                svc_of(i)
                    .filter(|(s, _)| *s == k)
                    .map(|(_, v)| v * rates[i])
            })
            .sum();
        if closed_rate <= 0.0
            && !pops
                .iter()
                .any(|&(i, _, _)| svc_of(i).is_some_and(|(s, _)| s == k))
        {
            continue;
        }
        let lambda_open = (st.lambda - closed_rate).max(0.0);
        let lambda_open = if lambda_open > 1e-9 * st.lambda.max(1.0) {
            lambda_open
        } else {
            0.0
        };
        let c = f64::from(st.servers.max(1));
        if st.pooled {
            let n = st.instances.len().max(1) as u32;
            let hold: f64 = st.instances.iter().map(|x| x.share * x.hold).sum();
            let u_open = lambda_open * hold / (c * f64::from(n));
            stations.push(Station::servers(st.servers.max(1) * n));
            at.push((k, None));
            hold_of.push(hold);
            inflate.push(1.0 / (1.0 - u_open));
            open.push(lambda_open);
        } else {
            for (j, inst) in st.instances.iter().enumerate() {
                if inst.share <= 0.0 {
                    continue;
                }
                let u_open = lambda_open * inst.share * inst.hold / c;
                stations.push(Station {
                    rates: inst.rates.clone(),
                });
                at.push((k, Some(j)));
                hold_of.push(inst.share * inst.hold);
                inflate.push(1.0 / (1.0 - u_open));
                open.push(lambda_open);
            }
        }
    }
    let mut demand = Vec::new();
    let mut think = Vec::new();
    let mut visits = Vec::new();
    let mut outside = Vec::new();
    let mut pop = Vec::new();
    let mut class_of = Vec::new();
    for &(i, users, z) in pops {
        let (svc, v) = svc_of(i).unwrap_or((usize::MAX, 0.0));
        let sojourn = pass.stations.get(svc).map_or(0.0, |s| s.sojourn_s);
        let resp = pass.response_s[i];
        let out = if v > 0.0 { resp - v * sojourn } else { resp };
        let d: Vec<f64> = at
            .iter()
            .enumerate()
            .map(|(s, &(k, _))| {
                if k == svc {
                    v * hold_of[s]
                        * if inflate[s] > 0.0 {
                            inflate[s]
                        } else {
                            f64::INFINITY
                        }
                } else {
                    0.0
                }
            })
            .collect();
        if !out.is_finite() || d.iter().any(|x| !x.is_finite()) {
            return None;
        }
        demand.push(d);
        think.push(z + out.max(0.0));
        visits.push(v);
        outside.push(out.max(0.0));
        pop.push(users);
        class_of.push(i);
    }
    let m = mva(&stations, &demand, &think, &pop);
    Some(ClosedSolution {
        class_of,
        visits,
        outside,
        at,
        mva: m,
        open,
    })
}

impl ClosedSolution {
    fn class(&self, i: usize) -> Option<usize> {
        self.class_of.iter().position(|&c| c == i)
    }

    pub(super) fn throughput(&self, i: usize) -> Option<f64> {
        self.class(i).map(|r| self.mva.throughput[r])
    }

    /// Mean response time of client `i`: outside its service plus its residence there.
    pub(super) fn response(&self, i: usize) -> Option<f64> {
        let r = self.class(i)?;
        Some(self.outside[r] + self.mva.residence[r].iter().sum::<f64>())
    }

    /// Writes the solution into a pass at the same rates: the services' queues, times
    /// and busy workers, pools, and each closed client's response time.
    pub(super) fn apply(&self, pass: &mut flow::FlowResult, rates: &[f64], methods: &mut [String]) {
        let kinds = self
            .at
            .iter()
            .map(|&(k, _)| pass.stations[k].name.clone())
            .collect::<std::collections::BTreeSet<_>>();
        for name in kinds {
            let idx: Vec<usize> = (0..self.at.len())
                .filter(|&s| pass.stations[self.at[s].0].name == name)
                .collect();
            if idx.iter().any(|&s| self.open[s] > 0.0) {
                continue; // mixed with open traffic: the pass's figures stay
            }
            let k = self.at[idx[0]].0;
            let st = &pass.stations[k];
            let c = st.servers.max(1) as usize;
            let n = st.instances.len().max(1);
            let x: f64 = (0..self.class_of.len())
                .filter(|&r| idx.iter().any(|&s| self.mva.residence[r][s] > 0.0))
                .map(|r| self.visits[r] * self.mva.throughput[r])
                .sum();
            let (mut queue, mut busy, mut pool_waiting) = (0.0, 0.0, 0.0);
            let mut fes = false;
            for &s in &idx {
                let p = &self.mva.marginal[s];
                let cs = p.len() - 1;
                let b: f64 = p
                    .iter()
                    .enumerate()
                    .map(|(j, pj)| j.min(cs) as f64 * pj)
                    .sum();
                queue += self.mva.queue[s];
                busy += b;
                if let Some(j) = self.at[s].1 {
                    let pw = &st.instances[j].pool_waiting;
                    if !pw.is_empty() {
                        fes = true;
                        pool_waiting += p
                            .iter()
                            .enumerate()
                            .map(|(m, pj)| pj * pw.get(m.min(pw.len() - 1)).copied().unwrap_or(0.0))
                            .sum::<f64>();
                    }
                }
            }
            let waiting = (queue - busy - pool_waiting).max(0.0);
            let method = format!(
                "closed loop: {} ({}), station = {}",
                self.mva.method,
                if self.class_of.len() > 1 {
                    "multi-class"
                } else {
                    "one class"
                },
                if fes {
                    "flow-equivalent server of workers and pool"
                } else if c > 1 || st.pooled {
                    "load-dependent: c workers"
                } else {
                    "one worker"
                }
            );
            if let Some(row) = pass.components.iter_mut().find(|r| r.component == name) {
                let util = busy / (c * n) as f64;
                row.utilization = Some(util.min(1.0));
                row.offered_load = Some(util);
                if x > 0.0 {
                    row.mean_queue = Some(waiting);
                    row.wait_ms = Some(waiting / x * 1e3);
                    row.sojourn_ms = Some(queue / x * 1e3);
                }
                row.method = method.clone();
            }
            if fes && x > 0.0 {
                if let Some(row) = pass
                    .components
                    .iter_mut()
                    .find(|r| r.component == format!("{name}.pool"))
                {
                    row.mean_queue = Some(pool_waiting);
                    row.wait_ms = Some(pool_waiting / x * 1e3);
                    row.sojourn_ms = Some(pool_waiting / x * 1e3);
                    row.method = format!("{method}: waiting for a connection");
                }
            }
        }
        for (r, &i) in self.class_of.iter().enumerate() {
            if let Some(t) = self.response(i) {
                pass.response_s[i] = t;
            }
            let _ = rates;
            methods[i] = format!(
                "closed loop: {}{} (N users, think Z + time outside the service)",
                self.mva.method,
                if self.class_of.len() > 1 {
                    ", multi-class"
                } else {
                    ""
                }
            );
            let _ = r;
        }
    }
}

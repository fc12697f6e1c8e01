//! The service tier: instances x workers (pool, data call, NIC), the instance models (exact
//! chains, Allen–Cunneen), and the time of service-to-service calls.

use super::*;

impl<'a> FlowModel<'a> {
    /// A service: instances x workers, each request holding a worker for its CPU time, the
    /// wait for a pooled connection, its data call and its NIC time.
    #[allow(clippy::too_many_arguments)] // the figures downstream it is built from
    pub(super) fn service_times(
        &self,
        si: usize,
        reads: f64,
        writes: f64,
        caches: &BTreeMap<usize, CacheFigures>,
        db_nodes: &BTreeMap<usize, Vec<DbNodeFigures>>,
        chains: bool,
        calls: &CallTimes,
    ) -> (
        ComponentEstimate,
        Option<ComponentEstimate>,
        f64,
        ServiceStation,
    ) {
        let m = self.m;
        let s = &m.services[si];
        let lambda = reads + writes;
        let inst = f64::from(s.instances.max(1));
        let c = s.workers.max(1);
        let servers = u64::from(s.instances.max(1)) * u64::from(c);
        // A law without a second moment (Pareto, shape ≤ 2) has an unbounded SCV.
        let cpu_scv = match s.service_time.0.scv() {
            x if x.is_nan() => f64::INFINITY,
            x => x.max(0.0),
        };
        let nic = self.nic_s(si);
        let r_share = if lambda > 0.0 {
            reads / lambda
        } else {
            self.read_share_of_service(si)
        };
        // The data call.
        let cache = self.cache_of(si);
        let (data, has_data) = match (cache, self.db_of(si)) {
            (Some(ci), _) => {
                let k = &m.caches[ci];
                let rtt = if k.local {
                    0.0
                } else {
                    2.0 * self.lat(&s.region, &k.region)
                };
                let st = caches.get(&ci);
                let t = st.map_or(0.0, |x| {
                    part(r_share, x.read_s) + part(1.0 - r_share, x.write_s)
                });
                (rtt + t, true)
            }
            (None, Some(di)) => (
                part(r_share, self.db_time(di, &s.region, true, db_nodes))
                    + part(1.0 - r_share, self.db_time(di, &s.region, false, db_nodes)),
                true,
            ),
            (None, None) => (0.0, false),
        };
        // No pool: every request that calls the data tier opens a connection first
        // (`connect_time`), its worker held meanwhile; a pool keeps them open.
        let (connect, connect_var) = match (&s.connect_time, s.pool, has_data) {
            (Some(d), None, true) => {
                let mean = secs(d.0.mean());
                let scv = match d.0.scv() {
                    x if x.is_nan() => f64::INFINITY,
                    x => x.max(0.0),
                };
                (mean, if mean > 0.0 { scv * mean * mean } else { 0.0 })
            }
            _ => (0.0, 0.0),
        };
        let per_inst = lambda / inst;
        // The pool. Fewer connections than workers: the workers' loop (own work, then a
        // connection for the data call) is solved as a flow-equivalent server below. As
        // many as the workers: no wait. A data tier that does not keep up: unbounded.
        let conns = s.pool.filter(|_| has_data).map(|p| p.size.max(1));
        let fes = conns.filter(|&p| p < c && data > 0.0 && data.is_finite());
        let pool_wait = match conns {
            Some(p) if p < c && fes.is_none() && data > 0.0 => f64::INFINITY,
            _ => 0.0,
        };
        // The NIC: a FIFO sender per instance (M/D/1).
        let nic_wait = if nic > 0.0 {
            let rho = per_inst * nic;
            if rho < 1.0 {
                rho * nic / (2.0 * (1.0 - rho))
            } else {
                f64::INFINITY
            }
        } else {
            0.0
        };
        // Service-to-service calls, made after the CPU work with the worker held.
        let call = part(r_share, calls.read_s) + part(1.0 - r_share, calls.write_s);
        // Each instance holds a worker for its own CPU time (its speed) and the rest.
        let rest = pool_wait + connect + data + call + nic + nic_wait;
        let cpu_var = |work: f64| cpu_scv * work * work;
        let holds: Vec<(f64, f64, f64)> = self
            .speeds(si)
            .iter()
            .zip(self.shares(si))
            .map(|(&v, share)| {
                let work = self.work_s(si, v);
                let hold = work + rest;
                let var =
                    cpu_var(work) + connect_var + data * data + call * call + pool_wait * pool_wait;
                let scv = if hold > 0.0 && hold.is_finite() {
                    var / (hold * hold)
                } else {
                    1.0
                };
                (share, hold, scv)
            })
            .collect();
        let io = self.instance_model(si, lambda, &holds, fes.map(|p| (p, data)), chains);
        let wq = io.wait;
        let hold: f64 = holds.iter().map(|(w, h, _)| part(*w, *h)).sum();
        let intrinsic_rest = nic
            + connect
            + call
            + if has_data {
                self.data_intrinsic(si, r_share, caches)
            } else {
                0.0
            };
        // The first instance to fill up (its share over its capacity), or all of them
        // together behind a balancer that watches their load.
        let per_instance = holds
            .iter()
            .zip(self.speeds(si))
            .filter(|((w, _, _), _)| *w > 0.0)
            .map(|((w, _, _), v)| {
                let t = self.work_s(si, v) + intrinsic_rest;
                if t > 0.0 {
                    f64::from(c) / t / w
                } else {
                    f64::INFINITY
                }
            });
        let mut sat = if self.pooled(si) {
            self.speeds(si)
                .iter()
                .map(|&v| {
                    let t = self.work_s(si, v) + intrinsic_rest;
                    if t > 0.0 {
                        f64::from(c) / t
                    } else {
                        f64::INFINITY
                    }
                })
                .sum()
        } else {
            per_instance.fold(f64::INFINITY, f64::min)
        };
        // Workers held through database calls run out when a database node they reach
        // fills them before it peaks: the service saturates at that point.
        for (di, nodes) in db_nodes {
            if !self.reaches(si, *di) {
                continue;
            }
            for n in nodes {
                let node_rate = n.reads + n.writes;
                if let (Some(limit), true) = (n.callers_limit, node_rate > 0.0) {
                    sat = sat.min(lambda * limit / node_rate);
                }
            }
        }
        let sojourn = io.sojourn.unwrap_or(wq + hold);
        let pool_row = conns.map(|size| {
            let unloaded = self.data_intrinsic(si, r_share, caches);
            let (waiting, wait) = if fes.is_some() {
                (io.pool_waiting, io.pool_waiting / io.carried.max(1e-300))
            } else {
                (lambda * pool_wait, pool_wait)
            };
            let ok = wait.is_finite() && waiting.is_finite();
            ComponentEstimate {
                component: format!("{}.pool", s.name),
                kind: "pool",
                offered_rps: lambda,
                servers: Some(u64::from(s.instances.max(1)) * u64::from(size)),
                mean_queue: ok.then_some(waiting),
                wait_ms: ok.then_some(wait * 1e3),
                sojourn_ms: ok.then_some(wait * 1e3),
                saturation_rps: if unloaded > 0.0 {
                    inst * f64::from(size) / unloaded
                } else {
                    f64::INFINITY
                },
                method: if fes.is_some() {
                    "the service's chain (see its method): requests waiting for a connection"
                        .to_string()
                } else {
                    "no wait: at least as many connections as workers".to_string()
                },
                ..ComponentEstimate::empty()
            }
        });
        let row = ComponentEstimate {
            component: s.name.clone(),
            kind: "service",
            offered_rps: lambda,
            servers: Some(servers),
            utilization: Some(io.busy),
            offered_load: Some(io.offered),
            mean_queue: wq.is_finite().then_some(io.waiting),
            wait_ms: wq.is_finite().then_some(wq * 1e3),
            sojourn_ms: sojourn.is_finite().then_some(sojourn * 1e3),
            saturation_rps: sat,
            refused: (io.refused > 0.0).then_some(io.refused),
            method: {
                let mut method = io.method;
                if connect > 0.0 {
                    method = format!(
                        "{method}; no pool: connect_time ({:.3} ms) held on the worker before each data call",
                        connect * 1e3
                    );
                }
                if let Some(how) = &calls.method {
                    method = format!("{method}; {how}");
                }
                method
            },
            ..ComponentEstimate::empty()
        };
        let station = ServiceStation {
            name: s.name.clone(),
            sojourn_s: sojourn,
            lambda,
            pooled: self.pooled(si),
            servers: c,
            instances: io.stations,
        };
        (row, pool_row, sojourn, station)
    }

    /// Each instance of service `si` as a station: the model named in its row's method.
    pub(super) fn instance_model(
        &self,
        si: usize,
        lambda: f64,
        holds: &[(f64, f64, f64)],
        fes: Option<(u32, f64)>,
        chains: bool,
    ) -> InstanceSolution {
        use crate::queueing::{
            ekmc_wait, ggc_wait, mmc_deadline, pool_chain, pool_fes, BirthDeath,
        };
        use dssim_components::load_balancer::Algorithm;
        use dssim_components::shedding::Shedding;
        let s = &self.m.services[si];
        let c = s.workers.max(1);
        let n = holds.len().max(1);
        let room = match s.shedding {
            Shedding::None => None,
            _ => s.queue,
        };
        let deadline = match s.shedding {
            Shedding::Deadline(d) => Some(d.0.as_secs_f64()),
            _ => None,
        };
        let algorithm = self
            .m
            .load_balancers
            .iter()
            .find(|l| l.backends == s.name)
            .map(|l| l.algorithm);
        let equal = holds.windows(2).all(|w| (w[0].0 - w[1].0).abs() < 1e-12);
        // Exact for exponential holds (E_k/M/c); one worker keeps E_k/M/1 otherwise too,
        // several with other laws stay with Allen–Cunneen (it sees the holds' SCV).
        let exp = holds.iter().all(|(_, _, v)| (v - 1.0).abs() < 1e-6);
        let rr = n > 1
            && (exp || c == 1)
            && equal
            && matches!(
                algorithm,
                Some(Algorithm::RoundRobin | Algorithm::WeightedRoundRobin)
            );
        let assumed = if exp {
            ""
        } else {
            "; exponential times assumed"
        };
        let plain = |_: f64| crate::queueing::Station::servers(c).rates;
        let stations_plain: Vec<InstanceStation> = holds
            .iter()
            .map(|&(share, hold, _)| InstanceStation {
                share,
                hold,
                rates: plain(hold),
                pool_waiting: Vec::new(),
            })
            .collect();
        let special = fes.is_some() || room.is_some() || deadline.is_some() || rr;
        if !special || self.pooled(si) {
            let (wq, offered, busy) = self.instance_wait(si, lambda, holds);
            let scv_note = if exp {
                ""
            } else {
                " (Allen–Cunneen: × (1 + cs²)/2)"
            };
            let method = match algorithm {
                _ if self.pooled(si) => format!(
                    "one pooled M/G/(I·c) queue (a balancer that watches load ≈ pooling), Erlang C{scv_note}"
                ),
                _ if n == 1 => format!("M/{}/c (Erlang C){scv_note}", if exp { "M" } else { "G" }),
                Some(Algorithm::RoundRobin | Algorithm::WeightedRoundRobin) => {
                    "G/G/c per instance, Allen–Cunneen with ca² = its share (round robin)".to_string()
                }
                Some(Algorithm::PowerOfTwo) => {
                    "supermarket model (Mitzenmacher), × (1 + cs²)/2".to_string()
                }
                _ => format!(
                    "M/{}/c per instance (Erlang C){scv_note}",
                    if exp { "M" } else { "G" }
                ),
            };
            return InstanceSolution {
                wait: wq,
                waiting: lambda * wq,
                busy,
                offered,
                refused: 0.0,
                pool_waiting: 0.0,
                carried: lambda,
                sojourn: None,
                method,
                stations: stations_plain,
            };
        }
        let mut out = InstanceSolution {
            wait: 0.0,
            waiting: 0.0,
            busy: 0.0,
            offered: 0.0,
            refused: 0.0,
            pool_waiting: 0.0,
            carried: 0.0,
            sojourn: None,
            method: String::new(),
            stations: Vec::new(),
        };
        let (mut wait_sum, mut present) = (0.0, 0.0);
        let cf = f64::from(c);
        for &(share, hold, _) in holds {
            let per = lambda * share;
            out.offered += per * hold / cf / n as f64;
            let mut st = InstanceStation {
                share,
                hold,
                rates: plain(hold),
                pool_waiting: Vec::new(),
            };
            if per <= 0.0 {
                out.stations.push(st);
                continue;
            }
            if let Some((p, data)) = fes {
                let outside = (hold - data).max(0.0);
                let table = pool_fes(outside, data, p, c);
                let rates: Vec<f64> = table[1..].iter().map(|t| t.0).collect();
                st.rates = rates.iter().map(|x| x * hold).collect();
                st.pool_waiting = table.iter().map(|t| t.1).collect();
                let chain = if chains {
                    pool_chain(per, outside, data, p, c, room)
                } else {
                    None
                };
                if let Some(ch) = chain {
                    out.method = format!(
                        "Markov chain on (requests, requests at the pool), solved exactly by linear level reduction: {c} workers over {p} connections{}{assumed}",
                        if room.is_some() { ", K = c + queue" } else { "" }
                    );
                    let carried = per * (1.0 - ch.refused);
                    out.waiting += ch.waiting;
                    out.busy += ch.busy / cf / n as f64;
                    out.pool_waiting += ch.pool_waiting;
                    out.refused += share * ch.refused;
                    out.carried += carried;
                    wait_sum += ch.waiting;
                    present += ch.present;
                    out.stations.push(st);
                    continue;
                }
                out.method = format!(
                    "flow-equivalent server (Chandy–Herzog–Woo): {c} workers over {p} connections by exact MVA, then a birth–death chain{}{assumed}",
                    if room.is_some() { " with K = c + queue" } else { "" }
                );
                match BirthDeath::solve(per, &rates, room) {
                    Some(b) => {
                        let carried = per * (1.0 - b.refused);
                        out.waiting += b.waiting;
                        out.busy += b.mean_of(|m| m as f64) / cf / n as f64;
                        out.pool_waiting += b.mean_of(|m| table[m].1);
                        out.refused += share * b.refused;
                        out.carried += carried;
                        wait_sum += b.waiting;
                        present += b.present;
                    }
                    None => return InstanceSolution::saturated(out, lambda),
                }
            } else if let Some(tau) = deadline {
                out.method = format!(
                    "M/M/c+D (deadline checked when a worker takes the request; Baccelli–Hébuterne){}{assumed}",
                    if room.is_some() { ", waiting room ignored" } else { "" }
                );
                match mmc_deadline(c, per, hold, tau) {
                    Some(d) => {
                        let carried = per * d.served;
                        out.waiting += d.waiting;
                        out.busy += d.busy / cf / n as f64;
                        out.refused += share * (1.0 - d.served);
                        out.carried += carried;
                        wait_sum += carried * d.wait_s;
                        present += carried * (d.wait_s + hold);
                    }
                    None => return InstanceSolution::saturated(out, lambda),
                }
            } else if let Some(q) = room {
                out.method = if q == 0 {
                    format!("Erlang B (M/M/c/c: no waiting room){assumed}")
                } else {
                    format!(
                        "M/M/c/K birth–death chain (K = c + queue = {}){assumed}",
                        u64::from(c) + q
                    )
                };
                let rates: Vec<f64> = (1..=c).map(|j| f64::from(j) / hold.max(1e-300)).collect();
                match BirthDeath::solve(per, &rates, Some(q)) {
                    Some(b) => {
                        let carried = per * (1.0 - b.refused);
                        out.waiting += b.waiting;
                        out.busy += carried * hold / cf / n as f64;
                        out.refused += share * b.refused;
                        out.carried += carried;
                        wait_sum += b.waiting;
                        present += b.waiting + carried * hold;
                    }
                    None => return InstanceSolution::saturated(out, lambda),
                }
            } else {
                // Round robin over n instances: each sees every n-th arrival, Erlang-n gaps.
                let servers = if c == 1 {
                    "1".to_string()
                } else {
                    "c".to_string()
                };
                let wq = match ekmc_wait(n as u32, lambda, c, hold) {
                    Some(w) => {
                        out.method = format!(
                            "E{n}/M/{servers} (round robin over {n}: each instance sees Erlang-{n} gaps; GI/M/{servers}, σ root, exact){assumed}"
                        );
                        w
                    }
                    None => {
                        // Past the exact solution's work budget (thousands of workers).
                        out.method = format!(
                            "G/G/c per instance, Allen–Cunneen with ca² = 1/{n} (round robin; E{n}/M/c past its work budget){assumed}"
                        );
                        ggc_wait(c, per, hold, 1.0 / n as f64, 1.0)
                    }
                };
                if !wq.is_finite() {
                    return InstanceSolution::saturated(out, lambda);
                }
                out.waiting += per * wq;
                out.busy += per * hold / cf / n as f64;
                out.carried += per;
                wait_sum += per * wq;
                present += per * (wq + hold);
            }
            out.stations.push(st);
        }
        if out.carried > 0.0 {
            out.wait = wait_sum / out.carried;
            out.sojourn = Some(present / out.carried);
        }
        out
    }

    /// Whether service `si`'s instances are picked by a balancer that watches their load
    /// (least connections; power of two with several workers), modelled as one pooled queue.
    pub(super) fn pooled(&self, si: usize) -> bool {
        use dssim_components::load_balancer::Algorithm;
        let s = &self.m.services[si];
        s.instances > 1
            && self
                .m
                .load_balancers
                .iter()
                .find(|l| l.backends == s.name)
                .is_some_and(|l| match l.algorithm {
                    Algorithm::LeastConnections => true,
                    Algorithm::PowerOfTwo => {
                        s.workers > 1 || self.speeds(si).windows(2).any(|w| w[0] != w[1])
                    }
                    _ => false,
                })
    }

    /// Mean wait for a worker and utilization of service `si` (`lambda` requests per second
    /// in all; per instance its share of them, its holding time and that time's SCV), by
    /// how its instances are picked:
    ///
    /// | picked by | model |
    /// |---|---|
    /// | random, ip_hash, consistent_hash, a client itself | independent M/G/c per instance (Erlang C, Allen–Cunneen) |
    /// | round_robin, weighted_round_robin | each instance sees every k-th arrival: G/G/c with ca² = its share |
    /// | least_connections | one pooled M/G/(I·c) with the instances' total capacity (joining the shortest queue is close to pooling) |
    /// | power_of_two, one worker, equal speeds | the supermarket model (Mitzenmacher): sojourn = S Σ_{i≥1} ρ^(2^i − 2) |
    /// | power_of_two, otherwise | pooled, as least_connections |
    pub(super) fn instance_wait(
        &self,
        si: usize,
        lambda: f64,
        holds: &[(f64, f64, f64)],
    ) -> (f64, f64, f64) {
        use dssim_components::load_balancer::Algorithm;
        let s = &self.m.services[si];
        let c = s.workers.max(1);
        let n = holds.len().max(1);
        let algorithm = self
            .m
            .load_balancers
            .iter()
            .find(|l| l.backends == s.name)
            .map(|l| l.algorithm);
        if holds.iter().any(|(w, h, _)| *w > 0.0 && !h.is_finite()) {
            return (f64::INFINITY, f64::INFINITY, 1.0);
        }
        if self.pooled(si) {
            // Capacity adds up; every worker about equally busy.
            let capacity: f64 = holds
                .iter()
                .map(|(_, h, _)| {
                    if *h > 0.0 {
                        f64::from(c) / h
                    } else {
                        f64::INFINITY
                    }
                })
                .sum();
            let servers = (n as u32).saturating_mul(c);
            let mean = f64::from(servers) / capacity;
            let scv = holds.iter().map(|(_, _, v)| v).sum::<f64>() / n as f64;
            let wq = if mean > 0.0 {
                mgc_wait(servers, lambda, mean, scv)
            } else {
                0.0
            };
            return (wq, lambda / capacity, (lambda / capacity).min(1.0));
        }
        let mut wait = 0.0;
        let mut busy = 0.0;
        let mut carried = 0.0;
        for &(share, hold, scv) in holds {
            let per = lambda * share;
            busy += per * hold;
            carried += (per * hold).min(f64::from(c));
            if per <= 0.0 || hold <= 0.0 {
                continue;
            }
            let wq = match algorithm {
                _ if n == 1 => mgc_wait(c, per, hold, scv),
                Some(Algorithm::RoundRobin | Algorithm::WeightedRoundRobin) => {
                    crate::queueing::ggc_wait(c, per, hold, share, scv)
                }
                Some(Algorithm::PowerOfTwo) => {
                    // One worker, equal speeds (else pooled, above).
                    let rho = per * hold;
                    if rho >= 1.0 {
                        f64::INFINITY
                    } else {
                        // Σ_{i≥1} ρ^(2^i − 2) − 1: the terms fall doubly exponentially.
                        let mut extra = 0.0;
                        let mut k = 2.0f64;
                        for _ in 0..64 {
                            k *= 2.0;
                            let term = rho.powf(k - 2.0);
                            extra += term;
                            if term < 1e-15 {
                                break;
                            }
                        }
                        hold * extra * (1.0 + scv) / 2.0
                    }
                }
                _ => mgc_wait(c, per, hold, scv),
            };
            wait += share * wq;
        }
        let offered = busy / (n as f64 * f64::from(c));
        (wait, offered, carried / (n as f64 * f64::from(c)))
    }
}

/// The time of a service's calls per request, by operation (see [`FlowModel::call_times`]).
#[derive(Clone, Debug, Default)]
pub(super) struct CallTimes {
    /// Mean time of the calls a read makes, seconds.
    pub read_s: f64,
    /// Mean time of the calls a write makes, seconds.
    pub write_s: f64,
    /// How they were computed (none without calls).
    pub method: Option<String>,
}

impl FlowModel<'_> {
    /// The mean time service `si`'s calls add to a request, from its callees' times
    /// (`time`, already computed downstream): entries in sequence add up; a stage (an
    /// entry and the `parallel` ones after it, each of `count` calls) waits for its slowest
    /// call, E[max] = ∫ (1 − ∏ F_i(t)) dt with each call's time taken as exponential of the
    /// callee's mean (plus the network both ways) — H_N × mean for N alike — and capped at
    /// the call's `timeout`.
    pub(super) fn call_times(&self, si: usize, time: &BTreeMap<Node, f64>) -> CallTimes {
        use dssim_components::calls::CallOp;
        let s = &self.m.services[si];
        if s.calls.is_empty() {
            return CallTimes::default();
        }
        let targets = self.call_targets(si);
        let per_op = |op: dssim_components::request::Op| -> f64 {
            // Stages: (mean, count, timeout) of the calls that start together.
            let mut stages: Vec<Vec<(f64, u32, f64)>> = Vec::new();
            for (k, (cfg, to)) in s.calls.iter().zip(&targets).enumerate() {
                if k == 0 || !cfg.parallel {
                    stages.push(Vec::new());
                }
                let applies = match cfg.op {
                    CallOp::All => true,
                    CallOp::Read => op == dssim_components::request::Op::Read,
                    CallOp::Write => op == dssim_components::request::Op::Write,
                };
                let Some(to) = to.filter(|_| applies && cfg.count > 0) else {
                    continue;
                };
                let mean = time.get(&to).copied().unwrap_or(0.0)
                    + 2.0 * self.lat(&s.region, &self.region_of(to));
                let cap = cfg.timeout.map_or(f64::INFINITY, |d| d.0.as_secs_f64());
                if let Some(st) = stages.last_mut() {
                    st.push((mean, cfg.count, cap));
                }
            }
            stages.iter().map(|st| stage_time(st)).sum()
        };
        let read_s = per_op(dssim_components::request::Op::Read);
        let write_s = per_op(dssim_components::request::Op::Write);
        CallTimes {
            read_s,
            write_s,
            method: Some(format!(
                "calls ({:.3} ms a read, {:.3} ms a write) held on the worker: entries in sequence add up, a parallel stage waits for its slowest call, E[max] = ∫(1 − ∏F_i(t))dt with each call's time taken as exponential of the callee's predicted mean (H_N × mean for N alike), capped at the call's timeout",
                read_s * 1e3,
                write_s * 1e3
            )),
        }
    }
}

/// The mean time of one stage of calls: the max of its calls' times, each exponential of
/// its mean and capped at its timeout.
fn stage_time(calls: &[(f64, u32, f64)]) -> f64 {
    if calls.is_empty() {
        return 0.0;
    }
    if calls.iter().any(|c| !c.0.is_finite() && c.2.is_infinite()) {
        return f64::INFINITY;
    }
    let no_cap = calls.iter().all(|c| c.2.is_infinite());
    let mean0 = calls[0].0;
    if no_cap && calls.iter().all(|c| c.0 == mean0) {
        let n: u32 = calls.iter().map(|c| c.1).sum();
        return crate::queueing::max_of_exponentials(n, mean0);
    }
    if calls.iter().all(|c| c.0 <= 0.0) {
        return 0.0;
    }
    // One survival per call (a fan-out of `count` is `count` calls).
    let survival: Vec<Box<dyn Fn(f64) -> f64>> = calls
        .iter()
        .flat_map(|&(mean, count, cap)| {
            (0..count).map(move |_| -> Box<dyn Fn(f64) -> f64> {
                Box::new(move |t: f64| {
                    if t >= cap || mean <= 0.0 {
                        0.0
                    } else if !mean.is_finite() {
                        1.0
                    } else {
                        (-t / mean).exp()
                    }
                })
            })
        })
        .collect();
    let means: Vec<f64> = calls
        .iter()
        .flat_map(|&(mean, count, cap)| (0..count).map(move |_| mean.min(cap).max(1e-9)))
        .collect();
    let refs: Vec<&dyn Fn(f64) -> f64> = survival.iter().map(|b| b.as_ref()).collect();
    crate::queueing::expected_max(&refs, &means)
}

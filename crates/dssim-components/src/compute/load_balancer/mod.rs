//! Load balancers: spread a service's requests over its instances.
//!
//! ```text
//!                      +----------- lb ------------+        +--> app.0
//!   client --request-->| L7: parse  -> algorithm --+--------+--> app.1   (outstanding per
//!                      |  health checks (probes) --+~~~~~~~~+--> app.2    backend counted)
//!                      +---------------------------+
//! ```
//!
//! A load balancer is a queueing-free proxy: it adds no waiting of its own, only a
//! per-request `parse` delay at layer 7 (default `0.1ms` when `layer = 7` and `parse` is
//! absent; layer 4 pays nothing and ignores `parse`). It picks a backend with `algorithm`:
//!
//! | `algorithm` | picks |
//! |---|---|
//! | `round_robin` | the next backend in turn |
//! | `weighted_round_robin` | in turn, in proportion to `weights` (smooth WRR, as nginx: no bursts); equal weights when absent |
//! | `least_connections` | the backend with the fewest outstanding requests (ties in turn) |
//! | `random` | uniformly at random |
//! | `power_of_two` | the less loaded of two distinct random backends (Mitzenmacher's power of two choices) |
//! | `ip_hash` | by a hash of the user id, mod the number of backends (sticky users) |
//! | `consistent_hash` | by the request key on a hash ring with `virtual_nodes` points per backend (Karger et al.) |
//!
//! Outstanding requests are those routed to a backend and not yet answered; with an ideal
//! network they equal the backend's queue plus requests in service, so `least_connections`
//! is join-the-shortest-queue and `power_of_two` is the supermarket model.
//!
//! `health_check = { interval, timeout, healthy, unhealthy }` probes every backend each
//! `interval`; a probe not answered within `timeout` fails. A backend is taken out of
//! rotation after `unhealthy` failed probes in a row and put back after `healthy` successes
//! in a row. Until then a dead instance keeps receiving its share of traffic, and those
//! requests fail: the detection window shows in the errors. Probes are answered by any live
//! instance at once, however slow it is, so a gray (slow) instance passes its health checks.
//! With every backend out of rotation the balancer fails open and uses them all (as Envoy's
//! panic threshold does). Hash-based algorithms move only the keys or users of a backend
//! that is out of rotation. Backends are the service's instances when the model is built.
//!
//! `outlier_ejection = { interval, latency_factor, error_rate, min_requests, ejection_time,
//! max_ejection_percent }` is passive: no probe, only the answers the balancer forwards
//! (as Envoy's outlier detection). Every `interval` it looks at each backend in rotation
//! that answered at least `min_requests` requests in that interval: a backend whose mean
//! answer time (from forwarding to its answer) is above `latency_factor` × the median of
//! those means, or whose share of failed answers (errors, sheds) is at least `error_rate`,
//! is an outlier and leaves the rotation for `ejection_time` (then it is back, and judged
//! again). The worst outliers go first, and at most `max_ejection_percent` of the backends
//! are out at once (at least one). This is how a gray instance — slow, yet passing every
//! health check — is found; the price is the capacity taken out while a backend is out, and
//! false ejections: a backend that was neither slow nor down when it was ejected.
//!
//! Measures: requests through it and the p99 of their time from arriving at the balancer
//! to its answer (components.csv), requests routed to each backend and the times backends
//! left and rejoined the rotation (for tests and inspection). With `outlier_ejection`, a row
//! `LB.ejection` (kind `outlier_ejection`): ejections in the window and, as its
//! `utilization`, the share of backends out over the window (the capacity removed); and a
//! row `LB.false_ejection`: the ejections of a backend that was neither slow nor down.
//!
//! Files: `config` (the `[[load_balancers]]` table and its checks), `health` (active
//! health checks and passive outlier ejection); the actor and its algorithms are here.

mod config;
mod health;

use dssim_engine::rng::splitmix64;
use dssim_engine::{ActorId, Dist, Histogram, SimTime};
use rand::Rng as _;

use crate::health_check::HealthChecker;
use crate::node::{unexpected, Ctx, Msg};
use crate::request::{call, reply, ReqId, Status};
use crate::trace;

pub use config::*;

/// A backend leaving or rejoining the rotation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HealthChange {
    /// When the health checker decided.
    pub at: SimTime,
    /// Backend index (instance index in the service).
    pub backend: u32,
    /// Whether it is back in rotation (`true`) or out of it.
    pub healthy: bool,
}

/// What a load balancer measured.
#[derive(Debug, Default)]
pub struct LbStats {
    /// Requests that arrived after warm-up.
    pub requests: u64,
    /// Time from arrival at the balancer to its answer, for requests arrived after warm-up.
    pub sojourn: Histogram,
    /// Requests routed to each backend (whole run).
    pub routed: Vec<u64>,
    /// Health decisions, in time order.
    pub changes: Vec<HealthChange>,
    /// Outlier ejections and returns, in time order (`healthy` = back in rotation).
    pub ejections: Vec<HealthChange>,
    /// Ejections in the measured window.
    pub ejected: u64,
    /// Of which false: the backend was neither slow nor down when ejected.
    pub false_ejections: u64,
    /// Backends ejected, over time (reset when the window opens).
    pub out: dssim_engine::TimeWeighted,
}

/// A load balancer's own timers ([`Msg::Balancer`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BalancerTimer {
    /// Parsing this request is over (layer 7): route it.
    Parsed(ReqId),
    /// Send a round of health probes.
    Probe,
    /// The probe round's timeout: backends that did not answer count a failure.
    Check,
    /// Outlier detection: judge the answers of the interval just past.
    Outliers,
    /// An ejected backend's `ejection_time` is over: back in rotation.
    Return(u32),
}
const NONE: u32 = u32::MAX;

#[derive(Clone, Copy, Debug)]
struct Slot {
    gen: u32,
    backend: u32,
    since: SimTime,
}

/// Passive outlier detection's state: the answers of the current interval per backend.
#[derive(Debug)]
struct Outliers {
    interval: SimTime,
    latency_factor: Option<f64>,
    error_rate: Option<f64>,
    min_requests: u64,
    ejection_time: SimTime,
    max_out: usize,
    answers: Vec<u64>,
    failed: Vec<u64>,
    time_ns: Vec<u64>,
    ejected: Vec<bool>,
}

/// A load balancer actor.
#[derive(Debug)]
pub struct LoadBalancer {
    algorithm: Algorithm,
    /// The backends' service name and the ring's points per backend, to build the ring
    /// when a timed change switches to `consistent_hash`.
    service: String,
    virtual_nodes: u32,
    backends: Vec<ActorId>,
    weights: Vec<i64>,
    current: Vec<i64>,
    outstanding: Vec<u32>,
    in_rotation: Vec<bool>,
    /// Indices of backends in rotation (all of them when none is: fail open).
    live: Vec<u32>,
    all: Vec<u32>,
    /// Whether each backend is a member of its service now (all true unless an autoscaler
    /// changes the members: see [`LoadBalancer::track_members`]).
    member: Vec<bool>,
    /// (service index, member-table version seen) when tracking an autoscaled service.
    tracking: Option<(usize, u64)>,
    ring: Vec<(u64, u32)>,
    parse: Option<Dist>,
    health: Option<HealthChecker>,
    outliers: Option<Outliers>,
    turn: usize,
    inflight: Vec<Slot>,
    /// Measurements.
    pub stats: LbStats,
}

/// The ring position of virtual node `v` of the backend named `name`.
fn ring_point(name: &str, v: u32) -> u64 {
    splitmix64(dssim_engine::rng::fnv1a(name.as_bytes()) ^ splitmix64(u64::from(v)))
}

/// A hash ring over `names` with `vnodes` points each, sorted by position.
pub fn hash_ring(names: &[String], vnodes: u32) -> Vec<(u64, u32)> {
    let mut ring: Vec<(u64, u32)> = names
        .iter()
        .enumerate()
        .flat_map(|(b, n)| (0..vnodes).map(move |v| (ring_point(n, v), b as u32)))
        .collect();
    ring.sort_unstable();
    ring
}

/// The ring entry owning `key`: the first point at or after its hash, wrapping around.
pub fn ring_index(ring: &[(u64, u32)], key: u64) -> usize {
    let h = splitmix64(key ^ 0x6a09_e667_f3bc_c909);
    let i = ring.partition_point(|p| p.0 < h);
    if i == ring.len() {
        0
    } else {
        i
    }
}

impl LoadBalancer {
    /// A balancer over `backends` (the instance actors of service `service`, in index
    /// order). With `members_of` (the service's index in the model) the backends are all
    /// the instances the service may have, [`crate::shared::Shared::all_instances`], and
    /// only its current members ([`crate::shared::Shared::is_member`]) receive traffic:
    /// for services an autoscaler, a timed change or a rolling deploy resizes.
    pub fn new(
        cfg: &LoadBalancerConfig,
        service: &str,
        backends: Vec<ActorId>,
        members_of: Option<usize>,
    ) -> Self {
        let n = backends.len();
        let weights: Vec<i64> = match &cfg.weights {
            Some(w) if w.len() == n => w.iter().map(|x| i64::from(*x)).collect(),
            _ => vec![1; n],
        };
        let ring = if cfg.algorithm == Algorithm::ConsistentHash {
            let names: Vec<String> = (0..n).map(|i| format!("{service}.{i}")).collect();
            hash_ring(&names, cfg.virtual_nodes.max(1))
        } else {
            Vec::new()
        };
        let parse = (cfg.layer == 7).then(|| {
            cfg.parse
                .as_ref()
                .map_or(Dist::Const(DEFAULT_PARSE.0 as f64), |d| d.0.clone())
        });
        let health = cfg.health_check.as_ref().map(|h| HealthChecker::new(h, n));
        let outliers = cfg.outlier_ejection.as_ref().map(|o| Outliers {
            interval: o.interval.0,
            latency_factor: o.latency_factor,
            error_rate: o.error_rate,
            min_requests: u64::from(o.min_requests.max(1)),
            ejection_time: o.ejection_time.0,
            max_out: ((n as f64 * o.max_ejection_percent / 100.0).floor() as usize).max(1),
            answers: vec![0; n],
            failed: vec![0; n],
            time_ns: vec![0; n],
            ejected: vec![false; n],
        });
        let all: Vec<u32> = (0..n as u32).collect();
        LoadBalancer {
            algorithm: cfg.algorithm,
            service: service.to_string(),
            virtual_nodes: cfg.virtual_nodes.max(1),
            backends,
            current: vec![0; n],
            weights,
            outstanding: vec![0; n],
            in_rotation: vec![true; n],
            live: all.clone(),
            all,
            member: vec![true; n],
            tracking: members_of.map(|si| (si, u64::MAX)),
            ring,
            parse: parse.filter(|d| d.mean() > 0.0),
            health,
            outliers,
            turn: 0,
            inflight: Vec::new(),
            stats: LbStats {
                routed: vec![0; n],
                ..LbStats::default()
            },
        }
    }

    /// The first events: the first round of health checks, at time zero.
    pub fn start(&self, schedule: &mut impl FnMut(SimTime, Msg)) {
        if self.health.is_some() && !self.backends.is_empty() {
            schedule(SimTime::ZERO, Msg::Balancer(BalancerTimer::Probe));
        }
        if let Some(o) = &self.outliers {
            if !self.backends.is_empty() {
                schedule(o.interval, Msg::Balancer(BalancerTimer::Outliers));
            }
        }
    }

    /// Restarts the time average of ejected backends at `now` (the window opens).
    pub fn reset_window(&mut self, now: SimTime) {
        self.stats.out.reset(now);
    }

    /// Share of the backends out of rotation by outlier ejection, averaged over the window.
    pub fn ejected_share(&self, now: SimTime) -> f64 {
        if self.backends.is_empty() {
            0.0
        } else {
            self.stats.out.mean(now) / self.backends.len() as f64
        }
    }

    /// Whether the balancer ejects outliers.
    pub fn ejects_outliers(&self) -> bool {
        self.outliers.is_some()
    }

    /// Whether each backend is in rotation now.
    pub fn in_rotation(&self) -> &[bool] {
        &self.in_rotation
    }

    /// Requests routed to each backend and not answered yet.
    pub fn outstanding(&self) -> &[u32] {
        &self.outstanding
    }

    /// Handles one message.
    #[inline]
    pub fn handle(&mut self, msg: Msg, ctx: &mut Ctx<'_>) {
        match msg {
            Msg::Request(req) => {
                let now = ctx.now();
                if now >= ctx.shared.stats.warmup {
                    self.stats.requests += 1;
                }
                self.open_slot(req, now);
                match &self.parse {
                    Some(d) => {
                        let d = d.sample(ctx.rng);
                        trace::phase(ctx, req, "parse (L7)");
                        ctx.timer(d, Msg::Balancer(BalancerTimer::Parsed(req)));
                    }
                    None => self.route(ctx, req),
                }
            }
            Msg::Balancer(BalancerTimer::Parsed(req)) => self.route(ctx, req),
            Msg::Response(req, status) => self.answered(ctx, req, status),
            Msg::Balancer(BalancerTimer::Probe) => self.probe(ctx),
            Msg::Balancer(BalancerTimer::Check) => self.check(ctx),
            Msg::Balancer(BalancerTimer::Outliers) => self.judge(ctx),
            Msg::Balancer(BalancerTimer::Return(b)) => self.readmit(ctx, b),
            Msg::Change(i) => {
                if let Some(&crate::changes::Setting::Algorithm(a)) =
                    ctx.shared.settings.get(i as usize)
                {
                    self.set_algorithm(a);
                }
            }
            Msg::ProbeAck { backend, round } => {
                if let Some(h) = &mut self.health {
                    h.ack(backend, round);
                }
            }
            Msg::Probe {
                from,
                backend,
                round,
            } => {
                // A geo router's deep health check: passed to a backend in rotation, in
                // turn; the backend answers the router (a dead one does not).
                if !self.live.is_empty() {
                    let b = self.live[round as usize % self.live.len()] as usize;
                    ctx.send(
                        self.backends[b],
                        Msg::Probe {
                            from,
                            backend,
                            round,
                        },
                    );
                }
            }
            other => unexpected("load balancer", other),
        }
    }

    /// Picks backends with `a` from now on (a timed change, [`crate::changes`]); counts of
    /// outstanding requests and weights carry over, a hash ring is built when first needed.
    pub fn set_algorithm(&mut self, a: Algorithm) {
        if a == Algorithm::ConsistentHash && self.ring.is_empty() {
            let names: Vec<String> = (0..self.backends.len())
                .map(|i| format!("{}.{i}", self.service))
                .collect();
            self.ring = hash_ring(&names, self.virtual_nodes);
        }
        self.algorithm = a;
    }

    fn sync_members(&mut self, ctx: &Ctx<'_>) {
        let Some((svc, seen)) = self.tracking else {
            return;
        };
        let version = ctx.shared.compute.services[svc].version;
        if version == seen {
            return;
        }
        self.tracking = Some((svc, version));
        for (b, m) in self.member.iter_mut().enumerate() {
            *m = ctx.shared.is_member(svc, b);
        }
        self.all.clear();
        self.all
            .extend((0..self.backends.len() as u32).filter(|b| self.member[*b as usize]));
        self.rebuild_live();
    }

    /// The backends in rotation: members, healthy and not ejected.
    fn rebuild_live(&mut self) {
        let ejected = self.outliers.as_ref().map(|o| &o.ejected);
        self.live.clear();
        self.live
            .extend((0..self.backends.len() as u32).filter(|b| {
                let b = *b as usize;
                self.in_rotation[b] && self.member[b] && ejected.is_none_or(|e| !e[b])
            }));
    }

    fn pick(&mut self, ctx: &mut Ctx<'_>, req: ReqId) -> Option<u32> {
        self.sync_members(ctx);
        let cands: &[u32] = if self.live.is_empty() {
            &self.all
        } else {
            &self.live
        };
        let len = cands.len();
        if len == 0 {
            return None;
        }
        let b = match self.algorithm {
            Algorithm::RoundRobin => {
                let b = cands[self.turn % len];
                self.turn = self.turn.wrapping_add(1);
                b
            }
            Algorithm::Random => cands[ctx.rng.random_range(0..len)],
            Algorithm::PowerOfTwo => {
                if len == 1 {
                    cands[0]
                } else {
                    let i = ctx.rng.random_range(0..len);
                    let mut j = ctx.rng.random_range(0..len - 1);
                    if j >= i {
                        j += 1;
                    }
                    let (a, b) = (cands[i], cands[j]);
                    if self.outstanding[b as usize] < self.outstanding[a as usize] {
                        b
                    } else {
                        a
                    }
                }
            }
            Algorithm::LeastConnections => {
                // A linear scan: backends are tens to hundreds, and a scan over a small
                // contiguous array costs less than keeping a priority queue updated on every
                // request and every answer. Start from a rotating index so ties are broken
                // in turn, not always towards the first backend.
                //
                // The scan is two plain passes (after `start`, then before it) rather than
                // one with `(start + k) % len`: a division per backend. With 8 backends, 73
                // instructions a pick fewer (production 20 s: 1,108.9 -> 1,102.7 M, about 1%
                // less CPU time in 10 interleaved rounds; outputs byte-identical); one loop
                // over the two parts chained saved only 29 (13 instructions a backend).
                //
                // One loop of `len - 1` steps whose index wraps by a select (no branch):
                // the two passes' trip counts changed with `start` on every pick, so both
                // loop exits mispredicted; a fixed count is learnt. Production 20 s:
                // 870.1 -> 871.0 M instructions, 7.29 -> 6.49 M mispredicts (callgrind's
                // branch simulation); 120 s CPU 8 interleaved rounds, mean -0.010 s
                // (medians 0.723 -> 0.727 s: within noise); outputs byte-identical.
                // Tried and not kept: carrying `turn % len` from the last pick while `len`
                // stays the same (no division on the way to the first count): production
                // 20 s 864.1 -> 865.9 M instructions, 120 s CPU 30 rounds mean +0.001 s.
                let start = self.turn % len;
                self.turn = self.turn.wrapping_add(1);
                let mut best = cands[start];
                let mut fewest = self.outstanding[best as usize];
                let mut i = start;
                for _ in 1..len {
                    i += 1;
                    i = if i == len { 0 } else { i };
                    let c = cands[i];
                    let n = self.outstanding[c as usize];
                    if n < fewest {
                        best = c;
                        fewest = n;
                    }
                }
                best
            }
            Algorithm::WeightedRoundRobin => {
                // Smooth weighted round robin: every backend gains its weight, the richest
                // is picked and pays the total.
                let mut total = 0;
                let mut best = cands[0];
                for &c in cands {
                    let c = c as usize;
                    self.current[c] += self.weights[c];
                    total += self.weights[c];
                    if self.current[c] > self.current[best as usize] {
                        best = c as u32;
                    }
                }
                if total == 0 {
                    let b = cands[self.turn % len];
                    self.turn = self.turn.wrapping_add(1);
                    b
                } else {
                    self.current[best as usize] -= total;
                    best
                }
            }
            Algorithm::IpHash => {
                let user = ctx.shared.reqs.get(req).map_or(0, |r| r.user);
                let h = splitmix64(u64::from(user) ^ 0xbb67_ae85_84ca_a73b);
                let b = (h % self.backends.len() as u64) as u32;
                if (self.live.is_empty() || self.in_rotation[b as usize]) && self.member[b as usize]
                {
                    b
                } else {
                    cands[((h >> 32) % len as u64) as usize]
                }
            }
            Algorithm::ConsistentHash => {
                let key = ctx.shared.reqs.get(req).map_or(0, |r| r.key);
                let start = ring_index(&self.ring, key);
                let n = self.ring.len();
                let mut b = self.ring[start].1;
                for k in 0..n {
                    let c = self.ring[(start + k) % n].1;
                    if (self.live.is_empty() || self.in_rotation[c as usize])
                        && self.member[c as usize]
                    {
                        b = c;
                        break;
                    }
                }
                b
            }
        };
        Some(b)
    }

    /// Remembers when `req` arrived, in a slot indexed like the request table.
    fn open_slot(&mut self, req: ReqId, now: SimTime) {
        let i = req.idx() as usize;
        if self.inflight.len() <= i {
            self.inflight.resize(
                i + 1,
                Slot {
                    gen: 0,
                    backend: NONE,
                    since: SimTime::ZERO,
                },
            );
        }
        self.inflight[i] = Slot {
            gen: req.gen(),
            backend: NONE,
            since: now,
        };
    }

    fn route(&mut self, ctx: &mut Ctx<'_>, req: ReqId) {
        let Some(b) = self.pick(ctx, req) else {
            reply(ctx, req, Status::Error);
            return;
        };
        if let Some(slot) = self.inflight.get_mut(req.idx() as usize) {
            if slot.gen == req.gen() {
                slot.backend = b;
            }
        }
        self.outstanding[b as usize] += 1;
        self.stats.routed[b as usize] += 1;
        trace::phase(ctx, req, "forward");
        call(ctx, self.backends[b as usize], req);
    }

    fn answered(&mut self, ctx: &mut Ctx<'_>, req: ReqId, status: Status) {
        let now = ctx.now();
        if let Some(slot) = self.inflight.get_mut(req.idx() as usize) {
            if slot.gen == req.gen() && slot.backend != NONE {
                let b = slot.backend as usize;
                slot.backend = NONE;
                self.outstanding[b] = self.outstanding[b].saturating_sub(1);
                if let Some(o) = &mut self.outliers {
                    o.answers[b] += 1;
                    o.failed[b] += u64::from(status != Status::Ok);
                    o.time_ns[b] += (now - slot.since).0;
                }
                if slot.since >= ctx.shared.stats.warmup {
                    self.stats.sojourn.record(now - slot.since);
                }
            }
        }
        reply(ctx, req, status);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adding_a_node_to_the_ring_moves_about_one_in_n_plus_one_keys() {
        // Karger et al.: adding one node to N moves ≈ 1/(N+1) of the keys; with 100 virtual
        // nodes per backend the share of each backend has a relative spread of about
        // 1/sqrt(100) = 10%, so the moved share is within ±40% of 1/(N+1) comfortably.
        let n = 8;
        let names: Vec<String> = (0..=n).map(|i| format!("app.{i}")).collect();
        let small = hash_ring(&names[..n], 100);
        let big = hash_ring(&names, 100);
        let keys = 100_000u64;
        let moved = (0..keys)
            .filter(|k| small[ring_index(&small, *k)].1 != big[ring_index(&big, *k)].1)
            .count() as f64
            / keys as f64;
        let expect = 1.0 / (n as f64 + 1.0);
        assert!(
            (moved - expect).abs() < 0.4 * expect,
            "moved {moved:.4}, expected about {expect:.4}"
        );
        // Every moved key went to the new node.
        for k in 0..keys {
            let (a, b) = (small[ring_index(&small, k)].1, big[ring_index(&big, k)].1);
            assert!(a == b || b == n as u32);
        }
    }
}

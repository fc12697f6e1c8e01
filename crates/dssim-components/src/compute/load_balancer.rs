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
//! Measures: requests through it and the p99 of their time from arriving at the balancer
//! to its answer (components.csv), requests routed to each backend and the times backends
//! left and rejoined the rotation (for tests and inspection).

use dssim_engine::rng::splitmix64;
use dssim_engine::{ActorId, Dist, Histogram, SimTime};
use rand::Rng as _;
use serde::{Deserialize, Serialize};

use crate::node::{unexpected, Ctx, Msg};
use crate::request::{call, reply, ReqId, Status};
use crate::service::ServiceConfig;
use crate::trace;
use crate::units::{DistSpec, Dur};
use crate::ConfigError;

/// How a load balancer picks a backend.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Algorithm {
    /// In turn.
    #[default]
    RoundRobin,
    /// In turn, in proportion to `weights`.
    WeightedRoundRobin,
    /// Fewest outstanding requests.
    LeastConnections,
    /// Uniformly at random.
    Random,
    /// Less loaded of two random backends.
    PowerOfTwo,
    /// Hash of the user id.
    IpHash,
    /// Hash ring over the request key.
    ConsistentHash,
}

/// `health_check = { interval, timeout, healthy, unhealthy }`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HealthCheckConfig {
    /// Time between probe rounds.
    pub interval: Dur,
    /// A probe unanswered this long fails; at most `interval`.
    pub timeout: Dur,
    /// Successes in a row that put a backend back in rotation.
    #[serde(default = "two")]
    pub healthy: u32,
    /// Failures in a row that take a backend out of rotation.
    #[serde(default = "three")]
    pub unhealthy: u32,
}

fn two() -> u32 {
    2
}
fn three() -> u32 {
    3
}
fn four() -> u32 {
    4
}
fn hundred() -> u32 {
    100
}

/// A `[[load_balancers]]` entry.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoadBalancerConfig {
    /// Unique name.
    pub name: String,
    /// The service whose instances receive the traffic.
    pub backends: String,
    /// How a backend is picked.
    #[serde(default)]
    pub algorithm: Algorithm,
    /// One weight per instance (weighted_round_robin; ignored otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weights: Option<Vec<u32>>,
    /// 4 (connection level, no parse cost) or 7 (HTTP, pays `parse` per request).
    #[serde(default = "four")]
    pub layer: u32,
    /// Per-request parse time at layer 7; `0.1ms` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parse: Option<DistSpec>,
    /// Points per backend on the consistent-hash ring.
    #[serde(default = "hundred")]
    pub virtual_nodes: u32,
    /// Active health checks; none when absent (dead backends keep receiving traffic).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_check: Option<HealthCheckConfig>,
    /// Region for network latency.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
}

/// Parse time at layer 7 when `parse` is absent.
pub const DEFAULT_PARSE: SimTime = SimTime::from_nanos(100_000);

impl LoadBalancerConfig {
    /// Checks the entry against the model's services; `p` is its path
    /// (`load_balancers.lb`).
    pub fn validate(&self, p: &str, services: &[ServiceConfig], errs: &mut Vec<ConfigError>) {
        let svc = services.iter().find(|s| s.name == self.backends);
        if svc.is_none() {
            let hint =
                crate::did_you_mean(&self.backends, services.iter().map(|s| s.name.as_str()))
                    .map(|s| format!(" (did you mean {s:?}?)"))
                    .unwrap_or_default();
            let names: Vec<&str> = services.iter().map(|s| s.name.as_str()).collect();
            errs.push(ConfigError::new(
                format!("{p}.backends"),
                format!(
                    "no service is named {:?}; `backends` names a service, whose instances share the traffic; services: {}{hint}",
                    self.backends,
                    if names.is_empty() { "none".to_string() } else { names.join(", ") }
                ),
            ));
        }
        if self.layer != 4 && self.layer != 7 {
            errs.push(ConfigError::new(
                format!("{p}.layer"),
                format!("must be 4 or 7; found {}", self.layer),
            ));
        }
        if self.virtual_nodes == 0 {
            errs.push(ConfigError::new(
                format!("{p}.virtual_nodes"),
                "must be at least 1",
            ));
        }
        if let (Some(w), Some(s)) = (&self.weights, svc) {
            if w.len() != s.instances as usize {
                errs.push(ConfigError::new(
                    format!("{p}.weights"),
                    format!(
                        "needs one weight per instance of {:?}: {} instances, {} weights",
                        s.name,
                        s.instances,
                        w.len()
                    ),
                ));
            } else if w.iter().all(|x| *x == 0) {
                errs.push(ConfigError::new(
                    format!("{p}.weights"),
                    "at least one weight must be above zero",
                ));
            }
        }
        if let Some(h) = &self.health_check {
            let hp = format!("{p}.health_check");
            if h.interval.0 == SimTime::ZERO {
                errs.push(ConfigError::new(
                    format!("{hp}.interval"),
                    "must be longer than zero",
                ));
            }
            if h.timeout.0 == SimTime::ZERO || h.timeout > h.interval {
                errs.push(ConfigError::new(
                    format!("{hp}.timeout"),
                    format!(
                        "must be above zero and at most the interval ({})",
                        h.interval.0
                    ),
                ));
            }
            for (field, v) in [("healthy", h.healthy), ("unhealthy", h.unhealthy)] {
                if v == 0 {
                    errs.push(ConfigError::new(
                        format!("{hp}.{field}"),
                        "must be at least 1",
                    ));
                }
            }
        }
    }
}

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
}
const NONE: u32 = u32::MAX;

#[derive(Clone, Copy, Debug)]
struct Slot {
    gen: u32,
    backend: u32,
    since: SimTime,
}

#[derive(Debug)]
struct Health {
    interval: SimTime,
    timeout: SimTime,
    healthy: u32,
    unhealthy: u32,
    round: u32,
    open: bool,
    acked: Vec<bool>,
    successes: Vec<u32>,
    failures: Vec<u32>,
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
    health: Option<Health>,
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
    /// order).
    pub fn new(cfg: &LoadBalancerConfig, service: &str, backends: Vec<ActorId>) -> Self {
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
        let health = cfg.health_check.as_ref().map(|h| Health {
            interval: h.interval.0,
            timeout: h.timeout.0,
            healthy: h.healthy.max(1),
            unhealthy: h.unhealthy.max(1),
            round: 0,
            open: false,
            acked: vec![false; n],
            successes: vec![0; n],
            failures: vec![0; n],
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
            tracking: None,
            ring,
            parse: parse.filter(|d| d.mean() > 0.0),
            health,
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
            Msg::Change(i) => {
                if let Some(&crate::changes::Setting::Algorithm(a)) =
                    ctx.shared.settings.get(i as usize)
                {
                    self.set_algorithm(a);
                }
            }
            Msg::ProbeAck { backend, round } => {
                if let Some(h) = &mut self.health {
                    if h.open && h.round == round {
                        if let Some(a) = h.acked.get_mut(backend as usize) {
                            *a = true;
                        }
                    }
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

    /// Follows the members of service `service` (its index in the model): the backends
    /// must then be all its instances, [`crate::shared::Shared::all_instances`], and only
    /// the members ([`crate::shared::Shared::is_member`]) receive traffic. For services an
    /// autoscaler resizes.
    pub fn track_members(&mut self, service: usize) {
        self.tracking = Some((service, u64::MAX));
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
        self.live.clear();
        self.live.extend(
            self.all
                .iter()
                .copied()
                .filter(|b| self.in_rotation[*b as usize]),
        );
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
                let start = self.turn % len;
                self.turn = self.turn.wrapping_add(1);
                let mut best = cands[start];
                for k in 1..len {
                    let c = cands[(start + k) % len];
                    if self.outstanding[c as usize] < self.outstanding[best as usize] {
                        best = c;
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
        let i = req.idx as usize;
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
            gen: req.gen,
            backend: NONE,
            since: now,
        };
    }

    fn route(&mut self, ctx: &mut Ctx<'_>, req: ReqId) {
        let Some(b) = self.pick(ctx, req) else {
            reply(ctx, req, Status::Error);
            return;
        };
        if let Some(slot) = self.inflight.get_mut(req.idx as usize) {
            if slot.gen == req.gen {
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
        if let Some(slot) = self.inflight.get_mut(req.idx as usize) {
            if slot.gen == req.gen && slot.backend != NONE {
                let b = slot.backend as usize;
                slot.backend = NONE;
                self.outstanding[b] = self.outstanding[b].saturating_sub(1);
                if slot.since >= ctx.shared.stats.warmup {
                    self.stats.sojourn.record(now - slot.since);
                }
            }
        }
        reply(ctx, req, status);
    }

    fn probe(&mut self, ctx: &mut Ctx<'_>) {
        let me = ctx.me();
        let Some(h) = &mut self.health else {
            return;
        };
        h.round = h.round.wrapping_add(1);
        h.open = true;
        h.acked.fill(false);
        let round = h.round;
        let (timeout, interval) = (h.timeout, h.interval);
        for (b, &to) in self.backends.iter().enumerate() {
            // A probe the network loses is a failed probe: nothing to do here.
            ctx.send(
                to,
                Msg::Probe {
                    from: me,
                    backend: b as u32,
                    round,
                },
            );
        }
        ctx.timer(timeout, Msg::Balancer(BalancerTimer::Check));
        ctx.timer(interval, Msg::Balancer(BalancerTimer::Probe));
    }

    fn check(&mut self, ctx: &mut Ctx<'_>) {
        let now = ctx.now();
        let Some(h) = &mut self.health else {
            return;
        };
        h.open = false;
        let mut changed = false;
        for b in 0..self.backends.len() {
            if h.acked[b] {
                h.successes[b] += 1;
                h.failures[b] = 0;
                if !self.in_rotation[b] && h.successes[b] >= h.healthy {
                    self.in_rotation[b] = true;
                    changed = true;
                    self.stats.changes.push(HealthChange {
                        at: now,
                        backend: b as u32,
                        healthy: true,
                    });
                }
            } else {
                h.failures[b] += 1;
                h.successes[b] = 0;
                if self.in_rotation[b] && h.failures[b] >= h.unhealthy {
                    self.in_rotation[b] = false;
                    changed = true;
                    self.stats.changes.push(HealthChange {
                        at: now,
                        backend: b as u32,
                        healthy: false,
                    });
                }
            }
        }
        if changed {
            self.live.clear();
            self.live.extend(
                (0..self.backends.len() as u32)
                    .filter(|b| self.in_rotation[*b as usize] && self.member[*b as usize]),
            );
        }
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

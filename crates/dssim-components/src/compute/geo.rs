//! Geo-routing: each client is sent to the nearest healthy region (a GeoDNS or global
//! server load balancer), with health checks, regional failover and fail-back.
//!
//! ```text
//!   users-eu --(resolve: nearest healthy entry)--> lb-eu --> app-eu     (normal)
//!   users-eu ----------------------------------->  lb-us --> app-us     (eu is down)
//!                      geo router (in its region) ~~probes~~> lb-us, lb-eu, lb-ap
//! ```
//!
//! A `[[geo_routers]]` entry names the regional entry points (`entries`: load balancers or
//! services, each in its `region`). A client whose `target` is a geo router resolves it
//! the way DNS does, on its own side and without a hop: it sends each request straight to
//! the nearest entry that is healthy, nearest by the mean one-way latency from the
//! client's region to the entry's (`[network]`: `latency` within a region, `regions."a:b"`
//! between two; ties go to the entry listed first). With `ttl`, a client keeps an answer
//! that long before asking again, as a DNS resolver caches a record.
//!
//! `health_check = { interval, timeout, healthy, unhealthy }` (as on a load balancer) has
//! the router probe every entry from its own `region` each `interval`. A probe goes through
//! the entry to one of its backends (a deep check: a load balancer passes it to a backend
//! in rotation, taking them in turn; a service entry sends it to one of its members), so an
//! entry is down when its backends are dead, or when a partition cuts the entry or its
//! backends off from the router. An entry leaves the rotation after `unhealthy` failed
//! probes in a row and comes back after `healthy` successes in a row. Until it leaves,
//! its region's users keep being sent there and fail (the detection time, about
//! `timeout + (unhealthy − ½) × interval` after an outage, shows in the errors); then they
//! cross to the next-nearest region and pay its round trip. With every entry down the
//! router fails open (each client to its nearest). Without `health_check` nothing is
//! detected: each client always goes to its nearest entry, dead or not.
//!
//! Measures (components.csv): a row `ROUTER` (kind `geo_router`): attempts routed in the
//! window and, as `hit_ratio`, the share sent to the sender's nearest entry; a row
//! `ROUTER.ENTRY` (kind `geo_entry`) per entry: attempts sent to it, and as `utilization`
//! the share of the window it was out of rotation; a row `ROUTER.CLIENT` (kind
//! `geo_client`) per client behind it: its logical requests first sent in the window, the
//! mean and p99 latency of its successful ones (end to end, as runs.csv), and as
//! `hit_ratio` its availability (ok / requests).

use dssim_engine::{ActorId, Histogram, SimTime, TimeWeighted};
use rand::Rng as _;
use serde::{Deserialize, Serialize};

use crate::health_check::HealthChecker;
use crate::load_balancer::HealthCheckConfig;
use crate::model::NetworkConfig;
use crate::node::{unexpected, Ctx, Msg};
use crate::units::Dur;
use crate::ConfigError;

/// A `[[geo_routers]]` entry.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GeoRouterConfig {
    /// Unique name; clients name it as their `target`.
    pub name: String,
    /// The regional entry points (load balancers or services, each with its `region`): a
    /// client goes to the nearest one (by mean one-way latency from its region) that is in
    /// rotation, and fails over to the next-nearest when that one's health checks fail.
    pub entries: Vec<String>,
    /// Health checks of the entries, sent from the router's region through each entry to
    /// one of its backends: out of rotation after `unhealthy` failures in a row (detection
    /// takes about `timeout` + (`unhealthy` − ½) × `interval`, while that region's users
    /// fail), back after `healthy` successes; none when absent (each client always goes
    /// to its nearest entry, dead or not: no failover).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_check: Option<HealthCheckConfig>,
    /// How long a client keeps the answer before asking again (a DNS record's TTL); every
    /// request asks again when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<Dur>,
    /// Region the health checks are sent from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
}

impl GeoRouterConfig {
    /// Checks the entry's own values; `p` is its path (`geo_routers.dns`). References are
    /// checked by the model's validation.
    pub fn validate(&self, p: &str, errs: &mut Vec<ConfigError>) {
        if self.entries.is_empty() {
            errs.push(ConfigError::new(
                format!("{p}.entries"),
                "needs at least one entry point (a load balancer or a service per region), e.g. entries = [\"lb-us\", \"lb-eu\"]",
            ));
        }
        for (i, e) in self.entries.iter().enumerate() {
            if self.entries[..i].contains(e) {
                errs.push(ConfigError::new(
                    format!("{p}.entries"),
                    format!("{e:?} is listed twice"),
                ));
            }
        }
        if let Some(h) = &self.health_check {
            crate::load_balancer::validate_health_check(&format!("{p}.health_check"), h, errs);
        }
    }
}

/// Mean one-way latency in nanoseconds from region `a` to region `b` (`None`: the default
/// region), as the network draws it: `regions."a:b"` (either order) between two named
/// regions, else `latency`.
pub fn mean_latency_ns(net: &NetworkConfig, a: &Option<String>, b: &Option<String>) -> f64 {
    let (ra, rb) = (a.as_deref().unwrap_or(""), b.as_deref().unwrap_or(""));
    let pair = (ra != rb)
        .then(|| {
            net.regions
                .get(&format!("{ra}:{rb}"))
                .or_else(|| net.regions.get(&format!("{rb}:{ra}")))
        })
        .flatten();
    match pair.or(net.latency.as_ref()) {
        Some(d) => d.0.mean(),
        None => 0.0,
    }
}

/// The indices of `entry_regions` ordered nearest first from `from` (ties in list order).
pub fn nearest_first(
    net: &NetworkConfig,
    from: &Option<String>,
    entry_regions: &[Option<String>],
) -> Vec<usize> {
    let mut v: Vec<(f64, usize)> = entry_regions
        .iter()
        .enumerate()
        .map(|(i, r)| (mean_latency_ns(net, from, r), i))
        .collect();
    v.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    v.into_iter().map(|x| x.1).collect()
}

/// Where a request or a probe for one entry goes: an actor (a load balancer), or a
/// service's current members.
#[derive(Clone, Debug)]
pub enum EntryTarget {
    /// One actor.
    Actor(ActorId),
    /// A service (index) and all its instance actors (used while none is a member).
    Service(usize, Vec<ActorId>),
}

impl EntryTarget {
    fn pick(&self, ctx: &mut Ctx<'_>) -> Option<ActorId> {
        match self {
            EntryTarget::Actor(a) => Some(*a),
            EntryTarget::Service(s, all) => {
                let active = ctx.shared.active_instances(*s);
                match active.len() {
                    0 => all.first().copied(),
                    1 => Some(active[0]),
                    n => Some(active[ctx.rng.random_range(0..n)]),
                }
            }
        }
    }
}

/// A geo router's own timers ([`Msg::Geo`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GeoTimer {
    /// Send a round of health probes.
    Probe,
    /// The round's timeout: entries that did not answer count a failure.
    Check,
}

/// A decision of the health checker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EntryChange {
    /// When it was decided.
    pub at: SimTime,
    /// The entry (index in `entries`).
    pub entry: u32,
    /// Back in rotation (`true`) or out of it.
    pub up: bool,
}

/// A geo router: the health checker of its entries. Clients route themselves
/// ([`GeoRoute`]) by the up/down table it keeps in `Shared::geo`.
#[derive(Debug)]
pub struct GeoRouter {
    index: usize,
    entries: Vec<EntryTarget>,
    /// Its health checks; none configured: nothing is ever detected.
    health: Option<HealthChecker>,
    /// Health decisions, in time order.
    pub changes: Vec<EntryChange>,
    /// Per entry: 1 while out of rotation, over time (reset when the window opens).
    pub down: Vec<TimeWeighted>,
}

impl GeoRouter {
    /// Router `index` (in the model's `geo_routers`) over `entries`.
    pub fn new(index: usize, cfg: &GeoRouterConfig, entries: Vec<EntryTarget>) -> Self {
        let n = entries.len();
        GeoRouter {
            index,
            entries,
            health: cfg.health_check.as_ref().map(|h| HealthChecker::new(h, n)),
            changes: Vec::new(),
            down: (0..n).map(|_| TimeWeighted::default()).collect(),
        }
    }

    /// The first event: a round of probes at time zero, with health checks.
    pub fn start(&self, schedule: &mut impl FnMut(SimTime, Msg)) {
        let checks = self
            .health
            .as_ref()
            .is_some_and(|h| h.interval > SimTime::ZERO);
        if checks && !self.entries.is_empty() {
            schedule(SimTime::ZERO, Msg::Geo(GeoTimer::Probe));
        }
    }

    /// Restarts the time averages at `now` (the window opens).
    pub fn reset_window(&mut self, now: SimTime) {
        for d in &mut self.down {
            d.reset(now);
        }
    }

    /// Handles one message.
    pub fn handle(&mut self, msg: Msg, ctx: &mut Ctx<'_>) {
        match msg {
            Msg::Geo(GeoTimer::Probe) => self.probe(ctx),
            Msg::Geo(GeoTimer::Check) => self.check(ctx),
            Msg::ProbeAck { backend, round } => {
                if let Some(h) = &mut self.health {
                    h.ack(backend, round);
                }
            }
            other => unexpected("geo router", other),
        }
    }

    fn probe(&mut self, ctx: &mut Ctx<'_>) {
        let me = ctx.me();
        let Some(h) = &mut self.health else {
            return;
        };
        let round = h.open_round();
        let (timeout, interval) = (h.timeout, h.interval);
        for e in 0..self.entries.len() {
            let (to, backend) = match &self.entries[e] {
                EntryTarget::Actor(a) => (Some(*a), e as u32),
                EntryTarget::Service(s, _) => {
                    let active = ctx.shared.active_instances(*s);
                    let to = (!active.is_empty()).then(|| active[round as usize % active.len()]);
                    (to, e as u32)
                }
            };
            // A probe the network loses, or one with nowhere to go, is a failed probe.
            if let Some(to) = to {
                ctx.send(
                    to,
                    Msg::Probe {
                        from: me,
                        backend,
                        round,
                    },
                );
            }
        }
        ctx.timer(timeout, Msg::Geo(GeoTimer::Check));
        ctx.timer(interval, Msg::Geo(GeoTimer::Probe));
    }

    fn check(&mut self, ctx: &mut Ctx<'_>) {
        let now = ctx.now();
        let Some(h) = &mut self.health else {
            return;
        };
        if ctx.shared.geo.len() <= self.index {
            ctx.shared.geo.resize(self.index + 1, Vec::new());
        }
        let up = &mut ctx.shared.geo[self.index];
        up.resize(self.entries.len(), true);
        let (down, changes) = (&mut self.down, &mut self.changes);
        h.close_round(up, |e, v| {
            down[e].set(now, if v { 0.0 } else { 1.0 });
            changes.push(EntryChange {
                at: now,
                entry: e as u32,
                up: v,
            });
        });
    }
}

/// What one client measured behind a geo router (the measured window).
#[derive(Debug, Default)]
pub struct GeoClientStats {
    /// Logical requests first sent in the window.
    pub requests: u64,
    /// Of which ended ok.
    pub ok: u64,
    /// Latency of the ok ones, first send to answer.
    pub latency: Histogram,
    /// Attempts sent in the window, per entry (index in the router's `entries`).
    pub routed: Vec<u64>,
    /// Attempts sent in the window to this client's nearest entry.
    pub nearest: u64,
}

/// A client's side of geo-routing: its router's entries nearest first, and its cached
/// answer.
#[derive(Debug)]
pub struct GeoRoute {
    /// The router (index in the model's `geo_routers`).
    pub router: usize,
    /// (entry index, where it sends) nearest first.
    order: Vec<(usize, EntryTarget)>,
    ttl: SimTime,
    cached: Option<(usize, SimTime)>,
    /// Measurements.
    pub stats: GeoClientStats,
}

impl GeoRoute {
    /// A route over `order` (entries nearest first: index and target), keeping answers
    /// `ttl` long; `entries` is the router's number of entries.
    pub fn new(
        router: usize,
        order: Vec<(usize, EntryTarget)>,
        ttl: SimTime,
        entries: usize,
    ) -> Self {
        GeoRoute {
            router,
            order,
            ttl,
            cached: None,
            stats: GeoClientStats {
                routed: vec![0; entries],
                ..GeoClientStats::default()
            },
        }
    }

    /// The position in the order of the entry to use at `now`, given the router's table
    /// (`up[entry]`; an entry not in it counts as up).
    fn resolve(&mut self, now: SimTime, up: &[bool]) -> usize {
        if let Some((pos, at)) = self.cached {
            if now < at + self.ttl {
                return pos;
            }
        }
        let pos = self
            .order
            .iter()
            .position(|(e, _)| up.get(*e).copied().unwrap_or(true))
            .unwrap_or(0);
        if self.ttl > SimTime::ZERO {
            self.cached = Some((pos, now));
        }
        pos
    }

    /// Where this attempt goes (counting it when `counted`); `None` when the router has
    /// no entry.
    pub fn target(&mut self, ctx: &mut Ctx<'_>, counted: bool) -> Option<ActorId> {
        let up = ctx
            .shared
            .geo
            .get(self.router)
            .map_or(&[][..], Vec::as_slice);
        let pos = self.resolve(ctx.now(), up);
        let (entry, t) = self.order.get(pos)?;
        if counted {
            if let Some(r) = self.stats.routed.get_mut(*entry) {
                *r += 1;
            }
            if pos == 0 {
                self.stats.nearest += 1;
            }
        }
        t.pick(ctx)
    }

    /// A logical request first sent at `first_sent` ended at `now` (ok or not).
    pub fn record(&mut self, first_sent: SimTime, now: SimTime, ok: bool) {
        self.stats.requests += 1;
        if ok {
            self.stats.ok += 1;
            self.stats.latency.record(now - first_sent);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::units::DistSpec;

    fn net() -> NetworkConfig {
        let mut n = NetworkConfig {
            latency: Some(DistSpec(dssim_engine::Dist::Const(1e6))),
            ..NetworkConfig::default()
        };
        for (k, ms) in [("us:eu", 40.0), ("eu:ap", 90.0), ("us:ap", 70.0)] {
            n.regions
                .insert(k.to_string(), DistSpec(dssim_engine::Dist::Const(ms * 1e6)));
        }
        n
    }

    #[test]
    fn entries_are_ordered_by_latency_from_the_clients_region() {
        let r = |s: &str| Some(s.to_string());
        let entries = [r("us"), r("eu"), r("ap")];
        assert_eq!(nearest_first(&net(), &r("eu"), &entries), vec![1, 0, 2]);
        assert_eq!(nearest_first(&net(), &r("ap"), &entries), vec![2, 0, 1]);
        assert_eq!(nearest_first(&net(), &r("us"), &entries), vec![0, 1, 2]);
        assert_eq!(mean_latency_ns(&net(), &r("ap"), &r("eu")), 90e6);
        assert_eq!(mean_latency_ns(&net(), &r("ap"), &r("ap")), 1e6);
    }

    #[test]
    fn a_route_skips_entries_down_and_keeps_its_answer_for_the_ttl() {
        let order = vec![
            (1, EntryTarget::Actor(11)),
            (0, EntryTarget::Actor(10)),
            (2, EntryTarget::Actor(12)),
        ];
        let mut g = GeoRoute::new(0, order.clone(), SimTime::ZERO, 3);
        assert_eq!(g.resolve(SimTime::ZERO, &[]), 0);
        assert_eq!(g.resolve(SimTime::ZERO, &[true, false, true]), 1);
        assert_eq!(g.resolve(SimTime::ZERO, &[false, false, true]), 2);
        // Every entry down: fail open to the nearest.
        assert_eq!(g.resolve(SimTime::ZERO, &[false, false, false]), 0);
        let mut g = GeoRoute::new(0, order, SimTime::from_secs(30), 3);
        assert_eq!(g.resolve(SimTime::ZERO, &[true, true, true]), 0);
        assert_eq!(g.resolve(SimTime::from_secs(29), &[true, false, true]), 0);
        assert_eq!(g.resolve(SimTime::from_secs(30), &[true, false, true]), 1);
    }
}

//! Compute-tier state every actor of a run can read: which instances of each service exist
//! and take traffic, and the per-service figures autoscalers, canary controllers and the
//! final report read.
//!
//! ## The active-instance table (for routers)
//!
//! Every instance a service may ever have is created when the run is built (up to its
//! autoscaler's `max`); each has a [`Life`]. Routers (clients, load balancers) must pick
//! only among [`Shared::active_instances`]`(service)`: the instances that are *members* of
//! the service now, in index order. A member may still be down (crashed after running out
//! of memory, killed by a fault): it then answers `Error`, as a dead host would, until a
//! health check takes it out. Instances being provisioned, drained or switched off are not
//! members. Look a service up by name once at build time with [`Shared::service_index`].
//! A router that keeps state per backend (round robin position, connection counts, health)
//! can instead hold [`Shared::all_instances`] by index and skip those for which
//! [`Shared::is_member`] is false.
//!
//! ```text
//!   Off --scale up--> Provisioning --provision delay--> Ready (member)
//!    ^                                                   |   ^
//!    +---- idle ---- Draining <------ scale down --------+   | restart delay
//!                                                         Crashed (member, answers Error)
//! ```

use dssim_engine::{ActorId, Histogram, SimTime, TimeWeighted};

use crate::compute::deploy::DeployState;
use crate::compute::feature::FeatureState;
use crate::report::{Cell, ComponentRow, RunReport};
use crate::service::{ServiceConfig, Sessions};

/// Where an instance is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Life {
    /// Not running, not billed.
    Off,
    /// Starting: billed, not yet a member.
    Provisioning,
    /// Serving: a member.
    Ready,
    /// Removed from the members; finishes the work it holds, then switches off.
    Draining,
    /// Down after a crash, restarting: still a member (answers `Error`), still billed.
    Crashed,
}

impl Life {
    pub(crate) fn member(self) -> bool {
        matches!(self, Life::Ready | Life::Crashed)
    }
    pub(crate) fn billed(self) -> bool {
        !matches!(self, Life::Off)
    }
}

/// A canary version's live figures (see [`crate::canary`]).
#[derive(Debug, Default)]
pub struct CanaryState {
    /// Share of requests the canary version serves now (0 before it starts and after a
    /// rollback).
    pub share: f64,
    /// Requests the canary served in the current step.
    pub requests: u64,
    /// Of which failed.
    pub errors: u64,
    /// Time in the instance of the canary's requests in the current step.
    pub latency: Histogram,
    /// Canary requests in the measured window (all steps).
    pub total: u64,
    /// Of which failed.
    pub total_errors: u64,
    /// When it was rolled back, if it was.
    pub rolled_back_at: Option<SimTime>,
    /// When it reached its last step, if it did.
    pub completed_at: Option<SimTime>,
}

/// One service's shared state.
#[derive(Debug, Default)]
pub struct ServiceState {
    /// Service name.
    pub name: String,
    /// Every instance actor, by instance index.
    pub instances: Vec<ActorId>,
    /// Life of each instance, by index.
    pub life: Vec<Life>,
    active: Vec<ActorId>,
    /// Instances ready (serving) now.
    pub ready: u32,
    /// Changes each time the members change (routers that cache them compare it).
    pub version: u64,
    /// Workers per instance.
    pub workers: u32,
    /// Workers of the ready instances over the measured window (ready × workers).
    pub workers_tw: TimeWeighted,
    /// Whether a timed change sets its workers or instances ([`crate::changes`]): its
    /// utilization is then its busy workers over `workers_tw`.
    pub changed: bool,
    /// Whether an autoscaler watches this service (the `win_*` figures are kept only then).
    pub scaled: bool,
    /// Cost of one instance-hour of each instance (from `cost` and its speed), if the
    /// model prices this service.
    pub prices: Option<Vec<f64>>,
    /// Billed instances over time (reset at the end of warm-up): instance-hours.
    pub billed: TimeWeighted,
    /// The hourly price of the billed instances over time: its area is the cost.
    pub billed_price: TimeWeighted,
    /// Ready instances over the autoscaler's sampling window.
    pub win_ready: TimeWeighted,
    /// Busy workers over the autoscaler's sampling window.
    pub win_busy: TimeWeighted,
    /// Queued requests over the autoscaler's sampling window.
    pub win_queued: TimeWeighted,
    /// Requests arrived in the autoscaler's sampling window.
    pub win_arrivals: u64,
    /// Time in the service of requests finished in the autoscaler's sampling window.
    pub win_latency: Histogram,
    /// Pool acquisitions that timed out (measured window).
    pub pool_timeouts: u64,
    /// Pool acquisitions (measured window).
    pub pool_acquires: u64,
    /// Wait for a pool connection (measured window).
    pub pool_wait: Histogram,
    /// Connections in use, all instances.
    pub pool_in_use: TimeWeighted,
    /// Requests waiting for a connection, all instances.
    pub pool_waiting: TimeWeighted,
    /// Out-of-memory crashes (measured window).
    pub oom_crashes: u64,
    /// Requests that paid a re-login because their session lived elsewhere (measured window).
    pub relogins: u64,
    /// Requests refused by a degradation level (read-only, shed low priority).
    pub degraded: u64,
    /// Reads answered without the data tier (serve-stale level).
    pub stale_served: u64,
    /// Home instance of each user's session (`sessions = "local"`); `u32::MAX` when none.
    pub sessions: Vec<u32>,
    /// The canary version, if the service has one.
    pub canary: CanaryState,
    /// Service-time factor of each instance a `slow` fault has touched, by index (empty
    /// until one has; 1.0 = normal): what a balancer's outlier ejection is judged against.
    pub slowdown: Vec<f64>,
    /// The feature flag, if the service has a `feature` ([`crate::compute::feature`]).
    pub feature: Option<FeatureState>,
    /// The rolling deploy, if the service has a `deploy` ([`crate::compute::deploy`]).
    pub deploy: Option<DeployState>,
}

/// Sentinel of [`ServiceState::sessions`]: no session yet.
pub const NO_HOME: u32 = u32::MAX;

/// How a run may resize a service: what [`ServiceState::new`] needs besides its config.
#[derive(Clone, Copy, Debug, Default)]
pub struct Resizing {
    /// An autoscaler or a timed change of its instance count may add instances (the
    /// autoscaler's `win_*` figures are kept only then).
    pub scaled: bool,
    /// A timed change sets its workers or instances ([`crate::changes`]).
    pub changed: bool,
}

impl ServiceState {
    /// The shared state of service `cfg`, whose instance actors (every instance it may ever
    /// have, by index) are `instances`: all `Off` until the build starts the initial ones
    /// with [`Shared::set_life`](crate::shared::Shared::set_life). Prices, the feature flag
    /// and the rolling deploy come from `cfg`.
    pub fn new(cfg: &ServiceConfig, instances: Vec<ActorId>, resizing: Resizing) -> Self {
        let count = instances.len() as u32;
        ServiceState {
            name: cfg.name.clone(),
            life: vec![Life::Off; instances.len()],
            instances,
            workers: cfg.workers.max(1),
            changed: resizing.changed,
            scaled: resizing.scaled,
            prices: cfg
                .cost
                .is_some()
                .then(|| (0..count).filter_map(|i| cfg.hourly_cost(i)).collect()),
            feature: cfg.feature.as_ref().map(FeatureState::new),
            deploy: cfg.deploy.as_ref().map(|_| DeployState::default()),
            ..Default::default()
        }
    }

    /// The members, in index order.
    pub fn active(&self) -> &[ActorId] {
        &self.active
    }

    /// Instances in state `life`.
    pub fn count(&self, life: Life) -> u32 {
        self.life.iter().filter(|l| **l == life).count() as u32
    }

    pub(crate) fn rebuild_active(&mut self) {
        self.version += 1;
        self.active.clear();
        for (i, l) in self.life.iter().enumerate() {
            if l.member() {
                self.active.push(self.instances[i]);
            }
        }
    }
}

/// Compute-tier state of a run: services and job queues.
#[derive(Debug, Default)]
pub struct ComputeState {
    /// One entry per service, in model order.
    pub services: Vec<ServiceState>,
    /// One entry per job queue, in model order.
    pub queues: Vec<crate::jobs::QueueState>,
}

/// Instance-hours and cost over the measured window, all services.
pub fn billing(c: &ComputeState, now: SimTime) -> (f64, Option<f64>) {
    let mut hours = 0.0;
    let mut cost = None;
    for s in &c.services {
        hours += s.billed.area(now) / 3.6e12;
        if s.prices.is_some() {
            *cost.get_or_insert(0.0) += s.billed_price.area(now) / 3.6e12;
        }
    }
    (hours, cost)
}

/// Restarts the measured-window figures at the end of warm-up.
pub fn reset_window(c: &mut ComputeState, now: SimTime) {
    for s in &mut c.services {
        s.billed.reset(now);
        s.billed_price.reset(now);
        s.workers_tw.reset(now);
        s.pool_in_use.reset(now);
        s.pool_waiting.reset(now);
        if let Some(f) = &mut s.feature {
            f.off.reset(now);
        }
    }
    for q in &mut c.queues {
        q.depth.reset(now);
        q.busy.reset(now);
        q.workers_tw.reset(now);
        for sub in &mut q.subs {
            sub.depth.reset(now);
            sub.busy.reset(now);
        }
    }
}

/// The compute tier's figures at the end of the measured window.
#[derive(Debug, Default)]
pub struct Summary {
    /// components.csv rows: `NAME.pool` per pooled service, one per job queue.
    pub rows: Vec<ComponentRow>,
    instance_hours: f64,
    cost: Option<f64>,
}

/// Collects the figures at `now` (the end of the measured window).
pub fn summary(c: &ComputeState, now: SimTime) -> Summary {
    let (instance_hours, cost) = billing(c, now);
    let mut rows = Vec::new();
    for s in &c.services {
        if s.pool_acquires > 0 || s.pool_timeouts > 0 || s.pool_in_use.area(now) > 0.0 {
            rows.push(ComponentRow {
                component: format!("{}.pool", s.name),
                kind: "pool",
                requests: s.pool_acquires + s.pool_timeouts,
                utilization: None,
                mean_queue: Some(s.pool_waiting.mean(now)),
                p99_ms: s.pool_wait.quantile_ms(0.99),
                mean_ms: s.pool_wait.mean_ms(),
                hit_ratio: None,
            });
        }
    }
    for q in &c.queues {
        let workers = q.workers_tw.mean(now);
        rows.push(ComponentRow {
            component: q.name.clone(),
            kind: "queue",
            // A topic counts messages published (its groups count the copies).
            requests: if q.subs.is_empty() {
                q.offered
            } else {
                q.published
            },
            utilization: (workers > 0.0).then(|| q.busy.mean(now) / workers),
            mean_queue: Some(q.depth.mean(now)),
            p99_ms: q.latency.quantile_ms(0.99),
            mean_ms: q.latency.mean_ms(),
            hit_ratio: None,
        });
        for sub in &q.subs {
            let workers = f64::from(sub.workers);
            rows.push(ComponentRow {
                component: sub.name.clone(),
                kind: "subscriber",
                requests: sub.offered,
                utilization: (workers > 0.0).then(|| sub.busy.mean(now) / workers),
                mean_queue: Some(sub.depth.mean(now)),
                p99_ms: sub.latency.quantile_ms(0.99),
                mean_ms: sub.latency.mean_ms(),
                hit_ratio: None,
            });
        }
        for cl in &q.classes {
            rows.push(ComponentRow {
                component: format!("{}.{}", q.name, cl.name),
                kind: "queue_class",
                requests: cl.offered,
                utilization: None,
                mean_queue: None,
                p99_ms: cl.latency.quantile_ms(0.99),
                mean_ms: cl.latency.mean_ms(),
                hit_ratio: None,
            });
        }
    }
    Summary {
        rows,
        instance_hours,
        cost,
    }
}

impl Summary {
    /// Writes the compute columns of runs.csv into `report` (job counts as of now: the
    /// end of the run).
    pub fn fill(&self, report: &mut RunReport, c: &ComputeState, services: &[ServiceConfig]) {
        let int = |v: u64| Cell::Int(v);
        report.set(
            "instance_hours",
            if c.services.is_empty() {
                Cell::Empty
            } else {
                Cell::Float(self.instance_hours)
            },
        );
        report.set("cost", self.cost.into());
        let sum = |f: &dyn Fn(&ServiceState) -> u64| c.services.iter().map(f).sum::<u64>();
        // A counter is empty when no service uses the feature behind it.
        let any = |on: bool, v: u64| if on { int(v) } else { Cell::Empty };
        let uses = |f: &dyn Fn(&ServiceConfig) -> bool| services.iter().any(f);
        report.set(
            "pool_timeouts",
            any(uses(&|s| s.pool.is_some()), sum(&|s| s.pool_timeouts)),
        );
        report.set(
            "oom_crashes",
            any(uses(&|s| s.memory.is_some()), sum(&|s| s.oom_crashes)),
        );
        report.set(
            "relogins",
            any(
                uses(&|s| s.sessions == Sessions::Local),
                sum(&|s| s.relogins),
            ),
        );
        report.set(
            "degraded",
            any(uses(&|s| !s.degrade.is_empty()), sum(&|s| s.degraded)),
        );
        if !c.queues.is_empty() {
            let qs =
                |f: &dyn Fn(&crate::jobs::QueueState) -> u64| c.queues.iter().map(f).sum::<u64>();
            report.set("jobs_enqueued", int(qs(&|q| q.offered)));
            report.set("jobs_done", int(qs(&|q| q.done)));
            report.set("jobs_dead", int(qs(&|q| q.dead)));
            report.set("jobs_dropped", int(qs(&|q| q.dropped)));
            report.set("jobs_pending", int(qs(&|q| q.pending)));
            let mut h = Histogram::new();
            for q in &c.queues {
                h.merge(&q.latency);
            }
            report.set("job_p99_ms", h.quantile_ms(0.99).into());
        }
        if let Some(s) = services
            .iter()
            .zip(&c.services)
            .find_map(|(cfg, s)| cfg.canary.is_some().then_some(s))
        {
            report.set("canary_share", Cell::Float(s.canary.share));
            report.set(
                "canary_rollback_s",
                s.canary.rolled_back_at.map(SimTime::as_secs_f64).into(),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shared::Shared;

    #[test]
    fn members_are_ready_or_crashed_instances_in_index_order() {
        let mut sh = Shared::default();
        let cfg: ServiceConfig =
            toml::from_str("name = \"\"\nworkers = 2\nservice_time = \"const(1ms)\"").unwrap();
        let s = ServiceState::new(&cfg, vec![10, 11, 12], Resizing::default());
        assert_eq!(s.life, [Life::Off; 3]);
        sh.compute.services.push(s);
        let t = SimTime::from_secs(1);
        sh.set_life(0, 2, Life::Ready, t);
        sh.set_life(0, 0, Life::Provisioning, t);
        assert_eq!(sh.active_instances(0), &[12]);
        sh.set_life(0, 0, Life::Ready, t);
        sh.set_life(0, 2, Life::Crashed, t);
        assert_eq!(sh.active_instances(0), &[10, 12]);
        sh.set_life(0, 2, Life::Draining, t);
        assert_eq!(sh.active_instances(0), &[10]);
        assert!(sh.is_member(0, 0) && !sh.is_member(0, 1) && !sh.is_member(0, 2));
        assert_eq!(sh.all_instances(0), &[10, 11, 12]);
        assert_eq!(sh.stats.gauges.instances.level(), 1.0);
        assert_eq!(sh.stats.gauges.workers.level(), 2.0);
        // Billed: instance 0 (ready) and 2 (draining).
        assert_eq!(sh.compute.services[0].billed.level(), 2.0);
        assert_eq!(sh.active_instances(7), &[] as &[ActorId]);
        assert_eq!(sh.service_index(""), Some(0));
    }
}

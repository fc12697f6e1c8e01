//! Autoscalers: add and remove instances of a service (or workers of a job queue) to keep a
//! metric near a target.
//!
//! ```text
//!   every `interval`: metric over the last interval --> desired = ceil(current × metric / target)
//!     scale up   to the LOWEST desired of the last `scale_up.stabilize`   (load must stay high)
//!     scale down to the HIGHEST desired of the last `scale_down.stabilize` (load must stay low)
//!     at most `step` per action ("50%" of current, or a count), within [min, max],
//!     no action within `cooldown` of the last one
//!   new instances serve after `provision`; removed ones drain (finish what they hold)
//! ```
//!
//! Metrics (over the last sampling interval, per ready instance):
//! - `cpu`: busy worker-time / worker-time (target such as 0.7);
//! - `rps`: requests arrived per second per instance (target such as 200);
//! - `p95`: p95 time in the service (target a duration, "200ms", or a number of ms);
//! - `queue`: requests waiting per instance; for a job queue, jobs waiting per worker.
//!
//! "Current" counts instances ready, starting or restarting. The stabilization windows are
//! those of Kubernetes' HPA: a step in load raises capacity about `scale_up.stabilize`
//! after the step, serving `provision` later; a drop lowers it `scale_down.stabilize` after.
//!
//! Measures: `instances` in the time series (ready instances), `instance_hours` and `cost`
//! in runs.csv (instances billed from the start of provisioning to the end of draining).

use std::collections::VecDeque;
use std::fmt;

use dssim_engine::SimTime;
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

use crate::compute::Life;
use crate::jobs::QueueMsg;
use crate::node::{unexpected, Ctx, Msg};
use crate::service::InstanceMsg;
use crate::units::Dur;

/// The metric an autoscaler tracks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// Utilization of the workers.
    Cpu,
    /// Arrivals per second per instance.
    Rps,
    /// p95 time in the service.
    P95,
    /// Waiting requests (jobs) per instance (worker).
    Queue,
}

/// A target: a number, or a duration for `p95` (kept in milliseconds).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Target(pub f64);

impl<'de> Deserialize<'de> for Target {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Target;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a number (0.7 for cpu) or a duration (\"200ms\" for p95)")
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Target, E> {
                Ok(Target(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Target, E> {
                Ok(Target(v as f64))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Target, E> {
                Ok(Target(v as f64))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Target, E> {
                dssim_engine::parse_duration(v)
                    .map(|d| Target(d.as_millis_f64()))
                    .map_err(E::custom)
            }
        }
        d.deserialize_any(V)
    }
}

impl Serialize for Target {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(self.0)
    }
}

/// How much one action may change: `"50%"` of the current count, or a count.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Step {
    /// A share of the current count (at least one).
    Percent(f64),
    /// A fixed count.
    Count(u32),
}

impl Step {
    /// The largest change allowed from `current`.
    pub fn limit(self, current: u32) -> u32 {
        match self {
            Step::Percent(p) => ((f64::from(current) * p / 100.0).ceil() as u32).max(1),
            Step::Count(n) => n.max(1),
        }
    }
}

impl<'de> Deserialize<'de> for Step {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Step;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a share such as \"50%\" or a count such as 2")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Step, E> {
                u32::try_from(v)
                    .ok()
                    .filter(|n| *n > 0)
                    .map(Step::Count)
                    .ok_or_else(|| E::custom("a step count must be at least 1"))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Step, E> {
                self.visit_i64(v.min(i64::MAX as u64) as i64)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Step, E> {
                match v.trim().strip_suffix('%').map(|n| n.trim().parse::<f64>()) {
                    Some(Ok(p)) if p > 0.0 && p.is_finite() => Ok(Step::Percent(p)),
                    _ => Err(E::custom(format!(
                        "{v:?} is not a step: write a share such as \"50%\" or a count such as 2"
                    ))),
                }
            }
        }
        d.deserialize_any(V)
    }
}

impl Serialize for Step {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Step::Percent(p) => s.serialize_str(&format!("{p}%")),
            Step::Count(n) => s.serialize_u32(*n),
        }
    }
}

/// `scale_up = { step = "50%", stabilize = "60s" }`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScalePolicy {
    /// Largest change per action.
    #[serde(default = "default_step")]
    pub step: Step,
    /// How long the recommendation must hold.
    #[serde(default)]
    pub stabilize: Dur,
}

fn default_step() -> Step {
    Step::Percent(100.0)
}

fn default_down() -> ScalePolicy {
    ScalePolicy {
        step: Step::Percent(100.0),
        stabilize: Dur(SimTime::from_secs(300)),
    }
}

fn default_up() -> ScalePolicy {
    ScalePolicy {
        step: Step::Percent(100.0),
        stabilize: Dur(SimTime::ZERO),
    }
}

/// An `[[autoscalers]]` entry.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AutoscalerConfig {
    /// Optional name, so experiment paths can address it (`autoscalers.NAME.max`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The service it scales (or a job queue).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// The job queue whose workers it scales.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<String>,
    /// What it tracks.
    pub metric: Metric,
    /// The value it aims for.
    pub target: Target,
    /// Fewest instances.
    #[serde(default = "one")]
    pub min: u32,
    /// Most instances.
    pub max: u32,
    /// Time for a new instance to serve.
    #[serde(default = "default_provision")]
    pub provision: Dur,
    /// How often it samples the metric.
    #[serde(default = "default_interval")]
    pub interval: Dur,
    /// Scale-up policy.
    #[serde(default = "default_up")]
    pub scale_up: ScalePolicy,
    /// Scale-down policy.
    #[serde(default = "default_down")]
    pub scale_down: ScalePolicy,
    /// Quiet time after any action.
    #[serde(default)]
    pub cooldown: Dur,
}

fn one() -> u32 {
    1
}
fn default_provision() -> Dur {
    Dur(SimTime::from_secs(60))
}
fn default_interval() -> Dur {
    Dur(SimTime::from_secs(10))
}

impl AutoscalerConfig {
    /// The name of what it scales.
    pub fn subject(&self) -> &str {
        self.service
            .as_deref()
            .or(self.queue.as_deref())
            .unwrap_or("")
    }
}

/// What an autoscaler scales.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scaled {
    /// Instances of service `i`.
    Service(usize),
    /// Workers of job queue `i`, whose actor is given.
    Queue(usize, dssim_engine::ActorId),
}

/// An autoscaler's own timers ([`Msg::Autoscaler`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AutoscalerTimer {
    /// Sample the metric and decide.
    Tick,
    /// Provisioning is over: instance `n` is ready (services), or `n` workers are
    /// (queues).
    Ready(u32),
}

/// An autoscaler actor.
#[derive(Debug)]
pub struct Autoscaler {
    cfg: AutoscalerConfig,
    what: Scaled,
    until: SimTime,
    history: VecDeque<(SimTime, u32)>,
    last_action: Option<SimTime>,
}

impl Autoscaler {
    /// An autoscaler of `what` acting until `until`.
    pub fn new(cfg: &AutoscalerConfig, what: Scaled, until: SimTime) -> Self {
        Autoscaler {
            cfg: cfg.clone(),
            what,
            until,
            history: VecDeque::new(),
            last_action: None,
        }
    }

    /// Its first event: the first tick.
    pub fn first_tick(&self) -> (SimTime, Msg) {
        (self.interval(), Msg::Autoscaler(AutoscalerTimer::Tick))
    }

    fn interval(&self) -> SimTime {
        self.cfg.interval.0.max(SimTime::from_millis(1))
    }

    /// Handles one message.
    pub fn handle(&mut self, msg: Msg, ctx: &mut Ctx<'_>) {
        match msg {
            Msg::Autoscaler(AutoscalerTimer::Tick) => {
                self.tick(ctx);
                let next = ctx.now() + self.interval();
                if next < self.until {
                    ctx.timer_at(next, Msg::Autoscaler(AutoscalerTimer::Tick));
                }
            }
            Msg::Autoscaler(AutoscalerTimer::Ready(n)) => self.ready(ctx, n),
            other => unexpected("autoscaler", other),
        }
    }

    fn ready(&mut self, ctx: &mut Ctx<'_>, n: u32) {
        let now = ctx.now();
        match self.what {
            Scaled::Service(s) => {
                let idx = n as usize;
                if ctx.shared.compute.services[s].life.get(idx) == Some(&Life::Provisioning) {
                    ctx.shared.set_life(s, idx, Life::Ready, now);
                }
            }
            Scaled::Queue(q, actor) => {
                let st = &mut ctx.shared.compute.queues[q];
                let n = n.min(st.provisioning);
                st.provisioning -= n;
                st.workers += n;
                st.win_workers.add(now, f64::from(n));
                st.workers_tw.add(now, f64::from(n));
                ctx.send_local(actor, SimTime::ZERO, Msg::Queue(QueueMsg::Kick));
            }
        }
    }

    /// (current count, measured value per unit) over the last interval, then a fresh window.
    fn sample(&mut self, ctx: &mut Ctx<'_>) -> (u32, u32, Option<f64>) {
        let now = ctx.now();
        let span = (now.saturating_sub(self.last_sample(now)))
            .as_secs_f64()
            .max(1e-9);
        match self.what {
            Scaled::Service(i) => {
                let s = &mut ctx.shared.compute.services[i];
                let ready = s.win_ready.mean(now);
                let current =
                    s.count(Life::Ready) + s.count(Life::Provisioning) + s.count(Life::Crashed);
                let value = if ready <= 0.0 {
                    None
                } else {
                    match self.cfg.metric {
                        Metric::Cpu => Some(s.win_busy.mean(now) / (ready * f64::from(s.workers))),
                        Metric::Rps => Some(s.win_arrivals as f64 / span / ready),
                        Metric::Queue => Some(s.win_queued.mean(now) / ready),
                        Metric::P95 => s.win_latency.quantile_ms(0.95),
                    }
                };
                let ready_now = s.count(Life::Ready);
                for tw in [&mut s.win_ready, &mut s.win_busy, &mut s.win_queued] {
                    tw.reset(now);
                }
                s.win_arrivals = 0;
                s.win_latency.clear();
                (current, ready_now, value)
            }
            Scaled::Queue(i, _) => {
                let q = &mut ctx.shared.compute.queues[i];
                let workers = q.win_workers.mean(now);
                let current = q.workers + q.provisioning;
                let value = match self.cfg.metric {
                    // Waiting jobs per worker; with no worker yet, per one.
                    Metric::Queue => Some(q.win_depth.mean(now) / workers.max(1.0)),
                    Metric::Cpu => (workers > 0.0).then(|| q.win_busy.mean(now) / workers),
                    Metric::Rps => Some(q.win_offered as f64 / span / workers.max(1.0)),
                    Metric::P95 => q.win_latency.quantile_ms(0.95),
                };
                let ready_now = q.workers;
                for tw in [&mut q.win_depth, &mut q.win_busy, &mut q.win_workers] {
                    tw.reset(now);
                }
                q.win_offered = 0;
                q.win_latency.clear();
                (current, ready_now.max(1), value)
            }
        }
    }

    fn last_sample(&self, now: SimTime) -> SimTime {
        now.saturating_sub(self.interval())
    }

    fn tick(&mut self, ctx: &mut Ctx<'_>) {
        let now = ctx.now();
        let (current, ready, value) = self.sample(ctx);
        if self.history.is_empty() {
            // The starting count stands as the recommendation at time zero, so the first
            // change also waits its stabilization window.
            self.history.push_back((SimTime::ZERO, current));
        }
        let (min, max) = (self.cfg.min, self.cfg.max.max(self.cfg.min));
        // Proportional (target-tracking) recommendation, from the capacity serving now.
        let desired = match value {
            Some(v) if self.cfg.target.0 > 0.0 && v.is_finite() => {
                let d = (f64::from(ready.max(1)) * v / self.cfg.target.0 - 1e-9).ceil();
                d.clamp(0.0, f64::from(u32::MAX)) as u32
            }
            _ => current,
        }
        .clamp(min, max);
        self.history.push_back((now, desired));
        let keep = self
            .cfg
            .scale_up
            .stabilize
            .0
            .max(self.cfg.scale_down.stabilize.0);
        while self
            .history
            .front()
            .is_some_and(|(t, _)| now.saturating_sub(*t) > keep)
        {
            self.history.pop_front();
        }
        let window_min = |w: SimTime| {
            self.history
                .iter()
                .filter(|(t, _)| now.saturating_sub(*t) <= w)
                .map(|(_, d)| *d)
                .min()
                .unwrap_or(desired)
        };
        let window_max = |w: SimTime| {
            self.history
                .iter()
                .filter(|(t, _)| now.saturating_sub(*t) <= w)
                .map(|(_, d)| *d)
                .max()
                .unwrap_or(desired)
        };
        let up = window_min(self.cfg.scale_up.stabilize.0);
        let down = window_max(self.cfg.scale_down.stabilize.0);
        let cooling = self
            .last_action
            .is_some_and(|t| now.saturating_sub(t) < self.cfg.cooldown.0);
        let target = if current < min {
            min
        } else if current > max {
            max
        } else if cooling {
            current
        } else if up > current {
            up.min(current + self.cfg.scale_up.step.limit(current))
        } else if down < current {
            down.max(current.saturating_sub(self.cfg.scale_down.step.limit(current)))
        } else {
            current
        };
        if target > current {
            self.add(ctx, target - current);
            self.last_action = Some(now);
        } else if target < current {
            self.remove(ctx, current - target);
            self.last_action = Some(now);
        }
    }

    fn add(&mut self, ctx: &mut Ctx<'_>, n: u32) {
        let now = ctx.now();
        let provision = self.cfg.provision.0;
        match self.what {
            Scaled::Service(s) => {
                for _ in 0..n {
                    // A draining instance is still running: it rejoins at once.
                    if let Some(i) = ctx.shared.scale_out_one(s, Life::Provisioning, now) {
                        ctx.timer(provision, Msg::Autoscaler(AutoscalerTimer::Ready(i as u32)));
                    }
                }
            }
            Scaled::Queue(q, _) => {
                ctx.shared.compute.queues[q].provisioning += n;
                ctx.timer(provision, Msg::Autoscaler(AutoscalerTimer::Ready(n)));
            }
        }
    }

    fn remove(&mut self, ctx: &mut Ctx<'_>, n: u32) {
        let now = ctx.now();
        match self.what {
            Scaled::Service(s) => {
                for _ in 0..n {
                    if let Some(actor) = ctx.shared.scale_in_one(s, now) {
                        ctx.send_local(actor, SimTime::ZERO, Msg::Instance(InstanceMsg::Drain));
                    }
                }
            }
            Scaled::Queue(q, _) => {
                let st = &mut ctx.shared.compute.queues[q];
                let from_prov = n.min(st.provisioning);
                st.provisioning -= from_prov;
                let from_ready = (n - from_prov).min(st.workers);
                st.workers -= from_ready;
                st.win_workers.add(now, -f64::from(from_ready));
                st.workers_tw.add(now, -f64::from(from_ready));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_limit_changes() {
        assert_eq!(Step::Percent(50.0).limit(4), 2);
        assert_eq!(Step::Percent(50.0).limit(1), 1);
        assert_eq!(Step::Percent(25.0).limit(10), 3);
        assert_eq!(Step::Count(2).limit(10), 2);
    }
}

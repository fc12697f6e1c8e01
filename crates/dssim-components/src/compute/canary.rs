//! Canary rollouts: a second version of a service, with its own service time and error
//! rate, takes a growing share of the service's requests in steps, and is rolled back
//! automatically when it misbehaves.
//!
//! ```toml
//! [[services]]
//! name = "app"
//! service_time = "exp(4ms)"
//! canary = { service_time = "exp(6ms)", error_rate = 0.02, steps = [0.05, 0.25, 1.0],
//!            start = "60s", every = "60s", max_error_rate = 0.01, max_p95 = "50ms" }
//! ```
//!
//! From `start`, each request a worker takes runs the canary version with probability
//! `steps[i]` (a traffic split, as a service mesh does). Every `check` (default 5 s) the
//! controller looks at the canary's requests of the current step: once it has
//! `min_requests` of them (default 20), an error share above `max_error_rate` or a p95 time
//! in the instance above `max_p95` rolls it back (share 0, for good). A step that lasted
//! `every` without a rollback moves to the next; after the last step has lasted `every`,
//! the canary is promoted (it keeps its share).
//!
//! Measures (runs.csv): `canary_share` at the end of the run, `canary_rollback_s` (when it
//! was rolled back; empty if never), `canary_requests` and `canary_errors` (measured window).

use dssim_engine::SimTime;
use serde::{Deserialize, Serialize};

use crate::node::{Ctx, Msg};
use crate::units::{DistSpec, Dur};

/// The `canary` table of a service.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CanaryConfig {
    /// Service time of the new version at speed 1.0; the service's own when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_time: Option<DistSpec>,
    /// Share of the new version's requests that fail.
    #[serde(default)]
    pub error_rate: f64,
    /// Traffic shares, in order.
    #[serde(default = "default_steps")]
    pub steps: Vec<f64>,
    /// When the rollout begins.
    #[serde(default)]
    pub start: Dur,
    /// How long each step lasts.
    #[serde(default = "default_every")]
    pub every: Dur,
    /// Roll back when the canary's error share in a step exceeds this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_error_rate: Option<f64>,
    /// Roll back when the canary's p95 time in the instance in a step exceeds this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_p95: Option<Dur>,
    /// Canary requests a step needs before it can be judged.
    #[serde(default = "default_min_requests")]
    pub min_requests: u64,
    /// How often the controller looks.
    #[serde(default = "default_check")]
    pub check: Dur,
}

fn default_steps() -> Vec<f64> {
    vec![0.05, 0.25, 1.0]
}
fn default_every() -> Dur {
    Dur(SimTime::from_secs(60))
}
fn default_min_requests() -> u64 {
    20
}
fn default_check() -> Dur {
    Dur(SimTime::from_secs(5))
}

/// The controller of one service's canary.
#[derive(Debug)]
pub struct CanaryController {
    /// Index of the service.
    pub service: usize,
    cfg: CanaryConfig,
    step: usize,
    step_started: SimTime,
    until: SimTime,
    done: bool,
}

impl CanaryController {
    /// A controller for service `service`, acting until `until`.
    pub fn new(service: usize, cfg: &CanaryConfig, until: SimTime) -> Self {
        CanaryController {
            service,
            cfg: cfg.clone(),
            step: 0,
            step_started: SimTime::ZERO,
            until,
            done: false,
        }
    }

    /// When the rollout starts (its first event).
    pub fn start_time(&self) -> SimTime {
        self.cfg.start.0
    }

    /// Handles one message.
    pub fn handle(&mut self, msg: Msg, ctx: &mut Ctx<'_>) {
        let Msg::CanaryStep = msg else {
            return crate::node::unexpected("canary controller", msg);
        };
        if self.done || self.cfg.steps.is_empty() {
            return;
        }
        let now = ctx.now();
        let c = &mut ctx.shared.compute.services[self.service].canary;
        if c.share == 0.0 && self.step == 0 && c.rolled_back_at.is_none() {
            c.share = self.cfg.steps[0];
            self.step_started = now;
            reset_step(c);
        } else {
            let judged = c.requests >= self.cfg.min_requests.max(1);
            let err = c.errors as f64 / c.requests.max(1) as f64;
            let p95 = c.latency.quantile_ms(0.95).unwrap_or(0.0);
            let bad_err = self.cfg.max_error_rate.is_some_and(|m| err > m);
            let bad_p95 = self.cfg.max_p95.is_some_and(|m| p95 > m.0.as_millis_f64());
            if judged && (bad_err || bad_p95) {
                c.share = 0.0;
                c.rolled_back_at = Some(now);
                self.done = true;
                return;
            }
            if now - self.step_started >= self.cfg.every.0 {
                if self.step + 1 < self.cfg.steps.len() {
                    self.step += 1;
                    c.share = self.cfg.steps[self.step];
                    self.step_started = now;
                    reset_step(c);
                } else {
                    c.completed_at = Some(now);
                    self.done = true;
                    return;
                }
            }
        }
        let next = now + self.cfg.check.0.max(SimTime::from_millis(1));
        if next < self.until {
            ctx.timer_at(next, Msg::CanaryStep);
        }
    }
}

fn reset_step(c: &mut crate::compute::CanaryState) {
    c.requests = 0;
    c.errors = 0;
    c.latency.clear();
}

//! The `[[load_balancers]]` table: algorithm, weights, health checks, outlier ejection,
//! their defaults and checks.

use dssim_engine::SimTime;
use serde::{Deserialize, Serialize};

use crate::service::ServiceConfig;
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

/// `outlier_ejection = { interval, latency_factor, error_rate, min_requests,
/// ejection_time, max_ejection_percent }`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutlierConfig {
    /// Time between two looks at the backends' answers (each look judges the answers of
    /// the interval just past).
    #[serde(default = "one_second")]
    pub interval: Dur,
    /// A backend whose mean answer time in the interval is above this many times the median
    /// of the backends' means is an outlier; no latency test when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_factor: Option<f64>,
    /// A backend whose share of failed answers (errors and sheds) in the interval is at
    /// least this is an outlier; no error test when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_rate: Option<f64>,
    /// Answers a backend needs in the interval to be judged at all.
    #[serde(default = "ten")]
    pub min_requests: u32,
    /// How long an ejected backend stays out of rotation.
    #[serde(default = "thirty_seconds")]
    pub ejection_time: Dur,
    /// At most this percentage of the backends is ejected at once (at least one backend).
    #[serde(default = "ten_f")]
    pub max_ejection_percent: f64,
}

fn one_second() -> Dur {
    Dur(SimTime::from_secs(1))
}
fn thirty_seconds() -> Dur {
    Dur(SimTime::from_secs(30))
}
fn ten() -> u32 {
    10
}
fn ten_f() -> f64 {
    10.0
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
    /// Passive outlier ejection: backends whose answers are much slower than the others' or
    /// fail too often leave the rotation for a while; none when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outlier_ejection: Option<OutlierConfig>,
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
            validate_health_check(&format!("{p}.health_check"), h, errs);
        }
        if let Some(o) = &self.outlier_ejection {
            let op = format!("{p}.outlier_ejection");
            if o.interval.0 == SimTime::ZERO {
                errs.push(ConfigError::new(
                    format!("{op}.interval"),
                    "must be longer than zero",
                ));
            }
            if o.ejection_time.0 == SimTime::ZERO {
                errs.push(ConfigError::new(
                    format!("{op}.ejection_time"),
                    "must be longer than zero",
                ));
            }
            if o.latency_factor.is_none() && o.error_rate.is_none() {
                errs.push(ConfigError::new(
                    op.clone(),
                    "needs `latency_factor` (e.g. 3.0: three times the median answer time) or `error_rate` (e.g. 0.5), or both: without either nothing is ever an outlier",
                ));
            }
            if let Some(f) = o.latency_factor {
                if !(f.is_finite() && f > 1.0) {
                    errs.push(ConfigError::new(
                        format!("{op}.latency_factor"),
                        format!(
                            "must be above 1 (a multiple of the median answer time); found {f}"
                        ),
                    ));
                }
            }
            if let Some(r) = o.error_rate {
                if !(r > 0.0 && r <= 1.0) {
                    errs.push(ConfigError::new(
                        format!("{op}.error_rate"),
                        format!("must be in (0, 1] (a share of failed answers); found {r}"),
                    ));
                }
            }
            if o.min_requests == 0 {
                errs.push(ConfigError::new(
                    format!("{op}.min_requests"),
                    "must be at least 1",
                ));
            }
            let m = o.max_ejection_percent;
            if !(m > 0.0 && m <= 100.0) {
                errs.push(ConfigError::new(
                    format!("{op}.max_ejection_percent"),
                    format!("must be in (0, 100]; found {m}"),
                ));
            }
        }
    }
}

/// Checks a `health_check` table; `hp` is its path (`load_balancers.lb.health_check`).
pub fn validate_health_check(hp: &str, h: &HealthCheckConfig, errs: &mut Vec<ConfigError>) {
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

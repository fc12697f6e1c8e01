//! Clients: the traffic sources.
//!
//! ```text
//!   client --request--> target (load balancer, CDN or service) ... --response--> client
//!      ^                                                                  |
//!      +---- error / shed / dropped / timeout: retry after a backoff -----+
//! ```
//!
//! Arrivals are open (requests come whatever the system does) or closed (`closed`: `users`
//! each wait for their answer, think, and ask again). Open arrivals:
//!
//! | `arrival` | parameters | process |
//! |---|---|---|
//! | `poisson` | `rate` | Poisson at `rate` per second |
//! | `constant` | `rate` | one request every `1/rate` seconds |
//! | `steps` | `steps = [{ at, rate }, ...]` | piecewise-constant Poisson: from each `at` on, `rate` (before the first step: `rate`, or 0) |
//! | `diurnal` | `rate` (base), `peak`, `period` | Poisson with rate `base + (peak − base)(1 − cos 2πt/period)/2`: base at t = 0, peak at half a period (thinning) |
//! | `trace` | `file` | one request at each time (seconds) listed in a CSV file's first column; the lab reads the file into `trace` |
//!
//! Each request reads or writes (`read_ratio`) one key (`keys`, `popularity`) for one of
//! `user_ids` users, and asks for a response of `response_size` bytes (carried on the
//! request for the NIC bandwidth of the instance that answers).
//!
//! `timeout` bounds each attempt. `retries = { max, backoff, multiplier, jitter, budget }`
//! resends a request that ended in error, shed, dropped or timeout, at most `max` times;
//! retry k (1-based) waits `backoff × multiplier^(k−1)`, drawn uniformly from
//! `[0, that]` with `jitter = true` ("full jitter"), and never less than a `retry_after`
//! the shedding component asked for. A retry is a new attempt; the request's latency
//! counts from its first send. The server keeps working on a timed-out attempt (wasted
//! work), which is how naive retries turn a short overload into a lasting retry storm.
//! A timeout that is never reached costs next to nothing: every attempt of a client has
//! the same timeout, so the deadlines queue up in order in a [`DeadlineFifo`] with a single
//! wake-up in the event queue, for the oldest; an answer leaves its entry to go stale.
//! `budget` (a ratio, e.g. 0.1) caps retries token-bucket style: every new request adds
//! `budget` tokens (the bucket holds at most [`RETRY_BUCKET`]), every retry takes one, and
//! with no whole token left the request ends with its last outcome instead of retrying —
//! so retries stay within about `budget` of requests (gRPC retry throttling, Finagle's
//! RetryBudget).
//!
//! Measures: requests and their outcomes (ok, error, timeout, shed, dropped), attempts
//! (retries included), latency from the first send to the accepted answer (ok only).

use dssim_engine::SimTime;
use serde::{Deserialize, Serialize};

use crate::cache::BrowserCacheConfig;
use crate::popularity::Popularity;
use crate::units::{check_non_negative, DistSpec, Dur};
use crate::ConfigError;

/// How requests arrive.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Arrival {
    /// Poisson process at `rate` per second.
    #[default]
    Poisson,
    /// One request every `1/rate` seconds.
    Constant,
    /// `users` users, each thinking `think` between an answer and the next request.
    Closed,
    /// Piecewise-constant Poisson rates (`steps`): spike and step tests.
    Steps,
    /// Sinusoidal Poisson rate between `rate` and `peak` over `period`.
    Diurnal,
    /// Arrival times replayed from a file (`file`, resolved into `trace`).
    Trace,
}

/// One step of `arrival = "steps"`: from `at` on, Poisson arrivals at `rate` per second.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// When this rate starts.
    pub at: Dur,
    /// Requests per second from `at` on.
    pub rate: f64,
}

/// `retries = { max, backoff, multiplier, jitter, budget }`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetryConfig {
    /// Retries per request at most (attempts = 1 + max).
    pub max: u32,
    /// Wait before the first retry; zero when absent.
    #[serde(default)]
    pub backoff: Dur,
    /// Each further retry waits this many times longer.
    #[serde(default = "two")]
    pub multiplier: f64,
    /// Draw each wait uniformly from zero to its nominal value (full jitter).
    #[serde(default)]
    pub jitter: bool,
    /// Retries allowed per request, as a ratio (0.1: at most about 10% of requests are
    /// retried); no limit when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget: Option<f64>,
}

fn two() -> f64 {
    2.0
}

/// Tokens the retry-budget bucket holds at most: a burst of this many retries is allowed
/// before the ratio applies.
pub const RETRY_BUCKET: f64 = 10.0;

/// A `[[clients]]` entry.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClientConfig {
    /// Unique name.
    pub name: String,
    /// Where requests go: a load balancer, a CDN, a service, a circuit breaker, or a geo
    /// router (then each request goes to the router's nearest healthy entry).
    pub target: String,
    /// Arrival process.
    #[serde(default)]
    pub arrival: Arrival,
    /// Requests per second (poisson, constant; the base of diurnal; before the first step).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<f64>,
    /// Rate steps (steps).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub steps: Option<Vec<Step>>,
    /// Highest rate (diurnal).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peak: Option<f64>,
    /// Length of one cycle (diurnal).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub period: Option<Dur>,
    /// CSV file of arrival times in seconds, first column, relative to the model file
    /// (trace).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// The arrival times themselves, in seconds (trace): filled from `file` by the loader,
    /// or written inline.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub trace: Vec<f64>,
    /// Number of users (closed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub users: Option<u64>,
    /// Think time between an answer and the next request (closed); zero when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub think: Option<DistSpec>,
    /// Share of reads; the rest are writes.
    #[serde(default = "one")]
    pub read_ratio: f64,
    /// Key space size.
    #[serde(default = "default_keys")]
    pub keys: u64,
    /// Which keys are asked for: uniform, zipf(a), hotspot(f, p).
    #[serde(default)]
    pub popularity: Popularity,
    /// Distinct users (open arrivals); closed loops use `users`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_ids: Option<u64>,
    /// Give up on an attempt after this long; none when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Dur>,
    /// Share of requests marked low priority (served after the others, shed first).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub low_priority: Option<f64>,
    /// Per-user browser cache of cacheable reads (Cache-Control max-age); none when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub browser_cache: Option<BrowserCacheConfig>,
    /// Retries with exponential backoff, jitter and a budget; none when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<RetryConfig>,
    /// Size of each response (for NIC bandwidth); zero when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_size: Option<crate::units::Bytes>,
    /// Region for network latency.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
}

fn one() -> f64 {
    1.0
}
fn default_keys() -> u64 {
    1000
}

impl ClientConfig {
    /// Checks the arrival-process and retry parameters (the rest is checked with the
    /// model); `p` is the client's path (`clients.users`).
    pub fn validate_traffic(&self, p: &str, errs: &mut Vec<ConfigError>) {
        let only = |field: &str, present: bool, arrivals: &str, errs: &mut Vec<ConfigError>| {
            if present {
                errs.push(ConfigError::new(
                    format!("{p}.{field}"),
                    format!(
                        "`{field}` applies to arrival = {arrivals}, not to arrival = \"{}\"",
                        arrival_name(self.arrival)
                    ),
                ));
            }
        };
        let a = self.arrival;
        only(
            "steps",
            self.steps.is_some() && a != Arrival::Steps,
            "\"steps\"",
            errs,
        );
        only(
            "peak",
            self.peak.is_some() && a != Arrival::Diurnal,
            "\"diurnal\"",
            errs,
        );
        only(
            "period",
            self.period.is_some() && a != Arrival::Diurnal,
            "\"diurnal\"",
            errs,
        );
        only(
            "file",
            self.file.is_some() && a != Arrival::Trace,
            "\"trace\"",
            errs,
        );
        only(
            "trace",
            !self.trace.is_empty() && a != Arrival::Trace,
            "\"trace\"",
            errs,
        );
        match a {
            Arrival::Steps => match &self.steps {
                None => errs.push(ConfigError::new(
                    format!("{p}.steps"),
                    "arrival = \"steps\" needs `steps = [{ at = \"0s\", rate = 100 }, { at = \"60s\", rate = 2000 }]`",
                )),
                Some(steps) if steps.is_empty() => errs.push(ConfigError::new(
                    format!("{p}.steps"),
                    "needs at least one step ({ at = \"0s\", rate = 100 })",
                )),
                Some(steps) => {
                    for (i, s) in steps.iter().enumerate() {
                        if let Err(e) = check_non_negative(&format!("{p}.steps.{i}.rate"), s.rate)
                        {
                            errs.push(e);
                        }
                        if i > 0 && s.at <= steps[i - 1].at {
                            errs.push(ConfigError::new(
                                format!("{p}.steps.{i}.at"),
                                format!(
                                    "steps must be in increasing order of `at`: {} comes after {}",
                                    s.at.0,
                                    steps[i - 1].at.0
                                ),
                            ));
                        }
                    }
                    if let Some(r) = self.rate {
                        if let Err(e) = check_non_negative(&format!("{p}.rate"), r) {
                            errs.push(e);
                        }
                    }
                }
            },
            Arrival::Diurnal => {
                match self.rate {
                    None => errs.push(ConfigError::new(
                        format!("{p}.rate"),
                        "arrival = \"diurnal\" needs `rate` (the base rate), `peak` and `period`",
                    )),
                    Some(r) => {
                        if let Err(e) = check_non_negative(&format!("{p}.rate"), r) {
                            errs.push(e);
                        }
                    }
                }
                match self.peak {
                    None => errs.push(ConfigError::new(
                        format!("{p}.peak"),
                        "arrival = \"diurnal\" needs `peak` (the highest rate per second)",
                    )),
                    Some(r) => {
                        if let Err(e) = check_non_negative(&format!("{p}.peak"), r) {
                            errs.push(e);
                        }
                    }
                }
                match self.period {
                    None => errs.push(ConfigError::new(
                        format!("{p}.period"),
                        "arrival = \"diurnal\" needs `period` (such as \"24h\")",
                    )),
                    Some(d) if d.0 == SimTime::ZERO => errs.push(ConfigError::new(
                        format!("{p}.period"),
                        "must be longer than zero",
                    )),
                    _ => {}
                }
            }
            Arrival::Trace => {
                if self.file.is_none() && self.trace.is_empty() {
                    errs.push(ConfigError::new(
                        format!("{p}.file"),
                        "arrival = \"trace\" needs `file` (a CSV file of arrival times in seconds)",
                    ));
                }
                if let Some(i) = self.trace.iter().position(|t| !(t.is_finite() && *t >= 0.0)) {
                    errs.push(ConfigError::new(
                        format!("{p}.trace"),
                        format!(
                            "arrival times must be finite seconds, zero or more; entry {i} is {}",
                            self.trace[i]
                        ),
                    ));
                }
            }
            _ => {}
        }
        if let Some(r) = &self.retries {
            if !(r.multiplier.is_finite() && r.multiplier >= 1.0) {
                errs.push(ConfigError::new(
                    format!("{p}.retries.multiplier"),
                    format!(
                        "must be a number of at least 1 (2.0 doubles each wait); found {}",
                        r.multiplier
                    ),
                ));
            }
            if let Some(b) = r.budget {
                if let Err(e) = check_non_negative(&format!("{p}.retries.budget"), b) {
                    errs.push(e);
                }
            }
        }
        if let Some(s) = self.response_size {
            if s.0 > u64::from(u32::MAX) {
                errs.push(ConfigError::new(
                    format!("{p}.response_size"),
                    "must be below 4GiB",
                ));
            }
        }
    }

    /// The mean arrival rate over `[0, horizon)`, for estimates (closed loops: none).
    pub fn mean_rate(&self, horizon: SimTime) -> Option<f64> {
        let h = horizon.as_secs_f64();
        match self.arrival {
            Arrival::Poisson | Arrival::Constant => self.rate,
            Arrival::Closed => None,
            Arrival::Diurnal => Some((self.rate.unwrap_or(0.0) + self.peak.unwrap_or(0.0)) / 2.0),
            Arrival::Trace => {
                (h > 0.0).then(|| self.trace.iter().filter(|t| **t < h).count() as f64 / h)
            }
            Arrival::Steps => {
                let steps = self.steps.as_deref().unwrap_or(&[]);
                if h <= 0.0 {
                    return None;
                }
                let mut total = 0.0;
                let mut t = 0.0;
                let mut rate = self.rate.unwrap_or(0.0);
                for s in steps {
                    let at = s.at.0.as_secs_f64().min(h);
                    total += rate * (at - t).max(0.0);
                    t = t.max(at);
                    rate = s.rate;
                }
                total += rate * (h - t).max(0.0);
                Some(total / h)
            }
        }
    }
}

fn arrival_name(a: Arrival) -> &'static str {
    match a {
        Arrival::Poisson => "poisson",
        Arrival::Constant => "constant",
        Arrival::Closed => "closed",
        Arrival::Steps => "steps",
        Arrival::Diurnal => "diurnal",
        Arrival::Trace => "trace",
    }
}
mod actor;

pub use actor::*;

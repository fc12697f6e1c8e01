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

use dssim_engine::{ActorId, DeadlineFifo, SimTime};
use rand::Rng as _;
use rand_distr::{Distribution, Exp1};
use serde::{Deserialize, Serialize};

use crate::cache::{BrowserCache, BrowserCacheConfig};
use crate::node::{Ctx, Msg};
use crate::popularity::{KeySampler, Popularity};
use crate::request::{call, Op, ReqId, Request, Status};
use crate::stats::Outcome;
use crate::trace;
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
    /// Where requests go: a load balancer, a CDN or a service.
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

/// The `Wake` payload of an open-loop arrival; closed-loop wakes carry the user index.
const OPEN: u64 = u64::MAX;
/// The `Wake` payload that draws the first arrival of a non-stationary open process.
const FIRST: u64 = u64::MAX - 1;

/// The arrival process, resolved to what the event loop needs.
#[derive(Debug)]
enum Process {
    Poisson {
        mean_gap_ns: f64,
    },
    Constant {
        gap_ns: f64,
    },
    Closed,
    /// `(start, rate per ns)`; `cursor` indexes the step in force.
    Steps {
        steps: Vec<(SimTime, f64)>,
        before: f64,
        cursor: usize,
    },
    /// Rates per ns.
    Diurnal {
        base: f64,
        peak: f64,
        period_ns: f64,
    },
    Trace {
        times: Vec<SimTime>,
        cursor: usize,
    },
}

/// The retry policy in force, with its budget's token bucket.
#[derive(Debug)]
struct RetryPolicy {
    max: u32,
    backoff_ns: f64,
    multiplier: f64,
    jitter: bool,
    budget: Option<f64>,
    tokens: f64,
}

/// Whether attempt `id` still waits for its answer (its deadline still matters).
#[inline]
fn pending(reqs: &crate::request::RequestTable, id: ReqId) -> bool {
    reqs.get(id).is_some_and(|r| !r.abandoned)
}

/// A client actor.
#[derive(Debug)]
pub struct Client {
    process: Process,
    users: u64,
    think: Option<dssim_engine::Dist>,
    read_ratio: f64,
    keys: KeySampler,
    user_ids: u64,
    timeout: Option<SimTime>,
    /// The deadlines of attempts in flight, oldest first (with `timeout`).
    deadlines: DeadlineFifo<ReqId>,
    retry: Option<RetryPolicy>,
    response_bytes: u32,
    targets: Vec<ActorId>,
    /// When the target is a service: its index, so requests go to its current members
    /// ([`crate::stats::Shared::active_instances`]) rather than to `targets`.
    pub target_service: Option<usize>,
    low_priority: f64,
    end: SimTime,
    next_seq: u64,
    /// Requests this client sent (all, warm-up included).
    pub sent: u64,
    /// The users' browser cache, if configured.
    pub browser: Option<BrowserCache>,
    /// Retries this client sent (all, warm-up included).
    pub retries: u64,
}

impl Client {
    /// A client sending to `targets` (one is picked at random per request) until `end`.
    pub fn new(cfg: &ClientConfig, targets: Vec<ActorId>, end: SimTime) -> Self {
        let rate = cfg.rate.unwrap_or(0.0);
        let per_ns = |r: f64| {
            if r.is_finite() && r > 0.0 {
                r / 1e9
            } else {
                0.0
            }
        };
        let gap = if rate > 0.0 {
            1e9 / rate
        } else {
            f64::INFINITY
        };
        let process = match cfg.arrival {
            Arrival::Poisson => Process::Poisson { mean_gap_ns: gap },
            Arrival::Constant => Process::Constant { gap_ns: gap },
            Arrival::Closed => Process::Closed,
            Arrival::Steps => Process::Steps {
                steps: cfg
                    .steps
                    .iter()
                    .flatten()
                    .map(|s| (s.at.0, per_ns(s.rate)))
                    .collect(),
                before: per_ns(rate),
                cursor: 0,
            },
            Arrival::Diurnal => Process::Diurnal {
                base: per_ns(rate),
                peak: per_ns(cfg.peak.unwrap_or(rate)),
                period_ns: cfg.period.map_or(1.0, |d| d.0 .0.max(1) as f64),
            },
            Arrival::Trace => {
                let mut times: Vec<SimTime> = cfg
                    .trace
                    .iter()
                    .filter(|t| t.is_finite() && **t >= 0.0)
                    .map(|t| SimTime::from_secs_f64(*t))
                    .collect();
                times.sort_unstable();
                Process::Trace { times, cursor: 0 }
            }
        };
        let users = cfg.users.unwrap_or(0);
        Client {
            process,
            users,
            think: cfg.think.as_ref().map(|d| d.0.clone()),
            read_ratio: cfg.read_ratio,
            keys: cfg.popularity.sampler(cfg.keys),
            user_ids: cfg
                .user_ids
                .unwrap_or(if users > 0 { users } else { 1 })
                .max(1),
            timeout: cfg.timeout.map(|d| d.0),
            deadlines: DeadlineFifo::new(),
            retry: cfg.retries.as_ref().map(|r| RetryPolicy {
                max: r.max,
                backoff_ns: r.backoff.0 .0 as f64,
                multiplier: r.multiplier,
                jitter: r.jitter,
                budget: r.budget,
                tokens: RETRY_BUCKET,
            }),
            response_bytes: cfg
                .response_size
                .map_or(0, |s| u32::try_from(s.0).unwrap_or(u32::MAX)),
            targets,
            target_service: None,
            low_priority: cfg.low_priority.unwrap_or(0.0),
            end,
            next_seq: 0,
            sent: 0,
            browser: cfg.browser_cache.as_ref().map(BrowserCache::new),
            retries: 0,
        }
    }

    /// The first events: one open-loop arrival, or every user's first request.
    pub fn start(&self, ctx_schedule: &mut impl FnMut(SimTime, Msg)) {
        match &self.process {
            Process::Closed => {
                for u in 0..self.users {
                    ctx_schedule(SimTime::ZERO, Msg::Wake(u));
                }
            }
            Process::Poisson { mean_gap_ns: g } | Process::Constant { gap_ns: g } => {
                if g.is_finite() {
                    ctx_schedule(SimTime::ZERO, Msg::Wake(OPEN));
                }
            }
            Process::Steps { .. } | Process::Diurnal { .. } | Process::Trace { .. } => {
                ctx_schedule(SimTime::ZERO, Msg::Wake(FIRST));
            }
        }
    }

    /// The time of the next open-loop arrival after `now`, if any before the end.
    fn next_arrival(&mut self, ctx: &mut Ctx<'_>) -> Option<SimTime> {
        let now = ctx.now();
        let next = match &mut self.process {
            Process::Poisson { mean_gap_ns } => {
                let e: f64 = Exp1.sample(ctx.rng);
                now + SimTime::from_nanos_f64(e * *mean_gap_ns)
            }
            Process::Constant { gap_ns } => now + SimTime::from_nanos_f64(*gap_ns),
            Process::Closed => return None,
            Process::Steps {
                steps,
                before,
                cursor,
            } => {
                // Memoryless: a gap that crosses a step boundary is redrawn from the
                // boundary at the new rate, which is exact for piecewise-constant rates.
                let mut t = now;
                loop {
                    while *cursor < steps.len() && steps[*cursor].0 <= t {
                        *cursor += 1;
                    }
                    let rate = if *cursor == 0 {
                        *before
                    } else {
                        steps[*cursor - 1].1
                    };
                    let boundary = steps.get(*cursor).map(|s| s.0);
                    if rate > 0.0 {
                        let e: f64 = Exp1.sample(ctx.rng);
                        let cand = t + SimTime::from_nanos_f64(e / rate);
                        if boundary.is_none_or(|b| cand < b) {
                            break cand;
                        }
                    }
                    match boundary {
                        Some(b) if b < self.end => t = b,
                        _ => return None,
                    }
                }
            }
            Process::Diurnal {
                base,
                peak,
                period_ns,
            } => {
                // Thinning (Lewis & Shedler): candidates at the highest rate, each kept
                // with probability rate(t) / highest rate.
                let top = base.max(*peak);
                if top <= 0.0 {
                    return None;
                }
                let mut t = now;
                loop {
                    let e: f64 = Exp1.sample(ctx.rng);
                    t += SimTime::from_nanos_f64(e / top);
                    if t >= self.end {
                        return None;
                    }
                    let phase = std::f64::consts::TAU * (t.0 as f64 / *period_ns);
                    let rate = *base + (*peak - *base) * (1.0 - phase.cos()) / 2.0;
                    if ctx.rng.random::<f64>() * top < rate {
                        break t;
                    }
                }
            }
            Process::Trace { times, cursor } => {
                let t = *times.get(*cursor)?;
                *cursor += 1;
                t
            }
        };
        (next < self.end).then_some(next)
    }

    /// Handles one message.
    #[inline]
    pub fn handle(&mut self, msg: Msg, ctx: &mut Ctx<'_>) {
        match msg {
            Msg::Wake(OPEN) => {
                if let Some(next) = self.next_arrival(ctx) {
                    ctx.timer_at(next, Msg::Wake(OPEN));
                }
                let user = if self.user_ids > 1 {
                    ctx.rng.random_range(0..self.user_ids) as u32
                } else {
                    0
                };
                self.send_new(ctx, user);
            }
            Msg::Wake(FIRST) => {
                if let Some(next) = self.next_arrival(ctx) {
                    ctx.timer_at(next, Msg::Wake(OPEN));
                }
            }
            Msg::Wake(user) if ctx.now() < self.end => self.send_new(ctx, user as u32),
            Msg::Response(req, status) => self.on_response(ctx, req, status),
            Msg::Timeout => self.on_deadline(ctx),
            Msg::Retry(req) => self.dispatch(ctx, req),
            _ => {}
        }
    }

    fn send_new(&mut self, ctx: &mut Ctx<'_>, user: u32) {
        let now = ctx.now();
        let key = self.keys.sample(ctx.rng);
        let op = if self.read_ratio >= 1.0 || ctx.rng.random::<f64>() < self.read_ratio {
            Op::Read
        } else {
            Op::Write
        };
        self.next_seq += 1;
        self.sent += 1;
        if let Some(p) = &mut self.retry {
            if let Some(b) = p.budget {
                p.tokens = (p.tokens + b).min(RETRY_BUCKET.max(b));
            }
        }
        ctx.shared.stats.started(now);
        let traced = ctx.shared.trace.on && ctx.shared.stats.counts(now);
        let mut r = Request::new(self.next_seq, ctx.me(), user, key, op, now);
        r.response_bytes = self.response_bytes;
        if let Some(b) = self.browser.as_mut().filter(|_| op == Op::Read) {
            if b.lookup(user, key, now, ctx.shared.stats.counts(now)) {
                // Served by the browser: no request leaves the client.
                if traced {
                    ctx.shared.trace.start(&mut r, now);
                }
                trace::client_phase(ctx, r.trace, "browser cache hit");
                self.finish(ctx, &r, Outcome::Ok);
                return;
            }
        }
        r.low_priority = self.low_priority > 0.0 && ctx.rng.random::<f64>() < self.low_priority;
        // The attempt goes into the table whole and is traced there in place: lent to
        // `trace.start` on the stack first, it was patched in memory and then copied in
        // pieces of another width, stalling store-to-load forwarding (about 6% of the M/M/1
        // benchmark).
        let id = ctx.shared.reqs.insert(r);
        if traced {
            if let Some(r) = ctx.shared.reqs.get_mut(id) {
                ctx.shared.trace.start(r, now);
            }
        }
        self.dispatch(ctx, id);
    }

    /// Sends attempt `id` (already in the request table) to a target.
    fn dispatch(&mut self, ctx: &mut Ctx<'_>, id: ReqId) {
        let now = ctx.now();
        let Some(r) = ctx.shared.reqs.get_mut(id) else {
            return;
        };
        r.sent = now;
        let traced = r.trace;
        if ctx.shared.stats.counts(r.first_sent) {
            ctx.shared.stats.attempts += 1;
        }
        trace::client_phase(ctx, traced, "attempt");
        let active = match self.target_service {
            Some(s) => ctx.shared.active_instances(s),
            None => &[],
        };
        let to = match (active.len(), self.targets.len()) {
            (1, _) => active[0],
            (n, _) if n > 1 => active[ctx.rng.random_range(0..n)],
            (_, 1) => self.targets[0],
            (_, n) => self.targets[ctx.rng.random_range(0..n)],
        };
        if let Some(t) = self.timeout {
            // Stamped here, where the timer used to be set, so a deadline that is reached
            // fires in the same (time, seq) order as that timer would have.
            let d = ctx.deadline(t);
            let reqs = &ctx.shared.reqs;
            if let Some(d) = self.deadlines.push(d, id, |r| pending(reqs, *r)) {
                ctx.wake_at(d, Msg::Timeout);
            }
        }
        call(ctx, to, id);
    }

    /// Schedules a retry of `r` if the policy and the budget allow one.
    fn try_retry(&mut self, ctx: &mut Ctx<'_>, r: &Request) -> bool {
        let Some(p) = &mut self.retry else {
            return false;
        };
        if r.attempt >= p.max {
            return false;
        }
        if p.budget.is_some() {
            if p.tokens < 1.0 {
                return false;
            }
            p.tokens -= 1.0;
        }
        let nominal = p.backoff_ns * p.multiplier.powi(r.attempt.min(1000) as i32);
        let wait = if p.jitter && nominal > 0.0 {
            ctx.rng.random::<f64>() * nominal
        } else {
            nominal
        };
        let wait =
            SimTime::from_nanos(wait.min(u64::MAX as f64 / 2.0).round() as u64).max(r.retry_after);
        self.retries += 1;
        let id = ctx.shared.reqs.insert(r.retry());
        trace::client_phase(ctx, r.trace, "backoff");
        if wait == SimTime::ZERO {
            self.dispatch(ctx, id);
        } else {
            ctx.timer(wait, Msg::Retry(id));
        }
        true
    }

    fn on_response(&mut self, ctx: &mut Ctx<'_>, req: ReqId, status: Status) {
        if status == Status::Ok && !ctx.shared.oracle.enabled && self.browser.is_none() {
            // The common case needs four fields of the attempt: read them and free the
            // slot without moving the whole attempt out of the table.
            let Some(r) = ctx.shared.reqs.get(req) else {
                return;
            };
            let (abandoned, first_sent, op, user, trace) =
                (r.abandoned, r.first_sent, r.op, r.user, r.trace);
            ctx.shared.reqs.free(req);
            if !abandoned {
                self.close(ctx, first_sent, op, user, trace, Outcome::Ok);
            }
            return;
        }
        let Some(r) = ctx.shared.reqs.remove(req) else {
            return;
        };
        if r.abandoned {
            return; // already ended as a timeout or retried; the late answer is discarded
        }
        if ctx.shared.oracle.enabled {
            let counted = ctx.shared.stats.counts(r.first_sent);
            ctx.shared
                .oracle
                .observe(&r, status == Status::Ok, counted, ctx.now());
        }
        if let Some(b) = self
            .browser
            .as_mut()
            .filter(|_| status == Status::Ok && r.op == Op::Read)
        {
            b.store(r.user, r.key, ctx.now());
        }
        let outcome = match status {
            Status::Ok => Outcome::Ok,
            Status::Error => Outcome::Error,
            Status::Shed => Outcome::Shed,
            Status::Dropped => Outcome::Dropped,
        };
        if outcome != Outcome::Ok && self.try_retry(ctx, &r) {
            return;
        }
        self.finish(ctx, &r, outcome);
    }

    /// The wake-up for the oldest deadline: times out its attempt if still unanswered,
    /// then arms the wake-up for the next deadline still pending.
    fn on_deadline(&mut self, ctx: &mut Ctx<'_>) {
        let reqs = &ctx.shared.reqs;
        if let Some(req) = self.deadlines.fire(|r| pending(reqs, *r)) {
            self.on_timeout(ctx, req);
        }
        let reqs = &ctx.shared.reqs;
        if let Some(d) = self.deadlines.rearm(|r| pending(reqs, *r)) {
            ctx.wake_at(d, Msg::Timeout);
        }
    }

    /// Deadline entries held (stale ones not yet dropped included): at most about twice
    /// the attempts in flight.
    pub fn deadlines_held(&self) -> usize {
        self.deadlines.len()
    }

    fn on_timeout(&mut self, ctx: &mut Ctx<'_>, req: ReqId) {
        let Some(r) = ctx.shared.reqs.get_mut(req) else {
            return; // answered in time
        };
        if r.abandoned {
            return;
        }
        r.abandoned = true;
        let r = r.clone();
        if self.try_retry(ctx, &r) {
            return;
        }
        self.finish(ctx, &r, Outcome::Timeout);
    }

    fn finish(&mut self, ctx: &mut Ctx<'_>, r: &Request, outcome: Outcome) {
        self.close(ctx, r.first_sent, r.op, r.user, r.trace, outcome);
    }

    /// The logical request (first sent at `first_sent`) ended with `outcome`.
    #[inline]
    fn close(
        &mut self,
        ctx: &mut Ctx<'_>,
        first_sent: SimTime,
        op: Op,
        user: u32,
        traced: u32,
        outcome: Outcome,
    ) {
        let now = ctx.now();
        ctx.shared.stats.finished(first_sent, op, now, outcome);
        trace::client_done(ctx, traced, outcome.label());
        if matches!(self.process, Process::Closed) {
            let think = self
                .think
                .as_ref()
                .map_or(SimTime::ZERO, |d| d.sample(ctx.rng));
            if now + think < self.end {
                ctx.timer(think, Msg::Wake(u64::from(user)));
            }
        }
    }
}

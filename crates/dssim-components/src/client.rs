//! Clients: the traffic sources.
//!
//! ```text
//!   client --request--> target (load balancer, CDN or service) ... --response--> client
//! ```
//!
//! Arrivals are open (`poisson`, `constant`: requests come whatever the system does) or
//! closed (`closed`: `users` each wait for their answer, think, and ask again). Each request
//! reads or writes (`read_ratio`) one key for one user. A `timeout` ends a request as a
//! timeout; the server keeps working on it all the same (wasted work).
//!
//! Measures: requests and their outcomes (ok, error, timeout, shed, dropped), latency from
//! the first send to the accepted answer (ok answers only).

use dssim_engine::{ActorId, SimTime};
use rand::Rng as _;
use rand_distr::{Distribution, Exp1};
use serde::{Deserialize, Serialize};

use crate::cache::{BrowserCache, BrowserCacheConfig};
use crate::node::{Ctx, Msg};
use crate::popularity::{KeySampler, Popularity};
use crate::request::{call, Op, ReqId, Request, Status};
use crate::stats::Outcome;
use crate::units::{DistSpec, Dur};

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
}

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
    /// Requests per second (poisson, constant).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<f64>,
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
    /// Give up after this long; none when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Dur>,
    /// Share of requests marked low priority (served after the others, shed first).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub low_priority: Option<f64>,
    /// Per-user browser cache of cacheable reads (Cache-Control max-age); none when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub browser_cache: Option<BrowserCacheConfig>,
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

/// The `Wake` payload of an open-loop arrival; closed-loop wakes carry the user index.
const OPEN: u64 = u64::MAX;

/// A client actor.
#[derive(Debug)]
pub struct Client {
    arrival: Arrival,
    mean_gap_ns: f64,
    users: u64,
    think: Option<dssim_engine::Dist>,
    read_ratio: f64,
    keys: KeySampler,
    user_ids: u64,
    timeout: Option<SimTime>,
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
}

impl Client {
    /// A client sending to `targets` (one is picked at random per request) until `end`.
    pub fn new(cfg: &ClientConfig, targets: Vec<ActorId>, end: SimTime) -> Self {
        let rate = cfg.rate.unwrap_or(0.0);
        let users = cfg.users.unwrap_or(0);
        Client {
            arrival: cfg.arrival,
            mean_gap_ns: if rate > 0.0 {
                1e9 / rate
            } else {
                f64::INFINITY
            },
            users,
            think: cfg.think.as_ref().map(|d| d.0.clone()),
            read_ratio: cfg.read_ratio,
            keys: cfg.popularity.sampler(cfg.keys),
            user_ids: cfg
                .user_ids
                .unwrap_or(if users > 0 { users } else { 1 })
                .max(1),
            timeout: cfg.timeout.map(|d| d.0),
            targets,
            target_service: None,
            low_priority: cfg.low_priority.unwrap_or(0.0),
            end,
            next_seq: 0,
            sent: 0,
            browser: cfg.browser_cache.as_ref().map(BrowserCache::new),
        }
    }

    /// The first events: one open-loop arrival, or every user's first request.
    pub fn start(&self, ctx_schedule: &mut impl FnMut(SimTime, Msg)) {
        match self.arrival {
            Arrival::Closed => {
                for u in 0..self.users {
                    ctx_schedule(SimTime::ZERO, Msg::Wake(u));
                }
            }
            Arrival::Poisson | Arrival::Constant => {
                if self.mean_gap_ns.is_finite() {
                    ctx_schedule(SimTime::ZERO, Msg::Wake(OPEN));
                }
            }
        }
    }

    /// Handles one message.
    #[inline]
    pub fn handle(&mut self, msg: Msg, ctx: &mut Ctx<'_>) {
        match msg {
            Msg::Wake(OPEN) => {
                let gap = match self.arrival {
                    Arrival::Constant => self.mean_gap_ns,
                    _ => {
                        let e: f64 = Exp1.sample(ctx.rng);
                        e * self.mean_gap_ns
                    }
                };
                let next = ctx.now() + SimTime::from_nanos(gap.round() as u64);
                if next < self.end {
                    ctx.timer_at(next, Msg::Wake(OPEN));
                }
                let user = ctx.rng.random_range(0..self.user_ids) as u32;
                self.send_new(ctx, user);
            }
            Msg::Wake(user) if ctx.now() < self.end => self.send_new(ctx, user as u32),
            Msg::Response(req, status) => self.on_response(ctx, req, status),
            Msg::Timeout(req) => self.on_timeout(ctx, req),
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
        ctx.shared.stats.started(now);
        let mut r = Request::new(self.next_seq, ctx.me(), user, key, op, now);
        if let Some(b) = self.browser.as_mut().filter(|_| op == Op::Read) {
            if b.lookup(user, key, now, ctx.shared.stats.counts(now)) {
                // Served by the browser: no request leaves the client.
                self.finish(ctx, &r, Outcome::Ok);
                return;
            }
        }
        if self.low_priority > 0.0 {
            r.low_priority = ctx.rng.random::<f64>() < self.low_priority;
        }
        self.send_attempt(ctx, r);
    }

    fn send_attempt(&mut self, ctx: &mut Ctx<'_>, r: Request) {
        if ctx.shared.stats.counts(r.first_sent) {
            ctx.shared.stats.attempts += 1;
        }
        let id = ctx.shared.reqs.insert(r);
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
            ctx.timer(t, Msg::Timeout(id));
        }
        call(ctx, to, id);
    }

    fn on_response(&mut self, ctx: &mut Ctx<'_>, req: ReqId, status: Status) {
        let Some(r) = ctx.shared.reqs.remove(req) else {
            return;
        };
        if r.abandoned {
            return; // already ended as a timeout; the late answer is discarded
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
        self.finish(ctx, &r, outcome);
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
        self.finish(ctx, &r, Outcome::Timeout);
    }

    fn finish(&mut self, ctx: &mut Ctx<'_>, r: &Request, outcome: Outcome) {
        let now = ctx.now();
        ctx.shared.stats.finished(r.first_sent, r.op, now, outcome);
        if self.arrival == Arrival::Closed {
            let think = self
                .think
                .as_ref()
                .map_or(SimTime::ZERO, |d| d.sample(ctx.rng));
            if now + think < self.end {
                ctx.timer(think, Msg::Wake(u64::from(r.user)));
            }
        }
    }
}

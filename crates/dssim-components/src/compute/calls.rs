//! Service-to-service calls: what an instance calls per request after its CPU work and
//! before its data tier, and the child requests those calls travel as.
//!
//! ```text
//!                       +------ app.0 (one worker held throughout) ------+
//!   request -->  CPU -->| stage 1: users            (a call)             |--> data tier --> answer
//!                       | stage 2: search x 8  |  ads  (parallel)        |
//!                       +------------------------------------------------+
//! ```
//!
//! `calls = [{ to = "users" }, { to = "search", count = 8 }, { to = "ads", parallel = true }]`:
//! entries run in order, each waiting for the one before, except that an entry with
//! `parallel = true` starts together with the entry before it. An entry's `count` calls
//! start at once (a fan-out: scatter-gather over shards or replicas). A stage ends when its
//! slowest call answers, so a fan-out of N calls whose times are independent takes the
//! maximum of N: for exponential times of mean 1/μ that is H_N/μ on average
//! (H_N = 1 + 1/2 + ... + 1/N) with P(max ≤ t) = (1 − e^(−μt))^N; a sequence of calls
//! takes the sum of their times.
//!
//! Each call is a *child request*: a fresh attempt in the request table on behalf of the
//! same user, key and operation, which nobody waits for at a client (`abandoned`), so a
//! call that outlives its caller's patience is freed when its late answer comes back. The
//! first call that fails (an error, a shed or dropped answer, its `timeout`, a full
//! bulkhead) fails the request at once with `Error`; calls of it still out are abandoned.
//! A call marked `optional` is skipped instead when it fails (the request goes on without
//! its answer, as with a fallback), which is what a circuit breaker in front of it needs
//! to turn a failing dependency into fast, harmless skips.
//!
//! A call goes to a service (a random active instance, as a client picks), a load balancer
//! or a circuit breaker ([`crate::circuit_breaker`]). `pool = N` is a bulkhead: at most N
//! calls of this entry in flight per instance; one more is refused at once (no waiting),
//! so with Poisson arrivals and a callee that never queues the share refused is Erlang B
//! of N servers at the offered load (calls/s × mean call time).
//!
//! Measures (components.csv, summed over the caller's instances): `SERVICE.calls.TO` (kind
//! `call`: calls made, mean calls in flight, its bulkhead's mean occupancy as utilization,
//! mean and p99 of the calls' times, share answered ok as `hit_ratio`), then counts as
//! `requests` of `SERVICE.calls.TO.failed` (answered with a failure),
//! `SERVICE.calls.TO.timeouts` and `SERVICE.calls.TO.refused` (bulkhead full).

use dssim_engine::{ActorId, Histogram, SimTime, TimeWeighted};
use rand::Rng as _;
use serde::{Deserialize, Serialize};

use crate::node::Ctx;
use crate::request::{Op, ReqId, Request};
use crate::units::Dur;

/// One entry of a service's `calls`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallConfig {
    /// What is called: a service (a random active instance is picked per call), a load
    /// balancer or a circuit breaker.
    pub to: String,
    /// Calls made at once to `to` per request (a fan-out, as scatter-gather over N shards):
    /// the entry ends when the slowest of them answers.
    #[serde(default = "one")]
    pub count: u32,
    /// Whether this entry starts together with the entry before it (then the request
    /// waits for the slowest of the two) rather than after it ends (then their times add
    /// up).
    #[serde(default)]
    pub parallel: bool,
    /// Longest wait for a call's answer: a call not answered by then fails the request
    /// (counted in `SERVICE.calls.TO.timeouts`); forever when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Dur>,
    /// Bulkhead: calls of this entry in flight per instance at most; one more is refused at
    /// once and fails the request (counted in `SERVICE.calls.TO.refused`), so a slow
    /// dependency holds at most this many workers. No limit when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pool: Option<u32>,
    /// Whether the request can do without this call's answer (recommendations, ads): a
    /// call that fails, times out or is refused is then skipped (still counted as such)
    /// and the request goes on, as a fallback would; when false a failed call fails the
    /// request.
    #[serde(default)]
    pub optional: bool,
    /// Which requests make this call: `all` (default), `read` or `write` (a checkout
    /// path that calls payments while browsing calls the catalog).
    #[serde(default)]
    pub op: CallOp,
}

/// Which requests make a call.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CallOp {
    /// Every request.
    #[default]
    All,
    /// Reads only.
    Read,
    /// Writes only.
    Write,
}

impl CallOp {
    /// Whether a request of operation `op` makes the call.
    pub fn applies(self, op: Op) -> bool {
        match self {
            CallOp::All => true,
            CallOp::Read => op == Op::Read,
            CallOp::Write => op == Op::Write,
        }
    }
}

fn one() -> u32 {
    1
}

/// Where a call goes, resolved when the model is built.
#[derive(Clone, Debug)]
pub enum CallTarget {
    /// A service: one of its active instances at random (`all` when none is active).
    Service {
        /// Index of the service.
        service: usize,
        /// Its instances at build time.
        all: Vec<ActorId>,
    },
    /// One actor: a load balancer or a circuit breaker.
    Actor(ActorId),
}

impl CallTarget {
    /// The actor to send one call to.
    pub fn pick(&self, ctx: &mut Ctx<'_>) -> Option<ActorId> {
        match self {
            CallTarget::Actor(a) => Some(*a),
            CallTarget::Service { service, all } => {
                let active = ctx.shared.active_instances(*service);
                match (active.len(), all.len()) {
                    (1, _) => Some(active[0]),
                    (n, _) if n > 1 => Some(active[ctx.rng.random_range(0..n)]),
                    (_, 0) => None,
                    (_, 1) => Some(all[0]),
                    (_, n) => Some(all[ctx.rng.random_range(0..n)]),
                }
            }
        }
    }
}

/// A child request for a call made on behalf of `parent`: same client, user, key,
/// operation and response size, sent now, waited for by no client (`abandoned`), with an
/// empty return path. `None` when the parent is gone.
pub fn child_request(ctx: &mut Ctx<'_>, parent: ReqId) -> Option<ReqId> {
    let now = ctx.now();
    let p = ctx.shared.reqs.get(parent)?;
    let mut r = Request::new(p.seq, p.client, p.user, p.key, p.op, now);
    r.response_bytes = p.response_bytes;
    r.low_priority = p.low_priority;
    r.abandoned = true;
    Some(ctx.shared.reqs.insert(r))
}

/// Counts of one call entry, per instance; summed per service for components.csv.
#[derive(Debug, Default)]
pub struct CallStats {
    /// Calls made after warm-up (refused ones included).
    pub calls: u64,
    /// Calls answered ok.
    pub ok: u64,
    /// Calls answered with a failure (error, shed, dropped).
    pub failed: u64,
    /// Calls that reached their timeout.
    pub timeouts: u64,
    /// Calls refused by a full bulkhead.
    pub refused: u64,
    /// Time from the call to its answer (or to its timeout).
    pub latency: Histogram,
    /// Calls in flight over time.
    pub in_flight: TimeWeighted,
}

/// One entry of an instance's calls, as run.
#[derive(Debug)]
pub struct CallEntry {
    /// Where its calls go.
    pub target: CallTarget,
    /// Calls per request.
    pub count: u32,
    /// Longest wait for an answer.
    pub timeout: Option<SimTime>,
    /// Bulkhead size.
    pub pool: Option<u32>,
    /// Whether a failed call is skipped rather than failing the request.
    pub optional: bool,
    /// Which requests make it.
    pub op: CallOp,
    /// Calls in flight now.
    pub in_flight: u32,
    /// Measurements.
    pub stats: CallStats,
}

/// A call in flight: its child request, the request it is for, its entry, when it left.
#[derive(Clone, Copy, Debug)]
pub struct OutCall {
    /// The child request.
    pub child: ReqId,
    /// The request it is made for.
    pub parent: ReqId,
    /// Index of its entry.
    pub entry: u16,
    /// When it was sent.
    pub sent: SimTime,
}

/// An instance's calls: its entries, grouped into stages, and the calls in flight.
#[derive(Debug, Default)]
pub struct Calls {
    /// The entries, in order.
    pub entries: Vec<CallEntry>,
    /// Stages: ranges of entries started together.
    pub stages: Vec<(u16, u16)>,
    /// Calls in flight, oldest first (a handful per request held).
    pub out: Vec<OutCall>,
}

impl Calls {
    /// The calls of an instance of a service with `calls`, targets resolved by `resolve`.
    pub fn new(cfg: &[CallConfig], mut resolve: impl FnMut(&str) -> CallTarget) -> Self {
        let mut stages: Vec<(u16, u16)> = Vec::new();
        let entries = cfg
            .iter()
            .enumerate()
            .map(|(i, c)| {
                match stages.last_mut() {
                    Some(s) if c.parallel => s.1 = i as u16 + 1,
                    _ => stages.push((i as u16, i as u16 + 1)),
                }
                CallEntry {
                    target: resolve(&c.to),
                    count: c.count.max(1),
                    timeout: c.timeout.map(|d| d.0),
                    pool: c.pool,
                    optional: c.optional,
                    op: c.op,
                    in_flight: 0,
                    stats: CallStats::default(),
                }
            })
            .collect();
        Calls {
            entries,
            stages,
            out: Vec::new(),
        }
    }

    /// Whether the service calls nothing.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Takes the call of child `child` off the list of calls in flight.
    pub fn take(&mut self, child: ReqId) -> Option<OutCall> {
        let i = self.out.iter().position(|o| o.child == child)?;
        Some(self.out.remove(i))
    }

    /// One call of entry `e` fewer in flight at `now`.
    pub fn landed(&mut self, e: usize, now: SimTime) {
        let en = &mut self.entries[e];
        en.in_flight = en.in_flight.saturating_sub(1);
        en.stats.in_flight.add(now, -1.0);
    }

    /// Abandons every call still out for `parent` (the request failed or the instance
    /// crashed): their late answers are freed when they come back.
    pub fn abandon(&mut self, parent: ReqId, now: SimTime) {
        let mut i = 0;
        while i < self.out.len() {
            if self.out[i].parent == parent {
                let o = self.out.remove(i);
                self.landed(usize::from(o.entry), now);
            } else {
                i += 1;
            }
        }
    }
}

/// Checks a service's `calls` (at path `p`): counts, timeouts, bulkheads. References and
/// cycles are checked with the whole model ([`crate::model::ModelConfig::validate`]).
pub fn validate(calls: &[CallConfig], p: &str, errs: &mut Vec<crate::ConfigError>) {
    for (i, c) in calls.iter().enumerate() {
        let cp = format!("{p}.calls.{i}");
        if c.count == 0 {
            errs.push(crate::ConfigError::new(
                format!("{cp}.count"),
                "must be at least 1 (calls made at once per request)",
            ));
        }
        if c.pool == Some(0) {
            errs.push(crate::ConfigError::new(
                format!("{cp}.pool"),
                "a bulkhead of 0 refuses every call: use at least 1, or leave it out for no limit",
            ));
        }
        if c.timeout.is_some_and(|t| t.0 == SimTime::ZERO) {
            errs.push(crate::ConfigError::new(
                format!("{cp}.timeout"),
                "must be longer than zero (leave it out to wait forever)",
            ));
        }
        if i == 0 && c.parallel {
            errs.push(crate::ConfigError::new(
                format!("{cp}.parallel"),
                "the first call has no call before it to run beside; `parallel = true` belongs on a later entry",
            ));
        }
    }
}

//! Services: app nodes (the "kitchen" of the restaurant).
//!
//! ```text
//!              +------------------------------ instance app.0 ---------------------------------+
//!   request -->| shed? --> queue [high | low] --> worker: CPU --> pool --> data tier --> job?   |
//!              |  (503 + retry-after)              (service_time / speed)  (cache/db)  (enqueue) |
//!              |                                                  NIC (bytes×8/bandwidth) ---->|--> response
//!              +-------------------------------------------------------------------------------+
//! ```
//!
//! Each instance has `workers` servers and a waiting room of `queue` places (unbounded when
//! absent). Service time is drawn from `service_time` divided by `speed`. What each option
//! models:
//!
//! - `speed` with `cost = { per_hour = 0.10, exponent = 1.5 }`: vertical scaling. An
//!   instance-hour costs `per_hour × speed^exponent`, so with an exponent above 1 a bigger
//!   machine costs more per unit of work than more small ones (runs.csv `cost`).
//! - `pool = { size = 10, timeout = "100ms" }`: database connections per instance, held for
//!   the data-tier call only. A worker that finds none free waits in FIFO order; after
//!   `timeout` the request fails with `Error` (counted as `pool_timeouts`).
//! - `shedding`, priority classes, `retry_after`, `degrade`: see [`crate::shedding`].
//! - `sessions = "local"`: a user's session lives on the first instance that served it (its
//!   home). A request served elsewhere pays `relogin` (default 50 ms of extra work) and
//!   moves the session there; a crash loses the sessions it held. `"stateless"` (default):
//!   no such cost.
//! - `memory = "8GiB"`, `memory_per_request`, `memory_per_connection`, `connections`: memory
//!   in use = requests held (waiting, in service, sending) × per request + this instance's
//!   share of the service's `connections` long-lived connections (WebSockets), spread evenly
//!   over the members. A request that would exceed `memory` crashes the instance (OOM): every
//!   request it holds fails with `Error` and it restarts after `restart` (default 30 s),
//!   answering `Error` meanwhile. Its connections move to the others, which may crash in
//!   turn (a cascade).
//! - `bandwidth = "1Gbps"`: the NIC, a FIFO server that sends each ok response in
//!   `bytes × 8 / bandwidth`; the worker writes it (a blocking write) and is freed when it
//!   is sent, so a slow NIC backs up into the workers and the queue. Bytes come from the request
//!   (clients' `response_size`) or else from the service's own `response_size`.
//!   1 Gbps and 2 KB cap an instance at 62,500 responses/s.
//! - `canary`: a second version taking a growing share of requests; see [`crate::canary`].
//!
//! Instances an autoscaler may add exist from the start, switched off; routers pick among
//! [`crate::stats::Shared::active_instances`].
//!
//! Faults ([`crate::faults`]): a killed instance refuses requests with an error, fails
//! those it held and ignores health probes until it recovers; a slow (gray) instance
//! multiplies its service times by a factor but still answers probes.
//!
//! Measures: requests, utilization (busy worker-time / worker-time), mean queue length,
//! p99 time in the service (queue + service + data + NIC), shed requests; per service
//! (components.csv row `NAME.pool`, runs.csv): pool acquisitions, waits and timeouts, OOM
//! crashes, re-logins, degraded and stale answers, instance-hours and cost.

use std::collections::VecDeque;

use dssim_engine::{ActorId, Deadline, Dist, Histogram, SimTime, TimeWeighted};
use rand::Rng as _;
use serde::{Deserialize, Serialize};

use crate::canary::CanaryConfig;
use crate::changes::Setting;
use crate::compute::{Life, NO_HOME};
use crate::datapath::DataPath;
use crate::faults::FaultAction;
use crate::node::{Ctx, Msg};
use crate::request::{call, call_local, reply, Op, ReqId, Status};
use crate::shedding::{degraded, DegradeLevel, Shedding};
use crate::trace;
use crate::units::{Bandwidth, Bytes, DistSpec, Dur};

/// A `[[services]]` entry.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceConfig {
    /// Unique name; instances are `name.0`, `name.1`, ...
    pub name: String,
    /// Number of instances (at the start, when an autoscaler manages the service).
    #[serde(default = "one")]
    pub instances: u32,
    /// Concurrent requests per instance.
    #[serde(default = "one")]
    pub workers: u32,
    /// Waiting places per instance (not counting requests in service); unbounded if absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<u64>,
    /// CPU time per request at speed 1.0.
    pub service_time: DistSpec,
    /// Vertical scaling factor: 2.0 halves service times.
    #[serde(default = "one_f")]
    pub speed: f64,
    /// Mixed server sizes: instance i runs at `speeds[i]` (and is priced at it); instances
    /// past the list (added by an autoscaler) run at `speed`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub speeds: Vec<f64>,
    /// Price of an instance-hour: `per_hour × speed^exponent`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost: Option<CostConfig>,
    /// Database connection pool per instance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pool: Option<PoolConfig>,
    /// Load-shedding policy (default `queue`: shed when the waiting room is full).
    #[serde(default)]
    pub shedding: Shedding,
    /// `Retry-After` of shed answers; none when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<Dur>,
    /// Where user sessions live.
    #[serde(default)]
    pub sessions: Sessions,
    /// Extra work for a request whose session lives on another instance (local sessions);
    /// 50 ms when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relogin: Option<DistSpec>,
    /// Degradation levels.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub degrade: Vec<DegradeLevel>,
    /// Memory per instance; no limit when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<Bytes>,
    /// Memory each request held by an instance takes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_per_request: Option<Bytes>,
    /// Memory each open long-lived connection takes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_per_connection: Option<Bytes>,
    /// Long-lived connections held open to the service, spread over its members.
    #[serde(default)]
    pub connections: u64,
    /// Time to restart after an out-of-memory crash; 30 s when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart: Option<Dur>,
    /// NIC bandwidth per instance; no NIC time when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bandwidth: Option<Bandwidth>,
    /// Response size when the request carries none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_size: Option<Bytes>,
    /// A canary version rolled out in steps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary: Option<CanaryConfig>,
    /// The app cache its instances read through (a `[[caches]]` name); none when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache: Option<String>,
    /// Region for network latency.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// The database it reads and writes (a `[[databases]]` name); none when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database: Option<String>,
}

/// `cost = { per_hour = 0.10, exponent = 1.5 }`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CostConfig {
    /// Price of an instance-hour at speed 1.0.
    pub per_hour: f64,
    /// How fast the price grows with speed: `speed^exponent`. The default, 1.8, prices a
    /// machine twice as fast at 2^1.8 ≈ 3.5 times as much, the "2× CPU costs 3–4×" rule of
    /// thumb of cloud price lists for large instances (the lecture's vertical-scaling
    /// limits); 1.0 is linear pricing.
    #[serde(default = "default_cost_exponent")]
    pub exponent: f64,
}

/// `pool = { size = 10, timeout = "100ms" }`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolConfig {
    /// Connections per instance.
    pub size: u32,
    /// Longest wait for a connection; forever when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Dur>,
}

/// Where sessions live.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sessions {
    /// Any instance can serve any user at no extra cost.
    #[default]
    Stateless,
    /// Sessions live on the instance that first served the user.
    Local,
}

fn one() -> u32 {
    1
}
fn one_f() -> f64 {
    1.0
}
fn default_cost_exponent() -> f64 {
    1.8
}

impl ServiceConfig {
    /// The speed of instance `index`: its entry in `speeds`, else `speed`.
    pub fn speed_of(&self, index: u32) -> f64 {
        let s = self
            .speeds
            .get(index as usize)
            .copied()
            .unwrap_or(self.speed);
        if s > 0.0 {
            s
        } else {
            1.0
        }
    }

    /// Total speed of the first `n` instances (capacity in units of one speed-1 instance).
    pub fn total_speed(&self, n: u32) -> f64 {
        (0..n).map(|i| self.speed_of(i)).sum()
    }

    /// The price of one instance-hour of instance `index`, if priced.
    pub fn hourly_cost(&self, index: u32) -> Option<f64> {
        self.cost
            .map(|c| c.per_hour * self.speed_of(index).powf(c.exponent))
    }
}

/// `Wake` payloads of an instance.
const WAKE_NIC: u64 = 1;
/// Restart after a crash.
pub const WAKE_RESTART: u64 = 2;
/// Check whether a draining instance is idle.
pub const WAKE_DRAIN: u64 = 3;
/// Fault injection: the instance dies now (fails what it holds, answers `Error`) and
/// stays down until [`WAKE_RECOVER`]. `Msg::Kill` and `Msg::Recover` do the same.
pub const WAKE_KILL: u64 = 4;
/// Fault injection: a killed instance comes back (empty: its sessions are gone).
pub const WAKE_RECOVER: u64 = 5;
/// Fault injection: `WAKE_SLOW + f` makes every later service time `f / 1000` times as
/// long (a gray, slow instance); `WAKE_SLOW + 1000` restores normal speed.
pub const WAKE_SLOW: u64 = 1 << 32;

/// Per-instance measurements, summed per service at the end of a run.
#[derive(Debug, Default)]
pub struct InstanceStats {
    /// Requests that arrived after warm-up.
    pub requests: u64,
    /// Requests shed after warm-up.
    pub shed: u64,
    /// Busy workers over time.
    pub busy: TimeWeighted,
    /// Queue length over time.
    pub queued: TimeWeighted,
    /// Workers over time (kept for utilization once a timed change sets them).
    pub workers: TimeWeighted,
    /// Time in this instance (queue + service) of requests served after warm-up.
    pub sojourn: Histogram,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Cpu,
    PoolWait,
    Data,
    Enqueue(u8),
    Nic,
}

#[derive(Clone, Copy, Debug)]
struct Job {
    req: ReqId,
    arrived: SimTime,
    phase: Phase,
    canary: bool,
}

#[derive(Debug)]
struct Pool {
    size: u32,
    timeout: Option<SimTime>,
    in_use: u32,
    /// Requests waiting for a connection, in arrival order: `(request, since, deadline)`.
    /// With a constant `timeout` the deadlines are in order too, so only the head's has a
    /// wake-up in the event queue (`armed`); a waiter served before its deadline costs
    /// no event and no cancellation.
    waiters: VecDeque<(ReqId, SimTime, Option<Deadline>)>,
    /// The deadline of the wake-up in the event queue, if one is.
    armed: Option<Deadline>,
}

impl Pool {
    /// Arms the wake-up for the head waiter's deadline if none is armed.
    fn arm(&mut self, ctx: &mut Ctx<'_>) {
        if self.armed.is_some() {
            return;
        }
        if let Some(&(_, _, Some(d))) = self.waiters.front() {
            self.armed = Some(d);
            ctx.wake_at(d, Msg::AcquireTimeout);
        }
    }
}

#[derive(Debug)]
struct Nic {
    bits_per_s: f64,
    default_bytes: u32,
    free_at: SimTime,
    /// (request, sent at)
    fifo: VecDeque<(ReqId, SimTime)>,
}

#[derive(Debug)]
struct Memory {
    limit: u64,
    per_request: u64,
    per_connection: u64,
    connections: u64,
}

/// One instance of a service.
#[derive(Debug)]
pub struct Instance {
    /// Index of the service in the model.
    pub service: usize,
    /// Index of the instance within its service.
    pub index: u32,
    workers: u32,
    /// Whether a timed change has set `workers` ([`crate::changes`]).
    workers_changed: bool,
    capacity: u64,
    shedding: Shedding,
    retry_after: SimTime,
    service_time: Dist,
    canary_time: Option<Dist>,
    canary_error: f64,
    relogin: Option<Dist>,
    degrade: Vec<DegradeLevel>,
    restart: SimTime,
    /// Service-time multiplier of a slow (gray) instance; 1.0 normally.
    pub slowdown: f64,
    killed: bool,
    down: bool,
    busy: u32,
    /// Waiting requests: `[high priority, low priority]`.
    queue: [VecDeque<(ReqId, SimTime)>; 2],
    in_service: Vec<Job>,
    pool: Option<Pool>,
    nic: Option<Nic>,
    memory: Option<Memory>,
    /// Requests out at the data tier (or a job queue) when the instance crashed: answered
    /// `Error` when that answer comes back.
    orphans: Vec<ReqId>,
    /// Job queues the instance feeds: (queue actor, share of writes).
    pub jobs: Vec<(ActorId, f64)>,
    /// What the instance calls for data after its CPU work.
    pub data: DataPath,
    /// Measurements.
    pub stats: InstanceStats,
}

impl Instance {
    /// A fresh, idle instance `index` of service `service`.
    pub fn new(service: usize, index: u32, cfg: &ServiceConfig) -> Self {
        let speed = cfg.speed_of(index);
        let capacity = match cfg.shedding {
            Shedding::None => u64::MAX,
            _ => cfg.queue.unwrap_or(u64::MAX),
        };
        let mut degrade = cfg.degrade.clone();
        if cfg.shedding == Shedding::None {
            // `none` never sheds: degradation levels that shed do not apply either.
            degrade.retain(|l| !l.action.sheds());
        }
        degrade.sort_by(|a, b| a.at.total_cmp(&b.at));
        let mut stats = InstanceStats::default();
        stats
            .workers
            .set(SimTime::ZERO, f64::from(cfg.workers.max(1)));
        Instance {
            service,
            index,
            workers: cfg.workers.max(1),
            workers_changed: false,
            capacity,
            shedding: cfg.shedding,
            retry_after: cfg.retry_after.map_or(SimTime::ZERO, |d| d.0),
            service_time: cfg.service_time.0.scaled(1.0 / speed),
            canary_time: cfg.canary.as_ref().map(|c| {
                c.service_time
                    .as_ref()
                    .unwrap_or(&cfg.service_time)
                    .0
                    .scaled(1.0 / speed)
            }),
            canary_error: cfg.canary.as_ref().map_or(0.0, |c| c.error_rate),
            relogin: (cfg.sessions == Sessions::Local).then(|| {
                cfg.relogin
                    .as_ref()
                    .map_or(Dist::Const(50e6), |d| d.0.clone())
            }),
            degrade,
            restart: cfg.restart.map_or(SimTime::from_secs(30), |d| d.0),
            slowdown: 1.0,
            killed: false,
            down: false,
            busy: 0,
            queue: [VecDeque::new(), VecDeque::new()],
            in_service: Vec::new(),
            pool: cfg.pool.map(|p| Pool {
                size: p.size,
                timeout: p.timeout.map(|d| d.0),
                in_use: 0,
                waiters: VecDeque::new(),
                armed: None,
            }),
            nic: cfg.bandwidth.map(|b| Nic {
                bits_per_s: b.0,
                default_bytes: cfg
                    .response_size
                    .map_or(0, |s| s.0.min(u64::from(u32::MAX)) as u32),
                free_at: SimTime::ZERO,
                fifo: VecDeque::new(),
            }),
            memory: cfg.memory.map(|m| Memory {
                limit: m.0,
                per_request: cfg.memory_per_request.map_or(0, |b| b.0),
                per_connection: cfg.memory_per_connection.map_or(0, |b| b.0),
                connections: cfg.connections,
            }),
            orphans: Vec::new(),
            jobs: Vec::new(),
            data: DataPath::default(),
            stats,
        }
    }

    /// Whether the instance is up (not crashed or killed).
    pub fn is_alive(&self) -> bool {
        !self.down
    }

    /// Workers of this instance.
    pub fn workers(&self) -> u32 {
        self.workers
    }

    /// Mean workers of this instance since the window opened: its `workers` unless a timed
    /// change set them.
    pub fn mean_workers(&self, now: SimTime) -> f64 {
        if self.workers_changed {
            self.stats.workers.mean(now)
        } else {
            f64::from(self.workers)
        }
    }

    /// Handles one message.
    #[inline]
    pub fn handle(&mut self, msg: Msg, ctx: &mut Ctx<'_>) {
        match msg {
            Msg::Request(req) => self.arrive(ctx, req),
            Msg::Done(req) => self.cpu_done(ctx, req),
            Msg::Response(req, status) => self.on_response(ctx, req, status),
            Msg::AcquireTimeout => self.acquire_timeout(ctx),
            Msg::Wake(WAKE_NIC) => self.nic_done(ctx),
            Msg::Wake(WAKE_RESTART) if self.life(ctx) == Life::Crashed && !self.killed => {
                let now = ctx.now();
                self.down = false;
                ctx.shared
                    .set_life(self.service, self.index as usize, Life::Ready, now);
            }
            Msg::Wake(WAKE_DRAIN) => self.check_drained(ctx),
            Msg::Wake(WAKE_KILL) | Msg::Kill if self.life(ctx) != Life::Off => {
                self.killed = true;
                self.crash(ctx, false);
            }
            Msg::Wake(WAKE_RECOVER) | Msg::Recover if self.life(ctx) == Life::Crashed => {
                self.killed = false;
                let now = ctx.now();
                self.down = false;
                ctx.shared
                    .set_life(self.service, self.index as usize, Life::Ready, now);
            }
            Msg::Wake(w) if w >= WAKE_SLOW => {
                self.slowdown = (w - WAKE_SLOW) as f64 / 1000.0;
            }
            Msg::Probe {
                from,
                backend,
                round,
            } if !self.down => {
                ctx.send(from, Msg::ProbeAck { backend, round });
            }
            Msg::Fault(action) => self.fault(ctx, action),
            Msg::Change(i) => self.change(ctx, i),
            _ => {}
        }
    }

    #[inline]
    fn life(&self, ctx: &Ctx<'_>) -> Life {
        ctx.shared.compute.services[self.service].life[self.index as usize]
    }

    fn queued(&self) -> u64 {
        (self.queue[0].len() + self.queue[1].len()) as u64
    }

    fn held(&self) -> u64 {
        self.queued() + self.in_service.len() as u64
    }

    fn load(&self) -> f64 {
        (f64::from(self.busy) + self.queued() as f64) / f64::from(self.workers)
    }

    fn busy_delta(&mut self, ctx: &mut Ctx<'_>, delta: f64) {
        let now = ctx.now();
        self.stats.busy.add(now, delta);
        if ctx.shared.stats.series_on {
            ctx.shared.stats.gauges.busy.add(now, delta);
        }
        let s = &mut ctx.shared.compute.services[self.service];
        if s.scaled {
            s.win_busy.add(now, delta);
        }
    }

    fn queued_delta(&mut self, ctx: &mut Ctx<'_>, delta: f64) {
        let now = ctx.now();
        self.stats.queued.add(now, delta);
        if ctx.shared.stats.series_on {
            ctx.shared.stats.gauges.queued.add(now, delta);
        }
        let s = &mut ctx.shared.compute.services[self.service];
        if s.scaled {
            s.win_queued.add(now, delta);
        }
    }

    fn counted(ctx: &Ctx<'_>) -> bool {
        ctx.now() >= ctx.shared.stats.warmup
    }

    fn shed(&mut self, ctx: &mut Ctx<'_>, req: ReqId) {
        if Self::counted(ctx) {
            self.stats.shed += 1;
        }
        if let Some(r) = ctx.shared.reqs.get_mut(req) {
            r.retry_after = self.retry_after;
        }
        reply(ctx, req, Status::Shed);
    }

    fn arrive(&mut self, ctx: &mut Ctx<'_>, req: ReqId) {
        let now = ctx.now();
        if !matches!(self.life(ctx), Life::Ready | Life::Draining) {
            // Down, or not a member: the connection is refused.
            reply(ctx, req, Status::Error);
            return;
        }
        let counted = Self::counted(ctx);
        if counted {
            self.stats.requests += 1;
        }
        ctx.shared.compute.services[self.service].win_arrivals += 1;
        if let Some(m) = &self.memory {
            // Long-lived connections spread over the instances up now: a crash moves its
            // share to the others.
            let members = u64::from(ctx.shared.compute.services[self.service].ready.max(1));
            let used = (self.held() + 1) * m.per_request
                + m.connections.div_ceil(members) * m.per_connection;
            if used > m.limit {
                self.crash(ctx, true);
                reply(ctx, req, Status::Error);
                return;
            }
        }
        let (op, low) = ctx
            .shared
            .reqs
            .get(req)
            .map_or((Op::Read, false), |r| (r.op, r.low_priority));
        if !self.degrade.is_empty() {
            let d = degraded(&self.degrade, self.load());
            if (d.shed_low && low) || (d.read_only && op == Op::Write) {
                if counted {
                    ctx.shared.compute.services[self.service].degraded += 1;
                }
                self.shed(ctx, req);
                return;
            }
        }
        if self.busy < self.workers {
            self.start(ctx, req, now);
            return;
        }
        let waiting = self.queued();
        if let Shedding::Probabilistic(th) = self.shedding {
            let fill = waiting as f64 / self.capacity as f64;
            if fill > th && ctx.rng.random::<f64>() < (fill - th) / (1.0 - th) {
                self.shed(ctx, req);
                return;
            }
        }
        let class = usize::from(low);
        if waiting < self.capacity {
            self.queue[class].push_back((req, now));
            self.queued_delta(ctx, 1.0);
            trace::phase(ctx, req, "queue");
        } else if !low && !self.queue[1].is_empty() {
            // A high-priority request pushes out the newest low-priority one.
            if let Some((victim, _)) = self.queue[1].pop_back() {
                self.shed(ctx, victim);
            }
            self.queue[0].push_back((req, now));
            trace::phase(ctx, req, "queue");
        } else {
            self.shed(ctx, req);
        }
    }

    fn start(&mut self, ctx: &mut Ctx<'_>, req: ReqId, arrived: SimTime) {
        self.busy += 1;
        self.busy_delta(ctx, 1.0);
        let share = ctx.shared.compute.services[self.service].canary.share;
        let canary = share > 0.0 && (share >= 1.0 || ctx.rng.random::<f64>() < share);
        let mut d = match (&self.canary_time, canary) {
            (Some(c), true) => c.sample(ctx.rng),
            _ => self.service_time.sample(ctx.rng),
        };
        if self.slowdown != 1.0 {
            d = SimTime::from_secs_f64(d.as_secs_f64() * self.slowdown);
        }
        if let Some(relogin) = &self.relogin {
            if let Some(user) = ctx.shared.reqs.get(req).map(|r| r.user as usize) {
                let counted = Self::counted(ctx);
                let svc = &mut ctx.shared.compute.services[self.service];
                if svc.sessions.len() <= user {
                    svc.sessions.resize(user + 1, NO_HOME);
                }
                let home = svc.sessions[user];
                if home != self.index {
                    if home != NO_HOME {
                        if counted {
                            svc.relogins += 1;
                        }
                        d += relogin.sample(ctx.rng);
                    }
                    ctx.shared.compute.services[self.service].sessions[user] = self.index;
                }
            }
        }
        self.in_service.push(Job {
            req,
            arrived,
            phase: Phase::Cpu,
            canary,
        });
        trace::phase(ctx, req, if canary { "cpu (canary)" } else { "cpu" });
        ctx.timer(d, Msg::Done(req));
    }

    /// Workers free up: take waiting requests, high priority first.
    fn pull_next(&mut self, ctx: &mut Ctx<'_>) {
        while self.busy < self.workers {
            let Some((req, at)) = self.queue[0]
                .pop_front()
                .or_else(|| self.queue[1].pop_front())
            else {
                break;
            };
            self.queued_delta(ctx, -1.0);
            if let Shedding::Deadline(d) = self.shedding {
                if ctx.now() - at > d.0 {
                    self.shed(ctx, req);
                    continue;
                }
            }
            self.start(ctx, req, at);
        }
    }

    fn find(&self, req: ReqId) -> Option<usize> {
        self.in_service.iter().position(|j| j.req == req)
    }

    /// CPU work is over: call the data tier (the worker stays busy meanwhile) or answer.
    fn cpu_done(&mut self, ctx: &mut Ctx<'_>, req: ReqId) {
        let Some(pos) = self.find(req) else {
            return; // the instance crashed meanwhile
        };
        if self.in_service[pos].phase != Phase::Cpu {
            return;
        }
        if self.in_service[pos].canary
            && self.canary_error > 0.0
            && ctx.rng.random::<f64>() < self.canary_error
        {
            self.respond(ctx, req, Status::Error);
            return;
        }
        let Some(op) = ctx.shared.reqs.get(req).map(|r| r.op) else {
            self.respond(ctx, req, Status::Error);
            return;
        };
        let Some(t) = self.data.route(ctx, req) else {
            self.after_data(ctx, req, Status::Ok);
            return;
        };
        if op == Op::Read && !self.degrade.is_empty() && degraded(&self.degrade, self.load()).stale
        {
            if Self::counted(ctx) {
                ctx.shared.compute.services[self.service].stale_served += 1;
            }
            self.after_data(ctx, req, Status::Ok);
            return;
        }
        let now = ctx.now();
        let counted = Self::counted(ctx);
        let svc = self.service;
        match &mut self.pool {
            None => {
                self.in_service[pos].phase = Phase::Data;
                self.call_data(ctx, t, req);
            }
            Some(pool) if pool.in_use < pool.size => {
                pool.in_use += 1;
                let s = &mut ctx.shared.compute.services[svc];
                s.pool_in_use.add(now, 1.0);
                if counted {
                    s.pool_acquires += 1;
                    s.pool_wait.record(SimTime::ZERO);
                }
                self.in_service[pos].phase = Phase::Data;
                self.call_data(ctx, t, req);
            }
            Some(pool) => {
                // Stamped where the timer used to be set: a wait that times out does so
                // in the same (time, seq) order as that timer.
                let deadline = pool.timeout.map(|t| ctx.deadline(t));
                pool.waiters.push_back((req, now, deadline));
                pool.arm(ctx);
                trace::phase(ctx, req, "pool wait");
                ctx.shared.compute.services[svc].pool_waiting.add(now, 1.0);
                self.in_service[pos].phase = Phase::PoolWait;
            }
        }
    }

    /// Calls the data tier: a local cache without the network, anything else through it.
    fn call_data(&self, ctx: &mut Ctx<'_>, to: ActorId, req: ReqId) {
        trace::phase(ctx, req, "data");
        if self.data.local {
            call_local(ctx, to, SimTime::ZERO, req);
        } else {
            call(ctx, to, req);
        }
    }

    /// The wake-up for the head waiter's deadline: times it out if it still waits (a
    /// waiter served in time left the head already), then arms the next head's.
    fn acquire_timeout(&mut self, ctx: &mut Ctx<'_>) {
        let Some(pool) = &mut self.pool else {
            return;
        };
        let Some(fired) = pool.armed.take() else {
            return;
        };
        let due = match pool.waiters.front() {
            Some(&(req, _, Some(d))) if d == fired => {
                pool.waiters.pop_front();
                Some(req)
            }
            _ => None,
        };
        if let Some(req) = due {
            self.time_out_waiter(ctx, req);
        }
        if let Some(pool) = &mut self.pool {
            pool.arm(ctx);
        }
    }

    /// Waiter `req`, just taken off the pool's queue, waited too long: it fails.
    fn time_out_waiter(&mut self, ctx: &mut Ctx<'_>, req: ReqId) {
        let Some(pos) = self.find(req) else {
            return;
        };
        if !matches!(self.in_service[pos].phase, Phase::PoolWait) {
            return;
        }
        let now = ctx.now();
        let s = &mut ctx.shared.compute.services[self.service];
        s.pool_waiting.add(now, -1.0);
        if now >= ctx.shared.stats.warmup {
            s.pool_timeouts += 1;
        }
        self.respond(ctx, req, Status::Error);
    }

    fn on_response(&mut self, ctx: &mut Ctx<'_>, req: ReqId, status: Status) {
        let Some(pos) = self.find(req) else {
            if let Some(o) = self.orphans.iter().position(|r| *r == req) {
                self.orphans.swap_remove(o);
                reply(ctx, req, Status::Error);
                self.check_drained(ctx);
            }
            return;
        };
        match self.in_service[pos].phase {
            Phase::Data => {
                self.release_connection(ctx);
                self.after_data(ctx, req, status);
            }
            Phase::Enqueue(i) => self.enqueue_from(ctx, req, usize::from(i) + 1),
            _ => {}
        }
    }

    /// Hands a freed connection to the first waiter, or returns it to the pool.
    fn release_connection(&mut self, ctx: &mut Ctx<'_>) {
        let now = ctx.now();
        let counted = Self::counted(ctx);
        let Some(pool) = &mut self.pool else {
            return;
        };
        let s = &mut ctx.shared.compute.services[self.service];
        let Some((next, since, _)) = pool.waiters.pop_front() else {
            pool.in_use = pool.in_use.saturating_sub(1);
            s.pool_in_use.add(now, -1.0);
            return;
        };
        s.pool_waiting.add(now, -1.0);
        if counted {
            s.pool_acquires += 1;
            s.pool_wait.record(now - since);
        }
        let Some(pos) = self.find(next) else {
            return;
        };
        self.in_service[pos].phase = Phase::Data;
        match self.data.route(ctx, next) {
            Some(t) => self.call_data(ctx, t, next),
            None => {
                let me = ctx.me();
                ctx.send_local(me, SimTime::ZERO, Msg::Response(next, Status::Error));
            }
        }
    }

    fn after_data(&mut self, ctx: &mut Ctx<'_>, req: ReqId, status: Status) {
        let write = ctx.shared.reqs.get(req).is_some_and(|r| r.op == Op::Write);
        if status == Status::Ok && write && !self.jobs.is_empty() {
            self.enqueue_from(ctx, req, 0);
        } else {
            self.respond(ctx, req, status);
        }
    }

    /// Offers a job to each queue from `from` on with its `enqueue_ratio`, one at a time
    /// (a blocking queue holds the worker until it takes the job), then answers.
    fn enqueue_from(&mut self, ctx: &mut Ctx<'_>, req: ReqId, from: usize) {
        for i in from..self.jobs.len() {
            let (q, ratio) = self.jobs[i];
            if ratio >= 1.0 || ctx.rng.random::<f64>() < ratio {
                if let Some(pos) = self.find(req) {
                    self.in_service[pos].phase = Phase::Enqueue(i as u8);
                    trace::phase(ctx, req, "enqueue job");
                    call_local(ctx, q, SimTime::ZERO, req);
                    return;
                }
            }
        }
        self.respond(ctx, req, Status::Ok);
    }

    /// The worker is done with `req`: send the answer (an ok answer with bytes goes through
    /// the NIC first, the worker writing it), free the worker, start the next in line.
    fn respond(&mut self, ctx: &mut Ctx<'_>, req: ReqId, status: Status) {
        if status == Status::Ok {
            if let Some(nic) = &mut self.nic {
                let bytes = ctx.shared.reqs.get(req).map_or(0, |r| r.response_bytes);
                let bytes = if bytes == 0 { nic.default_bytes } else { bytes };
                if bytes > 0 {
                    let now = ctx.now();
                    let start = nic.free_at.max(now);
                    let end = start
                        + SimTime::from_nanos(
                            (f64::from(bytes) * 8.0 / nic.bits_per_s * 1e9).round() as u64,
                        );
                    nic.free_at = end;
                    nic.fifo.push_back((req, end));
                    trace::phase(ctx, req, "send (nic)");
                    ctx.timer_at(end, Msg::Wake(WAKE_NIC));
                    if let Some(pos) = self.find(req) {
                        self.in_service[pos].phase = Phase::Nic;
                    }
                    return;
                }
            }
        }
        self.release(ctx, req, status);
    }

    fn release(&mut self, ctx: &mut Ctx<'_>, req: ReqId, status: Status) {
        let Some(pos) = self.find(req) else {
            return;
        };
        let job = self.in_service.swap_remove(pos);
        self.busy -= 1;
        self.busy_delta(ctx, -1.0);
        self.answer(ctx, req, job.arrived, status, job.canary);
        self.pull_next(ctx);
        self.check_drained(ctx);
    }

    fn nic_done(&mut self, ctx: &mut Ctx<'_>) {
        let now = ctx.now();
        while let Some(&(req, end)) = self.nic.as_ref().and_then(|n| n.fifo.front()) {
            if end > now {
                break;
            }
            if let Some(n) = &mut self.nic {
                n.fifo.pop_front();
            }
            self.release(ctx, req, Status::Ok);
        }
    }

    /// Records the request's time here and answers its caller.
    fn answer(
        &mut self,
        ctx: &mut Ctx<'_>,
        req: ReqId,
        arrived: SimTime,
        status: Status,
        canary: bool,
    ) {
        let now = ctx.now();
        let d = now - arrived;
        if arrived >= ctx.shared.stats.warmup {
            self.stats.sojourn.record(d);
        }
        let s = &mut ctx.shared.compute.services[self.service];
        if s.scaled {
            s.win_latency.record(d);
        }
        if canary {
            let c = &mut s.canary;
            c.requests += 1;
            c.latency.record(d);
            let failed = status != Status::Ok;
            c.errors += u64::from(failed);
            if arrived >= ctx.shared.stats.warmup {
                c.total += 1;
                c.total_errors += u64::from(failed);
            }
        }
        reply(ctx, req, status);
    }

    /// A crash (out of memory, or killed by a fault): every request held fails, the sessions
    /// held are lost; after an OOM the instance restarts after its `restart` delay.
    fn crash(&mut self, ctx: &mut Ctx<'_>, oom: bool) {
        self.down = true;
        let now = ctx.now();
        let svc = self.service;
        if oom && Self::counted(ctx) {
            ctx.shared.compute.services[svc].oom_crashes += 1;
        }
        ctx.shared
            .set_life(svc, self.index as usize, Life::Crashed, now);
        for class in 0..2 {
            while let Some((req, _)) = self.queue[class].pop_front() {
                self.queued_delta(ctx, -1.0);
                reply(ctx, req, Status::Error);
            }
        }
        let jobs = std::mem::take(&mut self.in_service);
        for job in &jobs {
            match job.phase {
                Phase::Data | Phase::Enqueue(_) => self.orphans.push(job.req),
                Phase::PoolWait | Phase::Cpu | Phase::Nic => reply(ctx, job.req, Status::Error),
            }
        }
        let busy = f64::from(self.busy);
        self.busy = 0;
        self.busy_delta(ctx, -busy);
        if let Some(pool) = &mut self.pool {
            let s = &mut ctx.shared.compute.services[svc];
            s.pool_in_use.add(now, -f64::from(pool.in_use));
            s.pool_waiting.add(now, -(pool.waiters.len() as f64));
            pool.in_use = 0;
            pool.waiters.clear();
        }
        if let Some(nic) = &mut self.nic {
            nic.free_at = now;
            nic.fifo.clear();
        }
        let me = self.index;
        for home in &mut ctx.shared.compute.services[svc].sessions {
            if *home == me {
                *home = NO_HOME;
            }
        }
        if oom {
            ctx.timer(self.restart, Msg::Wake(WAKE_RESTART));
        }
    }

    /// A draining instance that holds nothing more switches off.
    fn check_drained(&mut self, ctx: &mut Ctx<'_>) {
        if self.held() == 0 && self.life(ctx) == Life::Draining {
            let now = ctx.now();
            ctx.shared
                .set_life(self.service, self.index as usize, Life::Off, now);
        }
    }

    /// Applies a timed change ([`crate::changes`]): new workers take queued requests at
    /// once, retired ones finish the request they hold first; a resize of the service goes
    /// through the scaling path (the first instance carries that message).
    fn change(&mut self, ctx: &mut Ctx<'_>, i: u32) {
        let Some(&setting) = ctx.shared.settings.get(i as usize) else {
            return;
        };
        let now = ctx.now();
        match setting {
            Setting::Workers(w) => {
                ctx.shared.set_workers(self.service, w, now);
                if w != self.workers {
                    self.stats
                        .workers
                        .add(now, f64::from(w) - f64::from(self.workers));
                    self.workers_changed = true;
                    self.workers = w;
                    if !self.down {
                        self.pull_next(ctx);
                    }
                }
            }
            Setting::Instances(n) => {
                for actor in ctx.shared.resize(self.service, n, now) {
                    ctx.send_local(actor, SimTime::ZERO, Msg::Wake(WAKE_DRAIN));
                }
            }
            Setting::Ttl(_) | Setting::Algorithm(_) => {}
        }
    }

    /// Applies a scheduled fault ([`crate::faults`]): a kill fails what the instance holds
    /// and keeps it down (a member answering `Error`, ignoring probes) until recovered; a
    /// slowdown multiplies its service times.
    fn fault(&mut self, ctx: &mut Ctx<'_>, action: FaultAction) {
        match action {
            FaultAction::Slow(f) => self.slowdown = f64::from(f),
            FaultAction::Kill if !self.killed && self.life(ctx) != Life::Off => {
                self.killed = true;
                self.crash(ctx, false);
            }
            FaultAction::Recover if self.killed => {
                self.killed = false;
                self.down = false;
                if self.life(ctx) == Life::Crashed {
                    let now = ctx.now();
                    ctx.shared
                        .set_life(self.service, self.index as usize, Life::Ready, now);
                }
            }
            _ => {}
        }
    }
}

//! An instance of a service: admission, workers, memory, the way to the data tier (the
//! NIC and the answer are in `answer.rs`).

use std::collections::VecDeque;

use dssim_engine::{ActorId, Deadline, Dist, HeadVec, Histogram, SimTime, TimeWeighted};
use rand::Rng as _;

use crate::compute::{Life, NO_HOME};
use crate::datapath::DataPath;
use crate::node::{unexpected, Ctx, Msg};
use crate::request::{call_local, reply, Op, ReqId, Status};
use crate::shedding::{degraded, DegradeLevel, Shedding};
use crate::trace;

use super::*;

/// Why an instance crashes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Crash {
    /// It ran out of memory: counted, and it restarts after its `restart` delay.
    OutOfMemory,
    /// A fault killed it: it stays down until the fault's recovery.
    Killed,
}

/// A service instance's own timers, and the autoscaler's drain check ([`Msg::Instance`]).
/// Faults come as [`Msg::Fault`], like every kind's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InstanceMsg {
    /// A new connection for this request is set up (`connect_time`, no pool).
    Connected(ReqId),
    /// The NIC finished sending the response at its head.
    Nic,
    /// Restart after an out-of-memory crash (its `restart` delay is over).
    Restart,
    /// Check whether a draining instance is idle (sent by its autoscaler).
    Drain,
    /// The deadline of the oldest connection-pool waiter.
    AcquireTimeout,
    /// The timeout of a service-to-service call (its child request).
    CallTimeout(ReqId),
    /// A step of a rolling deploy ([`crate::compute::deploy`]).
    Deploy(crate::compute::deploy::DeployStep),
}

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
pub(super) enum Phase {
    Cpu,
    PoolWait,
    /// Opening a connection to the data tier (no pool, `connect_time`).
    Connect,
    Data,
    Enqueue(u8),
    Nic,
    /// Waiting for the service-to-service calls of this stage.
    Calls(u16),
}

#[derive(Clone, Copy, Debug)]
pub(super) struct Job {
    req: ReqId,
    arrived: SimTime,
    phase: Phase,
    canary: bool,
    /// Calls of the current stage not yet answered.
    pending: u32,
}

#[derive(Debug)]
pub(super) struct Pool {
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
    pub(super) fn arm(&mut self, ctx: &mut Ctx<'_>) {
        if self.armed.is_some() {
            return;
        }
        if let Some(&(_, _, Some(d))) = self.waiters.front() {
            self.armed = Some(d);
            ctx.wake_at(d, Msg::Instance(InstanceMsg::AcquireTimeout));
        }
    }
}

/// Requests waiting for a worker, oldest first: `(request, arrived)` (a [`HeadVec`] rather
/// than a `VecDeque`, see there: M/M/1 250 s 296.9 -> 292.9 M instructions; 5 M customers,
/// `taskset -c 0`, six interleaved rounds: 0.569-0.595 -> 0.555-0.569 CPU s).
pub(super) type Waiting = HeadVec<(ReqId, SimTime)>;

#[derive(Debug)]
pub(super) struct Nic {
    bits_per_s: f64,
    default_bytes: u32,
    free_at: SimTime,
    /// (request, sent at)
    fifo: VecDeque<(ReqId, SimTime)>,
}

#[derive(Debug)]
pub(super) struct Memory {
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
    /// CPU time the service's `feature` adds to a request that uses it (at this speed).
    feature_time: Option<Dist>,
    relogin: Option<Dist>,
    /// The service's rolling deploy, if it has one.
    deploy: Option<crate::compute::deploy::DeployConfig>,
    /// Instances of the service at the start: the deploy's last is `instances - 1`.
    deploy_last: u32,
    /// Taken down by the deploy and not back in rotation yet.
    deploying: bool,
    /// Alive but not ready (a deploy's warm-up): requests fail at once.
    warming: bool,
    degrade: Vec<DegradeLevel>,
    restart: SimTime,
    /// Service-time multiplier of a slow (gray) instance; 1.0 normally.
    pub slowdown: f64,
    killed: bool,
    down: bool,
    busy: u32,
    /// Waiting requests: `[high priority, low priority]`.
    queue: [Waiting; 2],
    in_service: Vec<Job>,
    pool: Option<Pool>,
    /// Connection set-up per data call without a pool.
    connect: Option<Dist>,
    nic: Option<Nic>,
    memory: Option<Memory>,
    /// Requests out at the data tier (or a job queue) when the instance crashed: answered
    /// `Error` when that answer comes back.
    orphans: Vec<ReqId>,
    /// Job queues the instance feeds: (queue actor, share of writes).
    jobs: Vec<(ActorId, f64)>,
    /// What the instance calls for data after its CPU work.
    data: DataPath,
    /// The services it calls per request before its data tier ([`crate::calls`]).
    calls: crate::calls::Calls,
    /// Its database queries, measured one by one with a shard key or cross-shard queries.
    shards: shards::ShardQueries,
    /// Measurements.
    pub stats: InstanceStats,
}

mod answer;
mod calls;
mod faults;
mod pool;
pub mod shards;

/// What an instance sends to, resolved from the model's topology before it is built: its
/// data path, the job queues it feeds and the services it calls.
#[derive(Debug, Default)]
pub struct InstanceWiring {
    /// Where it reads and writes its data (a cache, the database's router), if anywhere.
    pub data: DataPath,
    /// Job queues it feeds: (queue actor, share of writes).
    pub jobs: Vec<(ActorId, f64)>,
    /// The calls it makes per request, each target resolved.
    pub calls: crate::calls::Calls,
}

impl Instance {
    /// A fresh, idle instance `index` of service `service`, wired as `wiring` says.
    pub fn new(service: usize, index: u32, cfg: &ServiceConfig, wiring: InstanceWiring) -> Self {
        let InstanceWiring { data, jobs, calls } = wiring;
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
            feature_time: cfg
                .feature
                .as_ref()
                .map(|f| f.extra_time.0.scaled(1.0 / speed)),
            relogin: (cfg.sessions == Sessions::Local).then(|| {
                cfg.relogin
                    .as_ref()
                    .map_or(Dist::Const(50e6), |d| d.0.clone())
            }),
            deploy: cfg.deploy.clone(),
            deploy_last: cfg.instances.saturating_sub(1),
            deploying: false,
            warming: false,
            degrade,
            restart: cfg.restart.map_or(SimTime::from_secs(30), |d| d.0),
            slowdown: 1.0,
            killed: false,
            down: false,
            busy: 0,
            queue: [Waiting::default(), Waiting::default()],
            in_service: Vec::new(),
            pool: cfg.pool.map(|p| Pool {
                size: p.size,
                timeout: p.timeout.map(|d| d.0),
                in_use: 0,
                waiters: VecDeque::new(),
                armed: None,
            }),
            connect: if cfg.pool.is_none() {
                cfg.connect_time.as_ref().map(|d| d.0.clone())
            } else {
                None
            },
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
            jobs,
            data,
            calls,
            shards: shards::ShardQueries::default(),
            stats,
        }
    }

    /// Where it reads and writes its data.
    pub fn data(&self) -> &DataPath {
        &self.data
    }

    /// Its single- and cross-shard query measurements.
    pub fn shard_stats(&self) -> &shards::ShardQueryStats {
        &self.shards.stats
    }

    /// The calls it makes per request, with their measurements.
    pub fn calls(&self) -> &crate::calls::Calls {
        &self.calls
    }

    /// Starts the measurement window at `at`: the time-weighted averages run from there.
    pub fn reset_window(&mut self, at: SimTime) {
        self.stats.busy.reset(at);
        self.stats.queued.reset(at);
        self.stats.workers.reset(at);
        for e in &mut self.calls.entries {
            e.stats.in_flight.reset(at);
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
            Msg::WorkerDone(req) | Msg::Instance(InstanceMsg::Connected(req)) => {
                self.cpu_done(ctx, req)
            }
            Msg::Response(req, status) => self.on_response(ctx, req, status),
            Msg::Instance(InstanceMsg::AcquireTimeout) => self.acquire_timeout(ctx),
            Msg::Instance(InstanceMsg::Nic) => self.nic_done(ctx),
            Msg::Instance(InstanceMsg::Restart) => {
                // Not if a fault killed it meanwhile (it waits for its recovery).
                if self.life(ctx) == Life::Crashed && !self.killed {
                    let now = ctx.now();
                    self.down = false;
                    ctx.shared
                        .set_life(self.service, self.index as usize, Life::Ready, now);
                }
            }
            Msg::Instance(InstanceMsg::Drain) => self.check_drained(ctx),
            Msg::Instance(InstanceMsg::CallTimeout(child)) => self.call_timeout(ctx, child),
            Msg::Instance(InstanceMsg::Deploy(step)) => self.deploy_step(ctx, step),
            Msg::Probe {
                from,
                backend,
                round,
            } => {
                // A down instance does not answer: that is how its balancer sees it down.
                if !self.down {
                    ctx.send(from, Msg::ProbeAck { backend, round });
                }
            }
            Msg::Fault(action) => self.fault(ctx, action),
            Msg::Change(i) => self.change(ctx, i),
            other => unexpected("service instance", other),
        }
    }

    #[inline]
    pub(super) fn life(&self, ctx: &Ctx<'_>) -> Life {
        ctx.shared.compute.services[self.service].life[self.index as usize]
    }

    pub(super) fn queued(&self) -> u64 {
        (self.queue[0].len() + self.queue[1].len()) as u64
    }

    pub(super) fn held(&self) -> u64 {
        self.queued() + self.in_service.len() as u64
    }

    pub(super) fn load(&self) -> f64 {
        (f64::from(self.busy) + self.queued() as f64) / f64::from(self.workers)
    }

    #[inline(always)]
    pub(super) fn busy_delta(&mut self, ctx: &mut Ctx<'_>, delta: f64) {
        let now = ctx.now();
        self.stats.busy.add(now, delta);
        if ctx.shared.stats.series_on {
            ctx.shared.stats.gauges.busy.add(now, delta);
            let me = ctx.me();
            if let Some(g) = ctx.shared.stats.instance_gauge(me) {
                g.busy.add(now, delta);
            }
        }
        let s = &mut ctx.shared.compute.services[self.service];
        if s.scaled {
            s.win_busy.add(now, delta);
        }
        if let Some(f) = &mut s.feature {
            if f.watches_load() {
                f.busy.add(now, delta);
            }
        }
    }

    #[inline(always)]
    pub(super) fn queued_delta(&mut self, ctx: &mut Ctx<'_>, delta: f64) {
        let now = ctx.now();
        self.stats.queued.add(now, delta);
        if ctx.shared.stats.series_on {
            ctx.shared.stats.gauges.queued.add(now, delta);
            let me = ctx.me();
            if let Some(g) = ctx.shared.stats.instance_gauge(me) {
                g.queued.add(now, delta);
            }
        }
        let s = &mut ctx.shared.compute.services[self.service];
        if s.scaled {
            s.win_queued.add(now, delta);
        }
    }

    pub(super) fn counted(ctx: &Ctx<'_>) -> bool {
        ctx.now() >= ctx.shared.stats.warmup
    }

    pub(super) fn shed(&mut self, ctx: &mut Ctx<'_>, req: ReqId) {
        if Self::counted(ctx) {
            self.stats.shed += 1;
        }
        if let Some(r) = ctx.shared.reqs.get_mut(req) {
            r.retry_after = self.retry_after;
        }
        reply(ctx, req, Status::Shed);
    }

    // `#[inline(always)]` on the hops every request takes (`arrive`, `cpu_done`,
    // `go_to_data_at`, `data_done`, `respond_at`, `start`, `pull_next`, `busy_delta`,
    // `queued_delta`; the client's `on_response`, `close`, `send_attempt`, `arm_deadline`;
    // `Stats::finished`): each has one or two callers, and a call frame cost about 15
    // instructions. Measured on the 250 s M/M/1: 377 → 343 M instructions (−170 per
    // customer), outputs byte-identical.
    #[inline(always)]
    pub(super) fn arrive(&mut self, ctx: &mut Ctx<'_>, req: ReqId) {
        let now = ctx.now();
        let counted = Self::counted(ctx);
        // One look-up of the service's state for its member list and its counter.
        let svc = &mut ctx.shared.compute.services[self.service];
        if !matches!(svc.life[self.index as usize], Life::Ready | Life::Draining) || self.warming {
            // Down or not a member: the connection is refused; alive but not ready (cold
            // pools and caches): the request fails at once.
            reply(ctx, req, Status::Error);
            return;
        }
        svc.win_arrivals += 1;
        if counted {
            self.stats.requests += 1;
        }
        if ctx.shared.stats.series_on {
            let me = ctx.me();
            if let Some(g) = ctx.shared.stats.instance_gauge(me) {
                g.arrivals += 1;
            }
        }
        if let Some(m) = &self.memory {
            // Long-lived connections spread over the instances up now: a crash moves its
            // share to the others.
            let members = u64::from(ctx.shared.compute.services[self.service].ready.max(1));
            let used = (self.held() + 1) * m.per_request
                + m.connections.div_ceil(members) * m.per_connection;
            if used > m.limit {
                self.crash(ctx, Crash::OutOfMemory);
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

    #[inline(always)]
    pub(super) fn start(&mut self, ctx: &mut Ctx<'_>, req: ReqId, arrived: SimTime) {
        self.busy += 1;
        self.busy_delta(ctx, 1.0);
        let share = ctx.shared.compute.services[self.service].canary.share;
        let canary = share > 0.0 && (share >= 1.0 || ctx.rng.random::<f64>() < share);
        let mut d = match (&self.canary_time, canary) {
            (Some(c), true) => c.sample(ctx.rng),
            _ => self.service_time.sample(ctx.rng),
        };
        if self.feature_time.is_some() {
            d += self.feature_cost(ctx);
        }
        if self.slowdown != 1.0 {
            d = SimTime::from_secs_f64(d.as_secs_f64() * self.slowdown);
        }
        if self.relogin.is_some() {
            d += self.relogin_cost(ctx, req);
        }
        self.in_service.push(Job {
            req,
            arrived,
            phase: Phase::Cpu,
            canary,
            pending: 0,
        });
        trace::phase(ctx, req, if canary { "cpu (canary)" } else { "cpu" });
        ctx.timer(d, Msg::WorkerDone(req));
    }

    /// Workers free up: take waiting requests, high priority first.
    #[inline(always)]
    pub(super) fn pull_next(&mut self, ctx: &mut Ctx<'_>) {
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

    /// With local sessions: the re-login work of a request whose user's session lives on
    /// another instance (zero when it lives here or nowhere yet); the session moves here.
    fn relogin_cost(&self, ctx: &mut Ctx<'_>, req: ReqId) -> SimTime {
        let (Some(relogin), Some(user)) = (
            &self.relogin,
            ctx.shared.reqs.get(req).map(|r| r.user as usize),
        ) else {
            return SimTime::ZERO;
        };
        let counted = Self::counted(ctx);
        let svc = &mut ctx.shared.compute.services[self.service];
        if svc.sessions.len() <= user {
            svc.sessions.resize(user + 1, NO_HOME);
        }
        let home = svc.sessions[user];
        if home == self.index {
            return SimTime::ZERO;
        }
        svc.sessions[user] = self.index;
        if home == NO_HOME {
            return SimTime::ZERO;
        }
        if counted {
            svc.relogins += 1;
        }
        relogin.sample(ctx.rng)
    }

    /// The feature's extra CPU time for a request a worker takes now: zero unless the
    /// request uses the feature (a draw against its share) and the flag, brought up to now,
    /// is on.
    fn feature_cost(&mut self, ctx: &mut Ctx<'_>) -> SimTime {
        let now = ctx.now();
        let counted = Self::counted(ctx);
        let s = &mut ctx.shared.compute.services[self.service];
        let workers = f64::from(s.workers) * f64::from(s.ready);
        let Some(f) = &mut s.feature else {
            return SimTime::ZERO;
        };
        f.update(now, workers, counted);
        let (share, on) = (f.share, f.on);
        if !(share >= 1.0 || ctx.rng.random::<f64>() < share) {
            return SimTime::ZERO;
        }
        if let Some(f) = &mut ctx.shared.compute.services[self.service].feature {
            if counted {
                f.wanted += 1;
                f.served += u64::from(on);
            }
        }
        match (&self.feature_time, on) {
            (Some(t), true) => t.sample(ctx.rng),
            _ => SimTime::ZERO,
        }
    }

    /// A scan of up to `workers` jobs. Tried and not kept: a table of each request slot's
    /// position in `in_service` (set at `start`, fixed up after `swap_remove`, checked
    /// against the job there, the scan as fallback), so no scan exit mispredicts: production
    /// 20 s 871.0 -> 872.0 M instructions, simulated mispredicts 6.49 -> 6.55 M (fewer in
    /// the instance, more elsewhere), 120 s CPU 16 interleaved rounds mean +0.006 s.
    pub(super) fn find(&self, req: ReqId) -> Option<usize> {
        self.in_service.iter().position(|j| j.req == req)
    }

    /// CPU work is over: call the data tier (the worker stays busy meanwhile) or answer.
    #[inline(always)]
    pub(super) fn cpu_done(&mut self, ctx: &mut Ctx<'_>, req: ReqId) {
        let Some(pos) = self.find(req) else {
            return; // the instance crashed meanwhile
        };
        let job = self.in_service[pos];
        match job.phase {
            Phase::Cpu => {}
            Phase::Connect => {
                // The connection is open: make the call (the node is picked now).
                match self.data.route(ctx, req) {
                    Some(t) => {
                        self.in_service[pos].phase = Phase::Data;
                        self.call_data(ctx, t, req);
                    }
                    None => self.after_data(ctx, req, Status::Ok),
                }
                return;
            }
            _ => return,
        }
        if job.canary && self.canary_error > 0.0 && ctx.rng.random::<f64>() < self.canary_error {
            self.respond_at(ctx, req, Some(pos), Status::Error);
            return;
        }
        if !self.calls.is_empty() {
            self.start_stage(ctx, req, 0);
            return;
        }
        self.go_to_data_at(ctx, req, pos);
    }

    /// The CPU work and the calls are done: call the data tier (through the pool or a new
    /// connection) or answer.
    pub(super) fn go_to_data(&mut self, ctx: &mut Ctx<'_>, req: ReqId) {
        if let Some(pos) = self.find(req) {
            self.go_to_data_at(ctx, req, pos);
        }
    }

    /// [`Self::go_to_data`] for `req`, held at `pos` of `in_service`: the caller found it
    /// already, and the request's `op` is read once here for the whole way to the answer.
    #[inline(always)]
    fn go_to_data_at(&mut self, ctx: &mut Ctx<'_>, req: ReqId, pos: usize) {
        let Some(op) = ctx.shared.reqs.get(req).map(|r| r.op) else {
            self.respond_at(ctx, req, Some(pos), Status::Error);
            return;
        };
        let Some(t) = self.data.route(ctx, req) else {
            self.data_done(ctx, req, pos, op);
            return;
        };
        if op == Op::Read && !self.degrade.is_empty() && degraded(&self.degrade, self.load()).stale
        {
            if Self::counted(ctx) {
                ctx.shared.compute.services[self.service].stale_served += 1;
            }
            self.data_done(ctx, req, pos, op);
            return;
        }
        let now = ctx.now();
        let counted = Self::counted(ctx);
        let svc = self.service;
        match &mut self.pool {
            None => {
                if let Some(c) = &self.connect {
                    // A new connection for this request; the call follows (`cpu_done`).
                    let d = c.sample(ctx.rng);
                    trace::phase(ctx, req, "connect");
                    self.in_service[pos].phase = Phase::Connect;
                    ctx.timer(d, Msg::Instance(InstanceMsg::Connected(req)));
                    return;
                }
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

    /// The data tier answered `req` (held at `pos`, an `op`) ok, or was not needed: a
    /// write goes on to the job queues, anything else is answered (as
    /// [`Self::after_data`], without looking the request up again).
    #[inline(always)]
    fn data_done(&mut self, ctx: &mut Ctx<'_>, req: ReqId, pos: usize, op: Op) {
        if op == Op::Write && !self.jobs.is_empty() {
            self.enqueue_from(ctx, req, 0);
        } else {
            self.respond_at(ctx, req, Some(pos), Status::Ok);
        }
    }

    /// Offers a job to each queue from `from` on with its `enqueue_ratio`, one at a time
    /// (a blocking queue holds the worker until it takes the job), then answers.
    pub(super) fn enqueue_from(&mut self, ctx: &mut Ctx<'_>, req: ReqId, from: usize) {
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
}

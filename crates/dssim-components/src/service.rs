//! Services: stateless app nodes (the "kitchen" of the restaurant).
//!
//! ```text
//!              +-------------------- instance app.0 ---------------------+
//!   request -->| queue (bounded: full => shed 503) --> workers (busy) --> |--> response
//!              +---------------------------------------------------------+
//! ```
//!
//! Each instance has `workers` servers and a waiting room of `queue` places (unbounded when
//! absent). Service time is drawn from `service_time` divided by `speed`.
//!
//! Faults ([`crate::faults`]): a killed instance refuses requests with an error, fails
//! those it held and ignores health probes until it recovers; a slow (gray) instance
//! multiplies its service times by a factor but still answers probes.
//!
//! Measures: requests, utilization (busy worker-time / worker-time), mean queue length,
//! p99 time in the service (queue + service), shed requests.

use std::collections::VecDeque;

use dssim_engine::{Dist, Histogram, SimTime, TimeWeighted};
use serde::{Deserialize, Serialize};

use crate::datapath::DataPath;
use crate::faults::FaultAction;
use crate::node::{Ctx, Msg};
use crate::request::{call, call_local, reply, ReqId, Status};
use crate::units::DistSpec;

/// A `[[services]]` entry.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceConfig {
    /// Unique name; instances are `name.0`, `name.1`, ...
    pub name: String,
    /// Number of instances.
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

fn one() -> u32 {
    1
}
fn one_f() -> f64 {
    1.0
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
    /// Time in this instance (queue + service) of requests served after warm-up.
    pub sojourn: Histogram,
}

/// One instance of a service.
#[derive(Debug)]
pub struct Instance {
    /// Index of the service in the model.
    pub service: usize,
    workers: u32,
    capacity: u64,
    service_time: Dist,
    busy: u32,
    queue: VecDeque<(ReqId, SimTime)>,
    in_service: Vec<(ReqId, SimTime)>,
    /// What the instance calls for data after its CPU work.
    pub data: DataPath,
    /// Measurements.
    pub stats: InstanceStats,
    /// Fault state: dead or alive, slowdown factor, requests to fail when answered.
    fault: FaultState,
}

/// What faults did to an instance.
#[derive(Debug)]
struct FaultState {
    alive: bool,
    slow: f64,
    /// Requests that were out at the data tier when the instance died: they fail when
    /// that answer comes back (the return path runs through this instance).
    doomed: Vec<ReqId>,
}

impl Instance {
    /// A fresh, idle instance of service `service`.
    pub fn new(service: usize, cfg: &ServiceConfig) -> Self {
        let speed = if cfg.speed > 0.0 { cfg.speed } else { 1.0 };
        Instance {
            service,
            workers: cfg.workers.max(1),
            capacity: cfg.queue.unwrap_or(u64::MAX),
            service_time: cfg.service_time.0.scaled(1.0 / speed),
            busy: 0,
            queue: VecDeque::new(),
            in_service: Vec::new(),
            data: DataPath::default(),
            stats: InstanceStats::default(),
            fault: FaultState {
                alive: true,
                slow: 1.0,
                doomed: Vec::new(),
            },
        }
    }

    /// Whether the instance is alive (not killed by a fault).
    pub fn is_alive(&self) -> bool {
        self.fault.alive
    }

    /// Workers of this instance.
    pub fn workers(&self) -> u32 {
        self.workers
    }

    /// Handles one message.
    #[inline]
    pub fn handle(&mut self, msg: Msg, ctx: &mut Ctx<'_>) {
        match msg {
            Msg::Request(req) => self.arrive(ctx, req),
            Msg::Done(req) => self.cpu_done(ctx, req),
            Msg::Response(req, status) => self.finish(ctx, req, status),
            Msg::Probe {
                from,
                backend,
                round,
            } if self.fault.alive => {
                ctx.send(from, Msg::ProbeAck { backend, round });
            }
            Msg::Fault(action) => self.fault(ctx, action),
            _ => {}
        }
    }

    fn arrive(&mut self, ctx: &mut Ctx<'_>, req: ReqId) {
        if !self.fault.alive {
            reply(ctx, req, Status::Error); // connection refused
            return;
        }
        let now = ctx.now();
        let counted = now >= ctx.shared.stats.warmup;
        if counted {
            self.stats.requests += 1;
        }
        if self.busy < self.workers {
            self.start(ctx, req, now);
        } else if (self.queue.len() as u64) < self.capacity {
            self.queue.push_back((req, now));
            self.stats.queued.add(now, 1.0);
            ctx.shared.stats.gauges.queued.add(now, 1.0);
        } else {
            if counted {
                self.stats.shed += 1;
            }
            reply(ctx, req, Status::Shed);
        }
    }

    fn start(&mut self, ctx: &mut Ctx<'_>, req: ReqId, arrived: SimTime) {
        let now = ctx.now();
        self.busy += 1;
        self.stats.busy.add(now, 1.0);
        ctx.shared.stats.gauges.busy.add(now, 1.0);
        let mut d = self.service_time.sample(ctx.rng);
        if self.fault.slow != 1.0 {
            d = SimTime::from_nanos((d.0 as f64 * self.fault.slow).round() as u64);
        }
        self.in_service.push((req, arrived));
        ctx.timer(d, Msg::Done(req));
    }

    /// CPU work is over: call the data tier (the worker stays busy meanwhile) or answer.
    fn cpu_done(&mut self, ctx: &mut Ctx<'_>, req: ReqId) {
        if !self.in_service.iter().any(|(r, _)| *r == req) {
            return; // failed by a kill meanwhile
        }
        let target = self.data.route(ctx, req);
        match target {
            Some(t) if self.data.local => call_local(ctx, t, SimTime::ZERO, req),
            Some(t) => call(ctx, t, req),
            None => self.finish(ctx, req, Status::Ok),
        }
    }

    /// The request is done here: free the worker, answer, start the next in line.
    fn finish(&mut self, ctx: &mut Ctx<'_>, req: ReqId, status: Status) {
        let now = ctx.now();
        let Some(pos) = self.in_service.iter().position(|(r, _)| *r == req) else {
            if let Some(i) = self.fault.doomed.iter().position(|r| *r == req) {
                self.fault.doomed.swap_remove(i);
                reply(ctx, req, Status::Error);
            }
            return;
        };
        let (_, arrived) = self.in_service.swap_remove(pos);
        if arrived >= ctx.shared.stats.warmup {
            self.stats.sojourn.record(now - arrived);
        }
        self.busy -= 1;
        self.stats.busy.add(now, -1.0);
        ctx.shared.stats.gauges.busy.add(now, -1.0);
        reply(ctx, req, status);
        if let Some((next, at)) = self.queue.pop_front() {
            self.stats.queued.add(now, -1.0);
            ctx.shared.stats.gauges.queued.add(now, -1.0);
            self.start(ctx, next, at);
        }
    }

    /// Applies a scheduled fault.
    fn fault(&mut self, ctx: &mut Ctx<'_>, action: FaultAction) {
        let now = ctx.now();
        match action {
            FaultAction::Slow(f) => self.fault.slow = f64::from(f),
            FaultAction::Kill if self.fault.alive => {
                self.fault.alive = false;
                let w = f64::from(self.workers);
                let g = &mut ctx.shared.stats.gauges;
                g.instances.add(now, -1.0);
                g.workers.add(now, -w);
                while let Some((req, _)) = self.queue.pop_front() {
                    self.stats.queued.add(now, -1.0);
                    ctx.shared.stats.gauges.queued.add(now, -1.0);
                    reply(ctx, req, Status::Error);
                }
                let me = ctx.me();
                for (req, _) in std::mem::take(&mut self.in_service) {
                    self.busy -= 1;
                    self.stats.busy.add(now, -1.0);
                    ctx.shared.stats.gauges.busy.add(now, -1.0);
                    if ctx.shared.reqs.get(req).is_some_and(|r| r.awaited_by(me)) {
                        self.fault.doomed.push(req);
                    } else {
                        reply(ctx, req, Status::Error);
                    }
                }
            }
            FaultAction::Recover if !self.fault.alive => {
                self.fault.alive = true;
                let g = &mut ctx.shared.stats.gauges;
                g.instances.add(now, 1.0);
                g.workers.add(now, f64::from(self.workers));
            }
            _ => {}
        }
    }
}

//! Job queues: background work (emails, reports) a service hands off instead of doing it
//! while the user waits.
//!
//! ```text
//!   producer instance --write ok--(enqueue_ratio)--> [ waiting jobs (capacity) ] --> workers
//!         ^                                                |   full: block | drop | drop_oldest
//!         +---- blocked until there is room (block) -------+
//!   worker: job_time; fails with failure_rate -> retry after backoff × multiplier^(n-1)
//!           (with jitter: a uniform draw between half and all of it); after `max` retries
//!           the job is dead-lettered
//! ```
//!
//! After a successful write, each instance of the `producer` service offers a job with
//! probability `enqueue_ratio`. When `capacity` waiting jobs are already there,
//! `when_full` decides: `"block"` keeps the producer's worker (and its client's request)
//! waiting until there is room (backpressure up to the users); `"drop"` loses the new job;
//! `"drop_oldest"` loses the oldest waiting one. Retried jobs go back to the end of the line
//! whatever the capacity. An autoscaler with `queue = "jobs"` (or `service = "jobs"`) and
//! `metric = "queue"` adds and removes workers.
//!
//! ## Priority classes (`priorities = [{ name = "high", share = 0.2 }, { name = "low", share = 0.8 }]`)
//!
//! Without `priorities` every job is of one class and workers take them in arrival order.
//! With it, each accepted job draws its class (the queue's own random stream) with
//! probability `share` (the shares add up to 1); the first class listed is the most
//! urgent. A free worker always takes the oldest waiting job of the most urgent class that
//! has one (non-preemptive priority: a running job is never interrupted; FIFO within a
//! class). A retried job goes back to the end of its own class. `drop_oldest` loses the
//! oldest waiting job of the least urgent class that has one. components.csv gets one row
//! per class, `QUEUE.CLASS` (kind `queue_class`): jobs offered in the class, and its
//! offer-to-success latency (`p99_ms`, `mean_ms`).
//!
//! ## Publish/subscribe (`subscribers = [{ name = "email" }, { name = "search", count = 2 }]`)
//!
//! With `subscribers` the queue is a topic: the producer publishes once (accepted at once:
//! its request never waits for a subscriber), and the topic copies the message into the
//! backlog of every subscriber group. Each group delivers its copies in publish order on
//! its own `workers` with its own `job_time` and `failure_rate` (the queue's when absent;
//! the queue's `retries` apply), so a slow group's backlog grows without slowing the
//! publisher or the other groups. `count = N` makes N identical groups (`NAME.1` …
//! `NAME.N`). The queue's counts (`jobs_*` in runs.csv) then count copies — the work is
//! N× — and its components.csv row counts messages published, with the time from publish
//! to the last group's delivery ("delivered to all", `p99_ms`, `mean_ms`; a message a
//! group dead-letters is never delivered to all) and the total backlog (`mean_queue`).
//! Each group has a row `QUEUE.NAME` (kind `subscriber`): copies offered, worker
//! utilization, mean backlog and publish-to-delivery time; with `[output]
//! instance_timeseries` instances.csv gets a row per group and interval: deliveries per
//! second (`arrivals_rps`), utilization, backlog (`queue_len`) and lag (`lag_ms`: the age
//! of the message at the head of the backlog at the end of the interval). A topic takes no
//! `capacity` or `priorities` (its backlogs are unbounded: their storage is the cost) and
//! no autoscaler.
//!
//! Jobs are not client requests: request conservation does not count them. They have their
//! own, over the whole run: `offered = done + dead + dropped + pending` (pending: waiting,
//! running or waiting to retry).
//!
//! Measures: jobs offered, done, dead-lettered, dropped, pending at the end (runs.csv
//! `jobs_*`), job latency from offer to success (`job_p99_ms`, and the components.csv row
//! with utilization of the workers and mean depth).

use std::collections::VecDeque;

use dssim_engine::{Dist, Histogram, SimTime, TimeWeighted};
use rand::Rng as _;
use serde::{Deserialize, Serialize};

use crate::node::{unexpected, Ctx, Msg};
use crate::request::{reply_local, ReqId, Status};
use crate::units::{DistSpec, Dur};

/// A `[[queues]]` entry.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QueueConfig {
    /// Unique name.
    pub name: String,
    /// The service whose writes enqueue jobs.
    pub producer: String,
    /// Share of the producer's successful writes that enqueue a job.
    #[serde(default = "one_f")]
    pub enqueue_ratio: f64,
    /// Workers draining the queue (at the start, when autoscaled).
    #[serde(default = "one")]
    pub workers: u32,
    /// Time a worker spends on one attempt of a job.
    pub job_time: DistSpec,
    /// Probability that an attempt fails.
    #[serde(default)]
    pub failure_rate: f64,
    /// Retries of a failed job.
    #[serde(default)]
    pub retries: JobRetries,
    /// Waiting jobs at most; unbounded when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity: Option<u64>,
    /// What happens to a job offered to a full queue.
    #[serde(default)]
    pub when_full: WhenFull,
    /// Priority classes, most urgent first; one class (FIFO) when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub priorities: Vec<JobPriority>,
    /// Subscriber groups (publish/subscribe): the queue becomes a topic that copies every
    /// job offered to each group; each group has its own backlog, workers and job time.
    /// Empty: an ordinary queue.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subscribers: Vec<Subscriber>,
}

/// One entry of `subscribers = [{ name = "email" }, { name = "search", job_time = "exp(30ms)" }]`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Subscriber {
    /// Group name (components.csv row `QUEUE.NAME`, kind `subscriber`).
    pub name: String,
    /// Identical groups of this kind, named `NAME.1` … `NAME.N` when more than one.
    #[serde(default = "one")]
    pub count: u32,
    /// Workers of the group; the queue's `workers` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workers: Option<u32>,
    /// Time a worker of the group spends on one delivery; the queue's `job_time` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job_time: Option<DistSpec>,
    /// Probability that a delivery attempt fails (then retried as the queue's `retries`
    /// say); the queue's `failure_rate` when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_rate: Option<f64>,
}

/// One subscriber group of a topic, with the queue's defaults filled in.
#[derive(Clone, Debug)]
pub struct SubscriberGroup {
    /// Full name (`QUEUE.NAME`, or `QUEUE.NAME.K` of a `count`).
    pub name: String,
    /// Workers.
    pub workers: u32,
    /// Time per delivery attempt.
    pub job_time: DistSpec,
    /// Failure probability per attempt.
    pub failure_rate: f64,
}

impl QueueConfig {
    /// The subscriber groups of a topic, in order, `count`s expanded (empty: not a topic).
    pub fn subscriber_groups(&self) -> Vec<SubscriberGroup> {
        let mut out = Vec::new();
        for s in &self.subscribers {
            for k in 1..=s.count {
                out.push(SubscriberGroup {
                    name: if s.count == 1 {
                        format!("{}.{}", self.name, s.name)
                    } else {
                        format!("{}.{}.{k}", self.name, s.name)
                    },
                    workers: s.workers.unwrap_or(self.workers),
                    job_time: s.job_time.clone().unwrap_or_else(|| self.job_time.clone()),
                    failure_rate: s.failure_rate.unwrap_or(self.failure_rate),
                });
            }
        }
        out
    }
}

/// One entry of `priorities = [{ name = "high", share = 0.2 }, ...]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobPriority {
    /// Class name (unique in the queue).
    pub name: String,
    /// Share of the accepted jobs in this class (the shares add up to 1).
    pub share: f64,
}

/// `retries = { max = 3, backoff = "1s", multiplier = 2.0, jitter = true }`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobRetries {
    /// Retries after the first attempt.
    #[serde(default)]
    pub max: u32,
    /// Wait before the first retry.
    #[serde(default = "default_backoff")]
    pub backoff: Dur,
    /// Growth of the wait per retry.
    #[serde(default = "two_f")]
    pub multiplier: f64,
    /// Draw each wait uniformly between half and all of it.
    #[serde(default)]
    pub jitter: bool,
}

impl Default for JobRetries {
    fn default() -> Self {
        JobRetries {
            max: 0,
            backoff: default_backoff(),
            multiplier: 2.0,
            jitter: false,
        }
    }
}

/// Backpressure strategy of a full queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WhenFull {
    /// The producer waits for room.
    #[default]
    Block,
    /// The new job is lost.
    Drop,
    /// The oldest waiting job is lost.
    DropOldest,
}

fn one() -> u32 {
    1
}
fn one_f() -> f64 {
    1.0
}
fn two_f() -> f64 {
    2.0
}
fn default_backoff() -> Dur {
    Dur(SimTime::from_secs(1))
}

/// A queue's shared figures (read by autoscalers and the report).
#[derive(Debug, Default)]
pub struct QueueState {
    /// Queue name.
    pub name: String,
    /// Workers allowed to run jobs now (autoscalers change it).
    pub workers: u32,
    /// Workers being provisioned.
    pub provisioning: u32,
    /// Jobs offered (accepted or dropped).
    pub offered: u64,
    /// Jobs that succeeded.
    pub done: u64,
    /// Jobs that failed every attempt.
    pub dead: u64,
    /// Jobs lost to a full queue.
    pub dropped: u64,
    /// Jobs waiting, running or waiting to retry.
    pub pending: u64,
    /// Offer-to-success time of jobs offered after warm-up.
    pub latency: Histogram,
    /// Waiting jobs over the autoscaler's sampling window.
    pub win_depth: TimeWeighted,
    /// Busy workers over the autoscaler's sampling window.
    pub win_busy: TimeWeighted,
    /// Workers over the autoscaler's sampling window.
    pub win_workers: TimeWeighted,
    /// Jobs offered in the autoscaler's sampling window.
    pub win_offered: u64,
    /// Job latency in the autoscaler's sampling window.
    pub win_latency: Histogram,
    /// Waiting jobs over the measured window.
    pub depth: TimeWeighted,
    /// Busy workers over the measured window.
    pub busy: TimeWeighted,
    /// Workers over the measured window.
    pub workers_tw: TimeWeighted,
    /// Per priority class (empty without `priorities`): name, jobs offered, latency.
    pub classes: Vec<ClassState>,
    /// Messages published to a topic (each one copied to every subscriber group; the
    /// counts above then count copies).
    pub published: u64,
    /// Per subscriber group of a topic (empty for an ordinary queue).
    pub subs: Vec<SubState>,
}

/// The figures of one subscriber group of a topic.
#[derive(Debug, Default)]
pub struct SubState {
    /// Full name (`QUEUE.NAME`).
    pub name: String,
    /// Workers.
    pub workers: u32,
    /// Copies offered to the group.
    pub offered: u64,
    /// Copies delivered (processed successfully).
    pub done: u64,
    /// Copies that failed every attempt.
    pub dead: u64,
    /// Publish-to-delivery time of the copies published after warm-up.
    pub latency: Histogram,
    /// Backlog (copies waiting) over the measured window.
    pub depth: TimeWeighted,
    /// Busy workers over the measured window.
    pub busy: TimeWeighted,
    /// Backlog over the open time-series interval.
    pub iv_depth: TimeWeighted,
    /// Busy workers over the open time-series interval.
    pub iv_busy: TimeWeighted,
    /// Copies delivered in the open time-series interval.
    pub iv_done: u64,
    /// When the copy at the head of the backlog was published (the lag's start).
    pub head: Option<SimTime>,
}

/// The figures of one priority class of a queue.
#[derive(Debug, Default)]
pub struct ClassState {
    /// Class name.
    pub name: String,
    /// Jobs accepted in this class.
    pub offered: u64,
    /// Offer-to-success time of the class's jobs offered after warm-up.
    pub latency: Histogram,
}

/// A job queue's own timers, and its autoscaler's kick ([`Msg::Queue`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QueueMsg {
    /// Workers changed: start what can start.
    Kick,
    /// The attempt of the job in this slot is over.
    AttemptDone(u32),
    /// The backoff of the job in this slot is over: it waits again.
    RetryDue(u32),
}

#[derive(Clone, Copy, Debug)]
struct JobRec {
    offered: SimTime,
    attempt: u32,
    class: u32,
    /// Subscriber group of a topic's copy (0 otherwise).
    lane: u32,
    /// The published message a topic's copy belongs to (0 otherwise).
    msg: u32,
}

/// One subscriber group of a topic: its own backlog and workers.
#[derive(Debug)]
struct Lane {
    workers: u32,
    busy: u32,
    job_time: Dist,
    failure_rate: f64,
    waiting: VecDeque<u32>,
}

/// A published message: copies not yet finished, and whether one was lost.
#[derive(Clone, Copy, Debug)]
struct Published {
    at: SimTime,
    left: u32,
    lost: bool,
}

/// The actor of one job queue (the broker and its workers).
#[derive(Debug)]
pub struct JobQueue {
    /// Index of the queue in the model.
    pub index: usize,
    capacity: u64,
    when_full: WhenFull,
    job_time: Dist,
    failure_rate: f64,
    retries: JobRetries,
    busy: u32,
    /// Cumulative shares of the priority classes (empty: one class).
    cum_shares: Vec<f64>,
    /// Waiting jobs per class, most urgent first.
    waiting: Vec<VecDeque<u32>>,
    n_waiting: u64,
    blocked: VecDeque<ReqId>,
    jobs: Vec<JobRec>,
    free: Vec<u32>,
    /// Subscriber groups of a topic (empty: an ordinary queue).
    lanes: Vec<Lane>,
    msgs: Vec<Published>,
    free_msgs: Vec<u32>,
}

impl JobQueue {
    /// The queue `index` of the model.
    pub fn new(index: usize, cfg: &QueueConfig) -> Self {
        JobQueue {
            index,
            capacity: cfg.capacity.unwrap_or(u64::MAX),
            when_full: cfg.when_full,
            job_time: cfg.job_time.0.clone(),
            failure_rate: cfg.failure_rate,
            retries: cfg.retries,
            busy: 0,
            cum_shares: cfg
                .priorities
                .iter()
                .scan(0.0, |acc, p| {
                    *acc += p.share;
                    Some(*acc)
                })
                .collect(),
            waiting: (0..cfg.priorities.len().max(1))
                .map(|_| VecDeque::new())
                .collect(),
            n_waiting: 0,
            blocked: VecDeque::new(),
            jobs: Vec::new(),
            free: Vec::new(),
            lanes: cfg
                .subscriber_groups()
                .into_iter()
                .map(|g| Lane {
                    workers: g.workers,
                    busy: 0,
                    job_time: g.job_time.0,
                    failure_rate: g.failure_rate,
                    waiting: VecDeque::new(),
                })
                .collect(),
            msgs: Vec::new(),
            free_msgs: Vec::new(),
        }
    }

    /// Handles one message.
    pub fn handle(&mut self, msg: Msg, ctx: &mut Ctx<'_>) {
        if !self.lanes.is_empty() {
            return self.handle_topic(msg, ctx);
        }
        match msg {
            Msg::Request(req) => self.offer(ctx, req),
            Msg::Queue(QueueMsg::Kick) => self.run_next(ctx),
            Msg::Queue(QueueMsg::AttemptDone(slot)) => self.attempt_done(ctx, slot),
            Msg::Queue(QueueMsg::RetryDue(slot)) => {
                self.push_waiting(ctx, slot);
                self.run_next(ctx);
            }
            other => unexpected("job queue", other),
        }
    }

    fn state<'a>(&self, ctx: &'a mut Ctx<'_>) -> &'a mut QueueState {
        &mut ctx.shared.compute.queues[self.index]
    }

    fn push_waiting(&mut self, ctx: &mut Ctx<'_>, slot: u32) {
        let now = ctx.now();
        let class = self.jobs[slot as usize].class as usize;
        self.waiting[class].push_back(slot);
        self.n_waiting += 1;
        let s = self.state(ctx);
        s.win_depth.add(now, 1.0);
        s.depth.add(now, 1.0);
    }

    fn pop_waiting(&mut self, ctx: &mut Ctx<'_>) -> Option<u32> {
        let now = ctx.now();
        let slot = self.waiting.iter_mut().find_map(VecDeque::pop_front)?;
        self.n_waiting -= 1;
        let s = self.state(ctx);
        s.win_depth.add(now, -1.0);
        s.depth.add(now, -1.0);
        Some(slot)
    }

    /// The oldest waiting job of the least urgent class that has one.
    fn pop_oldest_least_urgent(&mut self, ctx: &mut Ctx<'_>) -> Option<u32> {
        let now = ctx.now();
        let slot = self
            .waiting
            .iter_mut()
            .rev()
            .find_map(VecDeque::pop_front)?;
        self.n_waiting -= 1;
        let s = self.state(ctx);
        s.win_depth.add(now, -1.0);
        s.depth.add(now, -1.0);
        Some(slot)
    }

    fn alloc(&mut self, rec: JobRec) -> u32 {
        if let Some(i) = self.free.pop() {
            self.jobs[i as usize] = rec;
            i
        } else {
            self.jobs.push(rec);
            (self.jobs.len() - 1) as u32
        }
    }

    /// A producer offers a job on behalf of request `req`.
    fn offer(&mut self, ctx: &mut Ctx<'_>, req: ReqId) {
        if self.n_waiting < self.capacity {
            self.accept(ctx, req);
            self.run_next(ctx);
            return;
        }
        match self.when_full {
            WhenFull::Block => self.blocked.push_back(req),
            WhenFull::Drop => {
                let s = self.state(ctx);
                s.offered += 1;
                s.win_offered += 1;
                s.dropped += 1;
                reply_local(ctx, req, SimTime::ZERO, Status::Ok);
            }
            WhenFull::DropOldest => {
                if let Some(old) = self.pop_oldest_least_urgent(ctx) {
                    self.free.push(old);
                    let s = self.state(ctx);
                    s.dropped += 1;
                    s.pending -= 1;
                }
                self.accept(ctx, req);
            }
        }
    }

    fn accept(&mut self, ctx: &mut Ctx<'_>, req: ReqId) {
        let now = ctx.now();
        let class = if self.cum_shares.is_empty() {
            0
        } else {
            let u = ctx.rng.random::<f64>();
            let last = self.cum_shares.len() - 1;
            self.cum_shares.iter().position(|&c| u < c).unwrap_or(last)
        };
        let slot = self.alloc(JobRec {
            offered: now,
            attempt: 0,
            class: class as u32,
            lane: 0,
            msg: 0,
        });
        let s = self.state(ctx);
        if let Some(c) = s.classes.get_mut(class) {
            c.offered += 1;
        }
        s.offered += 1;
        s.win_offered += 1;
        s.pending += 1;
        self.push_waiting(ctx, slot);
        reply_local(ctx, req, SimTime::ZERO, Status::Ok);
    }

    fn run_next(&mut self, ctx: &mut Ctx<'_>) {
        let now = ctx.now();
        loop {
            while self.busy < self.state(ctx).workers {
                let Some(slot) = self.pop_waiting(ctx) else {
                    break;
                };
                self.busy += 1;
                let s = self.state(ctx);
                s.win_busy.add(now, 1.0);
                s.busy.add(now, 1.0);
                let d = self.job_time.sample(ctx.rng);
                ctx.timer(d, Msg::Queue(QueueMsg::AttemptDone(slot)));
            }
            // Room again: let blocked producers in, then start what they brought.
            let mut admitted = false;
            while self.n_waiting < self.capacity {
                let Some(req) = self.blocked.pop_front() else {
                    break;
                };
                self.accept(ctx, req);
                admitted = true;
            }
            if !admitted || self.busy >= self.state(ctx).workers {
                break;
            }
        }
    }

    fn attempt_done(&mut self, ctx: &mut Ctx<'_>, slot: u32) {
        let now = ctx.now();
        let warmup = ctx.shared.stats.warmup;
        self.busy -= 1;
        let failed = self.failure_rate > 0.0 && ctx.rng.random::<f64>() < self.failure_rate;
        let rec = &mut self.jobs[slot as usize];
        let s = &mut ctx.shared.compute.queues[self.index];
        s.win_busy.add(now, -1.0);
        s.busy.add(now, -1.0);
        if !failed {
            s.done += 1;
            s.pending -= 1;
            let d = now - rec.offered;
            s.win_latency.record(d);
            if rec.offered >= warmup {
                s.latency.record(d);
                if let Some(c) = s.classes.get_mut(rec.class as usize) {
                    c.latency.record(d);
                }
            }
            self.free.push(slot);
        } else if rec.attempt >= self.retries.max {
            s.dead += 1;
            s.pending -= 1;
            self.free.push(slot);
        } else {
            rec.attempt += 1;
            let attempt = rec.attempt;
            self.retry_later(ctx, slot, attempt);
        }
        self.run_next(ctx);
    }

    /// Sets the backoff timer of the job in `slot` before its attempt `attempt + 1`.
    fn retry_later(&self, ctx: &mut Ctx<'_>, slot: u32, attempt: u32) {
        let base = self.retries.backoff.0.as_nanos() as f64
            * self
                .retries
                .multiplier
                .max(0.0)
                .powi(attempt.saturating_sub(1).min(60) as i32);
        let wait = if self.retries.jitter {
            base * (0.5 + 0.5 * ctx.rng.random::<f64>())
        } else {
            base
        };
        ctx.timer(
            SimTime::from_secs_f64(wait / 1e9),
            Msg::Queue(QueueMsg::RetryDue(slot)),
        );
    }
}

/// A topic (a queue with `subscribers`): a publish is accepted at once, and copied to the
/// backlog of every subscriber group; each group delivers its copies in order on its own
/// workers, so a slow group's backlog grows without slowing the publisher or the others.
impl JobQueue {
    fn handle_topic(&mut self, msg: Msg, ctx: &mut Ctx<'_>) {
        match msg {
            Msg::Request(req) => self.publish(ctx, req),
            Msg::Queue(QueueMsg::Kick) => {
                for l in 0..self.lanes.len() {
                    self.run_lane(ctx, l);
                }
            }
            Msg::Queue(QueueMsg::AttemptDone(slot)) => self.delivery_done(ctx, slot),
            Msg::Queue(QueueMsg::RetryDue(slot)) => {
                let l = self.jobs[slot as usize].lane as usize;
                self.push_lane(ctx, l, slot);
                self.run_lane(ctx, l);
            }
            other => unexpected("topic", other),
        }
    }

    fn publish(&mut self, ctx: &mut Ctx<'_>, req: ReqId) {
        let now = ctx.now();
        let n = self.lanes.len();
        let rec = Published {
            at: now,
            left: n as u32,
            lost: false,
        };
        let msg = if let Some(i) = self.free_msgs.pop() {
            self.msgs[i as usize] = rec;
            i
        } else {
            self.msgs.push(rec);
            (self.msgs.len() - 1) as u32
        };
        let s = self.state(ctx);
        s.published += 1;
        s.offered += n as u64;
        s.win_offered += n as u64;
        s.pending += n as u64;
        for l in 0..n {
            let slot = self.alloc(JobRec {
                offered: now,
                attempt: 0,
                class: 0,
                lane: l as u32,
                msg,
            });
            self.state(ctx).subs[l].offered += 1;
            self.push_lane(ctx, l, slot);
        }
        reply_local(ctx, req, SimTime::ZERO, Status::Ok);
        for l in 0..n {
            self.run_lane(ctx, l);
        }
    }

    fn head_of(&self, l: usize) -> Option<SimTime> {
        self.lanes[l]
            .waiting
            .front()
            .map(|&k| self.jobs[k as usize].offered)
    }

    fn push_lane(&mut self, ctx: &mut Ctx<'_>, l: usize, slot: u32) {
        let now = ctx.now();
        self.lanes[l].waiting.push_back(slot);
        let head = self.head_of(l);
        let s = self.state(ctx);
        s.win_depth.add(now, 1.0);
        s.depth.add(now, 1.0);
        let sub = &mut s.subs[l];
        sub.depth.add(now, 1.0);
        sub.iv_depth.add(now, 1.0);
        sub.head = head;
    }

    fn run_lane(&mut self, ctx: &mut Ctx<'_>, l: usize) {
        let now = ctx.now();
        while self.lanes[l].busy < self.lanes[l].workers {
            let Some(slot) = self.lanes[l].waiting.pop_front() else {
                break;
            };
            self.lanes[l].busy += 1;
            let head = self.head_of(l);
            let s = self.state(ctx);
            s.win_depth.add(now, -1.0);
            s.depth.add(now, -1.0);
            s.win_busy.add(now, 1.0);
            s.busy.add(now, 1.0);
            let sub = &mut s.subs[l];
            sub.depth.add(now, -1.0);
            sub.iv_depth.add(now, -1.0);
            sub.busy.add(now, 1.0);
            sub.iv_busy.add(now, 1.0);
            sub.head = head;
            let d = self.lanes[l].job_time.sample(ctx.rng);
            ctx.timer(d, Msg::Queue(QueueMsg::AttemptDone(slot)));
        }
    }

    fn delivery_done(&mut self, ctx: &mut Ctx<'_>, slot: u32) {
        let now = ctx.now();
        let warmup = ctx.shared.stats.warmup;
        let rec = self.jobs[slot as usize];
        let l = rec.lane as usize;
        self.lanes[l].busy -= 1;
        let f = self.lanes[l].failure_rate;
        let failed = f > 0.0 && ctx.rng.random::<f64>() < f;
        let s = &mut ctx.shared.compute.queues[self.index];
        s.win_busy.add(now, -1.0);
        s.busy.add(now, -1.0);
        s.subs[l].busy.add(now, -1.0);
        s.subs[l].iv_busy.add(now, -1.0);
        if !failed || rec.attempt >= self.retries.max {
            s.pending -= 1;
            if failed {
                s.dead += 1;
                s.subs[l].dead += 1;
            } else {
                s.done += 1;
                let d = now - rec.offered;
                s.win_latency.record(d);
                let sub = &mut s.subs[l];
                sub.done += 1;
                sub.iv_done += 1;
                if rec.offered >= warmup {
                    sub.latency.record(d);
                }
            }
            self.free.push(slot);
            // The message is delivered to all when its last copy is.
            let m = &mut self.msgs[rec.msg as usize];
            m.left -= 1;
            m.lost |= failed;
            if m.left == 0 {
                if !m.lost && m.at >= warmup {
                    s.latency.record(now - m.at);
                }
                self.free_msgs.push(rec.msg);
            }
        } else {
            self.jobs[slot as usize].attempt += 1;
            self.retry_later(ctx, slot, rec.attempt + 1);
        }
        self.run_lane(ctx, l);
    }
}

//! The client actor: arrivals (open and closed loops), sending, retries, timeouts.

use dssim_engine::{ActorId, DeadlineFifo, SimTime};
use rand::Rng as _;
use rand_distr::{Distribution, Exp1};

use crate::cache::BrowserCache;
use crate::node::{unexpected, Ctx, Msg};
use crate::popularity::KeySampler;
use crate::request::{call, send_called, Op, ReqId, Request, Status};
use crate::stats::Outcome;
use crate::trace;

use super::*;

/// A client's own timers ([`Msg::Client`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientTimer {
    /// An open-loop arrival: send a request and draw the next arrival.
    Open,
    /// Draw the first arrival of a non-stationary open process (steps, diurnal, trace).
    First,
    /// A closed-loop user (by index) is done thinking: send its next request.
    User(u32),
    /// The wake-up for the oldest attempt deadline (see [`dssim_engine::DeadlineFifo`]).
    Deadline,
    /// A backoff is over: send this pending retry attempt.
    Retry(ReqId),
}

/// The arrival process, resolved to what the event loop needs.
#[derive(Debug)]
pub(super) enum Process {
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
    Diurnal(Diurnal),
    Trace {
        times: Vec<SimTime>,
        cursor: usize,
    },
}

/// The diurnal rate `base + (peak − base)(1 − cos 2πt/period)/2` (per ns) and the thinning
/// decision `x < rate(t)`, taken without the cosine for nearly every candidate.
///
/// The rate is computed exactly (the formula below, [`Self::rate`]) at a reference time
/// `t0`; within the next `window` ns it moves by at most `slope` (|dr/dt| ≤ (peak − base)/2
/// · 2π/period), and the rounding of the formula at either time by far less than `slack`
/// (10⁻¹² of the rates and of the phase, some 4,000 times the few ulps it can err by). So a
/// candidate whose `x` lies below `r0 − band` is kept and one at or above `r0 + band` is
/// dropped, exactly as the formula would decide; only inside the band (a few 10⁻⁵ of the
/// candidates) is the cosine computed. The window is 1/65,536 of the period (1.3 s of a
/// day: some 4,000 arrivals at 3,050/s share one cosine). The RNG draws are those of the
/// formula alone, so outputs are byte-identical (unit test
/// `diurnal_fast_decisions_are_the_formulas`).
///
/// Measured (session 11): 2 minutes of a 4-minute day (rate 300 → 5,800/s) 2,705.5 ->
/// 2,643.6 M instructions (-2.3 %); production 20 s (a flat day) 911.9 -> 910.2 M; M/M/1
/// 250 s level (288.3 M). The stress day's 3-hour proxy (`duration=3h`, `period=3h`, 1/8
/// of the day's events), 6 paired runs on the two cores of the shared machine (swapped
/// each time): mean 41.42 -> 40.33 CPU s, medians 40.78 -> 40.60 (noise about ±3 %). With
/// `rate` and `refresh` inlined, every arrival of the flat production day paid some 20
/// instructions more (registers saved for the cosine call): 2.5 M more in its 20 s.
#[derive(Debug)]
pub(super) struct Diurnal {
    base: f64,
    peak: f64,
    period_ns: f64,
    /// Reference time (ns) and the window after it that `lo`/`hi` hold for.
    t0: u64,
    window: u64,
    /// `rate(t0) ∓ band`.
    lo: f64,
    hi: f64,
}

impl Diurnal {
    pub(super) fn new(base: f64, peak: f64, period_ns: f64) -> Self {
        let mut d = Diurnal {
            base,
            peak,
            period_ns,
            t0: 0,
            window: ((period_ns / 65_536.0) as u64).max(1),
            lo: 0.0,
            hi: 0.0,
        };
        d.refresh(SimTime::ZERO);
        d
    }

    /// The highest rate: candidates are drawn at it.
    #[inline]
    pub(super) fn top(&self) -> f64 {
        self.base.max(self.peak)
    }

    /// The rate at `t`, by the formula (the decisions are this formula's). Out of line,
    /// as is [`Self::refresh`]: both are rare, and inlined they made every arrival pay
    /// for the registers the cosine call needs.
    #[inline(never)]
    fn rate(&self, t: SimTime) -> f64 {
        // A flat day (`peak` = `rate`) needs no cosine: the formula gives `base`
        // exactly then (about 65 instructions per arrival saved).
        if self.peak == self.base {
            self.base
        } else {
            let phase = std::f64::consts::TAU * (t.0 as f64 / self.period_ns);
            self.base + (self.peak - self.base) * (1.0 - phase.cos()) / 2.0
        }
    }

    #[cold]
    #[inline(never)]
    fn refresh(&mut self, t: SimTime) {
        let half = (self.peak - self.base).abs() / 2.0;
        let dphase = std::f64::consts::TAU * self.window as f64 / self.period_ns;
        let phase = std::f64::consts::TAU * (t.0 as f64 / self.period_ns);
        let slope = half * dphase * (1.0 + 1e-9);
        let slack = 1e-12 * (self.top() + half * (1.0 + phase.abs() + dphase));
        let band = slope + slack;
        let r0 = self.rate(t);
        self.t0 = t.0;
        self.lo = r0 - band;
        self.hi = r0 + band;
    }

    /// Whether a candidate at `t` with `x` = u · top is kept: `x < rate(t)`, exactly.
    #[inline]
    pub(super) fn keep(&mut self, t: SimTime, x: f64) -> bool {
        // A flat day (the production benchmark's, `peak` = `rate`) as before: no band.
        if self.peak == self.base {
            return x < self.base;
        }
        // Before `t0` the difference wraps to a huge number: refreshed too.
        if t.0.wrapping_sub(self.t0) > self.window {
            self.refresh(t);
        }
        if x < self.lo {
            true
        } else if x >= self.hi {
            false
        } else {
            x < self.rate(t)
        }
    }
}

/// The retry policy in force, with its budget's token bucket.
#[derive(Debug)]
pub(super) struct RetryPolicy {
    max: u32,
    backoff_ns: f64,
    multiplier: f64,
    jitter: bool,
    budget: Option<f64>,
    tokens: f64,
}

/// Whether attempt `id` still waits for its answer (its deadline still matters).
#[inline]
pub(super) fn pending(reqs: &crate::request::RequestTable, id: ReqId) -> bool {
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
    target_service: Option<usize>,
    low_priority: f64,
    end: SimTime,
    next_seq: u64,
    /// Requests this client sent (all, warm-up included).
    pub sent: u64,
    /// The users' browser cache, if configured.
    pub browser: Option<BrowserCache>,
    /// Retries this client sent (all, warm-up included).
    pub retries: u64,
    /// When the target is a geo router: the entries nearest first and what this client
    /// measured ([`crate::geo`]).
    pub(crate) geo: Option<crate::geo::GeoRoute>,
}

impl Client {
    /// A client sending to `targets` (one is picked at random per request) until `end`;
    /// when the target is a service, `target_service` is its index, and requests go to its
    /// current members instead; behind a geo router, `geo` holds the entries nearest first
    /// and each request goes to the nearest one in rotation.
    pub fn new(
        cfg: &ClientConfig,
        targets: Vec<ActorId>,
        target_service: Option<usize>,
        geo: Option<crate::geo::GeoRoute>,
        end: SimTime,
    ) -> Self {
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
            Arrival::Diurnal => Process::Diurnal(Diurnal::new(
                per_ns(rate),
                per_ns(cfg.peak.unwrap_or(rate)),
                cfg.period.map_or(1.0, |d| d.0 .0.max(1) as f64),
            )),
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
            target_service,
            low_priority: cfg.low_priority.unwrap_or(0.0),
            end,
            next_seq: 0,
            sent: 0,
            browser: cfg.browser_cache.as_ref().map(BrowserCache::new),
            retries: 0,
            geo,
        }
    }

    /// The first events: one open-loop arrival, or every user's first request.
    pub fn start(&self, ctx_schedule: &mut impl FnMut(SimTime, Msg)) {
        match &self.process {
            Process::Closed => {
                for u in 0..self.users {
                    ctx_schedule(SimTime::ZERO, Msg::Client(ClientTimer::User(u as u32)));
                }
            }
            Process::Poisson { mean_gap_ns: g } | Process::Constant { gap_ns: g } => {
                if g.is_finite() {
                    ctx_schedule(SimTime::ZERO, Msg::Client(ClientTimer::Open));
                }
            }
            Process::Steps { .. } | Process::Diurnal { .. } | Process::Trace { .. } => {
                ctx_schedule(SimTime::ZERO, Msg::Client(ClientTimer::First));
            }
        }
    }

    /// The time of the next open-loop arrival after `now`, if any before the end.
    pub(super) fn next_arrival(&mut self, ctx: &mut Ctx<'_>) -> Option<SimTime> {
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
            Process::Diurnal(d) => {
                // Thinning (Lewis & Shedler): candidates at the highest rate, each kept
                // with probability rate(t) / highest rate.
                let top = d.top();
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
                    if d.keep(t, ctx.rng.random::<f64>() * top) {
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
            Msg::Client(ClientTimer::Open) => {
                // The Poisson gap inline, the other processes in `next_arrival`: the same
                // draw, without a call per arrival.
                let next = match self.process {
                    Process::Poisson { mean_gap_ns } => {
                        let e: f64 = Exp1.sample(ctx.rng);
                        let t = ctx.now() + SimTime::from_nanos_f64(e * mean_gap_ns);
                        (t < self.end).then_some(t)
                    }
                    _ => self.next_arrival(ctx),
                };
                if let Some(next) = next {
                    ctx.timer_at(next, Msg::Client(ClientTimer::Open));
                }
                let user = if self.user_ids > 1 {
                    ctx.rng.random_range(0..self.user_ids) as u32
                } else {
                    0
                };
                self.send_new(ctx, user);
            }
            Msg::Client(ClientTimer::First) => {
                if let Some(next) = self.next_arrival(ctx) {
                    ctx.timer_at(next, Msg::Client(ClientTimer::Open));
                }
            }
            Msg::Client(ClientTimer::User(user)) if ctx.now() < self.end => {
                self.send_new(ctx, user)
            }
            // A think time that ends after the end of arrivals: the user stops.
            Msg::Client(ClientTimer::User(_)) => {}
            Msg::Response(req, status) => self.on_response(ctx, req, status),
            Msg::Client(ClientTimer::Deadline) => self.on_deadline(ctx),
            Msg::Client(ClientTimer::Retry(req)) => self.dispatch(ctx, req),
            other => unexpected("client", other),
        }
    }

    /// Starts a new request of `user` now: builds its first attempt and sends it.
    ///
    /// Left a call: `#[inline(always)]` (inlined at its two callers) was tried, M/M/1 250 s
    /// 321.2 -> 322.0 M instructions.
    pub(super) fn send_new(&mut self, ctx: &mut Ctx<'_>, user: u32) {
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
        if let Some(b) = self.browser.as_mut().filter(|_| op == Op::Read) {
            if b.lookup(user, key, now, ctx.shared.stats.counts(now)) {
                // Served by the browser: no request leaves the client.
                let mut r = Request::new(self.next_seq, ctx.me(), user, key, op, now);
                r.response_bytes = self.response_bytes;
                if traced {
                    ctx.shared.trace.start(&mut r, now);
                }
                trace::client_phase(ctx, r.trace, "browser cache hit");
                self.finish(ctx, &r, Outcome::Ok);
                return;
            }
        }
        let low_priority = self.low_priority > 0.0 && ctx.rng.random::<f64>() < self.low_priority;
        // Built here, its address never taken before it is stored (the browser's hit
        // above builds its own), and stored at one place (`RequestTable::insert`): its
        // fields go straight into the table's slot. Built before the browser's look-up, it
        // was assembled on the stack in fields of 1 to 8 bytes and copied in 16-byte pieces
        // each spanning several of those stores, which store-to-load forwarding cannot
        // serve (M/M/1 250 s: 321.2 -> 320.8 M instructions; 5 M customers, no timeout,
        // taskset -c 0: 0.61-0.62 -> 0.58-0.61 CPU s; outputs byte-identical).
        let mut r = Request::new(self.next_seq, ctx.me(), user, key, op, now);
        r.response_bytes = self.response_bytes;
        r.low_priority = low_priority;
        // This client is the first caller on the return path, put there as the attempt is
        // built: `send_called` then sends it without looking it up again to push it.
        r.push_caller(ctx.me());
        // The attempt goes into the table whole and is traced there in place: lent to
        // `trace.start` on the stack first, it was patched in memory and then copied in
        // pieces of another width, stalling store-to-load forwarding (about 6% of the M/M/1
        // benchmark).
        let id = ctx.shared.reqs.insert(r);
        let mut trace_no = 0;
        if traced {
            if let Some(r) = ctx.shared.reqs.get_mut(id) {
                ctx.shared.trace.start(r, now);
                trace_no = r.trace;
            }
        }
        // What `dispatch` does for a retry, known here without reading the attempt back:
        // it was sent now (`sent` is `now` already), and first sent now.
        if ctx.shared.stats.counts(now) {
            ctx.shared.stats.attempts += 1;
        }
        trace::client_phase(ctx, trace_no, "attempt");
        self.send_attempt(ctx, id, true);
    }

    /// Sends attempt `id` (already in the request table) to a target.
    pub(super) fn dispatch(&mut self, ctx: &mut Ctx<'_>, id: ReqId) {
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
        self.send_attempt(ctx, id, false);
    }

    /// Picks the target of attempt `id`, arms its deadline and sends it; `called`: this
    /// client is on its return path already ([`Request::push_caller`]).
    #[inline(always)]
    fn send_attempt(&mut self, ctx: &mut Ctx<'_>, id: ReqId, called: bool) {
        let to = if let Some(g) = self.geo.as_mut() {
            let counted = ctx.shared.stats.counts(ctx.now());
            g.target(ctx, counted).unwrap_or(0)
        } else {
            let active = match self.target_service {
                Some(s) => ctx.shared.active_instances(s),
                None => &[],
            };
            match (active.len(), self.targets.len()) {
                (1, _) => active[0],
                (n, _) if n > 1 => active[ctx.rng.random_range(0..n)],
                (_, 1) => self.targets[0],
                (_, n) => self.targets[ctx.rng.random_range(0..n)],
            }
        };
        self.arm_deadline(ctx, id);
        if called {
            send_called(ctx, to, id);
        } else {
            call(ctx, to, id);
        }
    }

    /// Sets attempt `id`'s deadline (with `timeout`).
    #[inline(always)]
    fn arm_deadline(&mut self, ctx: &mut Ctx<'_>, id: ReqId) {
        if let Some(t) = self.timeout {
            // Stamped here, where the timer used to be set, so a deadline that is reached
            // fires in the same (time, seq) order as that timer would have.
            let d = ctx.deadline(t);
            let reqs = &ctx.shared.reqs;
            if let Some(d) = self.deadlines.push(d, id, |r| pending(reqs, *r)) {
                ctx.wake_at(d, Msg::Client(ClientTimer::Deadline));
            }
        }
    }

    /// Schedules a retry of `r` if the policy and the budget allow one.
    pub(super) fn try_retry(&mut self, ctx: &mut Ctx<'_>, r: &Request) -> bool {
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
            ctx.timer(wait, Msg::Client(ClientTimer::Retry(id)));
        }
        true
    }

    #[inline(always)]
    pub(super) fn on_response(&mut self, ctx: &mut Ctx<'_>, req: ReqId, status: Status) {
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
    pub(super) fn on_deadline(&mut self, ctx: &mut Ctx<'_>) {
        let reqs = &ctx.shared.reqs;
        if let Some(req) = self.deadlines.fire(|r| pending(reqs, *r)) {
            self.on_timeout(ctx, req);
        }
        let reqs = &ctx.shared.reqs;
        if let Some(d) = self.deadlines.rearm(|r| pending(reqs, *r)) {
            ctx.wake_at(d, Msg::Client(ClientTimer::Deadline));
        }
    }

    /// Deadline entries held (stale ones not yet dropped included): at most about twice
    /// the attempts in flight.
    pub fn deadlines_held(&self) -> usize {
        self.deadlines.len()
    }

    pub(super) fn on_timeout(&mut self, ctx: &mut Ctx<'_>, req: ReqId) {
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

    /// Ends the logical request of attempt `r` with `outcome`. `#[inline]`: a wrapper of
    /// [`Self::close`] that cost a call frame per answer (see `DbNode::disk` for figures).
    #[inline]
    pub(super) fn finish(&mut self, ctx: &mut Ctx<'_>, r: &Request, outcome: Outcome) {
        self.close(ctx, r.first_sent, r.op, r.user, r.trace, outcome);
    }

    /// The logical request (first sent at `first_sent`) ended with `outcome`.
    #[inline(always)]
    pub(super) fn close(
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
        if let Some(g) = self.geo.as_mut() {
            if ctx.shared.stats.counts(first_sent) {
                g.record(first_sent, now, outcome == Outcome::Ok);
            }
        }
        trace::client_done(ctx, traced, outcome.label());
        if matches!(self.process, Process::Closed) {
            let think = self
                .think
                .as_ref()
                .map_or(SimTime::ZERO, |d| d.sample(ctx.rng));
            if now + think < self.end {
                ctx.timer(think, Msg::Client(ClientTimer::User(user)));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The fast thinning decisions are the formula's, for candidates far from the rate and
    /// right at it (inside the band, next to the rate's own float), for a day, a flat day,
    /// a falling one and a short period with many cycles.
    #[test]
    fn diurnal_fast_decisions_are_the_formulas() {
        let mut rng = dssim_engine::rng::stream(13, "diurnal");
        let day = 86_400e9;
        let cases = [
            (300.0 / 1e9, 5_800.0 / 1e9, day),
            (72.0 / 1e9, 1_389.0 / 1e9, day),
            (5e-6, 5e-6, day),
            (5_800.0 / 1e9, 300.0 / 1e9, day),
            (1e-6, 3e-6, 7e9),
            (1e-6, 3e-6, 1.0),
        ];
        let mut in_band = 0;
        for (base, peak, period) in cases {
            let mut d = Diurnal::new(base, peak, period);
            let top = d.top();
            let mut t = SimTime::ZERO;
            for i in 0..400_000u64 {
                // Mostly forward in small steps (as arrivals go), sometimes a jump anywhere.
                t = if i % 1_000 == 999 {
                    SimTime(rng.random_range(0..(3.0 * day) as u64))
                } else {
                    t + SimTime::from_nanos_f64(rng.random::<f64>() * 4e6)
                };
                let exact = d.rate(t);
                // The band's edges as they stand at `t` (the first call refreshes them).
                d.keep(t, 0.0);
                let x = match i % 6 {
                    0 => rng.random::<f64>() * top,
                    1 => exact,
                    2 => exact.next_up(),
                    3 => d.lo.next_down(),
                    4 => d.hi,
                    _ => exact * (1.0 + (rng.random::<f64>() - 0.5) * 1e-6),
                };
                if x >= d.lo && x < d.hi && t.0.wrapping_sub(d.t0) <= d.window {
                    in_band += 1;
                }
                assert_eq!(d.keep(t, x), x < exact, "t {t:?} x {x} rate {exact}");
                let y = exact.next_down();
                assert_eq!(d.keep(t, y), y < exact);
            }
        }
        assert!(in_band > 1_000_000, "{in_band}");
    }
}

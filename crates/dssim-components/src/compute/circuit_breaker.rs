//! Circuit breakers: stop calling a dependency that keeps failing, and try it again later.
//!
//! ```text
//!                    +------------------- cb --------------------+
//!   caller --call--->| closed:    pass, count failures in a row  |--call--> target
//!                    | open:      answer Error at once           |          (service or
//!                    | half-open: pass `half_open_probes` trials |           load balancer)
//!                    +-------------------------------------------+
//! ```
//!
//! A `[[circuit_breakers]]` entry stands in front of a service or a load balancer; callers
//! (a service's `calls`, or a client) address the breaker by its name. It is a
//! queueing-free proxy (it adds no time of its own) with three states:
//!
//! - **closed**: every call passes. A call that fails (an error, a shed or dropped answer,
//!   or no answer within `timeout`) adds one to a count of failures in a row; a success
//!   sets it back to zero. At `failure_threshold` failures in a row the breaker *opens*.
//! - **open**: every call is answered `Error` at once (counted as rejected): callers stop
//!   waiting on a dependency that is not answering, and the dependency gets no load.
//!   After `reset_timeout` (checked when the next call arrives) it goes *half-open*.
//! - **half-open**: `half_open_probes` trial calls pass; the others are rejected. The
//!   first trial that fails opens it again (for another `reset_timeout`); when every trial
//!   has succeeded it *closes*. Answers to calls let through before a change of state
//!   count for nothing (the state they would judge is gone).
//!
//! With a `timeout` the breaker also bounds how long a caller waits: a call not answered
//! in time is answered `Error` then and counts as a failure; its late answer is discarded.
//! Calls travel as child requests ([`crate::calls::child_request`]) so that a timed-out
//! call can be abandoned.
//!
//! Measures (components.csv): `NAME` (kind `circuit_breaker`: calls arrived, share of the
//! window it spent open as utilization, mean and p99 of the calls it let through, share
//! of calls it let through as `hit_ratio`), then counts as `requests` of `NAME.rejected`
//! (answered at once while open or half-open), `NAME.failures` (calls let through that
//! failed, timeouts included), `NAME.timeouts` and `NAME.trips` (times it opened).

use dssim_engine::{Histogram, SimTime, TimeWeighted};
use serde::{Deserialize, Serialize};

use crate::calls::{child_request, CallTarget};
use crate::node::{unexpected, Ctx, Msg};
use crate::request::{call, reply, ReqId, Status};
use crate::trace;
use crate::units::Dur;
use crate::ConfigError;

/// A `[[circuit_breakers]]` entry.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CircuitBreakerConfig {
    /// Unique name; a service's `calls` (or a client's `target`) address the breaker by it.
    pub name: String,
    /// The service or load balancer it protects: calls that pass go there.
    pub target: String,
    /// Failures in a row, while closed, that open the breaker.
    #[serde(default = "default_threshold")]
    pub failure_threshold: u32,
    /// How long the breaker stays open, answering every call `Error` at once, before it
    /// lets trial calls through (half-open).
    #[serde(default = "default_reset")]
    pub reset_timeout: Dur,
    /// Trial calls let through while half-open: the first that fails opens the breaker
    /// again, and it closes when all of them have succeeded.
    #[serde(default = "default_probes")]
    pub half_open_probes: u32,
    /// A call not answered by then is answered `Error` and counts as a failure; forever
    /// when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Dur>,
    /// Region for network latency (put it in its callers' region: in a real system the
    /// breaker is a library inside the caller).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
}

fn default_threshold() -> u32 {
    5
}
fn default_reset() -> Dur {
    Dur(SimTime::from_secs(5))
}
fn default_probes() -> u32 {
    1
}

impl CircuitBreakerConfig {
    /// Checks its own values (at path `p`); the target is checked with the whole model.
    pub fn validate(&self, p: &str, errs: &mut Vec<ConfigError>) {
        if self.failure_threshold == 0 {
            errs.push(ConfigError::new(
                format!("{p}.failure_threshold"),
                "must be at least 1 (failures in a row that open the breaker)",
            ));
        }
        if self.half_open_probes == 0 {
            errs.push(ConfigError::new(
                format!("{p}.half_open_probes"),
                "must be at least 1: with no trial call a half-open breaker could never close",
            ));
        }
        if self.reset_timeout.0 == SimTime::ZERO {
            errs.push(ConfigError::new(
                format!("{p}.reset_timeout"),
                "must be longer than zero (time open before trial calls)",
            ));
        }
        if self.timeout.is_some_and(|t| t.0 == SimTime::ZERO) {
            errs.push(ConfigError::new(
                format!("{p}.timeout"),
                "must be longer than zero (leave it out to wait forever)",
            ));
        }
    }
}

/// The three states of a breaker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BreakerPhase {
    /// Calls pass; failures in a row are counted.
    Closed,
    /// Calls are answered `Error` at once.
    Open,
    /// A few trial calls pass.
    HalfOpen,
}

/// The state machine of a breaker, apart from any actor (unit-tested on its own).
#[derive(Clone, Debug)]
pub struct BreakerState {
    threshold: u32,
    reset: SimTime,
    probes: u32,
    /// The state now.
    pub phase: BreakerPhase,
    /// Failures in a row (closed).
    failures: u32,
    opened_at: SimTime,
    probes_sent: u32,
    probes_ok: u32,
    /// Changes at every change of state; a call carries the epoch it was let through in.
    pub epoch: u32,
    /// Times it opened.
    pub trips: u64,
}

impl BreakerState {
    /// A closed breaker.
    pub fn new(threshold: u32, reset: SimTime, probes: u32) -> Self {
        BreakerState {
            threshold: threshold.max(1),
            reset,
            probes: probes.max(1),
            phase: BreakerPhase::Closed,
            failures: 0,
            opened_at: SimTime::ZERO,
            probes_sent: 0,
            probes_ok: 0,
            epoch: 0,
            trips: 0,
        }
    }

    fn enter(&mut self, phase: BreakerPhase, now: SimTime) {
        self.phase = phase;
        self.epoch = self.epoch.wrapping_add(1);
        self.failures = 0;
        self.probes_sent = 0;
        self.probes_ok = 0;
        if phase == BreakerPhase::Open {
            self.opened_at = now;
            self.trips += 1;
        }
    }

    /// A call arrives at `now`: the epoch to let it through in, or `None` to reject it.
    pub fn admit(&mut self, now: SimTime) -> Option<u32> {
        if self.phase == BreakerPhase::Open && now >= self.opened_at + self.reset {
            self.enter(BreakerPhase::HalfOpen, now);
        }
        match self.phase {
            BreakerPhase::Closed => Some(self.epoch),
            BreakerPhase::Open => None,
            BreakerPhase::HalfOpen if self.probes_sent < self.probes => {
                self.probes_sent += 1;
                Some(self.epoch)
            }
            BreakerPhase::HalfOpen => None,
        }
    }

    /// The outcome of a call let through in `epoch`, known at `now`.
    pub fn record(&mut self, now: SimTime, epoch: u32, ok: bool) {
        if epoch != self.epoch {
            return;
        }
        match (self.phase, ok) {
            (BreakerPhase::Closed, true) => self.failures = 0,
            (BreakerPhase::Closed, false) => {
                self.failures += 1;
                if self.failures >= self.threshold {
                    self.enter(BreakerPhase::Open, now);
                }
            }
            (BreakerPhase::HalfOpen, false) => self.enter(BreakerPhase::Open, now),
            (BreakerPhase::HalfOpen, true) => {
                self.probes_ok += 1;
                if self.probes_ok >= self.probes {
                    self.enter(BreakerPhase::Closed, now);
                }
            }
            (BreakerPhase::Open, _) => {}
        }
    }
}

/// A breaker's own timers ([`Msg::Breaker`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BreakerTimer {
    /// The timeout of the call travelling as this child request.
    Timeout(ReqId),
}

/// A breaker's measurements (calls counted when they arrive after warm-up).
#[derive(Debug, Default)]
pub struct BreakerStats {
    /// Calls that arrived.
    pub requests: u64,
    /// Calls let through.
    pub passed: u64,
    /// Calls answered `Error` at once (open, or half-open with its trials out).
    pub rejected: u64,
    /// Calls let through that failed (timeouts included).
    pub failures: u64,
    /// Calls let through that reached `timeout`.
    pub timeouts: u64,
    /// Time of the calls let through, to their answer or timeout.
    pub latency: Histogram,
    /// 1 while open, 0 otherwise (half-open counts as closed), over time.
    pub open: TimeWeighted,
}

#[derive(Clone, Copy, Debug)]
struct Out {
    child: ReqId,
    parent: ReqId,
    epoch: u32,
    sent: SimTime,
}

/// A circuit breaker in a run.
#[derive(Debug)]
pub struct CircuitBreaker {
    /// Index of its entry in the model.
    pub index: usize,
    /// Its state machine.
    pub state: BreakerState,
    target: CallTarget,
    timeout: Option<SimTime>,
    out: Vec<Out>,
    trips_before: u64,
    /// Measurements.
    pub stats: BreakerStats,
}

impl CircuitBreaker {
    /// A closed breaker sending what it lets through to `target`.
    pub fn new(index: usize, cfg: &CircuitBreakerConfig, target: CallTarget) -> Self {
        CircuitBreaker {
            index,
            state: BreakerState::new(
                cfg.failure_threshold,
                cfg.reset_timeout.0,
                cfg.half_open_probes,
            ),
            target,
            timeout: cfg.timeout.map(|d| d.0),
            out: Vec::new(),
            trips_before: 0,
            stats: BreakerStats::default(),
        }
    }

    /// Times it opened in the measured window.
    pub fn trips(&self) -> u64 {
        self.state.trips - self.trips_before
    }

    /// Opens the measured window at `t`.
    pub fn reset_window(&mut self, t: SimTime) {
        self.stats.open.reset(t);
        self.trips_before = self.state.trips;
    }

    fn counted(ctx: &Ctx<'_>, t: SimTime) -> bool {
        t >= ctx.shared.stats.warmup
    }

    fn set_open_gauge(&mut self, now: SimTime) {
        let open = f64::from(u8::from(self.state.phase == BreakerPhase::Open));
        self.stats.open.set(now, open);
    }

    /// Handles one message.
    pub fn handle(&mut self, msg: Msg, ctx: &mut Ctx<'_>) {
        match msg {
            Msg::Request(req) => self.arrive(ctx, req),
            Msg::Response(child, status) => self.answered(ctx, child, status),
            Msg::Breaker(BreakerTimer::Timeout(child)) => self.timed_out(ctx, child),
            other => unexpected("circuit breaker", other),
        }
    }

    fn arrive(&mut self, ctx: &mut Ctx<'_>, req: ReqId) {
        let now = ctx.now();
        let counted = Self::counted(ctx, now);
        if counted {
            self.stats.requests += 1;
        }
        let admitted = self.state.admit(now);
        self.set_open_gauge(now);
        let Some(epoch) = admitted else {
            if counted {
                self.stats.rejected += 1;
            }
            trace::phase(ctx, req, "rejected (open)");
            reply(ctx, req, Status::Error);
            return;
        };
        let (Some(to), Some(child)) = (self.target.pick(ctx), child_request(ctx, req)) else {
            reply(ctx, req, Status::Error);
            return;
        };
        if counted {
            self.stats.passed += 1;
        }
        self.out.push(Out {
            child,
            parent: req,
            epoch,
            sent: now,
        });
        if let Some(t) = self.timeout {
            ctx.timer(t, Msg::Breaker(BreakerTimer::Timeout(child)));
        }
        trace::phase(ctx, req, "call");
        call(ctx, to, child);
    }

    fn take(&mut self, child: ReqId) -> Option<Out> {
        let i = self.out.iter().position(|o| o.child == child)?;
        Some(self.out.remove(i))
    }

    fn answered(&mut self, ctx: &mut Ctx<'_>, child: ReqId, status: Status) {
        let now = ctx.now();
        let Some(o) = self.take(child) else {
            // The late answer of a call that timed out.
            ctx.shared.reqs.free(child);
            return;
        };
        ctx.shared.reqs.free(child);
        let ok = status == Status::Ok;
        self.state.record(now, o.epoch, ok);
        self.set_open_gauge(now);
        if Self::counted(ctx, o.sent) {
            self.stats.latency.record(now - o.sent);
            self.stats.failures += u64::from(!ok);
        }
        reply(ctx, o.parent, status);
    }

    fn timed_out(&mut self, ctx: &mut Ctx<'_>, child: ReqId) {
        let Some(o) = self.take(child) else {
            return; // answered in time
        };
        let now = ctx.now();
        self.state.record(now, o.epoch, false);
        self.set_open_gauge(now);
        if Self::counted(ctx, o.sent) {
            self.stats.latency.record(now - o.sent);
            self.stats.failures += 1;
            self.stats.timeouts += 1;
        }
        reply(ctx, o.parent, Status::Error);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> SimTime {
        SimTime::from_millis(n)
    }

    #[test]
    fn closed_breaker_opens_at_the_threshold_of_failures_in_a_row() {
        let mut b = BreakerState::new(3, ms(1000), 1);
        for t in 0..2 {
            let e = b.admit(ms(t)).unwrap();
            b.record(ms(t), e, false);
        }
        // A success in between starts the count again.
        let e = b.admit(ms(2)).unwrap();
        b.record(ms(2), e, true);
        for t in 3..5 {
            let e = b.admit(ms(t)).unwrap();
            b.record(ms(t), e, false);
            assert_eq!(b.phase, BreakerPhase::Closed);
        }
        let e = b.admit(ms(5)).unwrap();
        b.record(ms(5), e, false);
        assert_eq!(b.phase, BreakerPhase::Open);
        assert_eq!(b.trips, 1);
    }

    #[test]
    fn open_breaker_rejects_until_the_reset_timeout_then_lets_probes_through() {
        let mut b = BreakerState::new(1, ms(1000), 2);
        let e = b.admit(ms(0)).unwrap();
        b.record(ms(10), e, false);
        assert_eq!(b.phase, BreakerPhase::Open);
        assert_eq!(b.admit(ms(500)), None);
        assert_eq!(
            b.admit(ms(1009)),
            None,
            "open for reset_timeout from the trip"
        );
        let p1 = b.admit(ms(1010)).expect("first trial");
        assert_eq!(b.phase, BreakerPhase::HalfOpen);
        let p2 = b.admit(ms(1011)).expect("second trial");
        assert_eq!(b.admit(ms(1012)), None, "only half_open_probes trials");
        b.record(ms(1020), p1, true);
        assert_eq!(
            b.phase,
            BreakerPhase::HalfOpen,
            "one trial of two succeeded"
        );
        b.record(ms(1021), p2, true);
        assert_eq!(b.phase, BreakerPhase::Closed);
        assert!(b.admit(ms(1022)).is_some());
    }

    #[test]
    fn a_failed_probe_opens_the_breaker_again_for_a_full_reset_timeout() {
        let mut b = BreakerState::new(1, ms(1000), 1);
        let e = b.admit(ms(0)).unwrap();
        b.record(ms(0), e, false);
        let p = b.admit(ms(1000)).unwrap();
        b.record(ms(1200), p, false);
        assert_eq!(b.phase, BreakerPhase::Open);
        assert_eq!(b.trips, 2);
        assert_eq!(b.admit(ms(2199)), None);
        assert!(b.admit(ms(2200)).is_some());
    }

    #[test]
    fn answers_from_an_earlier_state_count_for_nothing() {
        let mut b = BreakerState::new(2, ms(1000), 1);
        let old = b.admit(ms(0)).unwrap();
        let e1 = b.admit(ms(1)).unwrap();
        let e2 = b.admit(ms(2)).unwrap();
        b.record(ms(3), e1, false);
        b.record(ms(4), e2, false);
        assert_eq!(b.phase, BreakerPhase::Open);
        let p = b.admit(ms(1004)).unwrap();
        // The call let through while closed fails late: the trial decides, not it.
        b.record(ms(1005), old, false);
        assert_eq!(b.phase, BreakerPhase::HalfOpen);
        b.record(ms(1006), p, true);
        assert_eq!(b.phase, BreakerPhase::Closed);
    }
}

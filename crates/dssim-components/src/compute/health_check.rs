//! Active health checks, shared by load balancers (over their backends) and geo routers
//! (over their regional entries): a round of probes every `interval`, judged `timeout`
//! later; a target leaves the rotation after `unhealthy` failed rounds in a row and comes
//! back after `healthy` answered ones.
//!
//! The owner sends the probes and keeps the timers; this is the bookkeeping of one round
//! and the judgement, in one place.

use dssim_engine::SimTime;

use crate::load_balancer::HealthCheckConfig;

/// The probe rounds' state over `n` targets.
#[derive(Debug)]
pub struct HealthChecker {
    /// Time between probe rounds.
    pub interval: SimTime,
    /// How long a round waits for answers.
    pub timeout: SimTime,
    healthy: u32,
    unhealthy: u32,
    round: u32,
    open: bool,
    acked: Vec<bool>,
    successes: Vec<u32>,
    failures: Vec<u32>,
}

impl HealthChecker {
    /// Checks over `n` targets as `cfg` says.
    pub fn new(cfg: &HealthCheckConfig, n: usize) -> Self {
        HealthChecker {
            interval: cfg.interval.0,
            timeout: cfg.timeout.0,
            healthy: cfg.healthy.max(1),
            unhealthy: cfg.unhealthy.max(1),
            round: 0,
            open: false,
            acked: vec![false; n],
            successes: vec![0; n],
            failures: vec![0; n],
        }
    }

    /// Opens a new round and returns its number (carried by the probes).
    pub fn open_round(&mut self) -> u32 {
        self.round = self.round.wrapping_add(1);
        self.open = true;
        self.acked.fill(false);
        self.round
    }

    /// Target `target` answered the probe of round `round` (late answers do not count).
    pub fn ack(&mut self, target: u32, round: u32) {
        if self.open && self.round == round {
            if let Some(a) = self.acked.get_mut(target as usize) {
                *a = true;
            }
        }
    }

    /// Closes the round and judges every target against `up` (in rotation or not),
    /// flipping the ones whose run of answers or failures reached its threshold; calls
    /// `changed(target, now_up)` for each, in target order.
    pub fn close_round(&mut self, up: &mut [bool], mut changed: impl FnMut(usize, bool)) {
        self.open = false;
        for (t, u) in up.iter_mut().enumerate() {
            let flip = if self.acked[t] {
                self.successes[t] += 1;
                self.failures[t] = 0;
                !*u && self.successes[t] >= self.healthy
            } else {
                self.failures[t] += 1;
                self.successes[t] = 0;
                *u && self.failures[t] >= self.unhealthy
            };
            if flip {
                *u = !*u;
                changed(t, *u);
            }
        }
    }
}

//! Feature flags with a kill switch: an expensive feature a share of requests uses, turned
//! off under load (or at a set time) and back on when the load has gone.
//!
//! ```toml
//! [[services]]
//! name = "app"
//! service_time = "exp(4ms)"
//! feature = { share = 0.3, extra_time = "exp(12ms)", kill_above = 0.85, restore_below = 0.5, check = "1s" }
//! ```
//!
//! A share `share` of the requests use the feature (recommendations, a personalised
//! ranking, analytics): while the flag is on, their CPU time is the service time plus
//! `extra_time` (divided by the instance's speed like the service time). The flag is one
//! per service, as a flag service's: every `check` it reads the service's utilization over
//! the interval just past (busy workers / workers of the instances serving) and turns off
//! when that is at or above `kill_above`; it turns back on once the utilization is below
//! `restore_below` (never when absent: a kill is for good). `off_at` turns it off at a
//! time, for good (an operator's kill switch). While off, requests that would use the
//! feature are served without it: they succeed, at the price of the feature.
//! `flag = "on"` or `"off"` pins the flag (no kill switch; the two baselines a kill switch
//! sits between); `"auto"` (the default) follows `kill_above`, `restore_below` and `off_at`.
//!
//! Turning a feature off takes its work away, so the utilization falls: with
//! `restore_below` close to `kill_above` the flag flaps (on, overload, off, idle, on...).
//!
//! Measures (components.csv row `NAME.feature`, kind `feature_flag`): requests that asked
//! for the feature in the window, the share of them served with it (`hit_ratio`), and the
//! share of the window the flag was off (`utilization`).

use dssim_engine::{SimTime, TimeWeighted};
use serde::{Deserialize, Serialize};

use crate::units::{DistSpec, Dur};
use crate::ConfigError;

/// How the flag is set.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FlagMode {
    /// The kill switch decides (`kill_above`, `restore_below`, `off_at`).
    #[default]
    Auto,
    /// Always on: no kill switch.
    On,
    /// Always off: the feature is never served.
    Off,
}

/// `feature = { share, extra_time, flag, kill_above, restore_below, check, off_at }`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeatureConfig {
    /// Share of the requests that use the feature (in (0, 1]).
    pub share: f64,
    /// CPU time the feature adds to a request that uses it, at speed 1.0.
    pub extra_time: DistSpec,
    /// `auto`: the kill switch decides; `on` or `off`: the flag is pinned.
    #[serde(default)]
    pub flag: FlagMode,
    /// The flag turns off when the service's utilization over the last `check` interval
    /// is at or above this (in (0, 1]); no automatic kill when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kill_above: Option<f64>,
    /// The flag turns back on when the utilization over the last interval is below this
    /// (less than `kill_above`); a kill is for good when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore_below: Option<f64>,
    /// How often the flag reads the utilization.
    #[serde(default = "one_second")]
    pub check: Dur,
    /// The flag is turned off at this time, for good; never when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub off_at: Option<Dur>,
}

fn one_second() -> Dur {
    Dur(SimTime::from_secs(1))
}

impl FeatureConfig {
    /// Checks the entry; `p` is its path (`services.app.feature`).
    pub fn validate(&self, p: &str, errs: &mut Vec<ConfigError>) {
        if !(self.share > 0.0 && self.share <= 1.0) {
            errs.push(ConfigError::new(
                format!("{p}.share"),
                format!("a share of requests in (0, 1]; found {}", self.share),
            ));
        }
        if self.check.0 == SimTime::ZERO {
            errs.push(ConfigError::new(
                format!("{p}.check"),
                "must be longer than zero",
            ));
        }
        for (field, v) in [
            ("kill_above", self.kill_above),
            ("restore_below", self.restore_below),
        ] {
            if let Some(x) = v {
                if !(x > 0.0 && x <= 1.0) {
                    errs.push(ConfigError::new(
                        format!("{p}.{field}"),
                        format!("a utilization in (0, 1]; found {x}"),
                    ));
                }
            }
        }
        match (self.kill_above, self.restore_below) {
            (Some(k), Some(r)) if r >= k => errs.push(ConfigError::new(
                format!("{p}.restore_below"),
                format!(
                    "must be below `kill_above` ({k}), or the flag would turn on as soon as it turns off; found {r}"
                ),
            )),
            (None, Some(_)) => errs.push(ConfigError::new(
                format!("{p}.restore_below"),
                "needs `kill_above`: only an automatic kill is restored",
            )),
            _ => {}
        }
    }
}

/// A service's flag at run time, in [`crate::compute::ServiceState::feature`].
#[derive(Debug)]
pub struct FeatureState {
    /// Whether the feature is on now.
    pub on: bool,
    /// Share of requests that use it.
    pub share: f64,
    kill_above: Option<f64>,
    restore_below: Option<f64>,
    check: SimTime,
    off_at: Option<SimTime>,
    next_check: SimTime,
    /// Busy workers of the service since the last check.
    pub busy: TimeWeighted,
    /// 1 while the flag is off (reset when the window opens).
    pub off: TimeWeighted,
    /// Requests that asked for the feature (measured window).
    pub wanted: u64,
    /// Of which served with it.
    pub served: u64,
    /// Times the flag turned off (measured window).
    pub kills: u64,
}

impl FeatureState {
    /// The flag of `cfg`, on at time zero.
    pub fn new(cfg: &FeatureConfig) -> Self {
        let auto = cfg.flag == FlagMode::Auto;
        let mut off = TimeWeighted::default();
        off.set(
            SimTime::ZERO,
            if cfg.flag == FlagMode::Off { 1.0 } else { 0.0 },
        );
        FeatureState {
            on: cfg.flag != FlagMode::Off,
            share: cfg.share,
            kill_above: cfg.kill_above.filter(|_| auto),
            restore_below: cfg.restore_below.filter(|_| auto),
            check: cfg.check.0,
            off_at: cfg.off_at.map(|d| d.0).filter(|_| auto),
            next_check: cfg.check.0,
            busy: TimeWeighted::default(),
            off,
            wanted: 0,
            served: 0,
            kills: 0,
        }
    }

    /// Whether the flag reads the utilization (the service must keep `busy` up to date).
    pub fn watches_load(&self) -> bool {
        self.kill_above.is_some()
    }

    /// Brings the flag up to `now`: the checks due since the last one (each reads the
    /// utilization over the interval just past, `workers` being the workers of the
    /// instances serving), and the timed kill.
    pub fn update(&mut self, now: SimTime, workers: f64, counted: bool) {
        if let Some(t) = self.off_at {
            if now >= t {
                self.off_at = None;
                self.restore_below = None;
                self.kill_above = None;
                self.turn(false, now, counted);
            }
        }
        let Some(kill) = self.kill_above else {
            return;
        };
        if now < self.next_check {
            return;
        }
        let util = if workers > 0.0 {
            self.busy.mean(now) / workers
        } else {
            0.0
        };
        self.busy.reset(now);
        while self.next_check <= now {
            self.next_check += self.check;
        }
        if self.on && util >= kill {
            self.turn(false, now, counted);
        } else if !self.on && self.restore_below.is_some_and(|r| util < r) {
            self.turn(true, now, counted);
        }
    }

    fn turn(&mut self, on: bool, now: SimTime, counted: bool) {
        if self.on == on {
            return;
        }
        self.on = on;
        self.off.set(now, if on { 0.0 } else { 1.0 });
        if !on && counted {
            self.kills += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flag(kill: Option<f64>, restore: Option<f64>, off_at: Option<u64>) -> FeatureState {
        FeatureState::new(&FeatureConfig {
            share: 0.5,
            extra_time: DistSpec(dssim_engine::Dist::Const(1e6)),
            flag: FlagMode::Auto,
            kill_above: kill,
            restore_below: restore,
            check: Dur(SimTime::from_secs(1)),
            off_at: off_at.map(|s| Dur(SimTime::from_secs(s))),
        })
    }

    #[test]
    fn kill_switch_turns_off_at_the_threshold_and_back_below_the_restore_level() {
        let mut f = flag(Some(0.8), Some(0.5), None);
        // 10 workers, 9 busy for the first second: 0.9 >= 0.8, off at the check.
        f.busy.set(SimTime::ZERO, 9.0);
        f.update(SimTime::from_millis(500), 10.0, true);
        assert!(f.on, "no check before 1 s");
        f.update(SimTime::from_secs(1), 10.0, true);
        assert!(!f.on);
        // 6 busy: 0.6 is not below 0.5, stays off; 4 busy: back on.
        f.busy.set(SimTime::from_secs(1), 6.0);
        f.update(SimTime::from_secs(2), 10.0, true);
        assert!(!f.on);
        f.busy.set(SimTime::from_secs(2), 4.0);
        f.update(SimTime::from_secs(3), 10.0, true);
        assert!(f.on);
        assert_eq!(f.kills, 1);
        // Off for 2 s of 3.
        assert!((f.off.mean(SimTime::from_secs(3)) - 2.0 / 3.0).abs() < 1e-12);
    }

    #[test]
    fn a_kill_without_restore_is_for_good_and_off_at_wins() {
        let mut f = flag(Some(0.8), None, None);
        f.busy.set(SimTime::ZERO, 10.0);
        f.update(SimTime::from_secs(1), 10.0, true);
        f.busy.set(SimTime::from_secs(1), 0.0);
        f.update(SimTime::from_secs(5), 10.0, true);
        assert!(!f.on);
        let mut g = flag(None, None, Some(30));
        g.update(SimTime::from_secs(29), 10.0, true);
        assert!(g.on);
        g.update(SimTime::from_secs(30), 10.0, true);
        assert!(!g.on);
    }
}

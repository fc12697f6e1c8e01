//! Faults: instances killed and recovered, or slowed down (gray failures), at set times.
//!
//! ```toml
//! [[faults]]
//! kill = "app.2"        # an instance (service.index), or a service: all its instances
//! at = "300s"
//! recover = "360s"      # optional: the instance restarts empty at this time
//!
//! [[faults]]
//! slow = "app.1"        # a gray failure: alive, answers health checks, but slow
//! factor = 3.0          # service times × 3
//! at = "120s"
//! until = "180s"        # optional: back to normal speed
//! ```
//!
//! A killed instance refuses what reaches it (an immediate error, like a refused
//! connection), fails the requests it held (queued and in service; those waiting on the
//! data tier fail when that answer comes back), stops answering health probes, and leaves
//! the `instances` gauge. Faults are messages scheduled to the instances when the model is
//! built; the instance side lives in [`crate::service`].
//!
//! Measures: nothing of its own; the errors, latency and instance count it causes show in
//! runs.csv and the time series.

use dssim_engine::SimTime;
use serde::{Deserialize, Serialize};

use crate::units::Dur;
use crate::ConfigError;

/// What a fault does to an instance.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum FaultAction {
    /// The instance dies.
    Kill,
    /// The instance restarts, empty.
    Recover,
    /// Service times are multiplied by this factor from now on (1.0: normal).
    Slow(f32),
}

/// A `[[faults]]` entry: either `kill` (with optional `recover`) or `slow` (with `factor`
/// and optional `until`).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultConfig {
    /// The instance (`app.2`) or service (`app`) to kill.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kill: Option<String>,
    /// The instance or service to slow down.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slow: Option<String>,
    /// When the fault starts.
    pub at: Dur,
    /// When a killed instance comes back; never when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recover: Option<Dur>,
    /// Service-time multiplier of a slow instance (3.0: three times slower).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub factor: Option<f64>,
    /// When a slow instance is back to normal; never when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<Dur>,
}

impl FaultConfig {
    /// The name this fault targets.
    pub fn target(&self) -> Option<&str> {
        self.kill.as_deref().or(self.slow.as_deref())
    }

    /// Checks the entry; `p` is its path (`faults.0`) and `is_instance_or_service` tells
    /// whether a name is an instance or a service of the model.
    pub fn validate(
        &self,
        p: &str,
        is_instance_or_service: impl Fn(&str) -> bool,
        valid: &[String],
        errs: &mut Vec<ConfigError>,
    ) {
        match (&self.kill, &self.slow) {
            (Some(_), Some(_)) => errs.push(ConfigError::new(
                p.to_string(),
                "a fault either kills (`kill`) or slows (`slow`) an instance, not both: use two [[faults]] entries",
            )),
            (None, None) => errs.push(ConfigError::new(
                p.to_string(),
                "a fault needs `kill = \"app.2\"` or `slow = \"app.1\"`",
            )),
            _ => {}
        }
        let field = if self.kill.is_some() { "kill" } else { "slow" };
        if let Some(name) = self.target() {
            if !is_instance_or_service(name) {
                let hint = crate::did_you_mean(name, valid.iter().map(String::as_str))
                    .map(|s| format!(" (did you mean {s:?}?)"))
                    .unwrap_or_default();
                errs.push(ConfigError::new(
                    format!("{p}.{field}"),
                    format!(
                        "{name:?} is not an instance or a service; instances are written service.index, such as \"app.2\"; valid: {}{hint}",
                        if valid.is_empty() { "none".to_string() } else { valid.join(", ") }
                    ),
                ));
            }
        }
        if self.kill.is_some() {
            if self.factor.is_some() || self.until.is_some() {
                errs.push(ConfigError::new(
                    format!(
                        "{p}.{}",
                        if self.factor.is_some() {
                            "factor"
                        } else {
                            "until"
                        }
                    ),
                    "`factor` and `until` go with `slow`; a kill ends with `recover`",
                ));
            }
            if let Some(r) = self.recover {
                if r <= self.at {
                    errs.push(ConfigError::new(
                        format!("{p}.recover"),
                        "must be after `at`",
                    ));
                }
            }
        }
        if self.slow.is_some() {
            if self.recover.is_some() {
                errs.push(ConfigError::new(
                    format!("{p}.recover"),
                    "`recover` goes with `kill`; a slow instance is back to normal at `until`",
                ));
            }
            match self.factor {
                None => errs.push(ConfigError::new(
                    format!("{p}.factor"),
                    "a slow fault needs `factor` (service times are multiplied by it, e.g. 3.0)",
                )),
                Some(f) if !(f.is_finite() && f > 0.0 && f <= 1e6) => errs.push(ConfigError::new(
                    format!("{p}.factor"),
                    format!("must be a number above zero (3.0: three times slower); found {f}"),
                )),
                _ => {}
            }
            if let Some(u) = self.until {
                if u <= self.at {
                    errs.push(ConfigError::new(format!("{p}.until"), "must be after `at`"));
                }
            }
        }
    }

    /// The `(time, action)` events of this fault, for every targeted instance.
    pub fn events(&self) -> Vec<(SimTime, FaultAction)> {
        let mut v = Vec::new();
        if self.kill.is_some() {
            v.push((self.at.0, FaultAction::Kill));
            if let Some(r) = self.recover {
                v.push((r.0, FaultAction::Recover));
            }
        } else if self.slow.is_some() {
            v.push((
                self.at.0,
                FaultAction::Slow(self.factor.unwrap_or(1.0) as f32),
            ));
            if let Some(u) = self.until {
                v.push((u.0, FaultAction::Slow(1.0)));
            }
        }
        v
    }
}

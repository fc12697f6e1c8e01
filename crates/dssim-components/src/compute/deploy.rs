//! Rolling deploys: a service's instances restarted one at a time, with readiness checks
//! and a graceful drain (or without them).
//!
//! ```toml
//! [[services]]
//! name = "app"
//! instances = 4
//! service_time = "exp(50ms)"
//! deploy = { at = "20s", start = "5s", warmup = "10s", readiness = true, drain = "30s" }
//! ```
//!
//! At `at` the first instance is taken down for the new version, then the next, in index
//! order; the next one starts when the previous is back in rotation. Each goes through:
//!
//! 1. **Stop.** With a `drain` above zero the instance leaves the rotation first (load
//!    balancers and callers stop sending it requests at once), finishes what it holds, and
//!    stops when it holds nothing or after `drain`, whichever comes first (what it still
//!    holds then fails). With `drain = "0s"` it stops at once: the requests it holds fail,
//!    and it stays a member answering errors — as a process killed without deregistering —
//!    until the balancer's health checks take it out or it is back.
//! 2. **Start** (`start`): the new process starts; it answers nothing.
//! 3. **Warm-up** (`warmup`): the process is alive (it answers liveness probes) but not
//!    ready: its connection pools, caches and code are cold, and it answers requests with an
//!    error at once. With `readiness = true` it is out of rotation until warm (a readiness
//!    check), and the deploy waits for it; with `readiness = false` (liveness only) it is in
//!    rotation as soon as the process is up, and the deploy moves on to the next instance
//!    then — faster, while the cold instance fails its share of requests.
//!
//! The cost of doing it right is time: a deploy with readiness takes about
//! instances × (drain + start + warmup), one without about instances × (drain + start).
//!
//! Measures (components.csv row `NAME.deploy`, kind `deploy`): instances redeployed, and as
//! `mean_ms` the deploy's duration (from `at` until the last instance is back in rotation;
//! empty if the run ended first).

use dssim_engine::SimTime;
use serde::{Deserialize, Serialize};

use crate::units::Dur;
use crate::ConfigError;

/// `deploy = { at, start, warmup, readiness, drain }`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeployConfig {
    /// When the rolling deploy starts (the first instance is taken down).
    pub at: Dur,
    /// Time the new version's process takes to start, answering nothing.
    #[serde(default = "two_seconds")]
    pub start: Dur,
    /// Time after the start during which the process is alive but not ready (cold pools,
    /// caches, code): requests it gets fail at once.
    #[serde(default = "zero")]
    pub warmup: Dur,
    /// Whether a readiness check keeps a warming instance out of rotation (and the deploy
    /// waits for it); `false`: liveness only, back in rotation as soon as the process is up.
    #[serde(default = "yes")]
    pub readiness: bool,
    /// Longest graceful drain: the instance leaves the rotation, finishes what it holds,
    /// then stops; `0s`: it stops at once, failing what it holds.
    #[serde(default = "zero")]
    pub drain: Dur,
}

fn two_seconds() -> Dur {
    Dur(SimTime::from_secs(2))
}
fn zero() -> Dur {
    Dur(SimTime::ZERO)
}
fn yes() -> bool {
    true
}

impl DeployConfig {
    /// Checks the entry; `p` is its path (`services.app.deploy`).
    pub fn validate(&self, p: &str, errs: &mut Vec<ConfigError>) {
        if self.start.0 == SimTime::ZERO {
            errs.push(ConfigError::new(
                format!("{p}.start"),
                "must be longer than zero (a process takes time to start)",
            ));
        }
    }
}

/// A deploy step of one instance ([`crate::service::InstanceMsg::Deploy`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeployStep {
    /// Its turn: drain (or stop at once).
    Begin,
    /// The drain's time is up: stop, failing what is left.
    DrainOver,
    /// The new process is up.
    Started,
    /// The warm-up is over: ready.
    Warm,
}

/// A service's deploy at run time, in [`crate::compute::ServiceState::deploy`].
#[derive(Debug, Default)]
pub struct DeployState {
    /// When it started.
    pub began: Option<SimTime>,
    /// When the last instance was back in rotation.
    pub done: Option<SimTime>,
    /// Instances taken down so far.
    pub redeployed: u32,
}

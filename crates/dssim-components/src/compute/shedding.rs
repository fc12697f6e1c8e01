//! Overload policies of a service instance: load shedding, priority classes and graceful
//! degradation levels.
//!
//! ## Shedding (`shedding = ...`)
//!
//! - `"none"`: never shed anything; the `queue` bound is ignored and the waiting room is
//!   unbounded (latency grows without limit past capacity), and degradation levels that
//!   shed (`shed_low_priority`, `read_only`) do not apply (`serve_stale` still does).
//! - `"queue"` (default): a request that finds the waiting room (`queue`) full is shed.
//! - `"deadline(500ms)"`: as `queue`, and a request that waited longer than the deadline
//!   when a worker takes it is shed then (its client has likely given up: serving it would
//!   waste the worker).
//! - `"probabilistic(0.8)"`: as `queue`, and while the waiting room is more than 80% full
//!   an arriving request that would wait is shed with probability
//!   `(fill - 0.8) / (1 - 0.8)`, rising linearly from 0 at the threshold to 1 when full
//!   (random early detection). Needs a bounded `queue`.
//!
//! A shed request is answered `Shed` (HTTP 503) carrying the service's `retry_after`, which
//! clients may honour before retrying (backpressure).
//!
//! ## Priority classes
//!
//! Requests are `high` (the default) or `low` priority (clients mark a share of theirs with
//! `low_priority`). Waiting high-priority requests are always served first; a high-priority
//! request that finds the waiting room full pushes out the newest waiting low-priority one
//! (which is shed).
//!
//! ## Degradation levels (`degrade = [{ at = 0.9, action = "shed_low_priority" }, ...]`)
//!
//! The load of an instance is `(busy workers + waiting requests) / workers`: 1.0 when
//! every worker is busy and nothing waits, 2.0 when as many again wait. When a request
//! arrives and the load is at or above a level's `at`, the level's action applies:
//! - `"shed_low_priority"`: low-priority requests are shed;
//! - `"read_only"`: writes are shed (reads still served);
//! - `"serve_stale"`: reads skip the data tier and answer from what the instance holds
//!   (counted as stale serves).

use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

use crate::units::Dur;

/// The load-shedding policy.
#[derive(Clone, Copy, Debug, PartialEq, Default)]
pub enum Shedding {
    /// Never shed: unbounded waiting room.
    None,
    /// Shed when the waiting room is full.
    #[default]
    Queue,
    /// Shed requests that waited longer than this when a worker takes them.
    Deadline(Dur),
    /// Shed with a probability rising linearly above this fill of the waiting room.
    Probabilistic(f64),
}

impl Shedding {
    /// Parses `none`, `queue`, `deadline(500ms)`, `probabilistic(0.8)`.
    pub fn parse(text: &str) -> Result<Shedding, String> {
        let t = text.trim();
        let arg = |name: &str| {
            t.strip_prefix(name)
                .and_then(|r| r.trim().strip_prefix('('))
                .and_then(|r| r.strip_suffix(')'))
                .map(str::trim)
        };
        if t == "none" {
            Ok(Shedding::None)
        } else if t == "queue" {
            Ok(Shedding::Queue)
        } else if let Some(a) = arg("deadline") {
            dssim_engine::parse_duration(a)
                .map(|d| Shedding::Deadline(Dur(d)))
                .map_err(|e| format!("deadline({a}): {e}"))
        } else if let Some(a) = arg("probabilistic") {
            match a.parse::<f64>() {
                Ok(p) if (0.0..1.0).contains(&p) => Ok(Shedding::Probabilistic(p)),
                _ => Err(format!(
                    "probabilistic({a}): the threshold is the queue fill above which shedding starts, a number in [0, 1)"
                )),
            }
        } else {
            Err(format!(
                "unknown shedding {t:?}: use \"none\", \"queue\", \"deadline(500ms)\" or \"probabilistic(0.8)\""
            ))
        }
    }
}

impl fmt::Display for Shedding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Shedding::None => f.write_str("none"),
            Shedding::Queue => f.write_str("queue"),
            Shedding::Deadline(d) => write!(f, "deadline({})", d.0),
            Shedding::Probabilistic(p) => write!(f, "probabilistic({p})"),
        }
    }
}

impl<'de> Deserialize<'de> for Shedding {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Shedding;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("\"none\", \"queue\", \"deadline(500ms)\" or \"probabilistic(0.8)\"")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Shedding, E> {
                Shedding::parse(v).map_err(E::custom)
            }
        }
        d.deserialize_str(V)
    }
}

impl Serialize for Shedding {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

/// What a degradation level does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DegradeAction {
    /// Shed low-priority requests.
    ShedLowPriority,
    /// Shed writes.
    ReadOnly,
    /// Answer reads without the data tier.
    ServeStale,
}

impl DegradeAction {
    /// Whether the action refuses requests (`shed_low_priority`, `read_only`).
    pub fn sheds(self) -> bool {
        matches!(
            self,
            DegradeAction::ShedLowPriority | DegradeAction::ReadOnly
        )
    }
}

/// One `degrade` level.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DegradeLevel {
    /// Load (busy + waiting, per worker) at or above which the action applies.
    pub at: f64,
    /// The action.
    pub action: DegradeAction,
}

/// Which degradation actions apply at a given load.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Degraded {
    /// Shed low-priority requests.
    pub shed_low: bool,
    /// Shed writes.
    pub read_only: bool,
    /// Serve reads stale.
    pub stale: bool,
}

/// The actions of `levels` that apply at `load`.
#[inline]
pub fn degraded(levels: &[DegradeLevel], load: f64) -> Degraded {
    let mut d = Degraded::default();
    for l in levels {
        if load >= l.at {
            match l.action {
                DegradeAction::ShedLowPriority => d.shed_low = true,
                DegradeAction::ReadOnly => d.read_only = true,
                DegradeAction::ServeStale => d.stale = true,
            }
        }
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shedding_parses_and_prints_back() {
        for t in ["none", "queue", "deadline(500ms)", "probabilistic(0.8)"] {
            assert_eq!(Shedding::parse(t).unwrap().to_string(), t);
        }
        assert!(Shedding::parse("probabilistic(1.5)").is_err());
        assert!(Shedding::parse("deadline(5)").is_err());
        assert!(Shedding::parse("fifo").is_err());
    }

    #[test]
    fn degradation_levels_stack() {
        let levels = [
            DegradeLevel {
                at: 0.9,
                action: DegradeAction::ShedLowPriority,
            },
            DegradeLevel {
                at: 1.5,
                action: DegradeAction::ReadOnly,
            },
        ];
        assert_eq!(degraded(&levels, 0.5), Degraded::default());
        assert!(degraded(&levels, 1.0).shed_low && !degraded(&levels, 1.0).read_only);
        assert!(degraded(&levels, 2.0).read_only);
    }
}

//! Timed changes: settings the model fixes at build, changed at a simulated time.
//!
//! ```toml
//! [[changes]]
//! at = "30s"
//! target = "app"                    # a service
//! set = { workers = 8 }             # workers per instance from 30 s on
//!
//! [[changes]]
//! at = "60s"
//! target = "app"
//! set = { instances = 6 }           # instances of the service from 60 s on
//!
//! [[changes]]
//! at = "40s"
//! target = "cache"                  # an app cache or a CDN edge
//! set = { ttl = "5s" }              # entries stored from 40 s on live 5 s
//!
//! [[changes]]
//! at = "20s"
//! target = "lb"                     # a load balancer
//! set = { algorithm = "least_connections" }
//! ```
//!
//! What each setting does at `at`:
//!
//! | setting | target | effect |
//! |---|---|---|
//! | `workers` | service | every instance (spares included) has this many workers: more workers take queued requests at once; with fewer, busy workers finish the request they hold, then retire (no request is cut short) |
//! | `instances` | service | the service is resized the way an autoscaler resizes it: instances switched off come back ready at once (empty); removed ones (the highest indices first) leave the routers at once, finish what they hold, then switch off. Not allowed on a service an autoscaler sizes |
//! | `ttl` | cache | entries stored (or refreshed) from then on expire this long after; entries already stored keep the expiry they were given |
//! | `algorithm` | load balancer | requests routed from then on are picked with this algorithm (counters of outstanding requests carry over; a hash ring is built when first needed) |
//!
//! Changes are events of the run, like [`crate::faults`]: each is scheduled to the actors
//! it concerns when the model is built and applied in `(time, seq)` order, so a run with
//! changes replays from its seed, and a `dssim serve` demo whose controls were used
//! exports as `[[changes]]` entries that `dssim run` reproduces byte for byte.
//!
//! Measures: nothing of its own; the utilization of a service (its mean busy workers over
//! its mean workers), latency, hit ratio and instance count in runs.csv and the time
//! series show the effect.

use dssim_engine::SimTime;
use serde::{Deserialize, Serialize};

use crate::load_balancer::Algorithm;
use crate::units::Dur;
use crate::ConfigError;

/// The most instances a change may ask of a service.
pub const MAX_INSTANCES: u32 = 10_000;
/// The most workers per instance a change may set.
pub const MAX_WORKERS: u32 = 1_000_000;

/// A `[[changes]]` entry: at `at`, `target` takes the settings in `set`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChangeConfig {
    /// When the change takes effect (simulated time from the start of the run).
    pub at: Dur,
    /// The component changed: a service (`workers`, `instances`), a cache (`ttl`) or a load
    /// balancer (`algorithm`).
    pub target: String,
    /// The new settings: one or more of `workers`, `instances`, `ttl`, `algorithm`.
    pub set: Settings,
}

/// The settings a change may give (`set = { workers = 8 }`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Workers per instance of a service from then on; more take queued requests at once,
    /// fewer retire as their busy workers finish.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workers: Option<u32>,
    /// Instances of a service from then on (added ones are ready at once; removed ones
    /// drain, then switch off).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instances: Option<u32>,
    /// Time to live of a cache's entries stored from then on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<Dur>,
    /// How a load balancer picks a backend from then on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub algorithm: Option<Algorithm>,
}

/// One setting applied by one message ([`crate::node::Msg::Change`] carries its index in
/// the run's table of settings).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Setting {
    /// Workers per instance.
    Workers(u32),
    /// Instances of the service (sent to its first instance, which resizes the service).
    Instances(u32),
    /// Time to live of entries stored from now on.
    Ttl(SimTime),
    /// Load-balancing algorithm.
    Algorithm(Algorithm),
}

/// What kind of component a change's target is, for validation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TargetKind {
    /// A service; `autoscaled` when an autoscaler sizes it.
    Service {
        /// Whether an `[[autoscalers]]` entry sizes it.
        autoscaled: bool,
    },
    /// An app cache or a CDN edge.
    Cache,
    /// A load balancer.
    LoadBalancer,
}

impl Settings {
    /// The settings given, in a fixed order (workers, instances, ttl, algorithm).
    pub fn list(&self) -> Vec<Setting> {
        let mut v = Vec::new();
        if let Some(w) = self.workers {
            v.push(Setting::Workers(w));
        }
        if let Some(n) = self.instances {
            v.push(Setting::Instances(n));
        }
        if let Some(t) = self.ttl {
            v.push(Setting::Ttl(t.0));
        }
        if let Some(a) = self.algorithm {
            v.push(Setting::Algorithm(a));
        }
        v
    }
}

impl ChangeConfig {
    /// Checks the entry; `p` is its path (`changes.0`), `kind_of` tells what a name is,
    /// `valid` lists the names a change may target.
    pub fn validate(
        &self,
        p: &str,
        kind_of: impl Fn(&str) -> Option<TargetKind>,
        valid: &[String],
        errs: &mut Vec<ConfigError>,
    ) {
        let Some(kind) = kind_of(&self.target) else {
            let hint = crate::did_you_mean(&self.target, valid.iter().map(String::as_str))
                .map(|s| format!(" (did you mean {s:?}?)"))
                .unwrap_or_default();
            errs.push(ConfigError::new(
                format!("{p}.target"),
                format!(
                    "{:?} is not a service, cache or load balancer{hint}; a change targets a whole component (not an instance such as \"app.2\"); valid: {}",
                    self.target,
                    if valid.is_empty() { "none".to_string() } else { valid.join(", ") }
                ),
            ));
            return;
        };
        let s = &self.set;
        if s.list().is_empty() {
            errs.push(ConfigError::new(
                format!("{p}.set"),
                "sets nothing: give one of `workers`, `instances` (services), `ttl` (caches), `algorithm` (load balancers), e.g. set = { workers = 8 }",
            ));
        }
        let what = match kind {
            TargetKind::Service { .. } => "a service",
            TargetKind::Cache => "a cache",
            TargetKind::LoadBalancer => "a load balancer",
        };
        let wrong = |field: &str, goes: &str, errs: &mut Vec<ConfigError>| {
            errs.push(ConfigError::new(
                format!("{p}.set.{field}"),
                format!(
                    "{:?} is {what}; `{field}` is a setting of {goes}",
                    self.target
                ),
            ));
        };
        let service = matches!(kind, TargetKind::Service { .. });
        if let Some(w) = s.workers {
            if !service {
                wrong("workers", "services", errs);
            } else if w == 0 || w > MAX_WORKERS {
                errs.push(ConfigError::new(
                    format!("{p}.set.workers"),
                    format!("must be between 1 and {MAX_WORKERS}; found {w}"),
                ));
            }
        }
        if let Some(n) = s.instances {
            if !service {
                wrong("instances", "services", errs);
            } else if kind == (TargetKind::Service { autoscaled: true }) {
                errs.push(ConfigError::new(
                    format!("{p}.set.instances"),
                    format!(
                        "an autoscaler sizes {:?}: change its instances through the autoscaler's `min` and `max`, or remove the autoscaler",
                        self.target
                    ),
                ));
            } else if n == 0 || n > MAX_INSTANCES {
                errs.push(ConfigError::new(
                    format!("{p}.set.instances"),
                    format!("must be between 1 and {MAX_INSTANCES}; found {n}"),
                ));
            }
        }
        if let Some(t) = s.ttl {
            if kind != TargetKind::Cache {
                wrong("ttl", "caches", errs);
            } else if t.0 == SimTime::ZERO {
                errs.push(ConfigError::new(
                    format!("{p}.set.ttl"),
                    "must be above zero (\"30s\")",
                ));
            }
        }
        if s.algorithm.is_some() && kind != TargetKind::LoadBalancer {
            wrong("algorithm", "load balancers", errs);
        }
    }
}

impl crate::ModelConfig {
    /// Names a `[[changes]]` entry may target: services, caches, load balancers.
    pub fn changeable(&self) -> Vec<String> {
        self.services
            .iter()
            .map(|s| s.name.clone())
            .chain(self.caches.iter().map(|c| c.name.clone()))
            .chain(self.load_balancers.iter().map(|l| l.name.clone()))
            .collect()
    }

    /// What kind of component `name` is, as a change's target.
    pub fn change_target(&self, name: &str) -> Option<TargetKind> {
        if self.services.iter().any(|s| s.name == name) {
            let autoscaled = self.autoscalers.iter().any(|a| a.subject() == name);
            return Some(TargetKind::Service { autoscaled });
        }
        if self.caches.iter().any(|c| c.name == name) {
            return Some(TargetKind::Cache);
        }
        if self.load_balancers.iter().any(|l| l.name == name) {
            return Some(TargetKind::LoadBalancer);
        }
        None
    }

    /// Checks every `[[changes]]` entry.
    pub fn validate_changes(&self, errs: &mut Vec<ConfigError>) {
        let valid = self.changeable();
        for (i, c) in self.changes.iter().enumerate() {
            c.validate(
                &format!("changes.{i}"),
                |n| self.change_target(n),
                &valid,
                errs,
            );
        }
    }

    /// The most instances service `name` may have in this run by its changes (0 when no
    /// change resizes it).
    pub fn changed_max_instances(&self, name: &str) -> u32 {
        self.changes
            .iter()
            .filter(|c| c.target == name)
            .filter_map(|c| c.set.instances)
            .max()
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(toml_text: &str) -> Vec<ConfigError> {
        let c: ChangeConfig = toml::from_str(toml_text).expect("parses");
        let valid: Vec<String> = ["app", "scaled", "cache", "lb"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let mut errs = Vec::new();
        c.validate(
            "changes.0",
            |n| match n {
                "app" => Some(TargetKind::Service { autoscaled: false }),
                "scaled" => Some(TargetKind::Service { autoscaled: true }),
                "cache" => Some(TargetKind::Cache),
                "lb" => Some(TargetKind::LoadBalancer),
                _ => None,
            },
            &valid,
            &mut errs,
        );
        errs
    }

    #[test]
    fn good_changes_pass() {
        for t in [
            "at = \"1s\"\ntarget = \"app\"\nset = { workers = 8, instances = 3 }",
            "at = \"1s\"\ntarget = \"cache\"\nset = { ttl = \"5s\" }",
            "at = \"1s\"\ntarget = \"lb\"\nset = { algorithm = \"random\" }",
        ] {
            assert_eq!(check(t), vec![], "{t}");
        }
    }

    #[test]
    fn bad_changes_name_the_field_and_the_fix() {
        let e = check("at = \"1s\"\ntarget = \"ap\"\nset = { workers = 8 }");
        assert_eq!(e[0].path, "changes.0.target");
        assert!(e[0].message.contains("did you mean \"app\""), "{e:?}");
        let e = check("at = \"1s\"\ntarget = \"lb\"\nset = { workers = 8 }");
        assert_eq!(e[0].path, "changes.0.set.workers");
        assert!(e[0].message.contains("setting of services"), "{e:?}");
        let e = check("at = \"1s\"\ntarget = \"app\"\nset = { workers = 0 }");
        assert!(e[0].message.contains("between 1 and"), "{e:?}");
        let e = check("at = \"1s\"\ntarget = \"scaled\"\nset = { instances = 4 }");
        assert!(e[0].message.contains("autoscaler"), "{e:?}");
        let e = check("at = \"1s\"\ntarget = \"app\"\nset = {}");
        assert_eq!(e[0].path, "changes.0.set");
        let e = check("at = \"1s\"\ntarget = \"cache\"\nset = { ttl = \"0s\" }");
        assert!(e[0].message.contains("above zero"), "{e:?}");
    }
}

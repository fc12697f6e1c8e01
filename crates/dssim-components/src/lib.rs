//! # dssim-components
//!
//! The parts of a web system, each a configuration (what users write in a model file) and
//! an actor (how it behaves in a run): clients, services, databases, and the shared machinery that
//! carries requests between them and measures them.
//!
//! Invariants: components know nothing of files or CSV; they touch the world only through
//! their context; every request ends exactly once (see [`stats`]).

pub mod compute;
pub mod data;
pub mod model;
pub mod names;
pub mod node;
pub mod observability;
pub mod request;
pub mod shared;
pub mod traffic;
pub mod units;

// The modules at their historical paths (`dssim_components::client`, `crate::stats`, ...).
pub use compute::{
    autoscaler, calls, canary, circuit_breaker, geo, health_check, load_balancer, service,
    shedding, validate,
};
pub use data::{cache, consistency, database, datapath, jobs};
pub use model::{changes, explain, faults, sanity};
pub use observability::{report, sampler, stats, trace};
pub use traffic::{client, popularity};

pub use model::{ModelConfig, RunError, RunOptions, World};
pub use names::did_you_mean;
pub use report::{Cell, ComponentRow, RunReport, RUN_COLUMNS};

/// A problem in a model, found at validation, with the path of the offending value
/// (`clients.users.rate`: list entries are addressed by name).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct ConfigError {
    /// Where, as a dotted path.
    pub path: String,
    /// What is wrong and what was expected.
    pub message: String,
}

impl ConfigError {
    /// A problem at `path`.
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        ConfigError {
            path: path.into(),
            message: message.into(),
        }
    }
}

//! A model: the system under study, as a whole. Validates a [`ModelConfig`], wires names to
//! actor ids once, runs it, and reports what it measured.

use std::collections::BTreeMap;

use dssim_engine::{ActorId, SimTime, Simulation};
use serde::{Deserialize, Serialize};

use crate::autoscaler::AutoscalerConfig;
use crate::cache::{CacheConfig, Tier};
use crate::client::ClientConfig;
use crate::database::DatabaseConfig;
use crate::faults::FaultConfig;
use crate::jobs::QueueConfig;
use crate::load_balancer::LoadBalancerConfig;
use crate::node::Node;
use crate::service::ServiceConfig;
use crate::units::{DistSpec, Dur};

mod build;
pub mod changes;
pub mod explain;
pub mod faults;
mod live;
mod run;
pub mod sanity;
pub mod topology;
mod validate;
pub use live::{Graph, GraphNode, Probe};
pub use topology::Topology;

/// The whole model file.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// Traffic sources.
    #[serde(default)]
    pub clients: Vec<ClientConfig>,
    /// Load balancers in front of services.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub load_balancers: Vec<LoadBalancerConfig>,
    /// App nodes.
    #[serde(default)]
    pub services: Vec<ServiceConfig>,
    /// Background job queues.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub queues: Vec<QueueConfig>,
    /// Autoscalers of services and job queues.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub autoscalers: Vec<AutoscalerConfig>,
    /// Databases (primaries, replicas, shards).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub databases: Vec<DatabaseConfig>,
    /// App caches and CDN edges.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub caches: Vec<CacheConfig>,
    /// Scheduled faults: instances killed, recovered, slowed down.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub faults: Vec<FaultConfig>,
    /// Timed changes: workers, instances, a cache's TTL, a load balancer's algorithm.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<crate::changes::ChangeConfig>,
    /// Latency, loss, regions and partitions.
    #[serde(default)]
    pub network: NetworkConfig,
    /// Circuit breakers in front of services or load balancers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub circuit_breakers: Vec<crate::circuit_breaker::CircuitBreakerConfig>,
    /// Geo routers: each client to the nearest healthy region, with regional failover.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub geo_routers: Vec<crate::geo::GeoRouterConfig>,
}

/// The sections of a model file, as `--set model.SECTION...` paths start (one per field of
/// [`ModelConfig`]; a new kind adds its list here).
pub const SECTIONS: &[&str] = &[
    "clients",
    "services",
    "network",
    "load_balancers",
    "caches",
    "databases",
    "queues",
    "faults",
    "autoscalers",
    "changes",
    "circuit_breakers",
    "geo_routers",
];

/// The `[network]` table.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkConfig {
    /// Default one-way latency (within a region); zero when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency: Option<DistSpec>,
    /// Probability that a message is lost.
    #[serde(default)]
    pub loss: f64,
    /// One-way latency between regions, keyed `"a:b"`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub regions: BTreeMap<String, DistSpec>,
    /// Scheduled partitions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub partitions: Vec<PartitionConfig>,
}

/// A `[[network.partitions]]` entry.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartitionConfig {
    /// Two lists of component or instance names.
    pub sides: Vec<Vec<String>>,
    /// Start.
    pub from: Dur,
    /// End.
    pub until: Dur,
}

/// How long a run lasts and what it records.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// Seed of this run (all streams derive from it).
    pub seed: u64,
    /// Arrivals stop here.
    pub duration: SimTime,
    /// Metrics ignore requests first sent before this.
    pub warmup: SimTime,
    /// Width of a time-series row; none when absent.
    pub timeseries: Option<SimTime>,
    /// Requests to trace in full (0: none).
    pub trace: u32,
    /// Which of the measured window's requests to trace: the first or the slowest.
    pub trace_sample: crate::trace::Sample,
}

impl RunOptions {
    /// A run of `seed` whose arrivals stop at `duration`, measured after `warmup`, with
    /// no time series and no trace (set those fields to record them).
    pub fn new(seed: u64, duration: SimTime, warmup: SimTime) -> Self {
        RunOptions {
            seed,
            duration,
            warmup,
            timeseries: None,
            trace: 0,
            trace_sample: Default::default(),
        }
    }
}

/// The highest arrival rate a client may have: one request per nanosecond.
pub const MAX_RATE: f64 = 1e9;

/// The rule for names, stated once. Experiment names and component names are identifiers:
/// 1 to 64 ASCII letters, digits, `-`, `_` and `.`, the first a letter, digit or `_`.
/// Component names also leave out `.`, which separates the parts of a path
/// (`services.app.workers`). So a name is never a path (`..`, `/abs`), never breaks a CSV
/// field (no `,`, quote, CR or LF) and never starts a spreadsheet formula (`=`, `+`, `-`, `@`).
pub const NAME_RULE: &str = "a name is 1 to 64 ASCII letters, digits, '-', '_' (and '.' in experiment names), starting with a letter, digit or '_'";

/// Checks `name` against [`NAME_RULE`]; `dots` allows `.` after the first character
/// (experiment names).
pub fn check_name(name: &str, dots: bool) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || (dots && b == b'.'));
    if ok {
        Ok(())
    } else {
        let shown: String = name.chars().take(40).collect();
        let more = if name.chars().count() > 40 { "..." } else { "" };
        Err(format!("{shown:?}{more} is not a valid name: {NAME_RULE}"))
    }
}

/// What a name in the model stands for, as validation tells kinds apart (a cache by tier).
#[derive(Clone, Debug)]
enum Named {
    Client,
    Service,
    Queue,
    Database,
    Cache(Tier),
    LoadBalancer,
    Breaker,
}

impl Named {
    fn of(m: &ModelConfig, c: topology::Component) -> Named {
        use topology::Component as C;
        match c {
            C::Client(_) => Named::Client,
            C::Service(_) => Named::Service,
            C::Queue(_) => Named::Queue,
            C::Database(_) => Named::Database,
            C::Cache(k) => Named::Cache(m.caches[k.0].tier),
            C::LoadBalancer(_) => Named::LoadBalancer,
            C::Breaker(_) => Named::Breaker,
        }
    }
}

/// One run, built and ready.
pub struct World {
    sim: Simulation<Node>,
    opts: RunOptions,
    model: ModelConfig,
    clients: Vec<ActorId>,
    /// Every name that addresses actors (components, instances, database nodes and
    /// their aliases) -> the actors.
    ids: BTreeMap<String, Vec<ActorId>>,
    /// Each actor's canonical name, by id (its RNG stream; its name in traces).
    names: Vec<String>,
    /// The model's resolved wiring.
    topology: Topology,
    /// Whether the measured window has opened (by [`World::step_to`]).
    window_open: bool,
    cap: RunCap,
}

/// What a run may consume while it runs: it stops cleanly (a [`RunError::Limit`]) past
/// either, whatever the estimate before it said. No limit by default.
#[derive(Clone, Debug)]
pub struct RunCap {
    /// Most events processed.
    pub events: u64,
    /// Most bytes held by the growing structures (event queue, request table).
    pub bytes: u64,
    /// The flag that raises each, and the model parameter that drives the run's events, for
    /// the message: (`--max-events`, `--max-memory`, `clients.users.retries.max`).
    pub names: (String, String, String),
}

impl Default for RunCap {
    fn default() -> Self {
        RunCap {
            events: u64::MAX,
            bytes: u64::MAX,
            names: Default::default(),
        }
    }
}

/// Events between two checks of a run's [`RunCap`].
const CAP_CHECK_EVENTS: u64 = 1 << 20;

/// A run that could not complete.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The run passed a limit while it ran (events or memory): stopped cleanly.
    #[error("{0}")]
    Limit(String),
    /// A bug: some request did not end exactly once.
    #[error("conservation violated: {requests} requests but {ended} outcomes ({pending} unfinished); this is a bug in dssim")]
    Conservation {
        /// Counted requests.
        requests: u64,
        /// Outcomes recorded.
        ended: u64,
        /// Requests still pending.
        pending: u64,
    },
}

//! A model: the system under study, as a whole. Validates a [`ModelConfig`], wires names to
//! actor ids once, runs it, and reports what it measured.

use std::collections::{BTreeMap, BTreeSet};

use dssim_engine::{did_you_mean, rng, ActorId, Network, Partition, SimTime, Simulation};
use serde::{Deserialize, Serialize};

use crate::autoscaler::{Autoscaler, AutoscalerConfig, Scaled};
use crate::cache::{Backend, Cache, CacheConfig, CacheStats, Tier, WritePolicy};
use crate::canary::CanaryController;
use crate::changes::{ChangeConfig, Setting};
use crate::client::{Arrival, Client, ClientConfig};
use crate::compute::{Life, ServiceState};
use crate::database::{DatabaseConfig, DbNode, DbRouter, DbState, NodeState, ShardState};
use crate::faults::{FaultAction, FaultConfig};
use crate::jobs::{JobQueue, QueueConfig, QueueState};
use crate::load_balancer::{LoadBalancer, LoadBalancerConfig};
use crate::node::{Msg, Node};
use crate::report::{ComponentRow, RunReport};
use crate::sampler::Sampler;
use crate::service::{Instance, ServiceConfig};
use crate::stats::{Outcome, Shared};
use crate::units::{check_non_negative, check_ratio, DistSpec, Dur};
use crate::ConfigError;

mod live;
pub use live::{Graph, GraphNode, Probe};

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
    pub changes: Vec<ChangeConfig>,
    /// Latency, loss, regions and partitions.
    #[serde(default)]
    pub network: NetworkConfig,
}

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

/// What a name in the model stands for.
#[derive(Clone, Debug)]
enum Named {
    Client,
    Service,
    Queue,
    Database,
    Cache(Tier),
    LoadBalancer,
}

impl ModelConfig {
    fn names(&self) -> BTreeMap<String, Named> {
        let mut m = BTreeMap::new();
        for c in &self.clients {
            m.insert(c.name.clone(), Named::Client);
        }
        for s in &self.services {
            m.insert(s.name.clone(), Named::Service);
        }
        for q in &self.queues {
            m.insert(q.name.clone(), Named::Queue);
        }
        for d in &self.databases {
            m.insert(d.name.clone(), Named::Database);
        }
        for c in &self.caches {
            m.insert(c.name.clone(), Named::Cache(c.tier));
        }
        for l in &self.load_balancers {
            m.insert(l.name.clone(), Named::LoadBalancer);
        }
        m
    }

    /// Checks references, ranges and required fields; every problem is reported with the
    /// path of the offending value (`clients.users.rate`).
    pub fn validate(&self) -> Result<(), Vec<ConfigError>> {
        let mut errs = Vec::new();
        let mut seen = BTreeSet::new();
        let all_names = self
            .clients
            .iter()
            .map(|c| ("clients", &c.name))
            .chain(self.services.iter().map(|s| ("services", &s.name)))
            .chain(self.queues.iter().map(|q| ("queues", &q.name)))
            .chain(self.databases.iter().map(|d| ("databases", &d.name)))
            .chain(self.caches.iter().map(|c| ("caches", &c.name)))
            .chain(
                self.load_balancers
                    .iter()
                    .map(|l| ("load_balancers", &l.name)),
            );
        for (kind, n) in all_names {
            if let Err(msg) = check_name(n, false) {
                let at: String = n.chars().take(40).collect();
                errs.push(ConfigError::new(format!("{kind}.{at}.name"), msg));
            }
            if !seen.insert(n.clone()) {
                errs.push(ConfigError::new(
                    format!("{kind}.{n}.name"),
                    format!("the name {n:?} is used twice; names must be unique"),
                ));
            }
        }
        let names = self.names();
        if self.clients.is_empty() {
            errs.push(ConfigError::new(
                "clients",
                "the model has no [[clients]]: nothing would send requests",
            ));
        }
        for c in &self.clients {
            let p = format!("clients.{}", c.name);
            match names.get(&c.target) {
                Some(Named::Service | Named::LoadBalancer) | Some(Named::Cache(Tier::Cdn)) => {}
                Some(Named::Client | Named::Queue) => errs.push(ConfigError::new(
                    format!("{p}.target"),
                    format!(
                        "{:?} is not a load balancer or a service; a client sends to a load balancer or a service",
                        c.target
                    ),
                )),
                Some(Named::Database) => errs.push(ConfigError::new(
                    format!("{p}.target"),
                    format!(
                        "{:?} is a database; clients send to a service, whose `database` names it",
                        c.target
                    ),
                )),
                Some(Named::Cache(Tier::App)) => errs.push(ConfigError::new(
                    format!("{p}.target"),
                    format!(
                        "{:?} is an app cache, which services use (`cache = {:?}`); a client sends to a service or a CDN edge (tier = \"cdn\")",
                        c.target, c.target
                    ),
                )),
                None => errs.push(unknown_name(
                    format!("{p}.target"),
                    &c.target,
                    self.services
                        .iter()
                        .map(|s| s.name.as_str())
                        .chain(self.load_balancers.iter().map(|l| l.name.as_str()))
                        .chain(
                            self.caches
                                .iter()
                                .filter(|k| k.tier == Tier::Cdn)
                                .map(|k| k.name.as_str()),
                        ),
                )),
            }
            if let Some(b) = &c.browser_cache {
                if let Err(e) = check_ratio(&format!("{p}.browser_cache.cacheable"), b.cacheable) {
                    errs.push(e);
                }
            }
            match c.arrival {
                Arrival::Poisson | Arrival::Constant => match c.rate {
                    None => errs.push(ConfigError::new(
                        format!("{p}.rate"),
                        "arrival = \"poisson\" or \"constant\" needs `rate` (requests per second)",
                    )),
                    Some(r) => {
                        if let Err(e) = check_non_negative(&format!("{p}.rate"), r) {
                            errs.push(e);
                        } else if r > MAX_RATE {
                            // Gaps would round to zero nanoseconds: time would never advance.
                            errs.push(ConfigError::new(
                                format!("{p}.rate"),
                                format!("{r} requests/s is more than one per nanosecond, the clock's resolution; use at most {MAX_RATE:e}"),
                            ));
                        }
                    }
                },
                Arrival::Closed => {
                    if c.users.is_none() {
                        errs.push(ConfigError::new(
                            format!("{p}.users"),
                            "arrival = \"closed\" needs `users` (and usually `think`)",
                        ));
                    }
                }
                Arrival::Steps | Arrival::Diurnal | Arrival::Trace => {}
            }
            c.validate_traffic(&p, &mut errs);
            if let Err(e) = check_ratio(&format!("{p}.read_ratio"), c.read_ratio) {
                errs.push(e);
            }
            if c.keys == 0 {
                errs.push(ConfigError::new(format!("{p}.keys"), "must be at least 1"));
            }
            if c.user_ids == Some(0) {
                errs.push(ConfigError::new(
                    format!("{p}.user_ids"),
                    "must be at least 1",
                ));
            }
            if c.timeout == Some(Dur(SimTime::ZERO)) {
                errs.push(ConfigError::new(
                    format!("{p}.timeout"),
                    "a zero timeout would time out every request; remove it for none",
                ));
            }
        }
        for s in &self.services {
            let p = format!("services.{}", s.name);
            if s.instances == 0 {
                errs.push(ConfigError::new(
                    format!("{p}.instances"),
                    "must be at least 1",
                ));
            }
            if s.workers == 0 {
                errs.push(ConfigError::new(
                    format!("{p}.workers"),
                    "must be at least 1",
                ));
            }
            if let Some(cache) = &s.cache {
                match names.get(cache) {
                    Some(Named::Cache(Tier::App)) => {}
                    Some(Named::Cache(Tier::Cdn)) => errs.push(ConfigError::new(
                        format!("{p}.cache"),
                        format!("{cache:?} is a CDN edge; a service's cache must be an app cache (tier = \"app\")"),
                    )),
                    _ => errs.push(unknown_name(
                        format!("{p}.cache"),
                        cache,
                        self.caches
                            .iter()
                            .filter(|k| k.tier == Tier::App)
                            .map(|k| k.name.as_str()),
                    )),
                }
            }
            if !(s.speed.is_finite() && s.speed > 0.0) {
                errs.push(ConfigError::new(
                    format!("{p}.speed"),
                    format!("must be a number above zero; found {}", s.speed),
                ));
            }
            for (i, v) in s.speeds.iter().enumerate() {
                if !(v.is_finite() && *v > 0.0) {
                    errs.push(ConfigError::new(
                        format!("{p}.speeds"),
                        format!("entry {i} must be a number above zero; found {v}"),
                    ));
                }
            }
            if s.speeds.len() > s.instances as usize {
                errs.push(ConfigError::new(
                    format!("{p}.speeds"),
                    format!(
                        "lists {} speeds but the service has {} instances; give one speed per instance",
                        s.speeds.len(),
                        s.instances
                    ),
                ));
            }
            crate::validate::service(s, &p, &mut errs);
            if let Some(db) = &s.database {
                if !matches!(names.get(db), Some(Named::Database)) {
                    errs.push(unknown_name(
                        format!("{p}.database"),
                        db,
                        self.databases.iter().map(|d| d.name.as_str()),
                    ));
                }
            }
        }
        for d in &self.databases {
            crate::database::validate(d, &mut errs);
        }
        for c in &self.caches {
            errs.extend(c.validate());
            let Some(origin) = &c.origin else { continue };
            let p = format!("caches.{}.origin", c.name);
            match names.get(origin) {
                Some(Named::Service | Named::LoadBalancer) | Some(Named::Cache(Tier::Cdn)) => {}
                Some(_) => errs.push(ConfigError::new(
                    p.clone(),
                    format!("{origin:?} cannot be an origin: name a service, a load balancer or a CDN edge"),
                )),
                None => errs.push(unknown_name(
                    p.clone(),
                    origin,
                    self.services
                        .iter()
                        .map(|s| s.name.as_str())
                        .chain(self.load_balancers.iter().map(|l| l.name.as_str())),
                )),
            }
            if self
                .services
                .iter()
                .any(|s| &s.name == origin && s.cache.as_deref() == Some(c.name.as_str()))
            {
                errs.push(ConfigError::new(
                    p.clone(),
                    format!(
                        "{origin:?} reads through this cache; a miss sent back to it would loop"
                    ),
                ));
            }
            // Edges may stand in front of edges, but a loop would never answer.
            let mut at = c;
            for _ in 0..self.caches.len() {
                match at
                    .origin
                    .as_ref()
                    .and_then(|o| self.caches.iter().find(|k| &k.name == o))
                {
                    Some(next) if next.name == c.name => {
                        errs.push(ConfigError::new(
                            p.clone(),
                            "the chain of origins comes back to this cache: requests would loop forever",
                        ));
                        break;
                    }
                    Some(next) => at = next,
                    None => break,
                }
            }
        }
        for c in &self.clients {
            if let Some(l) = c.low_priority {
                if let Err(e) = check_ratio(&format!("clients.{}.low_priority", c.name), l) {
                    errs.push(e);
                }
            }
        }
        crate::validate::queues(self, &mut errs);
        crate::validate::autoscalers(self, &mut errs);
        for l in &self.load_balancers {
            l.validate(
                &format!("load_balancers.{}", l.name),
                &self.services,
                &mut errs,
            );
        }
        let instances: Vec<String> = self
            .services
            .iter()
            .flat_map(|s| {
                std::iter::once(s.name.clone())
                    .chain((0..s.instances).map(move |i| format!("{}.{i}", s.name)))
            })
            .collect();
        // Database nodes and caches can be killed too (not slowed).
        let mut killable = instances.clone();
        for d in &self.databases {
            killable.extend(d.addresses().into_iter().map(|(n, _)| n));
        }
        killable.extend(self.caches.iter().map(|c| c.name.clone()));
        for (i, f) in self.faults.iter().enumerate() {
            let valid = if f.kill.is_some() {
                &killable
            } else {
                &instances
            };
            f.validate(
                &format!("faults.{i}"),
                |n| valid.iter().any(|x| x == n),
                valid,
                &mut errs,
            );
        }
        self.validate_changes(&mut errs);
        self.check_zero_time_loops(&mut errs);
        if let Err(e) = check_ratio("network.loss", self.network.loss) {
            errs.push(e);
        }
        let regions = self.region_names();
        for key in self.network.regions.keys() {
            let parts: Vec<&str> = key.split(':').collect();
            if parts.len() != 2 || parts.iter().any(|p| p.is_empty()) {
                errs.push(ConfigError::new(
                    format!("network.regions.{key}"),
                    "region pairs are written \"a:b\" (for example \"us-east:eu-west\")",
                ));
            }
        }
        let _ = regions;
        for (i, part) in self.network.partitions.iter().enumerate() {
            let p = format!("network.partitions.{i}");
            if part.sides.len() != 2 {
                errs.push(ConfigError::new(
                    format!("{p}.sides"),
                    format!("a partition has two sides; found {}", part.sides.len()),
                ));
            }
            if part.until <= part.from {
                errs.push(ConfigError::new(
                    format!("{p}.until"),
                    "must be after `from`",
                ));
            }
            for name in part.sides.iter().flatten() {
                if self.resolve(name).is_none() {
                    errs.push(unknown_name(
                        format!("{p}.sides"),
                        name,
                        self.addressable().iter().map(String::as_str),
                    ));
                }
            }
        }
        crate::sanity::check(self, &mut errs);
        if errs.is_empty() {
            Ok(())
        } else {
            Err(errs)
        }
    }

    /// A closed loop whose every cycle takes no simulated time (no think time, a service
    /// that answers by itself in zero time, no network latency) would run forever at one
    /// instant; refuse it here rather than hang. Times are whole nanoseconds, so a mean
    /// below half a nanosecond counts as zero.
    fn check_zero_time_loops(&self, errs: &mut Vec<ConfigError>) {
        let zero = |mean_ns: f64| mean_ns < 0.5;
        let latency = self.network.latency.as_ref().map_or(0.0, |d| d.0.mean());
        for c in self.clients.iter().filter(|c| c.arrival == Arrival::Closed) {
            let think = c.think.as_ref().map_or(0.0, |d| d.0.mean());
            // Only a service that answers by itself: anything it calls may take time.
            let Some(s) = self
                .services
                .iter()
                .find(|s| s.name == c.target && s.database.is_none() && s.cache.is_none())
            else {
                continue;
            };
            // The fastest instance bounds how little time a request may take.
            let fastest = (0..s.instances.max(1))
                .map(|i| s.speed_of(i))
                .fold(0.0, f64::max);
            let service = s.service_time.0.mean() / fastest;
            if zero(think) && zero(service) && zero(latency) && c.users.unwrap_or(0) > 0 {
                errs.push(ConfigError::new(
                    format!("clients.{}.think", c.name),
                    format!(
                        "with no think time, no network latency and a zero service time at \
                         services.{}.service_time, each request of this closed loop takes no \
                         time and simulated time would never advance; give `think` or a \
                         service time above zero",
                        s.name
                    ),
                ));
            }
        }
    }

    fn region_names(&self) -> Vec<String> {
        let mut set = BTreeSet::new();
        for r in self
            .clients
            .iter()
            .filter_map(|c| c.region.clone())
            .chain(self.services.iter().filter_map(|s| s.region.clone()))
            .chain(self.databases.iter().filter_map(|d| d.region.clone()))
            .chain(
                self.databases
                    .iter()
                    .filter_map(|d| d.replica_region.clone()),
            )
            .chain(self.caches.iter().filter_map(|c| c.region.clone()))
            .chain(self.load_balancers.iter().filter_map(|l| l.region.clone()))
        {
            set.insert(r);
        }
        for k in self.network.regions.keys() {
            for p in k.split(':') {
                set.insert(p.to_string());
            }
        }
        let mut v = vec![String::new()];
        v.extend(set);
        v
    }

    /// Every name a partition or fault may address: components and their instances.
    pub fn addressable(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .clients
            .iter()
            .map(|c| c.name.clone())
            .chain(self.load_balancers.iter().map(|l| l.name.clone()))
            .collect();
        for s in &self.services {
            v.push(s.name.clone());
            v.extend((0..s.instances).map(|i| format!("{}.{i}", s.name)));
        }
        for d in &self.databases {
            v.extend(d.addresses().into_iter().map(|(n, _)| n));
        }
        v.extend(self.caches.iter().map(|c| c.name.clone()));
        v
    }

    /// Which (service, instance range) a name stands for, if any; clients give `None` here
    /// and are resolved by [`World`].
    fn resolve(&self, name: &str) -> Option<()> {
        if self.clients.iter().any(|c| c.name == name)
            || self.caches.iter().any(|c| c.name == name)
            || self.load_balancers.iter().any(|l| l.name == name)
        {
            return Some(());
        }
        if self
            .databases
            .iter()
            .any(|d| d.addresses().iter().any(|(n, _)| n == name))
        {
            return Some(());
        }
        let (base, idx) = match name.rsplit_once('.') {
            Some((b, i)) => (b, i.parse::<u32>().ok()),
            None => (name, None),
        };
        let svc = self
            .services
            .iter()
            .find(|s| s.name == name || (s.name == base && idx.is_some()))?;
        match idx {
            Some(i) if svc.name == base => (i < svc.instances).then_some(()),
            _ => Some(()),
        }
    }

    /// Builds the world of one run.
    pub fn build(&self, opts: &RunOptions) -> Result<World, Vec<ConfigError>> {
        self.validate()?;
        let regions = self.region_names();
        let region_ix = |r: &Option<String>| -> usize {
            r.as_ref()
                .and_then(|r| regions.iter().position(|x| x == r))
                .unwrap_or(0)
        };
        let mut net = if self.network.latency.is_none()
            && self.network.regions.is_empty()
            && self.network.loss == 0.0
            && self.network.partitions.is_empty()
        {
            Network::ideal()
        } else {
            Network::new(
                regions.len(),
                self.network.latency.as_ref().map(|d| d.0.clone()),
                self.network.loss,
            )
        };
        for (k, d) in &self.network.regions {
            if let Some((a, b)) = k.split_once(':') {
                let ia = regions.iter().position(|x| x == a).unwrap_or(0);
                let ib = regions.iter().position(|x| x == b).unwrap_or(0);
                net.set_between(ia, ib, d.0.clone());
            }
        }

        let shared = Shared {
            stats: crate::stats::Stats {
                warmup: opts.warmup,
                end: opts.duration,
                series_on: opts.timeseries.is_some_and(|d| d > SimTime::ZERO),
                cache_lost_writes: self
                    .caches
                    .iter()
                    .any(|c| c.write_policy == WritePolicy::WriteBehind)
                    .then_some(0),
                ..Default::default()
            },
            trace: crate::trace::Tracer::new(opts.trace, opts.trace_sample),
            ..Default::default()
        };
        let mut sim: Simulation<Node> = Simulation::new(Network::ideal(), shared);
        let mut ids: BTreeMap<String, Vec<ActorId>> = BTreeMap::new();
        let mut placement = Vec::new();
        let mut total_workers = 0u64;
        let mut total_instances = 0u64;
        let key_space = self.clients.iter().map(|c| c.keys).max().unwrap_or(1);
        let routers: Vec<DbRouter> = self
            .databases
            .iter()
            .enumerate()
            .map(|(di, d)| DbRouter::new(di, d, key_space))
            .collect();
        for (si, s) in self.services.iter().enumerate() {
            let mut v = Vec::new();
            // Every instance an autoscaler or a timed change may add exists from the
            // start, switched off.
            let scaled_max = self
                .autoscalers
                .iter()
                .find(|a| a.subject() == s.name)
                .map_or(0, |a| a.max)
                .max(self.changed_max_instances(&s.name));
            let mut state = ServiceState::default();
            state.name = s.name.clone();
            state.workers = s.workers.max(1);
            state.changed = self.changes.iter().any(|c| {
                c.target == s.name && (c.set.workers.is_some() || c.set.instances.is_some())
            });
            state.prices = s.cost.is_some().then(|| {
                (0..s.instances.max(scaled_max))
                    .filter_map(|i| s.hourly_cost(i))
                    .collect()
            });
            state.scaled = scaled_max > 0;
            let router = s
                .database
                .as_ref()
                .and_then(|n| self.databases.iter().position(|d| &d.name == n))
                .map(|di| routers[di].clone());
            for i in 0..s.instances.max(scaled_max) {
                let name = format!("{}.{i}", s.name);
                let mut inst = Instance::new(si, i, s);
                inst.data.db = router.clone();
                let id = sim.add(Node::Instance(inst), rng::stream(opts.seed, &name));
                placement.push((id, region_ix(&s.region)));
                ids.insert(name, vec![id]);
                state.instances.push(id);
                if i < s.instances {
                    v.push(id);
                    state.life.push(Life::Off);
                    total_workers += u64::from(s.workers.max(1));
                    total_instances += 1;
                } else {
                    state.life.push(Life::Off);
                }
            }
            let initial = s.instances;
            sim.shared_mut().compute.services.push(state);
            for i in 0..initial as usize {
                sim.shared_mut().set_life(si, i, Life::Ready, SimTime::ZERO);
            }
            ids.insert(s.name.clone(), v);
        }
        for (di, d) in self.databases.iter().enumerate() {
            let mut state = DbState::default();
            for sh in 0..d.shards {
                let mut shard = ShardState::default();
                for n in 0..=d.replicas {
                    let name = d.node_name(sh, n);
                    let mut node = DbNode::new(di, sh as usize, n as usize, d);
                    let election = node.first_election_check(opts.duration);
                    let id = sim.add(Node::Db(node), rng::stream(opts.seed, &name));
                    if let Some((t, m)) = election {
                        sim.schedule(t, id, m);
                    }
                    let region = match &d.replica_region {
                        Some(_) if n > 0 => &d.replica_region,
                        _ => &d.region,
                    };
                    placement.push((id, region_ix(region)));
                    shard.nodes.push(NodeState {
                        actor: id,
                        alive: true,
                        ..Default::default()
                    });
                }
                state.shards.push(shard);
            }
            for (name, members) in d.addresses() {
                let v = members
                    .iter()
                    .map(|&(sh, n)| state.shards[sh as usize].nodes[n as usize].actor)
                    .collect();
                ids.insert(name, v);
            }
            sim.shared_mut().dbs.push(state);
        }
        sim.shared_mut().oracle.enabled = !self.databases.is_empty();
        let mut lbs = Vec::new();
        for l in &self.load_balancers {
            // Behind an autoscaler (or timed changes of the instance count) the balancer
            // holds every instance the service may have and follows its members.
            let resized = self.changed_max_instances(&l.backends) > 0;
            let scaled = resized || self.autoscalers.iter().any(|a| a.subject() == l.backends);
            let svc = sim.shared().service_index(&l.backends);
            let backends = match svc {
                Some(si) if scaled => sim.shared().all_instances(si).to_vec(),
                _ => ids.get(&l.backends).cloned().unwrap_or_default(),
            };
            let mut cfg = l.clone();
            if let (true, Some(w)) = (resized, cfg.weights.as_mut()) {
                // Instances a change adds weigh 1.
                w.resize(backends.len().max(w.len()), 1);
            }
            let mut lb = LoadBalancer::new(&cfg, &l.backends, backends);
            if let (Some(si), true) = (svc, scaled) {
                lb.track_members(si);
            }
            let id = sim.add(Node::LoadBalancer(lb), rng::stream(opts.seed, &l.name));
            placement.push((id, region_ix(&l.region)));
            ids.insert(l.name.clone(), vec![id]);
            lbs.push(id);
        }
        self.build_caches(
            &mut sim,
            &mut ids,
            &mut placement,
            opts.seed,
            &region_ix,
            &routers,
        );
        for (qi, q) in self.queues.iter().enumerate() {
            let id = sim.add(
                Node::JobQueue(JobQueue::new(qi, q)),
                rng::stream(opts.seed, &q.name),
            );
            placement.push((id, 0));
            ids.insert(q.name.clone(), vec![id]);
            let mut st = QueueState {
                name: q.name.clone(),
                workers: q.workers,
                ..Default::default()
            };
            st.win_workers.set(SimTime::ZERO, f64::from(q.workers));
            st.workers_tw.set(SimTime::ZERO, f64::from(q.workers));
            sim.shared_mut().compute.queues.push(st);
            if let Some(si) = self.services.iter().position(|s| s.name == q.producer) {
                let ratio = q.enqueue_ratio;
                for a in sim.actors_mut() {
                    if let Node::Instance(inst) = a {
                        if inst.service == si {
                            inst.jobs.push((id, ratio));
                        }
                    }
                }
            }
        }
        for (ai, a) in self.autoscalers.iter().enumerate() {
            let subject = a.subject();
            let what = if let Some(si) = self.services.iter().position(|s| s.name == subject) {
                Scaled::Service(si)
            } else if let Some(qi) = self.queues.iter().position(|q| q.name == subject) {
                Scaled::Queue(qi, ids[subject][0])
            } else {
                continue;
            };
            let scaler = Autoscaler::new(a, what, opts.duration);
            let (t, m) = scaler.first_tick();
            let name = format!("autoscaler.{ai}.{subject}");
            let id = sim.add(Node::Autoscaler(scaler), rng::stream(opts.seed, &name));
            sim.schedule(t, id, m);
        }
        for (si, s) in self.services.iter().enumerate() {
            if let Some(c) = &s.canary {
                let ctl = CanaryController::new(si, c, opts.duration);
                let t = ctl.start_time();
                let id = sim.add(
                    Node::Canary(ctl),
                    rng::stream(opts.seed, &format!("{}.canary", s.name)),
                );
                if t < opts.duration {
                    sim.schedule(t, id, Msg::Wake(0));
                }
            }
        }
        let mut clients = Vec::new();
        for c in &self.clients {
            let targets = ids.get(&c.target).cloned().unwrap_or_default();
            let mut client = Client::new(c, targets, opts.duration);
            client.target_service = self.services.iter().position(|s| s.name == c.target);
            let id = sim.add(Node::Client(client), rng::stream(opts.seed, &c.name));
            placement.push((id, region_ix(&c.region)));
            ids.insert(c.name.clone(), vec![id]);
            clients.push(id);
        }
        for (id, r) in placement {
            net.place(id, r);
        }
        for p in &self.network.partitions {
            let side = |names: &Vec<String>| -> Vec<ActorId> {
                names
                    .iter()
                    .flat_map(|n| ids.get(n).cloned().unwrap_or_default())
                    .collect()
            };
            if let [a, b] = p.sides.as_slice() {
                net.add_partition(Partition::new(p.from.0, p.until.0, &side(a), &side(b)));
            }
        }
        // The real network replaces the ideal one now that every actor is placed.
        let mut sim = sim.with_network(net);
        for f in &self.faults {
            let targets = f
                .target()
                .and_then(|n| ids.get(n))
                .cloned()
                .unwrap_or_default();
            for (t, action) in f.events() {
                for &id in &targets {
                    // Instances take the fault itself; databases and caches crash and recover.
                    let msg = match (&sim.actors()[id as usize], action) {
                        (Node::Instance(_), a) => Msg::Fault(a),
                        (_, FaultAction::Kill) => Msg::Kill,
                        (_, FaultAction::Recover) => Msg::Recover,
                        (_, FaultAction::Slow(_)) => continue,
                    };
                    sim.schedule(t, id, msg);
                }
            }
        }
        for c in &self.changes {
            for setting in c.set.list() {
                let k = sim.shared().settings.len() as u32;
                sim.shared_mut().settings.push(setting);
                let svc = sim.shared().service_index(&c.target);
                let targets: Vec<ActorId> = match (setting, svc) {
                    // Every instance, spares included, so that one switched on later has
                    // the service's workers too.
                    (Setting::Workers(_), Some(si)) => sim.shared().all_instances(si).to_vec(),
                    // The first instance resizes the service through the shared state.
                    (Setting::Instances(_), Some(si)) => sim
                        .shared()
                        .all_instances(si)
                        .first()
                        .copied()
                        .into_iter()
                        .collect(),
                    _ => ids.get(&c.target).cloned().unwrap_or_default(),
                };
                for id in targets {
                    sim.schedule(c.at.0, id, Msg::Change(k));
                }
            }
        }
        for &c in lbs.iter().chain(&clients) {
            let mut first = Vec::new();
            match &sim.actors()[c as usize] {
                Node::Client(cl) => cl.start(&mut |t, m| first.push((t, m))),
                Node::LoadBalancer(lb) => lb.start(&mut |t, m| first.push((t, m))),
                _ => {}
            }
            for (t, m) in first {
                sim.schedule(t, c, m);
            }
        }
        {
            let g = &mut sim.shared_mut().stats.gauges;
            g.workers.set(SimTime::ZERO, total_workers as f64);
            g.instances.set(SimTime::ZERO, total_instances as f64);
        }
        if let Some(iv) = opts.timeseries.filter(|d| *d > SimTime::ZERO) {
            let id = sim.add(
                Node::Sampler(Sampler {
                    interval: iv,
                    until: opts.duration,
                    start: SimTime::ZERO,
                }),
                rng::stream(opts.seed, "sampler"),
            );
            sim.schedule(iv.min(opts.duration), id, Msg::Tick);
        }
        Ok(World {
            sim,
            opts: opts.clone(),
            model: self.clone(),
            clients,
            ids,
            window_open: false,
            cap: RunCap::default(),
        })
    }

    /// Adds the cache actors: one per shared cache or CDN edge, one per service instance
    /// for a local cache, and points the services' data paths at them. Built after the
    /// services (origins) and before the clients (which may target an edge); an edge whose
    /// origin is another edge is built after it. When databases exist, the cache of a
    /// service with a database reads and writes it: `Cache::set_backend(Backend::Db(..))`.
    fn build_caches(
        &self,
        sim: &mut Simulation<Node>,
        ids: &mut BTreeMap<String, Vec<ActorId>>,
        placement: &mut Vec<(ActorId, usize)>,
        seed: u64,
        region_ix: &dyn Fn(&Option<String>) -> usize,
        routers: &[DbRouter],
    ) {
        // The database a service reads and writes through its cache, if it has one.
        let db_of = |s: &ServiceConfig| -> Option<Backend> {
            let n = s.database.as_ref()?;
            let di = self.databases.iter().position(|d| &d.name == n)?;
            Some(Backend::Db(routers[di].clone()))
        };
        let mut built = vec![false; self.caches.len()];
        // Validation rules out loops, so every pass builds at least one edge.
        for _ in 0..self.caches.len() {
            for (ci, c) in self.caches.iter().enumerate() {
                let waits = c.origin.as_ref().is_some_and(|o| {
                    self.caches
                        .iter()
                        .position(|k| &k.name == o)
                        .is_some_and(|oi| !built[oi])
                });
                if built[ci] || waits {
                    continue;
                }
                built[ci] = true;
                let backend = c
                    .origin
                    .as_ref()
                    .and_then(|o| ids.get(o))
                    .map_or(Backend::None, |v| Backend::Actors(v.clone()));
                let users: Vec<&ServiceConfig> = self
                    .services
                    .iter()
                    .filter(|s| s.cache.as_deref() == Some(c.name.as_str()))
                    .collect();
                let mut all = Vec::new();
                if c.local {
                    for s in users {
                        let backend = db_of(s).unwrap_or_else(|| backend.clone());
                        for i in 0..s.instances {
                            let inst = format!("{}.{i}", s.name);
                            let name = format!("{}@{inst}", c.name);
                            let id = sim.add(
                                Node::Cache(Box::new(Cache::new(ci, c, backend.clone()))),
                                rng::stream(seed, &name),
                            );
                            placement.push((id, region_ix(&s.region)));
                            if let Some(&inst_id) = ids.get(&inst).and_then(|v| v.first()) {
                                if let Node::Instance(x) = &mut sim.actors_mut()[inst_id as usize] {
                                    x.data.entry = Some(id);
                                    x.data.local = true;
                                }
                            }
                            ids.insert(name, vec![id]);
                            all.push(id);
                        }
                    }
                } else {
                    let backend = users.iter().find_map(|s| db_of(s)).unwrap_or(backend);
                    let id = sim.add(
                        Node::Cache(Box::new(Cache::new(ci, c, backend))),
                        rng::stream(seed, &c.name),
                    );
                    placement.push((id, region_ix(&c.region)));
                    for s in users {
                        for &inst_id in ids.get(&s.name).map(Vec::as_slice).unwrap_or(&[]) {
                            if let Node::Instance(x) = &mut sim.actors_mut()[inst_id as usize] {
                                x.data.entry = Some(id);
                                x.data.local = false;
                            }
                        }
                    }
                    all.push(id);
                }
                ids.insert(c.name.clone(), all);
            }
        }
    }
}

fn unknown_name<'a>(
    path: String,
    name: &str,
    valid: impl Iterator<Item = &'a str> + Clone,
) -> ConfigError {
    let hint = did_you_mean(name, valid.clone())
        .map(|s| format!(" (did you mean {s:?}?)"))
        .unwrap_or_default();
    let list: Vec<&str> = valid.collect();
    ConfigError::new(
        path,
        format!(
            "no component is named {name:?}{hint}; known names: {}",
            if list.is_empty() {
                "none".to_string()
            } else {
                list.join(", ")
            }
        ),
    )
}

/// One run, built and ready.
pub struct World {
    sim: Simulation<Node>,
    opts: RunOptions,
    model: ModelConfig,
    clients: Vec<ActorId>,
    ids: BTreeMap<String, Vec<ActorId>>,
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

impl World {
    /// Delivers `msg` at time `at` to every actor `name` addresses (an instance, a
    /// service, a database node such as `db.primary`, a shard, a database): the hook
    /// faults use to kill and recover components. Returns whether the name is known.
    pub fn inject(&mut self, name: &str, at: SimTime, msg: Msg) -> bool {
        let Some(ids) = self.ids.get(name) else {
            return false;
        };
        for &id in ids {
            self.sim.schedule(at, id, msg);
        }
        true
    }

    /// Sets the limits the run must stay within while it runs.
    pub fn set_cap(&mut self, cap: RunCap) {
        self.cap = cap;
    }

    /// Runs to time `t`, checking the [`RunCap`] every [`CAP_CHECK_EVENTS`] events.
    fn run_capped(&mut self, t: SimTime) -> Result<(), RunError> {
        if self.cap.events == u64::MAX && self.cap.bytes == u64::MAX {
            self.sim.run_until(t);
            return Ok(());
        }
        loop {
            let next = self
                .sim
                .events()
                .saturating_add(CAP_CHECK_EVENTS)
                .min(self.cap.events);
            if self.sim.run_until_capped(t, next) {
                return Ok(());
            }
            self.check_cap()?;
        }
    }

    fn check_cap(&self) -> Result<(), RunError> {
        let (ev_flag, mem_flag, cause) = &self.cap.names;
        let at = self.sim.now();
        if self.sim.events() >= self.cap.events {
            return Err(RunError::Limit(format!(
                "stopped at {:.2e} events (simulated time {at}), the limit of events per run ({ev_flag}); the estimate before the run was lower. Raise {ev_flag}, or lower {cause}",
                self.sim.events() as f64
            )));
        }
        let bytes = self.sim.queued_events() as u64
            * 2
            * std::mem::size_of::<dssim_engine::queue::Event<Msg>>() as u64
            + self.sim.shared().reqs.bytes() as u64;
        if bytes > self.cap.bytes {
            return Err(RunError::Limit(format!(
                "stopped at simulated time {at}: {} events waiting and {} requests in flight hold {:.1} MiB, past the limit of memory per run ({mem_flag}). Raise {mem_flag}, or lower {cause}",
                self.sim.queued_events(),
                self.sim.shared().reqs.live(),
                bytes as f64 / (1024.0 * 1024.0)
            )));
        }
        Ok(())
    }

    /// Runs to the end: warm-up, the measured window, then a drain (no new arrivals) until
    /// every counted request has ended or as long again as the run has passed; requests
    /// still unanswered then end as dropped.
    pub fn run(mut self) -> Result<RunReport, RunError> {
        let o = self.opts.clone();
        if !self.window_open {
            // Warm-up under the run's limits, then the window opens (a no-op run_until).
            self.run_capped(o.warmup)?;
            self.open_window();
        }
        self.run_capped(o.duration)?;
        let mut components = self.component_rows();
        let compute = crate::compute::summary(&self.sim.shared().compute, o.duration);
        components.extend(compute.rows.iter().cloned());
        let drain_limit = o.duration + o.duration.max(SimTime::from_secs(1));
        loop {
            let mut n = 0u64;
            self.sim.run_while(drain_limit, |s| {
                n += 1;
                s.stats.pending > 0 && n <= CAP_CHECK_EVENTS
            });
            if n <= CAP_CHECK_EVENTS {
                break;
            }
            self.check_cap()?;
        }
        // Whatever is still unanswered ends as dropped, exactly once.
        let now = self.sim.now();
        let shared = self.sim.shared_mut();
        let mut leftovers = Vec::new();
        shared.reqs.for_each_live(|r| {
            if !r.abandoned && shared.stats.counts(r.first_sent) {
                leftovers.push((r.first_sent, r.op));
            }
        });
        for (t, op) in leftovers {
            shared.stats.finished(t, op, now, Outcome::Dropped);
        }
        shared.trace.close_all(now);
        let st = &shared.stats;
        if !st.conserved() {
            return Err(RunError::Conservation {
                requests: st.requests,
                ended: st.ok + st.errors + st.timeouts + st.shed + st.dropped,
                pending: st.pending,
            });
        }
        let _ = &self.clients;
        let mut report = RunReport::new(
            &self.opts,
            &self.sim.shared().stats,
            components,
            self.sim.events(),
            self.model.services.iter().map(|s| s.instances).sum(),
        );
        compute.fill(
            &mut report,
            &self.sim.shared().compute,
            &self.model.services,
        );
        if self.opts.trace > 0 {
            report.trace = Some(self.trace_report());
        }
        if !self.model.databases.is_empty() {
            let shared = self.sim.shared();
            crate::database::report(&shared.oracle, &mut report);
            // Writes lost by the databases (failover) and by caches (write-behind) add up.
            let lost = shared.oracle.lost_writes + shared.stats.cache_lost_writes.unwrap_or(0);
            report.set("lost_writes", crate::report::Cell::Int(lost));
        }
        Ok(report)
    }

    /// Runs to the end of the warm-up and restarts the averages there: the measured window.
    fn open_window(&mut self) {
        let o = self.opts.clone();
        // After an `advance` past the warm-up the averages already run from time zero.
        let fresh = self.sim.now() <= o.warmup;
        self.sim.run_until(o.warmup);
        if fresh {
            for a in self.sim.actors_mut() {
                match a {
                    Node::Instance(i) => {
                        i.stats.busy.reset(o.warmup);
                        i.stats.queued.reset(o.warmup);
                        i.stats.workers.reset(o.warmup);
                    }
                    Node::Db(d) => d.stats.conns.reset(o.warmup),
                    _ => {}
                }
            }
        }
        crate::compute::reset_window(&mut self.sim.shared_mut().compute, o.warmup);
        self.window_open = true;
    }

    /// Test and wiring hook: makes every instance of service `service` call the first
    /// instance of service `to` as its data tier (a stand-in database), until the data
    /// components wire [`crate::datapath::DataPath`] themselves. Returns false when either
    /// name is unknown.
    #[doc(hidden)]
    pub fn route_data_to(&mut self, service: &str, to: &str) -> bool {
        let sh = self.sim.shared();
        let (Some(from), Some(target)) = (sh.service_index(service), sh.service_index(to)) else {
            return false;
        };
        let Some(&entry) = sh.compute.services[target].instances.first() else {
            return false;
        };
        for a in self.sim.actors_mut() {
            if let Node::Instance(i) = a {
                if i.service == from {
                    i.data.entry = Some(entry);
                }
            }
        }
        true
    }

    /// Runs the world up to time `t` without ending the run, so its components can be
    /// inspected with [`World::node`]; [`World::run`] then carries on from there.
    pub fn advance(&mut self, t: SimTime) {
        self.sim.run_until(t);
    }

    /// Events waiting in the queue, and of them the cancelled ones not yet skipped: what
    /// the run's timers hold (tests check it stays O(requests in flight)).
    pub fn queued_events(&self) -> (usize, usize) {
        self.sim.queued()
    }

    /// The component or instance called `name` (`"lb"`, `"app.2"`, `"users"`); a name
    /// that stands for several instances (a service) gives `None`.
    pub fn node(&self, name: &str) -> Option<&Node> {
        match self.ids.get(name)?.as_slice() {
            [id] => self.sim.actors().get(*id as usize),
            _ => None,
        }
    }

    /// The run's trace, each actor named by its most specific name (`app.2`, `db.replica1`).
    fn trace_report(&self) -> crate::trace::RunTrace {
        let mut names: BTreeMap<ActorId, &str> = BTreeMap::new();
        for (name, ids) in &self.ids {
            if let [id] = ids.as_slice() {
                let e = names.entry(*id).or_insert(name);
                if name.len() > e.len() {
                    *e = name;
                }
            }
        }
        let actors = self.sim.actors();
        self.sim.shared().trace.report(|id| {
            let kind = match actors.get(id as usize) {
                Some(Node::Client(_)) => "client",
                Some(Node::Instance(_)) => "service",
                Some(Node::Db(_)) => "database",
                Some(Node::Cache(c))
                    if self
                        .model
                        .caches
                        .get(c.index)
                        .is_some_and(|k| k.tier == Tier::Cdn) =>
                {
                    "cdn"
                }
                Some(Node::Cache(_)) => "cache",
                Some(Node::LoadBalancer(_)) => "load_balancer",
                Some(Node::JobQueue(_)) => "queue",
                _ => "other",
            };
            let name = names
                .get(&id)
                .map_or_else(|| format!("actor {id}"), |n| n.to_string());
            (name, kind)
        })
    }

    fn component_rows(&self) -> Vec<ComponentRow> {
        let now = self.sim.now();
        let mut rows = Vec::new();
        for (si, s) in self.model.services.iter().enumerate() {
            let mut requests = 0;
            let mut busy = 0.0;
            let mut queued = 0.0;
            let mut hist = dssim_engine::Histogram::new();
            let mut workers = 0.0;
            for a in self.sim.actors() {
                if let Node::Instance(i) = a {
                    if i.service == si {
                        requests += i.stats.requests;
                        busy += i.stats.busy.mean(now);
                        queued += i.stats.queued.mean(now);
                        hist.merge(&i.stats.sojourn);
                        workers += f64::from(i.workers());
                    }
                }
            }
            let state = &self.sim.shared().compute.services[si];
            if state.changed {
                // Timed changes: the workers of the running instances, averaged.
                workers = state.workers_tw.mean(now);
            }
            rows.push(ComponentRow {
                component: s.name.clone(),
                kind: "service",
                requests,
                utilization: (workers > 0.0).then(|| busy / workers),
                mean_queue: Some(queued),
                p99_ms: hist.quantile_ms(0.99),
                mean_ms: hist.mean_ms(),
                hit_ratio: None,
            });
            // Then one row per instance (`app.0`, `app.1`, ...), in index order: the
            // instances it starts with, and any other that served in the window.
            let mut instances: Vec<&crate::service::Instance> = self
                .sim
                .actors()
                .iter()
                .filter_map(|a| match a {
                    Node::Instance(i) if i.service == si => Some(i),
                    _ => None,
                })
                .filter(|i| i.index < s.instances || i.stats.requests > 0)
                .collect();
            instances.sort_by_key(|i| i.index);
            for i in instances {
                let workers = i.mean_workers(now);
                rows.push(ComponentRow {
                    component: format!("{}.{}", s.name, i.index),
                    kind: "instance",
                    requests: i.stats.requests,
                    utilization: (workers > 0.0).then(|| i.stats.busy.mean(now) / workers),
                    mean_queue: Some(i.stats.queued.mean(now)),
                    p99_ms: i.stats.sojourn.quantile_ms(0.99),
                    mean_ms: i.stats.sojourn.mean_ms(),
                    hit_ratio: None,
                });
            }
        }
        for a in self.sim.actors() {
            if let Node::Db(d) = a {
                let cfg = &self.model.databases[d.db];
                rows.push(d.component_row(cfg.node_name(d.shard as u32, d.node as u32), now));
            }
        }
        self.cache_rows(&mut rows);
        for l in &self.model.load_balancers {
            if let Some(Node::LoadBalancer(lb)) = self.node(&l.name) {
                rows.push(ComponentRow {
                    component: l.name.clone(),
                    kind: "load_balancer",
                    requests: lb.stats.requests,
                    utilization: None,
                    mean_queue: None,
                    p99_ms: lb.stats.sojourn.quantile_ms(0.99),
                    mean_ms: lb.stats.sojourn.mean_ms(),
                    hit_ratio: None,
                });
            }
        }
        rows
    }

    /// One row per `[[caches]]` entry (its nodes summed), a `<edge>.origin` row per CDN
    /// (origin calls; `hit_ratio` = origin offload), a `<client>.browser` row per client
    /// with a browser cache.
    fn cache_rows(&self, rows: &mut Vec<ComponentRow>) {
        let window = (self.opts.duration - self.opts.warmup).as_secs_f64();
        for (ci, c) in self.model.caches.iter().enumerate() {
            let mut st = CacheStats::default();
            let mut nodes = 0u32;
            for a in self.sim.actors() {
                if let Node::Cache(k) = a {
                    if k.index == ci {
                        st.absorb(&k.stats);
                        nodes += 1;
                    }
                }
            }
            let ratio = |a: u64, b: u64| (b > 0).then(|| a as f64 / b as f64);
            rows.push(ComponentRow {
                component: c.name.clone(),
                kind: match c.tier {
                    Tier::App => "cache",
                    Tier::Cdn => "cdn",
                },
                requests: st.requests,
                utilization: (c.max_ops.is_some() && window > 0.0 && nodes > 0)
                    .then(|| st.busy_ns as f64 / 1e9 / (window * f64::from(nodes))),
                mean_queue: None,
                p99_ms: st.sojourn.quantile_ms(0.99),
                mean_ms: st.sojourn.mean_ms(),
                hit_ratio: ratio(st.hits, st.lookups),
            });
            if c.tier == Tier::Cdn {
                let origin = st.backend_reads + st.passed;
                rows.push(ComponentRow {
                    component: format!("{}.origin", c.name),
                    kind: "cdn_origin",
                    requests: origin,
                    utilization: None,
                    mean_queue: None,
                    p99_ms: None,
                    mean_ms: None,
                    hit_ratio: ratio(st.requests.saturating_sub(origin), st.requests),
                });
            }
        }
        for (c, &id) in self.model.clients.iter().zip(&self.clients) {
            if let Some(Node::Client(cl)) = self.sim.actors().get(id as usize) {
                if let Some(b) = &cl.browser {
                    rows.push(ComponentRow {
                        component: format!("{}.browser", c.name),
                        kind: "browser_cache",
                        requests: b.lookups,
                        utilization: None,
                        mean_queue: None,
                        p99_ms: None,
                        mean_ms: None,
                        hit_ratio: (b.lookups > 0).then(|| b.hits as f64 / b.lookups as f64),
                    });
                }
            }
        }
    }
}

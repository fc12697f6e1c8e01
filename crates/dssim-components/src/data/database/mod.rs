//! Databases: replicated, sharded stores of versioned keys.
//!
//! ```text
//!                          +----------- shard s ----------------------+
//!   app --route(key)-->    | primary --replicate(delay)--> replica 0  |
//!   (DbRouter)             |    ^   \-------------------->  replica 1  |
//!                          |    +------- acks (semi_sync, sync) ------+
//!                          +------------------------------------------+
//! ```
//!
//! What it models:
//! - **Shards** (`shards`, `sharding` = `hash` | `range` | `directory` | `consistent_hash`):
//!   a key lives on one shard; [`ShardMap`] maps keys to shards and [`moved_fraction`] says
//!   how many keys move when the shard count changes (mod-N hashing moves about N/(N+1),
//!   consistent hashing and a directory about 1/(N+1)).
//! - **Nodes**: each shard has a primary (`db.primary`, `db.shard.3.primary`) and
//!   `replicas` replicas (`db.replica.0`, `db.shard.3.replica.0`; indices from 0, like
//!   service instances). A node accepts a request on a connection (up to
//!   `max_connections`; beyond that it refuses with an error) and executes up to `cores`
//!   of them at once; the others wait for a core in FIFO order (without `cores`, every
//!   accepted request executes at once and latency never grows with load). Service time is
//!   `read_time` or `write_time`, times the Universal Scalability Law factor
//!   `1 + σ(N−1) + κN(N−1)` for the N requests in service (`contention`), so throughput
//!   `X(N) = N / (S (1 + σ(N−1) + κN(N−1)))` peaks at `N* = √((1−σ)/κ)`; plus a
//!   `disk_read` when the key is not in the node's buffer pool (an LRU over `pages` keys).
//!   With `iops`, the node's disk serves one read every `1/iops` seconds, in FIFO order: a
//!   miss first waits for the disk (an M/D/1 queue for Poisson misses), then takes its
//!   `disk_read`.
//! - **Replication**: every commit on a primary gets a global version and goes to the
//!   shard's replication log; each change reaches each replica `replication_delay` later
//!   (plus the mean network latency between them). `async` acknowledges at commit,
//!   `semi_sync` after one replica acknowledged, `sync` after every live replica did.
//!   Changes travel independently (a later one may overtake an earlier one; a replica keeps
//!   the newest version of each key), so every change's lag follows `replication_delay`
//!   whatever the load. A partition stops shipping; the backlog is shipped when it heals.
//!   A change still in its delay when its primary crashes never leaves it.
//! - **Reads** go to the primary, to one of the nearest replicas (at random), or (`read_your_writes(w)`) to the
//!   primary for a user who wrote within `w`, else to a replica.
//! - **Failover** (`failover = { detect, promote }`): when a primary is killed
//!   ([`crate::faults::FaultAction::Kill`]), the replica that applied the most changes becomes primary
//!   `detect + promote` later; acknowledged changes it lacks are lost writes.
//! - **CAP** (`consistency`): `cp` serves reads and writes only at a primary that reaches a
//!   majority of its shard (anything else is refused: errors). A `cp` shard is a consensus
//!   group: when live replicas have lost sight of their (live) primary for
//!   `election_timeout` and reach a majority of the shard, that majority elects the most
//!   up-to-date node among them (after `failover.promote`, when given); the old primary,
//!   in the minority, refuses until the partition heals and then rejoins as a replica.
//!   So under a partition only the minority side closes. `ap` serves from whatever
//!   node the caller reaches, accepts writes on a replica cut off from its primary and
//!   reconciles them when the partition heals (last writer wins by version; a key written
//!   on both sides is a conflict).
//! - **Batching** (`batch = { size, max_wait }`): a primary commits writes in groups (one
//!   `write_time` per group, as a group commit). A group goes when it holds `size` writes or
//!   its oldest write has waited `max_wait`, one group at a time (the log device), apart
//!   from `cores`; writes that arrive while a group is being written wait for the next.
//! - **CQRS read model** (`replica_read_time`): replicas that serve reads in their own time
//!   (a denormalized view), fed asynchronously by the replication log.
//!
//! Measures (components.csv, one row per node, kind `database`): requests, mean
//! connections in use, connections / `max_connections`, p99 time in the node, buffer-pool
//! hit ratio. Replication lag, stale reads, read-your-writes and monotonic-read
//! violations, lost writes and conflicts are judged by the [`crate::consistency::Oracle`].

use std::fmt;

use dssim_engine::SimTime;
use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize, Serializer};

use crate::units::{DistSpec, Dur};

/// How keys are split over shards.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Sharding {
    /// `hash(key) mod shards`.
    #[default]
    Hash,
    /// Contiguous key ranges of equal width (hot spots with skewed keys).
    Range,
    /// A lookup table of hash buckets, rebalanced by moving as few buckets as possible.
    Directory,
    /// A hash ring with virtual nodes.
    ConsistentHash,
}

/// What decides the shard of a request (`shard_by`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ShardBy {
    /// The key, through `sharding` (hash, range, directory, consistent hashing).
    #[default]
    Key,
    /// The user's tenant, through a directory that places whole tenants on shards
    /// (`tenants`): one tenant's data all on one shard, a big tenant a hot shard.
    Tenant,
    /// The user's home region: the shard placed in that region (`shard_regions`); a share
    /// `travellers` of users live in another region than the one they connect from.
    Region,
}

impl ShardBy {
    /// Whether it is the default (`key`).
    pub fn is_key(&self) -> bool {
        *self == ShardBy::Key
    }
}

/// `tenants = { count, skew }`: the tenants of a database sharded by tenant.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tenants {
    /// Number of tenants (customers, organisations).
    pub count: u32,
    /// Size skew: tenant `t` (from 0) holds a share of the users proportional to
    /// `1/(t+1)^skew` (0 = equal tenants; 1 = Zipf: the biggest of 20 tenants has 28 %).
    #[serde(default)]
    pub skew: f64,
}

impl Tenants {
    /// Each tenant's share of the users (and of the requests, users being equally active).
    pub fn shares(&self) -> Vec<f64> {
        let w: Vec<f64> = (0..self.count.max(1))
            .map(|t| (f64::from(t) + 1.0).powf(-self.skew))
            .collect();
        let sum: f64 = w.iter().sum();
        w.into_iter().map(|x| x / sum).collect()
    }
}

/// `cross_shard = { share, shards }`: queries that must ask several shards.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CrossShard {
    /// Share of reads that touch several shards (a report over all tenants, a search of
    /// every region): the read goes to its own shard and at once to the next `shards − 1`
    /// shards, and is answered when the slowest answers.
    pub share: f64,
    /// Shards such a query touches, its own included; every shard when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shards: Option<u32>,
}

/// When a write is acknowledged.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Replication {
    /// At commit on the primary.
    #[default]
    Async,
    /// When one replica has applied it.
    SemiSync,
    /// When every live replica has applied it.
    Sync,
}

/// Behaviour under a partition.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Consistency {
    /// Serve what you have; accept writes on both sides and reconcile later.
    #[default]
    Ap,
    /// Serve only at a primary that reaches a majority of its shard.
    Cp,
}

/// Where reads go.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ReadFrom {
    /// Always the primary.
    #[default]
    Primary,
    /// A random live replica (the primary when there is none).
    Replicas,
    /// The primary for a user who wrote within the window, else a replica.
    ReadYourWrites(SimTime),
}

impl ReadFrom {
    /// Parses `primary`, `replicas`, `read_your_writes(5s)`.
    pub fn parse(text: &str) -> Result<ReadFrom, String> {
        let t = text.trim();
        match t {
            "primary" => return Ok(ReadFrom::Primary),
            "replicas" => return Ok(ReadFrom::Replicas),
            _ => {}
        }
        if let Some(inner) = t
            .strip_prefix("read_your_writes")
            .and_then(|r| r.trim().strip_prefix('('))
            .and_then(|r| r.strip_suffix(')'))
        {
            return dssim_engine::parse_duration(inner.trim())
                .map(ReadFrom::ReadYourWrites)
                .map_err(|e| format!("read_your_writes(window): {e}"));
        }
        let hint = crate::did_you_mean(t, ["primary", "replicas", "read_your_writes"])
            .map(|s| format!(" (did you mean {s:?}?)"))
            .unwrap_or_default();
        Err(format!(
            "unknown read_from {text:?}{hint}: expected primary, replicas or \
             read_your_writes(window), such as \"read_your_writes(5s)\""
        ))
    }
}

impl fmt::Display for ReadFrom {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReadFrom::Primary => f.write_str("primary"),
            ReadFrom::Replicas => f.write_str("replicas"),
            ReadFrom::ReadYourWrites(w) => write!(f, "read_your_writes({w})"),
        }
    }
}

impl<'de> Deserialize<'de> for ReadFrom {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        ReadFrom::parse(&s).map_err(de::Error::custom)
    }
}

impl Serialize for ReadFrom {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

/// `failover = { detect, promote }`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Failover {
    /// Time to notice that the primary is gone.
    pub detect: Dur,
    /// Time to promote a replica once noticed.
    pub promote: Dur,
}

/// `buffer_pool = { pages, disk_read }`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BufferPool {
    /// Keys held in memory per node (one key = one page).
    pub pages: u64,
    /// Extra time to read a key that is not in memory.
    pub disk_read: DistSpec,
    /// Disk reads per second the node's disk can serve (each read occupies it `1/iops`, in
    /// FIFO order); unlimited when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iops: Option<f64>,
}

/// `contention = { sigma, kappa }`: the Universal Scalability Law per node.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Contention {
    /// Contention (serialisation) coefficient σ.
    pub sigma: f64,
    /// Coherency (crosstalk) coefficient κ.
    pub kappa: f64,
}

impl Contention {
    /// Slowdown of each request when `n` are in service: `1 + σ(n−1) + κn(n−1)`.
    #[inline]
    pub fn factor(&self, n: u32) -> f64 {
        let n = f64::from(n.max(1));
        1.0 + self.sigma * (n - 1.0) + self.kappa * n * (n - 1.0)
    }

    /// Concurrency of peak throughput, `√((1−σ)/κ)` (infinite when κ = 0).
    pub fn peak(&self) -> f64 {
        if self.kappa > 0.0 {
            ((1.0 - self.sigma).max(0.0) / self.kappa).sqrt()
        } else {
            f64::INFINITY
        }
    }
}

/// `batch = { size, max_wait }`: group commit of writes.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Batch {
    /// Writes per group at most. One `write_time` commits the whole group, one group at a
    /// time, so the primary commits at most `size / write_time` writes per second (1 = no
    /// batching: one write per flush).
    pub size: u32,
    /// Longest the oldest write of a group waits for the group to fill; then the group is
    /// written as it is. At a low write rate λ a group seldom fills: a write waits
    /// `max_wait × (1 + λ·max_wait/2) / (1 + λ·max_wait)` on average before its flush.
    pub max_wait: Dur,
}

/// A `[[databases]]` entry.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseConfig {
    /// Unique name; nodes are `name.primary`, `name.replica.0`, `name.shard.2.primary`, ...
    pub name: String,
    /// Replicas per shard.
    #[serde(default)]
    pub replicas: u32,
    /// Number of shards.
    #[serde(default = "one")]
    pub shards: u32,
    /// How keys map to shards.
    #[serde(default)]
    pub sharding: Sharding,
    /// What decides a request's shard: `key` (default: the key, through `sharding`),
    /// `tenant` (the user's tenant, through a directory of whole tenants: `tenants`) or
    /// `region` (the user's home region: the shard `shard_regions` places there).
    #[serde(default, skip_serializing_if = "ShardBy::is_key")]
    pub shard_by: ShardBy,
    /// Tenants, for `shard_by = "tenant"` (ignored with another shard key, so that a sweep
    /// can switch it): `{ count, skew }`. A user belongs to one tenant
    /// (tenant `t` has a share of the users ∝ `1/(t+1)^skew`); the directory places the
    /// biggest tenants first, each on the shard with the least load so far. A user is a
    /// client's user id: give the clients `user_ids` (with one user, every request is one
    /// tenant's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenants: Option<Tenants>,
    /// Region of each shard (its primary and, without `replica_region`, its replicas), in
    /// shard order: one name per shard. Geographic sharding (`shard_by = "region"`) sends
    /// a user's queries to the shard of their home region.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shard_regions: Vec<String>,
    /// `shard_by = "region"` (ignored otherwise): share of users whose home region (where
    /// their data lives) is not the region they connect from (travellers): their queries
    /// cross regions. 0 when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub travellers: Option<f64>,
    /// Cross-shard queries: `{ share, shards }`, a share of reads that ask `shards` shards
    /// at once (all when absent) and wait for the slowest (scatter-gather). Only for
    /// services that query the database directly (not through a cache).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cross_shard: Option<CrossShard>,
    /// Time to serve a read (before contention and disk).
    pub read_time: DistSpec,
    /// Time to serve a write (before contention and disk).
    pub write_time: DistSpec,
    /// Concurrent requests per node; more are refused (errors). Unlimited when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_connections: Option<u32>,
    /// Queries a node executes at once (its cores or disks); a query that finds them all
    /// busy waits in a FIFO queue, still holding its connection (so `max_connections`
    /// bounds queued and executing queries together). Unlimited when absent: every query
    /// runs at once, and a node's latency does not grow with its load.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cores: Option<u32>,
    /// When writes are acknowledged.
    #[serde(default)]
    pub replication: Replication,
    /// Per-change shipping delay to each replica; zero when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replication_delay: Option<DistSpec>,
    /// Where reads go (with no replicas, every read goes to the primary).
    #[serde(default)]
    pub read_from: ReadFrom,
    /// Behaviour under partitions.
    #[serde(default)]
    pub consistency: Consistency,
    /// Automatic promotion of a replica when a primary dies; none when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failover: Option<Failover>,
    /// `cp` only: how long replicas wait, cut off from a live primary, before the side
    /// holding a majority of the shard elects a new primary (default 1 s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub election_timeout: Option<Dur>,
    /// Hot keys in memory; every access is in memory when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub buffer_pool: Option<BufferPool>,
    /// Universal Scalability Law coefficients; no contention when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contention: Option<Contention>,
    /// Group commit of writes on a primary (write batching: many writes share one flush of
    /// the log, at the price of waiting for their group); none when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch: Option<Batch>,
    /// Region of the primaries (and of the replicas unless `replica_region` says otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Region of the replicas.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replica_region: Option<String>,
    /// Time to serve a read on a node that is not the primary; `read_time` when absent
    /// (no effect without replicas).
    /// This makes the replicas a CQRS read model: a denormalized view, kept up to date
    /// asynchronously from the write side (the replication log, `replication_delay` the
    /// projection lag), answers a query without the joins the primary's normalized tables
    /// need (`read_time`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replica_read_time: Option<DistSpec>,
}

fn one() -> u32 {
    1
}

/// Most replicas per shard (a node is one bit of a 64-bit mask).
pub const MAX_REPLICAS: u32 = 63;

impl DatabaseConfig {
    /// The name of node `node` (0 = primary, `i + 1` = replica `i`) of shard `shard`.
    pub fn node_name(&self, shard: u32, node: u32) -> String {
        let role = role_name(node);
        if self.shards <= 1 {
            format!("{}.{role}", self.name)
        } else {
            format!("{}.shard.{shard}.{role}", self.name)
        }
    }

    /// Every name that addresses nodes of this database, with the (shard, node) pairs it
    /// stands for: the database, each shard, each node (plus `db.shard.0.primary`-style
    /// aliases when there is one shard).
    pub fn addresses(&self) -> Vec<(String, Vec<(u32, u32)>)> {
        let nodes = self.replicas + 1;
        let all: Vec<(u32, u32)> = (0..self.shards)
            .flat_map(|s| (0..nodes).map(move |n| (s, n)))
            .collect();
        let mut v = vec![(self.name.clone(), all)];
        for s in 0..self.shards {
            v.push((
                format!("{}.shard.{s}", self.name),
                (0..nodes).map(|n| (s, n)).collect(),
            ));
            for n in 0..nodes {
                v.push((self.node_name(s, n), vec![(s, n)]));
                if self.shards <= 1 {
                    v.push((
                        format!("{}.shard.0.{}", self.name, role_name(n)),
                        vec![(s, n)],
                    ));
                }
            }
        }
        v
    }
}

pub(super) fn role_name(node: u32) -> String {
    if node == 0 {
        "primary".to_string()
    } else {
        format!("replica.{}", node - 1)
    }
}

mod node;
mod router;
mod shard_map;
mod state;

pub use node::*;
pub use router::*;
pub use shard_map::*;
pub use state::*;

/// Fills the consistency columns of runs.csv from the oracle (models with databases).
pub fn report(o: &crate::consistency::Oracle, r: &mut crate::report::RunReport) {
    use crate::report::Cell;
    r.set("repl_lag_p50_ms", o.repl_lag.quantile_ms(0.5).into());
    r.set("repl_lag_p99_ms", o.repl_lag.quantile_ms(0.99).into());
    r.set("repl_lag_mean_ms", o.repl_lag_mean_ms().into());
    r.set("stale_reads", Cell::Int(o.stale_reads));
    r.set("ryw_violations", Cell::Int(o.ryw_violations));
    r.set("lost_writes", Cell::Int(o.lost_writes));
    r.set("stale_age_p99_ms", o.stale_age.quantile_ms(0.99).into());
    r.set("monotonic_violations", Cell::Int(o.monotonic_violations));
    r.set("write_conflicts", Cell::Int(o.conflicts));
    r.set("db_refused", Cell::Int(o.refused));
}

/// Checks one `[[databases]]` entry; problems are reported with paths
/// (`databases.db.replicas`).
pub fn validate(d: &DatabaseConfig, errs: &mut Vec<crate::ConfigError>) {
    use crate::ConfigError;
    let p = format!("databases.{}", d.name);
    if d.shards == 0 || d.shards > u32::from(u16::MAX) {
        errs.push(ConfigError::new(
            format!("{p}.shards"),
            format!("must be between 1 and {}; found {}", u16::MAX, d.shards),
        ));
    }
    if d.replicas > MAX_REPLICAS {
        errs.push(ConfigError::new(
            format!("{p}.replicas"),
            format!(
                "at most {MAX_REPLICAS} replicas per shard; found {}",
                d.replicas
            ),
        ));
    }
    if d.max_connections == Some(0) {
        errs.push(ConfigError::new(
            format!("{p}.max_connections"),
            "must be at least 1 (remove it for no limit)",
        ));
    }
    if d.cores == Some(0) {
        errs.push(ConfigError::new(
            format!("{p}.cores"),
            "must be at least 1 (remove it for no limit)",
        ));
    }
    if let ReadFrom::ReadYourWrites(w) = d.read_from {
        if w == SimTime::ZERO {
            errs.push(ConfigError::new(
                format!("{p}.read_from"),
                "the read_your_writes window must be above zero, such as \"read_your_writes(5s)\"",
            ));
        }
    }
    if let Some(c) = &d.contention {
        if !(c.sigma.is_finite() && (0.0..1.0).contains(&c.sigma)) {
            errs.push(ConfigError::new(
                format!("{p}.contention.sigma"),
                format!("must be at least 0 and below 1; found {}", c.sigma),
            ));
        }
        if !(c.kappa.is_finite() && c.kappa >= 0.0) {
            errs.push(ConfigError::new(
                format!("{p}.contention.kappa"),
                format!("must be a finite number, zero or more; found {}", c.kappa),
            ));
        }
    }
    if let Some(iops) = d.buffer_pool.as_ref().and_then(|b| b.iops) {
        if !(iops.is_finite() && iops > 0.0) {
            errs.push(ConfigError::new(
                format!("{p}.buffer_pool.iops"),
                format!("must be a number above zero (remove it for no limit); found {iops}"),
            ));
        }
    }
    validate_shard_key(d, &p, errs);
    if let Some(b) = &d.batch {
        if b.size == 0 {
            errs.push(ConfigError::new(
                format!("{p}.batch.size"),
                "must be at least 1",
            ));
        }
    }
}

/// Checks `shard_by` and the options that go with it, and `cross_shard`.
fn validate_shard_key(d: &DatabaseConfig, p: &str, errs: &mut Vec<crate::ConfigError>) {
    use crate::ConfigError;
    match (d.shard_by, &d.tenants) {
        (ShardBy::Tenant, None) => errs.push(ConfigError::new(
            format!("{p}.tenants"),
            "shard_by = \"tenant\" needs the tenants, such as tenants = { count = 20, skew = 1.0 }",
        )),
        (ShardBy::Tenant, Some(t)) => {
            if t.count == 0 {
                errs.push(ConfigError::new(
                    format!("{p}.tenants.count"),
                    "must be at least 1",
                ));
            }
            if !(t.skew.is_finite() && (0.0..=10.0).contains(&t.skew)) {
                errs.push(ConfigError::new(
                    format!("{p}.tenants.skew"),
                    format!("must be between 0 and 10; found {}", t.skew),
                ));
            }
        }
        // Tenants (and travellers) may stay in a model whose `shard_by` a sweep changes:
        // they are read only with the shard key they belong to.
        _ => {}
    }
    if !d.shard_regions.is_empty() && d.shard_regions.len() != d.shards as usize {
        errs.push(ConfigError::new(
            format!("{p}.shard_regions"),
            format!(
                "needs one region per shard: {} shards, {} regions given",
                d.shards,
                d.shard_regions.len()
            ),
        ));
    }
    if d.shard_by == ShardBy::Region && d.shard_regions.is_empty() {
        errs.push(ConfigError::new(
            format!("{p}.shard_regions"),
            "shard_by = \"region\" needs the region of each shard, such as shard_regions = [\"eu\", \"us\"]",
        ));
    }
    if let Some(t) = d.travellers {
        if !(t.is_finite() && (0.0..=1.0).contains(&t)) {
            errs.push(ConfigError::new(
                format!("{p}.travellers"),
                format!("must be a share between 0 and 1; found {t}"),
            ));
        }
    }
    if let Some(c) = &d.cross_shard {
        if !(c.share.is_finite() && (0.0..=1.0).contains(&c.share)) {
            errs.push(ConfigError::new(
                format!("{p}.cross_shard.share"),
                format!("must be a share between 0 and 1; found {}", c.share),
            ));
        }
        if let Some(k) = c.shards {
            if k < 2 || k > d.shards {
                errs.push(ConfigError::new(
                    format!("{p}.cross_shard.shards"),
                    format!(
                        "must be between 2 and the database's {} shards; found {k} (leave it out for all)",
                        d.shards
                    ),
                ));
            }
        }
        if d.shards < 2 {
            errs.push(ConfigError::new(
                format!("{p}.cross_shard"),
                "a database with one shard has no cross-shard queries: set shards = 2 or more",
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consistent_hashing_moves_about_one_in_n_plus_one() {
        let keys = 100_000;
        for n in [4u32, 8, 16] {
            let ch = moved_fraction(Sharding::ConsistentHash, keys, n, n + 1);
            let ideal = 1.0 / f64::from(n + 1);
            // The new shard's share varies with the virtual nodes: relative sd ≈ 1/√160.
            assert!(
                (ch - ideal).abs() < 0.3 * ideal,
                "consistent hashing {n}->{}: moved {ch}, ideal {ideal}",
                n + 1
            );
            let dir = moved_fraction(Sharding::Directory, keys, n, n + 1);
            assert!((dir - ideal).abs() < 0.1 * ideal, "directory moved {dir}");
            let modn = moved_fraction(Sharding::Hash, keys, n, n + 1);
            let theory = f64::from(n) / f64::from(n + 1);
            assert!(
                (modn - theory).abs() < 0.01,
                "mod-N moved {modn}, theory {theory}"
            );
        }
    }

    #[test]
    fn shard_maps_balance_keys_and_range_keeps_neighbours_together() {
        let keys = 40_000u64;
        for sh in [
            Sharding::Hash,
            Sharding::Range,
            Sharding::Directory,
            Sharding::ConsistentHash,
        ] {
            let m = ShardMap::new(sh, 4, keys);
            let mut count = [0u64; 4];
            for k in 0..keys {
                count[m.shard_of(k)] += 1;
            }
            let tol = if sh == Sharding::ConsistentHash {
                0.25
            } else {
                0.03
            };
            for c in count {
                let share = c as f64 / keys as f64;
                assert!((share - 0.25).abs() < tol, "{sh:?}: share {share}");
            }
        }
        let r = ShardMap::new(Sharding::Range, 4, keys);
        assert_eq!(r.shard_of(0), 0);
        assert_eq!(r.shard_of(9_999), 0);
        assert_eq!(r.shard_of(10_000), 1);
        assert_eq!(r.shard_of(keys + 5), 3);
    }

    #[test]
    fn usl_peaks_at_n_star() {
        let c = Contention {
            sigma: 0.05,
            kappa: 0.002,
        };
        let x = |n: u32| f64::from(n) / c.factor(n);
        let best = (1..200).max_by(|&a, &b| x(a).total_cmp(&x(b))).unwrap();
        assert!(
            (f64::from(best) - c.peak()).abs() <= 1.0,
            "{best} vs {}",
            c.peak()
        );
        assert!(x(100) < x(best) * 0.6);
    }

    #[test]
    fn read_from_parses_and_prints() {
        assert_eq!(ReadFrom::parse("primary"), Ok(ReadFrom::Primary));
        assert_eq!(
            ReadFrom::parse("read_your_writes(5s)"),
            Ok(ReadFrom::ReadYourWrites(SimTime::from_secs(5)))
        );
        assert_eq!(
            ReadFrom::parse("read_your_writes(5s)").unwrap().to_string(),
            "read_your_writes(5s)"
        );
        let e = ReadFrom::parse("replica").unwrap_err();
        assert!(e.contains("did you mean \"replicas\""), "{e}");
    }

    #[test]
    fn replication_payload_round_trips() {
        assert_eq!(unpack(pack(3, 7, 123_456)), (3, 7, 123_456));
    }
}

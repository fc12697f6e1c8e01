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
//!   ([`Msg::Kill`]), the replica that applied the most changes becomes primary
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
//!   `write_time` per group, as a group commit).
//!
//! Measures (components.csv, one row per node, kind `database`): requests, mean
//! connections in use, connections / `max_connections`, p99 time in the node, buffer-pool
//! hit ratio. Replication lag, stale reads, read-your-writes and monotonic-read
//! violations, lost writes and conflicts are judged by the [`crate::consistency::Oracle`].

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::Arc;

use dssim_engine::{ActorId, Dist, Histogram, SimTime, TimeWeighted};
use rand::Rng as _;
use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize, Serializer};

use crate::node::{Ctx, Msg};
use crate::request::{reply, Op, ReqId, Status};
use crate::trace;
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
        let hint = dssim_engine::did_you_mean(t, ["primary", "replicas", "read_your_writes"])
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
    /// Writes per group at most.
    pub size: u32,
    /// Longest a write waits for its group to fill.
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
    /// Group commit of writes; none when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch: Option<Batch>,
    /// Region of the primaries (and of the replicas unless `replica_region` says otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// Region of the replicas.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replica_region: Option<String>,
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

fn role_name(node: u32) -> String {
    if node == 0 {
        "primary".to_string()
    } else {
        format!("replica.{}", node - 1)
    }
}

// ---------------------------------------------------------------------------------------
// Sharding
// ---------------------------------------------------------------------------------------

/// A 64-bit mixer (splitmix64 finaliser): spreads keys evenly over the hash space.
#[inline]
pub fn mix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

const DIRECTORY_BUCKETS: usize = 4096;
const RING_VNODES: u64 = 160;

/// Maps keys to shards.
#[derive(Clone, Debug)]
pub enum ShardMap {
    /// `mix(key) mod n`.
    Hash(u64),
    /// `key × n / keys`.
    Range {
        /// Shards.
        n: u64,
        /// Key space size.
        keys: u64,
    },
    /// `table[mix(key) mod BUCKETS]`.
    Directory(Vec<u16>),
    /// Sorted `(position, shard)` ring.
    Ring(Vec<(u64, u32)>),
}

impl ShardMap {
    /// The map for `shards` shards over a key space of `keys` keys.
    pub fn new(sharding: Sharding, shards: u32, keys: u64) -> ShardMap {
        let n = shards.max(1);
        match sharding {
            Sharding::Hash => ShardMap::Hash(u64::from(n)),
            Sharding::Range => ShardMap::Range {
                n: u64::from(n),
                keys: keys.max(1),
            },
            Sharding::Directory => ShardMap::Directory(directory(n)),
            Sharding::ConsistentHash => {
                let mut ring: Vec<(u64, u32)> = (0..n)
                    .flat_map(|s| {
                        (0..RING_VNODES).map(move |v| (mix64((u64::from(s) << 32 | v) ^ 0x5EED), s))
                    })
                    .collect();
                ring.sort_unstable();
                ShardMap::Ring(ring)
            }
        }
    }

    /// The shard of `key`.
    #[inline]
    pub fn shard_of(&self, key: u64) -> usize {
        match self {
            ShardMap::Hash(1) => 0,
            ShardMap::Hash(n) => (mix64(key) % n) as usize,
            ShardMap::Range { n, keys } => {
                let k = u128::from(key.min(keys - 1));
                ((k * u128::from(*n) / u128::from(*keys)) as u64).min(n - 1) as usize
            }
            ShardMap::Directory(t) => t[(mix64(key) % DIRECTORY_BUCKETS as u64) as usize] as usize,
            ShardMap::Ring(r) => {
                let h = mix64(key);
                let i = r.partition_point(|&(p, _)| p < h);
                r.get(i).unwrap_or(&r[0]).1 as usize
            }
        }
    }
}

/// A directory for `n` shards, grown one shard at a time: each new shard takes buckets
/// from the fullest shards, so going from n to n+1 shards moves about 1/(n+1) of the keys.
fn directory(n: u32) -> Vec<u16> {
    let mut table = vec![0u16; DIRECTORY_BUCKETS];
    let mut owned: Vec<Vec<usize>> = vec![(0..DIRECTORY_BUCKETS).rev().collect()];
    for s in 1..(n as usize).min(u16::MAX as usize) {
        let target = DIRECTORY_BUCKETS / (s + 1);
        owned.push(Vec::new());
        while owned[s].len() < target {
            let donor = (0..s)
                .max_by_key(|&d| (owned[d].len(), usize::MAX - d))
                .unwrap_or(0);
            let Some(b) = owned[donor].pop() else { break };
            table[b] = s as u16;
            owned[s].push(b);
        }
    }
    table
}

/// The fraction of keys `0..keys` whose shard changes when a database with `sharding`
/// goes from `from` to `to` shards (the cost of resharding).
pub fn moved_fraction(sharding: Sharding, keys: u64, from: u32, to: u32) -> f64 {
    let a = ShardMap::new(sharding, from, keys);
    let b = ShardMap::new(sharding, to, keys);
    let moved = (0..keys)
        .filter(|&k| a.shard_of(k) != b.shard_of(k))
        .count();
    moved as f64 / keys.max(1) as f64
}

// ---------------------------------------------------------------------------------------
// Shared run-time state of databases (in `Shared.dbs`)
// ---------------------------------------------------------------------------------------

/// One change in a shard's replication log.
#[derive(Clone, Debug)]
pub struct Entry {
    /// Key changed.
    pub key: u64,
    /// Version written.
    pub version: u64,
    /// Commit time on the primary.
    pub commit: SimTime,
    /// Nodes that applied it (bit = node index).
    pub applied: u64,
    /// Nodes whose acknowledgement reached the primary.
    pub acks: u64,
    /// Whether the write was acknowledged to its caller.
    pub acked: bool,
    /// Whether its request was first sent in the measured window.
    pub counted: bool,
    /// The trace number of its request (0: not traced), so replicas record its apply.
    pub trace: u32,
}

/// A node's data and health, shared so that failover and reconciliation can see them.
#[derive(Clone, Debug, Default)]
pub struct NodeState {
    /// The node's actor.
    pub actor: ActorId,
    /// Alive (not killed).
    pub alive: bool,
    /// Key -> newest version held (looked up, never iterated).
    pub data: HashMap<u64, u64>,
    /// Next log sequence number to ship to this node.
    pub shipped: u64,
    /// Writes accepted here while cut off from the primary (`ap`): (key, version, the
    /// version this node held before).
    pub divergent: Vec<(u64, u64, u64)>,
}

/// One shard: its nodes and its replication log.
#[derive(Clone, Debug, Default)]
pub struct ShardState {
    /// Index (in `nodes`) of the current primary.
    pub primary: usize,
    /// Bumped at every promotion; replication messages of an older epoch are ignored.
    pub epoch: u64,
    /// Node 0 is the configured primary, node `i + 1` replica `i`.
    pub nodes: Vec<NodeState>,
    /// Changes not yet applied by every live replica (or still waiting for acks).
    pub log: VecDeque<Entry>,
    /// Sequence number of `log[0]`.
    pub base: u64,
}

impl ShardState {
    /// Sequence number of the next change.
    pub fn next_seq(&self) -> u64 {
        self.base + self.log.len() as u64
    }

    /// The entry with sequence number `seq`.
    pub fn entry(&self, seq: u64) -> Option<&Entry> {
        seq.checked_sub(self.base)
            .and_then(|i| self.log.get(i as usize))
    }

    fn entry_mut(&mut self, seq: u64) -> Option<&mut Entry> {
        seq.checked_sub(self.base)
            .and_then(|i| self.log.get_mut(i as usize))
    }

    /// Live nodes other than the primary, as a bit mask.
    pub fn live_replicas(&self) -> u64 {
        self.nodes
            .iter()
            .enumerate()
            .filter(|(i, n)| *i != self.primary && n.alive)
            .fold(0, |m, (i, _)| m | 1 << i)
    }

    /// Drops the oldest changes once every live replica applied them and their writes
    /// were acknowledged.
    fn trim(&mut self) {
        let live = self.live_replicas();
        while let Some(e) = self.log.front() {
            if e.applied & live == live && e.acked {
                self.log.pop_front();
                self.base += 1;
            } else {
                break;
            }
        }
    }
}

/// The replication lag gauge of timeseries.csv at `now`: over every live replica of every
/// shard, the age of the oldest change it has not applied yet (0 when it is up to date), the
/// largest in ms; `None` when no database has replicas.
pub fn replication_lag_gauge(dbs: &[DbState], now: SimTime) -> Option<f64> {
    let mut lag: Option<SimTime> = None;
    for shard in dbs.iter().flat_map(|d| &d.shards) {
        for (i, node) in shard.nodes.iter().enumerate() {
            if i == shard.primary || !node.alive {
                continue;
            }
            let oldest = shard
                .log
                .iter()
                .find(|e| e.applied & (1 << i) == 0)
                .map_or(SimTime::ZERO, |e| now.saturating_sub(e.commit));
            lag = Some(lag.map_or(oldest, |l| l.max(oldest)));
        }
    }
    lag.map(|l| l.as_secs_f64() * 1e3)
}

/// One database's run-time state.
#[derive(Clone, Debug, Default)]
pub struct DbState {
    /// Shards.
    pub shards: Vec<ShardState>,
    /// User -> time of their last write (for `read_your_writes` routing).
    pub last_write: HashMap<u32, SimTime>,
}

// ---------------------------------------------------------------------------------------
// Router
// ---------------------------------------------------------------------------------------

/// Picks the database node (shard, then primary or replica) for a request. Callers
/// (service data paths, caches on a miss or a write) hold one and call [`DbRouter::route`].
#[derive(Clone, Debug)]
pub struct DbRouter {
    /// Index of the database in `Shared.dbs`.
    pub db: usize,
    map: Arc<ShardMap>,
    read_from: ReadFrom,
    consistency: Consistency,
}

impl DbRouter {
    /// A router for database `db` (index in `Shared.dbs`) over `keys` keys.
    pub fn new(db: usize, cfg: &DatabaseConfig, keys: u64) -> Self {
        DbRouter {
            db,
            map: Arc::new(ShardMap::new(cfg.sharding, cfg.shards, keys)),
            read_from: cfg.read_from,
            consistency: cfg.consistency,
        }
    }

    /// The shard of `key`.
    #[inline]
    pub fn shard_of(&self, key: u64) -> usize {
        self.map.shard_of(key)
    }

    /// The node that should serve request `req`, as seen from the calling actor: the
    /// shard's primary for writes, the node `read_from` names for reads (among replicas,
    /// one of the nearest, at random). When that node
    /// is dead or cut off from the caller, another node the caller reaches (under `ap` it
    /// serves; under `cp` it refuses, an error rather than a hang).
    pub fn route(&self, ctx: &mut Ctx<'_>, req: ReqId) -> ActorId {
        let Some((key, op, user)) = ctx.shared.reqs.get(req).map(|r| (r.key, r.op, r.user)) else {
            // A request no longer in the table: any node will do (it ignores it).
            let shard = &ctx.shared.dbs[self.db].shards[0];
            return shard.nodes[shard.primary].actor;
        };
        let now = ctx.now();
        let s = self.shard_of(key);
        let db = &ctx.shared.dbs[self.db];
        let shard = &db.shards[s];
        let primary = shard.primary;
        let wants_replica = op == Op::Read
            && self.consistency == Consistency::Ap
            && match self.read_from {
                ReadFrom::Primary => false,
                ReadFrom::Replicas => true,
                ReadFrom::ReadYourWrites(w) => db
                    .last_write
                    .get(&user)
                    .is_none_or(|&t| now.saturating_sub(t) >= w),
            };
        // Bit i: node i is alive and reachable from the caller.
        let mut ok = 0u64;
        for (i, node) in shard.nodes.iter().enumerate() {
            if node.alive && ctx.reachable(node.actor) {
                ok |= 1 << i;
            }
        }
        let mut replicas = ok & !(1 << primary);
        if wants_replica && replicas.count_ones() > 1 {
            // Prefer the nearest replicas (a replica in the caller's own region).
            let me = ctx.me();
            let lat = |i: usize| ctx.net().mean_latency(me, shard.nodes[i].actor);
            let best = (0..shard.nodes.len())
                .filter(|&i| replicas & (1 << i) != 0)
                .map(lat)
                .fold(f64::INFINITY, f64::min);
            for i in 0..shard.nodes.len() {
                if replicas & (1 << i) != 0 && lat(i) > best * 1.5 + 1.0 {
                    replicas &= !(1 << i);
                }
            }
        }
        let mask = if wants_replica && replicas != 0 {
            replicas
        } else if ok & (1 << primary) != 0 || ok == 0 {
            return shard.nodes[primary].actor;
        } else {
            ok
        };
        let count = mask.count_ones();
        let mut k = if count > 1 {
            ctx.rng.random_range(0..count)
        } else {
            0
        };
        let shard = &ctx.shared.dbs[self.db].shards[s];
        for (i, node) in shard.nodes.iter().enumerate() {
            if mask & (1 << i) != 0 {
                if k == 0 {
                    return node.actor;
                }
                k -= 1;
            }
        }
        shard.nodes[primary].actor
    }
}

// ---------------------------------------------------------------------------------------
// Buffer pool: an LRU over keys
// ---------------------------------------------------------------------------------------

const NIL: u32 = u32::MAX;

/// An LRU set of keys with O(1) touch (a hash index over an intrusive list in a `Vec`).
#[derive(Clone, Debug)]
pub struct Lru {
    cap: usize,
    index: HashMap<u64, u32>,
    slots: Vec<(u64, u32, u32)>,
    head: u32,
    tail: u32,
}

impl Lru {
    /// An empty LRU holding at most `cap` keys.
    pub fn new(cap: u64) -> Self {
        Lru {
            cap: cap.min(u64::from(u32::MAX - 1)) as usize,
            index: HashMap::new(),
            slots: Vec::new(),
            head: NIL,
            tail: NIL,
        }
    }

    fn unlink(&mut self, i: u32) {
        let (_, p, n) = self.slots[i as usize];
        if p != NIL {
            self.slots[p as usize].2 = n;
        } else {
            self.head = n;
        }
        if n != NIL {
            self.slots[n as usize].1 = p;
        } else {
            self.tail = p;
        }
    }

    fn push_front(&mut self, i: u32) {
        self.slots[i as usize].1 = NIL;
        self.slots[i as usize].2 = self.head;
        if self.head != NIL {
            self.slots[self.head as usize].1 = i;
        }
        self.head = i;
        if self.tail == NIL {
            self.tail = i;
        }
    }

    /// Marks `key` used; returns whether it was held (a hit). A miss loads it, evicting
    /// the least recently used key when full.
    pub fn touch(&mut self, key: u64) -> bool {
        if self.cap == 0 {
            return false;
        }
        if let Some(&i) = self.index.get(&key) {
            if self.head != i {
                self.unlink(i);
                self.push_front(i);
            }
            return true;
        }
        let i = if self.slots.len() < self.cap {
            self.slots.push((key, NIL, NIL));
            (self.slots.len() - 1) as u32
        } else {
            let t = self.tail;
            self.unlink(t);
            let old = self.slots[t as usize].0;
            self.index.remove(&old);
            self.slots[t as usize].0 = key;
            t
        };
        self.index.insert(key, i);
        self.push_front(i);
        false
    }
}

// ---------------------------------------------------------------------------------------
// The node actor
// ---------------------------------------------------------------------------------------

const WAKE_DETECT: u64 = 1;
const WAKE_PROMOTE: u64 = 2;
const WAKE_RESHIP: u64 = 3;
const WAKE_RECONCILE: u64 = 4;
const WAKE_BATCH: u64 = 5;
const WAKE_FLUSHED: u64 = 6;
const WAKE_ELECTION: u64 = 7;
/// The election timeout when `election_timeout` is absent.
const ELECTION_TIMEOUT: SimTime = SimTime::from_secs(1);
/// How often a node retries shipping or reconciling across a partition.
const RETRY: SimTime = SimTime::from_millis(100);

/// Replication message payload: epoch (16 bits), node (8 bits), sequence (40 bits).
fn pack(epoch: u64, node: usize, seq: u64) -> u64 {
    (epoch & 0xFFFF) << 48 | (node as u64 & 0xFF) << 40 | (seq & 0xFF_FFFF_FFFF)
}

fn unpack(x: u64) -> (u64, usize, u64) {
    (x >> 48, ((x >> 40) & 0xFF) as usize, x & 0xFF_FFFF_FFFF)
}

/// Per-node measurements.
#[derive(Debug, Default)]
pub struct DbNodeStats {
    /// Requests that arrived after warm-up.
    pub requests: u64,
    /// Requests refused (connections full, no quorum, not the primary under `cp`).
    pub refused: u64,
    /// Connections in use over time.
    pub conns: TimeWeighted,
    /// Time in the node of requests answered ok after warm-up.
    pub sojourn: Histogram,
    /// Buffer-pool hits.
    pub pool_hits: u64,
    /// Buffer-pool misses.
    pub pool_misses: u64,
}

/// Static parameters of a node.
#[derive(Debug)]
struct Params {
    read_time: Dist,
    write_time: Dist,
    max_conns: u32,
    cores: u32,
    replication: Replication,
    delay: Option<Dist>,
    consistency: Consistency,
    failover: Option<(SimTime, SimTime)>,
    /// `cp` with replicas: (election timeout, promotion delay).
    election: Option<(SimTime, SimTime)>,
    disk_read: Option<Dist>,
    contention: Option<Contention>,
    batch: Option<(usize, SimTime)>,
}

/// One database node (a primary or a replica of one shard).
#[derive(Debug)]
pub struct DbNode {
    /// Index of the database in the model.
    pub db: usize,
    /// Shard index.
    pub shard: usize,
    /// Node index in the shard (0 = configured primary).
    pub node: usize,
    p: Arc<Params>,
    conns: u32,
    active: u32,
    held: Vec<(ReqId, SimTime)>,
    /// Queries waiting for a core: (request, arrival).
    ready: VecDeque<(ReqId, SimTime)>,
    waiting: Vec<(ReqId, u64, SimTime)>,
    batch: Vec<(ReqId, SimTime)>,
    flushing: Vec<(ReqId, SimTime)>,
    batch_timer: bool,
    reship_armed: bool,
    reconcile_armed: bool,
    /// `cp`: since when this replica has seen its live primary cut off.
    cut_since: Option<SimTime>,
    /// Election checks stop here (the end of arrivals).
    until: SimTime,
    pool: Option<Lru>,
    /// Measurements.
    pub stats: DbNodeStats,
}

impl DbNode {
    /// Node `node` of shard `shard` of database `db` (configured as `cfg`).
    pub fn new(db: usize, shard: usize, node: usize, cfg: &DatabaseConfig) -> Self {
        let p = Params {
            read_time: cfg.read_time.0.clone(),
            write_time: cfg.write_time.0.clone(),
            max_conns: cfg.max_connections.unwrap_or(u32::MAX),
            cores: cfg.cores.unwrap_or(u32::MAX).max(1),
            replication: cfg.replication,
            delay: cfg.replication_delay.as_ref().map(|d| d.0.clone()),
            consistency: cfg.consistency,
            failover: cfg.failover.as_ref().map(|f| (f.detect.0, f.promote.0)),
            election: (cfg.consistency == Consistency::Cp && cfg.replicas > 0).then(|| {
                (
                    cfg.election_timeout.map_or(ELECTION_TIMEOUT, |d| d.0),
                    cfg.failover.as_ref().map_or(SimTime::ZERO, |f| f.promote.0),
                )
            }),
            disk_read: cfg.buffer_pool.as_ref().map(|b| b.disk_read.0.clone()),
            contention: cfg.contention,
            batch: cfg
                .batch
                .as_ref()
                .map(|b| (b.size.max(1) as usize, b.max_wait.0)),
        };
        DbNode {
            db,
            shard,
            node,
            p: Arc::new(p),
            conns: 0,
            active: 0,
            held: Vec::new(),
            ready: VecDeque::new(),
            waiting: Vec::new(),
            batch: Vec::new(),
            flushing: Vec::new(),
            batch_timer: false,
            reship_armed: false,
            reconcile_armed: false,
            cut_since: None,
            until: SimTime::ZERO,
            pool: cfg.buffer_pool.as_ref().map(|b| Lru::new(b.pages)),
            stats: DbNodeStats::default(),
        }
    }

    /// The first election check of a `cp` node, for a run whose arrivals end at `until`
    /// (`None` when the node holds no elections).
    pub fn first_election_check(&mut self, until: SimTime) -> Option<(SimTime, Msg)> {
        self.until = until;
        let (timeout, _) = self.p.election?;
        let first = Self::election_tick(timeout);
        (first < until).then_some((first, Msg::Wake(WAKE_ELECTION)))
    }

    /// Election checks run four times per timeout.
    fn election_tick(timeout: SimTime) -> SimTime {
        SimTime::from_nanos((timeout.as_nanos() / 4).max(1_000_000))
    }

    /// A `cp` replica's periodic check: cut off from a live primary for the election
    /// timeout, with a majority of the shard in reach, it calls an election; the most
    /// up-to-date node it reaches (itself included; the lowest index on a tie) is promoted.
    fn election_check(&mut self, ctx: &mut Ctx<'_>) {
        let Some((timeout, promote)) = self.p.election else {
            return;
        };
        let now = ctx.now();
        let tick = Self::election_tick(timeout);
        if now + tick < self.until {
            ctx.timer(tick, Msg::Wake(WAKE_ELECTION));
        }
        let st = self.st(ctx);
        let primary = &st.nodes[st.primary];
        if !self.alive(ctx)
            || self.is_primary(ctx)
            || !primary.alive // a dead primary is failover's case
            || ctx.reachable(primary.actor)
        {
            self.cut_since = None;
            return;
        }
        let since = *self.cut_since.get_or_insert(now);
        if now - since < timeout || !self.has_quorum(ctx) {
            return;
        }
        self.cut_since = None;
        let st = self.st(ctx);
        let applied = |i: usize| st.log.iter().filter(|e| e.applied & (1 << i) != 0).count();
        let mut best = (self.node, applied(self.node));
        for (i, n) in st.nodes.iter().enumerate() {
            if i == self.node || i == st.primary || !n.alive || !ctx.reachable(n.actor) {
                continue;
            }
            let have = applied(i);
            if have > best.1 || (have == best.1 && i < best.0) {
                best = (i, have);
            }
        }
        let actor = st.nodes[best.0].actor;
        ctx.send_local(actor, promote, Msg::Wake(WAKE_PROMOTE));
    }

    /// Connections allowed (`u32::MAX` when unlimited).
    pub fn max_connections(&self) -> u32 {
        self.p.max_conns
    }

    /// Whether the node has a buffer pool.
    pub fn has_pool(&self) -> bool {
        self.pool.is_some()
    }

    fn st<'a>(&self, ctx: &'a Ctx<'_>) -> &'a ShardState {
        &ctx.shared.dbs[self.db].shards[self.shard]
    }

    fn st_mut<'a>(&self, ctx: &'a mut Ctx<'_>) -> &'a mut ShardState {
        &mut ctx.shared.dbs[self.db].shards[self.shard]
    }

    fn is_primary(&self, ctx: &Ctx<'_>) -> bool {
        self.st(ctx).primary == self.node
    }

    fn alive(&self, ctx: &Ctx<'_>) -> bool {
        self.st(ctx).nodes[self.node].alive
    }

    /// Handles one message.
    pub fn handle(&mut self, msg: Msg, ctx: &mut Ctx<'_>) {
        match msg {
            Msg::Request(req) => self.arrive(ctx, req),
            Msg::Done(req) => self.served(ctx, req),
            Msg::Replicate(x) => self.apply(ctx, x),
            Msg::ReplAck(x) => self.on_ack(ctx, x),
            Msg::Reconcile(n) => self.reconcile(ctx, n as usize),
            Msg::Kill => self.kill(ctx),
            Msg::Recover => self.recover(ctx),
            Msg::Wake(WAKE_DETECT) => self.detect(ctx),
            Msg::Wake(WAKE_PROMOTE) => self.promote(ctx),
            Msg::Wake(WAKE_ELECTION) => self.election_check(ctx),
            Msg::Wake(WAKE_RESHIP) => {
                self.reship_armed = false;
                if self.alive(ctx) && self.is_primary(ctx) {
                    self.ship(ctx);
                }
            }
            Msg::Wake(WAKE_RECONCILE) => self.reconcile_tick(ctx),
            Msg::Wake(WAKE_BATCH) => {
                self.batch_timer = false;
                if self.flushing.is_empty() && !self.batch.is_empty() {
                    self.flush(ctx);
                }
            }
            Msg::Wake(WAKE_FLUSHED) => self.flushed(ctx),
            _ => {}
        }
    }

    fn refuse(&mut self, ctx: &mut Ctx<'_>, req: ReqId, counted: bool) {
        if counted {
            self.stats.refused += 1;
            ctx.shared.oracle.refused += 1;
        }
        reply(ctx, req, Status::Error);
    }

    /// Whether this node reaches a majority of its shard's nodes (itself included).
    fn has_quorum(&self, ctx: &Ctx<'_>) -> bool {
        let st = self.st(ctx);
        let reach = st
            .nodes
            .iter()
            .enumerate()
            .filter(|(i, n)| *i != self.node && n.alive && ctx.reachable(n.actor))
            .count();
        reach + 1 > st.nodes.len() / 2
    }

    fn arrive(&mut self, ctx: &mut Ctx<'_>, req: ReqId) {
        let now = ctx.now();
        let counted = now >= ctx.shared.stats.warmup;
        if counted {
            self.stats.requests += 1;
        }
        if !self.alive(ctx) {
            reply(ctx, req, Status::Error);
            return;
        }
        let Some((key, op)) = ctx.shared.reqs.get(req).map(|r| (r.key, r.op)) else {
            return;
        };
        let primary = self.is_primary(ctx);
        // Under cp only a primary with a majority serves. Under ap a replica serves reads,
        // and writes too when cut off from its primary (reconciled later).
        if self.p.consistency == Consistency::Cp && (!primary || !self.has_quorum(ctx)) {
            self.refuse(ctx, req, counted);
            return;
        }
        if self.conns >= self.p.max_conns {
            self.refuse(ctx, req, counted);
            return;
        }
        self.conns += 1;
        self.stats.conns.add(now, 1.0);
        if op == Op::Write && primary {
            if let Some((size, wait)) = self.p.batch {
                self.batch.push((req, now));
                trace::phase(ctx, req, "group commit");
                if self.flushing.is_empty() && self.batch.len() >= size {
                    self.flush(ctx);
                } else if !self.batch_timer && self.flushing.is_empty() {
                    self.batch_timer = true;
                    ctx.timer(wait, Msg::Wake(WAKE_BATCH));
                }
                return;
            }
        }
        if self.active >= self.p.cores {
            self.ready.push_back((req, now));
            trace::phase(ctx, req, "queue (cores busy)");
            return;
        }
        self.execute(ctx, req, key, op, now);
    }

    /// Starts executing query `req` (arrived at `since`) on a free core.
    fn execute(&mut self, ctx: &mut Ctx<'_>, req: ReqId, key: u64, op: Op, since: SimTime) {
        self.active += 1;
        let base = match op {
            Op::Read => self.p.read_time.sample(ctx.rng),
            Op::Write => self.p.write_time.sample(ctx.rng),
        };
        let disk = self.disk(ctx, key);
        trace::phase(
            ctx,
            req,
            if disk > SimTime::ZERO {
                "execute (disk read)"
            } else {
                "execute"
            },
        );
        let d = self.slowed(base) + disk;
        self.held.push((req, since));
        ctx.timer(d, Msg::Done(req));
    }

    /// A core came free: the oldest waiting query starts.
    fn start_next(&mut self, ctx: &mut Ctx<'_>) {
        while self.active < self.p.cores {
            let Some((req, since)) = self.ready.pop_front() else {
                return;
            };
            match ctx.shared.reqs.get(req).map(|r| (r.key, r.op)) {
                Some((key, op)) => self.execute(ctx, req, key, op, since),
                None => {
                    // Its request is gone: free the connection it held.
                    self.conns = self.conns.saturating_sub(1);
                    self.stats.conns.add(ctx.now(), -1.0);
                }
            }
        }
    }

    /// `base` stretched by the Universal Scalability Law for the requests in service.
    fn slowed(&self, base: SimTime) -> SimTime {
        match &self.p.contention {
            Some(c) => SimTime::from_nanos((base.0 as f64 * c.factor(self.active)).round() as u64),
            None => base,
        }
    }

    /// The disk read `key` costs: zero when it is in the buffer pool.
    fn disk(&mut self, ctx: &mut Ctx<'_>, key: u64) -> SimTime {
        let Some(pool) = self.pool.as_mut() else {
            return SimTime::ZERO;
        };
        let counted = ctx.now() >= ctx.shared.stats.warmup;
        if pool.touch(key) {
            if counted {
                self.stats.pool_hits += 1;
            }
            SimTime::ZERO
        } else {
            if counted {
                self.stats.pool_misses += 1;
            }
            self.p
                .disk_read
                .as_ref()
                .map_or(SimTime::ZERO, |d| d.sample(ctx.rng))
        }
    }

    /// Answers `req` and frees its connection.
    fn finish(&mut self, ctx: &mut Ctx<'_>, req: ReqId, since: SimTime, status: Status) {
        let now = ctx.now();
        self.conns = self.conns.saturating_sub(1);
        self.stats.conns.add(now, -1.0);
        if status == Status::Ok && since >= ctx.shared.stats.warmup {
            self.stats.sojourn.record(now - since);
        }
        reply(ctx, req, status);
    }

    fn served(&mut self, ctx: &mut Ctx<'_>, req: ReqId) {
        let Some(pos) = self.held.iter().position(|(r, _)| *r == req) else {
            return; // answered already (the node was killed meanwhile)
        };
        let (_, since) = self.held.swap_remove(pos);
        self.active = self.active.saturating_sub(1);
        if !self.ready.is_empty() {
            self.start_next(ctx);
        }
        let Some((key, op)) = ctx.shared.reqs.get(req).map(|r| (r.key, r.op)) else {
            self.conns = self.conns.saturating_sub(1);
            self.stats.conns.add(ctx.now(), -1.0);
            return;
        };
        if self.p.consistency == Consistency::Cp && !self.is_primary(ctx) {
            // Deposed by an election while serving: the answer could be stale or lost.
            if since >= ctx.shared.stats.warmup {
                self.stats.refused += 1;
                ctx.shared.oracle.refused += 1;
            }
            self.finish(ctx, req, since, Status::Error);
            return;
        }
        match op {
            Op::Read => {
                let v = self.st(ctx).nodes[self.node]
                    .data
                    .get(&key)
                    .copied()
                    .unwrap_or(0);
                if let Some(r) = ctx.shared.reqs.get_mut(req) {
                    r.version = v;
                }
                self.finish(ctx, req, since, Status::Ok);
            }
            Op::Write if self.is_primary(ctx) => {
                let seq = self.commit(ctx, req);
                self.acknowledge(ctx, req, seq, since);
                self.ship(ctx);
            }
            Op::Write => {
                self.commit_divergent(ctx, req);
                self.finish(ctx, req, since, Status::Ok);
            }
        }
    }

    /// Commits write `req` on this primary: a new version, the log, the node's data.
    fn commit(&mut self, ctx: &mut Ctx<'_>, req: ReqId) -> u64 {
        let now = ctx.now();
        let v = ctx.shared.oracle.next_version();
        let (key, user, counted, traced) = match ctx.shared.reqs.get_mut(req) {
            Some(r) => {
                r.version = v;
                (r.key, r.user, r.first_sent, r.trace)
            }
            None => return u64::MAX,
        };
        let counted = ctx.shared.stats.counts(counted);
        ctx.shared.dbs[self.db].last_write.insert(user, now);
        let me = self.node;
        let st = self.st_mut(ctx);
        st.nodes[me].data.insert(key, v);
        st.log.push_back(Entry {
            key,
            version: v,
            commit: now,
            applied: 1 << me,
            acks: 0,
            acked: false,
            counted,
            trace: traced,
        });
        st.next_seq() - 1
    }

    /// Acknowledges a committed write now (async) or once enough replicas applied it.
    fn acknowledge(&mut self, ctx: &mut Ctx<'_>, req: ReqId, seq: u64, since: SimTime) {
        if self.released(ctx, seq) {
            if let Some(e) = self.st_mut(ctx).entry_mut(seq) {
                e.acked = true;
            }
            self.finish(ctx, req, since, Status::Ok);
        } else {
            trace::phase(ctx, req, "wait for replicas");
            self.waiting.push((req, seq, since));
        }
    }

    /// Whether change `seq` has the replica acknowledgements its write needs.
    fn released(&self, ctx: &Ctx<'_>, seq: u64) -> bool {
        let st = self.st(ctx);
        let live = st.live_replicas();
        let acks = st.entry(seq).map_or(live, |e| e.acks & live);
        match self.p.replication {
            Replication::Async => true,
            Replication::SemiSync => live == 0 || acks != 0,
            Replication::Sync => acks == live,
        }
    }

    /// Ships every unshipped change to every live replica this node reaches; retries
    /// later for those cut off.
    fn ship(&mut self, ctx: &mut Ctx<'_>) {
        let me = self.node;
        let n = self.st(ctx).nodes.len();
        let mut blocked = false;
        for i in 0..n {
            if i == me {
                continue;
            }
            let (actor, alive, mut next, end, epoch) = {
                let st = self.st(ctx);
                let nd = &st.nodes[i];
                (
                    nd.actor,
                    nd.alive,
                    nd.shipped.max(st.base),
                    st.next_seq(),
                    st.epoch,
                )
            };
            if !alive || next >= end {
                continue;
            }
            if !ctx.reachable(actor) {
                blocked = true;
                continue;
            }
            let lat = SimTime::from_nanos(ctx.net().mean_latency(ctx.me(), actor).round() as u64);
            while next < end {
                let applied = self
                    .st(ctx)
                    .entry(next)
                    .is_some_and(|e| e.applied & (1 << i) != 0);
                if !applied {
                    let d = self
                        .p
                        .delay
                        .as_ref()
                        .map_or(SimTime::ZERO, |d| d.sample(ctx.rng));
                    ctx.send_local(actor, d + lat, Msg::Replicate(pack(epoch, me, next)));
                }
                next += 1;
            }
            self.st_mut(ctx).nodes[i].shipped = next;
        }
        if blocked && !self.reship_armed {
            self.reship_armed = true;
            ctx.timer(RETRY, Msg::Wake(WAKE_RESHIP));
        }
        // Without live replicas nothing else would trim the log.
        self.st_mut(ctx).trim();
    }

    /// A replica applies a change shipped to it (the newest version of a key wins).
    fn apply(&mut self, ctx: &mut Ctx<'_>, x: u64) {
        let (epoch, from, seq) = unpack(x);
        let now = ctx.now();
        let me = self.node;
        let warmup = ctx.shared.stats.warmup;
        let st = self.st_mut(ctx);
        // The delay covers the time the change still sits on its primary: a change whose
        // primary crashed before it arrived never left it.
        if epoch != st.epoch & 0xFFFF
            || !st.nodes[me].alive
            || st.nodes.get(from).is_none_or(|n| !n.alive)
        {
            return;
        }
        let Some(e) = st.entry_mut(seq) else {
            return;
        };
        if e.applied & (1 << me) != 0 {
            return;
        }
        e.applied |= 1 << me;
        let (key, version, commit, traced) = (e.key, e.version, e.commit, e.trace);
        let slot = st.nodes[me].data.entry(key).or_insert(0);
        *slot = (*slot).max(version);
        let primary = st.nodes[st.primary].actor;
        st.trim();
        if commit >= warmup {
            let lag = now - commit;
            ctx.shared.oracle.repl_lag.record(lag);
            ctx.shared.oracle.repl_lag_sum += lag.as_secs_f64();
        }
        if traced != 0 {
            let actor = ctx.me();
            ctx.shared
                .trace
                .span(traced, actor, trace::What::Replication, commit, now);
        }
        if self.p.replication != Replication::Async {
            ctx.send(primary, Msg::ReplAck(pack(epoch, me, seq)));
        }
    }

    /// The primary hears that a replica applied a change; writes waiting for it may now
    /// be acknowledged.
    fn on_ack(&mut self, ctx: &mut Ctx<'_>, x: u64) {
        let (epoch, from, seq) = unpack(x);
        if !self.alive(ctx) || !self.is_primary(ctx) {
            return;
        }
        {
            let st = self.st_mut(ctx);
            if epoch != st.epoch & 0xFFFF {
                return;
            }
            if let Some(e) = st.entry_mut(seq) {
                e.acks |= 1 << from;
            }
        }
        let mut i = 0;
        while i < self.waiting.len() {
            let (req, s, since) = self.waiting[i];
            if self.released(ctx, s) {
                self.waiting.swap_remove(i);
                if let Some(e) = self.st_mut(ctx).entry_mut(s) {
                    e.acked = true;
                }
                self.finish(ctx, req, since, Status::Ok);
            } else {
                i += 1;
            }
        }
        self.st_mut(ctx).trim();
    }

    /// A write accepted on a replica cut off from its primary (`ap`).
    fn commit_divergent(&mut self, ctx: &mut Ctx<'_>, req: ReqId) {
        let now = ctx.now();
        let v = ctx.shared.oracle.next_version();
        let (key, user) = match ctx.shared.reqs.get_mut(req) {
            Some(r) => {
                r.version = v;
                (r.key, r.user)
            }
            None => return,
        };
        ctx.shared.dbs[self.db].last_write.insert(user, now);
        let me = self.node;
        let node = &mut self.st_mut(ctx).nodes[me];
        let before = node.data.get(&key).copied().unwrap_or(0);
        node.data.insert(key, v);
        node.divergent.push((key, v, before));
        if !self.reconcile_armed {
            self.reconcile_armed = true;
            ctx.timer(RETRY, Msg::Wake(WAKE_RECONCILE));
        }
    }

    /// A replica holding writes of its own offers them to the primary once it reaches it.
    fn reconcile_tick(&mut self, ctx: &mut Ctx<'_>) {
        self.reconcile_armed = false;
        let me = self.node;
        let (empty, primary, p_alive) = {
            let st = self.st(ctx);
            (
                st.nodes[me].divergent.is_empty(),
                st.nodes[st.primary].actor,
                st.nodes[st.primary].alive,
            )
        };
        if empty || !self.alive(ctx) {
            return;
        }
        if self.is_primary(ctx) {
            // Promoted meanwhile: its own writes become ordinary changes.
            self.reconcile(ctx, me);
            return;
        }
        if p_alive && ctx.reachable(primary) {
            ctx.send(primary, Msg::Reconcile(me as u64));
        }
        self.reconcile_armed = true;
        ctx.timer(RETRY, Msg::Wake(WAKE_RECONCILE));
    }

    /// The primary merges the writes node `from` accepted while cut off: the higher
    /// version wins; a key changed on both sides is a conflict.
    fn reconcile(&mut self, ctx: &mut Ctx<'_>, from: usize) {
        if !self.alive(ctx) || !self.is_primary(ctx) {
            return;
        }
        let now = ctx.now();
        let me = self.node;
        let counted = now >= ctx.shared.stats.warmup;
        let st = &mut ctx.shared.dbs[self.db].shards[self.shard];
        let Some(node) = st.nodes.get_mut(from) else {
            return;
        };
        let writes = std::mem::take(&mut node.divergent);
        let mut conflicts = 0;
        for (key, v, before) in writes {
            let cur = st.nodes[me].data.get(&key).copied().unwrap_or(0);
            if from != me && cur != before {
                conflicts += 1;
            }
            if v > cur || from == me {
                st.nodes[me].data.insert(key, v.max(cur));
                st.log.push_back(Entry {
                    key,
                    version: v.max(cur),
                    commit: now,
                    applied: 1 << me | 1 << from,
                    acks: 1 << from,
                    acked: true,
                    counted: false,
                    trace: 0,
                });
            }
        }
        if counted {
            ctx.shared.oracle.conflicts += conflicts;
        }
        self.ship(ctx);
    }

    /// Starts committing the waiting group of writes (one `write_time` for all).
    fn flush(&mut self, ctx: &mut Ctx<'_>) {
        self.flushing = std::mem::take(&mut self.batch);
        self.active += 1;
        let base = self.p.write_time.sample(ctx.rng);
        let mut d = self.slowed(base);
        for i in 0..self.flushing.len() {
            let key = ctx.shared.reqs.get(self.flushing[i].0).map_or(0, |r| r.key);
            d = d.max(self.disk(ctx, key));
        }
        ctx.timer(d, Msg::Wake(WAKE_FLUSHED));
    }

    fn flushed(&mut self, ctx: &mut Ctx<'_>) {
        if self.flushing.is_empty() {
            return; // killed meanwhile
        }
        self.active = self.active.saturating_sub(1);
        if !self.ready.is_empty() {
            self.start_next(ctx);
        }
        let group = std::mem::take(&mut self.flushing);
        let primary = self.is_primary(ctx);
        for (req, since) in group {
            if primary {
                let seq = self.commit(ctx, req);
                self.acknowledge(ctx, req, seq, since);
            } else {
                self.finish(ctx, req, since, Status::Error);
            }
        }
        if primary {
            self.ship(ctx);
        }
        // The next group goes when it is full or its oldest write has waited `max_wait`.
        if let (Some((size, wait)), Some(&(_, oldest))) = (self.p.batch, self.batch.first()) {
            let due = oldest + wait;
            if self.batch.len() >= size || due <= ctx.now() {
                self.flush(ctx);
            } else if !self.batch_timer {
                self.batch_timer = true;
                ctx.timer_at(due, Msg::Wake(WAKE_BATCH));
            }
        }
    }

    /// The node crashes: every request it holds fails; a primary's failover starts.
    fn kill(&mut self, ctx: &mut Ctx<'_>) {
        if !self.alive(ctx) {
            return;
        }
        let me = self.node;
        self.st_mut(ctx).nodes[me].alive = false;
        let mut all: Vec<(ReqId, SimTime)> = std::mem::take(&mut self.held);
        all.extend(self.ready.drain(..));
        all.extend(self.waiting.drain(..).map(|(r, _, s)| (r, s)));
        all.append(&mut self.batch);
        all.append(&mut self.flushing);
        self.active = 0;
        for (req, since) in all {
            self.finish(ctx, req, since, Status::Error);
        }
        if self.is_primary(ctx) {
            if let Some((detect, _)) = self.p.failover {
                // The dead node's actor stands in for the cluster manager that notices.
                ctx.timer(detect, Msg::Wake(WAKE_DETECT));
            }
        }
    }

    /// The cluster manager noticed the dead primary: it promotes the live replica that
    /// applied the most changes, `promote` later.
    fn detect(&mut self, ctx: &mut Ctx<'_>) {
        if self.alive(ctx) || !self.is_primary(ctx) {
            return;
        }
        let st = self.st(ctx);
        let mut best: Option<(usize, usize)> = None;
        for (i, n) in st.nodes.iter().enumerate() {
            if i == self.node || !n.alive {
                continue;
            }
            let have = st.log.iter().filter(|e| e.applied & (1 << i) != 0).count();
            if best.is_none_or(|(_, b)| have > b) {
                best = Some((i, have));
            }
        }
        match best {
            Some((i, _)) => {
                let actor = st.nodes[i].actor;
                let promote = self.p.failover.map_or(SimTime::ZERO, |f| f.1);
                ctx.send_local(actor, promote, Msg::Wake(WAKE_PROMOTE));
            }
            None => {
                // No live replica: look again later.
                let detect = self.p.failover.map_or(RETRY, |f| f.0.max(RETRY));
                ctx.timer(detect, Msg::Wake(WAKE_DETECT));
            }
        }
    }

    /// This replica becomes the primary. Acknowledged changes it never applied are lost;
    /// other replicas roll those keys back to its state.
    fn promote(&mut self, ctx: &mut Ctx<'_>) {
        let me = self.node;
        let st = &ctx.shared.dbs[self.db].shards[self.shard];
        let old = &st.nodes[st.primary];
        // A dead primary (failover), or a live one this node no longer reaches (a `cp`
        // election on the majority side).
        let replaceable = !old.alive || (self.p.election.is_some() && !ctx.reachable(old.actor));
        if !st.nodes[me].alive || st.primary == me || !replaceable {
            return;
        }
        let st = &mut ctx.shared.dbs[self.db].shards[self.shard];
        let mut lost = 0;
        let mut kept = VecDeque::with_capacity(st.log.len());
        for mut e in std::mem::take(&mut st.log) {
            if e.applied & (1 << me) != 0 {
                e.acked = true; // nobody waits on it any more
                kept.push_back(e);
            } else {
                if e.acked && e.counted {
                    lost += 1;
                }
                let mine = st.nodes[me].data.get(&e.key).copied().unwrap_or(0);
                for (i, n) in st.nodes.iter_mut().enumerate() {
                    if i != me && e.applied & (1 << i) != 0 {
                        n.data.insert(e.key, mine);
                    }
                }
            }
        }
        st.log = kept;
        st.primary = me;
        st.epoch += 1;
        let base = st.base;
        for n in &mut st.nodes {
            n.shipped = base;
        }
        ctx.shared.oracle.lost_writes += lost;
        ctx.shared.oracle.failovers += 1;
        // Writes it accepted on its own while the primary was gone become changes.
        self.reconcile(ctx, me);
        self.ship(ctx);
    }

    /// The node comes back. A primary that was not replaced resumes; any other node
    /// rejoins as a replica with a copy of the current primary's data.
    fn recover(&mut self, ctx: &mut Ctx<'_>) {
        if self.alive(ctx) {
            return;
        }
        let me = self.node;
        let st = &mut ctx.shared.dbs[self.db].shards[self.shard];
        st.nodes[me].alive = true;
        if st.primary != me {
            let data = st.nodes[st.primary].data.clone();
            st.nodes[me].data = data;
            st.nodes[me].divergent.clear();
            st.nodes[me].shipped = st.next_seq();
            for e in &mut st.log {
                e.applied |= 1 << me;
            }
        } else {
            // Resume shipping from the oldest change (replicas skip what they have).
            let base = st.base;
            for e in &mut st.log {
                e.acked = true;
            }
            for n in &mut st.nodes {
                n.shipped = base;
            }
            self.ship(ctx);
        }
    }
}

impl DbNode {
    /// This node's row of components.csv (`now`: end of the measured window).
    pub fn component_row(&self, name: String, now: SimTime) -> crate::report::ComponentRow {
        let conns = self.stats.conns.mean(now);
        let lookups = self.stats.pool_hits + self.stats.pool_misses;
        crate::report::ComponentRow {
            component: name,
            kind: "database",
            requests: self.stats.requests,
            utilization: (self.p.max_conns != u32::MAX)
                .then(|| conns / f64::from(self.p.max_conns.max(1))),
            mean_queue: Some(conns),
            p99_ms: self.stats.sojourn.quantile_ms(0.99),
            mean_ms: self.stats.sojourn.mean_ms(),
            hit_ratio: (self.pool.is_some() && lookups > 0)
                .then(|| self.stats.pool_hits as f64 / lookups as f64),
        }
    }
}

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
    if let Some(b) = &d.batch {
        if b.size == 0 {
            errs.push(ConfigError::new(
                format!("{p}.batch.size"),
                "must be at least 1",
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
    fn lru_evicts_the_least_recently_used() {
        let mut l = Lru::new(2);
        assert!(!l.touch(1));
        assert!(!l.touch(2));
        assert!(l.touch(1));
        assert!(!l.touch(3)); // evicts 2
        assert!(l.touch(1));
        assert!(!l.touch(2));
        assert!(!l.touch(3)); // 3 was evicted by 2 (1 was used more recently)
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

//! The request path of a model, followed as `ModelConfig::build` wires it, key by key.
//!
//! ```text
//!   client --(browser cache)--> [CDN edge --origin-->] [load balancer] --> service
//!   service (instances x workers; CPU, pool, data call, NIC)
//!      --> app cache (shared, or local per instance) --miss / write--> database or origin
//!      --> database: key -> shard (ShardMap); write -> primary; read -> primary or replicas
//!      --> job queues (writes x enqueue_ratio)
//! ```
//!
//! One pass takes every client's rate, carries per-key loads downstream in topological
//! order (hit ratios thin reads, write policies reshape writes, shards split keys), solves
//! each database node's queue, then walks back upstream adding times (cache, pool, service
//! queue, load balancer, edge) up to each client's response time. Closed loops are solved
//! around it (see `super::estimate`).

use std::collections::BTreeMap;

use dssim_components::cache::{CacheConfig, Eviction, Invalidation, Stampede, Tier, WritePolicy};
use dssim_components::client::{Arrival, ClientConfig};
use dssim_components::database::{Consistency, DatabaseConfig, ReadFrom, Replication, ShardMap};
use dssim_components::ModelConfig;

use super::hit::{self, Params, Policy, Writes};
use super::keys::{piece_sizes, Grid, Group, Load, Mass};
use super::ComponentEstimate;
use crate::queueing::{mgc_wait, LoadDependent};

/// A component on the request path.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Node {
    Cache(usize),
    Lb(usize),
    Service(usize),
    Db(usize),
    Queue(usize),
}

/// Seconds of a `DistSpec`-like mean in nanoseconds, never negative or NaN.
fn secs(ns: f64) -> f64 {
    if ns.is_finite() && ns > 0.0 {
        ns / 1e9
    } else if ns == f64::INFINITY {
        f64::INFINITY
    } else {
        0.0
    }
}

/// How keys of one database split over its shards.
struct Shards {
    n: usize,
    map: ShardMap,
    /// Share of a random key's hash that each shard owns (hash, directory, ring).
    shares: Vec<f64>,
}

enum Split {
    One(usize),
    Few(Vec<(usize, f64)>),
    Spread,
}

impl Shards {
    fn new(d: &DatabaseConfig, key_space: u64) -> Shards {
        let n = d.shards.max(1) as usize;
        let map = ShardMap::new(d.sharding, d.shards, key_space);
        let shares = match &map {
            ShardMap::Directory(t) => {
                let mut v = vec![0.0; n];
                for &s in t {
                    if let Some(x) = v.get_mut(s as usize) {
                        *x += 1.0 / t.len() as f64;
                    }
                }
                v
            }
            ShardMap::Ring(r) if !r.is_empty() => {
                let mut v = vec![0.0; n];
                let scale = 1.0 / 2f64.powi(64);
                for (i, &(p, s)) in r.iter().enumerate() {
                    let arc = if i == 0 {
                        // From the last point round to this one.
                        (u64::MAX - r[r.len() - 1].0) as f64 + p as f64 + 1.0
                    } else {
                        (p - r[i - 1].0) as f64
                    };
                    if let Some(x) = v.get_mut(s as usize) {
                        *x += arc * scale;
                    }
                }
                v
            }
            _ => vec![1.0 / n as f64; n],
        };
        Shards { n, map, shares }
    }

    /// Which shards the keys `lo..hi` live on.
    fn split(&self, lo: u64, hi: u64) -> Split {
        if self.n == 1 {
            return Split::One(0);
        }
        if hi - lo == 1 {
            return Split::One(self.map.shard_of(lo));
        }
        let exact = matches!(self.map, ShardMap::Range { .. }) || hi - lo <= 256;
        if !exact {
            return Split::Spread;
        }
        let width = (hi - lo) as f64;
        if let ShardMap::Range { n, keys } = self.map {
            // Shard s holds keys [ceil(s K / n), ceil((s+1) K / n)).
            let edge = |s: u64| -> u64 {
                (u128::from(s) * u128::from(keys)).div_ceil(u128::from(n)) as u64
            };
            let (a, b) = (
                self.map.shard_of(lo) as u64,
                self.map.shard_of(hi - 1) as u64,
            );
            let v = (a..=b)
                .map(|s| {
                    let from = edge(s).max(lo);
                    let to = if s + 1 >= n { hi } else { edge(s + 1).min(hi) };
                    (s as usize, to.saturating_sub(from) as f64 / width)
                })
                .collect();
            return Split::Few(v);
        }
        let mut counts: BTreeMap<usize, f64> = BTreeMap::new();
        for k in lo..hi {
            *counts.entry(self.map.shard_of(k)).or_default() += 1.0 / width;
        }
        Split::Few(counts.into_iter().collect())
    }

    /// Fraction of the keys `lo..hi` on shard `s`.
    fn fraction(&self, split: &Split, s: usize) -> f64 {
        match split {
            Split::One(x) => f64::from(u8::from(*x == s)),
            Split::Few(v) => v.iter().filter(|(x, _)| *x == s).map(|(_, f)| f).sum(),
            Split::Spread => self.shares.get(s).copied().unwrap_or(0.0),
        }
    }
}

/// What is fixed for a model: the grid, each client's unit load, the order of components.
pub struct Prep<'a> {
    pub m: &'a ModelConfig,
    grid: Grid,
    /// Per client: per-key rates at one request per second.
    unit: Vec<Load>,
    order: Vec<Node>,
    shards: Vec<Shards>,
    /// Per database: how many requests its callers can hold inside at once.
    upstream: Vec<Option<u64>>,
    /// The measured window of a run, seconds (caches start empty at 0); steady state
    /// when absent.
    window: Option<(f64, f64)>,
    /// Name lookups, built once (a model may have thousands of components): load
    /// balancers, services and CDN edges by name; databases; app caches.
    nodes: BTreeMap<&'a str, Node>,
    dbs: BTreeMap<&'a str, usize>,
    app_caches: BTreeMap<&'a str, usize>,
    /// Per cache: the services that read through it, in order.
    users: Vec<Vec<usize>>,
    /// Per service: the database its data calls reach (through its app cache or not).
    reach: Vec<Option<usize>>,
    /// Per client: the service its target leads to.
    behind: Vec<Option<usize>>,
}

/// A CDN edge's or app cache's figures in one pass.
#[derive(Clone, Debug, Default)]
struct CacheOut {
    requests: f64,
    lookups: f64,
    hits: f64,
    reads: f64,
    writes: f64,
    origin_calls: f64,
    nodes: f64,
    /// Misses' share of reads, and what a miss or write costs, seconds.
    read_s: f64,
    write_s: f64,
    time_s: f64,
}

/// One database node's figures.
#[derive(Clone, Debug)]
struct DbNodeOut {
    region: Option<String>,
    /// The node's rate when its callers' slots run out first.
    callers_limit: Option<f64>,
    reads: f64,
    writes: f64,
    read_s: f64,
    write_s: f64,
    est: ComponentEstimate,
}

/// One instance of a service as a station of a closed network.
#[derive(Clone, Debug)]
pub struct InstStation {
    /// Share of the service's requests it takes.
    pub share: f64,
    /// Mean time a request holds a worker (without waiting for one), seconds.
    pub hold: f64,
    /// Relative speed with 1, 2, … requests in it ([`crate::queueing::Station`]).
    pub rates: Vec<f64>,
    /// With a pool solved as a flow-equivalent server: requests waiting for a connection
    /// with 0, 1, … workers busy.
    pub pool_waiting: Vec<f64>,
}

/// A service as the closed-loop solution sees it.
#[derive(Clone, Debug)]
pub struct SvcStation {
    pub name: String,
    /// Mean time in it at this pass's rates, seconds.
    pub sojourn_s: f64,
    /// Requests per second reaching it in this pass.
    pub lambda: f64,
    /// Instances picked by a balancer that watches load: one pooled station.
    pub pooled: bool,
    /// Workers per instance.
    pub servers: u32,
    pub instances: Vec<InstStation>,
}

/// A service's instances solved together.
struct InstOut {
    /// Mean wait for a worker of a request served, seconds.
    wait: f64,
    /// Mean requests waiting for a worker.
    waiting: f64,
    /// Busy workers over workers (carried work, at most 1).
    busy: f64,
    /// Offered work over workers (may exceed 1).
    offered: f64,
    /// Share of requests refused or shed.
    refused: f64,
    /// Mean requests waiting for a pooled connection (flow-equivalent server).
    pool_waiting: f64,
    /// Requests per second served.
    carried: f64,
    /// Mean time in the service of a served request, when the model gives it directly.
    sojourn: Option<f64>,
    method: String,
    stations: Vec<InstStation>,
}

impl InstOut {
    /// No steady state: the queue grows without bound.
    fn saturated(mut out: InstOut, lambda: f64) -> InstOut {
        out.wait = f64::INFINITY;
        out.waiting = f64::INFINITY;
        out.busy = 1.0;
        out.carried = lambda;
        out.sojourn = None;
        out
    }
}

/// Everything one pass found.
pub struct Pass {
    /// Rows, in the order the report prints them.
    pub components: Vec<ComponentEstimate>,
    /// Per client: mean response time of its requests (browser hits count as zero), seconds.
    pub response_s: Vec<f64>,
    /// Services as stations of a closed network.
    pub stations: Vec<SvcStation>,
    /// Per client: the service its requests queue in and the share of them that reach it.
    pub reach: Vec<Option<(String, f64)>>,
}

fn policy(e: Eviction) -> Policy {
    match e {
        Eviction::Lru => Policy::Lru,
        Eviction::Lfu => Policy::Lfu,
        Eviction::Fifo | Eviction::Random => Policy::Fifo,
    }
}

fn writes_effect(c: &CacheConfig) -> Writes {
    match (c.write_policy, c.invalidation) {
        // A versioned key's next read after a write misses, as after a delete.
        (WritePolicy::CacheAside, Invalidation::Delete | Invalidation::Versioned) => Writes::Delete,
        (WritePolicy::CacheAside, _) => Writes::Ignore,
        (WritePolicy::WriteThrough | WritePolicy::WriteBehind, _) => Writes::Fill,
    }
}

impl<'a> Prep<'a> {
    /// Prepares `m` (a validated model; anything else is still handled without panics).
    pub fn new(m: &'a ModelConfig, window: Option<(f64, f64)>) -> Prep<'a> {
        let key_space = m.clients.iter().map(|c| c.keys).max().unwrap_or(1).max(1);
        let masses: Vec<Mass> = m
            .clients
            .iter()
            .map(|c| Mass::new(&c.popularity, c.keys))
            .collect();
        let mut extra: Vec<u64> = masses.iter().flat_map(Mass::edges).collect();
        for d in &m.databases {
            if d.sharding == dssim_components::database::Sharding::Range && d.shards > 1 {
                let n = u64::from(d.shards);
                extra.extend((1..n).map(|s| {
                    (u128::from(s) * u128::from(key_space)).div_ceil(u128::from(n)) as u64
                }));
            }
        }
        let grid = Grid::new(key_space, extra);
        let unit = m
            .clients
            .iter()
            .zip(&masses)
            .map(|(c, mass)| {
                let r = c.read_ratio.clamp(0.0, 1.0);
                Load::of_client(&grid, mass, r, 1.0 - r)
            })
            .collect();
        let shards = m
            .databases
            .iter()
            .map(|d| Shards::new(d, key_space))
            .collect();
        let mut p = Prep {
            m,
            grid,
            unit,
            order: Vec::new(),
            shards,
            upstream: Vec::new(),
            window,
            nodes: BTreeMap::new(),
            dbs: BTreeMap::new(),
            app_caches: BTreeMap::new(),
            users: vec![Vec::new(); m.caches.len()],
            reach: Vec::new(),
            behind: Vec::new(),
        };
        // First match wins, as the linear searches did: load balancers, services, edges.
        for (i, c) in m.caches.iter().enumerate().rev() {
            if c.tier == Tier::Cdn {
                p.nodes.insert(c.name.as_str(), Node::Cache(i));
            } else {
                p.app_caches.insert(c.name.as_str(), i);
            }
        }
        for (i, s) in m.services.iter().enumerate().rev() {
            p.nodes.insert(s.name.as_str(), Node::Service(i));
        }
        for (i, l) in m.load_balancers.iter().enumerate().rev() {
            p.nodes.insert(l.name.as_str(), Node::Lb(i));
        }
        for (i, d) in m.databases.iter().enumerate().rev() {
            p.dbs.insert(d.name.as_str(), i);
        }
        let by_name: BTreeMap<&str, Vec<usize>> =
            m.caches
                .iter()
                .enumerate()
                .fold(BTreeMap::new(), |mut acc, (i, c)| {
                    acc.entry(c.name.as_str()).or_default().push(i);
                    acc
                });
        for (si, s) in m.services.iter().enumerate() {
            if let Some(cis) = s.cache.as_deref().and_then(|c| by_name.get(c)) {
                for &ci in cis {
                    p.users[ci].push(si);
                }
            }
        }
        p.reach = (0..m.services.len())
            .map(|si| match p.app_cache_named(&m.services[si].cache) {
                Some(ci) => match p.cache_backend(ci, si) {
                    Some(Node::Db(d)) => Some(d),
                    _ => None,
                },
                None => p.db_index(&m.services[si].database),
            })
            .collect();
        p.behind = m
            .clients
            .iter()
            .map(|c| p.service_behind(&c.target))
            .collect();
        p.order = p.topological();
        p.upstream = (0..m.databases.len())
            .map(|di| p.upstream_cap(di))
            .collect();
        p
    }

    fn node_of(&self, name: &str) -> Option<Node> {
        self.nodes.get(name).copied()
    }

    fn db_index(&self, name: &Option<String>) -> Option<usize> {
        self.dbs.get(name.as_deref()?).copied()
    }

    /// The app cache named `name`.
    fn app_cache_named(&self, name: &Option<String>) -> Option<usize> {
        self.app_caches.get(name.as_deref()?).copied()
    }

    /// Services that read through app cache `ci`.
    fn cache_users(&self, ci: usize) -> Vec<usize> {
        self.users[ci].clone()
    }

    /// Where an app cache sends misses and writes for service `si` (as `build_caches`
    /// wires it: the service's database for a local cache, the first user's database for
    /// a shared one, else the cache's origin).
    fn cache_backend(&self, ci: usize, si: usize) -> Option<Node> {
        let c = &self.m.caches[ci];
        let db = if c.local {
            self.db_index(&self.m.services[si].database)
        } else {
            self.cache_users(ci)
                .into_iter()
                .find_map(|u| self.db_index(&self.m.services[u].database))
        };
        match db {
            Some(d) => Some(Node::Db(d)),
            None => c.origin.as_deref().and_then(|o| self.node_of(o)),
        }
    }

    fn downstream(&self, n: Node) -> Vec<Node> {
        let m = self.m;
        match n {
            Node::Cache(ci) => {
                let c = &m.caches[ci];
                if c.tier == Tier::Cdn {
                    c.origin
                        .as_deref()
                        .and_then(|o| self.node_of(o))
                        .into_iter()
                        .collect()
                } else {
                    let mut v: Vec<Node> = self
                        .cache_users(ci)
                        .into_iter()
                        .filter_map(|si| self.cache_backend(ci, si))
                        .collect();
                    v.sort();
                    v.dedup();
                    v
                }
            }
            Node::Lb(li) => self
                .node_of(&m.load_balancers[li].backends)
                .into_iter()
                .collect(),
            Node::Service(si) => {
                let s = &m.services[si];
                let mut v = Vec::new();
                let cache = self.app_cache_named(&s.cache);
                if let Some(ci) = cache {
                    v.push(Node::Cache(ci));
                } else if let Some(d) = self.db_index(&s.database) {
                    v.push(Node::Db(d));
                }
                v.extend(
                    m.queues
                        .iter()
                        .enumerate()
                        .filter(|(_, q)| q.producer == s.name)
                        .map(|(qi, _)| Node::Queue(qi)),
                );
                v
            }
            Node::Db(_) | Node::Queue(_) => Vec::new(),
        }
    }

    fn all_nodes(&self) -> Vec<Node> {
        let m = self.m;
        (0..m.caches.len())
            .map(Node::Cache)
            .chain((0..m.load_balancers.len()).map(Node::Lb))
            .chain((0..m.services.len()).map(Node::Service))
            .chain((0..m.databases.len()).map(Node::Db))
            .chain((0..m.queues.len()).map(Node::Queue))
            .collect()
    }

    /// Components in an order where each comes after everything that sends to it (Kahn);
    /// components on a loop (which validation refuses) are left out.
    fn topological(&self) -> Vec<Node> {
        let nodes = self.all_nodes();
        let mut indeg: BTreeMap<Node, usize> = nodes.iter().map(|&n| (n, 0)).collect();
        for &n in &nodes {
            for d in self.downstream(n) {
                *indeg.entry(d).or_default() += 1;
            }
        }
        let mut ready: Vec<Node> = nodes.iter().copied().filter(|n| indeg[n] == 0).collect();
        ready.reverse();
        let mut order = Vec::new();
        while let Some(n) = ready.pop() {
            order.push(n);
            let mut next = Vec::new();
            for d in self.downstream(n) {
                if let Some(x) = indeg.get_mut(&d) {
                    *x -= 1;
                    if *x == 0 {
                        next.push(d);
                    }
                }
            }
            next.reverse();
            ready.extend(next);
        }
        order
    }

    /// The most requests the callers of database `di` can have inside it at once: each
    /// worker holds one data call (and with a pool, each connection).
    fn upstream_cap(&self, di: usize) -> Option<u64> {
        let mut total = 0u64;
        let mut any = false;
        for (si, s) in self.m.services.iter().enumerate() {
            if self.reaches(si, di) {
                any = true;
                let per = s.pool.map_or(s.workers, |p| p.size.min(s.workers)).max(1);
                total = total.saturating_add(u64::from(s.instances.max(1)) * u64::from(per));
            }
        }
        any.then_some(total)
    }

    /// Mean one-way latency between two regions, seconds.
    fn lat(&self, a: &Option<String>, b: &Option<String>) -> f64 {
        let net = &self.m.network;
        let (ra, rb) = (a.as_deref().unwrap_or(""), b.as_deref().unwrap_or(""));
        let pair = net
            .regions
            .get(&format!("{ra}:{rb}"))
            .or_else(|| net.regions.get(&format!("{rb}:{ra}")));
        match pair {
            Some(d) => secs(d.0.mean()),
            None => net.latency.as_ref().map_or(0.0, |d| secs(d.0.mean())),
        }
    }

    fn region_of(&self, n: Node) -> Option<String> {
        let m = self.m;
        match n {
            Node::Cache(ci) => m.caches[ci].region.clone(),
            Node::Lb(li) => m.load_balancers[li].region.clone(),
            Node::Service(si) => m.services[si].region.clone(),
            Node::Db(di) => m.databases[di].region.clone(),
            Node::Queue(_) => None,
        }
    }

    /// Time of a request through `n` with no queueing anywhere (for fill delays and
    /// capacities), seconds; `read` picks the read path of a database.
    fn unloaded(&self, n: Node, read: bool, depth: usize) -> f64 {
        if depth > 16 {
            return 0.0;
        }
        let m = self.m;
        match n {
            Node::Db(di) => {
                let d = &m.databases[di];
                secs(if read {
                    d.read_time.0.mean()
                } else {
                    d.write_time.0.mean()
                })
            }
            Node::Service(si) => self.cpu_s(si) + self.nic_s(si) + self.data_unloaded(si, depth),
            Node::Lb(li) => {
                let l = &m.load_balancers[li];
                let to = self.node_of(&l.backends);
                lb_parse_s(l)
                    + to.map_or(0.0, |t| {
                        2.0 * self.lat(&l.region, &self.region_of(t))
                            + self.unloaded(t, read, depth + 1)
                    })
            }
            Node::Cache(ci) => {
                let c = &m.caches[ci];
                let lat = c.latency.as_ref().map_or(0.0, |d| secs(d.0.mean()));
                let op = c.max_ops.filter(|x| *x > 0.0).map_or(0.0, |x| 1.0 / x);
                let origin = c.origin.as_deref().and_then(|o| self.node_of(o));
                lat + op
                    + if c.tier == Tier::Cdn {
                        2.0 * c.origin_latency.as_ref().map_or(0.0, |d| secs(d.0.mean()))
                            + origin.map_or(0.0, |o| {
                                2.0 * self.lat(&c.region, &self.region_of(o))
                                    + self.unloaded(o, read, depth + 1)
                            })
                    } else {
                        0.0
                    }
            }
            Node::Queue(_) => 0.0,
        }
    }

    /// Worker time per request before the data call on an instance of speed `speed`: CPU
    /// time over speed, plus the re-login of a request served away from its user's session
    /// (`sessions = "local"`: a share (I−1)/I of requests when instances are picked afresh
    /// per request, none behind a balancer that pins users, ip_hash or consistent_hash).
    fn work_s(&self, si: usize, speed: f64) -> f64 {
        let s = &self.m.services[si];
        let speed = if speed > 0.0 && speed.is_finite() {
            speed
        } else {
            1.0
        };
        let cpu = secs(s.service_time.0.mean()) / speed;
        if s.sessions != dssim_components::service::Sessions::Local || s.instances <= 1 {
            return cpu;
        }
        use dssim_components::load_balancer::Algorithm;
        let pinned = self.m.load_balancers.iter().any(|l| {
            l.backends == s.name
                && matches!(l.algorithm, Algorithm::IpHash | Algorithm::ConsistentHash)
        });
        if pinned {
            return cpu;
        }
        let relogin = s.relogin.as_ref().map_or(0.05, |d| secs(d.0.mean()));
        let i = f64::from(s.instances);
        cpu + (i - 1.0) / i * relogin
    }

    /// The speed of each instance of service `si` (`speeds`, else `speed`).
    fn speeds(&self, si: usize) -> Vec<f64> {
        let s = &self.m.services[si];
        (0..s.instances.max(1)).map(|i| s.speed_of(i)).collect()
    }

    /// The share of service `si`'s requests each instance gets: in proportion to the
    /// weights of a weighted round robin, else evenly (a balancer that looks at the
    /// instances' load is handled as one pooled queue in `instance_wait`).
    fn shares(&self, si: usize) -> Vec<f64> {
        use dssim_components::load_balancer::Algorithm;
        let s = &self.m.services[si];
        let n = s.instances.max(1) as usize;
        let weights = self
            .m
            .load_balancers
            .iter()
            .find(|l| l.backends == s.name)
            .filter(|l| l.algorithm == Algorithm::WeightedRoundRobin)
            .and_then(|l| l.weights.as_ref())
            .filter(|w| w.len() == n && w.iter().any(|x| *x > 0));
        match weights {
            Some(w) => {
                let t: f64 = w.iter().map(|x| f64::from(*x)).sum();
                w.iter().map(|x| f64::from(*x) / t).collect()
            }
            None => vec![1.0 / n as f64; n],
        }
    }

    /// Worker time before the data call, averaged over the requests of service `si`.
    fn cpu_s(&self, si: usize) -> f64 {
        self.speeds(si)
            .iter()
            .zip(self.shares(si))
            .map(|(&v, w)| w * self.work_s(si, v))
            .sum()
    }

    /// Bytes of a response of service `si`: its clients' `response_size` (rate-weighted),
    /// else its own.
    fn response_bytes(&self, si: usize) -> f64 {
        let (mut w, mut b) = (0.0, 0.0);
        for (ci, c) in self.m.clients.iter().enumerate() {
            if self.behind[ci] == Some(si) {
                if let Some(size) = c.response_size {
                    let r = open_rate(c).unwrap_or(1.0).max(1e-9);
                    w += r;
                    b += r * size.0 as f64;
                }
            }
        }
        if w > 0.0 {
            b / w
        } else {
            self.m.services[si]
                .response_size
                .map_or(0.0, |s| s.0 as f64)
        }
    }

    fn nic_s(&self, si: usize) -> f64 {
        let s = &self.m.services[si];
        match s.bandwidth {
            Some(bw) if bw.0 > 0.0 => self.response_bytes(si) * 8.0 / bw.0,
            _ => 0.0,
        }
    }

    /// Load balancers and the service a client's requests queue in, from its target on
    /// (through load balancers; not through CDN edges, whose hits never queue there).
    pub fn entry_path(&self, client: usize) -> Vec<String> {
        let mut v = Vec::new();
        let Some(mut t) = self
            .m
            .clients
            .get(client)
            .and_then(|c| self.node_of(&c.target))
        else {
            return v;
        };
        for _ in 0..16 {
            match t {
                Node::Lb(li) => {
                    let l = &self.m.load_balancers[li];
                    v.push(l.name.clone());
                    match self.node_of(&l.backends) {
                        Some(n) => t = n,
                        None => break,
                    }
                }
                Node::Service(si) => {
                    v.push(self.m.services[si].name.clone());
                    break;
                }
                _ => break,
            }
        }
        v
    }

    /// The service a target name leads to through load balancers and edges.
    fn service_behind(&self, target: &str) -> Option<usize> {
        let mut t = self.node_of(target)?;
        for _ in 0..16 {
            match t {
                Node::Service(si) => return Some(si),
                Node::Lb(li) => t = self.node_of(&self.m.load_balancers[li].backends)?,
                Node::Cache(ci) => t = self.node_of(self.m.caches[ci].origin.as_deref()?)?,
                _ => return None,
            }
        }
        None
    }

    fn data_unloaded(&self, si: usize, depth: usize) -> f64 {
        let s = &self.m.services[si];
        let m = self.m;
        let r = self.read_share_of_service(si);
        if let Some(ci) = self.app_cache_named(&s.cache) {
            let c = &m.caches[ci];
            let rtt = if c.local {
                0.0
            } else {
                2.0 * self.lat(&s.region, &c.region)
            };
            return rtt + self.unloaded(Node::Cache(ci), true, depth + 1);
        }
        match self.db_index(&s.database) {
            Some(di) => {
                let d = &m.databases[di];
                2.0 * self.lat(&s.region, &d.region)
                    + part(r, self.unloaded(Node::Db(di), true, depth + 1))
                    + part(1.0 - r, self.unloaded(Node::Db(di), false, depth + 1))
            }
            None => 0.0,
        }
    }

    /// The data call of service `si` with nothing queued anywhere, but with the misses its
    /// cache has in this pass (what bounds its workers when only they are busy).
    fn data_intrinsic(&self, si: usize, r: f64, caches: &BTreeMap<usize, CacheOut>) -> f64 {
        let s = &self.m.services[si];
        let m = self.m;
        let Some(ci) = self.app_cache_named(&s.cache) else {
            return self.data_unloaded(si, 0);
        };
        let c = &m.caches[ci];
        let rtt = if c.local {
            0.0
        } else {
            2.0 * self.lat(&s.region, &c.region)
        };
        let miss = caches
            .get(&ci)
            .filter(|x| x.lookups > 0.0)
            .map_or(1.0, |x| 1.0 - x.hits / x.lookups);
        let from = if c.local { &s.region } else { &c.region };
        let backend = |read: bool| {
            self.cache_backend(ci, si).map_or(0.0, |b| {
                2.0 * self.lat(from, &self.region_of(b)) + self.unloaded(b, read, 1)
            })
        };
        let write = if c.write_policy == WritePolicy::WriteBehind {
            0.0
        } else {
            backend(false)
        };
        rtt + self.unloaded(Node::Cache(ci), true, 1)
            + part(r * miss, backend(true))
            + part(1.0 - r, write)
    }

    /// Share of reads among the requests of the clients behind service `si` (by rate).
    fn read_share_of_service(&self, si: usize) -> f64 {
        let (mut w, mut r) = (0.0, 0.0);
        for (ci, c) in self.m.clients.iter().enumerate() {
            if self.behind[ci] == Some(si) {
                let x = open_rate(c).unwrap_or(1.0).max(1e-9);
                w += x;
                r += x * c.read_ratio.clamp(0.0, 1.0);
            }
        }
        if w > 0.0 {
            r / w
        } else {
            1.0
        }
    }

    /// One pass at these client rates (requests per second each).
    ///
    /// With `pin`, a database node at its saturation (a saturated closed loop keeps a
    /// backlog upstream) is taken at its cap rather than in the chain's light state.
    pub fn pass(&self, rates: &[f64], pin: bool) -> Pass {
        let m = self.m;
        let g = &self.grid;
        let mut inputs: BTreeMap<Node, Vec<(Option<usize>, Load)>> = BTreeMap::new();
        let mut rows_browser = Vec::new();
        let mut client_hit = vec![0.0; m.clients.len()];
        // Clients (and their browser caches).
        for (i, c) in m.clients.iter().enumerate() {
            let rate = rates.get(i).copied().unwrap_or(0.0).max(0.0);
            let mut load = self.unit[i].scaled(rate);
            if let Some(b) = &c.browser_cache {
                let users = c
                    .user_ids
                    .or(c.users.filter(|u| *u > 0))
                    .unwrap_or(1)
                    .max(1) as f64;
                let ttl = secs(b.max_age.0 .0 as f64);
                let (yes, no) = load.split(g, b.cacheable.clamp(0.0, 1.0));
                let groups = yes.groups(g);
                // Each user's browser is an unbounded TTL cache of that user's reads
                // (λ·T / (1 + λ·T) per key in the steady state), empty at the start.
                let per_user: Vec<Group> = groups
                    .iter()
                    .map(|x| Group {
                        read: x.read / users,
                        write: 0.0,
                        ..*x
                    })
                    .collect();
                let out = hit::solve(
                    &per_user,
                    &Params {
                        capacity: None,
                        policy: Policy::Lru,
                        ttl: Some(ttl),
                        writes: Writes::Ignore,
                        fill: 0.0,
                        coalesce: false,
                        window: self.window,
                    },
                );
                let (mut lookups, mut hits) = (0.0, 0.0);
                let mut after = yes.map_indexed(|k, p| {
                    let h = out.get(k).map_or(0.0, |o| o.hit);
                    lookups += groups[k].n * groups[k].read;
                    hits += groups[k].n * groups[k].read * h;
                    super::keys::Piece {
                        read: p.read * (1.0 - h),
                        ..p
                    }
                });
                after.add(&no);
                load = after;
                client_hit[i] = if rate > 0.0 { hits / rate } else { 0.0 };
                rows_browser.push(ComponentEstimate {
                    component: format!("{}.browser", c.name),
                    kind: "browser_cache",
                    offered_rps: lookups,
                    hit_ratio: (lookups > 0.0).then(|| hits / lookups),
                    method: "TTL cache per user: λT/(1+λT) per key".to_string(),
                    ..ComponentEstimate::empty()
                });
            }
            if let Some(t) = self.node_of(&c.target) {
                inputs.entry(t).or_default().push((None, load));
            }
        }
        // Loads downstream.
        let mut caches: BTreeMap<usize, CacheOut> = BTreeMap::new();
        let mut lb_rps: BTreeMap<usize, f64> = BTreeMap::new();
        let mut svc_load: BTreeMap<usize, (f64, f64)> = BTreeMap::new();
        let mut db_nodes: BTreeMap<usize, Vec<DbNodeOut>> = BTreeMap::new();
        let mut queue_rate: BTreeMap<usize, f64> = BTreeMap::new();
        for &n in &self.order {
            let parts = inputs.remove(&n).unwrap_or_default();
            let mut sum = Load::zero(g);
            for (_, l) in &parts {
                sum.add(l);
            }
            match n {
                Node::Cache(ci) if m.caches[ci].tier == Tier::Cdn => {
                    let c = &m.caches[ci];
                    let (out, stats) = self.edge(ci, &sum);
                    caches.insert(ci, stats);
                    if let Some(o) = c.origin.as_deref().and_then(|o| self.node_of(o)) {
                        inputs.entry(o).or_default().push((None, out));
                    }
                }
                Node::Cache(ci) => {
                    let (outs, stats) = self.app_cache(ci, &parts);
                    caches.insert(ci, stats);
                    for (to, l) in outs {
                        inputs.entry(to).or_default().push((None, l));
                    }
                }
                Node::Lb(li) => {
                    lb_rps.insert(li, total(g, &sum));
                    if let Some(t) = self.node_of(&m.load_balancers[li].backends) {
                        inputs.entry(t).or_default().push((None, sum));
                    }
                }
                Node::Service(si) => {
                    let (r, w) = sum.totals(g);
                    svc_load.insert(si, (r, w));
                    for d in self.downstream(n) {
                        match d {
                            Node::Queue(qi) => {
                                *queue_rate.entry(qi).or_default() +=
                                    w * m.queues[qi].enqueue_ratio.clamp(0.0, 1.0);
                            }
                            other => inputs
                                .entry(other)
                                .or_default()
                                .push((Some(si), sum.clone())),
                        }
                    }
                }
                Node::Db(di) => {
                    let outside = self.outside_time(di, &sum, &svc_load);
                    db_nodes.insert(di, self.database(di, &sum, rates, outside, pin));
                }
                Node::Queue(_) => {}
            }
        }
        // Times upstream.
        let mut time: BTreeMap<Node, f64> = BTreeMap::new();
        let mut rows_services = Vec::new();
        let mut rows_pools = Vec::new();
        let mut rows_caches = Vec::new();
        let mut rows_lbs = Vec::new();
        let mut rows_queues = Vec::new();
        let mut stations = Vec::new();
        for &n in self.order.iter().rev() {
            match n {
                Node::Db(_) => {}
                Node::Queue(qi) => {
                    let lambda = queue_rate.get(&qi).copied().unwrap_or(0.0);
                    rows_queues.push(self.queue_row(qi, lambda));
                }
                Node::Cache(ci) => {
                    let Some(stats) = caches.get_mut(&ci) else {
                        continue;
                    };
                    let c = &m.caches[ci];
                    let (row, t) = self.cache_times(ci, stats, &time, &db_nodes);
                    time.insert(n, t);
                    rows_caches.push(row);
                    if c.tier == Tier::Cdn {
                        rows_caches.push(ComponentEstimate {
                            component: format!("{}.origin", c.name),
                            kind: "cdn_origin",
                            offered_rps: stats.origin_calls,
                            method: "the edge's misses and pass-through".to_string(),
                            hit_ratio: (stats.requests > 0.0)
                                .then(|| 1.0 - stats.origin_calls / stats.requests),
                            ..ComponentEstimate::empty()
                        });
                    }
                }
                Node::Service(si) => {
                    let (r, w) = svc_load.get(&si).copied().unwrap_or((0.0, 0.0));
                    let (row, pool, t, st) = self.service_times(si, r, w, &caches, &db_nodes);
                    time.insert(n, t);
                    stations.push(st);
                    rows_services.push(row);
                    rows_pools.extend(pool);
                }
                Node::Lb(li) => {
                    let l = &m.load_balancers[li];
                    let to = self.node_of(&l.backends);
                    let behind = to.and_then(|t| time.get(&t).copied()).unwrap_or(0.0);
                    let hop = to.map_or(0.0, |t| 2.0 * self.lat(&l.region, &self.region_of(t)));
                    let t = lb_parse_s(l) + hop + behind;
                    time.insert(n, t);
                    rows_lbs.push(ComponentEstimate {
                        component: l.name.clone(),
                        kind: "load_balancer",
                        offered_rps: lb_rps.get(&li).copied().unwrap_or(0.0),
                        method: "delay: parse + hops + its backend's time".to_string(),
                        sojourn_ms: Some(t * 1e3),
                        ..ComponentEstimate::empty()
                    });
                }
            }
        }
        // Client response times.
        let response_s = m
            .clients
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let Some(t) = self.node_of(&c.target) else {
                    return 0.0;
                };
                let there = time.get(&t).copied().unwrap_or(0.0)
                    + 2.0 * self.lat(&c.region, &self.region_of(t));
                part(1.0 - client_hit[i], there)
            })
            .collect();
        // Rows in model order within each kind.
        rows_services.sort_by_key(|r| {
            position(
                &m.services.iter().map(|s| &s.name).collect::<Vec<_>>(),
                &r.component,
            )
        });
        let mut components = rows_services;
        rows_pools.sort_by(|a, b| a.component.cmp(&b.component));
        components.extend(rows_pools);
        components.extend(sorted_by_model(
            rows_lbs,
            m.load_balancers.iter().map(|l| l.name.clone()).collect(),
        ));
        components.extend(sorted_by_model(
            rows_caches,
            m.caches
                .iter()
                .flat_map(|c| [c.name.clone(), format!("{}.origin", c.name)])
                .collect(),
        ));
        components.extend(rows_browser);
        for (_, nodes) in db_nodes {
            components.extend(nodes.into_iter().map(|n| n.est));
        }
        components.extend(sorted_by_model(
            rows_queues,
            m.queues.iter().map(|q| q.name.clone()).collect(),
        ));
        // Per client: the service it queues in and the share of its requests that get
        // there (past its browser cache and the CDN edges on the way).
        let reach = (0..m.clients.len())
            .map(|i| {
                let mut share = 1.0 - client_hit[i];
                let mut t = self.node_of(&m.clients[i].target)?;
                for _ in 0..16 {
                    match t {
                        Node::Service(si) => return Some((m.services[si].name.clone(), share)),
                        Node::Lb(li) => t = self.node_of(&m.load_balancers[li].backends)?,
                        Node::Cache(ci) => {
                            let st = caches.get(&ci)?;
                            if st.requests > 0.0 {
                                share *= st.origin_calls / st.requests;
                            }
                            t = self.node_of(m.caches[ci].origin.as_deref()?)?;
                        }
                        _ => return None,
                    }
                }
                None
            })
            .collect();
        Pass {
            components,
            response_s,
            stations,
            reach,
        }
    }

    /// A CDN edge: cacheable reads are looked up; misses, other reads and writes go to
    /// the origin.
    fn edge(&self, ci: usize, sum: &Load) -> (Load, CacheOut) {
        let g = &self.grid;
        let c = &self.m.caches[ci];
        let (yes, no) = sum.split(g, c.cacheable.unwrap_or(1.0).clamp(0.0, 1.0));
        let groups = yes.groups(g);
        let fill = self.unloaded(Node::Cache(ci), true, 0)
            - c.latency.as_ref().map_or(0.0, |d| secs(d.0.mean()));
        let params = Params {
            capacity: c.capacity.map(|x| x as f64),
            policy: policy(c.eviction),
            ttl: c.ttl.map(|d| secs(d.0 .0 as f64)),
            writes: Writes::Ignore,
            fill: fill.max(0.0),
            coalesce: c.stampede != Stampede::None,
            window: if c.warm.is_some() { None } else { self.window },
        };
        let out = hit::solve(&groups, &params);
        let gaps = hit::miss_gaps(&groups, &params);
        let lookups: f64 = groups.iter().map(|x| x.n * x.read).sum();
        let hits: f64 = groups
            .iter()
            .zip(&out)
            .map(|(x, o)| x.n * x.read * o.hit)
            .sum();
        let mut to_origin = yes.map_indexed(|k, p| super::keys::Piece {
            read: p.read * out.get(k).map_or(1.0, |o| o.backend),
            gap: gaps.get(k).copied().unwrap_or(0.0),
            ..p
        });
        to_origin.add(&no);
        let (r, w) = sum.totals(g);
        let origin_calls = total(g, &to_origin);
        (
            to_origin,
            CacheOut {
                requests: r + w,
                lookups,
                hits,
                reads: r,
                writes: w,
                origin_calls,
                nodes: 1.0,
                ..CacheOut::default()
            },
        )
    }

    /// An app cache: reads looked up, misses and writes sent on by the write policy; a
    /// local cache is one per instance of each service that uses it.
    fn app_cache(
        &self,
        ci: usize,
        parts: &[(Option<usize>, Load)],
    ) -> (Vec<(Node, Load)>, CacheOut) {
        let g = &self.grid;
        let c = &self.m.caches[ci];
        // Per cache node: (the service whose instances it serves, instances, its load).
        let mut nodes: Vec<(usize, f64, Load)> = Vec::new();
        if c.local {
            for (from, l) in parts {
                let Some(si) = *from else { continue };
                let inst = f64::from(self.m.services[si].instances.max(1));
                nodes.push((si, inst, l.scaled(1.0 / inst)));
            }
        } else {
            let mut sum = Load::zero(g);
            let mut first = None;
            for (from, l) in parts {
                sum.add(l);
                first = first.or(*from);
            }
            if let Some(si) = first.or_else(|| self.cache_users(ci).first().copied()) {
                nodes.push((si, 1.0, sum));
            }
        }
        let mut stats = CacheOut::default();
        let mut outs = Vec::new();
        for (si, copies, load) in nodes {
            let backend = self.cache_backend(ci, si);
            let fill = match backend {
                Some(b) => {
                    let from = if c.local {
                        &self.m.services[si].region
                    } else {
                        &c.region
                    };
                    2.0 * self.lat(from, &self.region_of(b)) + self.unloaded(b, true, 0)
                }
                None => 0.0,
            };
            let groups = load.groups(g);
            let params = Params {
                capacity: c.capacity.map(|x| x as f64),
                policy: policy(c.eviction),
                ttl: c.ttl.map(|d| secs(d.0 .0 as f64)),
                writes: writes_effect(c),
                fill,
                coalesce: c.stampede != Stampede::None,
                window: if c.warm.is_some() { None } else { self.window },
            };
            let out = hit::solve(&groups, &params);
            let gaps = hit::miss_gaps(&groups, &params);
            let flush = c
                .flush_interval
                .map_or(1.0, |d| secs(d.0 .0 as f64))
                .max(1e-9);
            let sent = load.map_indexed(|k, p| super::keys::Piece {
                read: p.read * out.get(k).map_or(1.0, |o| o.backend),
                gap: gaps.get(k).copied().unwrap_or(0.0),
                write: if c.write_policy == WritePolicy::WriteBehind {
                    // Writes to a key within one flush interval coalesce into one.
                    -(-p.write * flush).exp_m1() / flush
                } else {
                    p.write
                },
                ..p
            });
            let (r, w) = load.totals(g);
            stats.requests += copies * (r + w);
            stats.reads += copies * r;
            stats.writes += copies * w;
            stats.lookups += copies * r;
            stats.hits += copies
                * groups
                    .iter()
                    .zip(&out)
                    .map(|(x, o)| x.n * x.read * o.hit)
                    .sum::<f64>();
            let sent = sent.scaled(copies);
            stats.origin_calls += total(g, &sent);
            stats.nodes += copies;
            if let Some(b) = backend {
                outs.push((b, sent));
            }
        }
        (outs, stats)
    }

    /// Database `di` fed `load`: per shard, writes to the primary and reads to the primary
    /// or replicas; each node solved as a load-dependent queue.
    /// Time per database request that the slots bounding database `di` (its callers'
    /// workers) spend outside it: their CPU and NIC time over the share of their requests
    /// that reach it. Callers bounded by a pool hold a connection only for the call.
    fn outside_time(&self, di: usize, load: &Load, svc_load: &BTreeMap<usize, (f64, f64)>) -> f64 {
        let (mut weight, mut t, mut callers) = (0.0, 0.0, 0.0);
        for (si, s) in self.m.services.iter().enumerate() {
            if !self.reaches(si, di) {
                continue;
            }
            let w = f64::from(s.instances.max(1)) * f64::from(s.workers.max(1));
            let pooled = s.pool.is_some_and(|p| p.size < s.workers);
            weight += w;
            t += w * if pooled {
                0.0
            } else {
                self.cpu_s(si) + self.nic_s(si)
            };
            callers += svc_load.get(&si).map_or(0.0, |(r, w)| r + w);
        }
        let db = total(&self.grid, load);
        if weight <= 0.0 || db <= 0.0 || callers <= 0.0 {
            return 0.0;
        }
        (t / weight) * callers / db
    }

    /// Whether service `si`'s data calls end at database `di`.
    fn reaches(&self, si: usize, di: usize) -> bool {
        self.reach[si] == Some(di)
    }

    fn database(
        &self,
        di: usize,
        load: &Load,
        rates: &[f64],
        outside: f64,
        pin: bool,
    ) -> Vec<DbNodeOut> {
        let g = &self.grid;
        let d = &self.m.databases[di];
        let sh = &self.shards[di];
        let replicas = d.replicas as usize;
        // Share of reads the primary serves.
        let to_primary = if replicas == 0 || d.consistency == Consistency::Cp {
            1.0
        } else {
            match d.read_from {
                ReadFrom::Primary => 1.0,
                ReadFrom::Replicas => 0.0,
                ReadFrom::ReadYourWrites(w) => self.wrote_recently(secs(w.0 as f64), rates),
            }
        };
        let splits: Vec<Split> = g.cells.iter().map(|&(lo, hi)| sh.split(lo, hi)).collect();
        // Per shard totals: keys placed exactly, plus the spread cells by share.
        let mut reads = vec![0.0; sh.n];
        let mut writes = vec![0.0; sh.n];
        let (mut spread_r, mut spread_w) = (0.0, 0.0);
        for (ci, pieces) in load.cells.iter().enumerate() {
            let (lo, hi) = g.cells[ci];
            let (mut r, mut w) = (0.0, 0.0);
            for (n, p) in piece_sizes(pieces, (hi - lo) as f64) {
                r += n * p.read;
                w += n * p.write;
            }
            match &splits[ci] {
                Split::One(s) => {
                    reads[*s] += r;
                    writes[*s] += w;
                }
                Split::Few(v) => {
                    for &(s, f) in v {
                        reads[s] += r * f;
                        writes[s] += w * f;
                    }
                }
                Split::Spread => {
                    spread_r += r;
                    spread_w += w;
                }
            }
        }
        for s in 0..sh.n {
            reads[s] += spread_r * sh.shares[s];
            writes[s] += spread_w * sh.shares[s];
        }
        // Buffer-pool hit ratios need each node's keys; with many shards only the hottest
        // shard is worked out key by key and stands for the others.
        let hottest = (0..sh.n)
            .max_by(|&a, &b| {
                (reads[a] + writes[a])
                    .total_cmp(&(reads[b] + writes[b]))
                    .then(b.cmp(&a))
            })
            .unwrap_or(0);
        let groups_of = |s: usize, read_f: f64, write_f: f64| -> Vec<Group> {
            let mut v = Vec::new();
            for (ci, pieces) in load.cells.iter().enumerate() {
                let (lo, hi) = g.cells[ci];
                let f = sh.fraction(&splits[ci], s);
                for (n, p) in piece_sizes(pieces, (hi - lo) as f64 * f) {
                    if n > 0.0 {
                        // The pool is an LRU over every key the node touches.
                        let write = p.write * write_f;
                        v.push(Group {
                            n,
                            read: p.read * read_f + write,
                            write: 0.0,
                            // Writes reach the node independently of the filtered reads.
                            gap: if write > 0.0 { 0.0 } else { p.gap },
                        });
                    }
                }
            }
            v
        };
        let pool_hit = |s: usize, read_f: f64, write_f: f64| -> Option<f64> {
            let bp = d.buffer_pool.as_ref()?;
            let groups = groups_of(s, read_f, write_f);
            let out = hit::solve(
                &groups,
                &Params {
                    capacity: Some(bp.pages as f64),
                    policy: Policy::Lru,
                    ttl: None,
                    writes: Writes::Ignore,
                    fill: 0.0,
                    coalesce: false,
                    window: self.window,
                },
            );
            hit::ratio(&groups, &out)
        };
        let each_shard = sh.n <= 64;
        let disk = d
            .buffer_pool
            .as_ref()
            .map_or(0.0, |b| secs(b.disk_read.0.mean()));
        let read_time = secs(d.read_time.0.mean());
        let write_time = secs(d.write_time.0.mean());
        let repl = self.replication_wait(di);
        let usl = d.contention.map(|c| (c.sigma, c.kappa));
        let cap = match (d.max_connections, self.upstream[di]) {
            (Some(mc), Some(up)) if u64::from(mc) <= up => Some((u64::from(mc), true)),
            (_, Some(up)) => Some((up.max(1), false)),
            (Some(mc), None) => Some((u64::from(mc), true)),
            (None, None) => None,
        };
        let mut out = Vec::new();
        let mut hits_cache: BTreeMap<(usize, usize), Option<f64>> = BTreeMap::new();
        for s in 0..sh.n {
            for node in 0..=replicas {
                let (r, w, read_f, write_f) = if node == 0 {
                    (reads[s] * to_primary, writes[s], to_primary, 1.0)
                } else {
                    let f = (1.0 - to_primary) / replicas as f64;
                    (reads[s] * f, 0.0, f, 0.0)
                };
                let role = usize::from(node > 0);
                let shard_key = if each_shard { s } else { hottest };
                let ph = *hits_cache
                    .entry((shard_key, role))
                    .or_insert_with(|| pool_hit(shard_key, read_f, write_f));
                let miss_disk = ph.map_or(0.0, |h| (1.0 - h) * disk);
                let lambda = r + w;
                let (base, fixed) = if lambda > 0.0 {
                    (
                        (r * read_time + w * write_time) / lambda,
                        miss_disk + w / lambda * repl,
                    )
                } else {
                    (read_time, miss_disk)
                };
                let model = LoadDependent {
                    base_s: base,
                    fixed_s: fixed,
                    usl,
                    cap,
                    outside_s: outside,
                };
                let sat = model.saturation();
                let sol = if pin && lambda >= sat * (1.0 - 1e-4) {
                    model.pinned().or_else(|| model.solve(lambda))
                } else {
                    model.solve(lambda)
                };
                let name = d.node_name(s as u32, node as u32);
                let region = if node > 0 && d.replica_region.is_some() {
                    d.replica_region.clone()
                } else {
                    d.region.clone()
                };
                let servers = d.max_connections.map(u64::from).or(cap.map(|c| c.0));
                let est = match sol {
                    Some(x) => ComponentEstimate {
                        component: name.clone(),
                        kind: "database",
                        offered_rps: lambda,
                        servers,
                        utilization: d.max_connections.map(|mc| x.inside / f64::from(mc.max(1))),
                        mean_queue: Some(x.inside),
                        wait_ms: Some(0.0),
                        sojourn_ms: Some(x.sojourn_s * 1e3),
                        saturation_rps: sat,
                        hit_ratio: ph,
                        refused: (x.refused > 0.0).then_some(x.refused),
                        offered_load: d
                            .max_connections
                            .map(|mc| lambda * x.sojourn_s / f64::from(mc.max(1))),
                        method: db_method(d, ph.is_some()),
                    },
                    None => ComponentEstimate {
                        component: name.clone(),
                        kind: "database",
                        offered_rps: lambda,
                        servers,
                        utilization: d.max_connections.map(|_| 1.0),
                        mean_queue: None,
                        wait_ms: None,
                        sojourn_ms: None,
                        saturation_rps: sat,
                        hit_ratio: ph,
                        refused: None,
                        offered_load: d.max_connections.map(|mc| {
                            lambda * (base * model.factor_at(mc) + fixed) / f64::from(mc.max(1))
                        }),
                        method: db_method(d, ph.is_some()),
                    },
                };
                let stretch = sol.map_or(f64::INFINITY, |x| x.stretch);
                out.push(DbNodeOut {
                    region,
                    callers_limit: model.callers_limit(),
                    reads: r,
                    writes: w,
                    read_s: stretch * read_time + miss_disk,
                    write_s: stretch * write_time + miss_disk + repl,
                    est,
                });
            }
        }
        out
    }

    /// Under `read_your_writes(w)`: the share of reads by a user who wrote within `w`.
    fn wrote_recently(&self, w: f64, rates: &[f64]) -> f64 {
        let (mut reads, mut primary) = (0.0, 0.0);
        for (i, c) in self.m.clients.iter().enumerate() {
            let rate = rates.get(i).copied().unwrap_or(0.0);
            let users = c
                .user_ids
                .or(c.users.filter(|u| *u > 0))
                .unwrap_or(1)
                .max(1) as f64;
            let r = c.read_ratio.clamp(0.0, 1.0);
            let per_user_writes = rate * (1.0 - r) / users;
            reads += rate * r;
            primary += rate * r * -(-per_user_writes * w).exp_m1();
        }
        if reads > 0.0 {
            (primary / reads).clamp(0.0, 1.0)
        } else {
            0.0
        }
    }

    /// Extra time a write holds its connection waiting for replicas (semi_sync: the first
    /// of them; sync: all), seconds.
    fn replication_wait(&self, di: usize) -> f64 {
        let d = &self.m.databases[di];
        let r = d.replicas;
        if r == 0 || d.replication == Replication::Async {
            return 0.0;
        }
        let delay = d
            .replication_delay
            .as_ref()
            .map_or(0.0, |x| secs(x.0.mean()));
        let exp_like = d
            .replication_delay
            .as_ref()
            .is_some_and(|x| x.0.scv() > 0.5);
        let replica_region = d.replica_region.clone().or_else(|| d.region.clone());
        let rtt = 2.0 * self.lat(&d.region, &replica_region);
        let order = if !exp_like {
            delay
        } else if d.replication == Replication::SemiSync {
            delay / f64::from(r) // the first of r exponentials
        } else {
            delay * (1..=r).map(|k| 1.0 / f64::from(k)).sum::<f64>() // the last: H_r
        };
        order + rtt
    }

    /// The mean time of a read (`read`) or write at database `di` as seen from a caller
    /// in `from`, seconds: nodes weighted by the traffic they serve.
    fn db_time(
        &self,
        di: usize,
        from: &Option<String>,
        read: bool,
        db_nodes: &BTreeMap<usize, Vec<DbNodeOut>>,
    ) -> f64 {
        let Some(nodes) = db_nodes.get(&di) else {
            return self.unloaded(Node::Db(di), read, 0);
        };
        let (mut w, mut t) = (0.0, 0.0);
        for n in nodes {
            let x = if read { n.reads } else { n.writes };
            if x > 0.0 {
                w += x;
                t +=
                    x * (2.0 * self.lat(from, &n.region) + if read { n.read_s } else { n.write_s });
            }
        }
        if w > 0.0 {
            t / w
        } else {
            self.unloaded(Node::Db(di), read, 0)
        }
    }

    /// Time of a backend call from a cache in `from` to `b` (a read or a write), seconds.
    fn backend_time(
        &self,
        b: Node,
        from: &Option<String>,
        read: bool,
        time: &BTreeMap<Node, f64>,
        db_nodes: &BTreeMap<usize, Vec<DbNodeOut>>,
    ) -> f64 {
        match b {
            Node::Db(di) => self.db_time(di, from, read, db_nodes),
            other => {
                2.0 * self.lat(from, &self.region_of(other))
                    + time
                        .get(&other)
                        .copied()
                        .unwrap_or_else(|| self.unloaded(other, read, 0))
            }
        }
    }

    fn cache_times(
        &self,
        ci: usize,
        st: &mut CacheOut,
        time: &BTreeMap<Node, f64>,
        db_nodes: &BTreeMap<usize, Vec<DbNodeOut>>,
    ) -> (ComponentEstimate, f64) {
        let c = &self.m.caches[ci];
        let lat = c.latency.as_ref().map_or(0.0, |d| secs(d.0.mean()));
        // With max_ops each node is a FIFO server of 1/max_ops per operation (M/D/1).
        let per_node = if st.nodes > 0.0 {
            st.requests / st.nodes
        } else {
            0.0
        };
        let (op, util, sat) = match c.max_ops.filter(|x| *x > 0.0 && x.is_finite()) {
            Some(mo) => {
                let rho = per_node / mo;
                let wait = if rho < 1.0 {
                    rho / (2.0 * mo * (1.0 - rho))
                } else {
                    f64::INFINITY
                };
                (wait + 1.0 / mo, Some(rho), mo * st.nodes.max(1.0))
            }
            None => (0.0, None, f64::INFINITY),
        };
        let miss = if st.lookups > 0.0 {
            1.0 - st.hits / st.lookups
        } else {
            0.0
        };
        let (read_s, write_s, t);
        if c.tier == Tier::Cdn {
            let origin = c.origin.as_deref().and_then(|o| self.node_of(o));
            let call = 2.0 * c.origin_latency.as_ref().map_or(0.0, |d| secs(d.0.mean()))
                + origin.map_or(0.0, |o| {
                    self.backend_time(o, &c.region, true, time, db_nodes)
                });
            let share = if st.requests > 0.0 {
                st.origin_calls / st.requests
            } else {
                0.0
            };
            read_s = lat + op + part(miss, call);
            write_s = lat + op + call;
            t = lat + op + part(share, call);
        } else {
            let users = self.cache_users(ci);
            let si = users.first().copied();
            let backend = si.and_then(|s| self.cache_backend(ci, s));
            let from = if c.local {
                si.and_then(|s| self.m.services[s].region.clone())
            } else {
                c.region.clone()
            };
            let br = backend.map_or(0.0, |b| self.backend_time(b, &from, true, time, db_nodes));
            let bw = backend.map_or(0.0, |b| self.backend_time(b, &from, false, time, db_nodes));
            read_s = lat + op + part(miss, br);
            write_s = lat
                + op
                + if c.write_policy == WritePolicy::WriteBehind {
                    0.0
                } else {
                    bw
                };
            let n = st.reads + st.writes;
            t = if n > 0.0 {
                (part(st.reads, read_s) + part(st.writes, write_s)) / n
            } else {
                lat + op
            };
        }
        st.read_s = read_s;
        st.write_s = write_s;
        st.time_s = t;
        let mut method = match c.eviction {
            _ if c.capacity.is_none() => "unbounded: TTL and writes only",
            Eviction::Lru => "Che's approximation (LRU)",
            Eviction::Fifo | Eviction::Random => "pT/(1+pT) (FIFO, random; Che's T)",
            Eviction::Lfu => "the C most popular keys (LFU)",
        }
        .to_string();
        if util.is_some() {
            method.push_str("; each node M/D/1 at max_ops");
        }
        let row = ComponentEstimate {
            component: c.name.clone(),
            kind: if c.tier == Tier::Cdn { "cdn" } else { "cache" },
            offered_rps: st.requests,
            utilization: util.map(|u| u.min(1.0)),
            offered_load: util,
            method,
            sojourn_ms: Some(t * 1e3),
            saturation_rps: sat,
            hit_ratio: (st.lookups > 0.0).then(|| st.hits / st.lookups),
            ..ComponentEstimate::empty()
        };
        (row, t)
    }

    /// A service: instances x workers, each request holding a worker for its CPU time, the
    /// wait for a pooled connection, its data call and its NIC time.
    fn service_times(
        &self,
        si: usize,
        reads: f64,
        writes: f64,
        caches: &BTreeMap<usize, CacheOut>,
        db_nodes: &BTreeMap<usize, Vec<DbNodeOut>>,
    ) -> (
        ComponentEstimate,
        Option<ComponentEstimate>,
        f64,
        SvcStation,
    ) {
        let m = self.m;
        let s = &m.services[si];
        let lambda = reads + writes;
        let inst = f64::from(s.instances.max(1));
        let c = s.workers.max(1);
        let servers = u64::from(s.instances.max(1)) * u64::from(c);
        // A law without a second moment (Pareto, shape ≤ 2) has an unbounded SCV.
        let cpu_scv = match s.service_time.0.scv() {
            x if x.is_nan() => f64::INFINITY,
            x => x.max(0.0),
        };
        let nic = self.nic_s(si);
        let r_share = if lambda > 0.0 {
            reads / lambda
        } else {
            self.read_share_of_service(si)
        };
        // The data call.
        let cache = self.app_cache_named(&s.cache);
        let (data, has_data) = match (cache, self.db_index(&s.database)) {
            (Some(ci), _) => {
                let k = &m.caches[ci];
                let rtt = if k.local {
                    0.0
                } else {
                    2.0 * self.lat(&s.region, &k.region)
                };
                let st = caches.get(&ci);
                let t = st.map_or(0.0, |x| {
                    part(r_share, x.read_s) + part(1.0 - r_share, x.write_s)
                });
                (rtt + t, true)
            }
            (None, Some(di)) => (
                part(r_share, self.db_time(di, &s.region, true, db_nodes))
                    + part(1.0 - r_share, self.db_time(di, &s.region, false, db_nodes)),
                true,
            ),
            (None, None) => (0.0, false),
        };
        let per_inst = lambda / inst;
        // The pool. Fewer connections than workers: the workers' loop (own work, then a
        // connection for the data call) is solved as a flow-equivalent server below. As
        // many as the workers: no wait. A data tier that does not keep up: unbounded.
        let conns = s.pool.filter(|_| has_data).map(|p| p.size.max(1));
        let fes = conns.filter(|&p| p < c && data > 0.0 && data.is_finite());
        let pool_wait = match conns {
            Some(p) if p < c && fes.is_none() && data > 0.0 => f64::INFINITY,
            _ => 0.0,
        };
        // The NIC: a FIFO sender per instance (M/D/1).
        let nic_wait = if nic > 0.0 {
            let rho = per_inst * nic;
            if rho < 1.0 {
                rho * nic / (2.0 * (1.0 - rho))
            } else {
                f64::INFINITY
            }
        } else {
            0.0
        };
        // Each instance holds a worker for its own CPU time (its speed) and the rest.
        let rest = pool_wait + data + nic + nic_wait;
        let cpu_var = |work: f64| cpu_scv * work * work;
        let holds: Vec<(f64, f64, f64)> = self
            .speeds(si)
            .iter()
            .zip(self.shares(si))
            .map(|(&v, share)| {
                let work = self.work_s(si, v);
                let hold = work + rest;
                let var = cpu_var(work) + data * data + pool_wait * pool_wait;
                let scv = if hold > 0.0 && hold.is_finite() {
                    var / (hold * hold)
                } else {
                    1.0
                };
                (share, hold, scv)
            })
            .collect();
        let io = self.instance_model(si, lambda, &holds, fes.map(|p| (p, data)));
        let wq = io.wait;
        let hold: f64 = holds.iter().map(|(w, h, _)| part(*w, *h)).sum();
        let intrinsic_rest = nic
            + if has_data {
                self.data_intrinsic(si, r_share, caches)
            } else {
                0.0
            };
        // The first instance to fill up (its share over its capacity), or all of them
        // together behind a balancer that watches their load.
        let per_instance = holds
            .iter()
            .zip(self.speeds(si))
            .filter(|((w, _, _), _)| *w > 0.0)
            .map(|((w, _, _), v)| {
                let t = self.work_s(si, v) + intrinsic_rest;
                if t > 0.0 {
                    f64::from(c) / t / w
                } else {
                    f64::INFINITY
                }
            });
        let mut sat = if self.pooled(si) {
            self.speeds(si)
                .iter()
                .map(|&v| {
                    let t = self.work_s(si, v) + intrinsic_rest;
                    if t > 0.0 {
                        f64::from(c) / t
                    } else {
                        f64::INFINITY
                    }
                })
                .sum()
        } else {
            per_instance.fold(f64::INFINITY, f64::min)
        };
        // Workers held through database calls run out when a database node they reach
        // fills them before it peaks: the service saturates at that point.
        for (di, nodes) in db_nodes {
            if !self.reaches(si, *di) {
                continue;
            }
            for n in nodes {
                let node_rate = n.reads + n.writes;
                if let (Some(limit), true) = (n.callers_limit, node_rate > 0.0) {
                    sat = sat.min(lambda * limit / node_rate);
                }
            }
        }
        let sojourn = io.sojourn.unwrap_or(wq + hold);
        let pool_row = conns.map(|size| {
            let unloaded = self.data_intrinsic(si, r_share, caches);
            let (waiting, wait) = if fes.is_some() {
                (io.pool_waiting, io.pool_waiting / io.carried.max(1e-300))
            } else {
                (lambda * pool_wait, pool_wait)
            };
            let ok = wait.is_finite() && waiting.is_finite();
            ComponentEstimate {
                component: format!("{}.pool", s.name),
                kind: "pool",
                offered_rps: lambda,
                servers: Some(u64::from(s.instances.max(1)) * u64::from(size)),
                mean_queue: ok.then_some(waiting),
                wait_ms: ok.then_some(wait * 1e3),
                sojourn_ms: ok.then_some(wait * 1e3),
                saturation_rps: if unloaded > 0.0 {
                    inst * f64::from(size) / unloaded
                } else {
                    f64::INFINITY
                },
                method: if fes.is_some() {
                    "the service's chain (see its method): requests waiting for a connection"
                        .to_string()
                } else {
                    "no wait: at least as many connections as workers".to_string()
                },
                ..ComponentEstimate::empty()
            }
        });
        let row = ComponentEstimate {
            component: s.name.clone(),
            kind: "service",
            offered_rps: lambda,
            servers: Some(servers),
            utilization: Some(io.busy),
            offered_load: Some(io.offered),
            mean_queue: wq.is_finite().then_some(io.waiting),
            wait_ms: wq.is_finite().then_some(wq * 1e3),
            sojourn_ms: sojourn.is_finite().then_some(sojourn * 1e3),
            saturation_rps: sat,
            refused: (io.refused > 0.0).then_some(io.refused),
            method: io.method,
            ..ComponentEstimate::empty()
        };
        let station = SvcStation {
            name: s.name.clone(),
            sojourn_s: sojourn,
            lambda,
            pooled: self.pooled(si),
            servers: c,
            instances: io.stations,
        };
        (row, pool_row, sojourn, station)
    }

    /// Each instance of service `si` as a station: the model named in its row's method.
    fn instance_model(
        &self,
        si: usize,
        lambda: f64,
        holds: &[(f64, f64, f64)],
        fes: Option<(u32, f64)>,
    ) -> InstOut {
        use crate::queueing::{ekm1_wait, mmc_deadline, pool_chain, pool_fes, BirthDeath};
        use dssim_components::load_balancer::Algorithm;
        use dssim_components::shedding::Shedding;
        let s = &self.m.services[si];
        let c = s.workers.max(1);
        let n = holds.len().max(1);
        let room = match s.shedding {
            Shedding::None => None,
            _ => s.queue,
        };
        let deadline = match s.shedding {
            Shedding::Deadline(d) => Some(d.0.as_secs_f64()),
            _ => None,
        };
        let algorithm = self
            .m
            .load_balancers
            .iter()
            .find(|l| l.backends == s.name)
            .map(|l| l.algorithm);
        let equal = holds.windows(2).all(|w| (w[0].0 - w[1].0).abs() < 1e-12);
        let rr = n > 1
            && equal
            && matches!(
                algorithm,
                Some(Algorithm::RoundRobin | Algorithm::WeightedRoundRobin)
            );
        let exp = holds.iter().all(|(_, _, v)| (v - 1.0).abs() < 1e-6);
        let assumed = if exp {
            ""
        } else {
            "; exponential times assumed"
        };
        let plain = |_: f64| crate::queueing::Station::servers(c).rates;
        let stations_plain: Vec<InstStation> = holds
            .iter()
            .map(|&(share, hold, _)| InstStation {
                share,
                hold,
                rates: plain(hold),
                pool_waiting: Vec::new(),
            })
            .collect();
        let special = fes.is_some() || room.is_some() || deadline.is_some() || (rr && c == 1);
        if !special || self.pooled(si) {
            let (wq, offered, busy) = self.instance_wait(si, lambda, holds);
            let scv_note = if exp {
                ""
            } else {
                " (Allen–Cunneen: × (1 + cs²)/2)"
            };
            let method = match algorithm {
                _ if self.pooled(si) => format!(
                    "one pooled M/G/(I·c) queue (a balancer that watches load ≈ pooling), Erlang C{scv_note}"
                ),
                _ if n == 1 => format!("M/{}/c (Erlang C){scv_note}", if exp { "M" } else { "G" }),
                Some(Algorithm::RoundRobin | Algorithm::WeightedRoundRobin) => {
                    "G/G/c per instance, Allen–Cunneen with ca² = its share (round robin)".to_string()
                }
                Some(Algorithm::PowerOfTwo) => {
                    "supermarket model (Mitzenmacher), × (1 + cs²)/2".to_string()
                }
                _ => format!(
                    "M/{}/c per instance (Erlang C){scv_note}",
                    if exp { "M" } else { "G" }
                ),
            };
            return InstOut {
                wait: wq,
                waiting: lambda * wq,
                busy,
                offered,
                refused: 0.0,
                pool_waiting: 0.0,
                carried: lambda,
                sojourn: None,
                method,
                stations: stations_plain,
            };
        }
        let mut out = InstOut {
            wait: 0.0,
            waiting: 0.0,
            busy: 0.0,
            offered: 0.0,
            refused: 0.0,
            pool_waiting: 0.0,
            carried: 0.0,
            sojourn: None,
            method: String::new(),
            stations: Vec::new(),
        };
        let (mut wait_sum, mut present) = (0.0, 0.0);
        let cf = f64::from(c);
        for &(share, hold, _) in holds {
            let per = lambda * share;
            out.offered += per * hold / cf / n as f64;
            let mut st = InstStation {
                share,
                hold,
                rates: plain(hold),
                pool_waiting: Vec::new(),
            };
            if per <= 0.0 {
                out.stations.push(st);
                continue;
            }
            if let Some((p, data)) = fes {
                let outside = (hold - data).max(0.0);
                let table = pool_fes(outside, data, p, c);
                let rates: Vec<f64> = table[1..].iter().map(|t| t.0).collect();
                st.rates = rates.iter().map(|x| x * hold).collect();
                st.pool_waiting = table.iter().map(|t| t.1).collect();
                if let Some(ch) = pool_chain(per, outside, data, p, c, room) {
                    out.method = format!(
                        "Markov chain on (requests, requests at the pool), solved exactly by linear level reduction: {c} workers over {p} connections{}{assumed}",
                        if room.is_some() { ", K = c + queue" } else { "" }
                    );
                    let carried = per * (1.0 - ch.refused);
                    out.waiting += ch.waiting;
                    out.busy += ch.busy / cf / n as f64;
                    out.pool_waiting += ch.pool_waiting;
                    out.refused += share * ch.refused;
                    out.carried += carried;
                    wait_sum += ch.waiting;
                    present += ch.present;
                    out.stations.push(st);
                    continue;
                }
                out.method = format!(
                    "flow-equivalent server (Chandy–Herzog–Woo): {c} workers over {p} connections by exact MVA, then a birth–death chain{}{assumed}",
                    if room.is_some() { " with K = c + queue" } else { "" }
                );
                match BirthDeath::solve(per, &rates, room) {
                    Some(b) => {
                        let carried = per * (1.0 - b.refused);
                        out.waiting += b.waiting;
                        out.busy += b.mean_of(|m| m as f64) / cf / n as f64;
                        out.pool_waiting += b.mean_of(|m| table[m].1);
                        out.refused += share * b.refused;
                        out.carried += carried;
                        wait_sum += b.waiting;
                        present += b.present;
                    }
                    None => return InstOut::saturated(out, lambda),
                }
            } else if let Some(tau) = deadline {
                out.method = format!(
                    "M/M/c+D (deadline checked when a worker takes the request; Baccelli–Hébuterne){}{assumed}",
                    if room.is_some() { ", waiting room ignored" } else { "" }
                );
                match mmc_deadline(c, per, hold, tau) {
                    Some(d) => {
                        let carried = per * d.served;
                        out.waiting += d.waiting;
                        out.busy += d.busy / cf / n as f64;
                        out.refused += share * (1.0 - d.served);
                        out.carried += carried;
                        wait_sum += carried * d.wait_s;
                        present += carried * (d.wait_s + hold);
                    }
                    None => return InstOut::saturated(out, lambda),
                }
            } else if let Some(q) = room {
                out.method = if q == 0 {
                    format!("Erlang B (M/M/c/c: no waiting room){assumed}")
                } else {
                    format!(
                        "M/M/c/K birth–death chain (K = c + queue = {}){assumed}",
                        u64::from(c) + q
                    )
                };
                let rates: Vec<f64> = (1..=c).map(|j| f64::from(j) / hold.max(1e-300)).collect();
                match BirthDeath::solve(per, &rates, Some(q)) {
                    Some(b) => {
                        let carried = per * (1.0 - b.refused);
                        out.waiting += b.waiting;
                        out.busy += carried * hold / cf / n as f64;
                        out.refused += share * b.refused;
                        out.carried += carried;
                        wait_sum += b.waiting;
                        present += b.waiting + carried * hold;
                    }
                    None => return InstOut::saturated(out, lambda),
                }
            } else {
                // Round robin over n single-worker instances: each sees every n-th arrival.
                out.method = format!(
                    "E{n}/M/1 (round robin over {n}: each instance sees Erlang-{n} gaps; GI/M/1 root){assumed}"
                );
                let wq = ekm1_wait(n as u32, lambda, hold);
                if !wq.is_finite() {
                    return InstOut::saturated(out, lambda);
                }
                out.waiting += per * wq;
                out.busy += per * hold / n as f64;
                out.carried += per;
                wait_sum += per * wq;
                present += per * (wq + hold);
            }
            out.stations.push(st);
        }
        if out.carried > 0.0 {
            out.wait = wait_sum / out.carried;
            out.sojourn = Some(present / out.carried);
        }
        out
    }

    /// Whether service `si`'s instances are picked by a balancer that watches their load
    /// (least connections; power of two with several workers), modelled as one pooled queue.
    fn pooled(&self, si: usize) -> bool {
        use dssim_components::load_balancer::Algorithm;
        let s = &self.m.services[si];
        s.instances > 1
            && self
                .m
                .load_balancers
                .iter()
                .find(|l| l.backends == s.name)
                .is_some_and(|l| match l.algorithm {
                    Algorithm::LeastConnections => true,
                    Algorithm::PowerOfTwo => {
                        s.workers > 1 || self.speeds(si).windows(2).any(|w| w[0] != w[1])
                    }
                    _ => false,
                })
    }

    /// Mean wait for a worker and utilization of service `si` (`lambda` requests per second
    /// in all; per instance its share of them, its holding time and that time's SCV), by
    /// how its instances are picked:
    ///
    /// | picked by | model |
    /// |---|---|
    /// | random, ip_hash, consistent_hash, a client itself | independent M/G/c per instance (Erlang C, Allen–Cunneen) |
    /// | round_robin, weighted_round_robin | each instance sees every k-th arrival: G/G/c with ca² = its share |
    /// | least_connections | one pooled M/G/(I·c) with the instances' total capacity (joining the shortest queue is close to pooling) |
    /// | power_of_two, one worker, equal speeds | the supermarket model (Mitzenmacher): sojourn = S Σ_{i≥1} ρ^(2^i − 2) |
    /// | power_of_two, otherwise | pooled, as least_connections |
    fn instance_wait(&self, si: usize, lambda: f64, holds: &[(f64, f64, f64)]) -> (f64, f64, f64) {
        use dssim_components::load_balancer::Algorithm;
        let s = &self.m.services[si];
        let c = s.workers.max(1);
        let n = holds.len().max(1);
        let algorithm = self
            .m
            .load_balancers
            .iter()
            .find(|l| l.backends == s.name)
            .map(|l| l.algorithm);
        if holds.iter().any(|(w, h, _)| *w > 0.0 && !h.is_finite()) {
            return (f64::INFINITY, f64::INFINITY, 1.0);
        }
        if self.pooled(si) {
            // Capacity adds up; every worker about equally busy.
            let capacity: f64 = holds
                .iter()
                .map(|(_, h, _)| {
                    if *h > 0.0 {
                        f64::from(c) / h
                    } else {
                        f64::INFINITY
                    }
                })
                .sum();
            let servers = (n as u32).saturating_mul(c);
            let mean = f64::from(servers) / capacity;
            let scv = holds.iter().map(|(_, _, v)| v).sum::<f64>() / n as f64;
            let wq = if mean > 0.0 {
                mgc_wait(servers, lambda, mean, scv)
            } else {
                0.0
            };
            return (wq, lambda / capacity, (lambda / capacity).min(1.0));
        }
        let mut wait = 0.0;
        let mut busy = 0.0;
        let mut carried = 0.0;
        for &(share, hold, scv) in holds {
            let per = lambda * share;
            busy += per * hold;
            carried += (per * hold).min(f64::from(c));
            if per <= 0.0 || hold <= 0.0 {
                continue;
            }
            let wq = match algorithm {
                _ if n == 1 => mgc_wait(c, per, hold, scv),
                Some(Algorithm::RoundRobin | Algorithm::WeightedRoundRobin) => {
                    crate::queueing::ggc_wait(c, per, hold, share, scv)
                }
                Some(Algorithm::PowerOfTwo) => {
                    // One worker, equal speeds (else pooled, above).
                    let rho = per * hold;
                    if rho >= 1.0 {
                        f64::INFINITY
                    } else {
                        // Σ_{i≥1} ρ^(2^i − 2) − 1: the terms fall doubly exponentially.
                        let mut extra = 0.0;
                        let mut k = 2.0f64;
                        for _ in 0..64 {
                            k *= 2.0;
                            let term = rho.powf(k - 2.0);
                            extra += term;
                            if term < 1e-15 {
                                break;
                            }
                        }
                        hold * extra * (1.0 + scv) / 2.0
                    }
                }
                _ => mgc_wait(c, per, hold, scv),
            };
            wait += share * wq;
        }
        let offered = busy / (n as f64 * f64::from(c));
        (wait, offered, carried / (n as f64 * f64::from(c)))
    }

    /// A job queue: jobs at `lambda` per second, each tried until it succeeds or runs out
    /// of retries, on `workers` workers (M/G/c).
    fn queue_row(&self, qi: usize, lambda: f64) -> ComponentEstimate {
        let q = &self.m.queues[qi];
        let f = q.failure_rate.clamp(0.0, 1.0);
        let tries = (0..=q.retries.max).map(|k| f.powi(k as i32)).sum::<f64>();
        let s = secs(q.job_time.0.mean()) * tries;
        let c = q.workers.max(1);
        let wq = if s > 0.0 {
            mgc_wait(c, lambda, s, q.job_time.0.scv().max(0.0))
        } else {
            0.0
        };
        ComponentEstimate {
            component: q.name.clone(),
            kind: "queue",
            offered_rps: lambda,
            servers: Some(u64::from(c)),
            utilization: Some((lambda * s / f64::from(c)).min(1.0)),
            offered_load: Some(lambda * s / f64::from(c)),
            method: if (q.job_time.0.scv() - 1.0).abs() < 1e-9 {
                "M/M/c (Erlang C), tries per job 1 + f + … + f^retries"
            } else {
                "M/G/c (Allen–Cunneen), tries per job 1 + f + … + f^retries"
            }
            .to_string(),
            mean_queue: wq.is_finite().then_some(lambda * wq),
            wait_ms: wq.is_finite().then_some(wq * 1e3),
            sojourn_ms: (wq + s).is_finite().then_some((wq + s) * 1e3),
            saturation_rps: if s > 0.0 {
                f64::from(c) / s
            } else {
                f64::INFINITY
            },
            ..ComponentEstimate::empty()
        }
    }
}

/// How a database node is predicted.
fn db_method(d: &DatabaseConfig, pool: bool) -> String {
    let mut m = match (d.contention.is_some(), d.max_connections.is_some()) {
        (false, false) => "M/G/∞ (or M/G/c behind its callers' slots)".to_string(),
        (false, true) => "Erlang B (M/G/c/c, refused past max_connections)".to_string(),
        (true, _) => "birth–death chain, USL rates (load-dependent)".to_string(),
    };
    if pool {
        m.push_str("; buffer pool: Che (LRU)");
    }
    m
}

fn lb_parse_s(l: &dssim_components::load_balancer::LoadBalancerConfig) -> f64 {
    if l.layer == 7 {
        l.parse.as_ref().map_or(
            dssim_components::load_balancer::DEFAULT_PARSE.as_secs_f64(),
            |d| secs(d.0.mean()),
        )
    } else {
        0.0
    }
}

/// `w × t` for a share or rate `w` of something taking `t`: nothing when `w` is zero, even
/// if `t` is unbounded.
fn part(w: f64, t: f64) -> f64 {
    if w > 0.0 {
        w * t
    } else {
        0.0
    }
}

fn total(g: &Grid, l: &Load) -> f64 {
    let (r, w) = l.totals(g);
    r + w
}

fn position(names: &[&String], name: &str) -> usize {
    names
        .iter()
        .position(|n| n.as_str() == name)
        .unwrap_or(usize::MAX)
}

fn sorted_by_model(mut rows: Vec<ComponentEstimate>, names: Vec<String>) -> Vec<ComponentEstimate> {
    rows.sort_by_key(|r| {
        names
            .iter()
            .position(|n| *n == r.component)
            .unwrap_or(usize::MAX)
    });
    rows
}

/// The rate an open client sends at its busiest (steps and diurnal: the peak; a trace:
/// its mean over the span it covers); `None` for a closed loop.
pub fn open_rate(c: &ClientConfig) -> Option<f64> {
    let clean = |x: f64| if x.is_finite() && x > 0.0 { x } else { 0.0 };
    match c.arrival {
        Arrival::Poisson | Arrival::Constant => Some(clean(c.rate.unwrap_or(0.0))),
        Arrival::Closed => None,
        Arrival::Diurnal => Some(clean(c.rate.unwrap_or(0.0)).max(clean(c.peak.unwrap_or(0.0)))),
        Arrival::Steps => Some(
            c.steps
                .iter()
                .flatten()
                .map(|s| clean(s.rate))
                .fold(clean(c.rate.unwrap_or(0.0)), f64::max),
        ),
        Arrival::Trace => {
            let end = c
                .trace
                .iter()
                .copied()
                .filter(|t| t.is_finite())
                .fold(0.0, f64::max);
            Some(if end > 0.0 {
                c.trace.len() as f64 / end
            } else {
                0.0
            })
        }
    }
}

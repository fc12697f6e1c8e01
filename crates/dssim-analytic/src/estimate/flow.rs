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

mod cache;
mod database;
pub(crate) use database::shard_key_split;
mod pass;
mod queue;
mod service;
mod wiring;

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
pub struct FlowModel<'a> {
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
    /// The model's resolved wiring: every name lookup and edge a pass follows.
    topo: dssim_components::model::Topology,
    /// Per service: the database its data calls reach (through its app cache or not).
    reach: Vec<Option<usize>>,
    /// Per client: the service its target leads to.
    behind: Vec<Option<usize>>,
}

/// A CDN edge's or app cache's figures in one pass.
#[derive(Clone, Debug, Default)]
struct CacheFigures {
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
struct DbNodeFigures {
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
pub struct InstanceStation {
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
pub struct ServiceStation {
    pub name: String,
    /// Mean time in it at this pass's rates, seconds.
    pub sojourn_s: f64,
    /// Requests per second reaching it in this pass.
    pub lambda: f64,
    /// Instances picked by a balancer that watches load: one pooled station.
    pub pooled: bool,
    /// Workers per instance.
    pub servers: u32,
    pub instances: Vec<InstanceStation>,
}

/// A service's instances solved together.
struct InstanceSolution {
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
    stations: Vec<InstanceStation>,
}

impl InstanceSolution {
    /// No steady state: the queue grows without bound.
    fn saturated(mut out: InstanceSolution, lambda: f64) -> InstanceSolution {
        out.wait = f64::INFINITY;
        out.waiting = f64::INFINITY;
        out.busy = 1.0;
        out.carried = lambda;
        out.sojourn = None;
        out
    }
}

/// Everything one pass found.
pub struct FlowResult {
    /// Rows, in the order the report prints them.
    pub components: Vec<ComponentEstimate>,
    /// Per client: mean response time of its requests (browser hits count as zero), seconds.
    pub response_s: Vec<f64>,
    /// Services as stations of a closed network.
    pub stations: Vec<ServiceStation>,
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

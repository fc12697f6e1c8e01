//! Caches: an app cache (Redis-like) between services and their database, a CDN edge in
//! front of a load balancer or service, and the browser cache of each user.
//!
//! ```text
//!  browser cache        CDN edge (tier = "cdn")          app cache (tier = "app")
//!  (per user, on the    client --latency--> edge          app.0 --\
//!   client; a hit never   edge --origin_latency--> origin  app.1 ----> redis --miss/write--> database
//!   leaves the browser)   (cacheable reads only;           app.2 --/    (or `origin` when the
//!                          the rest passes through)                      service has no database)
//! ```
//!
//! **App cache** (`[[caches]]`, `tier = "app"`, the default). Services name it with
//! `cache = "redis"`; all their instances share one cache actor, or with `local = true` each
//! instance has its own (reached without the network). A read is looked up: a hit answers
//! with the cached version; a miss reads the database (the service's, through
//! [`DbRouter`], or the cache's `origin`), stores the answer and replies. Writes follow
//! `write_policy`:
//!
//! | write_policy | a write |
//! |---|---|
//! | `cache_aside` | goes to the database; then `invalidation` acts on the cache: `delete` removes the entry; `versioned` does nothing to it, because entries are keyed by (key, version): a read looks up the key's newest acknowledged version, so after a write it misses, reads the database and stores a new entry, while the old version's entry keeps its place until it is evicted or expires; `ttl_only` leaves it stale until its TTL |
//! | `write_through` | goes to the database; on its answer the entry is stored with the new version |
//! | `write_behind` | is stored in the cache and acknowledged at once; the cache flushes buffered writes to the database every `flush_interval` (writes to one key coalesce into one). Buffered writes die with the cache (counted in `lost_writes`). Versions come only from the database: the acknowledgement carries none and the entry learns the new version when the flush is acknowledged |
//!
//! `capacity` bounds entries (absent: unbounded); `eviction` is `lru`, `lfu`, `fifo` or
//! `random`. `ttl` is set when an entry is stored and **not** reset by hits, so under
//! Poisson requests at rate λ a key's hit ratio is λT/(1+λT) (expiry is lazy: an expired
//! entry counts as a miss when next looked up, and holds its slot until then).
//! `stampede`: `none` lets every concurrent miss of a key read the database (a hot key
//! expiring under load sends a burst); `coalesce` makes concurrent misses wait for the one
//! read in flight and share its answer; `lock` lets one miss read while the others retry
//! the lookup every `lock_retry` (a retry is not charged as an operation). Each operation takes `latency` and, with `max_ops`, a
//! FIFO server of `1/max_ops` per operation (queueing appears near capacity).
//! `warm = "hottest"` (or a number of entries) pre-loads the most popular keys (the lowest
//! key ids) at start and after a restart, to compare a cold start with a warm one.
//!
//! **CDN edge** (`tier = "cdn"`). Clients target it. A share `cacheable` of the keys is
//! public and cacheable (decided per key, so a resource is always or never cacheable);
//! reads of those are looked up, everything else passes through to `origin`. `latency` is
//! added once per request (client ↔ edge); `origin_latency` is added each way of an origin
//! call (edge ↔ origin). Origin offload = share of the edge's requests it answered itself.
//!
//! **Browser cache** (`browser_cache = { max_age = "60s", cacheable = 0.3 }` on a client):
//! per user and key, an ok read of a cacheable key is kept for `max_age`; a read within it
//! ends at once as ok with zero latency, and no request leaves the client.
//!
//! Measures: requests, hit ratio (hits / lookups) per cache (components.csv, one row per
//! `[[caches]]` entry, its `p99_ms` the time from arrival to answer; a CDN adds a
//! `<name>.origin` row whose `requests` are origin calls and whose `hit_ratio` is the origin
//! offload; a client with a browser cache adds a `<client>.browser` row), the overall hit
//! ratio of all caches (runs.csv and timeseries.csv `cache_hit_ratio`), writes lost from
//! write-behind buffers (`lost_writes`), and per cache ([`CacheStats`]): backend reads and
//! writes, coalesced misses and the largest number of concurrent database reads of one key
//! (the stampede).

pub mod store;

use dssim_engine::{rng::splitmix64, ActorId, Dist, Histogram, SimTime};
use rand::Rng as _;
use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize, Serializer};

use crate::database::DbRouter;
use crate::node::{Ctx, Msg};
use crate::request::{call, reply, reply_local, Op, ReqId, Request, Status};
use crate::trace;
use crate::units::{DistSpec, Dur};
use crate::ConfigError;

pub use store::{Eviction, KeyMap, Lookup, Store};

/// Where a cache sits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Tier {
    /// Between services and their database.
    #[default]
    App,
    /// A CDN edge in front of a load balancer or service.
    Cdn,
}

/// What a write does to the cache and the database.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WritePolicy {
    /// Writes go to the database; `invalidation` decides what happens to the entry.
    #[default]
    CacheAside,
    /// Writes go to the database, then the entry is stored with the new version.
    WriteThrough,
    /// Writes are stored and acknowledged at once, flushed to the database later.
    WriteBehind,
}

/// What a cache-aside write does to the cached entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Invalidation {
    /// Nothing: the entry stays (stale) until its TTL runs out.
    TtlOnly,
    /// The entry is deleted once the database has the write.
    #[default]
    Delete,
    /// Entries are keyed by (key, version): a write makes the next read miss on the new
    /// version, and the old version's entry occupies capacity until it is evicted.
    Versioned,
}

/// Protection against many concurrent misses of one key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stampede {
    /// Every miss reads the database.
    #[default]
    None,
    /// One miss reads; the others retry the lookup every `lock_retry`.
    Lock,
    /// One miss reads; the others wait for it and share its answer.
    Coalesce,
}

/// How many entries to pre-load: `"hottest"` (as many as fit) or a number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Warm {
    /// The hottest keys, up to the capacity.
    Hottest,
    /// This many of the hottest keys (capped by the capacity).
    Entries(u64),
}

impl<'de> Deserialize<'de> for Warm {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl de::Visitor<'_> for V {
            type Value = Warm;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("\"hottest\" or a number of entries such as 5000")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Warm, E> {
                match v {
                    "hottest" => Ok(Warm::Hottest),
                    _ => Err(E::custom(format!(
                        "expected \"hottest\" or a number of entries, found {v:?}"
                    ))),
                }
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Warm, E> {
                u64::try_from(v)
                    .map(Warm::Entries)
                    .map_err(|_| E::custom(format!("a number of entries cannot be negative: {v}")))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Warm, E> {
                Ok(Warm::Entries(v))
            }
        }
        d.deserialize_any(V)
    }
}

impl Serialize for Warm {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Warm::Hottest => s.serialize_str("hottest"),
            Warm::Entries(n) => s.serialize_u64(*n),
        }
    }
}

/// A `[[caches]]` entry (see the module docs).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CacheConfig {
    /// Unique name.
    pub name: String,
    /// `app` (default) or `cdn`.
    #[serde(default)]
    pub tier: Tier,
    /// Maximum entries; unbounded when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity: Option<u64>,
    /// Eviction policy.
    #[serde(default)]
    pub eviction: Eviction,
    /// Time to live of an entry, from when it is stored; none when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl: Option<Dur>,
    /// What writes do (app tier).
    #[serde(default)]
    pub write_policy: WritePolicy,
    /// What a cache-aside write does to the entry.
    #[serde(default)]
    pub invalidation: Invalidation,
    /// Protection against concurrent misses of one key.
    #[serde(default)]
    pub stampede: Stampede,
    /// Time of one operation (app tier), or client ↔ edge latency added once per request
    /// (CDN); zero when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency: Option<DistSpec>,
    /// Operations per second one cache node can serve (a FIFO server); unlimited when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_ops: Option<f64>,
    /// One cache per service instance, reached without the network.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub local: bool,
    /// Pre-load the hottest keys at start and after a restart.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warm: Option<Warm>,
    /// CDN: the load balancer or service behind the edge. App tier: what a miss reads when
    /// the service has no database (a service standing in for one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
    /// CDN: share of keys that are public and cacheable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cacheable: Option<f64>,
    /// CDN: one-way edge ↔ origin latency, added each way of an origin call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin_latency: Option<DistSpec>,
    /// Write-behind: how often buffered writes are flushed (default 1s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flush_interval: Option<Dur>,
    /// Stampede lock: how long a miss that finds the key locked waits before it looks again
    /// (default 5ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lock_retry: Option<Dur>,
    /// Region for network latency.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
}

impl CacheConfig {
    /// Checks this entry on its own (references to other components are checked by the
    /// model).
    pub fn validate(&self) -> Vec<ConfigError> {
        let p = format!("caches.{}", self.name);
        let mut errs = Vec::new();
        let positive = |field: &str, d: &Option<Dur>, errs: &mut Vec<ConfigError>| {
            if *d == Some(Dur(SimTime::ZERO)) {
                errs.push(ConfigError::new(
                    format!("{p}.{field}"),
                    "must be longer than zero",
                ));
            }
        };
        positive("ttl", &self.ttl, &mut errs);
        positive("flush_interval", &self.flush_interval, &mut errs);
        positive("lock_retry", &self.lock_retry, &mut errs);
        if let Some(m) = self.max_ops {
            if !(m.is_finite() && m > 0.0) {
                errs.push(ConfigError::new(
                    format!("{p}.max_ops"),
                    format!("must be a number of operations per second above zero; found {m}"),
                ));
            }
        }
        match (self.warm, self.capacity) {
            (Some(Warm::Hottest), None) => errs.push(ConfigError::new(
                format!("{p}.warm"),
                "warm = \"hottest\" fills the cache to its capacity: give `capacity`, or a number of entries to warm",
            )),
            (Some(Warm::Entries(n)), _) if n > MAX_WARM => errs.push(ConfigError::new(
                format!("{p}.warm"),
                format!("at most {MAX_WARM} entries can be warmed; found {n}"),
            )),
            _ => {}
        }
        if let Some(c) = self.cacheable {
            if let Err(e) = crate::units::check_ratio(&format!("{p}.cacheable"), c) {
                errs.push(e);
            }
        }
        match self.tier {
            Tier::Cdn => {
                if self.origin.is_none() {
                    errs.push(ConfigError::new(
                        format!("{p}.origin"),
                        "a CDN edge (tier = \"cdn\") needs `origin`: the load balancer or service behind it",
                    ));
                }
                if self.local {
                    errs.push(ConfigError::new(
                        format!("{p}.local"),
                        "only an app cache can be local to service instances",
                    ));
                }
                if self.write_policy == WritePolicy::WriteBehind {
                    errs.push(ConfigError::new(
                        format!("{p}.write_policy"),
                        "a CDN edge passes writes to its origin; write_behind is for app caches",
                    ));
                }
            }
            Tier::App => {
                for (field, set) in [
                    ("cacheable", self.cacheable.is_some()),
                    ("origin_latency", self.origin_latency.is_some()),
                ] {
                    if set {
                        errs.push(ConfigError::new(
                            format!("{p}.{field}"),
                            "only applies to a CDN edge (tier = \"cdn\")",
                        ));
                    }
                }
            }
        }
        errs
    }
}

/// The most entries `warm` may pre-load.
pub const MAX_WARM: u64 = 10_000_000;

/// A `browser_cache` table on a client: per-user caching of cacheable reads.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BrowserCacheConfig {
    /// How long a response may be reused (Cache-Control: max-age).
    pub max_age: Dur,
    /// Share of keys whose responses are cacheable (default 1).
    #[serde(default = "one")]
    pub cacheable: f64,
}

fn one() -> f64 {
    1.0
}

/// Whether `key` is cacheable when a share `share` of keys is: fixed per key, so the same
/// resource is always cacheable or never; the browser and the CDN agree (a browser share
/// at most the CDN's gives a subset of its keys).
#[inline]
pub fn is_cacheable(key: u64, share: f64) -> bool {
    if share >= 1.0 {
        return true;
    }
    let h = splitmix64(key ^ 0xC0FF_EE00_D15E_A5E5);
    ((h >> 11) as f64 * (1.0 / (1u64 << 53) as f64)) < share
}

/// The browser cache of one client's users (see the module docs).
#[derive(Debug)]
pub struct BrowserCache {
    max_age: SimTime,
    cacheable: f64,
    fresh_until: KeyMap<(u32, u64), SimTime>,
    /// Cacheable reads looked up in the measured window.
    pub lookups: u64,
    /// Of those, answered by the browser.
    pub hits: u64,
}

impl BrowserCache {
    /// An empty browser cache for every user.
    pub fn new(cfg: &BrowserCacheConfig) -> Self {
        BrowserCache {
            max_age: cfg.max_age.0,
            cacheable: cfg.cacheable,
            fresh_until: KeyMap::default(),
            lookups: 0,
            hits: 0,
        }
    }

    /// Whether `user` may answer a read of `key` at `now` from its cache; counts the lookup
    /// when `counted`.
    #[inline]
    pub fn lookup(&mut self, user: u32, key: u64, now: SimTime, counted: bool) -> bool {
        if !is_cacheable(key, self.cacheable) {
            return false;
        }
        let hit = self.fresh_until.get(&(user, key)).is_some_and(|&t| now < t);
        if counted {
            self.lookups += 1;
            self.hits += u64::from(hit);
        }
        hit
    }

    /// An ok read of `key` reached `user` at `now`: keep it for `max_age`.
    #[inline]
    pub fn store(&mut self, user: u32, key: u64, now: SimTime) {
        if is_cacheable(key, self.cacheable) {
            self.fresh_until.insert((user, key), now + self.max_age);
        }
    }
}

/// A step of a request inside a cache (the cache's own timers).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CacheStep {
    /// The operation's turn on the cache server has come: look the key up.
    Lookup,
    /// A stampede-lock waiter looks again.
    Retry,
    /// After the edge → origin delay: call the origin.
    Fetch,
    /// After the origin → edge delay: the origin's answer.
    Answered(Status),
}

/// What a cache calls on a miss or a write.
#[derive(Clone, Debug, Default)]
pub enum Backend {
    /// Nothing: a miss is answered at once with version 0 (still counted as a backend read).
    #[default]
    None,
    /// Actors that answer requests (the instances of an origin service, a load balancer);
    /// one is picked at random per call.
    Actors(Vec<ActorId>),
    /// The database of the service that uses the cache.
    Db(DbRouter),
}

/// Per-cache measurements (summed over the instances of a local cache).
#[derive(Clone, Debug, Default)]
pub struct CacheStats {
    /// Requests that reached the cache (measured window).
    pub requests: u64,
    /// Reads looked up.
    pub lookups: u64,
    /// Reads answered from an entry.
    pub hits: u64,
    /// Misses that found an entry whose TTL had run out.
    pub expired: u64,
    /// Reads sent to the backend because of a miss.
    pub backend_reads: u64,
    /// Writes sent to the backend (write-behind: flushes).
    pub backend_writes: u64,
    /// Requests passed to the origin untouched (CDN: uncacheable reads and writes).
    pub passed: u64,
    /// Misses that waited for another miss's read (coalesce) or retried (lock).
    pub coalesced: u64,
    /// The largest number of backend reads of one key in flight at once.
    pub max_concurrent_misses: u32,
    /// Entries evicted to make room.
    pub evictions: u64,
    /// Acknowledged writes still buffered when the cache died (write-behind).
    pub lost_writes: u64,
    /// Nanoseconds of server time used (with `max_ops`).
    pub busy_ns: u128,
    /// Time from arrival to answer (hits: queue + latency; misses: + the backend).
    pub sojourn: Histogram,
}

impl CacheStats {
    /// Adds another node's figures (the instances of a local cache).
    pub fn absorb(&mut self, o: &CacheStats) {
        self.requests += o.requests;
        self.lookups += o.lookups;
        self.hits += o.hits;
        self.expired += o.expired;
        self.backend_reads += o.backend_reads;
        self.backend_writes += o.backend_writes;
        self.passed += o.passed;
        self.coalesced += o.coalesced;
        self.max_concurrent_misses = self.max_concurrent_misses.max(o.max_concurrent_misses);
        self.evictions += o.evictions;
        self.lost_writes += o.lost_writes;
        self.busy_ns += o.busy_ns;
        self.sojourn.merge(&o.sojourn);
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Call {
    Fetch,
    Pass,
    Write,
    Flush,
}

const NIL: u32 = u32::MAX;

/// Backend reads of one key in flight, and the requests waiting for them (coalesce).
#[derive(Clone, Debug)]
struct Flight {
    key: u64,
    reads: u32,
    head: u32,
    tail: u32,
    live: bool,
}

/// One cache node (an app cache, one instance of a local cache, or a CDN edge).
#[derive(Debug)]
pub struct Cache {
    /// Index of the `[[caches]]` entry in the model.
    pub index: usize,
    tier: Tier,
    write_policy: WritePolicy,
    invalidation: Invalidation,
    stampede: Stampede,
    ttl: Option<SimTime>,
    latency: Option<Dist>,
    op_time: SimTime,
    origin_latency: Option<Dist>,
    cacheable: f64,
    flush_interval: SimTime,
    lock_retry: SimTime,
    local: bool,
    warm: u64,
    store: Store,
    busy_until: SimTime,
    backend: Backend,
    flights: Vec<Flight>,
    free_flights: Vec<u32>,
    flight_of: KeyMap<u64, u32>,
    waiters: Vec<(ReqId, u32)>,
    free_waiters: Vec<u32>,
    outstanding: KeyMap<u64, (u32, Call)>,
    arrived: KeyMap<u64, SimTime>,
    dirty: KeyMap<u64, u32>,
    dirty_order: Vec<u64>,
    flush_scheduled: bool,
    alive: bool,
    epoch: u32,
    /// Measurements.
    pub stats: CacheStats,
}

#[inline]
fn pack(r: ReqId) -> u64 {
    (u64::from(r.idx) << 32) | u64::from(r.gen)
}

impl Cache {
    /// A cache node for entry `index` of the model, filled per `warm`.
    pub fn new(index: usize, cfg: &CacheConfig, backend: Backend) -> Self {
        let capacity = cfg.capacity.unwrap_or(u64::MAX);
        let warm = match cfg.warm {
            None => 0,
            Some(Warm::Hottest) => capacity,
            Some(Warm::Entries(n)) => n.min(capacity),
        };
        let mut c = Cache {
            index,
            tier: cfg.tier,
            write_policy: cfg.write_policy,
            invalidation: cfg.invalidation,
            stampede: cfg.stampede,
            ttl: cfg.ttl.map(|d| d.0),
            latency: cfg.latency.as_ref().map(|d| d.0.clone()),
            op_time: cfg.max_ops.filter(|m| *m > 0.0).map_or(SimTime::ZERO, |m| {
                SimTime::from_nanos((1e9 / m).round() as u64)
            }),
            origin_latency: cfg.origin_latency.as_ref().map(|d| d.0.clone()),
            cacheable: cfg.cacheable.unwrap_or(1.0),
            flush_interval: cfg.flush_interval.map_or(SimTime::from_secs(1), |d| d.0),
            lock_retry: cfg.lock_retry.map_or(SimTime::from_millis(5), |d| d.0),
            local: cfg.local,
            warm,
            store: Store::new(cfg.eviction, capacity),
            busy_until: SimTime::ZERO,
            backend,
            flights: Vec::new(),
            free_flights: Vec::new(),
            flight_of: KeyMap::default(),
            waiters: Vec::new(),
            free_waiters: Vec::new(),
            outstanding: KeyMap::default(),
            arrived: KeyMap::default(),
            dirty: KeyMap::default(),
            dirty_order: Vec::new(),
            flush_scheduled: false,
            alive: true,
            epoch: 0,
            stats: CacheStats::default(),
        };
        c.preload(SimTime::ZERO);
        c
    }

    /// Replaces what misses and writes call (the model wires databases after building).
    pub fn set_backend(&mut self, backend: Backend) {
        self.backend = backend;
    }

    /// Whether this node is up.
    pub fn alive(&self) -> bool {
        self.alive
    }

    /// Entries held now.
    pub fn len(&self) -> usize {
        self.store.len()
    }

    /// Whether the cache holds nothing.
    pub fn is_empty(&self) -> bool {
        self.store.is_empty()
    }

    /// Writes acknowledged but not yet flushed (write-behind).
    pub fn buffered_writes(&self) -> u64 {
        self.dirty_order
            .iter()
            .map(|k| u64::from(self.dirty.get(k).copied().unwrap_or(0)))
            .sum()
    }

    fn preload(&mut self, now: SimTime) {
        if self.warm == 0 {
            return;
        }
        let expires = self.ttl.map_or(SimTime::MAX, |t| now.saturating_add(t));
        // Warming inserts distinct keys below the capacity: nothing is evicted, so the
        // random stream is never drawn and a fixed one serves. The coldest go in first, so
        // LRU, FIFO and LFU (ties: oldest first) would evict them first.
        let mut rng = dssim_engine::rng::stream(0, "warm");
        for k in (0..self.warm.min(MAX_WARM)).rev() {
            let slot = self.slot_key(k, 0);
            self.store.insert(slot, 0, expires, &mut rng);
        }
    }

    /// Handles one message.
    #[inline]
    pub fn handle(&mut self, msg: Msg, ctx: &mut Ctx<'_>) {
        match msg {
            Msg::Request(req) => self.arrive(ctx, req),
            Msg::Cache(req, CacheStep::Lookup) => self.serve(ctx, req, false),
            Msg::Cache(req, CacheStep::Retry) => self.serve(ctx, req, true),
            Msg::Cache(req, CacheStep::Fetch) => self.call_backend(ctx, req),
            Msg::Cache(req, CacheStep::Answered(st)) => self.answered(ctx, req, st),
            Msg::Response(req, st) => match &self.origin_latency {
                Some(d) => {
                    let d = d.sample(ctx.rng);
                    ctx.timer(d, Msg::Cache(req, CacheStep::Answered(st)));
                }
                None => self.answered(ctx, req, st),
            },
            Msg::Wake(_) => self.flush(ctx),
            Msg::Kill => self.kill(ctx),
            // A timed change ([`crate::changes`]): entries stored from now on get the new TTL.
            Msg::Change(i) => {
                if let Some(crate::changes::Setting::Ttl(t)) = ctx.shared.settings.get(i as usize) {
                    self.ttl = Some(*t);
                }
            }
            Msg::Recover => self.recover(ctx),
            _ => {}
        }
    }

    fn answer(&mut self, ctx: &mut Ctx<'_>, req: ReqId, status: Status) {
        if let Some(t) = self.arrived.remove(&pack(req)) {
            self.stats.sojourn.record(ctx.now() - t);
        }
        if self.local {
            reply_local(ctx, req, SimTime::ZERO, status);
        } else {
            reply(ctx, req, status);
        }
    }

    fn arrive(&mut self, ctx: &mut Ctx<'_>, req: ReqId) {
        if !self.alive {
            self.answer(ctx, req, Status::Error);
            return;
        }
        let now = ctx.now();
        let counted = ctx
            .shared
            .reqs
            .get(req)
            .is_some_and(|r| ctx.shared.stats.counts(r.first_sent));
        if counted {
            self.stats.requests += 1;
            self.stats.busy_ns += u128::from(self.op_time.0);
            self.arrived.insert(pack(req), now);
        }
        let mut delay = SimTime::ZERO;
        if self.op_time > SimTime::ZERO {
            let done = self.busy_until.max(now) + self.op_time;
            self.busy_until = done;
            delay = done - now;
        }
        if let Some(l) = &self.latency {
            delay += l.sample(ctx.rng);
        }
        if delay == SimTime::ZERO {
            self.serve(ctx, req, false);
        } else {
            trace::phase(ctx, req, "lookup");
            ctx.timer(delay, Msg::Cache(req, CacheStep::Lookup));
        }
    }

    /// The operation runs: a lookup for a read, the write policy for a write.
    fn serve(&mut self, ctx: &mut Ctx<'_>, req: ReqId, retry: bool) {
        if !self.alive {
            self.answer(ctx, req, Status::Error);
            return;
        }
        let Some(r) = ctx.shared.reqs.get(req) else {
            return;
        };
        let (key, op, counted) = (r.key, r.op, ctx.shared.stats.counts(r.first_sent));
        if self.tier == Tier::Cdn && (op == Op::Write || !is_cacheable(key, self.cacheable)) {
            if counted {
                self.stats.passed += 1;
            }
            self.start_call(ctx, req, Call::Pass);
            return;
        }
        match op {
            Op::Read => self.read(ctx, req, key, counted, retry),
            Op::Write => self.write(ctx, req, key, counted),
        }
    }

    /// Whether entries are keyed by (key, version) (`invalidation = "versioned"` with
    /// `cache_aside`).
    fn versioned(&self) -> bool {
        self.invalidation == Invalidation::Versioned && self.write_policy == WritePolicy::CacheAside
    }

    /// The store's key for version `version` of `key`: the key itself, or with versioned
    /// keys a hash of both (as a versioned cache key `user:42:v7` names one version).
    fn slot_key(&self, key: u64, version: u64) -> u64 {
        if !self.versioned() {
            return key;
        }
        let mix = |mut z: u64| {
            // SplitMix64's finaliser: distinct inputs, well-spread outputs.
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        };
        mix(key ^ mix(version.wrapping_add(0x9e37_79b9_7f4a_7c15)))
    }

    fn read(&mut self, ctx: &mut Ctx<'_>, req: ReqId, key: u64, counted: bool, retry: bool) {
        let now = ctx.now();
        let slot = if self.versioned() {
            // The application knows the key's current version (it reads it with the
            // entity's metadata): here, the newest acknowledged one.
            self.slot_key(key, ctx.shared.oracle.newest(key))
        } else {
            key
        };
        let found = self.store.get(slot, now);
        if !retry {
            let hit = matches!(found, Lookup::Hit(_));
            ctx.shared.stats.cache_lookup(hit, counted);
            if counted {
                self.stats.lookups += 1;
                self.stats.hits += u64::from(hit);
                self.stats.expired += u64::from(found == Lookup::Expired);
            }
        }
        if let Lookup::Hit(v) = found {
            if let Some(r) = ctx.shared.reqs.get_mut(req) {
                r.version = v;
            }
            trace::phase(ctx, req, "hit");
            self.answer(ctx, req, Status::Ok);
            return;
        }
        let busy = self
            .flight_of
            .get(&key)
            .is_some_and(|&f| self.flights[f as usize].reads > 0);
        match self.stampede {
            Stampede::Coalesce if busy => {
                let f = self.flight_of[&key];
                self.push_waiter(f, req);
                trace::phase(ctx, req, "miss: wait for the fetch in flight");
                if counted && !retry {
                    self.stats.coalesced += 1;
                }
            }
            Stampede::Lock if busy => {
                if counted && !retry {
                    self.stats.coalesced += 1;
                }
                trace::phase(ctx, req, "miss: locked, retry later");
                ctx.timer(self.lock_retry, Msg::Cache(req, CacheStep::Retry));
            }
            _ => {
                let f = self.flight(key);
                let fl = &mut self.flights[f as usize];
                fl.reads += 1;
                self.stats.max_concurrent_misses = self.stats.max_concurrent_misses.max(fl.reads);
                if counted {
                    self.stats.backend_reads += 1;
                }
                self.start_call(ctx, req, Call::Fetch);
            }
        }
    }

    fn write(&mut self, ctx: &mut Ctx<'_>, req: ReqId, key: u64, counted: bool) {
        if self.write_policy != WritePolicy::WriteBehind {
            if counted {
                self.stats.backend_writes += 1;
            }
            self.start_call(ctx, req, Call::Write);
            return;
        }
        // Write-behind: the cache holds the newest value; the database learns it at the
        // next flush. Versions come only from the database: the entry keeps the version it
        // had until the flush is acknowledged, and the acknowledgement to the client carries
        // none (the consistency oracle ignores it).
        let version = self.store.peek(key).unwrap_or(0);
        let expires = self.expiry(ctx.now());
        if self.store.insert(key, version, expires, ctx.rng).is_some() {
            self.stats.evictions += 1;
        }
        trace::phase(ctx, req, "write behind: buffered");
        let n = self.dirty.entry(key).or_insert(0);
        if *n == 0 {
            self.dirty_order.push(key);
        }
        *n += 1;
        if !self.flush_scheduled {
            self.flush_scheduled = true;
            ctx.timer(self.flush_interval, Msg::Wake(0));
        }
        self.answer(ctx, req, Status::Ok);
    }

    fn expiry(&self, now: SimTime) -> SimTime {
        self.ttl.map_or(SimTime::MAX, |t| now.saturating_add(t))
    }

    /// Sends `req` to the backend (after the edge → origin delay, for a CDN).
    fn start_call(&mut self, ctx: &mut Ctx<'_>, req: ReqId, kind: Call) {
        self.outstanding.insert(pack(req), (self.epoch, kind));
        let label = match kind {
            Call::Fetch => "miss: fetch",
            Call::Pass => "pass through",
            Call::Write => "write",
            Call::Flush => "flush",
        };
        trace::phase(ctx, req, label);
        match &self.origin_latency {
            Some(d) => {
                let d = d.sample(ctx.rng);
                ctx.timer(d, Msg::Cache(req, CacheStep::Fetch));
            }
            None => self.call_backend(ctx, req),
        }
    }

    fn call_backend(&mut self, ctx: &mut Ctx<'_>, req: ReqId) {
        let to = match &self.backend {
            Backend::None => None,
            Backend::Actors(v) if v.is_empty() => None,
            Backend::Actors(v) if v.len() == 1 => Some(v[0]),
            Backend::Actors(v) => Some(v[ctx.rng.random_range(0..v.len())]),
            Backend::Db(router) => Some(router.route(ctx, req)),
        };
        match to {
            Some(to) => call(ctx, to, req),
            // No backend: the value comes from nowhere, at once.
            None => self.answered(ctx, req, Status::Ok),
        }
    }

    /// The backend answered `req` (after the origin → edge delay, for a CDN).
    fn answered(&mut self, ctx: &mut Ctx<'_>, req: ReqId, status: Status) {
        let Some((epoch, kind)) = self.outstanding.remove(&pack(req)) else {
            return;
        };
        if kind == Call::Flush {
            // The database took a buffered write: the entry learns its version, unless the
            // key was written again meanwhile or the cache restarted.
            if let Some(r) = ctx.shared.reqs.remove(req) {
                if status == Status::Ok
                    && epoch == self.epoch
                    && !self.dirty.contains_key(&r.key)
                    && self.store.peek(r.key).is_some_and(|v| v < r.version)
                {
                    self.store.set_version(r.key, r.version);
                }
            }
            return;
        }
        let Some(r) = ctx.shared.reqs.get(req) else {
            return;
        };
        let (key, version) = (r.key, r.version);
        // A cache that died since the call cannot answer on the old connection.
        let status = if epoch != self.epoch || !self.alive {
            Status::Error
        } else {
            status
        };
        match kind {
            Call::Pass => {}
            Call::Fetch => {
                if epoch == self.epoch {
                    if status == Status::Ok && self.alive {
                        self.fill(ctx, key, version);
                    }
                    self.land(ctx, key, status, version);
                }
            }
            Call::Write if self.alive && epoch == self.epoch => match self.write_policy {
                WritePolicy::WriteThrough if status == Status::Ok => {
                    let expires = self.expiry(ctx.now());
                    if self.store.insert(key, version, expires, ctx.rng).is_some() {
                        self.stats.evictions += 1;
                    }
                }
                WritePolicy::CacheAside => match self.invalidation {
                    Invalidation::Delete => {
                        self.store.remove(key);
                    }
                    // The next read looks the new version up: nothing to do.
                    Invalidation::Versioned | Invalidation::TtlOnly => {}
                },
                _ => {}
            },
            Call::Write | Call::Flush => {}
        }
        self.answer(ctx, req, status);
    }

    /// Stores a value read from the backend.
    fn fill(&mut self, ctx: &mut Ctx<'_>, key: u64, version: u64) {
        // With versioned keys the value is stored under the version the database returned
        // (an older one, from a lagging replica, is never found by a newer lookup).
        let key = self.slot_key(key, version);
        if self.write_policy == WritePolicy::WriteBehind && self.dirty.contains_key(&key) {
            return; // the buffered write is newer than what the database returned
        }
        let expires = self.expiry(ctx.now());
        if self.store.insert(key, version, expires, ctx.rng).is_some() {
            self.stats.evictions += 1;
        }
    }

    /// One backend read of `key` ended: answer whoever waited on it.
    fn land(&mut self, ctx: &mut Ctx<'_>, key: u64, status: Status, version: u64) {
        let Some(&f) = self.flight_of.get(&key) else {
            return;
        };
        let fl = &mut self.flights[f as usize];
        fl.reads = fl.reads.saturating_sub(1);
        let mut w = std::mem::replace(&mut fl.head, NIL);
        fl.tail = NIL;
        let done = fl.reads == 0;
        while w != NIL {
            let (wreq, next) = self.waiters[w as usize];
            self.free_waiters.push(w);
            if let Some(r) = ctx.shared.reqs.get_mut(wreq) {
                r.version = version;
            }
            self.answer(ctx, wreq, status);
            w = next;
        }
        if done {
            self.drop_flight(f);
        }
    }

    fn flight(&mut self, key: u64) -> u32 {
        if let Some(&f) = self.flight_of.get(&key) {
            return f;
        }
        let fl = Flight {
            key,
            reads: 0,
            head: NIL,
            tail: NIL,
            live: true,
        };
        let f = match self.free_flights.pop() {
            Some(f) => {
                self.flights[f as usize] = fl;
                f
            }
            None => {
                self.flights.push(fl);
                (self.flights.len() - 1) as u32
            }
        };
        self.flight_of.insert(key, f);
        f
    }

    fn drop_flight(&mut self, f: u32) {
        let fl = &mut self.flights[f as usize];
        fl.live = false;
        let key = fl.key;
        self.flight_of.remove(&key);
        self.free_flights.push(f);
    }

    fn push_waiter(&mut self, f: u32, req: ReqId) {
        let w = match self.free_waiters.pop() {
            Some(w) => {
                self.waiters[w as usize] = (req, NIL);
                w
            }
            None => {
                self.waiters.push((req, NIL));
                (self.waiters.len() - 1) as u32
            }
        };
        let fl = &mut self.flights[f as usize];
        if fl.tail == NIL {
            fl.head = w;
        } else {
            self.waiters[fl.tail as usize].1 = w;
        }
        fl.tail = w;
    }

    /// Write-behind: sends every buffered key to the database, one write per key.
    fn flush(&mut self, ctx: &mut Ctx<'_>) {
        self.flush_scheduled = false;
        if !self.alive {
            return;
        }
        let now = ctx.now();
        let me = ctx.me();
        for i in 0..self.dirty_order.len() {
            let key = self.dirty_order[i];
            self.dirty.remove(&key);
            if now >= ctx.shared.stats.warmup && now < ctx.shared.stats.end {
                self.stats.backend_writes += 1;
            }
            if matches!(self.backend, Backend::None) {
                continue;
            }
            // An internal request: nobody waits for it at a client (hence `abandoned`).
            let mut r = Request::new(0, me, 0, key, Op::Write, now);
            r.abandoned = true;
            let id = ctx.shared.reqs.insert(r);
            self.outstanding.insert(pack(id), (self.epoch, Call::Flush));
            self.call_backend(ctx, id);
        }
        self.dirty_order.clear();
    }

    /// The node dies: entries, buffered writes (counted as lost) and waiting requests go;
    /// calls in flight are answered with errors when they come back.
    pub fn kill(&mut self, ctx: &mut Ctx<'_>) {
        if !self.alive {
            return;
        }
        self.alive = false;
        self.epoch = self.epoch.wrapping_add(1);
        let lost = self.buffered_writes();
        self.stats.lost_writes += lost;
        if let Some(l) = ctx.shared.stats.cache_lost_writes.as_mut() {
            *l += lost;
        }
        self.dirty.clear();
        self.dirty_order.clear();
        self.store.clear();
        self.busy_until = ctx.now();
        // Coalesced waiters lose their connection now; flights are walked in slot order.
        for f in 0..self.flights.len() as u32 {
            if !self.flights[f as usize].live {
                continue;
            }
            let mut w = std::mem::replace(&mut self.flights[f as usize].head, NIL);
            while w != NIL {
                let (wreq, next) = self.waiters[w as usize];
                self.free_waiters.push(w);
                self.answer(ctx, wreq, Status::Error);
                w = next;
            }
            self.drop_flight(f);
        }
    }

    /// The node comes back empty (then warmed, if configured).
    pub fn recover(&mut self, ctx: &mut Ctx<'_>) {
        if self.alive {
            return;
        }
        self.alive = true;
        self.preload(ctx.now());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cacheable_share_is_per_key_and_nested() {
        let n = 100_000u64;
        let c30 = (0..n).filter(|&k| is_cacheable(k, 0.3)).count() as f64 / n as f64;
        assert!((c30 - 0.3).abs() < 0.01, "{c30}");
        assert!((0..n).all(|k| !is_cacheable(k, 0.3) || is_cacheable(k, 0.5)));
        assert!((0..100).all(|k| is_cacheable(k, 1.0)));
        assert!((0..100).all(|k| !is_cacheable(k, 0.0)));
    }

    #[test]
    fn warm_parses_a_word_or_a_number() {
        #[derive(Deserialize)]
        struct W {
            warm: Warm,
        }
        let w: W = toml::from_str("warm = \"hottest\"").unwrap();
        assert_eq!(w.warm, Warm::Hottest);
        let w: W = toml::from_str("warm = 5000").unwrap();
        assert_eq!(w.warm, Warm::Entries(5000));
        assert!(toml::from_str::<W>("warm = \"coldest\"").is_err());
        assert!(toml::from_str::<W>("warm = -3").is_err());
    }
}

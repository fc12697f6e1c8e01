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
//! While the cache is down (killed by a fault), `fallback = "error"` (the default) fails
//! every request that reaches it; `fallback = "origin"` sends it to the origin directly, as
//! an app does that catches the cache's connection error and reads the database itself: the
//! request pays the trip to the dead cache and then the origin's time, and nothing is stored.
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

mod actor;
mod browser;
pub mod store;

use dssim_engine::{ActorId, Histogram, SimTime};
use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize, Serializer};

use crate::database::DbRouter;
use crate::request::{ReqId, Status};
use crate::units::{DistSpec, Dur};
use crate::ConfigError;

pub use actor::*;
pub use browser::*;
pub use store::{DenseMap, Eviction, KeyMap, Lookup, Store};

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

/// What a request does when the cache is down.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Fallback {
    /// It fails: the app answers with an error.
    #[default]
    Error,
    /// The app goes to the cache's origin (the service's database, or `origin`) directly,
    /// as if there were no cache: slower, and the origin takes every read.
    Origin,
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
    /// What a request does while the cache is down: `error` fails it, `origin` reads and
    /// writes the origin directly.
    #[serde(default, skip_serializing_if = "is_error_fallback")]
    pub fallback: Fallback,
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

fn is_error_fallback(f: &Fallback) -> bool {
    *f == Fallback::Error
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

/// A cache's own timers: the steps of a request inside it, and the write-behind flush
/// ([`Msg::Cache`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CacheMsg {
    /// The operation's turn on the cache server has come: look the key up.
    Lookup(ReqId),
    /// A stampede-lock waiter looks again.
    Retry(ReqId),
    /// After the edge → origin delay: call the origin.
    Fetch(ReqId),
    /// After the origin → edge delay: the origin's answer.
    Answered(ReqId, Status),
    /// Flush the write-behind buffer.
    Flush,
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

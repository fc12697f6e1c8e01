//! The browser cache of a client's users (see the module docs of [`crate::cache`]).

use dssim_engine::{rng::splitmix64, SimTime};
use serde::{Deserialize, Serialize};

use crate::units::Dur;

use super::*;

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

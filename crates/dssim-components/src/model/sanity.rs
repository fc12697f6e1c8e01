//! Checks on a model as a whole that no single component can make: loops that would never
//! advance the clock, references that come back on themselves, components nobody calls.
//! Errors go with the other validation errors; warnings are printed by `dssim check`.

use crate::cache::Tier;
use crate::client::{Arrival, ClientConfig};
use crate::model::ModelConfig;
use crate::ConfigError;

/// Model-wide errors, appended to `errs` by [`ModelConfig::validate`].
pub fn check(model: &ModelConfig, errs: &mut Vec<ConfigError>) {
    for c in &model.caches {
        if c.capacity == Some(0) {
            errs.push(ConfigError::new(
                format!("caches.{}.capacity", c.name),
                "must be at least 1 entry (remove `capacity` for an unbounded cache)",
            ));
        }
        // An app cache whose origin is a load balancer in front of the very service that
        // reads through the cache: a miss would come back to the cache forever.
        if let Some(lb) = c
            .origin
            .as_ref()
            .and_then(|o| model.load_balancers.iter().find(|l| &l.name == o))
        {
            if model
                .services
                .iter()
                .any(|s| s.name == lb.backends && s.cache.as_deref() == Some(c.name.as_str()))
            {
                errs.push(ConfigError::new(
                    format!("caches.{}.origin", c.name),
                    format!(
                        "{:?} balances over {:?}, which reads through this cache; a miss sent back to it would loop",
                        lb.name, lb.backends
                    ),
                ));
            }
        }
    }
    for c in &model.clients {
        if let Some(e) = closed_loop_spin(model, c) {
            errs.push(e);
        }
    }
}

/// A closed-loop client without think time sends its next request as soon as the last one
/// ends; if a request can end without the clock moving, the run would loop forever at one
/// instant.
fn closed_loop_spin(model: &ModelConfig, c: &ClientConfig) -> Option<ConfigError> {
    if c.arrival != Arrival::Closed {
        return None;
    }
    let think = c.think.as_ref().map_or(0.0, |d| d.0.mean());
    if think > 0.0 {
        return None;
    }
    let net = model.network.latency.as_ref().map_or(0.0, |d| d.0.mean());
    let path = if net > 0.0 {
        true
    } else {
        takes_time(model, c, &c.target, 0)
    };
    let why = if !path {
        Some("no think time and nothing on its path takes time (zero service time, zero latency)")
    } else if !model.network.partitions.is_empty() {
        Some("no think time, and a partition answers its requests at once (dropped) while it lasts")
    } else if !model.faults.is_empty() && net == 0.0 {
        Some("no think time, and a killed component answers at once while the network has zero latency")
    } else if c
        .browser_cache
        .as_ref()
        .is_some_and(|b| b.cacheable >= 1.0 && c.read_ratio >= 1.0)
    {
        Some("no think time, and its browser cache answers every request at once")
    } else {
        None
    };
    why.map(|w| {
        ConfigError::new(
            format!("clients.{}.think", c.name),
            format!(
                "a closed loop needs think time or time spent on its path: {w}, so the run would loop forever at one instant; add `think = \"exp(1s)\"` or a service time above zero"
            ),
        )
    })
}

/// Whether a request of client `c` sent to `name` spends time on its way with a chance
/// above zero each time (some mean above zero on a part it surely reaches). A cache hit
/// without `latency` takes no time, and while the clock stands still nothing expires.
fn takes_time(model: &ModelConfig, c: &ClientConfig, name: &str, depth: usize) -> bool {
    if depth > model.caches.len() + model.load_balancers.len() + 2 {
        return false;
    }
    let pos = |d: &Option<crate::units::DistSpec>| d.as_ref().is_some_and(|d| d.0.mean() > 0.0);
    if let Some(s) = model.services.iter().find(|s| s.name == name) {
        let cache = s
            .cache
            .as_ref()
            .and_then(|k| model.caches.iter().find(|x| &x.name == k));
        let db = s
            .database
            .as_ref()
            .and_then(|d| model.databases.iter().find(|x| &x.name == d));
        let reads = db.is_some_and(|d| d.read_time.0.mean() > 0.0) && c.read_ratio > 0.0;
        let writes = db.is_some_and(|d| d.write_time.0.mean() > 0.0) && c.read_ratio < 1.0;
        return s.service_time.0.mean() > 0.0
            || cache.is_some_and(|k| pos(&k.latency))
            || writes
            // Reads that a cache may answer at once do not count.
            || (reads && cache.is_none());
    }
    if let Some(l) = model.load_balancers.iter().find(|l| l.name == name) {
        return pos(&l.parse) || takes_time(model, c, &l.backends, depth + 1);
    }
    if let Some(k) = model
        .caches
        .iter()
        .find(|k| k.name == name && k.tier == Tier::Cdn)
    {
        // Hits answer after `latency` alone.
        return pos(&k.latency);
    }
    // A circuit breaker (not matched above) answers at once while open: it takes no time
    // for sure, whatever it protects.
    false
}

/// Things that are legal but probably a mistake: components nothing sends to.
pub fn warnings(model: &ModelConfig) -> Vec<ConfigError> {
    let mut called: Vec<&str> = Vec::new();
    for c in &model.clients {
        called.push(&c.target);
    }
    for l in &model.load_balancers {
        called.push(&l.backends);
    }
    for k in &model.caches {
        if let Some(o) = &k.origin {
            called.push(o);
        }
    }
    for s in &model.services {
        if let Some(k) = &s.cache {
            called.push(k);
        }
        if let Some(d) = &s.database {
            called.push(d);
        }
        for c in &s.calls {
            called.push(&c.to);
        }
    }
    for b in &model.circuit_breakers {
        called.push(&b.target);
    }
    let mut out = Vec::new();
    let mut warn = |kind: &str, name: &str| {
        if !called.contains(&name) {
            out.push(ConfigError::new(
                format!("{kind}.{name}"),
                "nothing sends to it (no client targets it, no load balancer, cache or service names it): it will sit idle",
            ));
        }
    };
    for s in &model.services {
        warn("services", &s.name);
    }
    for l in &model.load_balancers {
        warn("load_balancers", &l.name);
    }
    for d in &model.databases {
        warn("databases", &d.name);
    }
    for k in &model.caches {
        warn("caches", &k.name);
    }
    for b in &model.circuit_breakers {
        warn("circuit_breakers", &b.name);
    }
    out
}

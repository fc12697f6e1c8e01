//! Checks on a model as a whole that no single component can make: loops that would never
//! advance the clock, references that come back on themselves, components nobody calls.
//! Errors go with the other validation errors; warnings are printed by `dssim check`.

use crate::cache::Tier;
use crate::client::{Arrival, ClientConfig};
use crate::model::topology::{CacheIx, ClientIx, Component, Topology};
use crate::model::ModelConfig;
use crate::ConfigError;

/// Model-wide errors, appended to `errs` by [`ModelConfig::validate`].
pub fn check(model: &ModelConfig, topo: &Topology, errs: &mut Vec<ConfigError>) {
    for (ci, c) in model.caches.iter().enumerate() {
        if c.capacity == Some(0) {
            errs.push(ConfigError::new(
                format!("caches.{}.capacity", c.name),
                "must be at least 1 entry (remove `capacity` for an unbounded cache)",
            ));
        }
        // An app cache whose origin is a load balancer in front of the very service that
        // reads through the cache: a miss would come back to the cache forever.
        if let Some(Component::LoadBalancer(li)) = topo.origin(CacheIx(ci)) {
            if topo
                .backend_service(li)
                .is_some_and(|si| topo.cache_of(si) == Some(CacheIx(ci)))
            {
                let lb = &model.load_balancers[li.0];
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
    for (ci, c) in model.clients.iter().enumerate() {
        if let Some(e) = closed_loop_spin(model, topo, ClientIx(ci), c) {
            errs.push(e);
        }
    }
}

/// A closed-loop client without think time sends its next request as soon as the last one
/// ends; if a request can end without the clock moving, the run would loop forever at one
/// instant.
fn closed_loop_spin(
    model: &ModelConfig,
    topo: &Topology,
    ci: ClientIx,
    c: &ClientConfig,
) -> Option<ConfigError> {
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
        topo.target(ci)
            .is_some_and(|t| takes_time(model, topo, c, t))
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

/// Whether a request of client `c` sent to component `to` spends time on its way with a
/// chance above zero each time (some mean above zero on a part it surely reaches). A cache
/// hit without `latency` takes no time, and while the clock stands still nothing expires.
fn takes_time(model: &ModelConfig, topo: &Topology, c: &ClientConfig, to: Component) -> bool {
    let pos = |d: &Option<crate::units::DistSpec>| d.as_ref().is_some_and(|d| d.0.mean() > 0.0);
    // Along the forward hops: load balancers (their parse) up to the service, or a CDN
    // edge (its hits answer after `latency` alone).
    for at in topo.walk(to) {
        match at {
            Component::Service(si) => {
                let s = &model.services[si.0];
                let cache = topo.cache_of(si).map(|k| &model.caches[k.0]);
                let db = topo.database_of(si).map(|d| &model.databases[d.0]);
                let reads = db.is_some_and(|d| d.read_time.0.mean() > 0.0) && c.read_ratio > 0.0;
                let writes = db.is_some_and(|d| d.write_time.0.mean() > 0.0) && c.read_ratio < 1.0;
                return s.service_time.0.mean() > 0.0
                    || cache.is_some_and(|k| pos(&k.latency))
                    || writes
                    // Reads that a cache may answer at once do not count.
                    || (reads && cache.is_none());
            }
            Component::LoadBalancer(li) if pos(&model.load_balancers[li.0].parse) => return true,
            Component::LoadBalancer(_) => {}
            Component::Cache(k) if model.caches[k.0].tier == Tier::Cdn => {
                return pos(&model.caches[k.0].latency)
            }
            // A circuit breaker answers at once while open: it takes no time for sure,
            // whatever it protects.
            Component::Breaker(_)
            | Component::Cache(_)
            | Component::Database(_)
            | Component::Queue(_)
            | Component::Client(_) => return false,
        }
    }
    false
}

/// Things that are legal but probably a mistake: components nothing sends to.
pub fn warnings(model: &ModelConfig) -> Vec<ConfigError> {
    let topo = Topology::new(model);
    let called: Vec<&str> = topo
        .edges()
        .into_iter()
        .map(|(_, to, _)| topo.name(to))
        .collect();
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

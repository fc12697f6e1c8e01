//! Validation of a whole model: names, references between components, every value's range.

use std::collections::BTreeSet;

use dssim_engine::SimTime;

use crate::did_you_mean;

use crate::cache::Tier;
use crate::client::Arrival;
use crate::units::{check_non_negative, check_ratio, Dur};
use crate::ConfigError;

use super::topology::{CacheIx, Component, ServiceIx};
use super::*;

impl ModelConfig {
    /// Checks references, ranges and required fields; every problem is reported with the
    /// path of the offending value (`clients.users.rate`).
    pub fn validate(&self) -> Result<(), Vec<ConfigError>> {
        self.topology().map(|_| ())
    }

    /// Validates the model ([`ModelConfig::validate`]) and gives its resolved wiring, the
    /// one [`Topology`] the build and the checks read.
    pub fn topology(&self) -> Result<Topology, Vec<ConfigError>> {
        let topo = Topology::new(self);
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
            )
            .chain(
                self.circuit_breakers
                    .iter()
                    .map(|b| ("circuit_breakers", &b.name)),
            )
            .chain(self.geo_routers.iter().map(|g| ("geo_routers", &g.name)));
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
        let names = |n: &str| topo.lookup(n).map(|c| Named::of(self, c));
        if self.clients.is_empty() {
            errs.push(ConfigError::new(
                "clients",
                "the model has no [[clients]]: nothing would send requests",
            ));
        }
        for c in &self.clients {
            let p = format!("clients.{}", c.name);
            match names(&c.target) {
                Some(Named::Service | Named::LoadBalancer | Named::Breaker)
                | Some(Named::Cache(Tier::Cdn)) => {}
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
                None if topo.geo_router(&c.target).is_some() => {}
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
                        )
                        .chain(self.circuit_breakers.iter().map(|b| b.name.as_str()))
                        .chain(self.geo_routers.iter().map(|g| g.name.as_str())),
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
                match names(cache) {
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
                if !matches!(names(db), Some(Named::Database)) {
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
        for (ci, c) in self.caches.iter().enumerate() {
            errs.extend(c.validate());
            let Some(origin) = &c.origin else { continue };
            let p = format!("caches.{}.origin", c.name);
            match names(origin) {
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
            if topo.on_ring(Component::Cache(CacheIx(ci))) {
                errs.push(ConfigError::new(
                    p.clone(),
                    "the chain of origins comes back to this cache: requests would loop forever",
                ));
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
        self.validate_calls(&topo, &names, &mut errs);
        self.validate_geo(&names, &mut errs);
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
        crate::sanity::check(self, &topo, &mut errs);
        if errs.is_empty() {
            Ok(topo)
        } else {
            Err(errs)
        }
    }

    /// A closed loop whose every cycle takes no simulated time (no think time, a service
    /// that answers by itself in zero time, no network latency) would run forever at one
    /// instant; refuse it here rather than hang. Times are whole nanoseconds, so a mean
    /// below half a nanosecond counts as zero.
    pub(super) fn check_zero_time_loops(&self, errs: &mut Vec<ConfigError>) {
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

    pub(super) fn region_names(&self) -> Vec<String> {
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
            .chain(self.databases.iter().flat_map(|d| d.shard_regions.clone()))
            .chain(self.caches.iter().filter_map(|c| c.region.clone()))
            .chain(self.load_balancers.iter().filter_map(|l| l.region.clone()))
            .chain(
                self.circuit_breakers
                    .iter()
                    .filter_map(|b| b.region.clone()),
            )
            .chain(self.geo_routers.iter().filter_map(|g| g.region.clone()))
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
    pub(super) fn resolve(&self, name: &str) -> Option<()> {
        if self.clients.iter().any(|c| c.name == name)
            || self.caches.iter().any(|c| c.name == name)
            || self.load_balancers.iter().any(|l| l.name == name)
            || self.geo_routers.iter().any(|g| g.name == name)
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
}

pub(super) fn unknown_name<'a>(
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

impl ModelConfig {
    /// Geo routers: their values and their entries (load balancers or services).
    fn validate_geo(&self, names: &dyn Fn(&str) -> Option<Named>, errs: &mut Vec<ConfigError>) {
        for g in &self.geo_routers {
            let p = format!("geo_routers.{}", g.name);
            g.validate(&p, errs);
            for e in &g.entries {
                match names(e) {
                    Some(Named::Service | Named::LoadBalancer) => {}
                    Some(_) => errs.push(ConfigError::new(
                        format!("{p}.entries"),
                        format!("{e:?} is not a load balancer or a service; an entry point is a region's load balancer (or its service)"),
                    )),
                    None => errs.push(unknown_name(
                        format!("{p}.entries"),
                        e,
                        self.load_balancers
                            .iter()
                            .map(|l| l.name.as_str())
                            .chain(self.services.iter().map(|s| s.name.as_str())),
                    )),
                }
            }
        }
    }

    /// Services' `calls` and circuit breakers: their values, what they name, and loops of
    /// calls (a service whose calls come back to it would never answer), read from the
    /// topology's one loop guard ([`Topology::loop_through`]).
    pub(super) fn validate_calls(
        &self,
        topo: &Topology,
        names: &dyn Fn(&str) -> Option<Named>,
        errs: &mut Vec<ConfigError>,
    ) {
        let callable = || {
            self.services
                .iter()
                .map(|s| s.name.as_str())
                .chain(self.load_balancers.iter().map(|l| l.name.as_str()))
                .chain(self.circuit_breakers.iter().map(|b| b.name.as_str()))
        };
        for s in &self.services {
            let p = format!("services.{}", s.name);
            crate::calls::validate(&s.calls, &p, errs);
            for (i, c) in s.calls.iter().enumerate() {
                match names(&c.to) {
                    Some(Named::Service | Named::LoadBalancer | Named::Breaker) => {}
                    Some(_) => errs.push(ConfigError::new(
                        format!("{p}.calls.{i}.to"),
                        format!(
                            "{:?} is not a service, a load balancer or a circuit breaker; a call goes to one of those",
                            c.to
                        ),
                    )),
                    None => errs.push(unknown_name(format!("{p}.calls.{i}.to"), &c.to, callable())),
                }
            }
        }
        for b in &self.circuit_breakers {
            let p = format!("circuit_breakers.{}", b.name);
            b.validate(&p, errs);
            match names(&b.target) {
                Some(Named::Service | Named::LoadBalancer) => {}
                Some(_) => errs.push(ConfigError::new(
                    format!("{p}.target"),
                    format!(
                        "{:?} is not a service or a load balancer; a circuit breaker protects one of those",
                        b.target
                    ),
                )),
                None => errs.push(unknown_name(
                    format!("{p}.target"),
                    &b.target,
                    self.services
                        .iter()
                        .map(|s| s.name.as_str())
                        .chain(self.load_balancers.iter().map(|l| l.name.as_str())),
                )),
            }
        }
        // A loop of edges through a service that makes calls: reported once per loop, at
        // the call of the first such service (in model order) that leads back.
        let mut reported = BTreeSet::new();
        for (si, s) in self.services.iter().enumerate() {
            if s.calls.is_empty() {
                continue;
            }
            let me = Component::Service(ServiceIx(si));
            let Some(path) = topo.loop_through(me) else {
                continue;
            };
            // A loop that leaves through the service's data path is refused elsewhere.
            let Some(i) = topo
                .calls_of(ServiceIx(si))
                .iter()
                .position(|&t| t == path.get(1).copied())
            else {
                continue;
            };
            let on: BTreeSet<Component> = path.iter().copied().collect();
            if !reported.insert(on) {
                continue;
            }
            let cycle: Vec<&str> = path
                .iter()
                .filter(|c| matches!(c, Component::Service(_)))
                .map(|&c| topo.name(c))
                .collect();
            errs.push(ConfigError::new(
                format!("services.{}.calls.{i}.to", s.name),
                format!(
                    "the calls come back to a service already waiting on them ({}): such a request would never be answered",
                    cycle.join(" -> ")
                ),
            ));
        }
    }

    /// The service a call to `name` reaches: itself, a load balancer's backends, a
    /// breaker's target (followed).
    pub fn called_service(&self, name: &str) -> Option<&str> {
        let topo = Topology::new(self);
        let si = topo.service_behind(topo.lookup(name)?)?;
        Some(self.services[si.0].name.as_str())
    }
}

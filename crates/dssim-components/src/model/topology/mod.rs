//! The model's wiring, resolved once: typed indices per kind, one registry of component
//! names, every edge between components, and the one guard against loops.
//!
//! Everything that follows the wiring reads a [`Topology`]: the build (which actor sends to
//! which), the model-wide checks ([`crate::sanity`]), the live graph of `dssim serve`, the
//! names in traces and components.csv, and in dssim-analytic the per-run limits and the
//! estimate. [`Topology::new`] never fails and never panics: a reference that names nothing
//! resolves to `None`, and a chain of forward hops that comes back on itself (edges in front
//! of edges in a ring, which validation refuses) is cut where it closes, so that every walk
//! along [`Topology::next`] ends. Components on a loop of any edges are left out of
//! [`Topology::order`].
//!
//! A new kind adds its index type and a [`Component`] variant here, its name in
//! [`Topology::new`]'s registry (and [`Topology::name`]), its edges (a forward hop in
//! `hop`, the rest in [`Topology::downstream`] and [`Topology::edges`], with an [`Edge`]
//! variant), and its place in `servers`.

use std::collections::BTreeMap;

use crate::cache::Tier;
use crate::model::ModelConfig;

macro_rules! index_types {
    ($($(#[$doc:meta])* $name:ident),* $(,)?) => {$(
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $name(pub usize);
    )*};
}

index_types! {
    /// Index into `ModelConfig::clients`.
    ClientIx,
    /// Index into `ModelConfig::load_balancers`.
    LbIx,
    /// Index into `ModelConfig::services`.
    ServiceIx,
    /// Index into `ModelConfig::caches` (app caches and CDN edges).
    CacheIx,
    /// Index into `ModelConfig::databases`.
    DbIx,
    /// Index into `ModelConfig::queues`.
    QueueIx,
    /// Index into `ModelConfig::circuit_breakers`.
    BreakerIx,
}

/// A component of the model: what one name in the registry stands for. The order of the
/// variants is the order of [`Topology::order`]'s ties (servers first by kind, clients last).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Component {
    /// An app cache or a CDN edge.
    Cache(CacheIx),
    /// A load balancer.
    LoadBalancer(LbIx),
    /// A circuit breaker.
    Breaker(BreakerIx),
    /// A service (all its instances).
    Service(ServiceIx),
    /// A database (all its shards and nodes).
    Database(DbIx),
    /// A job queue.
    Queue(QueueIx),
    /// A traffic source.
    Client(ClientIx),
}

impl Component {
    /// The service this component is, if it is one.
    pub fn service(self) -> Option<ServiceIx> {
        match self {
            Component::Service(si) => Some(si),
            _ => None,
        }
    }
}

/// What an edge carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Edge {
    /// A client's requests to its target.
    Target,
    /// A load balancer's requests to its backend service.
    Backends,
    /// A cache's misses to its origin.
    Origin,
    /// A service's data calls through its app cache.
    Cache,
    /// A service's data calls to its database.
    Database,
    /// A service's jobs to a queue it produces for.
    Queue,
    /// A service's call to another service (directly or through a load balancer or a
    /// circuit breaker).
    Call,
    /// A circuit breaker's requests to the service or load balancer it protects.
    Protects,
}

/// A client's geo router and its entries nearest first (index in `entries`, the entry).
type GeoOrder = (usize, Vec<(usize, Component)>);

/// The resolved wiring of one model (see the module documentation).
#[derive(Clone, Debug, Default)]
pub struct Topology {
    /// Every component name -> the component (the first of each name when a model repeats
    /// one, which validation refuses).
    registry: BTreeMap<String, Component>,
    /// Per client: its target.
    target: Vec<Option<Component>>,
    /// Per load balancer: its backends (a service in a valid model).
    backends: Vec<Option<Component>>,
    /// Per cache: its origin.
    origin: Vec<Option<Component>>,
    /// Per cache: its tier and whether it is local (one per instance).
    caches: Vec<(Tier, bool)>,
    /// Per cache: the services that read through it, in model order.
    users: Vec<Vec<ServiceIx>>,
    /// Per service: its app cache, its database, the queues it produces for.
    service_cache: Vec<Option<CacheIx>>,
    service_db: Vec<Option<DbIx>>,
    service_queues: Vec<Vec<QueueIx>>,
    /// Per queue: the service that produces its jobs.
    producer: Vec<Option<ServiceIx>>,
    /// Per circuit breaker: what it protects.
    protects: Vec<Option<Component>>,
    /// Per service: where each of its `calls` goes, in order.
    calls: Vec<Vec<Option<Component>>>,
    /// Components whose forward hop (target, backends, origin) is on a ring of such hops:
    /// the hop is cut (the one loop guard).
    looped: Vec<Component>,
    /// Servers (all but clients) with each after everything that sends to it.
    order: Vec<Component>,
    /// Caches in the order the build adds them (an edge after the edge that is its origin).
    cache_order: Vec<CacheIx>,
    /// Names per kind, by index, for [`Topology::name`].
    names: [Vec<String>; 7],
    /// Geo routers by name -> index ([`crate::geo`]): not components of the request path
    /// (a client resolves its router itself and sends to the entry it picks).
    geo_names: BTreeMap<String, usize>,
    /// Per client whose target is a geo router: the router, and its entries nearest first
    /// (index in the router's `entries`, the entry). Its `target` is the nearest.
    geo: Vec<Option<GeoOrder>>,
}

impl Topology {
    /// Resolves the wiring of `m` (validated or not: see the module documentation).
    pub fn new(m: &ModelConfig) -> Topology {
        let mut registry = BTreeMap::new();
        // Across kinds, as validation reads a repeated name: load balancers first.
        let kinds: [Vec<(&str, Component)>; 7] = [
            named(
                &m.load_balancers,
                |l| &l.name,
                |i| Component::LoadBalancer(LbIx(i)),
            ),
            named(&m.caches, |c| &c.name, |i| Component::Cache(CacheIx(i))),
            named(&m.databases, |d| &d.name, |i| Component::Database(DbIx(i))),
            named(&m.queues, |q| &q.name, |i| Component::Queue(QueueIx(i))),
            named(
                &m.services,
                |s| &s.name,
                |i| Component::Service(ServiceIx(i)),
            ),
            named(&m.clients, |c| &c.name, |i| Component::Client(ClientIx(i))),
            named(
                &m.circuit_breakers,
                |b| &b.name,
                |i| Component::Breaker(BreakerIx(i)),
            ),
        ];
        for (name, c) in kinds.iter().flatten() {
            registry.entry(name.to_string()).or_insert(*c);
        }
        let find = |n: &str| registry.get(n).copied();
        let app_cache = |n: &Option<String>| match find(n.as_deref()?)? {
            Component::Cache(ci) if m.caches[ci.0].tier == Tier::App => Some(ci),
            _ => None,
        };
        let database = |n: &Option<String>| match find(n.as_deref()?)? {
            Component::Database(di) => Some(di),
            _ => None,
        };
        let service = |n: &str| find(n)?.service();
        let service_cache: Vec<Option<CacheIx>> =
            m.services.iter().map(|s| app_cache(&s.cache)).collect();
        let mut users = vec![Vec::new(); m.caches.len()];
        for (si, c) in service_cache.iter().enumerate() {
            if let Some(ci) = c {
                users[ci.0].push(ServiceIx(si));
            }
        }
        let producer: Vec<Option<ServiceIx>> =
            m.queues.iter().map(|q| service(&q.producer)).collect();
        let mut service_queues = vec![Vec::new(); m.services.len()];
        for (qi, p) in producer.iter().enumerate() {
            if let Some(si) = p {
                service_queues[si.0].push(QueueIx(qi));
            }
        }
        let geo_names: BTreeMap<String, usize> = m
            .geo_routers
            .iter()
            .enumerate()
            .rev()
            .map(|(i, g)| (g.name.clone(), i))
            .collect();
        let geo: Vec<Option<GeoOrder>> = m
            .clients
            .iter()
            .map(|c| {
                if find(&c.target).is_some() {
                    return None;
                }
                let gi = *geo_names.get(&c.target)?;
                let entries: Vec<(usize, Component)> = m.geo_routers[gi]
                    .entries
                    .iter()
                    .enumerate()
                    .filter_map(|(i, e)| match find(e)? {
                        x @ (Component::LoadBalancer(_) | Component::Service(_)) => Some((i, x)),
                        _ => None,
                    })
                    .collect();
                let regions: Vec<Option<String>> = entries
                    .iter()
                    .map(|(_, x)| match *x {
                        Component::LoadBalancer(l) => m.load_balancers[l.0].region.clone(),
                        Component::Service(s) => m.services[s.0].region.clone(),
                        _ => None,
                    })
                    .collect();
                let order = crate::geo::nearest_first(&m.network, &c.region, &regions);
                Some((gi, order.into_iter().map(|k| entries[k]).collect()))
            })
            .collect();
        let mut t = Topology {
            target: m
                .clients
                .iter()
                .zip(&geo)
                .map(|(c, g)| match g {
                    Some((_, order)) => order.first().map(|x| x.1),
                    None => find(&c.target),
                })
                .collect(),
            geo_names,
            geo,
            backends: m.load_balancers.iter().map(|l| find(&l.backends)).collect(),
            origin: m
                .caches
                .iter()
                .map(|c| c.origin.as_deref().and_then(find))
                .collect(),
            caches: m.caches.iter().map(|c| (c.tier, c.local)).collect(),
            users,
            service_db: m.services.iter().map(|s| database(&s.database)).collect(),
            service_cache,
            service_queues,
            producer,
            protects: m.circuit_breakers.iter().map(|b| find(&b.target)).collect(),
            calls: m
                .services
                .iter()
                .map(|s| s.calls.iter().map(|c| find(&c.to)).collect())
                .collect(),
            names: Default::default(),
            registry: BTreeMap::new(),
            looped: Vec::new(),
            order: Vec::new(),
            cache_order: Vec::new(),
        };
        for (k, list) in kinds.iter().enumerate() {
            t.names[k] = list.iter().map(|(n, _)| n.to_string()).collect();
        }
        t.registry = registry;
        t.looped = t.forward_rings();
        t.order = t.topological();
        t.cache_order = t.caches_in_build_order();
        t
    }

    /// The component called `name`.
    pub fn lookup(&self, name: &str) -> Option<Component> {
        self.registry.get(name).copied()
    }

    /// The name of component `c`, as users write it.
    pub fn name(&self, c: Component) -> &str {
        let (k, i) = match c {
            Component::LoadBalancer(x) => (0, x.0),
            Component::Cache(x) => (1, x.0),
            Component::Database(x) => (2, x.0),
            Component::Queue(x) => (3, x.0),
            Component::Service(x) => (4, x.0),
            Component::Client(x) => (5, x.0),
            Component::Breaker(x) => (6, x.0),
        };
        self.names[k].get(i).map_or("", String::as_str)
    }

    /// The canonical name of instance `i` of service `s` (`app.2`): its RNG stream, its
    /// row in components.csv, its name in traces, faults and partitions.
    pub fn instance_name(&self, s: ServiceIx, i: u32) -> String {
        format!("{}.{i}", self.name(Component::Service(s)))
    }

    /// The canonical name of local cache `c`'s copy on instance `i` of service `s`
    /// (`cache@app.2`).
    pub fn local_cache_name(&self, c: CacheIx, s: ServiceIx, i: u32) -> String {
        format!(
            "{}@{}",
            self.name(Component::Cache(c)),
            self.instance_name(s, i)
        )
    }

    /// Client `c`'s target.
    pub fn target(&self, c: ClientIx) -> Option<Component> {
        self.target.get(c.0).copied().flatten()
    }

    /// The geo router called `name` (index in the model's `geo_routers`).
    pub fn geo_router(&self, name: &str) -> Option<usize> {
        self.geo_names.get(name).copied()
    }

    /// Client `c`'s geo router and its entries nearest first (index in the router's
    /// `entries`, the entry), when its target is a geo router; its [`Topology::target`]
    /// is then the nearest entry.
    pub fn geo_route(&self, c: ClientIx) -> Option<(usize, &[(usize, Component)])> {
        self.geo
            .get(c.0)
            .and_then(|g| g.as_ref())
            .map(|(r, v)| (*r, v.as_slice()))
    }

    /// The service client `c`'s target is (none behind a load balancer or an edge).
    pub fn target_service(&self, c: ClientIx) -> Option<ServiceIx> {
        self.target(c)?.service()
    }

    /// Load balancer `l`'s backends.
    pub fn backends(&self, l: LbIx) -> Option<Component> {
        self.backends.get(l.0).copied().flatten()
    }

    /// The service load balancer `l` balances over.
    pub fn backend_service(&self, l: LbIx) -> Option<ServiceIx> {
        self.backends(l)?.service()
    }

    /// Cache `c`'s origin.
    pub fn origin(&self, c: CacheIx) -> Option<Component> {
        self.origin.get(c.0).copied().flatten()
    }

    /// Service `s`'s app cache.
    pub fn cache_of(&self, s: ServiceIx) -> Option<CacheIx> {
        self.service_cache.get(s.0).copied().flatten()
    }

    /// Service `s`'s database.
    pub fn database_of(&self, s: ServiceIx) -> Option<DbIx> {
        self.service_db.get(s.0).copied().flatten()
    }

    /// The queues service `s` produces jobs for, in model order.
    pub fn queues_of(&self, s: ServiceIx) -> &[QueueIx] {
        self.service_queues.get(s.0).map_or(&[], Vec::as_slice)
    }

    /// The service that produces queue `q`'s jobs.
    pub fn producer(&self, q: QueueIx) -> Option<ServiceIx> {
        self.producer.get(q.0).copied().flatten()
    }

    /// What circuit breaker `b` protects (a service or a load balancer in a valid model).
    pub fn protects(&self, b: BreakerIx) -> Option<Component> {
        self.protects.get(b.0).copied().flatten()
    }

    /// Where each of service `s`'s calls goes, in the order of its `calls`.
    pub fn calls_of(&self, s: ServiceIx) -> &[Option<Component>] {
        self.calls.get(s.0).map_or(&[], Vec::as_slice)
    }

    /// Whether `c` is on a loop of edges (requests that come back to a component already
    /// waiting on them): one of the components [`Topology::order`] leaves out, and one
    /// that a walk along [`Topology::downstream`] comes back to. The loop, `c` first and
    /// last, when it is.
    pub fn loop_through(&self, c: Component) -> Option<Vec<Component>> {
        if self.order.contains(&c) {
            return None;
        }
        // Depth-first, each component once: the path back to `c`.
        let mut seen = BTreeMap::new();
        let mut stack = vec![(c, 0usize)];
        let mut path = vec![c];
        while let Some(top) = stack.last_mut() {
            let next = self.downstream(top.0).get(top.1).copied();
            top.1 += 1;
            match next {
                Some(n) if n == c => {
                    path.push(c);
                    return Some(path);
                }
                Some(n) if !seen.contains_key(&n) && !self.order.contains(&n) => {
                    seen.insert(n, ());
                    stack.push((n, 0));
                    path.push(n);
                }
                Some(_) => {}
                None => {
                    stack.pop();
                    path.pop();
                }
            }
        }
        None
    }

    /// The services that read through cache `c`, in model order.
    pub fn users(&self, c: CacheIx) -> &[ServiceIx] {
        self.users.get(c.0).map_or(&[], Vec::as_slice)
    }

    /// Where app cache `c` sends misses and writes for service `s`: the service's database
    /// for a local cache, the first user's database for a shared one, else the cache's
    /// origin.
    pub fn cache_backend(&self, c: CacheIx, s: ServiceIx) -> Option<Component> {
        if !self.caches.get(c.0).is_some_and(|k| k.1) {
            return self.shared_cache_backend(c);
        }
        match self.database_of(s) {
            Some(d) => Some(Component::Database(d)),
            None => self.next(Component::Cache(c)),
        }
    }

    /// Where shared cache `c` sends misses and writes: the first user's database, else
    /// its origin.
    pub fn shared_cache_backend(&self, c: CacheIx) -> Option<Component> {
        match self.users(c).iter().find_map(|&u| self.database_of(u)) {
            Some(d) => Some(Component::Database(d)),
            None => self.next(Component::Cache(c)),
        }
    }

    /// The forward hop of `c`: a client's target, a load balancer's backends, a cache's
    /// origin; none for the rest, and none for a component on a ring of such hops, so that
    /// every walk along `next` ends.
    pub fn next(&self, c: Component) -> Option<Component> {
        self.hop(c).filter(|_| !self.looped.contains(&c))
    }

    /// The forward hop of `c` as written, ring or not. A kind that passes requests on
    /// (in front of another component) names its hop here.
    fn hop(&self, c: Component) -> Option<Component> {
        match c {
            Component::Client(x) => self.target(x),
            Component::LoadBalancer(x) => self.backends(x),
            Component::Cache(x) => self.origin(x),
            Component::Breaker(x) => self.protects(x),
            Component::Service(_) | Component::Database(_) | Component::Queue(_) => None,
        }
    }

    /// The components from `c` on along forward hops ([`Topology::next`]), `c` first.
    pub fn walk(&self, c: Component) -> impl Iterator<Item = Component> + '_ {
        std::iter::successors(Some(c), |&x| self.next(x))
    }

    /// The service a request to `c` reaches through load balancers and edges.
    pub fn service_behind(&self, c: Component) -> Option<ServiceIx> {
        self.walk(c).find_map(Component::service)
    }

    /// Whether `c`'s forward hop is on a ring (a chain of origins that comes back).
    pub fn on_ring(&self, c: Component) -> bool {
        self.looped.contains(&c)
    }

    /// Where `c` sends requests: an edge's origin; an app cache's backends (per user,
    /// sorted, once each); a load balancer's backends; a service's cache (else its
    /// database), its queues and where its calls go; a circuit breaker what it protects;
    /// nothing for databases and queues. Clients send to their target.
    pub fn downstream(&self, c: Component) -> Vec<Component> {
        match c {
            Component::Cache(ci) if self.caches.get(ci.0).is_some_and(|k| k.0 == Tier::Cdn) => {
                self.next(c).into_iter().collect()
            }
            Component::Cache(ci) => {
                let mut v: Vec<Component> = self
                    .users(ci)
                    .iter()
                    .filter_map(|&si| self.cache_backend(ci, si))
                    .collect();
                v.sort();
                v.dedup();
                v
            }
            Component::LoadBalancer(_) | Component::Client(_) | Component::Breaker(_) => {
                self.next(c).into_iter().collect()
            }
            Component::Service(si) => {
                let mut v = Vec::new();
                if let Some(ci) = self.cache_of(si) {
                    v.push(Component::Cache(ci));
                } else if let Some(d) = self.database_of(si) {
                    v.push(Component::Database(d));
                }
                v.extend(self.queues_of(si).iter().map(|&q| Component::Queue(q)));
                v.extend(self.calls_of(si).iter().flatten().copied());
                v
            }
            Component::Database(_) | Component::Queue(_) => Vec::new(),
        }
    }

    /// Every edge as users wrote it: client -> target, load balancer -> backends, cache ->
    /// origin, service -> cache, database, queues and calls, circuit breaker -> what it
    /// protects.
    pub fn edges(&self) -> Vec<(Component, Component, Edge)> {
        let mut v = Vec::new();
        for (i, t) in self.target.iter().enumerate() {
            v.extend(t.map(|t| (Component::Client(ClientIx(i)), t, Edge::Target)));
            // Behind a geo router: the farther entries it fails over to.
            if let Some(Some((_, order))) = self.geo.get(i) {
                for &(_, e) in order.iter().skip(1) {
                    v.push((Component::Client(ClientIx(i)), e, Edge::Target));
                }
            }
        }
        for (i, t) in self.backends.iter().enumerate() {
            v.extend(t.map(|t| (Component::LoadBalancer(LbIx(i)), t, Edge::Backends)));
        }
        for (i, t) in self.origin.iter().enumerate() {
            v.extend(t.map(|t| (Component::Cache(CacheIx(i)), t, Edge::Origin)));
        }
        for si in 0..self.service_db.len() {
            let s = Component::Service(ServiceIx(si));
            if let Some(c) = self.service_cache[si] {
                v.push((s, Component::Cache(c), Edge::Cache));
            }
            if let Some(d) = self.service_db[si] {
                v.push((s, Component::Database(d), Edge::Database));
            }
            for &q in &self.service_queues[si] {
                v.push((s, Component::Queue(q), Edge::Queue));
            }
            for &to in self.calls[si].iter().flatten() {
                v.push((s, to, Edge::Call));
            }
        }
        for (i, t) in self.protects.iter().enumerate() {
            v.extend(t.map(|t| (Component::Breaker(BreakerIx(i)), t, Edge::Protects)));
        }
        v
    }

    /// Servers (every component but clients) in an order where each comes after everything
    /// that sends to it; components on a loop through a service (which validation refuses)
    /// are left out.
    pub fn order(&self) -> &[Component] {
        &self.order
    }

    /// Caches in the order the build adds them: model order, except that an edge whose
    /// origin is another cache comes after it.
    pub fn cache_order(&self) -> &[CacheIx] {
        &self.cache_order
    }

    fn servers(&self) -> Vec<Component> {
        (0..self.caches.len())
            .map(|i| Component::Cache(CacheIx(i)))
            .chain((0..self.backends.len()).map(|i| Component::LoadBalancer(LbIx(i))))
            .chain((0..self.protects.len()).map(|i| Component::Breaker(BreakerIx(i))))
            .chain((0..self.service_db.len()).map(|i| Component::Service(ServiceIx(i))))
            .chain((0..self.names[2].len()).map(|i| Component::Database(DbIx(i))))
            .chain((0..self.producer.len()).map(|i| Component::Queue(QueueIx(i))))
            .collect()
    }

    /// The components whose forward hop lies on a ring of forward hops (each has at most
    /// one, so a ring is found by walking until a component repeats).
    fn forward_rings(&self) -> Vec<Component> {
        let mut done: BTreeMap<Component, bool> = BTreeMap::new();
        let mut rings = Vec::new();
        let starts = self
            .servers()
            .into_iter()
            .chain((0..self.target.len()).map(|i| Component::Client(ClientIx(i))));
        for start in starts {
            let mut path: Vec<Component> = Vec::new();
            let mut at = Some(start);
            while let Some(c) = at {
                if done.contains_key(&c) {
                    break;
                }
                if let Some(k) = path.iter().position(|&p| p == c) {
                    rings.extend_from_slice(&path[k..]);
                    break;
                }
                path.push(c);
                at = self.hop(c);
            }
            for c in path {
                done.insert(c, true);
            }
        }
        rings.sort();
        rings
    }

    /// Kahn's order over [`Topology::downstream`], ties in the order of the variants.
    fn topological(&self) -> Vec<Component> {
        let nodes = self.servers();
        let mut indeg: BTreeMap<Component, usize> = nodes.iter().map(|&n| (n, 0)).collect();
        for &n in &nodes {
            for d in self.downstream(n) {
                *indeg.entry(d).or_default() += 1;
            }
        }
        let mut ready: Vec<Component> = nodes.iter().copied().filter(|n| indeg[n] == 0).collect();
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

    /// Passes over the caches in model order, each adding those whose origin is not a
    /// cache still to add (rings are cut, so every pass adds one).
    fn caches_in_build_order(&self) -> Vec<CacheIx> {
        let n = self.caches.len();
        let mut built = vec![false; n];
        let mut order = Vec::with_capacity(n);
        while order.len() < n {
            for ci in 0..n {
                let waits = match self.next(Component::Cache(CacheIx(ci))) {
                    Some(Component::Cache(o)) => !built[o.0],
                    _ => false,
                };
                if built[ci] || waits {
                    continue;
                }
                built[ci] = true;
                order.push(CacheIx(ci));
            }
        }
        order
    }
}

/// Each item's name with its component, in the order of its list.
fn named<'m, T>(
    items: &'m [T],
    name: impl Fn(&'m T) -> &'m String,
    kind: impl Fn(usize) -> Component,
) -> Vec<(&'m str, Component)> {
    items
        .iter()
        .enumerate()
        .map(|(i, x)| (name(x).as_str(), kind(i)))
        .collect()
}

#[cfg(test)]
mod tests;

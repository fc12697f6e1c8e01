//! What a pass reads from the model's wiring: the component graph (downstream, topological
//! order), regions and latencies, unloaded times, per-service work, shares and sizes.

use super::*;

impl<'a> FlowModel<'a> {
    /// Prepares `m` (a validated model; anything else is still handled without panics).
    pub fn new(m: &'a ModelConfig, window: Option<(f64, f64)>) -> FlowModel<'a> {
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
        let mut p = FlowModel {
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

    pub(super) fn node_of(&self, name: &str) -> Option<Node> {
        self.nodes.get(name).copied()
    }

    pub(super) fn db_index(&self, name: &Option<String>) -> Option<usize> {
        self.dbs.get(name.as_deref()?).copied()
    }

    /// The app cache named `name`.
    pub(super) fn app_cache_named(&self, name: &Option<String>) -> Option<usize> {
        self.app_caches.get(name.as_deref()?).copied()
    }

    /// Services that read through app cache `ci`.
    pub(super) fn cache_users(&self, ci: usize) -> Vec<usize> {
        self.users[ci].clone()
    }

    /// Where an app cache sends misses and writes for service `si` (as `build_caches`
    /// wires it: the service's database for a local cache, the first user's database for
    /// a shared one, else the cache's origin).
    pub(super) fn cache_backend(&self, ci: usize, si: usize) -> Option<Node> {
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

    pub(super) fn downstream(&self, n: Node) -> Vec<Node> {
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

    pub(super) fn all_nodes(&self) -> Vec<Node> {
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
    pub(super) fn topological(&self) -> Vec<Node> {
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
    pub(super) fn upstream_cap(&self, di: usize) -> Option<u64> {
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
    pub(super) fn lat(&self, a: &Option<String>, b: &Option<String>) -> f64 {
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

    pub(super) fn region_of(&self, n: Node) -> Option<String> {
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
    pub(super) fn unloaded(&self, n: Node, read: bool, depth: usize) -> f64 {
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
    pub(super) fn work_s(&self, si: usize, speed: f64) -> f64 {
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
    pub(super) fn speeds(&self, si: usize) -> Vec<f64> {
        let s = &self.m.services[si];
        (0..s.instances.max(1)).map(|i| s.speed_of(i)).collect()
    }

    /// The share of service `si`'s requests each instance gets: in proportion to the
    /// weights of a weighted round robin, else evenly (a balancer that looks at the
    /// instances' load is handled as one pooled queue in `instance_wait`).
    pub(super) fn shares(&self, si: usize) -> Vec<f64> {
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
    pub(super) fn cpu_s(&self, si: usize) -> f64 {
        self.speeds(si)
            .iter()
            .zip(self.shares(si))
            .map(|(&v, w)| w * self.work_s(si, v))
            .sum()
    }

    /// Bytes of a response of service `si`: its clients' `response_size` (rate-weighted),
    /// else its own.
    pub(super) fn response_bytes(&self, si: usize) -> f64 {
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

    pub(super) fn nic_s(&self, si: usize) -> f64 {
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
    pub(super) fn service_behind(&self, target: &str) -> Option<usize> {
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

    pub(super) fn data_unloaded(&self, si: usize, depth: usize) -> f64 {
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
    pub(super) fn data_intrinsic(
        &self,
        si: usize,
        r: f64,
        caches: &BTreeMap<usize, CacheFigures>,
    ) -> f64 {
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
    pub(super) fn read_share_of_service(&self, si: usize) -> f64 {
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
}

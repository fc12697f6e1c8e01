//! What a pass reads from the model's wiring: the component graph (downstream, topological
//! order), regions and latencies, unloaded times, per-service work, shares and sizes.

use dssim_components::model::topology::{
    CacheIx, ClientIx, Component, DbIx, LbIx, QueueIx, ServiceIx, Topology,
};

use super::*;

/// The estimate's node of a server component (clients are not nodes).
fn node(c: Component) -> Option<Node> {
    Some(match c {
        Component::Cache(x) => Node::Cache(x.0),
        Component::LoadBalancer(x) => Node::Lb(x.0),
        Component::Service(x) => Node::Service(x.0),
        Component::Database(x) => Node::Db(x.0),
        Component::Queue(x) => Node::Queue(x.0),
        // Circuit breakers are not in the estimate (render.rs's notes say so).
        Component::Client(_) | Component::Breaker(_) => return None,
    })
}

/// The component of an estimate's node.
fn component(n: Node) -> Component {
    match n {
        Node::Cache(x) => Component::Cache(CacheIx(x)),
        Node::Lb(x) => Component::LoadBalancer(LbIx(x)),
        Node::Service(x) => Component::Service(ServiceIx(x)),
        Node::Db(x) => Component::Database(DbIx(x)),
        Node::Queue(x) => Component::Queue(QueueIx(x)),
    }
}

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
        let topo = Topology::new(m);
        let mut p = FlowModel {
            m,
            grid,
            unit,
            order: Vec::new(),
            shards,
            upstream: Vec::new(),
            window,
            reach: Vec::new(),
            behind: Vec::new(),
            topo,
        };
        p.reach = (0..m.services.len())
            .map(|si| match p.cache_of(si) {
                Some(ci) => match p.cache_backend(ci, si) {
                    Some(Node::Db(d)) => Some(d),
                    _ => None,
                },
                None => p.db_of(si),
            })
            .collect();
        p.behind = (0..m.clients.len())
            .map(|ci| {
                let to = p.topo.target(ClientIx(ci))?;
                Some(p.topo.service_behind(to)?.0)
            })
            .collect();
        p.order = p.topo.order().iter().filter_map(|&c| node(c)).collect();
        p.upstream = (0..m.databases.len())
            .map(|di| p.upstream_cap(di))
            .collect();
        p
    }

    /// Client `ci`'s target.
    pub(super) fn target_of(&self, ci: usize) -> Option<Node> {
        self.topo.target(ClientIx(ci)).and_then(node)
    }

    /// Load balancer `li`'s backends.
    pub(super) fn backends_of(&self, li: usize) -> Option<Node> {
        self.topo
            .next(Component::LoadBalancer(LbIx(li)))
            .and_then(node)
    }

    /// Cache `ci`'s origin.
    pub(super) fn origin_of(&self, ci: usize) -> Option<Node> {
        self.topo.next(Component::Cache(CacheIx(ci))).and_then(node)
    }

    /// Service `si`'s database.
    pub(super) fn db_of(&self, si: usize) -> Option<usize> {
        self.topo.database_of(ServiceIx(si)).map(|d| d.0)
    }

    /// Service `si`'s app cache.
    pub(super) fn cache_of(&self, si: usize) -> Option<usize> {
        self.topo.cache_of(ServiceIx(si)).map(|c| c.0)
    }

    /// Services that read through app cache `ci`.
    pub(super) fn cache_users(&self, ci: usize) -> Vec<usize> {
        self.topo.users(CacheIx(ci)).iter().map(|s| s.0).collect()
    }

    /// Where an app cache sends misses and writes for service `si`
    /// ([`Topology::cache_backend`]).
    pub(super) fn cache_backend(&self, ci: usize, si: usize) -> Option<Node> {
        self.topo
            .cache_backend(CacheIx(ci), ServiceIx(si))
            .and_then(node)
    }

    /// Where each of service `si`'s call entries goes, in order: a circuit breaker's
    /// target (a closed breaker passes every call), none for a call that leads nowhere.
    pub(super) fn call_targets(&self, si: usize) -> Vec<Option<Node>> {
        self.topo
            .calls_of(ServiceIx(si))
            .iter()
            .map(|c| {
                let mut c = (*c)?;
                while let Component::Breaker(_) = c {
                    c = self.topo.next(c)?;
                }
                node(c)
            })
            .collect()
    }

    /// Where node `n` sends requests, leaving out services' calls ([`Self::call_targets`]).
    pub(super) fn downstream(&self, n: Node) -> Vec<Node> {
        let service = matches!(n, Node::Service(_));
        self.topo
            .downstream(component(n))
            .into_iter()
            .filter(|&d| {
                !service
                    || matches!(
                        d,
                        Component::Cache(_) | Component::Database(_) | Component::Queue(_)
                    )
            })
            .filter_map(node)
            .collect()
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
                let to = self.backends_of(li);
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
                let origin = self.origin_of(ci);
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
        let Some(to) = self.topo.target(ClientIx(client)) else {
            return v;
        };
        for t in self.topo.walk(to) {
            match t {
                Component::LoadBalancer(li) => v.push(self.m.load_balancers[li.0].name.clone()),
                Component::Service(si) => {
                    v.push(self.m.services[si.0].name.clone());
                    break;
                }
                Component::Breaker(_)
                | Component::Cache(_)
                | Component::Database(_)
                | Component::Queue(_)
                | Component::Client(_) => break,
            }
        }
        v
    }

    pub(super) fn data_unloaded(&self, si: usize, depth: usize) -> f64 {
        let s = &self.m.services[si];
        let m = self.m;
        let r = self.read_share_of_service(si);
        if let Some(ci) = self.cache_of(si) {
            let c = &m.caches[ci];
            let rtt = if c.local {
                0.0
            } else {
                2.0 * self.lat(&s.region, &c.region)
            };
            return rtt + self.unloaded(Node::Cache(ci), true, depth + 1);
        }
        match self.db_of(si) {
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
        let Some(ci) = self.cache_of(si) else {
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

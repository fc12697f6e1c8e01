//! Building a validated model into the world of one run: actors, wiring, shared state.

use std::collections::BTreeMap;

use dssim_engine::{ActorId, Network, Partition, SimTime, Simulation, SimulationBuilder};

use crate::autoscaler::{Autoscaler, Scaled};
use crate::cache::{Backend, Cache, WritePolicy};
use crate::calls::{CallTarget, Calls};
use crate::canary::CanaryController;
use crate::changes::Setting;
use crate::circuit_breaker::CircuitBreaker;
use crate::client::Client;
use crate::compute::{Life, Resizing, ServiceState};
use crate::database::{DbNode, DbRouter, DbState, NodeState, ShardState};
use crate::faults::FaultAction;
use crate::geo::{EntryTarget, GeoRoute, GeoRouter};
use crate::jobs::{JobQueue, QueueState};
use crate::load_balancer::LoadBalancer;
use crate::node::{Msg, Node};
use crate::sampler::Sampler;
use crate::service::{Instance, InstanceWiring};
use crate::shared::Shared;
use crate::ConfigError;

use super::topology::{BreakerIx, ClientIx, Component, LbIx, QueueIx, ServiceIx, Topology};
use super::*;

impl ModelConfig {
    /// Builds the world of one run.
    pub fn build(&self, opts: &RunOptions) -> Result<World, Vec<ConfigError>> {
        let topo = self.topology()?;
        let regions = self.region_names();
        let region_ix = |r: &Option<String>| -> usize {
            r.as_ref()
                .and_then(|r| regions.iter().position(|x| x == r))
                .unwrap_or(0)
        };
        let mut net = if self.network.latency.is_none()
            && self.network.regions.is_empty()
            && self.network.loss == 0.0
            && self.network.partitions.is_empty()
        {
            Network::ideal()
        } else {
            Network::new(
                regions.len(),
                self.network.latency.as_ref().map(|d| d.0.clone()),
                self.network.loss,
            )
        };
        for (k, d) in &self.network.regions {
            if let Some((a, b)) = k.split_once(':') {
                let ia = regions.iter().position(|x| x == a).unwrap_or(0);
                let ib = regions.iter().position(|x| x == b).unwrap_or(0);
                net.set_between(ia, ib, d.0.clone());
            }
        }

        let shared = Shared {
            stats: crate::stats::Stats {
                warmup: opts.warmup,
                end: opts.duration,
                series_on: opts.timeseries.is_some_and(|d| d > SimTime::ZERO),
                cache_lost_writes: self
                    .caches
                    .iter()
                    .any(|c| c.write_policy == WritePolicy::WriteBehind)
                    .then_some(0),
                ..Default::default()
            },
            trace: crate::trace::Tracer::new(opts.trace, opts.trace_sample),
            ..Default::default()
        };
        let mut b = Builder {
            sim: Simulation::builder(opts.seed, shared),
            ids: BTreeMap::new(),
            names: Vec::new(),
            instances: Vec::new(),
        };
        b.sim.network(net);
        let mut total_workers = 0u64;
        let mut total_instances = 0u64;
        let key_space = self.clients.iter().map(|c| c.keys).max().unwrap_or(1);
        let routers: Vec<DbRouter> = self
            .databases
            .iter()
            .enumerate()
            .map(|(di, d)| {
                DbRouter::with_shard_key(di, d, key_space, |r| {
                    regions.iter().position(|x| x == r).unwrap_or(0) as u16
                })
            })
            .collect();
        for (si, s) in self.services.iter().enumerate() {
            let six = ServiceIx(si);
            let mut v = Vec::new();
            // Every instance an autoscaler or a timed change may add exists from the
            // start, switched off.
            let scaled_max = self
                .autoscalers
                .iter()
                .find(|a| a.subject() == s.name)
                .map_or(0, |a| a.max)
                .max(self.changed_max_instances(&s.name));
            let resizing = Resizing {
                scaled: scaled_max > 0,
                changed: self.changes.iter().any(|c| {
                    c.target == s.name && (c.set.workers.is_some() || c.set.instances.is_some())
                }),
            };
            let router = topo.database_of(six).map(|di| routers[di.0].clone());
            let mut wiring = Vec::new();
            let mut ids = Vec::new();
            for i in 0..s.instances.max(scaled_max) {
                // Built once the caches, queues and called components it sends to exist
                // ([`Builder::fill_instances`]).
                let id = b.reserve(topo.instance_name(six, i), region_ix(&s.region));
                let mut w = InstanceWiring::default();
                w.data.db = router.clone();
                w.data.region = region_ix(&s.region) as u16;
                wiring.push(w);
                ids.push(id);
                if i < s.instances {
                    v.push(id);
                    total_workers += u64::from(s.workers.max(1));
                    total_instances += 1;
                }
            }
            let initial = s.instances;
            b.instances.push(wiring);
            let state = ServiceState::new(s, ids, resizing);
            b.sim.shared_mut().compute.services.push(state);
            for i in 0..initial as usize {
                b.sim
                    .shared_mut()
                    .set_life(si, i, Life::Ready, SimTime::ZERO);
            }
            b.ids.insert(s.name.clone(), v);
        }
        for (di, d) in self.databases.iter().enumerate() {
            let mut state = DbState::default();
            for sh in 0..d.shards {
                let mut shard = ShardState::default();
                for n in 0..=d.replicas {
                    let mut node = DbNode::new(di, sh as usize, n as usize, d);
                    node.reserve_pool_keys(key_space.min(1 << 15));
                    let election = node.first_election_check(opts.duration);
                    let shard_region = d.shard_regions.get(sh as usize).cloned();
                    let region = match &d.replica_region {
                        Some(_) if n > 0 => &d.replica_region,
                        _ if shard_region.is_some() => &shard_region,
                        _ => &d.region,
                    };
                    let id = b.add(Node::Db(node), d.node_name(sh, n), region_ix(region));
                    if let Some((t, m)) = election {
                        b.sim.schedule(t, id, m);
                    }
                    shard.nodes.push(NodeState::new(id, key_space));
                }
                state.shards.push(shard);
            }
            for (name, members) in d.addresses() {
                let v = members
                    .iter()
                    .map(|&(sh, n)| state.shards[sh as usize].nodes[n as usize].actor)
                    .collect();
                b.ids.insert(name, v);
            }
            b.sim.shared_mut().dbs.push(state);
        }
        if !self.databases.is_empty() {
            b.sim.shared_mut().oracle.enable(key_space);
        }
        let mut lbs = Vec::new();
        for (li, l) in self.load_balancers.iter().enumerate() {
            // Behind an autoscaler (or timed changes of the instance count) the balancer
            // holds every instance the service may have and follows its members.
            let resized = self.changed_max_instances(&l.backends) > 0;
            let svc = topo.backend_service(LbIx(li)).map(|s| s.0);
            // A rolling deploy takes instances out of the members too.
            let deployed = svc.is_some_and(|si| self.services[si].deploy.is_some());
            let scaled =
                resized || deployed || self.autoscalers.iter().any(|a| a.subject() == l.backends);
            let backends = match svc {
                Some(si) if scaled => b.sim.shared().all_instances(si).to_vec(),
                _ => b.ids.get(&l.backends).cloned().unwrap_or_default(),
            };
            let mut cfg = l.clone();
            if let (true, Some(w)) = (resized, cfg.weights.as_mut()) {
                // Instances a change adds weigh 1.
                w.resize(backends.len().max(w.len()), 1);
            }
            let members_of = svc.filter(|_| scaled);
            let lb = LoadBalancer::new(&cfg, &l.backends, backends, members_of);
            let id = b.add(Node::LoadBalancer(lb), l.name.clone(), region_ix(&l.region));
            lbs.push(id);
        }
        self.build_caches(&topo, &mut b, &region_ix, &routers);
        self.build_calls(&topo, &mut b, &region_ix);
        for (qi, q) in self.queues.iter().enumerate() {
            let id = b.add(Node::JobQueue(JobQueue::new(qi, q)), q.name.clone(), 0);
            let mut st = QueueState {
                name: q.name.clone(),
                workers: q.workers,
                classes: q
                    .priorities
                    .iter()
                    .map(|p| crate::jobs::ClassState {
                        name: p.name.clone(),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            };
            let groups = q.subscriber_groups();
            if !groups.is_empty() {
                // A topic's workers are its groups' (the row's utilization is over all).
                st.workers = groups.iter().map(|g| g.workers).sum();
                st.subs = groups
                    .into_iter()
                    .map(|g| crate::jobs::SubState {
                        name: g.name,
                        workers: g.workers,
                        ..Default::default()
                    })
                    .collect();
            }
            st.win_workers.set(SimTime::ZERO, f64::from(st.workers));
            st.workers_tw.set(SimTime::ZERO, f64::from(st.workers));
            b.sim.shared_mut().compute.queues.push(st);
            if let Some(si) = topo.producer(QueueIx(qi)) {
                for w in &mut b.instances[si.0] {
                    w.jobs.push((id, q.enqueue_ratio));
                }
            }
        }
        b.fill_instances(self);
        for (ai, a) in self.autoscalers.iter().enumerate() {
            let subject = a.subject();
            let what = match topo.lookup(subject) {
                Some(Component::Service(si)) => Scaled::Service(si.0),
                Some(Component::Queue(qi)) => Scaled::Queue(qi.0, b.ids[subject][0]),
                _ => continue,
            };
            let scaler = Autoscaler::new(a, what, opts.duration);
            let (t, m) = scaler.first_tick();
            let id = b.add_unplaced(
                Node::Autoscaler(scaler),
                format!("autoscaler.{ai}.{subject}"),
            );
            b.sim.schedule(t, id, m);
        }
        for (si, s) in self.services.iter().enumerate() {
            if let Some(c) = &s.canary {
                let ctl = CanaryController::new(si, c, opts.duration);
                let t = ctl.start_time();
                let id = b.add_unplaced(Node::Canary(ctl), format!("{}.canary", s.name));
                if t < opts.duration {
                    b.sim.schedule(t, id, Msg::CanaryStep);
                }
            }
        }
        self.build_geo(&topo, &mut b, &region_ix);
        let mut clients = Vec::new();
        for (ci, c) in self.clients.iter().enumerate() {
            let targets = b.ids.get(&c.target).cloned().unwrap_or_default();
            let mut target_service = topo.target_service(ClientIx(ci)).map(|s| s.0);
            let geo = topo.geo_route(ClientIx(ci)).map(|(gi, order)| {
                let g = &self.geo_routers[gi];
                let order = order
                    .iter()
                    .map(|&(e, x)| (e, self.entry_target(&topo, &b, x)))
                    .collect();
                let ttl = g.ttl.map_or(SimTime::ZERO, |d| d.0);
                // Behind a router the client's service depends on the region it is sent to.
                target_service = None;
                GeoRoute::new(gi, order, ttl, g.entries.len())
            });
            let client = Client::new(c, targets, target_service, geo, opts.duration);
            let id = b.add(Node::Client(client), c.name.clone(), region_ix(&c.region));
            clients.push(id);
            for (di, d) in self.databases.iter().enumerate() {
                if d.shard_by == crate::database::ShardBy::Region {
                    let v = &mut b.sim.shared_mut().dbs[di].client_region;
                    if v.len() <= id as usize {
                        v.resize(id as usize + 1, 0);
                    }
                    v[id as usize] = region_ix(&c.region) as u16;
                }
            }
        }
        let Builder {
            mut sim,
            ids,
            mut names,
            ..
        } = b;
        for p in &self.network.partitions {
            let side = |names: &Vec<String>| -> Vec<ActorId> {
                names
                    .iter()
                    .flat_map(|n| ids.get(n).cloned().unwrap_or_default())
                    .collect()
            };
            if let [a, b] = p.sides.as_slice() {
                sim.partition(Partition::new(p.from.0, p.until.0, &side(a), &side(b)));
            }
        }
        for f in &self.faults {
            let targets = f
                .target()
                .and_then(|n| ids.get(n))
                .cloned()
                .unwrap_or_default();
            for (t, action) in f.events() {
                for &id in &targets {
                    // Only instances slow down; databases and caches crash and recover.
                    if matches!(action, FaultAction::Slow(_))
                        && !matches!(sim.actor(id), Some(Node::Instance(_)))
                    {
                        continue;
                    }
                    sim.schedule(t, id, Msg::Fault(action));
                }
            }
        }
        for c in &self.changes {
            for setting in c.set.list() {
                let k = sim.shared().settings.len() as u32;
                sim.shared_mut().settings.push(setting);
                let svc = match topo.lookup(&c.target) {
                    Some(Component::Service(si)) => Some(si.0),
                    _ => None,
                };
                let targets: Vec<ActorId> = match (setting, svc) {
                    // Every instance, spares included, so that one switched on later has
                    // the service's workers too.
                    (Setting::Workers(_), Some(si)) => sim.shared().all_instances(si).to_vec(),
                    // The first instance resizes the service through the shared state.
                    (Setting::Instances(_), Some(si)) => sim
                        .shared()
                        .all_instances(si)
                        .first()
                        .copied()
                        .into_iter()
                        .collect(),
                    _ => ids.get(&c.target).cloned().unwrap_or_default(),
                };
                for id in targets {
                    sim.schedule(c.at.0, id, Msg::Change(k));
                }
            }
        }
        for (si, s) in self.services.iter().enumerate() {
            // A rolling deploy starts with the first instance.
            if let (Some(d), Some(&first)) = (&s.deploy, sim.shared().all_instances(si).first()) {
                sim.schedule(
                    d.at.0,
                    first,
                    Msg::Instance(crate::service::InstanceMsg::Deploy(
                        crate::compute::deploy::DeployStep::Begin,
                    )),
                );
            }
        }
        for &c in lbs.iter().chain(&clients) {
            let mut first = Vec::new();
            match sim.actor(c) {
                Some(Node::Client(cl)) => cl.start(&mut |t, m| first.push((t, m))),
                Some(Node::LoadBalancer(lb)) => lb.start(&mut |t, m| first.push((t, m))),
                _ => {}
            }
            for (t, m) in first {
                sim.schedule(t, c, m);
            }
        }
        {
            let g = &mut sim.shared_mut().stats.gauges;
            g.workers.set(SimTime::ZERO, total_workers as f64);
            g.instances.set(SimTime::ZERO, total_instances as f64);
        }
        if let Some(iv) = opts.timeseries.filter(|d| *d > SimTime::ZERO) {
            names.push("sampler".to_string());
            let id = sim.add(
                "sampler",
                Node::Sampler(Sampler {
                    interval: iv,
                    until: opts.duration,
                    start: SimTime::ZERO,
                }),
            );
            sim.schedule(iv.min(opts.duration), id, Msg::Tick);
        }
        Ok(World {
            sim: sim.build(),
            opts: opts.clone(),
            model: self.clone(),
            clients,
            ids,
            names,
            topology: topo,
            window_open: false,
            cap: RunCap::default(),
        })
    }

    /// Adds the cache actors: one per shared cache or CDN edge, one per service instance
    /// for a local cache, and points the services' data paths at them. Built after the
    /// services (origins) and before the clients (which may target an edge); an edge whose
    /// origin is another edge is built after it ([`Topology::cache_order`]). A cache reads
    /// and writes where [`Topology::cache_backend`] says: a database through its router,
    /// else its origin's actors.
    fn build_caches(
        &self,
        topo: &Topology,
        b: &mut Builder,
        region_ix: &dyn Fn(&Option<String>) -> usize,
        routers: &[DbRouter],
    ) {
        let key_space = self.clients.iter().map(|c| c.keys).max().unwrap_or(1);
        for &ci in topo.cache_order() {
            let c = &self.caches[ci.0];
            let backend_of = |b: &Builder, to: Option<Component>| match to {
                Some(Component::Database(di)) => Backend::Db(routers[di.0].clone()),
                Some(o) => b
                    .ids
                    .get(topo.name(o))
                    .map_or(Backend::None, |v| Backend::Actors(v.clone())),
                None => Backend::None,
            };
            let mut all = Vec::new();
            if c.local {
                for &si in topo.users(ci) {
                    let s = &self.services[si.0];
                    let backend = backend_of(b, topo.cache_backend(ci, si));
                    for i in 0..s.instances {
                        let mut cache = Cache::new(ci.0, c, backend.clone());
                        cache.reserve_keys(key_space.min(1 << 15));
                        let id = b.add(
                            Node::Cache(cache),
                            topo.local_cache_name(ci, si, i),
                            region_ix(&s.region),
                        );
                        let data = &mut b.instances[si.0][i as usize].data;
                        data.entry = Some(id);
                        data.local = true;
                        all.push(id);
                    }
                }
            } else {
                let backend = backend_of(b, topo.shared_cache_backend(ci));
                let mut cache = Cache::new(ci.0, c, backend);
                cache.reserve_keys(key_space);
                let id = b.add(Node::Cache(cache), c.name.clone(), region_ix(&c.region));
                for &si in topo.users(ci) {
                    // The instances running from the start; spares call the database.
                    let initial = self.services[si.0].instances as usize;
                    for w in &mut b.instances[si.0][..initial] {
                        w.data.entry = Some(id);
                        w.data.local = false;
                    }
                }
                all.push(id);
            }
            b.ids.insert(c.name.clone(), all);
        }
    }

    /// Circuit breakers (after the services and load balancers they protect) and the
    /// services' calls, each target resolved ([`Topology::calls_of`],
    /// [`Topology::protects`]) to a service or one actor.
    fn build_calls(
        &self,
        topo: &Topology,
        b: &mut Builder,
        region_ix: &dyn Fn(&Option<String>) -> usize,
    ) {
        let target = |b: &Builder, to: Option<Component>| match to {
            Some(Component::Service(si)) => CallTarget::Service {
                service: si.0,
                all: b
                    .ids
                    .get(&self.services[si.0].name)
                    .cloned()
                    .unwrap_or_default(),
            },
            Some(c) => CallTarget::Actor(
                b.ids
                    .get(topo.name(c))
                    .and_then(|v| v.first().copied())
                    .unwrap_or(0),
            ),
            None => CallTarget::Actor(0),
        };
        for (bi, c) in self.circuit_breakers.iter().enumerate() {
            let t = target(b, topo.protects(BreakerIx(bi)));
            b.add(
                Node::Breaker(CircuitBreaker::new(bi, c, t)),
                c.name.clone(),
                region_ix(&c.region),
            );
        }
        for (si, s) in self.services.iter().enumerate() {
            if s.calls.is_empty() {
                continue;
            }
            let resolved: Vec<CallTarget> = topo
                .calls_of(ServiceIx(si))
                .iter()
                .map(|&to| target(b, to))
                .collect();
            for w in &mut b.instances[si] {
                let mut it = resolved.iter().cloned();
                w.calls = Calls::new(&s.calls, |_| it.next().unwrap_or(CallTarget::Actor(0)));
            }
        }
    }
}

impl ModelConfig {
    /// Where requests and probes for geo entry `x` go: a load balancer's actor, or a
    /// service's members.
    fn entry_target(&self, topo: &Topology, b: &Builder, x: Component) -> EntryTarget {
        match x {
            Component::Service(si) => EntryTarget::Service(
                si.0,
                b.ids
                    .get(&self.services[si.0].name)
                    .cloned()
                    .unwrap_or_default(),
            ),
            other => EntryTarget::Actor(
                b.ids
                    .get(topo.name(other))
                    .and_then(|v| v.first().copied())
                    .unwrap_or(0),
            ),
        }
    }

    /// Geo routers: the health checker of each (in its region), and its table of entries
    /// in rotation in `Shared::geo` (all in rotation at the start).
    fn build_geo(
        &self,
        topo: &Topology,
        b: &mut Builder,
        region_ix: &dyn Fn(&Option<String>) -> usize,
    ) {
        for (gi, g) in self.geo_routers.iter().enumerate() {
            let entries: Vec<EntryTarget> = g
                .entries
                .iter()
                .map(|e| match topo.lookup(e) {
                    Some(x) => self.entry_target(topo, b, x),
                    None => EntryTarget::Actor(0),
                })
                .collect();
            b.sim.shared_mut().geo.push(vec![true; entries.len()]);
            let router = GeoRouter::new(gi, g, entries);
            let mut first = Vec::new();
            router.start(&mut |t, m| first.push((t, m)));
            let id = b.add(Node::Geo(router), g.name.clone(), region_ix(&g.region));
            for (t, m) in first {
                b.sim.schedule(t, id, m);
            }
        }
    }
}

/// The world under construction: the simulation, the address book (every name that
/// addresses actors: components, instances, database nodes and their aliases), each
/// actor's canonical name, and the wiring of each service instance (per service, per
/// instance), whose id is reserved first and which is built once every component it sends
/// to exists.
struct Builder {
    sim: SimulationBuilder<Node>,
    ids: BTreeMap<String, Vec<ActorId>>,
    names: Vec<String>,
    instances: Vec<Vec<InstanceWiring>>,
}

impl Builder {
    /// Adds `node` under its canonical `name` (its RNG stream and its address) in region
    /// `region`.
    fn add(&mut self, node: Node, name: String, region: usize) -> ActorId {
        let id = self.add_unplaced(node, name.clone());
        self.sim.place(id, region);
        self.ids.insert(name, vec![id]);
        id
    }

    /// Reserves the id of an actor called `name` in region `region`, like
    /// [`Builder::add`]; the actor comes with [`Builder::fill_instances`].
    fn reserve(&mut self, name: String, region: usize) -> ActorId {
        let id = self.sim.reserve(&name);
        self.sim.place(id, region);
        self.names.push(name.clone());
        self.ids.insert(name, vec![id]);
        id
    }

    /// Adds `node` under `name` (its RNG stream), unplaced and not addressable (an
    /// autoscaler, a canary controller).
    fn add_unplaced(&mut self, node: Node, name: String) -> ActorId {
        let id = self.sim.add(&name, node);
        self.names.push(name);
        id
    }

    /// Builds every service instance reserved, with its wiring, at its id.
    fn fill_instances(&mut self, model: &ModelConfig) {
        for (si, wiring) in std::mem::take(&mut self.instances).into_iter().enumerate() {
            let s = &model.services[si];
            for (i, w) in wiring.into_iter().enumerate() {
                let id = self.sim.shared().all_instances(si)[i];
                let node = Node::Instance(Instance::new(si, i as u32, s, w));
                self.sim.fill(id, node);
            }
        }
    }
}

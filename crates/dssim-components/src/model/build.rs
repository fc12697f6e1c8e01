//! Building a validated model into the world of one run: actors, wiring, shared state.

use std::collections::BTreeMap;

use dssim_engine::{rng, ActorId, Network, Partition, SimTime, Simulation};

use crate::autoscaler::{Autoscaler, Scaled};
use crate::cache::{Backend, Cache, WritePolicy};
use crate::canary::CanaryController;
use crate::changes::Setting;
use crate::client::Client;
use crate::compute::{Life, ServiceState};
use crate::database::{DbNode, DbRouter, DbState, NodeState, ShardState};
use crate::faults::FaultAction;
use crate::jobs::{JobQueue, QueueState};
use crate::load_balancer::LoadBalancer;
use crate::node::{Msg, Node};
use crate::sampler::Sampler;
use crate::service::{Instance, ServiceConfig};
use crate::shared::Shared;
use crate::ConfigError;

use super::*;

impl ModelConfig {
    /// Builds the world of one run.
    pub fn build(&self, opts: &RunOptions) -> Result<World, Vec<ConfigError>> {
        self.validate()?;
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
        let mut sim: Simulation<Node> = Simulation::new(Network::ideal(), shared);
        let mut ids: BTreeMap<String, Vec<ActorId>> = BTreeMap::new();
        let mut placement = Vec::new();
        let mut total_workers = 0u64;
        let mut total_instances = 0u64;
        let key_space = self.clients.iter().map(|c| c.keys).max().unwrap_or(1);
        let routers: Vec<DbRouter> = self
            .databases
            .iter()
            .enumerate()
            .map(|(di, d)| DbRouter::new(di, d, key_space))
            .collect();
        for (si, s) in self.services.iter().enumerate() {
            let mut v = Vec::new();
            // Every instance an autoscaler or a timed change may add exists from the
            // start, switched off.
            let scaled_max = self
                .autoscalers
                .iter()
                .find(|a| a.subject() == s.name)
                .map_or(0, |a| a.max)
                .max(self.changed_max_instances(&s.name));
            let mut state = ServiceState::default();
            state.name = s.name.clone();
            state.workers = s.workers.max(1);
            state.changed = self.changes.iter().any(|c| {
                c.target == s.name && (c.set.workers.is_some() || c.set.instances.is_some())
            });
            state.prices = s.cost.is_some().then(|| {
                (0..s.instances.max(scaled_max))
                    .filter_map(|i| s.hourly_cost(i))
                    .collect()
            });
            state.scaled = scaled_max > 0;
            state.deploy = s
                .deploy
                .as_ref()
                .map(|_| crate::compute::deploy::DeployState::default());
            state.feature = s
                .feature
                .as_ref()
                .map(crate::compute::feature::FeatureState::new);
            let router = s
                .database
                .as_ref()
                .and_then(|n| self.databases.iter().position(|d| &d.name == n))
                .map(|di| routers[di].clone());
            for i in 0..s.instances.max(scaled_max) {
                let name = format!("{}.{i}", s.name);
                let mut inst = Instance::new(si, i, s);
                inst.data.db = router.clone();
                let id = sim.add(Node::Instance(inst), rng::stream(opts.seed, &name));
                placement.push((id, region_ix(&s.region)));
                ids.insert(name, vec![id]);
                state.instances.push(id);
                if i < s.instances {
                    v.push(id);
                    state.life.push(Life::Off);
                    total_workers += u64::from(s.workers.max(1));
                    total_instances += 1;
                } else {
                    state.life.push(Life::Off);
                }
            }
            let initial = s.instances;
            sim.shared_mut().compute.services.push(state);
            for i in 0..initial as usize {
                sim.shared_mut().set_life(si, i, Life::Ready, SimTime::ZERO);
            }
            ids.insert(s.name.clone(), v);
        }
        for (di, d) in self.databases.iter().enumerate() {
            let mut state = DbState::default();
            for sh in 0..d.shards {
                let mut shard = ShardState::default();
                for n in 0..=d.replicas {
                    let name = d.node_name(sh, n);
                    let mut node = DbNode::new(di, sh as usize, n as usize, d);
                    let election = node.first_election_check(opts.duration);
                    let id = sim.add(Node::Db(node), rng::stream(opts.seed, &name));
                    if let Some((t, m)) = election {
                        sim.schedule(t, id, m);
                    }
                    let region = match &d.replica_region {
                        Some(_) if n > 0 => &d.replica_region,
                        _ => &d.region,
                    };
                    placement.push((id, region_ix(region)));
                    shard.nodes.push(NodeState {
                        actor: id,
                        alive: true,
                        ..Default::default()
                    });
                }
                state.shards.push(shard);
            }
            for (name, members) in d.addresses() {
                let v = members
                    .iter()
                    .map(|&(sh, n)| state.shards[sh as usize].nodes[n as usize].actor)
                    .collect();
                ids.insert(name, v);
            }
            sim.shared_mut().dbs.push(state);
        }
        sim.shared_mut().oracle.enabled = !self.databases.is_empty();
        let mut lbs = Vec::new();
        for l in &self.load_balancers {
            // Behind an autoscaler (or timed changes of the instance count) the balancer
            // holds every instance the service may have and follows its members.
            let resized = self.changed_max_instances(&l.backends) > 0;
            // A rolling deploy takes instances out of the members too.
            let deployed = self
                .services
                .iter()
                .any(|s| s.name == l.backends && s.deploy.is_some());
            let scaled =
                resized || deployed || self.autoscalers.iter().any(|a| a.subject() == l.backends);
            let svc = sim.shared().service_index(&l.backends);
            let backends = match svc {
                Some(si) if scaled => sim.shared().all_instances(si).to_vec(),
                _ => ids.get(&l.backends).cloned().unwrap_or_default(),
            };
            let mut cfg = l.clone();
            if let (true, Some(w)) = (resized, cfg.weights.as_mut()) {
                // Instances a change adds weigh 1.
                w.resize(backends.len().max(w.len()), 1);
            }
            let mut lb = LoadBalancer::new(&cfg, &l.backends, backends);
            if let (Some(si), true) = (svc, scaled) {
                lb.track_members(si);
            }
            let id = sim.add(Node::LoadBalancer(lb), rng::stream(opts.seed, &l.name));
            placement.push((id, region_ix(&l.region)));
            ids.insert(l.name.clone(), vec![id]);
            lbs.push(id);
        }
        self.build_caches(
            &mut sim,
            &mut ids,
            &mut placement,
            opts.seed,
            &region_ix,
            &routers,
        );
        for (qi, q) in self.queues.iter().enumerate() {
            let id = sim.add(
                Node::JobQueue(JobQueue::new(qi, q)),
                rng::stream(opts.seed, &q.name),
            );
            placement.push((id, 0));
            ids.insert(q.name.clone(), vec![id]);
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
            st.win_workers.set(SimTime::ZERO, f64::from(q.workers));
            st.workers_tw.set(SimTime::ZERO, f64::from(q.workers));
            sim.shared_mut().compute.queues.push(st);
            if let Some(si) = self.services.iter().position(|s| s.name == q.producer) {
                let ratio = q.enqueue_ratio;
                for a in sim.actors_mut() {
                    if let Node::Instance(inst) = a {
                        if inst.service == si {
                            inst.jobs.push((id, ratio));
                        }
                    }
                }
            }
        }
        for (ai, a) in self.autoscalers.iter().enumerate() {
            let subject = a.subject();
            let what = if let Some(si) = self.services.iter().position(|s| s.name == subject) {
                Scaled::Service(si)
            } else if let Some(qi) = self.queues.iter().position(|q| q.name == subject) {
                Scaled::Queue(qi, ids[subject][0])
            } else {
                continue;
            };
            let scaler = Autoscaler::new(a, what, opts.duration);
            let (t, m) = scaler.first_tick();
            let name = format!("autoscaler.{ai}.{subject}");
            let id = sim.add(Node::Autoscaler(scaler), rng::stream(opts.seed, &name));
            sim.schedule(t, id, m);
        }
        for (si, s) in self.services.iter().enumerate() {
            if let Some(c) = &s.canary {
                let ctl = CanaryController::new(si, c, opts.duration);
                let t = ctl.start_time();
                let id = sim.add(
                    Node::Canary(ctl),
                    rng::stream(opts.seed, &format!("{}.canary", s.name)),
                );
                if t < opts.duration {
                    sim.schedule(t, id, Msg::CanaryStep);
                }
            }
        }
        let mut clients = Vec::new();
        for c in &self.clients {
            let targets = ids.get(&c.target).cloned().unwrap_or_default();
            let mut client = Client::new(c, targets, opts.duration);
            client.target_service = self.services.iter().position(|s| s.name == c.target);
            let id = sim.add(Node::Client(client), rng::stream(opts.seed, &c.name));
            placement.push((id, region_ix(&c.region)));
            ids.insert(c.name.clone(), vec![id]);
            clients.push(id);
        }
        for (id, r) in placement {
            net.place(id, r);
        }
        for p in &self.network.partitions {
            let side = |names: &Vec<String>| -> Vec<ActorId> {
                names
                    .iter()
                    .flat_map(|n| ids.get(n).cloned().unwrap_or_default())
                    .collect()
            };
            if let [a, b] = p.sides.as_slice() {
                net.add_partition(Partition::new(p.from.0, p.until.0, &side(a), &side(b)));
            }
        }
        // The real network replaces the ideal one now that every actor is placed.
        let mut sim = sim.with_network(net);
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
                        && !matches!(sim.actors()[id as usize], Node::Instance(_))
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
                let svc = sim.shared().service_index(&c.target);
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
            match &sim.actors()[c as usize] {
                Node::Client(cl) => cl.start(&mut |t, m| first.push((t, m))),
                Node::LoadBalancer(lb) => lb.start(&mut |t, m| first.push((t, m))),
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
            let id = sim.add(
                Node::Sampler(Sampler {
                    interval: iv,
                    until: opts.duration,
                    start: SimTime::ZERO,
                }),
                rng::stream(opts.seed, "sampler"),
            );
            sim.schedule(iv.min(opts.duration), id, Msg::Tick);
        }
        Ok(World {
            sim,
            opts: opts.clone(),
            model: self.clone(),
            clients,
            ids,
            window_open: false,
            cap: RunCap::default(),
        })
    }

    /// Adds the cache actors: one per shared cache or CDN edge, one per service instance
    /// for a local cache, and points the services' data paths at them. Built after the
    /// services (origins) and before the clients (which may target an edge); an edge whose
    /// origin is another edge is built after it. When databases exist, the cache of a
    /// service with a database reads and writes it: `Cache::set_backend(Backend::Db(..))`.
    pub(super) fn build_caches(
        &self,
        sim: &mut Simulation<Node>,
        ids: &mut BTreeMap<String, Vec<ActorId>>,
        placement: &mut Vec<(ActorId, usize)>,
        seed: u64,
        region_ix: &dyn Fn(&Option<String>) -> usize,
        routers: &[DbRouter],
    ) {
        // The database a service reads and writes through its cache, if it has one.
        let db_of = |s: &ServiceConfig| -> Option<Backend> {
            let n = s.database.as_ref()?;
            let di = self.databases.iter().position(|d| &d.name == n)?;
            Some(Backend::Db(routers[di].clone()))
        };
        let mut built = vec![false; self.caches.len()];
        // Validation rules out loops, so every pass builds at least one edge.
        for _ in 0..self.caches.len() {
            for (ci, c) in self.caches.iter().enumerate() {
                let waits = c.origin.as_ref().is_some_and(|o| {
                    self.caches
                        .iter()
                        .position(|k| &k.name == o)
                        .is_some_and(|oi| !built[oi])
                });
                if built[ci] || waits {
                    continue;
                }
                built[ci] = true;
                let backend = c
                    .origin
                    .as_ref()
                    .and_then(|o| ids.get(o))
                    .map_or(Backend::None, |v| Backend::Actors(v.clone()));
                let users: Vec<&ServiceConfig> = self
                    .services
                    .iter()
                    .filter(|s| s.cache.as_deref() == Some(c.name.as_str()))
                    .collect();
                let mut all = Vec::new();
                if c.local {
                    for s in users {
                        let backend = db_of(s).unwrap_or_else(|| backend.clone());
                        for i in 0..s.instances {
                            let inst = format!("{}.{i}", s.name);
                            let name = format!("{}@{inst}", c.name);
                            let id = sim.add(
                                Node::Cache(Box::new(Cache::new(ci, c, backend.clone()))),
                                rng::stream(seed, &name),
                            );
                            placement.push((id, region_ix(&s.region)));
                            if let Some(&inst_id) = ids.get(&inst).and_then(|v| v.first()) {
                                if let Node::Instance(x) = &mut sim.actors_mut()[inst_id as usize] {
                                    x.data.entry = Some(id);
                                    x.data.local = true;
                                }
                            }
                            ids.insert(name, vec![id]);
                            all.push(id);
                        }
                    }
                } else {
                    let backend = users.iter().find_map(|s| db_of(s)).unwrap_or(backend);
                    let id = sim.add(
                        Node::Cache(Box::new(Cache::new(ci, c, backend))),
                        rng::stream(seed, &c.name),
                    );
                    placement.push((id, region_ix(&c.region)));
                    for s in users {
                        for &inst_id in ids.get(&s.name).map(Vec::as_slice).unwrap_or(&[]) {
                            if let Node::Instance(x) = &mut sim.actors_mut()[inst_id as usize] {
                                x.data.entry = Some(id);
                                x.data.local = false;
                            }
                        }
                    }
                    all.push(id);
                }
                ids.insert(c.name.clone(), all);
            }
        }
    }
}

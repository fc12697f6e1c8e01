//! Stepping a built world for a live view (`dssim serve`): advance to a simulated time,
//! read the wiring as a graph and the components' current levels. Reading never changes
//! the run: a world stepped with [`World::step_to`] and then [`World::run`] gives the same
//! report, byte for byte, as [`World::run`] alone.

use dssim_engine::{ActorId, SimTime};
use serde::Serialize;

use super::topology::{CacheIx, ServiceIx};
use super::World;
use crate::cache::Tier;
use crate::node::Node;
use crate::stats::SeriesRow;

/// The model as built: one node per actor a picture shows, and the links between groups.
#[derive(Clone, Debug, Serialize)]
pub struct Graph {
    /// Clients, load balancers, instances, caches, database nodes, job queues.
    pub nodes: Vec<GraphNode>,
    /// Links between groups (`users` -> `lb`, `app` -> `db`), each once.
    pub edges: Vec<(String, String)>,
    /// Region names, in the model's order (the default region first).
    pub regions: Vec<String>,
}

/// One drawn component.
#[derive(Clone, Debug, Serialize)]
pub struct GraphNode {
    /// Its name in faults and partitions (`app.2`, `db.replica.0`, `lb`).
    pub name: String,
    /// `client`, `load_balancer`, `cdn`, `service`, `cache`, `database`, `queue`,
    /// `circuit_breaker`.
    pub kind: &'static str,
    /// The component it belongs to (`app` for `app.2`).
    pub group: String,
    /// Index into [`Graph::regions`].
    pub region: usize,
    /// Workers (instances), 0 elsewhere.
    pub workers: u32,
    /// Whether it exists from the start (false: spare instances an autoscaler may add).
    pub initial: bool,
}

/// The current state of one graph node.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Probe {
    /// Up (not killed or crashed).
    pub alive: bool,
    /// Running (instances: not switched off by an autoscaler or a timed change).
    pub on: bool,
    /// Workers now (instances), 0 elsewhere.
    pub workers: u32,
    /// Requests handled so far (instances, load balancers, caches, database nodes).
    pub requests: u64,
    /// Busy workers (instances) or open connections (database nodes) now.
    pub busy: f64,
    /// Requests waiting now (instances).
    pub queue: f64,
    /// Integral of busy workers since the window opened (worker-ns), for interval means.
    pub busy_area: f64,
    /// Integral of the queue length since the window opened (request-ns).
    pub queue_area: f64,
}

impl World {
    /// Records each service instance's arrivals, utilization and queue length per
    /// time-series row (instances.csv, `[output] instance_timeseries`); nothing without a
    /// time series. The run is otherwise the same: no event is added.
    pub fn enable_instance_series(&mut self) {
        if self.opts.timeseries.is_none_or(|d| d == SimTime::ZERO) {
            return;
        }
        let mut list: Vec<(usize, u32, usize, u32)> = self
            .sim
            .actors()
            .iter()
            .enumerate()
            .filter_map(|(id, a)| match a {
                Node::Instance(i) => Some((i.service, i.index, id, i.workers())),
                _ => None,
            })
            .collect();
        list.sort_unstable();
        let actors = self.sim.actors().len();
        let mut slot = vec![u32::MAX; actors];
        let mut gauges = Vec::with_capacity(list.len());
        for (k, (s, index, id, workers)) in list.into_iter().enumerate() {
            let cfg = &self.model.services[s];
            slot[id] = k as u32;
            gauges.push(crate::stats::InstanceGauge {
                component: cfg.name.clone(),
                instance: format!("{}.{index}", cfg.name),
                workers: f64::from(workers),
                listed: index < cfg.instances,
                ..Default::default()
            });
        }
        let st = &mut self.sim.shared_mut().stats;
        st.instance_slot = slot;
        st.instance_gauges = gauges;
    }

    /// Advances to `t` (at most the end of arrivals). The measured window opens at the
    /// warm-up exactly as [`World::run`] opens it, so a world stepped in any increments
    /// finishes with the same report.
    pub fn step_to(&mut self, t: SimTime) {
        let t = t.min(self.opts.duration);
        if !self.window_open && t >= self.opts.warmup {
            self.open_window();
        }
        self.sim.run_until(t);
    }

    /// The current simulated time.
    pub fn now(&self) -> SimTime {
        self.sim.now()
    }

    /// End of arrivals.
    pub fn duration(&self) -> SimTime {
        self.opts.duration
    }

    /// Whether the measured window has opened (averages restart there).
    pub fn window_open(&self) -> bool {
        self.window_open
    }

    /// Rows of the time series closed so far (`[output] timeseries`).
    pub fn series(&self) -> &[SeriesRow] {
        &self.sim.shared().stats.series
    }

    /// Events processed so far.
    pub fn events(&self) -> u64 {
        self.sim.events()
    }

    /// The wiring as built: names, kinds, groups and regions of the actors, and the links
    /// between components.
    pub fn graph(&self) -> Graph {
        let m = &self.model;
        let regions = m.region_names();
        let rix = |r: &Option<String>| {
            r.as_ref()
                .and_then(|r| regions.iter().position(|x| x == r))
                .unwrap_or(0)
        };
        let mut nodes = Vec::new();
        let node = |name: String, kind, group: &str, region, workers, initial| GraphNode {
            name,
            kind,
            group: group.to_string(),
            region,
            workers,
            initial,
        };
        for c in &m.clients {
            nodes.push(node(
                c.name.clone(),
                "client",
                &c.name,
                rix(&c.region),
                0,
                true,
            ));
        }
        for l in &m.load_balancers {
            nodes.push(node(
                l.name.clone(),
                "load_balancer",
                &l.name,
                rix(&l.region),
                0,
                true,
            ));
        }
        for c in m.caches.iter().filter(|c| c.tier == Tier::Cdn) {
            nodes.push(node(
                c.name.clone(),
                "cdn",
                &c.name,
                rix(&c.region),
                0,
                true,
            ));
        }
        for (si, s) in m.services.iter().enumerate() {
            let all = self.sim.shared().compute.services[si].instances.len() as u32;
            for i in 0..all {
                let name = self.topology.instance_name(ServiceIx(si), i);
                let workers = self.instance_workers(&name);
                nodes.push(node(
                    name,
                    "service",
                    &s.name,
                    rix(&s.region),
                    workers,
                    i < s.instances,
                ));
            }
        }
        for (ci, c) in m
            .caches
            .iter()
            .enumerate()
            .filter(|(_, c)| c.tier == Tier::App)
        {
            if c.local {
                for &si in self.topology.users(CacheIx(ci)) {
                    let s = &m.services[si.0];
                    for i in 0..s.instances {
                        let name = self.topology.local_cache_name(CacheIx(ci), si, i);
                        nodes.push(node(name, "cache", &c.name, rix(&s.region), 0, true));
                    }
                }
            } else {
                nodes.push(node(
                    c.name.clone(),
                    "cache",
                    &c.name,
                    rix(&c.region),
                    0,
                    true,
                ));
            }
        }
        for d in &m.databases {
            for sh in 0..d.shards {
                for n in 0..=d.replicas {
                    let region = match &d.replica_region {
                        Some(_) if n > 0 => &d.replica_region,
                        _ => &d.region,
                    };
                    nodes.push(node(
                        d.node_name(sh, n),
                        "database",
                        &d.name,
                        rix(region),
                        0,
                        true,
                    ));
                }
            }
        }
        for q in &m.queues {
            nodes.push(node(q.name.clone(), "queue", &q.name, 0, q.workers, true));
        }
        for b in &m.circuit_breakers {
            nodes.push(node(
                b.name.clone(),
                "circuit_breaker",
                &b.name,
                rix(&b.region),
                0,
                true,
            ));
        }
        let topo = &self.topology;
        let mut edges: Vec<(String, String)> = topo
            .edges()
            .into_iter()
            .map(|(from, to, _)| (topo.name(from).to_string(), topo.name(to).to_string()))
            .collect();
        edges.sort();
        edges.dedup();
        Graph {
            nodes,
            edges,
            regions,
        }
    }

    fn instance_workers(&self, name: &str) -> u32 {
        match self.node(name) {
            Some(Node::Instance(i)) => i.workers(),
            _ => 0,
        }
    }

    fn actor_of(&self, name: &str) -> Option<ActorId> {
        match self.ids.get(name)?.as_slice() {
            [id] => Some(*id),
            _ => None,
        }
    }

    /// The current state of the graph node called `name` (see [`World::graph`]).
    pub fn probe(&self, name: &str) -> Option<Probe> {
        let id = self.actor_of(name)?;
        let now = self.sim.now();
        Some(match self.sim.actors().get(id as usize)? {
            Node::Instance(i) => Probe {
                alive: i.is_alive(),
                on: self.sim.shared().compute.services[i.service].life[i.index as usize]
                    != crate::compute::Life::Off,
                workers: i.workers(),
                requests: i.stats.requests,
                busy: i.stats.busy.level(),
                queue: i.stats.queued.level(),
                busy_area: i.stats.busy.area(now),
                queue_area: i.stats.queued.area(now),
            },
            Node::Db(d) => {
                let alive = self.sim.shared().dbs[d.db].shards[d.shard].nodes[d.node].alive;
                Probe {
                    alive,
                    on: true,
                    requests: d.stats.requests,
                    busy: d.stats.conns.level(),
                    busy_area: d.stats.conns.area(now),
                    ..Default::default()
                }
            }
            Node::Cache(c) => Probe {
                alive: c.alive(),
                on: true,
                requests: c.stats.requests,
                ..Default::default()
            },
            Node::LoadBalancer(l) => Probe {
                alive: true,
                on: true,
                requests: l.stats.requests,
                ..Default::default()
            },
            Node::Breaker(b) => Probe {
                // An open breaker is drawn as down.
                alive: b.state.phase != crate::circuit_breaker::BreakerPhase::Open,
                on: true,
                requests: b.stats.requests,
                ..Default::default()
            },
            _ => Probe {
                alive: true,
                on: true,
                ..Default::default()
            },
        })
    }
}

//! One pass: client rates carried downstream in topological order, then times added back
//! upstream to each client.

use dssim_components::calls::CallOp;
use dssim_components::model::topology::{ClientIx, Component};

use crate::estimate::keys::Piece;

use super::*;

impl<'a> FlowModel<'a> {
    /// One pass at these client rates (requests per second each).
    ///
    /// With `pin`, a database node at its saturation (a saturated closed loop keeps a
    /// backlog upstream) is taken at its cap rather than in the chain's light state.
    pub fn pass(&self, rates: &[f64], pin: bool) -> FlowResult {
        self.pass_with(rates, pin, true)
    }

    /// A pass for a closed loop's bisection, which reads only the services as stations
    /// (their flow-equivalent rates) and each client's time outside them: a pool's exact
    /// chain, whose figures the loop's own solution replaces, is not solved.
    pub fn stations_pass(&self, rates: &[f64]) -> FlowResult {
        self.pass_with(rates, false, false)
    }

    fn pass_with(&self, rates: &[f64], pin: bool, chains: bool) -> FlowResult {
        let m = self.m;
        let g = &self.grid;
        let mut inputs: BTreeMap<Node, Vec<(Option<usize>, Load)>> = BTreeMap::new();
        let mut rows_browser = Vec::new();
        let mut client_hit = vec![0.0; m.clients.len()];
        // Clients (and their browser caches).
        for (i, c) in m.clients.iter().enumerate() {
            let rate = rates.get(i).copied().unwrap_or(0.0).max(0.0);
            let mut load = self.unit[i].scaled(rate);
            if let Some(b) = &c.browser_cache {
                let users = c
                    .user_ids
                    .or(c.users.filter(|u| *u > 0))
                    .unwrap_or(1)
                    .max(1) as f64;
                let ttl = secs(b.max_age.0 .0 as f64);
                let (yes, no) = load.split(g, b.cacheable.clamp(0.0, 1.0));
                let groups = yes.groups(g);
                // Each user's browser is an unbounded TTL cache of that user's reads
                // (λ·T / (1 + λ·T) per key in the steady state), empty at the start.
                let per_user: Vec<Group> = groups
                    .iter()
                    .map(|x| Group {
                        read: x.read / users,
                        write: 0.0,
                        ..*x
                    })
                    .collect();
                let out = hit::solve(
                    &per_user,
                    &Params {
                        capacity: None,
                        policy: Policy::Lru,
                        ttl: Some(ttl),
                        writes: Writes::Ignore,
                        fill: 0.0,
                        coalesce: false,
                        window: self.window,
                    },
                );
                let (mut lookups, mut hits) = (0.0, 0.0);
                let mut after = yes.map_indexed(|k, p| {
                    let h = out.get(k).map_or(0.0, |o| o.hit);
                    lookups += groups[k].n * groups[k].read;
                    hits += groups[k].n * groups[k].read * h;
                    crate::estimate::keys::Piece {
                        read: p.read * (1.0 - h),
                        ..p
                    }
                });
                after.add(&no);
                load = after;
                client_hit[i] = if rate > 0.0 { hits / rate } else { 0.0 };
                rows_browser.push(ComponentEstimate {
                    component: format!("{}.browser", c.name),
                    kind: "browser_cache",
                    offered_rps: lookups,
                    hit_ratio: (lookups > 0.0).then(|| hits / lookups),
                    method: "TTL cache per user: λT/(1+λT) per key".to_string(),
                    ..ComponentEstimate::empty()
                });
            }
            if let Some(t) = self.target_of(i) {
                inputs.entry(t).or_default().push((None, load));
            }
        }
        // Loads downstream.
        let mut caches: BTreeMap<usize, CacheFigures> = BTreeMap::new();
        let mut lb_rps: BTreeMap<usize, f64> = BTreeMap::new();
        let mut svc_load: BTreeMap<usize, (f64, f64)> = BTreeMap::new();
        let mut db_nodes: BTreeMap<usize, Vec<DbNodeFigures>> = BTreeMap::new();
        let mut queue_rate: BTreeMap<usize, f64> = BTreeMap::new();
        for &n in &self.order {
            let parts = inputs.remove(&n).unwrap_or_default();
            let mut sum = Load::zero(g);
            for (_, l) in &parts {
                sum.add(l);
            }
            match n {
                Node::Cache(ci) if m.caches[ci].tier == Tier::Cdn => {
                    let (out, stats) = self.edge(ci, &sum);
                    caches.insert(ci, stats);
                    if let Some(o) = self.origin_of(ci) {
                        inputs.entry(o).or_default().push((None, out));
                    }
                }
                Node::Cache(ci) => {
                    let (outs, stats) = self.app_cache(ci, &parts);
                    caches.insert(ci, stats);
                    for (to, l) in outs {
                        inputs.entry(to).or_default().push((None, l));
                    }
                }
                Node::Lb(li) => {
                    lb_rps.insert(li, total(g, &sum));
                    if let Some(t) = self.backends_of(li) {
                        inputs.entry(t).or_default().push((None, sum));
                    }
                }
                Node::Service(si) => {
                    let (r, w) = sum.totals(g);
                    svc_load.insert(si, (r, w));
                    for d in self.downstream(n) {
                        match d {
                            Node::Queue(qi) => {
                                *queue_rate.entry(qi).or_default() +=
                                    w * m.queues[qi].enqueue_ratio.clamp(0.0, 1.0);
                            }
                            other => inputs
                                .entry(other)
                                .or_default()
                                .push((Some(si), sum.clone())),
                        }
                    }
                    // Calls: the callee takes the caller's requests of the call's
                    // operation, `count` calls each.
                    for (cfg, to) in m.services[si].calls.iter().zip(self.call_targets(si)) {
                        let Some(to) = to else { continue };
                        let load = match cfg.op {
                            CallOp::All => sum.clone(),
                            CallOp::Read => sum.map(|p| Piece { write: 0.0, ..p }),
                            CallOp::Write => sum.map(|p| Piece { read: 0.0, ..p }),
                        };
                        inputs
                            .entry(to)
                            .or_default()
                            .push((Some(si), load.scaled(f64::from(cfg.count))));
                    }
                }
                Node::Db(di) => {
                    let outside = self.outside_time(di, &sum, &svc_load);
                    db_nodes.insert(di, self.database(di, &sum, rates, outside, pin));
                }
                Node::Queue(_) => {}
            }
        }
        // Times upstream.
        let mut time: BTreeMap<Node, f64> = BTreeMap::new();
        let mut rows_services = Vec::new();
        let mut rows_pools = Vec::new();
        let mut rows_caches = Vec::new();
        let mut rows_lbs = Vec::new();
        let mut rows_queues = Vec::new();
        let mut stations = Vec::new();
        for &n in self.order.iter().rev() {
            match n {
                Node::Db(_) => {}
                Node::Queue(qi) => {
                    let lambda = queue_rate.get(&qi).copied().unwrap_or(0.0);
                    rows_queues.extend(self.queue_rows(qi, lambda));
                }
                Node::Cache(ci) => {
                    let Some(stats) = caches.get_mut(&ci) else {
                        continue;
                    };
                    let c = &m.caches[ci];
                    let (row, t) = self.cache_times(ci, stats, &time, &db_nodes);
                    time.insert(n, t);
                    rows_caches.push(row);
                    if c.tier == Tier::Cdn {
                        rows_caches.push(ComponentEstimate {
                            component: format!("{}.origin", c.name),
                            kind: "cdn_origin",
                            offered_rps: stats.origin_calls,
                            method: "the edge's misses and pass-through".to_string(),
                            hit_ratio: (stats.requests > 0.0)
                                .then(|| 1.0 - stats.origin_calls / stats.requests),
                            ..ComponentEstimate::empty()
                        });
                    }
                }
                Node::Service(si) => {
                    let (r, w) = svc_load.get(&si).copied().unwrap_or((0.0, 0.0));
                    let calls = self.call_times(si, &time);
                    let (row, pool, t, st) =
                        self.service_times(si, r, w, &caches, &db_nodes, chains, &calls);
                    time.insert(n, t);
                    stations.push(st);
                    rows_services.push(row);
                    rows_pools.extend(pool);
                }
                Node::Lb(li) => {
                    let l = &m.load_balancers[li];
                    let to = self.backends_of(li);
                    let behind = to.and_then(|t| time.get(&t).copied()).unwrap_or(0.0);
                    let hop = to.map_or(0.0, |t| 2.0 * self.lat(&l.region, &self.region_of(t)));
                    let t = lb_parse_s(l) + hop + behind;
                    time.insert(n, t);
                    rows_lbs.push(ComponentEstimate {
                        component: l.name.clone(),
                        kind: "load_balancer",
                        offered_rps: lb_rps.get(&li).copied().unwrap_or(0.0),
                        method: "delay: parse + hops + its backend's time".to_string(),
                        sojourn_ms: Some(t * 1e3),
                        ..ComponentEstimate::empty()
                    });
                }
            }
        }
        // Client response times.
        let response_s = m
            .clients
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let Some(t) = self.target_of(i) else {
                    return 0.0;
                };
                let there = time.get(&t).copied().unwrap_or(0.0)
                    + 2.0 * self.lat(&c.region, &self.region_of(t));
                part(1.0 - client_hit[i], there)
            })
            .collect();
        // Rows in model order within each kind.
        rows_services.sort_by_key(|r| {
            position(
                &m.services.iter().map(|s| &s.name).collect::<Vec<_>>(),
                &r.component,
            )
        });
        let mut components = rows_services;
        rows_pools.sort_by(|a, b| a.component.cmp(&b.component));
        components.extend(rows_pools);
        components.extend(sorted_by_model(
            rows_lbs,
            m.load_balancers.iter().map(|l| l.name.clone()).collect(),
        ));
        components.extend(sorted_by_model(
            rows_caches,
            m.caches
                .iter()
                .flat_map(|c| [c.name.clone(), format!("{}.origin", c.name)])
                .collect(),
        ));
        components.extend(rows_browser);
        for (_, nodes) in db_nodes {
            components.extend(nodes.into_iter().map(|n| n.est));
        }
        components.extend(sorted_by_model(
            rows_queues,
            m.queues
                .iter()
                .flat_map(|q| {
                    std::iter::once(q.name.clone()).chain(
                        q.priorities
                            .iter()
                            .map(|p| format!("{}.{}", q.name, p.name)),
                    )
                })
                .collect(),
        ));
        // Per client: the service it queues in and the share of its requests that get
        // there (past its browser cache and the CDN edges on the way).
        let reach = (0..m.clients.len())
            .map(|i| {
                let mut share = 1.0 - client_hit[i];
                let to = self.topo.target(ClientIx(i))?;
                for t in self.topo.walk(to) {
                    match t {
                        Component::Service(si) => {
                            return Some((m.services[si.0].name.clone(), share))
                        }
                        Component::LoadBalancer(_) => {}
                        Component::Cache(ci) => {
                            let st = caches.get(&ci.0)?;
                            if st.requests > 0.0 {
                                share *= st.origin_calls / st.requests;
                            }
                        }
                        Component::Breaker(_)
                        | Component::Database(_)
                        | Component::Queue(_)
                        | Component::Client(_) => return None,
                    }
                }
                None
            })
            .collect();
        FlowResult {
            components,
            response_s,
            stations,
            reach,
        }
    }
}

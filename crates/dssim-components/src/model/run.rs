//! Running a built world: the measured window, the run caps, the report.

use dssim_engine::SimTime;

use crate::cache::{CacheStats, Tier};
use crate::node::{Msg, Node};
use crate::report::{ComponentRow, RunReport};
use crate::stats::Outcome;

use super::*;

impl World {
    /// Delivers `msg` at time `at` to every actor `name` addresses (an instance, a
    /// service, a database node such as `db.primary`, a shard, a database): the hook
    /// faults use to kill and recover components. Returns whether the name is known.
    pub fn inject(&mut self, name: &str, at: SimTime, msg: Msg) -> bool {
        let Some(ids) = self.ids.get(name) else {
            return false;
        };
        for &id in ids {
            self.sim.schedule(at, id, msg);
        }
        true
    }

    /// Sets the limits the run must stay within while it runs.
    pub fn set_cap(&mut self, cap: RunCap) {
        self.cap = cap;
    }

    /// Runs to time `t`, checking the [`RunCap`] every [`CAP_CHECK_EVENTS`] events.
    pub(super) fn run_capped(&mut self, t: SimTime) -> Result<(), RunError> {
        if self.cap.events == u64::MAX && self.cap.bytes == u64::MAX {
            self.sim.run_until(t);
            return Ok(());
        }
        loop {
            let next = self
                .sim
                .events()
                .saturating_add(CAP_CHECK_EVENTS)
                .min(self.cap.events);
            if self.sim.run_until_capped(t, next) {
                return Ok(());
            }
            self.check_cap()?;
        }
    }

    pub(super) fn check_cap(&self) -> Result<(), RunError> {
        let (ev_flag, mem_flag, cause) = &self.cap.names;
        let at = self.sim.now();
        if self.sim.events() >= self.cap.events {
            return Err(RunError::Limit(format!(
                "stopped at {:.2e} events (simulated time {at}), the limit of events per run ({ev_flag}); the estimate before the run was lower. Raise {ev_flag}, or lower {cause}",
                self.sim.events() as f64
            )));
        }
        let bytes = self.sim.queued_events() as u64
            * 2
            * std::mem::size_of::<dssim_engine::queue::Event<Msg>>() as u64
            + self.sim.shared().reqs.bytes() as u64;
        if bytes > self.cap.bytes {
            return Err(RunError::Limit(format!(
                "stopped at simulated time {at}: {} events waiting and {} requests in flight hold {:.1} MiB, past the limit of memory per run ({mem_flag}). Raise {mem_flag}, or lower {cause}",
                self.sim.queued_events(),
                self.sim.shared().reqs.live(),
                bytes as f64 / (1024.0 * 1024.0)
            )));
        }
        Ok(())
    }

    /// Runs to the end: warm-up, the measured window, then a drain (no new arrivals) until
    /// every counted request has ended or as long again as the run has passed; requests
    /// still unanswered then end as dropped.
    pub fn run(mut self) -> Result<RunReport, RunError> {
        let o = self.opts.clone();
        if !self.window_open {
            // Warm-up under the run's limits, then the window opens (a no-op run_until).
            self.run_capped(o.warmup)?;
            self.open_window();
        }
        self.run_capped(o.duration)?;
        let mut components = self.component_rows();
        let compute = crate::compute::summary(&self.sim.shared().compute, o.duration);
        components.extend(compute.rows.iter().cloned());
        let drain_limit = o.duration + o.duration.max(SimTime::from_secs(1));
        loop {
            let mut n = 0u64;
            self.sim.run_while(drain_limit, |s| {
                n += 1;
                s.stats.pending > 0 && n <= CAP_CHECK_EVENTS
            });
            if n <= CAP_CHECK_EVENTS {
                break;
            }
            self.check_cap()?;
        }
        // Whatever is still unanswered ends as dropped, exactly once.
        let now = self.sim.now();
        let shared = self.sim.shared_mut();
        let mut leftovers = Vec::new();
        shared.reqs.for_each_live(|r| {
            if !r.abandoned && shared.stats.counts(r.first_sent) {
                leftovers.push((r.first_sent, r.op));
            }
        });
        for (t, op) in leftovers {
            shared.stats.finished(t, op, now, Outcome::Dropped);
        }
        shared.trace.close_all(now);
        let st = &shared.stats;
        if !st.conserved() {
            return Err(RunError::Conservation {
                requests: st.requests,
                ended: st.ok + st.errors + st.timeouts + st.shed + st.dropped,
                pending: st.pending,
            });
        }
        let _ = &self.clients;
        let mut report = RunReport::new(
            &self.opts,
            &self.sim.shared().stats,
            components,
            self.sim.events(),
            self.model.services.iter().map(|s| s.instances).sum(),
        );
        compute.fill(
            &mut report,
            &self.sim.shared().compute,
            &self.model.services,
        );
        if self.opts.trace > 0 {
            report.trace = Some(self.trace_report());
        }
        if !self.model.databases.is_empty() {
            let shared = self.sim.shared();
            crate::database::report(&shared.oracle, &mut report);
            // Writes lost by the databases (failover) and by caches (write-behind) add up.
            let lost = shared.oracle.lost_writes + shared.stats.cache_lost_writes.unwrap_or(0);
            report.set("lost_writes", crate::report::Cell::Int(lost));
        }
        Ok(report)
    }

    /// Runs to the end of the warm-up and restarts the averages there: the measured window.
    pub(super) fn open_window(&mut self) {
        let o = self.opts.clone();
        // After an `advance` past the warm-up the averages already run from time zero.
        let fresh = self.sim.now() <= o.warmup;
        self.sim.run_until(o.warmup);
        if fresh {
            for a in self.sim.actors_mut() {
                match a {
                    Node::Instance(i) => i.reset_window(o.warmup),
                    Node::Breaker(b) => b.reset_window(o.warmup),
                    Node::Db(d) => d.stats.conns.reset(o.warmup),
                    Node::LoadBalancer(l) => l.reset_window(o.warmup),
                    Node::Geo(g) => g.reset_window(o.warmup),
                    _ => {}
                }
            }
        }
        crate::compute::reset_window(&mut self.sim.shared_mut().compute, o.warmup);
        self.window_open = true;
    }

    /// Runs the world up to time `t` without ending the run, so its components can be
    /// inspected with [`World::node`]; [`World::run`] then carries on from there.
    pub fn advance(&mut self, t: SimTime) {
        self.sim.run_until(t);
    }

    /// Events waiting in the queue, and of them the cancelled ones not yet skipped: what
    /// the run's timers hold (tests check it stays O(requests in flight)).
    pub fn queued_events(&self) -> (usize, usize) {
        self.sim.queued()
    }

    /// The component or instance called `name` (`"lb"`, `"app.2"`, `"users"`); a name
    /// that stands for several instances (a service) gives `None`.
    pub fn node(&self, name: &str) -> Option<&Node> {
        match self.ids.get(name)?.as_slice() {
            [id] => self.sim.actors().get(*id as usize),
            _ => None,
        }
    }

    /// The run's trace, each actor named by its canonical name (`app.2`, `db.primary`,
    /// `cache@app.0`): the one it got at the build.
    pub(super) fn trace_report(&self) -> crate::trace::RunTrace {
        let actors = self.sim.actors();
        self.sim.shared().trace.report(|id| {
            let kind = match actors.get(id as usize) {
                Some(Node::Client(_)) => "client",
                Some(Node::Instance(_)) => "service",
                Some(Node::Db(_)) => "database",
                Some(Node::Cache(c))
                    if self
                        .model
                        .caches
                        .get(c.index)
                        .is_some_and(|k| k.tier == Tier::Cdn) =>
                {
                    "cdn"
                }
                Some(Node::Cache(_)) => "cache",
                Some(Node::LoadBalancer(_)) => "load_balancer",
                Some(Node::JobQueue(_)) => "queue",
                _ => "other",
            };
            let name = self
                .names
                .get(id as usize)
                .map_or_else(|| format!("actor {id}"), String::clone);
            (name, kind)
        })
    }

    pub(super) fn component_rows(&self) -> Vec<ComponentRow> {
        let now = self.sim.now();
        let mut rows = Vec::new();
        for (si, s) in self.model.services.iter().enumerate() {
            let mut requests = 0;
            let mut busy = 0.0;
            let mut queued = 0.0;
            let mut hist = dssim_engine::Histogram::new();
            let mut workers = 0.0;
            for a in self.sim.actors() {
                if let Node::Instance(i) = a {
                    if i.service == si {
                        requests += i.stats.requests;
                        busy += i.stats.busy.mean(now);
                        queued += i.stats.queued.mean(now);
                        hist.merge(&i.stats.sojourn);
                        workers += f64::from(i.workers());
                    }
                }
            }
            let state = &self.sim.shared().compute.services[si];
            if state.changed {
                // Timed changes: the workers of the running instances, averaged.
                workers = state.workers_tw.mean(now);
            }
            rows.push(ComponentRow {
                component: s.name.clone(),
                kind: "service",
                requests,
                utilization: (workers > 0.0).then(|| busy / workers),
                mean_queue: Some(queued),
                p99_ms: hist.quantile_ms(0.99),
                mean_ms: hist.mean_ms(),
                hit_ratio: None,
            });
            // Then one row per instance (`app.0`, `app.1`, ...), in index order: the
            // instances it starts with, and any other that served in the window.
            let mut instances: Vec<&crate::service::Instance> = self
                .sim
                .actors()
                .iter()
                .filter_map(|a| match a {
                    Node::Instance(i) if i.service == si => Some(i),
                    _ => None,
                })
                .filter(|i| i.index < s.instances || i.stats.requests > 0)
                .collect();
            instances.sort_by_key(|i| i.index);
            for i in instances {
                let workers = i.mean_workers(now);
                rows.push(ComponentRow {
                    component: format!("{}.{}", s.name, i.index),
                    kind: "instance",
                    requests: i.stats.requests,
                    utilization: (workers > 0.0).then(|| i.stats.busy.mean(now) / workers),
                    mean_queue: Some(i.stats.queued.mean(now)),
                    p99_ms: i.stats.sojourn.quantile_ms(0.99),
                    mean_ms: i.stats.sojourn.mean_ms(),
                    hit_ratio: None,
                });
            }
            if let (Some(d), Some(cfg)) = (&state.deploy, &s.deploy) {
                rows.push(ComponentRow {
                    component: format!("{}.deploy", s.name),
                    kind: "deploy",
                    requests: u64::from(d.redeployed),
                    utilization: None,
                    mean_queue: None,
                    p99_ms: None,
                    mean_ms: d.done.map(|t| (t - cfg.at.0).as_secs_f64() * 1e3),
                    hit_ratio: None,
                });
            }
            if let Some(f) = &state.feature {
                rows.push(ComponentRow {
                    component: format!("{}.feature", s.name),
                    kind: "feature_flag",
                    requests: f.wanted,
                    utilization: Some(f.off.mean(now)),
                    mean_queue: None,
                    p99_ms: None,
                    mean_ms: None,
                    hit_ratio: (f.wanted > 0).then(|| f.served as f64 / f.wanted as f64),
                });
            }
        }
        for a in self.sim.actors() {
            if let Node::Db(d) = a {
                let cfg = &self.model.databases[d.db];
                rows.push(d.component_row(cfg.node_name(d.shard as u32, d.node as u32), now));
            }
        }
        self.cache_rows(&mut rows);
        for l in &self.model.load_balancers {
            if let Some(Node::LoadBalancer(lb)) = self.node(&l.name) {
                rows.push(ComponentRow {
                    component: l.name.clone(),
                    kind: "load_balancer",
                    requests: lb.stats.requests,
                    utilization: None,
                    mean_queue: None,
                    p99_ms: lb.stats.sojourn.quantile_ms(0.99),
                    mean_ms: lb.stats.sojourn.mean_ms(),
                    hit_ratio: None,
                });
                if lb.ejects_outliers() {
                    rows.push(ComponentRow {
                        component: format!("{}.ejection", l.name),
                        kind: "outlier_ejection",
                        requests: lb.stats.ejected,
                        utilization: Some(lb.ejected_share(now)),
                        mean_queue: None,
                        p99_ms: None,
                        mean_ms: None,
                        hit_ratio: None,
                    });
                    rows.push(ComponentRow {
                        component: format!("{}.false_ejection", l.name),
                        kind: "false_ejection",
                        requests: lb.stats.false_ejections,
                        utilization: None,
                        mean_queue: None,
                        p99_ms: None,
                        mean_ms: None,
                        hit_ratio: None,
                    });
                }
            }
        }
        self.call_rows(&mut rows);
        self.geo_rows(&mut rows);
        self.shard_query_rows(&mut rows);
        rows
    }

    /// Per geo router its row, a row per entry and a row per client behind it
    /// ([`crate::geo`]).
    pub(super) fn geo_rows(&self, rows: &mut Vec<ComponentRow>) {
        let now = self.sim.now();
        let row = |component: String, kind: &'static str, requests: u64| ComponentRow {
            component,
            kind,
            requests,
            utilization: None,
            mean_queue: None,
            p99_ms: None,
            mean_ms: None,
            hit_ratio: None,
        };
        for (gi, g) in self.model.geo_routers.iter().enumerate() {
            let behind: Vec<(&str, &crate::geo::GeoRoute)> = self
                .model
                .clients
                .iter()
                .zip(&self.clients)
                .filter_map(|(c, &id)| match self.sim.actors().get(id as usize) {
                    Some(Node::Client(cl)) => cl
                        .geo
                        .as_ref()
                        .filter(|r| r.router == gi)
                        .map(|r| (c.name.as_str(), r)),
                    _ => None,
                })
                .collect();
            let routed: u64 = behind
                .iter()
                .map(|(_, r)| r.stats.routed.iter().sum::<u64>())
                .sum();
            let nearest: u64 = behind.iter().map(|(_, r)| r.stats.nearest).sum();
            let mut top = row(g.name.clone(), "geo_router", routed);
            top.hit_ratio = (routed > 0).then(|| nearest as f64 / routed as f64);
            rows.push(top);
            let router = match self.node(&g.name) {
                Some(Node::Geo(r)) => Some(r),
                _ => None,
            };
            for (e, name) in g.entries.iter().enumerate() {
                let n: u64 = behind
                    .iter()
                    .map(|(_, r)| r.stats.routed.get(e).copied().unwrap_or(0))
                    .sum();
                let mut r = row(format!("{}.{name}", g.name), "geo_entry", n);
                r.utilization = router.and_then(|x| x.down.get(e)).map(|d| d.mean(now));
                rows.push(r);
            }
            for (client, r) in behind {
                let st = &r.stats;
                let mut c = row(format!("{}.{client}", g.name), "geo_client", st.requests);
                c.p99_ms = st.latency.quantile_ms(0.99);
                c.mean_ms = st.latency.mean_ms();
                c.hit_ratio = (st.requests > 0).then(|| st.ok as f64 / st.requests as f64);
                rows.push(c);
            }
        }
    }

    /// Per database with a shard key, shards in regions or cross-shard queries: a
    /// `DB.single_shard` row (queries answered by one shard, measured at the instances:
    /// count, mean and p99, `hit_ratio` = the share served in the instance's own region)
    /// and a `DB.cross_shard` row (queries that touched several shards: count, mean and
    /// p99 of the slowest answer, `mean_queue` = shards per query).
    pub(super) fn shard_query_rows(&self, rows: &mut Vec<ComponentRow>) {
        for (di, d) in self.model.databases.iter().enumerate() {
            let mut observed = false;
            let mut st = crate::service::shards::ShardQueryStats::default();
            for a in self.sim.actors() {
                let Node::Instance(i) = a else { continue };
                let data = i.data();
                let reads_db = data.db.as_ref().is_some_and(|r| r.db == di && r.observed());
                if !reads_db || data.entry.is_some() {
                    continue;
                }
                observed = true;
                let s = i.shard_stats();
                st.single += s.single;
                st.single_remote += s.single_remote;
                st.single_latency.merge(&s.single_latency);
                st.cross += s.cross;
                st.cross_parts += s.cross_parts;
                st.cross_latency.merge(&s.cross_latency);
            }
            if !observed {
                continue;
            }
            rows.push(ComponentRow {
                component: format!("{}.single_shard", d.name),
                kind: "shard_query",
                requests: st.single,
                utilization: None,
                mean_queue: None,
                p99_ms: st.single_latency.quantile_ms(0.99),
                mean_ms: st.single_latency.mean_ms(),
                hit_ratio: (st.single > 0)
                    .then(|| 1.0 - st.single_remote as f64 / st.single as f64),
            });
            rows.push(ComponentRow {
                component: format!("{}.cross_shard", d.name),
                kind: "shard_query",
                requests: st.cross,
                utilization: None,
                mean_queue: (st.cross > 0).then(|| st.cross_parts as f64 / st.cross as f64),
                p99_ms: st.cross_latency.quantile_ms(0.99),
                mean_ms: st.cross_latency.mean_ms(),
                hit_ratio: None,
            });
        }
    }

    /// Per service with `calls`, a `SERVICE.calls.TO` row per entry (summed over its
    /// instances) and its counts; per circuit breaker its row and counts
    /// ([`crate::calls`], [`crate::circuit_breaker`]).
    pub(super) fn call_rows(&self, rows: &mut Vec<ComponentRow>) {
        let now = self.sim.now();
        let count = |rows: &mut Vec<ComponentRow>, name: String, kind: &'static str, n: u64| {
            rows.push(ComponentRow {
                component: name,
                kind,
                requests: n,
                utilization: None,
                mean_queue: None,
                p99_ms: None,
                mean_ms: None,
                hit_ratio: None,
            });
        };
        for (si, s) in self.model.services.iter().enumerate() {
            for (e, c) in s.calls.iter().enumerate() {
                let (mut calls, mut ok, mut failed, mut timeouts, mut refused) = (0, 0, 0, 0, 0);
                let mut in_flight = 0.0;
                let mut slots = 0.0;
                let mut hist = dssim_engine::Histogram::new();
                for a in self.sim.actors() {
                    let Node::Instance(i) = a else { continue };
                    let Some(en) = i.calls().entries.get(e).filter(|_| i.service == si) else {
                        continue;
                    };
                    let st = &en.stats;
                    calls += st.calls;
                    ok += st.ok;
                    failed += st.failed;
                    timeouts += st.timeouts;
                    refused += st.refused;
                    in_flight += st.in_flight.mean(now);
                    if i.index < s.instances || st.calls > 0 {
                        slots += f64::from(en.pool.unwrap_or(0));
                    }
                    hist.merge(&st.latency);
                }
                let name = format!("{}.calls.{}", s.name, c.to);
                rows.push(ComponentRow {
                    component: name.clone(),
                    kind: "call",
                    requests: calls,
                    utilization: (slots > 0.0).then(|| in_flight / slots),
                    mean_queue: Some(in_flight),
                    p99_ms: hist.quantile_ms(0.99),
                    mean_ms: hist.mean_ms(),
                    hit_ratio: (calls > 0).then(|| ok as f64 / calls as f64),
                });
                count(rows, format!("{name}.failed"), "call_failed", failed);
                count(rows, format!("{name}.timeouts"), "call_timeouts", timeouts);
                count(rows, format!("{name}.refused"), "call_refused", refused);
            }
        }
        for b in &self.model.circuit_breakers {
            let Some(Node::Breaker(cb)) = self.node(&b.name) else {
                continue;
            };
            let st = &cb.stats;
            rows.push(ComponentRow {
                component: b.name.clone(),
                kind: "circuit_breaker",
                requests: st.requests,
                utilization: Some(st.open.mean(now)),
                mean_queue: None,
                p99_ms: st.latency.quantile_ms(0.99),
                mean_ms: st.latency.mean_ms(),
                hit_ratio: (st.requests > 0).then(|| st.passed as f64 / st.requests as f64),
            });
            for (what, kind, n) in [
                ("rejected", "breaker_rejected", st.rejected),
                ("failures", "breaker_failures", st.failures),
                ("timeouts", "breaker_timeouts", st.timeouts),
                ("trips", "breaker_trips", cb.trips()),
            ] {
                count(rows, format!("{}.{what}", b.name), kind, n);
            }
        }
    }

    /// One row per `[[caches]]` entry (its nodes summed), a `<edge>.origin` row per CDN
    /// (origin calls; `hit_ratio` = origin offload), a `<client>.browser` row per client
    /// with a browser cache.
    pub(super) fn cache_rows(&self, rows: &mut Vec<ComponentRow>) {
        let window = (self.opts.duration - self.opts.warmup).as_secs_f64();
        for (ci, c) in self.model.caches.iter().enumerate() {
            let mut st = CacheStats::default();
            let mut nodes = 0u32;
            for a in self.sim.actors() {
                if let Node::Cache(k) = a {
                    if k.index == ci {
                        st.absorb(&k.stats);
                        nodes += 1;
                    }
                }
            }
            let ratio = |a: u64, b: u64| (b > 0).then(|| a as f64 / b as f64);
            rows.push(ComponentRow {
                component: c.name.clone(),
                kind: match c.tier {
                    Tier::App => "cache",
                    Tier::Cdn => "cdn",
                },
                requests: st.requests,
                utilization: (c.max_ops.is_some() && window > 0.0 && nodes > 0)
                    .then(|| st.busy_ns as f64 / 1e9 / (window * f64::from(nodes))),
                mean_queue: None,
                p99_ms: st.sojourn.quantile_ms(0.99),
                mean_ms: st.sojourn.mean_ms(),
                hit_ratio: ratio(st.hits, st.lookups),
            });
            if c.tier == Tier::Cdn {
                let origin = st.backend_reads + st.passed;
                rows.push(ComponentRow {
                    component: format!("{}.origin", c.name),
                    kind: "cdn_origin",
                    requests: origin,
                    utilization: None,
                    mean_queue: None,
                    p99_ms: None,
                    mean_ms: None,
                    hit_ratio: ratio(st.requests.saturating_sub(origin), st.requests),
                });
            }
        }
        for (c, &id) in self.model.clients.iter().zip(&self.clients) {
            if let Some(Node::Client(cl)) = self.sim.actors().get(id as usize) {
                if let Some(b) = &cl.browser {
                    rows.push(ComponentRow {
                        component: format!("{}.browser", c.name),
                        kind: "browser_cache",
                        requests: b.lookups,
                        utilization: None,
                        mean_queue: None,
                        p99_ms: None,
                        mean_ms: None,
                        hit_ratio: (b.lookups > 0).then(|| b.hits as f64 / b.lookups as f64),
                    });
                }
            }
        }
    }
}

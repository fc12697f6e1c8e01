//! The cache tier: CDN edges and app caches (hit ratios, what passes to the origin), and
//! their times.

use super::*;

impl<'a> FlowModel<'a> {
    /// A CDN edge: cacheable reads are looked up; misses, other reads and writes go to
    /// the origin.
    pub(super) fn edge(&self, ci: usize, sum: &Load) -> (Load, CacheFigures) {
        let g = &self.grid;
        let c = &self.m.caches[ci];
        let (yes, no) = sum.split(g, c.cacheable.unwrap_or(1.0).clamp(0.0, 1.0));
        let groups = yes.groups(g);
        let fill = self.unloaded(Node::Cache(ci), true, 0)
            - c.latency.as_ref().map_or(0.0, |d| secs(d.0.mean()));
        let params = Params {
            capacity: c.capacity.map(|x| x as f64),
            policy: policy(c.eviction),
            ttl: c.ttl.map(|d| secs(d.0 .0 as f64)),
            writes: Writes::Ignore,
            fill: fill.max(0.0),
            coalesce: c.stampede != Stampede::None,
            window: if c.warm.is_some() { None } else { self.window },
        };
        let out = hit::solve(&groups, &params);
        let gaps = hit::miss_gaps(&groups, &params);
        let lookups: f64 = groups.iter().map(|x| x.n * x.read).sum();
        let hits: f64 = groups
            .iter()
            .zip(&out)
            .map(|(x, o)| x.n * x.read * o.hit)
            .sum();
        let mut to_origin = yes.map_indexed(|k, p| crate::estimate::keys::Piece {
            read: p.read * out.get(k).map_or(1.0, |o| o.backend),
            gap: gaps.get(k).copied().unwrap_or(0.0),
            ..p
        });
        to_origin.add(&no);
        let (r, w) = sum.totals(g);
        let origin_calls = total(g, &to_origin);
        (
            to_origin,
            CacheFigures {
                requests: r + w,
                lookups,
                hits,
                reads: r,
                writes: w,
                origin_calls,
                nodes: 1.0,
                ..CacheFigures::default()
            },
        )
    }

    /// An app cache: reads looked up, misses and writes sent on by the write policy; a
    /// local cache is one per instance of each service that uses it.
    pub(super) fn app_cache(
        &self,
        ci: usize,
        parts: &[(Option<usize>, Load)],
    ) -> (Vec<(Node, Load)>, CacheFigures) {
        let g = &self.grid;
        let c = &self.m.caches[ci];
        // Per cache node: (the service whose instances it serves, instances, its load).
        let mut nodes: Vec<(usize, f64, Load)> = Vec::new();
        if c.local {
            for (from, l) in parts {
                let Some(si) = *from else { continue };
                let inst = f64::from(self.m.services[si].instances.max(1));
                nodes.push((si, inst, l.scaled(1.0 / inst)));
            }
        } else {
            let mut sum = Load::zero(g);
            let mut first = None;
            for (from, l) in parts {
                sum.add(l);
                first = first.or(*from);
            }
            if let Some(si) = first.or_else(|| self.cache_users(ci).first().copied()) {
                nodes.push((si, 1.0, sum));
            }
        }
        let mut stats = CacheFigures::default();
        let mut outs = Vec::new();
        for (si, copies, load) in nodes {
            let backend = self.cache_backend(ci, si);
            let fill = match backend {
                Some(b) => {
                    let from = if c.local {
                        &self.m.services[si].region
                    } else {
                        &c.region
                    };
                    2.0 * self.lat(from, &self.region_of(b)) + self.unloaded(b, true, 0)
                }
                None => 0.0,
            };
            let groups = load.groups(g);
            let params = Params {
                capacity: c.capacity.map(|x| x as f64),
                policy: policy(c.eviction),
                ttl: c.ttl.map(|d| secs(d.0 .0 as f64)),
                writes: writes_effect(c),
                fill,
                coalesce: c.stampede != Stampede::None,
                window: if c.warm.is_some() { None } else { self.window },
            };
            let out = hit::solve(&groups, &params);
            let gaps = hit::miss_gaps(&groups, &params);
            let flush = c
                .flush_interval
                .map_or(1.0, |d| secs(d.0 .0 as f64))
                .max(1e-9);
            let sent = load.map_indexed(|k, p| crate::estimate::keys::Piece {
                read: p.read * out.get(k).map_or(1.0, |o| o.backend),
                gap: gaps.get(k).copied().unwrap_or(0.0),
                write: if c.write_policy == WritePolicy::WriteBehind {
                    // Writes to a key within one flush interval coalesce into one.
                    -(-p.write * flush).exp_m1() / flush
                } else {
                    p.write
                },
                ..p
            });
            let (r, w) = load.totals(g);
            stats.requests += copies * (r + w);
            stats.reads += copies * r;
            stats.writes += copies * w;
            stats.lookups += copies * r;
            stats.hits += copies
                * groups
                    .iter()
                    .zip(&out)
                    .map(|(x, o)| x.n * x.read * o.hit)
                    .sum::<f64>();
            let sent = sent.scaled(copies);
            stats.origin_calls += total(g, &sent);
            stats.nodes += copies;
            if let Some(b) = backend {
                outs.push((b, sent));
            }
        }
        (outs, stats)
    }

    pub(super) fn cache_times(
        &self,
        ci: usize,
        st: &mut CacheFigures,
        time: &BTreeMap<Node, f64>,
        db_nodes: &BTreeMap<usize, Vec<DbNodeFigures>>,
    ) -> (ComponentEstimate, f64) {
        let c = &self.m.caches[ci];
        let lat = c.latency.as_ref().map_or(0.0, |d| secs(d.0.mean()));
        // With max_ops each node is a FIFO server of 1/max_ops per operation (M/D/1).
        let per_node = if st.nodes > 0.0 {
            st.requests / st.nodes
        } else {
            0.0
        };
        let (op, util, sat) = match c.max_ops.filter(|x| *x > 0.0 && x.is_finite()) {
            Some(mo) => {
                let rho = per_node / mo;
                let wait = if rho < 1.0 {
                    rho / (2.0 * mo * (1.0 - rho))
                } else {
                    f64::INFINITY
                };
                (wait + 1.0 / mo, Some(rho), mo * st.nodes.max(1.0))
            }
            None => (0.0, None, f64::INFINITY),
        };
        let miss = if st.lookups > 0.0 {
            1.0 - st.hits / st.lookups
        } else {
            0.0
        };
        let (read_s, write_s, t);
        if c.tier == Tier::Cdn {
            let origin = self.origin_of(ci);
            let call = 2.0 * c.origin_latency.as_ref().map_or(0.0, |d| secs(d.0.mean()))
                + origin.map_or(0.0, |o| {
                    self.backend_time(o, &c.region, true, time, db_nodes)
                });
            let share = if st.requests > 0.0 {
                st.origin_calls / st.requests
            } else {
                0.0
            };
            read_s = lat + op + part(miss, call);
            write_s = lat + op + call;
            t = lat + op + part(share, call);
        } else {
            let users = self.cache_users(ci);
            let si = users.first().copied();
            let backend = si.and_then(|s| self.cache_backend(ci, s));
            let from = if c.local {
                si.and_then(|s| self.m.services[s].region.clone())
            } else {
                c.region.clone()
            };
            let br = backend.map_or(0.0, |b| self.backend_time(b, &from, true, time, db_nodes));
            let bw = backend.map_or(0.0, |b| self.backend_time(b, &from, false, time, db_nodes));
            read_s = lat + op + part(miss, br);
            write_s = lat
                + op
                + if c.write_policy == WritePolicy::WriteBehind {
                    0.0
                } else {
                    bw
                };
            let n = st.reads + st.writes;
            t = if n > 0.0 {
                (part(st.reads, read_s) + part(st.writes, write_s)) / n
            } else {
                lat + op
            };
        }
        st.read_s = read_s;
        st.write_s = write_s;
        st.time_s = t;
        let mut method = match c.eviction {
            _ if c.capacity.is_none() => "unbounded: TTL and writes only",
            Eviction::Lru => "Che's approximation (LRU)",
            Eviction::Fifo | Eviction::Random => "pT/(1+pT) (FIFO, random; Che's T)",
            Eviction::Lfu => "the C most popular keys (LFU)",
        }
        .to_string();
        if util.is_some() {
            method.push_str("; each node M/D/1 at max_ops");
        }
        let row = ComponentEstimate {
            component: c.name.clone(),
            kind: if c.tier == Tier::Cdn { "cdn" } else { "cache" },
            offered_rps: st.requests,
            utilization: util.map(|u| u.min(1.0)),
            offered_load: util,
            method,
            sojourn_ms: Some(t * 1e3),
            saturation_rps: sat,
            hit_ratio: (st.lookups > 0.0).then(|| st.hits / st.lookups),
            ..ComponentEstimate::empty()
        };
        (row, t)
    }
}

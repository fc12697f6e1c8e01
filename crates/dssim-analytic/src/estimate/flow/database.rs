//! The database tier: each node as a load-dependent queue, replication lag, and the time of
//! a database call.

use super::*;

impl<'a> FlowModel<'a> {
    /// Database `di` fed `load`: per shard, writes to the primary and reads to the primary
    /// or replicas; each node solved as a load-dependent queue.
    /// Time per database request that the slots bounding database `di` (its callers'
    /// workers) spend outside it: their CPU and NIC time over the share of their requests
    /// that reach it. Callers bounded by a pool hold a connection only for the call.
    pub(super) fn outside_time(
        &self,
        di: usize,
        load: &Load,
        svc_load: &BTreeMap<usize, (f64, f64)>,
    ) -> f64 {
        let (mut weight, mut t, mut callers) = (0.0, 0.0, 0.0);
        for (si, s) in self.m.services.iter().enumerate() {
            if !self.reaches(si, di) {
                continue;
            }
            let w = f64::from(s.instances.max(1)) * f64::from(s.workers.max(1));
            let pooled = s.pool.is_some_and(|p| p.size < s.workers);
            weight += w;
            t += w * if pooled {
                0.0
            } else {
                self.cpu_s(si) + self.nic_s(si)
            };
            callers += svc_load.get(&si).map_or(0.0, |(r, w)| r + w);
        }
        let db = total(&self.grid, load);
        if weight <= 0.0 || db <= 0.0 || callers <= 0.0 {
            return 0.0;
        }
        (t / weight) * callers / db
    }

    /// Whether service `si`'s data calls end at database `di`.
    pub(super) fn reaches(&self, si: usize, di: usize) -> bool {
        self.reach[si] == Some(di)
    }

    pub(super) fn database(
        &self,
        di: usize,
        load: &Load,
        rates: &[f64],
        outside: f64,
        pin: bool,
    ) -> Vec<DbNodeFigures> {
        let g = &self.grid;
        let d = &self.m.databases[di];
        let sh = &self.shards[di];
        let replicas = d.replicas as usize;
        // Share of reads the primary serves.
        let to_primary = if replicas == 0 || d.consistency == Consistency::Cp {
            1.0
        } else {
            match d.read_from {
                ReadFrom::Primary => 1.0,
                ReadFrom::Replicas => 0.0,
                ReadFrom::ReadYourWrites(w) => self.wrote_recently(secs(w.0 as f64), rates),
            }
        };
        let splits: Vec<Split> = g.cells.iter().map(|&(lo, hi)| sh.split(lo, hi)).collect();
        // Per shard totals: keys placed exactly, plus the spread cells by share.
        let mut reads = vec![0.0; sh.n];
        let mut writes = vec![0.0; sh.n];
        let (mut spread_r, mut spread_w) = (0.0, 0.0);
        for (ci, pieces) in load.cells.iter().enumerate() {
            let (lo, hi) = g.cells[ci];
            let (mut r, mut w) = (0.0, 0.0);
            for (n, p) in piece_sizes(pieces, (hi - lo) as f64) {
                r += n * p.read;
                w += n * p.write;
            }
            match &splits[ci] {
                Split::One(s) => {
                    reads[*s] += r;
                    writes[*s] += w;
                }
                Split::Few(v) => {
                    for &(s, f) in v {
                        reads[s] += r * f;
                        writes[s] += w * f;
                    }
                }
                Split::Spread => {
                    spread_r += r;
                    spread_w += w;
                }
            }
        }
        for s in 0..sh.n {
            reads[s] += spread_r * sh.shares[s];
            writes[s] += spread_w * sh.shares[s];
        }
        // A shard key other than the key moves whole tenants or regions: the load splits
        // by their shares; cross-shard reads put one query on each shard they ask.
        if let Some(split) = shard_key_split(self.m, d) {
            let (r, w): (f64, f64) = (reads.iter().sum(), writes.iter().sum());
            for s in 0..sh.n {
                reads[s] = r * split[s];
                writes[s] = w * split[s];
            }
        }
        if let Some(c) = d.cross_shard.filter(|c| c.share > 0.0 && sh.n > 1) {
            let r: f64 = reads.iter().sum();
            let k = f64::from(c.shards.unwrap_or(d.shards).clamp(2, d.shards));
            for x in reads.iter_mut() {
                *x = *x * (1.0 - c.share) + r * c.share * k / sh.n as f64;
            }
        }
        // Buffer-pool hit ratios need each node's keys; with many shards only the hottest
        // shard is worked out key by key and stands for the others.
        let hottest = (0..sh.n)
            .max_by(|&a, &b| {
                (reads[a] + writes[a])
                    .total_cmp(&(reads[b] + writes[b]))
                    .then(b.cmp(&a))
            })
            .unwrap_or(0);
        let groups_of = |s: usize, read_f: f64, write_f: f64| -> Vec<Group> {
            let mut v = Vec::new();
            for (ci, pieces) in load.cells.iter().enumerate() {
                let (lo, hi) = g.cells[ci];
                let f = sh.fraction(&splits[ci], s);
                for (n, p) in piece_sizes(pieces, (hi - lo) as f64 * f) {
                    if n > 0.0 {
                        // The pool is an LRU over every key the node touches.
                        let write = p.write * write_f;
                        v.push(Group {
                            n,
                            read: p.read * read_f + write,
                            write: 0.0,
                            // Writes reach the node independently of the filtered reads.
                            gap: if write > 0.0 { 0.0 } else { p.gap },
                        });
                    }
                }
            }
            v
        };
        let pool_hit = |s: usize, read_f: f64, write_f: f64| -> Option<f64> {
            let bp = d.buffer_pool.as_ref()?;
            let groups = groups_of(s, read_f, write_f);
            let out = hit::solve(
                &groups,
                &Params {
                    capacity: Some(bp.pages as f64),
                    policy: Policy::Lru,
                    ttl: None,
                    writes: Writes::Ignore,
                    fill: 0.0,
                    coalesce: false,
                    window: self.window,
                },
            );
            hit::ratio(&groups, &out)
        };
        let each_shard = sh.n <= 64;
        let disk = d
            .buffer_pool
            .as_ref()
            .map_or(0.0, |b| secs(b.disk_read.0.mean()));
        let primary_read_time = secs(d.read_time.0.mean());
        let replica_read_time = d
            .replica_read_time
            .as_ref()
            .map_or(primary_read_time, |t| secs(t.0.mean()));
        let write_time = secs(d.write_time.0.mean());
        let repl = self.replication_wait(di);
        let usl = d.contention.map(|c| (c.sigma, c.kappa));
        let cap = match (d.max_connections, self.upstream[di]) {
            (Some(mc), Some(up)) if u64::from(mc) <= up => Some((u64::from(mc), true)),
            (_, Some(up)) => Some((up.max(1), false)),
            (Some(mc), None) => Some((u64::from(mc), true)),
            (None, None) => None,
        };
        let mut out = Vec::new();
        let mut hits_cache: BTreeMap<(usize, usize), Option<f64>> = BTreeMap::new();
        for s in 0..sh.n {
            for node in 0..=replicas {
                let (r, w, read_f, write_f) = if node == 0 {
                    (reads[s] * to_primary, writes[s], to_primary, 1.0)
                } else {
                    let f = (1.0 - to_primary) / replicas as f64;
                    (reads[s] * f, 0.0, f, 0.0)
                };
                let read_time = if node == 0 {
                    primary_read_time
                } else {
                    replica_read_time
                };
                let role = usize::from(node > 0);
                let shard_key = if each_shard { s } else { hottest };
                let ph = *hits_cache
                    .entry((shard_key, role))
                    .or_insert_with(|| pool_hit(shard_key, read_f, write_f));
                let lambda = r + w;
                // An IOPS limit: the misses queue for the disk, which serves one every
                // 1/iops seconds in FIFO order (M/D/1 for Poisson misses), then take their
                // `disk_read`.
                let iops = d.buffer_pool.as_ref().and_then(|b| b.iops);
                let (miss_disk, disk_sat) = match (ph, iops) {
                    (Some(h), Some(iops)) if iops > 0.0 => {
                        let miss = (1.0 - h).clamp(0.0, 1.0);
                        let slot = 1.0 / iops;
                        let rho = lambda * miss * slot;
                        let t = if rho < 1.0 {
                            slot + rho * slot / (2.0 * (1.0 - rho))
                        } else {
                            f64::INFINITY
                        };
                        (
                            part(miss, disk + t),
                            if miss > 0.0 {
                                iops / miss
                            } else {
                                f64::INFINITY
                            },
                        )
                    }
                    (h, _) => (h.map_or(0.0, |h| (1.0 - h) * disk), f64::INFINITY),
                };
                // Group commit: a primary's writes go to its log device in groups, apart
                // from the cores; the node's queue model then carries the reads only.
                let batched = match &d.batch {
                    Some(b) if node == 0 && w > 0.0 => {
                        Some(group_commit_s(b, write_time, d.write_time.0.scv(), w))
                    }
                    _ => None,
                };
                let (lam_m, w_m) = if batched.is_some() {
                    (r, 0.0)
                } else {
                    (lambda, w)
                };
                let (base, fixed) = if lam_m > 0.0 {
                    (
                        (r * read_time + w_m * write_time) / lam_m,
                        miss_disk + w_m / lam_m * repl,
                    )
                } else {
                    (read_time, miss_disk)
                };
                let model = LoadDependent {
                    base_s: base,
                    fixed_s: fixed,
                    usl,
                    cap,
                    outside_s: outside,
                    cores: d.cores.map(u64::from),
                };
                let sat = model.saturation().min(disk_sat);
                let sol = if !miss_disk.is_finite() {
                    None // the disk does not keep up
                } else if pin && lam_m >= sat * (1.0 - 1e-4) {
                    model.pinned().or_else(|| model.solve(lam_m))
                } else {
                    model.solve(lam_m)
                };
                // The queue the node's reads see (with group commit, reads only).
                let read_sol = sol;
                // With group commit: the node's figures over reads and writes together.
                let (sol, sat) = match batched {
                    None => (sol, sat),
                    Some(tb) => {
                        let b = d.batch.as_ref().map_or(1, |b| b.size.max(1));
                        let write_cap = f64::from(b) / write_time.max(1e-12);
                        let mut total_sat = write_cap * lambda / w;
                        if r > 0.0 {
                            total_sat = total_sat.min(sat * lambda / r);
                        }
                        let sol = match (sol, tb) {
                            (Some(mut x), Some(tb)) => {
                                x.carried += w;
                                x.inside += w * tb;
                                x.sojourn_s = (r * x.sojourn_s + w * tb) / lambda;
                                x.wait_s = (r * x.wait_s + w * (tb - write_time)) / lambda;
                                Some(x)
                            }
                            _ => None,
                        };
                        (sol, total_sat)
                    }
                };
                let name = d.node_name(s as u32, node as u32);
                let region = if node > 0 && d.replica_region.is_some() {
                    d.replica_region.clone()
                } else {
                    d.region.clone()
                };
                let servers = d.max_connections.map(u64::from).or(cap.map(|c| c.0));
                let est = match sol {
                    Some(x) => ComponentEstimate {
                        component: name.clone(),
                        kind: "database",
                        offered_rps: lambda,
                        servers,
                        utilization: d.max_connections.map(|mc| x.inside / f64::from(mc.max(1))),
                        mean_queue: Some(x.inside),
                        wait_ms: Some(x.wait_s * 1e3),
                        sojourn_ms: Some(x.sojourn_s * 1e3),
                        saturation_rps: sat,
                        hit_ratio: ph,
                        refused: (x.refused > 0.0).then_some(x.refused),
                        offered_load: d
                            .max_connections
                            .map(|mc| lambda * x.sojourn_s / f64::from(mc.max(1))),
                        method: db_method(d, ph.is_some()),
                    },
                    None => ComponentEstimate {
                        component: name.clone(),
                        kind: "database",
                        offered_rps: lambda,
                        servers,
                        utilization: d.max_connections.map(|_| 1.0),
                        mean_queue: None,
                        wait_ms: None,
                        sojourn_ms: None,
                        saturation_rps: sat,
                        hit_ratio: ph,
                        refused: None,
                        offered_load: d.max_connections.map(|mc| {
                            lambda * (base * model.factor_at(mc) + fixed) / f64::from(mc.max(1))
                        }),
                        method: db_method(d, ph.is_some()),
                    },
                };
                let stretch = read_sol.map_or(f64::INFINITY, |x| x.stretch);
                let core_wait = read_sol.map_or(0.0, |x| x.wait_s);
                out.push(DbNodeFigures {
                    region,
                    callers_limit: model.callers_limit(),
                    reads: r,
                    writes: w,
                    read_s: core_wait + stretch * read_time + miss_disk,
                    write_s: match batched {
                        Some(tb) => tb.unwrap_or(f64::INFINITY) + repl,
                        None => core_wait + stretch * write_time + miss_disk + repl,
                    },
                    est,
                });
            }
        }
        out
    }

    /// Under `read_your_writes(w)`: the share of reads by a user who wrote within `w`.
    pub(super) fn wrote_recently(&self, w: f64, rates: &[f64]) -> f64 {
        let (mut reads, mut primary) = (0.0, 0.0);
        for (i, c) in self.m.clients.iter().enumerate() {
            let rate = rates.get(i).copied().unwrap_or(0.0);
            let users = c
                .user_ids
                .or(c.users.filter(|u| *u > 0))
                .unwrap_or(1)
                .max(1) as f64;
            let r = c.read_ratio.clamp(0.0, 1.0);
            let per_user_writes = rate * (1.0 - r) / users;
            reads += rate * r;
            primary += rate * r * -(-per_user_writes * w).exp_m1();
        }
        if reads > 0.0 {
            (primary / reads).clamp(0.0, 1.0)
        } else {
            0.0
        }
    }

    /// Extra time a write holds its connection waiting for replicas (semi_sync: the first
    /// of them; sync: all), seconds.
    pub(super) fn replication_wait(&self, di: usize) -> f64 {
        let d = &self.m.databases[di];
        let r = d.replicas;
        if r == 0 || d.replication == Replication::Async {
            return 0.0;
        }
        let delay = d
            .replication_delay
            .as_ref()
            .map_or(0.0, |x| secs(x.0.mean()));
        let exp_like = d
            .replication_delay
            .as_ref()
            .is_some_and(|x| x.0.scv() > 0.5);
        let replica_region = d.replica_region.clone().or_else(|| d.region.clone());
        let rtt = 2.0 * self.lat(&d.region, &replica_region);
        let order = if !exp_like {
            delay
        } else if d.replication == Replication::SemiSync {
            delay / f64::from(r) // the first of r exponentials
        } else {
            delay * (1..=r).map(|k| 1.0 / f64::from(k)).sum::<f64>() // the last: H_r
        };
        order + rtt
    }

    /// The mean time of a read (`read`) or write at database `di` as seen from a caller
    /// in `from`, seconds: nodes weighted by the traffic they serve.
    pub(super) fn db_time(
        &self,
        di: usize,
        from: &Option<String>,
        read: bool,
        db_nodes: &BTreeMap<usize, Vec<DbNodeFigures>>,
    ) -> f64 {
        let Some(nodes) = db_nodes.get(&di) else {
            return self.unloaded(Node::Db(di), read, 0);
        };
        let (mut w, mut t) = (0.0, 0.0);
        for n in nodes {
            let x = if read { n.reads } else { n.writes };
            if x > 0.0 {
                w += x;
                t +=
                    x * (2.0 * self.lat(from, &n.region) + if read { n.read_s } else { n.write_s });
            }
        }
        if w > 0.0 {
            t / w
        } else {
            self.unloaded(Node::Db(di), read, 0)
        }
    }

    /// Time of a backend call from a cache in `from` to `b` (a read or a write), seconds.
    pub(super) fn backend_time(
        &self,
        b: Node,
        from: &Option<String>,
        read: bool,
        time: &BTreeMap<Node, f64>,
        db_nodes: &BTreeMap<usize, Vec<DbNodeFigures>>,
    ) -> f64 {
        match b {
            Node::Db(di) => self.db_time(di, from, read, db_nodes),
            other => {
                2.0 * self.lat(from, &self.region_of(other))
                    + time
                        .get(&other)
                        .copied()
                        .unwrap_or_else(|| self.unloaded(other, read, 0))
            }
        }
    }
}

/// How a database node is predicted.
fn db_method(d: &DatabaseConfig, pool: bool) -> String {
    let mut m = match (d.contention.is_some(), d.max_connections.is_some(), d.cores) {
        (false, false, None) => "M/G/∞ (or M/G/c behind its callers' slots)".to_string(),
        (false, true, None) => "Erlang B (M/G/c/c, refused past max_connections)".to_string(),
        (true, _, None) => "birth–death chain, USL rates (load-dependent)".to_string(),
        (false, false, Some(c)) => {
            format!("M/M/c birth–death chain, c = cores = {c} (queued upstream past its callers' slots)")
        }
        (false, true, Some(c)) => format!(
            "M/M/c/K birth–death chain, c = cores = {c}, K = max_connections (refused past K)"
        ),
        (true, _, Some(c)) => {
            format!("birth–death chain, USL rates over at most cores = {c} executing")
        }
    };
    let exp = |t: &dssim_components::units::DistSpec| (t.0.scv() - 1.0).abs() < 1e-6;
    if d.cores.is_some() && !(exp(&d.read_time) && exp(&d.write_time)) {
        m.push_str("; exponential times assumed");
    }
    if pool {
        m.push_str("; buffer pool: Che (LRU)");
        if let Some(iops) = d.buffer_pool.as_ref().and_then(|b| b.iops) {
            m.push_str(&format!(
                "; disk: M/D/1, one read per 1/iops = {:.3} ms (Poisson misses)",
                1e3 / iops
            ));
        }
    }
    if d.batch.is_some() {
        m.push_str(
            "; writes: group commit (a group fills or waits max_wait, then one flush; \
             M/G/1 for size 1; no queue for the log device past that, so low near size / \
             write_time)",
        );
    }
    m
}

/// Time a write spends in a primary with group commit `b` (flush time `s` seconds with
/// squared coefficient of variation `scv`, writes arriving at `lambda` per second),
/// seconds; `None` at or past the log device's capacity `size / s`.
///
/// Size 1 is one flush per write, an M/G/1 queue (Pollaczek–Khinchine). A larger group
/// opens with a write and goes when it is full or that write has waited W = `max_wait`:
/// below `size − 1` arrivals in W, the first write waits W and the λW others W/2 on
/// average, `W (1 + λW/2) / (1 + λW)`; past it, a full group forms in `(size − 1)/λ` and
/// its writes wait half of that.
pub(super) fn group_commit_s(
    b: &dssim_components::database::Batch,
    s: f64,
    scv: f64,
    lambda: f64,
) -> Option<f64> {
    let size = f64::from(b.size.max(1));
    if lambda * s >= size {
        return None;
    }
    if size <= 1.0 {
        let rho = lambda * s;
        return Some(s + lambda * s * s * (1.0 + scv) / (2.0 * (1.0 - rho)));
    }
    let w = secs(b.max_wait.0 .0 as f64);
    let x = lambda * w;
    let wait = if x < size - 1.0 {
        w * (1.0 + x / 2.0) / (1.0 + x)
    } else {
        (size - 1.0) / (2.0 * lambda)
    };
    Some(s + wait)
}

/// Each shard's share of a database's queries when `shard_by` is not the key: by the tenant
/// directory (tenants' sizes), or by region (the clients' rates by region, travellers
/// spread evenly over the other regions with shards, a region's share evenly over its
/// shards). `None` for the key.
pub(crate) fn shard_key_split(m: &ModelConfig, d: &DatabaseConfig) -> Option<Vec<f64>> {
    use dssim_components::database::{ShardBy, TenantDirectory};
    let n = d.shards.max(1) as usize;
    match d.shard_by {
        ShardBy::Key => None,
        ShardBy::Tenant => {
            let t = d.tenants?;
            Some(TenantDirectory::new(&t.shares(), d.shards).shard_shares(d.shards))
        }
        ShardBy::Region => {
            if d.shard_regions.len() != n {
                return None;
            }
            let mut regions: Vec<&str> = Vec::new();
            for r in &d.shard_regions {
                if !regions.contains(&r.as_str()) {
                    regions.push(r);
                }
            }
            let travel = d.travellers.unwrap_or(0.0);
            let mut home = vec![0.0; regions.len()];
            let total: f64 = m.clients.iter().map(|c| open_rate(c).unwrap_or(0.0)).sum();
            if total <= 0.0 {
                return None;
            }
            for c in &m.clients {
                let w = open_rate(c).unwrap_or(0.0) / total;
                let at = c
                    .region
                    .as_deref()
                    .and_then(|r| regions.iter().position(|x| *x == r));
                match at {
                    Some(h) if regions.len() > 1 => {
                        home[h] += w * (1.0 - travel);
                        let others = (regions.len() - 1) as f64;
                        for (i, x) in home.iter_mut().enumerate() {
                            if i != h {
                                *x += w * travel / others;
                            }
                        }
                    }
                    Some(h) => home[h] += w,
                    None => home.iter_mut().for_each(|x| *x += w / regions.len() as f64),
                }
            }
            let mut v = vec![0.0; n];
            for (i, r) in regions.iter().enumerate() {
                let mine: Vec<usize> = (0..n).filter(|&s| d.shard_regions[s] == *r).collect();
                for &s in &mine {
                    v[s] = home[i] / mine.len() as f64;
                }
            }
            Some(v)
        }
    }
}

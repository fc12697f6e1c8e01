//! The router: where a service's request to a database goes (shard, primary or replica).

use std::sync::Arc;

use dssim_engine::ActorId;
use rand::Rng as _;

use crate::node::Ctx;
use crate::request::{Op, ReqId};

use super::*;

/// Picks the database node (shard, then primary or replica) for a request. Callers
/// (service data paths, caches on a miss or a write) hold one and call [`DbRouter::route`].
#[derive(Clone, Debug)]
pub struct DbRouter {
    /// Index of the database in `Shared.dbs`.
    pub db: usize,
    map: Arc<ShardMap>,
    read_from: ReadFrom,
    consistency: Consistency,
    /// The tenant directory (`shard_by = "tenant"`).
    tenants: Option<Arc<TenantDirectory>>,
    /// The regions' shards (`shard_by = "region"`).
    geo: Option<Arc<GeoDirectory>>,
    /// Region (model index) of each shard; empty without `shard_regions`.
    pub shard_region: Arc<Vec<u16>>,
    /// Cross-shard queries: (share of reads, shards each touches).
    pub cross: Option<(f64, u32)>,
    /// Whether the replicas have a region of their own (`replica_region`): only then may
    /// two nodes that serve a shard's reads be at different distances from a caller.
    replica_region: bool,
}

impl DbRouter {
    /// A router for database `db` (index in `Shared.dbs`) over `keys` keys.
    pub fn new(db: usize, cfg: &DatabaseConfig, keys: u64) -> Self {
        DbRouter {
            db,
            map: Arc::new(ShardMap::new(cfg.sharding, cfg.shards, keys)),
            read_from: cfg.read_from,
            consistency: cfg.consistency,
            tenants: None,
            geo: None,
            shard_region: Arc::new(Vec::new()),
            cross: None,
            replica_region: cfg.replica_region.is_some(),
        }
    }

    /// A router that also knows the shard key (`shard_by`), where the shards are (`region`
    /// maps a region name to its model index) and the cross-shard queries.
    pub fn with_shard_key(
        db: usize,
        cfg: &DatabaseConfig,
        keys: u64,
        region: impl Fn(&str) -> u16,
    ) -> Self {
        let mut r = DbRouter::new(db, cfg, keys);
        let shard_region: Vec<u16> = cfg.shard_regions.iter().map(|n| region(n)).collect();
        match (cfg.shard_by, &cfg.tenants) {
            (ShardBy::Tenant, Some(t)) => {
                r.tenants = Some(Arc::new(TenantDirectory::new(&t.shares(), cfg.shards)));
            }
            (ShardBy::Region, _) if !shard_region.is_empty() => {
                r.geo = Some(Arc::new(GeoDirectory::new(
                    &shard_region,
                    cfg.travellers.unwrap_or(0.0),
                )));
            }
            _ => {}
        }
        r.shard_region = Arc::new(shard_region);
        r.cross = cfg
            .cross_shard
            .filter(|c| c.share > 0.0 && cfg.shards > 1)
            .map(|c| (c.share, c.shards.unwrap_or(cfg.shards).clamp(2, cfg.shards)));
        r
    }

    /// Whether queries through this router are measured one by one (`DB.single_shard`,
    /// `DB.cross_shard` rows): with a shard key other than the key, shards placed in
    /// regions, or cross-shard queries.
    pub fn observed(&self) -> bool {
        self.tenants.is_some()
            || self.geo.is_some()
            || self.cross.is_some()
            || !self.shard_region.is_empty()
    }

    /// The shard of `key` (by the key alone).
    #[inline]
    pub fn shard_of(&self, key: u64) -> usize {
        self.map.shard_of(key)
    }

    /// The shard of a request for `key` by `user`, sent by client actor `client`.
    #[inline]
    pub fn shard_for(&self, ctx: &Ctx<'_>, key: u64, user: u32, client: ActorId) -> usize {
        if let Some(t) = &self.tenants {
            return t.shard[t.tenant_of(user)] as usize;
        }
        if let Some(g) = &self.geo {
            let from = ctx.shared.dbs[self.db]
                .client_region
                .get(client as usize)
                .copied()
                .unwrap_or(0);
            return g.shard(g.home_of(user, from), key);
        }
        self.map.shard_of(key)
    }

    /// The node that should serve request `req`, as seen from the calling actor: the
    /// shard's primary for writes, the node `read_from` names for reads (among replicas,
    /// one of the nearest, at random). When that node
    /// is dead or cut off from the caller, another node the caller reaches (under `ap` it
    /// serves; under `cp` it refuses, an error rather than a hang).
    pub fn route(&self, ctx: &mut Ctx<'_>, req: ReqId) -> ActorId {
        self.route_to(ctx, req, None)
    }

    /// The shard request `req` belongs to (`None` when it is gone).
    pub fn shard_of_request(&self, ctx: &Ctx<'_>, req: ReqId) -> Option<usize> {
        let r = ctx.shared.reqs.get(req)?;
        let (key, user, client) = (r.key, r.user, r.client);
        Some(self.shard_for(ctx, key, user, client))
    }

    /// As [`DbRouter::route`], to shard `shard` when given (a cross-shard query's other
    /// shards) rather than the request's own.
    pub fn route_to(&self, ctx: &mut Ctx<'_>, req: ReqId, shard: Option<usize>) -> ActorId {
        let Some((key, op, user, client)) = ctx
            .shared
            .reqs
            .get(req)
            .map(|r| (r.key, r.op, r.user, r.client))
        else {
            // A request no longer in the table: any node will do (it ignores it).
            let shard = &ctx.shared.dbs[self.db].shards[0];
            return shard.nodes[shard.primary].actor;
        };
        let now = ctx.now();
        let s = match shard {
            Some(s) => s,
            None if self.tenants.is_none() && self.geo.is_none() => self.map.shard_of(key),
            None => self.shard_for(ctx, key, user, client),
        };
        let db = &ctx.shared.dbs[self.db];
        let shard = &db.shards[s];
        let primary = shard.primary;
        let wants_replica = op == Op::Read
            && self.consistency == Consistency::Ap
            && match self.read_from {
                ReadFrom::Primary => false,
                ReadFrom::Replicas => true,
                ReadFrom::ReadYourWrites(w) => db
                    .last_write
                    .value(u64::from(user))
                    .is_none_or(|t| now.saturating_sub(t) >= w),
            };
        // Bit i: node i is alive and reachable from the caller.
        let mut ok = 0u64;
        for (i, node) in shard.nodes.iter().enumerate() {
            if node.alive && ctx.reachable(node.actor) {
                ok |= 1 << i;
            }
        }
        let mut replicas = ok & !(1 << primary);
        // Every node of a shard is in the shard's region unless the replicas have their
        // own; then only the configured primary (node 0, a candidate after a failover) may
        // be elsewhere. Candidates all in one region are all as near: nothing to filter
        // (four mean latencies a replica read skipped; production 20 s: 1,166.7 -> 1,157.6 M
        // instructions).
        if wants_replica && replicas.count_ones() > 1 && self.replica_region && replicas & 1 != 0 {
            // Prefer the nearest replicas (a replica in the caller's own region).
            let me = ctx.me();
            let lat = |i: usize| ctx.net().mean_latency(me, shard.nodes[i].actor);
            let best = (0..shard.nodes.len())
                .filter(|&i| replicas & (1 << i) != 0)
                .map(lat)
                .fold(f64::INFINITY, f64::min);
            for i in 0..shard.nodes.len() {
                if replicas & (1 << i) != 0 && lat(i) > best * 1.5 + 1.0 {
                    replicas &= !(1 << i);
                }
            }
        }
        let mask = if wants_replica && replicas != 0 {
            replicas
        } else if ok & (1 << primary) != 0 || ok == 0 {
            return shard.nodes[primary].actor;
        } else {
            ok
        };
        let count = mask.count_ones();
        let mut k = if count > 1 {
            ctx.rng.random_range(0..count)
        } else {
            0
        };
        let shard = &ctx.shared.dbs[self.db].shards[s];
        for (i, node) in shard.nodes.iter().enumerate() {
            if mask & (1 << i) != 0 {
                if k == 0 {
                    return node.actor;
                }
                k -= 1;
            }
        }
        shard.nodes[primary].actor
    }
}

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
}

impl DbRouter {
    /// A router for database `db` (index in `Shared.dbs`) over `keys` keys.
    pub fn new(db: usize, cfg: &DatabaseConfig, keys: u64) -> Self {
        DbRouter {
            db,
            map: Arc::new(ShardMap::new(cfg.sharding, cfg.shards, keys)),
            read_from: cfg.read_from,
            consistency: cfg.consistency,
        }
    }

    /// The shard of `key`.
    #[inline]
    pub fn shard_of(&self, key: u64) -> usize {
        self.map.shard_of(key)
    }

    /// The node that should serve request `req`, as seen from the calling actor: the
    /// shard's primary for writes, the node `read_from` names for reads (among replicas,
    /// one of the nearest, at random). When that node
    /// is dead or cut off from the caller, another node the caller reaches (under `ap` it
    /// serves; under `cp` it refuses, an error rather than a hang).
    pub fn route(&self, ctx: &mut Ctx<'_>, req: ReqId) -> ActorId {
        let Some((key, op, user)) = ctx.shared.reqs.get(req).map(|r| (r.key, r.op, r.user)) else {
            // A request no longer in the table: any node will do (it ignores it).
            let shard = &ctx.shared.dbs[self.db].shards[0];
            return shard.nodes[shard.primary].actor;
        };
        let now = ctx.now();
        let s = self.shard_of(key);
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
        if wants_replica && replicas.count_ones() > 1 {
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

//! The instance's queries to a sharded database, measured one by one when the database has
//! a shard key other than the key, shards placed in regions, or cross-shard queries
//! ([`crate::database`]): a cross-shard read goes to its own shard and at once to the
//! next `shards − 1` shards (each a child request, as a call's), and the request goes on
//! when the slowest has answered (scatter-gather: the max of N).

use dssim_engine::{ActorId, Histogram, SimTime};
use rand::Rng as _;

use crate::calls::child_request;
use crate::node::Ctx;
use crate::request::{call, Op, ReqId, Status};

use super::*;

/// One database query out: the request, when it left, its answers still due.
#[derive(Clone, Copy, Debug)]
pub struct ShardQuery {
    parent: ReqId,
    sent: SimTime,
    pending: u16,
    shards: u16,
    failed: bool,
    remote: bool,
}

/// Measurements of an instance's database queries (summed per database for the
/// `DB.single_shard` and `DB.cross_shard` rows of components.csv).
#[derive(Debug, Default)]
pub struct ShardQueryStats {
    /// Queries answered by one shard, after warm-up.
    pub single: u64,
    /// Of those, the ones whose shard is in another region than the instance.
    pub single_remote: u64,
    /// Time from the query to its answer, one shard.
    pub single_latency: Histogram,
    /// Queries that touched several shards, after warm-up.
    pub cross: u64,
    /// Shard queries they made (their own included).
    pub cross_parts: u64,
    /// Time from the query to its slowest answer.
    pub cross_latency: Histogram,
}

/// The queries in flight and their measurements.
#[derive(Debug, Default)]
pub struct ShardQueries {
    pub(super) out: Vec<ShardQuery>,
    /// Extra shard queries in flight: (child request, the request it is for).
    pub(super) children: Vec<(ReqId, ReqId)>,
    /// Measurements.
    pub stats: ShardQueryStats,
}

/// What an answer means for its query.
pub(super) enum Part {
    /// Not a measured query: the answer stands on its own.
    Untracked,
    /// More answers are due.
    Pending,
    /// The last answer: the query's status (failed if any shard failed).
    Done(Status),
}

impl Instance {
    /// Sends `req` to `to` (its own shard's node), and for a cross-shard read to the other
    /// shards too, recording the query.
    pub(super) fn query_shards(&mut self, ctx: &mut Ctx<'_>, to: ActorId, req: ReqId) {
        let Some(db) = self.data.db.as_ref() else {
            call(ctx, to, req);
            return;
        };
        let (own, read) = match (db.shard_of_request(ctx, req), ctx.shared.reqs.get(req)) {
            (Some(s), Some(r)) => (s, r.op == Op::Read),
            _ => {
                call(ctx, to, req);
                return;
            }
        };
        let k = match db.cross {
            Some((share, k)) if read && (share >= 1.0 || ctx.rng.random::<f64>() < share) => k,
            _ => 1,
        };
        let remote = db
            .shard_region
            .get(own)
            .is_some_and(|&r| r != self.data.region);
        let n = ctx.shared.dbs[db.db].shards.len().max(1);
        let db = db.clone();
        self.shards.out.push(ShardQuery {
            parent: req,
            sent: ctx.now(),
            pending: k as u16,
            shards: k as u16,
            failed: false,
            remote,
        });
        call(ctx, to, req);
        for i in 1..k as usize {
            let Some(child) = child_request(ctx, req) else {
                break;
            };
            let t = db.route_to(ctx, child, Some((own + i) % n));
            self.shards.children.push((child, req));
            call(ctx, t, child);
        }
    }

    /// An answer to a query of `parent` (its own, or a child's) came back with `status`.
    pub(super) fn shard_part(&mut self, ctx: &mut Ctx<'_>, parent: ReqId, status: Status) -> Part {
        let Some(i) = self.shards.out.iter().position(|q| q.parent == parent) else {
            return Part::Untracked;
        };
        let q = &mut self.shards.out[i];
        q.pending = q.pending.saturating_sub(1);
        q.failed |= status != Status::Ok;
        if q.pending > 0 {
            return Part::Pending;
        }
        let q = self.shards.out.remove(i);
        let now = ctx.now();
        if q.sent >= ctx.shared.stats.warmup {
            let st = &mut self.shards.stats;
            if q.shards > 1 {
                st.cross += 1;
                st.cross_parts += u64::from(q.shards);
                st.cross_latency.record(now - q.sent);
            } else {
                st.single += 1;
                st.single_remote += u64::from(q.remote);
                st.single_latency.record(now - q.sent);
            }
        }
        Part::Done(if q.failed { Status::Error } else { status })
    }

    /// The answer `req` may be a cross-shard query's extra part: then it is taken here
    /// (freed, and its query goes on when it was the last); `false` otherwise.
    pub(super) fn shard_child_answer(
        &mut self,
        ctx: &mut Ctx<'_>,
        req: ReqId,
        status: Status,
    ) -> bool {
        let Some(i) = self.shards.children.iter().position(|c| c.0 == req) else {
            return false;
        };
        let (_, parent) = self.shards.children.swap_remove(i);
        ctx.shared.reqs.free(req);
        if let Part::Done(st) = self.shard_part(ctx, parent, status) {
            if self
                .find(parent)
                .is_some_and(|pos| self.in_service[pos].phase == Phase::Data)
            {
                self.release_connection(ctx);
                self.after_data(ctx, parent, st);
            }
        }
        true
    }

    /// A crash: the queries out are forgotten (their extra parts are still freed when
    /// they come back).
    pub(super) fn forget_shard_queries(&mut self) {
        self.shards.out.clear();
    }
}

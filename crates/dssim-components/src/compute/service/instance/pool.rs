//! The instance's calls to its data tier: the connection pool, its waiters and their timeouts.

use dssim_engine::{ActorId, SimTime};

use crate::node::{Ctx, Msg};
use crate::request::{call, call_local, reply, Op, ReqId, Status};
use crate::trace;

use super::*;

impl Instance {
    /// Calls the data tier: a local cache without the network, anything else through it.
    pub(super) fn call_data(&mut self, ctx: &mut Ctx<'_>, to: ActorId, req: ReqId) {
        trace::phase(ctx, req, "data");
        if self.data.local {
            call_local(ctx, to, SimTime::ZERO, req);
        } else if self.data.entry.is_none() && self.data.db.as_ref().is_some_and(|d| d.observed()) {
            self.query_shards(ctx, to, req);
        } else {
            call(ctx, to, req);
        }
    }

    /// The wake-up for the head waiter's deadline: times it out if it still waits (a
    /// waiter served in time left the head already), then arms the next head's.
    pub(super) fn acquire_timeout(&mut self, ctx: &mut Ctx<'_>) {
        let Some(pool) = &mut self.pool else {
            return;
        };
        let Some(fired) = pool.armed.take() else {
            return;
        };
        let due = match pool.waiters.front() {
            Some(&(req, _, Some(d))) if d == fired => {
                pool.waiters.pop_front();
                Some(req)
            }
            _ => None,
        };
        if let Some(req) = due {
            self.time_out_waiter(ctx, req);
        }
        if let Some(pool) = &mut self.pool {
            pool.arm(ctx);
        }
    }

    /// Waiter `req`, just taken off the pool's queue, waited too long: it fails.
    pub(super) fn time_out_waiter(&mut self, ctx: &mut Ctx<'_>, req: ReqId) {
        let Some(pos) = self.find(req) else {
            return;
        };
        if !matches!(self.in_service[pos].phase, Phase::PoolWait) {
            return;
        }
        let now = ctx.now();
        let s = &mut ctx.shared.compute.services[self.service];
        s.pool_waiting.add(now, -1.0);
        if now >= ctx.shared.stats.warmup {
            s.pool_timeouts += 1;
        }
        self.respond(ctx, req, Status::Error);
    }

    pub(super) fn on_response(&mut self, ctx: &mut Ctx<'_>, req: ReqId, status: Status) {
        if !self.shards.children.is_empty() && self.shard_child_answer(ctx, req, status) {
            return;
        }
        if !self.calls.out.is_empty() {
            if let Some(o) = self.calls.take(req) {
                self.call_answered(ctx, o, status);
                return;
            }
        }
        let Some(pos) = self.find(req) else {
            if let Some(o) = self.orphans.iter().position(|r| *r == req) {
                self.orphans.swap_remove(o);
                reply(ctx, req, Status::Error);
                self.check_drained(ctx);
            } else if !self.calls.is_empty() {
                self.stray_answer(ctx, req);
            }
            return;
        };
        match self.in_service[pos].phase {
            Phase::Data => {
                // No cross-shard query out and no pool (the production model's instances):
                // both calls had nothing to do, and are not made (two call frames).
                // Production 20 s: 871.0 -> 866.7 M instructions; 120 s CPU level (30
                // interleaved rounds, mean -0.000 s); outputs byte-identical.
                let status = if self.shards.out.is_empty() {
                    status
                } else {
                    match self.shard_part(ctx, req, status) {
                        shards::Part::Pending => return,
                        shards::Part::Done(st) => st,
                        shards::Part::Untracked => status,
                    }
                };
                if self.pool.is_some() {
                    self.release_connection(ctx);
                }
                // Still at `pos`: handing the connection on changes no worker's place.
                self.after_data_at(ctx, req, Some(pos), status);
            }
            Phase::Enqueue(i) => self.enqueue_from(ctx, req, usize::from(i) + 1),
            _ => {}
        }
    }

    /// Hands a freed connection to the first waiter, or returns it to the pool.
    pub(super) fn release_connection(&mut self, ctx: &mut Ctx<'_>) {
        let now = ctx.now();
        let counted = Self::counted(ctx);
        let Some(pool) = &mut self.pool else {
            return;
        };
        let s = &mut ctx.shared.compute.services[self.service];
        let Some((next, since, _)) = pool.waiters.pop_front() else {
            pool.in_use = pool.in_use.saturating_sub(1);
            s.pool_in_use.add(now, -1.0);
            return;
        };
        s.pool_waiting.add(now, -1.0);
        if counted {
            s.pool_acquires += 1;
            s.pool_wait.record(now - since);
        }
        let Some(pos) = self.find(next) else {
            return;
        };
        self.in_service[pos].phase = Phase::Data;
        match self.data.route(ctx, next) {
            Some(t) => self.call_data(ctx, t, next),
            None => {
                let me = ctx.me();
                ctx.send_local(me, SimTime::ZERO, Msg::Response(next, Status::Error));
            }
        }
    }

    pub(super) fn after_data(&mut self, ctx: &mut Ctx<'_>, req: ReqId, status: Status) {
        let pos = self.find(req);
        self.after_data_at(ctx, req, pos, status);
    }

    /// [`Self::after_data`] for `req` found at `pos` of `in_service` already (a scan of
    /// up to `workers` jobs saved).
    pub(super) fn after_data_at(
        &mut self,
        ctx: &mut Ctx<'_>,
        req: ReqId,
        pos: Option<usize>,
        status: Status,
    ) {
        let write = ctx.shared.reqs.get(req).is_some_and(|r| r.op == Op::Write);
        if status == Status::Ok && write && !self.jobs.is_empty() {
            self.enqueue_from(ctx, req, 0);
        } else {
            self.respond_at(ctx, req, pos, status);
        }
    }
}

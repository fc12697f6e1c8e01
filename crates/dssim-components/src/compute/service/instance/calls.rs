//! The instance's service-to-service calls ([`crate::calls`]): stages of calls made as
//! child requests, their timeouts and bulkheads.

use crate::calls::{child_request, OutCall};
use crate::node::{Ctx, Msg};
use crate::request::{call, Op, ReqId, Status};
use crate::trace;

use super::*;

impl Instance {
    /// Starts stage `stage` of the calls for `req` (held by a worker); past the last stage
    /// the request goes on to the data tier.
    pub(super) fn start_stage(&mut self, ctx: &mut Ctx<'_>, req: ReqId, stage: u16) {
        let Some(&(from, to)) = self.calls.stages.get(usize::from(stage)) else {
            self.go_to_data(ctx, req);
            return;
        };
        let Some(pos) = self.find(req) else {
            return;
        };
        self.in_service[pos].phase = Phase::Calls(stage);
        self.in_service[pos].pending = 0;
        trace::phase(ctx, req, "calls");
        let now = ctx.now();
        let counted = Self::counted(ctx);
        let op = ctx.shared.reqs.get(req).map_or(Op::Read, |r| r.op);
        for e in from..to {
            let e = usize::from(e);
            if !self.calls.entries[e].op.applies(op) {
                continue;
            }
            for _ in 0..self.calls.entries[e].count {
                let entry = &mut self.calls.entries[e];
                if counted {
                    entry.stats.calls += 1;
                }
                if entry.pool.is_some_and(|p| entry.in_flight >= p) {
                    // The bulkhead is full: refused at once; the request fails unless the
                    // call is optional.
                    if counted {
                        entry.stats.refused += 1;
                    }
                    if entry.optional {
                        continue;
                    }
                    self.fail_calls(ctx, req);
                    return;
                }
                let target = entry.target.pick(ctx);
                let (Some(to), Some(child)) = (target, child_request(ctx, req)) else {
                    self.fail_calls(ctx, req);
                    return;
                };
                let entry = &mut self.calls.entries[e];
                entry.in_flight += 1;
                entry.stats.in_flight.add(now, 1.0);
                let timeout = entry.timeout;
                self.calls.out.push(OutCall {
                    child,
                    parent: req,
                    entry: e as u16,
                    sent: now,
                });
                if let Some(pos) = self.find(req) {
                    self.in_service[pos].pending += 1;
                }
                if let Some(t) = timeout {
                    ctx.timer(t, Msg::Instance(InstanceMsg::CallTimeout(child)));
                }
                call(ctx, to, child);
            }
        }
        // Every call of the stage was refused and optional: on to the next.
        if self
            .find(req)
            .is_some_and(|pos| self.in_service[pos].pending == 0)
        {
            self.start_stage(ctx, req, stage + 1);
        }
    }

    /// One call of `req`'s current stage is over (answered ok, or failed but optional);
    /// the last one starts the next stage.
    fn call_done(&mut self, ctx: &mut Ctx<'_>, req: ReqId) {
        let Some(pos) = self.find(req) else {
            return;
        };
        let job = &mut self.in_service[pos];
        job.pending = job.pending.saturating_sub(1);
        if let (0, Phase::Calls(stage)) = (job.pending, job.phase) {
            self.start_stage(ctx, req, stage + 1);
        }
    }

    /// A call's answer came back (the call was still awaited).
    pub(super) fn call_answered(&mut self, ctx: &mut Ctx<'_>, o: OutCall, status: Status) {
        let now = ctx.now();
        ctx.shared.reqs.free(o.child);
        let e = usize::from(o.entry);
        self.calls.landed(e, now);
        let counted = o.sent >= ctx.shared.stats.warmup;
        let st = &mut self.calls.entries[e].stats;
        if counted {
            st.latency.record(now - o.sent);
            if status == Status::Ok {
                st.ok += 1;
            } else {
                st.failed += 1;
            }
        }
        if status != Status::Ok && !self.calls.entries[e].optional {
            self.fail_calls(ctx, o.parent);
            return;
        }
        self.call_done(ctx, o.parent);
    }

    /// A call's timeout: if it is still out, it fails its request.
    pub(super) fn call_timeout(&mut self, ctx: &mut Ctx<'_>, child: ReqId) {
        let Some(o) = self.calls.take(child) else {
            return; // answered in time (or abandoned)
        };
        let now = ctx.now();
        let e = usize::from(o.entry);
        self.calls.landed(e, now);
        if o.sent >= ctx.shared.stats.warmup {
            let st = &mut self.calls.entries[e].stats;
            st.timeouts += 1;
            st.latency.record(now - o.sent);
        }
        if self.calls.entries[e].optional {
            self.call_done(ctx, o.parent);
        } else {
            self.fail_calls(ctx, o.parent);
        }
    }

    /// A call of `req` failed: the calls still out for it are abandoned and it fails.
    pub(super) fn fail_calls(&mut self, ctx: &mut Ctx<'_>, req: ReqId) {
        let now = ctx.now();
        self.calls.abandon(req, now);
        if self
            .find(req)
            .is_some_and(|pos| matches!(self.in_service[pos].phase, Phase::Calls(_)))
        {
            self.respond(ctx, req, Status::Error);
        }
    }

    /// An answer nobody here waits for any more: a call this instance abandoned (its
    /// request failed, or it crashed) comes back late, and its child request is freed.
    pub(super) fn stray_answer(&mut self, ctx: &mut Ctx<'_>, req: ReqId) {
        let abandoned_child = ctx
            .shared
            .reqs
            .get(req)
            .is_some_and(|r| r.abandoned && ctx.shared.reqs.depth(req) == 0);
        if abandoned_child {
            ctx.shared.reqs.free(req);
        }
    }
}

//! The end of a request's visit: the NIC sends the answer, the worker is freed and takes
//! the next in line, the caller gets its answer.

use dssim_engine::SimTime;

use crate::node::{Ctx, Msg};
use crate::request::{reply, ReqId, Status};
use crate::trace;

use super::*;

impl Instance {
    /// The worker is done with `req`: send the answer (an ok answer with bytes goes through
    /// the NIC first, the worker writing it), free the worker, start the next in line.
    pub(super) fn respond(&mut self, ctx: &mut Ctx<'_>, req: ReqId, status: Status) {
        let pos = self.find(req);
        self.respond_at(ctx, req, pos, status);
    }

    /// [`Self::respond`] for `req` found at `pos` of `in_service` (`None`: no longer held)
    /// by a caller that looked it up already.
    #[inline(always)]
    pub(super) fn respond_at(
        &mut self,
        ctx: &mut Ctx<'_>,
        req: ReqId,
        pos: Option<usize>,
        status: Status,
    ) {
        if status == Status::Ok && self.nic.is_some() && self.nic_send(ctx, req, pos) {
            return;
        }
        if let Some(pos) = pos {
            self.release_at(ctx, pos, status);
        }
    }

    /// Hands an ok answer to the NIC (false when it has no bytes to send): the worker is
    /// freed when it is sent ([`Self::nic_done`]).
    fn nic_send(&mut self, ctx: &mut Ctx<'_>, req: ReqId, pos: Option<usize>) -> bool {
        let Some(nic) = &mut self.nic else {
            return false;
        };
        let bytes = ctx.shared.reqs.get(req).map_or(0, |r| r.response_bytes);
        let bytes = if bytes == 0 { nic.default_bytes } else { bytes };
        if bytes == 0 {
            return false;
        }
        let now = ctx.now();
        let start = nic.free_at.max(now);
        let end = start
            + SimTime::from_nanos((f64::from(bytes) * 8.0 / nic.bits_per_s * 1e9).round() as u64);
        nic.free_at = end;
        nic.fifo.push_back((req, end));
        trace::phase(ctx, req, "send (nic)");
        ctx.timer_at(end, Msg::Instance(InstanceMsg::Nic));
        if let Some(pos) = pos {
            self.in_service[pos].phase = Phase::Nic;
        }
        true
    }

    pub(super) fn release(&mut self, ctx: &mut Ctx<'_>, req: ReqId, status: Status) {
        if let Some(pos) = self.find(req) {
            self.release_at(ctx, pos, status);
        }
    }

    /// Frees the worker of the request at `pos` of `in_service` and answers it.
    #[inline]
    pub(super) fn release_at(&mut self, ctx: &mut Ctx<'_>, pos: usize, status: Status) {
        let job = self.in_service.swap_remove(pos);
        self.busy -= 1;
        self.busy_delta(ctx, -1.0);
        self.answer(ctx, job.req, job.arrived, status, job.canary);
        self.pull_next(ctx);
        self.check_drained(ctx);
    }

    pub(super) fn nic_done(&mut self, ctx: &mut Ctx<'_>) {
        let now = ctx.now();
        while let Some(&(req, end)) = self.nic.as_ref().and_then(|n| n.fifo.front()) {
            if end > now {
                break;
            }
            if let Some(n) = &mut self.nic {
                n.fifo.pop_front();
            }
            self.release(ctx, req, Status::Ok);
        }
    }

    /// Records the request's time here and answers its caller.
    #[inline]
    pub(super) fn answer(
        &mut self,
        ctx: &mut Ctx<'_>,
        req: ReqId,
        arrived: SimTime,
        status: Status,
        canary: bool,
    ) {
        let now = ctx.now();
        let d = now - arrived;
        if arrived >= ctx.shared.stats.warmup {
            self.stats.sojourn.record(d);
        }
        let s = &mut ctx.shared.compute.services[self.service];
        if s.scaled {
            s.win_latency.record(d);
        }
        if canary {
            let c = &mut s.canary;
            c.requests += 1;
            c.latency.record(d);
            let failed = status != Status::Ok;
            c.errors += u64::from(failed);
            if arrived >= ctx.shared.stats.warmup {
                c.total += 1;
                c.total_errors += u64::from(failed);
            }
        }
        reply(ctx, req, status);
    }
}

//! Crashes (out of memory or by a fault), draining, and the faults an instance takes.

use crate::changes::Setting;
use crate::compute::{Life, NO_HOME};
use crate::faults::FaultAction;
use crate::node::{Ctx, Msg};
use crate::request::{reply, Status};

use super::*;

impl Instance {
    /// A crash: every request held fails, the sessions held are lost; after running out
    /// of memory the instance restarts after its `restart` delay.
    pub(super) fn crash(&mut self, ctx: &mut Ctx<'_>, cause: Crash) {
        self.down = true;
        let now = ctx.now();
        let svc = self.service;
        if cause == Crash::OutOfMemory && Self::counted(ctx) {
            ctx.shared.compute.services[svc].oom_crashes += 1;
        }
        ctx.shared
            .set_life(svc, self.index as usize, Life::Crashed, now);
        for class in 0..2 {
            while let Some((req, _)) = self.queue[class].pop_front() {
                self.queued_delta(ctx, -1.0);
                reply(ctx, req, Status::Error);
            }
        }
        let jobs = std::mem::take(&mut self.in_service);
        for job in &jobs {
            match job.phase {
                Phase::Data | Phase::Enqueue(_) => self.orphans.push(job.req),
                Phase::PoolWait | Phase::Connect | Phase::Cpu | Phase::Nic => {
                    reply(ctx, job.req, Status::Error)
                }
            }
        }
        let busy = f64::from(self.busy);
        self.busy = 0;
        self.busy_delta(ctx, -busy);
        if let Some(pool) = &mut self.pool {
            let s = &mut ctx.shared.compute.services[svc];
            s.pool_in_use.add(now, -f64::from(pool.in_use));
            s.pool_waiting.add(now, -(pool.waiters.len() as f64));
            pool.in_use = 0;
            pool.waiters.clear();
        }
        if let Some(nic) = &mut self.nic {
            nic.free_at = now;
            nic.fifo.clear();
        }
        let me = self.index;
        for home in &mut ctx.shared.compute.services[svc].sessions {
            if *home == me {
                *home = NO_HOME;
            }
        }
        if cause == Crash::OutOfMemory {
            ctx.timer(self.restart, Msg::Instance(InstanceMsg::Restart));
        }
    }

    /// A draining instance that holds nothing more switches off.
    pub(super) fn check_drained(&mut self, ctx: &mut Ctx<'_>) {
        if self.held() == 0 && self.life(ctx) == Life::Draining {
            let now = ctx.now();
            ctx.shared
                .set_life(self.service, self.index as usize, Life::Off, now);
        }
    }

    /// Applies a timed change ([`crate::changes`]): new workers take queued requests at
    /// once, retired ones finish the request they hold first; a resize of the service goes
    /// through the scaling path (the first instance carries that message).
    pub(super) fn change(&mut self, ctx: &mut Ctx<'_>, i: u32) {
        let Some(&setting) = ctx.shared.settings.get(i as usize) else {
            return;
        };
        let now = ctx.now();
        match setting {
            Setting::Workers(w) => {
                ctx.shared.set_workers(self.service, w, now);
                if w != self.workers {
                    self.stats
                        .workers
                        .add(now, f64::from(w) - f64::from(self.workers));
                    self.workers_changed = true;
                    self.workers = w;
                    if !self.down {
                        self.pull_next(ctx);
                    }
                }
            }
            Setting::Instances(n) => {
                for actor in ctx.shared.resize(self.service, n, now) {
                    ctx.send_local(actor, SimTime::ZERO, Msg::Instance(InstanceMsg::Drain));
                }
            }
            Setting::Ttl(_) | Setting::Algorithm(_) => {}
        }
    }

    /// Applies a scheduled fault ([`crate::faults`]): a kill fails what the instance holds
    /// and keeps it down (a member answering `Error`, ignoring probes) until recovered; a
    /// slowdown multiplies its service times.
    pub(super) fn fault(&mut self, ctx: &mut Ctx<'_>, action: FaultAction) {
        match action {
            FaultAction::Slow(f) => {
                self.slowdown = f64::from(f);
                let s = &mut ctx.shared.compute.services[self.service];
                let i = self.index as usize;
                if s.slowdown.len() <= i {
                    s.slowdown.resize(i + 1, 1.0);
                }
                s.slowdown[i] = self.slowdown;
            }
            FaultAction::Kill if !self.killed && self.life(ctx) != Life::Off => {
                self.killed = true;
                self.crash(ctx, Crash::Killed);
            }
            FaultAction::Recover if self.killed => {
                self.killed = false;
                self.down = false;
                if self.life(ctx) == Life::Crashed {
                    let now = ctx.now();
                    ctx.shared
                        .set_life(self.service, self.index as usize, Life::Ready, now);
                }
            }
            _ => {}
        }
    }
}

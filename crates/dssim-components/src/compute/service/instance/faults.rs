//! Crashes (out of memory or by a fault), draining, and the faults an instance takes.

use crate::changes::Setting;
use crate::compute::deploy::DeployStep;
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
                Phase::PoolWait | Phase::Connect | Phase::Cpu | Phase::Nic | Phase::Calls(_) => {
                    reply(ctx, job.req, Status::Error)
                }
            }
        }
        self.forget_shard_queries();
        // Calls still out are abandoned: their answers are freed when they come back.
        let out = std::mem::take(&mut self.calls.out);
        for o in out {
            self.calls.landed(usize::from(o.entry), now);
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

    /// A draining instance that holds nothing more switches off (or, in a deploy, stops
    /// for its restart).
    #[inline]
    pub(super) fn check_drained(&mut self, ctx: &mut Ctx<'_>) {
        if self.held() == 0 && self.life(ctx) == Life::Draining {
            if self.deploying {
                self.deploy_stop(ctx);
                return;
            }
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

    /// A step of the service's rolling deploy ([`crate::compute::deploy`]).
    pub(super) fn deploy_step(&mut self, ctx: &mut Ctx<'_>, step: DeployStep) {
        let Some(d) = self.deploy.clone() else {
            return;
        };
        let now = ctx.now();
        let (svc, me) = (self.service, self.index as usize);
        match step {
            DeployStep::Begin => {
                if self.deploying || self.killed || self.life(ctx) != Life::Ready {
                    // Down or off already: nothing to take down; the deploy moves on.
                    self.deploy_next(ctx);
                    return;
                }
                self.deploying = true;
                if let Some(st) = &mut ctx.shared.compute.services[svc].deploy {
                    st.began.get_or_insert(now);
                    st.redeployed += 1;
                }
                if d.drain.0 > SimTime::ZERO {
                    ctx.shared.set_life(svc, me, Life::Draining, now);
                    ctx.timer(
                        d.drain.0,
                        Msg::Instance(InstanceMsg::Deploy(DeployStep::DrainOver)),
                    );
                    self.check_drained(ctx);
                } else {
                    self.deploy_stop(ctx);
                }
            }
            DeployStep::DrainOver => {
                if self.deploying && self.life(ctx) == Life::Draining {
                    self.deploy_stop(ctx);
                }
            }
            DeployStep::Started => {
                if !self.deploying || self.killed {
                    return;
                }
                self.down = false;
                if d.warmup.0 == SimTime::ZERO {
                    self.deploy_ready(ctx);
                } else if d.readiness {
                    ctx.shared.set_life(svc, me, Life::Provisioning, now);
                    ctx.timer(
                        d.warmup.0,
                        Msg::Instance(InstanceMsg::Deploy(DeployStep::Warm)),
                    );
                } else {
                    // Liveness only: in rotation now, cold for `warmup`.
                    self.warming = true;
                    ctx.timer(
                        d.warmup.0,
                        Msg::Instance(InstanceMsg::Deploy(DeployStep::Warm)),
                    );
                    self.deploy_ready(ctx);
                }
            }
            DeployStep::Warm => {
                self.warming = false;
                if self.deploying {
                    self.deploy_ready(ctx);
                }
            }
        }
    }

    /// Stops for the new version: what is still held fails; the process starts after
    /// `start`. Drained, it is out of the members meanwhile; stopped at once, it stays a
    /// member that refuses requests (nobody deregistered it).
    fn deploy_stop(&mut self, ctx: &mut Ctx<'_>) {
        let Some(start) = self.deploy.as_ref().map(|d| d.start.0) else {
            return;
        };
        let drained = self.life(ctx) == Life::Draining;
        self.crash(ctx, Crash::Killed);
        if drained {
            let now = ctx.now();
            ctx.shared
                .set_life(self.service, self.index as usize, Life::Provisioning, now);
        }
        ctx.timer(
            start,
            Msg::Instance(InstanceMsg::Deploy(DeployStep::Started)),
        );
    }

    /// Back in rotation: the deploy moves on to the next instance.
    fn deploy_ready(&mut self, ctx: &mut Ctx<'_>) {
        let now = ctx.now();
        ctx.shared
            .set_life(self.service, self.index as usize, Life::Ready, now);
        self.deploying = false;
        self.deploy_next(ctx);
    }

    /// Hands the deploy to the next instance, or records its end after the last.
    fn deploy_next(&mut self, ctx: &mut Ctx<'_>) {
        let now = ctx.now();
        let svc = self.service;
        if self.index < self.deploy_last {
            if let Some(&next) = ctx.shared.compute.services[svc]
                .instances
                .get(self.index as usize + 1)
            {
                ctx.send_local(
                    next,
                    SimTime::ZERO,
                    Msg::Instance(InstanceMsg::Deploy(DeployStep::Begin)),
                );
            }
        } else if let Some(st) = &mut ctx.shared.compute.services[svc].deploy {
            st.began.get_or_insert(now);
            st.done = Some(now);
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

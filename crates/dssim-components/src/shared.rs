//! The state every actor of a run shares, reached through its context (`ctx.shared`):
//! the request table, the run's statistics, the compute tier's member tables, the
//! databases' run-time state, the consistency oracle and the trace recorder. Routers read
//! the member tables here; components change an instance's life only through
//! [`Shared::set_life`], which keeps billing, gauges and members in step.

use dssim_engine::{ActorId, SimTime};

use crate::compute::Life;
use crate::request::RequestTable;
use crate::stats::Stats;

/// State every actor of a run shares.
#[derive(Debug, Default)]
pub struct Shared {
    /// Attempts in flight.
    pub reqs: RequestTable,
    /// Run-wide metrics.
    pub stats: Stats,
    /// Services' member tables and figures, job queues (see [`crate::compute`]).
    pub compute: crate::compute::ComputeState,
    /// Run-time state of each database (shards, nodes, replication logs).
    pub dbs: Vec<crate::database::DbState>,
    /// The consistency oracle.
    pub oracle: crate::consistency::Oracle,
    /// The trace recorder (`[output] trace`).
    pub trace: crate::trace::Tracer,
    /// The settings of the model's timed changes, indexed by [`crate::node::Msg::Change`].
    pub settings: Vec<crate::changes::Setting>,
    /// Per geo router, per entry: whether its health checks put it in rotation (an entry
    /// missing counts as in rotation) ([`crate::geo`]).
    pub geo: Vec<Vec<bool>>,
}

impl Shared {
    /// The instances routers may send to for service `service` (index in the model):
    /// members in index order. Empty only while every instance is off or starting.
    #[inline]
    pub fn active_instances(&self, service: usize) -> &[ActorId] {
        self.compute
            .services
            .get(service)
            .map_or(&[], |s| s.active())
    }

    /// Every instance actor of service `service`, members or not, by instance index (for
    /// routers that keep per-backend state by index: wire them to this list once, and skip
    /// a backend while [`Shared::is_member`] says no).
    pub fn all_instances(&self, service: usize) -> &[ActorId] {
        self.compute
            .services
            .get(service)
            .map_or(&[], |s| s.instances.as_slice())
    }

    /// Whether instance `index` of service `service` takes traffic now (ready, or down but
    /// not yet taken out: see the module docs).
    #[inline]
    pub fn is_member(&self, service: usize, index: usize) -> bool {
        self.compute
            .services
            .get(service)
            .and_then(|s| s.life.get(index))
            .is_some_and(|l| l.member())
    }

    /// The index of the service named `name`.
    pub fn service_index(&self, name: &str) -> Option<usize> {
        self.compute.services.iter().position(|s| s.name == name)
    }

    /// Moves instance `idx` of service `svc` to `life` at `now`, keeping the member table,
    /// billing, the autoscaler's window and the run's gauges in step.
    pub fn set_life(&mut self, svc: usize, idx: usize, life: Life, now: SimTime) {
        let Some(s) = self.compute.services.get_mut(svc) else {
            return;
        };
        let Some(old) = s.life.get(idx).copied() else {
            return;
        };
        if old == life {
            return;
        }
        s.life[idx] = life;
        if old.member() != life.member() {
            s.rebuild_active();
        }
        let bill = f64::from(i8::from(life.billed()) - i8::from(old.billed()));
        if bill != 0.0 {
            s.billed.add(now, bill);
            if let Some(p) = s.prices.as_ref().and_then(|p| p.get(idx)) {
                s.billed_price.add(now, bill * p);
            }
        }
        let ready = f64::from(i8::from(life == Life::Ready) - i8::from(old == Life::Ready));
        if ready != 0.0 {
            s.ready = s.ready.saturating_add_signed(ready as i32);
            s.win_ready.add(now, ready);
            let g = &mut self.stats.gauges;
            g.instances.add(now, ready);
            g.workers.add(now, ready * f64::from(s.workers));
            s.workers_tw.add(now, ready * f64::from(s.workers));
        }
    }

    /// Sets the workers per instance of service `svc` (a timed change), keeping the gauges
    /// in step. Idempotent: every instance calls it.
    pub fn set_workers(&mut self, svc: usize, workers: u32, now: SimTime) {
        let Some(s) = self.compute.services.get_mut(svc) else {
            return;
        };
        if s.workers == workers {
            return;
        }
        let delta = (f64::from(workers) - f64::from(s.workers)) * f64::from(s.ready);
        s.workers = workers;
        s.workers_tw.add(now, delta);
        self.stats.gauges.workers.add(now, delta);
    }

    /// One more instance of service `svc`: a draining one rejoins at once; else the first
    /// switched-off one moves to `then` (`Provisioning` for an autoscaler, which makes it
    /// ready after its provision delay; `Ready` for a timed change). Returns the index of
    /// the instance switched on, if one was.
    pub fn scale_out_one(&mut self, svc: usize, then: Life, now: SimTime) -> Option<usize> {
        let life = &self.compute.services.get(svc)?.life;
        let draining = life.iter().position(|l| *l == Life::Draining);
        let off = life.iter().position(|l| *l == Life::Off);
        if let Some(i) = draining {
            self.set_life(svc, i, Life::Ready, now);
            None
        } else if let Some(i) = off {
            self.set_life(svc, i, then, now);
            Some(i)
        } else {
            None
        }
    }

    /// One instance of service `svc` fewer: the last provisioning one switches off, else
    /// the last ready one drains. Returns the draining instance's actor (to be told to
    /// check whether it is idle), if one drains.
    pub fn scale_in_one(&mut self, svc: usize, now: SimTime) -> Option<ActorId> {
        let s = self.compute.services.get(svc)?;
        let provisioning = s.life.iter().rposition(|l| *l == Life::Provisioning);
        let ready = s.life.iter().rposition(|l| *l == Life::Ready);
        if let Some(i) = provisioning {
            self.set_life(svc, i, Life::Off, now);
            None
        } else if let Some(i) = ready {
            let actor = self.compute.services[svc].instances[i];
            self.set_life(svc, i, Life::Draining, now);
            Some(actor)
        } else {
            None
        }
    }

    /// Resizes service `svc` to `n` running instances at once (a timed change): switched-
    /// off instances come back ready; removed ones (the last ready first) drain. Returns
    /// the draining actors, to be told to check whether they are idle.
    pub fn resize(&mut self, svc: usize, n: u32, now: SimTime) -> Vec<ActorId> {
        let mut draining = Vec::new();
        let running = |sh: &Shared| {
            let s = &sh.compute.services[svc];
            s.count(Life::Ready) + s.count(Life::Provisioning) + s.count(Life::Crashed)
        };
        if svc >= self.compute.services.len() {
            return draining;
        }
        while running(self) < n {
            let before = running(self);
            self.scale_out_one(svc, Life::Ready, now);
            if running(self) == before {
                break; // every instance built is running
            }
        }
        while running(self) > n {
            match self.scale_in_one(svc, now) {
                Some(a) => draining.push(a),
                None => break, // only crashed instances are left
            }
        }
        draining
    }
}

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
        }
    }
}

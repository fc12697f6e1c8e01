//! The time-series sampler: every `interval` it closes one row of timeseries.csv from the
//! counters and time-weighted gauges the components keep in the shared state.

use dssim_engine::SimTime;

use crate::node::{Ctx, Msg};

/// Closes a time-series row every `interval` until `until`.
#[derive(Debug)]
pub struct Sampler {
    /// Row width.
    pub interval: SimTime,
    /// Last row ends here.
    pub until: SimTime,
    /// Start of the open row.
    pub start: SimTime,
}

impl Sampler {
    /// Handles a tick.
    pub fn handle(&mut self, msg: Msg, ctx: &mut Ctx<'_>) {
        let Msg::Tick = msg else {
            return crate::node::unexpected("sampler", msg);
        };
        let now = ctx.now();
        let lag = crate::database::replication_lag_gauge(&ctx.shared.dbs, now);
        ctx.shared.stats.close_interval(self.start, now, lag);
        self.start = now;
        if now < self.until {
            let next = (now + self.interval).min(self.until);
            ctx.timer_at(next, Msg::Tick);
        }
    }
}

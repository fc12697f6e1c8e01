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
        subscriber_rows(ctx, self.start, now);
        self.start = now;
        if now < self.until {
            let next = (now + self.interval).min(self.until);
            ctx.timer_at(next, Msg::Tick);
        }
    }
}

/// instances.csv rows of the subscriber groups of topics (`[output] instance_timeseries`):
/// deliveries per second, utilization, mean backlog over the interval and the lag at its end.
fn subscriber_rows(ctx: &mut Ctx<'_>, start: SimTime, now: SimTime) {
    let span = (now - start).as_secs_f64();
    let on = !ctx.shared.stats.instance_slot.is_empty() && span > 0.0;
    let shared = &mut *ctx.shared;
    for q in &mut shared.compute.queues {
        for sub in &mut q.subs {
            if on {
                let workers = f64::from(sub.workers);
                shared
                    .stats
                    .instance_series
                    .push(crate::stats::InstanceSeriesRow {
                        t_s: start.as_secs_f64(),
                        component: q.name.clone(),
                        instance: sub.name.clone(),
                        arrivals_rps: sub.iv_done as f64 / span,
                        utilization: (workers > 0.0).then(|| sub.iv_busy.mean(now) / workers),
                        queue_len: sub.iv_depth.mean(now),
                        lag_ms: Some(sub.head.map_or(0.0, |h| (now - h).as_secs_f64() * 1e3)),
                    });
            }
            sub.iv_busy.reset(now);
            sub.iv_depth.reset(now);
            sub.iv_done = 0;
        }
    }
}

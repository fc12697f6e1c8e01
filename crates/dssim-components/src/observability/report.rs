//! The figures one run hands to the output writers: the runs.csv row, CDF quantiles,
//! time-series rows and one row per component. Column names and order live here, once.

use crate::model::RunOptions;
use crate::stats::{SeriesRow, Stats};

/// A cell of a CSV row: an integer, a float, or empty (does not apply).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Cell {
    /// Whole number.
    Int(u64),
    /// Real number.
    Float(f64),
    /// Not applicable to this model.
    Empty,
}

impl From<Option<f64>> for Cell {
    fn from(v: Option<f64>) -> Self {
        v.map_or(Cell::Empty, Cell::Float)
    }
}

/// One row of components.csv.
#[derive(Clone, Debug, PartialEq)]
pub struct ComponentRow {
    /// Component name.
    pub component: String,
    /// `service`, `load_balancer`, `cache`, `database`, ...
    pub kind: &'static str,
    /// Requests it received in the measured window.
    pub requests: u64,
    /// Busy time / capacity.
    pub utilization: Option<f64>,
    /// Mean requests waiting.
    pub mean_queue: Option<f64>,
    /// p99 time spent in it (ms).
    pub p99_ms: Option<f64>,
    /// Mean time spent in it (ms); for a pool, the mean wait for a connection.
    pub mean_ms: Option<f64>,
    /// Cache hit ratio.
    pub hit_ratio: Option<f64>,
}

/// The quantiles latency.csv lists: enough points for a smooth CDF, denser in the tail.
pub fn cdf_quantiles() -> Vec<f64> {
    let mut q = vec![0.001, 0.005];
    q.extend((1..100).map(|i| f64::from(i) / 100.0));
    q.extend([
        0.991, 0.992, 0.993, 0.994, 0.995, 0.996, 0.997, 0.998, 0.999, 1.0,
    ]);
    q
}

/// Everything one run measured.
#[derive(Clone, Debug, PartialEq)]
pub struct RunReport {
    /// runs.csv metric columns (after the run/point/seed/sweep columns), in order.
    pub metrics: Vec<(&'static str, Cell)>,
    /// `(quantile, latency_ms)` of ok requests.
    pub quantiles: Vec<(f64, f64)>,
    /// Time-series rows.
    pub series: Vec<SeriesRow>,
    /// Per-component rows.
    pub components: Vec<ComponentRow>,
    /// The spans of the traced requests (`[output] trace`), when the run traced any.
    pub trace: Option<crate::trace::RunTrace>,
}

/// The runs.csv metric columns, in order (after `run, point, replication, seed` and the
/// swept paths).
pub const RUN_COLUMNS: &[&str] = &[
    "duration_s",
    "requests",
    "ok",
    "errors",
    "timeouts",
    "shed",
    "dropped",
    "attempts",
    "throughput_rps",
    "latency_mean_ms",
    "p50_ms",
    "p90_ms",
    "p95_ms",
    "p99_ms",
    "p999_ms",
    "max_ms",
    "read_p99_ms",
    "write_p99_ms",
    "cache_hit_ratio",
    "repl_lag_p50_ms",
    "repl_lag_p99_ms",
    "stale_reads",
    "ryw_violations",
    "availability",
    "lost_writes",
    "instance_hours",
    "cost",
    "pool_timeouts",
    "oom_crashes",
    "relogins",
    "degraded",
    "jobs_enqueued",
    "jobs_done",
    "jobs_dead",
    "jobs_dropped",
    "jobs_pending",
    "job_p99_ms",
    "canary_share",
    "canary_rollback_s",
    "events",
    "repl_lag_mean_ms",
    "stale_age_p99_ms",
    "monotonic_violations",
    "write_conflicts",
    "db_refused",
    "goodput_rps",
    "p99_all_ms",
];

impl RunReport {
    /// Collects the figures of a finished run.
    pub fn new(
        opts: &RunOptions,
        st: &Stats,
        components: Vec<ComponentRow>,
        events: u64,
        instances: u32,
    ) -> Self {
        let window = (opts.duration - opts.warmup).as_secs_f64();
        let l = &st.latency();
        let ok_per_s = if window > 0.0 {
            st.ok as f64 / window
        } else {
            0.0
        };
        let metrics = vec![
            ("duration_s", Cell::Float(window)),
            ("requests", Cell::Int(st.requests)),
            ("ok", Cell::Int(st.ok)),
            ("errors", Cell::Int(st.errors)),
            ("timeouts", Cell::Int(st.timeouts)),
            ("shed", Cell::Int(st.shed)),
            ("dropped", Cell::Int(st.dropped)),
            // Attempts sent for the counted requests, retries included: attempts / requests
            // above 1 is retry amplification.
            ("attempts", Cell::Int(st.attempts)),
            ("throughput_rps", Cell::Float(ok_per_s)),
            ("latency_mean_ms", l.mean_ms().into()),
            ("p50_ms", l.quantile_ms(0.5).into()),
            ("p90_ms", l.quantile_ms(0.9).into()),
            ("p95_ms", l.quantile_ms(0.95).into()),
            ("p99_ms", l.quantile_ms(0.99).into()),
            ("p999_ms", l.quantile_ms(0.999).into()),
            ("max_ms", l.max_ms().into()),
            ("read_p99_ms", st.read_latency.quantile_ms(0.99).into()),
            ("write_p99_ms", st.write_latency.quantile_ms(0.99).into()),
            (
                "cache_hit_ratio",
                (st.cache_lookups > 0)
                    .then(|| st.cache_hits as f64 / st.cache_lookups as f64)
                    .into(),
            ),
            ("repl_lag_p50_ms", Cell::Empty),
            ("repl_lag_p99_ms", Cell::Empty),
            ("stale_reads", Cell::Empty),
            ("ryw_violations", Cell::Empty),
            (
                "availability",
                (st.requests > 0)
                    .then(|| st.ok as f64 / st.requests as f64)
                    .into(),
            ),
            (
                "lost_writes",
                st.cache_lost_writes.map_or(Cell::Empty, Cell::Int),
            ),
            (
                "instance_hours",
                (instances > 0)
                    .then(|| f64::from(instances) * window / 3600.0)
                    .into(),
            ),
            // Compute-tier columns: filled by `compute::Summary::fill`.
            ("cost", Cell::Empty),
            ("pool_timeouts", Cell::Empty),
            ("oom_crashes", Cell::Empty),
            ("relogins", Cell::Empty),
            ("degraded", Cell::Empty),
            ("jobs_enqueued", Cell::Empty),
            ("jobs_done", Cell::Empty),
            ("jobs_dead", Cell::Empty),
            ("jobs_dropped", Cell::Empty),
            ("jobs_pending", Cell::Empty),
            ("job_p99_ms", Cell::Empty),
            ("canary_share", Cell::Empty),
            ("canary_rollback_s", Cell::Empty),
            ("events", Cell::Int(events)),
            ("repl_lag_mean_ms", Cell::Empty),
            ("stale_age_p99_ms", Cell::Empty),
            ("monotonic_violations", Cell::Empty),
            ("write_conflicts", Cell::Empty),
            ("db_refused", Cell::Empty),
            // Successful logical requests per second (the same count as `throughput_rps`,
            // named for what it is when retries and failures inflate the work done).
            ("goodput_rps", Cell::Float(ok_per_s)),
            ("p99_all_ms", st.all_latency().quantile_ms(0.99).into()),
        ];
        debug_assert!(metrics.iter().map(|m| m.0).eq(RUN_COLUMNS.iter().copied()));
        let quantiles = if l.is_empty() {
            Vec::new()
        } else {
            cdf_quantiles()
                .into_iter()
                .filter_map(|q| l.quantile_ms(q).map(|v| (q, v)))
                .collect()
        };
        RunReport {
            metrics,
            quantiles,
            series: st.series.clone(),
            components,
            trace: None,
        }
    }

    /// Sets metric `name` (a column of [`RUN_COLUMNS`]); unknown names are ignored.
    pub fn set(&mut self, name: &str, value: Cell) {
        if let Some(m) = self.metrics.iter_mut().find(|m| m.0 == name) {
            m.1 = value;
        }
    }

    /// The value of metric `name`, if the run has it.
    pub fn metric(&self, name: &str) -> Option<f64> {
        self.metrics
            .iter()
            .find(|m| m.0 == name)
            .and_then(|m| match m.1 {
                Cell::Int(i) => Some(i as f64),
                Cell::Float(f) => Some(f),
                Cell::Empty => None,
            })
    }
}

//! Sweeps: the plan of runs (sweep points × replications), each run resolved into its
//! model and seed, and the checks of the whole plan before anything runs.

use dssim_components::{ModelConfig, RunOptions};
use dssim_engine::rng;

use super::overrides::{cli_error, value_text};
use super::{source_error, Experiment, Origin, RunSpec};
use crate::error::{humanize, Diagnostic, LabError};
use crate::limits;

impl Experiment {
    /// Number of sweep points (saturating: a plan that large is refused by
    /// [`Experiment::check_plan`]).
    pub fn points(&self) -> usize {
        self.sweep
            .iter()
            .fold(1usize, |n, (_, v)| n.saturating_mul(v.len()))
    }

    /// Total runs.
    pub fn runs(&self) -> usize {
        self.points().saturating_mul(self.replications as usize)
    }

    /// Point, replication, seed and swept values of run `run`, without resolving its model.
    pub fn run_info(&self, run: usize) -> (usize, u32, u64, Vec<String>) {
        let reps = self.replications.max(1) as usize;
        let point = run / reps;
        let replication = (run % reps) as u32;
        let seed = rng::replication_seed(self.seed, u64::from(replication));
        let swept = self
            .point_values(point)
            .iter()
            .map(|(_, v)| value_text(v))
            .collect();
        (point, replication, seed, swept)
    }

    /// Sweep points that together hold every value of every swept path (point 0, then the
    /// "diagonal": the i-th value of every path at once), at most the longest list long.
    /// `check` and the up-front checks of `run` resolve these, so a bad value is found
    /// before anything runs without resolving every point of a huge grid.
    pub fn covering_points(&self) -> Vec<usize> {
        let longest = self.sweep.iter().map(|(_, v)| v.len()).max().unwrap_or(1);
        (0..longest)
            .map(|i| {
                self.sweep
                    .iter()
                    .fold(0usize, |p, (_, v)| p * v.len() + i % v.len())
            })
            .collect()
    }

    /// The points `check` and `run` resolve before running: all of them in a plan of up to
    /// [`FULL_CHECK_POINTS`], else [`Experiment::covering_points`].
    pub fn checked_points(&self) -> (Vec<usize>, bool) {
        if self.points() <= FULL_CHECK_POINTS {
            ((0..self.points()).collect(), true)
        } else {
            (self.covering_points(), false)
        }
    }

    /// Checks the plan before anything runs: the points of [`Experiment::checked_points`]
    /// resolve, and the whole sweep stays within the total limits (runs, events).
    pub fn check_plan(&self) -> Result<(), LabError> {
        // `--set output.instance_timeseries=true` without a time series.
        if self.output.instance_timeseries && self.output.timeseries.is_none() {
            return Err(cli_error(
                "output.instance_timeseries needs output.timeseries: instances.csv has one row per instance per time-series row (for example --set output.timeseries=1s)".to_string(),
            ));
        }
        let runs = self.runs();
        let plan = || {
            format!(
                "{} point(s) × {} replication(s) = {runs} runs",
                self.points(),
                self.replications
            )
        };
        // The size of the plan first: a plan of 10^10 runs is refused before any point is
        // resolved.
        if runs > limits::MAX_RUNS && !self.limits.force {
            return Err(sweep_error(
                self,
                format!(
                    "the plan has {}, above the limit of {:.0e} runs for one sweep; shorten the [sweep] lists or split it with --shard (or pass --force)",
                    plan(),
                    limits::MAX_RUNS as f64
                ),
            ));
        }
        let (points, _) = self.checked_points();
        let mut events = 0.0;
        for &p in &points {
            let spec = self.spec(p * self.replications as usize)?;
            events += limits::estimate(&spec.model, &spec.opts).events;
        }
        if self.limits.force {
            return Ok(());
        }
        let per_run = events / points.len().max(1) as f64;
        let total = per_run * runs as f64;
        if total > self.limits.max_total_events {
            return Err(sweep_error(
                self,
                format!(
                    "the plan ({}) × ~{per_run:.2e} events per run = {total:.2e} events in all, above the limit of {:.2e} for a whole sweep; raise --max-total-events, shorten the [sweep] lists, or pass --force",
                    plan(),
                    self.limits.max_total_events
                ),
            ));
        }
        Ok(())
    }

    /// Whether the model has services (the sweep cannot remove them).
    pub fn has_services(&self) -> bool {
        self.model
            .get("services")
            .and_then(|v| v.as_array())
            .is_some_and(|a| !a.is_empty())
    }

    /// The swept paths (runs.csv column headers).
    pub fn swept_paths(&self) -> Vec<String> {
        self.sweep.iter().map(|(k, _)| k.clone()).collect()
    }

    /// The values of sweep point `point`, in sweep order (the last path varies fastest).
    fn point_values(&self, point: usize) -> Vec<(&str, &toml::Value)> {
        let mut rem = point;
        let mut out = vec![];
        for (k, vals) in self.sweep.iter().rev() {
            out.push((k.as_str(), &vals[rem % vals.len()]));
            rem /= vals.len();
        }
        out.reverse();
        out
    }

    /// The run of id `run`, fully resolved.
    pub fn spec(&self, run: usize) -> Result<RunSpec, LabError> {
        let reps = self.replications as usize;
        let point = run / reps;
        let replication = (run % reps) as u32;
        let mut tree = self.model.clone();
        for (path, value, origin) in &self.set {
            self.apply(&mut tree, path, value.clone(), origin)?;
        }
        let values = self.point_values(point);
        for (path, value) in &values {
            self.apply(&mut tree, path, (*value).clone(), &Origin::File("sweep"))?;
        }
        let mut model: ModelConfig = tree.clone().try_into().map_err(|e: toml::de::Error| {
            let (message, help) = humanize(e.message());
            if let Some(err) = self.blame_override(&values, &message, help.clone()) {
                return err;
            }
            let origin = self.describe_overrides(&values);
            LabError::Input(Diagnostic {
                help,
                ..Diagnostic::plain(
                    &self.source.path,
                    format!("{message} (in the model after {origin})"),
                )
            })
        })?;
        self.load_traces(&mut model)?;
        let seed = rng::replication_seed(self.seed, u64::from(replication));
        let opts = RunOptions {
            seed,
            duration: self.duration,
            warmup: self.warmup,
            timeseries: self.output.timeseries.map(|d| d.0),
            trace: self.output.trace as u32,
            trace_sample: self.output.trace_sample,
        };
        // Before validation, which itself walks every instance.
        limits::check(&limits::estimate(&model, &opts), &self.limits).map_err(|r| {
            self.model_errors(vec![dssim_components::ConfigError::new(r.path, r.message)])
        })?;
        model.validate().map_err(|errs| self.model_errors(errs))?;
        Ok(RunSpec {
            run,
            point,
            replication,
            seed,
            swept: values.iter().map(|(_, v)| value_text(v)).collect(),
            model,
            opts,
        })
    }

    /// Checks the runs of the plan resolve (every sweep point, or in a huge plan the points
    /// that hold every swept value) and the whole sweep is within the limits, without
    /// running anything.
    pub fn check_all(&self) -> Result<(), LabError> {
        self.check_plan()
    }

    /// A rough count of events the whole plan will process (for `check` and limits): in a
    /// huge plan, the mean of the checked points times the number of runs.
    pub fn estimate_events(&self) -> Result<f64, LabError> {
        let (points, _) = self.checked_points();
        let mut total = 0.0;
        for &p in &points {
            let spec = self.spec(p * self.replications as usize)?;
            total += limits::estimate(&spec.model, &spec.opts).events;
        }
        Ok(total / points.len().max(1) as f64 * self.runs() as f64)
    }

    /// The costliest run of the plan by events and by memory (the estimates `check` prints;
    /// in a huge plan, among the checked points).
    pub fn estimate_runs(&self) -> Result<(limits::RunEstimate, limits::RunEstimate), LabError> {
        let mut most_events: Option<limits::RunEstimate> = None;
        let mut most_memory: Option<limits::RunEstimate> = None;
        for p in self.checked_points().0 {
            let spec = self.spec(p * self.replications as usize)?;
            let e = limits::estimate(&spec.model, &spec.opts);
            if most_events.as_ref().is_none_or(|m| e.events > m.events) {
                most_events = Some(e.clone());
            }
            if most_memory.as_ref().is_none_or(|m| e.memory > m.memory) {
                most_memory = Some(e);
            }
        }
        match (most_events, most_memory) {
            (Some(a), Some(b)) => Ok((a, b)),
            _ => Err(LabError::Run("the plan has no runs".into())),
        }
    }
}

/// Plans of up to this many points are resolved point by point before they run; larger
/// ones at the points that hold every swept value ([`Experiment::covering_points`]).
pub const FULL_CHECK_POINTS: usize = 10_000;

/// A refusal of the whole plan, pointing at `[sweep]` (or the file when there is none).
fn sweep_error(exp: &Experiment, message: String) -> LabError {
    source_error(
        &exp.source,
        if exp.sweep.is_empty() {
            &[]
        } else {
            &["sweep"]
        },
        &message,
        None,
    )
}

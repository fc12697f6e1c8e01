//! Experiments: a model, how long to run it, what to vary. Expands into a plan of runs
//! (sweep points × replications), each with its fully resolved model and seed.

use std::path::{Path, PathBuf};

use dssim_components::client::Arrival;
use dssim_components::did_you_mean;
use dssim_components::trace::Sample;
use dssim_components::units::Dur;
use dssim_components::{ModelConfig, RunOptions};
use dssim_engine::{rng, SimTime};
use serde::{Deserialize, Serialize};

use crate::error::{humanize, Diagnostic, LabError};
use crate::limits::{self, Limits};
use crate::source::Source;

/// The experiment file, with the model left as a raw tree.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields, bound(deserialize = "M: Deserialize<'de>"))]
struct ExperimentFile<M = toml::Value> {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    model: Option<M>,
    #[serde(default)]
    duration: Option<Dur>,
    #[serde(default)]
    warmup: Option<Dur>,
    #[serde(default)]
    seed: Option<u64>,
    #[serde(default)]
    replications: Option<u32>,
    #[serde(default)]
    set: toml::Table,
    #[serde(default)]
    sweep: toml::Table,
    #[serde(default)]
    output: OutputConfig,
}

/// The most requests a run may trace in full (`[output] trace`): each costs a few spans
/// of memory and a few lines of trace.json.
pub const MAX_TRACE: u64 = 10_000;

/// The `[output]` table.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct OutputConfig {
    /// Width of a timeseries.csv row; none when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeseries: Option<Dur>,
    /// Requests per run to trace in full (trace.json).
    #[serde(default)]
    pub trace: u64,
    /// Which requests: the `first` of the measured window (default) or the `slowest`.
    #[serde(default, skip_serializing_if = "Sample::is_first")]
    pub trace_sample: Sample,
    /// Per-instance rows beside the time series (instances.csv).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub instance_timeseries: bool,
}

/// An experiment, loaded and checked.
#[derive(Clone, Debug)]
pub struct Experiment {
    /// Name (file stem when absent).
    pub name: String,
    /// What it shows.
    pub description: String,
    /// The experiment file.
    pub source: Source,
    /// The model file (the experiment file itself for an inline model).
    pub model_source: Source,
    /// The model tree before overrides.
    model: toml::Value,
    /// Path of the model within `model_source` (`["model"]` for inline, `[]` otherwise).
    model_prefix: Vec<String>,
    /// Simulated time of arrivals.
    pub duration: SimTime,
    /// Metrics ignore requests sent before this.
    pub warmup: SimTime,
    /// Experiment seed.
    pub seed: u64,
    /// Runs per sweep point.
    pub replications: u32,
    /// Overrides applied to every run: (path, value, where it came from).
    set: Vec<(String, toml::Value, Origin)>,
    /// Swept paths and their values, in file order.
    pub sweep: Vec<(String, Vec<toml::Value>)>,
    /// Output settings.
    pub output: OutputConfig,
    /// Events and memory one run may take (checked before it is built).
    pub limits: Limits,
    /// Content hashes of trace files recorded by a manifest: a replay refuses a trace file
    /// that changed since (empty for a fresh experiment).
    pub trace_hashes: std::collections::BTreeMap<PathBuf, String>,
}

/// Where an override was written, for error messages.
#[derive(Clone, Debug)]
enum Origin {
    File(&'static str),
    Cli,
}

/// One run of the plan.
#[derive(Clone, Debug)]
pub struct RunSpec {
    /// Run id: `point * replications + replication`.
    pub run: usize,
    /// Sweep point.
    pub point: usize,
    /// Replication index.
    pub replication: u32,
    /// Run seed (common across points).
    pub seed: u64,
    /// The swept values of its point, as text, in sweep order.
    pub swept: Vec<String>,
    /// The resolved model.
    pub model: ModelConfig,
    /// Duration, warm-up, time series.
    pub opts: RunOptions,
}

const EXPERIMENT_KEYS: &[&str] = &[
    "name",
    "description",
    "duration",
    "warmup",
    "seed",
    "replications",
    "output.timeseries",
    "output.trace",
    "output.trace_sample",
    "output.instance_timeseries",
];

/// The keys of an experiment file, for `dssim explain experiment` and `dssim explain
/// output`: (path, kind, default, meaning). A test checks the list against the keys the
/// loader accepts, so it cannot drift.
pub const EXPERIMENT_DOCS: &[(&str, &str, &str, &str)] = &[
    ("name", "text", "the file's name", "Name of the experiment; `--out` defaults to results/<name>/."),
    ("description", "text", "empty", "What the experiment shows (printed by `dssim check`)."),
    ("model", "text or table", "required", "The model: a path to a model file (relative to this file) or an inline [model] table."),
    ("duration", "duration (\"5ms\", \"2s\")", "60s", "Simulated time during which clients send requests; the run then drains."),
    ("warmup", "duration (\"5ms\", \"2s\")", "0s", "Requests first sent before this are not measured."),
    ("seed", "whole number", "1", "Experiment seed; each replication's seed derives from it, the same at every sweep point."),
    ("replications", "whole number", "1", "Runs per sweep point (95% confidence intervals in points.csv need 2 or more)."),
    ("set", "table", "empty", "Model paths set before the sweep: \"services.app.workers\" = 4."),
    ("sweep", "table of lists", "empty", "Model paths and their values; the runs are the cartesian product."),
    ("output", "table", "empty", "What the run writes beyond runs.csv, points.csv, latency.csv and components.csv."),
    ("output.timeseries", "duration (\"5ms\", \"2s\")", "none", "Width of a timeseries.csv row; no timeseries.csv rows when absent."),
    ("output.instance_timeseries", "true or false", "false", "Also write instances.csv: per time-series row, each service instance's arrivals, utilization and queue length (needs output.timeseries)."),
    ("output.trace", "whole number", "0", "Requests per run to trace in full into trace.json (Chrome trace events; at most 10000)."),
    ("output.trace_sample", "first | slowest", "first", "Which requests to trace: the first of the measured window, or its slowest (every request is recorded while in flight, the slowest kept)."),
];

impl Experiment {
    /// Loads an experiment file, or a bare model file (run for 60 s with no warm-up).
    pub fn load(path: &Path) -> Result<Experiment, LabError> {
        Experiment::from_source(Source::read(path)?)
    }

    /// Loads an experiment (or bare model) from text already read; `source.path` decides
    /// the syntax and anchors relative model paths.
    pub fn from_source(source: Source) -> Result<Experiment, LabError> {
        let path = &source.path.clone();
        let tree = source.value()?;
        let is_experiment = tree.as_table().is_some_and(|t| {
            ["model", "duration", "sweep", "replications", "set"]
                .iter()
                .any(|k| t.contains_key(*k))
        });
        if !is_experiment {
            // A bare model: check it with spans, then wrap it in a default experiment.
            let _: ModelConfig = source.parse()?;
            let name = stem(path);
            return Ok(Experiment {
                name,
                description: String::new(),
                model_source: source.clone(),
                source,
                model: tree,
                model_prefix: vec![],
                duration: SimTime::from_secs(60),
                warmup: SimTime::ZERO,
                seed: 1,
                replications: 1,
                set: vec![],
                sweep: vec![],
                output: OutputConfig::default(),
                limits: Limits::default(),
                trace_hashes: Default::default(),
            });
        }
        let file: ExperimentFile = source.parse()?;
        let (model_source, model, model_prefix) = match &file.model {
            Some(toml::Value::String(rel)) => {
                let p = resolve_relative(path, rel);
                let ms = Source::read(&p).map_err(|_| {
                    LabError::Input(Diagnostic {
                        file: path.to_path_buf(),
                        text: Some(source.text.clone()),
                        span: source.locate(&["model"]),
                        message: format!("cannot read the model file {}", p.display()),
                        help: Some("`model` is a path relative to the experiment file".into()),
                    })
                })?;
                let _: ModelConfig = ms.parse()?;
                let v = ms.value()?;
                (ms, v, vec![])
            }
            Some(v @ toml::Value::Table(_)) => {
                // Inline model: check it with spans by parsing the file with a typed model.
                let _: ExperimentFile<ModelConfig> = source.parse()?;
                (source.clone(), v.clone(), vec!["model".to_string()])
            }
            Some(_) => {
                return Err(source_error(
                    &source,
                    &["model"],
                    "`model` is a path to a model file or an inline [model] table",
                    None,
                ))
            }
            None => {
                return Err(source_error(
                    &source,
                    &[],
                    "the experiment has no `model`: give a path (model = \"../models/x.toml\") or an inline [model] table",
                    None,
                ))
            }
        };
        let mut set = Vec::new();
        for (k, v) in &file.set {
            set.push((k.clone(), v.clone(), Origin::File("set")));
        }
        let mut sweep = Vec::new();
        for (k, v) in &file.sweep {
            if let Err(m) = check_swept(k, v) {
                return Err(source_error(&source, &["sweep", k], &m, None));
            }
            match v {
                toml::Value::Array(vals) if !vals.is_empty() => {
                    sweep.push((k.clone(), vals.clone()))
                }
                _ => {
                    return Err(source_error(
                        &source,
                        &["sweep", k],
                        &format!("[sweep] \"{k}\" must be a non-empty list of values"),
                        None,
                    ))
                }
            }
        }
        if let Some(n) = &file.name {
            if let Err(m) = dssim_components::model::check_name(n, true) {
                return Err(source_error(
                    &source,
                    &["name"],
                    &format!("name: {m}"),
                    None,
                ));
            }
        }
        let exp = Experiment {
            name: file.name.clone().unwrap_or_else(|| stem(path)),
            description: file.description.clone().unwrap_or_default(),
            model_source,
            source: source.clone(),
            model,
            model_prefix,
            duration: file.duration.map_or(SimTime::from_secs(60), |d| d.0),
            warmup: file.warmup.map_or(SimTime::ZERO, |d| d.0),
            seed: file.seed.unwrap_or(1),
            replications: file.replications.unwrap_or(1),
            set,
            sweep,
            output: file.output.clone(),
            limits: Limits::default(),
            trace_hashes: Default::default(),
        };
        exp.check_numbers()?;
        Ok(exp)
    }

    fn check_numbers(&self) -> Result<(), LabError> {
        if self.duration == SimTime::ZERO {
            return Err(source_error(
                &self.source,
                &["duration"],
                "duration must be above zero",
                None,
            ));
        }
        if self.warmup >= self.duration {
            return Err(source_error(
                &self.source,
                &["warmup"],
                &format!(
                    "warmup ({}) must be shorter than duration ({})",
                    self.warmup, self.duration
                ),
                None,
            ));
        }
        if self.replications == 0 {
            return Err(source_error(
                &self.source,
                &["replications"],
                "replications must be at least 1",
                None,
            ));
        }
        if self.output.timeseries.is_some_and(|d| d.0 == SimTime::ZERO) {
            return Err(source_error(
                &self.source,
                &["output", "timeseries"],
                "output.timeseries is the width of a timeseries.csv row; it must be above zero (leave it out for no time series)",
                None,
            ));
        }
        if self.output.instance_timeseries && self.output.timeseries.is_none() {
            return Err(source_error(
                &self.source,
                &["output", "instance_timeseries"],
                "output.instance_timeseries writes instances.csv beside timeseries.csv, one row per instance per time-series row; set output.timeseries (the row width) too, for example timeseries = \"1s\"",
                None,
            ));
        }
        if self.output.trace > MAX_TRACE {
            return Err(source_error(
                &self.source,
                &["output", "trace"],
                &format!(
                    "output.trace is the number of requests per run to trace in full; at most {MAX_TRACE} (found {})",
                    self.output.trace
                ),
                None,
            ));
        }
        Ok(())
    }

    /// Applies a `--set PATH=VALUE` from the command line (model paths or experiment keys).
    /// Its errors point at the override itself (`--set duration=abc: expected a duration`).
    pub fn apply_cli_set(&mut self, assignment: &str) -> Result<(), LabError> {
        self.apply_cli_sets(&[assignment])
    }

    /// Applies several `--set`s in order, then checks the numbers they must agree on
    /// (warm-up shorter than duration, ...) once, so their order does not matter:
    /// `--set duration=10s --set warmup=2s` works on a file whose warm-up is 30 s.
    pub fn apply_cli_sets<S: AsRef<str>>(&mut self, assignments: &[S]) -> Result<(), LabError> {
        for a in assignments {
            self.apply_one_cli_set(a.as_ref())?;
        }
        self.check_numbers()
    }

    fn apply_one_cli_set(&mut self, assignment: &str) -> Result<(), LabError> {
        self.apply_cli_set_at(assignment).map_err(|e| match e {
            LabError::Input(mut d) if d.file == Path::new("--set") => {
                if let Some((path, _)) = assignment.split_once('=') {
                    let prefix = format!("--set {}: ", path.trim());
                    if let Some(rest) = d.message.strip_prefix(&prefix) {
                        d.message = rest.to_string();
                    }
                    d.file = PathBuf::from(format!("--set {}", assignment.trim()));
                }
                LabError::Input(d)
            }
            other => other,
        })
    }

    fn apply_cli_set_at(&mut self, assignment: &str) -> Result<(), LabError> {
        let Some((path, raw)) = assignment.split_once('=') else {
            return Err(cli_error(format!(
                "--set takes PATH=VALUE (for example services.app.workers=4), found {assignment:?}"
            )));
        };
        let path = path.trim();
        let value = parse_cli_value(raw.trim());
        let as_dur = || -> Result<SimTime, LabError> {
            match &value {
                toml::Value::String(s) => dssim_engine::parse_duration(s)
                    .map_err(|e| cli_error(format!("--set {path}: {e}"))),
                _ => Err(cli_error(format!(
                    "--set {path}: expected a duration such as \"30s\""
                ))),
            }
        };
        let as_int = || -> Result<u64, LabError> {
            value
                .as_integer()
                .filter(|i| *i >= 0)
                .map(|i| i as u64)
                .ok_or_else(|| cli_error(format!("--set {path}: expected a whole number")))
        };
        match path {
            "duration" => self.duration = as_dur()?,
            "warmup" => self.warmup = as_dur()?,
            "seed" => self.seed = as_int()?,
            "replications" => self.replications = as_int()?.min(u64::from(u32::MAX)) as u32,
            "name" => {
                let n = match &value {
                    toml::Value::String(s) => s.clone(),
                    _ => raw.trim().to_string(),
                };
                dssim_components::model::check_name(&n, true)
                    .map_err(|m| cli_error(format!("--set name: {m}")))?;
                self.name = n;
            }
            "description" => {
                self.description = match &value {
                    toml::Value::String(s) => s.clone(),
                    _ => raw.trim().to_string(),
                }
            }
            "output.timeseries" => self.output.timeseries = Some(Dur(as_dur()?)),
            "output.instance_timeseries" => {
                self.output.instance_timeseries = match value {
                    toml::Value::Boolean(b) => b,
                    _ => {
                        return Err(cli_error(format!(
                            "--set output.instance_timeseries: expected true or false, found {:?}",
                            raw.trim()
                        )))
                    }
                }
            }
            "output.trace" => {
                let n = as_int()?;
                if n > MAX_TRACE {
                    return Err(cli_error(format!(
                        "--set output.trace: at most {MAX_TRACE} requests per run are traced (found {n})"
                    )));
                }
                self.output.trace = n;
            }
            "output.trace_sample" => {
                self.output.trace_sample = match raw.trim().trim_matches('"') {
                    "first" => Sample::First,
                    "slowest" => Sample::Slowest,
                    other => {
                        return Err(cli_error(format!(
                            "--set output.trace_sample: expected \"first\" or \"slowest\", found {other:?}"
                        )))
                    }
                };
            }
            _ => {
                let p = path.strip_prefix("model.").unwrap_or(path);
                let first = p.split('.').next().unwrap_or("");
                let model_keys = dssim_components::model::SECTIONS;
                if !model_keys.contains(&first) {
                    let all = EXPERIMENT_KEYS.iter().chain(model_keys.iter()).copied();
                    let help =
                        did_you_mean(first, all.clone()).map(|s| format!("did you mean `{s}`?"));
                    return Err(LabError::Input(Diagnostic {
                        help,
                        ..Diagnostic::plain(
                            Path::new("--set"),
                            format!(
                                "unknown path {path:?}: a path starts with an experiment key ({}) or a model section ({})",
                                EXPERIMENT_KEYS.join(", "),
                                model_keys.join(", ")
                            ),
                        )
                    }));
                }
                // A CLI override wins over the file's [set] and [sweep] for the same path.
                self.sweep.retain(|(k, _)| k != p);
                self.set.push((p.to_string(), value, Origin::Cli));
            }
        }
        Ok(())
    }

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

    /// Reads the arrival-time files of trace clients (`file`, relative to the model file)
    /// into their `trace`: the components crate reads no files.
    fn load_traces(&self, model: &mut ModelConfig) -> Result<(), LabError> {
        for c in &mut model.clients {
            if c.arrival != Arrival::Trace {
                continue;
            }
            let Some(file) = &c.file else {
                continue;
            };
            let path = resolve_relative(&self.model_source.path, file);
            let fail = |message: String| {
                self.model_errors(vec![dssim_components::ConfigError::new(
                    format!("clients.{}.file", c.name),
                    message,
                )])
            };
            let text = crate::source::read_capped(
                &path,
                self.limits.max_trace_bytes,
                "trace file (raise the cap with --max-trace-size)",
            )
            .map_err(fail)?;
            if let Some(h) = self.trace_hashes.get(&path) {
                let now = content_hash(text.as_bytes());
                if &now != h {
                    return Err(fail(format!(
                        "the trace {} changed since the run was recorded (content hash {now}, recorded {h})",
                        path.display()
                    )));
                }
            }
            c.trace = parse_trace(&text).map_err(|m| fail(format!("{}: {m}", path.display())))?;
        }
        Ok(())
    }

    /// When the model loads alone but not after its overrides, the first override (of
    /// `[set]`, `--set`, then the sweep values of this point) after which it fails to load,
    /// as a diagnostic that points at that override: the `--set` argument itself, or its
    /// value in the experiment file.
    fn blame_override(
        &self,
        values: &[(&str, &toml::Value)],
        message: &str,
        help: Option<String>,
    ) -> Option<LabError> {
        let loads = |t: &toml::Value| t.clone().try_into::<ModelConfig>().is_ok();
        let mut tree = self.model.clone();
        if !loads(&tree) {
            return None;
        }
        let sweep = Origin::File("sweep");
        let all = self
            .set
            .iter()
            .map(|(k, v, o)| (k.as_str(), v, o))
            .chain(values.iter().map(|(k, v)| (*k, *v, &sweep)));
        for (path, value, origin) in all {
            self.apply(&mut tree, path, value.clone(), origin).ok()?;
            if loads(&tree) {
                continue;
            }
            let d = match origin {
                Origin::Cli => Diagnostic::plain(
                    Path::new(&format!("--set {path}={}", value_text(value))),
                    message.to_string(),
                ),
                Origin::File(table) => {
                    let message = format!("{path} = {}: {message}", value_text(value));
                    match self.source.locate(&[table, path]) {
                        Some(span) => Diagnostic {
                            file: self.source.path.clone(),
                            text: Some(self.source.text.clone()),
                            span: Some(span),
                            message,
                            help: None,
                        },
                        None => Diagnostic::plain(&self.source.path, message),
                    }
                }
            };
            return Some(LabError::Input(Diagnostic { help, ..d }));
        }
        None
    }

    fn describe_overrides(&self, values: &[(&str, &toml::Value)]) -> String {
        let mut parts: Vec<String> = self
            .set
            .iter()
            .map(|(k, v, _)| format!("{k} = {}", value_text(v)))
            .collect();
        parts.extend(
            values
                .iter()
                .map(|(k, v)| format!("{k} = {}", value_text(v))),
        );
        if parts.is_empty() {
            "loading".into()
        } else {
            format!("applying {}", parts.join(", "))
        }
    }

    /// Turns validation errors into diagnostics that point into the model file.
    fn model_errors(&self, errs: Vec<dssim_components::ConfigError>) -> LabError {
        let diags: Vec<Diagnostic> = errs
            .into_iter()
            .map(|e| {
                let mut segs: Vec<&str> = self.model_prefix.iter().map(String::as_str).collect();
                segs.extend(e.path.split('.'));
                let span = self.model_source.locate(&segs);
                let (message, help) = split_hint(&e.message);
                Diagnostic {
                    file: self.model_source.path.clone(),
                    text: Some(self.model_source.text.clone()),
                    span,
                    message: format!("{}: {}", e.path, message),
                    help,
                }
            })
            .collect();
        if diags.len() == 1 {
            LabError::Input(diags.into_iter().next().expect("one diagnostic"))
        } else {
            LabError::Inputs(diags)
        }
    }

    /// Sets `path` (names address list entries) to `value` in the model tree.
    fn apply(
        &self,
        tree: &mut toml::Value,
        path: &str,
        value: toml::Value,
        origin: &Origin,
    ) -> Result<(), LabError> {
        let shown = value_text(&value);
        let fail = |message: String, help: Option<String>| -> LabError {
            match origin {
                Origin::File(table) => {
                    let mut d = match self.source.locate(&[table, path]) {
                        Some(span) => Diagnostic {
                            file: self.source.path.clone(),
                            text: Some(self.source.text.clone()),
                            span: Some(span),
                            message: message.clone(),
                            help: None,
                        },
                        None => Diagnostic::plain(&self.source.path, message.clone()),
                    };
                    d.help = help;
                    LabError::Input(d)
                }
                Origin::Cli => LabError::Input(Diagnostic {
                    help,
                    ..Diagnostic::plain(Path::new(&format!("--set {path}={shown}")), message)
                }),
            }
        };
        let segs: Vec<&str> = path
            .strip_prefix("model.")
            .unwrap_or(path)
            .split('.')
            .collect();
        let mut cur = tree;
        let mut i = 0;
        while i < segs.len() {
            let seg = segs[i];
            let last = i + 1 == segs.len();
            match cur {
                toml::Value::Table(t) => {
                    if last {
                        t.insert(seg.to_string(), value);
                        return Ok(());
                    }
                    cur = t
                        .entry(seg.to_string())
                        .or_insert_with(|| toml::Value::Table(toml::Table::new()));
                    i += 1;
                }
                toml::Value::Array(items) => {
                    let names: Vec<String> = items
                        .iter()
                        .filter_map(|it| it.get("name").and_then(|n| n.as_str()).map(String::from))
                        .collect();
                    // By name; entries without names (faults, partitions) by index.
                    let pos = names.iter().position(|n| n == seg).or_else(|| {
                        seg.parse::<usize>()
                            .ok()
                            .filter(|i| *i < items.len() && items[*i].get("name").is_none())
                    });
                    let Some(pos) = pos else {
                        let help = did_you_mean(seg, names.iter().map(String::as_str))
                            .map(|s| format!("did you mean `{s}`?"));
                        return Err(fail(
                            format!(
                                "path {path:?}: no entry named {seg:?} in `{}`; valid names: {}",
                                segs[..i].join("."),
                                if names.is_empty() && !items.is_empty() {
                                    format!(
                                        "none (entries without names go by index, 0 to {})",
                                        items.len() - 1
                                    )
                                } else if names.is_empty() {
                                    "none".into()
                                } else {
                                    names.join(", ")
                                }
                            ),
                            help,
                        ));
                    };
                    if last {
                        return Err(fail(
                            format!("path {path:?} names a whole component; add the parameter to set (for example {path}.instances)"),
                            None,
                        ));
                    }
                    cur = &mut items[pos];
                    i += 1;
                }
                _ => {
                    return Err(fail(
                        format!(
                            "path {path:?}: `{}` is a value, not a table",
                            segs[..i].join(".")
                        ),
                        None,
                    ))
                }
            }
        }
        Ok(())
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

    /// What a manifest needs to rebuild this experiment's runs: the model file, its model
    /// tree before overrides, and the overrides (`[set]` and `--set`, in order).
    pub fn manifest_inputs(&self) -> (String, toml::Value, Vec<(String, toml::Value)>) {
        (
            self.model_source.path.display().to_string(),
            self.model.clone(),
            self.set
                .iter()
                .map(|(k, v, _)| (k.clone(), v.clone()))
                .collect(),
        )
    }

    /// The trace files (`clients.*.file`) the runs read, as resolved paths, with their
    /// content hashes (from the points `check` resolves).
    pub fn trace_files(&self) -> Result<Vec<(PathBuf, String)>, LabError> {
        let mut out: std::collections::BTreeMap<PathBuf, String> = Default::default();
        if !self.model.to_string().contains("file") {
            return Ok(vec![]);
        }
        for p in self.checked_points().0 {
            let spec = self.spec(p * self.replications as usize)?;
            for c in &spec.model.clients {
                if let (Arrival::Trace, Some(f)) = (c.arrival, &c.file) {
                    let path = resolve_relative(&self.model_source.path, f);
                    if let std::collections::btree_map::Entry::Vacant(e) = out.entry(path) {
                        let text = crate::source::read_capped(
                            e.key(),
                            self.limits.max_trace_bytes,
                            "trace file",
                        )
                        .unwrap_or_default();
                        e.insert(content_hash(text.as_bytes()));
                    }
                }
            }
        }
        Ok(out.into_iter().collect())
    }

    /// Rebuilds an experiment from what a manifest recorded (for `replay`): the same runs,
    /// trace files checked against their recorded hashes.
    #[allow(clippy::too_many_arguments)]
    pub fn from_recorded(
        experiment_file: &str,
        model_file: &str,
        model: toml::Value,
        set: Vec<(String, toml::Value)>,
        sweep: Vec<(String, Vec<toml::Value>)>,
        name: String,
        duration: SimTime,
        warmup: SimTime,
        seed: u64,
        replications: u32,
        output: OutputConfig,
        traces: Vec<(PathBuf, String)>,
    ) -> Experiment {
        let src = |p: &str| Source::from_text(Path::new(p), String::new());
        let model_source = src(model_file);
        Experiment {
            name,
            description: String::new(),
            source: src(experiment_file),
            model_prefix: vec![],
            model_source,
            model,
            duration,
            warmup,
            seed,
            replications,
            set: set
                .into_iter()
                .map(|(k, v)| (k, v, Origin::File("set")))
                .collect(),
            sweep,
            output,
            limits: Limits {
                force: true,
                ..Limits::default()
            },
            trace_hashes: traces.into_iter().collect(),
        }
    }

    /// A fingerprint of the experiment's inputs (files and overrides).
    pub fn fingerprint(&self) -> String {
        let mut h = dssim_engine::rng::fnv1a(self.source.text.as_bytes());
        h ^= dssim_engine::rng::splitmix64(dssim_engine::rng::fnv1a(
            self.model_source.text.as_bytes(),
        ));
        for (k, v, _) in &self.set {
            h = dssim_engine::rng::splitmix64(
                h ^ dssim_engine::rng::fnv1a(format!("{k}={v}").as_bytes()),
            );
        }
        // `instance_timeseries` only when set, so the folders of earlier versions keep
        // their fingerprint.
        let output = OutputConfig {
            instance_timeseries: false,
            ..self.output.clone()
        };
        let mut tail = format!(
            "{}|{}|{}|{}|{:?}",
            self.duration, self.warmup, self.seed, self.replications, output
        );
        if self.output.instance_timeseries {
            tail.push_str("|instance_timeseries");
        }
        h = dssim_engine::rng::splitmix64(h ^ dssim_engine::rng::fnv1a(tail.as_bytes()));
        format!("{h:016x}")
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

/// A file's content hash as the manifest records it.
pub fn content_hash(bytes: &[u8]) -> String {
    format!("fnv1a64:{:016x}", dssim_engine::rng::fnv1a(bytes))
}

/// Splits a " (did you mean ...?)" hint out of a message.
fn split_hint(message: &str) -> (String, Option<String>) {
    let Some(start) = message.find(" (did you mean") else {
        return (message.to_string(), None);
    };
    let Some(len) = message[start..].find(')') else {
        return (message.to_string(), None);
    };
    let hint = message[start + 2..start + len].to_string();
    let rest = format!("{}{}", &message[..start], &message[start + len + 1..]);
    (rest, Some(hint))
}

/// Arrival times in seconds from the first column of a CSV text: one per line, a header
/// line and `#` comments allowed; sorted on return.
pub fn parse_trace(text: &str) -> Result<Vec<f64>, String> {
    let mut out = Vec::new();
    let mut first = true;
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let field = line
            .split(',')
            .next()
            .unwrap_or("")
            .trim()
            .trim_matches('"');
        match field.parse::<f64>() {
            Ok(t) if t.is_finite() && t >= 0.0 => out.push(t),
            Ok(t) => {
                return Err(format!(
                    "line {}: arrival times are seconds, zero or more; found {t}",
                    n + 1
                ))
            }
            Err(_) if first => {} // a header
            Err(_) => {
                return Err(format!(
                    "line {}: expected an arrival time in seconds, found {field:?}",
                    n + 1
                ))
            }
        }
        first = false;
    }
    if out.is_empty() {
        return Err("the trace has no arrival times".into());
    }
    out.sort_by(f64::total_cmp);
    Ok(out)
}

/// A value as it appears in a CSV cell.
pub fn value_text(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => s.clone(),
        toml::Value::Integer(i) => i.to_string(),
        toml::Value::Float(f) => f.to_string(),
        toml::Value::Boolean(b) => b.to_string(),
        other => other.to_string(),
    }
}

/// Parses a `--set` value as a TOML value; anything that is not one is a string.
pub fn parse_cli_value(raw: &str) -> toml::Value {
    let doc = format!("v = {raw}");
    match toml::from_str::<toml::Table>(&doc) {
        Ok(mut t) => t
            .remove("v")
            .unwrap_or(toml::Value::String(raw.to_string())),
        Err(_) => toml::Value::String(raw.trim_matches('"').to_string()),
    }
}

/// The file's stem as a name (the experiment's name when the file gives none): characters
/// outside the name rule become `_`, so it is always a valid name.
fn stem(path: &Path) -> String {
    let s: String = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .take(64)
        .collect();
    let s = s.trim_start_matches(['.', '-']).to_string();
    if s.is_empty() {
        "experiment".into()
    } else {
        s
    }
}

/// A swept path becomes a CSV column and its values CSV cells: every part of the path
/// follows the name rule, and no value holds a control character (CR, LF).
fn check_swept(path: &str, values: &toml::Value) -> Result<(), String> {
    for seg in path.strip_prefix("model.").unwrap_or(path).split('.') {
        dssim_components::model::check_name(seg, false)
            .map_err(|m| format!("[sweep] path {path:?}: each part is a name or an index; {m}"))?;
    }
    if let toml::Value::Array(vals) = values {
        for v in vals {
            if value_text(v).chars().any(char::is_control) {
                return Err(format!(
                    "[sweep] {path:?}: a value holds a control character (a line break?)"
                ));
            }
        }
    }
    Ok(())
}

fn resolve_relative(base: &Path, rel: &str) -> PathBuf {
    let p = Path::new(rel);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.parent().unwrap_or(Path::new(".")).join(p)
    }
}

fn source_error(src: &Source, path: &[&str], message: &str, help: Option<String>) -> LabError {
    LabError::Input(Diagnostic {
        file: src.path.clone(),
        text: Some(src.text.clone()),
        span: if path.is_empty() {
            None
        } else {
            src.locate(path)
        },
        message: message.to_string(),
        help,
    })
}

fn cli_error(message: String) -> LabError {
    LabError::Input(Diagnostic::plain(Path::new("--set"), message))
}

#[cfg(test)]
mod docs_tests {
    use super::*;

    /// The keys serde lists when it meets an unknown one.
    fn accepted(text: &str) -> Vec<String> {
        let err = toml::from_str::<ExperimentFile>(text).expect_err("unknown key");
        let msg = err.message().to_string();
        let list = msg.split("expected one of").nth(1).unwrap_or("");
        list.split(',')
            .map(|k| k.trim().trim_matches('`').to_string())
            .filter(|k| !k.is_empty())
            .collect()
    }

    #[test]
    fn the_reference_lists_exactly_the_keys_the_loader_accepts() {
        let documented = |prefix: &str| -> Vec<String> {
            EXPERIMENT_DOCS
                .iter()
                .filter_map(|d| {
                    let rest = if prefix.is_empty() {
                        Some(d.0)
                    } else {
                        d.0.strip_prefix(prefix)
                    };
                    rest.filter(|r| !r.contains('.')).map(String::from)
                })
                .collect()
        };
        let mut top = accepted("nonsense = 1");
        let mut want = documented("");
        top.sort();
        want.sort();
        assert_eq!(top, want);
        let mut out = accepted("[output]\nnonsense = 1");
        let mut want = documented("output.");
        out.sort();
        want.sort();
        assert_eq!(out, want);
        // Every documented experiment key can be set from the command line.
        for k in EXPERIMENT_KEYS {
            assert!(
                EXPERIMENT_DOCS.iter().any(|d| d.0 == *k),
                "{k} undocumented"
            );
        }
    }
}

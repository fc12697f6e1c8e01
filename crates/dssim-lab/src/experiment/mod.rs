//! Experiments: a model, how long to run it, what to vary. Expands into a plan of runs
//! (sweep points × replications), each with its fully resolved model and seed.
//!
//! This file reads the experiment file (or a bare model) and checks its own keys;
//! `overrides` applies `[set]`, `--set` and sweep values to the model tree, `plan` expands
//! the sweep into runs, and `recorded` holds what a manifest records (trace files, the
//! inputs `replay` rebuilds from, the fingerprint).

mod overrides;
mod plan;
mod recorded;

use std::path::{Path, PathBuf};

use dssim_components::trace::Sample;
use dssim_components::units::Dur;
use dssim_components::{ModelConfig, RunOptions};
use dssim_engine::SimTime;
use serde::{Deserialize, Serialize};

use crate::error::{Diagnostic, LabError};
use crate::limits::Limits;
use crate::source::Source;

pub use overrides::{parse_cli_value, value_text};
pub use plan::FULL_CHECK_POINTS;
pub use recorded::{content_hash, parse_trace};

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

    pub(super) fn check_numbers(&self) -> Result<(), LabError> {
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

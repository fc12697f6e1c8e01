//! manifest.json: what produced an output folder (tool version, input fingerprint, command
//! line, every run's fully expanded configuration and seed) and the wall-clock figures. It
//! is the only output file that may differ between two runs of the same experiment.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use dssim_components::{ModelConfig, RunOptions};
use dssim_engine::SimTime;
use serde::{Deserialize, Serialize};

use crate::error::LabError;
use crate::experiment::{Experiment, RunSpec};
use crate::runner::RunSettings;

/// One run's entry.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RunRecord {
    /// Run id.
    pub run: usize,
    /// Sweep point.
    #[serde(default)]
    pub point: usize,
    /// Replication.
    #[serde(default)]
    pub replication: u32,
    /// Run seed.
    #[serde(default)]
    pub seed: u64,
    /// Swept values.
    #[serde(default)]
    pub swept: Vec<String>,
    /// Wall seconds it took (absent until it ran).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wall_s: Option<f64>,
    /// Events per wall second.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub events_per_s: Option<f64>,
    /// The model as run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<ModelConfig>,
}

/// A trace file read by the runs.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TraceFileRecord {
    /// Its path as resolved when the runs read it.
    pub path: String,
    /// Its content hash (`fnv1a64:...`).
    pub hash: String,
}

/// A finished run's wall seconds and events per wall second.
pub type Timing = Option<(f64, Option<f64>)>;

/// The manifest.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Manifest {
    /// dssim version.
    pub tool: String,
    /// Experiment name.
    pub experiment: String,
    /// Experiment file.
    pub experiment_file: String,
    /// Fingerprint of the inputs (files and overrides).
    pub fingerprint: String,
    /// Command line.
    pub command: Vec<String>,
    /// Simulated duration.
    pub duration: String,
    /// Warm-up.
    pub warmup: String,
    /// Time-series width.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeseries: Option<String>,
    /// Requests traced per run (`[output] trace`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub trace: u32,
    /// Which requests are traced (`[output] trace_sample`).
    #[serde(
        default,
        skip_serializing_if = "dssim_components::trace::Sample::is_first"
    )]
    pub trace_sample: dssim_components::trace::Sample,
    /// Whether instances.csv is written (`[output] instance_timeseries`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub instance_timeseries: bool,
    /// Experiment seed.
    pub seed: u64,
    /// Replications per point.
    pub replications: u32,
    /// Runs in the whole plan.
    pub total_runs: usize,
    /// Swept paths.
    pub swept: Vec<String>,
    /// Shard `[k, n]`, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<(usize, usize)>,
    /// The model file.
    #[serde(default)]
    pub model_file: String,
    /// The model before overrides (`[set]`, `--set`) and the sweep; every run's model is
    /// this with `set` and its point's swept values applied (what `replay` rebuilds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<serde_json::Value>,
    /// Overrides applied to every run, in order: `[path, value]`.
    #[serde(default)]
    pub set: Vec<(String, serde_json::Value)>,
    /// The sweep: `[path, [values]]`, the last path varying fastest.
    #[serde(default)]
    pub sweep: Vec<(String, Vec<serde_json::Value>)>,
    /// Trace files the runs read (`clients.*.file`), by path and content hash; the arrival
    /// times are not copied here.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub trace_files: Vec<TraceFileRecord>,
    /// Whether every run of the plan (or shard) is recorded.
    pub complete: bool,
    /// Byte lengths of the files whose rows per run vary (components.csv), written when
    /// the folder is complete; `--resume` re-runs the last run of a file whose length
    /// changed since (it may have been cut at a line boundary).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub file_lengths: BTreeMap<String, u64>,
    /// Wall seconds of the last invocation.
    #[serde(default)]
    pub wall_s: f64,
    /// Runs of this folder.
    pub runs: Vec<RunRecord>,
}

impl Manifest {
    /// A manifest for the plan of `exp` (its run records are written from the plan, see
    /// [`Manifest::write_plan`]).
    pub fn new(exp: &Experiment, settings: &RunSettings) -> Result<Self, LabError> {
        let (model_file, model, set) = exp.manifest_inputs();
        let json = |v: &toml::Value| serde_json::to_value(v).unwrap_or(serde_json::Value::Null);
        Ok(Manifest {
            tool: format!("dssim {}", env!("CARGO_PKG_VERSION")),
            experiment: exp.name.clone(),
            experiment_file: exp.source.path.display().to_string(),
            fingerprint: exp.fingerprint(),
            command: settings.command.clone(),
            duration: exp.duration.to_string(),
            warmup: exp.warmup.to_string(),
            timeseries: exp.output.timeseries.map(|d| d.0.to_string()),
            trace: exp.output.trace as u32,
            trace_sample: exp.output.trace_sample,
            instance_timeseries: exp.output.instance_timeseries,
            seed: exp.seed,
            replications: exp.replications,
            total_runs: exp.runs(),
            swept: exp.swept_paths(),
            shard: settings.shard,
            model_file,
            model: Some(json(&model)),
            set: set.iter().map(|(k, v)| (k.clone(), json(v))).collect(),
            sweep: exp
                .sweep
                .iter()
                .map(|(k, vs)| (k.clone(), vs.iter().map(json).collect()))
                .collect(),
            trace_files: exp
                .trace_files()?
                .into_iter()
                .map(|(p, hash)| TraceFileRecord {
                    path: p.display().to_string(),
                    hash,
                })
                .collect(),
            complete: false,
            file_lengths: BTreeMap::new(),
            wall_s: 0.0,
            runs: Vec::new(),
        })
    }

    /// Reads `dir/manifest.json`.
    pub fn read(dir: &Path) -> Result<Manifest, LabError> {
        let path = dir.join("manifest.json");
        let text = std::fs::read_to_string(&path)
            .map_err(|e| LabError::io(&path, format!("cannot read: {e}")))?;
        serde_json::from_str(&text)
            .map_err(|e| LabError::io(&path, format!("not a dssim manifest: {e}")))
    }

    /// Whether `old` (the folder's manifest) was written by this same plan: experiment,
    /// files, seed, overrides and shard.
    pub fn same_plan(&self, old: &Manifest) -> bool {
        old.fingerprint == self.fingerprint && old.shard == self.shard
    }

    /// The keys whose values differ between `old` (a folder's manifest) and this one, as
    /// `key: OLD in the folder, NEW now`: the experiment's own keys, the overrides (`--set`
    /// and `[set]`), the sweep and every path of the base model.
    pub fn differences(&self, old: &Manifest) -> Vec<String> {
        let mut out = Vec::new();
        let mut cmp = |key: &str, a: String, b: String| {
            if a != b {
                out.push(format!("{key}: {a} in the folder, {b} now"));
            }
        };
        cmp(
            "experiment",
            old.experiment.clone(),
            self.experiment.clone(),
        );
        cmp("duration", old.duration.clone(), self.duration.clone());
        cmp("warmup", old.warmup.clone(), self.warmup.clone());
        cmp("seed", old.seed.to_string(), self.seed.to_string());
        cmp(
            "replications",
            old.replications.to_string(),
            self.replications.to_string(),
        );
        let opt = |t: &Option<String>| t.clone().unwrap_or_else(|| "none".into());
        cmp(
            "output.timeseries",
            opt(&old.timeseries),
            opt(&self.timeseries),
        );
        cmp(
            "output.trace",
            old.trace.to_string(),
            self.trace.to_string(),
        );
        cmp(
            "output.instance_timeseries",
            old.instance_timeseries.to_string(),
            self.instance_timeseries.to_string(),
        );
        cmp("sweep", old.swept.join(", "), self.swept.join(", "));
        let shard =
            |s: Option<(usize, usize)>| s.map_or("none".into(), |(k, n)| format!("{k}/{n}"));
        cmp("--shard", shard(old.shard), shard(self.shard));
        // Overrides and the base model, path by path.
        let paths = |m: &Manifest| {
            let mut flat = BTreeMap::new();
            if let Some(model) = &m.model {
                flatten("", model, &mut flat);
            }
            for (k, v) in &m.set {
                flatten(k, v, &mut flat);
            }
            for (k, vs) in &m.sweep {
                flat.insert(
                    format!("sweep {k}"),
                    serde_json::Value::Array(vs.clone()).to_string(),
                );
            }
            flat
        };
        let (fa, fb) = (paths(old), paths(self));
        let keys: BTreeSet<&String> = fa.keys().chain(fb.keys()).collect();
        for k in keys {
            let show =
                |m: &BTreeMap<String, String>| m.get(k).cloned().unwrap_or_else(|| "absent".into());
            if fa.get(k) != fb.get(k) {
                out.push(format!(
                    "{k}: {} in the folder, {} now",
                    show(&fa),
                    show(&fb)
                ));
            }
        }
        out
    }

    /// The timings recorded by an earlier, interrupted invocation, for the runs in `done`,
    /// into `timings` (indexed by the run's position in `plan`).
    pub fn keep_previous(
        dir: &Path,
        done: &BTreeSet<usize>,
        plan: &crate::runner::Plan,
        timings: &mut [Timing],
    ) {
        if done.is_empty() {
            return;
        }
        if let Ok(old) = Manifest::read(dir) {
            for r in old.runs {
                if done.contains(&r.run) {
                    if let Some(i) = plan.index_of(r.run) {
                        timings[i] = r.wall_s.map(|w| (w, r.events_per_s));
                    }
                }
            }
        }
    }

    /// Marks the end of an invocation.
    pub fn finish(&mut self, wall_s: f64, complete: bool) {
        self.wall_s = wall_s;
        self.complete = complete;
    }

    /// Records the lengths of the folder's files whose rows per run vary (when complete).
    pub fn record_lengths(&mut self, dir: &Path) {
        self.file_lengths = if self.complete {
            crate::output::file_lengths(dir)
        } else {
            BTreeMap::new()
        };
    }

    /// Writes `dir/manifest.json` (atomically: a temporary file renamed over it), with the
    /// run records it holds.
    pub fn write(&self, dir: &Path) -> Result<(), LabError> {
        self.write_with(dir, self.runs.iter().cloned())
    }

    /// Writes `dir/manifest.json` with one record per run of `plan`, made as it is written
    /// (memory independent of the number of runs), timings from `timings`.
    pub fn write_plan(
        &self,
        dir: &Path,
        exp: &Experiment,
        plan: &crate::runner::Plan,
        timings: &[Timing],
    ) -> Result<(), LabError> {
        self.write_with(
            dir,
            (0..plan.len()).map(|i| {
                let run = plan.id(i);
                let (point, replication, seed, swept) = exp.run_info(run);
                let t = timings.get(i).copied().flatten();
                RunRecord {
                    run,
                    point,
                    replication,
                    seed,
                    swept,
                    wall_s: t.map(|t| t.0),
                    events_per_s: t.and_then(|t| t.1),
                    model: None,
                }
            }),
        )
    }

    fn write_with(
        &self,
        dir: &Path,
        runs: impl Iterator<Item = RunRecord>,
    ) -> Result<(), LabError> {
        use std::io::Write;
        let path = dir.join("manifest.json");
        let tmp = dir.join("manifest.json.tmp");
        let head = Manifest {
            runs: Vec::new(),
            ..self.clone()
        };
        let text = serde_json::to_string_pretty(&head).map_err(|e| LabError::io(&path, e))?;
        // `runs` is the last field: its empty list is replaced by one record per line.
        let head = text
            .strip_suffix("[]\n}")
            .ok_or_else(|| LabError::io(&path, "manifest layout: runs is not the last field"))?;
        let res = (|| -> std::io::Result<()> {
            let mut w = std::io::BufWriter::new(std::fs::File::create(&tmp)?);
            w.write_all(head.as_bytes())?;
            w.write_all(b"[")?;
            for (i, r) in runs.enumerate() {
                w.write_all(if i == 0 { b"\n    " } else { b",\n    " })?;
                serde_json::to_writer(&mut w, &r)?;
            }
            w.write_all(b"\n  ]\n}\n")?;
            w.into_inner().map_err(|e| e.into_error())?.sync_all()
        })();
        if let Err(e) = res {
            let _ = std::fs::remove_file(&tmp);
            return Err(LabError::io(&tmp, format!("cannot write: {e}")));
        }
        std::fs::rename(&tmp, &path).map_err(|e| LabError::io(&path, e))
    }

    /// The spec of recorded run `run`: from the run's own model in manifests that hold
    /// one, else rebuilt from the recorded model, overrides and sweep (trace files checked
    /// against their recorded hashes). An unknown run is an input error.
    pub fn spec(&self, run: usize) -> Result<RunSpec, LabError> {
        let unknown = || {
            LabError::Input(crate::error::Diagnostic::plain(
                Path::new("--run"),
                format!(
                    "run {run} is not in this folder's manifest (it records runs 0 to {} of {})",
                    self.total_runs.saturating_sub(1),
                    self.experiment
                ),
            ))
        };
        let dur = |s: &str| dssim_engine::parse_duration(s).unwrap_or(SimTime::ZERO);
        let opts = |seed| RunOptions {
            seed,
            duration: dur(&self.duration),
            warmup: dur(&self.warmup),
            timeseries: self.timeseries.as_deref().map(dur),
            trace: self.trace,
            trace_sample: self.trace_sample,
        };
        if let Some(r) = self.runs.iter().find(|r| r.run == run) {
            if let Some(model) = r.model.clone() {
                return Ok(RunSpec {
                    run,
                    point: r.point,
                    replication: r.replication,
                    seed: r.seed,
                    swept: r.swept.clone(),
                    model,
                    opts: opts(r.seed),
                });
            }
        } else if !self.runs.is_empty() || run >= self.total_runs {
            return Err(unknown());
        }
        let Some(model) = &self.model else {
            return Err(LabError::Run(format!(
                "the manifest has no model for run {run}"
            )));
        };
        let bad = |e: String| LabError::Run(format!("the manifest's recorded model: {e}"));
        let tree = |v: &serde_json::Value| crate::source::json_to_toml(v).map_err(bad);
        let exp = Experiment::from_recorded(
            &self.experiment_file,
            &self.model_file,
            tree(model)?,
            self.set
                .iter()
                .map(|(k, v)| Ok((k.clone(), tree(v)?)))
                .collect::<Result<_, LabError>>()?,
            self.sweep
                .iter()
                .map(|(k, vs)| Ok((k.clone(), vs.iter().map(tree).collect::<Result<_, _>>()?)))
                .collect::<Result<_, LabError>>()?,
            self.experiment.clone(),
            dur(&self.duration),
            dur(&self.warmup),
            self.seed,
            self.replications,
            crate::experiment::OutputConfig {
                timeseries: self
                    .timeseries
                    .as_deref()
                    .map(|t| dssim_components::units::Dur(dur(t))),
                trace: u64::from(self.trace),
                trace_sample: self.trace_sample,
                instance_timeseries: self.instance_timeseries,
            },
            self.trace_files
                .iter()
                .map(|t| (std::path::PathBuf::from(&t.path), t.hash.clone()))
                .collect(),
        );
        exp.spec(run)
    }
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// A model as `path = value` pairs, list entries addressed by their name as in `--set`
/// (`services.app.workers`).
fn flatten(prefix: &str, v: &serde_json::Value, out: &mut BTreeMap<String, String>) {
    let join = |k: &str| {
        if prefix.is_empty() {
            k.to_string()
        } else {
            format!("{prefix}.{k}")
        }
    };
    match v {
        serde_json::Value::Object(m) => {
            for (k, v) in m {
                flatten(&join(k), v, out);
            }
        }
        serde_json::Value::Array(items)
            if !items.is_empty() && items.iter().all(|i| i.get("name").is_some()) =>
        {
            for i in items {
                let name = i.get("name").and_then(|n| n.as_str()).unwrap_or_default();
                flatten(&join(name), i, out);
            }
        }
        other => {
            out.insert(prefix.to_string(), other.to_string());
        }
    }
}

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

impl RunRecord {
    /// Timing of a finished run.
    pub fn timing(run: usize, wall_s: f64, events: u64) -> Self {
        RunRecord {
            run,
            point: 0,
            replication: 0,
            seed: 0,
            swept: vec![],
            wall_s: Some(wall_s),
            events_per_s: (wall_s > 0.0).then(|| events as f64 / wall_s),
            model: None,
        }
    }
}

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
    /// Whether every run of the plan (or shard) is recorded.
    pub complete: bool,
    /// Wall seconds of the last invocation.
    #[serde(default)]
    pub wall_s: f64,
    /// Runs of this folder.
    pub runs: Vec<RunRecord>,
}

impl Manifest {
    /// A manifest for `specs`.
    pub fn new(exp: &Experiment, settings: &RunSettings, specs: &[RunSpec]) -> Self {
        Manifest {
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
            seed: exp.seed,
            replications: exp.replications,
            total_runs: exp.runs(),
            swept: exp.swept_paths(),
            shard: settings.shard,
            complete: false,
            wall_s: 0.0,
            runs: specs
                .iter()
                .map(|s| RunRecord {
                    run: s.run,
                    point: s.point,
                    replication: s.replication,
                    seed: s.seed,
                    swept: s.swept.clone(),
                    wall_s: None,
                    events_per_s: None,
                    model: Some(s.model.clone()),
                })
                .collect(),
        }
    }

    /// Reads `dir/manifest.json`.
    pub fn read(dir: &Path) -> Result<Manifest, LabError> {
        let path = dir.join("manifest.json");
        let text = std::fs::read_to_string(&path)
            .map_err(|e| LabError::io(&path, format!("cannot read: {e}")))?;
        serde_json::from_str(&text)
            .map_err(|e| LabError::io(&path, format!("not a dssim manifest: {e}")))
    }

    /// Refuses to resume into a folder written by another experiment.
    pub fn check_resumable(&self, dir: &Path) -> Result<(), LabError> {
        if !dir.join("manifest.json").exists() {
            return Ok(());
        }
        let old = Manifest::read(dir)?;
        if old.fingerprint != self.fingerprint || old.shard != self.shard {
            let diffs = self.differences(&old);
            let what = if diffs.is_empty() {
                "the same settings, but the text of the experiment or model file changed".into()
            } else {
                diffs.join("; ")
            };
            return Err(LabError::Run(format!(
                "{} holds results of a different experiment, overrides or shard (fingerprint {} vs {}): {what}; \
                 the folder was written by `{}`; use another --out or remove it",
                dir.display(),
                old.fingerprint,
                self.fingerprint,
                old.command.join(" ")
            )));
        }
        Ok(())
    }

    /// The keys whose values differ between `old` (a folder's manifest) and this one, as
    /// `key: OLD in the folder, NEW now`: the experiment's own keys, then every model path of
    /// the first run (the one that `--set` and `[set]` change for every run).
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
            "output.trace_sample",
            format!("{:?}", old.trace_sample).to_lowercase(),
            format!("{:?}", self.trace_sample).to_lowercase(),
        );
        cmp("sweep", old.swept.join(", "), self.swept.join(", "));
        cmp(
            "runs",
            old.total_runs.to_string(),
            self.total_runs.to_string(),
        );
        let shard =
            |s: Option<(usize, usize)>| s.map_or("none".into(), |(k, n)| format!("{k}/{n}"));
        cmp("--shard", shard(old.shard), shard(self.shard));
        let first = |m: &Manifest| {
            m.runs
                .iter()
                .find(|r| r.run == 0)
                .or(m.runs.first())
                .and_then(|r| r.model.as_ref())
                .and_then(|m| serde_json::to_value(m).ok())
        };
        if let (Some(a), Some(b)) = (first(old), first(self)) {
            let (mut fa, mut fb) = (BTreeMap::new(), BTreeMap::new());
            flatten("", &a, &mut fa);
            flatten("", &b, &mut fb);
            let keys: BTreeSet<&String> = fa.keys().chain(fb.keys()).collect();
            for k in keys {
                let show = |m: &BTreeMap<String, String>| {
                    m.get(k).cloned().unwrap_or_else(|| "absent".into())
                };
                if fa.get(k) != fb.get(k) {
                    out.push(format!(
                        "{k}: {} in the folder, {} now",
                        show(&fa),
                        show(&fb)
                    ));
                }
            }
        }
        out
    }

    /// Keeps the timings of runs recorded by an earlier, interrupted invocation.
    pub fn keep_previous(&mut self, dir: &Path, done: &BTreeSet<usize>) {
        if done.is_empty() {
            return;
        }
        if let Ok(old) = Manifest::read(dir) {
            let old: BTreeMap<usize, RunRecord> =
                old.runs.into_iter().map(|r| (r.run, r)).collect();
            for r in &mut self.runs {
                if let Some(o) = old.get(&r.run) {
                    r.wall_s = o.wall_s;
                    r.events_per_s = o.events_per_s;
                }
            }
        }
    }

    /// Records a run's timing.
    pub fn record(&mut self, t: RunRecord) {
        if let Some(r) = self.runs.iter_mut().find(|r| r.run == t.run) {
            r.wall_s = t.wall_s;
            r.events_per_s = t.events_per_s;
        }
    }

    /// Marks the end of an invocation.
    pub fn finish(&mut self, wall_s: f64, complete: bool) {
        self.wall_s = wall_s;
        self.complete = complete;
    }

    /// Writes `dir/manifest.json` (atomically: a temporary file renamed over it).
    pub fn write(&self, dir: &Path) -> Result<(), LabError> {
        let path = dir.join("manifest.json");
        let tmp = dir.join("manifest.json.tmp");
        let text = serde_json::to_string_pretty(self).map_err(|e| LabError::io(&path, e))?;
        std::fs::write(&tmp, text + "\n").map_err(|e| LabError::io(&tmp, e))?;
        std::fs::rename(&tmp, &path).map_err(|e| LabError::io(&path, e))
    }

    /// The spec of recorded run `run`.
    pub fn spec(&self, run: usize) -> Result<RunSpec, LabError> {
        let r =
            self.runs.iter().find(|r| r.run == run).ok_or_else(|| {
                LabError::Run(format!("run {run} is not in this folder's manifest"))
            })?;
        let model = r
            .model
            .clone()
            .ok_or_else(|| LabError::Run(format!("the manifest has no model for run {run}")))?;
        let dur = |s: &str| dssim_engine::parse_duration(s).unwrap_or(SimTime::ZERO);
        Ok(RunSpec {
            run,
            point: r.point,
            replication: r.replication,
            seed: r.seed,
            swept: r.swept.clone(),
            model,
            opts: RunOptions {
                seed: r.seed,
                duration: dur(&self.duration),
                warmup: dur(&self.warmup),
                timeseries: self.timeseries.as_deref().map(dur),
                trace: self.trace,
                trace_sample: self.trace_sample,
            },
        })
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

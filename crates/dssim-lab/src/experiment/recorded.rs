//! Recorded inputs: the trace files runs read (with their content hashes), what a
//! manifest records to rebuild an experiment for `replay`, and the fingerprint of the inputs.

use std::path::{Path, PathBuf};

use dssim_components::client::Arrival;
use dssim_components::ModelConfig;
use dssim_engine::SimTime;

use super::{resolve_relative, Experiment, Origin, OutputConfig};
use crate::error::LabError;
use crate::limits::Limits;
use crate::source::Source;

impl Experiment {
    /// Reads the arrival-time files of trace clients (`file`, relative to the model file)
    /// into their `trace`: the components crate reads no files.
    pub(super) fn load_traces(&self, model: &mut ModelConfig) -> Result<(), LabError> {
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

/// A file's content hash as the manifest records it.
pub fn content_hash(bytes: &[u8]) -> String {
    format!("fnv1a64:{:016x}", dssim_engine::rng::fnv1a(bytes))
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

//! Overrides: `[set]`, `--set` and the sweep values of a point applied to the model tree,
//! and the errors they cause blamed on the override that caused them.

use std::path::{Path, PathBuf};

use dssim_components::did_you_mean;
use dssim_components::trace::Sample;
use dssim_components::units::Dur;
use dssim_components::ModelConfig;
use dssim_engine::SimTime;

use super::{Experiment, Origin, EXPERIMENT_KEYS, MAX_TRACE};
use crate::error::{Diagnostic, LabError};

impl Experiment {
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

    /// When the model loads alone but not after its overrides, the first override (of
    /// `[set]`, `--set`, then the sweep values of this point) after which it fails to load,
    /// as a diagnostic that points at that override: the `--set` argument itself, or its
    /// value in the experiment file.
    pub(super) fn blame_override(
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

    pub(super) fn describe_overrides(&self, values: &[(&str, &toml::Value)]) -> String {
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
    pub(super) fn model_errors(&self, errs: Vec<dssim_components::ConfigError>) -> LabError {
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
    pub(super) fn apply(
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

pub(super) fn cli_error(message: String) -> LabError {
    LabError::Input(Diagnostic::plain(Path::new("--set"), message))
}

//! `dssim explain [SECTION | FILE]`: the reference of every key (generated from the
//! loader's own structs, see `dssim_components::explain`), or the keys of one file with
//! their effective values.

use std::path::Path;

use dssim_components::explain::{self, Param};
use dssim_lab::{Diagnostic, LabError};

/// Every documented key: the experiment file's own, then the model's.
pub fn all_params(section: Option<&str>) -> Vec<Param> {
    let experiment = dssim_lab::experiment::EXPERIMENT_DOCS
        .iter()
        .filter(|d| match section {
            None | Some("experiment") => true,
            Some(s) => d.0 == s || d.0.starts_with(&format!("{s}.")),
        })
        .map(|d| Param {
            path: d.0.to_string(),
            kind: d.1.to_string(),
            values: String::new(),
            default: d.2.to_string(),
            doc: d.3.to_string(),
        });
    let model = match section {
        Some("experiment") => Vec::new(),
        c => explain::params(c.map(|c| c.strip_prefix("model.").unwrap_or(c))),
    };
    experiment.chain(model).collect()
}

/// The reference as text: one block per key.
pub fn render(params: &[Param]) -> String {
    let mut o = String::new();
    for p in params {
        o.push_str(&format!(
            "{}\n    {}  [default: {}]\n",
            p.path, p.kind, p.default
        ));
        if !p.doc.is_empty() {
            o.push_str(&format!("    {}\n", p.doc));
        }
        let mut lines = p.values.lines();
        if let Some(first) = lines.next() {
            o.push_str(&format!("    values: {first}\n"));
            for l in lines {
                o.push_str(&format!("      {l}\n"));
            }
        }
    }
    o
}

/// `dssim explain SECTION`: the keys under a section or path; exit 2 with the sections
/// and a "did you mean" when nothing matches.
pub fn section(component: Option<&str>) -> Result<String, LabError> {
    let params = all_params(component);
    if params.is_empty() {
        let c = component.unwrap_or_default();
        let mut sections = vec!["experiment", "output"];
        sections.extend(explain::sections());
        let all: Vec<String> = all_params(None).into_iter().map(|p| p.path).collect();
        let help = dssim_components::did_you_mean(c, sections.iter().copied())
            .or_else(|| dssim_components::did_you_mean(c, all.iter().map(String::as_str)))
            .map(|s| format!("did you mean `{s}`?"));
        return Err(LabError::Input(Diagnostic {
            help,
            ..Diagnostic::plain(
                Path::new("explain"),
                format!(
                    "no parameters under {c:?}; sections: {}",
                    sections.join(", ")
                ),
            )
        }));
    }
    Ok(render(&params))
}

/// Whether `explain`'s argument names a file rather than a section.
pub fn is_file(arg: &str) -> bool {
    arg.ends_with(".toml") || arg.ends_with(".json") || Path::new(arg).is_file()
}

/// A JSON value as it would be written in the file.
fn show(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => format!("{s:?}"),
        serde_json::Value::Array(a) => {
            let parts: Vec<String> = a.iter().map(show).collect();
            format!("[{}]", parts.join(", "))
        }
        serde_json::Value::Object(m) => {
            let parts: Vec<String> = m
                .iter()
                .map(|(k, v)| format!("{k} = {}", show(v)))
                .collect();
            format!("{{ {} }}", parts.join(", "))
        }
        other => other.to_string(),
    }
}

/// The keys of one table, effective values first-hand from the loaded model: given keys
/// with their value, the rest with their default (marked), absent tables as "none".
fn table(
    out: &mut Vec<(String, String, bool)>,
    schema: &[Param],
    schema_prefix: &str,
    user_prefix: &str,
    value: &serde_json::Map<String, serde_json::Value>,
) {
    let direct = schema.iter().filter(|p| {
        let rest = if schema_prefix.is_empty() {
            Some(p.path.as_str())
        } else {
            p.path
                .strip_prefix(schema_prefix)
                .and_then(|r| r.strip_prefix('.'))
        };
        rest.is_some_and(|r| !r.contains('.'))
    });
    for p in direct {
        let key = p.path.rsplit('.').next().unwrap_or(&p.path);
        let user = if user_prefix.is_empty() {
            key.to_string()
        } else {
            format!("{user_prefix}.{key}")
        };
        match value.get(key) {
            Some(serde_json::Value::Object(m)) if p.kind == "table" => {
                table(out, schema, &p.path, &user, m);
            }
            Some(serde_json::Value::Array(items)) if p.kind == "list of tables" => {
                if items.is_empty() {
                    out.push((user.clone(), "[] (none)".into(), false));
                }
                for (i, item) in items.iter().enumerate() {
                    let Some(m) = item.as_object() else { continue };
                    let id = m
                        .get("name")
                        .and_then(|n| n.as_str())
                        .map_or_else(|| i.to_string(), String::from);
                    table(out, schema, &p.path, &format!("{user}.{id}"), m);
                }
            }
            Some(v) => out.push((user, show(v), false)),
            None => out.push((user, p.default.clone(), true)),
        }
    }
}

/// `dssim explain FILE`: every key of the file's model (sweep point 0 after `[set]` and
/// `--set`) and of the experiment, with its effective value; defaults are marked.
pub fn file(exp: &dssim_lab::Experiment) -> Result<String, LabError> {
    let spec = exp.spec(0)?;
    let model = serde_json::to_value(&spec.model)
        .map_err(|e| LabError::Run(format!("cannot show the model: {e}")))?;
    let schema = explain::params(None);
    let mut rows = vec![
        (
            "duration".to_string(),
            format!("{:?}", exp.duration.to_string()),
            false,
        ),
        (
            "warmup".to_string(),
            format!("{:?}", exp.warmup.to_string()),
            false,
        ),
        ("seed".to_string(), exp.seed.to_string(), false),
        (
            "replications".to_string(),
            exp.replications.to_string(),
            false,
        ),
        (
            "output.timeseries".to_string(),
            exp.output
                .timeseries
                .map_or("none".into(), |d| format!("{:?}", d.0.to_string())),
            exp.output.timeseries.is_none(),
        ),
        (
            "output.instance_timeseries".to_string(),
            exp.output.instance_timeseries.to_string(),
            !exp.output.instance_timeseries,
        ),
        (
            "output.trace".to_string(),
            exp.output.trace.to_string(),
            exp.output.trace == 0,
        ),
    ];
    if let Some(m) = model.as_object() {
        table(&mut rows, &schema, "", "", m);
    }
    let width = rows.iter().map(|r| r.0.len()).max().unwrap_or(0);
    let mut o = format!("{}: the keys of {}", exp.name, exp.source.path.display());
    if exp.points() > 1 {
        let swept: Vec<String> = exp
            .sweep
            .iter()
            .map(|(p, v)| format!("{p} ({} values)", v.len()))
            .collect();
        o.push_str(&format!(
            " at sweep point 0 of {} (swept: {})",
            exp.points(),
            swept.join(", ")
        ));
    }
    o.push_str("; a key the model leaves without a value shows its default, marked (default)\n");
    for (k, v, default) in rows {
        let mark = if default { "  (default)" } else { "" };
        o.push_str(&format!("{k:<width$} = {v}{mark}\n"));
    }
    Ok(o)
}

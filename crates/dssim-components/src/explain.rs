//! `dssim explain`: every parameter of every component, its default and meaning, generated
//! at build time from the configuration structs themselves (see `build.rs`), so the
//! reference cannot drift from what the loader accepts.

include!(concat!(env!("OUT_DIR"), "/config_docs.rs"));

/// One documented parameter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Param {
    /// Path as users write it (`clients.rate`, `clients.retries.max`).
    pub path: String,
    /// What kind of value it takes.
    pub kind: String,
    /// Its default, or "required".
    pub default: String,
    /// What it means (with its unit).
    pub doc: String,
}

/// The config struct behind a type as written (`Vec<ClientConfig>` -> `ClientConfig`).
fn inner_type(ty: &str) -> &str {
    let mut t = ty;
    for w in ["Option<", "Vec<"] {
        if let Some(rest) = t.strip_prefix(w) {
            t = rest.trim_end_matches('>');
        }
    }
    t
}

fn describe(ty: &str) -> String {
    let inner = inner_type(ty);
    let base = match inner {
        "String" => "text".to_string(),
        "f64" => "number".to_string(),
        "u32" | "u64" | "usize" => "whole number".to_string(),
        "bool" => "true | false".to_string(),
        "Dur" => "duration (\"5ms\", \"2s\")".to_string(),
        "DistSpec" => "distribution (\"exp(5ms)\")".to_string(),
        "Popularity" => "uniform | zipf(a) | hotspot(f, p)".to_string(),
        "Bytes" => "size (\"2KB\", \"8GiB\")".to_string(),
        "Bandwidth" => "bandwidth (\"1Gbps\", \"100Mbps\")".to_string(),
        "Shedding" => "none | queue | deadline(500ms) | probabilistic(0.8)".to_string(),
        "Target" => "number, or a duration for p95 (\"200ms\")".to_string(),
        "Step" => "share (\"50%\") or count (2)".to_string(),
        other => match CONFIG_ENUMS.iter().find(|e| e.0 == other) {
            Some(e) => e.1.to_string(),
            None if other.ends_with("Config") => "table".to_string(),
            None => other.to_string(),
        },
    };
    if ty.starts_with("Vec<") {
        format!("list of {base}")
    } else {
        base
    }
}

fn walk(prefix: &str, ty: &str, out: &mut Vec<Param>, depth: usize) {
    if depth > 6 {
        return;
    }
    for (_, field, fty, default, doc) in CONFIG_FIELDS.iter().filter(|r| r.0 == ty) {
        let path = if prefix.is_empty() {
            field.to_string()
        } else {
            format!("{prefix}.{field}")
        };
        let inner = inner_type(fty);
        let default = match (*default, CONFIG_ENUMS.iter().find(|e| e.0 == inner)) {
            ("default", Some(e)) if !e.2.is_empty() => e.2.to_string(),
            ("default", None) if inner == "Popularity" => "uniform".to_string(),
            (d, _) => d.to_string(),
        };
        out.push(Param {
            path: path.clone(),
            kind: describe(fty),
            default,
            doc: doc.to_string(),
        });
        if inner.ends_with("Config") && CONFIG_FIELDS.iter().any(|r| r.0 == inner) {
            walk(&path, inner, out, depth + 1);
        }
    }
}

/// Every parameter of the model file, or only those under `section` (`clients`,
/// `services`, ...; `None` for all).
pub fn params(section: Option<&str>) -> Vec<Param> {
    let mut out = Vec::new();
    walk("", "ModelConfig", &mut out, 0);
    match section {
        Some(s) => out
            .into_iter()
            .filter(|p| p.path == s || p.path.starts_with(&format!("{s}.")))
            .collect(),
        None => out,
    }
}

/// The top-level sections of a model file.
pub fn sections() -> Vec<&'static str> {
    CONFIG_FIELDS
        .iter()
        .filter(|r| r.0 == "ModelConfig")
        .map(|r| r.1)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_client_field_serde_accepts_is_documented() {
        // serde lists the fields it accepts in its "unknown field" error: compare.
        let err = toml_free_unknown_field_list();
        let documented: Vec<String> = params(Some("clients"))
            .into_iter()
            .filter(|p| p.path.matches('.').count() == 1)
            .map(|p| p.path.trim_start_matches("clients.").to_string())
            .collect();
        for f in err {
            assert!(
                documented.contains(&f),
                "clients.{f} is accepted but not documented"
            );
        }
        let p = params(Some("services"));
        assert!(p
            .iter()
            .any(|p| p.path == "services.service_time" && p.default == "required"));
        assert!(p
            .iter()
            .any(|p| p.path == "services.workers" && p.default == "1"));
    }

    fn toml_free_unknown_field_list() -> Vec<String> {
        use serde::de::value::{Error, MapDeserializer};
        use serde::Deserialize;
        let m = MapDeserializer::<_, Error>::new(std::iter::once(("__no_such_field__", 1u8)));
        let e = crate::client::ClientConfig::deserialize(m).expect_err("unknown field");
        e.to_string()
            .split('`')
            .skip(3)
            .step_by(2)
            .map(String::from)
            .collect()
    }
}

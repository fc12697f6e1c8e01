//! Extracts the documentation of every configuration struct (the `*Config` types the model
//! loader deserializes) from the sources, so `dssim explain` is generated from the very
//! definitions the loader uses and cannot drift from them.
//!
//! For each field it records: struct, field, Rust type, default (from `#[serde(default)]`,
//! `#[serde(default = "f")]` with `f`'s body, or "required"), and the doc comment.

use std::fmt::Write as _;
use std::fs;
use std::path::Path;

fn main() {
    let src = Path::new("src");
    println!("cargo:rerun-if-changed=src");
    let mut files: Vec<_> = fs::read_dir(src)
        .map(|d| d.filter_map(|e| e.ok()).map(|e| e.path()).collect())
        .unwrap_or_default();
    files.sort();
    let mut rows = Vec::new();
    let mut enums = Vec::new();
    for f in files {
        if f.extension().and_then(|e| e.to_str()) != Some("rs") {
            continue;
        }
        let Ok(text) = fs::read_to_string(&f) else {
            continue;
        };
        scan(&text, &mut rows, &mut enums);
    }
    let mut out = String::from("/// (struct, field, type, default, doc) of every config field.\n");
    out.push_str("pub static CONFIG_FIELDS: &[(&str, &str, &str, &str, &str)] = &[\n");
    for (s, f, t, d, doc) in &rows {
        let _ = writeln!(out, "    ({s:?}, {f:?}, {t:?}, {d:?}, {doc:?}),");
    }
    out.push_str(
        "];\n/// (enum, variants as users write them, default variant) of every config enum.\n",
    );
    out.push_str("pub static CONFIG_ENUMS: &[(&str, &str, &str)] = &[\n");
    for (e, v, doc) in &enums {
        let _ = writeln!(out, "    ({e:?}, {v:?}, {doc:?}),");
    }
    out.push_str("];\n");
    let dest =
        Path::new(&std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("config_docs.rs");
    fs::write(dest, out).expect("write config_docs.rs");
}

type Row = (String, String, String, String, String);

fn fn_body(text: &str, name: &str) -> Option<String> {
    let start = text.find(&format!("fn {name}()"))?;
    let open = start + text[start..].find('{')?;
    let close = open + text[open..].find('}')?;
    Some(text[open + 1..close].trim().to_string())
}

fn snake(s: &str) -> String {
    let mut o = String::new();
    for (i, c) in s.chars().enumerate() {
        if c.is_uppercase() {
            if i > 0 {
                o.push('_');
            }
            o.extend(c.to_lowercase());
        } else {
            o.push(c);
        }
    }
    o
}

fn scan(text: &str, rows: &mut Vec<Row>, enums: &mut Vec<(String, String, String)>) {
    let mut doc: Vec<String> = Vec::new();
    let mut attrs: Vec<String> = Vec::new();
    let mut in_struct: Option<String> = None;
    let mut in_enum: Option<(String, Vec<String>)> = None;
    let mut enum_default = String::new();
    for raw in text.lines() {
        let line = raw.trim();
        if let Some(d) = line.strip_prefix("///") {
            doc.push(d.trim().to_string());
            continue;
        }
        if line.starts_with("#[") {
            attrs.push(line.to_string());
            continue;
        }
        if let Some((name, variants)) = &mut in_enum {
            if line.starts_with('}') {
                let all = variants.join(" | ");
                enums.push((name.clone(), all, enum_default.clone()));
                in_enum = None;
            } else if let Some(v) = line
                .split(|c: char| !c.is_alphanumeric() && c != '_')
                .next()
            {
                if !v.is_empty() && v.chars().next().is_some_and(|c| c.is_uppercase()) {
                    variants.push(snake(v));
                    if attrs.iter().any(|a| a == "#[default]") {
                        enum_default = snake(v);
                    }
                }
            }
            doc.clear();
            attrs.clear();
            continue;
        }
        if let Some(sname) = &in_struct {
            if line.starts_with('}') {
                in_struct = None;
            } else if let Some(rest) = line.strip_prefix("pub ") {
                if let Some((field, ty)) = rest.split_once(':') {
                    let ty = ty.trim().trim_end_matches(',').to_string();
                    let serde: String = attrs
                        .iter()
                        .filter(|a| a.contains("serde"))
                        .cloned()
                        .collect();
                    let default = if let Some(i) = serde.find("default = \"") {
                        let f = &serde[i + 11..];
                        let f = &f[..f.find('"').unwrap_or(f.len())];
                        fn_body(text, f).unwrap_or_else(|| f.to_string())
                    } else if serde.contains("default") {
                        if ty.starts_with("Option") {
                            "none".into()
                        } else if ty.starts_with("Vec") || ty.starts_with("BTreeMap") {
                            "empty".into()
                        } else if ty == "f64" || ty.starts_with('u') || ty.starts_with('i') {
                            "0".into()
                        } else if ty == "bool" {
                            "false".into()
                        } else {
                            "default".into()
                        }
                    } else {
                        "required".into()
                    };
                    rows.push((
                        sname.clone(),
                        field.trim().to_string(),
                        ty,
                        default,
                        doc.join(" "),
                    ));
                }
            }
            doc.clear();
            attrs.clear();
            continue;
        }
        let derives_de = attrs.iter().any(|a| a.contains("Deserialize"));
        if derives_de {
            if let Some(rest) = line.strip_prefix("pub struct ") {
                let name = rest
                    .split(|c: char| !c.is_alphanumeric() && c != '_')
                    .next()
                    .unwrap_or("");
                if rest.trim_end().ends_with('{') {
                    in_struct = Some(name.to_string());
                }
            } else if let Some(rest) = line.strip_prefix("pub enum ") {
                let name = rest
                    .split(|c: char| !c.is_alphanumeric() && c != '_')
                    .next()
                    .unwrap_or("");
                if rest.trim_end().ends_with('{') {
                    in_enum = Some((name.to_string(), Vec::new()));
                    enum_default.clear();
                }
            }
        }
        doc.clear();
        attrs.clear();
    }
}

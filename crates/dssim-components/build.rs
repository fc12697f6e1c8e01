//! Extracts the documentation of every configuration struct and enum the model loader
//! deserializes from the sources (every file under `src/`, nested module folders such as
//! `src/data/cache/` included), so `dssim explain` is generated from the very definitions the
//! loader uses and cannot drift from them.
//!
//! For each struct field it records: module, struct, field, Rust type, default (from
//! `#[serde(default)]`, `#[serde(default = "f")]` with `f`'s body, or "required"), and the
//! doc comment. For each enum: module, name, its variants as users write them, the
//! `#[default]` variant, and each variant's doc comment. `src/explain.rs` turns the Rust
//! types and expressions into human words (a unit test there checks that none is left).

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(d) = fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<PathBuf> = d.filter_map(|e| e.ok()).map(|e| e.path()).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().and_then(|e| e.to_str()) == Some("rs") {
            out.push(p);
        }
    }
}

/// The module a file defines, as a path below the crate (`data::cache`, `data::cache::store`, `traffic::client`).
fn module_of(file: &Path, src: &Path) -> String {
    let rel = file.strip_prefix(src).unwrap_or(file).with_extension("");
    let mut parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if parts.last().is_some_and(|l| l == "mod" || l == "lib") {
        parts.pop();
    }
    parts.join("::")
}

fn main() {
    let src = Path::new("src");
    println!("cargo:rerun-if-changed=src");
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let mut out = Scan::default();
    for f in files {
        let Ok(text) = fs::read_to_string(&f) else {
            continue;
        };
        let module = module_of(&f, src);
        scan(&module, &text, &mut out);
    }
    let mut o = String::from(
        "/// (module, struct, field, type, default, doc) of every config field.\n\
         pub static CONFIG_FIELDS: &[(&str, &str, &str, &str, &str, &str)] = &[\n",
    );
    for (m, s, f, t, d, doc) in &out.fields {
        let _ = writeln!(o, "    ({m:?}, {s:?}, {f:?}, {t:?}, {d:?}, {doc:?}),");
    }
    o.push_str(
        "];\n/// (module, enum, variants as users write them, default variant) of every enum.\n\
         pub static CONFIG_ENUMS: &[(&str, &str, &str, &str)] = &[\n",
    );
    for (m, e, v, d) in &out.enums {
        let _ = writeln!(o, "    ({m:?}, {e:?}, {v:?}, {d:?}),");
    }
    o.push_str(
        "];\n/// (module, enum, variant as users write it, doc) of every enum variant.\n\
         pub static CONFIG_VARIANTS: &[(&str, &str, &str, &str)] = &[\n",
    );
    for (m, e, v, doc) in &out.variants {
        let _ = writeln!(o, "    ({m:?}, {e:?}, {v:?}, {doc:?}),");
    }
    o.push_str("];\n");
    let dest =
        Path::new(&std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("config_docs.rs");
    fs::write(dest, o).expect("write config_docs.rs");
}

type Field = (String, String, String, String, String, String);

#[derive(Default)]
struct Scan {
    fields: Vec<Field>,
    enums: Vec<(String, String, String, String)>,
    variants: Vec<(String, String, String, String)>,
}

/// The body of `fn name() -> T { ... }`, braces matched, whitespace collapsed.
fn fn_body(text: &str, name: &str) -> Option<String> {
    let start = text.find(&format!("fn {name}()"))?;
    let open = start + text[start..].find('{')?;
    let mut depth = 0usize;
    for (i, c) in text[open..].char_indices() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    let body = &text[open + 1..open + i];
                    return Some(body.split_whitespace().collect::<Vec<_>>().join(" "));
                }
            }
            _ => {}
        }
    }
    None
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

fn ident(rest: &str) -> &str {
    rest.split(|c: char| !c.is_alphanumeric() && c != '_')
        .next()
        .unwrap_or("")
}

fn scan(module: &str, text: &str, out: &mut Scan) {
    let mut doc: Vec<String> = Vec::new();
    let mut attrs: Vec<String> = Vec::new();
    // An attribute spread over several lines, until its brackets balance.
    let mut open_attr: Option<String> = None;
    let mut in_struct: Option<String> = None;
    // (name, variants, default variant)
    let mut in_enum: Option<(String, Vec<String>, String)> = None;
    for raw in text.lines() {
        let line = raw.trim();
        if let Some(a) = &mut open_attr {
            a.push(' ');
            a.push_str(line);
            if a.matches('[').count() <= a.matches(']').count() {
                attrs.push(open_attr.take().unwrap_or_default());
            }
            continue;
        }
        if let Some(d) = line.strip_prefix("///") {
            doc.push(d.trim().to_string());
            continue;
        }
        if line.starts_with("#[") {
            if line.matches('[').count() > line.matches(']').count() {
                open_attr = Some(line.to_string());
            } else {
                attrs.push(line.to_string());
            }
            continue;
        }
        if let Some((name, variants, default)) = &mut in_enum {
            if line.starts_with('}') {
                out.enums.push((
                    module.to_string(),
                    name.clone(),
                    variants.join(" | "),
                    default.clone(),
                ));
                in_enum = None;
            } else {
                let v = ident(line);
                if !v.is_empty() && v.chars().next().is_some_and(|c| c.is_uppercase()) {
                    let renamed = attrs
                        .iter()
                        .find_map(|a| a.split("rename = \"").nth(1))
                        .and_then(|r| r.split('"').next())
                        .map(String::from);
                    let mut user = renamed.unwrap_or_else(|| snake(v));
                    if line[v.len()..].trim_start().starts_with('(') {
                        // A variant with a value: written `name(value)`.
                        user.push_str("(…)");
                    }
                    if attrs.iter().any(|a| a == "#[default]") {
                        *default = user.clone();
                    }
                    out.variants.push((
                        module.to_string(),
                        name.clone(),
                        user.clone(),
                        doc.join(" "),
                    ));
                    variants.push(user);
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
                        "default".into()
                    } else {
                        "required".into()
                    };
                    out.fields.push((
                        module.to_string(),
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
        if let Some(rest) = line.strip_prefix("pub struct ") {
            if derives_de && rest.trim_end().ends_with('{') {
                in_struct = Some(ident(rest).to_string());
            }
        } else if let Some(rest) = line.strip_prefix("pub enum ") {
            // Derived or custom-deserialized (`Shedding`, `ReadFrom`) enums.
            let name = ident(rest);
            let custom = text.contains(&format!("Deserialize<'de> for {name} "));
            if (derives_de || custom) && rest.trim_end().ends_with('{') {
                in_enum = Some((name.to_string(), Vec::new(), String::new()));
            }
        }
        doc.clear();
        attrs.clear();
    }
}

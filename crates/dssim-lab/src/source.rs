//! Reading experiment and model files (TOML or JSON) into one value tree, and finding
//! where in the text a dotted path lives, so every error can point at a line and column.

use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use toml::de::{DeTable, DeValue};

use crate::error::{Diagnostic, LabError};

/// The syntax of a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// `.toml` (and anything not `.json`).
    Toml,
    /// `.json`.
    Json,
}

/// A file's text, kept for error reports.
#[derive(Clone, Debug)]
pub struct Source {
    /// Where it was read from.
    pub path: PathBuf,
    /// Its contents.
    pub text: String,
    /// Its syntax.
    pub format: Format,
}

impl Source {
    /// Reads `path` (at most [`MAX_FILE_BYTES`]).
    pub fn read(path: &Path) -> Result<Source, LabError> {
        let text = read_capped(path, MAX_FILE_BYTES, "a model or experiment file")
            .map_err(|m| LabError::Input(Diagnostic::plain(path, m)))?;
        Ok(Source::from_text(path, text))
    }

    /// A source from text already in memory.
    pub fn from_text(path: &Path, text: String) -> Source {
        let format = if path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("json"))
        {
            Format::Json
        } else {
            Format::Toml
        };
        Source {
            path: path.to_path_buf(),
            text,
            format,
        }
    }

    /// The whole file as a value tree.
    pub fn value(&self) -> Result<toml::Value, LabError> {
        match self.format {
            Format::Toml => toml::from_str::<toml::Table>(&self.text)
                .map(toml::Value::Table)
                .map_err(|e| self.toml_error(&e)),
            Format::Json => {
                self.no_duplicate_keys()?;
                let v: serde_json::Value =
                    serde_json::from_str(&self.text).map_err(|e| self.json_error(&e))?;
                json_to_toml(&v).map_err(|m| LabError::Input(Diagnostic::plain(&self.path, m)))
            }
        }
    }

    /// Deserializes the whole file as `T`, with errors pointing into the text.
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T, LabError> {
        match self.format {
            Format::Toml => toml::from_str(&self.text).map_err(|e| self.toml_error(&e)),
            Format::Json => {
                self.no_duplicate_keys()?;
                serde_json::from_str(&self.text).map_err(|e| self.json_error(&e))
            }
        }
    }

    /// JSON allows a key twice in one object and keeps the last; TOML refuses. Refuse in
    /// JSON too, at any depth (`[sweep]` and `[set]` are plain tables, where a repeated
    /// path would silently win).
    fn no_duplicate_keys(&self) -> Result<(), LabError> {
        serde_json::from_str::<NoDuplicates>(&self.text)
            .map(|_| ())
            .map_err(|e| self.json_error(&e))
    }

    fn toml_error(&self, e: &toml::de::Error) -> LabError {
        let (message, help) = crate::error::humanize(e.message());
        LabError::Input(Diagnostic {
            file: self.path.clone(),
            text: Some(self.text.clone()),
            span: e.span(),
            message,
            help,
        })
    }

    fn json_error(&self, e: &serde_json::Error) -> LabError {
        let (message, help) = crate::error::humanize(&strip_json_position(&e.to_string()));
        let span =
            offset_of(&self.text, e.line(), e.column()).map(|o| o..(o + 1).min(self.text.len()));
        LabError::Input(Diagnostic {
            file: self.path.clone(),
            text: Some(self.text.clone()),
            span,
            message,
            help,
        })
    }

    /// The text range of the value at `path` (list entries addressed by their `name`, or by
    /// their index when they have none), or
    /// of the deepest part of it that exists. JSON files give no ranges.
    pub fn locate(&self, path: &[&str]) -> Option<Range<usize>> {
        if self.format != Format::Toml {
            return None;
        }
        let doc = DeTable::parse(&self.text).ok()?;
        let mut best = None;
        let mut cur: &DeTable = doc.get_ref();
        let mut segs = path.iter().peekable();
        while let Some(seg) = segs.next() {
            let (key, val) = cur.iter().find(|(k, _)| k.get_ref().as_ref() == *seg)?;
            best = Some(if segs.peek().is_none() {
                val.span()
            } else {
                key.span()
            });
            match val.get_ref() {
                DeValue::Table(t) => cur = t,
                DeValue::Array(items) => {
                    let Some(name) = segs.next() else { break };
                    let found = items.iter().find_map(|it| match it.get_ref() {
                        DeValue::Table(t) => t
                            .iter()
                            .any(|(k, v)| {
                                k.get_ref().as_ref() == "name"
                                    && matches!(v.get_ref(), DeValue::String(s) if s.as_ref() == *name)
                            })
                            .then_some((t, it.span())),
                        _ => None,
                    });
                    // Entries without names (faults, partitions) are addressed by index.
                    let found = found.or_else(|| {
                        let i: usize = name.parse().ok()?;
                        match items.get(i)?.get_ref() {
                            DeValue::Table(t) => Some((t, items[i].span())),
                            _ => None,
                        }
                    });
                    match found {
                        Some((t, span)) => {
                            best = Some(span);
                            cur = t;
                        }
                        None => return best,
                    }
                }
                _ => return best,
            }
        }
        best
    }
}

/// The largest model or experiment file dssim reads (a bigger one is refused before it is
/// read whole: `dssim check /dev/zero` fails at once).
pub const MAX_FILE_BYTES: u64 = 32 * 1024 * 1024;

/// Reads `path` as UTF-8 text, refusing it past `cap` bytes without reading more than that
/// (works for devices and pipes, whose size is unknown up front). `what` names the kind of
/// file in the message.
pub fn read_capped(path: &Path, cap: u64, what: &str) -> Result<String, String> {
    use std::io::Read;
    let file =
        std::fs::File::open(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let too_big = || {
        format!(
            "{} is larger than {} ({what}s are capped at that size)",
            path.display(),
            crate::limits::show_bytes(cap as f64)
        )
    };
    if file.metadata().is_ok_and(|m| m.is_file() && m.len() > cap) {
        return Err(too_big());
    }
    let mut bytes = Vec::new();
    file.take(cap.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if bytes.len() as u64 > cap {
        return Err(too_big());
    }
    String::from_utf8(bytes).map_err(|e| {
        format!(
            "{} is not UTF-8 text (invalid byte at offset {})",
            path.display(),
            e.utf8_error().valid_up_to()
        )
    })
}

/// Any JSON value, refusing an object that names a key twice.
struct NoDuplicates;

impl<'de> serde::Deserialize<'de> for NoDuplicates {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(NoDuplicatesVisitor)
    }
}

struct NoDuplicatesVisitor;

impl<'de> serde::de::Visitor<'de> for NoDuplicatesVisitor {
    type Value = NoDuplicates;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<NoDuplicates, E> {
        Ok(NoDuplicates)
    }
    fn visit_i64<E>(self, _: i64) -> Result<NoDuplicates, E> {
        Ok(NoDuplicates)
    }
    fn visit_u64<E>(self, _: u64) -> Result<NoDuplicates, E> {
        Ok(NoDuplicates)
    }
    fn visit_f64<E>(self, _: f64) -> Result<NoDuplicates, E> {
        Ok(NoDuplicates)
    }
    fn visit_str<E>(self, _: &str) -> Result<NoDuplicates, E> {
        Ok(NoDuplicates)
    }
    fn visit_unit<E>(self) -> Result<NoDuplicates, E> {
        Ok(NoDuplicates)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut a: A) -> Result<NoDuplicates, A::Error> {
        while a.next_element::<NoDuplicates>()?.is_some() {}
        Ok(NoDuplicates)
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut a: A) -> Result<NoDuplicates, A::Error> {
        let mut seen = std::collections::BTreeSet::new();
        while let Some(k) = a.next_key::<String>()? {
            if !seen.insert(k.clone()) {
                let shown: String = k.chars().take(60).collect();
                return Err(serde::de::Error::custom(format!(
                    "duplicate key {shown:?} in one object (JSON keeps only the last; write each key once)"
                )));
            }
            a.next_value::<NoDuplicates>()?;
        }
        Ok(NoDuplicates)
    }
}

fn strip_json_position(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_string(),
        None => msg.to_string(),
    }
}

/// Byte offset of a 1-based line and column.
pub fn offset_of(text: &str, line: usize, col: usize) -> Option<usize> {
    if line == 0 {
        return None;
    }
    let mut off = 0;
    for (i, l) in text.split_inclusive('\n').enumerate() {
        if i + 1 == line {
            return Some((off + col.saturating_sub(1)).min(text.len().saturating_sub(1)));
        }
        off += l.len();
    }
    None
}

/// 1-based line and column of a byte offset.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before
        .rfind('\n')
        .map_or(before.chars().count(), |i| before[i + 1..].chars().count())
        + 1;
    (line, col)
}

/// Converts a JSON tree to the TOML tree the rest of the loader works on.
pub fn json_to_toml(v: &serde_json::Value) -> Result<toml::Value, String> {
    use serde_json::Value as J;
    Ok(match v {
        J::Null => return Err("null is not a valid value here: leave the key out instead".into()),
        J::Bool(b) => toml::Value::Boolean(*b),
        J::Number(n) => {
            if let Some(i) = n.as_i64() {
                toml::Value::Integer(i)
            } else {
                toml::Value::Float(n.as_f64().unwrap_or(f64::NAN))
            }
        }
        J::String(s) => toml::Value::String(s.clone()),
        J::Array(a) => toml::Value::Array(a.iter().map(json_to_toml).collect::<Result<_, _>>()?),
        J::Object(o) => {
            let mut t = toml::Table::new();
            for (k, v) in o {
                t.insert(k.clone(), json_to_toml(v)?);
            }
            toml::Value::Table(t)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locates_named_list_entries_and_keys() {
        let text = "[[services]]\nname = \"web\"\n\n[[services]]\nname = \"app\"\nworkers = 4\n";
        let s = Source::from_text(Path::new("m.toml"), text.to_string());
        let r = s.locate(&["services", "app", "workers"]).unwrap();
        assert_eq!(&text[r.clone()], "4");
        assert_eq!(line_col(text, r.start), (6, 11));
        assert!(s.locate(&["services", "nope"]).is_some());
    }
}

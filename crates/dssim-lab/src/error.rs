//! Errors of the lab: bad input (exit code 2) carries the file, a text span and a hint;
//! anything else (I/O, a failed run) exits 1.

use std::ops::Range;
use std::path::{Path, PathBuf};

/// A problem in a user's file or command line.
#[derive(Clone, Debug)]
pub struct Diagnostic {
    /// The file at fault.
    pub file: PathBuf,
    /// Its text, when a span points into it.
    pub text: Option<String>,
    /// Where in the text.
    pub span: Option<Range<usize>>,
    /// What is wrong and what was expected.
    pub message: String,
    /// A hint ("did you mean ...?").
    pub help: Option<String>,
}

impl Diagnostic {
    /// A problem with no position.
    pub fn plain(file: &Path, message: impl Into<String>) -> Self {
        Diagnostic {
            file: file.to_path_buf(),
            text: None,
            span: None,
            message: message.into(),
            help: None,
        }
    }

    /// `file:line:column` (or just the file).
    pub fn location(&self) -> String {
        match (&self.text, &self.span) {
            (Some(t), Some(s)) => {
                let (l, c) = crate::source::line_col(t, s.start);
                format!("{}:{l}:{c}", self.file.display())
            }
            _ => self.file.display().to_string(),
        }
    }
}

impl std::fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.location(), self.message)?;
        if let Some(h) = &self.help {
            write!(f, " ({h})")?;
        }
        Ok(())
    }
}

/// Everything that can go wrong in the lab.
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    /// Bad input: exit code 2.
    #[error("{0}")]
    Input(Diagnostic),
    /// Several input problems at once: exit code 2.
    #[error("{}", .0.iter().map(|d| d.to_string()).collect::<Vec<_>>().join("\n"))]
    Inputs(Vec<Diagnostic>),
    /// Reading or writing outputs failed: exit code 1.
    #[error("{path}: {message}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// What happened.
        message: String,
    },
    /// A run failed: exit code 1.
    #[error("{0}")]
    Run(String),
}

impl LabError {
    /// The process exit code for this error.
    pub fn exit_code(&self) -> i32 {
        match self {
            LabError::Input(_) | LabError::Inputs(_) => 2,
            _ => 1,
        }
    }

    /// An I/O failure on `path`.
    pub fn io(path: &Path, e: impl std::fmt::Display) -> Self {
        LabError::Io {
            path: path.to_path_buf(),
            message: e.to_string(),
        }
    }
}

/// Turns serde's messages into ours: adds "did you mean" for unknown fields and variants.
pub fn humanize(msg: &str) -> (String, Option<String>) {
    let msg = human_types(&bounded(msg.trim().trim_end_matches('\n')));
    for kind in ["unknown field", "unknown variant"] {
        if let Some(rest) = msg.strip_prefix(kind) {
            // "unknown field `rat`, expected one of `rate`, `users`"
            let word = rest.split('`').nth(1).unwrap_or("");
            let expected: Vec<&str> = rest
                .split("expected")
                .nth(1)
                .map(|e| e.split('`').skip(1).step_by(2).collect())
                .unwrap_or_default();
            let help = dssim_components::did_you_mean(word, expected.iter().copied())
                .map(|s| format!("did you mean `{s}`?"));
            return (msg, help);
        }
    }
    (msg, None)
}

/// Serde's Rust type names in words: "expected u32" -> "expected a whole number".
pub fn human_types(msg: &str) -> String {
    let mut m = msg.to_string();
    for (rust, words) in [
        ("expected u8", "expected a whole number from 0 to 255"),
        ("expected u16", "expected a whole number from 0 to 65535"),
        (
            "expected u32",
            "expected a whole number from 0 to 4294967295",
        ),
        ("expected u64", "expected a whole number, 0 or more"),
        ("expected usize", "expected a whole number, 0 or more"),
        ("expected i32", "expected a whole number"),
        ("expected i64", "expected a whole number"),
        ("expected f32", "expected a number"),
        ("expected f64", "expected a number"),
        ("expected a sequence", "expected a list"),
        ("expected a map", "expected a table"),
        ("expected a boolean", "expected true or false"),
    ] {
        // Whole words only (not "expected u32s").
        let mut out = String::new();
        let mut rest = m.as_str();
        while let Some(i) = rest.find(rust) {
            let after = &rest[i + rust.len()..];
            out.push_str(&rest[..i]);
            if after.starts_with(|c: char| c.is_alphanumeric()) {
                out.push_str(rust);
            } else {
                out.push_str(words);
            }
            rest = after;
        }
        out.push_str(rest);
        m = out;
    }
    if let Some(i) = m.find("expected struct ") {
        let end = m[i + 16..]
            .find(|c: char| !c.is_alphanumeric() && c != '_')
            .map_or(m.len(), |e| i + 16 + e);
        m.replace_range(i..end, "expected a table");
    }
    m
}

/// A message of bounded size: every quoted word (between backticks) cut to 60 characters and
/// the whole to 2,000, so a 10 MB unknown key gives a short message.
pub fn bounded(msg: &str) -> String {
    let mut out = String::new();
    for (i, part) in msg.split('`').enumerate() {
        if i > 0 {
            out.push('`');
        }
        if i % 2 == 1 && part.chars().count() > 60 {
            out.extend(part.chars().take(60));
            out.push_str("...");
        } else {
            out.push_str(part);
        }
    }
    if out.chars().count() > 2000 {
        out = out.chars().take(2000).collect::<String>() + "...";
    }
    out
}

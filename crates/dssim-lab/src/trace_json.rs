//! trace.json: the traced requests of every run (`[output] trace = N`) in the Chrome
//! trace-event format (JSON object form), which Perfetto (ui.perfetto.dev) and
//! chrome://tracing open.
//!
//! One run is one process (`pid` = run id), one traced request one thread (`tid` = its
//! number, 1..=N). Visits and phases are complete events (`"ph":"X"`) that nest on the
//! request's thread: the client's visit holds its attempts, an attempt the load balancer's
//! visit, that the instance's `queue`, `cpu` and `data` phases, `data` the cache's and the
//! database's visits. A write's replication to each replica is an async span (`"b"`/`"e"`)
//! beside it. Times are microseconds with nanosecond digits.
//!
//! The file reaches the disk like the CSVs: a run's events together as the run finishes, in
//! run order, and it is valid JSON after every run. Every event is one line that starts
//! with `{"pid":RUN,` and ends with a comma; a fixed last line closes the array. So resume
//! keeps the lines of recorded runs, and resorting or merging shards orders lines by run.

use std::fs::{self, File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use dssim_components::trace::RunTrace;

use crate::error::LabError;
use crate::experiment::RunSpec;
use crate::output::write_atomic;

/// The file's name in the output folder.
pub const FILE: &str = "trace.json";

const HEADER: &str = "{\"displayTimeUnit\":\"ms\",\"traceEvents\":[\n";
const TRAILER: &str =
    "{\"name\":\"dssim\",\"ph\":\"M\",\"pid\":0,\"tid\":0,\"args\":{\"format\":\"one run per process, one traced request per thread\"}}\n]}\n";

/// JSON string literal of `s`.
fn q(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

/// Nanoseconds as microseconds with three decimals, exactly.
fn us(ns: u64) -> String {
    format!("{}.{:03}", ns / 1000, ns % 1000)
}

/// The event lines of one run.
pub fn events(spec: &RunSpec, t: &RunTrace) -> String {
    let pid = spec.run;
    let mut out = String::new();
    let mut line = |s: String| {
        out.push_str(&s);
        out.push_str(",\n");
    };
    let swept = if spec.swept.is_empty() {
        String::new()
    } else {
        format!("; {}", spec.swept.join(", "))
    };
    line(format!(
        "{{\"pid\":{pid},\"ph\":\"M\",\"name\":\"process_name\",\"args\":{{\"name\":{}}}}}",
        q(&format!(
            "run {pid} (point {}, replication {}, seed {}{swept})",
            spec.point, spec.replication, spec.seed
        ))
    ));
    line(format!(
        "{{\"pid\":{pid},\"ph\":\"M\",\"name\":\"process_sort_index\",\"args\":{{\"sort_index\":{pid}}}}}"
    ));
    for (tid, name) in &t.requests {
        line(format!(
            "{{\"pid\":{pid},\"tid\":{tid},\"ph\":\"M\",\"name\":\"thread_name\",\"args\":{{\"name\":{}}}}}",
            q(name)
        ));
        line(format!(
            "{{\"pid\":{pid},\"tid\":{tid},\"ph\":\"M\",\"name\":\"thread_sort_index\",\"args\":{{\"sort_index\":{tid}}}}}"
        ));
    }
    for (i, s) in t.spans.iter().enumerate() {
        let tid = s.trace;
        let (name, cat, ts) = (q(&s.name), q(s.cat), us(s.start_ns));
        if s.replication {
            let id = q(&format!("{pid}.{tid}.{i}"));
            line(format!(
                "{{\"pid\":{pid},\"tid\":{tid},\"ph\":\"b\",\"name\":{name},\"cat\":{cat},\"id\":{id},\"ts\":{ts}}}"
            ));
            line(format!(
                "{{\"pid\":{pid},\"tid\":{tid},\"ph\":\"e\",\"name\":{name},\"cat\":{cat},\"id\":{id},\"ts\":{}}}",
                us(s.end_ns)
            ));
            continue;
        }
        let args = if s.status.is_empty() {
            format!("{{\"in\":{}}}", q(&s.within))
        } else {
            format!("{{\"status\":{}}}", q(s.status))
        };
        line(format!(
            "{{\"pid\":{pid},\"tid\":{tid},\"ph\":\"X\",\"name\":{name},\"cat\":{cat},\"ts\":{ts},\"dur\":{},\"args\":{args}}}",
            us(s.end_ns.saturating_sub(s.start_ns))
        ));
    }
    out
}

/// The run id of an event line (`{"pid":RUN,...`), none for the header and the trailer.
fn run_of(line: &str) -> Option<usize> {
    let rest = line.strip_prefix("{\"pid\":")?;
    let end = rest.find(',')?;
    rest[..end].parse().ok()
}

/// The complete event lines of a trace.json text, with their runs, in file order.
pub fn rows(text: &str) -> Vec<(usize, &str)> {
    text.split_inclusive('\n')
        .filter(|l| l.ends_with(",\n"))
        .filter_map(|l| run_of(l).map(|r| (r, l)))
        .collect()
}

/// Whether a trace.json text ends with its closing line (written with every run's events,
/// so a file without it was cut).
pub fn is_closed(text: &str) -> bool {
    text.ends_with(TRAILER)
}

/// A whole trace.json from event lines.
pub fn assemble<'a>(lines: impl IntoIterator<Item = &'a str>) -> String {
    let mut out = String::from(HEADER);
    for l in lines {
        out.push_str(l);
    }
    out.push_str(TRAILER);
    out
}

/// trace.json, open for appending runs.
pub struct TraceFile {
    path: PathBuf,
    file: File,
}

impl TraceFile {
    /// The open file (to sync it).
    pub fn file(&self) -> &File {
        &self.file
    }

    /// Opens `dir/trace.json`: empty, or (resume) keeping the runs in `done`.
    pub fn open(
        dir: &Path,
        resume: bool,
        done: &std::collections::BTreeSet<usize>,
    ) -> Result<TraceFile, LabError> {
        let path = dir.join(FILE);
        let text = if resume {
            let old = fs::read_to_string(&path).unwrap_or_default();
            assemble(
                rows(&old)
                    .into_iter()
                    .filter(|(r, _)| done.contains(r))
                    .map(|(_, l)| l),
            )
        } else {
            assemble([])
        };
        write_atomic(&path, &text)?;
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|e| LabError::io(&path, e))?;
        Ok(TraceFile { path, file })
    }

    /// Appends one run's event lines (before the closing line) in one write. A failed
    /// write is cut back, so the file keeps its previous runs and stays valid JSON.
    pub fn append(&mut self, events: &str) -> Result<(), LabError> {
        if events.is_empty() {
            return Ok(());
        }
        let io = |e: std::io::Error| LabError::io(&self.path, format!("cannot write: {e}"));
        let len = self.file.metadata().map_err(io)?.len();
        let at = len.saturating_sub(TRAILER.len() as u64);
        let mut text = String::with_capacity(events.len() + TRAILER.len());
        text.push_str(events);
        text.push_str(TRAILER);
        let res = self
            .file
            .seek(SeekFrom::Start(at))
            .and_then(|_| self.file.write_all(text.as_bytes()))
            .and_then(|_| self.file.flush());
        if let Err(e) = res {
            let _ = self.file.set_len(at);
            let _ = self
                .file
                .seek(SeekFrom::Start(at))
                .and_then(|_| self.file.write_all(TRAILER.as_bytes()));
            return Err(io(e));
        }
        Ok(())
    }
}

/// Reorders the runs of `dir/trace.json` by run id (stable), for resumed folders.
pub fn sort_by_run(dir: &Path) -> Result<(), LabError> {
    let path = dir.join(FILE);
    let Ok(text) = fs::read_to_string(&path) else {
        return Ok(());
    };
    let mut rows = rows(&text);
    if rows.windows(2).all(|w| w[0].0 <= w[1].0) {
        return Ok(());
    }
    rows.sort_by_key(|r| r.0);
    write_atomic(&path, &assemble(rows.into_iter().map(|(_, l)| l)))
}

/// Merges the trace.json files of shard folders into `out` (none when no shard has one).
pub fn merge(dirs: &[PathBuf], out: &Path) -> Result<(), LabError> {
    let texts: Vec<String> = dirs
        .iter()
        .filter_map(|d| fs::read_to_string(d.join(FILE)).ok())
        .collect();
    if texts.is_empty() {
        return Ok(());
    }
    let mut all: Vec<(usize, &str)> = texts.iter().flat_map(|t| rows(t)).collect();
    all.sort_by_key(|r| r.0);
    write_atomic(&out.join(FILE), &assemble(all.into_iter().map(|(_, l)| l)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_is_valid_json_after_every_run_and_rows_round_trip() {
        let dir = std::env::temp_dir().join(format!("dssim-trace-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let mut f = TraceFile::open(&dir, false, &Default::default()).unwrap();
        let text = fs::read_to_string(dir.join(FILE)).unwrap();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["traceEvents"].as_array().unwrap().len(), 1);
        f.append("{\"pid\":3,\"ph\":\"M\",\"name\":\"x\",\"args\":{}},\n")
            .unwrap();
        f.append("{\"pid\":1,\"ph\":\"M\",\"name\":\"y\",\"args\":{}},\n")
            .unwrap();
        let text = fs::read_to_string(dir.join(FILE)).unwrap();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["traceEvents"].as_array().unwrap().len(), 3);
        assert_eq!(
            rows(&text).iter().map(|r| r.0).collect::<Vec<_>>(),
            vec![3, 1]
        );
        sort_by_run(&dir).unwrap();
        let text = fs::read_to_string(dir.join(FILE)).unwrap();
        assert_eq!(
            rows(&text).iter().map(|r| r.0).collect::<Vec<_>>(),
            vec![1, 3]
        );
        // Resume keeps only recorded runs.
        drop(f);
        TraceFile::open(&dir, true, &[3].into_iter().collect()).unwrap();
        let text = fs::read_to_string(dir.join(FILE)).unwrap();
        assert_eq!(rows(&text).iter().map(|r| r.0).collect::<Vec<_>>(), vec![3]);
        serde_json::from_str::<serde_json::Value>(&text).unwrap();
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn times_are_microseconds_with_nanosecond_digits() {
        assert_eq!(us(0), "0.000");
        assert_eq!(us(1_234_567), "1234.567");
        assert_eq!(us(5), "0.005");
    }
}

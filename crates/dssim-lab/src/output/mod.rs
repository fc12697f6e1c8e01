//! The output folder: runs.csv, points.csv, latency.csv, timeseries.csv, components.csv and
//! manifest.json, as outputs.md describes them.
//!
//! Rows reach the disk in run order as runs finish, each run's rows flushed together
//! (runs.csv last), so a killed sweep leaves valid files holding every finished run, and
//! `--resume` can tell exactly which runs are recorded.
//!
//! This file opens the folder and appends rows; `resume` checks and repairs a folder
//! for `--resume` and `merge`, and `points` writes points.csv from runs.csv.

mod points;
mod resume;

use std::collections::BTreeSet;
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use dssim_components::{Cell, RunReport, RUN_COLUMNS};

use crate::error::LabError;
use crate::estimate::ModelEstimate;
use crate::experiment::RunSpec;
use crate::trace_json::{self, TraceFile};
use resume::{keep_runs, recorded_runs, verify};

pub use points::{mean_ci95, write_points};
pub use resume::{file_lengths, sort_by_run, Expect, LENGTH_CHECKED};

/// Columns of timeseries.csv.
pub const SERIES_COLUMNS: &[&str] = &[
    "run",
    "t_s",
    "rps",
    "p99_ms",
    "errors",
    "shed",
    "instances",
    "queue_len",
    "utilization",
    "cache_hit_ratio",
    "repl_lag_ms",
    "arrivals_rps",
    "in_flight",
    "timeouts",
    "dropped",
    "goodput_rps",
    "p99_all_ms",
];

/// Columns of instances.csv (`[output] instance_timeseries`): one row per service
/// instance (and per subscriber group of a topic, with its `lag_ms`) per time-series row.
pub const INSTANCE_COLUMNS: &[&str] = &[
    "run",
    "t_s",
    "component",
    "instance",
    "arrivals_rps",
    "utilization",
    "queue_len",
    "lag_ms",
];

/// instances.csv's name in the output folder.
pub const INSTANCES_FILE: &str = "instances.csv";

/// Columns of components.csv: what the run measured, then what `dssim estimate` predicts
/// for the same component from the run's model (empty where it predicts nothing).
pub const COMPONENT_COLUMNS: &[&str] = &[
    "run",
    "component",
    "kind",
    "requests",
    "utilization",
    "mean_queue",
    "p99_ms",
    "hit_ratio",
    "rps",
    "mean_ms",
    "predicted_rps",
    "predicted_utilization",
    "predicted_mean_queue",
    "predicted_mean_ms",
    "predicted_hit_ratio",
    "predicted_offered_load",
    "predicted_method",
];

/// The per-run CSV files of an output folder.
pub struct Outputs {
    dir: PathBuf,
    runs: File,
    latency: File,
    series: File,
    components: File,
    instances: Option<File>,
    trace: Option<TraceFile>,
    /// latency.csv's quantile cells, formatted once (every run lists the same ones).
    quantile_text: Vec<(f64, String)>,
}

/// Formats a float for CSV: the shortest text that reads back to the same value.
pub fn fmt_f64(v: f64) -> String {
    if v.is_finite() {
        format!("{v}")
    } else {
        String::new()
    }
}

fn cell(c: Cell) -> String {
    match c {
        Cell::Int(i) => i.to_string(),
        Cell::Float(f) => fmt_f64(f),
        Cell::Empty => String::new(),
    }
}

fn opt(v: Option<f64>) -> String {
    v.map(fmt_f64).unwrap_or_default()
}

/// Quotes a CSV field when it needs it (through the csv crate's writer, like every row).
pub fn csv_field(s: &str) -> String {
    csv_row([s]).trim_end_matches('\n').to_string()
}

/// A csv writer into memory: `\n` line ends, fields quoted where needed.
fn csv_writer() -> csv::Writer<Vec<u8>> {
    csv::WriterBuilder::new()
        .has_headers(false)
        .terminator(csv::Terminator::Any(b'\n'))
        .from_writer(Vec::new())
}

/// One CSV row, with its newline.
pub fn csv_row<I, T>(fields: I) -> String
where
    I: IntoIterator<Item = T>,
    T: AsRef<[u8]>,
{
    let mut w = csv_writer();
    let _ = w.write_record(fields);
    finish(w)
}

fn finish(w: csv::Writer<Vec<u8>>) -> String {
    // Writing into memory cannot fail, and every field is UTF-8 text.
    String::from_utf8(w.into_inner().unwrap_or_default()).unwrap_or_default()
}

/// The header of runs.csv for these swept paths.
pub fn runs_header(swept: &[String]) -> Vec<String> {
    let mut h: Vec<String> = ["run", "point", "replication", "seed"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    h.extend(swept.iter().cloned());
    h.extend(RUN_COLUMNS.iter().map(|s| s.to_string()));
    h
}

/// The runs.csv line of one run (no newline).
pub fn runs_line(spec: &RunSpec, r: &RunReport) -> String {
    let mut f = vec![
        spec.run.to_string(),
        spec.point.to_string(),
        spec.replication.to_string(),
        spec.seed.to_string(),
    ];
    f.extend(spec.swept.iter().cloned());
    f.extend(r.metrics.iter().map(|(_, c)| cell(*c)));
    let mut line = csv_row(&f);
    line.pop();
    line
}

fn join(cols: &[&str]) -> String {
    cols.join(",")
}

impl Outputs {
    /// Opens `dir` for a sweep with these swept paths. Without `resume` the files start
    /// empty; with it, the runs recorded in runs.csv whose rows are whole in every other
    /// file are kept (and returned), everything else is cut away and runs again: a missing
    /// file, a missing or torn row (wrong number of fields, a latency.csv run with some of
    /// its quantiles) un-records the runs concerned.
    pub fn open(
        dir: &Path,
        swept: &[String],
        resume: bool,
        expect: &Expect,
    ) -> Result<(Outputs, BTreeSet<usize>), LabError> {
        fs::create_dir_all(dir)
            .map_err(|e| LabError::io(dir, format!("cannot create the output folder: {e}")))?;
        let runs_hdr = csv_row(runs_header(swept)).trim_end().to_string();
        let mut files = vec![
            ("runs.csv", runs_hdr.clone()),
            ("latency.csv", "run,quantile,latency_ms".to_string()),
            ("timeseries.csv", join(SERIES_COLUMNS)),
            ("components.csv", join(COMPONENT_COLUMNS)),
        ];
        if expect.instances_file {
            files.push((INSTANCES_FILE, join(INSTANCE_COLUMNS)));
        } else {
            // An instances.csv from an earlier run of this folder does not describe this one.
            let old = dir.join(INSTANCES_FILE);
            if old.exists() {
                fs::remove_file(&old).map_err(|e| LabError::io(&old, e))?;
            }
        }
        let mut done = BTreeSet::new();
        if resume {
            let recorded = recorded_runs(&dir.join("runs.csv"), &runs_hdr)?;
            done = verify(dir, &files[1..], expect, &recorded)?;
        }
        let mut handles = Vec::new();
        for (name, header) in files {
            let path = dir.join(name);
            if resume && path.exists() {
                keep_runs(&path, &header, &done)?;
                let f = OpenOptions::new()
                    .append(true)
                    .open(&path)
                    .map_err(|e| LabError::io(&path, e))?;
                handles.push(f);
            } else {
                let mut w = File::create(&path).map_err(|e| LabError::io(&path, e))?;
                writeln!(w, "{header}").map_err(|e| LabError::io(&path, e))?;
                w.flush().map_err(|e| LabError::io(&path, e))?;
                handles.push(w);
            }
        }
        let trace = if expect.trace {
            Some(TraceFile::open(dir, resume, &done)?)
        } else {
            // A trace.json from an earlier run of this folder does not describe this one.
            let old = dir.join(trace_json::FILE);
            if old.exists() {
                fs::remove_file(&old).map_err(|e| LabError::io(&old, e))?;
            }
            None
        };
        let mut it = handles.into_iter();
        let mut next = || it.next().expect("four files");
        let outputs = Outputs {
            dir: dir.to_path_buf(),
            runs: next(),
            latency: next(),
            series: next(),
            components: next(),
            instances: it.next(),
            trace,
            quantile_text: dssim_components::report::cdf_quantiles()
                .into_iter()
                .map(|q| (q, fmt_f64(q)))
                .collect(),
        };
        outputs.sync()?;
        sync_dir(dir)?;
        Ok((outputs, done))
    }

    /// Forces every file's rows to the disk (runs.csv last).
    pub fn sync(&self) -> Result<(), LabError> {
        let mut files = vec![
            (&self.latency, "latency.csv"),
            (&self.series, "timeseries.csv"),
            (&self.components, "components.csv"),
        ];
        if let Some(f) = &self.instances {
            files.push((f, INSTANCES_FILE));
        }
        if let Some(t) = &self.trace {
            files.push((t.file(), trace_json::FILE));
        }
        files.push((&self.runs, "runs.csv"));
        for (f, name) in files {
            f.sync_data()
                .map_err(|e| LabError::io(&self.dir.join(name), format!("cannot sync: {e}")))?;
        }
        Ok(())
    }

    /// Writes every row of one run and flushes (runs.csv last, so a recorded run is whole);
    /// `predicted` fills the predicted columns of components.csv.
    pub fn write_run(
        &mut self,
        spec: &RunSpec,
        r: &RunReport,
        predicted: &ModelEstimate,
    ) -> Result<(), LabError> {
        let run = spec.run.to_string();
        let mut w = Rows::new();
        for (i, (q, v)) in r.quantiles.iter().enumerate() {
            w.s(&run);
            match self.quantile_text.get(i) {
                Some((at, text)) if at == q => w.s(text),
                _ => w.f(*q),
            }
            w.f(*v);
            w.end();
        }
        write_flush(
            &mut self.latency,
            &self.dir.join("latency.csv"),
            &w.finish(),
        )?;
        let mut w = Rows::new();
        for s in &r.series {
            w.s(&run);
            w.f(s.t_s);
            w.f(s.rps);
            w.o(s.p99_ms);
            w.i(s.errors);
            w.i(s.shed);
            w.f(s.instances);
            w.f(s.queue_len);
            w.o(s.utilization);
            w.o(s.cache_hit_ratio);
            w.o(s.repl_lag_ms);
            w.f(s.arrivals_rps);
            w.f(s.in_flight);
            w.i(s.timeouts);
            w.i(s.dropped);
            w.f(s.rps);
            w.o(s.p99_all_ms);
            w.end();
        }
        write_flush(
            &mut self.series,
            &self.dir.join("timeseries.csv"),
            &w.finish(),
        )?;
        let window = (spec.opts.duration - spec.opts.warmup).as_secs_f64();
        let mut w = Rows::new();
        for c in &r.components {
            // Job queues count their jobs over the whole run.
            let span = if matches!(c.kind, "queue" | "queue_class" | "subscriber") {
                spec.opts.duration.as_secs_f64()
            } else {
                window
            };
            let p = predicted.get(&c.component);
            w.s(&run);
            w.s(&c.component);
            w.s(c.kind);
            w.i(c.requests);
            w.o(c.utilization);
            w.o(c.mean_queue);
            w.o(c.p99_ms);
            w.o(c.hit_ratio);
            w.o((span > 0.0).then(|| c.requests as f64 / span));
            w.o(c.mean_ms);
            w.o(p.map(|p| p.offered_rps));
            w.o(p.and_then(|p| p.utilization));
            w.o(p.and_then(|p| p.mean_queue));
            w.o(p.and_then(|p| p.sojourn_ms));
            w.o(p.and_then(|p| p.hit_ratio));
            w.o(p.and_then(|p| p.offered_load));
            w.s(p.map_or("", |p| p.method.as_str()));
            w.end();
        }
        write_flush(
            &mut self.components,
            &self.dir.join("components.csv"),
            &w.finish(),
        )?;
        if let Some(f) = &mut self.instances {
            let mut w = Rows::new();
            for s in &r.instance_series {
                w.s(&run);
                w.f(s.t_s);
                w.s(&s.component);
                w.s(&s.instance);
                w.f(s.arrivals_rps);
                w.o(s.utilization);
                w.f(s.queue_len);
                w.o(s.lag_ms);
                w.end();
            }
            write_flush(f, &self.dir.join(INSTANCES_FILE), &w.finish())?;
        }
        if let (Some(f), Some(t)) = (&mut self.trace, &r.trace) {
            f.append(&trace_json::events(spec, t))?;
        }
        let line = format!("{}\n", runs_line(spec, r));
        write_flush(&mut self.runs, &self.dir.join("runs.csv"), &line)
    }
}

/// Rows written field by field through the csv crate's writer (quoted where needed),
/// numbers formatted into one reused buffer.
struct Rows {
    w: csv::Writer<Vec<u8>>,
    buf: String,
}

impl Rows {
    fn new() -> Rows {
        Rows {
            w: csv_writer(),
            buf: String::new(),
        }
    }

    fn s(&mut self, field: &str) {
        let _ = self.w.write_field(field);
    }

    /// A float as [`fmt_f64`] writes it.
    fn f(&mut self, v: f64) {
        use std::fmt::Write as _;
        self.buf.clear();
        if v.is_finite() {
            let _ = write!(self.buf, "{v}");
        }
        let _ = self.w.write_field(&self.buf);
    }

    fn o(&mut self, v: Option<f64>) {
        match v {
            Some(v) => self.f(v),
            None => self.s(""),
        }
    }

    fn i(&mut self, v: u64) {
        use std::fmt::Write as _;
        self.buf.clear();
        let _ = write!(self.buf, "{v}");
        let _ = self.w.write_field(&self.buf);
    }

    fn end(&mut self) {
        let _ = self.w.write_record(None::<&[u8]>);
    }

    fn finish(self) -> String {
        finish(self.w)
    }
}

/// Appends one run's rows with a single write. If the write fails part-way (a full disk),
/// the file is cut back to its previous length, so it never holds half a row.
fn write_flush(w: &mut File, path: &Path, text: &str) -> Result<(), LabError> {
    if text.is_empty() {
        return Ok(());
    }
    let before = w.metadata().map(|m| m.len()).ok();
    w.write_all(text.as_bytes())
        .and_then(|_| w.flush())
        .map_err(|e| {
            if let Some(len) = before {
                let _ = w.set_len(len);
            }
            LabError::io(path, format!("cannot write: {e}"))
        })
}

/// Forces the folder's entries (new and renamed files) to the disk.
pub fn sync_dir(dir: &Path) -> Result<(), LabError> {
    #[cfg(unix)]
    {
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| LabError::io(dir, format!("cannot sync the folder: {e}")))?;
    }
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// Replaces `path` with `text` through a temporary file and a rename, so a process killed
/// part-way leaves either the old file or the new one, never a cut one.
pub fn write_atomic(path: &Path, text: &str) -> Result<(), LabError> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    if let Err(e) = fs::write(&tmp, text) {
        let _ = fs::remove_file(&tmp);
        return Err(LabError::io(path, format!("cannot write: {e}")));
    }
    fs::rename(&tmp, path).map_err(|e| LabError::io(path, e))
}

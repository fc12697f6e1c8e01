//! The output folder: runs.csv, points.csv, latency.csv, timeseries.csv, components.csv and
//! manifest.json, as outputs.md describes them.
//!
//! Rows reach the disk in run order as runs finish, each run's rows flushed together
//! (runs.csv last), so a killed sweep leaves valid files holding every finished run, and
//! `--resume` can tell exactly which runs are recorded.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use dssim_components::{Cell, RunReport, RUN_COLUMNS};

use crate::error::LabError;
use crate::estimate::ModelEstimate;
use crate::experiment::RunSpec;
use crate::stats::student_t_975;
use crate::trace_json::{self, TraceFile};

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

/// What every recorded run must have in the other files (checked on `--resume`).
#[derive(Clone, Debug, Default)]
pub struct Expect {
    /// Rows in latency.csv of a run with a latency (`p50_ms` set in runs.csv); a run
    /// without one has none.
    pub latency_rows: usize,
    /// Rows per run in timeseries.csv (0: the file has none).
    pub series_rows: usize,
    /// Whether each run has trace.json events.
    pub trace: bool,
    /// Whether each run has instances.csv rows (`[output] instance_timeseries`, a model
    /// with services).
    pub instances: bool,
    /// Whether instances.csv is written (`[output] instance_timeseries`).
    pub instances_file: bool,
    /// Byte lengths of the per-run files when the folder was last complete (from
    /// manifest.json). A file of another length may have lost the end of its last run's
    /// rows at a line boundary, so that run, if recorded, runs again.
    pub lengths: BTreeMap<String, u64>,
}

/// The per-run files whose lengths manifest.json records at the end of a complete sweep
/// (the ones whose rows per run vary, where a cut at a line boundary cannot be told from
/// the rows alone).
pub const LENGTH_CHECKED: &[&str] = &["components.csv", INSTANCES_FILE];

/// The byte lengths of the files of [`LENGTH_CHECKED`] in `dir` (those that exist).
pub fn file_lengths(dir: &Path) -> BTreeMap<String, u64> {
    LENGTH_CHECKED
        .iter()
        .filter_map(|f| {
            fs::metadata(dir.join(f))
                .ok()
                .map(|m| (f.to_string(), m.len()))
        })
        .collect()
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

/// Runs recorded in a runs.csv (complete rows with every field only), each with whether
/// it has a latency (`p50_ms` set: its latency.csv rows exist); errors if its header
/// differs.
fn recorded_runs(path: &Path, header: &str) -> Result<BTreeMap<usize, bool>, LabError> {
    let mut done = BTreeMap::new();
    let Ok(text) = fs::read_to_string(path) else {
        return Ok(done);
    };
    let mut lines = text.split_inclusive('\n');
    match lines.next() {
        Some(h) if h.trim_end() == header => {}
        Some(_) => {
            return Err(LabError::Run(format!(
            "{}: its columns differ from this experiment's; use another --out or remove the folder",
            path.display()
        )))
        }
        None => return Ok(done),
    }
    let fields = csv_fields(header);
    let width = fields.len();
    let p50 = fields.iter().position(|f| f == "p50_ms");
    for l in lines {
        if !l.ends_with('\n') {
            break;
        }
        let row = csv_fields(l);
        if row.len() != width {
            break;
        }
        match row[0].parse::<usize>() {
            Ok(run) => {
                let latency = p50.is_some_and(|i| !row[i].trim().is_empty());
                done.insert(run, latency);
            }
            Err(_) => break,
        }
    }
    Ok(done)
}

/// The fields of one CSV line (quoted commas are part of a field).
fn csv_fields(line: &str) -> Vec<String> {
    let mut r = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(line.as_bytes());
    let mut rec = csv::StringRecord::new();
    match r.read_record(&mut rec) {
        Ok(true) => rec.iter().map(String::from).collect(),
        _ => Vec::new(),
    }
}

/// Fields in one CSV line (quoted commas are part of a field).
fn csv_width(line: &str) -> usize {
    let mut r = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(line.as_bytes());
    let mut rec = csv::StringRecord::new();
    match r.read_record(&mut rec) {
        Ok(true) => rec.len(),
        _ => 0,
    }
}

/// Checks every run in `recorded` against the other files (see [`Outputs::open`]) and
/// returns the runs whose rows are whole everywhere.
fn verify(
    dir: &Path,
    files: &[(&str, String)],
    expect: &Expect,
    recorded: &BTreeMap<usize, bool>,
) -> Result<BTreeSet<usize>, LabError> {
    let mut bad: BTreeSet<usize> = BTreeSet::new();
    for (name, header) in files {
        let path = dir.join(name);
        let Ok(text) = fs::read_to_string(&path) else {
            // A missing file: every recorded run runs again.
            return Ok(BTreeSet::new());
        };
        let mut lines = text.split_inclusive('\n');
        if lines.next().map(str::trim_end) != Some(header.as_str()) {
            return Ok(BTreeSet::new());
        }
        let width = csv_width(header);
        let mut rows: BTreeMap<usize, usize> = BTreeMap::new();
        // The run of the last whole row, and whether the file ends right after it.
        let mut last: Option<(usize, bool)> = None;
        for l in lines {
            let run = l.split(',').next().and_then(|x| x.parse::<usize>().ok());
            match run {
                Some(run) if l.ends_with('\n') && csv_width(l) == width => {
                    *rows.entry(run).or_default() += 1;
                    last = Some((run, true));
                }
                Some(run) => {
                    bad.insert(run);
                    if let Some(l) = &mut last {
                        l.1 = false;
                    }
                }
                None => {
                    if let Some(l) = &mut last {
                        l.1 = false;
                    }
                }
            }
        }
        let n = |r: &usize| rows.get(r).copied().unwrap_or(0);
        for (r, latency) in recorded {
            let ok = match *name {
                "latency.csv" => n(r) == if *latency { expect.latency_rows } else { 0 },
                "timeseries.csv" => n(r) == expect.series_rows,
                INSTANCES_FILE => !expect.instances || n(r) > 0,
                _ => n(r) > 0,
            };
            if !ok {
                bad.insert(*r);
            }
        }
        // A file that may have been cut at a line boundary: the run whose rows end it
        // may have lost some (runs before it were whole when the next one was written).
        if LENGTH_CHECKED.contains(name) && expect.lengths.get(*name) != Some(&(text.len() as u64))
        {
            if let Some((run, true)) = last {
                bad.insert(run);
            }
        }
    }
    if expect.trace {
        let path = dir.join(trace_json::FILE);
        let text = fs::read_to_string(&path).unwrap_or_default();
        let rows = trace_json::rows(&text);
        let traced: BTreeSet<usize> = rows.iter().map(|r| r.0).collect();
        bad.extend(recorded.keys().filter(|r| !traced.contains(r)));
        // A run's events are written with the closing line: without it, the file was cut
        // and its last run may be partial.
        if !trace_json::is_closed(&text) {
            if let Some((run, _)) = rows.last() {
                bad.insert(*run);
            }
        }
    }
    Ok(recorded
        .keys()
        .copied()
        .filter(|r| !bad.contains(r))
        .collect())
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

/// Rewrites a CSV keeping its header and the complete rows of runs in `done`.
fn keep_runs(path: &Path, header: &str, done: &BTreeSet<usize>) -> Result<(), LabError> {
    let text = fs::read_to_string(path).map_err(|e| LabError::io(path, e))?;
    let mut out = format!("{header}\n");
    for l in text.split_inclusive('\n').skip(1) {
        if !l.ends_with('\n') {
            break;
        }
        if let Some(run) = l.split(',').next().and_then(|x| x.parse::<usize>().ok()) {
            if done.contains(&run) {
                out.push_str(l);
            }
        }
    }
    write_atomic(path, &out)
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

/// Sorts the rows of every per-run CSV in `dir` by run id (stable), for folders that were
/// resumed or merged.
pub fn sort_by_run(dir: &Path) -> Result<(), LabError> {
    for name in [
        "runs.csv",
        "latency.csv",
        "timeseries.csv",
        "components.csv",
        INSTANCES_FILE,
    ] {
        let path = dir.join(name);
        let Ok(text) = fs::read_to_string(&path) else {
            continue;
        };
        let mut lines = text.split_inclusive('\n');
        let header = lines.next().unwrap_or("").to_string();
        let mut rows: Vec<(usize, &str)> = lines
            .filter(|l| l.ends_with('\n'))
            .map(|l| {
                (
                    l.split(',')
                        .next()
                        .and_then(|x| x.parse().ok())
                        .unwrap_or(usize::MAX),
                    l,
                )
            })
            .collect();
        if rows.windows(2).all(|w| w[0].0 <= w[1].0) {
            continue;
        }
        rows.sort_by_key(|r| r.0);
        let mut out = header;
        for (_, l) in rows {
            out.push_str(l);
        }
        write_atomic(&path, &out)?;
    }
    trace_json::sort_by_run(dir)
}

/// Writes points.csv from runs.csv: per sweep point, the mean of every metric over its
/// replications and the half-width of its 95% confidence interval (Student t). Streams:
/// runs.csv is in run order, so a point's runs are consecutive rows and only one point is
/// held at a time.
pub fn write_points(dir: &Path, swept: &[String]) -> Result<(), LabError> {
    use std::io::BufWriter;
    let runs_path = dir.join("runs.csv");
    let file = File::open(&runs_path).map_err(|e| LabError::io(&runs_path, e))?;
    let mut rdr = csv::ReaderBuilder::new().from_reader(std::io::BufReader::new(file));
    let headers: Vec<String> = rdr
        .headers()
        .map_err(|e| LabError::io(&runs_path, e))?
        .iter()
        .map(String::from)
        .collect();
    let first_metric = 4 + swept.len();
    let metrics: Vec<(usize, &str)> = headers
        .iter()
        .enumerate()
        .skip(first_metric.min(headers.len()))
        .map(|(i, m)| (i, m.as_str()))
        .filter(|(_, m)| !matches!(*m, "duration_s" | "events"))
        .collect();
    let out_path = dir.join("points.csv");
    let tmp = dir.join("points.csv.tmp");
    let io = |e: std::io::Error| LabError::io(&out_path, format!("cannot write: {e}"));
    let mut w = BufWriter::new(File::create(&tmp).map_err(io)?);
    let mut head = String::from("point");
    for s in swept {
        head.push(',');
        head.push_str(&csv_field(s));
    }
    head.push_str(",runs");
    for (_, m) in &metrics {
        head.push_str(&format!(",{m},{m}_ci95"));
    }
    head.push('\n');
    w.write_all(head.as_bytes()).map_err(io)?;
    // The point being read: its number, swept values, each metric's values, run count.
    let mut cur: Option<PointAcc> = None;
    let emit = |w: &mut BufWriter<File>, p: &PointAcc| {
        let mut line = p.0.to_string();
        for v in &p.1 {
            line.push(',');
            line.push_str(&csv_field(v));
        }
        line.push_str(&format!(",{}", p.3));
        for xs in &p.2 {
            let (mean, half) = mean_ci95(xs);
            line.push_str(&format!(",{},{}", opt(mean), opt(half)));
        }
        line.push('\n');
        w.write_all(line.as_bytes())
    };
    let mut rec = csv::StringRecord::new();
    while rdr
        .read_record(&mut rec)
        .map_err(|e| LabError::io(&runs_path, e))?
    {
        let point: usize = rec.get(1).and_then(|p| p.parse().ok()).unwrap_or(0);
        if cur.as_ref().is_none_or(|c| c.0 != point) {
            if let Some(c) = cur.take() {
                emit(&mut w, &c).map_err(io)?;
            }
            cur = Some((
                point,
                (0..swept.len())
                    .map(|i| rec.get(4 + i).unwrap_or("").to_string())
                    .collect(),
                vec![Vec::new(); metrics.len()],
                0,
            ));
        }
        let c = cur.as_mut().expect("a point");
        c.3 += 1;
        for (mi, (col, _)) in metrics.iter().enumerate() {
            if let Some(v) = rec.get(*col).and_then(|x| x.parse::<f64>().ok()) {
                c.2[mi].push(v);
            }
        }
    }
    if let Some(c) = cur.take() {
        emit(&mut w, &c).map_err(io)?;
    }
    w.into_inner()
        .map_err(|e| io(e.into_error()))?
        .sync_all()
        .map_err(io)?;
    fs::rename(&tmp, &out_path).map_err(|e| LabError::io(&out_path, e))
}

/// One point of points.csv while it is read: number, swept values, each metric's values,
/// run count.
type PointAcc = (usize, Vec<String>, Vec<Vec<f64>>, usize);

/// Mean and 95% half-width (Student t with n−1 degrees of freedom); no half-width for n < 2.
pub fn mean_ci95(xs: &[f64]) -> (Option<f64>, Option<f64>) {
    if xs.is_empty() {
        return (None, None);
    }
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    if xs.len() < 2 {
        return (Some(mean), None);
    }
    let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (
        Some(mean),
        Some(student_t_975(xs.len() - 1) * (var / n).sqrt()),
    )
}

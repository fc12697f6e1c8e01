//! The output folder: runs.csv, points.csv, latency.csv, timeseries.csv, components.csv and
//! manifest.json, as outputs.md describes them.
//!
//! Rows reach the disk in run order as runs finish, each run's rows flushed together
//! (runs.csv last), so a killed sweep leaves valid files holding every finished run, and
//! `--resume` can tell exactly which runs are recorded.

use std::collections::BTreeSet;
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
    trace: Option<TraceFile>,
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

/// Quotes a CSV field when it needs it.
pub fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
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
    f.extend(spec.swept.iter().map(|s| csv_field(s)));
    f.extend(r.metrics.iter().map(|(_, c)| cell(*c)));
    f.join(",")
}

fn join(cols: &[&str]) -> String {
    cols.join(",")
}

impl Outputs {
    /// Opens `dir` for a sweep with these swept paths. Without `resume` the files start
    /// empty; with it, complete runs already recorded are kept (and returned) and anything
    /// after the last complete run is cut away.
    pub fn open(
        dir: &Path,
        swept: &[String],
        resume: bool,
        trace: bool,
    ) -> Result<(Outputs, BTreeSet<usize>), LabError> {
        fs::create_dir_all(dir)
            .map_err(|e| LabError::io(dir, format!("cannot create the output folder: {e}")))?;
        let runs_hdr = runs_header(swept).join(",");
        let files = [
            ("runs.csv", runs_hdr.clone()),
            ("latency.csv", "run,quantile,latency_ms".to_string()),
            ("timeseries.csv", join(SERIES_COLUMNS)),
            ("components.csv", join(COMPONENT_COLUMNS)),
        ];
        let mut done = BTreeSet::new();
        if resume {
            done = recorded_runs(&dir.join("runs.csv"), &runs_hdr)?;
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
        let trace = if trace {
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
        Ok((
            Outputs {
                dir: dir.to_path_buf(),
                runs: next(),
                latency: next(),
                series: next(),
                components: next(),
                trace,
            },
            done,
        ))
    }

    /// Writes every row of one run and flushes (runs.csv last, so a recorded run is whole);
    /// `predicted` fills the predicted columns of components.csv.
    pub fn write_run(
        &mut self,
        spec: &RunSpec,
        r: &RunReport,
        predicted: &ModelEstimate,
    ) -> Result<(), LabError> {
        let run = spec.run;
        let mut buf = String::new();
        for (q, v) in &r.quantiles {
            buf.push_str(&format!("{run},{},{}\n", fmt_f64(*q), fmt_f64(*v)));
        }
        write_flush(&mut self.latency, &self.dir.join("latency.csv"), &buf)?;
        buf.clear();
        for s in &r.series {
            buf.push_str(&format!(
                "{run},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}\n",
                fmt_f64(s.t_s),
                fmt_f64(s.rps),
                opt(s.p99_ms),
                s.errors,
                s.shed,
                fmt_f64(s.instances),
                fmt_f64(s.queue_len),
                opt(s.utilization),
                opt(s.cache_hit_ratio),
                opt(s.repl_lag_ms),
                fmt_f64(s.arrivals_rps),
                fmt_f64(s.in_flight),
                s.timeouts,
                s.dropped,
                fmt_f64(s.rps),
                opt(s.p99_all_ms),
            ));
        }
        write_flush(&mut self.series, &self.dir.join("timeseries.csv"), &buf)?;
        buf.clear();
        let window = (spec.opts.duration - spec.opts.warmup).as_secs_f64();
        for c in &r.components {
            // Job queues count their jobs over the whole run.
            let span = if c.kind == "queue" {
                spec.opts.duration.as_secs_f64()
            } else {
                window
            };
            let p = predicted.get(&c.component);
            buf.push_str(&format!(
                "{run},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}\n",
                csv_field(&c.component),
                c.kind,
                c.requests,
                opt(c.utilization),
                opt(c.mean_queue),
                opt(c.p99_ms),
                opt(c.hit_ratio),
                opt((span > 0.0).then(|| c.requests as f64 / span)),
                opt(c.mean_ms),
                opt(p.map(|p| p.offered_rps)),
                opt(p.and_then(|p| p.utilization)),
                opt(p.and_then(|p| p.mean_queue)),
                opt(p.and_then(|p| p.sojourn_ms)),
                opt(p.and_then(|p| p.hit_ratio)),
                opt(p.and_then(|p| p.offered_load)),
                csv_field(p.map_or("", |p| p.method.as_str())),
            ));
        }
        write_flush(&mut self.components, &self.dir.join("components.csv"), &buf)?;
        if let (Some(f), Some(t)) = (&mut self.trace, &r.trace) {
            f.append(&trace_json::events(spec, t))?;
        }
        let line = format!("{}\n", runs_line(spec, r));
        write_flush(&mut self.runs, &self.dir.join("runs.csv"), &line)
    }
}

/// Appends one run's rows with a single write. If the write fails part-way (a full disk),
/// the file is cut back to its previous length, so it never holds half a row.
fn write_flush(w: &mut File, path: &Path, text: &str) -> Result<(), LabError> {
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

/// Run ids recorded in a runs.csv (complete lines only); errors if its header differs.
fn recorded_runs(path: &Path, header: &str) -> Result<BTreeSet<usize>, LabError> {
    let mut done = BTreeSet::new();
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
    let width = header.split(',').count();
    for l in lines {
        if !l.ends_with('\n') || l.trim_end().split(',').count() != width {
            break;
        }
        match l.split(',').next().and_then(|x| x.parse::<usize>().ok()) {
            Some(run) => {
                done.insert(run);
            }
            None => break,
        }
    }
    Ok(done)
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
/// replications and the half-width of its 95% confidence interval (Student t).
pub fn write_points(dir: &Path, swept: &[String]) -> Result<(), LabError> {
    let runs_path = dir.join("runs.csv");
    let text = fs::read_to_string(&runs_path).map_err(|e| LabError::io(&runs_path, e))?;
    let mut rdr = csv::ReaderBuilder::new().from_reader(text.as_bytes());
    let headers: Vec<String> = rdr
        .headers()
        .map_err(|e| LabError::io(&runs_path, e))?
        .iter()
        .map(String::from)
        .collect();
    let first_metric = 4 + swept.len();
    let metrics: Vec<&str> = headers[first_metric.min(headers.len())..]
        .iter()
        .map(String::as_str)
        .filter(|m| !matches!(*m, "duration_s" | "events"))
        .collect();
    let mut points: std::collections::BTreeMap<usize, PointAcc> = Default::default();
    for rec in rdr.records() {
        let rec = rec.map_err(|e| LabError::io(&runs_path, e))?;
        let point: usize = rec.get(1).and_then(|p| p.parse().ok()).unwrap_or(0);
        let entry = points.entry(point).or_insert_with(|| {
            (
                (0..swept.len())
                    .map(|i| rec.get(4 + i).unwrap_or("").to_string())
                    .collect(),
                vec![Vec::new(); metrics.len()],
                0,
            )
        });
        entry.2 += 1;
        for (mi, m) in metrics.iter().enumerate() {
            let col = headers.iter().position(|h| h == m).unwrap_or(0);
            if let Some(v) = rec.get(col).and_then(|x| x.parse::<f64>().ok()) {
                entry.1[mi].push(v);
            }
        }
    }
    let mut out = String::from("point");
    for s in swept {
        out.push(',');
        out.push_str(&csv_field(s));
    }
    out.push_str(",runs");
    for m in &metrics {
        out.push_str(&format!(",{m},{m}_ci95"));
    }
    out.push('\n');
    for (p, (vals, per_metric, n)) in &points {
        out.push_str(&p.to_string());
        for v in vals {
            out.push(',');
            out.push_str(&csv_field(v));
        }
        out.push_str(&format!(",{n}"));
        for xs in per_metric {
            let (mean, half) = mean_ci95(xs);
            out.push_str(&format!(",{},{}", opt(mean), opt(half)));
        }
        out.push('\n');
    }
    write_atomic(&dir.join("points.csv"), &out)
}

/// Per sweep point: its swept values, every metric's values over replications, run count.
type PointAcc = (Vec<String>, Vec<Vec<f64>>, usize);

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

//! Resuming: what every recorded run must have in the other files, the runs a folder
//! holds whole, and the repairs (cutting torn rows, sorting rows by run) that `--resume`
//! and `merge` need.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;

use super::{write_atomic, INSTANCES_FILE};
use crate::error::LabError;
use crate::trace_json;

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

/// Runs recorded in a runs.csv (complete rows with every field only), each with whether
/// it has a latency (`p50_ms` set: its latency.csv rows exist); errors if its header
/// differs.
pub(super) fn recorded_runs(path: &Path, header: &str) -> Result<BTreeMap<usize, bool>, LabError> {
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

/// One CSV line as a record (quoted commas are part of a field); none when it does not read.
fn csv_record(line: &str) -> Option<csv::StringRecord> {
    let mut r = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(line.as_bytes());
    let mut rec = csv::StringRecord::new();
    match r.read_record(&mut rec) {
        Ok(true) => Some(rec),
        _ => None,
    }
}

/// The fields of one CSV line (quoted commas are part of a field).
fn csv_fields(line: &str) -> Vec<String> {
    csv_record(line).map_or_else(Vec::new, |rec| rec.iter().map(String::from).collect())
}

/// Fields in one CSV line (quoted commas are part of a field).
fn csv_width(line: &str) -> usize {
    csv_record(line).map_or(0, |rec| rec.len())
}

/// Checks every run in `recorded` against the other files (see [`Outputs::open`](super::Outputs::open)) and
/// returns the runs whose rows are whole everywhere.
pub(super) fn verify(
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

/// Rewrites a CSV keeping its header and the complete rows of runs in `done`.
pub(super) fn keep_runs(path: &Path, header: &str, done: &BTreeSet<usize>) -> Result<(), LabError> {
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

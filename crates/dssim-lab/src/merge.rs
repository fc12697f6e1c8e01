//! `dssim merge`: joins the output folders of `dssim run --shard K/N` (K = 0..N-1) into one
//! result folder whose CSVs are byte-identical to an unsharded run of the same experiment.
//!
//! The shards must come from the same experiment (same inputs fingerprint, tool version,
//! swept paths and plan size), use the same N, cover every K exactly once, and be complete
//! (every run of the shard recorded in runs.csv). Anything else is refused with exit code 2.
//! Rows are concatenated, sorted by run id (stable, so a run's own rows keep their order) and
//! points.csv is recomputed from the merged runs.csv, exactly as `dssim run` computes it.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use crate::error::{Diagnostic, LabError};
use crate::manifest::Manifest;
use crate::output;
use crate::runner::shard_runs;

/// The per-run CSV files a shard folder holds (runs.csv first).
const RUN_FILES: &[&str] = &[
    "runs.csv",
    "latency.csv",
    "timeseries.csv",
    "components.csv",
];

/// What a merge did.
#[derive(Debug)]
pub struct MergeSummary {
    /// Experiment name.
    pub experiment: String,
    /// Shards merged (N).
    pub shards: usize,
    /// Runs in the merged folder.
    pub runs: usize,
}

fn bad(dir: &Path, message: impl Into<String>) -> LabError {
    LabError::Input(Diagnostic::plain(dir, message))
}

/// Merges the shard folders `dirs` into `out` (created if needed; its CSVs and manifest are
/// overwritten). `command` is recorded in the merged manifest.
pub fn merge(dirs: &[PathBuf], out: &Path, command: &[String]) -> Result<MergeSummary, LabError> {
    if dirs.is_empty() {
        return Err(bad(
            Path::new("merge"),
            "give the shard folders to merge (dssim merge results/x/shard-0 results/x/shard-1 ...)",
        ));
    }
    let mut manifests = Vec::new();
    for d in dirs {
        if !d.join("manifest.json").exists() {
            return Err(bad(
                d,
                "not a dssim output folder (no manifest.json); give folders written by `dssim run --shard K/N`",
            ));
        }
        let m = Manifest::read(d).map_err(|e| bad(d, e.to_string()))?;
        if let Ok(o) = out.canonicalize() {
            if d.canonicalize().ok().as_ref() == Some(&o) {
                return Err(bad(
                    d,
                    "the output folder is one of the shard folders; pass another --out",
                ));
            }
        }
        manifests.push(m);
    }
    let first = &manifests[0];
    let d0 = &dirs[0];
    let n = match first.shard {
        Some((_, n)) => n,
        None => {
            return Err(bad(
                d0,
                "this folder is not a shard (it was written without --shard); there is nothing to merge",
            ))
        }
    };
    let mut seen = vec![None::<usize>; n];
    for (i, (d, m)) in dirs.iter().zip(&manifests).enumerate() {
        let differs = |what: &str, a: &str, b: &str| {
            bad(
                d,
                format!(
                    "comes from a different {what} than {} ({b} vs {a}); shards of one sweep must share the experiment, overrides, seed and dssim version",
                    d0.display()
                ),
            )
        };
        if m.tool != first.tool {
            return Err(differs("dssim version", &first.tool, &m.tool));
        }
        if m.fingerprint != first.fingerprint {
            return Err(differs(
                "experiment (inputs fingerprint)",
                &first.fingerprint,
                &m.fingerprint,
            ));
        }
        if m.experiment != first.experiment
            || m.swept != first.swept
            || m.total_runs != first.total_runs
            || m.seed != first.seed
            || m.replications != first.replications
        {
            return Err(differs(
                "plan",
                &format!("{} runs of {}", first.total_runs, first.experiment),
                &format!("{} runs of {}", m.total_runs, m.experiment),
            ));
        }
        let (k, mn) = m.shard.ok_or_else(|| {
            bad(
                d,
                "this folder is not a shard (it was written without --shard)",
            )
        })?;
        if mn != n {
            return Err(bad(
                d,
                format!(
                    "is shard {k}/{mn} but {} is a shard of {n}; merge shards of one split",
                    d0.display()
                ),
            ));
        }
        if let Some(j) = seen[k] {
            return Err(bad(
                d,
                format!("shard {k}/{n} is given twice (also {})", dirs[j].display()),
            ));
        }
        seen[k] = Some(i);
    }
    let missing: Vec<String> = seen
        .iter()
        .enumerate()
        .filter(|(_, s)| s.is_none())
        .map(|(k, _)| format!("{k}/{n}"))
        .collect();
    if !missing.is_empty() {
        return Err(bad(
            Path::new("merge"),
            format!(
                "shard(s) {} missing: give all {n} shard folders",
                missing.join(", ")
            ),
        ));
    }

    // instances.csv, when the shards wrote it (`[output] instance_timeseries`).
    let mut run_files: Vec<&str> = RUN_FILES.to_vec();
    if dirs[0].join(output::INSTANCES_FILE).exists() {
        run_files.push(output::INSTANCES_FILE);
    }
    // Every shard complete: its runs.csv holds exactly the runs of its shard.
    let mut texts: Vec<Vec<String>> = Vec::new();
    for (d, m) in dirs.iter().zip(&manifests) {
        let (k, _) = m.shard.unwrap_or((0, 1));
        let expected: BTreeSet<usize> = shard_runs(m.total_runs, m.shard).into_iter().collect();
        let mut files = Vec::new();
        for name in &run_files {
            let p = d.join(name);
            let t = fs::read_to_string(&p)
                .map_err(|e| bad(&p, format!("cannot read the shard's {name}: {e}")))?;
            files.push(t);
        }
        let recorded = row_runs(&files[0]);
        let recorded_set: BTreeSet<usize> = recorded.iter().copied().collect();
        if recorded_set != expected || recorded.len() != expected.len() || !m.complete {
            let foreign = recorded_set.difference(&expected).count();
            let dups = recorded.len() - recorded_set.len();
            let damage = if foreign + dups > 0 {
                format!(
                    "; its runs.csv also holds {foreign} run(s) of other shards and {dups} repeated row(s)"
                )
            } else {
                String::new()
            };
            return Err(bad(
                d,
                format!(
                    "shard {k}/{n} is incomplete ({} of its {} runs recorded{damage}); finish it with `dssim run FILE --shard {k}/{n} --out {} --resume`",
                    recorded_set.intersection(&expected).count(),
                    expected.len(),
                    d.display()
                ),
            ));
        }
        texts.push(files);
    }
    for (fi, name) in run_files.iter().enumerate() {
        let h0 = header(&texts[0][fi]);
        for (d, t) in dirs.iter().zip(&texts).skip(1) {
            if header(&t[fi]) != h0 {
                return Err(bad(
                    &d.join(name),
                    format!("its columns differ from {}", dirs[0].join(name).display()),
                ));
            }
        }
    }

    fs::create_dir_all(out)
        .map_err(|e| LabError::io(out, format!("cannot create the output folder: {e}")))?;
    let stale = out.join(output::INSTANCES_FILE);
    if !run_files.contains(&output::INSTANCES_FILE) && stale.exists() {
        fs::remove_file(&stale).map_err(|e| LabError::io(&stale, e))?;
    }
    for (fi, name) in run_files.iter().enumerate() {
        let mut rows: Vec<(usize, &str)> = Vec::new();
        for t in &texts {
            rows.extend(
                t[fi]
                    .split_inclusive('\n')
                    .skip(1)
                    .filter(|l| l.ends_with('\n'))
                    .map(|l| (run_id(l).unwrap_or(usize::MAX), l)),
            );
        }
        rows.sort_by_key(|r| r.0);
        let mut text = header(&texts[0][fi]).to_string();
        for (_, l) in rows {
            text.push_str(l);
        }
        let p = out.join(name);
        fs::write(&p, text).map_err(|e| LabError::io(&p, e))?;
    }
    crate::trace_json::merge(dirs, out)?;
    output::write_points(out, &first.swept)?;

    let mut merged = first.clone();
    merged.shard = None;
    merged.command = command.to_vec();
    merged.complete = true;
    merged.wall_s = manifests.iter().map(|m| m.wall_s).sum();
    merged.runs = manifests.iter().flat_map(|m| m.runs.clone()).collect();
    merged.runs.sort_by_key(|r| r.run);
    merged.file_lengths = output::file_lengths(out);
    merged.write(out)?;
    Ok(MergeSummary {
        experiment: first.experiment.clone(),
        shards: n,
        runs: merged.runs.len(),
    })
}

fn header(text: &str) -> &str {
    text.split_inclusive('\n').next().unwrap_or("")
}

fn run_id(line: &str) -> Option<usize> {
    line.split(',').next().and_then(|x| x.parse().ok())
}

/// The run ids of the complete rows of a runs.csv, in file order.
fn row_runs(text: &str) -> Vec<usize> {
    text.split_inclusive('\n')
        .skip(1)
        .filter(|l| l.ends_with('\n'))
        .filter_map(run_id)
        .collect()
}

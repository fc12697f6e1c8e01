//! The parallel runner: rayon workers take runs in id order; the calling thread writes their
//! rows in run order through a small reorder buffer, so outputs are byte-identical for any
//! `--jobs`, and an interrupted sweep keeps every run that finished before the gap.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::Instant;

use dssim_components::RunReport;

use crate::error::LabError;
use crate::estimate::{estimate_run, ModelEstimate};
use crate::experiment::{Experiment, RunSpec};
use crate::manifest::{Manifest, RunRecord};
use crate::output::{self, Outputs};

/// How to run a plan.
#[derive(Clone, Debug)]
pub struct RunSettings {
    /// Output folder.
    pub out: PathBuf,
    /// Worker threads.
    pub jobs: usize,
    /// Keep runs already recorded in `out`.
    pub resume: bool,
    /// Only the runs of shard `k` of `n` (run id mod n == k).
    pub shard: Option<(usize, usize)>,
    /// The command line, for the manifest.
    pub command: Vec<String>,
}

/// Progress reports for a display.
pub trait Progress: Sync {
    /// Called once the plan is known.
    fn start(&self, total: usize, already_done: usize);
    /// Called after each run is written.
    fn run_done(&self, events: u64);
    /// Called at the end.
    fn finish(&self);
}

/// A progress display that shows nothing.
pub struct Quiet;
impl Progress for Quiet {
    fn start(&self, _: usize, _: usize) {}
    fn run_done(&self, _: u64) {}
    fn finish(&self) {}
}

/// What a finished sweep did.
#[derive(Debug)]
pub struct Summary {
    /// Runs executed now.
    pub ran: usize,
    /// Runs skipped because already recorded.
    pub skipped: usize,
    /// Events processed now.
    pub events: u64,
    /// Wall seconds.
    pub wall_s: f64,
    /// Whether Ctrl-C stopped it early.
    pub interrupted: bool,
}

/// A finished run: its report and the predictions for its model, or why it failed.
type Outcome = Result<(RunReport, ModelEstimate), String>;

/// Runs one spec to its report (also used by replay).
pub fn run_one(spec: &RunSpec) -> Result<RunReport, String> {
    let world = spec.model.build(&spec.opts).map_err(|errs| {
        errs.iter()
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
            .join("; ")
    })?;
    world.run().map_err(|e| e.to_string())
}

/// The run ids of the plan for this shard.
pub fn shard_runs(total: usize, shard: Option<(usize, usize)>) -> Vec<usize> {
    match shard {
        Some((k, n)) => (0..total).filter(|r| r % n == k).collect(),
        None => (0..total).collect(),
    }
}

/// Executes the plan into `settings.out`.
pub fn execute(
    exp: &Experiment,
    settings: &RunSettings,
    progress: &dyn Progress,
    cancel: &AtomicBool,
) -> Result<Summary, LabError> {
    let started = Instant::now();
    let ids = shard_runs(exp.runs(), settings.shard);
    // Resolve every run first: a bad sweep value fails before anything runs.
    let specs: Vec<RunSpec> = ids.iter().map(|&r| exp.spec(r)).collect::<Result<_, _>>()?;
    let out = &settings.out;
    let mut manifest = Manifest::new(exp, settings, &specs);
    if settings.resume {
        manifest.check_resumable(out)?;
    }
    let swept = exp.swept_paths();
    let (mut outputs, done) = Outputs::open(out, &swept, settings.resume, exp.output.trace > 0)?;
    manifest.keep_previous(out, &done);
    manifest.write(out)?;
    let todo: Vec<&RunSpec> = specs.iter().filter(|s| !done.contains(&s.run)).collect();
    progress.start(specs.len(), specs.len() - todo.len());

    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let (tx, rx) = mpsc::channel::<(usize, Outcome, f64, u64)>();
    let jobs = settings.jobs.max(1).min(todo.len().max(1));
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(jobs)
        .build()
        .map_err(|e| LabError::Run(format!("cannot start {jobs} worker threads: {e}")))?;
    let mut ran = 0;
    let mut events = 0u64;
    let mut failure: Option<String> = None;
    let mut write_err: Option<LabError> = None;
    std::thread::scope(|scope| {
        scope.spawn(|| {
            pool.scope(|s| {
                for _ in 0..jobs {
                    let tx = tx.clone();
                    let (next, stop, todo) = (&next, &stop, &todo);
                    s.spawn(move |_| loop {
                        if stop.load(Ordering::Relaxed) || cancel.load(Ordering::Relaxed) {
                            break;
                        }
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(spec) = todo.get(i) else { break };
                        let t0 = Instant::now();
                        let res = run_one(spec);
                        let wall = t0.elapsed().as_secs_f64();
                        let ev = res
                            .as_ref()
                            .map_or(0, |r| r.metric("events").unwrap_or(0.0) as u64);
                        // The predictions for components.csv, off the writing thread.
                        let res = res.map(|r| (r, estimate_run(&spec.model, &spec.opts)));
                        if tx.send((i, res, wall, ev)).is_err() {
                            break;
                        }
                    });
                }
            });
            drop(tx);
        });
        let mut buffer: BTreeMap<usize, (Outcome, f64, u64)> = BTreeMap::new();
        let mut expect = 0;
        for (i, res, wall, ev) in rx {
            buffer.insert(i, (res, wall, ev));
            while let Some((res, wall, ev)) = buffer.remove(&expect) {
                let spec = todo[expect];
                expect += 1;
                if failure.is_some() || write_err.is_some() {
                    continue;
                }
                match res {
                    Ok((report, predicted)) => {
                        if let Err(e) = outputs.write_run(spec, &report, &predicted) {
                            write_err = Some(e);
                            stop.store(true, Ordering::Relaxed);
                            continue;
                        }
                        manifest.record(RunRecord::timing(spec.run, wall, ev));
                        ran += 1;
                        events += ev;
                        progress.run_done(ev);
                    }
                    Err(msg) => {
                        failure = Some(format!(
                            "run {} failed (seed {}): {msg}\n  reproduce with `dssim replay {} --run {}`",
                            spec.run,
                            spec.seed,
                            out.display(),
                            spec.run
                        ));
                        stop.store(true, Ordering::Relaxed);
                    }
                }
            }
        }
    });
    progress.finish();
    let interrupted = cancel.load(Ordering::Relaxed) && ran + done.len() < specs.len();
    let complete = failure.is_none() && write_err.is_none() && !interrupted;
    // Summaries come from what is on disk. After a failed write (full disk) they are tried
    // but the first error is the one reported: the rows already written stay whole.
    let summaries = (|| {
        if settings.resume {
            output::sort_by_run(out)?;
        }
        output::write_points(out, &swept)?;
        manifest.finish(started.elapsed().as_secs_f64(), complete);
        manifest.write(out)
    })();
    if let Some(e) = write_err {
        return Err(e);
    }
    summaries?;
    if let Some(f) = failure {
        return Err(LabError::Run(f));
    }
    Ok(Summary {
        ran,
        skipped: done.len(),
        events,
        wall_s: started.elapsed().as_secs_f64(),
        interrupted,
    })
}

/// What `replay` found: runs.csv's header, the recorded row and the replayed one.
#[derive(Clone, Debug)]
pub struct Replayed {
    /// runs.csv's header line.
    pub header: String,
    /// The row recorded in runs.csv.
    pub recorded: String,
    /// The row the replay produced.
    pub replayed: String,
}

impl Replayed {
    /// Whether the rows are identical.
    pub fn identical(&self) -> bool {
        self.recorded == self.replayed
    }

    /// The columns whose cells differ: (column, recorded, replayed).
    pub fn differences(&self) -> Vec<(String, String, String)> {
        let cells = |line: &str| -> Vec<String> {
            csv::ReaderBuilder::new()
                .has_headers(false)
                .from_reader(line.as_bytes())
                .records()
                .next()
                .and_then(Result::ok)
                .map(|r| r.iter().map(String::from).collect())
                .unwrap_or_default()
        };
        let (h, a, b) = (
            cells(&self.header),
            cells(&self.recorded),
            cells(&self.replayed),
        );
        let n = h.len().max(a.len()).max(b.len());
        (0..n)
            .filter(|&i| a.get(i) != b.get(i))
            .map(|i| {
                let get = |v: &Vec<String>| v.get(i).cloned().unwrap_or_else(|| "(missing)".into());
                (
                    h.get(i)
                        .cloned()
                        .unwrap_or_else(|| format!("column {}", i + 1)),
                    get(&a),
                    get(&b),
                )
            })
            .collect()
    }
}

/// Re-runs run `run` of an output folder and returns runs.csv's header, its recorded row
/// and the replayed one. A run id the folder does not hold is bad input (exit 2).
pub fn replay(dir: &Path, run: usize) -> Result<Replayed, LabError> {
    let manifest = Manifest::read(dir)?;
    if !manifest.runs.iter().any(|r| r.run == run) {
        let ids: Vec<usize> = manifest.runs.iter().map(|r| r.run).collect();
        let range = match (ids.iter().min(), ids.iter().max()) {
            (Some(a), Some(b)) => format!("runs {a} to {b}"),
            _ => "no runs".into(),
        };
        return Err(LabError::Input(crate::Diagnostic::plain(
            Path::new("--run"),
            format!("{} holds no run {run} (it holds {range})", dir.display()),
        )));
    }
    let spec = manifest.spec(run)?;
    let report = run_one(&spec).map_err(LabError::Run)?;
    let new_line = output::runs_line(&spec, &report);
    let runs_path = dir.join("runs.csv");
    let text = std::fs::read_to_string(&runs_path).map_err(|e| LabError::io(&runs_path, e))?;
    let header = text.lines().next().unwrap_or_default().to_string();
    let recorded = text
        .lines()
        .skip(1)
        .find(|l| l.split(',').next() == Some(&run.to_string()))
        .ok_or_else(|| {
            LabError::Input(crate::Diagnostic::plain(
                Path::new("--run"),
                format!(
                    "run {run} is not recorded in {} (an interrupted run: `--resume` it first)",
                    runs_path.display()
                ),
            ))
        })?;
    Ok(Replayed {
        header,
        recorded: recorded.to_string(),
        replayed: new_line,
    })
}

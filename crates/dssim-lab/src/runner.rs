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
use crate::limits::Limits;
use crate::lock::FolderLock;
use crate::manifest::{Manifest, Timing};
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
    /// Replace the results of another plan in `out`.
    pub overwrite: bool,
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

/// A finished run: its spec, report and the predictions for its model; or why it failed
/// (a bad input found when its spec was resolved, or a failed run); or a run already
/// recorded (resume), passed through to keep the order.
enum Outcome {
    Done(Box<(RunSpec, RunReport, ModelEstimate)>),
    Skipped,
    BadInput(LabError),
    Failed(usize, u64, String),
}

/// Runs one spec to its report (also used by replay).
pub fn run_one(spec: &RunSpec) -> Result<RunReport, String> {
    run_capped(spec, None)
}

/// Runs one spec, stopping it cleanly if it passes `limits` while it runs (events, or the
/// memory its queue and requests in flight hold), unless they are forced off.
pub fn run_capped(spec: &RunSpec, limits: Option<&Limits>) -> Result<RunReport, String> {
    run_world(spec, limits, false)
}

/// [`run_capped`], also recording each service instance's levels per time-series row
/// (instances.csv) when `instances` is set; the run is otherwise the same.
pub fn run_world(
    spec: &RunSpec,
    limits: Option<&Limits>,
    instances: bool,
) -> Result<RunReport, String> {
    let mut world = spec.model.build(&spec.opts).map_err(|errs| {
        errs.iter()
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
            .join("; ")
    })?;
    if let Some(l) = limits.filter(|l| !l.force) {
        let est = crate::limits::estimate(&spec.model, &spec.opts);
        world.set_cap(dssim_components::model::RunCap {
            events: l.max_events.min(u64::MAX as f64) as u64,
            bytes: l.max_memory.min(u64::MAX as f64) as u64,
            names: (
                "--max-events".into(),
                "--max-memory".into(),
                if est.events_cause.0.is_empty() {
                    "the load".into()
                } else {
                    est.events_cause.0
                },
            ),
        });
    }
    if instances {
        world.enable_instance_series();
    }
    world.run().map_err(|e| e.to_string())
}

/// The run ids of a plan for one shard, without listing them: run `k + i·n` for
/// `i = 0..len` (all runs when unsharded).
#[derive(Clone, Copy, Debug)]
pub struct Plan {
    total: usize,
    k: usize,
    n: usize,
}

impl Plan {
    /// The runs of shard `k` of `n` of a plan of `total` runs.
    pub fn new(total: usize, shard: Option<(usize, usize)>) -> Plan {
        let (k, n) = shard.unwrap_or((0, 1));
        Plan { total, k, n }
    }

    /// Number of runs.
    pub fn len(&self) -> usize {
        if self.k >= self.total {
            0
        } else {
            (self.total - self.k).div_ceil(self.n)
        }
    }

    /// Whether the plan has no runs.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The `i`-th run id.
    pub fn id(&self, i: usize) -> usize {
        self.k + i * self.n
    }

    /// The position of run `run`, if it is in the plan.
    pub fn index_of(&self, run: usize) -> Option<usize> {
        (run < self.total && run % self.n == self.k).then(|| run / self.n)
    }
}

/// The run ids of the plan for this shard.
pub fn shard_runs(total: usize, shard: Option<(usize, usize)>) -> Vec<usize> {
    let p = Plan::new(total, shard);
    (0..p.len()).map(|i| p.id(i)).collect()
}

/// Worker threads for `jobs` requested: at most four per core (runs are CPU-bound: more
/// threads only hold more memory), at least one.
pub fn worker_threads(jobs: usize) -> usize {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    jobs.clamp(1, 4 * cores)
}

/// While a run waits to be written, workers run at most this many runs per worker ahead
/// of it (the reorder buffer stays small whatever the plan's size).
const AHEAD_PER_WORKER: usize = 16;

/// How often (wall time) the files are synced to disk while a sweep writes rows; always
/// at the end.
const SYNC_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// Checks `out` may take this plan's results: a folder of another plan (experiment,
/// files, seed, overrides or shard) is refused unless `--overwrite`; with `--resume` it
/// must match. A folder with result files but no manifest is not dssim's: refused too.
fn check_folder(out: &Path, manifest: &Manifest, settings: &RunSettings) -> Result<(), LabError> {
    let has_manifest = out.join("manifest.json").exists();
    if settings.overwrite {
        return Ok(());
    }
    if !has_manifest {
        if settings.resume {
            // Resume checks runs.csv's columns and every row itself.
            return Ok(());
        }
        let ours = [
            "runs.csv",
            "latency.csv",
            "timeseries.csv",
            "components.csv",
            "points.csv",
            output::INSTANCES_FILE,
        ];
        if let Some(f) = ours.iter().find(|f| out.join(f).exists()) {
            return Err(LabError::Run(format!(
                "{} holds {f} but no manifest.json: not a dssim output folder, or one whose manifest is gone; use another --out, or --overwrite to replace its files",
                out.display()
            )));
        }
        return Ok(());
    }
    let old = Manifest::read(out).map_err(|e| {
        LabError::Run(format!(
            "{e}; use another --out, or --overwrite to replace the folder's files"
        ))
    })?;
    if !manifest.same_plan(&old) {
        let what = if old.experiment != manifest.experiment {
            format!("experiment {:?}", old.experiment)
        } else if old.seed != manifest.seed {
            format!("{:?} with seed {}", old.experiment, old.seed)
        } else if old.shard != manifest.shard {
            format!("{:?}, shard {:?}", old.experiment, old.shard)
        } else {
            format!("{:?} with other files or overrides", old.experiment)
        };
        let diffs = manifest.differences(&old);
        let keys = if diffs.is_empty() {
            "the same settings, but the text of the experiment or model file changed".to_string()
        } else {
            diffs.join("; ")
        };
        return Err(LabError::Run(format!(
            "{} holds results of {what} (fingerprint {} vs {} now): {keys}; the folder was written by `{}`; use another --out, or --overwrite to replace them{}",
            out.display(),
            old.fingerprint,
            manifest.fingerprint,
            old.command.join(" "),
            if settings.resume { " (--resume continues only the same plan)" } else { "" }
        )));
    }
    Ok(())
}

/// Executes the plan into `settings.out`.
pub fn execute(
    exp: &Experiment,
    settings: &RunSettings,
    progress: &dyn Progress,
    cancel: &AtomicBool,
) -> Result<Summary, LabError> {
    let started = Instant::now();
    let plan = Plan::new(exp.runs(), settings.shard);
    // A bad sweep value, or a plan past the sweep limits, fails before anything runs.
    exp.check_plan()?;
    let out = &settings.out;
    let _lock = FolderLock::acquire(out, &settings.command)?;
    let mut manifest = Manifest::new(exp, settings)?;
    check_folder(out, &manifest, settings)?;
    let swept = exp.swept_paths();
    let expect = output::Expect {
        latency_rows: dssim_components::report::cdf_quantiles().len(),
        // The sampler closes a row every interval from t = 0 up to the duration.
        series_rows: exp.output.timeseries.map_or(0, |iv| {
            if iv.0 > dssim_engine::SimTime::ZERO {
                exp.duration.as_nanos().div_ceil(iv.0.as_nanos()) as usize
            } else {
                0
            }
        }),
        trace: exp.output.trace > 0,
        instances: exp.output.instance_timeseries && exp.has_services(),
        instances_file: exp.output.instance_timeseries,
        lengths: if settings.resume && !settings.overwrite {
            Manifest::read(out)
                .map(|m| m.file_lengths)
                .unwrap_or_default()
        } else {
            Default::default()
        },
    };
    let (mut outputs, done) = Outputs::open(out, &swept, settings.resume, &expect)?;
    let mut timings: Vec<Timing> = vec![None; plan.len()];
    Manifest::keep_previous(out, &done, &plan, &mut timings);
    manifest.write_plan(out, exp, &plan, &timings)?;
    let already = done.iter().filter(|r| plan.index_of(**r).is_some()).count();
    progress.start(plan.len(), already);

    let next = AtomicUsize::new(0);
    let written = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let (tx, rx) = mpsc::channel::<(usize, Outcome, f64, u64)>();
    let jobs = worker_threads(settings.jobs).min((plan.len() - already).max(1));
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(jobs)
        .build()
        .map_err(|e| LabError::Run(format!("cannot start {jobs} worker threads: {e}")))?;
    let mut ran = 0;
    let mut events = 0u64;
    let mut failure: Option<LabError> = None;
    let mut write_err: Option<LabError> = None;
    let mut last_sync = Instant::now();
    std::thread::scope(|scope| {
        scope.spawn(|| {
            pool.scope(|s| {
                for _ in 0..jobs {
                    let tx = tx.clone();
                    let (next, stop, written, done) = (&next, &stop, &written, &done);
                    s.spawn(move |_| loop {
                        if stop.load(Ordering::Relaxed) || cancel.load(Ordering::Relaxed) {
                            break;
                        }
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= plan.len() {
                            break;
                        }
                        // Stay close to the writer: the runs waiting to be written stay few.
                        while i >= written.load(Ordering::Relaxed) + AHEAD_PER_WORKER * jobs
                            && !stop.load(Ordering::Relaxed)
                            && !cancel.load(Ordering::Relaxed)
                        {
                            std::thread::sleep(std::time::Duration::from_millis(1));
                        }
                        let run = plan.id(i);
                        if done.contains(&run) {
                            if tx.send((i, Outcome::Skipped, 0.0, 0)).is_err() {
                                break;
                            }
                            continue;
                        }
                        let spec = match exp.spec(run) {
                            Ok(s) => s,
                            Err(e) => {
                                let _ = tx.send((i, Outcome::BadInput(e), 0.0, 0));
                                break;
                            }
                        };
                        let t0 = Instant::now();
                        let res =
                            run_world(&spec, Some(&exp.limits), exp.output.instance_timeseries);
                        let wall = t0.elapsed().as_secs_f64();
                        let (outcome, ev) = match res {
                            Ok(r) => {
                                let ev = r.metric("events").unwrap_or(0.0) as u64;
                                // The predictions for components.csv, off the writing thread.
                                let p = estimate_run(&spec.model, &spec.opts);
                                (Outcome::Done(Box::new((spec, r, p))), ev)
                            }
                            Err(msg) => (Outcome::Failed(spec.run, spec.seed, msg), 0),
                        };
                        if tx.send((i, outcome, wall, ev)).is_err() {
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
                let at = expect;
                expect += 1;
                written.store(expect, Ordering::Relaxed);
                if failure.is_some() || write_err.is_some() {
                    continue;
                }
                match res {
                    Outcome::Skipped => {}
                    Outcome::Done(b) => {
                        let (spec, report, predicted) = *b;
                        if let Err(e) = outputs.write_run(&spec, &report, &predicted) {
                            write_err = Some(e);
                            stop.store(true, Ordering::Relaxed);
                            continue;
                        }
                        // Whole runs reach the disk: synced at a run's end, at most once
                        // a second, and at the end.
                        if last_sync.elapsed() >= SYNC_EVERY {
                            if let Err(e) = outputs.sync() {
                                write_err = Some(e);
                                stop.store(true, Ordering::Relaxed);
                                continue;
                            }
                            last_sync = Instant::now();
                        }
                        timings[at] = Some((wall, (wall > 0.0).then(|| ev as f64 / wall)));
                        ran += 1;
                        events += ev;
                        progress.run_done(ev);
                    }
                    Outcome::BadInput(e) => {
                        failure = Some(e);
                        stop.store(true, Ordering::Relaxed);
                    }
                    Outcome::Failed(run, seed, msg) => {
                        failure = Some(LabError::Run(format!(
                            "run {run} failed (seed {seed}): {msg}\n  reproduce with `dssim replay {} --run {run}`",
                            out.display(),
                        )));
                        stop.store(true, Ordering::Relaxed);
                    }
                }
            }
        }
    });
    progress.finish();
    let interrupted = cancel.load(Ordering::Relaxed) && ran + already < plan.len();
    let complete = failure.is_none() && write_err.is_none() && !interrupted;
    // Summaries come from what is on disk. After a failed write (full disk) they are tried
    // but the first error is the one reported: the rows already written stay whole.
    let summaries = (|| {
        outputs.sync()?;
        if settings.resume {
            output::sort_by_run(out)?;
        }
        output::write_points(out, &swept)?;
        manifest.finish(started.elapsed().as_secs_f64(), complete);
        manifest.record_lengths(out);
        manifest.write_plan(out, exp, &plan, &timings)?;
        output::sync_dir(out)
    })();
    if let Some(e) = write_err {
        return Err(e);
    }
    summaries?;
    if let Some(f) = failure {
        return Err(f);
    }
    Ok(Summary {
        ran,
        skipped: already,
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
    let runs_path = dir.join("runs.csv");
    let text = std::fs::read_to_string(&runs_path).map_err(|e| LabError::io(&runs_path, e))?;
    let header = text.lines().next().unwrap_or_default().to_string();
    let id = run.to_string();
    let recorded = text
        .lines()
        .skip(1)
        .find(|l| l.split(',').next() == Some(id.as_str()));
    // An id outside the plan is a bad argument (exit 2), checked before anything runs.
    let spec = manifest.spec(run)?;
    let recorded = recorded.ok_or_else(|| {
        LabError::Input(crate::Diagnostic::plain(
            Path::new("--run"),
            format!(
                "run {run} is not recorded in {} (an interrupted run: `--resume` it first)",
                runs_path.display()
            ),
        ))
    })?;
    let report = run_one(&spec).map_err(LabError::Run)?;
    Ok(Replayed {
        header,
        recorded: recorded.to_string(),
        replayed: output::runs_line(&spec, &report),
    })
}

//! The one support module of the integration tests: models from TOML text and runs in
//! process (single or replicated), the `dssim` binary in a fresh folder, CSV files read
//! back, and the statistics the theory checks need (estimates with standard errors).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

use dssim_components::{ComponentRow, ModelConfig, RunOptions, RunReport};
use dssim_engine::SimTime;
use rayon::prelude::*;

/// How many standard errors an estimate may stray from theory.
///
/// The estimates are means over independent replications (different seeds, each run
/// starting empty and discarding a warm-up of many relaxation times), so by the central
/// limit theorem (mean - theory) / se follows Student's t with R - 1 degrees of freedom.
/// For R = 20, P(|t_19| > 4) is about 8e-4; the seeds are fixed, so a correct simulator
/// passes every time, and a tolerance this tight still catches a bias of a few percent
/// (each check also asserts that its tolerance is small next to the theoretical value,
/// so a noisy estimate cannot make a check vacuous).
pub const SIGMAS: f64 = 4.0;

/// Relative resolution of the latency histograms: HDR with 3 significant digits keeps
/// 2048 sub-buckets per power of two, so a recorded value is off by less than 1/1024 of
/// itself, and a quantile (the bucket's highest equivalent value) is biased upward by at
/// most that much.
pub const HDR_RESOLUTION: f64 = 1.0 / 1024.0;

/// Parses a model written as TOML (the body of a model file).
pub fn model(text: &str) -> ModelConfig {
    let m: ModelConfig = toml::from_str(text).unwrap_or_else(|e| panic!("bad test model: {e}"));
    if let Err(errs) = m.validate() {
        panic!("test model does not validate: {errs:?}");
    }
    m
}

/// The model most tests start from: a client `users` sending `rate` requests/s to a
/// service `app`. `client` adds lines to the client (`"keys = 100"`); `app` goes on from
/// `name = "app"` inside `[[services]]`: the service's keys, then any further tables.
pub fn users_to_app(rate: u32, client: &[&str], app: &str) -> String {
    users_to("app", rate, client, app)
}

/// [`users_to_app`] with the service named `service`.
pub fn users_to(service: &str, rate: u32, client: &[&str], rest: &str) -> String {
    let mut text =
        format!("[[clients]]\nname = \"users\"\ntarget = \"{service}\"\nrate = {rate}\n");
    for line in client {
        text.push_str(line);
        text.push('\n');
    }
    text.push_str(&format!("\n[[services]]\nname = \"{service}\"\n"));
    text.push_str(rest);
    text
}

/// Run length of a replication.
#[derive(Clone, Copy, Debug)]
pub struct Plan {
    /// Metrics ignore this prefix (seconds).
    pub warmup_s: u64,
    /// Arrivals stop here (seconds, warm-up included).
    pub duration_s: u64,
    /// Independent replications.
    pub replications: u64,
    /// Width of a time-series row; none when absent.
    pub timeseries: Option<SimTime>,
    /// Seeds are `first_seed .. first_seed + replications`: each test takes its own range,
    /// so that the checks of different tests are independent (the models share component
    /// names, and equal seeds would give them the same random streams).
    pub first_seed: u64,
}

impl Plan {
    /// `replications` runs of `duration_s` seconds measured after `warmup_s`, seeds from
    /// `first_seed` on, with no time series.
    pub fn new(warmup_s: u64, duration_s: u64, replications: u64, first_seed: u64) -> Plan {
        Plan {
            warmup_s,
            duration_s,
            replications,
            timeseries: None,
            first_seed,
        }
    }
}

/// Runs `plan.replications` replications of `m` with consecutive seeds (in parallel; the
/// reports come back in replication order).
pub fn replicate(m: &ModelConfig, plan: Plan) -> Vec<RunReport> {
    (plan.first_seed..plan.first_seed + plan.replications)
        .into_par_iter()
        .map(|seed| {
            let opts = RunOptions {
                timeseries: plan.timeseries,
                ..RunOptions::new(
                    seed,
                    SimTime::from_secs(plan.duration_s),
                    SimTime::from_secs(plan.warmup_s),
                )
            };
            let world = m
                .build(&opts)
                .unwrap_or_else(|e| panic!("build failed (seed {seed}): {e:?}"));
            world
                .run()
                .unwrap_or_else(|e| panic!("run failed (seed {seed}): {e}"))
        })
        .collect()
}

/// Builds and runs `m` once; `World::run` fails unless every request ended exactly once.
pub fn run(m: &ModelConfig, o: &RunOptions) -> RunReport {
    m.build(o)
        .unwrap_or_else(|e| panic!("model does not build: {e:?}"))
        .run()
        .unwrap_or_else(|e| panic!("run failed (seed {}): {e}", o.seed))
}

/// A metric of runs.csv that must be present.
pub fn metric(r: &RunReport, name: &str) -> f64 {
    r.metric(name)
        .unwrap_or_else(|| panic!("runs.csv column {name} is empty"))
}

/// The components.csv row of `name`.
pub fn component<'a>(r: &'a RunReport, name: &str) -> &'a ComponentRow {
    r.components
        .iter()
        .find(|c| c.component == name)
        .unwrap_or_else(|| panic!("no component row for {name}"))
}

/// The mean over replications and its standard error.
#[derive(Clone, Copy, Debug)]
pub struct Estimate {
    /// Mean of the replication values.
    pub mean: f64,
    /// Sample standard deviation / sqrt(replications).
    pub se: f64,
}

impl Estimate {
    /// Estimates from one value per replication.
    pub fn of(xs: &[f64]) -> Estimate {
        assert!(xs.len() >= 2, "need at least two replications");
        let n = xs.len() as f64;
        let mean = xs.iter().sum::<f64>() / n;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
        Estimate {
            mean,
            se: (var / n).sqrt(),
        }
    }

    /// Estimates `f` over the reports.
    pub fn over(reports: &[RunReport], f: impl Fn(&RunReport) -> f64) -> Estimate {
        Estimate::of(&reports.iter().map(f).collect::<Vec<_>>())
    }
}

/// Erlang C: the probability that an arrival waits in M/M/c with offered load `a` = λ/μ
/// Erlangs (1 at and past saturation), through the stable Erlang B recursion
/// B_k = a·B_{k−1} / (k + a·B_{k−1}).
pub fn erlang_c(c: u32, a: f64) -> f64 {
    let rho = a / f64::from(c);
    if rho >= 1.0 {
        return 1.0;
    }
    let mut b = 1.0;
    for k in 1..=c {
        b = a * b / (f64::from(k) + a * b);
    }
    b / (1.0 - rho * (1.0 - b))
}

/// Sample mean and the standard error of the mean (sample sd / sqrt(n)).
pub fn mean_se(xs: &[f64]) -> (f64, f64) {
    let e = Estimate::of(xs);
    (e.mean, e.se)
}

/// Asserts that the replication means `xs` agree with `theory` within [`SIGMAS`] standard
/// errors, and that this tolerance is below `max_rel` of the theoretical value.
pub fn assert_agrees(what: &str, xs: &[f64], theory: f64, max_rel: f64) {
    assert_theory(what, Estimate::of(xs), theory, 0.0, max_rel);
}

/// Asserts that `est` agrees with `theory` within `SIGMAS` standard errors plus `bias`
/// (a known deterministic allowance, relative to `theory`, such as histogram resolution),
/// and that the check has power: its band must be narrower than `max_rel` of `theory`,
/// or a broken simulator with noisy output would pass.
pub fn assert_theory(what: &str, est: Estimate, theory: f64, bias: f64, max_rel: f64) {
    let band = SIGMAS * est.se + bias * theory.abs();
    println!(
        "{what}: measured {:.6} ± {:.6} (se), theory {:.6}, rel. error {:+.3}%, band ±{:.3}%",
        est.mean,
        est.se,
        theory,
        100.0 * (est.mean - theory) / theory,
        100.0 * band / theory.abs()
    );
    assert!(
        band <= max_rel * theory.abs(),
        "{what}: the tolerance band ±{band:.6} is wider than {:.1}% of {theory:.6}; \
         the check would have no power (se {:.6})",
        100.0 * max_rel,
        est.se
    );
    assert!(
        (est.mean - theory).abs() <= band,
        "{what}: measured {:.6} (se {:.6}) but theory says {theory:.6}: off by {:.2} se",
        est.mean,
        est.se,
        (est.mean - theory) / est.se
    );
}

/// The files of an output folder that must come out byte-identical (manifest.json alone
/// may carry wall-clock figures).
pub const RESULT_FILES: &[&str] = &[
    "runs.csv",
    "points.csv",
    "latency.csv",
    "timeseries.csv",
    "components.csv",
    "trace.json",
];

/// The bytes of each of [`RESULT_FILES`] in `dir`, by name (empty for a missing file).
pub fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    RESULT_FILES
        .iter()
        .map(|f| {
            (
                f.to_string(),
                std::fs::read(dir.join(f)).unwrap_or_default(),
            )
        })
        .collect()
}

/// Writes `text` to `dir/name` and runs it into `dir/full` with `extra` arguments: the
/// file, the folder and the [`snapshot`] of its results (what a damaged folder must come
/// back to).
pub fn reference_run(
    dir: &Path,
    name: &str,
    text: &str,
    extra: &[&str],
) -> (PathBuf, PathBuf, Vec<(String, Vec<u8>)>) {
    let file = write(dir, name, text);
    let full = dir.join("full");
    run_ok(&file, &full, extra);
    let want = snapshot(&full);
    (file, full, want)
}

/// The `dssim` binary under test.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_dssim")
}

/// A fresh, empty folder under the system temp dir, unique to this process and call.
pub fn tmp_dir(tag: &str) -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::SeqCst);
    let d = std::env::temp_dir().join(format!("dssim-it-{}-{tag}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("create temp dir");
    d
}

/// Writes `text` to `dir/name` and returns the path.
pub fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).expect("write test file");
    p
}

/// Runs `dssim ARGS` (in the current folder) and returns its output.
pub fn dssim(args: &[&str]) -> Output {
    Command::new(bin())
        .args(args)
        .output()
        .expect("start the dssim binary")
}

/// Asserts a bad-input failure: exit code 2, no panic, and stderr containing every needle
/// (`what` names the case in the messages); returns stderr.
pub fn assert_input_error(what: &str, o: &Output, needles: &[&str]) -> String {
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert_eq!(
        o.status.code(),
        Some(2),
        "{what}: exit code 2 expected; stderr:\n{err}"
    );
    assert!(
        !err.contains("panicked"),
        "{what}: a panic on bad input:\n{err}"
    );
    for n in needles {
        assert!(err.contains(n), "{what}: stderr lacks {n:?}:\n{err}");
    }
    err
}

/// `dssim check` on `text` written to `dir/name`: a bad-input failure naming every needle.
pub fn assert_check_rejects(dir: &Path, name: &str, text: &str, needles: &[&str]) {
    let f = write(dir, name, text);
    let o = dssim(&["check", f.to_str().expect("utf-8")]);
    assert_input_error(name, &o, needles);
}

/// Runs `dssim ARGS` in folder `cwd` and returns its output.
pub fn dssim_in(cwd: &Path, args: &[&str]) -> Output {
    Command::new(bin())
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("start the dssim binary")
}

/// Runs `dssim ARGS` in folder `cwd`, asserts that it succeeds and returns its stdout.
pub fn dssim_ok(cwd: &Path, args: &[&str]) -> String {
    let out = dssim_in(cwd, args);
    assert!(
        out.status.success(),
        "dssim {args:?} failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs `dssim run FILE --out OUT EXTRA...`, panics with its stderr unless it exits 0, and
/// returns its stdout.
pub fn run_ok(file: &Path, out: &Path, extra: &[&str]) -> String {
    let mut args = vec![
        "run",
        file.to_str().expect("utf-8 path"),
        "--out",
        out.to_str().expect("utf-8 path"),
    ];
    args.extend_from_slice(extra);
    let o = dssim(&args);
    assert!(
        o.status.success(),
        "dssim {args:?} failed ({:?}):\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Runs `dssim ARGS` like [`dssim`], but kills it and fails the test if it has not exited
/// within `secs` seconds (a hang on bad input is a bug too).
pub fn dssim_within(args: &[&str], secs: u64) -> Output {
    use std::process::Stdio;
    use std::time::{Duration, Instant};
    let mut child = Command::new(bin())
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the dssim binary");
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if child.try_wait().expect("wait for dssim").is_some() {
            return child.wait_with_output().expect("collect dssim output");
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("dssim {args:?} did not finish within {secs} s");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}
/// One CSV row, by column name.
pub type Row = BTreeMap<String, String>;

/// Reads a CSV file into rows keyed by header.
pub fn read_csv(path: &Path) -> Vec<Row> {
    let mut rdr = csv::Reader::from_path(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let headers: Vec<String> = rdr
        .headers()
        .expect("csv header")
        .iter()
        .map(String::from)
        .collect();
    rdr.records()
        .map(|r| {
            let r = r.expect("csv record");
            headers
                .iter()
                .cloned()
                .zip(r.iter().map(String::from))
                .collect()
        })
        .collect()
}

/// The value of column `col` in `row` as a number.
pub fn num(row: &Row, col: &str) -> f64 {
    let v = row
        .get(col)
        .unwrap_or_else(|| panic!("no column {col:?} in {row:?}"));
    v.parse()
        .unwrap_or_else(|_| panic!("column {col:?} is not a number: {v:?}"))
}

/// Reads a CSV file into its header and records (see [`read_csv`] for rows by name).
pub fn read_table(path: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let mut r = csv::Reader::from_path(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    let header = r
        .headers()
        .expect("csv header")
        .iter()
        .map(str::to_string)
        .collect();
    let rows = r
        .records()
        .map(|rec| {
            rec.unwrap_or_else(|e| panic!("{}: bad record: {e}", path.display()))
                .iter()
                .map(str::to_string)
                .collect()
        })
        .collect();
    (header, rows)
}

/// The index of column `name` in `header`.
pub fn col(header: &[String], name: &str) -> usize {
    header
        .iter()
        .position(|h| h == name)
        .unwrap_or_else(|| panic!("no column {name} in {header:?}"))
}

//! Shared helpers: models from TOML text, replicated runs, estimates with standard errors,
//! and a way to run the `dssim` binary in a scratch folder.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use dssim_components::{ComponentRow, ModelConfig, RunOptions, RunReport};
use dssim_engine::SimTime;
use rayon::prelude::*;

/// How many standard errors an estimate may stray from theory.
///
/// Every statistical check averages `R` independent replications (distinct fixed seeds), so
/// `(mean - theory) / se` follows Student's t with `R - 1` degrees of freedom when the
/// simulator is right. With `R = 20`, `P(|t_19| > 4) = 0.0008`: a correct simulator fails a
/// given check about once in a thousand seed choices, and a bias of 5 standard errors or
/// more is caught most of the time. The seeds are fixed, so a result never flickers.
pub const K_SE: f64 = 4.0;

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

/// Runs `plan.replications` replications of `m` with consecutive seeds (in parallel; the
/// reports come back in replication order).
pub fn replicate(m: &ModelConfig, plan: Plan) -> Vec<RunReport> {
    (plan.first_seed..plan.first_seed + plan.replications)
        .into_par_iter()
        .map(|seed| {
            let opts = RunOptions {
                seed,
                duration: SimTime::from_secs(plan.duration_s),
                warmup: SimTime::from_secs(plan.warmup_s),
                timeseries: plan.timeseries,
                trace: 0,
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

/// Asserts that `est` agrees with `theory` within `K_SE` standard errors plus `bias`
/// (a known deterministic allowance, relative to `theory`, such as histogram resolution),
/// and that the check has power: its band must be narrower than `max_rel` of `theory`,
/// or a broken simulator with noisy output would pass.
pub fn assert_theory(what: &str, est: Estimate, theory: f64, bias: f64, max_rel: f64) {
    let band = K_SE * est.se + bias * theory.abs();
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

/// A fresh, empty scratch folder for one test.
pub fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create scratch folder");
    dir
}

/// Runs the `dssim` binary with `args` in folder `cwd`.
pub fn dssim(cwd: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dssim"))
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("start the dssim binary")
}

/// Asserts a successful run and returns its stdout.
pub fn dssim_ok(cwd: &Path, args: &[&str]) -> String {
    let out = dssim(cwd, args);
    assert!(
        out.status.success(),
        "dssim {args:?} failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Reads a CSV file into its header and records.
pub fn read_csv(path: &Path) -> (Vec<String>, Vec<Vec<String>>) {
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

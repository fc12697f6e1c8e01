//! Helpers shared by the test modules: temporary folders, running the binary, reading
//! CSV files, and the statistics the theory checks need.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

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

/// Runs `dssim ARGS` and returns its output.
pub fn dssim(args: &[&str]) -> Output {
    Command::new(bin())
        .args(args)
        .output()
        .expect("start the dssim binary")
}

/// Runs `dssim run FILE --out OUT EXTRA...` and panics with its stderr unless it exits 0.
pub fn run_ok(file: &Path, out: &Path, extra: &[&str]) {
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

/// Sample mean and the standard error of the mean (sample sd / sqrt(n)).
pub fn mean_se(xs: &[f64]) -> (f64, f64) {
    assert!(xs.len() >= 2, "need at least two replications");
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, (var / n).sqrt())
}

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

/// Asserts that the replication means `xs` agree with `theory` within [`SIGMAS`] standard
/// errors, and that this tolerance is below `max_rel` of the theoretical value.
pub fn assert_agrees(what: &str, xs: &[f64], theory: f64, max_rel: f64) {
    let (mean, se) = mean_se(xs);
    let tol = SIGMAS * se;
    eprintln!(
        "{what}: simulated {mean:.6} ± {tol:.6} (4 se, {} reps), theory {theory:.6}, rel error {:+.3}%",
        xs.len(),
        100.0 * (mean - theory) / theory
    );
    assert!(
        tol < max_rel * theory.abs(),
        "{what}: tolerance {tol} is not below {max_rel} x theory {theory}: the check would be too loose to mean anything"
    );
    assert!(
        (mean - theory).abs() <= tol,
        "{what}: simulated mean {mean} differs from theory {theory} by more than {SIGMAS} standard errors ({tol}); per-replication values: {xs:?}"
    );
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

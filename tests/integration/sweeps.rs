//! Research-scale sweeps (issue 6): shards merged byte for byte, resume after `kill -9` and
//! after Ctrl-C, and the capacity search checked against Erlang C on M/M/c.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::{dssim, erlang_c, tmp_dir};

const CSVS: &[&str] = &[
    "runs.csv",
    "points.csv",
    "latency.csv",
    "timeseries.csv",
    "components.csv",
];

fn ok(args: &[&str]) -> String {
    let o = dssim(args);
    assert!(
        o.status.success(),
        "dssim {args:?} failed: {}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

fn assert_same_csvs(a: &Path, b: &Path) {
    for f in CSVS {
        let (x, y) = (fs::read(a.join(f)), fs::read(b.join(f)));
        let (x, y) = (x.expect("file in a"), y.expect("file in b"));
        assert!(
            x == y,
            "{f} differs between {} and {}",
            a.display(),
            b.display()
        );
    }
}

fn repo_file(rel: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join(rel)
        .to_string_lossy()
        .into_owned()
}

#[test]
fn merged_shards_are_byte_identical_to_an_unsharded_run() {
    let d = tmp_dir("merge");
    let exp = repo_file("experiments/mm1-sweep.toml");
    let full = d.join("full");
    ok(&[
        "run",
        &exp,
        "--out",
        s(&full),
        "--jobs",
        "2",
        "--set",
        "output.trace=2",
    ]);
    let shards: Vec<PathBuf> = (0..3).map(|k| d.join(format!("shard-{k}"))).collect();
    for (k, dir) in shards.iter().enumerate() {
        ok(&[
            "run",
            &exp,
            "--shard",
            &format!("{k}/3"),
            "--out",
            s(dir),
            "--jobs",
            "1",
            "--set",
            "output.trace=2",
        ]);
    }
    let merged = d.join("merged");
    // Any order of the shard folders.
    ok(&[
        "merge",
        s(&shards[2]),
        s(&shards[0]),
        s(&shards[1]),
        "--out",
        s(&merged),
    ]);
    assert_same_csvs(&full, &merged);
    let trace = |d: &Path| fs::read(d.join("trace.json")).expect("trace.json");
    assert!(
        trace(&full) == trace(&merged),
        "trace.json differs after merge"
    );

    // Bad input: exit 2 with a clear message.
    let bad = d.join("bad");
    let refuse = |args: &[&str], needle: &str| {
        let o = dssim(args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err:?} lacks {needle:?}");
    };
    // Shards 0 and 2 of the split with `middle` in place of shard 1.
    let refuse_middle = |middle: &Path, needle: &str| {
        let args = [
            "merge",
            s(&shards[0]),
            s(middle),
            s(&shards[2]),
            "--out",
            s(&bad),
        ];
        refuse(&args, needle)
    };
    refuse(
        &["merge", s(&shards[0]), s(&shards[1]), "--out", s(&bad)],
        "shard(s) 2/3 missing",
    );
    refuse(
        &[
            "merge",
            s(&shards[0]),
            s(&shards[0]),
            s(&shards[1]),
            "--out",
            s(&bad),
        ],
        "given twice",
    );
    refuse(&["merge", s(&full), "--out", s(&bad)], "not a shard");
    let other = d.join("other-seed");
    ok(&[
        "run",
        &exp,
        "--shard",
        "1/3",
        "--seed",
        "9",
        "--out",
        s(&other),
    ]);
    refuse_middle(&other, "different experiment");
    let split4 = d.join("split4");
    ok(&[
        "run",
        &exp,
        "--shard",
        "1/4",
        "--out",
        s(&split4),
        "--set",
        "output.trace=2",
    ]);
    refuse_middle(&split4, "shards of one split");
    // An incomplete shard (a run missing from its runs.csv).
    let cut = d.join("cut");
    ok(&[
        "run",
        &exp,
        "--shard",
        "1/3",
        "--out",
        s(&cut),
        "--set",
        "output.trace=2",
    ]);
    let runs = fs::read_to_string(cut.join("runs.csv")).expect("runs.csv");
    let kept: Vec<&str> = runs.lines().take(runs.lines().count() - 1).collect();
    fs::write(cut.join("runs.csv"), kept.join("\n") + "\n").expect("write");
    refuse_middle(&cut, "incomplete");
    refuse(
        &["merge", s(&d.join("nowhere")), "--out", s(&bad)],
        "no manifest.json",
    );
    let _ = fs::remove_dir_all(&d);
}

/// An experiment of many small runs, slow enough to be interrupted part-way.
fn long_sweep(dir: &Path) -> PathBuf {
    // ~125k events per run in release, ~6k in debug builds (slower by about as much).
    let duration = if cfg!(debug_assertions) {
        "60s"
    } else {
        "1200s"
    };
    let rates: Vec<String> = (0..40).map(|i| (40 + i).to_string()).collect();
    let text = format!(
        r#"name = "long-sweep"
duration = "{duration}"
warmup = "5s"
seed = 3
replications = 3

[model]
[[model.clients]]
name = "users"
target = "server"
arrival = "poisson"
rate = 50

[[model.services]]
name = "server"
instances = 1
workers = 1
service_time = "exp(10ms)"

[sweep]
"clients.users.rate" = [{}]

[output]
timeseries = "30s"
"#,
        rates.join(", ")
    );
    let p = dir.join("long.toml");
    fs::write(&p, text).expect("write experiment");
    p
}

fn data_rows(dir: &Path) -> usize {
    fs::read_to_string(dir.join("runs.csv"))
        .map(|t| t.matches('\n').count().saturating_sub(1))
        .unwrap_or(0)
}

/// Starts a sweep with `--jobs 1` and waits until runs.csv holds a few runs.
fn start_and_wait(exp: &Path, out: &Path) -> std::process::Child {
    let mut child = Command::new(env!("CARGO_BIN_EXE_dssim"))
        .args(["run", s(exp), "--out", s(out), "--jobs", "1"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn dssim");
    let t0 = Instant::now();
    while data_rows(out) < 5 {
        assert!(
            child.try_wait().expect("try_wait").is_none(),
            "the sweep ended before it could be interrupted"
        );
        assert!(
            t0.elapsed() < Duration::from_secs(60),
            "no runs recorded after 60 s"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    assert!(
        child.try_wait().expect("try_wait").is_none(),
        "the sweep ended before it could be interrupted"
    );
    child
}

#[test]
fn resume_after_kill_9_is_byte_identical() {
    let d = tmp_dir("kill9");
    let exp = long_sweep(&d);
    let full = d.join("full");
    ok(&["run", s(&exp), "--out", s(&full), "--jobs", "2"]);
    let total = data_rows(&full);
    assert_eq!(total, 120);

    let out = d.join("killed");
    let mut child = start_and_wait(&exp, &out);
    child.kill().expect("SIGKILL"); // kill -9
    child.wait().expect("wait");
    let recorded = data_rows(&out);
    assert!(recorded < total, "killed after every run was written");

    let stdout = ok(&["run", s(&exp), "--out", s(&out), "--resume", "--jobs", "2"]);
    assert!(stdout.contains("already recorded"), "{stdout}");
    assert_same_csvs(&full, &out);
    // Resuming a finished sweep runs nothing and changes nothing.
    let stdout = ok(&["run", s(&exp), "--out", s(&out), "--resume"]);
    assert!(stdout.contains(": 0 runs written"), "{stdout}");
    assert_same_csvs(&full, &out);
    let _ = fs::remove_dir_all(&d);
}

#[test]
fn ctrl_c_stops_gracefully_and_resume_finishes() {
    let d = tmp_dir("sigint");
    let exp = long_sweep(&d);
    let full = d.join("full");
    ok(&["run", s(&exp), "--out", s(&full), "--jobs", "2"]);

    let out = d.join("interrupted");
    let child = start_and_wait(&exp, &out);
    // The shell's builtin kill: no libc in the tests, and no procps needed.
    let status = Command::new("sh")
        .args(["-c", &format!("kill -INT {}", child.id())])
        .status()
        .expect("kill -INT");
    assert!(status.success());
    let o = child.wait_with_output().expect("wait");
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(130), "stderr: {err}");
    assert!(err.contains("--resume"), "{err}");
    // Flushed: every file ends with a whole line, runs are a prefix of the plan, points.csv
    // matches the runs recorded, the manifest says incomplete.
    let recorded = data_rows(&out);
    assert!((5..120).contains(&recorded), "{recorded} runs recorded");
    for f in CSVS {
        let t = fs::read_to_string(out.join(f)).expect("csv");
        assert!(t.ends_with('\n'), "{f} ends mid-line");
    }
    let runs = fs::read_to_string(out.join("runs.csv")).expect("runs.csv");
    let full_runs = fs::read_to_string(full.join("runs.csv")).expect("runs.csv");
    assert!(full_runs.starts_with(&runs), "the recorded runs differ");
    let manifest = fs::read_to_string(out.join("manifest.json")).expect("manifest");
    assert!(manifest.contains("\"complete\": false"), "{manifest}");

    ok(&["run", s(&exp), "--out", s(&out), "--resume", "--jobs", "2"]);
    assert_same_csvs(&full, &out);
    let manifest = fs::read_to_string(out.join("manifest.json")).expect("manifest");
    assert!(manifest.contains("\"complete\": true"));
    let _ = fs::remove_dir_all(&d);
}

/// Byte ranges of each run's rows in a per-run CSV: run -> (start, end).
fn run_spans(text: &str) -> Vec<(usize, usize, usize)> {
    let mut spans: Vec<(usize, usize, usize)> = Vec::new();
    let mut pos = 0;
    for (i, l) in text.split_inclusive('\n').enumerate() {
        if i > 0 {
            let run: usize = l
                .split(',')
                .next()
                .and_then(|x| x.parse().ok())
                .expect("run id");
            match spans.last_mut() {
                Some(last) if last.0 == run => last.2 = pos + l.len(),
                _ => spans.push((run, pos, pos + l.len())),
            }
        }
        pos += l.len();
    }
    spans
}

/// Every way a kill -9 can leave the files, simulated exactly: run `k` was being written
/// (latency, timeseries, components, then runs.csv, each flushed) and the process died
/// part-way through file `f`, `cut` bytes into that run's rows.
#[test]
fn resume_repairs_files_cut_anywhere() {
    let d = tmp_dir("cut");
    let exp = repo_file("experiments/mm1-sweep.toml");
    let full = d.join("full");
    ok(&["run", &exp, "--out", s(&full)]);
    let order = [
        "latency.csv",
        "timeseries.csv",
        "components.csv",
        "runs.csv",
    ];
    let texts: Vec<String> = order
        .iter()
        .map(|f| fs::read_to_string(full.join(f)).expect("csv"))
        .collect();
    let spans: Vec<_> = texts.iter().map(|t| run_spans(t)).collect();
    let mut cases = 0;
    for k in [0usize, 5, 11] {
        for (fi, _) in order.iter().enumerate() {
            let (_, start, end) = spans[fi][k];
            for cut in [0, 1, (end - start) / 2, end - start - 1] {
                let out = d.join(format!("case-{k}-{fi}-{cut}"));
                fs::create_dir_all(&out).expect("dir");
                fs::copy(full.join("manifest.json"), out.join("manifest.json")).expect("copy");
                for (fj, name) in order.iter().enumerate() {
                    let (_, s_j, e_j) = spans[fj][k];
                    // Files before f hold run k whole, f holds `cut` bytes of it, later
                    // files end before it.
                    let upto = match fj.cmp(&fi) {
                        std::cmp::Ordering::Less => e_j,
                        std::cmp::Ordering::Equal => s_j + cut,
                        std::cmp::Ordering::Greater => s_j,
                    };
                    fs::write(out.join(name), &texts[fj][..upto]).expect("write");
                }
                let _ = fs::remove_file(out.join("points.csv"));
                ok(&["run", &exp, "--out", s(&out), "--resume"]);
                assert_same_csvs(&full, &out);
                let _ = fs::remove_dir_all(&out);
                cases += 1;
            }
        }
    }
    assert_eq!(cases, 48);
    let _ = fs::remove_dir_all(&d);
}

/// Mean time in system (ms) of M/M/c: Wq + 1/μ with Wq = C(c, a) / (cμ − λ).
fn mmc_sojourn_ms(c: u32, lambda: f64, mu: f64) -> f64 {
    let cap = f64::from(c) * mu;
    if lambda >= cap {
        return f64::INFINITY;
    }
    1e3 * (erlang_c(c, lambda / mu) / (cap - lambda) + 1.0 / mu)
}

fn mmc_experiment(dir: &Path, workers: u32, rate: f64, duration: &str) -> PathBuf {
    let text = format!(
        r#"name = "mmc"
duration = "{duration}"
warmup = "20s"
seed = 7

[model]
[[model.clients]]
name = "users"
target = "server"
arrival = "poisson"
rate = {rate:?}

[[model.services]]
name = "server"
instances = 1
workers = {workers}
service_time = "exp(10ms)"
"#
    );
    let p = dir.join("mmc.toml");
    fs::write(&p, text).expect("write");
    p
}

/// The probes of capacity.csv: (value, pass, mean, ci95) of the first SLO.
fn probes(dir: &Path) -> Vec<(f64, bool, f64, f64)> {
    let t = fs::read_to_string(dir.join("capacity.csv")).expect("capacity.csv");
    t.lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (
                f[2].parse().expect("value"),
                f[4] == "true",
                f[5].parse().expect("mean"),
                f[6].parse().expect("ci95"),
            )
        })
        .collect()
}

fn ci_of(stdout: &str) -> (f64, f64) {
    let line = stdout
        .lines()
        .find(|l| l.contains("95% CI"))
        .unwrap_or_else(|| panic!("no CI in {stdout}"));
    let inner = line
        .split('[')
        .nth(1)
        .and_then(|x| x.split(']').next())
        .expect("[l, u]");
    let (l, u) = inner.split_once(',').expect("l, u");
    (l.trim().parse().expect("l"), u.trim().parse().expect("u"))
}

/// M/M/2, μ = 100/s, SLO mean time in system < 30 ms. Erlang C gives the exact capacity
/// λ* (≈ 163.3/s, ρ ≈ 0.82); the search must land within what the simulation's noise allows.
#[test]
fn capacity_matches_erlang_c_on_mm2() {
    let d = tmp_dir("capacity");
    let (c, mu, limit) = (2, 100.0, 30.0);
    // Exact capacity by bisection on λ in (0, cμ): W(λ) is increasing.
    let (mut lo, mut hi) = (1e-9, f64::from(c) * mu - 1e-9);
    for _ in 0..200 {
        let m = 0.5 * (lo + hi);
        if mmc_sojourn_ms(c, m, mu) < limit {
            lo = m;
        } else {
            hi = m;
        }
    }
    let exact = lo;
    assert!((exact - 163.299).abs() < 0.01, "{exact}");
    let duration = if cfg!(debug_assertions) {
        "80s"
    } else {
        "200s"
    };
    let exp = mmc_experiment(&d, c, 100.0, duration);
    let out = d.join("out");
    // The search, into `out`, with `extra` arguments.
    let search = |out: &Path, extra: &[&str]| {
        let args = [
            "capacity",
            s(&exp),
            "--slo",
            "latency_mean_ms<30",
            "--vary",
            "clients.users.rate",
            "--replications",
            "5",
            "--out",
            s(out),
        ];
        ok(&[&args[..], extra].concat())
    };
    let stdout = search(&out, &[]);
    let ps = probes(&out);
    // The final bracket: the highest passing probe and the lowest failing one above it.
    let a = ps
        .iter()
        .filter(|p| p.1)
        .map(|p| p.0)
        .fold(f64::MIN, f64::max);
    let b = ps
        .iter()
        .filter(|p| !p.1 && p.0 > a)
        .map(|p| p.0)
        .fold(f64::MAX, f64::min);
    assert!(
        b / a - 1.0 <= 0.01 + 1e-12,
        "bracket [{a}, {b}] wider than 1%"
    );
    assert!(
        stdout.contains(&format!("capacity: clients.users.rate = {a} ")),
        "{stdout}"
    );
    assert!(
        stdout.contains("broke first: latency_mean_ms<30"),
        "{stdout}"
    );
    // Tolerance from the variance: the 95% half-width h of the mean at the bracket, mapped to
    // the rate axis through the exact slope dW/dλ at λ*, plus the bracket's own width.
    let h = ps
        .iter()
        .filter(|p| p.0 == a || p.0 == b)
        .map(|p| p.3)
        .fold(0.0, f64::max);
    let slope = (mmc_sojourn_ms(c, exact * 1.001, mu) - mmc_sojourn_ms(c, exact * 0.999, mu))
        / (exact * 0.002);
    let tol = h / slope + (b - a);
    assert!(
        (a - exact).abs() <= tol,
        "capacity {a} vs Erlang C {exact}: off by more than {tol} (h = {h} ms, slope {slope} ms per req/s)"
    );
    // About 3% of λ* with 200 s runs (release), 5% with the 80 s of debug builds.
    assert!(
        tol < 0.08 * exact,
        "tolerance {tol} too loose to mean anything"
    );
    // The reported interval holds the exact value.
    let (l, u) = ci_of(&stdout);
    assert!(l <= exact && exact <= u, "95% CI [{l}, {u}] misses {exact}");
    // Deterministic: the same search gives the same file, whatever --jobs.
    let out1 = d.join("out1");
    let _ = search(&out1, &["--jobs", "1"]);
    assert_eq!(
        fs::read(out.join("capacity.csv")).expect("csv"),
        fs::read(out1.join("capacity.csv")).expect("csv")
    );
    let _ = fs::remove_dir_all(&d);
}

/// An integer path searched downwards: the fewest workers that keep the mean time in system
/// under 11.5 ms at 350 req/s with 10 ms service (offered load 3.5). Erlang C says 6.
#[test]
fn capacity_finds_the_fewest_workers() {
    let d = tmp_dir("capacity-min");
    let (rate, mu, limit) = (350.0, 100.0, 11.5);
    let expect = (1..50)
        .find(|&c| mmc_sojourn_ms(c, rate, mu) < limit)
        .expect("some c");
    assert_eq!(expect, 6);
    // The boundary is clear-cut: 5 workers are far over the limit, 6 well under it.
    assert!(mmc_sojourn_ms(5, rate, mu) > 12.5 && mmc_sojourn_ms(6, rate, mu) < 10.75);
    let exp = mmc_experiment(&d, 1, rate, "60s");
    let out = d.join("out");
    let stdout = ok(&[
        "capacity",
        s(&exp),
        "--slo",
        "latency_mean_ms<11.5",
        "--slo",
        "error_rate<=0",
        "--vary",
        "services.server.workers",
        "--find",
        "min",
        "--lo",
        "1",
        "--replications",
        "3",
        "--out",
        s(&out),
    ]);
    assert!(
        stdout.contains(&format!("capacity: services.server.workers = {expect} ")),
        "{stdout}"
    );
    let ps = probes(&out);
    let values: Vec<f64> = ps.iter().map(|p| p.0).collect();
    assert_eq!(values, [1.0, 2.0, 4.0, 8.0, 6.0, 5.0], "{stdout}");
    let _ = fs::remove_dir_all(&d);
}

#[test]
fn capacity_rejects_bad_input_with_exit_2() {
    let d = tmp_dir("capacity-bad");
    let exp = mmc_experiment(&d, 2, 100.0, "30s");
    let e = s(&exp);
    for (args, needle) in [
        (
            vec!["--slo", "p99<200", "--vary", "clients.users.rate"],
            "unknown metric",
        ),
        (
            vec!["--slo", "p99_ms=200", "--vary", "clients.users.rate"],
            "METRIC<LIMIT",
        ),
        (
            vec!["--slo", "p99_ms<x", "--vary", "clients.users.rate"],
            "not a number",
        ),
        (
            vec!["--slo", "p99_ms<200", "--vary", "clients.user.rate"],
            "no entry named",
        ),
        (
            vec![
                "--slo",
                "p99_ms<200",
                "--vary",
                "clients.users.rate",
                "--lo",
                "0",
            ],
            "above zero",
        ),
        (
            vec![
                "--slo",
                "p99_ms<200",
                "--vary",
                "clients.users.rate",
                "--lo",
                "10",
                "--hi",
                "5",
            ],
            "--hi",
        ),
        (
            vec![
                "--slo",
                "p99_ms<200",
                "--vary",
                "clients.users.rate",
                "--tolerance",
                "2",
            ],
            "--tolerance",
        ),
        (
            vec!["--slo", "p99_ms<200", "--vary", "clients.users.name"],
            "expected a string",
        ),
    ] {
        let mut all = vec!["capacity", e];
        all.extend(args.iter().copied());
        let o = dssim(&all);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{all:?}: {err}");
        assert!(err.contains(needle), "{all:?}: {err:?} lacks {needle:?}");
    }
    let _ = fs::remove_dir_all(&d);
}

//! Determinism: outputs are a pure function of (experiment, seed), whatever `--jobs` is;
//! `dssim replay` re-runs a recorded run to the identical row; another seed changes them.

use std::path::Path;

use crate::support::{dssim, run_ok, tmp_dir, write, RESULT_FILES};

/// A sweep (2 x 2 points) with replications, network latency, timeouts, bounded queues
/// (shedding), a read/write mix and Zipf keys: every source of randomness in play.
const EXPERIMENT: &str = r#"
name = "det"
duration = "4s"
warmup = "500ms"
seed = 42
replications = 3

[sweep]
"services.app.workers" = [1, 2]
"clients.users.rate" = [300, 600]

[output]
timeseries = "500ms"
trace = 3

[model]
[[model.clients]]
name = "users"
target = "app"
arrival = "poisson"
rate = 300
timeout = "40ms"
read_ratio = 0.8
keys = 1000
popularity = "zipf(0.99)"

[[model.clients]]
name = "batch"
target = "app"
arrival = "closed"
users = 4
think = "exp(20ms)"

[[model.services]]
name = "app"
instances = 2
workers = 1
queue = 8
service_time = "hyperexp(0.9, 1ms, 10ms)"

[model.network]
latency = "uniform(0.2ms, 0.6ms)"
"#;

fn read(dir: &Path, name: &str) -> Vec<u8> {
    std::fs::read(dir.join(name)).unwrap_or_else(|e| panic!("{}/{name}: {e}", dir.display()))
}

#[test]
fn outputs_are_identical_for_any_jobs_and_replay_reproduces_a_run() {
    let dir = tmp_dir("det");
    let file = write(&dir, "det.toml", EXPERIMENT);
    let (a, b, c) = (dir.join("a"), dir.join("b"), dir.join("c"));
    run_ok(&file, &a, &["--jobs", "1"]);
    run_ok(&file, &b, &["--jobs", "2"]);
    for f in RESULT_FILES {
        let (x, y) = (read(&a, f), read(&b, f));
        assert!(x.len() > 100, "{f} is suspiciously small");
        assert!(x == y, "{f} differs between --jobs 1 and --jobs 2");
    }
    let runs = String::from_utf8(read(&a, "runs.csv")).expect("utf-8");
    assert_eq!(
        runs.lines().count(),
        1 + 12,
        "header + 4 points x 3 replications"
    );
    assert!(a.join("manifest.json").exists());
    // The sweep did something: timeouts (column 10) and shedding (column 11) both occur.
    for (col, what) in [(10, "timeouts"), (11, "shed")] {
        assert!(
            runs.lines()
                .skip(1)
                .any(|l| l.split(',').nth(col).is_some_and(|s| s != "0")),
            "expected {what} somewhere in:\n{runs}"
        );
    }

    // replay re-runs a recorded run to the identical row.
    let o = dssim(&["replay", a.to_str().expect("utf-8"), "--run", "7"]);
    assert!(
        o.status.success(),
        "replay failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(String::from_utf8_lossy(&o.stdout).contains("identical"));

    // ... and notices a row that does not match (so the check above can fail).
    let tampered = dir.join("tampered");
    std::fs::create_dir_all(&tampered).expect("mkdir");
    for f in std::fs::read_dir(&a).expect("read_dir") {
        let f = f.expect("entry").path();
        std::fs::copy(&f, tampered.join(f.file_name().expect("name"))).expect("copy");
    }
    let edited: String = runs
        .lines()
        .map(|l| {
            if l.starts_with("7,") {
                // The `requests` column of run 7, changed by one.
                let mut cols: Vec<String> = l.split(',').map(String::from).collect();
                let i = 7; // run, point, replication, seed, 2 swept, duration_s, requests
                let v: u64 = cols[i].parse().expect("requests is a number");
                cols[i] = (v + 1).to_string();
                cols.join(",")
            } else {
                l.to_string()
            }
        })
        .map(|l| l + "\n")
        .collect();
    assert_ne!(edited, runs);
    std::fs::write(tampered.join("runs.csv"), edited).expect("write");
    let o = dssim(&["replay", tampered.to_str().expect("utf-8"), "--run", "7"]);
    assert_eq!(
        o.status.code(),
        Some(1),
        "replay must fail on a changed row"
    );
    assert!(!String::from_utf8_lossy(&o.stderr).contains("panicked"));

    // Another seed gives other numbers (same shape).
    run_ok(&file, &c, &["--jobs", "2", "--seed", "43"]);
    for f in ["runs.csv", "latency.csv", "timeseries.csv"] {
        let (x, y) = (read(&a, f), read(&c, f));
        assert!(x != y, "{f} is the same under another seed");
        assert_eq!(
            String::from_utf8_lossy(&x).lines().count(),
            String::from_utf8_lossy(&y).lines().count(),
            "{f}: same number of rows under another seed"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// A run's results do not depend on which other runs share the sweep: the same
/// (point, replication) run alone, through `--set`, gives the same metrics row.
#[test]
fn a_run_is_the_same_alone_or_in_a_sweep() {
    let dir = tmp_dir("alone");
    let file = write(&dir, "det.toml", EXPERIMENT);
    let (a, b) = (dir.join("a"), dir.join("b"));
    run_ok(&file, &a, &["--jobs", "2"]);
    // Point 3 = workers 2, rate 600; replication 1 is run 10. Run it alone: one point,
    // replications 2, so its replication 1 has the same seed.
    let one = EXPERIMENT
        .replace("replications = 3", "replications = 2")
        .replace(
            "\"services.app.workers\" = [1, 2]",
            "\"services.app.workers\" = [2]",
        )
        .replace(
            "\"clients.users.rate\" = [300, 600]",
            "\"clients.users.rate\" = [600]",
        );
    let file1 = write(&dir, "one.toml", &one);
    run_ok(&file1, &b, &["--jobs", "1"]);
    let metrics = |text: &str, run: &str| -> String {
        let line = text
            .lines()
            .find(|l| l.split(',').next() == Some(run))
            .unwrap_or_else(|| panic!("no run {run} in\n{text}"));
        // Drop run and point ids; keep replication, seed, swept values and metrics.
        line.splitn(3, ',').nth(2).expect("columns").to_string()
    };
    let ra = String::from_utf8(read(&a, "runs.csv")).expect("utf-8");
    let rb = String::from_utf8(read(&b, "runs.csv")).expect("utf-8");
    assert_eq!(metrics(&ra, "10"), metrics(&rb, "1"));
    let _ = std::fs::remove_dir_all(&dir);
}

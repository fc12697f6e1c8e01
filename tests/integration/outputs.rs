//! Nothing is lost on the way to CSV: one runs.csv row per run, every request ends exactly
//! once (requests = ok + errors + timeouts + shed + dropped), ratios in [0, 1], percentiles
//! in order, columns that do not apply empty, and points.csv consistent with runs.csv.

use std::collections::BTreeMap;
use std::fs;

use crate::support::{col, dssim_ok, read_table, tmp_dir};

/// Two points x two replications of a model that loses requests every way it can today:
/// timeouts, shedding at a bounded queue, network loss and a partition.
const EXPERIMENT: &str = r#"
name = "outcomes"
duration = "10s"
warmup = "1s"
seed = 5
replications = 2

[model]
[[model.clients]]
name = "users"
target = "app"
rate = 500
timeout = "30ms"

[[model.services]]
name = "app"
instances = 2
workers = 1
queue = 5
service_time = "exp(2ms)"

[model.network]
latency = "0.1ms"
loss = 0.002

[[model.network.partitions]]
sides = [["users"], ["app.1"]]
from = "4s"
until = "5s"

[sweep]
"clients.users.rate" = [500, 1200]

[output]
timeseries = "1s"
"#;

/// Columns outputs.md requires in runs.csv, in order.
const REQUIRED: &[&str] = &[
    "run",
    "point",
    "replication",
    "seed",
    "clients.users.rate",
    "duration_s",
    "requests",
    "ok",
    "errors",
    "timeouts",
    "shed",
    "dropped",
    "throughput_rps",
    "latency_mean_ms",
    "p50_ms",
    "p90_ms",
    "p95_ms",
    "p99_ms",
    "p999_ms",
    "max_ms",
    "read_p99_ms",
    "write_p99_ms",
    "cache_hit_ratio",
    "repl_lag_p50_ms",
    "repl_lag_p99_ms",
    "stale_reads",
    "ryw_violations",
    "availability",
    "lost_writes",
    "instance_hours",
    "events",
];

fn num(s: &str) -> f64 {
    s.parse()
        .unwrap_or_else(|_| panic!("{s:?} is not a number"))
}

#[test]
fn every_request_ends_exactly_once_in_the_csv() {
    let dir = tmp_dir("outputs_conservation");
    fs::write(dir.join("x.toml"), EXPERIMENT).unwrap();
    dssim_ok(&dir, &["run", "x.toml", "--out", "o", "--jobs", "2"]);
    let o = dir.join("o");

    let (h, rows) = read_table(&o.join("runs.csv"));
    let positions: Vec<usize> = REQUIRED.iter().map(|c| col(&h, c)).collect();
    assert!(
        positions.windows(2).all(|w| w[0] < w[1]),
        "runs.csv columns out of order: {h:?}"
    );
    assert_eq!(rows.len(), 4, "one row per run (2 points x 2 replications)");
    let c = |name: &str| col(&h, name);
    let mut totals: BTreeMap<&str, f64> = BTreeMap::new();
    for (i, r) in rows.iter().enumerate() {
        assert_eq!(num(&r[c("run")]) as usize, i, "rows in run order");
        assert_eq!(
            num(&r[c("point")]) as usize * 2 + num(&r[c("replication")]) as usize,
            i
        );
        let requests = num(&r[c("requests")]);
        let ended: f64 = ["ok", "errors", "timeouts", "shed", "dropped"]
            .iter()
            .map(|k| num(&r[c(k)]))
            .sum();
        assert_eq!(requests, ended, "run {i}: requests != sum of outcomes");
        for k in ["timeouts", "shed", "dropped"] {
            *totals.entry(k).or_default() += num(&r[c(k)]);
        }
        let avail = num(&r[c("availability")]);
        assert_eq!(avail, num(&r[c("ok")]) / requests, "run {i}: availability");
        assert!((0.0..=1.0).contains(&avail));
        // Percentiles in order, the mean below the max.
        let ps: Vec<f64> = ["p50_ms", "p90_ms", "p95_ms", "p99_ms", "p999_ms", "max_ms"]
            .iter()
            .map(|k| num(&r[c(k)]))
            .collect();
        assert!(
            ps.windows(2).all(|w| w[0] <= w[1]),
            "run {i}: percentiles {ps:?}"
        );
        assert!(num(&r[c("latency_mean_ms")]) <= ps[5]);
        // No cache, no database: their columns do not apply and stay empty, not zero.
        for k in [
            "cache_hit_ratio",
            "repl_lag_p50_ms",
            "repl_lag_p99_ms",
            "stale_reads",
            "ryw_violations",
            "lost_writes",
        ] {
            assert_eq!(r[c(k)], "", "run {i}: {k} should be empty");
        }
        // 2 instances over the 9 s window.
        assert_eq!(num(&r[c("instance_hours")]), 2.0 * 9.0 / 3600.0);
    }
    // The conservation identity is only worth something if every outcome happened.
    for (k, v) in &totals {
        assert!(
            *v > 0.0,
            "no {k} in any run: the model exercises too little"
        );
    }

    // latency.csv: per run, quantiles rise to 1.0 and latencies never fall; q = 1 is max.
    let (lh, lrows) = read_table(&o.join("latency.csv"));
    let (lrun, lq, lms) = (
        col(&lh, "run"),
        col(&lh, "quantile"),
        col(&lh, "latency_ms"),
    );
    for (i, r) in rows.iter().enumerate() {
        let cdf: Vec<(f64, f64)> = lrows
            .iter()
            .filter(|x| num(&x[lrun]) as usize == i)
            .map(|x| (num(&x[lq]), num(&x[lms])))
            .collect();
        assert!(cdf.len() >= 100, "run {i}: only {} CDF points", cdf.len());
        assert!(cdf.windows(2).all(|w| w[0].0 < w[1].0 && w[0].1 <= w[1].1));
        assert!(cdf[0].0 > 0.0);
        assert_eq!(cdf.last().unwrap().0, 1.0);
        assert_eq!(cdf.last().unwrap().1, num(&r[c("max_ms")]));
        let p99 = cdf.iter().find(|x| x.0 == 0.99).expect("q = 0.99 listed").1;
        assert_eq!(p99, num(&r[c("p99_ms")]));
    }

    // timeseries.csv: ten 1 s rows per run, contiguous, ratios in range.
    let (th, trows) = read_table(&o.join("timeseries.csv"));
    let (trun, tt, tu) = (col(&th, "run"), col(&th, "t_s"), col(&th, "utilization"));
    for i in 0..rows.len() {
        let ts: Vec<&Vec<String>> = trows
            .iter()
            .filter(|x| num(&x[trun]) as usize == i)
            .collect();
        assert_eq!(ts.len(), 10, "run {i}: 10 s in 1 s rows");
        for (k, x) in ts.iter().enumerate() {
            assert_eq!(num(&x[tt]), k as f64);
            let u = num(&x[tu]);
            assert!((0.0..=1.0 + 1e-12).contains(&u), "utilization {u}");
            for name in ["rps", "errors", "shed", "queue_len", "in_flight"] {
                assert!(num(&x[col(&th, name)]) >= 0.0, "{name} negative");
            }
        }
    }

    // components.csv: one row per run for the one service, then one per instance
    // (`app.0`, ...), utilization in [0, 1].
    let (ch, all) = read_table(&o.join("components.csv"));
    let (crows, instances): (Vec<_>, Vec<_>) =
        all.iter().partition(|x| x[col(&ch, "kind")] != "instance");
    assert_eq!(crows.len(), rows.len());
    assert!(!instances.is_empty());
    for x in &instances {
        assert!(x[col(&ch, "component")].starts_with("app."), "{x:?}");
        let u = num(&x[col(&ch, "utilization")]);
        assert!((0.0..=1.0).contains(&u), "utilization {u}");
    }
    for x in &crows {
        assert_eq!(x[col(&ch, "component")], "app");
        assert_eq!(x[col(&ch, "kind")], "service");
        let u = num(&x[col(&ch, "utilization")]);
        assert!((0.0..=1.0).contains(&u), "utilization {u}");
        assert_eq!(x[col(&ch, "hit_ratio")], "");
    }

    // points.csv: one row per point; mean and 95% half-width over its two replications.
    let (ph, prows) = read_table(&o.join("points.csv"));
    assert_eq!(prows.len(), 2);
    for (p, x) in prows.iter().enumerate() {
        assert_eq!(num(&x[col(&ph, "runs")]), 2.0);
        assert_eq!(
            x[col(&ph, "clients.users.rate")],
            rows[2 * p][c("clients.users.rate")]
        );
        let (a, b) = (
            num(&rows[2 * p][c("p99_ms")]),
            num(&rows[2 * p + 1][c("p99_ms")]),
        );
        let mean = num(&x[col(&ph, "p99_ms")]);
        let half = num(&x[col(&ph, "p99_ms_ci95")]);
        // Two values: s = |a − b|/√2, half-width = t_{0.975, 1}·s/√2 = 12.7062·|a − b|/2;
        // t is allowed the rounding of a printed table (3 decimals, 4e-5 relative).
        assert!((mean - (a + b) / 2.0).abs() <= 1e-9 * mean);
        let want = 12.706_204_736 * (a - b).abs() / 2.0;
        assert!(
            (half - want).abs() <= 1e-4 * want.max(1e-9),
            "ci95 {half} vs {want}"
        );
    }
}

/// Two unequal instances behind round robin (the small one has one worker, the large one
/// four), with `[output] instance_timeseries`.
const INSTANCES: &str = r#"
name = "per-instance"
duration = "4s"
replications = 2
[output]
timeseries = "500ms"
instance_timeseries = true
[model]
[[model.clients]]
name = "users"
target = "lb"
rate = 600
[[model.load_balancers]]
name = "lb"
backends = "app"
algorithm = "round_robin"
[[model.services]]
name = "app"
instances = 2
workers = 4
service_time = "exp(2ms)"
[sweep]
"services.app.workers" = [1, 4]
"#;

#[test]
fn instances_csv_has_each_instance_per_interval_consistent_with_components_csv() {
    use crate::support::{num as col, read_csv, tmp_dir};
    let dssim_ok = |args: &[&str]| -> String {
        let o = crate::support::dssim(args);
        assert!(
            o.status.success(),
            "dssim {args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let dir = tmp_dir("instances");
    let exp = dir.join("i.toml");
    fs::write(&exp, INSTANCES).unwrap();
    let s = |p: &std::path::Path| p.to_str().unwrap().to_string();
    let one = dir.join("one");
    dssim_ok(&["run", &s(&exp), "--out", &s(&one), "--jobs", "1"]);
    let rows = read_csv(&one.join("instances.csv"));
    // 4 runs × 8 intervals × 2 instances, in run, interval, instance order.
    assert_eq!(rows.len(), 4 * 8 * 2);
    let header = fs::read_to_string(one.join("instances.csv")).unwrap();
    assert!(header
        .starts_with("run,t_s,component,instance,arrivals_rps,utilization,queue_len,lag_ms\n"));
    for (i, r) in rows.iter().enumerate() {
        assert_eq!(r["run"], (i / 16).to_string());
        assert_eq!(r["component"], "app");
        assert_eq!(r["instance"], format!("app.{}", i % 2));
        let u = col(r, "utilization");
        assert!((0.0..=1.0).contains(&u), "{r:?}");
        assert!(col(r, "queue_len") >= 0.0 && col(r, "arrivals_rps") > 0.0);
    }
    // Round robin sends each instance half the arrivals; the time averages over the
    // window's equal intervals are components.csv's per-instance figures.
    let comps = read_csv(&one.join("components.csv"));
    let series = read_csv(&one.join("timeseries.csv"));
    for run in 0..4 {
        let run_s = run.to_string();
        for inst in ["app.0", "app.1"] {
            let mine: Vec<&crate::support::Row> = rows
                .iter()
                .filter(|r| r["run"] == run_s && r["instance"] == inst)
                .collect();
            let c = comps
                .iter()
                .find(|c| c["run"] == run_s && c["component"] == inst)
                .expect("instance row");
            let mean = |k: &str| mine.iter().map(|r| col(r, k)).sum::<f64>() / mine.len() as f64;
            for (k, ck) in [("utilization", "utilization"), ("queue_len", "mean_queue")] {
                let (a, b) = (mean(k), col(c, ck));
                assert!(
                    (a - b).abs() <= 1e-9 * b.abs().max(1.0),
                    "run {run} {inst} {k}: {a} vs {b}"
                );
            }
        }
        // Arrivals at the instances add up to the arrivals timeseries.csv counts at the
        // service within an interval's few in-flight requests.
        let total: f64 = rows
            .iter()
            .filter(|r| r["run"] == run_s)
            .map(|r| col(r, "arrivals_rps"))
            .sum();
        let sent: f64 = series
            .iter()
            .filter(|r| r["run"] == run_s)
            .map(|r| col(r, "arrivals_rps"))
            .sum();
        assert!(
            (total - sent).abs() / sent < 0.01,
            "run {run}: {total} vs {sent}"
        );
    }
    // With one worker each (point 0) the instances are busier than with four (point 1).
    let util = |run: &str| {
        let xs: Vec<f64> = rows
            .iter()
            .filter(|r| r["run"] == run)
            .map(|r| col(r, "utilization"))
            .collect();
        xs.iter().sum::<f64>() / xs.len() as f64
    };
    assert!(
        util("0") > 2.0 * util("2"),
        "{} vs {}",
        util("0"),
        util("2")
    );

    // Byte-identical for any --jobs; resume re-runs runs whose rows are gone; merged
    // shards hold the same file.
    let want = fs::read(one.join("instances.csv")).unwrap();
    let three = dir.join("three");
    dssim_ok(&["run", &s(&exp), "--out", &s(&three), "--jobs", "3"]);
    assert!(
        fs::read(three.join("instances.csv")).unwrap() == want,
        "--jobs 3 differs"
    );
    let text = String::from_utf8(want.clone()).unwrap();
    let cut: String = text.split_inclusive('\n').take(20).collect();
    fs::write(three.join("instances.csv"), cut).unwrap();
    // The header and 19 rows: run 0 whole, run 1 cut at a line boundary (runs again).
    let said = dssim_ok(&["run", &s(&exp), "--out", &s(&three), "--resume"]);
    assert!(said.contains(" 3 runs written"), "{said}");
    assert!(
        fs::read(three.join("instances.csv")).unwrap() == want,
        "resume differs"
    );
    for k in 0..2 {
        let d = dir.join(format!("shard{k}"));
        dssim_ok(&[
            "run",
            &s(&exp),
            "--out",
            &s(&d),
            "--shard",
            &format!("{k}/2"),
        ]);
    }
    let merged = dir.join("merged");
    dssim_ok(&[
        "merge",
        &s(&dir.join("shard0")),
        &s(&dir.join("shard1")),
        "--out",
        &s(&merged),
    ]);
    assert!(
        fs::read(merged.join("instances.csv")).unwrap() == want,
        "merge differs"
    );
    let manifest = fs::read_to_string(one.join("manifest.json")).unwrap();
    assert!(
        manifest.contains("\"instance_timeseries\": true"),
        "{manifest}"
    );
    // Without the key, no instances.csv (and a stale one is removed); the key needs a
    // time series.
    let plain = dir.join("plain.toml");
    fs::write(
        &plain,
        INSTANCES.replace("instance_timeseries = true\n", ""),
    )
    .unwrap();
    dssim_ok(&[
        "run",
        &s(&plain),
        "--out",
        &s(&dir.join("p")),
        "--jobs",
        "2",
    ]);
    assert!(!dir.join("p").join("instances.csv").exists());
    let bad = dir.join("bad.toml");
    fs::write(&bad, INSTANCES.replace("timeseries = \"500ms\"\n", "")).unwrap();
    let o = crate::support::dssim(&["check", &s(&bad)]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("output.timeseries"));
}

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

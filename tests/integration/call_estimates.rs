//! The estimate of service-to-service calls against the simulation: the callee's load
//! (the caller's rate × count), the caller's time (its own, plus calls in sequence added,
//! a parallel stage's expected maximum, a timeout's cap), on the shipped scatter-gather,
//! bulkheads and circuit-breaker experiments (without their faults: the estimate is of
//! the steady state) and on models where each rule is exercised alone.

use std::path::{Path, PathBuf};

use crate::support::{
    component, dssim_ok, mean_se, model, num, read_csv, replicate, tmp_dir, users_to, Plan, Row,
    SIGMAS,
};

/// Measured `xs` against `predicted`: within SIGMAS standard errors plus `approx` of it,
/// the band no wider than `max_rel` of it.
fn agrees(what: &str, xs: &[f64], predicted: f64, approx: f64, max_rel: f64) {
    let (mean, se) = mean_se(xs);
    let band = SIGMAS * se + approx * predicted.abs();
    eprintln!(
        "{what}: measured {mean:.4} (se {se:.4}), predicted {predicted:.4}, rel. error {:+.2}%, band ±{:.2}%",
        100.0 * (mean - predicted) / predicted,
        100.0 * band / predicted.abs()
    );
    assert!(
        band <= max_rel * predicted.abs(),
        "{what}: band {band} wider than {max_rel} of {predicted}"
    );
    assert!(
        (mean - predicted).abs() <= band,
        "{what}: measured {mean} (se {se}) vs predicted {predicted}; runs {xs:?}"
    );
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs `experiments/NAME.toml` with `sets`; returns components.csv.
fn components(name: &str, sets: &[&str]) -> Vec<Row> {
    let out = tmp_dir(&format!("call-estimates-{name}"));
    let file = repo().join("experiments").join(format!("{name}.toml"));
    let (f, o) = (file.display().to_string(), out.display().to_string());
    let mut args = vec!["run", f.as_str(), "--out", o.as_str()];
    for s in sets {
        args.push("--set");
        args.push(s);
    }
    dssim_ok(Path::new(env!("CARGO_TARGET_TMPDIR")), &args);
    read_csv(&out.join("components.csv"))
}

/// For each sweep point (runs `point × per .. (point + 1) × per`), the measured `col` of
/// `component` per run and its prediction.
fn by_point(all: &[Row], component: &str, col: &str, per: usize) -> Vec<(Vec<f64>, f64)> {
    let rows: Vec<&Row> = all.iter().filter(|r| r["component"] == component).collect();
    assert!(!rows.is_empty(), "no rows for {component}");
    rows.chunks(per)
        .map(|ch| {
            let p = num(ch[0], &format!("predicted_{col}"));
            (ch.iter().map(|r| num(r, col)).collect(), p)
        })
        .collect()
}

#[test]
fn scatter_gather_experiment_meets_its_predicted_columns() {
    // The callee never queues and answers in exp(10 ms): the front's time is H_N × 10 ms
    // exactly, and the shards take N × 50 calls/s.
    let all = components(
        "scatter-gather",
        &["replications=6", "duration=25s", "warmup=1s"],
    );
    let h = |n: u32| (1..=n).map(|k| 1.0 / f64::from(k)).sum::<f64>();
    for ((xs, p), n) in by_point(&all, "front", "mean_ms", 6)
        .into_iter()
        .zip([1, 2, 4, 8, 16, 32])
    {
        assert!((p - 10.0 * h(n)).abs() < 1e-6, "N = {n}: predicted {p}");
        agrees(
            &format!("scatter-gather N = {n}: front mean (ms)"),
            &xs,
            p,
            0.0,
            0.05,
        );
    }
    for ((xs, p), n) in by_point(&all, "search", "rps", 6)
        .into_iter()
        .zip([1.0, 2.0, 4.0, 8.0, 16.0, 32.0])
    {
        assert!((p - 50.0 * n).abs() < 1e-6, "search predicted {p} rps");
        agrees(
            &format!("scatter-gather N = {n}: search rps"),
            &xs,
            p,
            0.0,
            0.05,
        );
    }
}

#[test]
fn bulkheads_and_breaker_experiments_without_faults_meet_their_predictions() {
    // Bulkheads: reads call catalog (10 ms), writes payments (20 ms): front 2 + 0.8 × 10 +
    // 0.2 × 20 = 14 ms; catalog takes 160 calls/s, payments 40.
    let all = components(
        "bulkheads",
        &["faults=[]", "replications=6", "duration=61s", "warmup=1s"],
    );
    for (name, col) in [
        ("front", "mean_ms"),
        ("catalog", "rps"),
        ("payments", "rps"),
        ("catalog", "mean_ms"),
        ("payments", "mean_ms"),
    ] {
        for (k, (xs, p)) in by_point(&all, name, col, 6).into_iter().enumerate() {
            agrees(
                &format!("bulkheads point {k}: {name} {col}"),
                &xs,
                p,
                0.0,
                0.05,
            );
        }
    }
    // Circuit breaker (closed: it passes every call): front 5 ms + recs 5 ms (16 workers
    // at 1.5 erlangs: next to no wait).
    let all = components(
        "circuit-breaker",
        &["faults=[]", "replications=6", "duration=25s", "warmup=1s"],
    );
    for (name, col) in [("front", "mean_ms"), ("recs", "rps"), ("recs", "mean_ms")] {
        for (k, (xs, p)) in by_point(&all, name, col, 6).into_iter().enumerate() {
            agrees(
                &format!("circuit-breaker point {k}: {name} {col}"),
                &xs,
                p,
                0.01,
                0.05,
            );
        }
    }
}

#[test]
fn sequence_parallel_and_timeout_rules_meet_the_simulation() {
    // front (exp 1 ms) calls `a` (an M/M/1 at load 0.5: exponential sojourn of 10 ms), then
    // `b` and `c` together (an M/M/1 of 10 ms — its arrivals are a's departures, Poisson
    // by Burke — and a service that never queues, exp(30 ms): E[max] = 10 + 30 −
    // 1/(1/10 + 1/30) = 32.5 ms), then `d` (never queues, exp(10 ms)) with a 10 ms timeout,
    // optional: E[min(T, 10)] = 10 (1 − e^(−1)) = 6.32 ms. In all 1 + 10 + 32.5 + 6.32 =
    // 49.82 ms.
    let m = model(&users_to(
        "front",
        100,
        &[],
        r#"
workers = 1000
service_time = "exp(1ms)"
calls = [
  { to = "a" },
  { to = "b" },
  { to = "c", parallel = true },
  { to = "d", timeout = "10ms", optional = true },
]

[[services]]
name = "a"
workers = 1
service_time = "exp(5ms)"

[[services]]
name = "b"
workers = 1
service_time = "exp(5ms)"

[[services]]
name = "c"
workers = 1000
service_time = "exp(30ms)"

[[services]]
name = "d"
workers = 1000
service_time = "exp(10ms)"
"#,
    ));
    let est = dssim_lab::estimate::estimate(&m);
    let want = 1.0
        + 10.0
        + (10.0 + 30.0 - 1.0 / (1.0 / 10.0 + 1.0 / 30.0))
        + 10.0 * (1.0 - (-1.0f64).exp());
    let p = est.get("front").unwrap().sojourn_ms.unwrap();
    assert!(
        (p - want).abs() < 0.01 * want,
        "front predicted {p} ms, by hand {want}"
    );
    let reports = replicate(&m, Plan::new(5, 125, 12, 15_800));
    let xs: Vec<f64> = reports
        .iter()
        .map(|r| component(r, "front").mean_ms.unwrap())
        .collect();
    // The calls' times are exponential and independent of each other: the rules are exact.
    agrees(
        "front: own + sequence + parallel max + capped call (ms)",
        &xs,
        p,
        0.01,
        0.05,
    );
    for (name, rate) in [("a", 100.0), ("b", 100.0), ("c", 100.0), ("d", 100.0)] {
        assert!((est.get(name).unwrap().offered_rps - rate).abs() < 1e-9);
    }
}

//! Timed changes (`[[changes]]`): workers, instances, a cache's TTL and a load balancer's
//! algorithm changed at a simulated time. Each change has its effect from that time on and
//! none before it (the rows before are those of the run without it, byte for byte); runs
//! with changes are the same for any `--jobs`; bad changes get the CLI's located errors.

use dssim_components::stats::SeriesRow;
use dssim_components::{ModelConfig, RunOptions, RunReport};
use dssim_engine::SimTime;

use crate::support::{component, model};
use crate::support::{dssim, run_ok, tmp_dir, write};

fn run(m: &ModelConfig, seed: u64, secs: u64) -> RunReport {
    let opts = RunOptions {
        timeseries: Some(SimTime::from_secs(1)),
        ..RunOptions::new(seed, SimTime::from_secs(secs), SimTime::from_secs(2))
    };
    m.build(&opts).expect("build").run().expect("run")
}

/// `m` with `change` (a `[[changes]]` entry in TOML) added.
fn with(text: &str, change: &str) -> ModelConfig {
    model(&format!("{text}\n{change}"))
}

/// Mean of `f` over the rows that start in `[from, to)` seconds (a row is stamped with
/// its start).
fn mean(rows: &[SeriesRow], from: f64, to: f64, f: impl Fn(&SeriesRow) -> f64) -> f64 {
    let v: Vec<f64> = rows
        .iter()
        .filter(|r| r.t_s >= from && r.t_s < to)
        .map(f)
        .collect();
    assert!(!v.is_empty(), "no rows in [{from}, {to})");
    v.iter().sum::<f64>() / v.len() as f64
}

/// The rows before `t_s`, printed: they must not depend on a change at `t_s`.
fn before(rows: &[SeriesRow], t_s: f64) -> String {
    rows.iter()
        .filter(|r| r.t_s < t_s)
        .map(|r| format!("{r:?}\n"))
        .collect()
}

/// M/M/2 at 90 %: about 7.7 requests waiting (Erlang C). Doubled to M/M/4 at 20 s the same
/// load leaves about 0.1 waiting.
const MMC: &str = r#"
[[clients]]
name = "users"
target = "app"
arrival = "poisson"
rate = 1800

[[services]]
name = "app"
instances = 1
workers = 2
service_time = "exp(1ms)"
"#;

#[test]
fn doubling_workers_cuts_the_queue_from_that_time_on() {
    let base = model(MMC);
    let changed = with(
        MMC,
        "[[changes]]\nat = \"20s\"\ntarget = \"app\"\nset = { workers = 4 }",
    );
    let (mut q_before, mut q_after, mut q_base_after) = (0.0, 0.0, 0.0);
    for seed in 1..=4 {
        let a = run(&base, seed, 40);
        let b = run(&changed, seed, 40);
        assert_eq!(
            before(&a.series, 20.0),
            before(&b.series, 20.0),
            "seed {seed}: nothing changes before 20 s"
        );
        q_before += mean(&b.series, 4.0, 20.0, |r| r.queue_len) / 4.0;
        q_after += mean(&b.series, 21.0, 40.0, |r| r.queue_len) / 4.0;
        q_base_after += mean(&a.series, 21.0, 40.0, |r| r.queue_len) / 4.0;
        let u_after = mean(&b.series, 21.0, 40.0, |r| r.utilization.expect("util"));
        assert!(
            (u_after - 0.45).abs() < 0.03,
            "seed {seed}: 1.8 busy of 4 workers after: {u_after}"
        );
    }
    eprintln!("queue: before {q_before:.2}, after {q_after:.3} (unchanged run: {q_base_after:.2})");
    assert!(
        q_before > 4.0 && q_base_after > 4.0,
        "M/M/2 at 0.9 queues: {q_before}, {q_base_after}"
    );
    assert!(
        q_after < 0.3,
        "M/M/4 at 0.45 hardly queues (Erlang C: 0.1): {q_after}"
    );
    assert!(q_after * 2.0 < q_before, "at least halved");
}

/// Fewer workers: busy ones finish what they hold (no request fails), then retire; the
/// queue grows from the change on. The mean workers over the window set the utilization.
#[test]
fn fewer_workers_finish_their_requests_then_retire() {
    let text = r#"
[[clients]]
name = "users"
target = "app"
arrival = "poisson"
rate = 1000

[[services]]
name = "app"
instances = 1
workers = 8
service_time = "exp(5ms)"
"#;
    let m = with(
        text,
        "[[changes]]\nat = \"10s\"\ntarget = \"app\"\nset = { workers = 6 }",
    );
    let r = run(&m, 3, 20);
    assert_eq!(r.metric("errors"), Some(0.0), "no request is cut short");
    let q_before = mean(&r.series, 3.0, 10.0, |r| r.queue_len);
    let q_after = mean(&r.series, 11.0, 20.0, |r| r.queue_len);
    assert!(q_after > 2.0 * q_before, "{q_before} -> {q_after}");
    // 5 busy workers on average: of 8 for 8 s of the window, of 6 for 10 s.
    let u = component(&r, "app").utilization.expect("util");
    let expect = 5.0 / ((8.0 * 8.0 + 6.0 * 10.0) / 18.0);
    assert!(
        (u - expect).abs() < 0.03,
        "utilization {u}, expected {expect}"
    );
}

/// Instances 2 -> 4 at 10 s, then 4 -> 1 at 20 s: the instance count follows, the removed
/// instances drain without failing anything, and p99 falls with 4 and rises with 1.
#[test]
fn instances_change_through_the_scaling_path() {
    let text = r#"
[[clients]]
name = "users"
target = "lb"
arrival = "poisson"
rate = 700

[[load_balancers]]
name = "lb"
backends = "app"
algorithm = "least_connections"

[[services]]
name = "app"
instances = 2
workers = 1
service_time = "exp(2.5ms)"

[[changes]]
at = "10s"
target = "app"
set = { instances = 4 }

[[changes]]
at = "20s"
target = "app"
set = { instances = 3 }
"#;
    let r = run(&model(text), 5, 30);
    let inst = |from, to| mean(&r.series, from, to, |r| r.instances);
    assert_eq!(inst(2.0, 10.0), 2.0);
    assert_eq!(inst(10.0, 20.0), 4.0);
    assert_eq!(inst(20.0, 30.0), 3.0);
    assert_eq!(r.metric("errors"), Some(0.0));
    let q = |from, to| mean(&r.series, from, to, |r| r.queue_len);
    assert!(
        q(11.0, 20.0) * 3.0 < q(3.0, 10.0),
        "4 instances queue less than 2: {} vs {}",
        q(11.0, 20.0),
        q(3.0, 10.0)
    );
    // Instances 2 and 3 served only from 10 s; app.3 stopped at 20 s.
    for (i, lo) in [(2, 1000u64), (3, 1000)] {
        let c = component(&r, &format!("app.{i}"));
        assert!(c.requests > lo, "app.{i}: {}", c.requests);
    }
    assert!(component(&r, "app.3").requests < component(&r, "app.2").requests);
}

/// A cache whose entries live 50 ms misses often; from 15 s on new entries live 30 s and
/// the hit ratio climbs.
#[test]
fn a_longer_ttl_raises_the_hit_ratio_from_then_on() {
    let text = r#"
[[clients]]
name = "users"
target = "app"
arrival = "poisson"
rate = 2000
keys = 2000
popularity = "zipf(0.8)"

[[services]]
name = "app"
instances = 2
workers = 8
service_time = "exp(1ms)"
cache = "cache"

[[caches]]
name = "cache"
ttl = "50ms"
origin = "store"

[[services]]
name = "store"
instances = 1
workers = 64
service_time = "exp(2ms)"
"#;
    let base = model(text);
    let m = with(
        text,
        "[[changes]]\nat = \"15s\"\ntarget = \"cache\"\nset = { ttl = \"30s\" }",
    );
    let a = run(&base, 7, 30);
    let b = run(&m, 7, 30);
    assert_eq!(before(&a.series, 15.0), before(&b.series, 15.0));
    let hit =
        |r: &RunReport, from, to| mean(&r.series, from, to, |r| r.cache_hit_ratio.expect("hit"));
    let (h0, h1, h_base) = (hit(&b, 3.0, 15.0), hit(&b, 20.0, 30.0), hit(&a, 20.0, 30.0));
    eprintln!("hit ratio: before {h0:.3}, after {h1:.3}, unchanged {h_base:.3}");
    assert!(h1 > h0 + 0.2, "hit ratio {h0} -> {h1}");
    assert!(
        (h_base - h0).abs() < 0.05,
        "unchanged run stays: {h_base} vs {h0}"
    );
}

/// Round robin over two instances, then weighted 3:1 from half time: app.0 serves half
/// the requests before and three quarters after, five eighths in all.
#[test]
fn a_balancing_algorithm_switch_reroutes_from_then_on() {
    let text = r#"
[[clients]]
name = "users"
target = "lb"
arrival = "constant"
rate = 1000

[[load_balancers]]
name = "lb"
backends = "app"
weights = [3, 1]

[[services]]
name = "app"
instances = 2
workers = 4
service_time = "1ms"

[[changes]]
at = "12s"
target = "lb"
set = { algorithm = "weighted_round_robin" }
"#;
    let r = run(&model(text), 1, 22);
    let (a0, a1) = (
        component(&r, "app.0").requests as f64,
        component(&r, "app.1").requests as f64,
    );
    let share = a0 / (a0 + a1);
    assert!((share - 0.625).abs() < 0.005, "app.0 share {share}");
}

const SWEPT: &str = r#"
name = "changes-det"
duration = "6s"
warmup = "1s"
seed = 9
replications = 2

[sweep]
"changes.0.set.workers" = [1, 3]

[output]
timeseries = "500ms"

[model]
[[model.clients]]
name = "users"
target = "lb"
rate = 900
timeout = "50ms"
keys = 500
popularity = "zipf(0.9)"

[[model.load_balancers]]
name = "lb"
backends = "app"

[[model.services]]
name = "app"
instances = 2
workers = 2
queue = 20
service_time = "exp(2ms)"
cache = "cache"

[[model.caches]]
name = "cache"
ttl = "200ms"
origin = "store"

[[model.services]]
name = "store"
instances = 1
workers = 32
service_time = "exp(3ms)"

[[model.changes]]
at = "2s"
target = "app"
set = { workers = 1 }

[[model.changes]]
at = "3s"
target = "app"
set = { instances = 4 }

[[model.changes]]
at = "3500ms"
target = "cache"
set = { ttl = "2s" }

[[model.changes]]
at = "4s"
target = "lb"
set = { algorithm = "power_of_two" }
"#;

/// Every kind of change, swept: the outputs are byte-identical for --jobs 1 and 4.
#[test]
fn runs_with_changes_are_the_same_for_any_jobs() {
    let dir = tmp_dir("changes-det");
    let file = write(&dir, "exp.toml", SWEPT);
    run_ok(&file, &dir.join("j1"), &["--jobs", "1"]);
    run_ok(&file, &dir.join("j4"), &["--jobs", "4"]);
    for f in ["runs.csv", "points.csv", "timeseries.csv", "components.csv"] {
        let a = std::fs::read(dir.join("j1").join(f)).expect(f);
        let b = std::fs::read(dir.join("j4").join(f)).expect(f);
        assert!(a == b, "{f} differs between --jobs 1 and 4");
    }
    let points = std::fs::read_to_string(dir.join("j1/points.csv")).expect("points");
    assert_eq!(points.lines().count(), 3, "two points: {points}");
}

/// Bad changes: the CLI's error with file, line and column, a "did you mean", exit 2.
#[test]
fn bad_changes_are_located_and_explained() {
    let dir = tmp_dir("changes-bad");
    let cases = [
        (
            "target = \"ap\"\nset = { workers = 2 }",
            "did you mean \"app\"",
            4,
        ),
        (
            "target = \"app\"\nset = { worker = 2 }",
            "did you mean `workers`",
            5,
        ),
        (
            "target = \"app\"\nset = { ttl = \"5s\" }",
            "`ttl` is a setting of caches",
            5,
        ),
        (
            "target = \"app\"\nset = { workers = 0 }",
            "between 1 and",
            5,
        ),
        ("target = \"app\"\nset = {}", "sets nothing", 5),
    ];
    for (i, (body, want, line)) in cases.iter().enumerate() {
        let text = format!(
            "duration = \"2s\"\n[model]\n[[model.changes]]\n{body}\nat = \"1s\"\n\
             [[model.clients]]\nname = \"users\"\ntarget = \"app\"\nrate = 10\n\
             [[model.services]]\nname = \"app\"\nservice_time = \"1ms\"\n"
        );
        let file = write(&dir, &format!("bad{i}.toml"), &text);
        let out = dssim(&["check", file.to_str().expect("utf8")]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{body}: {err}");
        assert!(err.contains(want), "{body}: wanted {want:?} in {err}");
        assert!(
            err.contains(&format!("bad{i}.toml:{line}:")),
            "{body}: wanted line {line} in {err}"
        );
    }
}

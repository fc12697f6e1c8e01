//! The compute tier: autoscaling, load shedding, connection pools, memory, NIC bandwidth,
//! canaries and job queues. Every run also checks request conservation (`World::run`
//! fails when a request does not end exactly once).

use std::path::Path;

use dssim_components::node::Node;
use dssim_components::stats::SeriesRow;
use dssim_components::{ModelConfig, RunOptions, RunReport, World};
use dssim_engine::parse_duration;

use crate::support::model;

fn opts(seed: u64, duration: &str, warmup: &str, series: Option<&str>) -> RunOptions {
    RunOptions {
        seed,
        duration: parse_duration(duration).unwrap(),
        warmup: parse_duration(warmup).unwrap(),
        timeseries: series.map(|s| parse_duration(s).unwrap()),
        trace: 0,
        trace_sample: Default::default(),
    }
}

fn build(text: &str, o: &RunOptions) -> World {
    model(text)
        .build(o)
        .unwrap_or_else(|e| panic!("model does not build: {e:?}"))
}

fn run(text: &str, o: &RunOptions) -> RunReport {
    build(text, o)
        .run()
        .unwrap_or_else(|e| panic!("run failed: {e}"))
}

fn m(r: &RunReport, name: &str) -> f64 {
    r.metric(name)
        .unwrap_or_else(|| panic!("metric {name} is empty"))
}

/// The first time-series row at or after `t` seconds whose `f` holds.
fn first_row(series: &[SeriesRow], from: f64, f: impl Fn(&SeriesRow) -> bool) -> Option<f64> {
    series
        .iter()
        .filter(|r| r.t_s >= from)
        .find(|r| f(r))
        .map(|r| r.t_s)
}

// ---------------------------------------------------------------------------------------
// Autoscaling

/// Two workers of 10 ms serve 200/s per instance; 600/s needs three instances at 100% and
/// five at the 120/s-per-instance target. The load starts at t = 0 with one instance: the
/// autoscaler waits its 30 s stabilization window, then adds instances that serve 20 s
/// later. (It tracks `rps`: `cpu` saturates at 1.0 on an overloaded instance, so a
/// cpu-driven scaler climbs in steps of at most 1/target per window.)
const SCALE_UP: &str = r#"
[[clients]]
name = "users"
target = "app"
rate = 600

[[services]]
name = "app"
instances = 1
workers = 2
queue = 400
service_time = "exp(10ms)"

[[autoscalers]]
service = "app"
metric = "rps"
target = 120
min = 1
max = 8
interval = "5s"
provision = "20s"
scale_up = { step = "400%", stabilize = "30s" }
scale_down = { step = 1, stabilize = "5m" }
"#;

#[test]
fn autoscaler_adds_instances_after_stabilization_plus_provisioning() {
    let r = run(SCALE_UP, &opts(11, "120s", "0s", Some("5s")));
    let s = &r.series;

    // No new instance before stabilize (30 s) + provision (20 s).
    for row in s.iter().filter(|r| r.t_s < 50.0) {
        assert!(
            row.instances <= 1.0 + 1e-9,
            "instances {} at {}s",
            row.instances,
            row.t_s
        );
    }
    // Decided at the first tick past 30 s (35 s), serving at 55 s: the 55 s row is full.
    let up = first_row(s, 0.0, |r| r.instances > 1.5).expect("never scaled up");
    assert!((50.0..=55.0).contains(&up), "scaled up at {up}s");
    let last = s.last().unwrap();
    assert!(
        last.instances >= 4.0 && last.instances <= 8.0,
        "{}",
        last.instances
    );
    // The gap is visible: p99 during it (overloaded, queue full) far above p99 after.
    let gap = s.iter().find(|r| (40.0..45.0).contains(&r.t_s)).unwrap();
    let after = s.iter().find(|r| r.t_s >= 80.0).unwrap();
    let (gp, ap) = (gap.p99_ms.unwrap(), after.p99_ms.unwrap());
    assert!(gp > 10.0 * ap, "p99 in the gap {gp} ms vs after {ap} ms");
    assert!(gap.shed > 0, "the single instance sheds during the gap");
    assert!(after.utilization.unwrap() < 0.8);
    // Instance-hours count the provisioning time too: between 1 and 8 instances.
    let h = m(&r, "instance_hours");
    assert!(h > 120.0 / 3600.0 && h < 8.0 * 120.0 / 3600.0, "{h}");
}

#[test]
fn autoscaler_scale_down_waits_its_window() {
    let text = r#"
[[clients]]
name = "users"
target = "app"
rate = 50

[[services]]
name = "app"
instances = 6
workers = 2
service_time = "exp(10ms)"

[[autoscalers]]
service = "app"
metric = "cpu"
target = 0.6
min = 1
max = 8
interval = "5s"
provision = "20s"
scale_down = { step = "50%", stabilize = "60s" }
"#;
    let r = run(text, &opts(3, "150s", "0s", Some("5s")));
    let s = &r.series;
    for row in s.iter().filter(|r| r.t_s < 60.0) {
        assert!(
            (row.instances - 6.0).abs() < 1e-9,
            "{} at {}",
            row.instances,
            row.t_s
        );
    }
    let down = first_row(s, 0.0, |r| r.instances < 5.9).expect("never scaled down");
    assert!((60.0..=65.0).contains(&down), "scaled down at {down}s");
    // 50% per action: 6 -> 3 at the first action, then down to 1 at the next ticks.
    assert!(s.last().unwrap().instances <= 1.0 + 1e-9);
}

#[test]
fn autoscaled_instances_take_traffic_and_draining_loses_nothing() {
    // Scale up then down in one run: requests routed to drained instances still end once.
    let text = SCALE_UP
        .replace(
            "scale_down = { step = 1, stabilize = \"5m\" }",
            "scale_down = { step = 1, stabilize = \"10s\" }",
        )
        .replace("rate = 600", "rate = 300");
    let r = run(&text, &opts(5, "90s", "0s", Some("5s")));
    assert!(m(&r, "ok") > 0.0);
    assert!(r.series.iter().any(|row| row.instances > 1.5));
}

// ---------------------------------------------------------------------------------------
// Load shedding

/// One instance, 4 workers of exp(10 ms): capacity 400/s; offered 800/s (2x).
fn overload(shedding: &str, queue: &str) -> String {
    format!(
        r#"
[[clients]]
name = "users"
target = "app"
rate = 800

[[services]]
name = "app"
workers = 4
{queue}
service_time = "exp(10ms)"
shedding = "{shedding}"
retry_after = "2s"
"#
    )
}

#[test]
fn shedding_bounds_p99_of_served_requests_at_twice_capacity() {
    let o = opts(7, "30s", "5s", None);
    let none = run(&overload("none", "queue = 50"), &o);
    // Unbounded: the backlog grows by 400/s, so waits reach tens of seconds.
    assert!(
        m(&none, "p99_ms") > 10_000.0,
        "none p99 {}",
        m(&none, "p99_ms")
    );
    assert_eq!(m(&none, "shed"), 0.0);
    // Waiting-room bound: a served request waits behind at most 50 others (~125 ms at
    // 400/s) plus its own service: p99 well under 250 ms.
    for (policy, queue) in [
        ("queue", "queue = 50"),
        ("deadline(100ms)", "queue = 100000"),
        ("probabilistic(0.5)", "queue = 50"),
    ] {
        let r = run(&overload(policy, queue), &o);
        let p99 = m(&r, "p99_ms");
        assert!(p99 < 250.0, "{policy}: p99 {p99} ms");
        // Throughput stays at capacity (400/s, within 5%); the excess is shed.
        let x = m(&r, "throughput_rps");
        assert!((x - 400.0).abs() < 20.0, "{policy}: throughput {x}");
        let shed = m(&r, "shed") / m(&r, "requests");
        assert!((shed - 0.5).abs() < 0.05, "{policy}: shed share {shed}");
    }
}

#[test]
fn degradation_sheds_low_priority_first_and_goes_read_only() {
    let text = r#"
[[clients]]
name = "users"
target = "app"
rate = 800
read_ratio = 0.8
low_priority = 0.5

[[services]]
name = "app"
workers = 4
queue = 50
service_time = "exp(10ms)"
degrade = [{ at = 1.0, action = "shed_low_priority" }, { at = 5.0, action = "read_only" }]
"#;
    let r = run(text, &opts(9, "20s", "2s", None));
    // Half the offered load is low priority: shedding it brings the load to capacity.
    let d = m(&r, "degraded") / m(&r, "requests");
    assert!(d > 0.3 && d < 0.55, "degraded share {d}");
    assert!(m(&r, "ok") / m(&r, "requests") > 0.45);
}

/// `shedding = "none"` is a true baseline: the degradation levels that shed do not apply.
#[test]
fn shedding_none_sheds_nothing_even_with_degradation_levels() {
    let text = |shedding: &str| {
        format!(
            r#"
[[clients]]
name = "users"
target = "app"
rate = 800
read_ratio = 0.8
low_priority = 0.25

[[services]]
name = "app"
workers = 4
queue = 50
service_time = "exp(10ms)"
shedding = "{shedding}"
degrade = [{{ at = 1.0, action = "shed_low_priority" }}, {{ at = 5.0, action = "read_only" }}]
"#
        )
    };
    let o = opts(3, "10s", "2s", None);
    let none = run(&text("none"), &o);
    assert_eq!(m(&none, "shed"), 0.0);
    assert_eq!(m(&none, "degraded"), 0.0);
    // The same levels under `queue` do shed: the test can tell the two apart.
    let queue = run(&text("queue"), &o);
    assert!(m(&queue, "degraded") > 0.0);
}

// ---------------------------------------------------------------------------------------
// Connection pool, memory, NIC

/// The app calls its database for every request through a pool of `pool` connections; the
/// database serves 20 ms each with no limit on queries at once, so 2 connections carry at
/// most 100 requests/s per instance.
fn pooled(pool: u32) -> String {
    format!(
        r#"
[[clients]]
name = "users"
target = "app"
rate = 150

[[services]]
name = "app"
workers = 16
service_time = "const(1ms)"
pool = {{ size = {pool}, timeout = "50ms" }}
database = "db"

[[databases]]
name = "db"
read_time = "const(20ms)"
write_time = "const(20ms)"
"#
    )
}

fn run_pooled(pool: u32) -> RunReport {
    let o = opts(13, "20s", "2s", None);
    build(&pooled(pool), &o).run().expect("conservation")
}

#[test]
fn pool_exhaustion_shows_as_acquire_timeouts() {
    let small = run_pooled(2);
    let t = m(&small, "pool_timeouts");
    // 150/s offered to 100/s of connections: about a third fail waiting.
    assert!(t > 0.2 * m(&small, "requests"), "pool timeouts {t}");
    // Every pool timeout is an error (up to requests straddling the window's edges).
    let e = m(&small, "errors");
    assert!((e - t).abs() <= 0.01 * t, "errors {e}, pool timeouts {t}");
    let row = small
        .components
        .iter()
        .find(|c| c.component == "app.pool")
        .expect("pool row");
    assert!(row.mean_queue.unwrap() > 1.0);
    let big = run_pooled(8);
    assert_eq!(m(&big, "pool_timeouts"), 0.0);
    assert_eq!(m(&big, "errors"), 0.0);
}

#[test]
fn out_of_memory_crashes_fail_in_flight_requests_and_restart() {
    // 20 requests fit in memory. M/M/4 at 70% load climbs from 19 to 20 held at rate
    // λ·π19 = 280 × C(4, 2.8) × 0.3 × 0.7^15 ≈ 0.17/s: a crash every 6 s or so, each
    // followed by 2 s down.
    let text = r#"
[[clients]]
name = "users"
target = "app"
rate = 280

[[services]]
name = "app"
workers = 4
service_time = "exp(10ms)"
memory = "2000MiB"
memory_per_request = "100MiB"
restart = "2s"
"#;
    let r = run(text, &opts(21, "60s", "5s", Some("1s")));
    let crashes = m(&r, "oom_crashes");
    assert!(crashes >= 2.0, "crashes {crashes}");
    assert!(m(&r, "errors") >= crashes);
    // It restarts: requests succeed after crashes, and some seconds are mostly errors.
    assert!(m(&r, "ok") > 0.5 * m(&r, "requests"));
    assert!(
        r.series.iter().any(|s| s.errors > 200),
        "a restart window of errors"
    );
}

#[test]
fn nic_bandwidth_caps_throughput_at_bandwidth_over_size() {
    // 1 Gbps / 2 KB = 62,500 responses/s; the CPU could do 640,000/s.
    let text = r#"
[[clients]]
name = "users"
target = "app"
rate = 80000

[[services]]
name = "app"
workers = 64
queue = 1000
service_time = "const(0.1ms)"
bandwidth = "1Gbps"
response_size = "2KB"
"#;
    let r = run(text, &opts(1, "3s", "1s", None));
    let x = m(&r, "throughput_rps");
    assert!((x - 62_500.0).abs() / 62_500.0 < 0.01, "throughput {x}");
}

// ---------------------------------------------------------------------------------------
// Vertical scaling cost, sessions, canary

#[test]
fn cost_grows_faster_than_speed() {
    let text = r#"
[[clients]]
name = "users"
target = "app"
rate = 10

[[services]]
name = "app"
instances = 2
service_time = "exp(10ms)"
speed = 2.0
cost = { per_hour = 0.10, exponent = 1.5 }
"#;
    let r = run(text, &opts(1, "3610s", "10s", None));
    let hours = m(&r, "instance_hours");
    assert!((hours - 2.0).abs() < 1e-9, "{hours}");
    let cost = m(&r, "cost");
    assert!((cost - 2.0 * 0.10 * 2f64.powf(1.5)).abs() < 1e-9, "{cost}");
}

/// Mixed server sizes (`speeds`): each instance serves at its own speed and is priced at it.
#[test]
fn mixed_sizes_serve_and_bill_at_each_instance_speed() {
    let text = r#"
[[clients]]
name = "users"
target = "app"
rate = 20

[[services]]
name = "app"
instances = 2
workers = 8
service_time = "exp(10ms)"
speeds = [2.0, 0.5]
cost = { per_hour = 0.10, exponent = 1.5 }
"#;
    let o = opts(4, "3610s", "10s", None);
    let mut w = build(text, &o);
    w.advance(parse_duration("3610s").unwrap());
    let mean = |name: &str| match w.node(name) {
        Some(Node::Instance(i)) => (i.stats.sojourn.mean_ms().unwrap(), i.stats.sojourn.len()),
        _ => panic!("{name} is an instance"),
    };
    // 8 workers at 10 req/s each: no queueing, the time in the instance is the service
    // time, exp with mean 10 ms / speed. Each mean is over ~36,000 requests: the standard
    // error is mean / sqrt(n) ≈ 0.5%; allow 3%.
    for (name, want) in [("app.0", 5.0), ("app.1", 20.0)] {
        let (got, n) = mean(name);
        assert!(n > 30_000, "{name}: {n} requests");
        assert!(
            (got - want).abs() / want < 0.03,
            "{name}: mean {got} ms, want {want}"
        );
    }
    let r = w.run().unwrap_or_else(|e| panic!("run failed: {e}"));
    let cost = m(&r, "cost");
    let want = 0.10 * (2f64.powf(1.5) + 0.5f64.powf(1.5));
    assert!((cost - want).abs() < 1e-9, "{cost} vs {want}");

    // One speed per instance at most, each above zero.
    let bad = model(text).services[0].clone();
    for (speeds, needle) in [
        (vec![1.0, 1.0, 1.0], "3 speeds"),
        (vec![1.0, 0.0], "entry 1"),
    ] {
        let mut m = model(text);
        m.services[0] = dssim_components::service::ServiceConfig {
            speeds,
            ..bad.clone()
        };
        let errs = m.validate().expect_err("refused");
        assert!(
            errs.iter()
                .any(|e| e.path == "services.app.speeds" && e.message.contains(needle)),
            "{errs:?}"
        );
    }
}

#[test]
fn local_sessions_pay_relogins_when_routed_elsewhere() {
    let text = |sessions: &str| {
        format!(
            r#"
[[clients]]
name = "users"
target = "app"
rate = 100
user_ids = 50

[[services]]
name = "app"
instances = 4
workers = 4
service_time = "exp(5ms)"
sessions = "{sessions}"
relogin = "const(50ms)"
"#
        )
    };
    let o = opts(4, "30s", "5s", None);
    let local = run(&text("local"), &o);
    let stateless = run(&text("stateless"), &o);
    // Random routing over 4 instances: a returning user lands elsewhere 3 times in 4.
    let share = m(&local, "relogins") / m(&local, "requests");
    assert!((share - 0.75).abs() < 0.03, "relogin share {share}");
    assert!(m(&local, "latency_mean_ms") > m(&stateless, "latency_mean_ms") + 30.0);
    assert!(stateless.metric("relogins").is_none());
}

fn canary(error_rate: f64) -> String {
    format!(
        r#"
[[clients]]
name = "users"
target = "app"
rate = 400

[[services]]
name = "app"
instances = 2
workers = 4
service_time = "exp(5ms)"
canary = {{ error_rate = {error_rate}, steps = [0.05, 0.25, 1.0], start = "5s", every = "10s", max_error_rate = 0.05, check = "2s" }}
"#
    )
}

#[test]
fn canary_rolls_out_in_steps_or_rolls_back() {
    let o = opts(2, "60s", "0s", None);
    let good = run(&canary(0.0), &o);
    assert_eq!(m(&good, "canary_share"), 1.0);
    assert!(good.metric("canary_rollback_s").is_none());
    assert_eq!(m(&good, "errors"), 0.0);
    let bad = run(&canary(0.3), &o);
    assert_eq!(m(&bad, "canary_share"), 0.0);
    // At 5% of 400/s the 20 requests needed to judge arrive within about 1 s: rolled back
    // at the first or second check after the start.
    let at = m(&bad, "canary_rollback_s");
    assert!((7.0..=9.0).contains(&at), "rolled back at {at}s");
    // Only the canary's share of the first step failed.
    assert!(m(&bad, "errors") < 0.01 * m(&bad, "requests"));
}

#[test]
fn slow_canary_rolls_back_on_p95() {
    let text = canary(0.0).replace(
        "canary = {",
        "canary = { service_time = \"exp(50ms)\", max_p95 = \"40ms\",",
    );
    let r = run(&text, &opts(2, "60s", "0s", None));
    assert_eq!(m(&r, "canary_share"), 0.0);
    // p95 of exp(50 ms) is 150 ms: caught at the first check with 20 requests.
    let at = m(&r, "canary_rollback_s");
    assert!((7.0..=9.0).contains(&at), "rolled back at {at}s");
}

// ---------------------------------------------------------------------------------------
// Job queues

fn jobs(extra: &str) -> String {
    format!(
        r#"
[[clients]]
name = "users"
target = "app"
rate = 200
read_ratio = 0.0

[[services]]
name = "app"
instances = 2
workers = 4
service_time = "exp(2ms)"

[[queues]]
name = "jobs"
producer = "app"
enqueue_ratio = 0.5
workers = 4
job_time = "exp(5ms)"
{extra}
"#
    )
}

fn check_job_conservation(r: &RunReport) {
    let e = m(r, "jobs_enqueued");
    let rest = m(r, "jobs_done") + m(r, "jobs_dead") + m(r, "jobs_dropped") + m(r, "jobs_pending");
    assert_eq!(e, rest, "enqueued = done + dead + dropped + pending");
}

#[test]
fn job_retries_dead_letter_failure_rate_to_the_power_of_attempts() {
    let r = run(
        &jobs(
            r#"failure_rate = 0.5
retries = { max = 2, backoff = "10ms", multiplier = 2.0, jitter = true }"#,
        ),
        &opts(8, "60s", "0s", None),
    );
    check_job_conservation(&r);
    let e = m(&r, "jobs_enqueued");
    // 200/s × 50% of writes × 60 s ≈ 6000 jobs.
    assert!((e - 6000.0).abs() < 300.0, "{e}");
    let finished = m(&r, "jobs_done") + m(&r, "jobs_dead");
    let dead = m(&r, "jobs_dead") / finished;
    // 0.5^3 = 0.125; sd of the share = sqrt(0.125 × 0.875 / 6000) = 0.0043: 4 sd.
    assert!((dead - 0.125).abs() < 0.017, "dead share {dead}");
    assert!(m(&r, "job_p99_ms") > 10.0);
}

#[test]
fn full_job_queues_drop_or_block() {
    // One slow worker: 100 jobs/s offered, 20/s served; at most 10 wait.
    let slow = |when: &str| {
        jobs(&format!("capacity = 10\nwhen_full = \"{when}\"\n")).replace(
            "workers = 4\njob_time = \"exp(5ms)\"",
            "workers = 1\njob_time = \"exp(50ms)\"",
        )
    };
    let o = opts(6, "20s", "2s", None);
    for when in ["drop", "drop_oldest"] {
        let r = run(&slow(when), &o);
        check_job_conservation(&r);
        let dropped = m(&r, "jobs_dropped") / m(&r, "jobs_enqueued");
        assert!(dropped > 0.7, "{when}: dropped share {dropped}");
        assert!(m(&r, "p99_ms") < 50.0, "{when}: producers do not wait");
    }
    let r = run(&slow("block"), &o);
    check_job_conservation(&r);
    assert_eq!(m(&r, "jobs_dropped"), 0.0);
    // Blocked producers hold their workers: the writes wait for room in the queue.
    assert!(m(&r, "p99_ms") > 1_000.0, "p99 {}", m(&r, "p99_ms"));
}

#[test]
fn job_workers_autoscale_on_queue_depth() {
    let text = jobs(
        r#"
[[autoscalers]]
queue = "jobs"
metric = "queue"
target = 2
min = 1
max = 16
interval = "2s"
provision = "5s"
scale_up = { stabilize = "4s" }
"#,
    )
    .replace(
        "workers = 4\njob_time = \"exp(5ms)\"",
        "workers = 1\njob_time = \"exp(50ms)\"",
    );
    let r = run(&text, &opts(10, "120s", "60s", None));
    check_job_conservation(&r);
    // 100 jobs/s of 50 ms need 5 workers; once scaled, jobs wait little.
    let row = r.components.iter().find(|c| c.kind == "queue").unwrap();
    assert!(row.utilization.unwrap() < 0.95, "{:?}", row.utilization);
    assert!(
        m(&r, "job_p99_ms") < 2_000.0,
        "job p99 {}",
        m(&r, "job_p99_ms")
    );
}

// ---------------------------------------------------------------------------------------
// Validation

#[test]
fn compute_options_are_validated_with_paths() {
    let bad = r#"
[[clients]]
name = "users"
target = "app"
rate = 1

[[services]]
name = "app"
service_time = "1ms"
shedding = "probabilistic(0.5)"
pool = { size = 0 }

[[queues]]
name = "jobs"
producer = "ap"
job_time = "1ms"

[[autoscalers]]
service = "nope"
metric = "cpu"
target = 2.0
min = 3
max = 2
"#;
    let m: ModelConfig = dssim_lab::source::Source::from_text(Path::new("m.toml"), bad.into())
        .parse()
        .unwrap();
    let errs = m.validate().unwrap_err();
    let paths: Vec<&str> = errs.iter().map(|e| e.path.as_str()).collect();
    for p in [
        "services.app.shedding",
        "services.app.pool.size",
        "queues.jobs.producer",
        "autoscalers.0.service",
        "autoscalers.0.max",
        "autoscalers.0.target",
    ] {
        assert!(paths.contains(&p), "{p} missing from {paths:?}");
    }
    assert!(errs
        .iter()
        .any(|e| e.message.contains("did you mean \"app\"")));
}

#[test]
fn a_crash_moves_long_lived_connections_to_the_others_and_cascades() {
    // 3 instances, 4 GiB each, 8 workers at 60% load. 9,000 WebSockets of 256 KiB take
    // 0.73 GiB each with three up, leaving room for 52 requests: never reached. With
    // 36,000 connections (2.9 GiB each with three up) 17 requests held crash one, which
    // happens within a second (P = C(8, 4.8) × 0.6^9 ≈ 0.002 per arrival);
    // the other two then hold 4.5 GiB of connections each and crash at once, and each
    // instance that restarts alone takes all of them: the service never recovers.
    let text = |conns: u32| {
        format!(
            r#"
[[clients]]
name = "users"
target = "app"
rate = 3600

[[services]]
name = "app"
instances = 3
workers = 8
service_time = "exp(4ms)"
memory = "4GiB"
memory_per_request = "64MiB"
memory_per_connection = "256KiB"
connections = {conns}
restart = "5s"
"#
        )
    };
    let o = opts(17, "60s", "5s", None);
    let calm = run(&text(9_000), &o);
    assert_eq!(m(&calm, "oom_crashes"), 0.0);
    assert_eq!(m(&calm, "errors"), 0.0);
    let storm = run(&text(36_000), &o);
    assert!(
        m(&storm, "oom_crashes") >= 3.0,
        "{}",
        m(&storm, "oom_crashes")
    );
    assert!(
        m(&storm, "availability") < 0.2,
        "{}",
        m(&storm, "availability")
    );
}

#[test]
fn high_priority_requests_are_served_first() {
    // 300/s interactive + 300/s batch on 400/s of capacity, 50 waiting places. FIFO: every
    // served request waits behind a full room (~125 ms). With the batch client marked low
    // priority, interactive requests (3/4 of those served) only wait behind each other
    // (M/M/4 at 75%: a few ms), and the batch requests take what is left.
    let text = |low: f64| {
        format!(
            r#"
[[clients]]
name = "interactive"
target = "app"
rate = 300

[[clients]]
name = "batch"
target = "app"
rate = 300
low_priority = {low}

[[services]]
name = "app"
workers = 4
queue = 50
service_time = "exp(10ms)"
"#
        )
    };
    let o = opts(19, "30s", "5s", None);
    let fifo = run(&text(0.0), &o);
    let prio = run(&text(1.0), &o);
    let (f50, p50) = (m(&fifo, "p50_ms"), m(&prio, "p50_ms"));
    assert!(f50 > 100.0, "fifo p50 {f50}");
    assert!(p50 < 30.0, "priority p50 {p50}");
    // The same work gets done either way.
    let (fx, px) = (m(&fifo, "throughput_rps"), m(&prio, "throughput_rps"));
    assert!((fx - px).abs() < 0.03 * fx, "{fx} vs {px}");
}

#[test]
fn autoscaler_on_p95_scales_up_too() {
    // p95 in the service during the overload is ~2 s against a 100 ms target: the
    // recommendation is the maximum; the step (400%) limits the first action to 1 -> 5.
    let text = SCALE_UP
        .replace("metric = \"rps\"", "metric = \"p95\"")
        .replace("target = 120", "target = \"100ms\"");
    let r = run(&text, &opts(11, "90s", "0s", Some("5s")));
    let up = first_row(&r.series, 0.0, |r| r.instances > 1.5).expect("never scaled up");
    assert!((50.0..=55.0).contains(&up), "scaled up at {up}s");
    assert!(r.series.last().unwrap().instances >= 5.0);
}

#[test]
fn load_balancers_follow_autoscaled_members() {
    // The same step as above behind a least-connections balancer with health checks: new
    // instances get traffic once ready, off ones never do (no errors), and the p99 falls.
    let text = SCALE_UP.replace(
        "target = \"app\"\nrate = 600",
        "target = \"lb\"\nrate = 600",
    ) + r#"
[[load_balancers]]
name = "lb"
backends = "app"
algorithm = "least_connections"
health_check = { interval = "2s", timeout = "1s", healthy = 1, unhealthy = 2 }
"#;
    let r = run(&text, &opts(11, "120s", "0s", Some("5s")));
    assert_eq!(m(&r, "errors"), 0.0);
    let s = &r.series;
    let up = first_row(s, 0.0, |r| r.instances > 1.5).expect("never scaled up");
    assert!((50.0..=55.0).contains(&up), "scaled up at {up}s");
    let after = s.iter().find(|r| r.t_s >= 80.0).unwrap();
    assert!(
        after.p99_ms.unwrap() < 100.0,
        "p99 after {:?}",
        after.p99_ms
    );
    assert!(after.utilization.unwrap() < 0.8);
}

/// No pool: every data call first opens a connection (`connect_time`). With ample workers
/// nothing queues, so the mean latency grows by exactly the mean set-up time (theory:
/// + 20 ms for exp(20ms)); a `pool` keeps its connections open and pays nothing.
///
/// The estimate holds the worker for the set-up too: its response time grows by the same
/// 20 ms (and not with a pool), and `--explain` names it.
#[test]
fn connect_time_is_paid_per_request_without_a_pool_only() {
    let text = |extra: &str| {
        format!(
            r#"
[[clients]]
name = "users"
target = "app"
rate = 300
keys = 1000

[[services]]
name = "app"
workers = 100000
service_time = "exp(1ms)"
database = "db"
{extra}

[[databases]]
name = "db"
read_time = "exp(2ms)"
write_time = "exp(2ms)"
"#
        )
    };
    let mean = |extra: &str, seed: u64| {
        m(
            &run(&text(extra), &opts(seed, "40s", "5s", None)),
            "latency_mean_ms",
        )
    };
    let diffs: Vec<f64> = (61..67)
        .map(|seed| mean("connect_time = \"exp(20ms)\"", seed) - mean("", seed))
        .collect();
    let n = diffs.len() as f64;
    let d = diffs.iter().sum::<f64>() / n;
    let se = (diffs.iter().map(|x| (x - d).powi(2)).sum::<f64>() / (n - 1.0) / n).sqrt();
    println!("no pool: mean latency + {d:.3} ms (se {se:.3}), theory 20 ms");
    assert!((d - 20.0).abs() < 4.0 * se + 0.2, "{d}");
    let pooled = "connect_time = \"exp(20ms)\"\npool = { size = 1000 }";
    assert_eq!(mean(pooled, 61), mean("pool = { size = 1000 }", 61));
    let predicted = |extra: &str| {
        let est = dssim_lab::estimate::estimate(&model(&text(extra)));
        let app = est.get("app").expect("an app row").clone();
        (est.clients[0].response_ms.expect("a response time"), app)
    };
    let (with, app) = predicted("connect_time = \"exp(20ms)\"");
    let (without, _) = predicted("");
    println!("estimate: + {:.3} ms", with - without);
    assert!((with - without - 20.0).abs() < 1e-6, "{with} vs {without}");
    assert!(app.method.contains("connect_time"), "{}", app.method);
    let (pool_with, _) = predicted(pooled);
    let (pool_without, _) = predicted("pool = { size = 1000 }");
    assert!((pool_with - pool_without).abs() < 1e-9);
}

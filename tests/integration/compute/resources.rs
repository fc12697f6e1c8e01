//! An instance's resources: connection pools, memory (out-of-memory crashes), NIC
//! bandwidth, connect time, and a crash moving long-lived connections to the others.

use dssim_components::RunReport;

use super::{build, m, opts, run};
use crate::support::{model, users_to_app};

/// The app calls its database for every request through a pool of `pool` connections; the
/// database serves 20 ms each with no limit on queries at once, so 2 connections carry at
/// most 100 requests/s per instance.
fn pooled(pool: u32) -> String {
    users_to_app(
        150,
        &[],
        &format!(
            r#"
workers = 16
service_time = "const(1ms)"
pool = {{ size = {pool}, timeout = "50ms" }}
database = "db"

[[databases]]
name = "db"
read_time = "const(20ms)"
write_time = "const(20ms)"
"#
        ),
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
    let text = &users_to_app(
        280,
        &[],
        r#"
workers = 4
service_time = "exp(10ms)"
memory = "2000MiB"
memory_per_request = "100MiB"
restart = "2s"
"#,
    );
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
    let text = &users_to_app(
        80000,
        &[],
        r#"
workers = 64
queue = 1000
service_time = "const(0.1ms)"
bandwidth = "1Gbps"
response_size = "2KB"
"#,
    );
    let r = run(text, &opts(1, "3s", "1s", None));
    let x = m(&r, "throughput_rps");
    assert!((x - 62_500.0).abs() / 62_500.0 < 0.01, "throughput {x}");
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
        users_to_app(
            3600,
            &[],
            &format!(
                r#"
instances = 3
workers = 8
service_time = "exp(4ms)"
memory = "4GiB"
memory_per_request = "64MiB"
memory_per_connection = "256KiB"
connections = {conns}
restart = "5s"
"#
            ),
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

/// No pool: every data call first opens a connection (`connect_time`). With ample workers
/// nothing queues, so the mean latency grows by exactly the mean set-up time (theory:
/// + 20 ms for exp(20ms)); a `pool` keeps its connections open and pays nothing.
///
/// The estimate holds the worker for the set-up too: its response time grows by the same
/// 20 ms (and not with a pool), and `--explain` names it.
#[test]
fn connect_time_is_paid_per_request_without_a_pool_only() {
    let text = |extra: &str| {
        users_to_app(
            300,
            &["keys = 1000"],
            &format!(
                r#"
workers = 100000
service_time = "exp(1ms)"
database = "db"
{extra}

[[databases]]
name = "db"
read_time = "exp(2ms)"
write_time = "exp(2ms)"
"#
            ),
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

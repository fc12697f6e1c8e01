//! Load shedding and priorities: p99 bounded at twice capacity, degradation levels,
//! `shedding = "none"` as a baseline, high-priority requests served first.

use super::{m, opts, run};
use crate::support::users_to_app;

/// One instance, 4 workers of exp(10 ms): capacity 400/s; offered 800/s (2x).
fn overload(shedding: &str, queue: &str) -> String {
    users_to_app(
        800,
        &[],
        &format!(
            r#"
workers = 4
{queue}
service_time = "exp(10ms)"
shedding = "{shedding}"
retry_after = "2s"
"#
        ),
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
    let text = &users_to_app(
        800,
        &["read_ratio = 0.8", "low_priority = 0.5"],
        r#"
workers = 4
queue = 50
service_time = "exp(10ms)"
degrade = [{ at = 1.0, action = "shed_low_priority" }, { at = 5.0, action = "read_only" }]
"#,
    );
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
        users_to_app(
            800,
            &["read_ratio = 0.8", "low_priority = 0.25"],
            &format!(
                r#"
workers = 4
queue = 50
service_time = "exp(10ms)"
shedding = "{shedding}"
degrade = [{{ at = 1.0, action = "shed_low_priority" }}, {{ at = 5.0, action = "read_only" }}]
"#
            ),
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

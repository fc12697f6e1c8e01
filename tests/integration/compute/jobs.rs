//! Job queues: retries and the dead letter, full queues dropping or blocking, workers
//! autoscaled on queue depth.

use dssim_components::RunReport;

use super::{m, opts, run};
use crate::support::users_to_app;

fn jobs(extra: &str) -> String {
    users_to_app(
        200,
        &["read_ratio = 0.0"],
        &format!(
            r#"
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
        ),
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

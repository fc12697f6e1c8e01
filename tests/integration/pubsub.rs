//! Publish/subscribe fan-out (a queue with `subscribers`): each subscriber group against
//! an M/M/c queue (Erlang C), "delivered to all" against the max of N groups' times, a
//! slow group's backlog growing at λ − cμ alone, the publisher's latency independent of
//! the subscribers, the cost side (N copies), the estimate's rows, and bad input.

use std::path::{Path, PathBuf};

use dssim_components::{ModelConfig, RunOptions, RunReport};
use dssim_engine::SimTime;

use crate::support::{
    assert_theory, component, dssim, dssim_ok, metric, model, num, read_csv, replicate, tmp_dir,
    Estimate, Plan, HDR_RESOLUTION,
};

/// A topic fed by every write of `rate` per second, `groups` as the TOML list.
fn topic(rate: f64, groups: &str) -> ModelConfig {
    model(&format!(
        r#"
[[clients]]
name = "users"
target = "app"
rate = {rate}
read_ratio = 0.0

[[services]]
name = "app"
workers = 100
service_time = "exp(5ms)"

[[queues]]
name = "orders"
producer = "app"
workers = 4
job_time = "exp(20ms)"
subscribers = {groups}
"#
    ))
}

/// Erlang C: P(wait) in an M/M/c queue at offered load `a` erlangs.
fn erlang_c(c: u32, a: f64) -> f64 {
    let mut term = 1.0;
    let mut sum = 0.0;
    for k in 0..c {
        if k > 0 {
            term *= a / f64::from(k);
        }
        sum += term;
    }
    let top = term * a / f64::from(c) / (1.0 - a / f64::from(c));
    top / (sum + top)
}

/// P(T > t) for the time in an M/M/c queue (seconds).
fn mmc_survival(c: u32, lambda: f64, s: f64, t: f64) -> f64 {
    let mu = 1.0 / s;
    let theta = f64::from(c) * mu - lambda;
    let pc = erlang_c(c, lambda * s);
    let after = (theta * (-mu * t).exp() - mu * (-theta * t).exp()) / (theta - mu);
    (1.0 - pc) * (-mu * t).exp() + pc * after
}

/// E[max of n independent M/M/c times], ms: ∫(1 − F(t)^n) dt by a midpoint sum.
fn max_of_n_mmc_ms(n: i32, c: u32, lambda: f64, s: f64) -> f64 {
    let dt = 1e-6;
    (0..3_000_000)
        .map(|k| {
            let t = (k as f64 + 0.5) * dt;
            1.0 - (1.0 - mmc_survival(c, lambda, s, t)).powi(n)
        })
        .sum::<f64>()
        * dt
        * 1e3
}

fn plan(first_seed: u64, replications: u64, duration_s: u64) -> Plan {
    Plan {
        warmup_s: 5,
        duration_s,
        replications,
        timeseries: None,
        first_seed,
    }
}

#[test]
fn each_subscriber_group_is_an_mmc_queue() {
    // λ = 160/s to every group, 4 workers of exp(20 ms): load 0.8, Erlang C = 0.596, mean
    // wait C/(cμ − λ) = 14.9 ms, time from publish to delivery 34.9 ms in every group.
    let m = topic(
        160.0,
        r#"[{ name = "email" }, { name = "search", count = 2 }]"#,
    );
    let reports = replicate(&m, plan(15_500, 40, 125));
    let c = erlang_c(4, 3.2);
    let theory = (c / (200.0 - 160.0) + 0.02) * 1e3;
    for g in ["orders.email", "orders.search.1", "orders.search.2"] {
        let mean = Estimate::over(&reports, |r| component(r, g).mean_ms.unwrap());
        assert_theory(
            &format!("{g}: publish to delivery (ms)"),
            mean,
            theory,
            HDR_RESOLUTION,
            0.06,
        );
        let backlog = Estimate::over(&reports, |r| component(r, g).mean_queue.unwrap());
        // Little: mean backlog = λ × mean wait.
        assert_theory(
            &format!("{g}: mean backlog"),
            backlog,
            160.0 * c / 40.0,
            0.0,
            0.1,
        );
    }
    // The cost side: every message is copied to each of the 3 groups.
    for r in &reports {
        let published = component(r, "orders").requests;
        // runs.csv counts to the end of the run (requests still in the app at the end of
        // the window publish after it), components.csv to the end of the window.
        let copies = metric(r, "jobs_enqueued") as u64;
        assert!(
            copies.is_multiple_of(3) && copies >= 3 * published && copies <= 3 * published + 60
        );
        for g in ["orders.email", "orders.search.1", "orders.search.2"] {
            assert_eq!(component(r, g).requests, published);
        }
        let busy = component(r, "orders").utilization.unwrap();
        assert!(
            (busy - 0.8).abs() < 0.03,
            "utilization of all workers {busy}"
        );
    }
}

#[test]
fn delivered_to_all_is_the_max_of_the_groups_times() {
    // Ten groups at load 0.25: a message is delivered to all when the slowest group has
    // delivered it, E[max of 10 M/M/c times] = 59.0 ms (H_10 × 20 ms = 58.6 without the
    // waits), against 20.2 ms for one group.
    let one = replicate(&topic(50.0, r#"[{ name = "s" }]"#), plan(15_600, 10, 65));
    let ten = replicate(
        &topic(50.0, r#"[{ name = "s", count = 10 }]"#),
        plan(15_600, 10, 65),
    );
    for (reports, n) in [(&one, 1), (&ten, 10)] {
        let all = Estimate::over(reports, |r| component(r, "orders").mean_ms.unwrap());
        // The groups share the arrivals, so their times are slightly dependent: a bias of
        // well under 1 % at this load.
        assert_theory(
            &format!("delivered to all of {n} groups (ms)"),
            all,
            max_of_n_mmc_ms(n, 4, 50.0, 0.02),
            0.01,
            0.03,
        );
    }
}

/// Runs `m` with instances.csv rows (the groups' backlog and lag per second).
fn with_series(m: &ModelConfig, seed: u64) -> RunReport {
    let opts = RunOptions {
        timeseries: Some(SimTime::from_secs(1)),
        ..RunOptions::new(seed, SimTime::from_secs(65), SimTime::from_secs(5))
    };
    let mut w = m.build(&opts).expect("builds");
    w.enable_instance_series();
    w.run().expect("runs")
}

#[test]
fn a_slow_subscriber_falls_behind_alone() {
    // One group of three takes exp(50 ms): its 4 workers clear 80/s of the 100/s published,
    // so its backlog grows by λ − cμ = 20 messages a second and its lag (the age of the
    // head of its backlog, backlog / λ) by 0.2 s a second; the two others stay an M/M/c at
    // load 0.5 (21.74 ms), and the publisher's requests take what they take without it.
    let groups = r#"[{ name = "fast", count = 2 }, { name = "slow", job_time = "exp(50ms)" }]"#;
    let slow = topic(100.0, groups);
    let reports: Vec<RunReport> = (0..24).map(|k| with_series(&slow, 15_700 + k)).collect();
    let growth = Estimate::over(&reports, |r| {
        let at = |t: f64| {
            r.instance_series
                .iter()
                .find(|s| s.instance == "orders.slow" && s.t_s == t)
                .expect("a row per second")
                .clone()
        };
        (at(60.0).queue_len - at(10.0).queue_len) / 50.0
    });
    assert_theory("slow group's backlog growth (/s)", growth, 20.0, 0.0, 0.12);
    let lag = Estimate::over(&reports, |r| {
        let s = r
            .instance_series
            .iter()
            .find(|s| s.instance == "orders.slow" && s.t_s == 59.0)
            .unwrap();
        s.lag_ms.unwrap() / 60.0 / 1e3
    });
    assert_theory("slow group's lag per second of run", lag, 0.2, 0.0, 0.12);
    let fast = Estimate::over(&reports, |r| component(r, "orders.fast.1").mean_ms.unwrap());
    let theory = (erlang_c(4, 2.0) / 100.0 + 0.02) * 1e3;
    assert_theory(
        "a fast group beside the slow one (ms)",
        fast,
        theory,
        HDR_RESOLUTION,
        0.05,
    );
    for r in &reports {
        // The fast groups' lag never builds up.
        let worst = r
            .instance_series
            .iter()
            .filter(|s| s.instance == "orders.fast.2")
            .map(|s| s.lag_ms.unwrap())
            .fold(0.0, f64::max);
        assert!(worst < 500.0, "fast group lag {worst} ms");
        assert!(component(r, "orders.slow").utilization.unwrap() > 0.99);
    }
    // The publisher: the same requests, the same latencies with one group, ten, or a slow one.
    let base = with_series(&topic(100.0, r#"[{ name = "s" }]"#), 15_700);
    for other in [
        &reports[0],
        &with_series(&topic(100.0, r#"[{ name = "s", count = 10 }]"#), 15_700),
    ] {
        assert_eq!(other.quantiles, base.quantiles);
        for m in ["requests", "ok", "latency_mean_ms", "p99_ms"] {
            assert_eq!(metric(other, m), metric(&base, m), "{m}");
        }
        assert_eq!(
            component(other, "app").mean_ms,
            component(&base, "app").mean_ms
        );
    }
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn pub_sub_experiment_and_its_estimate_agree() {
    // The shipped experiment: the estimate's rows (each group by Erlang C, delivered to all
    // by ∫(1 − ∏F)) against the measured means, and none where the slow group saturates.
    let out = tmp_dir("pubsub-experiment");
    let file = repo().join("experiments/pub-sub.toml");
    dssim_ok(
        Path::new(env!("CARGO_TARGET_TMPDIR")),
        &[
            "run",
            file.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
    );
    let rows = read_csv(&out.join("components.csv"));
    let mut checked = 0;
    for r in &rows {
        let kind = r["kind"].as_str();
        if kind != "subscriber" && r["component"] != "orders" {
            continue;
        }
        if r["component"].ends_with("slow") || r["predicted_mean_ms"].is_empty() {
            // Saturated: the slow group and the topic beside it have no finite time.
            assert!(
                r["predicted_mean_ms"].is_empty(),
                "a saturated group gets no prediction: {r:?}"
            );
            assert!(num(r, "mean_ms") > 1000.0, "{r:?}");
            continue;
        }
        let (got, want) = (num(r, "mean_ms"), num(r, "predicted_mean_ms"));
        assert!(
            (got - want).abs() < 0.06 * want,
            "{}: measured {got} ms, predicted {want} ms",
            r["component"]
        );
        checked += 1;
    }
    // Runs of 1, 3, 10 groups (two replications each), topic rows included.
    assert_eq!(checked, 2 * (2 + 4 + 11) + 2 * 2, "rows checked");
    let estimate = dssim(&["estimate", file.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&estimate.stdout).to_string();
    assert!(estimate.status.success(), "{text}");
    assert!(text.contains("orders.sub"), "{text}");
}

#[test]
fn bad_subscribers_are_input_errors() {
    let cases = [
        (
            r#"[{ name = "a" }, { name = "a" }]"#,
            "",
            "queues.orders.subscribers[1].name",
        ),
        (
            r#"[{ name = "a", count = 0 }]"#,
            "",
            "queues.orders.subscribers[0].count",
        ),
        (
            r#"[{ name = "a", workers = 0 }]"#,
            "",
            "queues.orders.subscribers[0].workers",
        ),
        (
            r#"[{ name = "a" }]"#,
            "capacity = 10",
            "queues.orders.capacity",
        ),
        (
            r#"[{ name = "a", failure_rate = 1.5 }]"#,
            "",
            "queues.orders.subscribers[0].failure_rate",
        ),
    ];
    for (groups, extra, path) in cases {
        let text = format!(
            "[[clients]]\nname = \"users\"\ntarget = \"app\"\nrate = 10\n[[services]]\nname = \"app\"\nservice_time = \"exp(5ms)\"\n[[queues]]\nname = \"orders\"\nproducer = \"app\"\njob_time = \"exp(20ms)\"\n{extra}\nsubscribers = {groups}\n"
        );
        let m: ModelConfig = toml::from_str(&text).expect("parses");
        let errs = m.validate().expect_err(path);
        assert!(
            errs.iter().any(|e| e.to_string().contains(path)),
            "{path}: {errs:?}"
        );
    }
}

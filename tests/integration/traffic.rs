//! Traffic tier: load-balancing algorithms against queueing theory, weighted round robin,
//! health checks after a kill, retry storms and budgets, non-stationary arrivals.

use std::path::Path;

use dssim_components::{ModelConfig, RunOptions, RunReport, World};
use dssim_engine::SimTime;

use dssim_lab::source::Source;

use crate::support::{metric, model, run};

fn opts(seed: u64, duration: f64, warmup: f64, series: Option<f64>) -> RunOptions {
    RunOptions {
        timeseries: series.map(SimTime::from_secs_f64),
        ..RunOptions::new(
            seed,
            SimTime::from_secs_f64(duration),
            SimTime::from_secs_f64(warmup),
        )
    }
}

fn world(m: &ModelConfig, o: &RunOptions) -> World {
    m.build(o).unwrap_or_else(|e| panic!("build failed: {e:?}"))
}

fn lb_model(n: usize, lambda: f64, algorithm: &str) -> ModelConfig {
    // n servers of rate mu = 100/s (exp(10ms)), arrivals lambda * n * mu: one time unit of
    // the supermarket model is 10 ms.
    model(&format!(
        r#"
[[clients]]
name = "users"
target = "lb"
rate = {rate}
[[load_balancers]]
name = "lb"
backends = "app"
algorithm = "{algorithm}"
[[services]]
name = "app"
instances = {n}
workers = 1
service_time = "exp(10ms)"
"#,
        rate = lambda * n as f64 * 100.0
    ))
}

fn mean_and_se(xs: &[f64]) -> (f64, f64) {
    let n = xs.len() as f64;
    let m = xs.iter().sum::<f64>() / n;
    let var = xs.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (n - 1.0);
    (m, (var / n).sqrt())
}

/// Mitzenmacher's supermarket model, n → ∞: T_d = Σ_{i≥1} λ^((d^i − d)/(d − 1)).
fn supermarket_t(lambda: f64, d: f64) -> f64 {
    (1..40)
        .map(|i| lambda.powf((d.powi(i) - d) / (d - 1.0)))
        .sum()
}

#[test]
fn power_of_two_and_least_connections_beat_random_and_round_robin() {
    // 50 servers at load 0.9. Mean sojourn in units of the mean service time (10 ms).
    let (n, lambda) = (50, 0.9);
    let o = |seed| opts(seed, 50.0, 10.0, None);
    let reps: Vec<u64> = (1..=4).collect();
    let mut mean = std::collections::BTreeMap::new();
    let mut p99 = std::collections::BTreeMap::new();
    for alg in ["random", "round_robin", "least_connections", "power_of_two"] {
        let m = lb_model(n, lambda, alg);
        // Replications only where the value is checked against theory.
        let seeds = if alg == "random" || alg == "power_of_two" {
            &reps[..]
        } else {
            &reps[..1]
        };
        let mut ts = Vec::new();
        for &seed in seeds {
            let r = run(&m, &o(seed));
            assert_eq!(metric(&r, "errors") + metric(&r, "shed"), 0.0);
            ts.push(metric(&r, "latency_mean_ms") / 10.0);
            if seed == 1 {
                p99.insert(alg, metric(&r, "p99_ms") / 10.0);
            }
        }
        mean.insert(alg, ts);
    }
    let m1 = |a: &str| mean[a][0];
    for good in ["least_connections", "power_of_two"] {
        for bad in ["random", "round_robin"] {
            // Same seed (common random numbers); the gaps are several times the noise.
            assert!(
                m1(good) < 0.6 * m1(bad) && p99[good] < 0.6 * p99[bad],
                "{good} (mean {:.3}, p99 {:.3}) should beat {bad} (mean {:.3}, p99 {:.3})",
                m1(good),
                p99[good],
                m1(bad),
                p99[bad]
            );
        }
    }
    // Random splitting of Poisson arrivals: every server is M/M/1, T = 1/(1 − λ) = 10.
    let (t_rand, se_rand) = mean_and_se(&mean["random"]);
    assert!(
        (t_rand - 10.0).abs() < 4.0 * se_rand + 0.02 * 10.0,
        "random: T = {t_rand:.3} ± {se_rand:.3}, M/M/1 says 10"
    );
    // Power of two choices against the supermarket model (n → ∞: 2.614 at λ = 0.9). A
    // finite n runs higher, by O(1/n): long runs (4 × 100 s) give +5.6%, +2.3% and +1.0%
    // at n = 20, 50 and 100, about 1.1/n. So the estimate must not be below the limit by
    // more than its noise (4 standard errors over 4 replications), nor above it by more
    // than 5% (twice the expected bias at n = 50) plus that noise.
    let t_inf = supermarket_t(lambda, 2.0);
    assert!((t_inf - 2.614).abs() < 1e-3, "{t_inf}");
    let (t2, se2) = mean_and_se(&mean["power_of_two"]);
    println!(
        "supermarket d=2 λ=0.9 n={n}: T = {t2:.4} ± {se2:.4} (n→∞: {t_inf:.4}); random {t_rand:.3}, round_robin {:.3}, least_connections {:.3}; p99 {:?}",
        m1("round_robin"),
        m1("least_connections"),
        p99
    );
    assert!(
        t2 > t_inf - 4.0 * se2 && t2 < t_inf * 1.05 + 4.0 * se2,
        "power_of_two: T = {t2:.4} ± {se2:.4}, supermarket n→∞ {t_inf:.4}"
    );
}

#[test]
fn weighted_round_robin_splits_traffic_in_the_weight_ratio() {
    let m = model(
        r#"
[[clients]]
name = "users"
target = "lb"
rate = 400
[[load_balancers]]
name = "lb"
backends = "app"
algorithm = "weighted_round_robin"
weights = [5, 2, 1]
layer = 7
parse = "0.1ms"
[[services]]
name = "app"
instances = 3
workers = 4
service_time = "exp(2ms)"
"#,
    );
    let o = opts(3, 20.0, 2.0, None);
    let mut w = world(&m, &o);
    w.advance(o.duration);
    let Some(dssim_components::node::Node::LoadBalancer(lb)) = w.node("lb") else {
        panic!("no load balancer");
    };
    let routed = lb.stats.routed.clone();
    let total: u64 = routed.iter().sum();
    assert!(total > 7000, "{total}");
    // Smooth WRR is deterministic: each block of 8 requests holds exactly 5, 2 and 1.
    for (i, wgt) in [5u64, 2, 1].iter().enumerate() {
        let expect = total * wgt / 8;
        assert!(
            routed[i].abs_diff(expect) <= 5,
            "backend {i}: {} of {total}, expected {expect}",
            routed[i]
        );
    }
    let r = w.run().expect("conservation");
    let row = r.components.iter().find(|c| c.component == "lb").unwrap();
    assert_eq!(row.kind, "load_balancer");
    assert!(row.requests > 6000 && row.p99_ms.unwrap() > 0.1);
}

#[test]
fn a_killed_instance_gets_traffic_until_the_health_check_notices() {
    // Probes every 1 s (first at 0 s), timeout 200 ms, 3 failures out, 2 successes in.
    let (k, rcv) = (10.3, 20.5);
    let (interval, timeout, unhealthy, healthy) = (1.0, 0.2, 3.0, 2.0);
    let rate = 1000.0;
    let m = model(&format!(
        r#"
[[clients]]
name = "users"
target = "lb"
rate = {rate}
[[load_balancers]]
name = "lb"
backends = "app"
algorithm = "round_robin"
health_check = {{ interval = "1s", timeout = "200ms", healthy = 2, unhealthy = 3 }}
[[services]]
name = "app"
instances = 4
workers = 4
service_time = "exp(1ms)"
[[faults]]
kill = "app.2"
at = "{k}s"
recover = "{rcv}s"
[network]
latency = "uniform(0.2ms, 0.6ms)"
"#
    ));
    let o = opts(5, 30.0, 0.0, Some(0.1));
    let mut w = world(&m, &o);
    let lb = |w: &World| match w.node("lb") {
        Some(dssim_components::node::Node::LoadBalancer(lb)) => {
            (lb.stats.routed[2], lb.stats.changes.clone())
        }
        _ => panic!("no load balancer"),
    };
    w.advance(SimTime::from_secs_f64(rcv - 0.01));
    let (at_recover, changes) = lb(&w);
    assert_eq!(changes.len(), 1, "{changes:?}");
    let out = changes[0].at.as_secs_f64();
    assert!(!changes[0].healthy && changes[0].backend == 2);
    assert!(
        out > k && out <= k + unhealthy * interval + timeout + 1e-9,
        "marked unhealthy at {out}, kill at {k}"
    );
    // Alive again but not yet back in rotation: no traffic until `healthy` successes.
    let back_bound = rcv + healthy * interval + timeout;
    w.advance(SimTime::from_secs_f64(rcv + 1.0));
    assert_eq!(
        lb(&w).0,
        at_recover,
        "traffic before the health check passed"
    );
    w.advance(SimTime::from_secs_f64(back_bound + 1.0));
    let (after, changes) = lb(&w);
    assert_eq!(changes.len(), 2, "{changes:?}");
    let back = changes[1].at.as_secs_f64();
    assert!(changes[1].healthy && back > rcv && back <= back_bound + 1e-9);
    // Round robin over four: a quarter of a second's requests, give or take.
    assert!(after - at_recover > 150, "{after} - {at_recover}");
    let r = w.run().expect("conservation");
    // Errors: the requests routed to the dead instance between the kill and the
    // decision, a quarter of the arrivals (round robin), Poisson in number.
    let errors = metric(&r, "errors");
    let expect = rate * (out - k) / 4.0;
    println!(
        "kill at {k}s: out of rotation at {out}s, back at {back}s; errors {errors} (expected {expect:.0})"
    );
    assert!(
        (errors - expect).abs() < 4.0 * expect.sqrt() + 5.0,
        "errors {errors}, expected {expect:.0}"
    );
    let rows_with_errors: Vec<f64> = r
        .series
        .iter()
        .filter(|s| s.errors > 0)
        .map(|s| s.t_s)
        .collect();
    let (first, last) = (rows_with_errors[0], *rows_with_errors.last().unwrap());
    assert!(
        first >= k - 0.1 - 1e-9 && last <= out + 1e-9,
        "errors in {rows_with_errors:?}"
    );
    // The instance count dips while app.2 is dead.
    let inst = |t: f64| {
        r.series
            .iter()
            .find(|s| (s.t_s - t).abs() < 1e-6)
            .unwrap()
            .instances
    };
    assert_eq!((inst(5.0), inst(15.0), inst(25.0)), (4.0, 3.0, 4.0));
    assert_eq!(metric(&r, "timeouts") + metric(&r, "dropped"), 0.0);
}

fn storm_model(budget: Option<f64>) -> ModelConfig {
    // Capacity 1000/s (10 workers × 100/s); offered 800/s. Attempts time out after 100 ms
    // and are retried up to 3 times. A gray failure (4× slower, 10 s to 15 s) is the
    // trigger; what happens after it is over is the question.
    let budget = budget.map_or(String::new(), |b| format!(", budget = {b}"));
    model(&format!(
        r#"
[[clients]]
name = "users"
target = "app"
rate = 800
timeout = "100ms"
retries = {{ max = 3, backoff = "10ms", multiplier = 2.0, jitter = true{budget} }}
[[services]]
name = "app"
instances = 1
workers = 10
queue = 200
service_time = "exp(10ms)"
[[faults]]
slow = "app.0"
factor = 4.0
at = "10s"
until = "15s"
"#
    ))
}

#[test]
fn retries_without_a_budget_keep_a_storm_going_and_a_budget_ends_it() {
    // Measured window: 25 s to 45 s, well after the trigger ended.
    let o = opts(11, 45.0, 25.0, None);
    let storm = run(&storm_model(None), &o);
    let calm = run(&storm_model(Some(0.1)), &o);
    // Same seed, same everything: jittered backoffs draw from the client's own stream.
    assert_eq!(storm, run(&storm_model(None), &o), "not deterministic");
    let amp = |r: &RunReport| {
        // The client's count of attempts and the server's count of arrivals agree.
        let app = r.components.iter().find(|c| c.component == "app").unwrap();
        let a = metric(r, "attempts") / metric(r, "requests");
        let served = app.requests as f64 / metric(r, "requests");
        assert!(
            (a - served).abs() < 0.05 * a,
            "attempts {a}, arrivals {served}"
        );
        a
    };
    let (a_storm, a_calm) = (amp(&storm), amp(&calm));
    let (g_storm, g_calm) = (
        metric(&storm, "availability"),
        metric(&calm, "availability"),
    );
    println!(
        "retry storm: attempts/request {a_storm:.2}, availability {g_storm:.3}; with budget 0.1: {a_calm:.3}, {g_calm:.4}"
    );
    // Without a budget every request uses all 4 attempts and almost none succeeds: the
    // server is busy with attempts the clients have given up on (metastable failure).
    assert!(a_storm > 3.5, "attempts per request {a_storm}");
    assert!(g_storm < 0.1, "availability {g_storm}");
    // With a budget of 10%, attempts stay within 1.1 per request plus the bucket's burst,
    // the load falls back under capacity and nearly everything succeeds.
    assert!(a_calm < 1.1 + 0.01, "attempts per request {a_calm}");
    assert!(g_calm > 0.99, "availability {g_calm}");
    // During the trigger the budget binds: retries ≤ 10% of requests + the bucket.
    let during = run(&storm_model(Some(0.1)), &opts(11, 16.0, 10.0, None));
    let req = metric(&during, "requests");
    let a = metric(&during, "attempts") / req;
    println!("during the trigger with budget 0.1: attempts/request {a:.3}");
    assert!(a > 1.05, "the budget should be in use: {a}");
    assert!(
        a <= 1.1 + dssim_components::client::RETRY_BUCKET / req + 1e-9,
        "attempts per request {a}"
    );
}

#[test]
fn steps_diurnal_and_trace_arrivals_follow_their_rates() {
    let base = r#"
[[services]]
name = "app"
instances = 1
workers = 64
service_time = "exp(1ms)"
[[clients]]
name = "users"
target = "app"
"#;
    let count = |r: &RunReport, from: f64, to: f64| -> f64 {
        r.series
            .iter()
            .filter(|s| s.t_s >= from - 1e-9 && s.t_s < to - 1e-9)
            .map(|s| s.arrivals_rps)
            .sum::<f64>()
    };
    // Steps: 100/s for 10 s, then 2000/s. Counts are Poisson: within 4 sd.
    let m = model(&format!(
        "{base}arrival = \"steps\"\nsteps = [{{ at = \"0s\", rate = 100 }}, {{ at = \"10s\", rate = 2000 }}]\n"
    ));
    let r = run(&m, &opts(2, 15.0, 0.0, Some(1.0)));
    for (from, to, rate) in [(0.0, 10.0, 100.0), (10.0, 15.0, 2000.0)] {
        let (n, e) = (count(&r, from, to), rate * (to - from));
        assert!(
            (n - e).abs() < 4.0 * e.sqrt(),
            "steps {from}-{to}: {n} vs {e}"
        );
    }
    // Diurnal: 100/s at t = 0 rising to 900/s at half the 20 s period. Over the middle half
    // of the period the mean rate is 500 + 400·(2/π) ≈ 754.6/s; over the outer half 245.4/s.
    let m = model(&format!(
        "{base}arrival = \"diurnal\"\nrate = 100\npeak = 900\nperiod = \"20s\"\n"
    ));
    let r = run(&m, &opts(2, 20.0, 0.0, Some(1.0)));
    let mid = 500.0 + 400.0 * 2.0 / std::f64::consts::PI;
    let outer = 1000.0 - mid;
    for (n, e) in [
        (count(&r, 5.0, 15.0), mid * 10.0),
        (count(&r, 0.0, 5.0) + count(&r, 15.0, 20.0), outer * 10.0),
    ] {
        assert!((n - e).abs() < 4.0 * e.sqrt(), "diurnal: {n} vs {e}");
    }
    // Trace: exactly the listed arrivals (those before the end), whatever their order.
    let m = model(&format!(
        "{base}arrival = \"trace\"\ntrace = [0.5, 0.25, 1.0, 1.0, 3.5, 9.0]\n"
    ));
    let r = run(&m, &opts(2, 5.0, 0.0, Some(1.0)));
    assert_eq!(metric(&r, "requests"), 5.0);
    assert_eq!(metric(&r, "ok"), 5.0);
    // [0 s, 1 s) holds 0.25 and 0.5; the two at 1.0 open the next row.
    assert_eq!(r.series[0].arrivals_rps, 2.0);
    assert_eq!(r.series[1].arrivals_rps, 2.0);
}

#[test]
fn model_files_of_the_traffic_tier_load_and_run() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("models");
    for f in [
        "load-balancer.toml",
        "faults.toml",
        "retry-storm.toml",
        "spike.toml",
        "diurnal.toml",
        "trace.toml",
    ] {
        let exp =
            dssim_lab::Experiment::load(&root.join(f)).unwrap_or_else(|e| panic!("{f}: {e:?}"));
        let mut spec = exp.spec(0).unwrap_or_else(|e| panic!("{f}: {e:?}"));
        // Keep the test short: the first 20 simulated seconds.
        spec.opts.duration = spec.opts.duration.min(SimTime::from_secs(20));
        spec.opts.warmup = SimTime::ZERO;
        let r = dssim_lab::run_one(&spec).unwrap_or_else(|e| panic!("{f}: {e}"));
        assert!(metric(&r, "requests") > 0.0, "{f}");
    }
}

#[test]
fn traffic_errors_point_at_the_offending_value() {
    let bad = |text: &str| -> Vec<String> {
        let m: ModelConfig = Source::from_text(Path::new("t.toml"), text.to_string())
            .parse()
            .expect("parses");
        m.validate()
            .expect_err("should be invalid")
            .into_iter()
            .map(|e| e.to_string())
            .collect()
    };
    let svc = "[[services]]\nname = \"app\"\ninstances = 3\nservice_time = \"1ms\"\n";
    // (the client `u` after its name and what follows it, where the first error points,
    // what it also says)
    let cases: [(&str, &str, &str); 6] = [
        (
            "target = \"lb\"\nrate = 1\n[[load_balancers]]\nname = \"lb\"\nbackends = \"ap\"\n",
            "load_balancers.lb.backends",
            "did you mean \"app\"",
        ),
        (
            "target = \"lb\"\nrate = 1\n[[load_balancers]]\nname = \"lb\"\nbackends = \"app\"\nalgorithm = \"weighted_round_robin\"\nweights = [1, 2]\n",
            "load_balancers.lb.weights",
            "",
        ),
        (
            "target = \"app\"\nrate = 1\n[[faults]]\nkill = \"app.3\"\nat = \"1s\"\n",
            "faults.0.kill",
            "app.2",
        ),
        ("target = \"app\"\narrival = \"steps\"\n", "clients.u.steps", ""),
        ("target = \"app\"\nrate = 1\npeak = 5\n", "clients.u.peak", ""),
        (
            "target = \"app\"\nrate = 1\nretries = { max = 2, multiplier = 0.5 }\n",
            "clients.u.retries.multiplier",
            "",
        ),
    ];
    for (client, path, says) in cases {
        let e = bad(&format!("{svc}[[clients]]\nname = \"u\"\n{client}"));
        assert!(
            e[0].starts_with(path) && e[0].contains(says),
            "{client}: {e:?}"
        );
    }
}

#[test]
fn layer_seven_pays_its_parse_time_on_every_request() {
    let lb = |layer: u32| {
        model(&format!(
            r#"
[[clients]]
name = "users"
target = "lb"
rate = 500
[[load_balancers]]
name = "lb"
backends = "app"
layer = {layer}
parse = "0.25ms"
[[services]]
name = "app"
instances = 2
workers = 2
service_time = "exp(2ms)"
"#
        ))
    };
    // Round robin draws nothing at random and the parse time is constant, so the two runs
    // see the same arrivals and service times, shifted by exactly the parse time.
    let o = opts(4, 20.0, 2.0, None);
    let (l4, l7) = (run(&lb(4), &o), run(&lb(7), &o));
    let d = metric(&l7, "latency_mean_ms") - metric(&l4, "latency_mean_ms");
    assert!((d - 0.25).abs() < 0.01, "layer 7 - layer 4 = {d} ms");
}

#[test]
fn a_gray_instance_passes_health_checks_and_only_load_aware_balancing_avoids_it() {
    // app.1 is 5× slower from the start: 2 workers at 25 ms = 80/s, but round robin sends it
    // 200/s. Its health probes still succeed, so it stays in rotation.
    let m = |alg: &str| {
        model(&format!(
            r#"
[[clients]]
name = "users"
target = "lb"
rate = 800
[[load_balancers]]
name = "lb"
backends = "app"
algorithm = "{alg}"
health_check = {{ interval = "1s", timeout = "100ms" }}
[[services]]
name = "app"
instances = 4
workers = 2
service_time = "exp(5ms)"
[[faults]]
slow = "app.1"
factor = 5.0
at = "0s"
"#
        ))
    };
    let o = opts(6, 20.0, 2.0, None);
    let mut p99 = Vec::new();
    for alg in ["round_robin", "least_connections"] {
        let mut w = world(&m(alg), &o);
        w.advance(o.duration);
        match w.node("lb") {
            Some(dssim_components::node::Node::LoadBalancer(lb)) => {
                assert!(lb.stats.changes.is_empty(), "{:?}", lb.stats.changes);
            }
            _ => panic!("no load balancer"),
        }
        p99.push(metric(&w.run().expect("conservation"), "p99_ms"));
    }
    println!(
        "gray instance: p99 round_robin {:.1} ms, least_connections {:.1} ms",
        p99[0], p99[1]
    );
    assert!(p99[0] > 10.0 * p99[1], "{p99:?}");
}

#[test]
fn every_request_ends_once_with_loss_partitions_kills_and_retries() {
    // Lost messages become `dropped` answers, partitions cut the balancer from two
    // instances for a while, one instance dies for good; clients time out and retry.
    for alg in [
        "power_of_two",
        "ip_hash",
        "consistent_hash",
        "least_connections",
    ] {
        let m = model(&format!(
            r#"
[[clients]]
name = "users"
target = "lb"
rate = 600
user_ids = 500
keys = 5000
popularity = "zipf(0.9)"
timeout = "50ms"
retries = {{ max = 2, backoff = "5ms", jitter = true, budget = 0.2 }}
[[load_balancers]]
name = "lb"
backends = "app"
algorithm = "{alg}"
layer = 7
health_check = {{ interval = "500ms", timeout = "100ms", healthy = 1, unhealthy = 2 }}
[[services]]
name = "app"
instances = 4
workers = 2
queue = 20
service_time = "exp(4ms)"
[[faults]]
kill = "app.3"
at = "4s"
[network]
latency = "uniform(0.2ms, 0.6ms)"
loss = 0.01
[[network.partitions]]
sides = [["lb"], ["app.0", "app.1"]]
from = "6s"
until = "8s"
"#
        ));
        let r = run(&m, &opts(8, 12.0, 1.0, Some(1.0)));
        let sum: f64 = ["ok", "errors", "timeouts", "shed", "dropped"]
            .iter()
            .map(|k| metric(&r, k))
            .sum();
        assert_eq!(sum, metric(&r, "requests"), "{alg}");
        assert!(metric(&r, "attempts") > metric(&r, "requests"), "{alg}");
        assert_eq!(r.series.last().map(|s| s.instances), Some(3.0), "{alg}");
    }
}

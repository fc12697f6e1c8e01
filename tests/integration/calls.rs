//! Service-to-service calls, circuit breakers and bulkheads: scatter-gather against the
//! maximum of N exponentials, sequential calls against the sum, a bulkhead's refusals
//! against Erlang B, the breaker's behaviour on a failing dependency, and bad input.

use dssim_components::circuit_breaker::BreakerPhase;
use dssim_components::node::Node;
use dssim_components::RunOptions;
use dssim_engine::SimTime;

use crate::support::{
    assert_check_rejects, assert_theory, component, metric, model, replicate, run, tmp_dir,
    users_to, Estimate, Plan, HDR_RESOLUTION,
};

/// H_n = 1 + 1/2 + ... + 1/n.
fn harmonic(n: u32) -> f64 {
    (1..=n).map(|k| 1.0 / f64::from(k)).sum()
}

#[test]
fn scatter_gather_latency_is_the_max_of_n_exponentials() {
    // Eight calls at once to shards that never queue, each exp(10 ms): the request takes
    // the maximum of 8 exponentials, mean H_8 × 10 ms, P(max ≤ t) = (1 − e^(−t/10))^8.
    let n = 8;
    let m = model(&users_to(
        "front",
        200,
        &[],
        &format!(
            r#"
workers = 1000
service_time = "const(0ms)"
calls = [{{ to = "search", count = {n} }}]

[[services]]
name = "search"
workers = 100000
service_time = "exp(10ms)"
"#
        ),
    ));
    let reports = replicate(&m, Plan::new(1, 31, 12, 15_100));
    let mean = Estimate::over(&reports, |r| metric(r, "latency_mean_ms"));
    assert_theory(
        "scatter-gather over 8, mean latency (ms)",
        mean,
        10.0 * harmonic(n),
        HDR_RESOLUTION,
        0.02,
    );
    let p99 = Estimate::over(&reports, |r| metric(r, "p99_ms"));
    let theory_p99 = -10.0 * (1.0 - 0.99f64.powf(1.0 / f64::from(n))).ln();
    assert_theory(
        "scatter-gather over 8, p99 (ms)",
        p99,
        theory_p99,
        HDR_RESOLUTION,
        0.05,
    );
    // One call fewer would be visibly faster: the max of 7 is 0.125 × 10 ms below.
    assert!(mean.mean > 10.0 * harmonic(n - 1) + 0.6, "{mean:?}");
    // The cost side: N calls per request.
    let r = &reports[0];
    assert_eq!(
        component(r, "front.calls.search").requests,
        u64::from(n) * component(r, "front").requests
    );
    assert_eq!(
        component(r, "search").requests,
        component(r, "front.calls.search").requests
    );
}

#[test]
fn sequential_calls_add_up_and_parallel_ones_wait_for_the_slowest() {
    // a, then b and c together: exp(10) + max(exp(20), exp(30)), whose mean is
    // 10 + 20 + 30 − 1/(1/20 + 1/30) = 48 ms; all three in sequence take 60 ms.
    let text = |parallel: bool| {
        users_to(
            "front",
            100,
            &[],
            &format!(
                r#"
workers = 1000
service_time = "const(0ms)"
calls = [{{ to = "a" }}, {{ to = "b" }}, {{ to = "c", parallel = {parallel} }}]

[[services]]
name = "a"
workers = 10000
service_time = "exp(10ms)"

[[services]]
name = "b"
workers = 10000
service_time = "exp(20ms)"

[[services]]
name = "c"
workers = 10000
service_time = "exp(30ms)"
"#
            ),
        )
    };
    let plan = Plan::new(1, 31, 12, 15_200);
    for (parallel, theory) in [
        (false, 60.0),
        (true, 10.0 + 50.0 - 1.0 / (1.0 / 20.0 + 1.0 / 30.0)),
    ] {
        let reports = replicate(&model(&text(parallel)), plan);
        let mean = Estimate::over(&reports, |r| metric(r, "latency_mean_ms"));
        assert_theory(
            &format!("calls a, b, c (c parallel: {parallel}), mean latency (ms)"),
            mean,
            theory,
            HDR_RESOLUTION,
            0.03,
        );
    }
}

#[test]
fn bulkhead_refusals_match_erlang_b() {
    // Poisson calls at 400/s into a bulkhead of 5, each held exp(10 ms) by a callee that
    // never queues: the bulkhead is an M/M/5/5 loss system with 4 Erlangs offered, and
    // the share of calls it refuses is Erlang B(5, 4) ≈ 0.199.
    let m = model(&users_to(
        "front",
        400,
        &[],
        r#"
workers = 1000
service_time = "const(0ms)"
calls = [{ to = "dep", pool = 5, optional = true }]

[[services]]
name = "dep"
workers = 100000
service_time = "exp(10ms)"
"#,
    ));
    let reports = replicate(&m, Plan::new(1, 31, 12, 15_300));
    let refused = Estimate::over(&reports, |r| {
        component(r, "front.calls.dep.refused").requests as f64
            / component(r, "front.calls.dep").requests as f64
    });
    let b = dssim_lab::queueing::erlang_b(5, 4.0);
    assert_theory(
        "bulkhead of 5 at 4 Erlangs, share refused",
        refused,
        b,
        0.0,
        0.03,
    );
    // Carried load: the bulkhead's mean occupancy is a(1 − B) calls.
    let occupancy = Estimate::over(&reports, |r| {
        component(r, "front.calls.dep")
            .mean_queue
            .expect("in flight")
    });
    assert_theory(
        "bulkhead of 5 at 4 Erlangs, mean calls in flight",
        occupancy,
        4.0 * (1.0 - b),
        0.0,
        0.03,
    );
    // Optional calls: refusals do not fail requests.
    for r in &reports {
        assert_eq!(metric(r, "errors"), 0.0);
    }
}

fn breaker_model(to: &str) -> dssim_components::ModelConfig {
    model(&users_to(
        "front",
        500,
        &[],
        &format!(
            r#"
workers = 100
service_time = "exp(1ms)"
calls = [{{ to = "{to}", optional = true }}]

[[services]]
name = "dep"
workers = 100
service_time = "exp(2ms)"

[[circuit_breakers]]
name = "cb"
target = "dep"
failure_threshold = 5
reset_timeout = "2s"
half_open_probes = 3

[[faults]]
kill = "dep"
at = "10s"
recover = "30s"
"#
        ),
    ))
}

#[test]
fn a_breaker_sheds_load_from_a_dead_dependency_and_closes_after_it_recovers() {
    let opts = RunOptions::new(15_400, SimTime::from_secs(40), SimTime::ZERO);
    // Without a breaker every call in the 20 s outage goes to the dead service and fails.
    let plain = run(&breaker_model("dep"), &opts);
    let failed_plain = component(&plain, "front.calls.dep.failed").requests;
    assert!(failed_plain > 9_000, "{failed_plain}");
    // With it: the dead service answers at once with an error, so exactly
    // `failure_threshold` calls fail while it is closed, then one failed trial per
    // reset_timeout (the first failure reopens it); the rest are rejected at once.
    let m = breaker_model("cb");
    let mut world = m.build(&opts).expect("builds");
    world.advance(SimTime::from_secs(29));
    match world.node("cb") {
        Some(Node::Breaker(b)) => assert_eq!(b.state.phase, BreakerPhase::Open),
        _ => panic!("no breaker"),
    }
    let r = world.run().expect("runs");
    let trips = component(&r, "cb.trips").requests;
    let failures = component(&r, "cb.failures").requests;
    let rejected = component(&r, "cb.rejected").requests;
    println!("breaker: trips {trips}, failures {failures}, rejected {rejected}, without it {failed_plain} failed calls");
    // Opened at 10 s, then a failed trial every 2 s until 30 s: 10 or 11 times.
    assert!((10..=11).contains(&trips), "{trips} trips");
    assert_eq!(
        failures,
        5 + (trips - 1),
        "threshold, then one failed trial per reopening"
    );
    assert!(
        failures * 100 < failed_plain,
        "{failures} vs {failed_plain}"
    );
    assert!(rejected + failures >= failed_plain * 9 / 10);
    // Closed again after the recovery (the 3 trials succeeded): nothing rejected late.
    assert_eq!(metric(&r, "errors"), 0.0, "the calls are optional");
    let passed = component(&r, "cb").hit_ratio.expect("calls");
    assert!(passed < 0.6 && passed > 0.4, "{passed}");
}

#[test]
fn bad_calls_and_breakers_are_located_input_errors() {
    let dir = tmp_dir("calls-errors");
    let base = r#"name = "e"
duration = "2s"
seed = 1

[model]
[[model.clients]]
name = "users"
target = "front"
rate = 5

[[model.services]]
name = "front"
service_time = "exp(1ms)"
"#;
    let cases: [(&str, &[&str]); 5] = [
        (
            "calls = [{ to = \"serch\" }]\n\n[[model.services]]\nname = \"search\"\nservice_time = \"exp(1ms)\"\n",
            &["services.front.calls.0.to", "did you mean \"search\"", "bad0.toml:14:17"],
        ),
        (
            "calls = [{ to = \"back\" }]\n\n[[model.services]]\nname = \"back\"\nservice_time = \"exp(1ms)\"\ncalls = [{ to = \"front\" }]\n",
            &["calls.0.to", "front -> back -> front", "never be answered"],
        ),
        (
            "calls = [{ to = \"back\", count = 0, parallel = true }]\n\n[[model.services]]\nname = \"back\"\nservice_time = \"exp(1ms)\"\n",
            &["services.front.calls.0.count", "services.front.calls.0.parallel"],
        ),
        (
            "calls = [{ to = \"cb\" }]\n\n[[model.services]]\nname = \"back\"\nservice_time = \"exp(1ms)\"\n\n[[model.circuit_breakers]]\nname = \"cb\"\ntarget = \"bak\"\nfailure_threshold = 0\n",
            &["circuit_breakers.cb.target", "did you mean \"back\"", "circuit_breakers.cb.failure_threshold"],
        ),
        (
            "calls = [{ to = \"back\", timout = \"1s\" }]\n\n[[model.services]]\nname = \"back\"\nservice_time = \"exp(1ms)\"\n",
            &["timeout"],
        ),
    ];
    for (i, (extra, needles)) in cases.iter().enumerate() {
        assert_check_rejects(
            &dir,
            &format!("bad{i}.toml"),
            &format!("{base}{extra}"),
            needles,
        );
    }
}

#[test]
fn the_estimate_follows_calls_through_a_breaker() {
    // front (1 ms) calls search (10 ms, never queues) through a closed breaker, twice in
    // parallel: the callee takes 2 × 100 calls/s, the caller's time is 1 + H_2 × 10 ms.
    let m = model(&users_to(
        "front",
        100,
        &[],
        r#"
service_time = "exp(1ms)"
workers = 100
calls = [{ to = "cb", count = 2 }]

[[services]]
name = "search"
workers = 100
service_time = "exp(10ms)"

[[services]]
name = "other"
service_time = "exp(1ms)"

[[circuit_breakers]]
name = "cb"
target = "search"
"#,
    ));
    let est = dssim_lab::estimate::estimate(&m);
    let search = est.get("search").expect("the callee is estimated");
    assert!((search.offered_rps - 200.0).abs() < 1e-9, "{search:?}");
    let front = est.get("front").expect("the caller is estimated");
    let t = front.sojourn_ms.unwrap();
    assert!((t - (1.0 + 1.5 * 10.0)).abs() < 1e-6, "front {t} ms");
    assert!(est.get("other").is_some());
    let text = dssim_lab::estimate::render(&m, &est);
    assert!(text.contains("services.front.calls:"), "{text}");
    assert!(
        text.contains("H_N × mean") && text.contains("Erlang B"),
        "{text}"
    );
    assert!(
        text.contains("circuit_breakers: not in this estimate"),
        "{text}"
    );
}

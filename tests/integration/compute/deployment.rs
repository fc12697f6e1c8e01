//! How instances are sized and rolled out: vertical scaling cost, mixed server sizes,
//! local sessions, canary rollouts and rollbacks.

use dssim_components::node::Node;
use dssim_engine::parse_duration;

use super::{build, m, opts, run};
use crate::support::{model, users_to_app};

#[test]
fn cost_grows_faster_than_speed() {
    let text = &users_to_app(
        10,
        &[],
        r#"
instances = 2
service_time = "exp(10ms)"
speed = 2.0
cost = { per_hour = 0.10, exponent = 1.5 }
"#,
    );
    let r = run(text, &opts(1, "3610s", "10s", None));
    let hours = m(&r, "instance_hours");
    assert!((hours - 2.0).abs() < 1e-9, "{hours}");
    let cost = m(&r, "cost");
    assert!((cost - 2.0 * 0.10 * 2f64.powf(1.5)).abs() < 1e-9, "{cost}");
}

/// Mixed server sizes (`speeds`): each instance serves at its own speed and is priced at it.
#[test]
fn mixed_sizes_serve_and_bill_at_each_instance_speed() {
    let text = &users_to_app(
        20,
        &[],
        r#"
instances = 2
workers = 8
service_time = "exp(10ms)"
speeds = [2.0, 0.5]
cost = { per_hour = 0.10, exponent = 1.5 }
"#,
    );
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
        users_to_app(
            100,
            &["user_ids = 50"],
            &format!(
                r#"
instances = 4
workers = 4
service_time = "exp(5ms)"
sessions = "{sessions}"
relogin = "const(50ms)"
"#
            ),
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
    users_to_app(
        400,
        &[],
        &format!(
            r#"
instances = 2
workers = 4
service_time = "exp(5ms)"
canary = {{ error_rate = {error_rate}, steps = [0.05, 0.25, 1.0], start = "5s", every = "10s", max_error_rate = 0.05, check = "2s" }}
"#
        ),
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

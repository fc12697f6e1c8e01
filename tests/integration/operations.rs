//! Operating a fleet: outlier ejection at the load balancer, rolling deploys (readiness,
//! drain), feature-flag kill switches. Each test runs its shipped experiment through the
//! binary and checks the trade-off its comment promises, or a property that must hold.

use std::path::{Path, PathBuf};

use crate::support::{assert_check_rejects, dssim_ok, num, read_csv, tmp_dir, Row};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs `experiments/NAME.toml` with `sets`; returns (points.csv, runs.csv, components.csv).
fn run_experiment(name: &str, sets: &[&str]) -> (Vec<Row>, Vec<Row>, Vec<Row>) {
    let out = tmp_dir(&format!("operations-{name}"));
    let file = repo().join("experiments").join(format!("{name}.toml"));
    let (out_arg, file_arg) = (out.display().to_string(), file.display().to_string());
    let mut args = vec!["run", file_arg.as_str(), "--out", out_arg.as_str()];
    for s in sets {
        args.push("--set");
        args.push(s);
    }
    dssim_ok(Path::new(env!("CARGO_TARGET_TMPDIR")), &args);
    (
        read_csv(&out.join("points.csv")),
        read_csv(&out.join("runs.csv")),
        read_csv(&out.join("components.csv")),
    )
}

/// The components.csv row of `component` in run `run`.
fn component<'a>(rows: &'a [Row], run: &str, component: &str) -> &'a Row {
    rows.iter()
        .find(|r| r["run"] == run && r["component"] == component)
        .unwrap_or_else(|| panic!("no row {component} in run {run}"))
}

/// `dssim check` on `text` written to a scratch file: exit 2 and every needle in stderr.
fn assert_rejected(tag: &str, text: &str, needles: &[&str]) {
    assert_check_rejects(&tmp_dir(tag), "bad.toml", text, needles);
}

/// Round robin without ejection suffers the gray instance (gray-failure: availability
/// below 0.95, p99 of every request above 500 ms); with outlier ejection the slow backend is
/// out within an interval of slowing down, and every ejection time gives availability 1 and
/// a p99 below 300 ms — the shorter the ejection, the more often app.1 comes back slow. The
/// capacity removed is exactly ejections × ejection_time / (window × backends) while the
/// ejections end inside the window, and with latency_factor 3 no healthy backend is ejected.
#[test]
fn outlier_ejection_takes_the_gray_instance_out() {
    let (gray, _, _) = run_experiment(
        "gray-failure",
        &["replications=1", "load_balancers.lb.algorithm=round_robin"],
    );
    let base = num(&gray[0], "p99_all_ms");
    assert!(
        num(&gray[0], "availability") < 0.95 && base > 500.0,
        "{base}"
    );
    let (points, runs, comps) = run_experiment("outlier-ejection", &["replications=1"]);
    let factor = "load_balancers.lb.outlier_ejection.latency_factor";
    let time = "load_balancers.lb.outlier_ejection.ejection_time";
    let mut p99 = Vec::new();
    for p in &points {
        let all = num(p, "p99_all_ms");
        println!(
            "latency_factor {} ejection_time {}: availability {:.4}, p99_all {all:.1} ms (without: {base:.1})",
            p[factor],
            p[time],
            num(p, "availability")
        );
        assert!(num(p, "availability") > 0.999, "{p:?}");
        assert!(all < 300.0, "{p:?}");
        if p[factor] == "3" {
            p99.push(all);
        }
    }
    // 2 s, 10 s, 30 s: the longer app.1 stays out, the fewer slow returns.
    assert!(p99[0] > p99[1] && p99[1] > p99[2], "{p99:?}");
    for r in &runs {
        if r[factor] != "3" {
            continue;
        }
        let run = r["run"].as_str();
        let secs: f64 = r[time].trim_end_matches('s').parse().expect("seconds");
        let ej = component(&comps, run, "lb.ejection");
        let n = num(ej, "requests");
        assert!(n >= 1.0, "app.1 is never ejected: {ej:?}");
        assert_eq!(
            num(component(&comps, run, "lb.false_ejection"), "requests"),
            0.0
        );
        let removed = num(ej, "utilization");
        let expect = n * secs / (50.0 * 4.0);
        println!("ejection_time {secs} s: {n} ejections, capacity removed {removed:.4} (expected {expect:.4})");
        assert!((removed - expect).abs() < 1e-6, "{removed} vs {expect}");
    }
}

#[test]
fn bad_outlier_ejection_is_an_input_error() {
    let model = |oe: &str| {
        format!(
            "name = \"e\"\nduration = \"2s\"\n\n[model]\n[[model.clients]]\nname = \"users\"\n\
             target = \"lb\"\nrate = 5\n\n[[model.load_balancers]]\nname = \"lb\"\n\
             backends = \"app\"\noutlier_ejection = {oe}\n\n[[model.services]]\nname = \"app\"\n\
             instances = 2\nservice_time = \"exp(1ms)\"\n"
        )
    };
    for (i, (oe, needles)) in [
        (
            r#"{ interval = "1s" }"#,
            &["load_balancers.lb.outlier_ejection", "latency_factor"][..],
        ),
        (
            r#"{ latency_factor = 0.5 }"#,
            &[
                "load_balancers.lb.outlier_ejection.latency_factor",
                "above 1",
            ][..],
        ),
        (
            r#"{ error_rate = 1.5 }"#,
            &["load_balancers.lb.outlier_ejection.error_rate"][..],
        ),
        (
            r#"{ latency_factor = 3.0, max_ejection_percent = 0 }"#,
            &["load_balancers.lb.outlier_ejection.max_ejection_percent"][..],
        ),
        (
            r#"{ latency_facter = 3.0 }"#,
            &["did you mean `latency_factor`"][..],
        ),
    ]
    .into_iter()
    .enumerate()
    {
        assert_rejected(&format!("oe-bad{i}"), &model(oe), needles);
    }
}

/// The kill switch between the two pinned flags: always on, the spike to 5,000/s overloads
/// a fleet that serves ~4,200/s with the feature (availability below 0.95, thousands shed);
/// with the kill switch the feature goes off at the first check past the spike's start and
/// back on at the first after its end, so the flag is off 20 s of the 55 s window and the
/// share of feature requests served with it is the share that arrived while it was on:
/// (15 s × 2,500 + 1 s × 5,000 + 19 s × 2,500) / 187,500 = 0.48; availability stays above
/// 0.999 and p99 of every request falls by half or more. Pinned off: no feature, the best
/// latency.
#[test]
fn feature_kill_switch_sheds_the_feature_not_the_requests() {
    let (points, runs, comps) = run_experiment("feature-flags", &["replications=1"]);
    let flag = "services.app.feature.flag";
    let at = |v: &str, col: &str| num(points.iter().find(|p| p[flag] == v).expect("point"), col);
    for v in ["on", "auto", "off"] {
        println!(
            "flag {v}: availability {:.4}, p99_all {:.1} ms, goodput {:.0}/s, shed {}",
            at(v, "availability"),
            at(v, "p99_all_ms"),
            at(v, "goodput_rps"),
            at(v, "shed")
        );
    }
    assert!(at("on", "availability") < 0.95 && at("on", "shed") > 1000.0);
    assert!(at("auto", "availability") > 0.999);
    assert!(at("auto", "p99_all_ms") < at("on", "p99_all_ms") / 2.0);
    assert!(at("off", "p99_all_ms") < at("auto", "p99_all_ms"));
    let run_of = |v: &str| runs.iter().find(|r| r[flag] == v).expect("run")["run"].clone();
    let auto = component(&comps, &run_of("auto"), "app.feature");
    let (off, served) = (num(auto, "utilization"), num(auto, "hit_ratio"));
    println!("auto: flag off {off:.4} of the window (20/55 = 0.3636), served {served:.4} (0.48)");
    // The flag flips at the first request a worker takes after the check: within a
    // millisecond of it at this rate.
    assert!((off - 20.0 / 55.0).abs() < 1e-4, "{off}");
    assert!((served - 0.48).abs() < 0.02, "{served}");
    let on = component(&comps, &run_of("on"), "app.feature");
    assert_eq!((num(on, "utilization"), num(on, "hit_ratio")), (0.0, 1.0));
    let never = component(&comps, &run_of("off"), "app.feature");
    assert_eq!(
        (num(never, "utilization"), num(never, "hit_ratio")),
        (1.0, 0.0)
    );
}

#[test]
fn bad_feature_flags_are_input_errors() {
    let model = |f: &str| {
        format!(
            "name = \"e\"\nduration = \"2s\"\n\n[model]\n[[model.clients]]\nname = \"users\"\n\
             target = \"app\"\nrate = 5\n\n[[model.services]]\nname = \"app\"\n\
             service_time = \"exp(1ms)\"\nfeature = {f}\n"
        )
    };
    for (i, (f, needles)) in [
        (
            r#"{ share = 0.0, extra_time = "1ms" }"#,
            &["services.app.feature.share", "(0, 1]"][..],
        ),
        (
            r#"{ share = 0.3, extra_time = "1ms", kill_above = 0.8, restore_below = 0.9 }"#,
            &["services.app.feature.restore_below", "below `kill_above`"][..],
        ),
        (
            r#"{ share = 0.3, extra_time = "1ms", restore_below = 0.5 }"#,
            &["services.app.feature.restore_below", "needs `kill_above`"][..],
        ),
        (
            r#"{ share = 0.3, extra_time = "1ms", kill_abov = 0.8 }"#,
            &["did you mean `kill_above`"][..],
        ),
        (
            r#"{ share = 0.3, extra_time = "1ms", flag = "of" }"#,
            &["unknown variant `of`", "`auto`, `on`, `off`"][..],
        ),
    ]
    .into_iter()
    .enumerate()
    {
        assert_rejected(&format!("ff-bad{i}"), &model(f), needles);
    }
}

/// A rolling deploy of four instances at 1,000 req/s (start 5 s, warm-up 10 s): with a drain
/// and a readiness check no request fails; liveness only fails about a quarter of the
/// traffic through each instance's warm-up (at least 4 × 10 s × 250/s × 0.9); stopping at
/// once fails what the instance holds and what reaches it before the health checks take it
/// out. The cost side is exact: the deploy takes 4 × start = 20 s with liveness only and
/// no drain, 4 × (start + warmup) = 60 s with readiness, and a drain adds the time to
/// finish the requests held (well under a second each here).
#[test]
fn rolling_deploy_readiness_and_drain_trade_time_for_errors() {
    let (points, runs, comps) = run_experiment("rolling-deploy", &["replications=1"]);
    let (drain, ready) = ("services.app.deploy.drain", "services.app.deploy.readiness");
    let at = |d: &str, r: &str, col: &str| {
        num(
            points
                .iter()
                .find(|p| p[drain] == d && p[ready] == r)
                .expect("point"),
            col,
        )
    };
    let took = |d: &str, r: &str| {
        let run = &runs
            .iter()
            .find(|x| x[drain] == d && x[ready] == r)
            .expect("run")["run"];
        num(component(&comps, run, "app.deploy"), "mean_ms") / 1e3
    };
    for d in ["0s", "30s"] {
        for r in ["false", "true"] {
            println!(
                "drain {d} readiness {r}: errors {}, availability {:.4}, p99_all {:.1} ms, deploy {:.2} s",
                at(d, r, "errors"),
                at(d, r, "availability"),
                at(d, r, "p99_all_ms"),
                took(d, r)
            );
        }
    }
    assert_eq!(at("30s", "true", "errors"), 0.0);
    assert!(at("30s", "true", "availability") > 0.99999);
    for d in ["0s", "30s"] {
        assert!(at(d, "false", "errors") > 0.9 * 4.0 * 10.0 * 250.0, "{d}");
    }
    let stop_at_once = at("0s", "true", "errors");
    assert!(
        stop_at_once > 4.0 * 5.0 && stop_at_once < 4.0 * 3.0 * 250.0,
        "{stop_at_once}"
    );
    assert!((took("0s", "false") - 20.0).abs() < 1e-9);
    assert!((took("0s", "true") - 60.0).abs() < 1e-9);
    let drained = took("30s", "true");
    assert!(drained > 60.0 && drained < 64.0, "{drained}");
}

#[test]
fn bad_deploy_is_an_input_error() {
    let model = |d: &str| {
        format!(
            "name = \"e\"\nduration = \"2s\"\n\n[model]\n[[model.clients]]\nname = \"users\"\n\
             target = \"app\"\nrate = 5\n\n[[model.services]]\nname = \"app\"\n\
             service_time = \"exp(1ms)\"\ndeploy = {d}\n"
        )
    };
    for (i, (d, needles)) in [
        (
            r#"{ at = "1s", start = "0s" }"#,
            &["services.app.deploy.start", "longer than zero"][..],
        ),
        (
            r#"{ at = "1s", drainn = "5s" }"#,
            &["did you mean `drain`"][..],
        ),
        (r#"{ start = "1s" }"#, &["missing field `at`"][..]),
    ]
    .into_iter()
    .enumerate()
    {
        assert_rejected(&format!("deploy-bad{i}"), &model(d), needles);
    }
}

//! Multi-region geo-routing (`[[geo_routers]]`): latency by client region against the
//! round trip, the regional failover after detection, the fail-back, a partition that
//! isolates a region, and located input errors. Each test runs the binary.

use std::path::{Path, PathBuf};

use crate::support::{assert_check_rejects, dssim_ok, num, read_csv, tmp_dir, write, Row};

fn run_file(tag: &str, file: &Path, sets: &[&str]) -> (Vec<Row>, Vec<Row>, Vec<Row>) {
    let out = tmp_dir(tag);
    let (out_arg, file_arg) = (out.display().to_string(), file.display().to_string());
    let mut args = vec![
        "run",
        file_arg.as_str(),
        "--out",
        out_arg.as_str(),
        "--quiet",
    ];
    for s in sets {
        args.push("--set");
        args.push(s);
    }
    dssim_ok(Path::new(env!("CARGO_TARGET_TMPDIR")), &args);
    (
        read_csv(&out.join("runs.csv")),
        read_csv(&out.join("components.csv")),
        read_csv(&out.join("timeseries.csv")),
    )
}

fn row<'a>(rows: &'a [Row], run: &str, component: &str) -> &'a Row {
    rows.iter()
        .find(|r| r["run"] == run && r["component"] == component)
        .unwrap_or_else(|| panic!("no row {component} in run {run}"))
}

fn experiment() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("experiments/multi-region.toml")
}

/// experiments/multi-region.toml. One region: each client's mean latency is 2 × its
/// one-way latency to us-east + 2 ms (balancer to instance and back) + 10 ms of service
/// (14, 92, 212 ms; never below 2 × one-way + service) and the estimate predicts it.
/// Three regions: everyone at 14 ms, except that when app-eu dies (40–80 s) the eu users
/// fail until the router's detection ((unhealthy − 1) × interval + timeout: 2.5 s and
/// 10.5 s, the outage starting on a probe round), so their errors ≈ 200/s × detection;
/// then they cross to us-east at 92 ms until eu passes 2 probes again (fail-back at
/// 81.5 s and 86 s), when the traffic returns to lb-eu.
#[test]
fn geo_routing_latency_by_region_and_failover_follow_the_theory() {
    let (runs, comps, series) = run_file("geo-mr", &experiment(), &[]);
    let entries = "geo_routers.dns.entries";
    let interval = "geo_routers.dns.health_check.interval";
    let window = 110.0;
    for r in &runs {
        let run = r["run"].as_str();
        let mean = |c: &str| num(row(&comps, run, &format!("dns.{c}")), "mean_ms");
        let predicted = |c: &str| num(row(&comps, run, &format!("dns.{c}")), "predicted_mean_ms");
        let iv: f64 = r[interval].trim_end_matches('s').parse().expect("seconds");
        if r[entries] == r#"["lb-us"]"# {
            for (c, one_way) in [("users-us", 1.0), ("users-eu", 40.0), ("users-ap", 100.0)] {
                let theory = 2.0 * one_way + 2.0 + 10.0;
                println!("one region, {c}: mean {:.2} ms (theory {theory})", mean(c));
                assert!(mean(c) >= 2.0 * one_way + 10.0 * 0.95, "{c}: {}", mean(c));
                assert!((mean(c) - theory).abs() < 0.03 * theory, "{c}: {}", mean(c));
                assert!(
                    (predicted(c) - theory).abs() < 0.01,
                    "{c}: {}",
                    predicted(c)
                );
            }
            assert_eq!(num(r, "errors"), 0.0, "nobody is sent to the dead region");
            continue;
        }
        for c in ["users-us", "users-ap"] {
            assert!((mean(c) - 14.0).abs() < 0.05 * 14.0, "{c}: {}", mean(c));
        }
        let detection = 2.0 * iv + 0.5;
        let fail_back = 80.0 + iv + 0.5;
        // The share of the window lb-eu was out of rotation: measured exactly.
        let out = num(row(&comps, run, "dns.lb-eu"), "utilization");
        let expect_out = (fail_back - 40.0 - detection) / window;
        assert!((out - expect_out).abs() < 1e-6, "out {out} vs {expect_out}");
        // Errors: the eu users' requests during detection.
        let eu = row(&comps, run, "dns.users-eu");
        let (requests, avail) = (num(eu, "requests"), num(eu, "hit_ratio"));
        let errors = requests * (1.0 - avail);
        let theory = requests / window * detection;
        println!("interval {iv} s: eu errors {errors:.0} (theory {theory:.0}), out {out:.4}");
        assert!(
            (errors - theory).abs() < 0.1 * theory,
            "{errors} vs {theory}"
        );
        assert!(
            (num(r, "errors") - errors).abs() < 1.0,
            "only eu users fail"
        );
        // The eu users' mean: 92 ms while failed over, 14 ms otherwise (ok requests).
        let over = out * window;
        let home = window - over - detection;
        let theory = (over * 92.0 + home * 14.0) / (over + home);
        println!(
            "interval {iv} s: eu mean {:.2} ms (theory {theory:.2})",
            mean("users-eu")
        );
        assert!((mean("users-eu") - theory).abs() < 0.05 * theory);
        // Traffic returns after the fail-back: lb-eu takes the eu users' requests for the
        // rest of the window.
        let lb_eu = num(row(&comps, run, "dns.lb-eu"), "requests");
        let home_requests = requests / window * (window - over);
        assert!(
            (lb_eu - home_requests).abs() < 0.03 * home_requests,
            "{lb_eu} vs {home_requests}"
        );
        // The time series: errors only in the detection window, p99 up while failed over.
        let rows: Vec<&Row> = series.iter().filter(|s| s["run"] == run).collect();
        for s in &rows {
            let t = num(s, "t_s");
            let in_detection = (40.0..40.0 + detection).contains(&t);
            if !in_detection {
                assert_eq!(num(s, "errors"), 0.0, "errors at {t} s");
            }
            if t >= 40.0 + detection + 1.0 && t < fail_back - 1.0 {
                assert!(num(s, "p99_ms") > 90.0, "p99 at {t} s: {}", s["p99_ms"]);
            }
            if t >= fail_back + 1.0 || (12.0..39.0).contains(&t) {
                assert!(num(s, "p99_ms") < 80.0, "p99 at {t} s: {}", s["p99_ms"]);
            }
        }
    }
}

const PARTITIONED: &str = r#"
name = "geo-partition"
duration = "60s"
warmup = "5s"
seed = 2
replications = 1

[model]
[[model.clients]]
name = "users-us"
target = "dns"
rate = 100
region = "us"
timeout = "1s"

[[model.clients]]
name = "users-eu"
target = "dns"
rate = 100
region = "eu"
timeout = "1s"

[[model.geo_routers]]
name = "dns"
entries = ["app-eu", "app-us"]
health_check = { interval = "1s", timeout = "200ms" }
region = "us"

[[model.services]]
name = "app-us"
instances = 2
workers = 8
service_time = "exp(5ms)"
region = "us"

[[model.services]]
name = "app-eu"
instances = 2
workers = 8
service_time = "exp(5ms)"
region = "eu"

[[model.network.partitions]]
sides = [["app-eu"], ["users-eu", "users-us", "dns", "app-us"]]
from = "20s"
until = "40s"

[model.network]
latency = "1ms"
[model.network.regions]
"us:eu" = "30ms"
"#;

/// A partition that cuts app-eu off from everyone (service entries, no balancer): the
/// router's probes fail, the eu users' requests are lost until detection, then they are
/// served from us at 2 × 30 + 5 ms; after the partition heals,
/// eu passes 2 probes and its users come home. Without health checks every eu request in
/// the partition times out.
#[test]
fn a_partitioned_region_fails_over_and_comes_back() {
    let dir = tmp_dir("geo-part");
    let f = write(&dir, "p.toml", PARTITIONED);
    let (runs, comps, _) = run_file("geo-part-out", &f, &[]);
    let r = &runs[0];
    // Detection: 3 failed rounds (at 20, 21, 22 s) + 0.2 s; the eu users' requests sent
    // to the cut-off region meanwhile are lost (the network drops them):
    // about 100/s × 2.2 s.
    let lost = num(r, "dropped");
    println!("partition: {lost} dropped (theory about 220)");
    assert!((170.0..270.0).contains(&lost), "{lost}");
    let out = num(row(&comps, "0", "dns.app-eu"), "utilization");
    // Out from 22.2 s to 41.2 s (2 successes at 40 and 41 s): 19 s of 55.
    assert!((out - 19.0 / 55.0).abs() < 1e-6, "{out}");
    // The eu users' mean: the requests sent to us (all of app-us's beyond the us users')
    // at 2 × 30 + 5 ms, the rest at home at 2 × 1 + 5 ms.
    let eu = row(&comps, "0", "dns.users-eu");
    let ok = num(eu, "requests") * num(eu, "hit_ratio");
    let crossed = num(row(&comps, "0", "dns.app-us"), "requests")
        - num(row(&comps, "0", "dns.users-us"), "requests");
    let theory = (crossed * 65.0 + (ok - crossed) * 7.0) / ok;
    println!(
        "eu mean {} ms (theory {theory:.2}; {crossed} crossed)",
        eu["mean_ms"]
    );
    assert!((num(eu, "mean_ms") - theory).abs() < 0.02 * theory);
    assert!((crossed - 100.0 * 19.0).abs() < 0.1 * 1900.0, "{crossed}");
    // Without health checks nobody notices: every eu request of the partition is lost.
    let text = PARTITIONED.replace(
        "health_check = { interval = \"1s\", timeout = \"200ms\" }\n",
        "",
    );
    let f = write(&dir, "static.toml", &text);
    let (runs, _, _) = run_file("geo-part-static", &f, &[]);
    let lost = num(&runs[0], "dropped");
    println!("no health checks: {lost} dropped (theory about 2,000)");
    assert!((1800.0..2200.0).contains(&lost), "{lost}");
}

#[test]
fn bad_geo_routers_are_input_errors() {
    let model = |router: &str, target: &str| {
        format!(
            "name = \"g\"\nduration = \"2s\"\n\n[model]\n[[model.clients]]\nname = \"users\"\n\
             target = \"{target}\"\nrate = 5\n\n[[model.geo_routers]]\nname = \"dns\"\n{router}\n\
             [[model.services]]\nname = \"app\"\nservice_time = \"exp(1ms)\"\n\
             [[model.databases]]\nname = \"db\"\nread_time = \"1ms\"\nwrite_time = \"1ms\"\n"
        )
    };
    for (i, (router, target, needles)) in [
        (
            "entries = [\"apq\"]",
            "dns",
            &[
                "geo_routers.dns.entries",
                "no component is named \"apq\"; known names: app",
            ][..],
        ),
        (
            "entries = []",
            "dns",
            &["geo_routers.dns.entries", "at least one"][..],
        ),
        (
            "entries = [\"db\"]",
            "dns",
            &[
                "geo_routers.dns.entries",
                "not a load balancer or a service",
            ][..],
        ),
        (
            "entries = [\"app\"]",
            "dnss",
            &["clients.users.target", "known names: app, dns"][..],
        ),
        (
            "entries = [\"app\"]\nhealth_check = { interval = \"1s\", timeout = \"2s\" }",
            "dns",
            &["geo_routers.dns.health_check.timeout"][..],
        ),
        (
            "entries = [\"app\"]\nttl = 5",
            "dns",
            &["bad.toml:13:7", "a duration needs a unit"][..],
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let dir = tmp_dir(&format!("geo-bad{i}"));
        assert_check_rejects(&dir, "bad.toml", &model(router, target), needles);
    }
}

//! Databases and consistency: replication lag, read routing and read-your-writes,
//! partitions under cp and ap, failover and lost writes, sharding hot spots, the
//! Universal Scalability Law. Every run also checks conservation (`World::run` fails when
//! a request does not end exactly once). Seeds are fixed; tolerances come from the
//! variance of each estimate.

use std::path::Path;

use dssim_components::faults::FaultAction;
use dssim_components::model::RunOptions;
use dssim_components::node::Msg;
use dssim_components::{ModelConfig, RunReport, World};
use dssim_engine::SimTime;
use dssim_lab::source::Source;
use rand::{Rng, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;

use crate::support::{metric, run, users_to_app};

fn model(text: &str) -> ModelConfig {
    Source::from_text(Path::new("model.toml"), text.to_string())
        .parse()
        .unwrap_or_else(|e| panic!("model does not parse: {e:?}"))
}

fn opts(seed: u64, secs: f64, warmup: f64) -> RunOptions {
    RunOptions::new(
        seed,
        SimTime::from_secs_f64(secs),
        SimTime::from_secs_f64(warmup),
    )
}

fn build(m: &ModelConfig, o: &RunOptions) -> World {
    m.build(o)
        .unwrap_or_else(|e| panic!("model does not build: {e:?}"))
}

/// clients -> app (no CPU work, ample workers) -> db, with the database table given.
fn app_db(client: &str, db: &str) -> ModelConfig {
    model(&format!(
        r#"
[[clients]]
name = "users"
target = "app"
{client}

[[services]]
name = "app"
instances = 2
workers = 1000
service_time = "0ms"
database = "db"

[[databases]]
name = "db"
{db}
"#
    ))
}

#[test]
fn replication_lag_follows_the_configured_delay() {
    let m = app_db(
        "rate = 200\nread_ratio = 0.0\nkeys = 1000",
        r#"replicas = 2
read_time = "exp(1ms)"
write_time = "exp(2ms)"
replication = "async"
replication_delay = "exp(30ms)""#,
    );
    let r = run(&m, &opts(11, 60.0, 1.0));
    // One lag sample per write and replica.
    let n = 2.0 * metric(&r, "ok");
    let mean = metric(&r, "repl_lag_mean_ms");
    let se = 30.0 / n.sqrt();
    assert!(
        (mean - 30.0).abs() < 4.0 * se,
        "mean lag {mean} ms, theory 30 ms ± {se}"
    );
    // Quantiles of exp(30 ms): x_q = −30 ln(1−q); se = √(q(1−q)/n) / f(x_q), f = (1−q)/30.
    for (col, q) in [("repl_lag_p50_ms", 0.5), ("repl_lag_p99_ms", 0.99)] {
        let theory = -30.0 * f64::ln(1.0 - q);
        let se = (q * (1.0 - q) / n).sqrt() / ((1.0 - q) / 30.0);
        let got = metric(&r, col);
        // 4 standard errors plus the histogram's 0.1% resolution.
        let tol = 4.0 * se + 0.001 * theory;
        assert!(
            (got - theory).abs() < tol,
            "{col}: {got} ms, theory {theory} ± {tol}"
        );
    }
}

fn ryw_model(read_from: &str) -> ModelConfig {
    app_db(
        "rate = 400\nread_ratio = 0.5\nkeys = 10\nuser_ids = 3",
        &format!(
            r#"replicas = 2
read_time = "exp(1ms)"
write_time = "exp(2ms)"
replication = "async"
replication_delay = "uniform(5ms, 50ms)"
read_from = "{read_from}""#
        ),
    )
}

#[test]
fn primary_reads_and_read_your_writes_routing_never_violate_ryw() {
    let o = opts(5, 30.0, 1.0);
    let primary = run(&ryw_model("primary"), &o);
    assert_eq!(metric(&primary, "ryw_violations"), 0.0);
    assert_eq!(metric(&primary, "stale_reads"), 0.0);
    assert_eq!(metric(&primary, "monotonic_violations"), 0.0);
    // The window (100 ms) is longer than the longest lag (50 ms).
    let ryw = run(&ryw_model("read_your_writes(100ms)"), &o);
    assert_eq!(metric(&ryw, "ryw_violations"), 0.0);
    let replicas = run(&ryw_model("replicas"), &o);
    assert!(metric(&replicas, "ryw_violations") > 10.0);
    assert!(metric(&replicas, "stale_reads") > metric(&replicas, "ryw_violations"));
    assert!(metric(&replicas, "monotonic_violations") > 0.0);
}

/// A random partition schedule over the database nodes and app instances: each side that
/// holds an app instance also holds a database node (otherwise no design could serve it).
fn random_partitions(rng: &mut Xoshiro256PlusPlus) -> String {
    let members = [
        "db.primary",
        "db.replica.0",
        "db.replica.1",
        "app.0",
        "app.1",
    ];
    let mut out = String::new();
    let count = rng.random_range(1..=2);
    for p in 0..count {
        let sides = loop {
            let side: Vec<usize> = members.iter().map(|_| rng.random_range(0..2)).collect();
            let ok = (0..2).all(|s| {
                // Both sides hold a database node, so any app instance has one too.
                (0..3).any(|i| side[i] == s)
            });
            if ok {
                break side;
            }
        };
        let names = |s: usize| -> String {
            members
                .iter()
                .zip(&sides)
                .filter(|(_, &x)| x == s)
                .map(|(n, _)| format!("{n:?}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let from = 2.0 + 6.0 * f64::from(p) + rng.random_range(0.0..2.0);
        let until = from + rng.random_range(0.5..4.0);
        out.push_str(&format!(
            "\n[[network.partitions]]\nsides = [[{}], [{}]]\nfrom = \"{from:.3}s\"\nuntil = \"{until:.3}s\"\n",
            names(0),
            names(1)
        ));
    }
    out
}

fn cap_model(consistency: &str, partitions: &str) -> ModelConfig {
    model(&users_to_app(
        300,
        &["read_ratio = 0.7", "keys = 50", "user_ids = 20"],
        &format!(
            r#"
instances = 2
workers = 1000
service_time = "0ms"
database = "db"

[[databases]]
name = "db"
replicas = 2
read_time = "exp(1ms)"
write_time = "exp(2ms)"
replication = "async"
replication_delay = "exp(20ms)"
read_from = "replicas"
consistency = "{consistency}"
{partitions}
"#
        ),
    ))
}

/// A partition of [`cap_model`] from `from` to `until`: the primary and `app.0` on one
/// side, the two replicas (the majority) and `app.1` on the other.
fn primary_cut_off(from: &str, until: &str) -> String {
    format!(
        "[[network.partitions]]\nsides = [[\"db.primary\", \"app.0\"], [\"db.replica.0\", \"db.replica.1\", \"app.1\"]]\nfrom = \"{from}\"\nuntil = \"{until}\"\n"
    )
}

#[test]
fn cp_never_reads_stale_and_ap_never_refuses_under_random_partitions() {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(2024);
    let mut cp_refused = 0.0;
    let mut ap_stale = 0.0;
    for case in 0..8u64 {
        let parts = random_partitions(&mut rng);
        let o = opts(100 + case, 16.0, 0.5);
        let cp = run(&cap_model("cp", &parts), &o);
        assert_eq!(
            metric(&cp, "stale_reads"),
            0.0,
            "cp stale read with {parts}"
        );
        cp_refused += metric(&cp, "errors");
        let ap = run(&cap_model("ap", &parts), &o);
        assert_eq!(
            metric(&ap, "errors"),
            0.0,
            "ap refused a request with {parts}"
        );
        // Only requests in flight when a partition starts can lose their answer: about
        // rate × time in the database (300/s × ~2 ms) per partition start.
        let dropped = metric(&ap, "dropped");
        assert!(
            dropped <= 10.0,
            "ap dropped {dropped} requests with {parts}"
        );
        ap_stale += metric(&ap, "stale_reads");
    }
    // Across the schedules, cp pays in availability and ap in staleness.
    assert!(cp_refused > 0.0);
    assert!(ap_stale > 0.0);
}

#[test]
fn ap_accepts_writes_on_both_sides_and_counts_conflicts_after_healing() {
    let parts = &primary_cut_off("2s", "6s");
    let ap = run(&cap_model("ap", parts), &opts(3, 10.0, 0.5));
    assert_eq!(metric(&ap, "errors"), 0.0);
    assert!(metric(&ap, "write_conflicts") > 0.0);
    assert!(metric(&ap, "stale_reads") > 0.0);
    let cp = run(&cap_model("cp", parts), &opts(3, 10.0, 0.5));
    // For 4 s of the 9.5 s window the primary is alone with app.0 (half the traffic): no
    // quorum, so that half is refused. The two replicas hold the majority: after the
    // election timeout (1 s, checked every 250 ms) they elect one of them, and app.1's half
    // is served again. Refused: 0.5 × 4 s + 0.5 × 1–1.25 s of the 9.5 s window.
    let avail = metric(&cp, "availability");
    let expected = 1.0 - (0.5 * 4.0 + 0.5 * 1.125) / 9.5;
    assert!(
        (avail - expected).abs() < 0.03,
        "cp availability {avail}, expected {expected}"
    );
    assert_eq!(metric(&cp, "stale_reads"), 0.0);
}

/// Under `cp` the majority side of a partition elects a new primary and keeps serving; the
/// old primary, alone, refuses until the partition heals and then rejoins as a replica.
#[test]
fn cp_majority_side_elects_a_leader_and_serves_through_the_partition() {
    let parts = &primary_cut_off("3s", "9s");
    let mut o = opts(5, 12.0, 0.5);
    o.timeseries = Some(SimTime::from_secs(1));
    let cp = run(&cap_model("cp", parts), &o);
    let ok_share = |t: f64| {
        let row = cp.series.iter().find(|s| s.t_s == t).expect("a row");
        row.rps / row.arrivals_rps
    };
    // Before: everything served; in the partition after the election: the majority half.
    assert!(ok_share(2.0) > 0.99, "before {}", ok_share(2.0));
    for t in [5.0, 6.0, 7.0, 8.0] {
        let share = ok_share(t);
        assert!((share - 0.5).abs() < 0.1, "at {t} s: ok share {share}");
    }
    // After the heal the new primary serves both sides.
    assert!(ok_share(10.0) > 0.99, "after {}", ok_share(10.0));
    assert_eq!(metric(&cp, "stale_reads"), 0.0);
    assert_eq!(metric(&cp, "write_conflicts"), 0.0);
}

fn failover_model(replication: &str, consistency: &str) -> ModelConfig {
    app_db(
        "rate = 1000\nread_ratio = 0.5\nkeys = 500",
        &format!(
            r#"replicas = 2
read_time = "exp(1ms)"
write_time = "exp(2ms)"
replication = "{replication}"
replication_delay = "exp(20ms)"
consistency = "{consistency}"
failover = {{ detect = "1s", promote = "500ms" }}"#
        ),
    )
}

fn run_with_kill(m: &ModelConfig, seed: u64) -> RunReport {
    let mut w = build(m, &opts(seed, 8.0, 0.5));
    assert!(w.inject(
        "db.primary",
        SimTime::from_secs(4),
        Msg::Fault(FaultAction::Kill)
    ));
    w.run().expect("conservation holds")
}

#[test]
fn sync_replication_loses_no_acknowledged_write_on_failover_and_async_does() {
    for seed in 1..=3 {
        let sync = run_with_kill(&failover_model("sync", "cp"), seed);
        assert_eq!(metric(&sync, "lost_writes"), 0.0);
        let asy = run_with_kill(&failover_model("async", "cp"), seed);
        // Changes still on the primary when it died (500 writes/s × ~20 ms of delay).
        assert!(
            metric(&asy, "lost_writes") > 0.0,
            "seed {seed}: async lost nothing"
        );
        // Under cp nothing is served during detect + promote (1.5 s of 7.5 s): about 0.8.
        let avail = metric(&asy, "availability");
        assert!((avail - 0.8).abs() < 0.02, "availability {avail}");
        // Sync writes wait for both replicas (max of two exp(20 ms)): the write p99 shows it.
        assert!(metric(&sync, "write_p99_ms") > metric(&asy, "write_p99_ms") + 20.0);
        // Under ap the replicas keep serving (writes too, reconciled after the promotion):
        // only the requests inside the primary when it crashed fail (1000/s × ~1.5 ms).
        let ap = run_with_kill(&failover_model("async", "ap"), seed);
        let failed = metric(&ap, "errors");
        assert!(failed <= 15.0, "ap failed {failed} requests");
        assert!(metric(&ap, "lost_writes") > 0.0);
    }
}

#[test]
fn range_sharding_makes_a_hot_spot_under_zipf_keys_and_hash_spreads_it() {
    let load = |sharding: &str| -> Vec<u64> {
        let m = app_db(
            "rate = 500\nread_ratio = 0.9\nkeys = 10000\npopularity = \"zipf(1.0)\"",
            &format!(
                "shards = 4\nsharding = \"{sharding}\"\nread_time = \"exp(1ms)\"\nwrite_time = \"exp(2ms)\""
            ),
        );
        let r = run(&m, &opts(9, 10.0, 1.0));
        let rows: Vec<u64> = r
            .components
            .iter()
            .filter(|c| c.kind == "database")
            .map(|c| c.requests)
            .collect();
        assert_eq!(rows.len(), 4);
        assert!(r
            .components
            .iter()
            .any(|c| c.component == "db.shard.3.primary"));
        rows
    };
    let range = load("range");
    let total: u64 = range.iter().sum();
    assert!(range[0] as f64 > 0.75 * total as f64, "range: {range:?}");
    let hash = load("hash");
    let max = *hash.iter().max().unwrap() as f64;
    assert!(
        max < 0.5 * hash.iter().sum::<u64>() as f64,
        "hash: {hash:?}"
    );
}

#[test]
fn throughput_against_connections_peaks_near_the_usl_optimum() {
    let (sigma, kappa): (f64, f64) = (0.05, 0.002);
    let n_star = ((1.0 - sigma) / kappa).sqrt(); // 21.8
    let mut best = (0u32, 0.0);
    let mut last = 0.0;
    for n in [4u32, 8, 14, 22, 32, 48, 64] {
        let m = app_db(
            &format!("arrival = \"closed\"\nusers = {n}\nkeys = 1000"),
            &format!(
                "read_time = \"exp(1ms)\"\nwrite_time = \"exp(1ms)\"\ncontention = {{ sigma = {sigma}, kappa = {kappa} }}"
            ),
        );
        let r = run(&m, &opts(7, 4.0, 0.5));
        let x = metric(&r, "throughput_rps");
        let nf = f64::from(n);
        let theory = 1000.0 * nf / (1.0 + sigma * (nf - 1.0) + kappa * nf * (nf - 1.0));
        // ~20k requests per point: 3% covers the run-to-run noise several times over.
        assert!(
            (x - theory).abs() < 0.03 * theory,
            "N = {n}: {x} rps, USL {theory}"
        );
        if x > best.1 {
            best = (n, x);
        }
        last = x;
    }
    assert!(
        (f64::from(best.0) - n_star).abs() <= 8.0,
        "peak at {} connections, USL N* = {n_star}",
        best.0
    );
    assert!(
        last < 0.85 * best.1,
        "more connections must mean less throughput"
    );
}

#[test]
fn max_connections_refuses_the_excess_and_counts_it() {
    let m = app_db(
        "rate = 2000\nread_ratio = 1.0",
        "read_time = \"exp(5ms)\"\nwrite_time = \"exp(5ms)\"\nmax_connections = 4",
    );
    let r = run(&m, &opts(1, 5.0, 0.5));
    let errors = metric(&r, "errors");
    assert!(errors > 0.0);
    assert_eq!(errors, metric(&r, "db_refused"));
}

#[test]
fn batching_groups_commits() {
    // One write at a time costs 10 ms: 100 writes/s at most per connection... here the
    // group commit serves many writes per write_time.
    let m = |batch: &str| {
        app_db(
            "rate = 500\nread_ratio = 0.0",
            &format!("read_time = \"1ms\"\nwrite_time = \"10ms\"\ncontention = {{ sigma = 0.5, kappa = 0.0 }}\n{batch}"),
        )
    };
    let plain = run(&m(""), &opts(2, 5.0, 0.5));
    let batched = run(
        &m("batch = { size = 20, max_wait = \"5ms\" }"),
        &opts(2, 5.0, 0.5),
    );
    assert!(metric(&batched, "write_p99_ms") < metric(&plain, "write_p99_ms"));
    assert_eq!(metric(&batched, "ok"), metric(&batched, "requests"));
}

#[test]
fn database_names_are_checked_with_hints() {
    let m = model(&users_to_app(
        10,
        &[],
        r#"
service_time = "1ms"
database = "dbb"

[[databases]]
name = "db"
replicas = 1
read_time = "1ms"
write_time = "1ms"

[[network.partitions]]
sides = [["db.primary"], ["db.replica.1"]]
from = "1s"
until = "2s"
"#,
    ));
    let errs = m.validate().unwrap_err();
    let text: Vec<String> = errs.iter().map(|e| e.to_string()).collect();
    assert!(
        text.iter()
            .any(|e| e.starts_with("services.app.database") && e.contains("did you mean \"db\"")),
        "{text:?}"
    );
    assert!(
        text.iter()
            .any(|e| e.starts_with("network.partitions.0.sides") && e.contains("db.replica.0")),
        "{text:?}"
    );
}

#[test]
fn buffer_pool_hit_ratio_matches_the_che_approximation() {
    let (keys, pages, alpha) = (5000usize, 500.0, 0.8);
    let m = app_db(
        &format!("rate = 2000\nread_ratio = 1.0\nkeys = {keys}\npopularity = \"zipf({alpha})\""),
        &format!(
            "read_time = \"exp(1ms)\"\nwrite_time = \"exp(1ms)\"\nbuffer_pool = {{ pages = {pages}, disk_read = \"exp(4ms)\" }}"
        ),
    );
    let r = run(&m, &opts(4, 30.0, 5.0));
    let got = r
        .components
        .iter()
        .find(|c| c.component == "db.primary")
        .and_then(|c| c.hit_ratio)
        .expect("the primary reports its buffer-pool hit ratio");
    // Che: T solves Σ (1 − e^{−p_i T}) = C; hit = Σ p_i (1 − e^{−p_i T}).
    let w: Vec<f64> = (1..=keys).map(|i| (i as f64).powf(-alpha)).collect();
    let z: f64 = w.iter().sum();
    let p: Vec<f64> = w.iter().map(|x| x / z).collect();
    let filled = |t: f64| p.iter().map(|pi| 1.0 - (-pi * t).exp()).sum::<f64>();
    let (mut lo, mut hi) = (0.0, 1e9);
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if filled(mid) < pages {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    let che: f64 = p.iter().map(|pi| pi * (1.0 - (-pi * lo).exp())).sum();
    // ~50k lookups: sampling sd < 0.003; Che's own error is about 1% at this size.
    assert!((got - che).abs() < 0.02, "hit ratio {got}, Che {che}");
}

#[test]
fn semi_sync_write_latency_lies_between_async_and_sync() {
    let p99 = |replication: &str| {
        let m = app_db(
            "rate = 300\nread_ratio = 0.0",
            &format!(
                "replicas = 2\nread_time = \"exp(1ms)\"\nwrite_time = \"exp(1ms)\"\nreplication = \"{replication}\"\nreplication_delay = \"exp(20ms)\""
            ),
        );
        metric(&run(&m, &opts(6, 20.0, 1.0)), "write_p99_ms")
    };
    let (a, semi, sync) = (p99("async"), p99("semi_sync"), p99("sync"));
    // p99 of the min, then the max, of two exp(20 ms) delays: 10 ln 100 ≈ 46 ms and ≈ 106 ms.
    assert!(
        a < 10.0 && semi > 35.0 && semi < 60.0 && sync > 90.0,
        "{a} {semi} {sync}"
    );
}

#[test]
fn replication_lag_has_a_time_series() {
    let m = cap_model(
        "ap",
        r#"
[[network.partitions]]
sides = [["db.primary"], ["db.replica.0", "db.replica.1"]]
from = "4s"
until = "6s"
"#,
    );
    let mut o = opts(8, 10.0, 1.0);
    o.timeseries = Some(SimTime::from_secs(1));
    let r = run(&m, &o);
    let lag: Vec<f64> = r.series.iter().filter_map(|s| s.repl_lag_ms).collect();
    assert!(lag.len() >= 8);
    // The gauge (age of the oldest change a replica lacks, read at each interval's end)
    // grows while the partition lasts and falls back once the backlog is applied.
    let at = |t: f64| {
        r.series
            .iter()
            .find(|s| s.t_s == t)
            .and_then(|s| s.repl_lag_ms)
            .unwrap_or_else(|| panic!("no lag at {t} s: {:?}", r.series))
    };
    assert!(at(3.0) < 200.0, "before: {}", at(3.0));
    assert!(at(4.0) > 900.0, "1 s into the partition: {}", at(4.0));
    assert!(at(5.0) > 1900.0, "at the heal: {}", at(5.0));
    assert!(at(7.0) < 200.0, "after: {}", at(7.0));
}

/// A node with `cores = 2` and exponential reads is an M/M/2 queue: at 150 reads/s of
/// exp(10 ms) (ρ = 0.75) Erlang C gives P(wait) = 9/14 and a mean time in the node of
/// 10 + (9/14) / (200 − 150) s = 22.857 ms. Without `cores` it would be 10 ms.
#[test]
fn cores_make_a_database_node_an_mmc_queue() {
    let m = app_db(
        "rate = 150\nread_ratio = 1.0\nkeys = 1000",
        "read_time = \"exp(10ms)\"\nwrite_time = \"exp(10ms)\"\ncores = 2",
    );
    let mut means = Vec::new();
    for seed in 1..=6 {
        let r = run(&m, &opts(seed, 120.0, 10.0));
        let node = r
            .components
            .iter()
            .find(|c| c.component == "db.primary")
            .expect("a db.primary row");
        means.push(node.mean_ms.expect("mean time in the node"));
    }
    let mean = means.iter().sum::<f64>() / means.len() as f64;
    let sd = (means.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / 5.0).sqrt();
    let se = sd / 6f64.sqrt();
    let theory = 10.0 + 9.0 / 14.0 / 50.0 * 1e3;
    println!("M/M/2 node: {mean:.3} ms (se {se:.3}), theory {theory:.3} ms");
    assert!((mean - theory).abs() < 4.0 * se + 0.2, "{mean} vs {theory}");
}

/// Write latency under the three replication modes against theory. Writes take no time on
/// the primary and the network none, so a write's latency is its wait for the replicas:
/// async acknowledges at commit (0), semi_sync when the first of two exp(d) deliveries
/// arrives (the min, exp(d/2): mean d/2), sync when both have (the max: mean 1.5 d).
#[test]
fn replication_modes_write_latency_is_the_min_or_max_of_the_deliveries() {
    let d = 20.0;
    for (mode, theory) in [("async", 0.0), ("semi_sync", d / 2.0), ("sync", 1.5 * d)] {
        let m = app_db(
            "rate = 200\nread_ratio = 0.0\nkeys = 100000",
            &format!(
                "replicas = 2\nread_time = \"0ms\"\nwrite_time = \"0ms\"\n\
                 replication = \"{mode}\"\nreplication_delay = \"exp({d}ms)\""
            ),
        );
        let means: Vec<f64> = (41..47)
            .map(|seed| metric(&run(&m, &opts(seed, 60.0, 5.0)), "latency_mean_ms"))
            .collect();
        let mean = means.iter().sum::<f64>() / means.len() as f64;
        let sd = (means.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / 5.0).sqrt();
        let se = sd / 6f64.sqrt();
        println!("{mode}: mean write latency {mean:.3} ms (se {se:.3}), theory {theory} ms");
        assert!(
            (mean - theory).abs() < 4.0 * se + 0.05,
            "{mode}: {mean} vs {theory}"
        );
    }
}

/// A disk with an IOPS limit is an M/D/1 queue for Poisson misses: with every read a miss
/// (one page of buffer pool over a million keys), 700 reads/s on a 1,000-IOPS disk spend
/// 1 ms on the disk plus the M/D/1 wait ρ / (2μ(1 − ρ)) = 1.167 ms: 2.167 ms in the node;
/// the estimate predicts the same.
#[test]
fn disk_iops_limit_is_an_md1_queue() {
    let m = app_db(
        "rate = 700\nread_ratio = 1.0\nkeys = 1000000",
        "read_time = \"0ms\"\nwrite_time = \"0ms\"\n\
         buffer_pool = { pages = 1, disk_read = \"0ms\", iops = 1000 }",
    );
    let means: Vec<f64> = (71..77)
        .map(|seed| {
            let r = run(&m, &opts(seed, 60.0, 5.0));
            let node = r
                .components
                .iter()
                .find(|c| c.component == "db.primary")
                .expect("a db.primary row");
            node.mean_ms.expect("mean time in the node")
        })
        .collect();
    let mean = means.iter().sum::<f64>() / means.len() as f64;
    let sd = (means.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / 5.0).sqrt();
    let se = sd / 6f64.sqrt();
    let rho: f64 = 0.7;
    let theory = 1.0 + rho / (2.0 * 1.0 * (1.0 - rho));
    println!(
        "IOPS-limited disk: {mean:.3} ms in the node (se {se:.3}), M/D/1 theory {theory:.3} ms"
    );
    assert!(
        (mean - theory).abs() < 4.0 * se + 0.03,
        "{mean} vs {theory}"
    );
    // The estimate queues the misses for the disk the same way (M/D/1), and names it.
    let est = dssim_lab::estimate::estimate(&m);
    let node = est.get("db.primary").expect("a db.primary prediction");
    let predicted = node.sojourn_ms.expect("a predicted time");
    println!("estimate: {predicted:.4} ms");
    assert!((predicted - theory).abs() < 1e-3 * theory, "{predicted}");
    assert!(node.method.contains("M/D/1"), "{}", node.method);
    // Past the disk's rate (1,000 misses/s, a miss ratio of 1 − 1e-6) it does not keep up.
    assert!((node.saturation_rps - 1000.0).abs() < 0.01, "{node:?}");
}

#[test]
fn group_commit_wait_matches_theory_at_a_low_rate() {
    // Poisson writes at λ = 100/s; groups of up to 50 wait at most W = 10 ms; a flush takes
    // S = 2 ms. A group opens with a write that waits the whole W and closes W later
    // (S < W, so the previous flush is over by then); the λW writes that join it wait W/2
    // on average, and a group of 50 (P(≥ 49 arrivals in 10 ms) ≈ 0) never fills. Time in
    // the node: S + W (1 + λW/2) / (1 + λW) = 2 + 10 × 1.5 / 2 = 9.5 ms.
    let m = app_db(
        "rate = 100\nread_ratio = 0.0\nkeys = 100000",
        "read_time = \"1ms\"\nwrite_time = \"2ms\"\nbatch = { size = 50, max_wait = \"10ms\" }",
    );
    let means: Vec<f64> = (0..4u64)
        .map(|seed| {
            let r = run(&m, &opts(900 + seed, 30.0, 5.0));
            assert_eq!(metric(&r, "ok"), metric(&r, "requests"));
            crate::support::component(&r, "db.primary")
                .mean_ms
                .expect("db.primary mean_ms")
        })
        .collect();
    let (mean, se) = crate::support::mean_se(&means);
    let theory = 2.0 + 10.0 * (1.0 + 0.5) / (1.0 + 1.0);
    assert!(
        (mean - theory).abs() < 4.0 * se + 0.02 * theory,
        "time in the node {mean:.3} ± {se:.3} ms, theory {theory} ms"
    );
}

#[test]
fn group_commit_caps_write_throughput_at_size_over_write_time() {
    // 4,000 writes/s offered to one log device of 5 ms per flush; the node refuses beyond 100
    // connections, so its backlog never drains: every flush is a full group. Throughput is
    // size / S exactly: 200/s one by one, 2,000/s in groups of 10 (groups larger than
    // `size` would serve them all).
    for (size, capacity) in [(1u32, 200.0), (10, 2000.0)] {
        let m = app_db(
            "rate = 4000\nread_ratio = 0.0\nkeys = 100000\ntimeout = \"2s\"",
            &format!(
                "read_time = \"1ms\"\nwrite_time = \"5ms\"\nmax_connections = 100\n\
                 batch = {{ size = {size}, max_wait = \"5ms\" }}"
            ),
        );
        let r = run(&m, &opts(910, 20.0, 5.0));
        let x = metric(&r, "throughput_rps");
        assert!(
            (x - capacity).abs() < 0.01 * capacity,
            "size {size}: {x} writes/s, capacity {capacity}"
        );
        assert!(
            metric(&r, "errors") > 0.0,
            "size {size}: the node refuses the excess"
        );
    }
}

#[test]
fn cqrs_read_model_answers_faster_and_staleness_follows_the_lag() {
    // 100 keys written uniformly at 100 writes/s in all: each key at w = 1/s. A read model
    // (the replicas, `replica_read_time` 1 ms against the primary's 5 ms) applies each
    // change an exp(d) lag after its commit, so a read finds the newest write not yet
    // applied with probability P(lag > age of that write) = w d / (1 + w d).
    let m = |read_from: &str, d: &str| {
        app_db(
            "rate = 1000\nread_ratio = 0.9\nkeys = 100",
            &format!(
                "replicas = 2\nread_time = \"5ms\"\nreplica_read_time = \"1ms\"\n\
                 write_time = \"2ms\"\nreplication_delay = \"exp({d})\"\nread_from = \"{read_from}\""
            ),
        )
    };
    let primary = run(&m("primary", "100ms"), &opts(920, 20.0, 5.0));
    assert_eq!(metric(&primary, "stale_reads"), 0.0);
    let p_ms = crate::support::component(&primary, "db.primary")
        .mean_ms
        .unwrap();
    for (d, wd) in [("100ms", 0.1), ("1s", 1.0)] {
        let r = run(&m("replicas", d), &opts(921, 20.0, 5.0));
        let reads = 0.9 * metric(&r, "ok");
        let stale = metric(&r, "stale_reads") / reads;
        let theory = wd / (1.0 + wd);
        assert!(
            (stale - theory).abs() < 0.1 * theory,
            "lag exp({d}): stale share {stale:.4}, theory {theory:.4}"
        );
        let rm_ms = crate::support::component(&r, "db.replica.0")
            .mean_ms
            .unwrap();
        assert!(
            (rm_ms - 1.0).abs() < 0.1 && (p_ms - 4.7).abs() < 0.3,
            "read model {rm_ms} ms (1 ms reads), primary {p_ms} ms (90% 5 ms reads, 10% 2 ms writes)"
        );
    }
}

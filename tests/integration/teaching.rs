//! The shipped experiments teach the right trade-off: each test runs one file of
//! `experiments/` through the binary (shortened with `--set` where the lesson survives it)
//! and checks the direction and rough size of the effect its comments promise.

use std::path::{Path, PathBuf};

use crate::support::{col, dssim_ok, read_table, tmp_dir};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs `experiments/NAME.toml` with `sets` into a scratch folder; returns points.csv.
fn points(name: &str, sets: &[&str]) -> (Vec<String>, Vec<Vec<String>>) {
    let out = tmp_dir(&format!("teaching-{name}"));
    let file = repo().join("experiments").join(format!("{name}.toml"));
    let out_arg = out.display().to_string();
    let file_arg = file.display().to_string();
    let mut args = vec!["run", file_arg.as_str(), "--out", out_arg.as_str()];
    for s in sets {
        args.push("--set");
        args.push(s);
    }
    dssim_ok(Path::new(env!("CARGO_TARGET_TMPDIR")), &args);
    read_table(&out.join("points.csv"))
}

/// The value of column `name` at the point whose column `key` is `value`.
fn at(table: &(Vec<String>, Vec<Vec<String>>), key: &str, value: &str, name: &str) -> f64 {
    let (header, rows) = table;
    let (k, c) = (col(header, key), col(header, name));
    let row = rows
        .iter()
        .find(|r| r[k] == value)
        .unwrap_or_else(|| panic!("no point with {key} = {value}"));
    row[c].parse().unwrap_or(0.0)
}

/// Against a database of 4 connections, an unprotected hot-key expiry queues ~40 reads at
/// once: p99 several times that of `lock` or `coalesce`, which send one read per expiry.
#[test]
fn cache_stampede_hurts_p99_without_protection() {
    let t = points("cache-stampede", &["duration=20s"]);
    let key = "caches.redis.stampede";
    let none = at(&t, key, "none", "p99_ms");
    for protected in ["lock", "coalesce"] {
        let p = at(&t, key, protected, "p99_ms");
        println!("p99: none {none:.1} ms, {protected} {p:.1} ms");
        assert!(none > 3.0 * p, "none {none} ms vs {protected} {p} ms");
    }
}

/// `shedding = "none"` is the true baseline: nothing is shed, not even by the model's
/// degradation levels; every other policy sheds about half at twice the capacity.
#[test]
fn load_shedding_none_sheds_nothing() {
    let t = points("load-shedding", &["duration=10s", "replications=1"]);
    let key = "services.app.shedding";
    assert_eq!(at(&t, key, "none", "shed"), 0.0);
    assert_eq!(at(&t, key, "none", "degraded"), 0.0);
    for policy in ["queue", "deadline(100ms)", "probabilistic(0.5)"] {
        assert!(at(&t, key, policy, "shed") > 0.0, "{policy} sheds");
    }
}

/// A retry storm fails most requests; p99 of the successes alone looks better than without
/// retries, `p99_all_ms` (every request, failures when they failed) shows the harm, and
/// `goodput_rps` collapses while `attempts` grows.
#[test]
fn retry_storm_failures_show_in_p99_all_and_goodput() {
    let t = points("retry-storm", &["replications=1"]);
    let (header, rows) = &t;
    let (max, budget) = (
        col(header, "clients.users.retries.max"),
        col(header, "clients.users.retries.budget"),
    );
    let get = |m: &str, b: &str, name: &str| {
        let row = rows
            .iter()
            .find(|r| r[max] == m && r[budget] == b)
            .expect("sweep point");
        row[col(header, name)].parse::<f64>().unwrap()
    };
    let (none, storm) = (("0", "100"), ("3", "100"));
    let p99_all_storm = get(storm.0, storm.1, "p99_all_ms");
    assert!(p99_all_storm > 2.0 * get(storm.0, storm.1, "p99_ms"));
    assert!(p99_all_storm > 2.0 * get(none.0, none.1, "p99_all_ms"));
    assert!(get(storm.0, storm.1, "goodput_rps") < 0.5 * get(none.0, none.1, "goodput_rps"));
    assert!(get(storm.0, storm.1, "attempts") > 2.0 * get(none.0, none.1, "attempts"));
}

/// Database nodes with a finite number of cores: read replicas first buy capacity (errors
/// vanish once the reads fit), then latency (the wait for a core shrinks) at a fixed load.
#[test]
fn read_replicas_raise_capacity_then_lower_read_latency() {
    let t = points("read-replicas", &["duration=15s", "replications=1"]);
    let key = "databases.db.replicas";
    let errors = |r: &str| at(&t, key, r, "errors");
    let p99 = |r: &str| at(&t, key, r, "read_p99_ms");
    assert!(errors("0") > errors("2") && errors("2") > 0.0);
    assert_eq!(errors("4"), 0.0);
    println!(
        "read p99: 3 -> {:.1}, 4 -> {:.1}, 8 -> {:.1} ms",
        p99("3"),
        p99("4"),
        p99("8")
    );
    assert!(p99("3") > 1.5 * p99("4"), "{} vs {}", p99("3"), p99("4"));
    assert!(p99("4") > p99("8"));
}

/// Versioned cache keys are no free lunch: no stale read ever, but every write makes the
/// next read of its key miss and the dead versions take capacity, so the hit ratio is
/// below `delete`'s and well below `ttl_only`'s (which pays in stale reads).
#[test]
fn versioned_keys_trade_hit_ratio_for_freshness() {
    let (header, rows) = points("cache-invalidation", &["duration=15s", "replications=1"]);
    let (inv, ttl) = (
        col(&header, "caches.redis.invalidation"),
        col(&header, "caches.redis.ttl"),
    );
    let get = |policy: &str, name: &str| -> f64 {
        let row = rows
            .iter()
            .find(|r| r[inv] == policy && r[ttl] == "60s")
            .expect("sweep point");
        row[col(&header, name)].parse().unwrap()
    };
    let hit = |p: &str| get(p, "cache_hit_ratio");
    assert_eq!(get("versioned", "stale_reads"), 0.0);
    assert!(get("ttl_only", "stale_reads") > 1000.0);
    println!(
        "hit ratio: ttl_only {:.3}, delete {:.3}, versioned {:.3}",
        hit("ttl_only"),
        hit("delete"),
        hit("versioned")
    );
    assert!(hit("versioned") < hit("delete") - 0.02);
    assert!(hit("delete") < hit("ttl_only") - 0.1);
}

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

/// The lecture's capstone server sustains 8 requests/s. At the formula's peak (users / 7,200
/// requests/s) it is fine at 30K users and past its capacity from 57,600: at 100K users it
/// serves no more than its 8 requests/s and fails about half the requests.
#[test]
fn capstone_server_dies_before_100k_users_at_the_peak() {
    let t = points(
        "breaking-point-capstone",
        &["duration=4m", "replications=1"],
    );
    let key = "clients.users.rate";
    assert!(at(&t, key, "4.17", "availability") > 0.99);
    let (avail, goodput) = (
        at(&t, key, "13.9", "availability"),
        at(&t, key, "13.9", "goodput_rps"),
    );
    println!("100K users: availability {avail:.3}, goodput {goodput:.2} req/s");
    assert!(avail < 0.65, "availability {avail} at 100K users");
    assert!(goodput < 8.0, "goodput {goodput} above the capacity");
    assert!(at(&t, key, "139", "availability") < 0.1);
}

/// One peak figure: production-day runs the 10M-user model at the lecture formula's peak,
/// the figure `dssim estimate --users 10000000` prints.
#[test]
fn production_day_peaks_at_the_formula_figure() {
    let cwd = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let est = dssim_ok(cwd, &["estimate", "--users", "10000000"]);
    let peak: f64 = est
        .lines()
        .find_map(|l| l.strip_prefix("peak rps"))
        .expect("a peak rps line")
        .trim()
        .parse()
        .unwrap();
    let file = repo().join("experiments/production-day.toml");
    let shown = dssim_ok(cwd, &["explain", file.to_str().unwrap()]);
    let set: f64 = shown
        .lines()
        .find_map(|l| l.strip_prefix("clients.users.peak"))
        .and_then(|l| l.split('=').nth(1))
        .expect("clients.users.peak in explain")
        .trim()
        .parse()
        .unwrap();
    assert_eq!(
        set,
        peak.round(),
        "production-day peak {set}, formula {peak}"
    );
}

/// A failover run: under `cp` every request fails from the primary's death until the
/// promotion, so the errors are the arrival rate × (detect + promote); the async replica
/// that takes over lacks the changes in flight (lost writes).
#[test]
fn failover_outage_lasts_detect_plus_promote() {
    let t = points("failover", &[]);
    let key = "databases.db.failover.detect";
    let mut lost = 0.0;
    for (detect, secs) in [("1s", 1.0), ("5s", 5.0), ("15s", 15.0)] {
        let errors = at(&t, key, detect, "errors");
        let theory = 400.0 * (secs + 2.0);
        println!("detect {detect}: {errors:.0} errors, theory {theory:.0}");
        assert!((errors / theory - 1.0).abs() < 0.1, "{errors} vs {theory}");
        lost += at(&t, key, detect, "lost_writes");
    }
    assert!(lost > 0.0, "async replication loses the writes in flight");
}

/// Replication modes: sync never loses an acknowledged write at a failover and async
/// loses more as the delay grows; the price is write latency, async < semi_sync < sync.
#[test]
fn sync_replication_trades_write_latency_for_lost_writes() {
    let (header, rows) = points("replication-modes", &[]);
    let (mode, delay) = (
        col(&header, "databases.db.replication"),
        col(&header, "databases.db.replication_delay"),
    );
    let get = |m: &str, d: &str, name: &str| -> f64 {
        let row = rows
            .iter()
            .find(|r| r[mode] == m && r[delay] == d)
            .expect("sweep point");
        row[col(&header, name)].parse().unwrap()
    };
    for d in ["exp(10ms)", "exp(30ms)", "exp(100ms)"] {
        assert_eq!(get("sync", d, "lost_writes"), 0.0, "sync at {d}");
        let p99 = |m: &str| get(m, d, "write_p99_ms");
        println!(
            "{d}: write p99 async {:.1}, semi_sync {:.1}, sync {:.1} ms; lost async {:.2}",
            p99("async"),
            p99("semi_sync"),
            p99("sync"),
            get("async", d, "lost_writes")
        );
        assert!(p99("async") < p99("semi_sync") && p99("semi_sync") < p99("sync"));
    }
    assert!(get("async", "exp(100ms)", "lost_writes") > get("async", "exp(10ms)", "lost_writes"));
}

/// The capacity plan with high availability: `dssim capacity --find min --zones 3` finds the
/// fewest instances meeting the SLO and provisions 1.5 times that (rounded up), and that
/// fleet, spread over three zones, still meets the SLO with its largest zone lost.
#[test]
fn capacity_plan_with_ha_survives_losing_a_zone() {
    let cwd = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let file = repo().join("experiments/capacity-plan.toml");
    let file = file.to_str().unwrap();
    let out = tmp_dir("teaching-capacity-ha");
    let common = [
        "--set",
        "clients.users.rate=10000",
        "--set",
        "duration=10s",
        "--set",
        "warmup=2s",
    ];
    let mut args = vec![
        "capacity",
        file,
        "--vary",
        "services.app.instances",
        "--find",
        "min",
        "--lo",
        "1",
        "--slo",
        "p99_ms<100",
        "--slo",
        "failure_rate<0.001",
        "--replications",
        "1",
        "--zones",
        "3",
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend(common);
    let text = dssim_ok(cwd, &args);
    let after = |prefix: &str| -> u32 {
        let line = text
            .lines()
            .find(|l| l.trim_start().starts_with(prefix))
            .unwrap_or_else(|| panic!("no line {prefix:?} in\n{text}"));
        line.split("services.app.instances = ")
            .nth(1)
            .unwrap()
            .split_whitespace()
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    let need = after("capacity:");
    let ha = after("with HA over 3 zones");
    assert_eq!(ha, (need * 3).div_ceil(2), "{text}");
    let left = ha - ha.div_ceil(3);
    assert!(left >= need, "{ha} over 3 zones leaves {left} < {need}");
    let t = points(
        "capacity-plan",
        &[
            "clients.users.rate=10000",
            &format!("services.app.instances={left}"),
            "duration=10s",
            "warmup=2s",
        ],
    );
    let (header, rows) = &t;
    let p99: f64 = rows[0][col(header, "p99_ms")].parse().unwrap();
    let avail: f64 = rows[0][col(header, "availability")].parse().unwrap();
    println!(
        "need {need}, provision {ha}, after a zone {left}: p99 {p99:.1} ms, availability {avail}"
    );
    assert!(p99 < 100.0 && avail > 0.999);
}

/// The storage plan of `dssim estimate --users`: growth over the horizon, × backups,
/// × copies (1M users write 1 GB a day: 500 GB + 12 × 30 GB = 860; ×2 = 1,720; ×3 = 5,160).
#[test]
fn estimate_prints_the_storage_plan_with_backups_and_replication() {
    let cwd = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let text = dssim_ok(
        cwd,
        &[
            "estimate",
            "--users",
            "1000000",
            "--data-gb",
            "500",
            "--months",
            "12",
        ],
    );
    let gb = |prefix: &str| -> f64 {
        let line = text
            .lines()
            .find(|l| l.trim_start().starts_with(prefix))
            .unwrap_or_else(|| panic!("no line {prefix:?} in\n{text}"));
        line.split_whitespace()
            .take_while(|w| *w != "GB")
            .last()
            .unwrap()
            .parse()
            .unwrap()
    };
    assert_eq!(gb("storage in 12 months"), 860.0, "{text}");
    assert_eq!(gb("with backups x2"), 1720.0, "{text}");
    assert_eq!(gb("with 3 copies"), 5160.0, "{text}");
}

/// The Che approximation of an LRU cache of `c` entries under zipf(`a`) over `n` keys.
fn che_hit_ratio(n: usize, a: f64, c: f64) -> f64 {
    let w: Vec<f64> = (1..=n).map(|i| (i as f64).powf(-a)).collect();
    let s: f64 = w.iter().sum();
    let p: Vec<f64> = w.iter().map(|x| x / s).collect();
    let (mut lo, mut hi) = (0.0, 1e12);
    for _ in 0..100 {
        let t = (lo + hi) / 2.0;
        let filled: f64 = p.iter().map(|pi| 1.0 - (-pi * t).exp()).sum();
        if filled < c {
            lo = t;
        } else {
            hi = t;
        }
    }
    let t = (lo + hi) / 2.0;
    p.iter().map(|pi| pi * (1.0 - (-pi * t).exp())).sum()
}

/// L4 vs L7: layer 7 pays the parse time on every request (mean latency + 0.5 ms with the
/// same routing); routing by content (consistent hashing on the key) makes four local caches
/// of 5,000 entries act as one of 20,000: the hit ratio of each routing is the Che
/// approximation of 5,000 and of 20,000 entries (reads only, so no write deletes entries).
#[test]
fn lb_layers_content_routing_multiplies_the_local_caches() {
    let t = points(
        "lb-layers",
        &[
            "clients.users.read_ratio=1.0",
            "replications=1",
            "duration=20s",
        ],
    );
    let (header, rows) = &t;
    let (layer, alg) = (
        col(header, "load_balancers.lb.layer"),
        col(header, "load_balancers.lb.algorithm"),
    );
    let get = |l: &str, a: &str, name: &str| -> f64 {
        let row = rows
            .iter()
            .find(|r| r[layer] == l && r[alg] == a)
            .expect("sweep point");
        row[col(header, name)].parse().unwrap()
    };
    let (one, four) = (
        che_hit_ratio(100_000, 0.9, 5000.0),
        che_hit_ratio(100_000, 0.9, 20000.0),
    );
    let (rr, ch) = (
        get("7", "round_robin", "cache_hit_ratio"),
        get("7", "consistent_hash", "cache_hit_ratio"),
    );
    println!(
        "hit ratio: round robin {rr:.3} (Che {one:.3}), content routing {ch:.3} (Che {four:.3})"
    );
    assert!((rr - one).abs() < 0.02, "{rr} vs {one}");
    assert!((ch - four).abs() < 0.03, "{ch} vs {four}");
    let parse =
        get("7", "round_robin", "latency_mean_ms") - get("4", "round_robin", "latency_mean_ms");
    println!("L7 parse cost on the mean latency: {parse:.3} ms");
    assert!((0.35..0.65).contains(&parse), "{parse}");
}

/// Gray failure: a 10× slower instance passes its health checks (no errors), so round robin
/// keeps feeding it past its capacity (timeouts, 503s, p99_all at the timeout) while
/// least_connections and power_of_two route around it.
#[test]
fn gray_failure_hurts_round_robin_not_least_connections() {
    let t = points("gray-failure", &["replications=1"]);
    let key = "load_balancers.lb.algorithm";
    for alg in ["round_robin", "least_connections", "power_of_two"] {
        assert_eq!(
            at(&t, key, alg, "errors"),
            0.0,
            "{alg}: no health check fires"
        );
    }
    let rr = at(&t, key, "round_robin", "availability");
    println!("availability: round_robin {rr:.3}");
    assert!(rr < 0.95);
    for alg in ["least_connections", "power_of_two"] {
        assert!(at(&t, key, alg, "availability") > 0.999, "{alg}");
        assert!(at(&t, key, alg, "p99_all_ms") < 100.0, "{alg}");
    }
}

/// Cache warming's benefit alone: the app falls back to the store while the cache is down
/// (almost no errors in either run), and the warmed restart sheds far fewer requests than
/// the cold one.
#[test]
fn cache_warming_shows_its_benefit_alone() {
    let t = points("cache-warming", &[]);
    let key = "caches.redis.warm";
    let (cold, warm) = (at(&t, key, "0", "shed"), at(&t, key, "4000", "shed"));
    println!(
        "shed: cold {cold}, warmed {warm}; errors {} / {}",
        at(&t, key, "0", "errors"),
        at(&t, key, "4000", "errors")
    );
    for w in ["0", "4000"] {
        assert!(
            at(&t, key, w, "errors") < 20.0,
            "warm = {w}: the fallback serves"
        );
    }
    assert!(cold > 3.0 * warm, "cold {cold} vs warmed {warm}");
}

/// No pooling: every request pays the 50 ms connection set-up (mean latency + ~50 ms at low
/// load) and holds a worker through it, so the 64 workers top out near 64 / 54 ms ≈
/// 1,190 requests/s, where the pooled app serves everything.
#[test]
fn no_pooling_costs_latency_and_capacity() {
    let (header, rows) = points("pooling", &["replications=1", "duration=15s"]);
    let (rate, conn) = (
        col(&header, "clients.users.rate"),
        col(&header, "services.app.connect_time"),
    );
    let get = |r: &str, c: &str, name: &str| -> f64 {
        let row = rows
            .iter()
            .find(|x| x[rate] == r && x[conn] == c)
            .expect("sweep point");
        row[col(&header, name)].parse().unwrap()
    };
    let gap = get("200", "exp(50ms)", "latency_mean_ms") - get("200", "0ms", "latency_mean_ms");
    println!("set-up cost on the mean latency at 200/s: {gap:.1} ms");
    assert!((gap - 50.0).abs() < 5.0, "{gap}");
    let served = get("2000", "exp(50ms)", "throughput_rps");
    println!("no pool at 2,000/s: {served:.0} requests/s served");
    assert!((1000.0..1300.0).contains(&served), "{served}");
    assert!(get("2000", "0ms", "availability") > 0.999);
}

/// A disk I/O bottleneck: with a small buffer pool the misses near the disk's IOPS limit and
/// the tail explodes; eight times the memory removes the bottleneck at the same load.
#[test]
fn disk_iops_bottleneck_is_fixed_by_memory() {
    let (header, rows) = points("disk-iops", &["replications=1"]);
    let (rate, pages) = (
        col(&header, "clients.users.rate"),
        col(&header, "databases.db.buffer_pool.pages"),
    );
    let p99 = |r: &str, p: &str| -> f64 {
        let row = rows
            .iter()
            .find(|x| x[rate] == r && x[pages] == p)
            .expect("sweep point");
        row[col(&header, "p99_ms")].parse().unwrap()
    };
    println!(
        "p99 at 2,400/s: {:.1} ms (5,000 pages), {:.1} ms (40,000)",
        p99("2400", "5000"),
        p99("2400", "40000")
    );
    assert!(p99("2400", "5000") > 10.0 * p99("2400", "40000"));
    assert!(p99("1000", "5000") < 2.0 * p99("1000", "40000"));
}

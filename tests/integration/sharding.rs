//! Sharding by tenant and by region, and cross-shard queries: a cross-shard query's
//! latency against the maximum of N exponentials and its N-fold load, the per-shard load
//! split against the tenant directory, the hot tenant's shard against M/M/1, geographic
//! sharding's local share against the travellers, and bad input.

use dssim_components::database::{TenantDirectory, Tenants};
use dssim_components::RunOptions;
use dssim_engine::SimTime;

use crate::support::{
    assert_check_rejects, assert_theory, component, dssim, model, replicate, run, tmp_dir,
    users_to_app, Estimate, Plan, HDR_RESOLUTION,
};

/// H_n = 1 + 1/2 + ... + 1/n.
fn harmonic(n: u32) -> f64 {
    (1..=n).map(|k| 1.0 / f64::from(k)).sum()
}

/// Requests served by each shard's primary (`db.shard.S.primary`).
fn shard_requests(r: &dssim_components::RunReport, shards: u32) -> Vec<u64> {
    (0..shards)
        .map(|s| component(r, &format!("db.shard.{s}.primary")).requests)
        .collect()
}

#[test]
fn a_cross_shard_query_takes_the_max_of_n_shards_and_loads_every_shard() {
    // Half the reads ask all 8 shards, each answering in exp(10 ms) without queueing: such
    // a query takes the max of 8 exponentials, H_8 × 10 ms = 27.18 ms on average; a
    // single-shard query takes 10 ms. The cost: 8 shard queries instead of 1.
    let m = model(&users_to_app(
        200,
        &["read_ratio = 1.0", "keys = 100000"],
        r#"
workers = 1000
service_time = "const(0ms)"
database = "db"

[[databases]]
name = "db"
shards = 8
read_time = "exp(10ms)"
write_time = "exp(10ms)"
cross_shard = { share = 0.5 }
"#,
    ));
    let reports = replicate(&m, Plan::new(1, 31, 12, 15_500));
    let cross = Estimate::over(&reports, |r| {
        component(r, "db.cross_shard")
            .mean_ms
            .expect("cross-shard queries")
    });
    assert_theory(
        "cross-shard query over 8 shards, mean (ms)",
        cross,
        10.0 * harmonic(8),
        HDR_RESOLUTION,
        0.03,
    );
    let single = Estimate::over(&reports, |r| {
        component(r, "db.single_shard")
            .mean_ms
            .expect("single-shard queries")
    });
    assert_theory(
        "single-shard query, mean (ms)",
        single,
        10.0,
        HDR_RESOLUTION,
        0.03,
    );
    let share = Estimate::over(&reports, |r| {
        let c = component(r, "db.cross_shard").requests as f64;
        c / (c + component(r, "db.single_shard").requests as f64)
    });
    assert_theory("share of cross-shard queries", share, 0.5, 0.0, 0.02);
    for r in &reports {
        let c = component(r, "db.cross_shard");
        assert_eq!(c.mean_queue, Some(8.0), "shards per cross-shard query");
        // Every shard query reaches a node: the nodes serve single + 8 × cross queries
        // (give or take the queries in flight at the window's edges).
        let served: u64 = shard_requests(r, 8).iter().sum();
        let made = component(r, "db.single_shard").requests + 8 * c.requests;
        let gap = (served as f64 - made as f64).abs() / made as f64;
        assert!(gap < 0.005, "nodes served {served}, queries made {made}");
        // Cross-shard queries land on every shard alike: no shard is far off the mean.
        let per = shard_requests(r, 8);
        let mean = served as f64 / 8.0;
        assert!(
            per.iter().all(|&x| (x as f64 - mean).abs() < 0.05 * mean),
            "{per:?}"
        );
    }
}

fn tenant_model() -> String {
    users_to_app(
        2000,
        &["read_ratio = 1.0", "keys = 100000", "user_ids = 100000"],
        r#"
workers = 1000
service_time = "const(0ms)"
database = "db"

[[databases]]
name = "db"
shards = 4
shard_by = "SHARD_BY"
tenants = { count = 20, skew = 1.0 }
read_time = "exp(1ms)"
write_time = "exp(1ms)"
cores = 1
"#,
    )
}

#[test]
fn tenant_sharding_splits_load_by_tenant_size_and_the_big_tenant_makes_a_hot_shard() {
    // 20 tenants of Zipf sizes: the biggest holds 1/H_20 = 27.8 % of the users, more than
    // a quarter, so the directory gives it a shard of its own and the other 19 share
    // three shards (24.1 % each at best). The hot shard is an M/M/1 queue at
    // ρ = 2000/s × 0.278 × 1 ms = 0.556: L = ρ/(1−ρ) = 1.25 queries in it.
    let tenants = Tenants {
        count: 20,
        skew: 1.0,
    };
    let dir = TenantDirectory::new(&tenants.shares(), 4);
    let split = dir.shard_shares(4);
    let biggest = 1.0 / harmonic(20);
    let hot = split.iter().cloned().fold(0.0, f64::max);
    assert!((hot - biggest).abs() < 1e-12, "{split:?}");
    assert_eq!(dir.shard.iter().filter(|&&s| s == dir.shard[0]).count(), 1);

    let m = model(&tenant_model().replace("SHARD_BY", "tenant"));
    let reports = replicate(&m, Plan::new(2, 32, 16, 15_600));
    // The users' tenants are drawn once, by hashing the user id: the 100,000 users of the
    // client split over the shards within about √(p(1−p)/100000) ≈ 0.14 % of the sizes.
    let mut users = [0u64; 4];
    for u in 0..100_000u32 {
        users[dir.shard[dir.tenant_of(u)] as usize] += 1;
    }
    for (s, &size) in split.iter().enumerate() {
        let theory = users[s] as f64 / 100_000.0;
        assert!(
            (theory - size).abs() < 0.006,
            "shard {s}: users {theory}, sizes {size}"
        );
        let share = Estimate::over(&reports, |r| {
            let v = shard_requests(r, 4);
            v[s] as f64 / v.iter().sum::<u64>() as f64
        });
        assert_theory(
            &format!("tenant sharding, shard {s}'s share of the load"),
            share,
            theory,
            0.0,
            0.03,
        );
    }
    let hot_shard = dir.shard[0] as usize;
    let rho = 2000.0 * (users[hot_shard] as f64 / 100_000.0) * 0.001;
    let l = Estimate::over(&reports, |r| {
        component(r, &format!("db.shard.{hot_shard}.primary"))
            .mean_queue
            .expect("connections")
    });
    assert_theory(
        "hot tenant's shard, queries in it (M/M/1 L)",
        l,
        rho / (1.0 - rho),
        0.0,
        0.06,
    );
    // Hashing the key spreads the same load evenly: no hot shard.
    let hashed = model(&tenant_model().replace("SHARD_BY", "key"));
    let r = run(
        &hashed,
        &RunOptions::new(15_650, SimTime::from_secs(12), SimTime::from_secs(2)),
    );
    let v = shard_requests(&r, 4);
    let total = v.iter().sum::<u64>() as f64;
    assert!(
        v.iter().all(|&x| (x as f64 / total - 0.25).abs() < 0.01),
        "{v:?}"
    );
}

const GEO_MODEL: &str = r#"
[[clients]]
name = "users-a"
target = "app-a"
region = "a"
rate = 300
read_ratio = 1.0
keys = 100000
user_ids = 100000

[[clients]]
name = "users-b"
target = "app-b"
region = "b"
rate = 300
read_ratio = 1.0
keys = 100000
user_ids = 100000

[[services]]
name = "app-a"
region = "a"
workers = 1000
service_time = "const(0ms)"
database = "db"

[[services]]
name = "app-b"
region = "b"
workers = 1000
service_time = "const(0ms)"
database = "db"

[[databases]]
name = "db"
shards = 2
shard_by = "SHARD_BY"
shard_regions = ["a", "b"]
travellers = 0.2
read_time = "const(2ms)"
write_time = "const(2ms)"
CROSS

[network]
latency = "const(0.5ms)"
[network.regions]
"a:b" = "const(30ms)"
"#;

#[test]
fn region_sharding_keeps_home_users_local_and_travellers_pay_the_round_trip() {
    // A local query takes 0.5 + 2 + 0.5 = 3 ms, a remote one 30 + 2 + 30 = 62 ms. By
    // region, 80 % of users are at home (20 % travellers): 80 % local, mean 3 + 0.2 × 59 =
    // 14.8 ms. Hashing the key puts half the queries in the other region: 32.5 ms.
    let opts = RunOptions::new(15_700, SimTime::from_secs(22), SimTime::from_secs(2));
    let geo = |by: &str, cross: &str| {
        let m = model(&GEO_MODEL.replace("SHARD_BY", by).replace("CROSS", cross));
        run(&m, &opts)
    };
    for (by, local) in [("region", 0.8), ("key", 0.5)] {
        let r = geo(by, "");
        let row = component(&r, "db.single_shard");
        let h = row.hit_ratio.expect("local share");
        assert!(
            (h - local).abs() < 0.02,
            "{by}: local share {h}, theory {local}"
        );
        // Every query is 3 or 62 ms, so the mean follows the local share exactly.
        let mean = row.mean_ms.expect("mean");
        let want = 3.0 + (1.0 - h) * 59.0;
        assert!(
            (mean - want).abs() < 0.05 * want,
            "{by}: mean {mean} ms, {want} from h = {h}"
        );
        assert!(component(&r, "db.cross_shard").requests == 0);
    }
    // A query of every shard always waits for the remote one: 62 ms, whatever its home.
    let r = geo("region", "cross_shard = { share = 1.0 }");
    let c = component(&r, "db.cross_shard");
    let mean = c.mean_ms.expect("cross-shard mean");
    assert!((mean - 62.0).abs() < 62.0 * 2.0 * HDR_RESOLUTION, "{mean}");
    assert_eq!(component(&r, "db.single_shard").requests, 0);
}

#[test]
fn default_sharding_adds_no_rows_and_draws_nothing_new() {
    // Without a shard key, shard regions or cross-shard queries no query is tracked: no
    // new rows (the shipped experiments' outputs stay as they were).
    let m = model(&tenant_model().replace(
        "shard_by = \"SHARD_BY\"\ntenants = { count = 20, skew = 1.0 }\n",
        "",
    ));
    let r = run(
        &m,
        &RunOptions::new(15_800, SimTime::from_secs(3), SimTime::from_secs(1)),
    );
    assert!(!r.components.iter().any(|c| c.kind == "shard_query"));
    // A share of zero asks one shard per query.
    let m = model(
        &tenant_model()
            .replace("SHARD_BY", "tenant")
            .replace("cores = 1", "cores = 1\ncross_shard = { share = 0.0 }"),
    );
    let r = run(
        &m,
        &RunOptions::new(15_801, SimTime::from_secs(3), SimTime::from_secs(1)),
    );
    assert_eq!(component(&r, "db.cross_shard").requests, 0);
    assert!(component(&r, "db.single_shard").requests > 3000);
}

#[test]
fn bad_shard_keys_are_located_input_errors() {
    let dir = tmp_dir("sharding-errors");
    let base = r#"name = "e"
duration = "2s"
seed = 1

[model]
[[model.clients]]
name = "users"
target = "app"
rate = 5

[[model.services]]
name = "app"
service_time = "exp(1ms)"
database = "db"

[[model.databases]]
name = "db"
read_time = "exp(1ms)"
write_time = "exp(1ms)"
shards = 4
"#;
    let cases: [(&str, &[&str]); 6] = [
        (
            "shard_by = \"tenant\"\n",
            &["databases.db.tenants", "needs the tenants"],
        ),
        (
            "shard_by = \"region\"\n",
            &[
                "databases.db.shard_regions",
                "needs the region of each shard",
            ],
        ),
        (
            "shard_regions = [\"eu\", \"us\"]\n",
            &["databases.db.shard_regions", "4 shards, 2 regions"],
        ),
        (
            "cross_shard = { share = 1.5, shards = 9 }\n",
            &[
                "databases.db.cross_shard.share",
                "databases.db.cross_shard.shards",
            ],
        ),
        (
            "shard_by = \"tenant\"\ntenants = { count = 0, skew = -1 }\n",
            &["databases.db.tenants.count", "databases.db.tenants.skew"],
        ),
        ("shard_by = \"tenat\"\n", &["shard_by", "tenant"]),
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
fn the_estimate_predicts_the_shard_key_split_and_the_cross_shard_load() {
    // The geo-sharding experiment, tenant sharding with half the reads across all 6
    // shards: the big tenant's shard takes 600 × (0.5 × 0.278 + 0.5) = 383/s, the others
    // 600 × (0.5 × 0.144 + 0.5) ≈ 343/s; a cross-shard query costs 3.5× the shard work.
    let o = dssim(&[
        "estimate",
        "experiments/geo-sharding.toml",
        "--set",
        "databases.db.shard_by=\"tenant\"",
        "--set",
        "databases.db.cross_shard.share=0.5",
    ]);
    let text = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(
        o.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        text.contains("busiest shard (0) takes 27.8% of the queries"),
        "{text}"
    );
    assert!(text.contains("3.50x the reads"), "{text}");
    assert!(text.contains("H_6 x 5.00 ms = 12.25 ms"), "{text}");
    let hot: f64 = text
        .lines()
        .find(|l| l.starts_with("db.shard.0.primary"))
        .and_then(|l| l.split_whitespace().nth(2))
        .and_then(|x| x.parse().ok())
        .expect("db.shard.0.primary row");
    let theory = 600.0 * (0.5 / harmonic(20) + 0.5);
    assert!((hot - theory).abs() < 0.01 * theory, "{hot} vs {theory}");
}

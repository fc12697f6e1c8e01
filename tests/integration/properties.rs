//! Property tests over random valid models: clients (poisson or closed, timeouts, retries),
//! an optional load balancer, a service, an optional cache and database, optional faults
//! and partitions, network latency and loss. Each model is written as TOML text, as a user
//! would, and run through the components API and (for the CSV part) the binary.
//!
//! Properties: the run succeeds (conservation is checked inside every run), two runs with
//! the same seed give identical reports, ratios lie in [0, 1], percentiles are monotone,
//! and runs.csv has one row per run with requests = ok + errors + timeouts + shed + dropped.
//! Seeds are fixed (`RngSeed::Fixed`) and nothing is persisted, so every run of the suite
//! checks the same cases.

use dssim_components::{ModelConfig, RunOptions, RunReport};
use dssim_engine::SimTime;
use proptest::prelude::*;
use proptest::test_runner::{Config, RngSeed};

use crate::support::{dssim, num, read_csv, tmp_dir, write};

/// A random model, kept as the parameters that render it.
#[derive(Clone, Debug)]
struct Topo {
    closed: Option<(u32, u32)>, // (users, think ms)
    rate: u32,
    timeout_ms: Option<u32>,
    retries: Option<u32>,
    read_ratio: f64,
    keys: u32,
    zipf: bool,
    lb: Option<(usize, bool)>, // (algorithm, health checks)
    instances: u32,
    workers: u32,
    queue: Option<u32>,
    service: (usize, u32),             // (shape, mean µs)
    cache: Option<(u32, usize, bool)>, // (capacity, eviction, ttl)
    db: Option<(u32, usize, usize)>,   // (replicas, replication, read_from)
    fault: Option<u32>,                // kill app.0 at 1 s, recover after this many ms
    partition: bool,
    latency_us: Option<u32>,
    loss: f64,
}

const ALGORITHMS: &[&str] = &[
    "round_robin",
    "least_connections",
    "random",
    "power_of_two",
    "ip_hash",
    "consistent_hash",
];
const EVICTIONS: &[&str] = &["lru", "lfu", "fifo", "random"];
const REPLICATION: &[&str] = &["async", "semi_sync", "sync"];

impl Topo {
    fn toml(&self) -> String {
        let mut t = String::new();
        let target = if self.lb.is_some() { "lb" } else { "app" };
        t += &format!("[[clients]]\nname = \"users\"\ntarget = \"{target}\"\n");
        match self.closed {
            Some((users, think)) => {
                t += &format!("arrival = \"closed\"\nusers = {users}\nthink = \"exp({think}ms)\"\n")
            }
            None => t += &format!("arrival = \"poisson\"\nrate = {}\n", self.rate),
        }
        if let Some(ms) = self.timeout_ms {
            t += &format!("timeout = \"{ms}ms\"\n");
        }
        if let Some(max) = self.retries {
            t += &format!("retries = {{ max = {max}, backoff = \"5ms\" }}\n");
        }
        t += &format!(
            "read_ratio = {}\nkeys = {}\nuser_ids = 50\n",
            self.read_ratio, self.keys
        );
        if self.zipf {
            t += "popularity = \"zipf(0.9)\"\n";
        }
        if let Some((alg, hc)) = self.lb {
            t += &format!(
                "\n[[load_balancers]]\nname = \"lb\"\nbackends = \"app\"\nalgorithm = \"{}\"\n",
                ALGORITHMS[alg]
            );
            if hc {
                t += "health_check = { interval = \"200ms\", timeout = \"50ms\", healthy = 2, unhealthy = 2 }\n";
            }
        }
        let (shape, us) = self.service;
        let dist = match shape {
            0 => format!("exp({us}us)"),
            1 => format!("{us}us"),
            2 => format!("uniform({}us, {}us)", us / 2, us + us / 2),
            _ => format!("lognormal({us}us, {}us)", us / 2 + 1),
        };
        t += &format!(
            "\n[[services]]\nname = \"app\"\ninstances = {}\nworkers = {}\nservice_time = \"{dist}\"\n",
            self.instances, self.workers
        );
        if let Some(q) = self.queue {
            t += &format!("queue = {q}\n");
        }
        if self.cache.is_some() {
            t += "cache = \"kv\"\n";
        }
        if self.db.is_some() {
            t += "database = \"db\"\n";
        }
        if let Some((cap, ev, ttl)) = self.cache {
            t += &format!(
                "\n[[caches]]\nname = \"kv\"\ncapacity = {cap}\neviction = \"{}\"\nlatency = \"exp(200us)\"\n",
                EVICTIONS[ev]
            );
            if ttl {
                t += "ttl = \"500ms\"\n";
            }
        }
        if let Some((replicas, repl, from)) = self.db {
            t += &format!(
                "\n[[databases]]\nname = \"db\"\nreplicas = {replicas}\nread_time = \"exp(1ms)\"\nwrite_time = \"exp(2ms)\"\nreplication = \"{}\"\nreplication_delay = \"exp(5ms)\"\n",
                REPLICATION[repl]
            );
            let from = if replicas == 0 { 0 } else { from };
            t += match from {
                0 => "read_from = \"primary\"\n",
                1 => "read_from = \"replicas\"\n",
                _ => "read_from = \"read_your_writes(100ms)\"\n",
            };
        }
        if let Some(ms) = self.fault {
            t += &format!(
                "\n[[faults]]\nkill = \"app.0\"\nat = \"1s\"\nrecover = \"{}ms\"\n",
                1001 + ms
            );
        }
        t += "\n[network]\n";
        if let Some(us) = self.latency_us {
            t += &format!("latency = \"exp({us}us)\"\n");
        }
        t += &format!("loss = {}\n", self.loss);
        if self.partition {
            t += &format!(
                "partitions = [{{ sides = [[\"users\"], [\"{target}\"]], from = \"1500ms\", until = \"1800ms\" }}]\n"
            );
        }
        t
    }
}

fn topo() -> impl Strategy<Value = Topo> {
    let traffic = (
        prop::option::of((1u32..30, 1u32..50)),
        10u32..400,
        prop::option::of(20u32..2000),
        prop::option::of(1u32..4),
        0.0f64..=1.0,
        1u32..5000,
        any::<bool>(),
    );
    let system = (
        prop::option::of((0..ALGORITHMS.len(), any::<bool>())),
        1u32..5,
        1u32..9,
        prop::option::of(0u32..50),
        (0usize..4, 100u32..20_000),
    );
    let data = (
        prop::option::of((1u32..1000, 0..EVICTIONS.len(), any::<bool>())),
        prop::option::of((0u32..3, 0..REPLICATION.len(), 0usize..3)),
        prop::option::of(0u32..1000),
        any::<bool>(),
        prop::option::of(50u32..2000),
        prop_oneof![Just(0.0), 0.0f64..0.05],
    );
    (traffic, system, data).prop_map(
        |(
            (closed, rate, timeout_ms, retries, read_ratio, keys, zipf),
            (lb, instances, workers, queue, service),
            (cache, db, fault, partition, latency_us, loss),
        )| Topo {
            closed,
            rate,
            timeout_ms,
            retries,
            read_ratio: (read_ratio * 100.0).round() / 100.0,
            keys,
            zipf,
            lb,
            instances,
            workers,
            queue,
            service,
            cache,
            db,
            fault,
            partition,
            latency_us,
            loss: (loss * 1000.0).round() / 1000.0,
        },
    )
}

/// `DSSIM_PROPTEST_CASES=N` (and `DSSIM_PROPTEST_SEED=S`) run a longer hunt by hand; CI
/// keeps the fixed defaults.
fn config(cases: u32, seed: u64) -> Config {
    let env = |k: &str| std::env::var(k).ok().and_then(|v| v.parse::<u64>().ok());
    Config {
        cases: env("DSSIM_PROPTEST_CASES").map_or(cases, |c| c as u32),
        rng_seed: RngSeed::Fixed(env("DSSIM_PROPTEST_SEED").unwrap_or(seed)),
        failure_persistence: None,
        max_shrink_iters: 64,
        ..Config::default()
    }
}

fn run(text: &str, seed: u64) -> Result<RunReport, String> {
    let model: ModelConfig = toml::from_str(text).map_err(|e| format!("parse: {e}"))?;
    model
        .validate()
        .map_err(|e| format!("validate: {e:?}\n{text}"))?;
    let opts = RunOptions {
        timeseries: Some(SimTime::from_millis(500)),
        ..RunOptions::new(seed, SimTime::from_secs(3), SimTime::from_millis(500))
    };
    let world = model.build(&opts).map_err(|e| format!("build: {e:?}"))?;
    world.run().map_err(|e| format!("run: {e}\n{text}"))
}

fn check_ranges(r: &RunReport, text: &str) -> Result<(), TestCaseError> {
    let m = |k: &str| r.metric(k);
    let (req, ok) = (m("requests").unwrap_or(0.0), m("ok").unwrap_or(0.0));
    let ended: f64 = ["ok", "errors", "timeouts", "shed", "dropped"]
        .iter()
        .map(|k| m(k).unwrap_or(0.0))
        .sum();
    prop_assert_eq!(req, ended, "conservation in the report\n{}", text);
    prop_assert!(ok <= req);
    for k in ["cache_hit_ratio", "availability"] {
        if let Some(v) = m(k) {
            prop_assert!(
                (0.0..=1.0).contains(&v),
                "{} = {} out of [0, 1]\n{}",
                k,
                v,
                text
            );
        }
    }
    for c in &r.components {
        for (what, v) in [("hit_ratio", c.hit_ratio), ("utilization", c.utilization)] {
            if let Some(v) = v {
                prop_assert!(
                    (0.0..=1.0 + 1e-9).contains(&v),
                    "{}.{} = {} out of [0, 1]\n{}",
                    c.component,
                    what,
                    v,
                    text
                );
            }
        }
    }
    let ps: Vec<f64> = ["p50_ms", "p90_ms", "p95_ms", "p99_ms", "p999_ms", "max_ms"]
        .iter()
        .filter_map(|k| m(k))
        .collect();
    if ok > 0.0 {
        prop_assert_eq!(ps.len(), 6, "percentiles missing with {} ok requests", ok);
    }
    for w in ps.windows(2) {
        prop_assert!(w[0] <= w[1], "percentiles not monotone: {:?}\n{}", ps, text);
    }
    for w in r.quantiles.windows(2) {
        prop_assert!(w[0].1 <= w[1].1, "CDF not monotone: {:?}", w);
    }
    for (k, v) in &r.metrics {
        if let dssim_components::Cell::Float(f) = v {
            prop_assert!(f.is_finite(), "{} = {}\n{}", k, f, text);
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(config(48, 0x5eed_0007))]

    #[test]
    fn random_models_run_conserve_and_repeat(t in topo(), seed in 0u64..1000) {
        let text = t.toml();
        let a = run(&text, seed).map_err(TestCaseError::fail)?;
        check_ranges(&a, &text)?;
        let b = run(&text, seed).map_err(TestCaseError::fail)?;
        prop_assert!(a == b, "two runs with seed {} differ\n{}", seed, text);
    }
}

proptest! {
    #![proptest_config(config(6, 0x5eed_0008))]

    #[test]
    fn nothing_is_lost_on_the_way_to_csv(t in topo(), reps in 1u32..3) {
        let dir = tmp_dir("prop-csv");
        let mut model = String::new();
        for line in t.toml().lines() {
            // Tables of the model move under [model.*] in an inline experiment.
            let l = line
                .replace("[[clients]]", "[[model.clients]]")
                .replace("[[services]]", "[[model.services]]")
                .replace("[[caches]]", "[[model.caches]]")
                .replace("[[databases]]", "[[model.databases]]")
                .replace("[[load_balancers]]", "[[model.load_balancers]]")
                .replace("[[faults]]", "[[model.faults]]")
                .replace("[network]", "[model.network]");
            model += &l;
            model += "\n";
        }
        let sweep = if t.closed.is_some() {
            "\"services.app.workers\" = [1, 3]"
        } else {
            "\"clients.users.rate\" = [20, 150]"
        };
        let exp = format!(
            "name = \"prop\"\nduration = \"2s\"\nwarmup = \"200ms\"\nseed = 3\nreplications = {reps}\n\n{model}\n[sweep]\n{sweep}\n\n[output]\ntimeseries = \"500ms\"\n"
        );
        let file = write(&dir, "prop.toml", &exp);
        let out = dir.join("out");
        let o = dssim(&["run", file.to_str().unwrap(), "--out", out.to_str().unwrap(), "--jobs", "2"]);
        prop_assert!(o.status.success(), "{}\n{}", String::from_utf8_lossy(&o.stderr), exp);
        let rows = read_csv(&out.join("runs.csv"));
        prop_assert_eq!(rows.len(), 2 * reps as usize, "runs.csv rows\n{}", exp);
        for (i, r) in rows.iter().enumerate() {
            prop_assert_eq!(num(r, "run"), i as f64);
            let ended: f64 = ["ok", "errors", "timeouts", "shed", "dropped"].iter().map(|k| num(r, k)).sum();
            prop_assert_eq!(num(r, "requests"), ended, "row {}\n{}", i, exp);
        }
        let runs: std::collections::BTreeSet<String> = read_csv(&out.join("components.csv"))
            .iter()
            .map(|r| r["run"].clone())
            .collect();
        prop_assert_eq!(runs.len(), rows.len(), "components.csv covers every run");
        let _ = std::fs::remove_dir_all(&dir);
    }
}

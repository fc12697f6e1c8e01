//! Caches against theory: LRU under zipf vs the Che approximation, FIFO and random vs
//! h = pT/(1+pT), a TTL cache vs λT/(1+λT), the browser cache (a TTL cache per user),
//! a cache server with `max_ops` vs M/D/1; and behaviours: stampede protection, write-behind
//! losses, CDN offload, warming. Every run also checks conservation (`World::run` fails if
//! a request does not end exactly once).
//!
//! Tolerances: each figure is the mean of R replications with different seeds; the check is
//! |mean - theory| <= 4 standard errors (from the spread of the replications) plus, for
//! approximations, the approximation's own error bound (stated where used).

use dssim_components::cache::is_cacheable;
use dssim_components::faults::FaultAction;
use dssim_components::node::Msg;
use dssim_components::{ModelConfig, RunOptions, RunReport};
use dssim_engine::parse_duration;

use crate::support::{mean_se, model, users_to_app};

fn opts(seed: u64, duration: &str, warmup: &str) -> RunOptions {
    RunOptions::new(
        seed,
        parse_duration(duration).unwrap(),
        parse_duration(warmup).unwrap(),
    )
}

/// One run; `inject` lists (time, component, message) to schedule first.
fn run_with(m: &ModelConfig, o: &RunOptions, inject: &[(&str, &str, Msg)]) -> RunReport {
    let mut w = m.build(o).expect("builds");
    for (at, name, msg) in inject {
        assert!(w.inject(name, parse_duration(at).unwrap(), *msg), "{name}");
    }
    w.run().expect("conservation holds")
}

/// One run in which the cache "redis" dies at `from` and recovers at `until`.
fn run_with_outage(m: &ModelConfig, o: &RunOptions, from: &str, until: &str) -> RunReport {
    run_with(
        m,
        o,
        &[
            (from, "redis", Msg::Fault(FaultAction::Kill)),
            (until, "redis", Msg::Fault(FaultAction::Recover)),
        ],
    )
}

fn run(m: &ModelConfig, seed: u64, duration: &str, warmup: &str) -> RunReport {
    run_with(m, &opts(seed, duration, warmup), &[])
}

fn row<'a>(r: &'a RunReport, name: &str) -> &'a dssim_components::ComponentRow {
    r.components
        .iter()
        .find(|c| c.component == name)
        .unwrap_or_else(|| panic!("no components.csv row {name}"))
}

fn check(what: &str, xs: &[f64], theory: f64, approx: f64) {
    let (m, se) = mean_se(xs);
    let tol = 4.0 * se + approx;
    println!("{what}: measured {m:.4} (se {se:.4}) theory {theory:.4} tolerance {tol:.4}");
    assert!(
        (m - theory).abs() <= tol,
        "{what}: measured {m:.4} vs theory {theory:.4} (tolerance {tol:.4}, runs {xs:?})"
    );
}

fn zipf(n: usize, a: f64) -> Vec<f64> {
    let w: Vec<f64> = (1..=n).map(|i| (i as f64).powf(-a)).collect();
    let s: f64 = w.iter().sum();
    w.into_iter().map(|x| x / s).collect()
}

/// Solves `f(t) = target` for an increasing `f` by bisection.
fn solve(f: impl Fn(f64) -> f64, target: f64) -> f64 {
    let (mut lo, mut hi) = (0.0, 1.0);
    while f(hi) < target {
        hi *= 2.0;
    }
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if f(mid) < target {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi)
}

/// Che et al.: h_i = 1 - exp(-p_i T), sum of h_i = C.
fn che_lru(p: &[f64], c: f64) -> f64 {
    let t = solve(|t| p.iter().map(|pi| 1.0 - (-pi * t).exp()).sum(), c);
    p.iter().map(|pi| pi * (1.0 - (-pi * t).exp())).sum()
}

/// Martina, Garetto, Leonardi: FIFO and random, h_i = p_i T / (1 + p_i T).
fn che_fifo(p: &[f64], c: f64) -> f64 {
    let t = solve(|t| p.iter().map(|pi| pi * t / (1.0 + pi * t)).sum(), c);
    p.iter().map(|pi| pi * (pi * t / (1.0 + pi * t))).sum()
}

const KEYS: usize = 1000;
const CAPACITY: usize = 100;
const REPS: u64 = 5;

/// Clients -> one app node (no CPU time) -> cache; misses are answered at once (no backend).
fn app_cache(eviction: &str, extra: &str) -> ModelConfig {
    app_cache_with(&format!(
        "capacity = {CAPACITY}\neviction = \"{eviction}\"\n{extra}"
    ))
}

/// [`app_cache`] with the cache's own keys (after its name) as given.
fn app_cache_with(cache: &str) -> ModelConfig {
    app_cache_model(
        2000,
        &[&format!("keys = {KEYS}"), r#"popularity = "zipf(0.8)""#],
        None,
        cache,
    )
}

/// Clients `users` (`rate`/s, `client` lines) -> one app node (no CPU time) -> cache
/// `redis` (its keys after the name: `cache`); with `origin` = (name, service time), the
/// cache's origin is a service of that name that never queues.
fn app_cache_model(
    rate: u32,
    client: &[&str],
    origin: Option<(&str, &str)>,
    cache: &str,
) -> ModelConfig {
    let mut app = String::from("workers = 100000\nservice_time = \"0ms\"\ncache = \"redis\"\n");
    let mut cache_lines = String::from("[[caches]]\nname = \"redis\"\n");
    if let Some((name, time)) = origin {
        app += &format!(
            "\n[[services]]\nname = \"{name}\"\nworkers = 100000\nservice_time = \"{time}\"\n"
        );
        cache_lines += &format!("origin = \"{name}\"\n");
    }
    model(&users_to_app(
        rate,
        client,
        &format!("{app}\n{cache_lines}{cache}\n"),
    ))
}

fn hit_ratios(m: &ModelConfig) -> Vec<f64> {
    (0..REPS)
        .map(|s| {
            let r = run(m, 100 + s, "25s", "5s");
            let h = r.metric("cache_hit_ratio").unwrap();
            assert_eq!(row(&r, "redis").hit_ratio, Some(h));
            h
        })
        .collect()
}

// Che's approximation is asymptotically exact; for Zipf popularity with hundreds of
// objects its error is well below 1% (Fricker, Robert, Roberts, ITC 2012), and so is the
// FIFO/random approximation's (Martina et al. 2014): allow 0.01.
const APPROX: f64 = 0.01;

#[test]
fn lru_hit_ratio_matches_che() {
    let theory = che_lru(&zipf(KEYS, 0.8), CAPACITY as f64);
    check("lru", &hit_ratios(&app_cache("lru", "")), theory, APPROX);
}

#[test]
fn fifo_and_random_match_their_approximation() {
    let theory = che_fifo(&zipf(KEYS, 0.8), CAPACITY as f64);
    check("fifo", &hit_ratios(&app_cache("fifo", "")), theory, APPROX);
    check(
        "random",
        &hit_ratios(&app_cache("random", "")),
        theory,
        APPROX,
    );
}

#[test]
fn lfu_sits_between_lru_and_the_top_keys() {
    // Under independent requests no policy that cannot see the future beats holding the C
    // most popular keys; in-cache LFU (counts die with the entry, as in Redis) gets part of
    // the way there, above LRU.
    let p = zipf(KEYS, 0.8);
    let top: f64 = p[..CAPACITY].iter().sum();
    let lru = che_lru(&p, CAPACITY as f64);
    let xs = hit_ratios(&app_cache("lfu", ""));
    let (m, se) = mean_se(&xs);
    println!("lfu: measured {m:.4} (se {se:.4}); lru (Che) {lru:.4}; top {CAPACITY} keys {top:.4}");
    assert!(m > lru + APPROX + 4.0 * se, "LFU beats LRU under IRM");
    assert!(m < top + 4.0 * se, "nothing beats the top keys under IRM");
}

#[test]
fn ttl_cache_matches_lambda_t_over_one_plus_lambda_t() {
    // Unbounded capacity, TTL 200 ms set on the miss and not reset by hits: a key asked at
    // Poisson rate λ hits with probability λT/(1+λT). Zipf keys give every key its own λ.
    let m = app_cache_with("ttl = \"200ms\"");
    let t = 0.2;
    let theory: f64 = zipf(KEYS, 0.8)
        .iter()
        .map(|p| {
            let l = 2000.0 * p * t;
            p * l / (1.0 + l)
        })
        .sum();
    // The formula is exact for this model (a renewal argument): no approximation term.
    check("ttl", &hit_ratios(&m), theory, 0.0);
}

#[test]
fn browser_cache_is_a_ttl_cache_per_user() {
    // 10 users x 20 keys at 200/s: each (user, key) pair at λ = 1/s; max-age 2 s:
    // h = λT/(1+λT) = 2/3 for cacheable keys; browser hits end at once as ok requests.
    let m = model(&users_to_app(
        200,
        &[
            "keys = 20",
            "user_ids = 10",
            r#"browser_cache = { max_age = "2s", cacheable = 0.5 }"#,
        ],
        r#"
        workers = 1000
        service_time = "0ms"
        "#,
    ));
    let mut xs = Vec::new();
    for s in 0..REPS {
        let r = run(&m, 200 + s, "60s", "10s");
        let b = row(&r, "users.browser");
        assert_eq!(b.kind, "browser_cache");
        xs.push(b.hit_ratio.unwrap());
        assert_eq!(r.metric("errors"), Some(0.0));
        // Every request ends ok: browser hits included.
        assert_eq!(r.metric("ok"), r.metric("requests"));
        // The app sees only what the browser did not answer.
        let cacheable = (0..20).filter(|&k| is_cacheable(k, 0.5)).count() as f64 / 20.0;
        let served = row(&r, "app").requests as f64 / r.metric("requests").unwrap();
        let expected = 1.0 - cacheable * b.hit_ratio.unwrap();
        assert!((served - expected).abs() < 0.03, "{served} vs {expected}");
    }
    check("browser", &xs, 2.0 / 3.0, 0.0);
}

#[test]
fn cache_server_with_max_ops_is_an_md1_queue() {
    // 800 ops/s on a cache serving 1000 ops/s: M/D/1 with ρ = 0.8, service 1 ms,
    // Wq = ρ/(2μ(1-ρ)) = 2 ms, so the mean latency is 3 ms; utilization 0.8.
    let m = app_cache("lru", "max_ops = 1000");
    let m = {
        let mut m = m;
        m.clients[0].rate = Some(800.0);
        m
    };
    let mut lat = Vec::new();
    let mut util = Vec::new();
    for s in 0..REPS {
        let r = run(&m, 300 + s, "60s", "5s");
        lat.push(r.metric("latency_mean_ms").unwrap());
        util.push(row(&r, "redis").utilization.unwrap());
    }
    check("max_ops latency (ms)", &lat, 3.0, 0.0);
    check("max_ops utilization", &util, 0.8, 0.0);
}

/// A hot key (every request reads key 0) cached for 1 s in front of a 20 ms backend.
fn stampede(protection: &str) -> (f64, f64) {
    let m = app_cache_model(
        2000,
        &["keys = 1"],
        Some(("db", "20ms")),
        &format!("ttl = \"1s\"\nstampede = \"{protection}\""),
    );
    let r = run(&m, 7, "11s", "1s");
    (
        row(&r, "db").requests as f64,
        row(&r, "redis").hit_ratio.unwrap(),
    )
}

#[test]
fn stampede_protection_sends_one_read_per_expiry() {
    // About 10 expiries in the 10 s window. Unprotected, every request in the 20 ms the
    // first miss takes also misses: about 1 + 2000 x 0.02 = 41 database reads per expiry.
    let (none, h_none) = stampede("none");
    let (coalesce, h_c) = stampede("coalesce");
    let (lock, h_l) = stampede("lock");
    println!("db reads: none {none}, coalesce {coalesce}, lock {lock}; hit ratios {h_none:.4} {h_c:.4} {h_l:.4}");
    assert!((9.0..=11.0).contains(&coalesce), "{coalesce}");
    assert!((9.0..=11.0).contains(&lock), "{lock}");
    // ~10 x 41 = 410 reads; Poisson counts give a standard deviation near 20.
    assert!((300.0..=520.0).contains(&none), "{none}");
}

fn write_behind(policy: &str) -> RunReport {
    let m = app_cache_model(
        1000,
        &["read_ratio = 0.5", "keys = 100000"],
        Some(("db", "1ms")),
        &format!("write_policy = \"{policy}\"\nflush_interval = \"1s\""),
    );
    run_with_outage(&m, &opts(11, "10s", "1s"), "5.5s", "6s")
}

#[test]
fn write_behind_loses_buffered_writes_when_the_cache_dies() {
    // Flushes come every second from the first write, so the kill at 5.5 s finds about
    // half a second of writes buffered: 500 writes/s x 0.5 s = 250 (Poisson sd ~16).
    let r = write_behind("write_behind");
    let lost = r.metric("lost_writes").unwrap();
    println!("write-behind lost {lost}");
    assert!((lost - 250.0).abs() < 5.0 * 250f64.sqrt(), "{lost}");
    // Requests that reached the dead cache failed; the rest were served.
    assert!(r.metric("errors").unwrap() > 0.0);
    let r = write_behind("write_through");
    assert_eq!(
        r.metric("lost_writes"),
        None,
        "no write-behind cache: empty column"
    );
}

#[test]
fn cdn_edge_offloads_the_origin() {
    let m = model(
        r#"
        [[clients]]
        name = "users"
        target = "edge"
        rate = 500
        keys = 200

        [[services]]
        name = "app"
        workers = 1000
        service_time = "1ms"

        [[caches]]
        name = "edge"
        tier = "cdn"
        origin = "app"
        cacheable = 0.4
        ttl = "5m"
        latency = "5ms"
        origin_latency = "20ms"
        "#,
    );
    let r = run(&m, 5, "30s", "10s");
    let edge = row(&r, "edge");
    let origin = row(&r, "edge.origin");
    assert_eq!(edge.kind, "cdn");
    // Every cacheable key was fetched during warm-up and lives 5 minutes.
    assert_eq!(edge.hit_ratio, Some(1.0));
    // Offload = the share of requests on cacheable keys (binomial, 4 sd).
    let share = (0..200).filter(|&k| is_cacheable(k, 0.4)).count() as f64 / 200.0;
    let n = edge.requests as f64;
    let sd = (share * (1.0 - share) / n).sqrt();
    let offload = origin.hit_ratio.unwrap();
    println!("cdn offload {offload:.4} vs {share:.4}");
    assert!((offload - share).abs() < 4.0 * sd);
    // The origin saw what the edge sent it, up to the boundary of the measured window: the
    // edge counts a miss when it leaves and the origin when it arrives 20 ms later, so about
    // λ_miss x 20 ms = 500 x 0.6 x 0.02 = 6 requests straddle the warm-up boundary (Poisson:
    // sd about 2.5; allow the mean plus 4 sd).
    let gap = (row(&r, "app").requests as f64 - origin.requests as f64).abs();
    assert!(
        gap <= 16.0,
        "origin {} vs app {}",
        origin.requests,
        row(&r, "app").requests
    );
    // Hits take the edge latency (5 ms); misses add 2 x 20 ms + 1 ms at the origin.
    let p = |q: &str| r.metric(q).unwrap();
    assert!((p("p50_ms") - 46.0).abs() < 1.0 || (p("p50_ms") - 5.0).abs() < 0.1);
    assert!((p("p99_ms") - 46.0).abs() < 1.0, "{}", p("p99_ms"));
    // The edge's own row: time from arrival to answer, origin round trips included.
    let edge_p99 = edge.p99_ms.unwrap();
    assert!((edge_p99 - 46.0).abs() < 1.0, "{edge_p99}");
    assert_eq!(r.metric("ok"), r.metric("requests"));
}

/// 2000 entries over 10000 zipf keys at 500 requests/s: a cold cache needs many seconds
/// to fill.
fn warming_model(warm: &str) -> ModelConfig {
    app_cache_model(
        500,
        &["keys = 10000", r#"popularity = "zipf(0.8)""#],
        None,
        &format!("capacity = 2000\n{warm}"),
    )
}

#[test]
fn warming_removes_the_cold_start() {
    // A warmed cache starts with the hottest keys, above the LRU steady state.
    let h = |m: &ModelConfig| run(m, 9, "2s", "0s").metric("cache_hit_ratio").unwrap();
    let (hc, hw) = (
        h(&warming_model("")),
        h(&warming_model("warm = \"hottest\"")),
    );
    let p = zipf(10_000, 0.8);
    let steady = che_lru(&p, 2000.0);
    let top: f64 = p[..2000].iter().sum();
    println!(
        "first 2 s: cold {hc:.4}, warm {hw:.4}; LRU steady state {steady:.4}, top keys {top:.4}"
    );
    assert!(hw > hc + 0.1, "cold {hc} warm {hw}");
    assert!(
        hw > steady - 0.03 && hw < top + 0.03,
        "warm starts near the top keys"
    );
}

#[test]
fn local_caches_are_one_per_instance() {
    let mut m = app_cache("lru", "local = true");
    m.services[0].instances = 3;
    let r = run(&m, 4, "20s", "5s");
    let theory = che_lru(&zipf(KEYS, 0.8), CAPACITY as f64);
    let h = row(&r, "redis").hit_ratio.unwrap();
    // Each instance's cache sees the same popularity (independent thinning), so each is an
    // LRU cache of the same capacity: the same Che hit ratio, with 3x the memory.
    println!("local caches: {h:.4} vs {theory:.4}");
    assert!((h - theory).abs() < 0.02);
    assert_eq!(
        row(&r, "redis").requests as f64,
        r.metric("requests").unwrap()
    );
}

#[test]
fn a_dead_cache_fails_requests_and_recovers() {
    let m = app_cache("lru", "");
    let r = run_with_outage(&m, &opts(3, "6s", "1s"), "2s", "3s");
    let errors = r.metric("errors").unwrap();
    // One second of 2000/s fails.
    assert!((errors - 2000.0).abs() < 5.0 * 2000f64.sqrt(), "{errors}");
}

/// While the cache is down, `fallback = "origin"` sends every request to the origin
/// directly: no errors, and the origin serves the outage's reads (one second of 2,000/s
/// on top of the misses); `error` (the default) fails them.
#[test]
fn a_dead_cache_falls_back_to_its_origin_when_configured() {
    let fallback = |f: &str| {
        let m = app_cache_model(
            2000,
            &["keys = 1000", r#"popularity = "zipf(0.8)""#],
            Some(("store", "1ms")),
            &format!("fallback = \"{f}\""),
        );
        run_with_outage(&m, &opts(5, "6s", "1s"), "2s", "3s")
    };
    let (err, orig) = (fallback("error"), fallback("origin"));
    let errors = err.metric("errors").unwrap();
    assert!((errors - 2000.0).abs() < 5.0 * 2000f64.sqrt(), "{errors}");
    assert_eq!(orig.metric("errors"), Some(0.0));
    let extra = row(&orig, "store").requests as f64 - row(&err, "store").requests as f64;
    println!("error: {errors} errors; origin: 0 errors, {extra} more store reads");
    // One second of 2,000 requests/s read the store directly, less the misses the dead
    // cache would have sent it anyway (few: 1,000 keys, all cached after the first second),
    // plus the refills after the restart (at most the 1,000 keys).
    assert!(
        (extra - 2000.0).abs() < 5.0 * 2000f64.sqrt() + 1000.0,
        "{extra}"
    );
    assert!(extra > 1500.0, "{extra}");
}

#[test]
fn cache_mistakes_are_reported_with_paths() {
    let bad = r#"
        [[clients]]
        name = "users"
        target = "redis"

        [[services]]
        name = "app"
        service_time = "1ms"
        cache = "rediss"

        [[caches]]
        name = "redis"
        cacheable = 0.5
        max_ops = 0

        [[caches]]
        name = "a"
        tier = "cdn"
        origin = "b"

        [[caches]]
        name = "b"
        tier = "cdn"
        origin = "a"

        [[caches]]
        name = "c"
        tier = "cdn"
        warm = "hottest"

        [[services]]
        name = "web"
        service_time = "1ms"
        cache = "d"

        [[caches]]
        name = "d"
        origin = "web"
        warm = 20000000
        "#;
    let m: ModelConfig = toml::from_str(bad).unwrap();
    let errs = m.validate().unwrap_err();
    let has = |path: &str, word: &str| {
        errs.iter()
            .any(|e| e.path == path && e.message.contains(word))
    };
    assert!(has("clients.users.target", "app cache"), "{errs:?}");
    assert!(
        has("services.app.cache", "did you mean \"redis\""),
        "{errs:?}"
    );
    assert!(has("caches.redis.cacheable", "CDN"), "{errs:?}");
    assert!(has("caches.redis.max_ops", "above zero"), "{errs:?}");
    assert!(has("caches.a.origin", "loop"), "{errs:?}");
    assert!(has("caches.c.origin", "needs `origin`"), "{errs:?}");
    assert!(has("caches.c.warm", "give `capacity`"), "{errs:?}");
    assert!(has("caches.d.origin", "would loop"), "{errs:?}");
    assert!(has("caches.d.warm", "at most"), "{errs:?}");
    let unknown = toml::from_str::<ModelConfig>("[[caches]]\nname = \"r\"\nevicton = \"lru\"\n");
    assert!(unknown.is_err());
}

#[test]
fn runs_with_caches_are_deterministic() {
    // Random eviction draws from the cache's stream; the CDN picks origin instances at random.
    let mut m = app_cache("random", "max_ops = 50000\nlatency = \"exp(0.2ms)\"");
    m.services[0].instances = 2;
    let a = run(&m, 21, "3s", "1s");
    let b = run(&m, 21, "3s", "1s");
    assert_eq!(a, b);
    let c = run(&m, 22, "3s", "1s");
    assert_ne!(a.metric("cache_hit_ratio"), c.metric("cache_hit_ratio"));
}

#[test]
fn conservation_holds_through_loss_partitions_timeouts_and_crashes() {
    // Every request ends exactly once (World::run checks it) while the app loses its cache
    // for a second, messages are lost, clients time out and the cache crashes.
    for (stampede, policy) in [
        ("none", "cache_aside"),
        ("coalesce", "write_through"),
        ("lock", "write_behind"),
    ] {
        let m = model(&format!(
            r#"
            [[clients]]
            name = "users"
            target = "edge"
            rate = 1500
            read_ratio = 0.8
            keys = 50
            timeout = "30ms"
            browser_cache = {{ max_age = "100ms", cacheable = 0.2 }}

            [[caches]]
            name = "edge"
            tier = "cdn"
            origin = "app"
            cacheable = 0.3
            ttl = "200ms"
            origin_latency = "exp(3ms)"
            stampede = "{stampede}"

            [[services]]
            name = "app"
            instances = 2
            workers = 4
            queue = 10
            service_time = "exp(1ms)"
            cache = "redis"

            [[caches]]
            name = "redis"
            capacity = 20
            ttl = "50ms"
            max_ops = 3000
            stampede = "{stampede}"
            write_policy = "{policy}"
            flush_interval = "20ms"
            origin = "db"

            [[services]]
            name = "db"
            workers = 2
            service_time = "exp(2ms)"

            [network]
            latency = "exp(0.5ms)"
            loss = 0.01

            [[network.partitions]]
            sides = [["redis"], ["app"]]
            from = "1s"
            until = "1.5s"
            "#
        ));
        let r = run_with_outage(&m, &opts(5, "4s", "0.5s"), "2.5s", "2.7s");
        let n = |k: &str| r.metric(k).unwrap();
        println!(
            "{stampede}/{policy}: requests {} ok {} errors {} timeouts {} shed {} dropped {}",
            n("requests"),
            n("ok"),
            n("errors"),
            n("timeouts"),
            n("shed"),
            n("dropped")
        );
        assert!(n("dropped") + n("errors") + n("timeouts") > 0.0);
        assert!(n("ok") > 0.5 * n("requests"));
    }
}

#[test]
fn timeseries_show_a_cold_cache_warming_up() {
    let mut o = opts(2, "20s", "0s");
    o.timeseries = Some(parse_duration("2s").unwrap());
    let series = |warm: &str| -> Vec<f64> {
        let r = warming_model(warm).build(&o).unwrap().run().unwrap();
        let h: Vec<f64> = r.series.iter().filter_map(|s| s.cache_hit_ratio).collect();
        assert_eq!(h.len(), r.series.len());
        h
    };
    let (cold, warm) = (series(""), series("warm = \"hottest\""));
    println!("hit ratio per 2 s: cold {cold:.3?}\n                   warm {warm:.3?}");
    assert!(
        cold[0] < cold[cold.len() - 1] - 0.1,
        "the cold cache warms up"
    );
    assert!(warm[0] > cold[0] + 0.2, "the warmed cache starts warm");
}

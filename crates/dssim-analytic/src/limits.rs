//! Limits on one run: before anything is built, estimate the events a run will process and
//! the memory it will hold, and refuse a run past the limits with a message that names the
//! parameter responsible. `dssim run --max-events N --max-memory SIZE` raises the limits,
//! `--force` ignores them; `dssim check` prints the estimates. See docs/limits.md.
//!
//! The estimates work on a model that has not been validated yet (validation itself walks
//! every instance), so they never trust a value to be in range.

use dssim_components::client::{Arrival, ClientConfig};
use dssim_components::model::topology::{CacheIx, ClientIx, Component, LbIx, ServiceIx, Topology};
use dssim_components::{ModelConfig, RunOptions};

/// Default: at most 10^10 events per run (hours of wall time at a few million events/s).
pub const DEFAULT_MAX_EVENTS: f64 = 1e10;
/// Default: at most 8 GiB per run.
pub const DEFAULT_MAX_MEMORY: f64 = 8.0 * GIB;

const GIB: f64 = 1024.0 * 1024.0 * 1024.0;
/// What a run holds before any component: the event queue, shared statistics, buffers.
const BASE_BYTES: f64 = 16.0 * 1024.0 * 1024.0;
/// One actor with its own latency histogram (an HDR histogram of 1 µs to 1 h at three
/// significant digits is about 190 KiB): an instance, a database node, a cache node, a load
/// balancer. Measured: 1,000 instances add 193 MB.
const ACTOR_BYTES: f64 = 200.0 * 1024.0;
/// One cache entry (table slot, eviction links, lookup map).
const CACHE_ENTRY_BYTES: f64 = 160.0;
/// One key held by a database node's version map, and by the consistency oracle.
const KEY_BYTES: f64 = 48.0;
/// One request in flight (request table slot, return path, its deadline and events).
const INFLIGHT_BYTES: f64 = 512.0;
/// One closed-loop user.
const USER_BYTES: f64 = 128.0;
/// One time-series row.
const ROW_BYTES: f64 = 1024.0;

/// The limits a run must stay within.
#[derive(Clone, Debug, PartialEq)]
pub struct Limits {
    /// Most events one run may process.
    pub max_events: f64,
    /// Most bytes one run may hold.
    pub max_memory: f64,
    /// Run anyway.
    pub force: bool,
    /// Most events a whole sweep may process (all its runs together).
    pub max_total_events: f64,
    /// Largest trace file (`clients.*.file`) read, in bytes.
    pub max_trace_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_events: DEFAULT_MAX_EVENTS,
            max_memory: DEFAULT_MAX_MEMORY,
            force: false,
            max_total_events: DEFAULT_MAX_TOTAL_EVENTS,
            max_trace_bytes: DEFAULT_MAX_TRACE_BYTES,
        }
    }
}

/// Default: at most 10^12 events in a whole sweep (days of CPU time).
pub const DEFAULT_MAX_TOTAL_EVENTS: f64 = 1e12;
/// Default: trace files of at most 1 GiB.
pub const DEFAULT_MAX_TRACE_BYTES: u64 = 1 << 30;
/// The most runs one sweep may have (shard larger plans, or pass --force).
pub const MAX_RUNS: usize = 100_000_000;

/// What one run will cost, with the largest contributor to each figure.
#[derive(Clone, Debug, PartialEq)]
pub struct RunEstimate {
    /// Events processed.
    pub events: f64,
    /// The model path that drives most of the events, and how (`clients.users.rate × duration`).
    pub events_cause: (String, String),
    /// Peak bytes held.
    pub memory: f64,
    /// The model path that holds most of the memory, and how.
    pub memory_cause: (String, String),
}

/// A run past a limit: the model path responsible and the message.
#[derive(Clone, Debug, PartialEq)]
pub struct Refusal {
    /// The model path to point at (`clients.users.rate`).
    pub path: String,
    /// The whole message, with how to raise the limit.
    pub message: String,
}

/// Parses a memory size: `8GiB`, `512MB`, `2G`, `1e9` (bytes).
pub fn parse_size(text: &str) -> Result<f64, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| c.is_ascii_alphabetic() && c != 'e' && c != 'E')
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num
        .trim()
        .parse()
        .map_err(|_| format!("expected a size such as \"8GiB\" or \"512MB\", found {text:?}"))?;
    let mult = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kb" => 1e3,
        "kib" => 1024.0,
        "m" | "mb" => 1e6,
        "mib" => 1024.0 * 1024.0,
        "g" | "gb" => 1e9,
        "gib" => GIB,
        "t" | "tb" => 1e12,
        "tib" => GIB * 1024.0,
        u => {
            return Err(format!(
                "unknown size unit {u:?} in {text:?}; use B, KB, MB, GB, GiB, TB"
            ))
        }
    };
    let v = n * mult;
    if v.is_finite() && v > 0.0 {
        Ok(v)
    } else {
        Err(format!("a size must be above zero; found {text:?}"))
    }
}

/// A byte count for people: `1.9 GiB`.
pub fn show_bytes(b: f64) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = b;
    let mut i = 0;
    while v >= 1024.0 && i + 1 < units.len() {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{v:.0} {}", units[i])
    } else {
        format!("{v:.1} {}", units[i])
    }
}

fn finite(x: f64) -> f64 {
    if x.is_finite() && x > 0.0 {
        x
    } else {
        0.0
    }
}

/// Estimates one run of `model` under `opts`.
pub fn estimate(model: &ModelConfig, opts: &RunOptions) -> RunEstimate {
    let secs = opts.duration.as_secs_f64();
    let net = model
        .network
        .latency
        .as_ref()
        .map_or(0.0, |d| finite(d.0.mean()) / 1e9);

    // Events: requests × events per request (two at the client, three per component on the
    // path: arrive, finish, answer), plus periodic work.
    let mut events = 0.0;
    let mut events_cause = (String::new(), "nothing".to_string());
    let mut top = -1.0;
    let mut rate_total = 0.0;
    let mut inflight = 0.0;
    let mut inflight_cause = String::new();
    let topo = Topology::new(model);
    for (ci, c) in model.clients.iter().enumerate() {
        let target = topo.target(ClientIx(ci));
        let path_s = target.map_or(0.0, |t| path_time(model, &topo, t)) + 2.0 * net;
        let (rate, how) = client_rate(c, path_s, opts);
        let hops = target.map_or(0.0, |t| hops(model, &topo, c, t));
        // The worst case: every attempt fails and is retried, up to `max` (a budget bounds
        // the retries to its ratio of the requests), each costing what the first did plus
        // its backoff timer.
        let retries = c.retries.as_ref().map_or(0.0, |r| {
            let max = f64::from(r.max);
            r.budget
                .filter(|b| b.is_finite() && *b >= 0.0)
                .map_or(max, |b| max.min(b))
        });
        let per_req = (2.0 + 3.0 * hops) + retries * (3.0 + 3.0 * hops);
        let e = rate * secs * per_req;
        events += e;
        if e > top {
            top = e;
            events_cause = if retries * (3.0 + 3.0 * hops) > 2.0 + 3.0 * hops {
                let p = format!("clients.{}.retries.max", c.name);
                let how = format!("{} × duration × (1 + {p}) attempts", how.0);
                (p, how)
            } else {
                (how.0, how.1)
            };
        }
        rate_total += rate;
        // Little's law on a stable path: a few sojourn times' worth of requests in flight,
        // fewer when the timeout is shorter. A deadline costs memory only while its attempt
        // is in flight (the client keeps deadlines in a FIFO with one wake-up queued, see
        // `dssim_engine::DeadlineFifo`), so a long timeout that is never reached adds
        // nothing. An overload that piles requests up is caught while the run goes: it
        // stops at the memory limit, naming it.
        let sojourn = (10.0 * path_s).clamp(0.01, 1.0);
        let wait = c
            .timeout
            .map_or(sojourn, |t| sojourn.min(t.0.as_secs_f64()));
        let f = if c.arrival == Arrival::Closed {
            c.users.map_or(0.0, |u| u as f64)
        } else {
            rate * wait
        };
        if f > inflight {
            inflight_cause = format!("clients.{}.rate", c.name);
        }
        inflight += f;
    }
    if let Some(iv) = opts.timeseries {
        let iv = iv.as_secs_f64();
        if iv > 0.0 {
            events += secs / iv;
        }
    }
    for (li, l) in model.load_balancers.iter().enumerate() {
        if let Some(h) = &l.health_check {
            let iv = h.interval.0.as_secs_f64();
            let backends = topo
                .backend_service(LbIx(li))
                .map_or(0.0, |s| f64::from(model.services[s.0].instances));
            if iv > 0.0 {
                events += 4.0 * backends * secs / iv;
            } else {
                events += f64::INFINITY;
            }
        }
    }

    // Memory: actors, tables that fill with keys, requests in flight.
    let mut parts: Vec<(String, String, f64)> = Vec::new();
    let keys = model
        .clients
        .iter()
        .map(|c| c.keys as f64)
        .fold(0.0, f64::max);
    let requests = rate_total * secs;
    for s in &model.services {
        let n = f64::from(s.instances);
        parts.push((
            format!("services.{}.instances", s.name),
            format!("{n} instances × ~200 KiB of statistics each"),
            n * ACTOR_BYTES,
        ));
    }
    for d in &model.databases {
        let nodes = f64::from(d.shards.max(1)) * (1.0 + f64::from(d.replicas));
        parts.push((
            format!("databases.{}.shards", d.name),
            format!("{nodes} database nodes × ~200 KiB of statistics each"),
            nodes * ACTOR_BYTES,
        ));
        let touched = keys.min(requests.max(0.0));
        parts.push((
            "clients.keys".to_string(),
            format!(
                "{touched:.0} keys held by {nodes} nodes of {:?} and the consistency oracle",
                d.name
            ),
            touched * KEY_BYTES * (nodes + 1.0),
        ));
    }
    for (ki, k) in model.caches.iter().enumerate() {
        let copies = if k.local {
            topo.users(CacheIx(ki))
                .iter()
                .map(|s| f64::from(model.services[s.0].instances))
                .sum::<f64>()
        } else {
            1.0
        };
        let entries = k
            .capacity
            .map_or(keys, |c| (c as f64).min(keys.max(1.0)))
            .min(requests.max(0.0));
        parts.push((
            format!("caches.{}.capacity", k.name),
            format!("{copies} cache node(s) of up to {entries:.0} entries"),
            copies * (ACTOR_BYTES + entries * CACHE_ENTRY_BYTES),
        ));
    }
    for c in &model.clients {
        if let Some(u) = c.users {
            parts.push((
                format!("clients.{}.users", c.name),
                format!("{u} closed-loop users"),
                u as f64 * USER_BYTES,
            ));
        }
        if c.browser_cache.is_some() {
            let users = c.user_ids.map_or(1.0, |u| u as f64);
            let entries = (users * c.keys as f64).min(requests);
            parts.push((
                format!("clients.{}.user_ids", c.name),
                format!("browser caches of {users} users"),
                entries * CACHE_ENTRY_BYTES,
            ));
        }
        if c.arrival == Arrival::Trace {
            parts.push((
                format!("clients.{}.file", c.name),
                format!("{} trace arrival times", c.trace.len()),
                c.trace.len() as f64 * 8.0,
            ));
        }
    }
    parts.push((
        inflight_cause,
        format!("~{inflight:.0} requests in flight (rate × a few sojourn times, or the timeout if shorter)"),
        inflight * INFLIGHT_BYTES,
    ));
    if let Some(iv) = opts.timeseries {
        let iv = iv.as_secs_f64();
        if iv > 0.0 {
            parts.push((
                "output.timeseries".to_string(),
                format!("{:.0} time-series rows", secs / iv),
                secs / iv * ROW_BYTES,
            ));
        }
    }
    let mut memory = BASE_BYTES;
    let mut memory_cause = (String::new(), "the run itself".to_string());
    let mut top = -1.0;
    for (path, how, bytes) in parts {
        let bytes = if bytes.is_nan() { f64::INFINITY } else { bytes };
        memory += bytes;
        if bytes > top {
            top = bytes;
            memory_cause = (path, how);
        }
    }
    RunEstimate {
        events: if events.is_nan() {
            f64::INFINITY
        } else {
            events
        },
        events_cause,
        memory,
        memory_cause,
    }
}

/// Requests per second a client sends, and the parameter that sets it.
fn client_rate(c: &ClientConfig, path_s: f64, opts: &RunOptions) -> (f64, (String, String)) {
    let p = format!("clients.{}", c.name);
    match c.arrival {
        Arrival::Closed => {
            let users = c.users.map_or(0.0, |u| u as f64);
            let think = c.think.as_ref().map_or(0.0, |d| finite(d.0.mean()) / 1e9);
            // Sub-microsecond paths: the clock's resolution (1 ns) is the only floor.
            // (A zero-time loop is left to validation, which names the spin.)
            let cycle = think + path_s;
            let cycle = if cycle > 0.0 { cycle.max(1e-9) } else { 1e-6 };
            (
                users / cycle,
                (
                    format!("{p}.users"),
                    format!("{p}.users / (think + time on the path) × duration"),
                ),
            )
        }
        Arrival::Steps | Arrival::Trace => (
            finite(c.mean_rate(opts.duration).unwrap_or(0.0)),
            (
                format!(
                    "{p}.{}",
                    if c.arrival == Arrival::Trace {
                        "file"
                    } else {
                        "steps"
                    }
                ),
                format!(
                    "{p}.{} × duration",
                    if c.arrival == Arrival::Trace {
                        "file"
                    } else {
                        "steps"
                    }
                ),
            ),
        ),
        Arrival::Diurnal => (
            finite(c.mean_rate(opts.duration).unwrap_or(0.0)),
            (
                format!("{p}.peak"),
                format!("({p}.rate + {p}.peak) / 2 × duration"),
            ),
        ),
        Arrival::Poisson | Arrival::Constant => {
            let r = c.rate.unwrap_or(0.0);
            (
                if r.is_finite() {
                    r.max(0.0)
                } else {
                    f64::INFINITY
                },
                (format!("{p}.rate"), format!("{p}.rate × duration")),
            )
        }
    }
}

/// Components a request to `to` passes through (the client's own included in the
/// constant), as a mean over reads and writes.
fn hops(model: &ModelConfig, topo: &Topology, c: &ClientConfig, to: Component) -> f64 {
    // One per load balancer and cache along the forward hops, then the service's own.
    let path: Vec<Component> = topo.walk(to).collect();
    let end = match path.last() {
        Some(&Component::Service(si)) => {
            let mut h = 1.0;
            if topo.cache_of(si).is_some() {
                h += 1.0;
            }
            if let Some(d) = topo.database_of(si).map(|d| &model.databases[d.0]) {
                // Writes also ship to every replica.
                let w = (1.0 - c.read_ratio).clamp(0.0, 1.0);
                h += 1.0 + w * f64::from(d.replicas.min(1000));
            }
            // Each call is a child request with its own path.
            for (count, to) in calls(model, topo, si) {
                h += count * (1.0 + hops(model, topo, c, to));
            }
            h
        }
        // A load balancer, circuit breaker or cache whose forward hop names nothing.
        Some(Component::LoadBalancer(_) | Component::Breaker(_) | Component::Cache(_)) => 1.0,
        Some(Component::Database(_) | Component::Queue(_) | Component::Client(_)) | None => 0.0,
    };
    path.iter().rev().skip(1).fold(end, |h, _| 1.0 + h)
}

/// Mean seconds a request to `to` spends on its path (service, parse and cache times).
fn path_time(model: &ModelConfig, topo: &Topology, to: Component) -> f64 {
    let mean = |d: &Option<dssim_components::units::DistSpec>| {
        d.as_ref().map_or(0.0, |d| finite(d.0.mean()) / 1e9)
    };
    // Load balancers add their parse; the service or a cache ends the path.
    let mut parses = Vec::new();
    let mut end = 0.0;
    for at in topo.walk(to) {
        match at {
            Component::LoadBalancer(li) => parses.push(mean(&model.load_balancers[li.0].parse)),
            // A closed breaker passes requests on at once.
            Component::Breaker(_) => {}
            Component::Service(si) => {
                let s = &model.services[si.0];
                // Mixed sizes: the mean speed of the instances.
                let n = s.instances.max(1);
                let speed = s.total_speed(n) / f64::from(n);
                let speed = if speed.is_finite() && speed > 0.0 {
                    speed
                } else {
                    1.0
                };
                end = finite(s.service_time.0.mean()) / 1e9 / speed;
                if let Some(d) = topo.database_of(si).map(|d| &model.databases[d.0]) {
                    end += finite(d.read_time.0.mean()).min(finite(d.write_time.0.mean())) / 1e9;
                }
                // Calls as if made one after the other (an upper bound on parallel ones).
                for (count, to) in calls(model, topo, si) {
                    end += count * path_time(model, topo, to);
                }
                break;
            }
            Component::Cache(k) => {
                end = mean(&model.caches[k.0].latency);
                break;
            }
            Component::Database(_) | Component::Queue(_) | Component::Client(_) => break,
        }
    }
    parses.iter().rev().fold(end, |t, p| p + t)
}

/// Checks `est` against `limits`; the refusal names the parameter responsible.
pub fn check(est: &RunEstimate, limits: &Limits) -> Result<(), Refusal> {
    if limits.force {
        return Ok(());
    }
    if est.events.is_nan() || est.events > limits.max_events {
        return Err(Refusal {
            path: est.events_cause.0.clone(),
            message: format!(
                "{} = {:.2e} events per run, above the limit of {:.2e}; raise --max-events or pass --force",
                est.events_cause.1, est.events, limits.max_events
            ),
        });
    }
    if est.memory.is_nan() || est.memory > limits.max_memory {
        return Err(Refusal {
            path: est.memory_cause.0.clone(),
            message: format!(
                "{} need about {} per run, above the limit of {}; raise --max-memory or pass --force",
                est.memory_cause.1,
                show_bytes(est.memory),
                show_bytes(limits.max_memory)
            ),
        });
    }
    Ok(())
}

/// Service `si`'s calls that lead somewhere, with their counts: none for a service on a
/// loop of edges (which validation refuses), so that every walk through calls ends (the
/// topology's one loop guard, [`Topology::order`]).
fn calls(model: &ModelConfig, topo: &Topology, si: ServiceIx) -> Vec<(f64, Component)> {
    if !topo.order().contains(&Component::Service(si)) {
        return Vec::new();
    }
    model.services[si.0]
        .calls
        .iter()
        .zip(topo.calls_of(si))
        .filter_map(|(c, to)| Some((f64::from(c.count), (*to)?)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use dssim_engine::SimTime;

    fn opts(secs: u64) -> RunOptions {
        RunOptions::new(1, SimTime::from_secs(secs), SimTime::ZERO)
    }

    fn model(text: &str) -> ModelConfig {
        toml::from_str(text).unwrap()
    }

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("8GiB").unwrap(), 8.0 * GIB);
        assert_eq!(parse_size("512MB").unwrap(), 512e6);
        assert_eq!(parse_size("1e9").unwrap(), 1e9);
        assert!(parse_size("-1GB").is_err());
        assert!(parse_size("lots").is_err());
        assert!(parse_size("3 parsecs").is_err());
    }

    #[test]
    fn a_huge_rate_names_the_rate() {
        let m = model(
            "[[clients]]\nname = \"users\"\ntarget = \"app\"\nrate = 1e8\n\
             [[services]]\nname = \"app\"\nservice_time = \"exp(1ms)\"\n",
        );
        let est = estimate(&m, &opts(100));
        let r = check(&est, &Limits::default()).unwrap_err();
        assert_eq!(r.path, "clients.users.rate");
        assert!(
            r.message.contains("clients.users.rate × duration"),
            "{}",
            r.message
        );
        assert!(r.message.contains("--max-events"), "{}", r.message);
        let forced = Limits {
            force: true,
            ..Limits::default()
        };
        assert!(check(&est, &forced).is_ok());
    }

    #[test]
    fn a_hundred_million_instances_name_the_instances() {
        let m = model(
            "[[clients]]\nname = \"users\"\ntarget = \"app\"\nrate = 10\n\
             [[services]]\nname = \"app\"\ninstances = 100000000\nservice_time = \"exp(1ms)\"\n",
        );
        let r = check(&estimate(&m, &opts(10)), &Limits::default()).unwrap_err();
        assert_eq!(r.path, "services.app.instances");
        assert!(r.message.contains("--max-memory"), "{}", r.message);
    }

    /// A long client timeout that is never reached costs nothing until it is: the memory
    /// estimate of 200k requests/s with a 1 h timeout (benches/timeout-rss.toml) is the
    /// same as without a timeout and does not grow with the duration, so the run is not
    /// refused (it was: the estimate held rate × timeout requests and their timers).
    #[test]
    fn a_long_timeout_does_not_hold_memory() {
        let text = |timeout: &str| {
            format!(
                "[[clients]]\nname = \"users\"\ntarget = \"server\"\nrate = 200000\n{timeout}\
                 [[services]]\nname = \"server\"\nworkers = 400\nservice_time = \"exp(1ms)\"\n"
            )
        };
        let none = estimate(&model(&text("")), &opts(90)).memory;
        for secs in [30, 90, 3600] {
            let est = estimate(&model(&text("timeout = \"1h\"\n")), &opts(secs));
            assert_eq!(est.memory, none, "{secs} s");
            assert!(est.memory < 64.0 * 1024.0 * 1024.0, "{}", est.memory);
            assert!(check(&est, &Limits::default()).is_ok(), "{secs} s refused");
        }
        // A timeout shorter than the sojourn bound lowers the estimate.
        let short = estimate(&model(&text("timeout = \"1ms\"\n")), &opts(90)).memory;
        assert!(short < none, "{short} vs {none}");
    }

    #[test]
    fn the_events_estimate_is_close_for_a_simple_queue() {
        // M/M/1 at 80/s for 100 s: 8,000 requests, about 5 events each.
        let m = model(
            "[[clients]]\nname = \"users\"\ntarget = \"app\"\nrate = 80\n\
             [[services]]\nname = \"app\"\nservice_time = \"exp(10ms)\"\n",
        );
        let est = estimate(&m, &opts(100));
        assert!((est.events - 40_000.0).abs() < 1.0, "{}", est.events);
        assert!(est.memory < 64.0 * 1024.0 * 1024.0);
    }
}

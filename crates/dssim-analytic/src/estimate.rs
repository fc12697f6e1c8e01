//! Back-of-envelope estimates beside the simulation: the traffic calculator (users to peak
//! requests per second, storage and bandwidth growth) and a prediction for every component
//! of a model, from one model of its request path ([`estimate`]):
//!
//! ```text
//!   clients (peak rate; closed loops solved)  --browser cache (TTL per user)-->
//!   CDN edge (hit ratio, misses to origin) --> load balancer --> service
//!   service: instances x workers, held for CPU + pool wait + data call + NIC (Erlang C,
//!            Allen–Cunneen) --> app cache (Che / FIFO / LFU hit ratio, TTL, writes,
//!            fill delay) --misses, writes--> database: shard of each key, primary or
//!            replicas, each node a birth–death chain (USL, buffer pool, max_connections)
//! ```
//!
//! Per component: offered load, the figures components.csv measures (utilization, mean
//! queue, mean time, hit ratio), the load at which it saturates, and the first bottleneck
//! (the least headroom). `dssim estimate` prints [`render`]; the runner fills the predicted
//! columns of components.csv from [`estimate_run`] on each run's expanded model. Models
//! and their limits: the submodules [`keys`] (popularity on a grid), [`hit`] (hit ratios)
//! and `flow` (the request path), and [`crate::queueing`].

use dssim_components::client::Arrival;
use dssim_components::{ModelConfig, RunOptions};

use closed::closed_solution;

mod closed;
mod flow;
pub mod hit;
pub mod keys;
mod render;

pub use render::{render, render_explain};

/// Inputs of the traffic calculator.
#[derive(Clone, Debug)]
pub struct Traffic {
    /// Total registered users.
    pub users: f64,
    /// Share of users active on a day (DAU / users).
    pub active: f64,
    /// Requests per active user per day.
    pub requests_per_user: f64,
    /// Share of the day's requests that fall in the peak window.
    pub peak_share: f64,
    /// Length of the peak window, hours.
    pub peak_hours: f64,
    /// Bytes sent per request (bandwidth).
    pub bytes_per_request: f64,
    /// Rows written per active user per day (storage).
    pub rows_per_user_day: f64,
    /// Bytes per stored row.
    pub row_bytes: f64,
}

/// What the traffic calculator derives.
#[derive(Clone, Debug, PartialEq)]
pub struct TrafficEstimate {
    /// Daily active users.
    pub dau: f64,
    /// Requests per day.
    pub daily_requests: f64,
    /// Average requests per second over the day.
    pub average_rps: f64,
    /// Requests per second in the peak window.
    pub peak_rps: f64,
    /// Storage growth per day, GB.
    pub storage_gb_per_day: f64,
    /// Storage growth per year, TB.
    pub storage_tb_per_year: f64,
    /// Bandwidth at peak, Gbit/s.
    pub peak_gbps: f64,
}

impl Traffic {
    /// Applies the arithmetic of capacity planning.
    pub fn estimate(&self) -> TrafficEstimate {
        let dau = self.users * self.active;
        let daily = dau * self.requests_per_user;
        let peak_rps = if self.peak_hours > 0.0 {
            daily * self.peak_share / (self.peak_hours * 3600.0)
        } else {
            f64::INFINITY
        };
        let gb_day = dau * self.rows_per_user_day * self.row_bytes / 1e9;
        TrafficEstimate {
            dau,
            daily_requests: daily,
            average_rps: daily / 86_400.0,
            peak_rps,
            storage_gb_per_day: gb_day,
            storage_tb_per_year: gb_day * 365.0 / 1e3,
            peak_gbps: peak_rps * self.bytes_per_request * 8.0 / 1e9,
        }
    }
}

/// The prediction for one component: the same figures components.csv measures, plus
/// what the planner needs (servers, queueing wait, the load at which it saturates).
#[derive(Clone, Debug, PartialEq)]
pub struct ComponentEstimate {
    /// Component name, as in components.csv (`app`, `app.pool`, `db.shard.1.replica.0`).
    pub component: String,
    /// Kind, as in components.csv (`service`, `pool`, `cache`, `cdn`, `cdn_origin`,
    /// `browser_cache`, `database`, `load_balancer`, `queue`).
    pub kind: &'static str,
    /// Requests per second that reach it.
    pub offered_rps: f64,
    /// Servers (instances × workers, pooled connections, a database node's connection
    /// cap); none when unlimited.
    pub servers: Option<u64>,
    /// The figure components.csv calls utilization: busy workers / workers (services,
    /// queues), connections in use / `max_connections` (databases), operations /
    /// `max_ops` (caches). Above 1 the offered work exceeds capacity (a measurement stops
    /// at 1). None where the measurement has none.
    pub utilization: Option<f64>,
    /// components.csv `mean_queue`: requests waiting (services, queues, pools), connections
    /// in use (databases).
    pub mean_queue: Option<f64>,
    /// Mean wait in queue, ms (Erlang C; Allen–Cunneen for non-exponential times); none
    /// when it does not keep up.
    pub wait_ms: Option<f64>,
    /// Mean time in the component, ms (components.csv `mean_ms`; a pool: the wait for a
    /// connection); none when it does not keep up.
    pub sojourn_ms: Option<f64>,
    /// Its own load (requests per second) at which it saturates, with every other part of
    /// the model unloaded; infinite when nothing bounds it.
    pub saturation_rps: f64,
    /// Hit ratio (caches, CDN offload, browser caches, database buffer pools).
    pub hit_ratio: Option<f64>,
    /// Share of requests refused (a database node at `max_connections`, a full waiting
    /// room, a deadline missed).
    pub refused: Option<f64>,
    /// Offered load: the work arriving per second over the servers (λ·S/c), which may
    /// exceed 1 where `utilization` (the work carried) cannot; none where there is no
    /// utilization.
    pub offered_load: Option<f64>,
    /// The formula behind the figures (`dssim estimate --explain`, components.csv
    /// `predicted_method`).
    pub method: String,
}

impl ComponentEstimate {
    fn empty() -> Self {
        ComponentEstimate {
            component: String::new(),
            kind: "",
            offered_rps: 0.0,
            servers: None,
            utilization: None,
            mean_queue: None,
            wait_ms: None,
            sojourn_ms: None,
            saturation_rps: f64::INFINITY,
            hit_ratio: None,
            refused: None,
            offered_load: None,
            method: String::new(),
        }
    }

    /// How many times today's load it takes before it saturates (infinite when nothing
    /// bounds it or nothing reaches it).
    pub fn headroom(&self) -> f64 {
        if self.offered_rps > 0.0 && self.saturation_rps.is_finite() {
            self.saturation_rps / self.offered_rps
        } else {
            f64::INFINITY
        }
    }
}

/// A closed loop's solution.
#[derive(Clone, Debug, PartialEq)]
pub struct ClosedLoop {
    /// Users.
    pub users: u64,
    /// Mean think time, ms.
    pub think_ms: f64,
    /// What the users would send if nothing queued: users / (think + unloaded response).
    pub unloaded_rps: f64,
}

/// One client's traffic.
#[derive(Clone, Debug, PartialEq)]
pub struct ClientEstimate {
    /// Client name.
    pub name: String,
    /// Requests per second it sends (open: at its peak; closed: where the loop settles).
    pub rate_rps: f64,
    /// Mean response time (browser hits count as zero), ms; none when something on its
    /// path does not keep up.
    pub response_ms: Option<f64>,
    /// For a closed loop, how it was solved.
    pub closed: Option<ClosedLoop>,
    /// The formula behind its rate and response time.
    pub method: String,
}

/// Predictions for a whole model.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelEstimate {
    /// Components: services, pools, load balancers, caches (and CDN origins), browser
    /// caches, database nodes, job queues.
    pub components: Vec<ComponentEstimate>,
    /// Clients, in model order.
    pub clients: Vec<ClientEstimate>,
}

impl ModelEstimate {
    /// The component that saturates first as every client's load grows together: the
    /// least headroom (ties: the first listed).
    pub fn first_bottleneck(&self) -> Option<&ComponentEstimate> {
        self.components
            .iter()
            .filter(|c| c.headroom().is_finite())
            .min_by(|a, b| a.headroom().total_cmp(&b.headroom()))
    }

    /// The prediction for component `name` (a components.csv name).
    pub fn get(&self, name: &str) -> Option<&ComponentEstimate> {
        self.components.iter().find(|c| c.component == name)
    }

    /// Requests per second all clients send.
    pub fn client_rps(&self) -> f64 {
        self.clients.iter().map(|c| c.rate_rps).sum()
    }
}

/// Bisection steps per closed loop (the rate is known to 2^-30 of its bound).
const CLOSED_STEPS: usize = 30;

/// Predicts every component of `model` (see the module docs for the models used).
///
/// Open clients send at their peak rate. A closed loop of N users thinking Z settles where
/// X = N / (Z + R(X)), R the response time the pass predicts at rate X (decreasing in X,
/// so bisection finds it; with several loops, each is solved in turn, four rounds).
pub fn estimate(model: &ModelConfig) -> ModelEstimate {
    estimate_in(model, None)
}

/// [`estimate`] for one run: caches and buffer pools start empty at time 0 (unless
/// warmed) and their figures are averaged over the measured window `[warmup, duration)`,
/// as components.csv measures them.
pub fn estimate_run(model: &ModelConfig, opts: &RunOptions) -> ModelEstimate {
    let w = (opts.warmup.as_secs_f64(), opts.duration.as_secs_f64());
    estimate_in(model, Some(w))
}

fn estimate_in(model: &ModelConfig, window: Option<(f64, f64)>) -> ModelEstimate {
    let model_flow = flow::FlowModel::new(model, window);
    let mut rates: Vec<f64> = model
        .clients
        .iter()
        .map(|c| flow::open_rate(c).unwrap_or(0.0))
        .collect();
    let closed: Vec<(usize, f64, f64)> = model
        .clients
        .iter()
        .enumerate()
        .filter(|(_, c)| c.arrival == Arrival::Closed)
        .map(|(i, c)| {
            let think = c.think.as_ref().map_or(0.0, |d| d.0.mean() / 1e9).max(0.0);
            (
                i,
                c.users.unwrap_or(0) as f64,
                if think.is_finite() { think } else { 0.0 },
            )
        })
        .collect();
    let mut unloaded = vec![0.0; model.clients.len()];
    // Each station's holding times with no load, to tell later whether the loop's
    // stations took longer under load (a database queueing behind them: layered).
    let holds = |p: &flow::FlowResult| -> Vec<f64> {
        p.stations
            .iter()
            .flat_map(|s| s.instances.iter().map(|x| x.hold))
            .collect()
    };
    let mut idle_holds = Vec::new();
    let pops: Vec<(usize, u64, f64)> = closed
        .iter()
        .map(|&(i, users, think)| (i, users as u64, think))
        .collect();
    if !closed.is_empty() {
        let idle = model_flow.pass(&rates, false);
        idle_holds = holds(&idle);
        for &(i, users, think) in &closed {
            let r0 = idle.response_s[i];
            unloaded[i] = if users > 0.0 && think + r0 > 0.0 && r0.is_finite() {
                users / (think + r0)
            } else {
                0.0
            };
        }
        let rounds = if closed.len() == 1 { 1 } else { 4 };
        for _ in 0..rounds {
            for &(i, users, think) in &closed {
                let settles = |x: f64, rates: &mut Vec<f64>| -> bool {
                    rates[i] = x;
                    let pass = model_flow.stations_pass(rates);
                    // Is x at or below the rate MVA gives the loop with the stations' times
                    // at these rates?
                    let _ = (users, think);
                    closed_solution(&pass, &pops, rates)
                        .and_then(|s| s.throughput(i))
                        .is_some_and(|t| t >= x)
                };
                let (mut lo, mut hi) = (0.0, unloaded[i]);
                if hi > 0.0 && settles(hi, &mut rates) {
                    lo = hi;
                } else {
                    for _ in 0..CLOSED_STEPS {
                        let mid = 0.5 * (lo + hi);
                        if settles(mid, &mut rates) {
                            lo = mid;
                        } else {
                            hi = mid;
                        }
                    }
                }
                rates[i] = lo;
            }
        }
    }
    // A loop that settles where its response time jumps (a node that is fine below its
    // saturation and pinned at its cap above it) keeps a backlog: its users wait in front
    // of the bottleneck. The response-time law R = N/X − Z gives the time they spend.
    let law = |i: usize, users: f64, think: f64| -> f64 {
        if rates[i] > 0.0 {
            users / rates[i] - think
        } else {
            0.0
        }
    };
    let open_pass = model_flow.pass(&rates, false);
    let solution = if closed.is_empty() {
        None
    } else {
        closed_solution(&open_pass, &pops, &rates)
    };
    let saturated: Vec<(usize, f64)> = closed
        .iter()
        .filter_map(|&(i, users, think)| {
            let r = solution
                .as_ref()
                .and_then(|s| s.response(i))
                .unwrap_or(open_pass.response_s[i]);
            let r_law = law(i, users, think);
            (r.is_finite() && r_law > r * (1.0 + 1e-3) + 1e-6).then_some((i, r_law))
        })
        .collect();
    let layered = !idle_holds.is_empty()
        && holds(&open_pass)
            .iter()
            .zip(&idle_holds)
            .any(|(a, b)| (a - b).abs() > 1e-6 * b.abs().max(1e-9));
    let mut methods = vec![String::new(); model.clients.len()];
    let mut pass = if saturated.is_empty() {
        let mut p = open_pass;
        if let Some(s) = &solution {
            s.apply(&mut p, &rates, &mut methods);
        }
        p
    } else {
        model_flow.pass(&rates, true)
    };
    for &(i, r_law) in &saturated {
        let excess = r_law - pass.response_s[i];
        if excess > 0.0 && excess.is_finite() {
            for name in model_flow.entry_path(i) {
                if let Some(c) = pass.components.iter_mut().find(|c| c.component == name) {
                    c.sojourn_ms = c.sojourn_ms.map(|t| t + excess * 1e3);
                    if c.kind == "service" {
                        c.wait_ms = c.wait_ms.map(|w| w + excess * 1e3);
                        c.mean_queue = c.mean_queue.map(|q| q + rates[i] * excess);
                    }
                }
            }
            pass.response_s[i] = r_law;
        } else if !pass.response_s[i].is_finite() && r_law.is_finite() {
            // The pinned pass leaves a service before the saturated node without a steady
            // state of its own (its workers all held): the law still gives the response.
            pass.response_s[i] = r_law;
        }
    }
    let clients: Vec<ClientEstimate> = model
        .clients
        .iter()
        .enumerate()
        .map(|(i, c)| ClientEstimate {
            name: c.name.clone(),
            rate_rps: rates[i],
            response_ms: pass.response_s[i]
                .is_finite()
                .then(|| pass.response_s[i] * 1e3),
            closed: (c.arrival == Arrival::Closed).then(|| ClosedLoop {
                users: c.users.unwrap_or(0),
                think_ms: c.think.as_ref().map_or(0.0, |d| d.0.mean() / 1e6),
                unloaded_rps: unloaded[i],
            }),
            method: if c.arrival != Arrival::Closed {
                "open: its own rate".to_string()
            } else if saturated.iter().any(|(j, _)| *j == i) {
                "closed loop held at a saturated node: bisection on X, response-time law R = N/X − Z"
                    .to_string()
            } else if methods[i].is_empty() {
                "closed loop: R from the pass, X = N/(Z + R)".to_string()
            } else if layered {
                format!(
                    "{}; layered: the workers' holding times include queues behind them (a database, the NIC), taken at the loop's throughput (fixed point by bisection; a worker held through the call is not product-form, so not exact)",
                    methods[i]
                )
            } else {
                methods[i].clone()
            },
        })
        .collect();
    let mut components = pass.components;
    // Clients behind a geo router: the response from the nearest region, as components.csv
    // reports them (`ROUTER.CLIENT`); failovers are not predicted.
    for (c, e) in model.clients.iter().zip(clients.iter()) {
        if let Some(g) = model.geo_routers.iter().find(|g| g.name == c.target) {
            components.push(ComponentEstimate {
                component: format!("{}.{}", g.name, c.name),
                kind: "geo_client",
                offered_rps: e.rate_rps,
                sojourn_ms: e.response_ms,
                method: "the nearest entry, all in rotation: 2 × one-way latency to its region + its response (no outage, no failover)".to_string(),
                ..ComponentEstimate::empty()
            });
        }
    }
    ModelEstimate {
        components,
        clients,
    }
}

/// Per-component predictions for a model ([`estimate`]'s components).
pub fn components(model: &ModelConfig) -> Vec<ComponentEstimate> {
    estimate(model).components
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lecture_scale_table() {
        // 1M users, 10% daily active, 50 requests each, 40% of them in a 4-hour peak.
        let t = Traffic {
            users: 1e6,
            active: 0.1,
            requests_per_user: 50.0,
            peak_share: 0.4,
            peak_hours: 4.0,
            bytes_per_request: 2000.0,
            rows_per_user_day: 10.0,
            row_bytes: 1000.0,
        }
        .estimate();
        assert_eq!(t.daily_requests, 5e6);
        assert!((t.average_rps - 57.87).abs() < 0.01);
        assert!((t.peak_rps - 138.89).abs() < 0.01);
        assert!((t.storage_gb_per_day - 1.0).abs() < 1e-9);
    }
}

#[cfg(test)]
mod routing_tests {
    use super::*;

    /// Clients that target a load balancer or a CDN edge load the service behind it (here
    /// nothing is cacheable, so every request passes the edge).
    #[test]
    fn load_reaches_the_service_behind_a_balancer_and_an_edge() {
        let model: ModelConfig = toml::from_str(
            r#"
            [[clients]]
            name = "users"
            target = "edge"
            rate = 1000
            [[caches]]
            name = "edge"
            tier = "cdn"
            origin = "lb"
            cacheable = 0.0
            [[load_balancers]]
            name = "lb"
            backends = "app"
            [[services]]
            name = "app"
            instances = 2
            workers = 8
            service_time = "exp(10ms)"
            "#,
        )
        .unwrap();
        let est = components(&model);
        assert_eq!(est[0].offered_rps, 1000.0);
        assert!((est[0].utilization.unwrap() - 0.625).abs() < 1e-9);
    }
}

#[cfg(test)]
mod path_tests {
    use super::*;

    fn model(text: &str) -> ModelConfig {
        toml::from_str(text).unwrap_or_else(|e| panic!("{e}"))
    }

    fn no_nan(est: &ModelEstimate) {
        for c in &est.components {
            let v = [
                Some(c.offered_rps),
                c.utilization,
                c.mean_queue,
                c.wait_ms,
                c.sojourn_ms,
                Some(c.saturation_rps),
                c.hit_ratio,
                c.refused,
            ];
            assert!(v.iter().flatten().all(|x| !x.is_nan()), "{c:?}");
            assert!(c.offered_rps.is_finite() && c.offered_rps >= 0.0, "{c:?}");
        }
        for c in &est.clients {
            assert!(c.rate_rps.is_finite() && c.rate_rps >= 0.0, "{c:?}");
        }
    }

    /// Reads that miss the cache, spread over two replicas; writes to the primary; the
    /// hottest of four hash shards.
    #[test]
    fn misses_reach_the_replicas_and_writes_the_primaries() {
        let m = model(
            r#"
            [[clients]]
            name = "users"
            target = "app"
            rate = 1000
            read_ratio = 0.9
            keys = 100000
            popularity = "zipf(0.99)"
            [[services]]
            name = "app"
            instances = 2
            workers = 32
            service_time = "exp(2ms)"
            cache = "redis"
            database = "db"
            [[caches]]
            name = "redis"
            capacity = 5000
            [[databases]]
            name = "db"
            shards = 4
            replicas = 2
            read_from = "replicas"
            read_time = "exp(2ms)"
            write_time = "exp(4ms)"
            "#,
        );
        let est = estimate(&m);
        let hit = est.get("redis").unwrap().hit_ratio.unwrap();
        let nodes: Vec<&ComponentEstimate> = est
            .components
            .iter()
            .filter(|c| c.kind == "database")
            .collect();
        assert_eq!(nodes.len(), 12);
        let reads: f64 = nodes
            .iter()
            .filter(|c| c.component.contains("replica"))
            .map(|c| c.offered_rps)
            .sum();
        let writes: f64 = nodes
            .iter()
            .filter(|c| c.component.ends_with("primary"))
            .map(|c| c.offered_rps)
            .sum();
        // Cache-aside with delete: every write reaches the primary; every miss a replica.
        assert!((writes - 100.0).abs() < 1e-6, "{writes}");
        assert!(
            (reads - 900.0 * (1.0 - hit)).abs() < 1e-6,
            "{reads} vs {hit}"
        );
        // Hash shards split the tail evenly; key 0 alone makes one shard the hottest.
        let hot = nodes
            .iter()
            .max_by(|a, b| a.offered_rps.total_cmp(&b.offered_rps))
            .unwrap();
        assert!(hot.component.contains("replica"));
        let text = render(&m, &est);
        assert!(text.contains("db.shard.3.replica.1"), "{text}");
    }

    #[test]
    fn ten_million_keys_stay_instant() {
        let m = model(
            r#"
            [[clients]]
            name = "users"
            target = "app"
            arrival = "closed"
            users = 2000
            think = "exp(50ms)"
            read_ratio = 0.95
            keys = 10000000
            popularity = "zipf(0.9)"
            user_ids = 100000
            browser_cache = { max_age = "60s", cacheable = 0.3 }
            [[services]]
            name = "app"
            instances = 8
            workers = 32
            service_time = "exp(2ms)"
            cache = "redis"
            database = "db"
            [[caches]]
            name = "redis"
            capacity = 200000
            ttl = "5m"
            [[databases]]
            name = "db"
            shards = 16
            sharding = "consistent_hash"
            replicas = 2
            read_from = "read_your_writes(5s)"
            read_time = "exp(2ms)"
            write_time = "exp(4ms)"
            buffer_pool = { pages = 100000, disk_read = "exp(5ms)" }
            contention = { sigma = 0.02, kappa = 0.0005 }
            "#,
        );
        let t = std::time::Instant::now();
        let est = estimate(&m);
        let took = t.elapsed();
        no_nan(&est);
        println!("{took:?}\n{}", render(&m, &est));
        // A few tens of milliseconds on this project's machine; allow a hundredfold.
        assert!(took.as_secs_f64() < 5.0, "{took:?}");
    }

    #[test]
    fn odd_models_give_no_nan_and_no_panic() {
        let cases = [
            // Nothing to send.
            "[[clients]]\nname='u'\ntarget='app'\nrate=0\n[[services]]\nname='app'\nservice_time='0ms'",
            // A closed loop of nobody, and one of users that never think.
            "[[clients]]\nname='u'\ntarget='app'\narrival='closed'\nusers=0\n[[clients]]\nname='v'\ntarget='app'\narrival='closed'\nusers=5\n[[services]]\nname='app'\nservice_time='exp(1ms)'",
            // One key, a zero-capacity cache, a TTL of a nanosecond, a tiny max_ops.
            "[[clients]]\nname='u'\ntarget='app'\nrate=1e6\nkeys=1\nread_ratio=0.5\n[[services]]\nname='app'\nservice_time='0ms'\ncache='c'\ndatabase='db'\n[[caches]]\nname='c'\ncapacity=0\nttl='1ns'\nmax_ops=1\nwrite_policy='write_behind'\n[[databases]]\nname='db'\nread_time='0ms'\nwrite_time='0ms'",
            // Many range shards, all replicas, extreme contention, sync replication.
            "[[clients]]\nname='u'\ntarget='app'\nrate=5000\nkeys=100\npopularity='hotspot(0.01, 0.99)'\nread_ratio=0.0\n[[services]]\nname='app'\nservice_time='exp(1ms)'\nworkers=4\ndatabase='db'\n[[databases]]\nname='db'\nshards=1000\nsharding='range'\nreplicas=63\nreplication='sync'\nreplication_delay='exp(1ms)'\nread_time='exp(1ms)'\nwrite_time='exp(1ms)'\ncontention={sigma=0.99,kappa=100}\nmax_connections=1",
            // A CDN chain, LFU, a browser cache, a pareto service time with no mean.
            "[[clients]]\nname='u'\ntarget='e1'\nrate=100\nbrowser_cache={max_age='1h'}\n[[caches]]\nname='e1'\ntier='cdn'\norigin='e2'\neviction='lfu'\ncapacity=3\n[[caches]]\nname='e2'\ntier='cdn'\norigin='lb'\neviction='random'\n[[load_balancers]]\nname='lb'\nbackends='app'\nalgorithm='ip_hash'\n[[services]]\nname='app'\nservice_time='pareto(1ms, 0.5)'\nsessions='local'\ninstances=3",
            // Job queues and steps, diurnal and trace arrivals.
            "[[clients]]\nname='u'\ntarget='app'\narrival='steps'\nsteps=[{at='0s', rate=10},{at='5s', rate=1e5}]\nread_ratio=0.5\n[[clients]]\nname='d'\ntarget='app'\narrival='diurnal'\nrate=1\npeak=50\nperiod='1m'\n[[clients]]\nname='t'\ntarget='app'\narrival='trace'\ntrace=[0.0, 0.0]\n[[services]]\nname='app'\nservice_time='exp(1ms)'\n[[queues]]\nname='q'\nproducer='app'\nworkers=0\njob_time='exp(1s)'\nfailure_rate=1.0\nretries={max=3}",
        ];
        for text in cases {
            let m = model(text);
            for est in [
                estimate(&m),
                estimate_run(
                    &m,
                    &RunOptions::new(
                        1,
                        dssim_engine::SimTime::from_secs(10),
                        dssim_engine::SimTime::ZERO,
                    ),
                ),
            ] {
                no_nan(&est);
                let out = render(&m, &est);
                assert!(
                    !out.contains("NaN") && !out.contains("inf"),
                    "{text}\n{out}"
                );
            }
        }
    }
}

//! Services: app nodes (the "kitchen" of the restaurant).
//!
//! ```text
//!              +------------------------------ instance app.0 ---------------------------------+
//!   request -->| shed? --> queue [high | low] --> worker: CPU --> pool --> data tier --> job?   |
//!              |  (503 + retry-after)              (service_time / speed)  (cache/db)  (enqueue) |
//!              |                                                  NIC (bytes×8/bandwidth) ---->|--> response
//!              +-------------------------------------------------------------------------------+
//! ```
//!
//! Each instance has `workers` servers and a waiting room of `queue` places (unbounded when
//! absent). Service time is drawn from `service_time` divided by `speed`. What each option
//! models:
//!
//! - `speed` with `cost = { per_hour = 0.10, exponent = 1.5 }`: vertical scaling. An
//!   instance-hour costs `per_hour × speed^exponent`, so with an exponent above 1 a bigger
//!   machine costs more per unit of work than more small ones (runs.csv `cost`).
//! - `pool = { size = 10, timeout = "100ms" }`: database connections per instance, held for
//!   the data-tier call only. A worker that finds none free waits in FIFO order; after
//!   `timeout` the request fails with `Error` (counted as `pool_timeouts`).
//! - `shedding`, priority classes, `retry_after`, `degrade`: see [`crate::shedding`].
//! - `sessions = "local"`: a user's session lives on the first instance that served it (its
//!   home). A request served elsewhere pays `relogin` (default 50 ms of extra work) and
//!   moves the session there; a crash loses the sessions it held. `"stateless"` (default):
//!   no such cost.
//! - `memory = "8GiB"`, `memory_per_request`, `memory_per_connection`, `connections`: memory
//!   in use = requests held (waiting, in service, sending) × per request + this instance's
//!   share of the service's `connections` long-lived connections (WebSockets), spread evenly
//!   over the members. A request that would exceed `memory` crashes the instance (OOM): every
//!   request it holds fails with `Error` and it restarts after `restart` (default 30 s),
//!   answering `Error` meanwhile. Its connections move to the others, which may crash in
//!   turn (a cascade).
//! - `bandwidth = "1Gbps"`: the NIC, a FIFO server that sends each ok response in
//!   `bytes × 8 / bandwidth`; the worker writes it (a blocking write) and is freed when it
//!   is sent, so a slow NIC backs up into the workers and the queue. Bytes come from the request
//!   (clients' `response_size`) or else from the service's own `response_size`.
//!   1 Gbps and 2 KB cap an instance at 62,500 responses/s.
//! - `canary`: a second version taking a growing share of requests; see [`crate::canary`].
//! - `feature`: an expensive feature behind a flag with a kill switch; see
//!   [`crate::compute::feature`].
//! - `deploy`: a rolling deploy with readiness checks and a graceful drain; see
//!   [`crate::compute::deploy`].
//!
//! Instances an autoscaler may add exist from the start, switched off; routers pick among
//! [`crate::shared::Shared::active_instances`].
//!
//! Faults ([`crate::faults`]): a killed instance refuses requests with an error, fails
//! those it held and ignores health probes until it recovers; a slow (gray) instance
//! multiplies its service times by a factor but still answers probes.
//!
//! Measures: requests, utilization (busy worker-time / worker-time), mean queue length,
//! p99 time in the service (queue + service + data + NIC), shed requests; per service
//! (components.csv row `NAME.pool`, runs.csv): pool acquisitions, waits and timeouts, OOM
//! crashes, re-logins, degraded and stale answers, instance-hours and cost.

use serde::{Deserialize, Serialize};

use crate::canary::CanaryConfig;
use crate::shedding::{DegradeLevel, Shedding};
use crate::units::{Bandwidth, Bytes, DistSpec, Dur};

/// A `[[services]]` entry.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceConfig {
    /// Unique name; instances are `name.0`, `name.1`, ...
    pub name: String,
    /// Number of instances (at the start, when an autoscaler manages the service).
    #[serde(default = "one")]
    pub instances: u32,
    /// Concurrent requests per instance.
    #[serde(default = "one")]
    pub workers: u32,
    /// Waiting places per instance (not counting requests in service); unbounded if absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<u64>,
    /// CPU time per request at speed 1.0.
    pub service_time: DistSpec,
    /// Vertical scaling factor: 2.0 halves service times.
    #[serde(default = "one_f")]
    pub speed: f64,
    /// Mixed server sizes: instance i runs at `speeds[i]` (and is priced at it); instances
    /// past the list (added by an autoscaler) run at `speed`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub speeds: Vec<f64>,
    /// Price of an instance-hour: `per_hour × speed^exponent`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost: Option<CostConfig>,
    /// Database connection pool per instance.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pool: Option<PoolConfig>,
    /// Time to open a connection to the data tier (TCP, TLS, authentication, the database
    /// starting a session): without a `pool` every request that calls the data tier opens
    /// one first, its worker held meanwhile; a `pool` keeps its connections open and never
    /// pays it. None when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect_time: Option<DistSpec>,
    /// Load-shedding policy (default `queue`: shed when the waiting room is full).
    #[serde(default)]
    pub shedding: Shedding,
    /// `Retry-After` of shed answers; none when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<Dur>,
    /// Where user sessions live.
    #[serde(default)]
    pub sessions: Sessions,
    /// Extra work for a request whose session lives on another instance (local sessions);
    /// 50 ms when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub relogin: Option<DistSpec>,
    /// Degradation levels.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub degrade: Vec<DegradeLevel>,
    /// Memory per instance; no limit when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory: Option<Bytes>,
    /// Memory each request held by an instance takes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_per_request: Option<Bytes>,
    /// Memory each open long-lived connection takes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_per_connection: Option<Bytes>,
    /// Long-lived connections held open to the service, spread over its members.
    #[serde(default)]
    pub connections: u64,
    /// Time to restart after an out-of-memory crash; 30 s when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restart: Option<Dur>,
    /// NIC bandwidth per instance; no NIC time when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bandwidth: Option<Bandwidth>,
    /// Response size when the request carries none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_size: Option<Bytes>,
    /// A canary version rolled out in steps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canary: Option<CanaryConfig>,
    /// The app cache its instances read through (a `[[caches]]` name); none when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache: Option<String>,
    /// Region for network latency.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// The database it reads and writes (a `[[databases]]` name); none when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database: Option<String>,
    /// Other services it calls per request after its CPU work and before its data tier,
    /// its worker held meanwhile: `[{ to = "users" }, { to = "search", count = 8,
    /// parallel = true, timeout = "200ms", pool = 10 }]`. In order, except that an entry
    /// with `parallel` starts together with the one before it; see the calls section of
    /// docs/experiment-format.md. None when absent.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub calls: Vec<crate::calls::CallConfig>,
    /// An expensive feature a share of requests uses, behind a flag with a kill switch;
    /// none when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feature: Option<crate::compute::feature::FeatureConfig>,
    /// A rolling deploy of the service's instances, one at a time; none when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deploy: Option<crate::compute::deploy::DeployConfig>,
}

/// `cost = { per_hour = 0.10, exponent = 1.5 }`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CostConfig {
    /// Price of an instance-hour at speed 1.0.
    pub per_hour: f64,
    /// How fast the price grows with speed: `speed^exponent`. The default, 1.8, prices a
    /// machine twice as fast at 2^1.8 ≈ 3.5 times as much, the "2× CPU costs 3–4×" rule of
    /// thumb of cloud price lists for large instances (the lecture's vertical-scaling
    /// limits); 1.0 is linear pricing.
    #[serde(default = "default_cost_exponent")]
    pub exponent: f64,
}

/// `pool = { size = 10, timeout = "100ms" }`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolConfig {
    /// Connections per instance.
    pub size: u32,
    /// Longest wait for a connection; forever when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Dur>,
}

/// Where sessions live.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sessions {
    /// Any instance can serve any user at no extra cost.
    #[default]
    Stateless,
    /// Sessions live on the instance that first served the user.
    Local,
}

fn one() -> u32 {
    1
}
fn one_f() -> f64 {
    1.0
}
fn default_cost_exponent() -> f64 {
    1.8
}

impl ServiceConfig {
    /// The speed of instance `index`: its entry in `speeds`, else `speed`.
    pub fn speed_of(&self, index: u32) -> f64 {
        let s = self
            .speeds
            .get(index as usize)
            .copied()
            .unwrap_or(self.speed);
        if s > 0.0 {
            s
        } else {
            1.0
        }
    }

    /// Total speed of the first `n` instances (capacity in units of one speed-1 instance).
    pub fn total_speed(&self, n: u32) -> f64 {
        (0..n).map(|i| self.speed_of(i)).sum()
    }

    /// The price of one instance-hour of instance `index`, if priced.
    pub fn hourly_cost(&self, index: u32) -> Option<f64> {
        self.cost
            .map(|c| c.per_hour * self.speed_of(index).powf(c.exponent))
    }
}

mod instance;

pub use instance::*;

//! Back-of-envelope estimates beside the simulation: the traffic calculator (users to peak
//! requests per second, storage and bandwidth growth) and per-component queueing
//! predictions (offered load, utilization, Erlang-C wait, the first bottleneck).

use dssim_components::ModelConfig;

use crate::queueing::mgc_wait;

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

/// The queueing prediction for one component.
#[derive(Clone, Debug, PartialEq)]
pub struct ComponentEstimate {
    /// Component name.
    pub component: String,
    /// Kind (`service`, ...).
    pub kind: &'static str,
    /// Offered load, requests per second.
    pub offered_rps: f64,
    /// Servers (instances × workers).
    pub servers: u32,
    /// Predicted utilization (offered work / servers); ≥ 1 means it saturates.
    pub utilization: f64,
    /// Predicted mean wait in queue, ms (Erlang C, Allen–Cunneen for non-exponential
    /// service), assuming requests spread evenly over instances.
    pub wait_ms: f64,
    /// Predicted mean time in the component (wait + service), ms.
    pub sojourn_ms: f64,
    /// Offered load at which utilization reaches 1.
    pub saturation_rps: f64,
}

/// Per-component predictions for a model, ordered as in the model; the first bottleneck is
/// the one with the lowest saturation load.
pub fn components(model: &ModelConfig) -> Vec<ComponentEstimate> {
    let mut out = Vec::new();
    for s in &model.services {
        let offered: f64 = model
            .clients
            .iter()
            .filter(|c| service_behind(model, &c.target) == s.name)
            .map(|c| offered_rate(c, s.service_time.0.mean() / 1e9))
            .fold(0.0, |a, b| a + b);
        let speed = if s.speed > 0.0 { s.speed } else { 1.0 };
        let mean_s = s.service_time.0.mean() / 1e9 / speed;
        let scv = s.service_time.0.scv();
        let per_instance = offered / f64::from(s.instances.max(1));
        let c = s.workers.max(1);
        let servers = s.instances.max(1) * c;
        let wait = mgc_wait(c, per_instance, mean_s, scv);
        out.push(ComponentEstimate {
            component: s.name.clone(),
            kind: "service",
            offered_rps: offered,
            servers,
            utilization: offered * mean_s / f64::from(servers),
            wait_ms: wait * 1e3,
            sojourn_ms: (wait + mean_s) * 1e3,
            saturation_rps: f64::from(servers) / mean_s,
        });
    }
    out
}

/// The service a client's requests end up at: through load balancers (`backends`) and CDN
/// edges (`origin`; every request is counted, an upper bound since edge hits never reach it).
fn service_behind<'a>(model: &'a ModelConfig, target: &'a str) -> &'a str {
    let mut t = target;
    for _ in 0..8 {
        if let Some(lb) = model.load_balancers.iter().find(|l| l.name == t) {
            t = &lb.backends;
        } else if let Some(o) = model
            .caches
            .iter()
            .find(|c| c.name == t)
            .and_then(|c| c.origin.as_deref())
        {
            t = o;
        } else {
            break;
        }
    }
    t
}

/// Requests per second a client offers (closed loops: users / (think + service)).
fn offered_rate(c: &dssim_components::client::ClientConfig, service_s: f64) -> f64 {
    match (c.rate, c.users) {
        (Some(r), _) => r,
        (None, Some(u)) => {
            let think = c.think.as_ref().map_or(0.0, |d| d.0.mean() / 1e9);
            u as f64 / (think + service_s).max(1e-9)
        }
        _ => 0.0,
    }
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

    /// Clients that target a load balancer or a CDN edge load the service behind it.
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
        assert!((est[0].utilization - 0.625).abs() < 1e-9);
    }
}

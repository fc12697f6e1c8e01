//! Validation of the compute tier's options (services' overload, memory, NIC and canary
//! settings, job queues, autoscalers); every problem carries the path of its value.

use crate::autoscaler::Metric;
use crate::model::ModelConfig;
use crate::service::ServiceConfig;
use crate::shedding::Shedding;
use crate::units::check_ratio;
use crate::ConfigError;

fn err(errs: &mut Vec<ConfigError>, path: String, msg: impl Into<String>) {
    errs.push(ConfigError::new(path, msg));
}

/// Checks the compute options of service `s` (at path `p`).
pub fn service(s: &ServiceConfig, p: &str, errs: &mut Vec<ConfigError>) {
    if let Some(c) = &s.cost {
        if !(c.per_hour.is_finite() && c.per_hour >= 0.0) {
            err(
                errs,
                format!("{p}.cost.per_hour"),
                "must be a number, zero or more",
            );
        }
        if !(c.exponent.is_finite() && c.exponent >= 0.0) {
            err(
                errs,
                format!("{p}.cost.exponent"),
                "must be a number, zero or more",
            );
        }
    }
    if let Some(pool) = &s.pool {
        if pool.size == 0 {
            err(errs, format!("{p}.pool.size"), "must be at least 1");
        }
    }
    if let Shedding::Probabilistic(_) = s.shedding {
        if s.queue.is_none() {
            err(
                errs,
                format!("{p}.shedding"),
                "probabilistic shedding works on the fill of a bounded waiting room: set `queue`",
            );
        }
    }
    for (i, l) in s.degrade.iter().enumerate() {
        if !(l.at.is_finite() && l.at >= 0.0) {
            err(
                errs,
                format!("{p}.degrade.{i}.at"),
                "must be a load, zero or more (1.0 = every worker busy)",
            );
        }
    }
    if s.memory.is_some() && s.memory_per_request.is_none() && s.memory_per_connection.is_none() {
        err(
            errs,
            format!("{p}.memory"),
            "a memory limit needs `memory_per_request` or `memory_per_connection` to be reached",
        );
    }
    if s.memory.is_none() && (s.memory_per_request.is_some() || s.memory_per_connection.is_some()) {
        err(
            errs,
            format!("{p}.memory"),
            "memory costs are given but no `memory` limit per instance",
        );
    }
    if let Some(d) = &s.deploy {
        d.validate(&format!("{p}.deploy"), errs);
    }
    if let Some(f) = &s.feature {
        f.validate(&format!("{p}.feature"), errs);
    }
    if let Some(c) = &s.canary {
        let cp = format!("{p}.canary");
        if let Err(e) = check_ratio(&format!("{cp}.error_rate"), c.error_rate) {
            errs.push(e);
        }
        if c.steps.is_empty() {
            err(
                errs,
                format!("{cp}.steps"),
                "needs at least one share, such as [0.05, 0.25, 1.0]",
            );
        }
        for (i, x) in c.steps.iter().enumerate() {
            if !(*x > 0.0 && *x <= 1.0) {
                err(
                    errs,
                    format!("{cp}.steps.{i}"),
                    format!("a traffic share in (0, 1]; found {x}"),
                );
            }
        }
        if let Some(m) = c.max_error_rate {
            if let Err(e) = check_ratio(&format!("{cp}.max_error_rate"), m) {
                errs.push(e);
            }
        }
    }
}

/// Checks `[[queues]]`.
pub fn queues(m: &ModelConfig, errs: &mut Vec<ConfigError>) {
    for q in &m.queues {
        let p = format!("queues.{}", q.name);
        if !m.services.iter().any(|s| s.name == q.producer) {
            let names: Vec<&str> = m.services.iter().map(|s| s.name.as_str()).collect();
            let hint = crate::did_you_mean(&q.producer, names.iter().copied())
                .map(|s| format!(" (did you mean {s:?}?)"))
                .unwrap_or_default();
            err(
                errs,
                format!("{p}.producer"),
                format!(
                    "no service is named {:?}{hint}; services: {}",
                    q.producer,
                    names.join(", ")
                ),
            );
        }
        if let Err(e) = check_ratio(&format!("{p}.enqueue_ratio"), q.enqueue_ratio) {
            errs.push(e);
        }
        if let Err(e) = check_ratio(&format!("{p}.failure_rate"), q.failure_rate) {
            errs.push(e);
        }
        if !(q.retries.multiplier.is_finite() && q.retries.multiplier >= 1.0) {
            err(
                errs,
                format!("{p}.retries.multiplier"),
                "must be 1.0 or more",
            );
        }
        if !q.priorities.is_empty() {
            let mut total = 0.0;
            for (i, c) in q.priorities.iter().enumerate() {
                let cp = format!("{p}.priorities[{i}]");
                if c.name.is_empty() {
                    err(errs, format!("{cp}.name"), "must not be empty");
                } else if q.priorities[..i].iter().any(|o| o.name == c.name) {
                    err(
                        errs,
                        format!("{cp}.name"),
                        format!("class {:?} is listed twice", c.name),
                    );
                }
                if !(c.share.is_finite() && c.share > 0.0 && c.share <= 1.0) {
                    err(
                        errs,
                        format!("{cp}.share"),
                        format!("must be more than 0 and at most 1, got {}", c.share),
                    );
                } else {
                    total += c.share;
                }
            }
            if q.priorities
                .iter()
                .all(|c| c.share.is_finite() && c.share > 0.0)
                && (total - 1.0).abs() > 1e-6
            {
                err(
                    errs,
                    format!("{p}.priorities"),
                    format!("the shares must add up to 1, they add up to {total}"),
                );
            }
        }
        if q.capacity == Some(0) {
            err(
                errs,
                format!("{p}.capacity"),
                "must be at least 1; remove it for no bound",
            );
        }
        subscribers(m, q, &p, errs);
        if q.workers == 0 && !m.autoscalers.iter().any(|a| a.subject() == q.name) {
            err(
                errs,
                format!("{p}.workers"),
                "must be at least 1 (or autoscaled)",
            );
        }
    }
    let producers = m
        .queues
        .iter()
        .filter(|q| m.services.iter().any(|s| s.name == q.producer));
    for s in &m.services {
        if producers.clone().filter(|q| q.producer == s.name).count() > 200 {
            err(
                errs,
                format!("services.{}", s.name),
                "feeds more than 200 job queues",
            );
        }
    }
}

/// Checks `[[autoscalers]]`.
pub fn autoscalers(m: &ModelConfig, errs: &mut Vec<ConfigError>) {
    let mut seen: Vec<&str> = Vec::new();
    for (i, a) in m.autoscalers.iter().enumerate() {
        let p = format!(
            "autoscalers.{}",
            a.name.clone().unwrap_or_else(|| i.to_string())
        );
        let subject = a.subject();
        match (&a.service, &a.queue) {
            (Some(_), Some(_)) => err(
                errs,
                format!("{p}.queue"),
                "an autoscaler scales one thing: give `service` or `queue`, not both",
            ),
            (None, None) => err(
                errs,
                format!("{p}.service"),
                "say what to scale: `service = \"app\"` or `queue = \"jobs\"`",
            ),
            _ => {}
        }
        let is_service = m.services.iter().any(|s| s.name == subject);
        let is_queue = m.queues.iter().any(|q| q.name == subject);
        if !subject.is_empty() && !is_service && !is_queue {
            let names: Vec<&str> = m
                .services
                .iter()
                .map(|s| s.name.as_str())
                .chain(m.queues.iter().map(|q| q.name.as_str()))
                .collect();
            let key = if a.service.is_some() {
                "service"
            } else {
                "queue"
            };
            let hint = crate::did_you_mean(subject, names.iter().copied())
                .map(|s| format!(" (did you mean {s:?}?)"))
                .unwrap_or_default();
            err(
                errs,
                format!("{p}.{key}"),
                format!(
                    "no service or queue is named {subject:?}{hint}; known: {}",
                    names.join(", ")
                ),
            );
        }
        if !subject.is_empty() {
            if seen.contains(&subject) {
                err(
                    errs,
                    format!("{p}.service"),
                    format!("{subject:?} already has an autoscaler; one per service or queue"),
                );
            }
            seen.push(subject);
        }
        if a.min > a.max {
            err(
                errs,
                format!("{p}.max"),
                format!("must be at least min ({})", a.min),
            );
        }
        if a.max == 0 {
            err(errs, format!("{p}.max"), "must be at least 1");
        }
        if a.max > 10_000 {
            err(errs, format!("{p}.max"), "at most 10000 instances");
        }
        if !(a.target.0.is_finite() && a.target.0 > 0.0) {
            err(errs, format!("{p}.target"), "must be above zero");
        }
        if a.metric == Metric::Cpu && a.target.0 > 1.0 {
            err(
                errs,
                format!("{p}.target"),
                format!("cpu is a utilization between 0 and 1; found {}", a.target.0),
            );
        }
        if a.interval.0 == dssim_engine::SimTime::ZERO {
            err(errs, format!("{p}.interval"), "must be above zero");
        }
    }
}

/// Checks a topic's `subscribers` (and what a topic does not take).
fn subscribers(
    m: &ModelConfig,
    q: &crate::jobs::QueueConfig,
    p: &str,
    errs: &mut Vec<ConfigError>,
) {
    if q.subscribers.is_empty() {
        return;
    }
    let total: u64 = q.subscribers.iter().map(|s| u64::from(s.count)).sum();
    if total > 1000 {
        err(
            errs,
            format!("{p}.subscribers"),
            format!("{total} subscriber groups in all; at most 1000"),
        );
    }
    for (i, s) in q.subscribers.iter().enumerate() {
        let sp = format!("{p}.subscribers[{i}]");
        if s.name.is_empty() || s.name.contains('.') {
            err(
                errs,
                format!("{sp}.name"),
                "must not be empty nor contain a dot",
            );
        } else if q.subscribers[..i].iter().any(|o| o.name == s.name) {
            err(
                errs,
                format!("{sp}.name"),
                format!("subscriber {:?} is listed twice", s.name),
            );
        }
        if s.count == 0 {
            err(errs, format!("{sp}.count"), "must be at least 1");
        }
        if s.workers.unwrap_or(q.workers) == 0 {
            err(errs, format!("{sp}.workers"), "must be at least 1");
        }
        if let Some(f) = s.failure_rate {
            if let Err(e) = check_ratio(&format!("{sp}.failure_rate"), f) {
                errs.push(e);
            }
        }
    }
    if q.capacity.is_some() {
        err(
            errs,
            format!("{p}.capacity"),
            "a topic (a queue with subscribers) keeps every group's backlog unbounded (their storage is the cost); remove capacity",
        );
    }
    if !q.priorities.is_empty() {
        err(
            errs,
            format!("{p}.priorities"),
            "a topic (a queue with subscribers) delivers in publish order; priorities apply to queues without subscribers",
        );
    }
    if let Some((i, a)) = m
        .autoscalers
        .iter()
        .enumerate()
        .find(|(_, a)| a.subject() == q.name)
    {
        err(
            errs,
            format!("autoscalers.{}", a.name.clone().unwrap_or_else(|| i.to_string())),
            format!(
                "{:?} is a topic (a queue with subscribers): set each group's workers instead of autoscaling it",
                q.name
            ),
        );
    }
}

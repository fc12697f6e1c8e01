//! Job queues: M/G/c with retries, priority classes by Cobham, and pub/sub topics (a queue
//! per subscriber group, delivered to all = the max over the groups).

use super::*;

impl FlowModel<'_> {
    /// A job queue: jobs at `lambda` per second, each tried until it succeeds or runs out
    /// of retries, on `workers` workers (M/G/c); with `priorities`, then one row per class
    /// (`QUEUE.CLASS`, kind `queue_class`) by Cobham's non-preemptive priority formula.
    pub(super) fn queue_rows(&self, qi: usize, lambda: f64) -> Vec<ComponentEstimate> {
        use crate::queueing::priority_waits;
        let q = &self.m.queues[qi];
        if !q.subscribers.is_empty() {
            return topic_rows(q, lambda);
        }
        let f = q.failure_rate.clamp(0.0, 1.0);
        let tries = (0..=q.retries.max).map(|k| f.powi(k as i32)).sum::<f64>();
        let s = secs(q.job_time.0.mean()) * tries;
        let c = q.workers.max(1);
        let scv = q.job_time.0.scv().max(0.0);
        let wq = if s > 0.0 {
            mgc_wait(c, lambda, s, scv)
        } else {
            0.0
        };
        let exp = (q.job_time.0.scv() - 1.0).abs() < 1e-9;
        let mut rows = vec![ComponentEstimate {
            component: q.name.clone(),
            kind: "queue",
            offered_rps: lambda,
            servers: Some(u64::from(c)),
            utilization: Some((lambda * s / f64::from(c)).min(1.0)),
            offered_load: Some(lambda * s / f64::from(c)),
            method: if exp {
                "M/M/c (Erlang C), tries per job 1 + f + … + f^retries"
            } else {
                "M/G/c (Allen–Cunneen), tries per job 1 + f + … + f^retries"
            }
            .to_string(),
            mean_queue: wq.is_finite().then_some(lambda * wq),
            wait_ms: wq.is_finite().then_some(wq * 1e3),
            sojourn_ms: (wq + s).is_finite().then_some((wq + s) * 1e3),
            saturation_rps: if s > 0.0 {
                f64::from(c) / s
            } else {
                f64::INFINITY
            },
            ..ComponentEstimate::empty()
        }];
        if q.priorities.is_empty() {
            return rows;
        }
        let lambdas: Vec<f64> = q
            .priorities
            .iter()
            .map(|p| lambda * p.share.max(0.0))
            .collect();
        let waits = priority_waits(c, &lambdas, s, scv);
        let exact = if f > 0.0 && q.retries.max > 0 {
            "approximate: a retried job rejoins its class, taken as one longer job"
        } else if c == 1 {
            "exact for M/G/1"
        } else if exp {
            "exact for M/M/c with the same rate in every class"
        } else {
            "M/G/c: Allen–Cunneen's (1 + cs²)/2 on W0"
        };
        let n = q.priorities.len();
        for (k, (p, (&l, &w))) in q
            .priorities
            .iter()
            .zip(lambdas.iter().zip(&waits))
            .enumerate()
        {
            rows.push(ComponentEstimate {
                component: format!("{}.{}", q.name, p.name),
                kind: "queue_class",
                offered_rps: l,
                servers: Some(u64::from(c)),
                wait_ms: w.is_finite().then_some(w * 1e3),
                sojourn_ms: (w + s).is_finite().then_some((w + s) * 1e3),
                method: format!(
                    "non-preemptive priority, class {} of {n}: Cobham, W_k = W0 / ((1 − σ_(k−1))(1 − σ_k)) ({exact})",
                    k + 1
                ),
                ..ComponentEstimate::empty()
            });
        }
        rows
    }
}

/// A topic: every group an M/M/c (or M/G/c) queue at the publish rate; delivered to all
/// is the max of the groups' times, by ∫(1 − ∏F_i) with the groups taken as independent.
fn topic_rows(q: &dssim_components::jobs::QueueConfig, lambda: f64) -> Vec<ComponentEstimate> {
    use crate::queueing::{expected_max, mmc_sojourn_survival};
    let f_retry = |f: f64| (0..=q.retries.max).map(|k| f.powi(k as i32)).sum::<f64>();
    let groups = q.subscriber_groups();
    let mut rows = Vec::new();
    let mut survival: Vec<Box<dyn Fn(f64) -> f64>> = Vec::new();
    let mut means = Vec::new();
    let mut total_queue = Some(0.0);
    let (mut workers, mut busy) = (0u64, 0.0);
    let mut all_exact = true;
    for g in &groups {
        let f = g.failure_rate.clamp(0.0, 1.0);
        let s = secs(g.job_time.0.mean()) * f_retry(f);
        let c = g.workers.max(1);
        let scv = g.job_time.0.scv().max(0.0);
        let exp = (scv - 1.0).abs() < 1e-9 && f == 0.0;
        all_exact &= exp;
        let wq = if s > 0.0 {
            mgc_wait(c, lambda, s, scv)
        } else {
            0.0
        };
        let sojourn = wq + s;
        workers += u64::from(c);
        busy += (lambda * s).min(f64::from(c));
        total_queue = total_queue.and_then(|t| wq.is_finite().then_some(t + lambda * wq));
        if sojourn.is_finite() && s > 0.0 {
            means.push(sojourn);
            if exp {
                survival.push(Box::new(move |t| mmc_sojourn_survival(c, lambda, s, t)));
            } else {
                survival.push(Box::new(move |t| (-t / sojourn).exp()));
            }
        }
        rows.push(ComponentEstimate {
            component: g.name.clone(),
            kind: "subscriber",
            offered_rps: lambda,
            servers: Some(u64::from(c)),
            utilization: Some((lambda * s / f64::from(c)).min(1.0)),
            offered_load: Some(lambda * s / f64::from(c)),
            method: if exp {
                "subscriber group: M/M/c (Erlang C) at the publish rate"
            } else {
                "subscriber group: M/G/c (Allen–Cunneen) at the publish rate, tries per job 1 + f + … + f^retries"
            }
            .to_string(),
            mean_queue: wq.is_finite().then_some(lambda * wq),
            wait_ms: wq.is_finite().then_some(wq * 1e3),
            sojourn_ms: sojourn.is_finite().then_some(sojourn * 1e3),
            saturation_rps: if s > 0.0 {
                f64::from(c) / s
            } else {
                f64::INFINITY
            },
            ..ComponentEstimate::empty()
        });
    }
    let all = (means.len() == groups.len()).then(|| {
        let refs: Vec<&dyn Fn(f64) -> f64> = survival.iter().map(|b| b.as_ref()).collect();
        expected_max(&refs, &means)
    });
    let sat = rows
        .iter()
        .map(|r| r.saturation_rps)
        .fold(f64::INFINITY, f64::min);
    let n = groups.len();
    rows.insert(
        0,
        ComponentEstimate {
            component: q.name.clone(),
            kind: "queue",
            offered_rps: lambda,
            servers: Some(workers),
            utilization: (workers > 0).then(|| busy / workers as f64),
            method: format!(
                "topic, {n} subscriber groups: delivered to all = E[max] = ∫(1 − ∏ F_i(t)) dt over the groups' times, taken as independent ({})",
                if all_exact {
                    "each an M/M/c sojourn"
                } else {
                    "a group that is not M/M/c taken as exponential with its mean"
                }
            ),
            mean_queue: total_queue,
            sojourn_ms: all.map(|v| v * 1e3),
            saturation_rps: sat,
            ..ComponentEstimate::empty()
        },
    );
    rows
}

//! Health: active health checks (probes each `interval`, a backend out after `unhealthy`
//! failures in a row, back after `healthy` successes) and passive outlier ejection.

use crate::node::{Ctx, Msg};

use super::{BalancerTimer, HealthChange, LoadBalancer};

impl LoadBalancer {
    pub(super) fn probe(&mut self, ctx: &mut Ctx<'_>) {
        let me = ctx.me();
        let Some(h) = &mut self.health else {
            return;
        };
        let round = h.open_round();
        let (timeout, interval) = (h.timeout, h.interval);
        for (b, &to) in self.backends.iter().enumerate() {
            // A probe the network loses is a failed probe: nothing to do here.
            ctx.send(
                to,
                Msg::Probe {
                    from: me,
                    backend: b as u32,
                    round,
                },
            );
        }
        ctx.timer(timeout, Msg::Balancer(BalancerTimer::Check));
        ctx.timer(interval, Msg::Balancer(BalancerTimer::Probe));
    }

    pub(super) fn check(&mut self, ctx: &mut Ctx<'_>) {
        let now = ctx.now();
        let Some(h) = &mut self.health else {
            return;
        };
        let changes = &mut self.stats.changes;
        let before = changes.len();
        h.close_round(&mut self.in_rotation, |b, healthy| {
            changes.push(HealthChange {
                at: now,
                backend: b as u32,
                healthy,
            });
        });
        if changes.len() > before {
            self.rebuild_live();
        }
    }

    /// Outlier detection: judges each backend in rotation on its answers of the interval
    /// just past and ejects the worst outliers, up to the cap.
    pub(super) fn judge(&mut self, ctx: &mut Ctx<'_>) {
        let now = ctx.now();
        let Some(o) = &mut self.outliers else {
            return;
        };
        ctx.timer(o.interval, Msg::Balancer(BalancerTimer::Outliers));
        let n = self.backends.len();
        let judged: Vec<usize> = (0..n)
            .filter(|&b| {
                !o.ejected[b]
                    && self.in_rotation[b]
                    && self.member[b]
                    && o.answers[b] >= o.min_requests
            })
            .collect();
        let mean = |b: usize| o.time_ns[b] as f64 / o.answers[b] as f64;
        let median = {
            let mut m: Vec<f64> = judged.iter().map(|&b| mean(b)).collect();
            m.sort_by(f64::total_cmp);
            match m.len() {
                0 => 0.0,
                k if k % 2 == 1 => m[k / 2],
                k => (m[k / 2 - 1] + m[k / 2]) / 2.0,
            }
        };
        // (how far out, backend): the worst first, ties by index.
        let mut out: Vec<(f64, usize)> = Vec::new();
        for &b in &judged {
            let lat = o
                .latency_factor
                .filter(|_| median > 0.0)
                .map_or(0.0, |f| mean(b) / (f * median));
            let err = o
                .error_rate
                .map_or(0.0, |r| o.failed[b] as f64 / o.answers[b] as f64 / r);
            let score = lat.max(err);
            let is_out =
                (o.latency_factor.is_some() && lat > 1.0) || (o.error_rate.is_some() && err >= 1.0);
            if is_out {
                out.push((score, b));
            }
        }
        out.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        o.answers.fill(0);
        o.failed.fill(0);
        o.time_ns.fill(0);
        let already = o.ejected.iter().filter(|e| **e).count();
        let room = o.max_out.saturating_sub(already);
        let svc = ctx.shared.service_index(&self.service);
        let counted = now >= ctx.shared.stats.warmup;
        let mut any = false;
        for &(_, b) in out.iter().take(room) {
            o.ejected[b] = true;
            any = true;
            self.stats.out.add(now, 1.0);
            self.stats.ejections.push(HealthChange {
                at: now,
                backend: b as u32,
                healthy: false,
            });
            if counted {
                self.stats.ejected += 1;
                // False: the instance was neither slow nor down.
                let faulty = svc.is_some_and(|s| {
                    let st = &ctx.shared.compute.services[s];
                    st.slowdown.get(b).is_some_and(|f| *f != 1.0)
                        || st
                            .life
                            .get(b)
                            .is_some_and(|l| *l != crate::compute::Life::Ready)
                });
                if !faulty {
                    self.stats.false_ejections += 1;
                }
            }
            ctx.timer(
                o.ejection_time,
                Msg::Balancer(BalancerTimer::Return(b as u32)),
            );
        }
        if any {
            self.rebuild_live();
        }
    }

    /// An ejected backend's time is over: back in rotation (judged again from now on).
    pub(super) fn readmit(&mut self, ctx: &mut Ctx<'_>, b: u32) {
        let Some(o) = &mut self.outliers else {
            return;
        };
        let bi = b as usize;
        if o.ejected.get(bi) != Some(&true) {
            return;
        }
        o.ejected[bi] = false;
        o.answers[bi] = 0;
        o.failed[bi] = 0;
        o.time_ns[bi] = 0;
        let now = ctx.now();
        self.stats.out.add(now, -1.0);
        self.stats.ejections.push(HealthChange {
            at: now,
            backend: b,
            healthy: true,
        });
        self.rebuild_live();
    }
}

//! What a run measures: outcomes, latency histograms, gauges and the time series.
//!
//! Conservation: every counted request (first sent inside the measured window
//! `[warmup, end)`) ends exactly once as ok, error, timeout, shed or dropped.

use dssim_engine::{Histogram, SimTime, TimeWeighted};

use crate::request::Op;

/// How a logical request ended, as its client saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Served.
    Ok,
    /// Failed.
    Error,
    /// The client gave up waiting.
    Timeout,
    /// Turned away by load shedding (503).
    Shed,
    /// Lost on the way, or still unanswered when the run's drain ended.
    Dropped,
}

impl Outcome {
    /// The outcome in one word (`ok`, `error`, `timeout`, `shed`, `dropped`).
    pub fn label(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Error => "error",
            Outcome::Timeout => "timeout",
            Outcome::Shed => "shed",
            Outcome::Dropped => "dropped",
        }
    }
}

/// Levels sampled into the time series, kept up to date by the components.
#[derive(Debug, Default)]
pub struct Gauges {
    /// Busy workers, all services.
    pub busy: TimeWeighted,
    /// Workers available (live instances × workers), all services.
    pub workers: TimeWeighted,
    /// Requests waiting in service queues.
    pub queued: TimeWeighted,
    /// Logical requests in flight, client side.
    pub in_flight: TimeWeighted,
    /// Live service instances.
    pub instances: TimeWeighted,
}

/// One service instance's levels for instances.csv (`[output] instance_timeseries`),
/// kept up to date by the instance beside its own statistics.
#[derive(Clone, Debug, Default)]
pub struct InstanceGauge {
    /// Its service.
    pub component: String,
    /// Its name (`app.0`).
    pub instance: String,
    /// Its workers.
    pub workers: f64,
    /// Whether its service starts with it (listed in every interval; another instance is
    /// listed in the intervals where it had work).
    pub listed: bool,
    /// Busy workers.
    pub busy: TimeWeighted,
    /// Requests waiting.
    pub queued: TimeWeighted,
    /// Requests that reached it in the interval.
    pub arrivals: u64,
}

/// One row of instances.csv.
#[derive(Clone, Debug, PartialEq)]
pub struct InstanceSeriesRow {
    /// Interval start, seconds.
    pub t_s: f64,
    /// The service.
    pub component: String,
    /// The instance (`app.0`).
    pub instance: String,
    /// Requests that reached it per second.
    pub arrivals_rps: f64,
    /// Busy workers / its workers, time average.
    pub utilization: Option<f64>,
    /// Requests waiting in it, time average.
    pub queue_len: f64,
    /// A topic's subscriber group: the age of the message at the head of its backlog at
    /// the end of the interval (0 when none waits); empty for service instances.
    pub lag_ms: Option<f64>,
}

/// Counts within one time-series interval.
#[derive(Debug, Default)]
pub struct Interval {
    /// Requests sent by clients (logical).
    pub arrivals: u64,
    /// Requests that ended ok.
    pub ok: u64,
    /// Requests that ended in an error.
    pub errors: u64,
    /// Requests whose client gave up waiting.
    pub timeouts: u64,
    /// Shed requests.
    pub shed: u64,
    /// Dropped requests.
    pub dropped: u64,
    /// Latency of the requests that ended ok.
    pub latency: Histogram,
    /// Time to the end of the requests that did not end ok (when they failed).
    pub failed_latency: Histogram,
    /// Cache lookups (all caches).
    pub cache_lookups: u64,
    /// Cache hits (all caches).
    pub cache_hits: u64,
}

/// One row of timeseries.csv.
#[derive(Clone, Debug, PartialEq)]
pub struct SeriesRow {
    /// Interval start, seconds.
    pub t_s: f64,
    /// Requests completed ok per second.
    pub rps: f64,
    /// Requests sent per second.
    pub arrivals_rps: f64,
    /// p99 latency of the interval's ok completions (ms).
    pub p99_ms: Option<f64>,
    /// p99 over every request that ended in the interval, failures at the time they
    /// failed (ms).
    pub p99_all_ms: Option<f64>,
    /// Requests that ended in an error in the interval (as runs.csv `errors`).
    pub errors: u64,
    /// Requests whose client gave up in the interval (as runs.csv `timeouts`).
    pub timeouts: u64,
    /// Shed requests in the interval.
    pub shed: u64,
    /// Dropped requests in the interval.
    pub dropped: u64,
    /// Mean live instances.
    pub instances: f64,
    /// Mean requests waiting in queues.
    pub queue_len: f64,
    /// Mean requests in flight (Little's L).
    pub in_flight: f64,
    /// Busy workers / available workers.
    pub utilization: Option<f64>,
    /// Cache hits / lookups in the interval (no cache: empty).
    pub cache_hit_ratio: Option<f64>,
    /// Replication lag at the end of the interval: the age of the oldest change some live
    /// replica has not applied yet, the largest over replicas (ms; 0 when every replica is
    /// up to date, so it grows during a partition; no replicas: empty).
    pub repl_lag_ms: Option<f64>,
}

/// Run-wide metrics.
#[derive(Debug, Default)]
pub struct Stats {
    /// Start of the measured window.
    pub warmup: SimTime,
    /// End of arrivals.
    pub end: SimTime,
    /// Counted requests.
    pub requests: u64,
    /// Outcomes of counted requests.
    pub ok: u64,
    /// See [`Outcome::Error`].
    pub errors: u64,
    /// See [`Outcome::Timeout`].
    pub timeouts: u64,
    /// See [`Outcome::Shed`].
    pub shed: u64,
    /// See [`Outcome::Dropped`].
    pub dropped: u64,
    /// Counted requests not yet ended.
    pub pending: u64,
    /// Attempts sent, retries included (counted requests only).
    pub attempts: u64,
    /// The same for reads.
    pub read_latency: Histogram,
    /// The same for writes.
    pub write_latency: Histogram,
    /// Time from first sent to the end of the counted requests that did not end ok.
    pub failed_latency: Histogram,
    /// Time-series levels.
    pub gauges: Gauges,
    /// Whether the run records a time series (else interval latencies are not kept).
    pub series_on: bool,
    /// The current time-series interval.
    pub interval: Interval,
    /// Closed time-series rows.
    pub series: Vec<SeriesRow>,
    /// Per-instance levels (`[output] instance_timeseries`; empty when off), indexed by
    /// the instances' `series_slot`.
    pub instance_gauges: Vec<InstanceGauge>,
    /// Closed instances.csv rows.
    pub instance_series: Vec<InstanceSeriesRow>,
    /// Per actor id, its index in `instance_gauges` (`u32::MAX`: not an instance); empty
    /// when instances.csv is off.
    pub instance_slot: Vec<u32>,
    /// Cache lookups of counted requests, all caches.
    pub cache_lookups: u64,
    /// Of those, hits.
    pub cache_hits: u64,
    /// Acknowledged writes lost from write-behind cache buffers (`None`: no such cache).
    pub cache_lost_writes: Option<u64>,
}

impl Stats {
    /// The instances.csv levels of instance actor `actor`; none when they are off.
    #[inline]
    pub fn instance_gauge(&mut self, actor: dssim_engine::ActorId) -> Option<&mut InstanceGauge> {
        let k = *self.instance_slot.get(actor as usize)?;
        self.instance_gauges.get_mut(k as usize)
    }

    /// Whether a request first sent at `t` is counted.
    #[inline]
    pub fn counts(&self, t: SimTime) -> bool {
        t >= self.warmup && t < self.end
    }

    /// A cache looked a key up (`counted`: for a request of the measured window).
    #[inline]
    pub fn cache_lookup(&mut self, hit: bool, counted: bool) {
        self.interval.cache_lookups += 1;
        self.interval.cache_hits += u64::from(hit);
        if counted {
            self.cache_lookups += 1;
            self.cache_hits += u64::from(hit);
        }
    }

    /// A client sent a new logical request at `now`.
    #[inline]
    pub fn started(&mut self, now: SimTime) {
        self.interval.arrivals += 1;
        if self.series_on {
            self.gauges.in_flight.add(now, 1.0);
        }
        if self.counts(now) {
            self.requests += 1;
            self.pending += 1;
        }
    }

    /// A logical request first sent at `first_sent` ended at `now`.
    ///
    /// One `match` on the outcome for the interval's and the run's counts together (the
    /// run's only when counted), where it took three.
    #[inline(always)]
    pub fn finished(&mut self, first_sent: SimTime, op: Op, now: SimTime, outcome: Outcome) {
        let d = now - first_sent;
        if self.series_on {
            self.gauges.in_flight.add(now, -1.0);
            if outcome == Outcome::Ok {
                self.interval.latency.record(d);
            } else {
                self.interval.failed_latency.record(d);
            }
        }
        let counted = self.counts(first_sent);
        let c = u64::from(counted);
        self.pending -= c;
        match outcome {
            Outcome::Ok => {
                self.interval.ok += 1;
                if counted {
                    self.ok += 1;
                    // The overall histogram is the sum of these two, merged when reported.
                    match op {
                        Op::Read => self.read_latency.record(d),
                        Op::Write => self.write_latency.record(d),
                    }
                }
                return;
            }
            Outcome::Error => {
                self.interval.errors += 1;
                self.errors += c;
            }
            Outcome::Timeout => {
                self.interval.timeouts += 1;
                self.timeouts += c;
            }
            Outcome::Shed => {
                self.interval.shed += 1;
                self.shed += c;
            }
            Outcome::Dropped => {
                self.interval.dropped += 1;
                self.dropped += c;
            }
        }
        if counted {
            self.failed_latency.record(d);
        }
    }

    /// Closes the time-series interval `[start, now)`; `repl_lag_ms` is the replication lag
    /// gauge read at `now` (see [`SeriesRow::repl_lag_ms`]).
    pub fn close_interval(&mut self, start: SimTime, now: SimTime, repl_lag_ms: Option<f64>) {
        let span = (now - start).as_secs_f64();
        if span <= 0.0 {
            return;
        }
        let g = &mut self.gauges;
        let workers = g.workers.mean(now);
        let busy = g.busy.mean(now);
        let row = SeriesRow {
            t_s: start.as_secs_f64(),
            rps: self.interval.ok as f64 / span,
            arrivals_rps: self.interval.arrivals as f64 / span,
            p99_ms: self.interval.latency.quantile_ms(0.99),
            p99_all_ms: {
                let mut all = self.interval.latency.clone();
                all.merge(&self.interval.failed_latency);
                all.quantile_ms(0.99)
            },
            errors: self.interval.errors,
            timeouts: self.interval.timeouts,
            shed: self.interval.shed,
            dropped: self.interval.dropped,
            instances: g.instances.mean(now),
            queue_len: g.queued.mean(now),
            in_flight: g.in_flight.mean(now),
            utilization: (workers > 0.0).then(|| busy / workers),
            repl_lag_ms,
            cache_hit_ratio: (self.interval.cache_lookups > 0)
                .then(|| self.interval.cache_hits as f64 / self.interval.cache_lookups as f64),
        };
        for tw in [
            &mut g.busy,
            &mut g.workers,
            &mut g.queued,
            &mut g.in_flight,
            &mut g.instances,
        ] {
            tw.reset(now);
        }
        self.interval.arrivals = 0;
        self.interval.ok = 0;
        self.interval.errors = 0;
        self.interval.timeouts = 0;
        self.interval.shed = 0;
        self.interval.dropped = 0;
        self.interval.latency.clear();
        self.interval.failed_latency.clear();
        self.interval.cache_lookups = 0;
        self.interval.cache_hits = 0;
        self.series.push(row);
        let t_s = start.as_secs_f64();
        for g in &mut self.instance_gauges {
            let busy = g.busy.mean(now);
            let queued = g.queued.mean(now);
            if g.listed || g.arrivals > 0 || busy > 0.0 || queued > 0.0 {
                self.instance_series.push(InstanceSeriesRow {
                    t_s,
                    component: g.component.clone(),
                    instance: g.instance.clone(),
                    arrivals_rps: g.arrivals as f64 / span,
                    utilization: (g.workers > 0.0).then(|| busy / g.workers),
                    queue_len: queued,
                    lag_ms: None,
                });
            }
            g.busy.reset(now);
            g.queued.reset(now);
            g.arrivals = 0;
        }
    }

    /// Latency of every counted request that ended ok: reads and writes together.
    pub fn latency(&self) -> Histogram {
        let mut h = self.read_latency.clone();
        h.merge(&self.write_latency);
        h
    }

    /// Time to the end of every counted request, failures at the time they failed.
    pub fn all_latency(&self) -> Histogram {
        let mut h = self.latency();
        h.merge(&self.failed_latency);
        h
    }

    /// Whether every counted request ended exactly once.
    pub fn conserved(&self) -> bool {
        self.pending == 0
            && self.requests == self.ok + self.errors + self.timeouts + self.shed + self.dropped
    }
}

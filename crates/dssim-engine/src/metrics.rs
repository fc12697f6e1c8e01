//! Streaming metric primitives: latency histograms, time-weighted gauges, running stats.
//! Memory does not grow with simulated time.

use hdrhistogram::Histogram as Hdr;

use crate::time::SimTime;

/// An HDR histogram of durations (ns), 3 significant digits, from 1 µs to an hour and
/// growing on demand past that.
#[derive(Clone, Debug)]
pub struct Histogram {
    h: Hdr<u64>,
}

impl Default for Histogram {
    fn default() -> Self {
        Self::new()
    }
}

impl Histogram {
    /// An empty histogram.
    pub fn new() -> Self {
        let mut h = Hdr::new_with_bounds(1_000, 3_600_000_000_000, 3)
            .expect("static histogram bounds are valid");
        h.auto(true);
        Histogram { h }
    }

    /// Records one duration.
    #[inline]
    pub fn record(&mut self, d: SimTime) {
        // auto-resize is on, so recording cannot fail for any u64 below 2^63.
        let _ = self.h.record(d.0.clamp(1, i64::MAX as u64));
    }

    /// Number of values recorded.
    pub fn len(&self) -> u64 {
        self.h.len()
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.h.is_empty()
    }

    /// The value at quantile `q` (0..=1), in milliseconds; `None` when empty.
    pub fn quantile_ms(&self, q: f64) -> Option<f64> {
        if self.h.is_empty() {
            None
        } else {
            Some(self.h.value_at_quantile(q.clamp(0.0, 1.0)) as f64 / 1e6)
        }
    }

    /// The mean in milliseconds; `None` when empty.
    pub fn mean_ms(&self) -> Option<f64> {
        if self.h.is_empty() {
            None
        } else {
            Some(self.h.mean() / 1e6)
        }
    }

    /// The largest value in milliseconds; `None` when empty.
    pub fn max_ms(&self) -> Option<f64> {
        if self.h.is_empty() {
            None
        } else {
            Some(self.h.max() as f64 / 1e6)
        }
    }

    /// Adds every value of `other`.
    pub fn merge(&mut self, other: &Histogram) {
        let _ = self.h.add(&other.h);
    }

    /// Forgets everything.
    pub fn clear(&mut self) {
        self.h.reset();
    }
}

/// `x as f64`, through the one-instruction signed conversion when `x` fits (the same
/// value: both round to nearest).
#[inline(always)]
fn ns_f64(x: u64) -> f64 {
    if x < 1 << 63 {
        x as i64 as f64
    } else {
        x as f64
    }
}

/// The time average of a piecewise-constant level (busy workers, queue length, instances).
#[derive(Clone, Debug, Default)]
pub struct TimeWeighted {
    level: f64,
    since: SimTime,
    area: f64,
    start: SimTime,
}

impl TimeWeighted {
    /// Sets the level at time `now`.
    #[inline]
    pub fn set(&mut self, now: SimTime, level: f64) {
        if now > self.since {
            self.area += self.level * ns_f64(now.0 - self.since.0);
            self.since = now;
        }
        self.level = level;
    }

    /// Adds `delta` to the level at time `now`.
    #[inline]
    pub fn add(&mut self, now: SimTime, delta: f64) {
        let l = self.level + delta;
        self.set(now, l);
    }

    /// The current level.
    pub fn level(&self) -> f64 {
        self.level
    }

    /// Forgets the past: the average restarts at `now` (end of warm-up).
    pub fn reset(&mut self, now: SimTime) {
        self.set(now, self.level);
        self.area = 0.0;
        self.start = now;
    }

    /// The average level between the last reset and `now`.
    pub fn mean(&self, now: SimTime) -> f64 {
        let span = now.0.saturating_sub(self.start.0) as f64;
        if span <= 0.0 {
            return self.level;
        }
        let tail = self.level * now.0.saturating_sub(self.since.0) as f64;
        (self.area + tail) / span
    }

    /// The integral of the level (level × ns) since the last reset up to `now`.
    pub fn area(&self, now: SimTime) -> f64 {
        self.area + self.level * now.0.saturating_sub(self.since.0) as f64
    }
}

/// Running mean and variance (Welford), for values that are not durations.
#[derive(Clone, Copy, Debug, Default)]
pub struct Running {
    n: u64,
    mean: f64,
    m2: f64,
}

impl Running {
    /// Adds one value.
    pub fn push(&mut self, x: f64) {
        self.n += 1;
        let d = x - self.mean;
        self.mean += d / self.n as f64;
        self.m2 += d * (x - self.mean);
    }
    /// Count.
    pub fn count(&self) -> u64 {
        self.n
    }
    /// Mean (0 when empty).
    pub fn mean(&self) -> f64 {
        self.mean
    }
    /// Sample variance (0 with fewer than two values).
    pub fn variance(&self) -> f64 {
        if self.n < 2 {
            0.0
        } else {
            self.m2 / (self.n - 1) as f64
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_weighted_average() {
        let mut t = TimeWeighted::default();
        t.set(SimTime(0), 2.0);
        t.set(SimTime(10), 4.0);
        assert!((t.mean(SimTime(20)) - 3.0).abs() < 1e-12);
        t.reset(SimTime(20));
        assert!((t.mean(SimTime(30)) - 4.0).abs() < 1e-12);
    }

    #[test]
    fn histogram_quantiles_within_precision() {
        let mut h = Histogram::new();
        for i in 1..=1000u64 {
            h.record(SimTime::from_micros(i * 10));
        }
        let p99 = h.quantile_ms(0.99).unwrap();
        assert!((p99 - 9.9).abs() / 9.9 < 0.002, "{p99}");
    }
}

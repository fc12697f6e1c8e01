//! Streaming metric primitives: latency histograms, time-weighted gauges, running stats.
//! Memory does not grow with simulated time.

#[cfg(test)]
use hdrhistogram::Histogram as Hdr;

use crate::time::SimTime;

/// An HDR histogram of durations (ns), 3 significant digits, from 1 µs to an hour and
/// growing on demand past that.
///
/// Recording is on the hot path (a few records per request), so it keeps its own bucket
/// counts with exactly the layout `hdrhistogram` derives from those bounds (1 µs, 1 h,
/// 3 digits: units of 2^9 ns, 2048 sub-buckets per power of two) and only increments one.
/// Quantiles, the mean and the maximum are read off the counts with `hdrhistogram`'s own
/// rules (the tests check each against an `hdrhistogram` fed the same values), so every
/// figure is the one recording into `hdrhistogram` directly would give.
///
/// The counts span tens of KiB where latencies lie, so the increment of a random bucket
/// often misses the L1 cache, and on the hot path that miss stalled the event loop. So
/// `record` only notes the bucket index in a small buffer; the buffer is counted
/// [`PENDING`] at a time, where the misses overlap. Every reader sees the buffered values.
#[derive(Clone, Debug, Default)]
pub struct Histogram {
    /// Count per bucket index; grows on demand, zero past the last recorded index.
    counts: Vec<u64>,
    /// Values recorded (buffered ones included).
    total: u64,
    /// One past the highest index with a count (the part of `counts` to scan and clear).
    hi: usize,
    /// Bucket indexes recorded but not yet counted, `pending[..npending]`.
    pending: [u32; PENDING],
    npending: u32,
}

/// Values a histogram buffers before counting them.
const PENDING: usize = 32;

/// `floor(log2(1000 ns))`: the histogram's unit is 2^9 ns.
const UNIT_MAGNITUDE: u32 = 9;
/// Half the sub-buckets of a bucket, as a power of two (2048 sub-buckets for 3 digits).
const SUB_HALF_MAGNITUDE: u32 = 10;
const SUB_HALF: usize = 1 << SUB_HALF_MAGNITUDE;
const SUB_BUCKET_MASK: u64 = ((1 << (SUB_HALF_MAGNITUDE + 1)) - 1) << UNIT_MAGNITUDE;
const LEADING_ZERO_BASE: u32 = 64 - UNIT_MAGNITUDE - (SUB_HALF_MAGNITUDE + 1);

/// The bucket index of `v` (hdrhistogram's `index_for`).
#[inline(always)]
fn index_of(v: u64) -> usize {
    let bucket = LEADING_ZERO_BASE - (v | SUB_BUCKET_MASK).leading_zeros();
    let sub = (v >> (bucket + UNIT_MAGNITUDE)) as usize;
    ((bucket as usize + 1) << SUB_HALF_MAGNITUDE) + sub - SUB_HALF
}

/// The lowest value of bucket index `i` (hdrhistogram's `value_for`).
fn value_of(i: usize) -> u64 {
    let bucket = (i >> SUB_HALF_MAGNITUDE) as i64 - 1;
    let sub = (i & (SUB_HALF - 1)) + SUB_HALF;
    if bucket < 0 {
        ((sub - SUB_HALF) as u64) << UNIT_MAGNITUDE
    } else {
        (sub as u64) << (bucket as u32 + UNIT_MAGNITUDE)
    }
}

/// The highest value equivalent to `v` (hdrhistogram's `highest_equivalent`).
fn highest_equivalent(v: u64) -> u64 {
    if v == u64::MAX {
        return u64::MAX;
    }
    let bucket = LEADING_ZERO_BASE - (v | SUB_BUCKET_MASK).leading_zeros();
    value_of(index_of(v)).saturating_add(1 << (UNIT_MAGNITUDE + bucket)) - 1
}

/// The middle value of bucket index `i`: hdrhistogram's `median_equivalent` of the
/// bucket's highest value (`highest_equivalent(value_of(i))`, the value `mean` takes per
/// bucket), in closed form: the lowest value plus half the bucket's width, 2^9 ns below
/// index 2048 and twice that per 1024 indexes above (the highest value of an index a
/// recorded value, at most 2^63 - 1, can reach stays below 2^64, so neither saturates).
/// About 20 instructions a used bucket fewer in `mean_ms`: production 20 s 928.1 -> 925.5 M
/// instructions (M/M/1 250 s 291.5 -> 290.6 M); outputs byte-identical (the tests check it
/// against hdrhistogram).
#[inline(always)]
fn median_of(i: usize) -> u64 {
    let shift = UNIT_MAGNITUDE + ((i >> SUB_HALF_MAGNITUDE) as u32).saturating_sub(1);
    value_of(i) + ((1u64 << shift) >> 1)
}

/// The middle value of the bucket holding `v` (hdrhistogram's `median_equivalent`).
#[cfg(test)]
fn median_equivalent(v: u64) -> u64 {
    let bucket = LEADING_ZERO_BASE - (v | SUB_BUCKET_MASK).leading_zeros();
    value_of(index_of(v)) + ((1u64 << (UNIT_MAGNITUDE + bucket)) >> 1)
}

impl Histogram {
    /// An empty histogram.
    pub fn new() -> Self {
        Histogram::default()
    }

    /// Records one duration.
    ///
    /// Inlined at every call (the flush stays out of line): as a call it paid a prologue
    /// and an epilogue per value (M/M/1 250 s, 200k customers: 322.5 -> 321.2 M
    /// instructions, 1,613 -> 1,606 a customer; with a 1 s timeout 1,788 -> 1,781; outputs
    /// byte-identical).
    #[inline(always)]
    pub fn record(&mut self, d: SimTime) {
        let i = index_of(d.0.clamp(1, i64::MAX as u64));
        self.total += 1;
        let n = self.npending as usize;
        self.pending[n % PENDING] = i as u32;
        self.npending += 1;
        if n + 1 == PENDING {
            self.flush();
        }
    }

    /// Counts the buffered values.
    ///
    /// The largest index is a fold, which compiles to vector selects: `iter().max()` was a
    /// scalar loop with a branch per value, mispredicted as often as the maximum changes,
    /// and the buffer is read in place (it was copied to the stack first).
    #[inline(never)]
    fn flush(&mut self) {
        let n = std::mem::take(&mut self.npending) as usize;
        if n == 0 {
            return;
        }
        let top = self.pending[..n].iter().fold(0, |m, &i| m.max(i)) as usize;
        if top >= self.counts.len() {
            self.grow(top);
        }
        for &i in &self.pending[..n] {
            self.counts[i as usize] += 1;
        }
        self.hi = self.hi.max(top + 1);
    }

    /// Calls `f(i, c)` for every bucket index `i` whose count `c` (buffered values
    /// included) is positive, in index order, until `f` returns true.
    ///
    /// The counts are read in place, the buffered indexes (at most [`PENDING`]) sorted
    /// and added where the scan reaches them. Readers went through a copy of the whole
    /// histogram with the buffer counted when a value was buffered (always, at the end
    /// of a run): a `memcpy` of the counts (tens of KiB) per quantile, mean and merge.
    /// Production 20 s: `memcpy` 9.2 -> 4.3 M instructions, the run 941.8 -> ~936.9 M
    /// (profile of a build with the Zipf change, 941.8 -> 928.1 M together; M/M/1 250 s
    /// 291.8 -> 291.5 M); outputs byte-identical (the same counts in the same order).
    /// Inlined with its scan, so each reader's closure is inlined in the loop: as calls,
    /// M/M/1 250 s rose to 292.6 M.
    #[inline(always)]
    fn each_count(&self, mut f: impl FnMut(usize, u64) -> bool) {
        let n = self.npending as usize;
        let mut p = self.pending;
        let p = &mut p[..n];
        p.sort_unstable();
        let hi = self.hi;
        // The positive counts of `counts[from..to]` (`to` at most `hi`).
        #[inline(always)]
        fn plain(
            counts: &[u64],
            from: usize,
            to: usize,
            f: &mut impl FnMut(usize, u64) -> bool,
        ) -> bool {
            from < to
                && counts[from..to]
                    .iter()
                    .enumerate()
                    .any(|(j, &c)| c > 0 && f(from + j, c))
        }
        let mut from = 0;
        let mut k = 0;
        while k < n {
            let q = p[k] as usize;
            let mut m = 0u64;
            while k < n && p[k] as usize == q {
                m += 1;
                k += 1;
            }
            if plain(&self.counts, from, q.min(hi), &mut f) {
                return;
            }
            // Past `hi` the counts are zero (or not allocated yet).
            let c = self.counts.get(q).copied().unwrap_or(0) + m;
            if f(q, c) {
                return;
            }
            from = q + 1;
        }
        plain(&self.counts, from, hi, &mut f);
    }

    /// One past the highest bucket index with a count, buffered values included.
    fn top(&self) -> usize {
        self.pending[..self.npending as usize]
            .iter()
            .fold(self.hi, |m, &i| m.max(i as usize + 1))
    }

    /// This histogram with every buffered value counted: itself when none is buffered.
    #[cfg(test)]
    fn settled(&self) -> std::borrow::Cow<'_, Histogram> {
        if self.npending == 0 {
            std::borrow::Cow::Borrowed(self)
        } else {
            let mut h = self.clone();
            h.flush();
            std::borrow::Cow::Owned(h)
        }
    }

    #[cold]
    #[inline(never)]
    fn grow(&mut self, i: usize) {
        // Whole half-buckets at a time, at least doubling.
        let want = (i + 1)
            .next_multiple_of(SUB_HALF)
            .max(2 * self.counts.len());
        self.counts.resize(want, 0);
    }

    /// The same counts in an `hdrhistogram` (the tests check every figure against it).
    #[cfg(test)]
    fn hdr(&self) -> Hdr<u64> {
        let mut h = Hdr::new_with_bounds(1_000, 3_600_000_000_000, 3)
            .expect("static histogram bounds are valid");
        h.auto(true);
        for (i, &c) in self.counts[..self.hi].iter().enumerate() {
            if c > 0 {
                // auto-resize is on, so recording cannot fail for any u64 below 2^63.
                let _ = h.record_n(value_of(i), c);
            }
        }
        h
    }

    /// Number of values recorded.
    pub fn len(&self) -> u64 {
        self.total
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    /// The value at quantile `q` (0..=1), in milliseconds; `None` when empty.
    pub fn quantile_ms(&self, q: f64) -> Option<f64> {
        if self.total == 0 {
            return None;
        }
        // hdrhistogram's `value_at_quantile`: the first bucket where the running count
        // reaches ceil(q * total) (at least 1), reported as its highest value (lowest at 0).
        let q = q.clamp(0.0, 1.0);
        let target = ((q * self.total as f64).ceil() as u64).max(1);
        let mut run = 0u64;
        let mut found = None;
        // A bucket without a count cannot be the first to reach the target.
        self.each_count(|i, c| {
            run += c;
            if run >= target {
                let v = value_of(i);
                let v = if q == 0.0 { v } else { highest_equivalent(v) };
                found = Some(v as f64 / 1e6);
            }
            found.is_some()
        });
        Some(found.unwrap_or(0.0))
    }

    /// The values at quantiles `qs` (each 0..=1, ascending), in milliseconds, in one pass
    /// over the counts: exactly `qs.iter().map(|q| self.quantile_ms(q))`. Empty when the
    /// histogram is; falls back to one pass per quantile if `qs` is not ascending.
    pub fn quantiles_ms(&self, qs: &[f64]) -> Vec<f64> {
        if self.total == 0 {
            return Vec::new();
        }
        if !qs.windows(2).all(|w| w[0] <= w[1]) {
            return qs.iter().filter_map(|&q| self.quantile_ms(q)).collect();
        }
        let mut out = Vec::with_capacity(qs.len());
        let mut next = 0;
        let mut run = 0u64;
        self.each_count(|i, c| {
            run += c;
            while let Some(&q) = qs.get(next) {
                let q = q.clamp(0.0, 1.0);
                let target = ((q * self.total as f64).ceil() as u64).max(1);
                if run < target {
                    break;
                }
                let v = value_of(i);
                let v = if q == 0.0 { v } else { highest_equivalent(v) };
                out.push(v as f64 / 1e6);
                next += 1;
            }
            next == qs.len()
        });
        out.resize(qs.len(), 0.0);
        out
    }

    /// The mean in milliseconds; `None` when empty. hdrhistogram's `mean`: every used
    /// bucket counts at its median value, summed in bucket order (read off the counts,
    /// without rebuilding an hdrhistogram).
    pub fn mean_ms(&self) -> Option<f64> {
        if self.total == 0 {
            return None;
        }
        let total = self.total as f64;
        let mut mean = 0.0_f64;
        self.each_count(|i, c| {
            mean += median_of(i) as f64 * c as f64 / total;
            false
        });
        Some(mean / 1e6)
    }

    /// The largest value in milliseconds (the highest value of the highest bucket used,
    /// as quantiles report theirs); `None` when empty. This is hdrhistogram's `max` of the
    /// same counts, except below 512 ns (the first bucket), where that reads 0, under the
    /// quantiles.
    pub fn max_ms(&self) -> Option<f64> {
        if self.total == 0 {
            None
        } else {
            Some(highest_equivalent(value_of(self.top() - 1)) as f64 / 1e6)
        }
    }

    /// Adds every value of `other`: its counts, and its buffered values into this
    /// histogram's buffer (emptied first), rather than through a copy of `other`.
    pub fn merge(&mut self, other: &Histogram) {
        self.flush();
        if other.hi > self.counts.len() {
            self.grow(other.hi - 1);
        }
        for (a, b) in self.counts.iter_mut().zip(&other.counts[..other.hi]) {
            *a += b;
        }
        self.total += other.total;
        self.hi = self.hi.max(other.hi);
        let n = other.npending as usize;
        self.pending[..n].copy_from_slice(&other.pending[..n]);
        self.npending = other.npending;
    }

    /// Forgets everything.
    pub fn clear(&mut self) {
        self.counts[..self.hi].fill(0);
        self.npending = 0;
        self.total = 0;
        self.hi = 0;
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

    /// Below 512 ns (the first bucket) the figures stay consistent: max >= every quantile
    /// and mean <= max (max read 0 there before).
    #[test]
    fn statistics_are_consistent_below_512_ns() {
        for values in [&[100u64, 200, 300][..], &[1, 1, 1], &[511], &[0, 700, 100]] {
            let mut h = Histogram::new();
            for &v in values {
                h.record(SimTime(v));
            }
            let max = h.max_ms().unwrap();
            let mean = h.mean_ms().unwrap();
            for q in [0.0, 0.5, 0.99, 1.0] {
                let v = h.quantile_ms(q).unwrap();
                assert!(max >= v, "{values:?}: max {max} < p{q} {v}");
            }
            assert!(mean <= max, "{values:?}: mean {mean} > max {max}");
        }
    }

    /// `median_of` is the median hdrhistogram's mean takes, for every index a value can
    /// reach.
    #[test]
    fn median_of_is_hdrhistograms() {
        for i in 0..=index_of(i64::MAX as u64) {
            assert_eq!(
                median_of(i),
                median_equivalent(highest_equivalent(value_of(i))),
                "i = {i}"
            );
        }
    }

    /// Every figure equals what recording into hdrhistogram directly gives.
    #[test]
    fn histogram_matches_hdrhistogram() {
        let mut rng = crate::rng::stream(7, "h");
        let mut mine = Histogram::new();
        let mut other = Histogram::new();
        let mut hdr = Hdr::<u64>::new_with_bounds(1_000, 3_600_000_000_000, 3).unwrap();
        hdr.auto(true);
        for k in 0..200_000u64 {
            use rand::Rng as _;
            // Values from 0 ns to beyond an hour, log-spread, plus edge cases.
            let v = match k {
                0 => 0,
                1 => 1,
                2 => 511,
                3 => 512,
                4 => 1_048_575,
                5 => 1_048_576,
                6 => 7_200_000_000_000,
                7 => i64::MAX as u64,
                _ => (2f64.powf(rng.random::<f64>() * 44.0)) as u64,
            };
            let d = SimTime(v);
            if k % 3 == 0 {
                other.record(d);
            } else {
                mine.record(d);
            }
            let _ = hdr.record(v.clamp(1, i64::MAX as u64));
        }
        mine.merge(&other);
        assert_eq!(mine.len(), hdr.len());
        for q in [0.0, 1e-6, 0.1, 0.5, 0.9, 0.95, 0.99, 0.999, 0.99999, 1.0] {
            let want = hdr.value_at_quantile(q) as f64 / 1e6;
            assert_eq!(mine.quantile_ms(q), Some(want), "q = {q}");
        }
        assert_eq!(mine.mean_ms(), Some(hdr.mean() / 1e6));
        assert_eq!(mine.mean_ms(), Some(mine.settled().hdr().mean() / 1e6));
        assert_eq!(mine.max_ms(), Some(hdr.max() as f64 / 1e6));
        // Many quantiles in one pass: the same values.
        let qs: Vec<f64> = (0..=1000).map(|i| f64::from(i) / 1000.0).collect();
        let one: Vec<f64> = qs.iter().filter_map(|&q| mine.quantile_ms(q)).collect();
        assert_eq!(mine.quantiles_ms(&qs), one);
        let mut small = Histogram::new();
        for v in [3_000u64, 3_000, 90_000, 1_000_000_000] {
            small.record(SimTime(v));
        }
        let one: Vec<f64> = qs.iter().filter_map(|&q| small.quantile_ms(q)).collect();
        assert_eq!(small.quantiles_ms(&qs), one);
        assert_eq!(small.mean_ms(), Some(small.settled().hdr().mean() / 1e6));
        mine.clear();
        assert!(mine.is_empty());
        assert_eq!(mine.quantile_ms(0.5), None);
        mine.record(SimTime(5_000));
        assert_eq!(mine.len(), 1);
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

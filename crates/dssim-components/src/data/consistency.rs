//! The consistency oracle: the simulator knows the newest acknowledged version of every
//! key, so it can judge every read, something no real test harness gets for free.
//!
//! ```text
//!   database commit --version--> request --ack to client--> Oracle::observe (write)
//!   database read   --version--> request --answer to client--> Oracle::observe (read): judged
//! ```
//!
//! Definitions (see outputs.md):
//! - **stale read**: a read that returned a version older than the newest version of that
//!   key acknowledged to any client before the read began (the attempt's send time). Its
//!   staleness age is how long before the read began a newer version had been
//!   acknowledged.
//! - **read-your-writes violation**: a read by a user that returned a version older than
//!   that user's last acknowledged write to that key (the oracle keeps each user's last
//!   write, so a user's earlier writes to other keys are not checked).
//! - **monotonic-read violation**: a read by a user that returned an older version of a key
//!   than that user's previous read of the same key returned (previous read only).
//! - **replication lag**: per change and replica, commit on the primary -> apply on it.
//! - **lost write**: an acknowledged write that the primary after a failover does not hold.
//!
//! Memory: per key written, a short history of acknowledgements; per user, the last write
//! and the last read. Nothing grows with time beyond the key space and the users.

use dssim_engine::{Histogram, SimTime};

use crate::data::cache::DenseMap;
use crate::request::{Op, Request};

/// Acknowledgements remembered per key; older ones are summarised (see [`KeyAcks`]).
const HISTORY: usize = 8;

/// The recent acknowledgements of one key: `(time, newest version acknowledged so far)`,
/// oldest first, at most [`HISTORY`]. The default (nothing acknowledged) is a key never
/// written.
///
/// Tried and not kept (session 11, for the stress day, where nearly every key is written
/// and `observe` was 9.9 % of the samples, a third of them on this history): the history
/// as a ring of 8 entries, 128 bytes aligned to a cache line, its position and length in
/// a byte per key beside it and its newest entry in `Oracle::last` only, so that a write
/// stores one entry without loading the history (no `copy_within`) and a candidate stale
/// read scans back from the newest entry (exact: the ring's answers were checked against
/// this history's). The stress day's 3-hour proxy (`duration=3h`, `period=3h`, rate 300
/// -> 5,800/s) was level in CPU (paired runs on the two cores: 39.42 s without, 39.38 s
/// with), and the instructions rose: 2 minutes of a 4-minute day 2,643.6 -> 2,662.7 M,
/// production 20 s 910.2 -> 916.6 M (three maps to update per write, the ring's index
/// arithmetic, the history table zeroed when it grows).
#[derive(Clone, Debug, Default)]
struct KeyAcks {
    /// The newest acknowledgement, `hist[len - 1]` (zeros while `len` is 0).
    last: (SimTime, u64),
    len: u8,
    /// Whether older acknowledgements were dropped from `hist`.
    truncated: bool,
    hist: [(SimTime, u64); HISTORY],
}

impl KeyAcks {
    #[inline]
    fn newest(&self) -> u64 {
        self.last.1
    }

    fn push(&mut self, t: SimTime, version: u64) {
        if version <= self.newest() {
            return;
        }
        if self.len as usize == HISTORY {
            self.hist.copy_within(1.., 0);
            self.len -= 1;
            self.truncated = true;
        }
        self.hist[self.len as usize] = (t, version);
        self.len += 1;
        self.last = (t, version);
    }

    /// The newest version acknowledged strictly before `t`, and the time the first version
    /// newer than `v` was acknowledged (for the staleness age); `None` when the history
    /// no longer reaches back to `t` (the read is then not judged).
    fn floor(&self, t: SimTime, v: u64) -> Option<(u64, Option<SimTime>)> {
        let h = &self.hist[..self.len as usize];
        let before = h.iter().rposition(|&(at, _)| at < t);
        let floor = match before {
            Some(i) => h[i].1,
            None if self.truncated => return None,
            None => 0,
        };
        let first_newer = h.iter().find(|&&(at, ver)| ver > v && at < t).map(|e| e.0);
        Some((floor, first_newer))
    }
}

#[derive(Clone, Copy, Debug, Default)]
struct UserState {
    /// Last acknowledged write: (key, version, time).
    write: Option<(u64, u64, SimTime)>,
    /// Last read: (key, version).
    read: Option<(u64, u64)>,
}

/// A key's newest acknowledgement in 8 bytes, for the check every read makes: the version
/// (saturated at `u32::MAX`) and the time rounded up to units of 2^20 ns (about 1 ms,
/// saturated at `u32::MAX`, 52 days). The check it allows is conservative: a read it
/// passes began after the acknowledgement and returned at least its version; any other
/// read (a saturated field included) is judged from the key's history, as before.
///
/// It halves the table every read loads (16 -> 8 bytes a key: 1 MiB for the production
/// model's 100,000 keys, 8 keys to a cache line): over the stress day nearly every key is
/// written, so that load was half of `Oracle::observe`, 10.6 % of the samples. Judgements
/// are unchanged (outputs byte-identical; the test below checks the check is conservative).
/// 20-minute stress-day proxy, per-round CPU ratio against 16 bytes: median 0.986, 8 of 12
/// rounds faster (4 KiB pages).
#[derive(Clone, Copy, Debug, Default)]
struct Ack {
    version: u32,
    units: u32,
}

/// log2 of the unit of [`Ack`]'s time.
const ACK_UNIT: u32 = 20;

impl Ack {
    fn new(at: SimTime, version: u64) -> Ack {
        let units = at.0.div_ceil(1 << ACK_UNIT);
        Ack {
            version: u32::try_from(version).unwrap_or(u32::MAX),
            units: u32::try_from(units).unwrap_or(u32::MAX),
        }
    }

    /// Whether a read that began at `began` and returned `v` saw the newest version
    /// acknowledged before it began, with no newer one acknowledged since (`false`: ask
    /// the history).
    #[inline(always)]
    fn current(self, began: SimTime, v: u64) -> bool {
        self.version != u32::MAX
            && self.units != u32::MAX
            && u64::from(self.units) << ACK_UNIT < began.0
            && v >= u64::from(self.version)
    }
}

/// Judges reads against the truth and counts consistency failures (in `Shared.oracle`).
#[derive(Debug, Default)]
pub struct Oracle {
    /// Whether the model has databases (the consistency columns apply).
    pub enabled: bool,
    version: u64,
    /// Per key, the newest acknowledgement ([`Ack`], 8 bytes a key), so the hot keys share
    /// cache lines; a read that is not stale needs nothing else.
    last: DenseMap<Ack>,
    /// One bit per key of the key space: whether `last` holds an acknowledgement of it.
    /// A read of a key never written is judged at once (nothing newer was acknowledged)
    /// without touching `last`: 12.5 kB for the production model's 100,000 keys, always
    /// cached, where `last` (1.6 MB) missed the cache on most such reads, and those are
    /// the reads of the cold keys, the ones whose `last` line is not cached. Keys beyond the
    /// bits take the usual path. Production 120 s: 1.061 -> 1.024 s CPU (10 rounds),
    /// `Oracle::observe` 6.9 % -> 4.4 % of the samples.
    ///
    /// Tried and not kept: judging a read from its key's history entry (`keys`, whose
    /// `last` is the same pair) instead of `last`, so a candidate stale read takes one
    /// cache miss rather than two in a row: 120 s CPU 30 interleaved rounds mean +0.008 s
    /// (medians 0.737 -> 0.744 s); the reads that are not stale lose the denser table. In
    /// `perf` samples (`-e cpu-clock`) `observe` is ~5 % of the run, nearly all of it three
    /// loads that miss: `last` here, the history on a write and on a candidate stale read.
    written: Vec<u64>,
    keys: DenseMap<KeyAcks>,
    users: DenseMap<UserState>,
    /// Reads judged (counted requests only).
    pub reads_judged: u64,
    /// Stale reads.
    pub stale_reads: u64,
    /// How long before the read began a newer version had been acknowledged.
    pub stale_age: Histogram,
    /// Read-your-writes violations.
    pub ryw_violations: u64,
    /// Monotonic-read violations.
    pub monotonic_violations: u64,
    /// Replication lag per change and replica (changes committed after warm-up).
    pub repl_lag: Histogram,
    /// Sum of the lags in `repl_lag`, in seconds (for an exact mean).
    pub repl_lag_sum: f64,
    /// Acknowledged writes a failover lost.
    pub lost_writes: u64,
    /// Keys written on both sides of a partition (`ap`), found at reconciliation.
    pub conflicts: u64,
    /// Requests refused by databases (connections full, no quorum, not primary under cp).
    pub refused: u64,
    /// Promotions done.
    pub failovers: u64,
}

impl Oracle {
    /// Turns the oracle on for a model whose keys are drawn from `0..key_space`: the table
    /// every read looks up (`last`, 8 bytes a key) is sized for them at once (up to
    /// 16 MiB; see [`DenseMap::reserve`]). The histories (152 bytes a key, read by writes
    /// and candidate stale reads only) grow with the writes as before: sizing them too took
    /// a 3 s run of the production model from 17 to 32 MB of peak RSS.
    pub fn enable(&mut self, key_space: u64) {
        self.enabled = true;
        self.last.reserve(key_space);
        let bits = key_space.min(1 << 24);
        self.written = vec![0; bits.div_ceil(64) as usize];
    }

    /// A fresh, globally increasing version for a commit.
    #[inline]
    pub fn next_version(&mut self) -> u64 {
        self.version += 1;
        self.version
    }

    /// Starts loading what observing `key`'s answer will read first: for a read, its
    /// acknowledgement in `last`; for a write, its history. Called where the request
    /// reaches the CDN, 5-15 ms of simulated time (several hundred events) before the
    /// client observes the answer.
    ///
    /// Pays only with the tables on huge pages (the binary's allocator, `src/main.rs`):
    /// on 4 KiB pages the prefetch waited for its page walk (session 11, where the CDN
    /// answers: `Oracle::observe` 7.3 % -> 5.5 % of the samples, `Cache::answer` 7.1 % ->
    /// 8.6 %, CPU level). Twelfth session, stress day's 20-minute proxy (`duration=20m`,
    /// `period=20m`, 300 -> 5,800/s), the per-round ratio of CPU time against the
    /// session's start, medians: this prefetch with the compact `last` 1.018 on 4 KiB
    /// pages, 0.939 and 0.973 (12 and 9 rounds) on huge pages (glibc's
    /// `glibc.malloc.hugetlb=1`); with jemalloc's huge pages 0.952 (10 rounds), 0.946 with
    /// the history for writes and the database's version prefetched too. Tried and not
    /// kept: a read's history too (all three of its lines), level (8 rounds, median 1.001).
    #[inline(always)]
    pub fn prefetch(&self, key: u64, op: Op) {
        if self.enabled {
            match op {
                Op::Read => self.last.prefetch(key),
                Op::Write => self.keys.prefetch(key),
            }
        }
    }

    /// The newest version of `key` acknowledged to a client so far (0: never written).
    pub fn newest(&self, key: u64) -> u64 {
        self.keys.get(key).map_or(0, KeyAcks::newest)
    }

    /// Versions handed out so far.
    pub fn versions(&self) -> u64 {
        self.version
    }

    /// A client received the answer to attempt `r` at `now`: an acknowledged write is
    /// recorded, a read is judged. `counted`: the request is in the measured window.
    pub fn observe(&mut self, r: &Request, ok: bool, counted: bool, now: SimTime) {
        if !self.enabled || !ok {
            return;
        }
        match r.op {
            Op::Write => {
                if r.version == 0 {
                    return;
                }
                let k = self.keys.entry(r.key);
                k.push(now, r.version);
                self.last.insert(r.key, Ack::new(k.last.0, k.last.1));
                if let Some(w) = self.written.get_mut((r.key / 64) as usize) {
                    *w |= 1 << (r.key % 64);
                }
                self.users.entry(u64::from(r.user)).write = Some((r.key, r.version, now));
            }
            Op::Read => {
                let began = r.sent;
                let v = r.version;
                // Acknowledgement times never decrease: when every one came before the
                // read began and none is newer than what it returned, the floor is the
                // newest and nothing newer was missed (the history is not needed).
                let never = self
                    .written
                    .get((r.key / 64) as usize)
                    .is_some_and(|w| w & (1 << (r.key % 64)) == 0);
                // A key never written: the floor is 0 and nothing newer was missed, as
                // the history (empty) says too when the read began at time 0.
                let ack = if never {
                    Ack::default()
                } else {
                    self.last.value(r.key)
                };
                let judged = if never || ack.current(began, v) {
                    Some((u64::from(ack.version), None))
                } else {
                    match self.keys.get(r.key) {
                        Some(k) => k.floor(began, v),
                        None => Some((0, None)),
                    }
                };
                let user = self.users.entry(u64::from(r.user));
                if counted {
                    if let Some((floor, first_newer)) = judged {
                        self.reads_judged += 1;
                        if v < floor {
                            self.stale_reads += 1;
                            if let Some(t) = first_newer {
                                self.stale_age.record(began - t);
                            }
                        }
                    }
                    if let Some((k, wv, at)) = user.write {
                        if k == r.key && at < began && v < wv {
                            self.ryw_violations += 1;
                        }
                    }
                    if let Some((k, rv)) = user.read {
                        if k == r.key && v < rv {
                            self.monotonic_violations += 1;
                        }
                    }
                }
                user.read = Some((r.key, v));
            }
        }
    }

    /// Mean replication lag in milliseconds, if any change was applied.
    pub fn repl_lag_mean_ms(&self) -> Option<f64> {
        (!self.repl_lag.is_empty()).then(|| self.repl_lag_sum * 1e3 / self.repl_lag.len() as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::Request;

    fn req(op: Op, user: u32, key: u64, version: u64, sent: u64) -> Request {
        let mut r = Request::new(1, 0, user, key, op, SimTime::from_millis(sent));
        r.version = version;
        r
    }

    #[test]
    fn stale_means_older_than_acknowledged_before_the_read_began() {
        let mut o = Oracle {
            enabled: true,
            ..Default::default()
        };
        let ms = SimTime::from_millis;
        o.observe(&req(Op::Write, 1, 7, 3, 0), true, true, ms(10));
        // A read that began before the ack may return the old version.
        o.observe(&req(Op::Read, 2, 7, 0, 5), true, true, ms(20));
        assert_eq!(o.stale_reads, 0);
        // One that began after it may not.
        o.observe(&req(Op::Read, 2, 7, 0, 15), true, true, ms(20));
        assert_eq!(o.stale_reads, 1);
        assert_eq!(o.stale_age.quantile_ms(0.5).map(|x| x.round()), Some(5.0));
        // Read-your-writes: user 1 reading an older version of its own key.
        o.observe(&req(Op::Read, 1, 7, 2, 15), true, true, ms(20));
        assert_eq!(o.ryw_violations, 1);
        // Monotonic reads: user 2 read version 0, then 3, then 0 again.
        o.observe(&req(Op::Read, 2, 7, 3, 16), true, true, ms(20));
        o.observe(&req(Op::Read, 2, 7, 0, 17), true, true, ms(20));
        assert_eq!(o.monotonic_violations, 1); // user 2 read 0, 0, 3, then 0
        assert_eq!(o.reads_judged, 5);
    }

    /// The bits of keys never written change no judgement.
    #[test]
    fn reads_of_keys_never_written_are_judged_alike() {
        use rand::Rng as _;
        let mut a = Oracle::default();
        a.enable(40);
        let mut b = Oracle {
            enabled: true,
            ..Default::default()
        };
        let mut rng = dssim_engine::rng::stream(9, "oracle");
        let mut version = 0;
        for i in 0..20_000u64 {
            let key = rng.random_range(0..60u64);
            let user = rng.random_range(0..3u32);
            let sent = i.saturating_sub(rng.random_range(0..50));
            let op = if rng.random_range(0..8) == 0 {
                version += 1;
                Op::Write
            } else {
                Op::Read
            };
            let v = match op {
                Op::Write => version,
                Op::Read => rng.random_range(0..=version),
            };
            let r = req(op, user, key, v, sent);
            let now = SimTime::from_millis(i);
            a.observe(&r, true, true, now);
            b.observe(&r, true, true, now);
        }
        assert!(a.reads_judged > 10_000 && a.stale_reads > 0);
        assert_eq!(
            (
                a.reads_judged,
                a.stale_reads,
                a.ryw_violations,
                a.monotonic_violations
            ),
            (
                b.reads_judged,
                b.stale_reads,
                b.ryw_violations,
                b.monotonic_violations
            )
        );
        assert_eq!(a.stale_age.len(), b.stale_age.len());
    }

    /// The compact acknowledgement passes a read only when the exact one would: the read
    /// began after the acknowledgement and returned at least its version.
    #[test]
    fn compact_ack_is_conservative() {
        use proptest::prelude::*;
        let unit = 1u64 << ACK_UNIT;
        // Times near 0, near the saturation of the units, and past it; versions small,
        // at the saturation of `u32` and past it.
        let times = prop_oneof![
            0..10 * unit,
            (u64::from(u32::MAX) - 2) * unit..(u64::from(u32::MAX) + 2) * unit,
            0..u64::MAX / 2,
        ];
        let versions = prop_oneof![0..100u64, u64::from(u32::MAX) - 2..u64::from(u32::MAX) + 2];
        // The read begins within three units of the acknowledgement (either side), and
        // returns a version within two of it (either side).
        proptest!(|(at in times, version in versions, d in 0..6 * unit, dv in 0..5u64)| {
            let began = (at + d).saturating_sub(3 * unit);
            let v = (version + dv).saturating_sub(2);
            let ack = Ack::new(SimTime(at), version);
            if ack.current(SimTime(began), v) {
                prop_assert!(at < began && v >= version, "at {at} began {began} v {v} ack {version}");
                prop_assert_eq!(u64::from(ack.version), version);
            }
        });
        // Nor too conservative: a read two units after the write that returned its version
        // passes; one within a unit, or one that returned an older version, does not.
        assert!(Ack::new(SimTime(5 * unit + 1), 7).current(SimTime(7 * unit), 7));
        assert!(!Ack::new(SimTime(5 * unit + 1), 7).current(SimTime(6 * unit), 7));
        assert!(!Ack::new(SimTime(5 * unit), 7).current(SimTime(7 * unit), 6));
        let big = u64::from(u32::MAX);
        assert!(!Ack::new(SimTime(unit), big).current(SimTime(9 * unit), u64::MAX));
    }

    #[test]
    fn history_keeps_the_latest_acks() {
        let mut k = KeyAcks::default();
        for i in 1..=20u64 {
            k.push(SimTime::from_millis(i * 10), i);
        }
        assert_eq!(k.floor(SimTime::from_millis(201), 0).map(|f| f.0), Some(20));
        assert_eq!(
            k.floor(SimTime::from_millis(135), 20).map(|f| f.0),
            Some(13)
        );
        assert_eq!(k.floor(SimTime::from_millis(50), 0), None);
    }
}

//! The cache actor: lookups, misses coalesced into flights, fills, write policies, flushes, crashes.

use dssim_engine::{Dist, SimTime};
use rand::Rng as _;

use crate::faults::FaultAction;
use crate::node::{unexpected, Ctx, Msg};
use crate::request::{call, reply, reply_local, Op, ReqId, Request, Status};
use crate::trace;

use super::*;

/// Which look at the key a read is: its first, or again after waiting on a stampede lock
/// (not counted a second time as a lookup, hit or miss).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Look {
    /// The read's first lookup.
    First,
    /// A lock waiter looking again.
    AfterLockWait,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Call {
    Fetch,
    Pass,
    Write,
    Flush,
    /// A request sent straight to the origin while the cache is down (`fallback = "origin"`).
    Bypass,
}

pub(super) const NIL: u32 = u32::MAX;

/// Backend reads of one key in flight, and the requests waiting for them (coalesce).
#[derive(Clone, Debug)]
pub(super) struct Flight {
    key: u64,
    reads: u32,
    head: u32,
    tail: u32,
    live: bool,
}

/// What a cache holds for one request visiting it: when it arrived (a counted request's,
/// for the sojourn; [`SimTime::MAX`] when none) and the backend call it waits on (with the
/// cache's epoch when the call started).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Visit {
    arrived: SimTime,
    epoch: u32,
    call: Option<Call>,
}

impl Visit {
    const NONE: Visit = Visit {
        arrived: SimTime::MAX,
        epoch: 0,
        call: None,
    };

    /// Whether it holds nothing (neither an arrival nor a call).
    #[inline(always)]
    fn is_empty(&self) -> bool {
        self.arrived == SimTime::MAX && self.call.is_none()
    }

    /// Takes the arrival time, if there is one.
    #[inline(always)]
    fn take_arrived(&mut self) -> Option<SimTime> {
        let t = std::mem::replace(&mut self.arrived, SimTime::MAX);
        (t != SimTime::MAX).then_some(t)
    }

    /// Takes the call waited on (epoch and kind), if there is one.
    #[inline(always)]
    fn take_call(&mut self) -> Option<(u32, Call)> {
        self.call.take().map(|k| (self.epoch, k))
    }
}

/// The [`Visit`]s of the requests at a cache, keyed by their handle: a vector indexed by
/// the handle's slot (the request table reuses slots, so the indices stay as few as the
/// requests in flight), the generation stored beside the visit (0: none; handles have odd
/// generations). It replaces a hash map of packed handles with the same answers: a visit
/// whose slot is taken by a newer request moves to `spill` (rare: its request ended without
/// the cache hearing of it). Never iterated.
///
/// One record per request for the arrival time and the call: they were two such vectors
/// (`arrived` and `outstanding`), and the answer to a backend call (a CDN pass or miss, an
/// app cache's miss or write) took its call from one and its arrival from the other, two
/// cache lines. Production 20 s: simulated D1 misses 10.88 -> 10.69 M, 870.3 -> 870.7 M
/// instructions; 120 s CPU level (medians of 8 interleaved rounds 0.712 -> 0.710 s).
#[derive(Debug, Default)]
pub(super) struct Visits {
    slots: Vec<(u32, Visit)>,
    spill: KeyMap<u64, Visit>,
}

impl Visits {
    /// The visit of `req`, begun (empty) if it had none.
    ///
    /// The usual case (the slot exists, nothing spilled, the slot `req`'s own or empty) is
    /// inlined (always: as a plain `inline` it stayed a call of ~20 instructions); the
    /// rest is [`Self::make_room`], cold.
    #[inline(always)]
    pub(super) fn entry(&mut self, req: ReqId) -> &mut Visit {
        let i = req.idx() as usize;
        let usual = self.spill.is_empty()
            && self
                .slots
                .get(i)
                .is_some_and(|(g, v)| *g == req.gen() || v.is_empty());
        if !usual {
            self.make_room(req);
        }
        let s = &mut self.slots[i];
        s.0 = req.gen();
        &mut s.1
    }

    /// Makes slot `req.idx()` hold the visit of `req` (moved back from `spill`, or empty),
    /// an older request's visit there moving to `spill`.
    #[cold]
    #[inline(never)]
    fn make_room(&mut self, req: ReqId) {
        let i = req.idx() as usize;
        if i >= self.slots.len() {
            self.slots.resize(i + 1, (0, Visit::NONE));
        }
        let mine = if self.spill.is_empty() {
            None
        } else {
            self.spill.remove(&pack(req))
        };
        let (gen, old) = self.slots[i];
        if gen != req.gen() {
            self.slots[i] = (req.gen(), mine.unwrap_or(Visit::NONE));
            if !old.is_empty() {
                self.spill.insert(pack(ReqId::new(req.idx(), gen)), old);
            }
        }
    }

    /// Takes the arrival time of `req`, if it has one.
    #[inline]
    pub(super) fn take_arrived(&mut self, req: ReqId) -> Option<SimTime> {
        self.take_from(req, Visit::take_arrived)
    }

    /// Takes the call `req` waits on, if it has one.
    #[inline]
    pub(super) fn take_call(&mut self, req: ReqId) -> Option<(u32, Call)> {
        self.take_from(req, Visit::take_call)
    }

    /// `take` of the visit of `req`: in its slot (the usual case), else in `spill`.
    #[inline(always)]
    fn take_from<T>(
        &mut self,
        req: ReqId,
        take: impl FnOnce(&mut Visit) -> Option<T>,
    ) -> Option<T> {
        if let Some((g, v)) = self.slots.get_mut(req.idx() as usize) {
            if *g == req.gen() {
                return take(v);
            }
        }
        if self.spill.is_empty() {
            None
        } else {
            self.spill_take(req, take)
        }
    }

    /// `take` of the visit of `req` that moved to `spill` (dropped once empty).
    #[cold]
    #[inline(never)]
    fn spill_take<T>(
        &mut self,
        req: ReqId,
        take: impl FnOnce(&mut Visit) -> Option<T>,
    ) -> Option<T> {
        let v = self.spill.get_mut(&pack(req))?;
        let t = take(v);
        if v.is_empty() {
            self.spill.remove(&pack(req));
        }
        t
    }
}

/// A delay of the cache's (`latency`, `origin_latency`): a constant is converted to
/// nanoseconds once, when the cache is built, rather than at every draw (the production
/// model's CDN waits a constant 20 ms to and from the origin: 167,720 conversions of the
/// same float in 20 s). A constant draws nothing from the stream, so the draws are the
/// same. Any other shape is drawn as before.
#[derive(Clone, Debug)]
pub(super) enum Delay {
    /// A constant, in nanoseconds as [`Dist::sample`] gives it.
    Fixed(SimTime),
    /// Drawn at each use.
    Drawn(Dist),
}

impl Delay {
    fn new(d: &Dist) -> Self {
        match d {
            Dist::Const(v) => Delay::Fixed(SimTime::from_nanos_f64(*v)),
            d => Delay::Drawn(d.clone()),
        }
    }

    #[inline(always)]
    fn sample(&self, rng: &mut dssim_engine::Rng) -> SimTime {
        match self {
            Delay::Fixed(t) => *t,
            Delay::Drawn(d) => d.sample(rng),
        }
    }
}

/// One cache node (an app cache, one instance of a local cache, or a CDN edge).
#[derive(Debug)]
pub struct Cache {
    /// Index of the `[[caches]]` entry in the model.
    pub index: usize,
    tier: Tier,
    write_policy: WritePolicy,
    invalidation: Invalidation,
    stampede: Stampede,
    fallback: Fallback,
    ttl: Option<SimTime>,
    latency: Option<Delay>,
    op_time: SimTime,
    origin_latency: Option<Delay>,
    cacheable: f64,
    flush_interval: SimTime,
    lock_retry: SimTime,
    local: bool,
    warm: u64,
    store: Store,
    busy_until: SimTime,
    backend: Backend,
    flights: Vec<Flight>,
    free_flights: Vec<u32>,
    waiters: Vec<(ReqId, u32)>,
    free_waiters: Vec<u32>,
    visits: Visits,
    dirty: KeyMap<u64, u32>,
    dirty_order: Vec<u64>,
    flush_scheduled: bool,
    alive: bool,
    epoch: u32,
    /// Measurements.
    pub stats: CacheStats,
}

#[inline]
pub(super) fn pack(r: ReqId) -> u64 {
    (u64::from(r.idx()) << 32) | u64::from(r.gen())
}

impl Cache {
    /// A cache node for entry `index` of the model, filled per `warm`.
    pub fn new(index: usize, cfg: &CacheConfig, backend: Backend) -> Self {
        let capacity = cfg.capacity.unwrap_or(u64::MAX);
        let warm = match cfg.warm {
            None => 0,
            Some(Warm::Hottest) => capacity,
            Some(Warm::Entries(n)) => n.min(capacity),
        };
        let mut c = Cache {
            index,
            tier: cfg.tier,
            write_policy: cfg.write_policy,
            invalidation: cfg.invalidation,
            stampede: cfg.stampede,
            fallback: cfg.fallback,
            ttl: cfg.ttl.map(|d| d.0),
            latency: cfg.latency.as_ref().map(|d| Delay::new(&d.0)),
            op_time: cfg.max_ops.filter(|m| *m > 0.0).map_or(SimTime::ZERO, |m| {
                SimTime::from_nanos((1e9 / m).round() as u64)
            }),
            origin_latency: cfg.origin_latency.as_ref().map(|d| Delay::new(&d.0)),
            cacheable: cfg.cacheable.unwrap_or(1.0),
            flush_interval: cfg.flush_interval.map_or(SimTime::from_secs(1), |d| d.0),
            lock_retry: cfg.lock_retry.map_or(SimTime::from_millis(5), |d| d.0),
            local: cfg.local,
            warm,
            store: Store::new(cfg.eviction, capacity),
            busy_until: SimTime::ZERO,
            backend,
            flights: Vec::new(),
            free_flights: Vec::new(),
            waiters: Vec::new(),
            free_waiters: Vec::new(),
            visits: Visits::default(),
            dirty: KeyMap::default(),
            dirty_order: Vec::new(),
            flush_scheduled: false,
            alive: true,
            epoch: 0,
            stats: CacheStats::default(),
        };
        c.preload(SimTime::ZERO);
        c
    }

    /// Gives the keys below `ids` (at most 131,072) their entries at their own index, 32
    /// bytes each, allocated now (see [`Store::with_keys`]); called before the run (the
    /// store starts over and the warm entries are loaded again). The model gives a shared cache or edge the
    /// first 131,072 keys of its key space (4 MiB), a local cache the first 32,768. A key
    /// table grown by writes instead sent the early fills and flights of keys beyond it
    /// through its hash map and then moved them in (production 20 s: 1,187.1 -> 1,172.4 M
    /// instructions once sized up front). Versioned caches key entries by a hash: nothing
    /// to give.
    pub fn reserve_keys(&mut self, ids: u64) {
        if !self.versioned() {
            self.store.reserve_keys(ids);
            self.preload(SimTime::ZERO);
        }
    }

    /// Replaces what misses and writes call (the model wires databases after building).
    pub fn set_backend(&mut self, backend: Backend) {
        self.backend = backend;
    }

    /// Whether this node is up.
    pub fn alive(&self) -> bool {
        self.alive
    }

    /// Entries held now.
    pub fn len(&self) -> usize {
        self.store.len()
    }

    /// Whether the cache holds nothing.
    pub fn is_empty(&self) -> bool {
        self.store.is_empty()
    }

    /// Writes acknowledged but not yet flushed (write-behind).
    pub fn buffered_writes(&self) -> u64 {
        self.dirty_order
            .iter()
            .map(|k| u64::from(self.dirty.get(k).copied().unwrap_or(0)))
            .sum()
    }

    pub(super) fn preload(&mut self, now: SimTime) {
        if self.warm == 0 {
            return;
        }
        let expires = self.ttl.map_or(SimTime::MAX, |t| now.saturating_add(t));
        // Warming inserts distinct keys below the capacity: nothing is evicted, so the
        // random stream is never drawn and a fixed one serves. The coldest go in first, so
        // LRU, FIFO and LFU (ties: oldest first) would evict them first.
        let mut rng = dssim_engine::rng::stream(0, "warm");
        for k in (0..self.warm.min(MAX_WARM)).rev() {
            let slot = self.slot_key(k, 0);
            self.store.insert(slot, 0, expires, &mut rng);
        }
    }

    /// Handles one message.
    #[inline]
    pub fn handle(&mut self, msg: Msg, ctx: &mut Ctx<'_>) {
        match msg {
            Msg::Request(req) => self.arrive(ctx, req),
            Msg::Cache(CacheMsg::Lookup(req)) => self.lookup(ctx, req, Look::First),
            Msg::Cache(CacheMsg::Retry(req)) => self.serve(ctx, req, Look::AfterLockWait),
            Msg::Cache(CacheMsg::Fetch(req)) => self.call_backend(ctx, req),
            Msg::Response(req, st) if self.origin_latency.is_some() => {
                if let Some(d) = &self.origin_latency {
                    let d = d.sample(ctx.rng);
                    ctx.timer(d, Msg::Cache(CacheMsg::Answered(req, st)));
                }
            }
            // One site for both, the backend's answer inlined.
            Msg::Response(req, st) | Msg::Cache(CacheMsg::Answered(req, st)) => {
                self.backend_answered(ctx, req, st)
            }
            Msg::Cache(CacheMsg::Flush) => self.flush(ctx),
            Msg::Fault(FaultAction::Kill) => self.kill(ctx),
            Msg::Fault(FaultAction::Recover) => self.recover(ctx),
            // A timed change ([`crate::changes`]): entries stored from now on get the new TTL.
            Msg::Change(i) => {
                if let Some(crate::changes::Setting::Ttl(t)) = ctx.shared.settings.get(i as usize) {
                    self.ttl = Some(*t);
                }
            }
            other => unexpected("cache", other),
        }
    }

    pub(super) fn answer(&mut self, ctx: &mut Ctx<'_>, req: ReqId, status: Status) {
        if let Some(t) = self.visits.take_arrived(req) {
            self.stats.sojourn.record(ctx.now() - t);
        }
        if self.local {
            reply_local(ctx, req, SimTime::ZERO, status);
        } else {
            reply(ctx, req, status);
        }
    }

    #[inline(always)]
    pub(super) fn arrive(&mut self, ctx: &mut Ctx<'_>, req: ReqId) {
        if !self.alive {
            if self.fallback == Fallback::Origin && !matches!(self.backend, Backend::None) {
                // The app finds the cache down and goes to the origin itself.
                self.start_call(ctx, req, Call::Bypass);
            } else {
                self.answer(ctx, req, Status::Error);
            }
            return;
        }
        let now = ctx.now();
        let r = ctx.shared.reqs.get(req);
        let key_op = r.map(|r| (r.key, r.op));
        let counted = r.is_some_and(|r| ctx.shared.stats.counts(r.first_sent));
        if counted {
            self.stats.requests += 1;
            self.stats.busy_ns += u128::from(self.op_time.0);
            self.visits.entry(req).arrived = now;
        }
        let mut delay = SimTime::ZERO;
        if self.op_time > SimTime::ZERO {
            let done = self.busy_until.max(now) + self.op_time;
            self.busy_until = done;
            delay = done - now;
        }
        if let Some(l) = &self.latency {
            delay += l.sample(ctx.rng);
        }
        if delay == SimTime::ZERO {
            self.serve(ctx, req, Look::First);
        } else {
            if let Some((key, op)) = key_op {
                self.prefetch_entry(key, op);
                // The CDN is where a request enters: the client observes the answer
                // several hundred events later.
                if self.tier == Tier::Cdn {
                    ctx.shared.oracle.prefetch(key, op);
                }
            }
            trace::phase(ctx, req, "lookup");
            ctx.timer(delay, Msg::Cache(CacheMsg::Lookup(req)));
        }
    }

    /// Starts loading the line of `key`'s entry when the lookup that `arrive` schedules
    /// (after the cache's latency, or behind its earlier operations) will read it: a read
    /// (of a cacheable key, at a CDN) or a write-behind write, with entries keyed by the key
    /// itself. The lookup's first load of the entry (32 bytes a key, 3.2 MB a cache for
    /// the production model's 100,000 keys) missed the cache on most lookups: 2/3 of
    /// `Cache::read`'s samples (`perf`, `-e cpu-clock`). The lookup comes a few dozen
    /// events (redis: `exp(0.5ms)`) to several hundred (the CDN: 5-15 ms) after the
    /// arrival: time for the line to come, not so long that it leaves the cache again.
    /// `Cache::read` 10.6 % -> 5.3 % of the samples; production 120 s CPU medians
    /// (interleaved rounds, `taskset -c 1`, a loaded machine): 0.865 -> 0.805, 0.830 ->
    /// 0.790, 0.875 -> 0.850, 0.885 -> 0.800 s; as written here 0.745 -> 0.700 (24
    /// rounds), 0.870 -> 0.835 (20), 0.950 -> 0.915 s (24); the stress day (24 h, 300 to
    /// 5,800/s) 374.7 -> 332.0 CPU s (one run each, loaded machine); production 20 s
    /// 911.9 -> 919.7 M instructions, simulated conditional mispredicts 3.92 -> 4.92 M
    /// (valgrind's predictor has no history; the cacheable test is a coin toss).
    ///
    /// Tried and not kept (same rounds, switched on beside this one, medians against it;
    /// all on 4 KiB pages: with huge pages the oracle's and the database's prefetches pay,
    /// see `Oracle::prefetch`):
    /// - the oracle's `last[key]` (and the user's state) prefetched where the CDN answers
    ///   the client (`Cache::answer`): `Oracle::observe` 7.3 % -> 5.5 % of the samples,
    ///   but `Cache::answer` 7.1 % -> 8.6 %, nearly all of it at the prefetch instruction
    ///   (a page walk: the tables are 4 KiB pages); 0.790 -> 0.780, 0.850 -> 0.820, 0.800
    ///   -> 0.840 s;
    /// - the entry prefetched again when the origin's answer reaches the CDN (20 ms before
    ///   the fill): 0.835 -> 0.840 s; a database node's version of the key when it starts
    ///   a query (a `Served` timer, `exp(3ms)` later): 0.835 -> 0.850 s; the oracle's key
    ///   history for a write: 0.835 -> 0.880 s; the user's state: 0.835 -> 0.845 s.
    /// - the cacheable test as a select of the line (the key's or key 0's, always cached)
    ///   rather than a branch: simulated conditional mispredicts 4.92 -> 4.57 M, 919.7 ->
    ///   921.4 M instructions, CPU level (medians 0.835 -> 0.820, 0.915 -> 0.920 s).
    #[inline(always)]
    fn prefetch_entry(&self, key: u64, op: Op) {
        let looked_up = match op {
            Op::Read => self.tier != Tier::Cdn || is_cacheable(key, self.cacheable),
            Op::Write => self.write_policy == WritePolicy::WriteBehind,
        };
        if looked_up && !self.versioned() {
            self.store.prefetch(key);
        }
    }

    /// [`Self::lookup`] as a call, for its rare callers (a lock waiter's retry, a cache
    /// with no lookup delay).
    #[inline(never)]
    pub(super) fn serve(&mut self, ctx: &mut Ctx<'_>, req: ReqId, look: Look) {
        self.lookup(ctx, req, look);
    }

    /// The operation runs: a lookup for a read, the write policy for a write. Inlined in
    /// [`Self::handle`] for a `Lookup` (the event of every read and write at a cache with
    /// a latency), as [`Self::arrive`] is for a `Request`: two calls fewer per request at
    /// a cache, production 20 s 931.5 -> 927.5 M instructions.
    #[inline(always)]
    pub(super) fn lookup(&mut self, ctx: &mut Ctx<'_>, req: ReqId, look: Look) {
        if !self.alive {
            self.answer(ctx, req, Status::Error);
            return;
        }
        let Some(r) = ctx.shared.reqs.get(req) else {
            return;
        };
        let (key, op, counted) = (r.key, r.op, ctx.shared.stats.counts(r.first_sent));
        if self.tier == Tier::Cdn && (op == Op::Write || !is_cacheable(key, self.cacheable)) {
            if counted {
                self.stats.passed += 1;
            }
            self.start_call(ctx, req, Call::Pass);
            return;
        }
        match op {
            Op::Read => self.read(ctx, req, key, counted, look),
            Op::Write => self.write(ctx, req, key, counted),
        }
    }

    /// Whether entries are keyed by (key, version) (`invalidation = "versioned"` with
    /// `cache_aside`).
    pub(super) fn versioned(&self) -> bool {
        self.invalidation == Invalidation::Versioned && self.write_policy == WritePolicy::CacheAside
    }

    /// The store's key for version `version` of `key`: the key itself, or with versioned
    /// keys a hash of both (as a versioned cache key `user:42:v7` names one version).
    pub(super) fn slot_key(&self, key: u64, version: u64) -> u64 {
        if !self.versioned() {
            return key;
        }
        let mix = |mut z: u64| {
            // SplitMix64's finaliser: distinct inputs, well-spread outputs.
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        };
        mix(key ^ mix(version.wrapping_add(0x9e37_79b9_7f4a_7c15)))
    }

    pub(super) fn read(
        &mut self,
        ctx: &mut Ctx<'_>,
        req: ReqId,
        key: u64,
        counted: bool,
        look: Look,
    ) {
        let now = ctx.now();
        let slot = if self.versioned() {
            // The application knows the key's current version (it reads it with the
            // entity's metadata): here, the newest acknowledged one.
            self.slot_key(key, ctx.shared.oracle.newest(key))
        } else {
            key
        };
        let found = self.store.get(slot, now);
        if look == Look::First {
            let hit = matches!(found, Lookup::Hit(_));
            ctx.shared.stats.cache_lookup(hit, counted);
            if counted {
                self.stats.lookups += 1;
                self.stats.hits += u64::from(hit);
                self.stats.expired += u64::from(found == Lookup::Expired);
            }
        }
        if let Lookup::Hit(v) = found {
            if let Some(r) = ctx.shared.reqs.get_mut(req) {
                r.version = v;
            }
            trace::phase(ctx, req, "hit");
            self.answer(ctx, req, Status::Ok);
            return;
        }
        // The key's flight, read once for the test and the flight (it was read three times).
        let aux = self.store.aux(key);
        let busy = aux
            .checked_sub(1)
            .is_some_and(|f| self.flights[f as usize].reads > 0);
        match self.stampede {
            Stampede::Coalesce if busy => {
                let f = aux.wrapping_sub(1);
                self.push_waiter(f, req);
                trace::phase(ctx, req, "miss: wait for the fetch in flight");
                if counted && look == Look::First {
                    self.stats.coalesced += 1;
                }
            }
            Stampede::Lock if busy => {
                if counted && look == Look::First {
                    self.stats.coalesced += 1;
                }
                trace::phase(ctx, req, "miss: locked, retry later");
                ctx.timer(self.lock_retry, Msg::Cache(CacheMsg::Retry(req)));
            }
            _ => {
                let f = self.flight(key, aux);
                let fl = &mut self.flights[f as usize];
                fl.reads += 1;
                self.stats.max_concurrent_misses = self.stats.max_concurrent_misses.max(fl.reads);
                if counted {
                    self.stats.backend_reads += 1;
                }
                self.start_call(ctx, req, Call::Fetch);
            }
        }
    }

    pub(super) fn write(&mut self, ctx: &mut Ctx<'_>, req: ReqId, key: u64, counted: bool) {
        if self.write_policy != WritePolicy::WriteBehind {
            if counted {
                self.stats.backend_writes += 1;
            }
            self.start_call(ctx, req, Call::Write);
            return;
        }
        // Write-behind: the cache holds the newest value; the database learns it at the
        // next flush. Versions come only from the database: the entry keeps the version it
        // had until the flush is acknowledged, and the acknowledgement to the client carries
        // none (the consistency oracle ignores it).
        let version = self.store.peek(key).unwrap_or(0);
        let expires = self.expiry(ctx.now());
        if self.store.insert(key, version, expires, ctx.rng).is_some() {
            self.stats.evictions += 1;
        }
        trace::phase(ctx, req, "write behind: buffered");
        let n = self.dirty.entry(key).or_insert(0);
        if *n == 0 {
            self.dirty_order.push(key);
        }
        *n += 1;
        if !self.flush_scheduled {
            self.flush_scheduled = true;
            ctx.timer(self.flush_interval, Msg::Cache(CacheMsg::Flush));
        }
        self.answer(ctx, req, Status::Ok);
    }

    pub(super) fn expiry(&self, now: SimTime) -> SimTime {
        self.ttl.map_or(SimTime::MAX, |t| now.saturating_add(t))
    }

    /// Sends `req` to the backend (after the edge → origin delay, for a CDN).
    pub(super) fn start_call(&mut self, ctx: &mut Ctx<'_>, req: ReqId, kind: Call) {
        let v = self.visits.entry(req);
        (v.epoch, v.call) = (self.epoch, Some(kind));
        let label = match kind {
            Call::Fetch => "miss: fetch",
            Call::Pass => "pass through",
            Call::Write => "write",
            Call::Flush => "flush",
            Call::Bypass => "cache down: origin",
        };
        trace::phase(ctx, req, label);
        match &self.origin_latency {
            Some(d) => {
                let d = d.sample(ctx.rng);
                ctx.timer(d, Msg::Cache(CacheMsg::Fetch(req)));
            }
            None => self.call_backend(ctx, req),
        }
    }

    /// Calls the backend with `req`: inlined where a call starts (`start_call`, the CDN's
    /// `Fetch` in `handle`, `flush`), a choice of target and a call of [`call`]. As a call
    /// of its own it cost a prologue and an epilogue per backend call: production 20 s
    /// 934.0 -> 932.2 M instructions.
    #[inline(always)]
    pub(super) fn call_backend(&mut self, ctx: &mut Ctx<'_>, req: ReqId) {
        let to = match &self.backend {
            Backend::None => None,
            Backend::Actors(v) if v.is_empty() => None,
            Backend::Actors(v) if v.len() == 1 => Some(v[0]),
            Backend::Actors(v) => Some(v[ctx.rng.random_range(0..v.len())]),
            Backend::Db(router) => Some(router.route(ctx, req)),
        };
        match to {
            Some(to) => call(ctx, to, req),
            // No backend: the value comes from nowhere, at once.
            None => self.answered(ctx, req, Status::Ok),
        }
    }

    /// [`Self::backend_answered`] as a call, for a call that found no backend.
    #[inline(never)]
    pub(super) fn answered(&mut self, ctx: &mut Ctx<'_>, req: ReqId, status: Status) {
        self.backend_answered(ctx, req, status);
    }

    /// The backend answered `req` (after the origin → edge delay, for a CDN). Inlined in
    /// [`Self::handle`] (one site for a `Response` and an `Answered`): one call fewer per
    /// backend answer, production 20 s 927.5 -> 924.9 M instructions.
    #[inline(always)]
    pub(super) fn backend_answered(&mut self, ctx: &mut Ctx<'_>, req: ReqId, status: Status) {
        let Some((epoch, kind)) = self.visits.take_call(req) else {
            return;
        };
        if kind == Call::Bypass {
            // The origin's answer goes back as it is: the cache took no part.
            self.answer(ctx, req, status);
            return;
        }
        if kind == Call::Flush {
            // The database took a buffered write: the entry learns its version, unless the
            // key was written again meanwhile or the cache restarted.
            if let Some(r) = ctx.shared.reqs.remove(req) {
                if status == Status::Ok
                    && epoch == self.epoch
                    && !self.dirty.contains_key(&r.key)
                    && self.store.peek(r.key).is_some_and(|v| v < r.version)
                {
                    self.store.set_version(r.key, r.version);
                }
            }
            return;
        }
        let Some(r) = ctx.shared.reqs.get(req) else {
            return;
        };
        let (key, version) = (r.key, r.version);
        // A cache that died since the call cannot answer on the old connection.
        let status = if epoch != self.epoch || !self.alive {
            Status::Error
        } else {
            status
        };
        match kind {
            Call::Pass => {}
            Call::Fetch => {
                if epoch == self.epoch {
                    if status == Status::Ok && self.alive {
                        self.fill(ctx, key, version);
                    }
                    self.land(ctx, key, status, version);
                }
            }
            Call::Write if self.alive && epoch == self.epoch => match self.write_policy {
                WritePolicy::WriteThrough if status == Status::Ok => {
                    let expires = self.expiry(ctx.now());
                    if self.store.insert(key, version, expires, ctx.rng).is_some() {
                        self.stats.evictions += 1;
                    }
                }
                WritePolicy::CacheAside => match self.invalidation {
                    Invalidation::Delete => {
                        self.store.remove(key);
                    }
                    // The next read looks the new version up: nothing to do.
                    Invalidation::Versioned | Invalidation::TtlOnly => {}
                },
                _ => {}
            },
            Call::Write | Call::Flush | Call::Bypass => {}
        }
        self.answer(ctx, req, status);
    }

    /// Stores a value read from the backend. Inlined in [`Self::answered`], its one caller,
    /// as [`Self::land`] is.
    #[inline(always)]
    pub(super) fn fill(&mut self, ctx: &mut Ctx<'_>, key: u64, version: u64) {
        // With versioned keys the value is stored under the version the database returned
        // (an older one, from a lagging replica, is never found by a newer lookup).
        let key = self.slot_key(key, version);
        if self.write_policy == WritePolicy::WriteBehind && self.dirty.contains_key(&key) {
            return; // the buffered write is newer than what the database returned
        }
        let expires = self.expiry(ctx.now());
        if self.store.insert(key, version, expires, ctx.rng).is_some() {
            self.stats.evictions += 1;
        }
    }

    /// One backend read of `key` ended: answer whoever waited on it.
    #[inline(always)]
    pub(super) fn land(&mut self, ctx: &mut Ctx<'_>, key: u64, status: Status, version: u64) {
        let Some(f) = self.store.aux(key).checked_sub(1) else {
            return;
        };
        let fl = &mut self.flights[f as usize];
        fl.reads = fl.reads.saturating_sub(1);
        let mut w = std::mem::replace(&mut fl.head, NIL);
        fl.tail = NIL;
        let done = fl.reads == 0;
        while w != NIL {
            let (wreq, next) = self.waiters[w as usize];
            self.free_waiters.push(w);
            if let Some(r) = ctx.shared.reqs.get_mut(wreq) {
                r.version = version;
            }
            self.answer(ctx, wreq, status);
            w = next;
        }
        if done {
            self.drop_flight(f);
        }
    }

    /// The flight of `key` (whose owner's word is `aux`), begun if it has none.
    pub(super) fn flight(&mut self, key: u64, aux: u32) -> u32 {
        if let Some(f) = aux.checked_sub(1) {
            return f;
        }
        let fl = Flight {
            key,
            reads: 0,
            head: NIL,
            tail: NIL,
            live: true,
        };
        let f = match self.free_flights.pop() {
            Some(f) => {
                self.flights[f as usize] = fl;
                f
            }
            None => {
                self.flights.push(fl);
                (self.flights.len() - 1) as u32
            }
        };
        self.store.set_aux(key, f + 1);
        f
    }

    pub(super) fn drop_flight(&mut self, f: u32) {
        let fl = &mut self.flights[f as usize];
        fl.live = false;
        let key = fl.key;
        self.store.set_aux(key, 0);
        self.free_flights.push(f);
    }

    pub(super) fn push_waiter(&mut self, f: u32, req: ReqId) {
        let w = match self.free_waiters.pop() {
            Some(w) => {
                self.waiters[w as usize] = (req, NIL);
                w
            }
            None => {
                self.waiters.push((req, NIL));
                (self.waiters.len() - 1) as u32
            }
        };
        let fl = &mut self.flights[f as usize];
        if fl.tail == NIL {
            fl.head = w;
        } else {
            self.waiters[fl.tail as usize].1 = w;
        }
        fl.tail = w;
    }

    /// Write-behind: sends every buffered key to the database, one write per key.
    pub(super) fn flush(&mut self, ctx: &mut Ctx<'_>) {
        self.flush_scheduled = false;
        if !self.alive {
            return;
        }
        let now = ctx.now();
        let me = ctx.me();
        for i in 0..self.dirty_order.len() {
            let key = self.dirty_order[i];
            self.dirty.remove(&key);
            if now >= ctx.shared.stats.warmup && now < ctx.shared.stats.end {
                self.stats.backend_writes += 1;
            }
            if matches!(self.backend, Backend::None) {
                continue;
            }
            // An internal request: nobody waits for it at a client (hence `abandoned`).
            let mut r = Request::new(0, me, 0, key, Op::Write, now);
            r.abandoned = true;
            let id = ctx.shared.reqs.insert(r);
            let v = self.visits.entry(id);
            (v.epoch, v.call) = (self.epoch, Some(Call::Flush));
            self.call_backend(ctx, id);
        }
        self.dirty_order.clear();
    }

    /// The node dies: entries, buffered writes (counted as lost) and waiting requests go;
    /// calls in flight are answered with errors when they come back.
    pub fn kill(&mut self, ctx: &mut Ctx<'_>) {
        if !self.alive {
            return;
        }
        self.alive = false;
        self.epoch = self.epoch.wrapping_add(1);
        let lost = self.buffered_writes();
        self.stats.lost_writes += lost;
        if let Some(l) = ctx.shared.stats.cache_lost_writes.as_mut() {
            *l += lost;
        }
        self.dirty.clear();
        self.dirty_order.clear();
        self.store.clear();
        self.busy_until = ctx.now();
        // Coalesced waiters lose their connection now; flights are walked in slot order.
        for f in 0..self.flights.len() as u32 {
            if !self.flights[f as usize].live {
                continue;
            }
            let mut w = std::mem::replace(&mut self.flights[f as usize].head, NIL);
            while w != NIL {
                let (wreq, next) = self.waiters[w as usize];
                self.free_waiters.push(w);
                self.answer(ctx, wreq, Status::Error);
                w = next;
            }
            self.drop_flight(f);
        }
    }

    /// The node comes back empty (then warmed, if configured).
    pub fn recover(&mut self, ctx: &mut Ctx<'_>) {
        if self.alive {
            return;
        }
        self.alive = true;
        self.preload(ctx.now());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `Visits` answers as the two hash maps of packed handles it replaced (arrival times
    /// and calls), also when a request's slot is reused by a newer one while the older
    /// still has something there.
    #[test]
    fn visits_answer_as_two_maps_of_handles() {
        let mut m = Visits::default();
        let mut arrived: KeyMap<u64, SimTime> = KeyMap::default();
        let mut calls: KeyMap<u64, (u32, Call)> = KeyMap::default();
        let mut rng = dssim_engine::rng::stream(5, "visits");
        let kinds = [
            Call::Fetch,
            Call::Pass,
            Call::Write,
            Call::Flush,
            Call::Bypass,
        ];
        for i in 0..40_000u32 {
            let req = ReqId::new(rng.random_range(0..6), 2 * rng.random_range(0..4) + 1);
            match rng.random_range(0..4) {
                0 => assert_eq!(m.take_arrived(req), arrived.remove(&pack(req)), "step {i}"),
                1 => assert_eq!(m.take_call(req), calls.remove(&pack(req)), "step {i}"),
                2 => {
                    let t = SimTime::from_nanos(u64::from(i));
                    m.entry(req).arrived = t;
                    arrived.insert(pack(req), t);
                }
                _ => {
                    let kind = kinds[rng.random_range(0..kinds.len())];
                    let v = m.entry(req);
                    (v.epoch, v.call) = (i, Some(kind));
                    calls.insert(pack(req), (i, kind));
                }
            }
        }
        for idx in 0..6 {
            for gen in 0..4 {
                let req = ReqId::new(idx, 2 * gen + 1);
                assert_eq!(m.take_arrived(req), arrived.remove(&pack(req)));
                assert_eq!(m.take_call(req), calls.remove(&pack(req)));
            }
        }
        assert!(m.spill.is_empty() && m.slots.iter().all(|(_, v)| v.is_empty()));
    }
}

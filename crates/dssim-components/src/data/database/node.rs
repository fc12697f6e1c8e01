//! A database node: serving requests (connections, buffer pool, disk, contention) and committing writes.

use std::collections::VecDeque;
use std::sync::Arc;

use dssim_engine::{Dist, Histogram, SimTime, TimeWeighted};

use crate::data::cache::{Eviction, Store};
use crate::faults::FaultAction;
use crate::node::{unexpected, Ctx, Msg};
use crate::request::{reply, Op, ReqId, Status};
use crate::trace;

use super::*;

/// A database node's own timers ([`Msg::Db`]). Messages between nodes (replication,
/// acknowledgements, reconciliation) are [`Msg`] variants of their own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DbTimer {
    /// This query is served (its disk and CPU time are over).
    Served(ReqId),
    /// A replica's failure detector fires: is the primary still alive?
    Detect,
    /// Promote this replica to primary (failover).
    Promote,
    /// Retry shipping changes to replicas cut off earlier.
    Reship,
    /// Retry offering the writes accepted while cut off.
    Reconcile,
    /// The batch window is over: flush the batch.
    Batch,
    /// The batch flush reached the disk.
    Flushed,
    /// A `cp` node's periodic election check.
    Election,
}
/// The election timeout when `election_timeout` is absent.
pub(super) const ELECTION_TIMEOUT: SimTime = SimTime::from_secs(1);
/// How often a node retries shipping or reconciling across a partition.
pub(super) const RETRY: SimTime = SimTime::from_millis(100);

/// Replication message payload: epoch (16 bits), node (8 bits), sequence (40 bits).
pub(super) fn pack(epoch: u64, node: usize, seq: u64) -> u64 {
    (epoch & 0xFFFF) << 48 | (node as u64 & 0xFF) << 40 | (seq & 0xFF_FFFF_FFFF)
}

pub(super) fn unpack(x: u64) -> (u64, usize, u64) {
    (x >> 48, ((x >> 40) & 0xFF) as usize, x & 0xFF_FFFF_FFFF)
}

/// Per-node measurements.
#[derive(Debug, Default)]
pub struct DbNodeStats {
    /// Requests that arrived after warm-up.
    pub requests: u64,
    /// Requests refused (connections full, no quorum, not the primary under `cp`).
    pub refused: u64,
    /// Connections in use over time.
    pub conns: TimeWeighted,
    /// Time in the node of requests answered ok after warm-up.
    pub sojourn: Histogram,
    /// Buffer-pool hits.
    pub pool_hits: u64,
    /// Buffer-pool misses.
    pub pool_misses: u64,
}

/// Static parameters of a node.
#[derive(Debug)]
pub(super) struct Params {
    read_time: Dist,
    /// Reads on a node that is not the primary (`replica_read_time`); `read_time` when absent.
    replica_read_time: Option<Dist>,
    write_time: Dist,
    max_conns: u32,
    cores: u32,
    replication: Replication,
    delay: Option<Dist>,
    consistency: Consistency,
    failover: Option<(SimTime, SimTime)>,
    /// `cp` with replicas: (election timeout, promotion delay).
    election: Option<(SimTime, SimTime)>,
    disk_read: Option<Dist>,
    /// Time one disk read occupies the disk (`1/iops`); none when unlimited.
    disk_slot: Option<SimTime>,
    contention: Option<Contention>,
    batch: Option<(usize, SimTime)>,
}

/// One database node (a primary or a replica of one shard).
#[derive(Debug)]
pub struct DbNode {
    /// Index of the database in the model.
    pub db: usize,
    /// Shard index.
    pub shard: usize,
    /// Node index in the shard (0 = configured primary).
    pub node: usize,
    params: Arc<Params>,
    conns: u32,
    active: u32,
    held: Vec<(ReqId, SimTime)>,
    /// Queries waiting for a core: (request, arrival).
    ready: VecDeque<(ReqId, SimTime)>,
    waiting: Vec<(ReqId, u64, SimTime)>,
    batch: Vec<(ReqId, SimTime)>,
    flushing: Vec<(ReqId, SimTime)>,
    batch_timer: bool,
    reship_armed: bool,
    reconcile_armed: bool,
    /// `cp`: since when this replica has seen its live primary cut off.
    cut_since: Option<SimTime>,
    /// Election checks stop here (the end of arrivals).
    until: SimTime,
    /// The buffer pool: the pages held (the caches' store, LRU, no TTL).
    pool: Option<Store>,
    /// When the disk is free again (`iops`).
    disk_free: SimTime,
    /// Measurements.
    pub stats: DbNodeStats,
}

mod failover;
mod replication;

impl DbNode {
    /// Node `node` of shard `shard` of database `db` (configured as `cfg`).
    pub fn new(db: usize, shard: usize, node: usize, cfg: &DatabaseConfig) -> Self {
        let params = Params {
            read_time: cfg.read_time.0.clone(),
            replica_read_time: cfg.replica_read_time.as_ref().map(|d| d.0.clone()),
            write_time: cfg.write_time.0.clone(),
            max_conns: cfg.max_connections.unwrap_or(u32::MAX),
            cores: cfg.cores.unwrap_or(u32::MAX).max(1),
            replication: cfg.replication,
            delay: cfg.replication_delay.as_ref().map(|d| d.0.clone()),
            consistency: cfg.consistency,
            failover: cfg.failover.as_ref().map(|f| (f.detect.0, f.promote.0)),
            election: (cfg.consistency == Consistency::Cp && cfg.replicas > 0).then(|| {
                (
                    cfg.election_timeout.map_or(ELECTION_TIMEOUT, |d| d.0),
                    cfg.failover.as_ref().map_or(SimTime::ZERO, |f| f.promote.0),
                )
            }),
            disk_read: cfg.buffer_pool.as_ref().map(|b| b.disk_read.0.clone()),
            disk_slot: cfg
                .buffer_pool
                .as_ref()
                .and_then(|b| b.iops)
                .map(|iops| SimTime::from_secs_f64(1.0 / iops)),
            contention: cfg.contention,
            batch: cfg
                .batch
                .as_ref()
                .map(|b| (b.size.max(1) as usize, b.max_wait.0)),
        };
        DbNode {
            db,
            shard,
            node,
            params: Arc::new(params),
            conns: 0,
            active: 0,
            held: Vec::new(),
            ready: VecDeque::new(),
            waiting: Vec::new(),
            batch: Vec::new(),
            flushing: Vec::new(),
            batch_timer: false,
            reship_armed: false,
            reconcile_armed: false,
            cut_since: None,
            until: SimTime::ZERO,
            pool: cfg
                .buffer_pool
                .as_ref()
                .map(|b| Store::new(Eviction::Lru, b.pages)),
            disk_free: SimTime::ZERO,
            stats: DbNodeStats::default(),
        }
    }

    /// The first election check of a `cp` node, for a run whose arrivals end at `until`
    /// (`None` when the node holds no elections).
    pub fn first_election_check(&mut self, until: SimTime) -> Option<(SimTime, Msg)> {
        self.until = until;
        let (timeout, _) = self.params.election?;
        let first = Self::election_tick(timeout);
        (first < until).then_some((first, Msg::Db(DbTimer::Election)))
    }
    /// Connections allowed (`u32::MAX` when unlimited).
    pub fn max_connections(&self) -> u32 {
        self.params.max_conns
    }

    /// Gives the pages below `ids` their place in the buffer pool's table at once (see
    /// [`Store::with_keys`]); the others go through its map.
    pub fn reserve_pool_keys(&mut self, ids: u64) {
        if let Some(p) = self.pool.as_mut() {
            p.reserve_keys(ids);
        }
    }

    /// Whether the node has a buffer pool.
    pub fn has_pool(&self) -> bool {
        self.pool.is_some()
    }

    pub(super) fn shard_state<'a>(&self, ctx: &'a Ctx<'_>) -> &'a ShardState {
        &ctx.shared.dbs[self.db].shards[self.shard]
    }

    pub(super) fn shard_state_mut<'a>(&self, ctx: &'a mut Ctx<'_>) -> &'a mut ShardState {
        &mut ctx.shared.dbs[self.db].shards[self.shard]
    }

    pub(super) fn is_primary(&self, ctx: &Ctx<'_>) -> bool {
        self.shard_state(ctx).primary == self.node
    }

    pub(super) fn alive(&self, ctx: &Ctx<'_>) -> bool {
        self.shard_state(ctx).nodes[self.node].alive
    }

    /// Handles one message.
    pub fn handle(&mut self, msg: Msg, ctx: &mut Ctx<'_>) {
        match msg {
            Msg::Request(req) => self.arrive(ctx, req),
            Msg::Db(DbTimer::Served(req)) => self.served(ctx, req),
            Msg::Replicate(x) => self.apply(ctx, x),
            Msg::ReplAck(x) => self.on_ack(ctx, x),
            Msg::Reconcile(n) => self.reconcile(ctx, n as usize),
            Msg::Fault(FaultAction::Kill) => self.kill(ctx),
            Msg::Fault(FaultAction::Recover) => self.recover(ctx),
            Msg::Db(DbTimer::Detect) => self.detect(ctx),
            Msg::Db(DbTimer::Promote) => self.promote(ctx),
            Msg::Db(DbTimer::Election) => self.election_check(ctx),
            Msg::Db(DbTimer::Reship) => {
                self.reship_armed = false;
                if self.alive(ctx) && self.is_primary(ctx) {
                    self.ship(ctx);
                }
            }
            Msg::Db(DbTimer::Reconcile) => self.reconcile_tick(ctx),
            Msg::Db(DbTimer::Batch) => {
                self.batch_timer = false;
                // The timer may belong to a group that filled and left early: the group
                // waiting now goes when its oldest write has waited `max_wait`.
                if let (Some((_, wait)), Some(&(_, oldest)), true) = (
                    self.params.batch,
                    self.batch.first(),
                    self.flushing.is_empty(),
                ) {
                    let due = oldest + wait;
                    if due <= ctx.now() {
                        self.flush(ctx);
                    } else {
                        self.batch_timer = true;
                        ctx.timer_at(due, Msg::Db(DbTimer::Batch));
                    }
                }
            }
            Msg::Db(DbTimer::Flushed) => self.flushed(ctx),
            other => unexpected("database node", other),
        }
    }

    pub(super) fn refuse(&mut self, ctx: &mut Ctx<'_>, req: ReqId, counted: bool) {
        if counted {
            self.stats.refused += 1;
            ctx.shared.oracle.refused += 1;
        }
        reply(ctx, req, Status::Error);
    }

    /// Whether this node reaches a majority of its shard's nodes (itself included).
    pub(super) fn has_quorum(&self, ctx: &Ctx<'_>) -> bool {
        let st = self.shard_state(ctx);
        let reach = st
            .nodes
            .iter()
            .enumerate()
            .filter(|(i, n)| *i != self.node && n.alive && ctx.reachable(n.actor))
            .count();
        reach + 1 > st.nodes.len() / 2
    }

    pub(super) fn arrive(&mut self, ctx: &mut Ctx<'_>, req: ReqId) {
        let now = ctx.now();
        let counted = now >= ctx.shared.stats.warmup;
        if counted {
            self.stats.requests += 1;
        }
        if !self.alive(ctx) {
            reply(ctx, req, Status::Error);
            return;
        }
        let Some((key, op)) = ctx.shared.reqs.get(req).map(|r| (r.key, r.op)) else {
            return;
        };
        let primary = self.is_primary(ctx);
        // Under cp only a primary with a majority serves. Under ap a replica serves reads,
        // and writes too when cut off from its primary (reconciled later).
        if self.params.consistency == Consistency::Cp && (!primary || !self.has_quorum(ctx)) {
            self.refuse(ctx, req, counted);
            return;
        }
        if self.conns >= self.params.max_conns {
            self.refuse(ctx, req, counted);
            return;
        }
        self.conns += 1;
        self.stats.conns.add(now, 1.0);
        if op == Op::Write && primary {
            if let Some((size, wait)) = self.params.batch {
                self.batch.push((req, now));
                trace::phase(ctx, req, "group commit");
                if self.flushing.is_empty() && self.batch.len() >= size {
                    self.flush(ctx);
                } else if !self.batch_timer && self.flushing.is_empty() {
                    self.batch_timer = true;
                    ctx.timer(wait, Msg::Db(DbTimer::Batch));
                }
                return;
            }
        }
        if self.active >= self.params.cores {
            self.ready.push_back((req, now));
            trace::phase(ctx, req, "queue (cores busy)");
            return;
        }
        self.execute(ctx, req, key, op, now);
    }

    /// Starts executing query `req` (arrived at `since`) on a free core.
    pub(super) fn execute(
        &mut self,
        ctx: &mut Ctx<'_>,
        req: ReqId,
        key: u64,
        op: Op,
        since: SimTime,
    ) {
        self.active += 1;
        let base = match op {
            Op::Read => match &self.params.replica_read_time {
                Some(t) if !self.is_primary(ctx) => t.sample(ctx.rng),
                _ => self.params.read_time.sample(ctx.rng),
            },
            Op::Write => self.params.write_time.sample(ctx.rng),
        };
        // The read's version is loaded when it is served (`exp(3ms)` later in the production
        // model): that load was two thirds of `DbNode::served`'s samples over a day, where
        // every key is written. Asked for here it pays with huge pages only (session 11, 4
        // KiB pages: 0.835 -> 0.850 s; with huge pages see `Oracle::prefetch`).
        if op == Op::Read {
            self.shard_state(ctx).nodes[self.node].data.prefetch(key);
        }
        let disk = self.disk(ctx, key);
        trace::phase(
            ctx,
            req,
            if disk > SimTime::ZERO {
                "execute (disk read)"
            } else {
                "execute"
            },
        );
        let d = self.slowed(base) + disk;
        self.held.push((req, since));
        ctx.timer(d, Msg::Db(DbTimer::Served(req)));
    }

    /// A core came free: the oldest waiting query starts.
    pub(super) fn start_next(&mut self, ctx: &mut Ctx<'_>) {
        while self.active < self.params.cores {
            let Some((req, since)) = self.ready.pop_front() else {
                return;
            };
            match ctx.shared.reqs.get(req).map(|r| (r.key, r.op)) {
                Some((key, op)) => self.execute(ctx, req, key, op, since),
                None => {
                    // Its request is gone: free the connection it held.
                    self.conns = self.conns.saturating_sub(1);
                    self.stats.conns.add(ctx.now(), -1.0);
                }
            }
        }
    }

    /// `base` stretched by the Universal Scalability Law for the requests in service.
    pub(super) fn slowed(&self, base: SimTime) -> SimTime {
        match &self.params.contention {
            Some(c) => SimTime::from_nanos((base.0 as f64 * c.factor(self.active)).round() as u64),
            None => base,
        }
    }

    /// The disk read `key` costs: zero when it is in the buffer pool, or without one (told
    /// inline: a call frame per query saved where there is no pool; with `Client::finish`
    /// inlined, production 20 s 866.7 -> 864.1 M instructions, 120 s CPU level in 60
    /// interleaved rounds, mean -0.001 s; outputs byte-identical).
    #[inline]
    pub(super) fn disk(&mut self, ctx: &mut Ctx<'_>, key: u64) -> SimTime {
        if self.pool.is_none() {
            return SimTime::ZERO;
        }
        self.pool_read(ctx, key)
    }

    /// [`Self::disk`] with a buffer pool.
    fn pool_read(&mut self, ctx: &mut Ctx<'_>, key: u64) -> SimTime {
        let Some(pool) = self.pool.as_mut() else {
            return SimTime::ZERO;
        };
        let counted = ctx.now() >= ctx.shared.stats.warmup;
        if pool.touch(key) {
            if counted {
                self.stats.pool_hits += 1;
            }
            SimTime::ZERO
        } else {
            if counted {
                self.stats.pool_misses += 1;
            }
            // With an IOPS limit the read first waits for the disk and occupies it.
            let queued = match self.params.disk_slot {
                Some(slot) => {
                    let now = ctx.now();
                    let start = self.disk_free.max(now);
                    self.disk_free = start + slot;
                    self.disk_free - now
                }
                None => SimTime::ZERO,
            };
            queued
                + self
                    .params
                    .disk_read
                    .as_ref()
                    .map_or(SimTime::ZERO, |d| d.sample(ctx.rng))
        }
    }

    /// Answers `req` and frees its connection.
    pub(super) fn finish(&mut self, ctx: &mut Ctx<'_>, req: ReqId, since: SimTime, status: Status) {
        let now = ctx.now();
        self.conns = self.conns.saturating_sub(1);
        self.stats.conns.add(now, -1.0);
        if status == Status::Ok && since >= ctx.shared.stats.warmup {
            self.stats.sojourn.record(now - since);
        }
        reply(ctx, req, status);
    }

    pub(super) fn served(&mut self, ctx: &mut Ctx<'_>, req: ReqId) {
        let Some(pos) = self.held.iter().position(|(r, _)| *r == req) else {
            return; // answered already (the node was killed meanwhile)
        };
        let (_, since) = self.held.swap_remove(pos);
        self.active = self.active.saturating_sub(1);
        if !self.ready.is_empty() {
            self.start_next(ctx);
        }
        let Some((key, op)) = ctx.shared.reqs.get(req).map(|r| (r.key, r.op)) else {
            self.conns = self.conns.saturating_sub(1);
            self.stats.conns.add(ctx.now(), -1.0);
            return;
        };
        if self.params.consistency == Consistency::Cp && !self.is_primary(ctx) {
            // Deposed by an election while serving: the answer could be stale or lost.
            if since >= ctx.shared.stats.warmup {
                self.stats.refused += 1;
                ctx.shared.oracle.refused += 1;
            }
            self.finish(ctx, req, since, Status::Error);
            return;
        }
        match op {
            Op::Read => {
                let v = self.shard_state(ctx).nodes[self.node].data.value(key);
                if let Some(r) = ctx.shared.reqs.get_mut(req) {
                    r.version = v;
                }
                self.finish(ctx, req, since, Status::Ok);
            }
            Op::Write if self.is_primary(ctx) => {
                let seq = self.commit(ctx, req);
                self.acknowledge(ctx, req, seq, since);
                self.ship(ctx);
            }
            Op::Write => {
                self.commit_divergent(ctx, req);
                self.finish(ctx, req, since, Status::Ok);
            }
        }
    }

    /// Commits write `req` on this primary: a new version, the log, the node's data.
    pub(super) fn commit(&mut self, ctx: &mut Ctx<'_>, req: ReqId) -> u64 {
        let now = ctx.now();
        let v = ctx.shared.oracle.next_version();
        let (key, user, counted, traced) = match ctx.shared.reqs.get_mut(req) {
            Some(r) => {
                r.version = v;
                (r.key, r.user, r.first_sent, r.trace)
            }
            None => return u64::MAX,
        };
        let counted = ctx.shared.stats.counts(counted);
        ctx.shared.dbs[self.db]
            .last_write
            .insert(u64::from(user), Some(now));
        let me = self.node;
        let st = self.shard_state_mut(ctx);
        st.nodes[me].data.insert(key, v);
        st.log.push_back(Entry {
            key,
            version: v,
            commit: now,
            applied: 1 << me,
            acks: 0,
            acked: false,
            counted,
            trace: traced,
        });
        st.next_seq() - 1
    }

    /// Acknowledges a committed write now (async) or once enough replicas applied it.
    pub(super) fn acknowledge(&mut self, ctx: &mut Ctx<'_>, req: ReqId, seq: u64, since: SimTime) {
        if self.released(ctx, seq) {
            if let Some(e) = self.shard_state_mut(ctx).entry_mut(seq) {
                e.acked = true;
            }
            self.finish(ctx, req, since, Status::Ok);
        } else {
            trace::phase(ctx, req, "wait for replicas");
            self.waiting.push((req, seq, since));
        }
    }

    /// Whether change `seq` has the replica acknowledgements its write needs.
    pub(super) fn released(&self, ctx: &Ctx<'_>, seq: u64) -> bool {
        let st = self.shard_state(ctx);
        let live = st.live_replicas();
        let acks = st.entry(seq).map_or(live, |e| e.acks & live);
        match self.params.replication {
            Replication::Async => true,
            Replication::SemiSync => live == 0 || acks != 0,
            Replication::Sync => acks == live,
        }
    }
}

impl DbNode {
    /// This node's row of components.csv (`now`: end of the measured window).
    pub fn component_row(&self, name: String, now: SimTime) -> crate::report::ComponentRow {
        let conns = self.stats.conns.mean(now);
        let lookups = self.stats.pool_hits + self.stats.pool_misses;
        crate::report::ComponentRow {
            component: name,
            kind: "database",
            requests: self.stats.requests,
            utilization: (self.params.max_conns != u32::MAX)
                .then(|| conns / f64::from(self.params.max_conns.max(1))),
            mean_queue: Some(conns),
            p99_ms: self.stats.sojourn.quantile_ms(0.99),
            mean_ms: self.stats.sojourn.mean_ms(),
            hit_ratio: (self.pool.is_some() && lookups > 0)
                .then(|| self.stats.pool_hits as f64 / lookups as f64),
        }
    }
}

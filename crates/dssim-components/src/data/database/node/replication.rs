//! Replication: shipping changes to replicas, applying and acknowledging them, reconciling divergent histories, batched flushes.

use dssim_engine::SimTime;

use crate::node::{Ctx, Msg};
use crate::request::{ReqId, Status};
use crate::trace;

use super::*;

impl DbNode {
    /// Ships every unshipped change to every live replica this node reaches; retries
    /// later for those cut off.
    pub(super) fn ship(&mut self, ctx: &mut Ctx<'_>) {
        let me = self.node;
        let n = self.shard_state(ctx).nodes.len();
        let mut blocked = false;
        for i in 0..n {
            if i == me {
                continue;
            }
            let (actor, alive, mut next, end, epoch) = {
                let st = self.shard_state(ctx);
                let nd = &st.nodes[i];
                (
                    nd.actor,
                    nd.alive,
                    nd.shipped.max(st.base),
                    st.next_seq(),
                    st.epoch,
                )
            };
            if !alive || next >= end {
                continue;
            }
            if !ctx.reachable(actor) {
                blocked = true;
                continue;
            }
            let lat = SimTime::from_nanos(ctx.net().mean_latency(ctx.me(), actor).round() as u64);
            while next < end {
                let applied = self
                    .shard_state(ctx)
                    .entry(next)
                    .is_some_and(|e| e.applied & (1 << i) != 0);
                if !applied {
                    let d = self
                        .params
                        .delay
                        .as_ref()
                        .map_or(SimTime::ZERO, |d| d.sample(ctx.rng));
                    ctx.send_local(actor, d + lat, Msg::Replicate(pack(epoch, me, next)));
                }
                next += 1;
            }
            self.shard_state_mut(ctx).nodes[i].shipped = next;
        }
        if blocked && !self.reship_armed {
            self.reship_armed = true;
            ctx.timer(RETRY, Msg::Db(DbTimer::Reship));
        }
        // Without live replicas nothing else would trim the log.
        self.shard_state_mut(ctx).trim();
    }

    /// A replica applies a change shipped to it (the newest version of a key wins).
    pub(super) fn apply(&mut self, ctx: &mut Ctx<'_>, x: u64) {
        let (epoch, from, seq) = unpack(x);
        let now = ctx.now();
        let me = self.node;
        let warmup = ctx.shared.stats.warmup;
        let st = self.shard_state_mut(ctx);
        // The delay covers the time the change still sits on its primary: a change whose
        // primary crashed before it arrived never left it.
        if epoch != st.epoch & 0xFFFF
            || !st.nodes[me].alive
            || st.nodes.get(from).is_none_or(|n| !n.alive)
        {
            return;
        }
        let Some(e) = st.entry_mut(seq) else {
            return;
        };
        if e.applied & (1 << me) != 0 {
            return;
        }
        e.applied |= 1 << me;
        let (key, version, commit, traced) = (e.key, e.version, e.commit, e.trace);
        let slot = st.nodes[me].data.entry(key);
        *slot = (*slot).max(version);
        let primary = st.nodes[st.primary].actor;
        st.trim();
        if commit >= warmup {
            let lag = now - commit;
            ctx.shared.oracle.repl_lag.record(lag);
            ctx.shared.oracle.repl_lag_sum += lag.as_secs_f64();
        }
        if traced != 0 {
            let actor = ctx.me();
            ctx.shared
                .trace
                .span(traced, actor, trace::What::Replication, commit, now);
        }
        if self.params.replication != Replication::Async {
            ctx.send(primary, Msg::ReplAck(pack(epoch, me, seq)));
        }
    }

    /// The primary hears that a replica applied a change; writes waiting for it may now
    /// be acknowledged.
    pub(super) fn on_ack(&mut self, ctx: &mut Ctx<'_>, x: u64) {
        let (epoch, from, seq) = unpack(x);
        if !self.alive(ctx) || !self.is_primary(ctx) {
            return;
        }
        {
            let st = self.shard_state_mut(ctx);
            if epoch != st.epoch & 0xFFFF {
                return;
            }
            if let Some(e) = st.entry_mut(seq) {
                e.acks |= 1 << from;
            }
        }
        let mut i = 0;
        while i < self.waiting.len() {
            let (req, s, since) = self.waiting[i];
            if self.released(ctx, s) {
                self.waiting.swap_remove(i);
                if let Some(e) = self.shard_state_mut(ctx).entry_mut(s) {
                    e.acked = true;
                }
                self.finish(ctx, req, since, Status::Ok);
            } else {
                i += 1;
            }
        }
        self.shard_state_mut(ctx).trim();
    }

    /// A write accepted on a replica cut off from its primary (`ap`).
    pub(super) fn commit_divergent(&mut self, ctx: &mut Ctx<'_>, req: ReqId) {
        let now = ctx.now();
        let v = ctx.shared.oracle.next_version();
        let (key, user) = match ctx.shared.reqs.get_mut(req) {
            Some(r) => {
                r.version = v;
                (r.key, r.user)
            }
            None => return,
        };
        ctx.shared.dbs[self.db]
            .last_write
            .insert(u64::from(user), Some(now));
        let me = self.node;
        let node = &mut self.shard_state_mut(ctx).nodes[me];
        let before = node.data.value(key);
        node.data.insert(key, v);
        node.divergent.push((key, v, before));
        if !self.reconcile_armed {
            self.reconcile_armed = true;
            ctx.timer(RETRY, Msg::Db(DbTimer::Reconcile));
        }
    }

    /// A replica holding writes of its own offers them to the primary once it reaches it.
    pub(super) fn reconcile_tick(&mut self, ctx: &mut Ctx<'_>) {
        self.reconcile_armed = false;
        let me = self.node;
        let (empty, primary, p_alive) = {
            let st = self.shard_state(ctx);
            (
                st.nodes[me].divergent.is_empty(),
                st.nodes[st.primary].actor,
                st.nodes[st.primary].alive,
            )
        };
        if empty || !self.alive(ctx) {
            return;
        }
        if self.is_primary(ctx) {
            // Promoted meanwhile: its own writes become ordinary changes.
            self.reconcile(ctx, me);
            return;
        }
        if p_alive && ctx.reachable(primary) {
            ctx.send(primary, Msg::Reconcile(me as u64));
        }
        self.reconcile_armed = true;
        ctx.timer(RETRY, Msg::Db(DbTimer::Reconcile));
    }

    /// The primary merges the writes node `from` accepted while cut off: the higher
    /// version wins; a key changed on both sides is a conflict.
    pub(super) fn reconcile(&mut self, ctx: &mut Ctx<'_>, from: usize) {
        if !self.alive(ctx) || !self.is_primary(ctx) {
            return;
        }
        let now = ctx.now();
        let me = self.node;
        let counted = now >= ctx.shared.stats.warmup;
        let st = &mut ctx.shared.dbs[self.db].shards[self.shard];
        let Some(node) = st.nodes.get_mut(from) else {
            return;
        };
        let writes = std::mem::take(&mut node.divergent);
        let mut conflicts = 0;
        for (key, v, before) in writes {
            let cur = st.nodes[me].data.value(key);
            if from != me && cur != before {
                conflicts += 1;
            }
            if v > cur || from == me {
                st.nodes[me].data.insert(key, v.max(cur));
                st.log.push_back(Entry {
                    key,
                    version: v.max(cur),
                    commit: now,
                    applied: 1 << me | 1 << from,
                    acks: 1 << from,
                    acked: true,
                    counted: false,
                    trace: 0,
                });
            }
        }
        if counted {
            ctx.shared.oracle.conflicts += conflicts;
        }
        self.ship(ctx);
    }

    /// Starts committing the waiting group of writes (one `write_time` for all).
    pub(super) fn flush(&mut self, ctx: &mut Ctx<'_>) {
        // A group holds at most `size` writes; later ones wait for the next group.
        let size = self.params.batch.map_or(usize::MAX, |(size, _)| size);
        let n = self.batch.len().min(size);
        self.flushing = self.batch.drain(..n).collect();
        self.active += 1;
        let base = self.params.write_time.sample(ctx.rng);
        let mut d = self.slowed(base);
        for i in 0..self.flushing.len() {
            let key = ctx.shared.reqs.get(self.flushing[i].0).map_or(0, |r| r.key);
            d = d.max(self.disk(ctx, key));
        }
        ctx.timer(d, Msg::Db(DbTimer::Flushed));
    }

    pub(super) fn flushed(&mut self, ctx: &mut Ctx<'_>) {
        if self.flushing.is_empty() {
            return; // killed meanwhile
        }
        self.active = self.active.saturating_sub(1);
        if !self.ready.is_empty() {
            self.start_next(ctx);
        }
        let group = std::mem::take(&mut self.flushing);
        let primary = self.is_primary(ctx);
        for (req, since) in group {
            if primary {
                let seq = self.commit(ctx, req);
                self.acknowledge(ctx, req, seq, since);
            } else {
                self.finish(ctx, req, since, Status::Error);
            }
        }
        if primary {
            self.ship(ctx);
        }
        // The next group goes when it is full or its oldest write has waited `max_wait`.
        if let (Some((size, wait)), Some(&(_, oldest))) = (self.params.batch, self.batch.first()) {
            let due = oldest + wait;
            if self.batch.len() >= size || due <= ctx.now() {
                self.flush(ctx);
            } else if !self.batch_timer {
                self.batch_timer = true;
                ctx.timer_at(due, Msg::Db(DbTimer::Batch));
            }
        }
    }
}

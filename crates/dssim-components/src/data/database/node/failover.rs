//! Failover: crashes, failure detection, promotion of a replica, recovery, `cp` elections.

use std::collections::VecDeque;

use dssim_engine::SimTime;

use crate::node::{Ctx, Msg};
use crate::request::{ReqId, Status};

use super::*;

impl DbNode {
    /// Election checks run four times per timeout.
    pub(super) fn election_tick(timeout: SimTime) -> SimTime {
        SimTime::from_nanos((timeout.as_nanos() / 4).max(1_000_000))
    }

    /// A `cp` replica's periodic check: cut off from a live primary for the election
    /// timeout, with a majority of the shard in reach, it calls an election; the most
    /// up-to-date node it reaches (itself included; the lowest index on a tie) is promoted.
    pub(super) fn election_check(&mut self, ctx: &mut Ctx<'_>) {
        let Some((timeout, promote)) = self.params.election else {
            return;
        };
        let now = ctx.now();
        let tick = Self::election_tick(timeout);
        if now + tick < self.until {
            ctx.timer(tick, Msg::Db(DbTimer::Election));
        }
        let st = self.shard_state(ctx);
        let primary = &st.nodes[st.primary];
        if !self.alive(ctx)
            || self.is_primary(ctx)
            || !primary.alive // a dead primary is failover's case
            || ctx.reachable(primary.actor)
        {
            self.cut_since = None;
            return;
        }
        let since = *self.cut_since.get_or_insert(now);
        if now - since < timeout || !self.has_quorum(ctx) {
            return;
        }
        self.cut_since = None;
        let st = self.shard_state(ctx);
        let applied = |i: usize| st.log.iter().filter(|e| e.applied & (1 << i) != 0).count();
        let mut best = (self.node, applied(self.node));
        for (i, n) in st.nodes.iter().enumerate() {
            if i == self.node || i == st.primary || !n.alive || !ctx.reachable(n.actor) {
                continue;
            }
            let have = applied(i);
            if have > best.1 || (have == best.1 && i < best.0) {
                best = (i, have);
            }
        }
        let actor = st.nodes[best.0].actor;
        ctx.send_local(actor, promote, Msg::Db(DbTimer::Promote));
    }

    /// The node crashes: every request it holds fails; a primary's failover starts.
    pub(super) fn kill(&mut self, ctx: &mut Ctx<'_>) {
        if !self.alive(ctx) {
            return;
        }
        let me = self.node;
        self.shard_state_mut(ctx).nodes[me].alive = false;
        let mut all: Vec<(ReqId, SimTime)> = std::mem::take(&mut self.held);
        all.extend(self.ready.drain(..));
        all.extend(self.waiting.drain(..).map(|(r, _, s)| (r, s)));
        all.append(&mut self.batch);
        all.append(&mut self.flushing);
        self.active = 0;
        for (req, since) in all {
            self.finish(ctx, req, since, Status::Error);
        }
        if self.is_primary(ctx) {
            if let Some((detect, _)) = self.params.failover {
                // The dead node's actor stands in for the cluster manager that notices.
                ctx.timer(detect, Msg::Db(DbTimer::Detect));
            }
        }
    }

    /// The cluster manager noticed the dead primary: it promotes the live replica that
    /// applied the most changes, `promote` later.
    pub(super) fn detect(&mut self, ctx: &mut Ctx<'_>) {
        if self.alive(ctx) || !self.is_primary(ctx) {
            return;
        }
        let st = self.shard_state(ctx);
        let mut best: Option<(usize, usize)> = None;
        for (i, n) in st.nodes.iter().enumerate() {
            if i == self.node || !n.alive {
                continue;
            }
            let have = st.log.iter().filter(|e| e.applied & (1 << i) != 0).count();
            if best.is_none_or(|(_, b)| have > b) {
                best = Some((i, have));
            }
        }
        match best {
            Some((i, _)) => {
                let actor = st.nodes[i].actor;
                let promote = self.params.failover.map_or(SimTime::ZERO, |f| f.1);
                ctx.send_local(actor, promote, Msg::Db(DbTimer::Promote));
            }
            None => {
                // No live replica: look again later.
                let detect = self.params.failover.map_or(RETRY, |f| f.0.max(RETRY));
                ctx.timer(detect, Msg::Db(DbTimer::Detect));
            }
        }
    }

    /// This replica becomes the primary. Acknowledged changes it never applied are lost;
    /// other replicas roll those keys back to its state.
    pub(super) fn promote(&mut self, ctx: &mut Ctx<'_>) {
        let me = self.node;
        let st = &ctx.shared.dbs[self.db].shards[self.shard];
        let old = &st.nodes[st.primary];
        // A dead primary (failover), or a live one this node no longer reaches (a `cp`
        // election on the majority side).
        let replaceable =
            !old.alive || (self.params.election.is_some() && !ctx.reachable(old.actor));
        if !st.nodes[me].alive || st.primary == me || !replaceable {
            return;
        }
        let st = &mut ctx.shared.dbs[self.db].shards[self.shard];
        let mut lost = 0;
        let mut kept = VecDeque::with_capacity(st.log.len());
        for mut e in std::mem::take(&mut st.log) {
            if e.applied & (1 << me) != 0 {
                e.acked = true; // nobody waits on it any more
                kept.push_back(e);
            } else {
                if e.acked && e.counted {
                    lost += 1;
                }
                let mine = st.nodes[me].data.value(e.key);
                for (i, n) in st.nodes.iter_mut().enumerate() {
                    if i != me && e.applied & (1 << i) != 0 {
                        n.data.insert(e.key, mine);
                    }
                }
            }
        }
        st.log = kept;
        st.primary = me;
        st.epoch += 1;
        let base = st.base;
        for n in &mut st.nodes {
            n.shipped = base;
        }
        ctx.shared.oracle.lost_writes += lost;
        ctx.shared.oracle.failovers += 1;
        // Writes it accepted on its own while the primary was gone become changes.
        self.reconcile(ctx, me);
        self.ship(ctx);
    }

    /// The node comes back. A primary that was not replaced resumes; any other node
    /// rejoins as a replica with a copy of the current primary's data.
    pub(super) fn recover(&mut self, ctx: &mut Ctx<'_>) {
        if self.alive(ctx) {
            return;
        }
        let me = self.node;
        let st = &mut ctx.shared.dbs[self.db].shards[self.shard];
        st.nodes[me].alive = true;
        if st.primary != me {
            let data = st.nodes[st.primary].data.clone();
            st.nodes[me].data = data;
            st.nodes[me].divergent.clear();
            st.nodes[me].shipped = st.next_seq();
            for e in &mut st.log {
                e.applied |= 1 << me;
            }
        } else {
            // Resume shipping from the oldest change (replicas skip what they have).
            let base = st.base;
            for e in &mut st.log {
                e.acked = true;
            }
            for n in &mut st.nodes {
                n.shipped = base;
            }
            self.ship(ctx);
        }
    }
}

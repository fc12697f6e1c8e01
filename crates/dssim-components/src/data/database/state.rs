//! The state shared by a database's nodes: entries, node and shard state, the lag gauge.

use std::collections::VecDeque;

use crate::data::cache::DenseMap;

use dssim_engine::{ActorId, SimTime};

/// One change in a shard's replication log.
#[derive(Clone, Debug)]
pub struct Entry {
    /// Key changed.
    pub key: u64,
    /// Version written.
    pub version: u64,
    /// Commit time on the primary.
    pub commit: SimTime,
    /// Nodes that applied it (bit = node index).
    pub applied: u64,
    /// Nodes whose acknowledgement reached the primary.
    pub acks: u64,
    /// Whether the write was acknowledged to its caller.
    pub acked: bool,
    /// Whether its request was first sent in the measured window.
    pub counted: bool,
    /// The trace number of its request (0: not traced), so replicas record its apply.
    pub trace: u32,
}

/// A node's versions by key (0: never written), with one bit per key of the key space
/// saying whether the key may have been written here. A read of a key whose bit is clear
/// answers 0 without touching the table: the reads that reach a database are the caches'
/// misses, the cold keys, most of them never written, whose line of the table (1 MiB a
/// node) was not cached; the bits (12.5 kB a node for 100,000 keys) are. Keys beyond the
/// bits take the table. Production 120 s: 1.007 -> 0.976 s CPU (10 rounds),
/// `DbNode::served` 2.8 % -> 1.5 % of the samples; 1,157.3 -> 1,156.8 M instructions (20 s).
/// Tried and not kept: a replica applying a change to a key whose bit is clear writing the
/// version without reading the table first: same instructions, 0.888 vs 0.883 s (noise).
/// Over the stress day (rate 300 -> 5,800/s for 24 h) nearly every key gets written, so
/// the bits stop sparing the load: `DbNode::served` is 2.8 % of its samples (0.4 % in the
/// 120 s run), two thirds of them on this table's load (session 11 perf; not changed).
#[derive(Clone, Debug, Default)]
pub struct Versions {
    map: DenseMap<u64>,
    written: Vec<u64>,
}

impl Versions {
    /// The version held for `key` (0: none).
    #[inline]
    pub fn value(&self, key: u64) -> u64 {
        match self.written.get((key / 64) as usize) {
            Some(w) if w & (1 << (key % 64)) == 0 => 0,
            _ => self.map.value(key),
        }
    }

    /// Starts loading the line of `key`'s version, for a read served later
    /// ([`dssim_engine::prefetch`]; see `DbNode::execute`).
    #[inline(always)]
    pub fn prefetch(&self, key: u64) {
        self.map.prefetch(key);
    }

    /// The version held for `key`, to change in place.
    #[inline]
    pub fn entry(&mut self, key: u64) -> &mut u64 {
        if let Some(w) = self.written.get_mut((key / 64) as usize) {
            *w |= 1 << (key % 64);
        }
        self.map.entry(key)
    }

    /// Sets the version held for `key`.
    #[inline]
    pub fn insert(&mut self, key: u64, version: u64) {
        *self.entry(key) = version;
    }
}

/// A node's data and health, shared so that failover and reconciliation can see them.
#[derive(Clone, Debug, Default)]
pub struct NodeState {
    /// The node's actor.
    pub actor: ActorId,
    /// Alive (not killed).
    pub alive: bool,
    /// Key -> newest version held (looked up, never iterated).
    pub data: Versions,
    /// Next log sequence number to ship to this node.
    pub shipped: u64,
    /// Writes accepted here while cut off from the primary (`ap`): (key, version, the
    /// version this node held before).
    pub divergent: Vec<(u64, u64, u64)>,
}

impl NodeState {
    /// The live node `actor`, for a model whose keys are drawn from `0..key_space`: its
    /// data table is sized for the first 131,072 keys at once (1 MiB), as reads look up
    /// keys that were never written (see [`DenseMap::reserve`]).
    pub fn new(actor: ActorId, key_space: u64) -> Self {
        let mut data = Versions::default();
        data.map.reserve(key_space.min(1 << 17));
        data.written = vec![0; key_space.min(1 << 24).div_ceil(64) as usize];
        NodeState {
            actor,
            alive: true,
            data,
            ..Default::default()
        }
    }
}

/// One shard: its nodes and its replication log.
#[derive(Clone, Debug, Default)]
pub struct ShardState {
    /// Index (in `nodes`) of the current primary.
    pub primary: usize,
    /// Bumped at every promotion; replication messages of an older epoch are ignored.
    pub epoch: u64,
    /// Node 0 is the configured primary, node `i + 1` replica `i`.
    pub nodes: Vec<NodeState>,
    /// Changes not yet applied by every live replica (or still waiting for acks).
    pub log: VecDeque<Entry>,
    /// Sequence number of `log[0]`.
    pub base: u64,
}

impl ShardState {
    /// Sequence number of the next change.
    pub fn next_seq(&self) -> u64 {
        self.base + self.log.len() as u64
    }

    /// The entry with sequence number `seq`.
    pub fn entry(&self, seq: u64) -> Option<&Entry> {
        seq.checked_sub(self.base)
            .and_then(|i| self.log.get(i as usize))
    }

    pub(super) fn entry_mut(&mut self, seq: u64) -> Option<&mut Entry> {
        seq.checked_sub(self.base)
            .and_then(|i| self.log.get_mut(i as usize))
    }

    /// Live nodes other than the primary, as a bit mask.
    pub fn live_replicas(&self) -> u64 {
        self.nodes
            .iter()
            .enumerate()
            .filter(|(i, n)| *i != self.primary && n.alive)
            .fold(0, |m, (i, _)| m | 1 << i)
    }

    /// Drops the oldest changes once every live replica applied them and their writes
    /// were acknowledged.
    pub(super) fn trim(&mut self) {
        let live = self.live_replicas();
        while let Some(e) = self.log.front() {
            if e.applied & live == live && e.acked {
                self.log.pop_front();
                self.base += 1;
            } else {
                break;
            }
        }
    }
}

/// The replication lag gauge of timeseries.csv at `now`: over every live replica of every
/// shard, the age of the oldest change it has not applied yet (0 when it is up to date), the
/// largest in ms; `None` when no database has replicas.
pub fn replication_lag_gauge(dbs: &[DbState], now: SimTime) -> Option<f64> {
    let mut lag: Option<SimTime> = None;
    for shard in dbs.iter().flat_map(|d| &d.shards) {
        for (i, node) in shard.nodes.iter().enumerate() {
            if i == shard.primary || !node.alive {
                continue;
            }
            let oldest = shard
                .log
                .iter()
                .find(|e| e.applied & (1 << i) == 0)
                .map_or(SimTime::ZERO, |e| now.saturating_sub(e.commit));
            lag = Some(lag.map_or(oldest, |l| l.max(oldest)));
        }
    }
    lag.map(|l| l.as_secs_f64() * 1e3)
}

/// One database's run-time state.
#[derive(Clone, Debug, Default)]
pub struct DbState {
    /// Shards.
    pub shards: Vec<ShardState>,
    /// User -> time of their last write (for `read_your_writes` routing).
    pub last_write: DenseMap<Option<SimTime>>,
    /// Region (model index) of each client actor, indexed by actor id: where users connect
    /// from (`shard_by = "region"`); empty otherwise.
    pub client_region: Vec<u16>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bits of keys never written answer as the table does.
    #[test]
    fn versions_answer_as_the_table() {
        let mut a = NodeState::new(0, 300).data;
        let mut b = Versions::default();
        for (i, k) in [0u64, 5, 63, 64, 299, 300, 1_000_000, 5]
            .into_iter()
            .enumerate()
        {
            assert_eq!(a.value(k), b.value(k));
            a.insert(k, i as u64 + 1);
            b.insert(k, i as u64 + 1);
            *a.entry(k + 1) = 7;
            *b.entry(k + 1) = 7;
            let c = a.clone();
            for j in 0..400 {
                assert_eq!((a.value(j), c.value(j)), (b.value(j), b.value(j)));
            }
            assert_eq!(a.value(1_000_001), b.value(1_000_001));
        }
    }
}

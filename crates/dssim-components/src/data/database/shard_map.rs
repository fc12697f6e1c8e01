//! The shard map: which shard holds a key (hash, range, directory, consistent hashing).

use super::*;

/// A 64-bit mixer (splitmix64 finaliser): spreads keys evenly over the hash space.
#[inline]
pub fn mix64(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

pub(super) const DIRECTORY_BUCKETS: usize = 4096;
pub(super) const RING_VNODES: u64 = 160;

/// Maps keys to shards.
#[derive(Clone, Debug)]
pub enum ShardMap {
    /// `mix(key) mod n`.
    Hash(u64),
    /// `key × n / keys`.
    Range {
        /// Shards.
        n: u64,
        /// Key space size.
        keys: u64,
    },
    /// `table[mix(key) mod BUCKETS]`.
    Directory(Vec<u16>),
    /// Sorted `(position, shard)` ring.
    Ring(Vec<(u64, u32)>),
}

impl ShardMap {
    /// The map for `shards` shards over a key space of `keys` keys.
    pub fn new(sharding: Sharding, shards: u32, keys: u64) -> ShardMap {
        let n = shards.max(1);
        match sharding {
            Sharding::Hash => ShardMap::Hash(u64::from(n)),
            Sharding::Range => ShardMap::Range {
                n: u64::from(n),
                keys: keys.max(1),
            },
            Sharding::Directory => ShardMap::Directory(directory(n)),
            Sharding::ConsistentHash => {
                let mut ring: Vec<(u64, u32)> = (0..n)
                    .flat_map(|s| {
                        (0..RING_VNODES).map(move |v| (mix64((u64::from(s) << 32 | v) ^ 0x5EED), s))
                    })
                    .collect();
                ring.sort_unstable();
                ShardMap::Ring(ring)
            }
        }
    }

    /// The shard of `key`.
    #[inline]
    pub fn shard_of(&self, key: u64) -> usize {
        match self {
            ShardMap::Hash(1) => 0,
            ShardMap::Hash(n) => (mix64(key) % n) as usize,
            ShardMap::Range { n, keys } => {
                let k = u128::from(key.min(keys - 1));
                ((k * u128::from(*n) / u128::from(*keys)) as u64).min(n - 1) as usize
            }
            ShardMap::Directory(t) => t[(mix64(key) % DIRECTORY_BUCKETS as u64) as usize] as usize,
            ShardMap::Ring(r) => {
                let h = mix64(key);
                let i = r.partition_point(|&(p, _)| p < h);
                r.get(i).unwrap_or(&r[0]).1 as usize
            }
        }
    }
}

/// A directory for `n` shards, grown one shard at a time: each new shard takes buckets
/// from the fullest shards, so going from n to n+1 shards moves about 1/(n+1) of the keys.
pub(super) fn directory(n: u32) -> Vec<u16> {
    let mut table = vec![0u16; DIRECTORY_BUCKETS];
    let mut owned: Vec<Vec<usize>> = vec![(0..DIRECTORY_BUCKETS).rev().collect()];
    for s in 1..(n as usize).min(u16::MAX as usize) {
        let target = DIRECTORY_BUCKETS / (s + 1);
        owned.push(Vec::new());
        while owned[s].len() < target {
            let donor = (0..s)
                .max_by_key(|&d| (owned[d].len(), usize::MAX - d))
                .unwrap_or(0);
            let Some(b) = owned[donor].pop() else { break };
            table[b] = s as u16;
            owned[s].push(b);
        }
    }
    table
}

/// The fraction of keys `0..keys` whose shard changes when a database with `sharding`
/// goes from `from` to `to` shards (the cost of resharding).
pub fn moved_fraction(sharding: Sharding, keys: u64, from: u32, to: u32) -> f64 {
    let a = ShardMap::new(sharding, from, keys);
    let b = ShardMap::new(sharding, to, keys);
    let moved = (0..keys)
        .filter(|&k| a.shard_of(k) != b.shard_of(k))
        .count();
    moved as f64 / keys.max(1) as f64
}

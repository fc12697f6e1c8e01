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

/// A uniform number in [0, 1) drawn from `x` (a user id) by hashing: the same user always
/// gets the same one.
#[inline]
fn unit(x: u64, salt: u64) -> f64 {
    (mix64(x ^ salt) >> 11) as f64 / (1u64 << 53) as f64
}

/// The tenant directory: which tenant a user belongs to, and which shard holds a tenant.
#[derive(Clone, Debug)]
pub struct TenantDirectory {
    /// Cumulative user shares of the tenants (the last is 1).
    cum: Vec<f64>,
    /// Shard of each tenant.
    pub shard: Vec<u32>,
}

impl TenantDirectory {
    /// Tenants of sizes `shares` placed on `shards` shards: the biggest first, each on the
    /// shard with the smallest total so far (ties: the lowest shard).
    pub fn new(shares: &[f64], shards: u32) -> Self {
        let n = shards.max(1) as usize;
        let mut order: Vec<usize> = (0..shares.len()).collect();
        order.sort_by(|&a, &b| shares[b].total_cmp(&shares[a]).then(a.cmp(&b)));
        let mut load = vec![0.0f64; n];
        let mut shard = vec![0u32; shares.len()];
        for t in order {
            let s = (0..n)
                .min_by(|&a, &b| load[a].total_cmp(&load[b]).then(a.cmp(&b)))
                .unwrap_or(0);
            load[s] += shares[t];
            shard[t] = s as u32;
        }
        let mut acc = 0.0;
        let cum = shares
            .iter()
            .map(|x| {
                acc += x;
                acc
            })
            .collect();
        TenantDirectory { cum, shard }
    }

    /// The tenant of `user`.
    #[inline]
    pub fn tenant_of(&self, user: u32) -> usize {
        let u = unit(u64::from(user), 0x7E4A_4715);
        self.cum
            .partition_point(|&c| c <= u)
            .min(self.cum.len().saturating_sub(1))
    }

    /// The share of the users on each of `shards` shards.
    pub fn shard_shares(&self, shards: u32) -> Vec<f64> {
        let mut v = vec![0.0; shards.max(1) as usize];
        let mut prev = 0.0;
        for (t, &c) in self.cum.iter().enumerate() {
            v[self.shard[t] as usize] += c - prev;
            prev = c;
        }
        v
    }
}

/// Geographic placement: the shards of each region and where users live.
#[derive(Clone, Debug)]
pub struct GeoDirectory {
    /// Distinct regions holding shards (model region indices), in order of first shard.
    pub regions: Vec<u16>,
    /// Shards of each of `regions`.
    pub shards_in: Vec<Vec<u32>>,
    /// Share of users whose home is another region than the one they connect from.
    pub travellers: f64,
}

impl GeoDirectory {
    /// Shards placed in regions `shard_region` (model region indices, one per shard).
    pub fn new(shard_region: &[u16], travellers: f64) -> Self {
        let mut regions: Vec<u16> = Vec::new();
        let mut shards_in: Vec<Vec<u32>> = Vec::new();
        for (s, &r) in shard_region.iter().enumerate() {
            match regions.iter().position(|&x| x == r) {
                Some(i) => shards_in[i].push(s as u32),
                None => {
                    regions.push(r);
                    shards_in.push(vec![s as u32]);
                }
            }
        }
        GeoDirectory {
            regions,
            shards_in,
            travellers,
        }
    }

    /// Index (in `regions`) of the home region of `user` connecting from region `from`
    /// (a model region index): `from` itself, except for travellers (and for users
    /// connecting from a region without shards), whose home is another region.
    #[inline]
    pub fn home_of(&self, user: u32, from: u16) -> usize {
        let n = self.regions.len().max(1);
        let here = self.regions.iter().position(|&r| r == from);
        let pick = mix64(u64::from(user) ^ 0x6E0_5EED);
        match here {
            Some(h)
                if n > 1
                    && self.travellers > 0.0
                    && unit(u64::from(user), 0x7EA7) < self.travellers =>
            {
                (h + 1 + (pick % (n as u64 - 1)) as usize) % n
            }
            Some(h) => h,
            None => (pick % n as u64) as usize,
        }
    }

    /// The shard of `key` for a user whose home is `home` (an index in `regions`).
    #[inline]
    pub fn shard(&self, home: usize, key: u64) -> usize {
        let v = &self.shards_in[home.min(self.shards_in.len() - 1)];
        if v.len() == 1 {
            v[0] as usize
        } else {
            v[(mix64(key) % v.len() as u64) as usize] as usize
        }
    }
}

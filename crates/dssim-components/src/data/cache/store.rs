//! The entry table of a cache: lookup by key, one of four eviction policies, lazy TTL
//! expiry. Every operation is O(1) except LFU's, which is O(log n); nothing is allocated per
//! operation once the table has grown to its capacity.
//!
//! ```text
//!   ents: [entry of key 0 | key 1 | ... | key direct-1 | other keys' entries (reused)]
//!   map: key -> handle        (keys >= direct only; lookup only, never iterated)
//!   lru/fifo: head <-> ... <-> tail   (doubly linked through the entries; evict the tail)
//!   random:   dense [handle, ...]     (evict a uniformly drawn one)
//!   lfu:      priority queue of handles keyed by (hits, last touch)  (evict the least)
//! ```

use std::cmp::Reverse;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use dssim_engine::{rng::splitmix64, Rng, SimTime};
use priority_queue::PriorityQueue;
use rand::Rng as _;
use serde::{Deserialize, Serialize};

/// Which entry leaves when a full cache takes a new one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Eviction {
    /// Least recently used.
    #[default]
    Lru,
    /// Least frequently used (ties: the oldest); counts are not aged.
    Lfu,
    /// First in, first out: hits do not refresh an entry.
    Fifo,
    /// A uniformly random entry.
    Random,
}

/// A hasher for `u64` keys: one SplitMix64 round. Deterministic, fast, and good enough for
/// simulated key ids; the map that uses it is never iterated.
#[derive(Default)]
pub struct KeyHasher(u64);

impl Hasher for KeyHasher {
    #[inline]
    fn finish(&self) -> u64 {
        self.0
    }
    #[inline]
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = splitmix64(self.0 ^ u64::from(*b));
        }
    }
    #[inline]
    fn write_u64(&mut self, x: u64) {
        self.0 = splitmix64(self.0 ^ x);
    }
    #[inline]
    fn write_u32(&mut self, x: u32) {
        self.write_u64(u64::from(x));
    }
}

/// A hash map keyed by simulated ids, for lookups only (never iterated).
pub type KeyMap<K, V> = HashMap<K, V, BuildHasherDefault<KeyHasher>>;

/// Bytes a [`DenseMap`]'s direct-indexed part may grow to; ids beyond go to its hash map.
const DENSE_BYTES: usize = 16 << 20;

/// A map from bounded integer ids (keys drawn from `0..keys`, user ids) to values whose
/// `Default` means "absent": a vector indexed by the id, a [`KeyMap`] for ids beyond it. A
/// lookup of an id in the vector is one bounds check and one load (no hashing, no probing,
/// no tag: the value itself says whether it is there). The vector grows (doubling) to take
/// an id only while it stays under 16 MiB and under about twice the writes made so far, so
/// its memory follows the ids in use (popular keys are the small ids) and a sparse use of
/// a huge id space stays in the hash map; ids the vector grows over move into it. The map
/// is iterated only there, where the order cannot show (each id moves to its own index),
/// so its layout cannot leak into a run's results.
#[derive(Clone, Debug)]
pub struct DenseMap<V> {
    dense: Vec<V>,
    sparse: KeyMap<u64, V>,
    writes: u64,
}

impl<V> Default for DenseMap<V> {
    fn default() -> Self {
        DenseMap {
            dense: Vec::new(),
            sparse: KeyMap::default(),
            writes: 0,
        }
    }
}

impl<V: Default> DenseMap<V> {
    /// Ids below this may be held in the vector.
    #[inline(always)]
    fn limit() -> u64 {
        (DENSE_BYTES / std::mem::size_of::<V>().max(1)) as u64
    }

    /// The value of `key`; `None` (or the default value) when absent.
    #[inline]
    pub fn get(&self, key: u64) -> Option<&V> {
        if key < self.dense.len() as u64 {
            self.dense.get(key as usize)
        } else {
            self.sparse.get(&key)
        }
    }

    /// Starts loading the line of `key`'s value ([`dssim_engine::prefetch`]), when the
    /// vector holds it.
    #[inline(always)]
    pub fn prefetch(&self, key: u64) {
        if let Some(v) = self.dense.get(key as usize) {
            dssim_engine::prefetch(v);
        }
    }

    /// The value of `key`, the default when absent.
    #[inline]
    pub fn value(&self, key: u64) -> V
    where
        V: Copy,
    {
        self.get(key).copied().unwrap_or_default()
    }

    /// The value of `key` to change in place (the default when it was absent). The
    /// vector's case inlined, the others out of line (production 20 s: 1,156.8 -> 1,154.3 M
    /// instructions; 120 s CPU 0.928 -> 0.915 s, 10 rounds).
    #[inline(always)]
    pub fn entry(&mut self, key: u64) -> &mut V {
        self.writes += 1;
        if key < self.dense.len() as u64 {
            return &mut self.dense[key as usize];
        }
        self.entry_beyond(key)
    }

    /// [`DenseMap::entry`] of an id beyond the vector.
    #[inline(never)]
    fn entry_beyond(&mut self, key: u64) -> &mut V {
        if key >= Self::limit() || key >= 2 * self.writes + 1024 {
            return self.sparse.entry(key).or_default();
        }
        self.grow(key as usize);
        &mut self.dense[key as usize]
    }

    /// Grows the vector to hold index `i`, moving the ids it now covers out of the map.
    #[cold]
    fn grow(&mut self, i: usize) {
        let old = self.dense.len();
        let n = (i + 1)
            .next_power_of_two()
            .max(64)
            .min(Self::limit() as usize);
        self.dense.resize_with(n, V::default);
        if !self.sparse.is_empty() {
            // One pass over the map's entries rather than a probe per id grown over (a
            // growth from 65,536 to 131,072 ids probed 65,536 times for the few ids held).
            // The order of the pass cannot show: each id moves to its own index.
            let dense = &mut self.dense;
            self.sparse.retain(|&k, v| {
                if k < n as u64 {
                    debug_assert!(k >= old as u64);
                    dense[k as usize] = std::mem::take(v);
                    false
                } else {
                    true
                }
            });
        }
    }

    /// Sizes the vector for the ids `0..ids` now (at most 16 MiB), as a table that is
    /// read far more than written needs: the consistency oracle's and a database's per-key
    /// tables are written only by writes (a tenth of the production model's requests), so
    /// under the write-driven growth above most of their reads went through the hash map
    /// for the first minute or more (Oracle::observe 6.9 % of the production model's
    /// time, half of it on that probe). Never shrinks; ids already in the map move in.
    pub fn reserve(&mut self, ids: u64) {
        let n = ids.min(Self::limit()) as usize;
        if n > self.dense.len() {
            self.grow(n - 1);
        }
    }

    /// Sets `key` to `value`.
    #[inline]
    pub fn insert(&mut self, key: u64, value: V) {
        *self.entry(key) = value;
    }

    /// Removes `key` (sets it to the default); returns the value it had.
    #[inline]
    pub fn remove(&mut self, key: u64) -> V {
        if key < self.dense.len() as u64 {
            std::mem::take(&mut self.dense[key as usize])
        } else {
            self.sparse.remove(&key).unwrap_or_default()
        }
    }

    /// Makes every value absent (keeps the memory).
    pub fn clear(&mut self) {
        self.dense.iter_mut().for_each(|v| *v = V::default());
        self.sparse.clear();
    }
}

const NIL: u32 = u32::MAX;

/// Keys below this may have their entry at their own index ([`Store::with_keys`]): 4 MiB of
/// 32-byte entries.
const MAX_DIRECT: u64 = 1 << 17;

/// One key's entry and the owner's word: 32 bytes, two to a cache line and never across
/// two. The word each policy needs shares `prev`: LRU and FIFO link the entries through
/// `prev` and `next`; random eviction keeps the entry's position in `dense` in `prev`, LFU
/// its hits + 1. (Separate fields for each and a key took 56 bytes, six entries in eight
/// across two cache lines.)
#[derive(Clone, Copy, Debug, Default)]
struct Entry {
    version: u64,
    expires: SimTime,
    /// LRU, FIFO: the previous entry (towards the head). Random: the position in `dense`.
    /// LFU: hits + 1.
    prev: u32,
    /// LRU, FIFO: the next entry (towards the tail).
    next: u32,
    /// The owner's per-key word ([`Store::aux`]; 0 when unused).
    aux: u32,
    /// Whether the key has an entry.
    live: bool,
}

/// What a lookup found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lookup {
    /// A fresh entry with this version.
    Hit(u64),
    /// An entry whose TTL had run out (now removed).
    Expired,
    /// No entry.
    Miss,
}

/// The entries of one cache (see the module docs).
///
/// Entries are found by a handle: a key below `direct` is its own handle, its entry at
/// its own index of `ents` (no index to look up first); any other key gets a handle at or
/// beyond `direct` from `map` while it has an entry or an owner's word. The handles only
/// name places: eviction follows the policy's order (the list, `dense`'s order, the LFU
/// priorities, all unique), never a handle's value. A key table (key -> slot, 8 bytes a
/// key) in front of a slab of entries cost two dependent cache misses per lookup, 2/3 of
/// `Cache::serve`'s time in the production model; keyed by the key itself the hot keys
/// (the small ids) also share their lines, and so do the neighbours an LRU hit relinks.
/// Production 20 s: 1,172.1 -> 1,166.7 M instructions; 120 s, 10 interleaved rounds (with
/// the router's skipped latency filter, instructions only): 0.989 -> 0.962 s. Memory: 4 MiB
/// a shared cache for the model's first 131,072 keys (the key table grew to 1 MiB before).
/// Tried and not kept: a bit per key saying whether it has an entry or an owner's word, so
/// that a miss reads 16 kB of bits instead of the entry (as the database nodes' versions
/// do): +5.4 M instructions (20 s), no CPU time (0.946 vs 0.942 s, 10 rounds).
#[derive(Debug)]
pub struct Store {
    policy: Eviction,
    capacity: usize,
    /// Keys below this are their own handles.
    direct: u64,
    /// Entries by handle: `direct` of them by key, then the other keys' (reused when free).
    ents: Vec<Entry>,
    /// The key of each handle at or beyond `direct`.
    keys: Vec<u64>,
    /// Keys at or beyond `direct` -> their handle (lookup only, never iterated).
    map: KeyMap<u64, u32>,
    /// Handles beyond `direct` free for reuse.
    free: Vec<u32>,
    head: u32,
    tail: u32,
    dense: Vec<u32>,
    /// LFU order: handle -> (hits, last touch), least first (a hit changes one entry's
    /// priority in place; the touch counter makes every priority unique, so the victim
    /// does not depend on the hasher).
    lfu: PriorityQueue<u32, Reverse<(u32, u64)>, BuildHasherDefault<KeyHasher>>,
    seq: u64,
    len: usize,
}

impl Store {
    /// An empty store holding at most `capacity` entries (every key through the map).
    pub fn new(policy: Eviction, capacity: u64) -> Self {
        Store {
            policy,
            capacity: usize::try_from(capacity).unwrap_or(usize::MAX),
            direct: 0,
            ents: Vec::new(),
            keys: Vec::new(),
            map: KeyMap::default(),
            free: Vec::new(),
            head: NIL,
            tail: NIL,
            dense: Vec::new(),
            lfu: PriorityQueue::with_default_hasher(),
            seq: 0,
            len: 0,
        }
    }

    /// An empty store whose keys below `ids` (at most 131,072) are their own handles:
    /// 32 bytes each, allocated now.
    pub fn with_keys(policy: Eviction, capacity: u64, ids: u64) -> Self {
        let mut s = Store::new(policy, capacity);
        s.direct = ids.min(MAX_DIRECT);
        s.ents = vec![Entry::default(); s.direct as usize];
        s
    }

    /// Starts the store over, empty, with the keys below `ids` (at most 131,072) their
    /// own handles, as [`Store::with_keys`] (what it held is dropped).
    pub fn reserve_keys(&mut self, ids: u64) {
        *self = Store::with_keys(self.policy, self.capacity as u64, ids);
    }

    /// Entries held (expired ones included until they are looked up or evicted).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the store holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The handle of `key`, if it has one.
    #[inline(always)]
    fn find(&self, key: u64) -> Option<u32> {
        if key < self.direct {
            Some(key as u32)
        } else if self.map.is_empty() {
            None
        } else {
            self.map.get(&key).copied()
        }
    }

    /// The handle of `key`, given one if it had none.
    #[inline]
    fn handle(&mut self, key: u64) -> u32 {
        if key < self.direct {
            return key as u32;
        }
        if let Some(&h) = self.map.get(&key) {
            return h;
        }
        let h = match self.free.pop() {
            Some(h) => {
                self.ents[h as usize] = Entry::default();
                self.keys[(h as u64 - self.direct) as usize] = key;
                h
            }
            None => {
                self.ents.push(Entry::default());
                self.keys.push(key);
                (self.ents.len() - 1) as u32
            }
        };
        self.map.insert(key, h);
        h
    }

    /// The key of handle `h`.
    #[inline(always)]
    fn key_of(&self, h: u32) -> u64 {
        if u64::from(h) < self.direct {
            u64::from(h)
        } else {
            self.keys[(u64::from(h) - self.direct) as usize]
        }
    }

    /// Gives back the handle of a key beyond `direct` that holds nothing any more.
    #[inline]
    fn release(&mut self, h: u32) {
        if u64::from(h) >= self.direct {
            let e = &self.ents[h as usize];
            if !e.live && e.aux == 0 {
                let key = self.key_of(h);
                self.map.remove(&key);
                self.free.push(h);
            }
        }
    }

    /// The handle of `key` when it has an entry.
    #[inline(always)]
    fn slot_of(&self, key: u64) -> Option<u32> {
        self.find(key).filter(|&h| self.ents[h as usize].live)
    }

    /// The owner's word for `key` (0 until set), kept in the key's entry so that an
    /// owner's own per-key state costs no cache line of its own: the cache actor keeps its
    /// flight there, looked up on every miss right after the entry (a separate 400 kB
    /// table over the production model's 100,000 keys cost a cache miss per miss).
    /// Independent of the entry: it survives the entry's eviction; [`Store::clear`] resets it.
    #[inline]
    pub fn aux(&self, key: u64) -> u32 {
        self.find(key).map_or(0, |h| self.ents[h as usize].aux)
    }

    /// Sets the owner's word for `key`: a key below `direct` in place, inlined (its handle
    /// is itself and is never released), any other in [`Self::set_aux_mapped`]. As one
    /// function it was a call for every begun and every ended flight. With the cache's
    /// `fill` and `land` inlined: production 20 s 936.3 -> 934.0 M instructions.
    #[inline(always)]
    pub fn set_aux(&mut self, key: u64, aux: u32) {
        if key < self.direct {
            self.ents[key as usize].aux = aux;
        } else {
            self.set_aux_mapped(key, aux);
        }
    }

    /// [`Self::set_aux`] for a key beyond `direct`.
    #[inline(never)]
    fn set_aux_mapped(&mut self, key: u64, aux: u32) {
        if aux == 0 {
            if let Some(h) = self.find(key) {
                self.ents[h as usize].aux = 0;
                self.release(h);
            }
        } else {
            let h = self.handle(key);
            self.ents[h as usize].aux = aux;
        }
    }

    /// Starts loading the cache line of `key`'s entry ([`dssim_engine::prefetch`]) for a
    /// lookup to come; keys below `direct` only (any other key's handle is in `map`).
    #[inline(always)]
    pub fn prefetch(&self, key: u64) {
        if key < self.direct {
            if let Some(e) = self.ents.get(key as usize) {
                dssim_engine::prefetch(e);
            }
        }
    }

    /// The maximum number of entries.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Looks `key` up at `now`; a hit refreshes the entry as the policy says (LRU moves it
    /// to the front, LFU counts it; FIFO and random do nothing). An expired entry is removed.
    #[inline]
    pub fn get(&mut self, key: u64, now: SimTime) -> Lookup {
        let Some(s) = self.slot_of(key) else {
            return Lookup::Miss;
        };
        let e = &self.ents[s as usize];
        if now >= e.expires {
            self.remove_slot(s);
            return Lookup::Expired;
        }
        let v = e.version;
        match self.policy {
            Eviction::Lru => {
                if self.head != s {
                    self.unlink(s);
                    self.push_front(s);
                }
            }
            Eviction::Lfu => {
                let e = &mut self.ents[s as usize];
                e.prev = e.prev.saturating_add(1);
                self.seq += 1;
                self.lfu.change_priority(&s, Reverse((e.prev, self.seq)));
            }
            Eviction::Fifo | Eviction::Random => {}
        }
        Lookup::Hit(v)
    }

    /// The version cached for `key`, without touching the entry (expired or not).
    pub fn peek(&self, key: u64) -> Option<u64> {
        self.slot_of(key).map(|s| self.ents[s as usize].version)
    }

    /// Stores `key` at `version` until `expires`. An existing entry is updated in place
    /// (its TTL restarts). Returns the key evicted to make room, if any.
    ///
    /// Inlined, with [`Self::insert_new`], at its callers (the cache's fill, above all):
    /// two calls fewer per fill, production 20 s 932.2 -> 931.5 M instructions.
    #[inline(always)]
    pub fn insert(
        &mut self,
        key: u64,
        version: u64,
        expires: SimTime,
        rng: &mut Rng,
    ) -> Option<u64> {
        if self.capacity == 0 {
            return None;
        }
        if let Some(s) = self.slot_of(key) {
            let e = &mut self.ents[s as usize];
            e.version = version;
            e.expires = expires;
            return None;
        }
        let evicted = if self.len >= self.capacity {
            self.victim(rng).map(|s| {
                let k = self.key_of(s);
                self.remove_slot(s);
                k
            })
        } else {
            None
        };
        self.insert_new(key, version, expires);
        evicted
    }

    /// Marks `key` used, as a database's buffer pool does with a page (no version, no
    /// TTL); returns whether it was held (a hit). A miss loads it, evicting the least
    /// recently used page (FIFO: the oldest) when full. LRU and FIFO stores only.
    #[inline]
    pub fn touch(&mut self, key: u64) -> bool {
        debug_assert!(matches!(self.policy, Eviction::Lru | Eviction::Fifo));
        if let Lookup::Hit(_) = self.get(key, SimTime::ZERO) {
            return true;
        }
        if self.capacity == 0 {
            return false;
        }
        if self.len >= self.capacity && self.tail != NIL {
            self.remove_slot(self.tail);
        }
        self.insert_new(key, 0, SimTime::MAX);
        false
    }

    /// Adds an entry for `key`, which is absent and has room.
    #[inline(always)]
    fn insert_new(&mut self, key: u64, version: u64, expires: SimTime) {
        let s = self.handle(key);
        let e = &mut self.ents[s as usize];
        debug_assert!(!e.live);
        e.version = version;
        e.expires = expires;
        e.prev = NIL;
        e.next = NIL;
        e.live = true;
        self.len += 1;
        match self.policy {
            Eviction::Lru | Eviction::Fifo => self.push_front(s),
            Eviction::Random => {
                self.ents[s as usize].prev = self.dense.len() as u32;
                self.dense.push(s);
            }
            Eviction::Lfu => {
                self.seq += 1;
                self.ents[s as usize].prev = 1;
                self.lfu.push(s, Reverse((1, self.seq)));
            }
        }
    }

    /// Changes the version of an entry that is present; returns whether it was.
    pub fn set_version(&mut self, key: u64, version: u64) -> bool {
        match self.slot_of(key) {
            Some(s) => {
                self.ents[s as usize].version = version;
                true
            }
            None => false,
        }
    }

    /// Removes `key`; returns whether it was present.
    pub fn remove(&mut self, key: u64) -> bool {
        match self.slot_of(key) {
            Some(s) => {
                self.remove_slot(s);
                true
            }
            None => false,
        }
    }

    /// Drops every entry and every owner's word (a restart); keeps the memory for reuse.
    pub fn clear(&mut self) {
        self.ents.truncate(self.direct as usize);
        self.ents.iter_mut().for_each(|e| *e = Entry::default());
        self.keys.clear();
        self.map.clear();
        self.free.clear();
        self.dense.clear();
        self.lfu.clear();
        self.head = NIL;
        self.tail = NIL;
        self.len = 0;
    }

    fn victim(&mut self, rng: &mut Rng) -> Option<u32> {
        match self.policy {
            Eviction::Lru | Eviction::Fifo => (self.tail != NIL).then_some(self.tail),
            Eviction::Random => {
                (!self.dense.is_empty()).then(|| self.dense[rng.random_range(0..self.dense.len())])
            }
            Eviction::Lfu => self.lfu.peek().map(|(&s, _)| s),
        }
    }

    fn remove_slot(&mut self, s: u32) {
        debug_assert!(self.ents[s as usize].live);
        match self.policy {
            Eviction::Lru | Eviction::Fifo => self.unlink(s),
            Eviction::Random => {
                let pos = self.ents[s as usize].prev as usize;
                self.dense.swap_remove(pos);
                if let Some(&moved) = self.dense.get(pos) {
                    self.ents[moved as usize].prev = pos as u32;
                }
            }
            Eviction::Lfu => {
                self.lfu.remove(&s);
            }
        }
        self.ents[s as usize].live = false;
        self.release(s);
        self.len -= 1;
    }

    fn unlink(&mut self, s: u32) {
        let (p, n) = {
            let e = &self.ents[s as usize];
            (e.prev, e.next)
        };
        if p == NIL {
            self.head = n;
        } else {
            self.ents[p as usize].next = n;
        }
        if n == NIL {
            self.tail = p;
        } else {
            self.ents[n as usize].prev = p;
        }
        let e = &mut self.ents[s as usize];
        e.prev = NIL;
        e.next = NIL;
    }

    fn push_front(&mut self, s: u32) {
        let old = self.head;
        {
            let e = &mut self.ents[s as usize];
            e.prev = NIL;
            e.next = old;
        }
        if old == NIL {
            self.tail = s;
        } else {
            self.ents[old as usize].prev = s;
        }
        self.head = s;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dssim_engine::rng::stream;

    const NEVER: SimTime = SimTime::MAX;

    fn fill(policy: Eviction, cap: u64, keys: &[u64]) -> (Store, Vec<Option<u64>>) {
        let mut s = Store::new(policy, cap);
        let mut r = stream(1, "store");
        let ev = keys
            .iter()
            .map(|&k| s.insert(k, k, NEVER, &mut r))
            .collect();
        (s, ev)
    }

    #[test]
    fn lru_evicts_the_least_recently_used() {
        let (mut s, ev) = fill(Eviction::Lru, 2, &[1, 2]);
        assert_eq!(ev, vec![None, None]);
        assert_eq!(s.get(1, SimTime::ZERO), Lookup::Hit(1));
        let mut r = stream(1, "x");
        assert_eq!(s.insert(3, 3, NEVER, &mut r), Some(2));
        assert_eq!(s.get(2, SimTime::ZERO), Lookup::Miss);
        assert_eq!(s.insert(4, 4, NEVER, &mut r), Some(1));
        assert_eq!(s.len(), 2);
    }

    #[test]
    fn fifo_ignores_hits() {
        let (mut s, _) = fill(Eviction::Fifo, 2, &[1, 2]);
        assert_eq!(s.get(1, SimTime::ZERO), Lookup::Hit(1));
        let mut r = stream(1, "x");
        assert_eq!(s.insert(3, 3, NEVER, &mut r), Some(1));
    }

    #[test]
    fn lfu_evicts_the_least_frequent_then_the_oldest() {
        let (mut s, _) = fill(Eviction::Lfu, 3, &[1, 2, 3]);
        s.get(1, SimTime::ZERO);
        s.get(1, SimTime::ZERO);
        s.get(3, SimTime::ZERO);
        let mut r = stream(1, "x");
        assert_eq!(s.insert(4, 4, NEVER, &mut r), Some(2));
        assert_eq!(s.insert(5, 5, NEVER, &mut r), Some(4));
        assert_eq!(s.peek(1), Some(1));
    }

    #[test]
    fn random_keeps_its_index_consistent() {
        let mut s = Store::new(Eviction::Random, 50);
        let mut r = stream(2, "x");
        for k in 0..10_000u64 {
            s.insert(k % 300, k, NEVER, &mut r);
            if k % 7 == 0 {
                s.remove(k % 300);
            }
            assert!(s.len() <= 50);
        }
        // Every dense position points back at a live entry that knows its position.
        for (i, &slot) in s.dense.iter().enumerate() {
            let e = &s.ents[slot as usize];
            assert!(e.live);
            assert_eq!(e.prev as usize, i);
            assert_eq!(s.slot_of(s.key_of(slot)), Some(slot));
        }
        assert_eq!(s.dense.len(), s.len());
    }

    /// Keys that are their own handles and keys given one by the map answer alike, under
    /// every policy: the handles never show.
    #[test]
    fn own_handles_and_mapped_handles_answer_alike() {
        for policy in [
            Eviction::Lru,
            Eviction::Lfu,
            Eviction::Fifo,
            Eviction::Random,
        ] {
            for direct in [40, 150, 400] {
                let mut a = Store::new(policy, 60);
                let mut b = Store::with_keys(policy, 60, direct);
                let (mut ra, mut rb) = (stream(3, "a"), stream(3, "a"));
                let mut ops = stream(4, "ops");
                for i in 0..30_000u64 {
                    let k = ops.random_range(0..300u64);
                    let now = SimTime(i);
                    match ops.random_range(0..10) {
                        0..=3 => assert_eq!(a.get(k, now), b.get(k, now)),
                        4..=6 => {
                            let exp = SimTime(i + ops.random_range(1..500));
                            assert_eq!(a.insert(k, i, exp, &mut ra), b.insert(k, i, exp, &mut rb));
                        }
                        7 => assert_eq!(a.remove(k), b.remove(k)),
                        8 => {
                            let x = ops.random_range(0..3u32);
                            a.set_aux(k, x);
                            b.set_aux(k, x);
                        }
                        _ => {
                            if matches!(policy, Eviction::Lru | Eviction::Fifo) {
                                assert_eq!(a.touch(k), b.touch(k));
                            } else if i % 5_000 == 9 {
                                a.clear();
                                b.clear();
                            }
                        }
                    }
                    assert_eq!(
                        (a.aux(k), a.peek(k)),
                        (b.aux(k), b.peek(k)),
                        "{policy:?} {i}"
                    );
                    assert_eq!(a.len(), b.len());
                }
            }
        }
    }

    #[test]
    fn an_entry_is_a_half_cache_line() {
        assert_eq!(std::mem::size_of::<Entry>(), 32);
    }

    #[test]
    fn a_buffer_pool_touch_is_lru_without_ttl() {
        let mut l = Store::new(Eviction::Lru, 2);
        assert!(!l.touch(1));
        assert!(!l.touch(2));
        assert!(l.touch(1));
        assert!(!l.touch(3)); // evicts 2
        assert!(l.touch(1));
        assert!(!l.touch(2));
        assert!(!l.touch(3)); // 3 was evicted by 2 (1 was used more recently)
        assert_eq!(l.len(), 2);
        let mut z = Store::new(Eviction::Lru, 0);
        assert!(!z.touch(1));
        assert!(!z.touch(1));
    }

    #[test]
    fn dense_ids_and_large_ids_map_alike() {
        let mut m: DenseMap<u64> = DenseMap::default();
        let big = u64::MAX - 3;
        // 70,000 first goes to the map (few writes yet), then moves into the vector.
        for k in [0, 5, 70_000, 3_000_000, big] {
            assert_eq!(m.value(k), 0);
            m.insert(k, k + 1);
            *m.entry(k) += 1;
            assert_eq!(m.value(k), k.wrapping_add(2));
        }
        assert!(m.dense.len() < 70_000 && m.sparse.len() == 3);
        for k in 100..66_000 {
            m.insert(k, 1);
        }
        assert!(m.dense.len() > 70_000 && m.sparse.len() == 2);
        assert_eq!(m.value(70_000), 70_002);
        assert_eq!(m.value(6), 0);
        assert_eq!(m.remove(5), 7);
        assert_eq!(m.remove(5), 0);
        assert_eq!(m.remove(big), big.wrapping_add(2));
        assert_eq!(m.value(big), 0);
        m.clear();
        assert_eq!(m.value(0), 0);
        assert_eq!(m.value(70_000), 0);
        assert_eq!(m.value(3_000_000), 0);
    }

    #[test]
    fn the_owners_word_outlives_the_entry_until_clear() {
        let mut s = Store::new(Eviction::Lru, 1);
        let mut r = stream(1, "x");
        s.set_aux(7, 3);
        assert_eq!((s.aux(7), s.peek(7)), (3, None));
        s.insert(7, 1, NEVER, &mut r);
        assert_eq!((s.aux(7), s.peek(7)), (3, Some(1)));
        assert_eq!(s.insert(8, 2, NEVER, &mut r), Some(7));
        assert_eq!((s.aux(7), s.peek(7), s.aux(8)), (3, None, 0));
        s.set_aux(8, 5);
        s.set_aux(7, 0);
        assert_eq!((s.aux(7), s.aux(8), s.peek(8)), (0, 5, Some(2)));
        assert!(s.remove(8));
        assert_eq!((s.aux(8), s.peek(8)), (5, None));
        s.insert(9, 9, NEVER, &mut r);
        s.clear();
        assert_eq!((s.aux(8), s.peek(9), s.len()), (0, None, 0));
    }

    #[test]
    fn reserve_makes_ids_dense_at_once() {
        let mut m: DenseMap<u64> = DenseMap::default();
        m.insert(90_000, 1);
        assert!(m.dense.len() < 90_000 && m.sparse.len() == 1);
        m.reserve(100_000);
        assert!(m.dense.len() >= 100_000 && m.sparse.is_empty());
        assert_eq!((m.value(90_000), m.value(99_999)), (1, 0));
        // At most 16 MiB: 262,144 values of 64 bytes.
        let mut big: DenseMap<[u128; 4]> = DenseMap::default();
        big.reserve(1 << 20);
        assert_eq!(big.dense.len(), 1 << 18);
    }

    #[test]
    fn ttl_expires_lazily_and_updates_restart_it() {
        let mut s = Store::new(Eviction::Lru, 10);
        let mut r = stream(1, "x");
        s.insert(7, 1, SimTime(100), &mut r);
        assert_eq!(s.get(7, SimTime(99)), Lookup::Hit(1));
        assert_eq!(s.get(7, SimTime(100)), Lookup::Expired);
        assert_eq!(s.get(7, SimTime(100)), Lookup::Miss);
        assert!(s.is_empty());
    }

    #[test]
    fn zero_capacity_holds_nothing_and_clear_empties() {
        let (mut s, _) = fill(Eviction::Lru, 0, &[1, 2]);
        assert_eq!(s.get(1, SimTime::ZERO), Lookup::Miss);
        let (mut s2, _) = fill(Eviction::Lfu, 5, &[1, 2, 3]);
        s2.clear();
        assert!(s2.is_empty());
        assert_eq!(s2.get(1, SimTime::ZERO), Lookup::Miss);
        let mut r = stream(1, "x");
        s2.insert(9, 9, NEVER, &mut r);
        assert_eq!(s2.get(9, SimTime::ZERO), Lookup::Hit(9));
        s.clear();
    }
}

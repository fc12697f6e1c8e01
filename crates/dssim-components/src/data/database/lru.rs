//! The buffer pool's LRU of pages.

use std::collections::HashMap;

pub(super) const NIL: u32 = u32::MAX;

/// An LRU set of keys with O(1) touch (a hash index over an intrusive list in a `Vec`).
#[derive(Clone, Debug)]
pub struct Lru {
    cap: usize,
    index: HashMap<u64, u32>,
    slots: Vec<(u64, u32, u32)>,
    head: u32,
    tail: u32,
}

impl Lru {
    /// An empty LRU holding at most `cap` keys.
    pub fn new(cap: u64) -> Self {
        Lru {
            cap: cap.min(u64::from(u32::MAX - 1)) as usize,
            index: HashMap::new(),
            slots: Vec::new(),
            head: NIL,
            tail: NIL,
        }
    }

    pub(super) fn unlink(&mut self, i: u32) {
        let (_, p, n) = self.slots[i as usize];
        if p != NIL {
            self.slots[p as usize].2 = n;
        } else {
            self.head = n;
        }
        if n != NIL {
            self.slots[n as usize].1 = p;
        } else {
            self.tail = p;
        }
    }

    pub(super) fn push_front(&mut self, i: u32) {
        self.slots[i as usize].1 = NIL;
        self.slots[i as usize].2 = self.head;
        if self.head != NIL {
            self.slots[self.head as usize].1 = i;
        }
        self.head = i;
        if self.tail == NIL {
            self.tail = i;
        }
    }

    /// Marks `key` used; returns whether it was held (a hit). A miss loads it, evicting
    /// the least recently used key when full.
    pub fn touch(&mut self, key: u64) -> bool {
        if self.cap == 0 {
            return false;
        }
        if let Some(&i) = self.index.get(&key) {
            if self.head != i {
                self.unlink(i);
                self.push_front(i);
            }
            return true;
        }
        let i = if self.slots.len() < self.cap {
            self.slots.push((key, NIL, NIL));
            (self.slots.len() - 1) as u32
        } else {
            let t = self.tail;
            self.unlink(t);
            let old = self.slots[t as usize].0;
            self.index.remove(&old);
            self.slots[t as usize].0 = key;
            t
        };
        self.index.insert(key, i);
        self.push_front(i);
        false
    }
}

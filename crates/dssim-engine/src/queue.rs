//! The event queue: a binary heap ordered by `(time, seq)`.
//!
//! Equal times pop in the order they were scheduled (first in, first out), so a run is a
//! pure function of its configuration and seed. Cancelled timers stay in the heap and are
//! skipped when popped, which keeps cancellation O(log n) without a keyed heap.
//!
//! Events scheduled for the current instant (zero-delay messages: a local call, an ideal
//! network) skip the heap and wait in a FIFO. The order is still exactly `(time, seq)`:
//! every heap event due now was pushed before the clock reached now, so it has a smaller
//! `seq` than anything in the FIFO and pops first; the FIFO itself is in `seq` order.

use std::collections::{BTreeSet, VecDeque};

use crate::time::SimTime;

/// Index of an actor in the simulation.
pub type ActorId = u32;

/// A handle to a scheduled event, usable to cancel it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TimerId(pub u64);

/// One scheduled delivery of `msg` to actor `to` at `time`.
#[derive(Debug)]
pub struct Event<M> {
    /// When it happens.
    pub time: SimTime,
    /// Insertion counter: breaks ties between equal times in scheduling order.
    pub seq: u64,
    /// The receiving actor.
    pub to: ActorId,
    /// The payload.
    pub msg: M,
}

impl<M> Event<M> {
    /// `(time, seq)` as one integer: comparing it is one branch-free wide compare instead
    /// of two chained ones.
    #[inline(always)]
    fn key(&self) -> u128 {
        (u128::from(self.time.0) << 64) | u128::from(self.seq)
    }
}

/// A binary min-heap of events on their `(time, seq)` key. Keys are unique, so the order
/// events leave in is fully determined by the keys, whatever the heap's layout.
#[derive(Debug)]
struct MinHeap<M> {
    data: Vec<Event<M>>,
}

impl<M> MinHeap<M> {
    fn with_capacity(n: usize) -> Self {
        MinHeap {
            data: Vec::with_capacity(n),
        }
    }

    #[inline(always)]
    fn peek(&self) -> Option<&Event<M>> {
        self.data.first()
    }

    #[inline(always)]
    fn push(&mut self, ev: Event<M>) {
        let key = ev.key();
        let mut i = self.data.len();
        self.data.push(ev);
        while i > 0 {
            let parent = (i - 1) / 2;
            if self.data[parent].key() <= key {
                break;
            }
            self.data.swap(parent, i);
            i = parent;
        }
    }

    #[inline(always)]
    fn pop(&mut self) -> Option<Event<M>> {
        let last = self.data.pop()?;
        if self.data.is_empty() {
            return Some(last);
        }
        let key = last.key();
        let top = std::mem::replace(&mut self.data[0], last);
        let n = self.data.len();
        let mut i = 0;
        loop {
            let left = 2 * i + 1;
            if left >= n {
                break;
            }
            let right = left + 1;
            let child = if right < n && self.data[right].key() < self.data[left].key() {
                right
            } else {
                left
            };
            if key <= self.data[child].key() {
                break;
            }
            self.data.swap(i, child);
            i = child;
        }
        Some(top)
    }

    fn len(&self) -> usize {
        self.data.len()
    }

    fn is_empty(&self) -> bool {
        self.data.is_empty()
    }
}

/// The future event list.
#[derive(Debug)]
pub struct EventQueue<M> {
    heap: MinHeap<M>,
    /// Events due at `current`, pushed while the clock read `current`, in `seq` order.
    now: VecDeque<Event<M>>,
    /// The time of the last event popped.
    current: SimTime,
    next_seq: u64,
    cancelled: BTreeSet<u64>,
}

impl<M> Default for EventQueue<M> {
    fn default() -> Self {
        Self::new()
    }
}

impl<M> EventQueue<M> {
    /// An empty queue.
    pub fn new() -> Self {
        EventQueue {
            heap: MinHeap::with_capacity(1024),
            now: VecDeque::with_capacity(64),
            current: SimTime::ZERO,
            next_seq: 0,
            cancelled: BTreeSet::new(),
        }
    }

    /// Schedules `msg` for `to` at `time`; the returned id can cancel it.
    #[inline(always)]
    pub fn push(&mut self, time: SimTime, to: ActorId, msg: M) -> TimerId {
        let seq = self.next_seq;
        self.next_seq += 1;
        let ev = Event { time, seq, to, msg };
        if time == self.current {
            self.now.push_back(ev);
        } else {
            self.heap.push(ev);
        }
        TimerId(seq)
    }

    /// Cancels a scheduled event; cancelling one that already fired is harmless.
    pub fn cancel(&mut self, id: TimerId) {
        if id.0 < self.next_seq {
            self.cancelled.insert(id.0);
        }
    }

    /// The time of the next live event, if any.
    pub fn peek_time(&mut self) -> Option<SimTime> {
        self.skip_cancelled();
        if self.now.is_empty() {
            self.heap.peek().map(|e| e.time)
        } else {
            Some(self.current)
        }
    }

    /// Removes and returns the next live event.
    #[inline]
    pub fn pop(&mut self) -> Option<Event<M>> {
        self.skip_cancelled();
        self.pop_any()
    }

    /// Removes and returns the next live event if it is due at or before `t`.
    #[inline(always)]
    pub fn pop_due(&mut self, t: SimTime) -> Option<Event<M>> {
        self.skip_cancelled();
        if !self.now.is_empty() {
            // The FIFO holds events at `current`; a heap event due then has a smaller seq.
            if self.current > t {
                return None;
            }
            if self.heap.peek().is_some_and(|e| e.time == self.current) {
                return self.heap.pop();
            }
            return self.now.pop_front();
        }
        if self.heap.peek()?.time > t {
            return None;
        }
        let ev = self.heap.pop()?;
        self.current = ev.time;
        Some(ev)
    }

    /// The next event, cancelled or not: heap events due now first (smaller `seq`), then
    /// the FIFO of now, then the heap.
    #[inline]
    fn pop_any(&mut self) -> Option<Event<M>> {
        if !self.now.is_empty() {
            if self.heap.peek().is_some_and(|e| e.time == self.current) {
                return self.heap.pop();
            }
            return self.now.pop_front();
        }
        let ev = self.heap.pop()?;
        self.current = ev.time;
        Some(ev)
    }

    /// The `seq` of the event [`Self::pop_any`] would return.
    #[inline]
    fn next_seq_due(&self) -> Option<u64> {
        match (self.now.front(), self.heap.peek()) {
            (Some(f), Some(h)) if h.time == self.current => Some(h.seq.min(f.seq)),
            (Some(f), _) => Some(f.seq),
            (None, Some(h)) => Some(h.seq),
            (None, None) => None,
        }
    }

    #[inline(always)]
    fn skip_cancelled(&mut self) {
        if !self.cancelled.is_empty() {
            self.skip_cancelled_slow();
        }
    }

    /// Pops cancelled events off the front; kept out of line so the common case (nothing
    /// cancelled) costs one test in the hot loop.
    #[inline(never)]
    fn skip_cancelled_slow(&mut self) {
        while let Some(seq) = self.next_seq_due() {
            if self.cancelled.remove(&seq) {
                self.pop_any();
            } else {
                break;
            }
        }
    }

    /// Events waiting (cancelled ones not yet skipped included).
    pub fn len(&self) -> usize {
        self.heap.len() + self.now.len()
    }

    /// Whether nothing is scheduled.
    pub fn is_empty(&self) -> bool {
        self.heap.is_empty() && self.now.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_times_pop_fifo_and_cancel_skips() {
        let mut q = EventQueue::new();
        q.push(SimTime(5), 0, 'a');
        let b = q.push(SimTime(5), 0, 'b');
        q.push(SimTime(5), 0, 'c');
        q.push(SimTime(1), 0, 'z');
        q.cancel(b);
        let order: Vec<char> = std::iter::from_fn(|| q.pop().map(|e| e.msg)).collect();
        assert_eq!(order, vec!['z', 'a', 'c']);
    }

    /// Events pushed for the current instant (the FIFO) still pop in `(time, seq)` order
    /// behind heap events due at the same time, and can be cancelled.
    #[test]
    fn zero_delay_events_keep_time_seq_order() {
        let mut q = EventQueue::new();
        q.push(SimTime(5), 0, 1);
        q.push(SimTime(5), 0, 2);
        q.push(SimTime(9), 0, 9);
        assert_eq!(q.pop().map(|e| e.msg), Some(1)); // clock at 5
        q.push(SimTime(5), 0, 3); // due now: after 2, which was scheduled earlier
        let x = q.push(SimTime(5), 0, 4);
        q.push(SimTime(5), 0, 5);
        q.cancel(x);
        assert_eq!(q.len(), 5);
        assert_eq!(q.peek_time(), Some(SimTime(5)));
        let order: Vec<u32> = std::iter::from_fn(|| q.pop().map(|e| e.msg)).collect();
        assert_eq!(order, vec![2, 3, 5, 9]);
        assert!(q.is_empty());
    }
}

//! The event queue: a binary heap ordered by `(time, seq)`.
//!
//! Equal times pop in the order they were scheduled (first in, first out), so a run is a
//! pure function of its configuration and seed. Cancelled timers stay in the heap and are
//! skipped when popped, which keeps cancellation O(log n) without a keyed heap.

use std::cmp::Ordering;
use std::collections::{BTreeSet, BinaryHeap};

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

impl<M> PartialEq for Event<M> {
    fn eq(&self, other: &Self) -> bool {
        self.time == other.time && self.seq == other.seq
    }
}
impl<M> Eq for Event<M> {}
impl<M> PartialOrd for Event<M> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl<M> Ord for Event<M> {
    // Reversed: BinaryHeap is a max-heap and we want the earliest event on top.
    fn cmp(&self, other: &Self) -> Ordering {
        other
            .time
            .cmp(&self.time)
            .then_with(|| other.seq.cmp(&self.seq))
    }
}

/// The future event list.
#[derive(Debug)]
pub struct EventQueue<M> {
    heap: BinaryHeap<Event<M>>,
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
            heap: BinaryHeap::with_capacity(1024),
            next_seq: 0,
            cancelled: BTreeSet::new(),
        }
    }

    /// Schedules `msg` for `to` at `time`; the returned id can cancel it.
    #[inline]
    pub fn push(&mut self, time: SimTime, to: ActorId, msg: M) -> TimerId {
        let seq = self.next_seq;
        self.next_seq += 1;
        self.heap.push(Event { time, seq, to, msg });
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
        self.heap.peek().map(|e| e.time)
    }

    /// Removes and returns the next live event.
    #[inline]
    pub fn pop(&mut self) -> Option<Event<M>> {
        self.skip_cancelled();
        self.heap.pop()
    }

    #[inline]
    fn skip_cancelled(&mut self) {
        if self.cancelled.is_empty() {
            return;
        }
        while let Some(top) = self.heap.peek() {
            if self.cancelled.remove(&top.seq) {
                self.heap.pop();
            } else {
                break;
            }
        }
    }

    /// Events waiting (cancelled ones not yet skipped included).
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    /// Whether nothing is scheduled.
    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
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
}

//! Deadlines that cost almost nothing until they are reached.
//!
//! A client gives every attempt the same timeout, so its deadlines come in order: a FIFO
//! holds them, and only its head has an event in the queue. Answering an attempt touches
//! neither: the entry goes stale where it lies (the caller's `live` test says so) and is
//! dropped when it reaches the head or in a sweep. So arming and disarming are O(1), the
//! event queue holds one wake-up per FIFO instead of one event per attempt, and the FIFO
//! holds O(attempts in flight) entries: it is swept once it has grown to twice the live
//! entries of the last sweep (amortised O(1) per push).
//!
//! ```text
//!   push(d) --> [ d1 d2 d3 ... ]      one wake-up armed for the head's (time, seq)
//!                 ^ stale heads are dropped when the wake-up fires
//! ```
//!
//! Each deadline is a [`Deadline`] stamped when it is set ([`crate::Ctx::deadline`]):
//! the wake-up is scheduled under that stamp, so a deadline that is reached fires exactly
//! where a timer set at that moment would have, in the same `(time, seq)` order.

use crate::head_vec::HeadVec;
use crate::queue::Deadline;

/// Sweeps start once the FIFO holds this many entries.
const MIN_SWEEP: usize = 64;

/// A FIFO of in-order deadlines with at most one wake-up armed, for its head.
///
/// The entries are a [`HeadVec`] rather than a `VecDeque` (see there): M/M/1 250 s with a
/// 1 s client timeout: 321.7 -> 318.7 M instructions; 5 M customers, `taskset -c 0`, six
/// interleaved rounds: 0.638-0.652 -> 0.608-0.624 CPU s (60 s timeout: 0.641-0.680 ->
/// 0.611-0.646); outputs byte-identical.
#[derive(Debug)]
pub struct DeadlineFifo<T> {
    items: HeadVec<(Deadline, T)>,
    /// The deadline of the wake-up in the queue, if one is.
    armed: Option<Deadline>,
    /// The length that triggers the next sweep of stale entries.
    sweep_at: usize,
}

impl<T> Default for DeadlineFifo<T> {
    fn default() -> Self {
        DeadlineFifo {
            items: HeadVec::default(),
            armed: None,
            sweep_at: MIN_SWEEP,
        }
    }
}

impl<T: Copy> DeadlineFifo<T> {
    /// An empty FIFO with nothing armed.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `item`, due at `d`; deadlines must come in order (a constant timeout).
    /// Returns the deadline to schedule a wake-up for when none is armed (the head's).
    /// Entries `live` rejects are swept first once the FIFO has doubled since the last
    /// sweep.
    ///
    /// Inlined at its callers, the sweep out of line ([`Self::sweep`]): as a call it paid a
    /// prologue and an epilogue per push, ~21 of its ~74 instructions (M/M/1 250 s with a
    /// 1 s client timeout: 355.5 -> 349.3 M instructions, 1,777 -> 1,746 a customer; 5 M
    /// customers, taskset -c 0: 0.69 -> 0.63-0.64 CPU s; outputs byte-identical).
    #[inline(always)]
    pub fn push(
        &mut self,
        d: Deadline,
        item: T,
        mut live: impl FnMut(&T) -> bool,
    ) -> Option<Deadline> {
        debug_assert!(
            self.items.back().is_none_or(|(b, _)| *b <= d),
            "deadlines must come in order"
        );
        // The head is the oldest entry, usually answered by now: dropping it here keeps
        // the FIFO at about the attempts in flight without a sweep where answers come
        // back in order. The sweep bounds it where they do not (one slow attempt).
        if self.front().is_some_and(|(_, t)| !live(t)) {
            self.pop_front();
        }
        if self.len() >= self.sweep_at {
            self.sweep(live);
        }
        self.items.push_back((d, item));
        self.arm()
    }

    /// Drops the entries `live` rejects; the next sweep comes once the FIFO has doubled.
    #[inline(never)]
    fn sweep(&mut self, mut live: impl FnMut(&T) -> bool) {
        self.items.retain(|(_, t)| live(t));
        self.sweep_at = (2 * self.items.len()).max(MIN_SWEEP);
    }

    #[inline(always)]
    fn front(&self) -> Option<&(Deadline, T)> {
        self.items.front()
    }

    /// Drops the head entry (there is one).
    #[inline(always)]
    fn pop_front(&mut self) {
        self.items.pop_front_nonempty();
    }

    /// The armed wake-up came: returns the item whose deadline it was, if `live` still
    /// holds for it, and drops the stale entries in front of it. Call [`Self::rearm`]
    /// once the item is dealt with.
    pub fn fire(&mut self, mut live: impl FnMut(&T) -> bool) -> Option<T> {
        let fired = self.armed.take()?;
        while let Some(&(d, t)) = self.front() {
            if !live(&t) {
                self.pop_front();
                continue;
            }
            if d == fired {
                self.pop_front();
                return Some(t);
            }
            // Every entry was pushed after the head the wake-up was armed for, so a live
            // head that is not it is due later.
            debug_assert!(d > fired);
            break;
        }
        None
    }

    /// Drops stale heads and returns the deadline to schedule a wake-up for, if the FIFO
    /// holds any and none is armed.
    pub fn rearm(&mut self, mut live: impl FnMut(&T) -> bool) -> Option<Deadline> {
        if self.armed.is_some() {
            return None;
        }
        while self.front().is_some_and(|(_, t)| !live(t)) {
            self.pop_front();
        }
        self.arm()
    }

    #[inline(always)]
    fn arm(&mut self) -> Option<Deadline> {
        if self.armed.is_some() {
            return None;
        }
        let d = self.front()?.0;
        self.armed = Some(d);
        Some(d)
    }

    /// Entries held, stale ones not yet dropped included.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether no entry is held.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Whether a wake-up is in the queue.
    pub fn armed(&self) -> bool {
        self.armed.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::EventQueue;
    use crate::time::SimTime;

    /// A million deadlines at a constant timeout, each answered a few steps after it was
    /// set: the FIFO stays at a small multiple of those in flight, one wake-up at a time.
    #[test]
    fn holds_only_deadlines_in_flight() {
        let mut q: EventQueue<()> = EventQueue::new();
        let mut f: DeadlineFifo<u64> = DeadlineFifo::new();
        let mut answered_below = 0u64; // ids below are answered
        let mut arms = 0;
        let mut most = 0;
        for id in 0..1_000_000u64 {
            let d = q.stamp(SimTime(id + 3_600_000_000_000));
            if f.push(d, id, |&x| x >= answered_below).is_some() {
                arms += 1;
            }
            answered_below = id.saturating_sub(4);
            most = most.max(f.len());
        }
        assert!(most <= 2 * 5 + MIN_SWEEP, "{most}");
        assert_eq!(arms, 1);
        assert!(f.armed());
    }

    /// The wake-up fires for the head; an answered head is skipped and the next live one
    /// armed; a live head due at the wake-up is handed back once.
    #[test]
    fn fires_live_heads_and_skips_stale_ones() {
        let mut q: EventQueue<()> = EventQueue::new();
        let mut f: DeadlineFifo<u32> = DeadlineFifo::new();
        let live = |x: &u32| *x != 1; // attempt 1 was answered
        let d0 = q.stamp(SimTime(10));
        let d1 = q.stamp(SimTime(11));
        let d2 = q.stamp(SimTime(12));
        assert_eq!(f.push(d0, 0, live), Some(d0));
        assert_eq!(f.push(d1, 1, live), None);
        assert_eq!(f.push(d2, 2, live), None);
        assert_eq!(f.fire(live), Some(0));
        assert_eq!(f.rearm(live), Some(d2)); // 1 is stale: skipped
        assert_eq!(f.len(), 1);
        assert_eq!(f.fire(|_| false), None); // answered meanwhile
        assert_eq!(f.rearm(live), None);
        assert!(f.is_empty() && !f.armed());
        assert_eq!(f.fire(live), None); // nothing armed
    }
}

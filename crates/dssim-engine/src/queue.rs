//! The event queue: a 4-ary min-heap ordered by `(time, seq)`.
//!
//! It is a heap of its own, not the `priority-queue` crate the components use for keyed
//! priorities (LFU eviction): events are never re-prioritised or removed by key (cancelled
//! timers are tombstones, below), so that crate's key index would cost a hash-map insert
//! and removal per event on the hottest path for a feature this queue does not need (a
//! design argument: the two were not benchmarked against each other).
//!
//! Equal times pop in the order they were scheduled (first in, first out), so a run is a
//! pure function of its configuration and seed. Cancelled timers stay in the heap and are
//! skipped when popped, which keeps cancellation O(log n) without a keyed heap. A timer's
//! id is its `(time, seq)` key, and events leave in key order, so cancelling a timer that
//! already fired is recognised (its key is not after the last one popped) and leaves
//! nothing behind; the tombstone of a pending one is removed when that event comes up,
//! and the hot loop compares the next key with the smallest tombstone, one integer test.
//!
//! Timers for timeouts that are almost never reached (a client's deadline per attempt)
//! need not be events at all: [`EventQueue::stamp`] reserves the `seq` such a timer would
//! have had, and [`EventQueue::push_stamped`] schedules it later under that key, so a
//! component can keep its deadlines in a FIFO of its own ([`crate::DeadlineFifo`]) with
//! one event armed for the head, and each deadline still fires exactly where a timer set
//! at the reservation would have: the same `(time, seq)` order as before.
//!
//! Events scheduled for the current instant (zero-delay messages: a local call, an ideal
//! network) skip the heap and wait in a FIFO. The order is still exactly `(time, seq)`:
//! every heap event due now was pushed before the clock reached now, so it has a smaller
//! `seq` than anything in the FIFO and pops first; the FIFO itself is in `seq` order.

use std::collections::BTreeSet;

use crate::head_vec::HeadVec;
use crate::time::SimTime;

/// Index of an actor in the simulation.
pub type ActorId = u32;

/// A handle to a scheduled event, usable to cancel it: the event's `(time, seq)` key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TimerId {
    /// When the event is due.
    pub time: SimTime,
    /// Its insertion counter.
    pub seq: u64,
}

impl TimerId {
    #[inline(always)]
    fn key(self) -> u128 {
        key(self.time, self.seq)
    }
}

/// A deadline reserved now: the time it is due and the `seq` a timer set now would have
/// had. Scheduled later with [`EventQueue::push_stamped`], it fires where that timer would.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Deadline {
    /// When it is due.
    pub at: SimTime,
    /// The reserved insertion counter (ties at `at` break on it).
    pub seq: u64,
}

/// `(time, seq)` as one integer.
#[inline(always)]
fn key(time: SimTime, seq: u64) -> u128 {
    (u128::from(time.0) << 64) | u128::from(seq)
}

/// One scheduled delivery of `msg` to actor `to` at `time`.
#[derive(Clone, Copy, Debug)]
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
        key(self.time, self.seq)
    }
}

/// Children per node of [`MinHeap`]: a 4-ary heap is half as deep as a binary one and a
/// node's children sit side by side, so a pop touches fewer cache lines.
const ARITY: usize = 4;

/// A 4-ary min-heap of events on their `(time, seq)` key. Keys are unique, so the order
/// events leave in is fully determined by the keys, whatever the heap's layout (or arity).
///
/// Hand-written because it beats std's `BinaryHeap` here: a hold operation (pop the next
/// event, push one up to 2 ms later, 40-byte events) costs 28 / 33 / 43 ns of CPU with
/// 300 / 1,000 / 5,000 events pending, against 46 / 50.5 / 74 ns for `BinaryHeap` of the
/// same tuples and 52.5 / 63.5 / 82 ns for this heap with a textbook sift-down (one
/// micro-benchmark, CPU time, on a shared and loaded machine; the same figures again on
/// Dec 7: 27.5 / 33 / 43 ns).
///
/// Tried on Dec 7 and not kept (`heap_hold`, CPU seconds per 20 M holds, interleaved with
/// this heap, one core of a loaded machine):
/// - 32-byte events (`to` packed into the `seq` word) with the vector offset so every
///   node's four children fill two aligned cache lines: 1.13 / 1.40 / 5.3 s against 1.19 /
///   1.64 / 6.6 s with 20 k / 50 k / 200 k events pending, equal at 300–3,000; but the
///   production model (about 300 pending: 267–369 over 20 s at 5,800/s) ran no faster,
///   the M/M/1 took 12 more instructions a customer, and a run would have had to stop at
///   2^24 actors or 2^39 keys.
/// - Keys only (16 bytes, four children on one cache line) with the actors and messages
///   in a slab: no faster with 1,000 / 3,000 / 20,000 pending (0.71 / 0.88 / 1.23 s
///   against 0.67 / 0.88 / 1.23 s): at these sizes the pop is bound by the chain of
///   compares down the levels, not by memory.
/// - An 8-ary heap (three-round tournament): 1.55 / 2.7 s against 2.05 / 4.6 s with 50 k /
///   200 k pending, but 7% more instructions and 2–3% more CPU time on the production
///   model (callgrind, and six interleaved rounds).
///
/// Tried later on Dec 7 and not kept: a two-tier queue. It had a calendar for the near
/// future, which was a ring of buckets with a bitmap of the non-empty ones, each bucket
/// kept sorted by key. Events due beyond the ring's horizon went to this heap. The next
/// event was the smaller of the two fronts, and the tiers never exchanged events. It kept
/// exact `(time, seq)` order (checked against a `BinaryHeap` on random schedules). Figures
/// are against this heap. Instructions are callgrind counts for the production model
/// (`models/production-10m.toml` at 5,800/s, 20 s: 1,179 M here) and the M/M/1
/// (`benches/mm1-long.toml`, 250 s: 329 M here). CPU time is user seconds from
/// interleaved `taskset -c 0` rounds: production at 120 s takes 0.88–0.93 s here and the
/// M/M/1 at 6,250 s takes 0.62–0.64 s.
/// - 2,048 buckets of 65.5 µs (134 ms), with a binary-search insert: production fell to
///   1,042 M instructions (−12%) but its CPU time did not move (0.87–0.97 s against
///   0.88–0.93 s, six rounds). Bucket inserts added 24 M instructions of `memmove`. The
///   M/M/1 rose to 0.78 / 0.82 s (+25%). `heap_hold` with 3,000 pending took 122 ns
///   against 83.5 ns (minutes apart, not interleaved), with about 100 events per bucket.
/// - 8,192 buckets of 16.4 µs (the same horizon), inserts by shifting, and the next event
///   cached in a field so a peek is a load: production fell to 1,010 M instructions (−14%)
///   but took the same CPU time (0.89 / 0.90 / 0.96 s against 0.92 / 0.89 / 0.89 s). The
///   M/M/1 rose to 356 M instructions (+8%) and 0.79 / 0.81 s (+26%). Moving the tier
///   push out of line made both slower.
///
/// About 150 instructions a pop were saved without saving time. The heap's compares are
/// branch-free and run at high IPC. The calendar's work instead goes to scattered memory
/// (an allocation per bucket, thousands of vector headers) and data-dependent branches (the
/// bitmap scan, the insertion shifts). That explanation is inferred: this container has no
/// hardware counters to confirm it.
#[derive(Debug)]
struct MinHeap<M> {
    data: Vec<Event<M>>,
    /// Whether the root was taken ([`Self::take_top`]) and is neither replaced by a push
    /// nor removed yet ([`Self::settle`]).
    taken: bool,
}

impl<M: Copy> MinHeap<M> {
    fn with_capacity(n: usize) -> Self {
        MinHeap {
            data: Vec::with_capacity(n),
            taken: false,
        }
    }

    /// Removes a root that was taken and not replaced by a push. Every reader of the heap
    /// settles it first.
    #[inline(always)]
    fn settle(&mut self) {
        if self.taken {
            self.taken = false;
            self.pop_nonempty();
        }
    }

    /// The root (after [`Self::settle`]).
    #[inline(always)]
    fn peek(&self) -> Option<&Event<M>> {
        debug_assert!(!self.taken, "peek before settle");
        self.data.first()
    }

    /// Copies the root out of a heap that holds an event and leaves it in place, marked
    /// taken: the next push writes its event there and sifts it down ([`Self::replace_top`]),
    /// so an event that schedules another (the common case) costs one sift, not a sift
    /// down for the pop and a sift up for the push. Keys are unique, so the order events
    /// leave in is the same. Production model, 20 s at 5,800/s: 1,028.3 -> 951.6 M
    /// instructions (callgrind), about 8% less CPU time (four interleaved rounds); the
    /// M/M/1 (two events pending) +0.7% instructions. Tried with it: the settle out of
    /// line (more instructions on both), and only in heaps of more than 8 events (+4.8%
    /// instructions on the M/M/1, +1% on production).
    #[inline(always)]
    fn take_top(&mut self) -> Event<M> {
        debug_assert!(!self.taken, "take_top before settle");
        self.taken = true;
        self.data[0]
    }

    #[inline(always)]
    fn push(&mut self, ev: Event<M>) {
        if self.taken {
            self.taken = false;
            self.replace_top(ev);
            return;
        }
        // Sift a hole up from the end and write `ev` once, into the hole: the event is
        // never stored and read back (a swap reloaded it in pieces of another width than
        // it was written in, which stalls store-to-load forwarding).
        //
        // Tried and not kept: this sift branch-free as `replace_top` (one round per level
        // above the new slot, `ilog2(3n + 1) / 2`, the parent moving down by an index
        // select; its first test mispredicts 56 k of the 141 k such pushes of production
        // 20 s in valgrind's model): 913.6 -> 948.0 M instructions, CPU no clearer than
        // noise (mean of 10 rounds 0.761 against 0.757 s, median 0.755 against 0.77 s).
        let key = ev.key();
        let mut i = self.data.len();
        if i == 0 || self.data[(i - 1) / ARITY].key() <= key {
            self.data.push(ev);
            return;
        }
        let parent = (i - 1) / ARITY;
        let moved = self.data[parent];
        self.data.push(moved);
        i = parent;
        while i > 0 {
            let parent = (i - 1) / ARITY;
            if self.data[parent].key() <= key {
                break;
            }
            self.data[i] = self.data[parent];
            i = parent;
        }
        self.data[i] = ev;
    }

    /// The smallest of the ARITY children from `first` and its key, by a two-round
    /// tournament whose picks compile to selects, not branches, since which child wins is
    /// a coin toss the branch predictor cannot learn.
    ///
    /// The winner's index is built from the three comparisons (`2 | l23` or `l01`), not
    /// carried through each round as an `(index, key)` pair: LLVM then keeps the flags of
    /// each compare for its two selects instead of re-testing a saved byte, about 5
    /// instructions less per level (50 a level of `replace_top`). Production 20 s
    /// 948.1 -> 925.5 M instructions, M/M/1 250 s 293.4 -> 292.8 M. Tried with it: the
    /// index as `l << 1 | (l ? l23 : l01)` (more instructions), and returning the index
    /// within the four so the caller copies the child out of the checked slice (LLVM then
    /// sank the selects below the exit test and compared the keys twice: +22% in a hold
    /// loop).
    #[inline(always)]
    fn min_of_four(&self, first: usize) -> (usize, u128) {
        let c = &self.data[first..first + ARITY];
        let (k0, k1, k2, k3) = (c[0].key(), c[1].key(), c[2].key(), c[3].key());
        let (l01, l23) = (k1 < k0, k3 < k2);
        let ka = if l01 { k1 } else { k0 };
        let kb = if l23 { k3 } else { k2 };
        let l = kb < ka;
        let km = if l { kb } else { ka };
        let j = if l {
            2 | usize::from(l23)
        } else {
            usize::from(l01)
        };
        (first + j, km)
    }

    /// The smallest of the children from `first` to the end (fewer than ARITY) and its key.
    #[inline(always)]
    fn min_of_rest(&self, first: usize, n: usize) -> (usize, u128) {
        let mut child = first;
        let mut ck = self.data[first].key();
        for c in first + 1..n {
            let k = self.data[c].key();
            if k < ck {
                child = c;
                ck = k;
            }
        }
        (child, ck)
    }

    /// Writes `ev` over the root and sifts it down to its place, with no branch on where
    /// that place is: it walks the path of smallest children to the bottom (the loop ends
    /// on the heap's shape, not on `ev`), and at each level moves the child up into the
    /// hole only if it is smaller than `ev`, by an index select (a copy of the hole onto
    /// itself when not). The children's keys grow down the path, so the moves are a prefix
    /// of it and the hole stops where a sift-down with an exit test would have put `ev`.
    ///
    /// Replaces that sift-down, whose exit test (`ev` smaller than the smallest child) was a
    /// coin toss where a new event lands: production 20 s, callgrind `--branch-sim`, 0.93 M
    /// mispredicts of 4.9 M exit tests. A full descent costs few compares more (the old sift
    /// went 3.7 of about 4 levels on average): production 20 s 869.9 -> 913.6 M
    /// instructions, simulated conditional mispredicts 5.12 -> 4.38 M (valgrind's predictor
    /// has no history, so it now misses the end of nearly every descent, 1.57 M, which a
    /// real one learns better); 120 s CPU medians 0.765 -> 0.745, 0.80 -> 0.785, 0.74 ->
    /// 0.725 s (three sets of 6-8 interleaved rounds, `taskset -c 1`), and in later sets
    /// means 0.725 -> 0.716 s (16 rounds), 0.768 -> 0.757 s (10), 0.751 -> 0.746 s (12):
    /// about 1%, the machine shared; M/M/1 250 s 285.6 -> 288.8 M instructions, its CPU
    /// level (6,250 s: 0.515 against 0.51 s median of 6 rounds). Pops use it too, in place
    /// of Floyd's bottom-up pop (a descent to a leaf, then a sift-up with the same
    /// unpredictable exit).
    ///
    /// Tried and not kept: the loop over the levels whose every node has ARITY children
    /// (a count that depends on `n` alone), then one branch-free last level with children
    /// past the end read at the last index and their keys masked to `u128::MAX`: 1,067 M
    /// instructions and 0.84 s against 0.80 s (8 rounds). Figures below are production
    /// 20 s instructions against this version's 913.6 M, and 120 s CPU medians of 8-10
    /// interleaved rounds against it:
    /// - the same with padding instead of the masks (`data` kept at `4 * len + 1` events,
    ///   the slots past `len` keyed `u128::MAX`, so the last level is a plain tournament):
    ///   970.1 M, 0.705 against 0.70 s; and with the number of rounds computed from `n`
    ///   (`ilog2(3n + 1) / 2`, a loop with a fixed count): 1,000.3 M, 0.77 against 0.765 s;
    /// - the replace out of line (one copy for every sender, the event passed as its
    ///   fields): simulated I1 misses 12.8 -> 7.8 M, 935.8 M instructions, but 0.70 against
    ///   0.68 s (10 rounds);
    /// - the tournament on the times alone (a one-word compare where the key takes two,
    ///   shortening the chain of compares down the levels), with a cold exact path when
    ///   two compared times are equal (10 of 5.8 M levels): 961.6 M (LLVM made the tie
    ///   test three branches), 0.725 against 0.715 s.
    #[inline(always)]
    fn replace_top(&mut self, ev: Event<M>) {
        let key = ev.key();
        let n = self.data.len();
        let mut hole = 0;
        let mut i = 0;
        loop {
            let first = ARITY * i + 1;
            if first + ARITY > n {
                break;
            }
            let (m, km) = self.min_of_four(first);
            let src = if km < key { m } else { hole };
            self.data[hole] = self.data[src];
            hole = src;
            i = m;
        }
        // A node with fewer than ARITY children (only leaves below it).
        let first = ARITY * i + 1;
        if first < n {
            let (child, ck) = self.min_of_rest(first, n);
            let src = if ck < key { child } else { hole };
            self.data[hole] = self.data[src];
            hole = src;
        }
        self.data[hole] = ev;
    }

    #[inline(always)]
    fn pop(&mut self) -> Option<Event<M>> {
        debug_assert!(!self.taken, "pop before settle");
        if self.data.is_empty() {
            return None;
        }
        Some(self.pop_nonempty())
    }

    /// [`Self::pop`] of a heap known to hold an event: the last event replaces the root
    /// ([`Self::replace_top`], whose full descent is what Floyd's bottom-up pop, used here
    /// before, also did).
    #[inline(always)]
    fn pop_nonempty(&mut self) -> Event<M> {
        let Some(last) = self.data.pop() else {
            unreachable!("pop_nonempty on an empty heap")
        };
        if self.data.is_empty() {
            return last;
        }
        let top = self.data[0];
        self.replace_top(last);
        top
    }

    fn len(&self) -> usize {
        self.data.len() - usize::from(self.taken)
    }

    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The events due at the current instant, in `seq` order ([`HeadVec`]: the push inlines
/// into the actor that sends, so the event is written straight from registers). It is
/// always read to the end, and so emptied, before the clock moves on.
type NowFifo<M> = HeadVec<Event<M>>;

/// Where the next event due is ([`EventQueue::next_due`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Next {
    /// In the FIFO of now.
    Now,
    /// At the top of the heap.
    Heap,
    /// Nowhere: none is due by then.
    Nothing,
}

/// The future event list.
#[derive(Debug)]
pub struct EventQueue<M> {
    heap: MinHeap<M>,
    /// Events due at `current`, pushed while the clock read `current`, in `seq` order.
    now: NowFifo<M>,
    /// The time of the last event popped.
    current: SimTime,
    next_seq: u64,
    /// Keys of cancelled events still pending (each after `last`).
    cancelled: BTreeSet<u128>,
    /// The smallest key in `cancelled` (`u128::MAX` when none): the next event is a
    /// tombstone exactly when its key equals this.
    next_cancelled: u128,
    /// Whether `cancelled` holds anything: the hot loop's one test (a byte, where
    /// comparing `next_cancelled` with `u128::MAX` took five instructions per event).
    any_cancelled: bool,
}

impl<M: Copy> Default for EventQueue<M> {
    fn default() -> Self {
        Self::new()
    }
}

impl<M: Copy> EventQueue<M> {
    /// An empty queue.
    pub fn new() -> Self {
        EventQueue {
            heap: MinHeap::with_capacity(1024),
            now: NowFifo::with_capacity(64),
            current: SimTime::ZERO,
            next_seq: 0,
            cancelled: BTreeSet::new(),
            next_cancelled: u128::MAX,
            any_cancelled: false,
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
        TimerId { time, seq }
    }

    /// Reserves the `seq` of a timer due at `at` without scheduling anything: see
    /// [`Self::push_stamped`].
    #[inline(always)]
    pub fn stamp(&mut self, at: SimTime) -> Deadline {
        let seq = self.next_seq;
        self.next_seq += 1;
        Deadline { at, seq }
    }

    /// Schedules `msg` for `to` under a key reserved earlier with [`Self::stamp`], so it
    /// pops exactly where an event pushed at the reservation would have. The key must not
    /// be before the last event popped (a deadline is armed before it passes).
    pub fn push_stamped(&mut self, d: Deadline, to: ActorId, msg: M) -> TimerId {
        debug_assert!(d.seq < self.next_seq, "push_stamped needs a stamped seq");
        debug_assert!(d.at >= self.current, "a deadline armed after it passed");
        let ev = Event {
            time: d.at,
            seq: d.seq,
            to,
            msg,
        };
        if d.at == self.current {
            // Due now. Heap events due now pop before the FIFO, which is right only if
            // this seq precedes every FIFO entry; otherwise it takes its place in the FIFO.
            match self.now.front() {
                Some(f) if f.seq < d.seq => self.now.insert_before(ev, |e| e.seq > d.seq),
                _ => self.heap.push(ev),
            }
        } else {
            self.heap.push(ev);
        }
        TimerId {
            time: d.at,
            seq: d.seq,
        }
    }

    /// Cancels a scheduled event. Cancelling one that already fired (or was cancelled)
    /// is harmless and leaves nothing behind.
    pub fn cancel(&mut self, id: TimerId) {
        self.heap.settle();
        let k = id.key();
        // Events leave in key order and every new key comes after the last one popped,
        // so the keys that fired are exactly those below the next one pending.
        if id.seq >= self.next_seq || self.next_key().is_none_or(|n| k < n) {
            return;
        }
        if self.cancelled.insert(k) && k < self.next_cancelled {
            self.next_cancelled = k;
            self.any_cancelled = true;
        }
    }

    /// Tombstones waiting for their event to come up (cancelled, not yet skipped).
    pub fn tombstones(&self) -> usize {
        self.cancelled.len()
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

    /// Removes and returns the next live event if it is due at or before `t`
    /// ([`Self::next_due`] then [`Self::take`]).
    #[inline(always)]
    pub fn pop_due(&mut self, t: SimTime) -> Option<Event<M>> {
        match self.next_due(t) {
            Next::Nothing => None,
            from => Some(self.take(from)),
        }
    }

    /// Where the next live event is if it is due at or before `t`: what [`Self::pop_due`]
    /// would take, to be taken with [`Self::take`]. The run loop takes each kind in a branch
    /// of its own, so the event goes from the FIFO or the heap straight to the actor: as one
    /// `Option<Event>` from either, it was copied through a chain of stack slots first (the
    /// two paths met in one value, its niche in the message's tag). M/M/1 250 s: 314.6 ->
    /// 292.9 M instructions (1,544 -> 1,436 a customer); 5 M customers, `taskset -c 0`, five
    /// interleaved rounds: 0.585-0.643 -> 0.554-0.568 CPU s; outputs byte-identical.
    ///
    /// An event from the FIFO is now read as a whole 16-byte message, across the narrower
    /// stores the sender has just made (a tag, a `ReqId`, a status byte), which
    /// store-to-load forwarding cannot serve: about 4% of the M/M/1's samples sit on that
    /// load. Tried: a hand-written `Clone` for the message, copying the request and the
    /// answer field by field, with the FIFO cloning; LLVM folds it back into the same copy.
    #[inline(always)]
    pub fn next_due(&mut self, t: SimTime) -> Next {
        self.skip_cancelled();
        if !self.now.is_empty() {
            // The FIFO holds events at `current`; a heap event due then has a smaller seq.
            if self.current > t {
                return Next::Nothing;
            }
            if self.heap.peek().is_some_and(|e| e.time == self.current) {
                return Next::Heap;
            }
            return Next::Now;
        }
        match self.heap.peek() {
            Some(e) if e.time <= t => Next::Heap,
            _ => Next::Nothing,
        }
    }

    /// Removes and returns the next event from where [`Self::next_due`] just said it is
    /// ([`Next::Now`] or [`Next::Heap`]).
    #[inline(always)]
    pub fn take(&mut self, from: Next) -> Event<M> {
        if from == Next::Now {
            self.now.pop_front_nonempty()
        } else {
            let ev = self.heap.take_top();
            self.current = ev.time;
            ev
        }
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

    /// The key of the event [`Self::pop_any`] would return (cancelled or not).
    #[inline]
    fn next_key(&self) -> Option<u128> {
        match (self.now.front(), self.heap.peek()) {
            (Some(f), Some(h)) => Some(f.key().min(h.key())),
            (Some(f), None) => Some(f.key()),
            (None, Some(h)) => Some(h.key()),
            (None, None) => None,
        }
    }

    #[inline(always)]
    fn skip_cancelled(&mut self) {
        // Every reader of the heap comes here first: a root taken by `take` and not
        // replaced by a push leaves now.
        self.heap.settle();
        if self.any_cancelled {
            self.skip_cancelled_slow();
        }
    }

    /// Pops cancelled events off the front; kept out of line so the common case (no
    /// tombstone at all) costs one test in the hot loop. The next event is a tombstone
    /// exactly when its key is the smallest cancelled key, so no set lookup is needed.
    ///
    /// The clock stays at the last live event: a skipped tombstone from the heap does not
    /// move `current`. (It once did: a run that stopped at `t` after skipping a tombstone
    /// due later, then scheduled one event at the tombstone's time and one before it, sent
    /// the first to the FIFO of now and popped it before the second; found by
    /// `random_schedules_pop_in_time_seq_order` once it cancelled.)
    #[inline(never)]
    fn skip_cancelled_slow(&mut self) {
        let current = self.current;
        while self.next_key() == Some(self.next_cancelled) {
            self.pop_any();
            self.cancelled.remove(&self.next_cancelled);
            self.next_cancelled = self.cancelled.first().copied().unwrap_or(u128::MAX);
        }
        self.current = current;
        self.any_cancelled = !self.cancelled.is_empty();
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

    /// Cancelling timers that fired, timers still pending (in the heap and in the FIFO of
    /// now) and the same timer twice leaves nothing behind once the queue has drained.
    /// (A fired timer's cancel used to leave a tombstone forever, sending every later pop
    /// down the slow path.)
    #[test]
    fn cancellation_never_leaks() {
        let mut q = EventQueue::new();
        let ids: Vec<TimerId> = (0..10u32)
            .map(|i| q.push(SimTime(10 * u64::from(i)), 0, i))
            .collect();
        assert_eq!(q.pop().map(|e| e.msg), Some(0));
        assert_eq!(q.pop().map(|e| e.msg), Some(1));
        q.cancel(ids[0]); // fired
        q.cancel(ids[1]); // fired: the one just popped
        assert_eq!(q.tombstones(), 0, "a fired timer left a tombstone");
        q.cancel(ids[5]);
        q.cancel(ids[5]); // twice
        q.cancel(ids[9]);
        let now_a = q.push(SimTime(10), 0, 100); // due now: the FIFO
        let now_b = q.push(SimTime(10), 0, 101);
        q.cancel(now_a);
        assert_eq!(q.tombstones(), 3);
        let mut order = Vec::new();
        while let Some(e) = q.pop() {
            order.push(e.msg);
            if e.msg == 101 {
                q.cancel(now_b); // cancelling the event being handled
            }
        }
        assert_eq!(order, vec![101, 2, 3, 4, 6, 7, 8]);
        q.cancel(ids[9]); // cancelled and skipped already
        assert!(q.is_empty());
        assert_eq!(q.tombstones(), 0);
        assert_eq!(q.len(), 0);
    }

    /// A random mix of pushes (at the clock, just after it, and spread over hours, so the
    /// heap grows deep and shallow again), peeks, cancels of the next and the last event,
    /// bounded pops, the run loop's `next_due` + `take` (whose taken root the next push
    /// replaces) and pops leaves in exactly `(time, seq)` order, as an ordered set of the
    /// same keys does.
    #[test]
    fn random_schedules_pop_in_time_seq_order() {
        use rand::Rng as _;
        let mut rng = crate::rng::stream(3, "queue");
        let mut q: EventQueue<u64> = EventQueue::new();
        let mut want = BTreeSet::new();
        let mut now = 0u64;
        let mut popped = 0;
        for step in 0..300_000u64 {
            let r: f64 = rng.random();
            if r < 0.52 {
                let delay = match rng.random_range(0..4) {
                    0 => 0,
                    1 => rng.random_range(0..4),
                    2 => rng.random_range(0..1_000_000),
                    _ => rng.random_range(0..1u64 << 42),
                };
                let id = q.push(SimTime(now + delay), 0, step);
                want.insert((now + delay, id.seq, step));
            } else if r < 0.55 {
                assert_eq!(q.peek_time(), want.first().map(|&(t, _, _)| SimTime(t)));
            } else if r < 0.57 {
                let victim = if r < 0.56 {
                    want.pop_first()
                } else {
                    want.pop_last()
                };
                if let Some((t, seq, _)) = victim {
                    q.cancel(TimerId {
                        time: SimTime(t),
                        seq,
                    });
                }
            } else {
                let got = if r < 0.65 {
                    let limit = now + rng.random_range(0..1_000);
                    match q.pop_due(SimTime(limit)) {
                        Some(e) => Some(e),
                        None => {
                            assert!(want.first().is_none_or(|&(t, _, _)| t > limit));
                            continue;
                        }
                    }
                } else if r < 0.8 {
                    let limit = now + rng.random_range(0..1_000);
                    match q.next_due(SimTime(limit)) {
                        Next::Nothing => {
                            assert!(want.first().is_none_or(|&(t, _, _)| t > limit));
                            continue;
                        }
                        from => Some(q.take(from)),
                    }
                } else {
                    q.pop()
                };
                let got = got.map(|e| (e.time.0, e.seq, e.msg));
                assert_eq!(got, want.pop_first(), "step {step}");
                if let Some((t, _, _)) = got {
                    now = t;
                    popped += 1;
                }
            }
            assert_eq!(q.len() - q.tombstones(), want.len());
        }
        while let Some(e) = q.pop() {
            assert_eq!(Some((e.time.0, e.seq, e.msg)), want.pop_first());
        }
        assert!(want.is_empty() && q.is_empty() && q.tombstones() == 0);
        assert!(popped > 100_000, "{popped}");
    }

    /// A deadline stamped at some moment and armed later pops exactly where a timer set
    /// at that moment would have, including against events due at the same instant and
    /// when it is armed at its own instant (the FIFO of now).
    #[test]
    fn stamped_deadlines_fire_where_a_timer_would() {
        // Script: at each step either push an event at t, or set a deadline at t.
        let run = |stamped: bool| {
            let mut q: EventQueue<u32> = EventQueue::new();
            let mut pending = Vec::new();
            q.push(SimTime(1), 0, 1);
            let d1 = SimTime(5);
            if stamped {
                pending.push((q.stamp(d1), 50));
            } else {
                q.push(d1, 0, 50);
            }
            q.push(SimTime(5), 0, 2); // ties with the deadline, set after it
            let d2 = SimTime(5);
            if stamped {
                pending.push((q.stamp(d2), 51));
            } else {
                q.push(d2, 0, 51);
            }
            q.push(SimTime(5), 0, 3);
            let mut order = Vec::new();
            while let Some(e) = q.pop() {
                order.push(e.msg);
                if e.msg == 1 && stamped {
                    // Arm the first deadline only now (clock at 1).
                    let (d, m) = pending.remove(0);
                    q.push_stamped(d, 0, m);
                }
                if e.msg == 50 {
                    q.push(SimTime(5), 0, 4); // due now: FIFO, after everything above
                    if stamped {
                        // Armed at its own instant, behind the events set before it.
                        let (d, m) = pending.remove(0);
                        q.push_stamped(d, 0, m);
                    }
                }
            }
            order
        };
        assert_eq!(run(false), vec![1, 50, 2, 51, 3, 4]);
        assert_eq!(run(true), run(false));
    }
}

//! The event heap against std's `BinaryHeap` in the classic "hold" benchmark: with N events
//! pending, pop the next one and push one up to 2 ms after it, 20 M times. Both hold the same
//! 40-byte events (time, seq, actor, 16 bytes of message) and pop in the same order.
//!
//! `cargo run --release -p dssim-engine --example heap_hold -- [N] [dssim|std]` (default
//! 1,000 pending, both heaps; the checksums agree when both pop in the same order). On a
//! shared machine run one heap at a time under `/usr/bin/time`: CPU seconds / 20 M per hold
//! (the ns it prints are wall-clock).

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Instant;

use dssim_engine::{EventQueue, SimTime};

const OPS: u64 = 20_000_000;
const SPAN_NS: u64 = 2_000_000;

/// A xorshift64 generator: the same delays for both heaps.
struct XorShift(u64);

impl XorShift {
    fn delay(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % SPAN_NS
    }
}

fn dssim_heap(n: usize) -> u64 {
    let mut q: EventQueue<[u64; 2]> = EventQueue::new();
    let mut rng = XorShift(12345);
    for _ in 0..n {
        let d = rng.delay();
        q.push(SimTime(d), 0, [d, 0]);
    }
    let mut sum = 0u64;
    for _ in 0..OPS {
        let ev = q.pop().expect("the queue stays at n events");
        sum = sum.wrapping_add(ev.msg[0]);
        let d = rng.delay();
        q.push(SimTime(ev.time.0 + d), ev.to, [d, sum]);
    }
    sum
}

type StdEvent = Reverse<(u64, u64, u32, [u64; 2])>;

fn std_heap(n: usize) -> u64 {
    let mut q: BinaryHeap<StdEvent> = BinaryHeap::new();
    let mut rng = XorShift(12345);
    let mut seq = 0u64;
    for _ in 0..n {
        let d = rng.delay();
        q.push(Reverse((d, seq, 0, [d, 0])));
        seq += 1;
    }
    let mut sum = 0u64;
    for _ in 0..OPS {
        let Reverse((t, _, to, m)) = q.pop().expect("the queue stays at n events");
        sum = sum.wrapping_add(m[0]);
        let d = rng.delay();
        q.push(Reverse((t + d, seq, to, [d, sum])));
        seq += 1;
    }
    sum
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1000);
    let only = std::env::args().nth(2).unwrap_or_default();
    for (key, name, run) in [
        ("dssim", "dssim EventQueue", dssim_heap as fn(usize) -> u64),
        ("std", "std BinaryHeap", std_heap),
    ] {
        if !only.is_empty() && only != key {
            continue;
        }
        let t0 = Instant::now();
        let sum = run(n);
        let ns = t0.elapsed().as_secs_f64() * 1e9 / OPS as f64;
        println!("{name}: {n} pending, {ns:.1} ns per hold (checksum {sum})");
    }
}

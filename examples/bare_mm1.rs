//! The floor for `benches/compare.sh`: an M/M/1 queue as a bare event loop (std
//! `BinaryHeap` of `(time, seq)` keys, Xoshiro256++ and exponential draws), with none of
//! dssim's machinery: no actors, no messages, no request table, no metrics beyond a sum.
//!
//! `cargo run --release --example bare_mm1 -- CUSTOMERS [RATE] [MEAN_SERVICE_S]`
//! prints customers/s and the mean sojourn (to check it against 1/(mu - lambda)).

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::time::Instant;

use rand::SeedableRng;
use rand_distr::{Distribution, Exp};
use rand_xoshiro::Xoshiro256PlusPlus;

/// What happens at an event.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Arrival,
    Departure,
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let customers: u64 = args
        .first()
        .and_then(|a| a.parse().ok())
        .unwrap_or(5_000_000);
    let rate: f64 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(800.0);
    let mean_s: f64 = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(0.001);

    let t0 = Instant::now();
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(1);
    // Times in integer nanoseconds, as in dssim.
    let inter = Exp::new(rate / 1e9).expect("rate > 0");
    let service = Exp::new(1.0 / (mean_s * 1e9)).expect("mean > 0");
    let mut heap: BinaryHeap<Reverse<(u64, u64, Kind)>> = BinaryHeap::with_capacity(1024);
    let mut seq = 0u64;
    let mut push = |heap: &mut BinaryHeap<_>, t: u64, k: Kind| {
        heap.push(Reverse((t, seq, k)));
        seq += 1;
    };
    push(&mut heap, 0, Kind::Arrival);
    let mut waiting: VecDeque<u64> = VecDeque::new();
    let mut in_service: Option<u64> = None;
    let (mut arrived, mut served, mut sojourn_sum) = (0u64, 0u64, 0f64);
    while let Some(Reverse((now, _, kind))) = heap.pop() {
        match kind {
            Kind::Arrival => {
                arrived += 1;
                if arrived < customers {
                    let gap = inter.sample(&mut rng).round() as u64;
                    push(&mut heap, now + gap, Kind::Arrival);
                }
                if in_service.is_none() {
                    in_service = Some(now);
                    let d = service.sample(&mut rng).round() as u64;
                    push(&mut heap, now + d, Kind::Departure);
                } else {
                    waiting.push_back(now);
                }
            }
            Kind::Departure => {
                let a = in_service.take().expect("a departure has a customer");
                served += 1;
                sojourn_sum += (now - a) as f64;
                if let Some(next) = waiting.pop_front() {
                    in_service = Some(next);
                    let d = service.sample(&mut rng).round() as u64;
                    push(&mut heap, now + d, Kind::Departure);
                }
            }
        }
    }
    let wall = t0.elapsed().as_secs_f64();
    println!(
        "bare: {served} customers in {wall:.3} s: {:.0} customers/s, mean sojourn {:.4} ms",
        served as f64 / wall,
        sojourn_sum / served as f64 / 1e6
    );
}

//! # dssim-engine
//!
//! The deterministic discrete-event core of dssim. It knows nothing about web systems:
//! only time, events, actors, random streams, a network and metric primitives.
//!
//! Invariants:
//! - time is [`SimTime`], integer nanoseconds; there is no wall clock;
//! - events pop in `(time, seq)` order, so equal times run in scheduling order;
//! - every actor draws from its own [`rng::Rng`] stream derived from (run seed, name);
//! - no I/O, no serde, no `HashMap` iteration.

pub mod deadline;
pub mod dist;
pub mod metrics;
pub mod net;
pub mod queue;
pub mod rng;
pub mod sim;
pub mod time;

pub use deadline::DeadlineFifo;
pub use dist::{Dist, DistError};
pub use metrics::{Histogram, Running, TimeWeighted};
pub use net::{Network, Partition};
pub use queue::{ActorId, Deadline, EventQueue, TimerId};
pub use rng::Rng;
pub use sim::{Actor, Ctx, Simulation};
pub use time::{parse_duration, DurationError, SimTime};

/// The closest of `candidates` to `word` by edit distance, if close enough to be a
/// plausible typo ("did you mean ...?").
pub fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let mut best: Option<(usize, &str)> = None;
    for c in candidates {
        let d = levenshtein(&word.to_lowercase(), &c.to_lowercase());
        let limit = (c.len().max(word.len()) / 3).max(1);
        if d <= limit && best.is_none_or(|(bd, _)| d < bd) {
            best = Some((d, c));
        }
    }
    best.map(|(_, c)| c)
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    #[test]
    fn did_you_mean_finds_close_names() {
        let names = ["round_robin", "least_connections", "random"];
        assert_eq!(
            super::did_you_mean("round_robbin", names),
            Some("round_robin")
        );
        assert_eq!(super::did_you_mean("zzz", names), None);
    }
}

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
pub mod head_vec;
pub mod metrics;
pub mod net;
pub mod queue;
pub mod rng;
pub mod sim;
pub mod time;

pub use deadline::DeadlineFifo;
pub use dist::{Dist, DistError};
pub use head_vec::HeadVec;
pub use metrics::{Histogram, Running, TimeWeighted};
pub use net::{Network, Partition};
pub use queue::{ActorId, Deadline, EventQueue, TimerId};
pub use rng::Rng;
pub use sim::{Actor, Ctx, Simulation, SimulationBuilder};
pub use time::{parse_duration, DurationError, SimTime};

/// Asks the CPU to bring the cache line that holds `x` into its caches (every level), and
/// returns at once: a hint ahead of a load that would miss, which changes nothing that a
/// run computes (outputs stay byte-identical). `safe_arch::prefetch_t0` on x86 and x86_64
/// (SSE, on by default there), a no-op elsewhere.
///
/// Where it pays: a table too big for the caches, read at an event that a known earlier
/// event announces, so the line is asked for one hop ahead (see the cache's
/// `prefetch_entry`: its entry for the key at the request's arrival, production 120 s CPU
/// about 6 % less). A prefetch is not free: on a page the TLB does not hold, the
/// instruction waits for the page walk: on 4 KiB pages the oracle's and a database node's
/// prefetches cost about what they saved; with the binary's tables on huge pages (its
/// allocator, `src/main.rs`) they pay (figures at `Oracle::prefetch`).
#[inline(always)]
pub fn prefetch<T>(x: &T) {
    #[cfg(all(
        any(target_arch = "x86", target_arch = "x86_64"),
        target_feature = "sse"
    ))]
    safe_arch::prefetch_t0(x);
    #[cfg(not(all(
        any(target_arch = "x86", target_arch = "x86_64"),
        target_feature = "sse"
    )))]
    let _ = x;
}

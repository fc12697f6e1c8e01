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

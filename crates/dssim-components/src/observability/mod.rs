//! What a run measures and reports: outcomes and statistics, the time-series sampler,
//! request traces, and the report rows.

pub mod report;
pub mod sampler;
pub mod stats;
pub mod trace;

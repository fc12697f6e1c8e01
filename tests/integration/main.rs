//! End-to-end checks of dssim: one integration binary, one module per concern.
//!
//! The theory, determinism, errors and resume modules write their experiments inline, run
//! the real binary with fixed seeds into their own temporary folders, and read the CSV
//! files back, as a user or a notebook would; queueing and the component modules run
//! models in-process. Every helper lives in `support`. predictions sets `dssim estimate` and the predicted
//! columns of components.csv against the runs they predict. Statistical checks are sized for `--release`; add
//! `-- --nocapture` to print the figures they measure.

mod caches;
mod call_estimates;
mod calls;
mod changes;
mod cli;
mod compute;
mod databases;
mod determinism;
mod errors;
mod fuzz_regressions;
mod operations;
mod outputs;
mod predictions;
mod properties;
mod pubsub;
mod queueing;
mod regions;
mod reliability;
mod reproducibility;
mod resume;
mod robustness;
mod serve;
mod sharding;
mod support;
mod sweeps;
mod teaching;
mod theory;
mod timers;
mod traces;
mod traffic;
mod trust;

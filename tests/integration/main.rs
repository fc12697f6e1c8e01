//! End-to-end checks of dssim: one integration binary, one module per concern.
//!
//! - `theory`: queueing results the simulator must reproduce (validation.md), with
//!   tolerances derived from the variance of each estimate.
//! - `determinism`: outputs are a pure function of (experiment, seed), whatever `--jobs` is.
//! - `outputs`: nothing is lost on the way to CSV; every request ends exactly once.
//! - `errors`: bad input gives one clear message and exit code 2, never a panic or a hang.
//! - `caches`, `databases`, `reliability`, `sweeps`: see each module.
//!
//! The statistical tests are sized for an optimized build: `cargo test --release --test
//! integration` (add `-- --nocapture` to print the measured figures).

mod caches;
mod databases;
mod determinism;
mod errors;
mod outputs;
mod reliability;
mod support;
mod sweeps;
mod theory;

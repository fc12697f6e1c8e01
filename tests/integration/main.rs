//! End-to-end tests of dssim, one module per concern (one test binary, as nexosim does).
//!
//! - `theory`: queueing results the simulator must reproduce (validation.md), with
//!   tolerances derived from the variance of each estimate.
//! - `determinism`: outputs are a pure function of (experiment, seed), whatever `--jobs` is.
//! - `outputs`: nothing is lost on the way to CSV; every request ends exactly once.
//! - `errors`: bad input gives one clear message and exit code 2, never a panic.
//!
//! Run them with `cargo test --release --test integration` (the statistical tests are sized
//! for an optimized build; `-- --nocapture` prints the measured figures).

mod determinism;
mod errors;
mod outputs;
mod support;
mod theory;

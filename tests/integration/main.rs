//! End-to-end tests of the `dssim` binary, in one test binary (one link, one process
//! per `cargo test`): queueing theory checks, determinism, error reporting and resume.
//!
//! Every test writes its experiment inline, runs the real binary with fixed seeds into its
//! own temporary folder, and reads the CSV files back, as a user or a notebook would.

mod common;
mod determinism;
mod errors;
mod resume;
mod theory;

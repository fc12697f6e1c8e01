//! End-to-end checks of dssim: one integration binary, one module per concern.
//!
//! The theory, determinism, errors and resume modules write their experiments inline, run
//! the real binary with fixed seeds into their own temporary folders (helpers in `common`),
//! and read the CSV files back, as a user or a notebook would.

mod caches;
mod common;
mod compute;
mod databases;
mod determinism;
mod errors;
mod reliability;
mod resume;
mod sweeps;
mod theory;
mod traffic;

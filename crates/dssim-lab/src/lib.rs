//! # dssim-lab
//!
//! Everything between the user's files and the simulation: loading model and experiment
//! files (TOML or JSON) with errors that point at a line and column, expanding sweeps into
//! runs, running them in parallel, and writing the output folder.
//!
//! Invariant: outputs are a pure function of (experiment, seed): byte-identical for any
//! `--jobs`, except manifest.json's wall-clock figures.

pub mod capacity;
pub mod error;
pub mod experiment;
pub mod lock;
pub mod manifest;
pub mod merge;
pub mod output;
pub mod runner;
pub mod source;
pub mod stats;
pub mod trace_json;

/// The analytic side lives in its own crate (dssim-analytic); these keep the old paths
/// (`dssim_lab::estimate`, `dssim_lab::limits`, `dssim_lab::queueing`) working.
pub use dssim_analytic::{estimate, limits, queueing};

pub use error::{Diagnostic, LabError};
pub use experiment::{Experiment, RunSpec};
pub use runner::{execute, replay, run_one, Progress, Quiet, Replayed, RunSettings, Summary};

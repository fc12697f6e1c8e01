//! # dssim-analytic
//!
//! What dssim predicts without simulating, from the same model files the simulation runs:
//!
//! - [`queueing`]: the formulas and exact solutions (Erlang B and C, Allen–Cunneen,
//!   Pollaczek–Khinchine, birth–death chains, M/M/c+D, E_k/M/1 and E_k/M/c, the
//!   load-dependent database node (with or without cores), the pool chain, exact and Schweitzer–Bard MVA);
//! - [`estimate`]: the one model of predictions, `dssim estimate` and the predicted columns
//!   of components.csv;
//! - [`limits`]: the events and memory a run will need, checked before it is built.
//!
//! It depends on dssim-components for the model types only; nothing here runs a simulation.
//! dssim-lab re-exports the three modules, so `dssim_lab::estimate` and friends still work.

pub mod estimate;
pub mod limits;
pub mod queueing;

//! End-to-end tests of the `dssim` binary.

mod sweeps;

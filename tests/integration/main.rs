//! End-to-end checks of dssim: one integration binary, one module per concern.

mod caches;
mod compute;
mod databases;
mod sweeps;

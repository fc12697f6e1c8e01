//! End-to-end checks of dssim: one integration binary, one module per concern.

mod caches;
mod databases;
mod reliability;
mod sweeps;
mod traffic;

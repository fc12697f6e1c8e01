//! End-to-end tests of dssim, one module per concern.

mod traffic;

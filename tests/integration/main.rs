//! End-to-end tests, one module per concern (one integration binary).

mod caches;

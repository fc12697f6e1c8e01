//! Where load comes from: clients (open and closed arrivals, retries, timeouts, browser
//! caches) and the key popularity they draw requests from.

pub mod client;
pub mod popularity;

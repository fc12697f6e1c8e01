//! The data tier: caches, databases (sharded, replicated), job queues, the consistency
//! oracle, and the path from a service to its data.

pub mod cache;
pub mod consistency;
pub mod database;
pub mod datapath;
pub mod jobs;

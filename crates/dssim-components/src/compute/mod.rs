//! The compute tier: services and their instances, load balancers, autoscalers, load
//! shedding, canary rollouts, and the per-service state they share (member tables, billing).

pub mod autoscaler;
pub mod calls;
pub mod canary;
pub mod circuit_breaker;
pub mod deploy;
pub mod feature;
pub mod geo;
pub mod health_check;
pub mod load_balancer;
pub mod service;
pub mod shedding;
pub mod state;
pub mod validate;

pub use state::*;

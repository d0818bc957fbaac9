//! The rate limiter with its state in a real Redis (started by the tests):
//! one limit for a fleet, exact waits, and every request answered when Redis
//! fails. The module is named so that `cargo test --all-features redis`
//! runs them all.

#[cfg(feature = "axum")]
mod axum_fleet;
mod cluster;
#[cfg(feature = "axum")]
use crate::common;
mod fleet;
mod lease;
mod model;
mod outage;
mod server;
mod store;

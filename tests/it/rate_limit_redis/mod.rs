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
mod reconfigure;
mod server;
mod store;

use std::time::Duration;

use palisade::error::{RateLimited, Unsatisfiable};
use tower::{BoxError, Service, ServiceExt};

/// What a limiter said of one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Said {
    Admitted,
    Refused(Duration),
    Never,
}

/// What `service` says of a request of `cost`.
pub async fn ask<S>(service: &mut S, cost: u32) -> Said
where
    S: Service<u32, Response = u32, Error = BoxError>,
{
    match service.ready().await.unwrap().call(cost).await {
        Ok(_) => Said::Admitted,
        Err(err) if err.is::<Unsatisfiable>() => Said::Never,
        Err(err) => Said::Refused(
            err.downcast_ref::<RateLimited>()
                .unwrap_or_else(|| panic!("{err}"))
                .retry_after()
                .unwrap(),
        ),
    }
}

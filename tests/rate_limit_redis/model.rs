//! The token bucket's Lua script and the in-process GCRA make the same
//! decision, given the same instants and costs.

use std::time::Duration;

use palisade::{
    clock::ManualClock,
    error::{RateLimited, Unsatisfiable},
    rate_limit::{Rate, RateLimitLayer},
};
use proptest::{prelude::*, test_runner::FileFailurePersistence};
use tower::{BoxError, Layer, Service, ServiceExt, service_fn};

use super::server::RedisServer;

/// What a limiter said of one request.
#[derive(Debug, PartialEq, Eq)]
enum Said {
    Admitted,
    Refused(Duration),
    Never,
}

async fn ask<S>(service: &mut S, cost: u32) -> Said
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

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 64,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(
            "tests/rate_limit_redis/model.proptest-regressions",
        ))),
        ..ProptestConfig::default()
    })]

    #[test]
    fn the_script_decides_as_the_in_process_bucket(
        interval_us in 1u64..20_000,
        burst in 1u32..8,
        schedule in proptest::collection::vec((0u64..40_000, 1u32..10), 1..40),
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let Some(server) = RedisServer::start() else { return Ok(()) };
        runtime.block_on(async {
            let clock = ManualClock::new();
            let rate = Rate::new(1, Duration::from_micros(interval_us));
            let builder = || {
                RateLimitLayer::builder()
                    .token_bucket(rate, burst)
                    .cost(|cost: &u32| *cost)
                    .clock(clock.clone())
            };
            let echo = || service_fn(|cost: u32| async move { Ok::<_, BoxError>(cost) });
            let mut local = builder().build().unwrap().layer(echo());
            let mut remote = builder()
                .redis(server.connection().await)
                .layer_clock()
                .build()
                .unwrap()
                .layer(echo());
            for (advance_us, cost) in schedule {
                clock.advance(Duration::from_micros(advance_us));
                let expected = ask(&mut local, cost).await;
                prop_assert_eq!(ask(&mut remote, cost).await, expected);
            }
            Ok(())
        })?;
    }
}

//! The Lua scripts and the in-process algorithms — token bucket, sliding
//! window, fixed window — make the same decision, given the same instants
//! and costs.

use std::time::Duration;

use palisade::{
    clock::ManualClock,
    rate_limit::{NoKey, Rate, RateLimitBuilder, RateLimitLayer, UnitCost},
};
use proptest::{prelude::*, test_runner::FileFailurePersistence};
use tower::{BoxError, Layer, service_fn};

use super::{ask, server::RedisServer};

proptest! {
    #![proptest_config(ProptestConfig {
        cases: crate::cases(64),
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(
            "tests/it/rate_limit_redis/model.proptest-regressions",
        ))),
        ..ProptestConfig::default()
    })]

    #[test]
    fn the_scripts_decide_as_the_in_process_algorithms(
        algorithm in 0..3u8,
        unit_us in 1u64..20_000,
        limit in 1u32..8,
        segments in 1u32..6,
        schedule in proptest::collection::vec((0u64..40_000, 1u32..10), 1..40),
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let Some(server) = RedisServer::start() else { return Ok(()) };
        runtime.block_on(async {
            let clock = ManualClock::new();
            // Every length a whole number of microseconds, as Redis counts.
            let unit = Duration::from_micros(unit_us);
            let pick = |builder: RateLimitBuilder<NoKey, UnitCost, ManualClock>| match algorithm {
                0 => builder.token_bucket(Rate::new(1, unit), limit),
                1 => builder.sliding_window(limit, unit * segments, segments),
                _ => builder.fixed_window(limit, unit),
            };
            let builder = || pick(RateLimitLayer::builder().clock(clock.clone())).cost(|cost: &u32| *cost);
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

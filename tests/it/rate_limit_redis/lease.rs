//! Leased tokens: fewer round trips, and over any span of time the fleet
//! admits at most what the bucket allows plus `(batch − 1)` an instance.

use std::time::Duration;

use palisade::{
    clock::{Clock, ManualClock},
    rate_limit::{Rate, RateLimitLayer},
};
use rand::{RngExt, SeedableRng, rngs::StdRng};
use tower::{BoxError, Layer, Service, ServiceExt, service_fn};

use super::server::RedisServer;

const INTERVAL: Duration = Duration::from_millis(10);
const BURST: u32 = 10;
const BATCH: u32 = 4;
const INSTANCES: usize = 3;

#[tokio::test]
async fn leases_over_admit_by_at_most_batch_minus_one_an_instance() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let clock = ManualClock::new();
    let mut fleet = Vec::new();
    for _ in 0..INSTANCES {
        let layer = RateLimitLayer::builder()
            .name("lease")
            .token_bucket(Rate::new(1, INTERVAL), BURST)
            .clock(clock.clone())
            .redis(server.connection().await)
            .layer_clock()
            .lease(BATCH)
            .build()
            .unwrap();
        fleet.push(layer.layer(service_fn(|x: u64| async move { Ok::<_, BoxError>(x) })));
    }
    let mut rng = StdRng::seed_from_u64(17);
    let mut admitted = Vec::new();
    let requests = 3_000;
    for request in 0..requests {
        clock.advance(Duration::from_micros(rng.random_range(0..6_000)));
        let service = &mut fleet[rng.random_range(0..INSTANCES)];
        if service.ready().await.unwrap().call(request).await.is_ok() {
            admitted.push(clock.now());
        }
    }
    // Over every span between two admissions: at most the bucket's
    // allowance for the span, plus what the instances may hold leased.
    let slack = INSTANCES * (BATCH as usize - 1);
    let mut worst = 0i64;
    for (i, first) in admitted.iter().enumerate() {
        for (j, last) in admitted.iter().enumerate().skip(i) {
            let span = *last - *first;
            let allowed = BURST as usize + (span.as_nanos() / INTERVAL.as_nanos()) as usize;
            let count = j - i + 1;
            assert!(
                count <= allowed + slack,
                "{count} in {span:?}: allowed {allowed} + {slack}"
            );
            worst = worst.max(count as i64 - allowed as i64);
        }
    }
    // Leases saved round trips: Redis saw fewer decisions than requests.
    let mut connection = server.connection().await;
    let stats: String = ::redis::cmd("INFO")
        .arg("commandstats")
        .query_async(&mut connection)
        .await
        .unwrap();
    let calls: u64 = stats
        .lines()
        .find(|line| line.starts_with("cmdstat_evalsha:"))
        .and_then(|line| line.split("calls=").nth(1)?.split(',').next()?.parse().ok())
        .expect("EVALSHA calls");
    assert!(
        calls < requests * 3 / 4,
        "{calls} round trips for {requests} requests"
    );
    // And the fleet still admits most of what the bucket allows (leased
    // tokens left unspent when their lease ends are lost).
    let elapsed = clock.now() - palisade::clock::Instant::ZERO;
    let allowance = BURST as usize + (elapsed.as_nanos() / INTERVAL.as_nanos()) as usize;
    assert!(
        admitted.len() * 10 >= allowance * 8,
        "{} of {allowance}",
        admitted.len()
    );
    eprintln!(
        "admitted {}, {calls} round trips, worst excess over the bucket {worst}",
        admitted.len()
    );
}

#[tokio::test]
async fn a_lease_must_fit_a_bucket_in_reject_mode() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    for builder in [
        RateLimitLayer::builder().token_bucket(Rate::per_second(10), 3),
        RateLimitLayer::builder().sliding_window(10, Duration::from_secs(1), 10),
        RateLimitLayer::builder()
            .token_bucket(Rate::per_second(10), 10)
            .wait_up_to(Duration::from_secs(1)),
    ] {
        let err = builder
            .redis(server.connection().await)
            .lease(4)
            .build()
            .unwrap_err();
        assert_eq!(err.field(), "lease");
    }
}

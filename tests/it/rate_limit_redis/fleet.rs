//! Instances built separately, each with its own connection, share one
//! limit through one Redis.

use std::time::Duration;

use palisade::{
    clock::ManualClock,
    error::RateLimited,
    rate_limit::{Rate, RateLimitLayer},
};
use tower::{BoxError, Layer, Service, ServiceExt, service_fn};

use super::server::RedisServer;

/// An instance deciding on `clock`: its own connection, the same limit's
/// name.
async fn instance(
    server: &RedisServer,
    clock: &ManualClock,
    rate: Rate,
    burst: u32,
) -> impl Service<u64, Response = u64, Error = BoxError> + Clone + use<> {
    RateLimitLayer::builder()
        .name("fleet")
        .token_bucket(rate, burst)
        .key(|client: &u64| Some(*client))
        .clock(clock.clone())
        .redis(server.connection().await)
        .layer_clock()
        .build()
        .unwrap()
        .layer(service_fn(|x: u64| async move { Ok::<_, BoxError>(x) }))
}

/// The wait of a refusal, or `None` when admitted.
pub(super) async fn refused_for<S>(service: &mut S, request: u64) -> Option<Duration>
where
    S: Service<u64, Response = u64, Error = BoxError>,
{
    match service.ready().await.unwrap().call(request).await {
        Ok(answer) => {
            assert_eq!(answer, request);
            None
        }
        Err(err) => Some(
            err.downcast_ref::<RateLimited>()
                .unwrap_or_else(|| panic!("{err}"))
                .retry_after()
                .expect("an exact wait"),
        ),
    }
}

#[tokio::test]
async fn three_instances_share_one_limit_with_exact_waits() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let clock = ManualClock::new();
    let rate = Rate::new(1, Duration::from_millis(100));
    let mut fleet = Vec::new();
    for _ in 0..3 {
        fleet.push(instance(&server, &clock, rate, 5).await);
    }
    // Thirty requests of one client, spread over the fleet: the burst of 5
    // is admitted once, not three times; every refusal says 100 ms.
    let mut admitted = 0;
    for i in 0..30 {
        match refused_for(&mut fleet[i % 3], 7).await {
            None => admitted += 1,
            Some(wait) => assert_eq!(wait, Duration::from_millis(100)),
        }
    }
    assert_eq!(admitted, 5);
    // 1 µs early: still refused, with 1 µs to go; at the wait: admitted.
    clock.advance(Duration::from_micros(99_999));
    assert_eq!(
        refused_for(&mut fleet[1], 7).await,
        Some(Duration::from_micros(1))
    );
    clock.advance(Duration::from_micros(1));
    assert_eq!(refused_for(&mut fleet[2], 7).await, None);
    assert_eq!(
        refused_for(&mut fleet[0], 7).await,
        Some(Duration::from_millis(100))
    );
    // Another client has a limit of its own.
    assert_eq!(refused_for(&mut fleet[0], 8).await, None);
}

#[tokio::test]
async fn on_the_servers_clock_the_fleet_admits_at_most_the_limit() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    // Instance clocks five seconds apart do not matter: Redis's clock decides.
    let mut fleet = Vec::new();
    for skew in [0, 5, 10] {
        let clock = ManualClock::new();
        clock.advance(Duration::from_secs(skew));
        fleet.push(instance_on_server_time(&server, &clock).await);
    }
    let started = std::time::Instant::now();
    let mut admitted = 0u32;
    for i in 0..300 {
        if refused_for(&mut fleet[i % 3], 7).await.is_none() {
            admitted += 1;
        }
    }
    // 10 a second, bursts of 5: at most 5 + 10 per second of the run.
    let bound = 5.0 + 10.0 * started.elapsed().as_secs_f64();
    assert!(f64::from(admitted) <= bound.floor(), "{admitted} > {bound}");
    assert!(admitted >= 5);
}

async fn instance_on_server_time(
    server: &RedisServer,
    clock: &ManualClock,
) -> impl Service<u64, Response = u64, Error = BoxError> + Clone + use<> {
    RateLimitLayer::builder()
        .name("fleet")
        .token_bucket(Rate::per_second(10), 5)
        .key(|client: &u64| Some(*client))
        .clock(clock.clone())
        .redis(server.connection().await)
        .build()
        .unwrap()
        .layer(service_fn(|x: u64| async move { Ok::<_, BoxError>(x) }))
}

#[tokio::test]
async fn a_wait_reserved_on_redis_is_slept_on_the_layers_clock() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let clock = ManualClock::new();
    let layer = RateLimitLayer::builder()
        .token_bucket(Rate::new(1, Duration::from_millis(100)), 1)
        .wait_up_to(Duration::from_millis(250))
        .clock(clock.clone())
        .redis(server.connection().await)
        .layer_clock()
        .build()
        .unwrap();
    let service = layer.layer(service_fn(|x: u64| async move { Ok::<_, BoxError>(x) }));
    // One at once; the next two reserve the tokens 100 and 200 ms away; the
    // fourth would wait 300 ms, over the bound: refused.
    let mut calls = Vec::new();
    for i in 0..3 {
        calls.push(tokio::spawn(service.clone().oneshot(i)));
    }
    tokio::task::yield_now().await;
    let mut fourth = service.clone();
    let refused = refused_for(&mut fourth, 3).await;
    // Reservations are made in the order the decisions reach Redis.
    while clock.sleepers() < 2 {
        tokio::task::yield_now().await;
    }
    assert_eq!(refused, Some(Duration::from_millis(300)));
    clock.advance(Duration::from_millis(100));
    clock.advance(Duration::from_millis(100));
    for call in calls {
        call.await.unwrap().unwrap();
    }
}

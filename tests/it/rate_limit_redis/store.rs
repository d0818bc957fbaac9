//! What the limiter leaves in Redis, and what Redis may forget.

use std::time::{Duration, Instant};

use palisade::{
    clock::ManualClock,
    rate_limit::{Rate, RateLimitLayer},
};
use tower::{BoxError, Layer, Service, ServiceExt, service_fn};

use super::server::RedisServer;

async fn query<T: ::redis::FromRedisValue>(server: &RedisServer, command: &[&str]) -> T {
    let mut connection = server.connection().await;
    let mut cmd = ::redis::cmd(command[0]);
    for arg in &command[1..] {
        cmd.arg(*arg);
    }
    cmd.query_async(&mut connection).await.unwrap()
}

#[tokio::test]
async fn a_script_flush_mid_run_changes_no_decision() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let clock = ManualClock::new();
    let layer = RateLimitLayer::builder()
        .token_bucket(Rate::per_second(10), 3)
        .clock(clock.clone())
        .redis(server.connection().await)
        .layer_clock()
        .build()
        .unwrap();
    let mut service = layer.layer(service_fn(|x: u64| async move { Ok::<_, BoxError>(x) }));
    let mut admitted = 0;
    for i in 0..10 {
        if i == 5 {
            let _: () = query(&server, &["SCRIPT", "FLUSH"]).await;
        }
        if service.ready().await.unwrap().call(i).await.is_ok() {
            admitted += 1;
        }
    }
    assert_eq!(admitted, 3);
    clock.advance(Duration::from_millis(100));
    let _: () = query(&server, &["SCRIPT", "FLUSH"]).await;
    assert!(service.ready().await.unwrap().call(0).await.is_ok());
}

#[tokio::test]
async fn every_key_expires_once_its_bucket_is_full_again() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    // One token every 200 ms: each key's bucket is full again 200 ms after
    // its request, and its key expires then.
    let layer = RateLimitLayer::builder()
        .name("ttl")
        .token_bucket(Rate::new(1, Duration::from_millis(200)), 1)
        .key(|client: &u64| Some(*client))
        .redis(server.connection().await)
        .build()
        .unwrap();
    let service = layer.layer(service_fn(|x: u64| async move { Ok::<_, BoxError>(x) }));
    let mut tasks = tokio::task::JoinSet::new();
    for task in 0..50u64 {
        let mut service = service.clone();
        tasks.spawn(async move {
            for client in (task * 2_000)..(task + 1) * 2_000 {
                service.ready().await.unwrap().call(client).await.unwrap();
            }
        });
    }
    while let Some(task) = tasks.join_next().await {
        task.unwrap();
    }
    // Every key written carries a TTL no longer than the bucket's refill.
    let keys: Vec<String> = query(&server, &["KEYS", "palisade:ttl:*"]).await;
    for key in keys.iter().take(1_000) {
        let ttl: i64 = query(&server, &["PTTL", key]).await;
        assert!((0..=200).contains(&ttl) || ttl == -2, "{key}: {ttl}");
    }
    // Once idle, Redis holds no key of ours (its expiry cycle may take a
    // moment to sweep 100 000 keys).
    let idle = Instant::now();
    loop {
        let left: u64 = query(&server, &["DBSIZE"]).await;
        if left == 0 {
            break;
        }
        assert!(idle.elapsed() < Duration::from_secs(20), "{left} keys left");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_window_key_expires_once_its_latest_admission_has_left() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let clock = ManualClock::new();
    let layer = RateLimitLayer::builder()
        .name("window")
        .sliding_window(2, Duration::from_millis(300), 3)
        .key(|client: &u64| Some(*client))
        .clock(clock.clone())
        .redis(server.connection().await)
        .layer_clock()
        .build()
        .unwrap();
    let mut service = layer.layer(service_fn(|x: u64| async move { Ok::<_, BoxError>(x) }));
    for client in 0..10 {
        assert!(service.ready().await.unwrap().call(client).await.is_ok());
    }
    // A window of 300 ms in segments of 100: the key lives until the
    // admission's segment has left it, 400 ms from the segment's start.
    let keys: Vec<String> = query(&server, &["KEYS", "palisade:window:*"]).await;
    assert_eq!(keys.len(), 10);
    for key in &keys {
        let ttl: i64 = query(&server, &["PTTL", key]).await;
        assert!((300..=400).contains(&ttl), "{key}: {ttl}");
    }
}

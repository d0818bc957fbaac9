//! Two axum servers on two loopback ports, one limit in Redis: clients
//! hammering both get one limit's worth of `200`s, the rest `429` with
//! `Retry-After`.

use std::{net::SocketAddr, time::Duration};

use axum::{Router, routing::get};
use palisade::{
    rate_limit::{Rate, RateLimitLayer, http::ClientIp},
    stack::http::HttpAnswerLayer,
};
use tokio::net::TcpListener;
use tower::ServiceBuilder;

use super::{common, server::RedisServer};

/// One instance of the fleet: its own connection to Redis, the same limit.
async fn instance(redis: &RedisServer) -> SocketAddr {
    let limit = RateLimitLayer::builder()
        .name("api")
        .token_bucket(Rate::new(1, Duration::from_secs(60)), 20)
        .key(ClientIp::peer())
        .redis(redis.connection().await)
        .build()
        .unwrap();
    let app = Router::new().route("/", get(|| async { "ok" })).layer(
        ServiceBuilder::new()
            .layer(HttpAnswerLayer::new())
            .layer(limit),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap()
    });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_servers_one_limit() {
    let Some(redis) = RedisServer::start() else {
        return;
    };
    let fleet = [instance(&redis).await, instance(&redis).await];
    let mut clients = tokio::task::JoinSet::new();
    for client in 0..8 {
        let addr = fleet[client % 2];
        clients.spawn(async move {
            let mut sender = common::connect(addr).await;
            let mut seen = Vec::new();
            for _ in 0..25 {
                let response = common::get(&mut sender, &[]).await;
                let retry_after = response
                    .headers()
                    .get("retry-after")
                    .map(|value| value.to_str().unwrap().to_owned());
                seen.push((addr, response.status().as_u16(), retry_after));
            }
            seen
        });
    }
    let mut seen = Vec::new();
    while let Some(client) = clients.join_next().await {
        seen.extend(client.unwrap());
    }
    // 200 requests from one client address over two servers: the burst of
    // 20 once for the fleet, not once per server.
    let ok = seen.iter().filter(|(_, status, _)| *status == 200).count();
    assert_eq!(ok, 20, "{seen:?}");
    for (_, status, retry_after) in &seen {
        if *status != 200 {
            assert_eq!(*status, 429);
            let seconds: u64 = retry_after
                .as_deref()
                .expect("Retry-After")
                .parse()
                .unwrap();
            assert!((1..=60).contains(&seconds), "{seconds}");
        }
    }
    // Both servers answered some of each.
    for addr in fleet {
        assert!(
            seen.iter()
                .any(|(at, status, _)| *at == addr && *status == 429)
        );
    }
}

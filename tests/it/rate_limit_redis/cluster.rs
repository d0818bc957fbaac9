//! A local three-master Redis Cluster: keys spread over the slots, every
//! limit exact.

use std::time::Duration;

use palisade::{
    clock::ManualClock,
    rate_limit::{Rate, RateLimitLayer},
};
use tower::{BoxError, Layer, Service, ServiceExt, service_fn};

use super::server::RedisCluster;

#[tokio::test]
async fn a_fleet_on_a_cluster_keeps_every_limit() {
    let Some(cluster) = RedisCluster::start() else {
        return;
    };
    let clock = ManualClock::new();
    let mut fleet = Vec::new();
    for _ in 0..2 {
        let layer = RateLimitLayer::builder()
            .name("cluster")
            .token_bucket(Rate::new(1, Duration::from_secs(1)), 3)
            .key(|client: &u64| Some(*client))
            .clock(clock.clone())
            .redis(cluster.connection().await)
            .layer_clock()
            .build()
            .unwrap();
        fleet.push(layer.layer(service_fn(|x: u64| async move { Ok::<_, BoxError>(x) })));
    }
    // 200 clients, 5 requests each over the two instances: 3 admitted each.
    for client in 0..200u64 {
        let mut admitted = 0;
        for i in 0..5 {
            let service = &mut fleet[i % 2];
            if service.ready().await.unwrap().call(client).await.is_ok() {
                admitted += 1;
            }
        }
        assert_eq!(admitted, 3, "client {client}");
    }
    // The keys landed on every master.
    for node in &cluster.nodes {
        let mut connection = node.connection().await;
        let keys: u64 = ::redis::cmd("DBSIZE")
            .query_async(&mut connection)
            .await
            .unwrap();
        assert!(keys > 20, "node {} holds {keys} keys", node.port());
    }
    // A script flushed on every node is loaded again where needed.
    for node in &cluster.nodes {
        let mut connection = node.connection().await;
        let _: () = ::redis::cmd("SCRIPT")
            .arg("FLUSH")
            .query_async(&mut connection)
            .await
            .unwrap();
    }
    clock.advance(Duration::from_secs(1));
    for client in 0..200u64 {
        let service = &mut fleet[(client % 2) as usize];
        assert!(
            service.ready().await.unwrap().call(client).await.is_ok(),
            "client {client}"
        );
        assert!(
            service.ready().await.unwrap().call(client).await.is_err(),
            "client {client}"
        );
    }
}

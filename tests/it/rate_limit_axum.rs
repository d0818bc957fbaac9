//! The rate limiter under axum, over loopback: one limit on a `Router`, many
//! concurrent connections. axum makes a service per connection and clones it
//! per request; the limit holds across all of them (the bug of tower's
//! `RateLimit` under axum, axum#2634, cannot happen). Per-client limits read
//! the peer from axum's `ConnectInfo`.

#![cfg(feature = "axum")]

use crate::common;

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
};

use axum::{Router, routing::get};
use palisade::{
    clock::ManualClock,
    rate_limit::{
        KeyExtractor, Rate, RateLimitLayer, UnitCost,
        http::{ClientIp, Forwarding},
    },
    stack::http::HttpAnswerLayer,
};
use tokio::net::TcpListener;
use tower::ServiceBuilder;

/// The status and `Retry-After` of a GET, sent as the client `client` through
/// a proxy's `X-Forwarded-For` when given.
async fn fetch(sender: &mut common::Sender, client: Option<&str>) -> (u16, Option<String>) {
    let headers: &[(&str, &str)] = match &client {
        Some(client) => &[("x-forwarded-for", client)],
        None => &[],
    };
    let response = common::get(sender, headers).await;
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|value| value.to_str().unwrap().to_owned());
    (response.status().as_u16(), retry_after)
}

/// Serves `limit` in front of a handler that counts the requests reaching it.
async fn serve<X>(
    limit: RateLimitLayer<X, UnitCost, ManualClock>,
    reached: &Arc<AtomicUsize>,
) -> (SocketAddr, tokio::task::JoinHandle<()>)
where
    X: KeyExtractor<axum::extract::Request> + Send + Sync + 'static,
{
    let reached = Arc::clone(reached);
    let app = Router::new()
        .route(
            "/",
            get(move || async move {
                reached.fetch_add(1, Ordering::SeqCst);
                "ok"
            }),
        )
        // No `HandleErrorLayer`: the answer layer makes the error type
        // `Infallible`, as `Router::layer` wants.
        .layer(
            ServiceBuilder::new()
                .layer(HttpAnswerLayer::new())
                .layer(limit),
        );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap()
    });
    (addr, server)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_limit_across_every_connection_and_request() {
    let reached = Arc::new(AtomicUsize::new(0));
    // Never advanced: the burst is all there is.
    let limit = RateLimitLayer::builder()
        .token_bucket(Rate::per_second(1), 20)
        .clock(ManualClock::new())
        .build()
        .unwrap();
    let (addr, server) = serve(limit, &reached).await;

    let clients: Vec<_> = (0..32)
        .map(|_| {
            tokio::spawn(async move {
                let mut sender = common::connect(addr).await;
                let mut answers = Vec::new();
                for _ in 0..10 {
                    answers.push(fetch(&mut sender, None).await);
                }
                answers
            })
        })
        .collect();
    let mut answers = Vec::new();
    for client in clients {
        answers.extend(client.await.unwrap());
    }
    let admitted = answers.iter().filter(|(status, _)| *status == 200).count();
    assert_eq!(
        admitted, 20,
        "a limit per connection would admit 20 on each"
    );
    for (status, retry_after) in &answers {
        if *status != 200 {
            assert_eq!((*status, retry_after.as_deref()), (429, Some("1")));
        }
    }
    assert_eq!(reached.load(Ordering::SeqCst), 20);
    server.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_limit_per_client_behind_a_trusted_proxy() {
    let reached = Arc::new(AtomicUsize::new(0));
    let limit = RateLimitLayer::builder()
        .token_bucket(Rate::per_second(1), 3)
        .key(
            ClientIp::trusting(["127.0.0.1"])
                .unwrap()
                .header(Forwarding::XForwardedFor),
        )
        .clock(ManualClock::new())
        .build()
        .unwrap();
    let (addr, server) = serve(limit, &reached).await;

    // Four clients behind the proxy (this test), two connections each, five
    // requests on each connection; and requests without the header, keyed
    // as the proxy itself.
    let clients = ["203.0.113.1", "203.0.113.2", "2001:db8::3", "198.51.100.4"];
    let tasks: Vec<_> = clients
        .iter()
        .chain(clients.iter())
        .map(|&client| {
            tokio::spawn(async move {
                let mut sender = common::connect(addr).await;
                let mut admitted = 0;
                for _ in 0..5 {
                    if fetch(&mut sender, Some(client)).await.0 == 200 {
                        admitted += 1;
                    }
                }
                (client, admitted)
            })
        })
        .collect();
    let mut per_client: HashMap<&str, usize> = HashMap::new();
    for task in tasks {
        let (client, admitted) = task.await.unwrap();
        *per_client.entry(client).or_default() += admitted;
    }
    assert_eq!(per_client, clients.iter().map(|&c| (c, 3)).collect());
    let mut direct = common::connect(addr).await;
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(fetch(&mut direct, None).await.0);
    }
    assert_eq!(statuses, [200, 200, 200, 429]);
    assert_eq!(reached.load(Ordering::SeqCst), 15);
    server.abort();
}

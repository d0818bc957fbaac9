//! The breaker under axum, over loopback: one layer on a `Router`, many
//! connections. axum makes a service per connection and clones it per
//! request; the breaker is still one breaker.

#![cfg(feature = "http")]

use crate::common;

use std::sync::{
    Arc,
    atomic::{AtomicUsize, Ordering},
};

use axum::{Router, error_handling::HandleErrorLayer, http::StatusCode, routing::get};
use palisade::{
    circuit_breaker::{CircuitBreakerLayer, CircuitState},
    classify::ServerErrorsAsFailures,
    clock::ManualClock,
    error::CircuitOpen,
};
use tokio::net::TcpListener;
use tower::{BoxError, ServiceBuilder};

async fn get_status(sender: &mut common::Sender) -> u16 {
    common::get(sender, &[]).await.status().as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_breaker_across_every_connection_and_request() {
    let reached = Arc::new(AtomicUsize::new(0));
    let clock = ManualClock::new(); // never advanced: once open, open for good
    let breaker = CircuitBreakerLayer::builder()
        .consecutive_failures(5)
        .classifier(ServerErrorsAsFailures::new())
        .clock(clock)
        .build()
        .unwrap();
    let handle = breaker.handle();
    let app = Router::new()
        .route(
            "/",
            get({
                let reached = Arc::clone(&reached);
                move || async move {
                    reached.fetch_add(1, Ordering::SeqCst);
                    StatusCode::INTERNAL_SERVER_ERROR
                }
            }),
        )
        .layer(
            ServiceBuilder::new()
                .layer(HandleErrorLayer::new(|err: BoxError| async move {
                    if err.is::<CircuitOpen>() {
                        StatusCode::SERVICE_UNAVAILABLE
                    } else {
                        StatusCode::INTERNAL_SERVER_ERROR
                    }
                }))
                .layer(breaker),
        );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    // Five failures, each on a connection of its own: a breaker per
    // connection would still be closed on every one of them.
    for _ in 0..5 {
        let mut sender = common::connect(addr).await;
        assert_eq!(get_status(&mut sender).await, 500);
    }
    assert_eq!(handle.state(), CircuitState::Open);

    // Then 32 new connections at once, 10 requests each: all refused, and
    // the handler is never reached again.
    let clients: Vec<_> = (0..32)
        .map(|_| {
            tokio::spawn(async move {
                let mut sender = common::connect(addr).await;
                let mut statuses = Vec::new();
                for _ in 0..10 {
                    statuses.push(get_status(&mut sender).await);
                }
                statuses
            })
        })
        .collect();
    for client in clients {
        assert_eq!(client.await.unwrap(), vec![503; 10]);
    }
    assert_eq!(reached.load(Ordering::SeqCst), 5);
    server.abort();
}

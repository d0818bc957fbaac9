//! A deadline the client chooses (`grpc-timeout`) is the client's business:
//! it cannot open a circuit breaker that every client shares.

use std::time::Duration;

use http::{Request, Response};
use palisade::{
    circuit_breaker::CircuitBreakerLayer,
    error::{DeadlineExceeded, Elapsed},
    retry::RetryLayer,
    stack::http::HttpAnswerLayer,
    timeout::{TimeoutLayer, http::GrpcTimeout},
};
use tower::{BoxError, Service, ServiceBuilder, ServiceExt};

/// A healthy handler: answers in 5 ms.
async fn healthy(_: Request<()>) -> Result<Response<String>, BoxError> {
    tokio::time::sleep(Duration::from_millis(5)).await;
    Ok(Response::new(String::new()))
}

fn asking(grpc_timeout: &str) -> Request<()> {
    Request::builder()
        .header("grpc-timeout", grpc_timeout)
        .body(())
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn requests_asking_for_1ns_do_not_open_the_shared_breaker() {
    for counted in [false, true] {
        let breaker = CircuitBreakerLayer::builder()
            .consecutive_failures(3)
            .count_request_deadlines(counted)
            .build()
            .unwrap();
        let timeout = TimeoutLayer::builder(Duration::from_secs(1))
            .per_request(GrpcTimeout)
            .build()
            .unwrap();
        let mut service = ServiceBuilder::new()
            .layer(HttpAnswerLayer::new())
            .layer(breaker)
            .layer(timeout)
            .service_fn(healthy);
        for i in 0..10 {
            let response = service
                .ready()
                .await
                .unwrap()
                .call(asking("1n"))
                .await
                .unwrap();
            // Counted, three of them open the breaker for everyone.
            let expected = if counted && i >= 3 { 503 } else { 504 };
            assert_eq!(response.status(), expected, "counted: {counted}");
        }
        let response = service
            .ready()
            .await
            .unwrap()
            .call(Request::new(()))
            .await
            .unwrap();
        let expected = if counted { 503 } else { 200 };
        assert_eq!(response.status(), expected, "counted: {counted}");
    }
}

#[tokio::test(start_paused = true)]
async fn only_a_deadline_shorter_than_the_layers_is_the_requests() {
    let timeout = TimeoutLayer::builder(Duration::from_millis(2))
        .per_request(GrpcTimeout)
        .build()
        .unwrap();
    let mut service = ServiceBuilder::new().layer(timeout).service_fn(healthy);
    let err = service
        .ready()
        .await
        .unwrap()
        .call(asking("1m"))
        .await
        .unwrap_err();
    assert!(err.is::<DeadlineExceeded>(), "{err}");
    // Asking for more than the layer's own is capped: the layer's timeout.
    let err = service
        .ready()
        .await
        .unwrap()
        .call(asking("1S"))
        .await
        .unwrap_err();
    assert!(err.is::<Elapsed>(), "{err}");
    let err = service
        .ready()
        .await
        .unwrap()
        .call(Request::new(()))
        .await
        .unwrap_err();
    assert!(err.is::<Elapsed>(), "{err}");
}

#[tokio::test(start_paused = true)]
async fn the_retry_does_not_retry_a_request_whose_own_deadline_is_up() {
    let attempts = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    let counted = attempts.clone();
    let mut service = ServiceBuilder::new()
        .layer(RetryLayer::builder().max_attempts(3).build().unwrap())
        .map_request(move |request: Request<()>| {
            counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            request
        })
        .layer(
            TimeoutLayer::builder(Duration::from_secs(1))
                .per_request(GrpcTimeout)
                .build()
                .unwrap(),
        )
        .service_fn(healthy);
    let err = service
        .ready()
        .await
        .unwrap()
        .call(asking("1u"))
        .await
        .unwrap_err();
    assert!(err.is::<DeadlineExceeded>(), "{err}");
    assert_eq!(attempts.load(std::sync::atomic::Ordering::SeqCst), 1);
}

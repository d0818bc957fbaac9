//! tower's own layers inside palisade's: `LoadShed`'s `Overloaded` is a
//! refusal, `Timeout`'s `Elapsed` a timeout.

use std::{
    future::pending,
    sync::{
        Arc,
        atomic::{AtomicU32, Ordering},
    },
    time::Duration,
};

use http::{Request, Response};
use palisade::{
    circuit_breaker::{CircuitBreakerLayer, CircuitState},
    error::{Rejection, RejectionKind},
    retry::RetryLayer,
    stack::http::HttpAnswerLayer,
};
use tower::{
    BoxError, Service, ServiceBuilder, ServiceExt, limit::ConcurrencyLimitLayer,
    load_shed::LoadShedLayer, timeout::TimeoutLayer,
};

/// A handler that never answers a request for `/stuck`.
async fn handler(request: Request<()>) -> Result<Response<String>, BoxError> {
    if request.uri().path() == "/stuck" {
        pending::<()>().await;
    }
    Ok(Response::new(String::new()))
}

fn get(path: &str) -> Request<()> {
    Request::get(path).body(()).unwrap()
}

#[tokio::test]
async fn load_shed_refusals_neither_open_the_breaker_nor_are_retried_and_answer_503() {
    let breaker = CircuitBreakerLayer::builder()
        .consecutive_failures(3)
        .build()
        .unwrap();
    let state = breaker.handle();
    let reached = Arc::new(AtomicU32::new(0));
    let counted = Arc::clone(&reached);
    let mut service = ServiceBuilder::new()
        .layer(HttpAnswerLayer::new())
        .layer(RetryLayer::builder().max_attempts(3).build().unwrap())
        .layer(breaker)
        .map_request(move |request: Request<()>| {
            counted.fetch_add(1, Ordering::SeqCst);
            request
        })
        .layer(LoadShedLayer::new())
        .layer(ConcurrencyLimitLayer::new(1))
        .service_fn(handler);
    // One call holds the only slot; every other call is shed.
    let stuck = service.ready().await.unwrap().call(get("/stuck"));
    let stuck = tokio::spawn(stuck);
    tokio::task::yield_now().await;
    for _ in 0..5 {
        let response = service.ready().await.unwrap().call(get("/")).await.unwrap();
        assert_eq!(response.status(), 503);
    }
    assert_eq!(state.state(), CircuitState::Closed);
    // Each refused request reached the shedder once: no retries.
    assert_eq!(reached.load(Ordering::SeqCst), 1 + 5);
    stuck.abort();
}

#[tokio::test(start_paused = true)]
async fn tower_timeouts_count_against_the_dependency_and_answer_504() {
    let breaker = CircuitBreakerLayer::builder()
        .consecutive_failures(3)
        .build()
        .unwrap();
    let state = breaker.handle();
    let mut service = ServiceBuilder::new()
        .layer(HttpAnswerLayer::new())
        .layer(breaker)
        .layer(TimeoutLayer::new(Duration::from_millis(10)))
        .service_fn(handler);
    for _ in 0..3 {
        let response = service
            .ready()
            .await
            .unwrap()
            .call(get("/stuck"))
            .await
            .unwrap();
        assert_eq!(response.status(), 504);
    }
    assert_eq!(state.state(), CircuitState::Open);
}

#[test]
fn towers_errors_read_as_palisades_rejections() {
    let shed: BoxError = tower::load_shed::error::Overloaded::new().into();
    let rejection = Rejection::find(&*shed).unwrap();
    assert_eq!(rejection.kind(), RejectionKind::Overloaded);
    assert!(rejection.kind().is_refusal());
    assert_eq!(rejection.name(), "tower::load_shed");
    let elapsed: BoxError = tower::timeout::error::Elapsed::new().into();
    let rejection = Rejection::find(&*elapsed).unwrap();
    assert_eq!(rejection.kind(), RejectionKind::Elapsed);
    assert!(rejection.kind().is_dependency_failure());
}

//! Client stacks over loopback: a hyper client whose retry honours a
//! server's `Retry-After`, and a tonic client whose breaker opens on
//! `UNAVAILABLE`. Each test is bounded: a handful of requests, no waits on
//! the real clock.

#![cfg(feature = "grpc")]

use std::{
    convert::Infallible,
    net::SocketAddr,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::{Bytes, Incoming};
use hyper_util::{
    client::legacy::Client,
    rt::{TokioExecutor, TokioIo},
};
use palisade::{
    circuit_breaker::{CircuitBreakerLayer, CircuitState, OpenDuration},
    classify::{GrpcErrorsAsFailures, GrpcTrailersLayer},
    retry::{
        RetryLayer,
        body::{BufferBodyLayer, ReplayRequests},
        http::HttpRetry,
    },
    stack::http::HttpAnswerLayer,
};
use tokio::net::TcpListener;
use tonic::{
    Code, Status,
    codegen::tokio_stream,
    transport::{Channel, Server, server::TcpIncoming},
};
use tonic_health::pb::{
    HealthCheckRequest, HealthCheckResponse,
    health_check_response::ServingStatus,
    health_client::HealthClient,
    health_server::{Health, HealthServer},
};
use tower::{ServiceBuilder, ServiceExt};

/// An HTTP/1 server on loopback (hyper, with no timer: nothing in it moves
/// tokio's paused clock) that records when each request arrived and answers
/// the first with `503` + `Retry-After: 1`, the others with `200`.
async fn retry_after_server(arrivals: Arc<Mutex<Vec<tokio::time::Instant>>>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            let arrivals = Arc::clone(&arrivals);
            let service = hyper::service::service_fn(move |_: Request<Incoming>| {
                let mut arrivals = arrivals.lock().unwrap();
                arrivals.push(tokio::time::Instant::now());
                let response = match arrivals.len() {
                    1 => Response::builder().status(503).header("retry-after", "1"),
                    _ => Response::builder().status(200),
                };
                std::future::ready(Ok::<_, Infallible>(
                    response.body(Full::new(Bytes::from("ok"))).unwrap(),
                ))
            });
            tokio::spawn(
                hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service),
            );
        }
    });
    addr
}

#[tokio::test(start_paused = true)]
async fn a_503_with_retry_after_is_retried_after_exactly_that_long_over_loopback() {
    let arrivals = Arc::new(Mutex::new(Vec::new()));
    let addr = retry_after_server(Arc::clone(&arrivals)).await;
    let http = Client::builder(TokioExecutor::new()).build_http();
    let client = ServiceBuilder::new()
        .layer(BufferBodyLayer::new(1024))
        .layer(
            RetryLayer::builder()
                .policy(HttpRetry::new())
                .clone_request(ReplayRequests)
                .build()
                .unwrap(),
        )
        .service(http);

    let request = Request::get(format!("http://{addr}/"))
        .body(Empty::<Bytes>::new())
        .unwrap();
    let started = tokio::time::Instant::now();
    let response = client.oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.into_body().collect().await.unwrap().to_bytes(),
        "ok"
    );

    let arrivals = arrivals.lock().unwrap().clone();
    assert_eq!(arrivals.len(), 2);
    // On tokio's paused clock the loopback round trips take no time: the
    // gap is the server's second, not the layer's own backoff (100 ms).
    assert_eq!(arrivals[1] - arrivals[0], Duration::from_secs(1));
    assert_eq!(started.elapsed(), Duration::from_secs(1));
}

/// A health service that is always `UNAVAILABLE`, counting its calls; its
/// `watch` stream sends one message, then ends with `UNAVAILABLE` in the
/// trailers.
#[derive(Clone, Default)]
struct Down {
    calls: Arc<AtomicU64>,
}

#[tonic::async_trait]
impl Health for Down {
    async fn check(
        &self,
        _: tonic::Request<HealthCheckRequest>,
    ) -> Result<tonic::Response<HealthCheckResponse>, Status> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        Err(Status::unavailable("down"))
    }

    type WatchStream = tokio_stream::Iter<std::vec::IntoIter<Result<HealthCheckResponse, Status>>>;

    async fn watch(
        &self,
        _: tonic::Request<HealthCheckRequest>,
    ) -> Result<tonic::Response<Self::WatchStream>, Status> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let serving = HealthCheckResponse {
            status: ServingStatus::Serving.into(),
        };
        let stream = vec![Ok(serving), Err(Status::unavailable("gone"))];
        Ok(tonic::Response::new(tokio_stream::iter(stream)))
    }
}

/// A `Down` health server on loopback, and a channel to it.
async fn serve_down() -> (Down, Channel) {
    let down = Down::default();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = Server::builder()
        .add_service(HealthServer::new(down.clone()))
        .serve_with_incoming(TcpIncoming::from(listener));
    tokio::spawn(server);
    let channel = Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    (down, channel)
}

/// A breaker named `health` that opens for 60 s after `k` failures in a row.
fn breaker(classifier: GrpcErrorsAsFailures, k: u32) -> CircuitBreakerLayer<GrpcErrorsAsFailures> {
    CircuitBreakerLayer::builder()
        .name("health")
        .classifier(classifier)
        .consecutive_failures(k)
        .open_duration(OpenDuration::fixed(Duration::from_secs(60)))
        .build()
        .unwrap()
}

/// The status a client gets when the `health` breaker refuses the call.
fn assert_refused_by_the_breaker(status: &Status) {
    assert!(
        status
            .message()
            .starts_with("circuit breaker `health` is open"),
        "{}",
        status.message()
    );
}

fn check() -> HealthCheckRequest {
    HealthCheckRequest {
        service: String::new(),
    }
}

#[tokio::test]
async fn unavailable_opens_the_breaker_and_the_client_gets_an_immediate_unavailable() {
    let (down, channel) = serve_down().await;

    let breaker = breaker(GrpcErrorsAsFailures::new(), 2);
    let state = breaker.handle();
    let stack = ServiceBuilder::new()
        .layer(HttpAnswerLayer::grpc())
        .layer(breaker)
        .service(channel);
    let mut client = HealthClient::new(stack);

    for _ in 0..2 {
        let status = client.check(check()).await.unwrap_err();
        assert_eq!(
            (status.code(), status.message()),
            (Code::Unavailable, "down")
        );
    }
    assert_eq!(state.state(), CircuitState::Open);
    assert_eq!(down.calls.load(Ordering::SeqCst), 2);

    let status = client.check(check()).await.unwrap_err();
    assert_eq!(status.code(), Code::Unavailable);
    assert_refused_by_the_breaker(&status);
    let pushback: u64 = status
        .metadata()
        .get("grpc-retry-pushback-ms")
        .unwrap()
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(pushback > 59_000 && pushback <= 60_000, "{pushback}");
    // Refused in the client: the server saw nothing more.
    assert_eq!(down.calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn unavailable_in_the_trailers_of_a_stream_opens_the_breaker_when_the_stream_ends() {
    let (down, channel) = serve_down().await;

    let breaker = breaker(GrpcErrorsAsFailures::new().from_trailers(), 1);
    let state = breaker.handle();
    let stack = ServiceBuilder::new()
        .layer(GrpcTrailersLayer::new())
        .layer(HttpAnswerLayer::grpc())
        .layer(breaker)
        .service(channel);
    let mut client = HealthClient::new(stack);

    // The response headers say nothing; the first message is fine.
    let mut stream = client.watch(check()).await.unwrap().into_inner();
    assert!(stream.message().await.unwrap().is_some());
    assert_eq!(state.state(), CircuitState::Closed);

    // The trailers say UNAVAILABLE: counted as the stream ends.
    let status = stream.message().await.unwrap_err();
    assert_eq!(
        (status.code(), status.message()),
        (Code::Unavailable, "gone")
    );
    assert_eq!(state.state(), CircuitState::Open);

    let status = client.check(check()).await.unwrap_err();
    assert_refused_by_the_breaker(&status);
    assert_eq!(down.calls.load(Ordering::SeqCst), 1);
}

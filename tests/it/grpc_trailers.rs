//! A gRPC status that comes in the trailers: the breaker counts the call
//! when the body ends, by the rules of `classify::trailers`.

#![cfg(feature = "grpc")]

use std::{
    convert::Infallible,
    pin::Pin,
    sync::{Arc, Mutex},
    task::{Context, Poll},
    time::Duration,
};

use bytes::Bytes;
use http::{HeaderMap, Response};
use http_body::{Body, Frame};
use http_body_util::{BodyExt, Full, combinators::UnsyncBoxBody};
use palisade::{
    circuit_breaker::{CircuitBreakerHandle, CircuitBreakerLayer, CircuitState, OpenDuration},
    classify::{GrpcErrorsAsFailures, GrpcTrailersLayer},
    clock::ManualClock,
    error::CircuitOpen,
};
use tower::{BoxError, Service, ServiceBuilder, ServiceExt};

type Reply = Response<UnsyncBoxBody<Bytes, BoxError>>;

/// How the next response's body ends.
#[derive(Clone, Copy, Debug)]
enum End {
    /// A message, then trailers with this `grpc-status`.
    Status(&'static str),
    /// A message, then the end, with no trailers.
    NoTrailers,
    /// A message, then an error.
    Error,
}

fn body(end: End) -> UnsyncBoxBody<Bytes, BoxError> {
    let message = Full::new(Bytes::from("message")).map_err(|never: Infallible| match never {});
    match end {
        End::Status(code) => {
            let mut trailers = HeaderMap::new();
            trailers.insert("grpc-status", code.parse().unwrap());
            message
                .with_trailers(async { Some(Ok(trailers)) })
                .boxed_unsync()
        }
        End::NoTrailers => message.boxed_unsync(),
        End::Error => ThenError {
            inner: Some(message),
        }
        .boxed_unsync(),
    }
}

/// A message, then an error.
struct ThenError<B> {
    inner: Option<B>,
}

impl<B: Body<Data = Bytes, Error = BoxError> + Unpin> Body for ThenError<B> {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let Some(inner) = self.inner.as_mut() else {
            return Poll::Ready(None);
        };
        match Pin::new(inner).poll_frame(cx) {
            Poll::Ready(None) => {
                self.inner = None;
                Poll::Ready(Some(Err("stream reset".into())))
            }
            other => other,
        }
    }
}

/// The calls and failures in the breaker's window.
fn counted(breaker: &CircuitBreakerHandle) -> (u64, u64) {
    let metrics = breaker.metrics();
    (metrics.calls, metrics.failures)
}

/// A client: the trailers layer outside a breaker (count window of 10, from
/// the first call, opening at half failed; open 1 s) in front of a server
/// whose responses end as `ends` says, in turn.
fn client(
    clock: &ManualClock,
    ends: Vec<End>,
) -> (
    impl Service<(), Response = Response<impl Body<Data = Bytes, Error = BoxError>>, Error = BoxError>,
    CircuitBreakerHandle,
) {
    let breaker = CircuitBreakerLayer::builder()
        .classifier(GrpcErrorsAsFailures::new().from_trailers())
        .count_window(10)
        .minimum_calls(1)
        .failure_rate(0.5)
        .open_duration(OpenDuration::fixed(Duration::from_secs(1)))
        .clock(clock.clone())
        .build()
        .unwrap();
    let handle = breaker.handle();
    let ends = Arc::new(Mutex::new(ends.into_iter()));
    let service = ServiceBuilder::new()
        .layer(GrpcTrailersLayer::new())
        .layer(breaker)
        .service_fn(move |()| {
            let end = ends.lock().unwrap().next().expect("a scripted response");
            async move { Ok::<Reply, BoxError>(Response::new(body(end))) }
        });
    (service, handle)
}

#[tokio::test]
async fn the_trailers_status_counts_when_the_body_ends() {
    let clock = ManualClock::new();
    let (mut client, breaker) = client(&clock, vec![End::Status("0"), End::Status("14")]);

    let ok = client.ready().await.unwrap().call(()).await.unwrap();
    assert_eq!(
        breaker.metrics().calls,
        0,
        "not counted before the body ends"
    );
    let _ = ok.into_body().collect().await.unwrap();
    assert_eq!(counted(&breaker), (1, 0));

    let unavailable = client.ready().await.unwrap().call(()).await.unwrap();
    assert_eq!(breaker.state(), CircuitState::Closed);
    let _ = unavailable.into_body().collect().await.unwrap();
    assert_eq!(counted(&breaker), (2, 1));
    assert_eq!(breaker.state(), CircuitState::Open);
}

#[tokio::test]
async fn a_body_error_is_a_failure_and_no_status_at_the_end_a_success() {
    let clock = ManualClock::new();
    let (mut client, breaker) = client(&clock, vec![End::NoTrailers, End::NoTrailers, End::Error]);

    for _ in 0..2 {
        let response = client.ready().await.unwrap().call(()).await.unwrap();
        let _ = response.into_body().collect().await.unwrap();
    }
    assert_eq!(counted(&breaker), (2, 0));

    let response = client.ready().await.unwrap().call(()).await.unwrap();
    assert!(response.into_body().collect().await.is_err());
    assert_eq!(counted(&breaker), (3, 1));
    assert_eq!(breaker.state(), CircuitState::Closed);
}

#[tokio::test]
async fn a_body_dropped_before_its_end_is_ignored_and_frees_the_probe() {
    let clock = ManualClock::new();
    let (mut client, breaker) = client(
        &clock,
        vec![End::Status("14"), End::Status("0"), End::Status("0")],
    );

    let failed = client.ready().await.unwrap().call(()).await.unwrap();
    let _ = failed.into_body().collect().await.unwrap();
    assert_eq!(breaker.state(), CircuitState::Open);
    clock.advance(Duration::from_secs(1));
    assert_eq!(breaker.state(), CircuitState::HalfOpen);

    // One probe at a time: while this one's body is unread, others are refused.
    let probe = client.ready().await.unwrap().call(()).await.unwrap();
    assert_eq!(breaker.metrics().probes_in_flight, 1);
    let refused = client
        .ready()
        .await
        .unwrap()
        .call(())
        .await
        .err()
        .expect("refused");
    assert!(refused.is::<CircuitOpen>());

    // Dropped before its end: ignored, and the slot is free again.
    drop(probe);
    assert_eq!(breaker.metrics().probes_in_flight, 0);
    assert_eq!(breaker.state(), CircuitState::HalfOpen);
    let next = client.ready().await.unwrap().call(()).await.unwrap();
    let _ = next.into_body().collect().await.unwrap();
    assert_eq!(breaker.metrics().probes_in_flight, 0);
}

#[test]
fn a_body_without_a_report_says_what_its_inner_body_says() {
    use palisade::classify::trailers::GrpcStatusBody;
    // Without a pending report the body says what the inner body says.
    let plain = GrpcStatusBody::new(Full::new(Bytes::new()));
    assert!(plain.is_end_stream());
    let message = GrpcStatusBody::new(Full::new(Bytes::from("message")));
    assert!(!message.is_end_stream());
    assert_eq!(message.size_hint().exact(), Some(7));
    let shown = format!("{message:?}");
    assert!(shown.starts_with("GrpcStatusBody { inner: Full"), "{shown}");
    assert!(shown.ends_with(", pending: false }"), "{shown}");
}

#[test]
fn readiness_is_the_wrapped_service_s() {
    use tower::Layer;
    let (mock, mut handle) = tower_test::mock::pair::<(), Response<Full<Bytes>>>();
    handle.allow(0);
    let mut service = tower_test::mock::Spawn::new(GrpcTrailersLayer::new().layer(mock));
    assert!(service.poll_ready().is_pending());
    handle.allow(1);
    assert!(service.is_woken());
    assert!(matches!(service.poll_ready(), Poll::Ready(Ok(()))));
}

#[tokio::test]
async fn an_empty_body_still_reports_its_end() {
    // An empty body says it is at its end before any poll; the wrapper keeps
    // saying no while the report is pending, so the end is polled and the
    // call counted.
    let clock = ManualClock::new();
    let breaker = CircuitBreakerLayer::builder()
        .classifier(GrpcErrorsAsFailures::new().from_trailers())
        .count_window(10)
        .minimum_calls(1)
        .clock(clock)
        .build()
        .unwrap();
    let handle = breaker.handle();
    let mut client = ServiceBuilder::new()
        .layer(GrpcTrailersLayer::new())
        .layer(breaker)
        .service_fn(|()| async { Ok::<_, BoxError>(Response::new(Full::new(Bytes::new()))) });

    let response = client.ready().await.unwrap().call(()).await.unwrap();
    let body = response.into_body();
    assert!(!body.is_end_stream());
    let _ = body.collect().await.unwrap();
    assert_eq!(handle.metrics().calls, 1);
}

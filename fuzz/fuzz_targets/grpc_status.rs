//! `grpc-status` in the headers of a trailers-only response and in the
//! trailers at the end of a body: one reading, one answer; a value that is
//! not digits (around HTTP's optional whitespace) is UNKNOWN.
#![no_main]

use std::{
    convert::Infallible,
    future::Future,
    pin::pin,
    task::{Context, Poll, Waker},
};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Response};
use http_body::Body;
use http_body_util::{BodyExt, Empty, Full, combinators::UnsyncBoxBody};
use libfuzzer_sys::fuzz_target;
use palisade::{
    circuit_breaker::{CircuitBreakerLayer, CircuitState},
    classify::{GrpcCode, GrpcErrorsAsFailures, GrpcTrailersLayer, grpc_status},
    clock::ManualClock,
};
use palisade_fuzz::values;
use tower::{BoxError, Service, ServiceBuilder};

type Reply = Response<UnsyncBoxBody<Bytes, BoxError>>;

fn ready<F: Future>(future: F) -> F::Output {
    match pin!(future).poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(output) => output,
        Poll::Pending => unreachable!("nothing here waits"),
    }
}

/// Whether one call answered with `status` opens a breaker that opens at
/// the first failure.
fn opens(status: &HeaderValue, in_trailers: bool) -> bool {
    let breaker = CircuitBreakerLayer::builder()
        .consecutive_failures(1)
        .classifier(GrpcErrorsAsFailures::new().from_trailers())
        .clock(ManualClock::new())
        .build()
        .unwrap();
    let handle = breaker.handle();
    let status = status.clone();
    let mut service = ServiceBuilder::new()
        .layer(GrpcTrailersLayer::new())
        .layer(breaker)
        .service_fn(move |_: http::Request<()>| {
            let response = if in_trailers {
                let mut trailers = HeaderMap::new();
                trailers.insert("grpc-status", status.clone());
                let message = Full::new(Bytes::from_static(b"message"))
                    .map_err(|never: Infallible| match never {});
                Response::new(
                    message
                        .with_trailers(std::future::ready(Some(Ok(trailers))))
                        .boxed_unsync(),
                )
            } else {
                let empty = Empty::new().map_err(|never: Infallible| match never {});
                let mut response = Response::new(empty.boxed_unsync());
                response.headers_mut().insert("grpc-status", status.clone());
                response
            };
            std::future::ready(Ok::<Reply, BoxError>(response))
        });
    let response = ready(service.call(http::Request::new(()))).unwrap();
    let mut body = pin!(response.into_body());
    while let Poll::Ready(Some(frame)) = body
        .as_mut()
        .poll_frame(&mut Context::from_waker(Waker::noop()))
    {
        frame.unwrap();
    }
    handle.state() == CircuitState::Open
}

fuzz_target!(|data: &[u8]| {
    let Some(Some(status)) = values(data).into_iter().next() else {
        return;
    };
    assert_eq!(opens(&status, false), opens(&status, true), "{status:?}");
    // Header values hold no control character but the tab: trimming ASCII
    // whitespace trims HTTP's optional whitespace.
    let digits = status.as_bytes().trim_ascii();
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        assert!(
            matches!(grpc_status(&status), GrpcCode::Unknown),
            "{status:?}"
        );
    }
});

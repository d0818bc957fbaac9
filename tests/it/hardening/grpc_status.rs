//! `grpc-status` has one reading: in the headers of a trailers-only response
//! and in the trailers at the end of a body, every value gets the same
//! answer.

use std::convert::Infallible;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Response};
use http_body_util::{BodyExt, Empty, Full, combinators::UnsyncBoxBody};
use palisade::{
    circuit_breaker::{CircuitBreakerLayer, CircuitState},
    classify::{GrpcErrorsAsFailures, GrpcTrailersLayer},
};
use proptest::{prelude::*, test_runner::FileFailurePersistence};
use tower::{BoxError, Service, ServiceBuilder, ServiceExt};

type Body = UnsyncBoxBody<Bytes, BoxError>;

/// Whether one call answered with `status` — in the headers, or else in the
/// trailers — opens a breaker that opens at the first failure.
async fn opens(status: &HeaderValue, in_trailers: bool) -> bool {
    let breaker = CircuitBreakerLayer::builder()
        .consecutive_failures(1)
        .classifier(GrpcErrorsAsFailures::new().from_trailers())
        .build()
        .unwrap();
    let handle = breaker.handle();
    let status = status.clone();
    let mut service = ServiceBuilder::new()
        .layer(GrpcTrailersLayer::new())
        .layer(breaker)
        .service_fn(move |_: http::Request<()>| {
            let status = status.clone();
            async move {
                let response = if in_trailers {
                    let mut trailers = HeaderMap::new();
                    trailers.insert("grpc-status", status);
                    let message = Full::new(Bytes::from("message"))
                        .map_err(|never: Infallible| match never {});
                    Response::new(
                        message
                            .with_trailers(async { Some(Ok(trailers)) })
                            .boxed_unsync(),
                    )
                } else {
                    let empty = Empty::new().map_err(|never: Infallible| match never {});
                    let mut response = Response::new(empty.boxed_unsync());
                    response.headers_mut().insert("grpc-status", status);
                    response
                };
                Ok::<Response<Body>, BoxError>(response)
            }
        });
    let response = service
        .ready()
        .await
        .unwrap()
        .call(http::Request::new(()))
        .await
        .unwrap();
    response.into_body().collect().await.unwrap();
    handle.state() == CircuitState::Open
}

fn agree(status: &HeaderValue) -> (bool, bool) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    runtime.block_on(async { (opens(status, false).await, opens(status, true).await) })
}

#[test]
fn spaces_and_tabs_get_one_answer_in_headers_and_trailers() {
    for (value, failure) in [
        ("14", true),
        (" 14", true),
        ("\t14", true),
        ("14 \t", true),
        ("0", false),
        (" 0 ", false),
        ("5", false),
        ("014", true),
        ("+14", true), // not digits: UNKNOWN
        ("1 4", true),
        ("", true),
        ("4294967310", true),
    ] {
        let status = HeaderValue::from_str(value).unwrap();
        assert_eq!(agree(&status), (failure, failure), "{value:?}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: crate::cases(512),
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(
            "tests/it/hardening/grpc_status.proptest-regressions",
        ))),
        ..ProptestConfig::default()
    })]

    #[test]
    fn any_value_gets_one_answer(
        bytes in proptest::collection::vec(
            prop_oneof![
                4 => proptest::sample::select(b" \t0123456789+-".to_vec()),
                1 => 0x20u8..=0x7e,
                1 => 0x80u8..=0xff,
            ],
            0..6,
        ),
    ) {
        let status = HeaderValue::from_bytes(&bytes).unwrap();
        let (in_headers, in_trailers) = agree(&status);
        prop_assert_eq!(in_headers, in_trailers, "{:?}", status);
    }
}

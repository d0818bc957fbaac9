//! `grpc-retry-pushback-ms` on an UNAVAILABLE trailers-only response: a
//! negative value stops the retries, a number is the wait (capped, never
//! below the backoff), anything else leaves the backoff.
#![no_main]

use libfuzzer_sys::fuzz_target;
use palisade::retry::{
    Decision,
    http::{GrpcRetry, grpc_pushback},
};
use palisade_fuzz::{BACKOFF, MAX_PUSHBACK, expected_wait, values, wait_after};

fuzz_target!(|data: &[u8]| {
    let Some(Some(value)) = values(data).into_iter().next() else {
        return;
    };
    let mut response = http::Response::builder()
        .header("grpc-status", "14")
        .body(())
        .unwrap();
    response
        .headers_mut()
        .insert("grpc-retry-pushback-ms", value);
    let asked = grpc_pushback(response.headers());
    let waited = wait_after(GrpcRetry::new(), response);
    match asked {
        Some(Decision::Accept) => assert_eq!(waited, None),
        Some(Decision::RetryAfter(asked)) => assert_eq!(waited, Some(expected_wait(asked))),
        Some(Decision::Retry) | None => assert_eq!(waited, Some(BACKOFF)),
    }
    if let Some(waited) = waited {
        assert!(waited <= MAX_PUSHBACK);
    }
});

//! `Retry-After` (the first line; the second, if any, is the response's
//! `Date`): the wait it causes is what the parser read, capped, never below
//! the backoff — and never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;
use palisade::retry::http::{HttpRetry, retry_after};
use palisade_fuzz::{BACKOFF, MAX_PUSHBACK, expected_wait, values, wait_after};

fuzz_target!(|data: &[u8]| {
    let mut lines = values(data).into_iter();
    let Some(Some(value)) = lines.next() else {
        return;
    };
    let mut response = http::Response::builder().status(503).body(()).unwrap();
    response.headers_mut().insert("retry-after", value);
    if let Some(Some(date)) = lines.next() {
        response.headers_mut().insert("date", date);
    }
    let asked = retry_after(response.headers());
    let waited = wait_after(HttpRetry::new(), response).expect("a 503 to a GET is retried");
    assert!(waited >= BACKOFF && waited <= MAX_PUSHBACK, "{waited:?}");
    // With a `Date`, the reading does not depend on the time of the run.
    if let Some(asked) = asked {
        assert_eq!(waited, expected_wait(asked));
    } else {
        assert_eq!(waited, BACKOFF);
    }
});

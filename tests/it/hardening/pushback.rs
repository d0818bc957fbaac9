//! A server's pushback can lengthen a retry's wait, never shorten it below
//! the backoff, and never hold a request without bound.

use std::{
    future::Future,
    sync::{Arc, Mutex},
    task::Poll,
    time::Duration,
};

use palisade::{
    circuit_breaker::CircuitBreakerLayer,
    clock::{Clock, Instant, ManualClock},
    retry::{Backoff, Decision, RetryLayer},
};
use tokio_test::task;
use tower::{BoxError, Layer, Service, ServiceExt, service_fn};

const MS: Duration = Duration::from_millis(1);

fn drive<F: Future>(clock: &ManualClock, future: F) -> F::Output {
    let mut future = task::spawn(future);
    loop {
        if let Poll::Ready(output) = future.poll() {
            return output;
        }
        clock.set(
            clock
                .next_deadline()
                .expect("a pending retry sleeps on the clock"),
        );
    }
}

/// When the second attempt starts, if the first is answered with a
/// pushback of `asked`.
fn second_attempt_after(asked: Duration, may_shorten: bool) -> Duration {
    let clock = ManualClock::new();
    let calls = Arc::new(Mutex::new(Vec::<Instant>::new()));
    let inner = service_fn({
        let (clock, calls) = (clock.clone(), Arc::clone(&calls));
        move |_: u32| {
            calls.lock().unwrap().push(clock.now());
            std::future::ready(Ok::<u32, BoxError>(503))
        }
    });
    let layer = RetryLayer::builder()
        .max_attempts(2)
        .backoff(Backoff::constant(100 * MS))
        .policy(move |_: &u32, _: &Result<u32, BoxError>| Decision::RetryAfter(asked))
        .pushback_may_shorten(may_shorten)
        .clock(clock.clone())
        .build()
        .unwrap();
    let mut service = layer.layer(inner);
    drive(&clock, async { service.ready().await?.call(1).await }).unwrap();
    let calls = calls.lock().unwrap();
    calls[1] - calls[0]
}

#[test]
fn a_pushback_of_zero_does_not_turn_the_backoff_into_an_immediate_retry() {
    assert_eq!(second_attempt_after(Duration::ZERO, false), 100 * MS);
    assert_eq!(second_attempt_after(30 * MS, false), 100 * MS);
    // Longer than the backoff: the server's wait.
    assert_eq!(
        second_attempt_after(Duration::from_secs(3), false),
        Duration::from_secs(3)
    );
    // Trusted to the letter when asked to.
    assert_eq!(second_attempt_after(Duration::ZERO, true), Duration::ZERO);
    assert_eq!(second_attempt_after(30 * MS, true), 30 * MS);
}

#[cfg(feature = "http")]
#[test]
fn a_retry_after_date_in_the_past_waits_the_backoff() {
    let past = http::Response::builder()
        .status(503)
        .header("retry-after", "Wed, 21 Oct 2015 07:28:00 GMT")
        .body(())
        .unwrap();
    let asked = palisade::retry::http::retry_after(past.headers()).unwrap_or_default();
    assert_eq!(asked, Duration::ZERO);
    assert_eq!(second_attempt_after(asked, false), 100 * MS);
}

#[test]
fn an_unbounded_pushback_cap_is_refused() {
    let err = RetryLayer::builder()
        .max_pushback(Duration::MAX)
        .build()
        .unwrap_err();
    assert_eq!(err.field(), "max_pushback");
    assert!(
        RetryLayer::builder()
            .max_pushback(Duration::from_secs(3600))
            .build()
            .is_ok()
    );
    let err = CircuitBreakerLayer::builder()
        .max_pushback(Duration::MAX)
        .build()
        .unwrap_err();
    assert_eq!(err.field(), "max_pushback");
}

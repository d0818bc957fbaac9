//! At the last instants a clock can tell, every layer keeps its meaning: a
//! limit still limits, a timeout does not fire early, an open breaker stays
//! open, a retry does not wait past the end.

use std::{
    future::{Future, pending},
    pin::pin,
    task::{Context, Poll, Waker},
    time::Duration,
};

use palisade::{
    circuit_breaker::{CircuitBreakerLayer, CircuitState, OpenDuration},
    clock::{Instant, ManualClock},
    error::{CircuitOpen, RateLimited},
    rate_limit::{Rate, RateLimitLayer},
    retry::RetryLayer,
    timeout::TimeoutLayer,
};
use tower::{BoxError, Layer, Service, service_fn};

/// The clock at `instant`.
fn at(instant: Instant) -> ManualClock {
    let clock = ManualClock::new();
    clock.set(instant);
    clock
}

/// The instants tested: the very last, and a moment before it.
fn ends() -> [Instant; 3] {
    [
        Instant::MAX,
        Instant::MAX.saturating_sub(Duration::from_nanos(1)),
        Instant::MAX.saturating_sub(Duration::from_millis(500)),
    ]
}

fn poll_once<F: Future>(future: F) -> Poll<F::Output> {
    pin!(future).poll(&mut Context::from_waker(Waker::noop()))
}

#[test]
fn a_limit_still_limits() {
    for end in ends() {
        let clock = at(end);
        let limits = [
            RateLimitLayer::builder().token_bucket(Rate::per_second(1), 1),
            RateLimitLayer::builder().sliding_window(1, Duration::from_secs(1), 10),
            RateLimitLayer::builder().sliding_log(1, Duration::from_secs(1)),
            RateLimitLayer::builder().fixed_window(1, Duration::from_secs(1)),
        ];
        for limit in limits {
            let layer = limit.clock(clock.clone()).build().unwrap();
            let mut service = layer.layer(service_fn(|_: ()| async { Ok::<_, BoxError>(()) }));
            // Room comes only past the end of the clock: a refusal says to
            // come back at the end (1 ns at the very end).
            let to_the_end = Instant::MAX
                .saturating_duration_since(end)
                .max(Duration::from_nanos(1));
            let admitted = (0..10)
                .filter(|_| match poll_once(service.call(())) {
                    Poll::Ready(Ok(())) => true,
                    Poll::Ready(Err(err)) => {
                        let refused = err.downcast_ref::<RateLimited>().expect("RateLimited");
                        assert_eq!(refused.retry_after(), Some(to_the_end), "{layer:?}");
                        false
                    }
                    Poll::Pending => unreachable!("reject mode decides at once"),
                })
                .count();
            assert!(admitted <= 1, "{layer:?} admitted {admitted} at {end:?}");
        }
    }
}

#[test]
fn a_timeout_does_not_fire_early() {
    for end in ends() {
        let clock = at(end);
        let layer = TimeoutLayer::builder(Duration::from_secs(3600))
            .clock(clock.clone())
            .build()
            .unwrap();
        let mut service = layer.layer(service_fn(|_: ()| pending::<Result<(), BoxError>>()));
        let mut call = pin!(service.call(()));
        let mut cx = Context::from_waker(Waker::noop());
        assert!(
            call.as_mut().poll(&mut cx).is_pending(),
            "fired at once at {end:?}"
        );
        clock.set(Instant::MAX);
        assert!(
            call.as_mut().poll(&mut cx).is_pending(),
            "fired before an hour at {end:?}"
        );
    }
}

#[test]
fn an_open_breaker_stays_open() {
    for end in ends() {
        let clock = at(end);
        let layer = CircuitBreakerLayer::builder()
            .consecutive_failures(1)
            .open_duration(OpenDuration::fixed(Duration::from_secs(30)))
            .clock(clock.clone())
            .build()
            .unwrap();
        let handle = layer.handle();
        let mut service = layer.layer(service_fn(|_: ()| async {
            Err::<(), BoxError>("down".into())
        }));
        assert!(matches!(poll_once(service.call(())), Poll::Ready(Err(_))));
        clock.set(Instant::MAX);
        assert_eq!(handle.state(), CircuitState::Open, "at {end:?}");
        match poll_once(service.call(())) {
            Poll::Ready(Err(err)) => assert!(err.is::<CircuitOpen>(), "{err}"),
            _ => panic!("an open breaker let a call through at {end:?}"),
        }
    }
}

#[test]
fn a_retry_does_not_wait_past_the_end() {
    let clock = at(Instant::MAX);
    let layer = RetryLayer::builder()
        .max_attempts(3)
        .clock(clock.clone())
        .build()
        .unwrap();
    let mut service = layer.layer(service_fn(|_: ()| async {
        Err::<(), BoxError>("down".into())
    }));
    // No backoff can end before the clock does: the first error is the answer.
    assert!(matches!(poll_once(service.call(())), Poll::Ready(Err(_))));
    assert_eq!(clock.sleepers(), 0);
}

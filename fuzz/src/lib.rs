//! What the fuzz targets share: header values from raw input, and a retry
//! driven on a manual clock to measure the wait a response causes.

use std::{
    future::Future,
    pin::pin,
    sync::{Arc, Mutex},
    task::{Context, Poll, Waker},
    time::Duration,
};

use http::{HeaderValue, Request, Response};
use palisade::{
    clock::{Clock, Instant, ManualClock},
    retry::{Backoff, RetryLayer, RetryPolicy},
};
use tower::{BoxError, Layer, Service, ServiceExt, service_fn};

/// The backoff of [`wait_after`]'s retry.
pub const BACKOFF: Duration = Duration::from_millis(100);
/// The pushback cap of [`wait_after`]'s retry.
pub const MAX_PUSHBACK: Duration = Duration::from_secs(10);

/// The lines of `data`, each a header value when it can be one.
pub fn values(data: &[u8]) -> Vec<Option<HeaderValue>> {
    data.split(|&b| b == b'\n')
        .map(|line| HeaderValue::from_bytes(line).ok())
        .collect()
}

/// Polls `future` to its end, moving `clock` to each sleep's deadline.
pub fn drive<F: Future>(clock: &ManualClock, future: F) -> F::Output {
    let mut future = pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
        let next = clock
            .next_deadline()
            .expect("a pending call sleeps on the clock");
        clock.set(next);
    }
}

/// How long a GET retried by `policy` waits after a first answer of
/// `first` (then `200`); `None` when it is not retried. Backoff 100 ms,
/// pushback capped at 10 s.
pub fn wait_after<P>(policy: P, first: Response<()>) -> Option<Duration>
where
    P: RetryPolicy<Request<()>, Response<()>> + Send + Sync + 'static,
{
    let clock = ManualClock::new();
    let calls = Arc::new(Mutex::new(Vec::<Instant>::new()));
    let first = Arc::new(Mutex::new(Some(first)));
    let inner = service_fn({
        let (clock, calls) = (clock.clone(), Arc::clone(&calls));
        move |_: Request<()>| {
            calls.lock().unwrap().push(clock.now());
            let answer = first
                .lock()
                .unwrap()
                .take()
                .unwrap_or_else(|| Response::new(()));
            std::future::ready(Ok::<_, BoxError>(answer))
        }
    });
    let layer = RetryLayer::builder()
        .max_attempts(2)
        .backoff(Backoff::constant(BACKOFF))
        .max_pushback(MAX_PUSHBACK)
        .policy(policy)
        .clock(clock.clone())
        .build()
        .unwrap();
    let mut service = layer.layer(inner);
    drive(&clock, async {
        service.ready().await?.call(Request::new(())).await
    })
    .unwrap();
    let calls = calls.lock().unwrap();
    (calls.len() == 2).then(|| calls[1] - calls[0])
}

/// The wait a retry takes for a server's ask of `asked`: capped by the
/// layer, and never below the backoff.
pub fn expected_wait(asked: Duration) -> Duration {
    asked.min(MAX_PUSHBACK).max(BACKOFF)
}

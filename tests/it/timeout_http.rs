//! Deadlines that travel with HTTP requests, and `grpc-timeout`.

#![cfg(feature = "http")]

use std::time::Duration;

use palisade::{
    clock::{Clock, ManualClock},
    error::DeadlineExceeded,
    timeout::{
        TimeoutFor, TimeoutLayer,
        http::{Deadline, DeadlineLayer, GrpcTimeout, RemainingTime},
    },
};
use tokio_test::{assert_pending, assert_ready, task};
use tower::{BoxError, Layer, Service, ServiceBuilder, service_fn};

const MS: Duration = Duration::from_millis(1);

#[test]
fn an_attempt_gets_no_more_than_the_time_left_before_the_deadline() {
    let clock = ManualClock::new();
    let per_attempt = TimeoutLayer::builder(Duration::from_secs(1))
        .per_request(RemainingTime::new(clock.clone()))
        .clock(clock.clone())
        .build()
        .unwrap();
    let hang = service_fn(|_: http::Request<()>| std::future::pending::<Result<(), BoxError>>());
    let mut service = ServiceBuilder::new()
        .layer(DeadlineLayer::new(250 * MS, clock.clone()))
        .layer(per_attempt)
        .service(hang);
    let start = clock.now();
    let mut call = task::spawn(service.call(http::Request::new(())));
    assert_pending!(call.poll());
    clock.advance(250 * MS - Duration::from_nanos(1));
    assert_pending!(call.poll());
    clock.advance(Duration::from_nanos(1));
    // Cut short by the request's deadline, not the layer's own timeout.
    assert!(
        assert_ready!(call.poll())
            .unwrap_err()
            .is::<DeadlineExceeded>()
    );
    assert_eq!(clock.now() - start, 250 * MS);
}

#[test]
fn an_earlier_deadline_already_on_the_request_is_kept() {
    let clock = ManualClock::new();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(None));
    let record = service_fn({
        let seen = std::sync::Arc::clone(&seen);
        move |request: http::Request<()>| {
            *seen.lock().unwrap() = request.extensions().get::<Deadline>().copied();
            std::future::ready(Ok::<_, BoxError>(()))
        }
    });
    let mut service = DeadlineLayer::new(Duration::from_secs(10), clock.clone()).layer(record);
    let mut request = http::Request::new(());
    let earlier = Deadline(clock.now() + Duration::from_secs(1));
    request.extensions_mut().insert(earlier);
    assert_ready!(task::spawn(service.call(request)).poll()).unwrap();
    assert_eq!(*seen.lock().unwrap(), Some(earlier));
    assert_ready!(task::spawn(service.call(http::Request::new(()))).poll()).unwrap();
    assert_eq!(
        *seen.lock().unwrap(),
        Some(Deadline(clock.now() + Duration::from_secs(10)))
    );
}

#[test]
fn grpc_timeout_is_read_in_every_unit_and_garbage_is_ignored() {
    let asked = |value: &[u8]| {
        let request = http::Request::builder()
            .header(
                "grpc-timeout",
                http::HeaderValue::from_bytes(value).unwrap(),
            )
            .body(())
            .unwrap();
        GrpcTimeout.timeout_for(&request)
    };
    assert_eq!(asked(b"2H"), Some(Duration::from_secs(7200)));
    assert_eq!(asked(b"3M"), Some(Duration::from_secs(180)));
    assert_eq!(asked(b"4S"), Some(Duration::from_secs(4)));
    assert_eq!(asked(b"5m"), Some(Duration::from_millis(5)));
    assert_eq!(asked(b"6u"), Some(Duration::from_micros(6)));
    assert_eq!(asked(b"99999999n"), Some(Duration::from_nanos(99_999_999)));
    for garbage in [
        &b"123456789S"[..],
        b"S",
        b"10",
        b"-5S",
        b"5s",
        b"1.5S",
        b"5 S",
        b"\xff5S",
    ] {
        assert_eq!(
            asked(garbage),
            None,
            "{:?}",
            String::from_utf8_lossy(garbage)
        );
    }
    assert_eq!(GrpcTimeout.timeout_for(&http::Request::new(())), None);
}

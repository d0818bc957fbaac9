//! `grpc-timeout`: at most 8 digits and a unit, or nothing; and the timeout
//! layer's timer is set to the smaller of the ask and its own timeout.
#![no_main]

use std::{
    future::Future,
    pin::pin,
    task::{Context, Waker},
    time::Duration,
};

use libfuzzer_sys::fuzz_target;
use palisade::{
    clock::{Clock, ManualClock},
    timeout::{TimeoutFor, TimeoutLayer, http::GrpcTimeout},
};
use palisade_fuzz::values;
use tower::{BoxError, Layer, Service, service_fn};

const OWN: Duration = Duration::from_secs(1);

/// The reading the gRPC protocol gives: `1*8DIGIT` and a unit.
fn reference(value: &[u8]) -> Option<Duration> {
    let (unit, digits) = value.split_last()?;
    if digits.is_empty() || digits.len() > 8 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let amount: u64 = std::str::from_utf8(digits).ok()?.parse().ok()?;
    Some(match unit {
        b'H' => Duration::from_secs(amount * 3600),
        b'M' => Duration::from_secs(amount * 60),
        b'S' => Duration::from_secs(amount),
        b'm' => Duration::from_millis(amount),
        b'u' => Duration::from_micros(amount),
        b'n' => Duration::from_nanos(amount),
        _ => return None,
    })
}

fuzz_target!(|data: &[u8]| {
    let Some(Some(value)) = values(data).into_iter().next() else {
        return;
    };
    let request = http::Request::builder()
        .header("grpc-timeout", value.clone())
        .body(())
        .unwrap();
    let asked = GrpcTimeout.timeout_for(&request);
    assert_eq!(asked, reference(value.as_bytes()), "{value:?}");

    let clock = ManualClock::new();
    let layer = TimeoutLayer::builder(OWN)
        .per_request(GrpcTimeout)
        .clock(clock.clone())
        .build()
        .unwrap();
    let mut service = layer.layer(service_fn(|_: http::Request<()>| {
        std::future::pending::<Result<(), BoxError>>()
    }));
    let mut call = pin!(service.call(request));
    let polled = call.as_mut().poll(&mut Context::from_waker(Waker::noop()));
    let timeout = asked.map_or(OWN, |asked| asked.min(OWN));
    if timeout.is_zero() {
        // Asked for no time at all: over at once.
        assert!(polled.is_ready());
    } else {
        assert!(polled.is_pending());
        let timer = clock.next_deadline().expect("the timer is armed") - clock.now();
        assert_eq!(timer, timeout);
    }
});

//! The HTTP and gRPC retry presets, and the pushback parsers against hostile
//! servers.

#![cfg(feature = "grpc")]

use std::{
    collections::VecDeque,
    sync::{Arc, Mutex},
    task::Poll,
    time::Duration,
};

use palisade::{
    clock::{Clock, Instant, ManualClock},
    retry::{
        Decision, RetryLayer, RetryPolicy,
        http::{GrpcRetry, HttpRetry, grpc_pushback, retry_after},
    },
};
use tokio_test::task;
use tower::{BoxError, Layer, Service, ServiceExt, service_fn};

/// A failed exchange: no response.
fn failed(reason: &str) -> Result<http::Response<()>, BoxError> {
    Err(reason.into())
}

fn headers(pairs: &[(&str, &str)]) -> http::HeaderMap {
    pairs
        .iter()
        .map(|(name, value)| {
            (
                http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                http::HeaderValue::from_bytes(value.as_bytes()).unwrap(),
            )
        })
        .collect()
}

#[test]
fn retry_after_reads_seconds_and_all_three_date_forms() {
    let secs = Duration::from_secs;
    assert_eq!(
        retry_after(&headers(&[("retry-after", "0")])),
        Some(secs(0))
    );
    assert_eq!(
        retry_after(&headers(&[("retry-after", " 17 ")])),
        Some(secs(17))
    );
    let epoch = ("date", "Thu, 01 Jan 1970 00:00:00 GMT");
    // 1994-11-06T08:49:37Z is 784 111 777 s after the epoch, in every form.
    for date in [
        "Sun, 06 Nov 1994 08:49:37 GMT",
        "Sunday, 06-Nov-94 08:49:37 GMT",
        "Sun Nov  6 08:49:37 1994",
    ] {
        assert_eq!(
            retry_after(&headers(&[epoch, ("retry-after", date)])),
            Some(secs(784_111_777)),
            "{date}"
        );
    }
    // Leap days, and a date already past.
    let leap = headers(&[
        ("date", "Wed, 28 Feb 2024 23:59:59 GMT"),
        ("retry-after", "Thu, 29 Feb 2024 00:00:09 GMT"),
    ]);
    assert_eq!(retry_after(&leap), Some(secs(10)));
    let past = headers(&[
        ("date", "Sun, 06 Nov 1994 08:49:37 GMT"),
        ("retry-after", "Sat, 05 Nov 1994 08:49:37 GMT"),
    ]);
    assert_eq!(retry_after(&past), Some(Duration::ZERO));
}

#[test]
fn garbage_pushback_is_ignored() {
    for value in [
        "-5",
        "1.5",
        "+3",
        "",
        "soon",
        "99999999999999999999999",
        "Sun, 06 Nov 1994 25:00:00 GMT",
        "Sun, 30 Feb 1994 08:49:37 GMT",
        "Sun, 29 Feb 1900 08:49:37 GMT",
        "Sun, 06 Nov 94 08:49:37 GMT",
        "Sun, 06 Foo 1994 08:49:37 GMT",
        "Sun, 06 Nov 1994 08:49:37 PST",
        "Sun, 06 Nov 1994 8:49:37 GMT",
        "Sun, 06 Nov 19940 08:49:37 GMT",
    ] {
        assert_eq!(
            retry_after(&headers(&[("retry-after", value)])),
            None,
            "{value:?}"
        );
    }
    let mut non_ascii = http::HeaderMap::new();
    non_ascii.insert(
        "retry-after",
        http::HeaderValue::from_bytes(b"\xff12").unwrap(),
    );
    assert_eq!(retry_after(&non_ascii), None);
    for value in ["", "1.5", "ms", "--1", "99999999999999999999999"] {
        assert_eq!(
            grpc_pushback(&headers(&[("grpc-retry-pushback-ms", value)])),
            None,
            "{value:?}"
        );
    }
    assert_eq!(
        grpc_pushback(&headers(&[(
            "grpc-retry-pushback-ms",
            "-99999999999999999999"
        )])),
        Some(Decision::Accept)
    );
}

#[test]
fn the_http_preset_retries_only_what_may_be_repeated() {
    let policy = HttpRetry::new();
    let response = |status: u16| -> Result<http::Response<()>, BoxError> {
        Ok(http::Response::builder().status(status).body(()).unwrap())
    };
    for method in ["GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"] {
        let mut request = http::Request::builder().method(method).body(()).unwrap();
        assert_eq!(
            policy.decide(&mut request, &mut response(503)),
            Decision::Retry,
            "{method}"
        );
    }
    let mut post = http::Request::post("/").body(()).unwrap();
    assert_eq!(
        policy.decide(&mut post, &mut response(503)),
        Decision::Accept
    );
    assert_eq!(
        policy.decide(&mut post, &mut failed("connection reset")),
        Decision::Accept
    );
    let mut keyed = http::Request::post("/")
        .header("idempotency-key", "k-1")
        .body(())
        .unwrap();
    assert_eq!(
        policy.decide(&mut keyed, &mut response(503)),
        Decision::Retry
    );

    let mut get = http::Request::get("/").body(()).unwrap();
    for status in [502, 503, 504, 429] {
        assert_eq!(
            policy.decide(&mut get, &mut response(status)),
            Decision::Retry,
            "{status}"
        );
    }
    for status in [200, 400, 404, 500, 501] {
        assert_eq!(
            policy.decide(&mut get, &mut response(status)),
            Decision::Accept,
            "{status}"
        );
    }
    assert_eq!(
        policy.decide(&mut get, &mut failed("connection refused")),
        Decision::Retry
    );
    let open: BoxError = palisade::error::CircuitOpen::new("db", None).into();
    assert_eq!(
        policy.decide(&mut get, &mut Err::<http::Response<()>, _>(open)),
        Decision::Accept
    );
    let mut pushed = Ok(http::Response::builder()
        .status(429)
        .header("retry-after", "3")
        .body(())
        .unwrap());
    assert_eq!(
        policy.decide(&mut get, &mut pushed),
        Decision::RetryAfter(Duration::from_secs(3))
    );
}

#[test]
fn the_grpc_preset_honours_pushback_and_its_codes() {
    let policy = GrpcRetry::new();
    let mut request = http::Request::post("/pkg.Svc/Call").body(()).unwrap();
    let answer = |pairs: &[(&str, &str)]| -> Result<http::Response<()>, BoxError> {
        let mut response = http::Response::new(());
        *response.headers_mut() = headers(pairs);
        Ok(response)
    };
    assert_eq!(
        policy.decide(&mut request, &mut answer(&[("grpc-status", "14")])),
        Decision::Retry
    );
    assert_eq!(
        policy.decide(
            &mut request,
            &mut answer(&[("grpc-status", "14"), ("grpc-retry-pushback-ms", "40")])
        ),
        Decision::RetryAfter(Duration::from_millis(40))
    );
    assert_eq!(
        policy.decide(
            &mut request,
            &mut answer(&[("grpc-status", "14"), ("grpc-retry-pushback-ms", "-1")])
        ),
        Decision::Accept,
        "a negative pushback means: do not retry"
    );
    assert_eq!(
        policy.decide(&mut request, &mut answer(&[("grpc-status", "0")])),
        Decision::Accept
    );
    assert_eq!(
        policy.decide(&mut request, &mut answer(&[("grpc-status", "13")])),
        Decision::Accept
    );
    assert_eq!(
        policy.decide(&mut request, &mut answer(&[])),
        Decision::Accept,
        "status in the trailers"
    );
    assert_eq!(
        policy.decide(&mut request, &mut failed("transport")),
        Decision::Retry
    );
}

/// What the scripted server saw: when each request came.
type Seen = Arc<Mutex<Vec<Instant>>>;

/// A server answering from a script, recording in `seen` when each request
/// came.
fn scripted(
    clock: ManualClock,
    seen: Seen,
    answers: Vec<http::Response<()>>,
) -> impl Service<
    http::Request<()>,
    Response = http::Response<()>,
    Error = BoxError,
    Future = impl Future + Send,
> + Clone {
    let answers = Arc::new(Mutex::new(VecDeque::from(answers)));
    service_fn(move |_: http::Request<()>| {
        seen.lock().unwrap().push(clock.now());
        let answer = answers.lock().unwrap().pop_front().unwrap();
        std::future::ready(Ok::<_, BoxError>(answer))
    })
}

fn drive<F: Future>(clock: &ManualClock, future: F) -> F::Output {
    let mut future = task::spawn(future);
    loop {
        if let Poll::Ready(output) = future.poll() {
            return output;
        }
        clock.set(clock.next_deadline().expect("waiting on the clock"));
    }
}

#[test]
fn a_503_with_retry_after_is_retried_after_exactly_that_long() {
    let clock = ManualClock::new();
    let unavailable = http::Response::builder()
        .status(503)
        .header("retry-after", "1")
        .body(())
        .unwrap();
    let ok = http::Response::builder().status(200).body(()).unwrap();
    let seen = Seen::default();
    let server = scripted(clock.clone(), Arc::clone(&seen), vec![unavailable, ok]);
    let layer = RetryLayer::builder()
        .policy(HttpRetry::new())
        .clone_request(|request: &http::Request<()>| {
            let mut copy = http::Request::new(());
            *copy.method_mut() = request.method().clone();
            *copy.uri_mut() = request.uri().clone();
            *copy.headers_mut() = request.headers().clone();
            Some(copy)
        })
        .clock(clock.clone())
        .build()
        .unwrap();
    let mut client = layer.layer(server);
    let request = http::Request::get("/").body(()).unwrap();
    let response = drive(&clock, async { client.ready().await?.call(request).await }).unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        *seen.lock().unwrap(),
        [Instant::ZERO, Instant::ZERO + Duration::from_secs(1)]
    );
}

#[test]
fn a_hostile_retry_after_cannot_make_the_client_sleep_past_the_cap() {
    let clock = ManualClock::new();
    let hostile = || {
        http::Response::builder()
            .status(429)
            .header("retry-after", "18446744073709551615")
            .body(())
            .unwrap()
    };
    let seen = Seen::default();
    let server = scripted(
        clock.clone(),
        Arc::clone(&seen),
        vec![hostile(), hostile(), hostile()],
    );
    let layer = RetryLayer::builder()
        .policy(HttpRetry::new())
        .clone_request(|_: &http::Request<()>| Some(http::Request::new(())))
        .max_pushback(Duration::from_secs(5))
        .clock(clock.clone())
        .build()
        .unwrap();
    let mut client = layer.layer(server);
    let request = http::Request::get("/").body(()).unwrap();
    let response = drive(&clock, async { client.ready().await?.call(request).await }).unwrap();
    assert_eq!(response.status(), 429, "the last answer comes back");
    let at = |s| Instant::ZERO + Duration::from_secs(s);
    assert_eq!(*seen.lock().unwrap(), [at(0), at(5), at(10)]);
}

#[test]
fn a_request_whose_body_is_clone_is_retried_without_a_clone_hook() {
    let clock = ManualClock::new();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let answers = Arc::new(Mutex::new(VecDeque::from([503, 200])));
    let inner = service_fn({
        let seen = Arc::clone(&seen);
        move |request: http::Request<String>| {
            seen.lock()
                .unwrap()
                .push((request.method().clone(), request.body().clone()));
            let status = answers
                .lock()
                .unwrap()
                .pop_front()
                .expect("two attempts at most");
            std::future::ready(Ok::<_, BoxError>(
                http::Response::builder().status(status).body(()).unwrap(),
            ))
        }
    });
    // No `clone_request`: `http::Request<String>` is `Clone`, and the
    // default copies it for each attempt.
    let layer = RetryLayer::builder()
        .policy(HttpRetry::new())
        .clock(clock.clone())
        .build()
        .unwrap();
    let mut service = layer.layer(inner);
    let request = http::Request::put("/items/7")
        .body("{\"n\":1}".to_owned())
        .unwrap();
    let mut call = task::spawn(async { service.ready().await?.call(request).await });
    let response = loop {
        if let Poll::Ready(response) = call.poll() {
            break response.unwrap();
        }
        clock.set(clock.next_deadline().expect("a backoff"));
    };
    assert_eq!(response.status(), 200);
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 2);
    assert!(
        seen.iter()
            .all(|(method, body)| method == http::Method::PUT && body == "{\"n\":1}")
    );
}

/// `Retry-After: retry_after` against `Date: date` (absent: this machine's
/// clock).
fn wait(date: Option<&str>, retry_after_value: &str) -> Option<Duration> {
    let mut headers = http::HeaderMap::new();
    headers.insert("retry-after", retry_after_value.parse().unwrap());
    if let Some(date) = date {
        headers.insert("date", date.parse().unwrap());
    }
    retry_after(&headers)
}

#[test]
fn an_http_date_is_read_in_each_form_and_only_when_it_is_a_date() {
    const EPOCH: &str = "Thu, 01 Jan 1970 00:00:00 GMT";
    let secs = |s| Some(Duration::from_secs(s));
    // Absolute dates, from the epoch (a parser off by a fixed amount would
    // not cancel out here).
    assert_eq!(
        wait(Some(EPOCH), "Sun, 06 Nov 1994 08:49:37 GMT"),
        secs(784_111_777)
    );
    assert_eq!(
        wait(Some(EPOCH), "Tue, 29 Feb 2000 00:00:00 GMT"),
        secs(951_782_400),
        "a leap day"
    );
    // The other two forms HTTP allows, the same instant.
    assert_eq!(
        wait(Some(EPOCH), "Sunday, 06-Nov-94 08:49:37 GMT"),
        secs(784_111_777)
    );
    assert_eq!(
        wait(Some(EPOCH), "Sun Nov  6 08:49:37 1994"),
        secs(784_111_777)
    );
    // RFC 850's two-digit years: 70 and above are 19xx, below are 20xx.
    assert_eq!(
        wait(Some(EPOCH), "Thursday, 01-Jan-70 00:00:10 GMT"),
        secs(10)
    );
    assert_eq!(
        wait(Some(EPOCH), "Tuesday, 01-Jan-69 00:00:00 GMT"),
        secs(3_124_224_000)
    );
    // Against this machine's clock when there is no `Date`.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let until_2100 = wait(None, "Fri, 01 Jan 2100 00:00:00 GMT")
        .unwrap()
        .as_secs();
    assert!(
        (4_102_444_800 - now).abs_diff(until_2100) <= 2,
        "{until_2100}"
    );
    // Not dates: out-of-range fields, a leap second, 31 April, 29 February
    // of a year that is not a leap year, signed fields, a year before 1970,
    // a wrong weekday, an asctime year of two digits.
    for not_a_date in [
        "Sun, 06 Nov 1994 24:49:37 GMT",
        "Sun, 06 Nov 1994 08:60:37 GMT",
        "Sun, 06 Nov 1994 08:49:61 GMT",
        "Sun, 06 Nov 1994 08:49:60 GMT",
        "Sat, 31 Apr 1994 08:49:37 GMT",
        "Mon, 29 Feb 2100 00:00:00 GMT",
        "Thu, 29 Feb 2001 00:00:00 GMT",
        "Sun, +6 Nov 1994 08:49:37 GMT",
        "Sun, 06 Nov 1994 08:-9:37 GMT",
        "Wed, 31 Dec 1969 23:59:59 GMT",
        "Mon, 06 Nov 1994 08:49:37 GMT",
        "Sun Nov  6 08:49:37 94",
    ] {
        assert_eq!(wait(Some(EPOCH), not_a_date), None, "{not_a_date}");
    }
}

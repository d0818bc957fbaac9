//! Classification: the default, closures, and the HTTP and gRPC presets.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use palisade::classify::{Classify, DeferredOutcome, ErrorsAsFailures, Outcome, Pushback};

#[test]
fn default_calls_errors_failures_and_oks_successes() {
    assert_eq!(
        ErrorsAsFailures.classify(&Ok::<_, ()>("fine")),
        Outcome::Success
    );
    assert_eq!(
        ErrorsAsFailures.classify(&Err::<(), _>("down")),
        Outcome::Failure
    );
}

#[test]
fn closures_are_classifiers() {
    fn use_classifier<C: Classify<u32, &'static str>>(
        c: &C,
        r: Result<u32, &'static str>,
    ) -> Outcome {
        c.classify(&r)
    }
    let threshold = 3;
    let classifier = move |r: &Result<u32, &'static str>| match r {
        Ok(v) if *v > threshold => Outcome::Failure,
        Ok(_) => Outcome::Success,
        Err("cancelled") => Outcome::Ignored,
        Err(_) => Outcome::Failure,
    };
    assert_eq!(use_classifier(&classifier, Ok(2)), Outcome::Success);
    assert_eq!(use_classifier(&classifier, Ok(4)), Outcome::Failure);
    assert_eq!(
        use_classifier(&classifier, Err("cancelled")),
        Outcome::Ignored
    );
    assert_eq!(use_classifier(&classifier, Err("reset")), Outcome::Failure);
}

#[test]
fn outcome_labels() {
    let labels: Vec<_> = [Outcome::Success, Outcome::Failure, Outcome::Ignored]
        .iter()
        .map(|o| o.to_string())
        .collect();
    assert_eq!(labels, ["success", "failure", "ignored"]);
}

#[test]
fn only_a_failure_is_a_failure() {
    let failures: Vec<_> = [Outcome::Success, Outcome::Failure, Outcome::Ignored]
        .iter()
        .map(|o| o.is_failure())
        .collect();
    assert_eq!(failures, [false, true, false]);
}

/// A deferred outcome's reports, in order.
type Reports = Arc<Mutex<Vec<Outcome>>>;

fn deferred(reports: &Reports) -> DeferredOutcome {
    let reports = Arc::clone(reports);
    DeferredOutcome::new(move |outcome| reports.lock().unwrap().push(outcome))
}

#[test]
fn a_deferred_outcome_reports_once_the_first_report_or_ignored_when_dropped() {
    let reports = Reports::default();
    let later = deferred(&reports);
    assert_eq!(format!("{later:?}"), "DeferredOutcome { .. }");
    later.clone().report(Outcome::Failure);
    later.report(Outcome::Success);
    drop(later);
    let unreported = deferred(&reports);
    drop(unreported.clone());
    assert_eq!(*reports.lock().unwrap(), [Outcome::Failure]);
    drop(unreported);
    assert_eq!(
        *reports.lock().unwrap(),
        [Outcome::Failure, Outcome::Ignored]
    );
}

/// A classifier whose `Ok(true)` outcomes come later, reported as failures;
/// counts the outcomes it was handed.
struct Later(Arc<AtomicUsize>);

impl Classify<bool, ()> for Later {
    fn classify(&self, result: &Result<bool, ()>) -> Outcome {
        if result.is_ok() {
            Outcome::Success
        } else {
            Outcome::Failure
        }
    }

    fn defers(&self, result: &Result<bool, ()>) -> bool {
        *result == Ok(true)
    }

    fn defer(&self, _: &mut Result<bool, ()>, outcome: DeferredOutcome) {
        self.0.fetch_add(1, Ordering::SeqCst);
        outcome.report(Outcome::Failure);
    }
}

#[test]
fn a_pushback_asks_its_rule_how_long_and_its_classifier_everything_else() {
    let deferrals = Arc::new(AtomicUsize::new(0));
    let pushback = Pushback::new(
        Later(Arc::clone(&deferrals)),
        |result: &Result<bool, ()>| result.is_err().then_some(Duration::from_secs(7)),
    );
    assert_eq!(pushback.classify(&Ok(false)), Outcome::Success);
    assert_eq!(pushback.classify(&Err(())), Outcome::Failure);
    assert_eq!(pushback.open_for(&Err(())), Some(Duration::from_secs(7)));
    assert_eq!(pushback.open_for(&Ok(false)), None);
    assert!(pushback.defers(&Ok(true)));
    assert!(!pushback.defers(&Ok(false)));
    let reports = Reports::default();
    pushback.defer(&mut Ok(true), deferred(&reports));
    assert_eq!(deferrals.load(Ordering::SeqCst), 1, "deferred to it");
    assert_eq!(*reports.lock().unwrap(), [Outcome::Failure]);
}

#[cfg(feature = "http")]
mod http {
    use std::{ops::RangeInclusive, time::Duration};

    use http::Response;
    use palisade::classify::{Classify, Outcome, ServerErrorsAsFailures, StatusInRangeAsFailures};

    fn reply(status: u16) -> Result<Response<()>, std::io::Error> {
        Ok(Response::builder().status(status).body(()).unwrap())
    }

    fn transport_error() -> Result<Response<()>, std::io::Error> {
        Err(std::io::Error::other("connection reset"))
    }

    #[test]
    fn server_errors_are_failures_everything_else_succeeds() {
        let c = ServerErrorsAsFailures::new();
        for status in [100, 200, 204, 301, 400, 404, 429, 499, 600, 999] {
            assert_eq!(c.classify(&reply(status)), Outcome::Success, "{status}");
        }
        for status in [500, 502, 503, 504, 599] {
            assert_eq!(c.classify(&reply(status)), Outcome::Failure, "{status}");
        }
        assert_eq!(c.classify(&transport_error()), Outcome::Failure);
    }

    #[test]
    fn too_many_requests_is_configurable() {
        let c = ServerErrorsAsFailures::new().too_many_requests_as_failure(true);
        assert_eq!(c.classify(&reply(429)), Outcome::Failure);
        assert_eq!(c.classify(&reply(428)), Outcome::Success);
        assert_eq!(c.classify(&reply(503)), Outcome::Failure);
        let relaxed = c.too_many_requests_as_failure(false);
        assert_eq!(relaxed.classify(&reply(429)), Outcome::Success);
    }

    fn with_retry_after(status: u16, value: &str) -> Result<Response<()>, std::io::Error> {
        let response = Response::builder()
            .status(status)
            .header("retry-after", value);
        Ok(response.body(()).unwrap())
    }

    #[test]
    fn a_failed_response_s_retry_after_is_how_long_to_open_when_asked() {
        let off = ServerErrorsAsFailures::new();
        assert_eq!(off.open_for(&with_retry_after(503, "7")), None);

        let on = off.open_for_retry_after(true);
        assert_eq!(
            on.open_for(&with_retry_after(503, "7")),
            Some(Duration::from_secs(7))
        );
        assert_eq!(on.open_for(&reply(503)), None, "no header");
        assert_eq!(
            on.open_for(&with_retry_after(200, "7")),
            None,
            "not a failure"
        );
        assert_eq!(
            on.open_for(&with_retry_after(429, "7")),
            None,
            "429 is a success"
        );
        let strict = on.too_many_requests_as_failure(true);
        assert_eq!(
            strict.open_for(&with_retry_after(429, "7")),
            Some(Duration::from_secs(7))
        );
        assert_eq!(on.open_for(&transport_error()), None);
        for hostile in ["-5", "1.5", "soon", "99999999999999999999999", ""] {
            assert_eq!(
                on.open_for(&with_retry_after(503, hostile)),
                None,
                "{hostile:?}"
            );
        }
        let dated = Response::builder()
            .status(503)
            .header("date", "Sun, 06 Nov 1994 08:49:37 GMT")
            .header("retry-after", "Sun, 06 Nov 1994 08:50:07 GMT");
        let dated = Ok::<_, std::io::Error>(dated.body(()).unwrap());
        assert_eq!(on.open_for(&dated), Some(Duration::from_secs(30)));
    }

    /// Over a circuit breaker: one `503` with `Retry-After: 7` opens it at
    /// once, for exactly seven seconds.
    #[tokio::test]
    async fn the_breaker_stays_open_as_long_as_the_server_asked() {
        use palisade::{
            circuit_breaker::{CircuitBreakerLayer, CircuitState},
            clock::ManualClock,
            error::CircuitOpen,
        };
        use tower::{Layer, ServiceExt, service_fn};

        let clock = ManualClock::new();
        let layer = CircuitBreakerLayer::builder()
            .classifier(ServerErrorsAsFailures::new().open_for_retry_after(true))
            .clock(clock.clone())
            .build()
            .unwrap();
        let handle = layer.handle();
        let service = layer.layer(service_fn(|()| async { with_retry_after(503, "7") }));
        let answer = service.clone().oneshot(()).await.unwrap();
        assert_eq!(answer.status(), 503);
        assert_eq!(handle.state(), CircuitState::Open);
        let refused = service.clone().oneshot(()).await.unwrap_err();
        let open = refused
            .downcast_ref::<CircuitOpen>()
            .expect("a CircuitOpen");
        assert_eq!(open.retry_after(), Some(Duration::from_secs(7)));
        clock.advance(Duration::from_secs(7) - Duration::from_nanos(1));
        assert_eq!(handle.state(), CircuitState::Open);
        clock.advance(Duration::from_nanos(1));
        assert_eq!(handle.state(), CircuitState::HalfOpen);
    }

    #[test]
    fn status_ranges() {
        let c = StatusInRangeAsFailures::new(400..=499).unwrap();
        assert_eq!(c.classify(&reply(399)), Outcome::Success);
        assert_eq!(c.classify(&reply(400)), Outcome::Failure);
        assert_eq!(c.classify(&reply(499)), Outcome::Failure);
        assert_eq!(c.classify(&reply(500)), Outcome::Success);
        assert_eq!(c.classify(&transport_error()), Outcome::Failure);
        let single = StatusInRangeAsFailures::new(503..=503).unwrap();
        assert_eq!(single.classify(&reply(503)), Outcome::Failure);
        assert_eq!(single.classify(&reply(502)), Outcome::Success);
    }

    #[test]
    fn invalid_status_ranges_are_config_errors_naming_the_field() {
        for (range, rule) in [
            (99..=500, "valid status codes"),
            (500..=1000, "valid status codes"),
            (RangeInclusive::new(599, 500), "must not be empty"),
        ] {
            let err = StatusInRangeAsFailures::new(range.clone()).unwrap_err();
            assert_eq!(err.field(), "range");
            assert_eq!(err.layer(), "classify");
            assert!(err.to_string().contains(rule), "{err}");
            assert!(
                err.to_string()
                    .contains(&format!("{}..={}", range.start(), range.end())),
                "{err}"
            );
        }
    }
}

#[cfg(feature = "grpc")]
mod grpc {
    use http::Response;
    use palisade::classify::{Classify, GrpcCode, GrpcErrorsAsFailures, Outcome};

    fn with_status(value: &[u8]) -> Result<Response<()>, std::io::Error> {
        let value = http::HeaderValue::from_bytes(value).unwrap();
        Ok(Response::builder()
            .header("grpc-status", value)
            .body(())
            .unwrap())
    }

    #[test]
    fn default_failure_set() {
        let c = GrpcErrorsAsFailures::new();
        // UNKNOWN, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED, INTERNAL, UNAVAILABLE
        let failures = [2, 4, 8, 13, 14];
        for code in 0..=16 {
            let expected = if failures.contains(&code) {
                Outcome::Failure
            } else {
                Outcome::Success
            };
            let status = code.to_string();
            assert_eq!(
                c.classify(&with_status(status.as_bytes())),
                expected,
                "{code}"
            );
        }
    }

    #[test]
    fn unknown_numbers_count_as_unknown() {
        let c = GrpcErrorsAsFailures::new();
        assert_eq!(c.classify(&with_status(b"17")), Outcome::Failure);
        assert_eq!(c.classify(&with_status(b"-3")), Outcome::Failure);
        let without_unknown = c.without_failure(GrpcCode::Unknown);
        assert_eq!(
            without_unknown.classify(&with_status(b"99")),
            Outcome::Success
        );
        assert_eq!(
            without_unknown.classify(&with_status(b"2")),
            Outcome::Success
        );
        assert_eq!(
            without_unknown.classify(&with_status(b"14")),
            Outcome::Failure
        );
    }

    #[test]
    fn garbage_status_is_unknown_and_a_missing_one_is_not_a_failure() {
        let c = GrpcErrorsAsFailures::new();
        let without_unknown = GrpcErrorsAsFailures::new().without_failure(GrpcCode::Unknown);
        for value in [
            &b"abc"[..],
            b"",
            b"1 4",
            b"-14",
            b"99999999999999999999",
            b"\xff\xfe",
        ] {
            assert_eq!(
                c.classify(&with_status(value)),
                Outcome::Failure,
                "{value:?}"
            );
            let classified = without_unknown.classify(&with_status(value));
            assert_eq!(classified, Outcome::Success, "{value:?}");
        }
        let no_header: Result<Response<()>, std::io::Error> = Ok(Response::new(()));
        assert_eq!(c.classify(&no_header), Outcome::Success);
    }

    #[test]
    fn transport_errors_are_failures() {
        let err: Result<Response<()>, _> = Err(std::io::Error::other("broken pipe"));
        assert_eq!(GrpcErrorsAsFailures::new().classify(&err), Outcome::Failure);
    }

    #[test]
    fn configurable_set() {
        let c = GrpcErrorsAsFailures::only([GrpcCode::Unavailable, GrpcCode::Ok]);
        assert_eq!(
            c.classify(&with_status(b"0")),
            Outcome::Success,
            "OK is always a success"
        );
        assert_eq!(c.classify(&with_status(b"14")), Outcome::Failure);
        assert_eq!(c.classify(&with_status(b"13")), Outcome::Success);
        let more = c.with_failure(GrpcCode::NotFound);
        assert_eq!(more.classify(&with_status(b"5")), Outcome::Failure);
        let fewer = more.without_failure(GrpcCode::Unavailable);
        assert_eq!(fewer.classify(&with_status(b"14")), Outcome::Success);
    }

    #[test]
    fn a_code_named_twice_or_added_again_stays_a_failure() {
        let twice = GrpcErrorsAsFailures::only([GrpcCode::Unavailable, GrpcCode::Unavailable]);
        assert_eq!(twice.classify(&with_status(b"14")), Outcome::Failure);
        let again = GrpcErrorsAsFailures::new().with_failure(GrpcCode::Unavailable);
        assert_eq!(again.classify(&with_status(b"14")), Outcome::Failure);
    }

    #[test]
    fn waiting_for_the_trailers_survives_a_changed_failure_set() {
        let streaming: Result<Response<()>, std::io::Error> = Ok(Response::new(()));
        let classifier = GrpcErrorsAsFailures::new()
            .from_trailers()
            .with_failure(GrpcCode::Aborted)
            .without_failure(GrpcCode::Unknown);
        assert!(classifier.defers(&streaming));
        assert!(!GrpcErrorsAsFailures::new().defers(&streaming));
    }

    #[test]
    fn a_two_digit_number_past_the_known_codes_is_unknown() {
        let aborted = GrpcErrorsAsFailures::only([GrpcCode::Aborted]);
        assert_eq!(aborted.classify(&with_status(b"10")), Outcome::Failure);
        for number in [b"20", b"21", b"26", b"99"] {
            let classified = aborted.classify(&with_status(number));
            assert_eq!(classified, Outcome::Success, "{number:?}");
        }
    }

    #[test]
    fn a_code_is_its_number() {
        for number in 0..=16 {
            assert_eq!(i32::from(GrpcCode::from(number)), number);
        }
    }
}

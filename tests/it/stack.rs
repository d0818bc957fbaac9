//! The composed stack: the order of `ResilienceLayer`, the breaker beside
//! the layers inside it, the `ServiceBuilder` methods, and the HTTP / gRPC
//! answers. Time is tokio's paused clock.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU32, Ordering},
    },
    time::Duration,
};

use palisade::{
    bulkhead::BulkheadLayer,
    circuit_breaker::{CircuitBreakerLayer, CircuitState},
    error::{CircuitOpen, Elapsed, RateLimited},
    fallback::{Failed, FallbackLayer},
    rate_limit::{Rate, RateLimitLayer},
    retry::{Backoff, RetryLayer},
    stack::{ResilienceLayer, ServiceBuilderExt},
    timeout::TimeoutLayer,
};
use tower::{BoxError, Layer, Service, ServiceBuilder, ServiceExt, service_fn};

/// A service that counts its calls, sleeps `delay`, then fails if `fail`.
fn counted(
    calls: &Arc<AtomicU32>,
    delay: Duration,
    fail: bool,
) -> impl Service<u32, Response = u32, Error = BoxError, Future: Send> + Clone + Send + 'static {
    let calls = Arc::clone(calls);
    service_fn(move |x: u32| {
        calls.fetch_add(1, Ordering::SeqCst);
        async move {
            tokio::time::sleep(delay).await;
            if fail {
                Err::<u32, BoxError>("dependency failed".into())
            } else {
                Ok(x)
            }
        }
    })
}

fn retry(attempts: u32) -> RetryLayer {
    RetryLayer::builder()
        .max_attempts(attempts)
        .backoff(Backoff::constant(Duration::from_millis(10)))
        .build()
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn the_layers_go_in_the_documented_order_whatever_order_they_are_given() {
    // The breaker is given first and the retry second; the stack still puts
    // the retry outside, so the breaker sees every attempt: 3 failures from
    // one call open a breaker that opens at 3 in a row.
    let breaker = CircuitBreakerLayer::builder()
        .consecutive_failures(3)
        .build()
        .unwrap();
    let handle = breaker.handle();
    let stack = ResilienceLayer::new()
        .circuit_breaker(breaker)
        .retry(retry(3));
    let calls = Arc::new(AtomicU32::new(0));
    let mut service = stack.layer(counted(&calls, Duration::ZERO, true));

    let err = service.ready().await.unwrap().call(1).await.unwrap_err();
    assert_eq!(err.to_string(), "dependency failed");
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    assert_eq!(handle.state(), CircuitState::Open);

    // The next call is refused by the breaker, and not retried.
    let err = service.ready().await.unwrap().call(2).await.unwrap_err();
    assert!(err.is::<CircuitOpen>());
    assert_eq!(calls.load(Ordering::SeqCst), 3);
}

#[tokio::test(start_paused = true)]
async fn the_timeout_bounds_each_attempt_and_the_retry_makes_another() {
    let stack = ResilienceLayer::new()
        .timeout(
            TimeoutLayer::builder(Duration::from_millis(100))
                .build()
                .unwrap(),
        )
        .retry(retry(3));
    let calls = Arc::new(AtomicU32::new(0));
    let mut service = stack.layer(counted(&calls, Duration::from_secs(1), false));

    let started = tokio::time::Instant::now();
    let err = service.ready().await.unwrap().call(1).await.unwrap_err();
    assert!(err.is::<Elapsed>(), "{err}");
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    // Three attempts of 100 ms and two waits of 10 ms, not one second.
    assert_eq!(started.elapsed(), Duration::from_millis(320));
}

#[tokio::test(start_paused = true)]
async fn the_breaker_ignores_refusals_made_inside_it_but_counts_timeouts() {
    // Opens when half the calls of the window fail, from the first call on.
    let breaker = CircuitBreakerLayer::builder()
        .count_window(10)
        .minimum_calls(1)
        .failure_rate(0.5)
        .build()
        .unwrap();
    let handle = breaker.handle();
    let limit = RateLimitLayer::builder()
        .token_bucket(Rate::per_second(1), 1)
        .build()
        .unwrap();
    let stack = ResilienceLayer::new()
        .circuit_breaker(breaker)
        .rate_limit(limit)
        .bulkhead(BulkheadLayer::builder(1).build().unwrap())
        .timeout(
            TimeoutLayer::builder(Duration::from_millis(100))
                .build()
                .unwrap(),
        );
    let calls = Arc::new(AtomicU32::new(0));
    let mut fast = stack.layer(counted(&calls, Duration::ZERO, false));
    let mut slow = stack.layer(counted(&calls, Duration::from_secs(1), false));

    assert_eq!(fast.ready().await.unwrap().call(1).await.unwrap(), 1);
    // Over the rate: refused inside the breaker, which stays closed.
    for _ in 0..5 {
        let err = fast.ready().await.unwrap().call(2).await.unwrap_err();
        assert!(err.is::<RateLimited>(), "{err}");
    }
    assert_eq!(handle.state(), CircuitState::Closed);
    assert_eq!(handle.metrics().calls, 1);

    // A timed-out call is the dependency's failure: 1 of 2, it opens the breaker.
    tokio::time::advance(Duration::from_secs(1)).await;
    let err = slow.ready().await.unwrap().call(3).await.unwrap_err();
    assert!(err.is::<Elapsed>(), "{err}");
    assert_eq!(handle.state(), CircuitState::Open);
}

#[tokio::test(start_paused = true)]
async fn the_fallback_outside_answers_for_every_layer_and_says_why() {
    let breaker = CircuitBreakerLayer::builder()
        .consecutive_failures(2)
        .build()
        .unwrap();
    let fallback =
        FallbackLayer::builder(|failed: Failed<'_, String>| Some(failed.reason().to_owned()))
            .build();
    let stack = ResilienceLayer::new()
        .fallback(fallback)
        .retry(retry(2))
        .circuit_breaker(breaker);
    let calls = Arc::new(AtomicU32::new(0));
    let counted = counted(&calls, Duration::ZERO, true);
    let mut service = stack.layer(counted.map_response(|x: u32| x.to_string()));

    assert_eq!(
        service.ready().await.unwrap().call(1).await.unwrap(),
        "error"
    );
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    assert_eq!(
        service.ready().await.unwrap().call(1).await.unwrap(),
        "circuit_open"
    );
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[tokio::test(start_paused = true)]
async fn service_builder_methods_add_layers_in_the_order_written() {
    // Written the wrong way round on purpose: the timeout outside the retry
    // bounds all attempts together, so only one attempt fits.
    let calls = Arc::new(AtomicU32::new(0));
    let mut service = ServiceBuilder::new()
        .with_timeout(
            TimeoutLayer::builder(Duration::from_millis(150))
                .build()
                .unwrap(),
        )
        .with_retry(retry(3))
        .with_bulkhead(BulkheadLayer::builder(4).build().unwrap())
        .service(counted(&calls, Duration::from_millis(100), true));

    let err = service.ready().await.unwrap().call(1).await.unwrap_err();
    assert!(err.is::<Elapsed>(), "{err}");
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[cfg(feature = "http")]
mod http_answers {
    use std::{convert::Infallible, time::Duration};

    use http::{Request, Response, StatusCode};
    use palisade::{
        error::{BudgetExhausted, BulkheadFull, CircuitOpen, Elapsed, RateLimited, RejectionKind},
        rate_limit::{RateLimitLayer, http::TooManyRequests},
        stack::http::{Answers, HttpAnswerLayer},
    };
    use tower::{BoxError, Layer, Service, ServiceExt, service_fn};

    /// The answer of `layer` to a call whose service fails with `error`.
    async fn answer<A>(layer: &HttpAnswerLayer<A>, error: BoxError) -> Response<String>
    where
        A: palisade::stack::http::Answer<String>,
    {
        let error = std::sync::Mutex::new(Some(error));
        let failing = service_fn(move |_: Request<()>| {
            let error = error.lock().unwrap().take().unwrap();
            async move { Err::<Response<String>, _>(error) }
        });
        let mut service = layer.layer(failing);
        let answer: Result<_, Infallible> =
            service.ready().await.unwrap().call(Request::new(())).await;
        answer.unwrap()
    }

    /// An error of the caller's own that keeps a refusal as its source.
    #[derive(Debug)]
    struct Wrapped(CircuitOpen);

    impl std::fmt::Display for Wrapped {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("request failed")
        }
    }

    impl std::error::Error for Wrapped {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    fn retry_after(response: &Response<String>) -> Option<&str> {
        response
            .headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap())
    }

    #[tokio::test]
    async fn every_refusal_gets_its_status_and_retry_after_rounded_up() {
        let layer = HttpAnswerLayer::new();
        let wait = Some(Duration::from_millis(1_001));
        let cases: [(BoxError, u16, Option<&str>); 7] = [
            (RateLimited::new("api", wait).into(), 429, Some("2")),
            (CircuitOpen::new("db", wait).into(), 503, Some("2")),
            (BulkheadFull::new("db", None).into(), 503, None),
            (BudgetExhausted::new("db", None).into(), 503, None),
            (Elapsed::new("db", None).into(), 504, None),
            ("boom".into(), 500, None),
            // A refusal wrapped in another error is still found.
            (
                Box::new(Wrapped(CircuitOpen::new(
                    "db",
                    Some(Duration::from_millis(1)),
                ))),
                503,
                Some("1"),
            ),
        ];
        for (error, status, after) in cases {
            let text = error.to_string();
            let response = answer(&layer, error).await;
            assert_eq!(response.status(), status, "{text}");
            assert_eq!(retry_after(&response), after, "{text}");
        }
    }

    #[tokio::test]
    async fn statuses_and_the_whole_answer_can_be_replaced() {
        let limit = RateLimitLayer::builder().name("api").build().unwrap();
        let table = Answers::new()
            .status(RejectionKind::Elapsed, StatusCode::REQUEST_TIMEOUT)
            .error_status(StatusCode::BAD_GATEWAY)
            .rate_limit_policy(TooManyRequests::new().policy_of(&limit));
        let layer = HttpAnswerLayer::with(table.clone());
        assert_eq!(
            answer(&layer, Elapsed::new("t", None).into())
                .await
                .status(),
            408
        );
        assert_eq!(answer(&layer, "boom".into()).await.status(), 502);
        let limited = answer(&layer, RateLimited::new("api", None).into()).await;
        assert!(limited.headers().contains_key("ratelimit-policy"));

        let custom = HttpAnswerLayer::with(move |error: BoxError| {
            let mut response: Response<String> = table.response(&*error);
            *response.body_mut() = error.to_string();
            response
        });
        let response = answer(&custom, CircuitOpen::new("db", None).into()).await;
        assert_eq!(response.status(), 503);
        assert_eq!(response.body(), "circuit breaker `db` is open");
    }

    #[tokio::test]
    async fn responses_pass_through_and_a_readiness_error_answers_the_next_call() {
        let mut ok = HttpAnswerLayer::new().layer(service_fn(|_: Request<()>| async {
            Ok::<_, BoxError>(Response::builder().status(201).body(String::new()).unwrap())
        }));
        let response = ok
            .ready()
            .await
            .unwrap()
            .call(Request::new(()))
            .await
            .unwrap();
        assert_eq!(response.status(), 201);

        let (mock, mut handle) = tower_test::mock::pair::<Request<()>, Response<String>>();
        let mut unready = HttpAnswerLayer::new().layer(mock);
        handle.send_error(BulkheadFull::new("db", None));
        let response = unready
            .ready()
            .await
            .unwrap()
            .call(Request::new(()))
            .await
            .unwrap();
        assert_eq!(response.status(), 503);
        // The request never reached the service.
        assert!(handle.poll_request().is_pending());
    }
}

#[cfg(feature = "grpc")]
mod grpc_answers {
    use std::time::Duration;

    use http::Response;
    use palisade::{
        classify::GrpcCode,
        error::{BulkheadFull, CircuitOpen, Elapsed, RateLimited, RejectionKind},
        stack::grpc::GrpcAnswers,
    };
    use tower::BoxError;

    #[test]
    fn refusals_become_trailers_only_statuses() {
        let answers = GrpcAnswers::new();
        let wait = Some(Duration::from_millis(1_500));
        let cases: [(BoxError, &str, Option<&str>); 5] = [
            (RateLimited::new("api", wait).into(), "8", Some("1500")),
            (CircuitOpen::new("db", None).into(), "14", None),
            (BulkheadFull::new("db", wait).into(), "14", Some("1500")),
            (Elapsed::new("db", None).into(), "4", None),
            ("boom".into(), "2", None),
        ];
        for (error, code, pushback) in cases {
            let response: Response<()> = answers.response(&*error);
            assert_eq!(response.status(), 200);
            assert_eq!(response.headers()["content-type"], "application/grpc");
            assert_eq!(response.headers()["grpc-status"], code, "{error}");
            let got = response
                .headers()
                .get("grpc-retry-pushback-ms")
                .map(|v| v.to_str().unwrap());
            assert_eq!(got, pushback, "{error}");
        }
        let changed = answers
            .code(RejectionKind::BulkheadFull, GrpcCode::ResourceExhausted)
            .error_code(GrpcCode::Internal);
        let full: Response<()> = changed.response(&BulkheadFull::new("db", None));
        assert_eq!(full.headers()["grpc-status"], "8");
        let other: Response<()> = changed.response(&std::io::Error::other("boom"));
        assert_eq!(other.headers()["grpc-status"], "13");
        assert_eq!(other.headers()["grpc-message"], "boom");
    }
}

/// Every layer's future holds the wrapped future and a few words, never a
/// sleep inline: a timer, a queue wait and a retry's state are boxed when
/// they are needed. Each layer moves the future below it into its own, so
/// inline sleeps would be copied once per layer on every call.
mod future_sizes {
    use std::{
        convert::Infallible,
        future::{Ready, ready},
        mem::size_of_val,
        time::Duration,
    };

    use palisade::{
        bulkhead::BulkheadLayer,
        circuit_breaker::CircuitBreakerLayer,
        rate_limit::{Rate, RateLimitLayer},
        retry::RetryLayer,
        stack::ResilienceLayer,
        timeout::TimeoutLayer,
    };
    use tower::{Layer, Service, service_fn, util::ServiceFn};

    type Answer = Ready<Result<u64, Infallible>>;
    type Echo = ServiceFn<fn(u64) -> Answer>;

    const WORD: usize = size_of::<usize>();

    /// The bytes `layer`'s future adds to the wrapped one's.
    fn added_by<L>(layer: L) -> usize
    where
        L: Layer<Echo>,
        L::Service: Service<u64>,
    {
        let echo: Echo = service_fn(|x| ready(Ok(x)));
        let future = layer.layer(echo).call(1);
        size_of_val(&future) - size_of::<Answer>()
    }

    #[test]
    fn each_layer_adds_a_few_words_to_the_future_it_wraps() {
        let second = Duration::from_secs(1);
        let limit = || {
            let bucket = RateLimitLayer::builder().token_bucket(Rate::per_second(10), 10);
            bucket.build().unwrap()
        };
        for (layer, bytes, words) in [
            (
                "timeout",
                added_by(TimeoutLayer::builder(second).build().unwrap()),
                4,
            ),
            (
                "bulkhead",
                added_by(BulkheadLayer::builder(8).build().unwrap()),
                4,
            ),
            (
                "breaker",
                added_by(CircuitBreakerLayer::builder().build().unwrap()),
                5,
            ),
            ("rate limit", added_by(limit()), 1),
            // With `tracing`, one more: the attempt's span (boxed).
            (
                "retry",
                added_by(RetryLayer::builder().build().unwrap()),
                9 + usize::from(cfg!(feature = "tracing")),
            ),
        ] {
            assert!(
                bytes <= words * WORD,
                "the {layer} adds {bytes} bytes to the future, more than {words} words"
            );
        }
        let all = ResilienceLayer::new()
            .retry(RetryLayer::builder().build().unwrap())
            .circuit_breaker(CircuitBreakerLayer::builder().build().unwrap())
            .rate_limit(limit())
            .bulkhead(BulkheadLayer::builder(8).build().unwrap())
            .timeout(TimeoutLayer::builder(second).build().unwrap());
        let bytes = added_by(all);
        let words = 22 + usize::from(cfg!(feature = "tracing"));
        assert!(bytes <= words * WORD, "the stack adds {bytes} bytes");
    }
}

/// A hedge in the stack: each hedged attempt takes a bulkhead permit of
/// its own; the loser, dropped when the winner answers, gives it back and
/// is counted by the breaker as ignored — one success counted, no failure.
#[test]
fn a_hedged_attempt_takes_its_own_permit_and_the_loser_counts_for_nothing() {
    use palisade::{
        clock::{Clock, ManualClock},
        hedge::{Delay, HedgeLayer},
    };
    let clock = ManualClock::new();
    let bulkhead = BulkheadLayer::builder(4).build().unwrap();
    let breaker = CircuitBreakerLayer::builder()
        .count_window(10)
        .minimum_calls(1)
        .clock(clock.clone())
        .build()
        .unwrap();
    let handle = breaker.handle();
    let stack = ResilienceLayer::new()
        .timeout(
            TimeoutLayer::builder(Duration::from_secs(5))
                .clock(clock.clone())
                .build()
                .unwrap(),
        )
        .bulkhead(bulkhead.clone())
        .circuit_breaker(breaker)
        .hedge(
            HedgeLayer::builder(Delay::Fixed(Duration::from_millis(20)))
                .clock(clock.clone())
                .build()
                .unwrap(),
        );
    let calls = Arc::new(AtomicU32::new(0));
    let mut service = stack.layer(service_fn({
        let (clock, calls) = (clock.clone(), Arc::clone(&calls));
        move |x: u32| {
            let first = calls.fetch_add(1, Ordering::SeqCst) == 0;
            let sleep = clock.sleep(Duration::from_millis(if first { 1_000 } else { 10 }));
            async move {
                sleep.await;
                Ok::<_, BoxError>(x)
            }
        }
    }));
    let mut call = tokio_test::task::spawn(service.call(9));
    assert!(call.poll().is_pending());
    clock.advance(Duration::from_millis(20));
    assert!(call.poll().is_pending());
    assert_eq!(bulkhead.in_flight(), 2, "a permit each");
    clock.advance(Duration::from_millis(10));
    assert!(matches!(call.poll(), std::task::Poll::Ready(Ok(9))));
    assert_eq!(bulkhead.in_flight(), 0, "the loser's permit came back");
    let metrics = handle.metrics();
    assert_eq!(
        (metrics.calls, metrics.failures),
        (1, 0),
        "the loser is not a failure"
    );
    assert_eq!(handle.state(), CircuitState::Closed);
}

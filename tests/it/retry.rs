//! The retry layer on a `ManualClock` with seeded randomness: exact delay
//! sequences, attempts, deadline, budgets, refusals, pushback, requests that
//! cannot be copied, readiness before every attempt, and events.

use std::{
    collections::VecDeque,
    sync::{Arc, Mutex},
    task::{Context, Poll},
    time::Duration,
};

use palisade::{
    clock::{Clock, Instant, ManualClock},
    error::{CircuitOpen, Elapsed, RateLimited, Unsatisfiable},
    observe::EventKind,
    random::{FastRandom, Random},
    retry::{Backoff, Decision, Jitter, RetryBudget, RetryErrors, RetryLayer},
};
use tokio_test::task;
use tower::{BoxError, Layer, Service, ServiceExt};

const MS: Duration = Duration::from_millis(1);

/// A service that answers from a script, one answer per call, and checks
/// that it is never called without a `Ready` from `poll_ready` first.
#[derive(Clone)]
struct Scripted {
    script: Arc<Mutex<VecDeque<Result<u32, BoxError>>>>,
    log: Arc<Mutex<Vec<(Instant, &'static str)>>>,
    clock: ManualClock,
    ready: bool,
}

impl Scripted {
    fn new(clock: &ManualClock, script: Vec<Result<u32, BoxError>>) -> Scripted {
        Scripted {
            script: Arc::new(Mutex::new(script.into())),
            log: Arc::default(),
            clock: clock.clone(),
            ready: false,
        }
    }

    /// When each call was made.
    fn calls(&self) -> Vec<Instant> {
        let log = self.log.lock().unwrap();
        log.iter()
            .filter(|(_, what)| *what == "call")
            .map(|(at, _)| *at)
            .collect()
    }
}

impl Service<u32> for Scripted {
    type Response = u32;
    type Error = BoxError;
    type Future = std::future::Ready<Result<u32, BoxError>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.ready = true;
        self.log.lock().unwrap().push((self.clock.now(), "ready"));
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: u32) -> Self::Future {
        assert!(std::mem::take(&mut self.ready), "called without poll_ready");
        self.log.lock().unwrap().push((self.clock.now(), "call"));
        let answer = self
            .script
            .lock()
            .unwrap()
            .pop_front()
            .expect("the script ran out");
        std::future::ready(answer)
    }
}

fn fail() -> Result<u32, BoxError> {
    Err("boom".into())
}

/// Polls the call to completion, moving the clock to each sleeper's
/// deadline whenever the call waits.
fn drive<F: Future>(clock: &ManualClock, future: F) -> F::Output {
    let mut future = task::spawn(future);
    loop {
        if let Poll::Ready(output) = future.poll() {
            return output;
        }
        let next = clock
            .next_deadline()
            .expect("a pending retry sleeps on the clock");
        clock.set(next);
    }
}

fn events_of(layer_events: &Arc<Mutex<Vec<EventKind>>>) -> Vec<EventKind> {
    layer_events.lock().unwrap().clone()
}

#[test]
fn a_flaky_service_succeeds_and_the_time_taken_is_the_sum_of_the_delays() {
    let clock = ManualClock::new();
    let inner = Scripted::new(&clock, vec![fail(), fail(), fail(), Ok(7)]);
    let backoff = Backoff::exponential(100 * MS, 2.0).max_delay(300 * MS);
    let layer = RetryLayer::builder()
        .max_attempts(4)
        .backoff(backoff)
        .clock(clock.clone())
        .build()
        .unwrap();
    let mut service = layer.layer(inner.clone());
    let answer = drive(&clock, async { service.ready().await?.call(1).await });
    assert_eq!(answer.unwrap(), 7);
    let at = |ms: u64| Instant::ZERO + Duration::from_millis(ms);
    assert_eq!(inner.calls(), [at(0), at(100), at(300), at(600)]);
    assert_eq!(clock.now(), at(600));
    // poll_ready came before every call.
    let log = inner.log.lock().unwrap();
    let kinds: Vec<_> = log.iter().map(|(_, what)| *what).collect();
    assert_eq!(
        kinds,
        [
            "ready", "call", "ready", "call", "ready", "call", "ready", "call"
        ]
    );
}

#[test]
fn each_jitter_gives_its_exact_sequence_for_a_seed() {
    let base = 100 * MS;
    let max = 2_000 * MS;
    let grown = |n: u32| (base * 2u32.pow(n)).min(max);
    let seed = 42;
    let draws: Vec<f64> = {
        let random = FastRandom::seeded(seed);
        (0..8).map(|_| random.next_f64()).collect()
    };
    let exponential = Backoff::exponential(base, 2.0).max_delay(max);
    let sequence = |jitter: Jitter| -> Vec<Duration> {
        exponential
            .jitter(jitter)
            .delays(FastRandom::seeded(seed))
            .take(8)
            .collect()
    };

    let none: Vec<_> = (0..8).map(grown).collect();
    assert_eq!(sequence(Jitter::None), none);
    let full: Vec<_> = (0..8)
        .map(|n| grown(n).mul_f64(draws[n as usize]))
        .collect();
    assert_eq!(sequence(Jitter::Full), full);
    let equal: Vec<_> = (0..8)
        .map(|n| grown(n) / 2 + (grown(n) / 2).mul_f64(draws[n as usize]))
        .collect();
    assert_eq!(sequence(Jitter::Equal), equal);
    let proportional: Vec<_> = (0..8)
        .map(|n| {
            let spread = 1.0 + 0.2 * (2.0 * draws[n as usize] - 1.0);
            Duration::from_secs_f64(grown(n).as_secs_f64() * spread).min(max)
        })
        .collect();
    assert_eq!(sequence(Jitter::Proportional(0.2)), proportional);
    let mut previous = base;
    let decorrelated: Vec<_> = draws
        .iter()
        .map(|draw| {
            let low = base.as_secs_f64();
            let high = (previous.as_secs_f64() * 3.0).max(low);
            previous = Duration::from_secs_f64(low + (high - low) * draw).min(max);
            previous
        })
        .collect();
    assert_eq!(sequence(Jitter::Decorrelated), decorrelated);

    let constant: Vec<_> = Backoff::constant(base)
        .delays(FastRandom::seeded(seed))
        .take(3)
        .collect();
    assert_eq!(constant, [base; 3]);
    let linear: Vec<_> = Backoff::linear(base, 50 * MS)
        .delays(FastRandom::seeded(seed))
        .take(3)
        .collect();
    assert_eq!(linear, [100 * MS, 150 * MS, 200 * MS]);
}

#[test]
fn max_attempts_counts_the_first_call_and_the_last_error_comes_back() {
    let clock = ManualClock::new();
    let events = Arc::new(Mutex::new(Vec::new()));
    let inner = Scripted::new(&clock, vec![fail(), fail(), Err("last".into())]);
    let layer = RetryLayer::builder()
        .max_attempts(3)
        .backoff(Backoff::constant(10 * MS))
        .clock(clock.clone())
        .on_event({
            let events = Arc::clone(&events);
            move |event| events.lock().unwrap().push(event.kind)
        })
        .build()
        .unwrap();
    let mut service = layer.layer(inner.clone());
    let err = drive(&clock, async { service.ready().await?.call(1).await }).unwrap_err();
    assert_eq!(err.to_string(), "last");
    assert_eq!(inner.calls().len(), 3);
    assert_eq!(
        events_of(&events),
        [
            EventKind::RetryScheduled {
                attempt: 2,
                delay: 10 * MS,
                reason: "error"
            },
            EventKind::RetryScheduled {
                attempt: 3,
                delay: 10 * MS,
                reason: "error"
            },
            EventKind::RetriesExhausted { attempts: 3 },
            EventKind::Completed {
                attempts: 3,
                success: false
            },
        ]
    );
}

#[test]
fn no_sleep_is_begun_that_would_end_past_the_deadline() {
    let clock = ManualClock::new();
    let inner = Scripted::new(&clock, (0..10).map(|_| fail()).collect());
    let layer = RetryLayer::builder()
        .max_attempts(10)
        .backoff(Backoff::constant(100 * MS))
        .deadline(250 * MS)
        .clock(clock.clone())
        .build()
        .unwrap();
    let mut service = layer.layer(inner.clone());
    let err = drive(&clock, async { service.ready().await?.call(1).await }).unwrap_err();
    assert_eq!(err.to_string(), "boom");
    let at = |ms: u64| Instant::ZERO + Duration::from_millis(ms);
    assert_eq!(
        inner.calls(),
        [at(0), at(100), at(200)],
        "a sleep to 300 ms would cross 250 ms"
    );
    assert_eq!(clock.now(), at(200));
}

#[test]
fn refusals_are_not_retried_unless_asked_and_unsatisfiable_never() {
    let clock = ManualClock::new();
    let refusals: Vec<fn() -> BoxError> = vec![
        || CircuitOpen::new("db", None).into(),
        || RateLimited::new("api", Some(MS)).into(),
        || Unsatisfiable::new("api", 9, 1).into(),
    ];
    for refusal in &refusals {
        let inner = Scripted::new(&clock, vec![Err(refusal()), Ok(1)]);
        let layer = RetryLayer::builder().clock(clock.clone()).build().unwrap();
        let mut service = layer.layer(inner.clone());
        assert!(drive(&clock, async { service.ready().await?.call(1).await }).is_err());
        assert_eq!(inner.calls().len(), 1);
    }
    let timeout = Scripted::new(&clock, vec![Err(Elapsed::new("t", None).into()), Ok(1)]);
    let layer = RetryLayer::builder().clock(clock.clone()).build().unwrap();
    let mut service = layer.layer(timeout.clone());
    assert_eq!(
        drive(&clock, async { service.ready().await?.call(1).await }).unwrap(),
        1,
        "a timeout is retried"
    );

    let opted_in = RetryLayer::builder()
        .policy(RetryErrors::new().retrying_rejections())
        .clock(clock.clone())
        .build()
        .unwrap();
    let open = Scripted::new(&clock, vec![Err(refusals[0]()), Ok(1)]);
    let mut service = opted_in.layer(open.clone());
    assert_eq!(
        drive(&clock, async { service.ready().await?.call(1).await }).unwrap(),
        1
    );
    let unsatisfiable = Scripted::new(&clock, vec![Err(refusals[2]()), Ok(1)]);
    let mut service = opted_in.layer(unsatisfiable.clone());
    assert!(drive(&clock, async { service.ready().await?.call(1).await }).is_err());
    assert_eq!(unsatisfiable.calls().len(), 1);
}

#[test]
fn pushback_replaces_the_backoff_and_is_capped() {
    let clock = ManualClock::new();
    let reasons = Arc::new(Mutex::new(Vec::new()));
    let inner = Scripted::new(&clock, vec![Ok(503), Ok(503), Ok(200)]);
    let layer = RetryLayer::builder()
        .policy(|_: &u32, result: &Result<u32, BoxError>| match result {
            Ok(503) => Decision::RetryAfter(Duration::from_secs(3600)),
            _ => Decision::Accept,
        })
        .max_pushback(Duration::from_secs(2))
        .clock(clock.clone())
        .on_event({
            let reasons = Arc::clone(&reasons);
            move |event| {
                if let EventKind::RetryScheduled { delay, reason, .. } = event.kind {
                    reasons.lock().unwrap().push((delay, reason));
                }
            }
        })
        .build()
        .unwrap();
    let mut service = layer.layer(inner.clone());
    assert_eq!(
        drive(&clock, async { service.ready().await?.call(1).await }).unwrap(),
        200
    );
    let two = Duration::from_secs(2);
    assert_eq!(
        *reasons.lock().unwrap(),
        [(two, "pushback"), (two, "pushback")]
    );
    let at = |s: u64| Instant::ZERO + Duration::from_secs(s);
    assert_eq!(inner.calls(), [at(0), at(2), at(4)]);
}

#[test]
fn a_request_that_cannot_be_copied_is_sent_once() {
    let clock = ManualClock::new();
    let inner = Scripted::new(&clock, vec![fail(), Ok(1)]);
    let layer = RetryLayer::builder()
        .clone_request(|request: &u32| (*request != 0).then_some(*request))
        .clock(clock.clone())
        .build()
        .unwrap();
    let mut service = layer.layer(inner.clone());
    assert!(drive(&clock, async { service.ready().await?.call(0).await }).is_err());
    assert_eq!(inner.calls().len(), 1);
}

#[test]
fn an_exhausted_budget_returns_the_last_error_at_once() {
    let clock = ManualClock::new();
    let events = Arc::new(Mutex::new(Vec::new()));
    // One retry per ten requests, nothing in reserve.
    let budget = RetryBudget::ttl(Duration::from_secs(10), 0, 0.1).unwrap();
    let layer = RetryLayer::builder()
        .max_attempts(5)
        .backoff(Backoff::constant(MS))
        .budget(budget.clone())
        .clock(clock.clone())
        .on_event({
            let events = Arc::clone(&events);
            move |event| events.lock().unwrap().push(event.kind)
        })
        .build()
        .unwrap();
    let inner = Scripted::new(&clock, (0..100).map(|_| fail()).collect());
    let mut service = layer.layer(inner.clone());
    for _ in 0..9 {
        assert!(drive(&clock, async { service.ready().await?.call(1).await }).is_err());
    }
    assert_eq!(
        inner.calls().len(),
        9,
        "nine requests deposit 0.9 of a retry: none allowed"
    );
    assert!(drive(&clock, async { service.ready().await?.call(1).await }).is_err());
    assert_eq!(
        inner.calls().len(),
        11,
        "the tenth makes one retry possible"
    );
    let exhausted = events_of(&events)
        .iter()
        .filter(|kind| **kind == EventKind::BudgetExhausted)
        .count();
    assert_eq!(exhausted, 10);
}

#[test]
fn a_token_budget_in_a_layer_takes_a_token_per_failure_and_gives_back_on_success() {
    let clock = ManualClock::new();
    // 4 tokens: retries while more than 2 remain.
    let budget = RetryBudget::tokens(4, 1.0).unwrap();
    let layer = RetryLayer::builder()
        .max_attempts(10)
        .backoff(Backoff::constant(MS))
        .budget(budget.clone())
        .clock(clock.clone())
        .build()
        .unwrap();
    let script = vec![fail(), fail(), Ok(7), Ok(7), fail(), fail()];
    let inner = Scripted::new(&clock, script);
    let mut service = layer.layer(inner.clone());
    // Two failures take two tokens (2 left): no third attempt.
    assert!(drive(&clock, async { service.ready().await?.call(1).await }).is_err());
    assert_eq!(inner.calls().len(), 2);
    // Two successes give two back (4): a failure (3) is retried once more.
    for _ in 0..2 {
        assert_eq!(
            drive(&clock, async { service.ready().await?.call(1).await }).unwrap(),
            7
        );
    }
    assert!(drive(&clock, async { service.ready().await?.call(1).await }).is_err());
    assert_eq!(inner.calls().len(), 6);
}

#[test]
fn fractional_ratios_allow_exactly_what_they_say() {
    for (ratio, requests, retries) in [
        (0.1, 100, 10),
        (0.1, 99, 9),
        (0.25, 7, 1),
        (0.3, 10, 3),
        (0.7, 10, 7),
        (1.0 / 3.0, 30, 9),
    ] {
        let budget = RetryBudget::ttl(Duration::from_secs(60), 0, ratio).unwrap();
        let now = Instant::ZERO + Duration::from_secs(5);
        for _ in 0..requests {
            budget.deposit(now);
        }
        let allowed = (0..1000).take_while(|_| budget.withdraw(now)).count();
        assert_eq!(allowed, retries, "ratio {ratio} over {requests} requests");
    }
}

#[test]
fn ttl_budget_deposits_expire() {
    let budget = RetryBudget::ttl(Duration::from_secs(10), 0, 1.0).unwrap();
    let start = Instant::ZERO;
    budget.deposit(start);
    assert_eq!(budget.available(start + Duration::from_secs(9)), 1);
    assert_eq!(budget.available(start + Duration::from_secs(10)), 0);
    assert!(!budget.withdraw(start + Duration::from_secs(10)));
}

#[test]
fn token_budget_refuses_at_half_and_recovers_on_successes() {
    let budget = RetryBudget::tokens(4, 0.5).unwrap();
    let now = Instant::ZERO;
    assert!(budget.withdraw(now));
    budget.record(false);
    budget.record(false);
    assert!(
        !budget.withdraw(now),
        "2 of 4 tokens left: not more than half"
    );
    budget.record(true);
    assert!(budget.withdraw(now), "2.5 tokens");
    for _ in 0..10 {
        budget.record(false);
    }
    assert_eq!(budget.available(now), 0, "never below zero");
    for _ in 0..20 {
        budget.record(true);
    }
    assert_eq!(budget.available(now), 2, "capped at the maximum");
}

#[test]
fn invalid_config_names_the_field() {
    let field = |err: palisade::error::ConfigError| err.field();
    assert_eq!(
        field(RetryLayer::builder().max_attempts(0).build().unwrap_err()),
        "max_attempts"
    );
    assert_eq!(
        field(
            RetryLayer::builder()
                .deadline(Duration::ZERO)
                .build()
                .unwrap_err()
        ),
        "deadline"
    );
    assert_eq!(
        field(
            RetryLayer::builder()
                .max_pushback(Duration::ZERO)
                .build()
                .unwrap_err()
        ),
        "max_pushback"
    );
    let nan = Backoff::exponential(MS, f64::NAN);
    assert_eq!(
        field(RetryLayer::builder().backoff(nan).build().unwrap_err()),
        "backoff.multiplier"
    );
    assert_eq!(
        field(RetryBudget::ttl(Duration::ZERO, 1, 0.1).unwrap_err()),
        "budget.ttl"
    );
    assert_eq!(
        field(RetryBudget::ttl(MS, 1, -0.1).unwrap_err()),
        "budget.ratio"
    );
    assert_eq!(
        field(RetryBudget::tokens(0, 0.1).unwrap_err()),
        "budget.max_tokens"
    );
    assert_eq!(
        field(RetryBudget::tokens(10, 0.0).unwrap_err()),
        "budget.token_ratio"
    );
}

#[test]
fn every_call_completes_with_one_event_saying_how_it_went() {
    let clock = ManualClock::new();
    let completed = Arc::new(Mutex::new(Vec::new()));
    let layer = RetryLayer::builder()
        .max_attempts(2)
        .backoff(Backoff::constant(MS))
        .clock(clock.clone())
        .on_event({
            let completed = Arc::clone(&completed);
            move |event| {
                if let EventKind::Completed { attempts, success } = event.kind {
                    completed.lock().unwrap().push((attempts, success));
                }
            }
        })
        .build()
        .unwrap();
    let refused: BoxError = CircuitOpen::new("db", None).into();
    let script = vec![Ok(1), fail(), Ok(2), Err(refused), fail(), fail()];
    let inner = Scripted::new(&clock, script);
    let mut service = layer.layer(inner);
    for _ in 0..4 {
        let _ = drive(&clock, async { service.ready().await?.call(1).await });
    }
    assert_eq!(
        *completed.lock().unwrap(),
        [(1, true), (2, true), (1, false), (2, false)],
        "succeeded at once, after a retry, failed without retry, failed after retries"
    );
}

/// A service that counts how often it is cloned and fails its first `fail`
/// calls.
struct CountsClones {
    clones: Arc<Mutex<u32>>,
    calls: Arc<Mutex<u32>>,
    fail: u32,
}

impl Clone for CountsClones {
    fn clone(&self) -> Self {
        *self.clones.lock().unwrap() += 1;
        CountsClones {
            clones: Arc::clone(&self.clones),
            calls: Arc::clone(&self.calls),
            fail: self.fail,
        }
    }
}

impl Service<u32> for CountsClones {
    type Response = u32;
    type Error = BoxError;
    type Future = std::future::Ready<Result<u32, BoxError>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, x: u32) -> Self::Future {
        let mut calls = self.calls.lock().unwrap();
        *calls += 1;
        std::future::ready(if *calls <= self.fail {
            Err("flaky".into())
        } else {
            Ok(x)
        })
    }
}

#[tokio::test(start_paused = true)]
async fn a_call_that_is_not_retried_clones_nothing_and_retries_share_one_clone() {
    let clones = Arc::new(Mutex::new(0));
    let calls = Arc::new(Mutex::new(0));
    let inner = CountsClones {
        clones: Arc::clone(&clones),
        calls: Arc::clone(&calls),
        fail: 2,
    };
    let layer = RetryLayer::builder()
        .max_attempts(3)
        .backoff(Backoff::constant(Duration::from_millis(1)))
        .build()
        .unwrap();
    let mut service = layer.layer(inner);
    let made = *clones.lock().unwrap();

    // Two failures, then success: one call, three attempts, one clone for
    // the retries.
    assert_eq!(service.ready().await.unwrap().call(1).await.unwrap(), 1);
    assert_eq!(*calls.lock().unwrap(), 3);
    assert_eq!(*clones.lock().unwrap(), made + 1);

    // Calls that succeed at once clone nothing.
    for x in 0..5 {
        assert_eq!(service.ready().await.unwrap().call(x).await.unwrap(), x);
    }
    assert_eq!(*clones.lock().unwrap(), made + 1);
}

#[test]
fn a_ttl_budget_holds_its_reserve_and_its_deposits_over_its_window() {
    let secs = Duration::from_secs;
    // A TTL of a day at most: a day is one, a nanosecond more is not.
    assert!(RetryBudget::ttl(secs(86_400), 1, 0.1).is_ok());
    let err = RetryBudget::ttl(secs(86_400) + Duration::from_nanos(1), 1, 0.1).unwrap_err();
    assert_eq!(err.field(), "budget.ttl");
    // The reserve: 3 a second over 10 s, 30 retries with no request at all.
    let budget = RetryBudget::ttl(secs(10), 3, 0.5).unwrap();
    let start = Instant::ZERO;
    assert_eq!(budget.available(start), 30);
    for _ in 0..30 {
        assert!(budget.withdraw(start));
    }
    assert!(!budget.withdraw(start), "the reserve is spent");
    // Deposits: half a retry a request.
    budget.deposit(start);
    assert!(!budget.withdraw(start), "half a retry is none");
    budget.deposit(start);
    assert!(budget.withdraw(start));
    assert!(!budget.withdraw(start));
    // A TTL later, what was spent has left the window: the reserve again.
    assert_eq!(budget.available(start + secs(11)), 30);
    // A reserve of 1.5 retries is one.
    let thin = RetryBudget::ttl(Duration::from_millis(1_500), 1, 0.0).unwrap();
    assert_eq!(thin.available(start), 1);
    assert!(thin.withdraw(start));
    assert!(!thin.withdraw(start));
    // New numbers from a budget that was used itself: only the numbers
    // are taken, not its history.
    let numbers = RetryBudget::ttl(secs(10), 0, 1.0).unwrap();
    for _ in 0..50 {
        numbers.deposit(start);
    }
    let own = RetryBudget::ttl(secs(10), 0, 0.5).unwrap();
    for _ in 0..4 {
        own.deposit(start);
    }
    own.reconfigure(&numbers, start).unwrap();
    assert_eq!(
        own.available(start),
        4,
        "its own 4 requests, at the new ratio of 1"
    );
    assert_eq!(format!("{budget:?}"), "RetryBudget { kind: \"ttl\", .. }");
    assert_eq!(
        format!("{:?}", RetryBudget::tokens(10, 0.1).unwrap()),
        "RetryBudget { kind: \"tokens\", .. }"
    );
}

#[test]
fn debug_shows_a_call_s_state_and_attempts() {
    let clock = ManualClock::new();
    let layer = RetryLayer::builder()
        .max_attempts(3)
        .backoff(Backoff::constant(MS))
        .clock(clock.clone())
        .build()
        .unwrap();
    let mut service = layer.layer(Scripted::new(&clock, vec![fail(), Ok(1)]));
    assert!(task::spawn(service.ready()).poll().is_ready());
    let mut call = task::spawn(Box::pin(service.call(1)));
    assert!(call.poll().is_pending(), "the first attempt failed");
    assert_eq!(
        format!("{:?}", *call),
        r#"ResponseFuture { state: "sleeping", attempts: 1, .. }"#
    );
}

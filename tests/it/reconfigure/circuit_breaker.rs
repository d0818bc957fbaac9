//! A breaker's settings changed while calls flow.

use std::{
    sync::{Arc, Barrier, Mutex},
    thread,
    time::Duration,
};

use palisade::{
    circuit_breaker::{
        CircuitBreakerLayer, CircuitState, FailureModel, HalfOpen, OpenDuration, SlowCalls,
    },
    clock::ManualClock,
    error::CircuitOpen,
    observe::EventKind,
};
use tokio_test::task;
use tower::{BoxError, Layer, Service, service_fn};

use super::{Changes, MS, record, sleeper};

/// A service that fails when asked to.
fn flaky() -> impl Service<bool, Response = (), Error = BoxError, Future: Send> + Clone {
    service_fn(|fail: bool| async move {
        if fail {
            Err::<(), BoxError>("down".into())
        } else {
            Ok(())
        }
    })
}

/// Calls `service` once; whether the breaker let it through.
fn through<S: Service<bool, Error = BoxError>>(service: &mut S, fail: bool) -> bool {
    match task::spawn(service.call(fail)).poll() {
        std::task::Poll::Ready(Err(err)) => !err.is::<CircuitOpen>(),
        std::task::Poll::Ready(Ok(_)) => true,
        std::task::Poll::Pending => unreachable!("answers at once"),
    }
}

#[test]
fn a_lowered_threshold_judges_the_kept_window_at_the_next_outcome() {
    let changes = Changes::default();
    let layer = CircuitBreakerLayer::builder()
        .count_window(10)
        .minimum_calls(10)
        .failure_rate(0.5)
        .clock(ManualClock::new())
        .on_event(record(&changes))
        .build()
        .unwrap();
    let handle = layer.handle();
    let mut service = layer.layer(flaky());
    for i in 0..9 {
        assert!(through(&mut service, i < 4));
    }
    let mut settings = handle.settings();
    settings.failure_rate = 0.3;
    handle.reconfigure(settings).unwrap();
    // The 9 calls are still counted; judged at the next outcome: 4 of 10.
    assert_eq!(handle.metrics().calls, 9);
    assert_eq!(handle.state(), CircuitState::Closed);
    assert!(through(&mut service, false));
    assert_eq!(handle.state(), CircuitState::Open);
    assert_eq!(*changes.lock().unwrap(), [("failure_rate", 0.5, 0.3)]);
}

#[test]
fn a_window_made_smaller_keeps_its_latest_outcomes_and_may_grow_back_to_its_size() {
    let changes = Changes::default();
    let layer = CircuitBreakerLayer::builder()
        .count_window(10)
        .minimum_calls(4)
        .failure_rate(0.5)
        .clock(ManualClock::new())
        .on_event(record(&changes))
        .build()
        .unwrap();
    let handle = layer.handle();
    let mut service = layer.layer(flaky());
    // S S S F S F S F: never 50 % of the calls so far.
    for i in 0..8 {
        assert!(through(&mut service, [3, 5, 7].contains(&i)));
    }
    let mut settings = handle.settings();
    settings.failure_model = FailureModel::CountWindow(4);
    handle.reconfigure(settings).unwrap();
    let metrics = handle.metrics();
    assert_eq!(
        (metrics.calls, metrics.failures),
        (4, 2),
        "the latest 4: S F S F"
    );
    assert_eq!(
        handle.state(),
        CircuitState::Closed,
        "judged at the next outcome"
    );
    settings.failure_model = FailureModel::CountWindow(10);
    handle.reconfigure(settings).unwrap();
    assert_eq!(
        handle.metrics().calls,
        4,
        "grown back, the others are not found again"
    );
    settings.failure_model = FailureModel::CountWindow(11);
    assert_eq!(
        handle.reconfigure(settings).unwrap_err().field(),
        "failure_model"
    );
    assert_eq!(
        *changes.lock().unwrap(),
        [("count_window", 10.0, 4.0), ("count_window", 4.0, 10.0)]
    );
}

#[test]
fn an_open_breaker_keeps_its_instant_and_the_next_opening_takes_the_new_duration() {
    let clock = ManualClock::new();
    let layer = CircuitBreakerLayer::builder()
        .consecutive_failures(2)
        .open_duration(OpenDuration::fixed(Duration::from_secs(10)))
        .clock(clock.clone())
        .build()
        .unwrap();
    let handle = layer.handle();
    let mut service = layer.layer(flaky());
    through(&mut service, true);
    through(&mut service, true);
    assert_eq!(handle.state(), CircuitState::Open);
    let mut settings = handle.settings();
    settings.open_duration = OpenDuration::fixed(Duration::from_secs(2));
    settings.failure_model = FailureModel::ConsecutiveFailures(1);
    handle.reconfigure(settings).unwrap();
    clock.advance(Duration::from_secs(9));
    assert_eq!(
        handle.state(),
        CircuitState::Open,
        "the instant it was given"
    );
    clock.advance(Duration::from_secs(1));
    assert_eq!(handle.state(), CircuitState::HalfOpen);
    // The probe fails: open again, for the new 2 s; closed, one failure
    // (the new limit) opens it.
    through(&mut service, true);
    assert_eq!(
        handle.metrics().open_until.unwrap().as_nanos(),
        12_000_000_000
    );
    clock.advance(Duration::from_secs(2));
    for _ in 0..3 {
        assert!(through(&mut service, false));
    }
    assert_eq!(handle.state(), CircuitState::Closed);
    through(&mut service, true);
    assert_eq!(handle.state(), CircuitState::Open);
}

#[test]
fn slow_call_detection_turned_on_live_judges_the_calls_that_start_after_it() {
    let clock = ManualClock::new();
    let layer = CircuitBreakerLayer::builder()
        .count_window(4)
        .minimum_calls(2)
        .clock(clock.clone())
        .build()
        .unwrap();
    let handle = layer.handle();
    let mut service = layer.layer(sleeper(&clock));
    let mut before = task::spawn(service.call(500));
    assert!(before.poll().is_pending());
    let mut settings = handle.settings();
    settings.slow_calls = Some(SlowCalls {
        threshold: 100 * MS,
        rate: 0.5,
    });
    handle.reconfigure(settings).unwrap();
    let mut after = task::spawn(service.call(500));
    assert!(after.poll().is_pending());
    clock.advance(500 * MS);
    assert!(before.poll().is_ready() && after.poll().is_ready());
    let metrics = handle.metrics();
    // A sink compiled in times every call for its histogram: then the call
    // already running was timed too, and is judged.
    let timed_before = cfg!(any(feature = "metrics", feature = "tracing"));
    assert_eq!(
        (metrics.calls, metrics.slow_calls),
        (2, if timed_before { 2 } else { 1 }),
        "the calls timed are judged"
    );
    assert_eq!(handle.state(), CircuitState::Open, "slow calls reach 50 %");

    settings.slow_calls = None;
    handle.reconfigure(settings).unwrap();
    handle.reset();
    let mut slow = task::spawn(service.call(500));
    assert!(slow.poll().is_pending());
    clock.advance(500 * MS);
    assert!(slow.poll().is_ready());
    assert_eq!(handle.metrics().slow_calls, 0);
}

/// Four threads record outcomes while a fifth changes the thresholds back
/// and forth: no outcome is lost to a change, and once a threshold is
/// crossed the breaker opens once, at the next outcome.
#[test]
fn thresholds_changed_racing_callers_lose_no_outcome_and_open_once() {
    let transitions = Arc::new(Mutex::new(Vec::new()));
    let layer = CircuitBreakerLayer::builder()
        .count_window(100)
        .minimum_calls(100)
        .failure_rate(1.0)
        .clock(ManualClock::new())
        .on_event({
            let transitions = Arc::clone(&transitions);
            move |event| {
                if let EventKind::Transition { to, .. } = event.kind {
                    transitions.lock().unwrap().push(to);
                }
            }
        })
        .build()
        .unwrap();
    let handle = layer.handle();
    let service = layer.layer(flaky());
    let start = Arc::new(Barrier::new(5));
    let callers: Vec<_> = (0..4)
        .map(|_| {
            let (mut service, start) = (service.clone(), Arc::clone(&start));
            thread::spawn(move || {
                start.wait();
                for i in 0..100 {
                    assert!(through(&mut service, i % 2 == 0));
                }
            })
        })
        .collect();
    start.wait();
    for i in 0..50 {
        let mut settings = handle.settings();
        settings.failure_rate = if i % 2 == 0 { 0.9 } else { 1.0 };
        settings.minimum_calls = 100 - i;
        handle.reconfigure(settings).unwrap();
    }
    for caller in callers {
        caller.join().unwrap();
    }
    let metrics = handle.metrics();
    assert_eq!(metrics.calls, 100);
    assert_eq!(metrics.successes + metrics.failures, 100);
    assert_eq!(handle.state(), CircuitState::Closed);
    let mut settings = handle.settings();
    settings.failure_rate = 0.25;
    handle.reconfigure(settings).unwrap();
    let mut service = service;
    through(&mut service, true);
    assert_eq!(handle.state(), CircuitState::Open);
    assert_eq!(*transitions.lock().unwrap(), ["open"]);
}

#[test]
fn permitted_calls_are_counted_when_the_breaker_is_observed() {
    let unobserved = !cfg!(any(feature = "metrics", feature = "tracing"));
    let layer = CircuitBreakerLayer::builder()
        .clock(ManualClock::new())
        .build()
        .unwrap();
    let mut service = layer.layer(flaky());
    through(&mut service, false);
    let expected = if unobserved { None } else { Some(1) };
    assert_eq!(layer.handle().metrics().permitted, expected);

    let layer = CircuitBreakerLayer::builder()
        .clock(ManualClock::new())
        .on_event(|_| {})
        .build()
        .unwrap();
    let handle = layer.handle();
    let mut service = layer.layer(flaky());
    for _ in 0..3 {
        through(&mut service, false);
    }
    handle.force_open();
    through(&mut service, false);
    let metrics = handle.metrics();
    assert_eq!((metrics.permitted, metrics.not_permitted), (Some(3), 1));
}

#[test]
fn every_setting_given_live_is_read_back() {
    let layer = CircuitBreakerLayer::builder().build().unwrap();
    let handle = layer.handle();
    let mut settings = handle.settings();
    settings.failure_model = FailureModel::CountWindow(20);
    settings.failure_rate = 0.25;
    settings.minimum_calls = 7;
    settings.slow_calls = Some(SlowCalls {
        threshold: Duration::from_millis(300),
        rate: 0.75,
    });
    settings.open_duration = OpenDuration::fixed(Duration::from_secs(3));
    settings.max_pushback = Duration::from_secs(11);
    settings.half_open = HalfOpen::new().max_probes(2).probes(4);
    assert_ne!(handle.settings(), settings);
    handle.reconfigure(settings).unwrap();
    assert_eq!(handle.settings(), settings);
}

#[test]
fn bad_breaker_settings_are_refused_with_their_field_and_change_nothing() {
    let changes = Changes::default();
    let layer = CircuitBreakerLayer::builder()
        .count_window(10)
        .minimum_calls(5)
        .on_event(record(&changes))
        .build()
        .unwrap();
    let handle = layer.handle();
    let good = handle.settings();
    let refused = |change: &dyn Fn(&mut palisade::circuit_breaker::Settings)| {
        let mut settings = good;
        change(&mut settings);
        handle.reconfigure(settings).unwrap_err().field()
    };
    assert_eq!(refused(&|s| s.failure_rate = 0.0), "failure_rate");
    assert_eq!(refused(&|s| s.minimum_calls = 11), "minimum_calls");
    assert_eq!(
        refused(&|s| s.failure_model = FailureModel::CountWindow(20)),
        "failure_model",
        "larger than the window built"
    );
    assert_eq!(
        refused(&|s| s.failure_model = FailureModel::ConsecutiveFailures(3)),
        "failure_model"
    );
    let mut larger = good;
    larger.failure_model = FailureModel::CountWindow(20);
    let rule = handle.reconfigure(larger).unwrap_err().rule().to_owned();
    assert!(
        rule.contains("(a count window of 10 calls), got CountWindow(20)"),
        "{rule}"
    );
    assert_eq!(
        refused(&|s| s.half_open = s.half_open.max_probes(0)),
        "half_open.max_probes"
    );
    assert_eq!(
        refused(&|s| s.slow_calls = Some(SlowCalls {
            threshold: Duration::ZERO,
            rate: 0.5
        })),
        "slow_calls.threshold"
    );
    assert_eq!(handle.settings(), good);
    assert!(changes.lock().unwrap().is_empty());
}

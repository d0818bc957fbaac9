//! The `metrics` and `tracing` sinks of the observer.

#![cfg(all(feature = "metrics", feature = "tracing"))]

use std::{
    collections::HashMap,
    io,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use metrics::{Counter, Gauge, Histogram, Key, KeyName, Metadata, Recorder, SharedString, Unit};
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use palisade::{
    classify::Outcome,
    clock::Instant,
    error::RejectionKind,
    observe::{EventKind, Observer, ObserverBuilder},
};

/// The debugging recorder, counting how often a handle is registered.
struct CountingRecorder {
    inner: DebuggingRecorder,
    registrations: Arc<AtomicUsize>,
}

impl Recorder for CountingRecorder {
    fn describe_counter(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.inner.describe_counter(key, unit, description)
    }
    fn describe_gauge(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.inner.describe_gauge(key, unit, description)
    }
    fn describe_histogram(&self, key: KeyName, unit: Option<Unit>, description: SharedString) {
        self.inner.describe_histogram(key, unit, description)
    }
    fn register_counter(&self, key: &Key, metadata: &Metadata<'_>) -> Counter {
        self.registrations.fetch_add(1, Ordering::Relaxed);
        self.inner.register_counter(key, metadata)
    }
    fn register_gauge(&self, key: &Key, metadata: &Metadata<'_>) -> Gauge {
        self.registrations.fetch_add(1, Ordering::Relaxed);
        self.inner.register_gauge(key, metadata)
    }
    fn register_histogram(&self, key: &Key, metadata: &Metadata<'_>) -> Histogram {
        self.registrations.fetch_add(1, Ordering::Relaxed);
        self.inner.register_histogram(key, metadata)
    }
}

type Metrics = HashMap<(String, Vec<(String, String)>), DebugValue>;

fn snapshot(snapshotter: &Snapshotter) -> Metrics {
    snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .map(|(key, _, _, value)| {
            let (_, key) = key.into_parts();
            let mut labels: Vec<(String, String)> = key
                .labels()
                .map(|l| (l.key().to_string(), l.value().to_string()))
                .collect();
            labels.sort();
            ((key.name().to_string(), labels), value)
        })
        .collect()
}

fn get<'a>(metrics: &'a Metrics, name: &str, extra: &[(&str, &str)]) -> &'a DebugValue {
    let mut labels: Vec<(String, String)> = [("layer", "circuit_breaker"), ("name", "payments")]
        .iter()
        .chain(extra)
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    labels.sort();
    metrics
        .get(&(name.to_string(), labels.clone()))
        .unwrap_or_else(|| panic!("no {name} {labels:?} in {metrics:#?}"))
}

fn counter(metrics: &Metrics, name: &str, extra: &[(&str, &str)]) -> u64 {
    match get(metrics, name, extra) {
        DebugValue::Counter(n) => *n,
        other => panic!("{name} is not a counter: {other:?}"),
    }
}

fn gauge(metrics: &Metrics, name: &str, extra: &[(&str, &str)]) -> f64 {
    match get(metrics, name, extra) {
        DebugValue::Gauge(v) => v.0,
        other => panic!("{name} is not a gauge: {other:?}"),
    }
}

fn histogram(metrics: &Metrics, name: &str, extra: &[(&str, &str)]) -> Vec<f64> {
    match get(metrics, name, extra) {
        DebugValue::Histogram(v) => v.iter().map(|x| x.0).collect(),
        other => panic!("{name} is not a histogram: {other:?}"),
    }
}

fn emit_a_day_in_the_life(observer: &Observer) {
    let t = Instant::ZERO;
    for _ in 0..3 {
        observer.emit(t, EventKind::Permitted);
    }
    observer.emit(t, EventKind::LetThrough);
    observer.emit(t, EventKind::LetThrough);
    observer.emit(
        t,
        EventKind::Finished {
            outcome: Outcome::Success,
            elapsed: Duration::from_millis(20),
        },
    );
    observer.emit(
        t,
        EventKind::Finished {
            outcome: Outcome::Failure,
            elapsed: Duration::from_millis(500),
        },
    );
    observer.emit(
        t,
        EventKind::Transition {
            from: "closed",
            to: "open",
            reason: "failure_rate",
        },
    );
    for _ in 0..2 {
        observer.emit(
            t,
            EventKind::Rejected {
                kind: RejectionKind::CircuitOpen,
                retry_after: Some(Duration::from_secs(5)),
            },
        );
    }
    observer.emit(
        t,
        EventKind::Transition {
            from: "open",
            to: "half_open",
            reason: "wait_elapsed",
        },
    );
    observer.emit(
        t,
        EventKind::Rates {
            failure_rate: 0.25,
            slow_call_rate: 0.5,
        },
    );
    observer.emit(
        t,
        EventKind::RetryScheduled {
            attempt: 2,
            delay: Duration::from_millis(100),
            reason: "error",
        },
    );
    observer.emit(t, EventKind::RetriesExhausted { attempts: 3 });
    observer.emit(t, EventKind::BudgetExhausted);
    for (attempts, success) in [(1, true), (1, true), (3, true), (1, false), (2, false)] {
        observer.emit(t, EventKind::Completed { attempts, success });
    }
    observer.emit(
        t,
        EventKind::TimedOut {
            after: Duration::from_secs(1),
        },
    );
    observer.emit(
        t,
        EventKind::FallbackUsed {
            reason: "circuit_open",
        },
    );
    observer.emit(
        t,
        EventKind::FallbackUsed {
            reason: "circuit_open",
        },
    );
}

#[test]
fn events_produce_the_documented_metrics() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let observer = ObserverBuilder::new()
        .name("payments")
        .build("circuit_breaker");
    metrics::with_local_recorder(&recorder, || emit_a_day_in_the_life(&observer));
    let m = snapshot(&snapshotter);

    assert_eq!(counter(&m, "palisade_calls_permitted_total", &[]), 3);
    assert_eq!(
        counter(&m, "palisade_calls_total", &[("outcome", "success")]),
        1
    );
    assert_eq!(
        counter(&m, "palisade_calls_total", &[("outcome", "failure")]),
        1
    );
    assert_eq!(
        histogram(
            &m,
            "palisade_call_duration_seconds",
            &[("outcome", "success")]
        ),
        [0.02]
    );
    assert_eq!(
        histogram(
            &m,
            "palisade_call_duration_seconds",
            &[("outcome", "failure")]
        ),
        [0.5]
    );
    assert_eq!(gauge(&m, "palisade_calls_in_flight", &[]), 1.0);
    assert_eq!(
        counter(&m, "palisade_rejections_total", &[("kind", "circuit_open")]),
        2
    );
    assert_eq!(
        counter(
            &m,
            "palisade_transitions_total",
            &[("from", "closed"), ("to", "open")]
        ),
        1
    );
    assert_eq!(
        counter(
            &m,
            "palisade_transitions_total",
            &[("from", "open"), ("to", "half_open")]
        ),
        1
    );
    assert_eq!(gauge(&m, "palisade_state", &[("state", "closed")]), 0.0);
    assert_eq!(gauge(&m, "palisade_state", &[("state", "open")]), 0.0);
    assert_eq!(gauge(&m, "palisade_state", &[("state", "half_open")]), 1.0);
    assert_eq!(counter(&m, "palisade_let_through_total", &[]), 2);
    assert_eq!(gauge(&m, "palisade_failure_ratio", &[]), 0.25);
    assert_eq!(gauge(&m, "palisade_slow_call_ratio", &[]), 0.5);
    assert_eq!(counter(&m, "palisade_retries_total", &[]), 1);
    assert_eq!(histogram(&m, "palisade_retry_delay_seconds", &[]), [0.1]);
    assert_eq!(counter(&m, "palisade_retries_exhausted_total", &[]), 1);
    assert_eq!(counter(&m, "palisade_budget_exhausted_total", &[]), 1);
    let results = |result| counter(&m, "palisade_retry_calls_total", &[("result", result)]);
    assert_eq!(results("succeeded_first_attempt"), 2);
    assert_eq!(results("succeeded_after_retries"), 1);
    assert_eq!(results("failed_without_retry"), 1);
    assert_eq!(results("failed_after_retries"), 1);
    assert_eq!(counter(&m, "palisade_timeouts_total", &[]), 1);
    assert_eq!(
        counter(
            &m,
            "palisade_fallbacks_total",
            &[("reason", "circuit_open")]
        ),
        2
    );
    // Nothing undocumented, and no metric for outcomes that never happened.
    assert_eq!(m.len(), 25, "{m:#?}");
}

#[test]
fn every_metric_is_described_with_its_unit_and_help_and_named_by_convention() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    // Described when the layer is built, to the recorder installed then.
    metrics::with_local_recorder(&recorder, || {
        emit_a_day_in_the_life(&ObserverBuilder::new().build("circuit_breaker"))
    });
    let described: Vec<_> = snapshotter
        .snapshot()
        .into_vec()
        .into_iter()
        .map(|(key, unit, help, _)| (key.key().name().to_string(), unit, help))
        .collect();
    assert_eq!(described.len(), 25);
    for (name, unit, help) in described {
        let help = help.unwrap_or_else(|| panic!("{name} has no help text"));
        assert!(help.len() > 10, "{name}: {help}");
        if name.ends_with("_seconds") {
            assert_eq!(unit, Some(Unit::Seconds), "{name}");
        } else if name.ends_with("_total") {
            assert_eq!(unit, Some(Unit::Count), "{name}");
        } else if name.ends_with("_ratio") {
            assert!(help.contains("from 0 to 1"), "{name}: {help}");
        }
        // No rates or durations under other names.
        assert!(!name.ends_with("_rate"), "{name}");
        assert!(
            !name.contains("duration") || name.ends_with("_seconds"),
            "{name}"
        );
    }
}

#[test]
fn describing_again_reaches_a_recorder_installed_after_the_layers() {
    let observer = ObserverBuilder::new().build("retry");
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    metrics::with_local_recorder(&recorder, || {
        palisade::observe::describe_metrics();
        observer.emit(Instant::ZERO, EventKind::BudgetExhausted);
    });
    let (_, unit, help, _) = snapshotter.snapshot().into_vec().pop().unwrap();
    assert_eq!(unit, Some(Unit::Count));
    assert!(help.unwrap().contains("retry budget"));
}

#[test]
fn handles_are_registered_once_not_per_event() {
    let registrations = Arc::new(AtomicUsize::new(0));
    let recorder = CountingRecorder {
        inner: DebuggingRecorder::new(),
        registrations: Arc::clone(&registrations),
    };
    let snapshotter = recorder.inner.snapshotter();
    let observer = ObserverBuilder::new()
        .name("payments")
        .build("circuit_breaker");
    metrics::with_local_recorder(&recorder, || {
        emit_a_day_in_the_life(&observer);
        let after_first_pass = registrations.load(Ordering::Relaxed);
        for _ in 0..100 {
            emit_a_day_in_the_life(&observer);
        }
        assert_eq!(registrations.load(Ordering::Relaxed), after_first_pass);
    });
    let m = snapshot(&snapshotter);
    assert_eq!(counter(&m, "palisade_calls_permitted_total", &[]), 303);
    assert_eq!(gauge(&m, "palisade_calls_in_flight", &[]), 101.0);
}

#[test]
fn a_panicking_listener_does_not_stop_the_metrics() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    let observer = ObserverBuilder::new()
        .name("payments")
        .on_event(|_| panic!("listener bug"))
        .build("circuit_breaker");
    metrics::with_local_recorder(&recorder, || {
        observer.emit(Instant::ZERO, EventKind::Permitted);
        observer.emit(Instant::ZERO, EventKind::Permitted);
    });
    assert_eq!(
        counter(
            &snapshot(&snapshotter),
            "palisade_calls_permitted_total",
            &[]
        ),
        2
    );
    assert_eq!(observer.listener_panics(), 2);
}

/// A `tracing` writer into a shared buffer.
#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl io::Write for Buffer {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// What `run` logs at `DEBUG` and above, as text.
fn traced(run: impl FnOnce()) -> String {
    let buffer = Buffer::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer({
            let buffer = buffer.clone();
            move || buffer.clone()
        })
        .with_max_level(tracing::Level::DEBUG)
        .with_ansi(false)
        .finish();
    tracing::subscriber::with_default(subscriber, run);
    String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap()
}

#[test]
fn events_are_traced_with_layer_and_name_at_their_levels() {
    let observer = ObserverBuilder::new()
        .name("payments")
        .build("circuit_breaker");
    let out = traced(|| emit_a_day_in_the_life(&observer));

    let lines: Vec<&str> = out.lines().collect();
    let find = |message: &str| {
        lines
            .iter()
            .find(|l| l.contains(message))
            .unwrap_or_else(|| panic!("no {message:?} in\n{out}"))
    };
    let transition = find("state transition");
    assert!(transition.contains("INFO"), "{transition}");
    // The target is the layer's module, so a filter can pick one pattern.
    assert!(
        transition.contains("palisade::circuit_breaker:"),
        "{transition}"
    );
    assert!(
        transition.contains("layer=\"circuit_breaker\""),
        "{transition}"
    );
    assert!(transition.contains("name=\"payments\""), "{transition}");
    assert!(
        transition.contains("from=\"closed\" to=\"open\" reason=\"failure_rate\""),
        "{transition}"
    );
    assert!(find("call rejected").contains("DEBUG"));
    assert!(find("call rejected").contains("kind=\"circuit_open\""));
    assert!(find("retries exhausted").contains("WARN"));
    assert!(find("retry budget exhausted").contains("WARN"));
    assert!(find("retry scheduled").contains("attempt=2"));
    assert!(find("call timed out").contains("DEBUG"));
    assert!(find("fallback used").contains("reason=\"circuit_open\""));
    // TRACE-level events are below the subscriber's DEBUG threshold.
    assert!(!out.contains("call permitted"), "{out}");
    assert!(!out.contains("call finished"), "{out}");
}

#[test]
fn each_layer_traces_under_its_own_modules_target() {
    let kinds = [
        "circuit_breaker",
        "rate_limit",
        "retry",
        "bulkhead",
        "timeout",
        "fallback",
    ];
    let out = traced(|| {
        for kind in kinds {
            let after = Duration::from_millis(1);
            ObserverBuilder::new()
                .build(kind)
                .emit(Instant::ZERO, EventKind::TimedOut { after });
        }
    });
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), kinds.len(), "{out}");
    for (line, kind) in lines.iter().zip(kinds) {
        assert!(line.contains(&format!(" palisade::{kind}: ")), "{line}");
        assert!(line.contains(&format!("layer=\"{kind}\"")), "{line}");
    }
}

#[test]
fn each_retry_attempt_runs_in_its_own_span() {
    use palisade::{
        clock::ManualClock,
        retry::{Backoff, RetryLayer},
    };
    use tower::{Layer, Service, service_fn};

    let clock = ManualClock::new();
    let calls = Arc::new(Mutex::new(0u32));
    let flaky = service_fn({
        let calls = Arc::clone(&calls);
        move |_: ()| {
            let mut calls = calls.lock().unwrap();
            *calls += 1;
            tracing::info!(call = *calls, "upstream called");
            std::future::ready(if *calls < 3 {
                Err::<u32, tower::BoxError>("unavailable".into())
            } else {
                Ok(*calls)
            })
        }
    });
    let mut service = RetryLayer::builder()
        .name("payments")
        .backoff(Backoff::constant(Duration::from_millis(10)))
        .clock(clock.clone())
        .build()
        .unwrap()
        .layer(flaky);
    let out = traced(|| {
        let mut call = tokio_test::task::spawn(service.call(()));
        assert!(call.poll().is_pending());
        clock.advance(Duration::from_millis(10));
        assert!(call.poll().is_pending());
        clock.advance(Duration::from_millis(10));
        assert!(matches!(call.poll(), std::task::Poll::Ready(Ok(3))));
    });
    let called: Vec<&str> = out
        .lines()
        .filter(|l| l.contains("upstream called"))
        .collect();
    assert_eq!(called.len(), 3, "{out}");
    for (attempt, line) in (1..).zip(called) {
        let span = format!("retry_attempt{{name=\"payments\" attempt={attempt}}}");
        assert!(line.contains(&span), "{line}");
        assert!(line.contains(&format!("call={attempt}")), "{line}");
    }
}

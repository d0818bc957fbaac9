//! The event vocabulary, listeners, and the metrics and tracing sinks.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use palisade::{
    classify::Outcome,
    clock::Instant,
    error::RejectionKind,
    observe::{Event, EventKind, ObserverBuilder},
};

fn at(secs: u64) -> Instant {
    Instant::ZERO + Duration::from_secs(secs)
}

#[test]
fn listeners_see_every_event_with_layer_name_and_time_in_order() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let push = |tag: &'static str| {
        let seen = Arc::clone(&seen);
        move |e: &Event<'_>| {
            seen.lock()
                .unwrap()
                .push((tag, e.layer, e.name.to_string(), e.at, e.kind))
        }
    };
    let observer = ObserverBuilder::new()
        .name("payments")
        .on_event(push("first"))
        .on_event(push("second"))
        .build("circuit_breaker");

    let transition = EventKind::Transition {
        from: "closed",
        to: "open",
        reason: "failure_rate",
    };
    observer.emit(at(1), EventKind::Permitted);
    observer.emit(at(2), transition);

    let seen = seen.lock().unwrap();
    let expected = [
        ("first", at(1), EventKind::Permitted),
        ("second", at(1), EventKind::Permitted),
        ("first", at(2), transition),
        ("second", at(2), transition),
    ];
    assert_eq!(seen.len(), expected.len());
    for (got, (tag, time, kind)) in seen.iter().zip(expected) {
        assert_eq!(
            got,
            &(tag, "circuit_breaker", "payments".to_string(), time, kind)
        );
    }
}

#[test]
fn an_unnamed_layer_is_named_after_its_kind() {
    let observer = ObserverBuilder::new().build("bulkhead");
    assert_eq!(observer.name().as_str(), "bulkhead");
    assert_eq!(observer.layer(), "bulkhead");
}

#[test]
fn a_panicking_listener_breaks_nothing() {
    let calls = Arc::new(Mutex::new(0));
    let observer = ObserverBuilder::new()
        .on_event(|_| panic!("listener bug"))
        .on_event({
            let calls = Arc::clone(&calls);
            move |_| *calls.lock().unwrap() += 1
        })
        .build("retry");
    for _ in 0..3 {
        observer.emit(Instant::ZERO, EventKind::BudgetExhausted);
    }
    assert_eq!(*calls.lock().unwrap(), 3, "later listeners still run");
    assert_eq!(observer.listener_panics(), 3);
    // Clones share the observer.
    let clone = observer.clone();
    clone.emit(Instant::ZERO, EventKind::BudgetExhausted);
    assert_eq!(observer.listener_panics(), 4);
}

#[test]
fn event_kind_names_are_distinct() {
    let kinds = [
        EventKind::Permitted,
        EventKind::Finished {
            outcome: Outcome::Success,
            elapsed: Duration::ZERO,
        },
        EventKind::Rejected {
            kind: RejectionKind::RateLimited,
            retry_after: None,
        },
        EventKind::Transition {
            from: "a",
            to: "b",
            reason: "c",
        },
        EventKind::RetryScheduled {
            attempt: 2,
            delay: Duration::ZERO,
            reason: "error",
        },
        EventKind::RetriesExhausted { attempts: 3 },
        EventKind::BudgetExhausted,
        EventKind::TimedOut {
            after: Duration::ZERO,
        },
        EventKind::FallbackUsed { reason: "failure" },
    ];
    let mut names: Vec<_> = kinds.iter().map(|k| k.as_str()).collect();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), kinds.len());
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn the_rate_limiter_and_the_timeout_count_what_they_let_through() {
    use palisade::{rate_limit::RateLimitLayer, timeout::TimeoutLayer};
    use tower::{Layer, Service, ServiceExt, service_fn};

    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = |seen: &Arc<Mutex<Vec<(&'static str, EventKind)>>>| {
        let seen = Arc::clone(seen);
        move |e: &Event<'_>| seen.lock().unwrap().push((e.layer, e.kind))
    };
    let echo = service_fn(|x: u32| async move { Ok::<_, std::io::Error>(x) });

    // Two admitted of three: two `LetThrough`, one `Rejected`.
    let limiter = RateLimitLayer::builder()
        .token_bucket(palisade::rate_limit::Rate::per_second(2), 2)
        .on_event(record(&seen))
        .build()
        .unwrap();
    let mut limited = limiter.layer(echo);
    for x in 0..3 {
        let _ = limited.ready().await.unwrap().call(x).await;
    }
    // One answered in time: `LetThrough`; one too slow: `TimedOut`.
    let timeout = TimeoutLayer::builder(Duration::from_millis(100))
        .on_event(record(&seen))
        .build()
        .unwrap();
    let slow = service_fn(|wait: u64| async move {
        tokio::time::sleep(Duration::from_millis(wait)).await;
        Ok::<_, std::io::Error>(wait)
    });
    let mut timed = timeout.layer(slow);
    assert!(timed.ready().await.unwrap().call(10).await.is_ok());
    assert!(timed.ready().await.unwrap().call(500).await.is_err());

    let seen = seen.lock().unwrap();
    let kinds: Vec<_> = seen
        .iter()
        .map(|(layer, kind)| (*layer, kind.as_str()))
        .collect();
    assert_eq!(
        kinds,
        [
            ("rate_limit", "let_through"),
            ("rate_limit", "let_through"),
            ("rate_limit", "rejected"),
            ("timeout", "let_through"),
            ("timeout", "timed_out"),
        ]
    );
}

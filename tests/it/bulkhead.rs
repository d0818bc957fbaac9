//! The bulkhead on a `ManualClock`: the bound holds, permits come back on
//! completion, cancellation and panic, readiness holds nothing, two
//! bulkheads isolate two dependencies, and events are emitted.

use std::{
    panic::{AssertUnwindSafe, catch_unwind},
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use palisade::{
    bulkhead::BulkheadLayer,
    classify::Outcome,
    clock::{Clock, ManualClock},
    error::{BulkheadFull, RejectionKind},
    observe::EventKind,
};
use tokio_test::{assert_pending, assert_ready, task};
use tower::{BoxError, Layer, Service, ServiceExt, service_fn};

const SEC: Duration = Duration::from_secs(1);

/// A dependency that takes a second on the clock and records the most
/// calls it ever had in flight at once.
fn slow(
    clock: ManualClock,
    in_flight: Arc<AtomicUsize>,
    most: Arc<AtomicUsize>,
) -> impl Service<
    u32,
    Response = u32,
    Error = BoxError,
    Future = impl Future<Output = Result<u32, BoxError>> + Send,
> + Clone {
    service_fn(move |n: u32| {
        let (clock, in_flight, most) = (clock.clone(), Arc::clone(&in_flight), Arc::clone(&most));
        async move {
            let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            most.fetch_max(now, Ordering::SeqCst);
            clock.sleep(SEC).await;
            in_flight.fetch_sub(1, Ordering::SeqCst);
            if n == 666 {
                panic!("the dependency panicked");
            }
            Ok(n)
        }
    })
}

#[test]
fn the_bound_holds_and_the_rest_is_refused_at_once() {
    let clock = ManualClock::new();
    let most = Arc::new(AtomicUsize::new(0));
    let layer = BulkheadLayer::builder(3)
        .name("db")
        .clock(clock.clone())
        .build()
        .unwrap();
    let mut service = layer.layer(slow(clock.clone(), Arc::default(), Arc::clone(&most)));
    let mut calls: Vec<_> = (0..10).map(|n| task::spawn(service.call(n))).collect();
    let mut refused = 0;
    for call in &mut calls {
        match call.poll() {
            std::task::Poll::Pending => {}
            std::task::Poll::Ready(Err(err)) => {
                assert_eq!(err.downcast_ref::<BulkheadFull>().unwrap().name(), "db");
                refused += 1;
            }
            std::task::Poll::Ready(Ok(_)) => panic!("nothing completes before the clock moves"),
        }
    }
    assert_eq!(refused, 7);
    assert_eq!(layer.in_flight(), 3);
    assert_eq!(layer.queue(), None, "no call waits");
    clock.advance(SEC);
    for call in calls.iter_mut().take(3) {
        assert!(assert_ready!(call.poll()).is_ok());
    }
    assert_eq!(
        most.load(Ordering::SeqCst),
        3,
        "the dependency never saw more than 3"
    );
    assert_eq!(layer.in_flight(), 0, "permits came back on completion");
}

#[test]
fn permits_come_back_when_a_call_is_dropped_or_panics() {
    let clock = ManualClock::new();
    let layer = BulkheadLayer::builder(1)
        .clock(clock.clone())
        .build()
        .unwrap();
    let mut service = layer.layer(slow(clock.clone(), Arc::default(), Arc::default()));

    let mut cancelled = task::spawn(service.call(1));
    assert_pending!(cancelled.poll());
    assert_eq!(layer.in_flight(), 1);
    drop(cancelled);
    assert_eq!(
        layer.in_flight(),
        0,
        "dropping the call gave the permit back"
    );

    let mut panicking = task::spawn(service.call(666));
    assert_pending!(panicking.poll());
    clock.advance(SEC);
    assert!(catch_unwind(AssertUnwindSafe(|| panicking.poll())).is_err());
    drop(panicking);
    assert_eq!(layer.in_flight(), 0, "a panic gave the permit back");
}

#[test]
fn a_service_made_ready_and_never_called_holds_nothing() {
    let clock = ManualClock::new();
    let layer = BulkheadLayer::builder(1)
        .clock(clock.clone())
        .build()
        .unwrap();
    let mut services: Vec<_> = (0..5)
        .map(|_| layer.layer(slow(clock.clone(), Arc::default(), Arc::default())))
        .collect();
    for service in &mut services {
        assert!(task::spawn(service.ready()).poll().is_ready());
    }
    assert_eq!(layer.in_flight(), 0);
    let mut call = task::spawn(services[4].call(4));
    assert_pending!(call.poll());
    assert_eq!(layer.in_flight(), 1);
}

#[test]
fn saturating_one_bulkhead_leaves_the_other_untouched() {
    let clock = ManualClock::new();
    let payments = BulkheadLayer::builder(2)
        .name("payments")
        .clock(clock.clone())
        .build()
        .unwrap();
    let search = BulkheadLayer::builder(2)
        .name("search")
        .clock(clock.clone())
        .build()
        .unwrap();
    let mut to_payments = payments.layer(slow(clock.clone(), Arc::default(), Arc::default()));
    let mut to_search = search.layer(slow(clock.clone(), Arc::default(), Arc::default()));
    let mut stuck: Vec<_> = (0..2).map(|n| task::spawn(to_payments.call(n))).collect();
    for call in &mut stuck {
        assert_pending!(call.poll());
    }
    assert!(assert_ready!(task::spawn(to_payments.call(9)).poll()).is_err());
    let mut searches: Vec<_> = (0..2).map(|n| task::spawn(to_search.call(n))).collect();
    for call in &mut searches {
        assert_pending!(call.poll(), "search still has its own permits");
    }
    assert_eq!((payments.in_flight(), search.in_flight()), (2, 2));
}

#[test]
fn calls_and_refusals_are_evented() {
    let clock = ManualClock::new();
    let events = Arc::new(Mutex::new(Vec::new()));
    let layer = BulkheadLayer::builder(1)
        .clock(clock.clone())
        .on_event({
            let events = Arc::clone(&events);
            move |event| events.lock().unwrap().push(event.kind)
        })
        .build()
        .unwrap();
    let mut service = layer.layer(slow(clock.clone(), Arc::default(), Arc::default()));
    let mut first = task::spawn(service.call(1));
    assert_pending!(first.poll());
    assert!(assert_ready!(task::spawn(service.call(2)).poll()).is_err());
    clock.advance(SEC);
    assert!(assert_ready!(first.poll()).is_ok());
    assert_eq!(
        *events.lock().unwrap(),
        [
            EventKind::Permitted,
            EventKind::Rejected {
                kind: RejectionKind::BulkheadFull,
                retry_after: None
            },
            EventKind::Finished {
                outcome: Outcome::Success,
                elapsed: SEC
            },
        ]
    );
    assert_eq!(clock.now().since_epoch(), SEC);
}

#[test]
fn zero_permits_are_refused() {
    assert_eq!(
        BulkheadLayer::builder(0).build().unwrap_err().field(),
        "max_concurrent"
    );
}

#[test]
fn waiters_are_served_in_arrival_order_and_a_full_queue_refuses() {
    let clock = ManualClock::new();
    let layer = BulkheadLayer::builder(1)
        .queue(3, 10 * SEC)
        .clock(clock.clone())
        .build()
        .unwrap();
    let mut service = layer.layer(slow(clock.clone(), Arc::default(), Arc::default()));
    let mut calls: Vec<_> = (0..4).map(|n| task::spawn(service.call(n))).collect();
    for call in &mut calls {
        assert_pending!(call.poll());
    }
    assert_eq!((layer.in_flight(), layer.waiting()), (1, 3));
    assert_eq!(layer.queue(), Some((3, 10 * SEC)));
    let err = assert_ready!(task::spawn(service.call(9)).poll()).unwrap_err();
    assert!(err.is::<BulkheadFull>(), "the queue is full");
    for n in 1..4 {
        clock.advance(SEC);
        assert_eq!(assert_ready!(calls[n - 1].poll()).unwrap(), n as u32 - 1);
        assert!(calls[n].is_woken(), "waiter {n} is handed the permit");
        for later in calls.iter().skip(n + 1) {
            assert!(!later.is_woken(), "later waiters stay asleep");
        }
        assert_pending!(
            calls[n].poll(),
            "it called the service, which takes a second"
        );
    }
    clock.advance(SEC);
    assert_eq!(assert_ready!(calls[3].poll()).unwrap(), 3);
    assert_eq!((layer.in_flight(), layer.waiting()), (0, 0));
}

#[test]
fn max_wait_is_honoured_exactly() {
    let clock = ManualClock::new();
    let layer = BulkheadLayer::builder(1)
        .queue(1, Duration::from_millis(500))
        .clock(clock.clone())
        .build()
        .unwrap();
    let mut service = layer.layer(slow(clock.clone(), Arc::default(), Arc::default()));
    let mut holder = task::spawn(service.call(1));
    assert_pending!(holder.poll());
    let mut waiter = task::spawn(service.call(2));
    assert_pending!(waiter.poll());
    clock.advance(Duration::from_millis(500) - Duration::from_nanos(1));
    assert_pending!(waiter.poll());
    clock.advance(Duration::from_nanos(1));
    assert!(
        assert_ready!(waiter.poll())
            .unwrap_err()
            .is::<BulkheadFull>()
    );
    assert_eq!(
        (layer.in_flight(), layer.waiting()),
        (1, 0),
        "the waiter left the queue"
    );
}

#[test]
fn a_dropped_waiter_leaves_and_a_dropped_grant_gives_its_permit_back() {
    let clock = ManualClock::new();
    let layer = BulkheadLayer::builder(1)
        .queue(2, 10 * SEC)
        .clock(clock.clone())
        .build()
        .unwrap();
    let mut service = layer.layer(slow(clock.clone(), Arc::default(), Arc::default()));
    let mut holder = task::spawn(service.call(1));
    assert_pending!(holder.poll());
    let mut gone = task::spawn(service.call(2));
    assert_pending!(gone.poll());
    drop(gone);
    assert_eq!(layer.waiting(), 0);

    let mut granted = task::spawn(service.call(3));
    assert_pending!(granted.poll());
    clock.advance(SEC);
    assert!(assert_ready!(holder.poll()).is_ok());
    assert!(granted.is_woken());
    assert_eq!(layer.in_flight(), 1, "the permit went to the waiter");
    drop(granted); // before it picked the permit up
    assert_eq!((layer.in_flight(), layer.waiting()), (0, 0));
}

#[test]
fn readiness_is_the_wrapped_service_s() {
    let (mock, mut handle) = tower_test::mock::pair::<u32, u32>();
    handle.allow(0);
    let layer = BulkheadLayer::builder(1).build().unwrap();
    let mut service = tower_test::mock::Spawn::new(layer.layer(mock));
    assert_pending!(service.poll_ready());
    handle.allow(1);
    assert!(service.is_woken());
    assert!(assert_ready!(service.poll_ready()).is_ok());
    assert_eq!(layer.in_flight(), 0, "readiness takes no permit");
}

#[test]
fn debug_shows_the_bound_the_calls_the_queue_and_each_call_s_state() {
    let clock = ManualClock::new();
    let builder = BulkheadLayer::builder(1)
        .name("db")
        .queue(1, SEC)
        .clock(clock.clone());
    let shown = format!("{builder:?}");
    assert!(
        shown.starts_with(
            "BulkheadBuilder { max_concurrent: 1, waiting: Some(Waiting { max_waiting: 1, max_wait: 1s })"
        ),
        "{shown}"
    );
    let layer = builder.build().unwrap();
    let mut service = layer.layer(slow(clock.clone(), Arc::default(), Arc::default()));
    let mut called = task::spawn(Box::pin(service.call(1)));
    assert_pending!(called.poll());
    let mut waiting = task::spawn(Box::pin(service.call(2)));
    assert_pending!(waiting.poll());
    let rejected = service.call(3);
    assert_eq!(
        format!("{:?}", *called),
        r#"ResponseFuture { state: "called", .. }"#
    );
    assert_eq!(
        format!("{:?}", *waiting),
        r#"ResponseFuture { state: "waiting", .. }"#
    );
    assert_eq!(
        format!("{rejected:?}"),
        r#"ResponseFuture { state: "rejected", .. }"#
    );
    let bulkhead = r#"Bulkhead { name: "db", max_concurrent: 1, in_flight: 1, waiting: 1, .. }"#;
    assert_eq!(
        format!("{layer:?}"),
        format!("BulkheadLayer {{ bulkhead: {bulkhead} }}")
    );
    let echo = layer.layer(service_fn(|n: u32| async move { Ok::<_, BoxError>(n) }));
    let shown = format!("{echo:?}");
    assert!(shown.starts_with("Bulkhead { inner: ServiceFn"), "{shown}");
    assert!(
        shown.ends_with(&format!(", bulkhead: {bulkhead} }}")),
        "{shown}"
    );
}

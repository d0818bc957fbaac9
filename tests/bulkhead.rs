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

//! The timeout layer on a `ManualClock`: it fires exactly at the deadline,
//! arms no timer for a call that is ready at once, takes the shorter of a
//! request's own timeout and the layer's, and drops the call it times out.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use palisade::{
    clock::{Clock, ManualClock},
    error::{DeadlineExceeded, Elapsed},
    observe::EventKind,
    timeout::TimeoutLayer,
};
use tokio_test::{assert_pending, assert_ready, task};
use tower::{BoxError, Layer, Service, service_fn};

const NS: Duration = Duration::from_nanos(1);
const MS: Duration = Duration::from_millis(1);

/// Sets its flag when dropped.
struct Dropped(Arc<AtomicBool>);

impl Drop for Dropped {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// A call that sleeps `Duration` on the clock, then answers.
fn sleeper(
    clock: ManualClock,
    dropped: Arc<AtomicBool>,
) -> impl Service<
    Duration,
    Response = (),
    Error = BoxError,
    Future = impl Future<Output = Result<(), BoxError>> + Send,
> + Clone {
    service_fn(move |takes: Duration| {
        let (clock, guard) = (clock.clone(), Dropped(Arc::clone(&dropped)));
        async move {
            let _guard = guard;
            clock.sleep(takes).await;
            Ok::<_, BoxError>(())
        }
    })
}

#[test]
fn it_fires_exactly_at_the_deadline_and_drops_the_call() {
    let clock = ManualClock::new();
    let events = Arc::new(Mutex::new(Vec::new()));
    let dropped = Arc::new(AtomicBool::new(false));
    let layer = TimeoutLayer::builder(100 * MS)
        .name("upstream")
        .clock(clock.clone())
        .on_event({
            let events = Arc::clone(&events);
            move |event| events.lock().unwrap().push(event.kind)
        })
        .build()
        .unwrap();
    let mut service = layer.layer(sleeper(clock.clone(), Arc::clone(&dropped)));
    let mut call = task::spawn(service.call(Duration::from_secs(60)));
    assert_pending!(call.poll());
    clock.advance(100 * MS - NS);
    assert!(!call.is_woken());
    assert_pending!(call.poll());
    clock.advance(NS);
    assert!(call.is_woken());
    let err = assert_ready!(call.poll()).unwrap_err();
    let elapsed = err.downcast_ref::<Elapsed>().expect("an Elapsed error");
    assert_eq!(elapsed.name(), "upstream");
    assert!(
        dropped.load(Ordering::SeqCst),
        "the timed-out call was dropped"
    );
    assert_eq!(
        *events.lock().unwrap(),
        [EventKind::TimedOut { after: 100 * MS }]
    );
}

#[test]
fn no_timer_is_made_for_a_call_ready_at_once() {
    let clock = ManualClock::new();
    let layer = TimeoutLayer::builder(100 * MS)
        .clock(clock.clone())
        .build()
        .unwrap();
    let mut service = layer.layer(sleeper(clock.clone(), Arc::default()));
    let mut call = task::spawn(service.call(Duration::ZERO));
    assert!(assert_ready!(call.poll()).is_ok());
    assert_eq!(clock.sleepers(), 0);
    assert_eq!(clock.next_deadline(), None);
}

#[test]
fn a_call_that_finishes_in_time_is_answered_and_leaves_no_timer() {
    let clock = ManualClock::new();
    let layer = TimeoutLayer::builder(100 * MS)
        .clock(clock.clone())
        .build()
        .unwrap();
    let mut service = layer.layer(sleeper(clock.clone(), Arc::default()));
    let mut call = task::spawn(service.call(100 * MS - NS));
    assert_pending!(call.poll());
    assert_eq!(clock.sleepers(), 2, "the call's sleep and the timer");
    clock.advance(100 * MS - NS);
    assert!(assert_ready!(call.poll()).is_ok());
    drop(call);
    assert_eq!(clock.sleepers(), 0);
}

#[test]
fn a_request_may_ask_for_less_time_never_more() {
    let clock = ManualClock::new();
    let layer = TimeoutLayer::builder(Duration::from_secs(1))
        .per_request(|asked: &Duration| Some(*asked))
        .clock(clock.clone())
        .build()
        .unwrap();
    let pending = service_fn(|_: Duration| std::future::pending::<Result<(), BoxError>>());
    let mut service = layer.layer(pending);
    // Less time: the request's own deadline. More: the layer's timeout.
    for (asked, fires, requests) in [
        (100 * MS, 100 * MS, true),
        (Duration::from_secs(5), Duration::from_secs(1), false),
    ] {
        let start = clock.now();
        let mut call = task::spawn(service.call(asked));
        assert_pending!(call.poll());
        clock.advance(fires - NS);
        assert_pending!(call.poll());
        clock.advance(NS);
        let err = assert_ready!(call.poll()).unwrap_err();
        assert_eq!(err.is::<DeadlineExceeded>(), requests);
        assert_eq!(err.is::<Elapsed>(), !requests);
        assert_eq!(clock.now() - start, fires);
    }
}

#[test]
fn the_timeout_runs_from_the_first_poll() {
    let clock = ManualClock::new();
    let layer = TimeoutLayer::builder(100 * MS)
        .clock(clock.clone())
        .build()
        .unwrap();
    let pending = service_fn(|_: ()| std::future::pending::<Result<(), BoxError>>());
    let mut service = layer.layer(pending);
    let mut call = task::spawn(service.call(()));
    clock.advance(Duration::from_secs(10)); // before the first poll
    assert_pending!(call.poll());
    clock.advance(100 * MS);
    assert!(assert_ready!(call.poll()).is_err());
}

#[test]
fn a_timeout_names_itself_in_its_error_as_given_or_as_timeout() {
    for (given, named) in [(None, "timeout"), (Some("upstream"), "upstream")] {
        let clock = ManualClock::new();
        let builder = TimeoutLayer::builder(MS).clock(clock.clone());
        let layer = match given {
            Some(name) => builder.name(name),
            None => builder,
        };
        let pending = service_fn(|_: ()| std::future::pending::<Result<(), BoxError>>());
        let mut service = layer.build().unwrap().layer(pending);
        let mut call = task::spawn(service.call(()));
        assert_pending!(call.poll());
        clock.advance(MS);
        let err = assert_ready!(call.poll()).unwrap_err();
        let elapsed = err.downcast_ref::<Elapsed>().expect("an Elapsed error");
        assert_eq!(elapsed.name(), named);
    }
}

#[test]
fn a_zero_timeout_is_refused() {
    let err = TimeoutLayer::builder(Duration::ZERO).build().unwrap_err();
    assert_eq!((err.layer(), err.field()), ("timeout", "timeout"));
}

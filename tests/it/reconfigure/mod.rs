//! Settings changed on running layers (`cargo test --all-features
//! reconfigure`): what each change keeps, on a `ManualClock`.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use palisade::{
    bulkhead::BulkheadLayer,
    clock::{Clock, ManualClock},
    error::{BulkheadFull, Elapsed},
    observe::{Event, EventKind},
    timeout::TimeoutLayer,
};
use tokio_test::task;
use tower::{Layer, Service, service_fn};

const MS: Duration = Duration::from_millis(1);

/// The `Reconfigured` events a listener saw: setting, old, new.
type Changes = Arc<Mutex<Vec<(&'static str, f64, f64)>>>;

fn record(changes: &Changes) -> impl Fn(&Event<'_>) + Send + Sync + 'static {
    let changes = Arc::clone(changes);
    move |event| {
        if let EventKind::Reconfigured { setting, old, new } = event.kind {
            changes.lock().unwrap().push((setting, old, new));
        }
    }
}

/// A service whose calls sleep on `clock` for the milliseconds they ask.
fn sleeper(
    clock: &ManualClock,
) -> impl Service<u64, Response = u64, Error = std::io::Error, Future: Send> + Clone {
    let clock = clock.clone();
    service_fn(move |ms: u64| {
        let sleep = clock.sleep(MS * ms as u32);
        async move {
            sleep.await;
            Ok(ms)
        }
    })
}

#[test]
fn a_timeout_changed_live_applies_to_new_calls_and_spares_running_ones() {
    let clock = ManualClock::new();
    let changes = Changes::default();
    let layer = TimeoutLayer::builder(Duration::from_secs(1))
        .clock(clock.clone())
        .on_event(record(&changes))
        .build()
        .unwrap();
    let mut service = layer.layer(sleeper(&clock));
    let mut before = task::spawn(service.call(5_000));
    assert!(before.poll().is_pending());

    layer.set_timeout(100 * MS).unwrap();
    let mut after = task::spawn(layer.layer(sleeper(&clock)).call(5_000));
    let mut same_service = task::spawn(service.call(5_000));
    assert!(after.poll().is_pending() && same_service.poll().is_pending());

    clock.advance(100 * MS);
    // The calls made after the change time out at 100 ms, through a new
    // service and through the one made before the change alike.
    for call in [&mut after, &mut same_service] {
        let std::task::Poll::Ready(Err(err)) = call.poll() else {
            panic!("timed out at the new timeout");
        };
        assert!(err.is::<Elapsed>());
    }
    // The call already running keeps its second.
    assert!(before.poll().is_pending());
    clock.advance(900 * MS);
    assert!(matches!(before.poll(), std::task::Poll::Ready(Err(_))));

    assert_eq!(*changes.lock().unwrap(), [("timeout", 1.0, 0.1)]);
    // A bad value is refused by name, and changes nothing.
    assert_eq!(
        layer.set_timeout(Duration::ZERO).unwrap_err().field(),
        "timeout"
    );
    assert_eq!(layer.timeout(), 100 * MS);
    assert_eq!(changes.lock().unwrap().len(), 1);
}

/// Calls `service`: admitted (the call runs) or refused as full.
fn try_one<S>(service: &mut S) -> bool
where
    S: Service<u64, Error = tower::BoxError>,
{
    let mut call = task::spawn(service.call(1_000));
    match call.poll() {
        std::task::Poll::Ready(Err(err)) => {
            assert!(err.is::<BulkheadFull>());
            false
        }
        std::task::Poll::Pending => true,
        std::task::Poll::Ready(Ok(_)) => unreachable!("the call sleeps"),
    }
}

#[test]
fn a_bulkhead_lowered_below_its_calls_lets_them_finish_and_admits_none_until_below() {
    let clock = ManualClock::new();
    let changes = Changes::default();
    let layer = BulkheadLayer::builder(4)
        .clock(clock.clone())
        .on_event(record(&changes))
        .build()
        .unwrap();
    let mut service = layer.layer(sleeper(&clock));
    // Four calls in flight, ending at 10, 20, 30 and 40 ms.
    let mut running: Vec<_> = (1..=4).map(|i| task::spawn(service.call(10 * i))).collect();
    for call in &mut running {
        assert!(call.poll().is_pending());
    }
    layer.set_max_concurrent(2).unwrap();
    assert_eq!(layer.in_flight(), 4, "the calls in flight go on");

    assert!(!try_one(&mut service), "4 in flight, bound 2");
    for (finished, in_flight) in [(1, 3), (2, 2)] {
        clock.advance(10 * MS);
        assert!(running[finished - 1].poll().is_ready());
        assert_eq!(layer.in_flight(), in_flight);
        assert!(!try_one(&mut service), "{in_flight} in flight, bound 2");
    }
    clock.advance(10 * MS);
    assert!(running[2].poll().is_ready());
    assert!(
        try_one(&mut service),
        "1 in flight: room under the new bound"
    );
    assert_eq!(*changes.lock().unwrap(), [("max_concurrent", 4.0, 2.0)]);
}

#[test]
fn a_bulkhead_raised_hands_its_new_permits_to_the_waiting_calls_in_order() {
    let clock = ManualClock::new();
    let layer = BulkheadLayer::builder(1)
        .queue(3, Duration::from_secs(1))
        .clock(clock.clone())
        .build()
        .unwrap();
    let started = Arc::new(Mutex::new(Vec::new()));
    let mut service = layer.layer(service_fn({
        let started = Arc::clone(&started);
        move |id: u32| {
            started.lock().unwrap().push(id);
            std::future::pending::<Result<u32, std::io::Error>>()
        }
    }));
    let mut calls: Vec<_> = (0..4).map(|id| task::spawn(service.call(id))).collect();
    for call in &mut calls {
        assert!(call.poll().is_pending());
    }
    assert_eq!((layer.in_flight(), layer.waiting()), (1, 3));
    layer.set_max_concurrent(3).unwrap();
    // Woken: the first two waiters, in arrival order; the third still waits.
    assert!(calls[1].is_woken() && calls[2].is_woken() && !calls[3].is_woken());
    for call in &mut calls {
        assert!(call.poll().is_pending());
    }
    assert_eq!(*started.lock().unwrap(), [0, 1, 2]);
    assert_eq!((layer.in_flight(), layer.waiting()), (3, 1));
}

#[test]
fn a_bulkhead_s_queue_can_be_given_changed_and_taken_away_live() {
    let clock = ManualClock::new();
    let changes = Changes::default();
    let layer = BulkheadLayer::builder(1)
        .clock(clock.clone())
        .on_event(record(&changes))
        .build()
        .unwrap();
    let mut service = layer.layer(sleeper(&clock));
    let mut holder = task::spawn(service.call(1_000));
    assert!(holder.poll().is_pending());
    assert!(matches!(
        task::spawn(service.call(1)).poll(),
        std::task::Poll::Ready(Err(_))
    ));

    layer.set_queue(1, 50 * MS).unwrap();
    let mut waiter = task::spawn(service.call(1));
    assert!(waiter.poll().is_pending());
    assert_eq!(layer.waiting(), 1);
    // Taken away: the waiter keeps its place; a newcomer is refused.
    layer.remove_queue();
    assert!(matches!(
        task::spawn(service.call(1)).poll(),
        std::task::Poll::Ready(Err(_))
    ));
    assert_eq!(layer.waiting(), 1);
    clock.advance(50 * MS);
    let std::task::Poll::Ready(Err(err)) = waiter.poll() else {
        panic!("the waiter's own deadline still holds");
    };
    assert!(err.is::<BulkheadFull>());

    assert_eq!(
        layer.set_queue(2, Duration::ZERO).unwrap_err().field(),
        "queue.max_wait"
    );
    assert_eq!(layer.queue(), None);
    assert_eq!(
        *changes.lock().unwrap(),
        [
            ("queue.max_waiting", 0.0, 1.0),
            ("queue.max_wait", 0.0, 0.05),
            ("queue.max_waiting", 1.0, 0.0),
            ("queue.max_wait", 0.05, 0.0),
        ]
    );
    drop(holder);
    assert_eq!(clock.now().since_epoch(), 50 * MS);
}

#[test]
fn a_retry_changed_live_obeys_the_new_attempts_and_backoff_at_its_next_decision() {
    use palisade::retry::{Backoff, RetryLayer};

    let clock = ManualClock::new();
    let changes = Changes::default();
    let calls = Arc::new(Mutex::new(Vec::new()));
    let layer = RetryLayer::builder()
        .max_attempts(5)
        .backoff(Backoff::constant(100 * MS))
        .clock(clock.clone())
        .on_event(record(&changes))
        .build()
        .unwrap();
    let mut service = layer.layer(service_fn({
        let (calls, clock) = (Arc::clone(&calls), clock.clone());
        move |_: ()| {
            calls.lock().unwrap().push(clock.now().since_epoch());
            std::future::ready(Err::<(), _>(std::io::Error::other("down")))
        }
    }));
    let mut call = task::spawn(service.call(()));
    assert!(
        call.poll().is_pending(),
        "first attempt failed: a 100 ms wait"
    );
    // Mid-call: waits of 10 ms from the next one on (at most 20 s), and 3
    // attempts in all.
    layer
        .set_backoff(Backoff::constant(10 * MS).max_delay(Duration::from_secs(20)))
        .unwrap();
    layer.set_max_attempts(3).unwrap();
    clock.advance(100 * MS); // the wait already set ends as it was set
    assert!(call.poll().is_pending());
    clock.advance(10 * MS);
    assert!(matches!(call.poll(), std::task::Poll::Ready(Err(_))));
    assert_eq!(*calls.lock().unwrap(), [Duration::ZERO, 100 * MS, 110 * MS]);

    // A deadline set now applies to calls made from now on.
    layer.set_deadline(Some(50 * MS)).unwrap();
    layer.set_max_attempts(10).unwrap();
    calls.lock().unwrap().clear();
    let mut call = task::spawn(service.call(()));
    for _ in 0..4 {
        assert!(call.poll().is_pending());
        clock.advance(10 * MS);
    }
    // Attempts at 0, 10, 20, 30, 40 ms; the next wait would end at 50 ms,
    // not past the deadline, so a sixth at 50 ms; then out of time.
    assert!(call.poll().is_pending());
    clock.advance(10 * MS);
    assert!(matches!(call.poll(), std::task::Poll::Ready(Err(_))));
    assert_eq!(calls.lock().unwrap().len(), 6);

    assert_eq!(
        layer.set_max_attempts(0).unwrap_err().field(),
        "max_attempts"
    );
    assert_eq!(layer.max_attempts(), 10);
    assert_eq!(
        *changes.lock().unwrap(),
        [
            ("backoff.base", 0.1, 0.01),
            ("backoff.max_delay", 30.0, 20.0),
            ("max_attempts", 5.0, 3.0),
            ("deadline", 0.0, 0.05),
            ("max_attempts", 3.0, 10.0),
        ]
    );
}

mod circuit_breaker;
mod rate_limit;
mod retry;
#[cfg(feature = "serde")]
mod serde;

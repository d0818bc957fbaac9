//! Loom models of the crate's concurrent cores. Run with
//! `RUSTFLAGS="--cfg loom" cargo test --release --test loom`.

#![cfg(loom)]

use std::{
    future::Future,
    task::{Context, Waker},
    time::Duration,
};

use loom::{future::block_on, thread};
use palisade::{
    circuit_breaker::{CircuitBreakerLayer, CircuitState, HalfOpen},
    clock::{Clock, ManualClock},
    observe::EventKind,
    random::{FastRandom, Random},
};
use tower::{Layer, Service, service_fn};

/// A sleep that registers while another thread advances the clock past its
/// deadline is always woken: it either sees the new time or is seen by the
/// advance. (If not, `block_on` would never return and loom would report a
/// deadlock.)
#[test]
fn manual_sleep_registration_never_misses_an_advance() {
    loom::model(|| {
        let clock = ManualClock::new();
        let advancer = {
            let clock = clock.clone();
            thread::spawn(move || clock.advance(Duration::from_secs(1)))
        };
        block_on(clock.sleep(Duration::from_secs(1)));
        advancer.join().unwrap();
        assert_eq!(clock.sleepers(), 0);
    });
}

/// Two advances racing each other: time ends at their sum, and a sleeper due
/// only after both is woken.
#[test]
fn concurrent_advances_add_up_and_wake_the_sleeper() {
    loom::model(|| {
        let clock = ManualClock::new();
        let advancers: Vec<_> = (0..2)
            .map(|_| {
                let clock = clock.clone();
                thread::spawn(move || clock.advance(Duration::from_secs(1)))
            })
            .collect();
        block_on(clock.sleep(Duration::from_secs(2)));
        for advancer in advancers {
            advancer.join().unwrap();
        }
        assert_eq!(clock.now().since_epoch(), Duration::from_secs(2));
        assert_eq!(clock.sleepers(), 0);
    });
}

/// A sleep dropped while the clock advances leaves no registration behind.
#[test]
fn a_dropped_sleep_never_stays_registered() {
    loom::model(|| {
        let clock = ManualClock::new();
        let sleeper = {
            let clock = clock.clone();
            thread::spawn(move || {
                let mut sleep = Box::pin(clock.sleep(Duration::from_secs(5)));
                let _ = sleep.as_mut().poll(&mut Context::from_waker(Waker::noop()));
                drop(sleep);
            })
        };
        clock.advance(Duration::from_secs(5));
        sleeper.join().unwrap();
        assert_eq!(clock.sleepers(), 0);
    });
}

/// Draws racing on one shared source never repeat a state.
#[test]
fn fast_random_draws_are_distinct_under_races() {
    loom::model(|| {
        let rng = FastRandom::seeded(1);
        let other = {
            let rng = rng.clone();
            thread::spawn(move || rng.next_u64())
        };
        let mine = rng.next_u64();
        assert_ne!(mine, other.join().unwrap());
    });
}

/// A breaker on a manual clock whose transitions are counted; the wrapped
/// service fails when asked and counts the calls that reach it.
fn breaker(
    configure: impl FnOnce(
        palisade::circuit_breaker::CircuitBreakerBuilder<
            palisade::classify::ErrorsAsFailures,
            ManualClock,
            FastRandom,
        >,
    ) -> palisade::circuit_breaker::CircuitBreakerBuilder<
        palisade::classify::ErrorsAsFailures,
        ManualClock,
        FastRandom,
    >,
) -> (
    ManualClock,
    CircuitBreakerLayer<palisade::classify::ErrorsAsFailures, ManualClock, FastRandom>,
    std::sync::Arc<std::sync::atomic::AtomicUsize>,
) {
    let clock = ManualClock::new();
    let transitions = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = std::sync::Arc::clone(&transitions);
    let builder = CircuitBreakerLayer::builder()
        .clock(clock.clone())
        .random(FastRandom::seeded(1))
        .on_event(move |event| {
            if let EventKind::Transition { .. } = event.kind {
                counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
        });
    (clock, configure(builder).build().unwrap(), transitions)
}

fn failing_or_not(fail: bool) -> impl std::future::Future<Output = Result<(), &'static str>> {
    std::future::ready(if fail { Err("down") } else { Ok(()) })
}

/// Two threads each record the failure that reaches the threshold: the
/// breaker opens exactly once, with exactly one event.
#[test]
fn racing_failures_open_the_breaker_exactly_once() {
    loom::model(|| {
        let (_clock, layer, transitions) = breaker(|b| b.consecutive_failures(2));
        let handle = layer.handle();
        let threads: Vec<_> = (0..2)
            .map(|_| {
                let mut service = layer.layer(service_fn(failing_or_not));
                thread::spawn(move || {
                    let _ = block_on(service.call(true));
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        assert_eq!(handle.state(), CircuitState::Open);
        assert_eq!(transitions.load(std::sync::atomic::Ordering::SeqCst), 1);
    });
}

/// The count window under racing writers: two failures in a window of two
/// always open it (no count is lost), once.
#[test]
fn racing_writers_of_the_count_window_lose_no_count() {
    loom::model(|| {
        let (_clock, layer, transitions) =
            breaker(|b| b.count_window(2).minimum_calls(2).failure_rate(1.0));
        let handle = layer.handle();
        let threads: Vec<_> = (0..2)
            .map(|_| {
                let mut service = layer.layer(service_fn(failing_or_not));
                thread::spawn(move || {
                    let _ = block_on(service.call(true));
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        assert_eq!(handle.state(), CircuitState::Open);
        assert_eq!(transitions.load(std::sync::atomic::Ordering::SeqCst), 1);
    });
}

/// A call racing a change of a forced-open breaker to disabled or to closed
/// is refused, or admitted by the state it finds under the lock — even when
/// it read "forced open" before the change: a call that goes through is
/// counted unless the breaker was disabled.
#[test]
fn a_call_racing_a_forced_change_is_counted_by_the_state_it_is_admitted_in() {
    for disable in [true, false] {
        loom::model(move || {
            let (_clock, layer, _) = breaker(|b| b.count_window(4).minimum_calls(4));
            let handle = layer.handle();
            handle.force_open();
            let mut service = layer.layer(service_fn(failing_or_not));
            let caller = thread::spawn(move || block_on(service.call(false)).is_ok());
            if disable {
                handle.disable();
            } else {
                handle.close();
            }
            let through = caller.join().unwrap();
            assert_eq!(handle.metrics().calls, u64::from(through && !disable));
        });
    }
}

/// Two threads race for the single half-open probe slot: one gets it.
#[test]
fn racing_callers_never_get_more_probes_than_allowed() {
    loom::model(|| {
        let (clock, layer, _transitions) = breaker(|b| {
            b.consecutive_failures(1)
                .half_open(HalfOpen::new().max_probes(1).probes(2))
        });
        let reached = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let mut opener = layer.layer(service_fn(failing_or_not));
        let _ = block_on(opener.call(true));
        clock.advance(Duration::from_secs(30));
        let threads: Vec<_> = (0..2)
            .map(|_| {
                let reached = std::sync::Arc::clone(&reached);
                let mut service = layer.layer(service_fn(move |()| {
                    reached.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    std::future::pending::<Result<(), &'static str>>()
                }));
                // The futures come back unfinished: the probe stays in flight.
                thread::spawn(move || service.call(()))
            })
            .collect();
        let in_flight: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        assert_eq!(reached.load(std::sync::atomic::Ordering::SeqCst), 1);
        assert_eq!(layer.handle().metrics().probes_in_flight, 1);
        drop(in_flight);
        assert_eq!(layer.handle().metrics().probes_in_flight, 0);
    });
}

/// With time frozen, threads racing on one shared token bucket admit exactly
/// its capacity in total: the compare-and-swap loses no token and makes none
/// up.
#[test]
fn racing_callers_admit_exactly_the_bucket_capacity() {
    use palisade::rate_limit::{Rate, RateLimitLayer};

    let mut model = loom::model::Builder::new();
    // Five calls on three threads: every interleaving with up to three
    // preemptions (unbounded, the model runs for hours).
    model.preemption_bound = Some(3);
    model.check(|| {
        let layer = RateLimitLayer::builder()
            .token_bucket(Rate::per_second(1), 3)
            .clock(ManualClock::new())
            .build()
            .unwrap();
        let service = layer.layer(service_fn(|()| async { Ok::<_, &'static str>(()) }));
        let callers: Vec<_> = (0..2)
            .map(|_| {
                let mut service = service.clone();
                thread::spawn(move || {
                    (0..2)
                        .filter(|_| block_on(service.call(())).is_ok())
                        .count()
                })
            })
            .collect();
        let mut service = service;
        let mine = usize::from(block_on(service.call(())).is_ok());
        let admitted: usize = mine
            + callers
                .into_iter()
                .map(|c| c.join().unwrap())
                .sum::<usize>();
        assert_eq!(admitted, 3);
    });
}

/// Calls through `service` and polls the call once, keeping it: whether it
/// is pending (admitted and running; for a leaky bucket, waiting for its
/// slot), and the call.
fn hold<S: Service<()>>(mut service: S) -> (bool, std::pin::Pin<Box<S::Future>>) {
    let mut call = Box::pin(service.call(()));
    let admitted = call
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
        .is_pending();
    (admitted, call)
}

/// Callers racing for a bulkhead's permits while all their calls are in
/// flight: exactly `max` get one, the rest are refused, and every permit comes
/// back when the calls are dropped.
#[test]
fn racing_callers_take_exactly_the_bulkhead_permits() {
    use palisade::bulkhead::BulkheadLayer;

    loom::model(|| {
        let layer = BulkheadLayer::builder(2)
            .clock(ManualClock::new())
            .build()
            .unwrap();
        let service = layer.layer(service_fn(|()| {
            std::future::pending::<Result<(), &'static str>>()
        }));
        let call = hold;
        let callers: Vec<_> = (0..2)
            .map(|_| {
                let service = service.clone();
                thread::spawn(move || call(service))
            })
            .collect();
        let mut calls = vec![call(service)];
        calls.extend(callers.into_iter().map(|caller| caller.join().unwrap()));
        assert_eq!(calls.iter().filter(|(admitted, _)| *admitted).count(), 2);
        assert_eq!(layer.in_flight(), 2);
        drop(calls);
        assert_eq!(layer.in_flight(), 0);
    });
}

/// A permit given back while another call queues for one: the call gets it —
/// the releaser and the queuer cannot both miss each other.
#[test]
fn a_release_racing_a_queuing_call_hands_over_the_permit() {
    loom::model(|| {
        let (layer, mut service, holder) = one_permit_held();
        let mut cx = Context::from_waker(Waker::noop());
        let releaser = thread::spawn(move || drop(holder));
        let mut queued = Box::pin(service.call(()));
        releaser.join().unwrap();
        assert!(queued.as_mut().poll(&mut cx).is_pending());
        assert_eq!(
            (layer.in_flight(), layer.waiting()),
            (1, 0),
            "the call holds the permit"
        );
    });
}

type Held<F> = std::pin::Pin<Box<F>>;

/// A bulkhead of one permit and a queue of one, whose calls never end, the
/// permit held by one call: the layer, its service, and the call.
fn one_permit_held() -> (
    palisade::bulkhead::BulkheadLayer<ManualClock>,
    impl Service<(), Future: Send + 'static> + Clone + Send + 'static,
    Held<impl Future + Send + 'static>,
) {
    let layer = palisade::bulkhead::BulkheadLayer::builder(1)
        .queue(1, Duration::from_secs(1))
        .clock(ManualClock::new())
        .build()
        .unwrap();
    let mut service = layer.layer(service_fn(|()| {
        std::future::pending::<Result<(), &'static str>>()
    }));
    let mut holder = Box::pin(service.call(()));
    assert!(
        holder
            .as_mut()
            .poll(&mut Context::from_waker(Waker::noop()))
            .is_pending()
    );
    (layer, service, holder)
}

/// [`one_permit_held`], and the queue held by another call: the layer, its
/// service, and the two calls.
#[allow(clippy::type_complexity)]
fn one_permit_held_one_waiting() -> (
    palisade::bulkhead::BulkheadLayer<ManualClock>,
    impl Service<(), Future: Send + 'static> + Clone + Send + 'static,
    Held<impl Future + Send + 'static>,
    Held<impl Future + Send + 'static>,
) {
    let (layer, mut service, holder) = one_permit_held();
    let mut cx = Context::from_waker(Waker::noop());
    let mut waiter = Box::pin(service.call(()));
    assert!(waiter.as_mut().poll(&mut cx).is_pending());
    assert_eq!((layer.in_flight(), layer.waiting()), (1, 1));
    (layer, service, holder, waiter)
}

/// A permit given back while a waiter queues and a fresh call arrives: the
/// fresh call may take the permit first (it came free before the hand-over),
/// and then the hand-over finds none free and the waiter keeps waiting —
/// never two calls in flight; once the fresh call ends, the waiter gets the
/// permit.
#[test]
fn a_fresh_call_taking_the_permit_before_the_hand_over_leaves_the_waiter_waiting() {
    loom::model(|| {
        let (layer, service, holder, mut waiter) = one_permit_held_one_waiting();
        let mut cx = Context::from_waker(Waker::noop());
        let releaser = thread::spawn(move || drop(holder));
        let fresh = {
            let service = service.clone();
            thread::spawn(move || hold(service))
        };
        releaser.join().unwrap();
        let (fresh_admitted, fresh) = fresh.join().unwrap();
        assert!(waiter.as_mut().poll(&mut cx).is_pending());
        assert_eq!(layer.in_flight(), 1, "one call holds the one permit");
        if fresh_admitted {
            assert_eq!(layer.waiting(), 1, "the waiter still waits");
            drop(fresh);
            assert!(waiter.as_mut().poll(&mut cx).is_pending());
            assert_eq!(
                (layer.in_flight(), layer.waiting()),
                (1, 0),
                "handed over now"
            );
        } else {
            // Refused (the queue was full) or, later, handed nothing: the
            // waiter got the permit.
            assert_eq!(layer.waiting(), 0);
        }
        drop(waiter);
        assert_eq!((layer.in_flight(), layer.waiting()), (0, 0));
    });
}

/// The last waiter gives up while the permit is given back: whichever
/// comes first, the permit is neither lost nor handed to the gone waiter.
#[test]
fn the_last_waiter_leaving_as_the_permit_comes_back_loses_no_permit() {
    loom::model(|| {
        let (layer, service, holder, waiter) = one_permit_held_one_waiting();
        let releaser = thread::spawn(move || drop(holder));
        let leaver = thread::spawn(move || drop(waiter));
        releaser.join().unwrap();
        leaver.join().unwrap();
        assert_eq!((layer.in_flight(), layer.waiting()), (0, 0));
        // The permit is there for the next call.
        let (admitted, next) = hold(service);
        assert!(admitted);
        drop(next);
    });
}

/// The bound raised by hand while a call queues for a permit: the call gets
/// the new permit — the raise and the queuer cannot miss each other.
#[test]
fn a_raised_bound_racing_a_queuing_call_hands_it_a_permit() {
    use palisade::bulkhead::BulkheadLayer;

    loom::model(|| {
        let layer = BulkheadLayer::builder(1)
            .queue(1, Duration::from_secs(1))
            .clock(ManualClock::new())
            .build()
            .unwrap();
        let mut service = layer.layer(service_fn(|()| {
            std::future::pending::<Result<(), &'static str>>()
        }));
        let mut cx = Context::from_waker(Waker::noop());
        let mut holder = Box::pin(service.call(()));
        assert!(holder.as_mut().poll(&mut cx).is_pending());
        let raiser = {
            let layer = layer.clone();
            thread::spawn(move || layer.set_max_concurrent(2).unwrap())
        };
        let mut queued = Box::pin(service.call(()));
        raiser.join().unwrap();
        assert!(queued.as_mut().poll(&mut cx).is_pending());
        assert_eq!(
            (layer.in_flight(), layer.waiting()),
            (2, 0),
            "both calls hold a permit"
        );
        drop(holder);
    });
}

/// The bound lowered by hand while callers race for permits: never more
/// calls in flight than the bound a caller read allowed, and once the change
/// is done, no new call above the new bound.
#[test]
fn a_lowered_bound_racing_callers_admits_none_above_it() {
    use palisade::bulkhead::BulkheadLayer;

    loom::model(|| {
        let layer = BulkheadLayer::builder(2)
            .clock(ManualClock::new())
            .build()
            .unwrap();
        let service = layer.layer(service_fn(|()| {
            std::future::pending::<Result<(), &'static str>>()
        }));
        let call = hold;
        let lowerer = {
            let layer = layer.clone();
            thread::spawn(move || layer.set_max_concurrent(1).unwrap())
        };
        let caller = {
            let service = service.clone();
            thread::spawn(move || call(service))
        };
        let first = call(service.clone());
        let second = caller.join().unwrap();
        lowerer.join().unwrap();
        // Both may have been admitted under the old bound of 2; never more.
        assert!(layer.in_flight() <= 2);
        // After the change: admitted only when no call is in flight.
        let third = call(service);
        assert_eq!(third.0, !first.0 && !second.0);
        drop((first, second, third));
        assert_eq!(layer.in_flight(), 0);
    });
}

/// A limit lowered while two callers race for a shared bucket, on a frozen
/// clock: each admission is decided by the old numbers (and its token stays
/// owed in the new bucket) or by the new ones, never by a mix — so the debt
/// the bucket keeps is exactly what was admitted, as a refill shows.
#[test]
fn a_limit_changed_racing_callers_keeps_exactly_their_debt() {
    use palisade::rate_limit::{Limit, Rate, RateLimitLayer};

    let mut model = loom::model::Builder::new();
    // Three threads through a whole layer: every interleaving with up to
    // three preemptions (loom's advice for models of this size), every value
    // each load may read.
    model.preemption_bound = Some(3);
    model.check(|| {
        let clock = ManualClock::new();
        let layer = RateLimitLayer::builder()
            .token_bucket(Rate::per_second(2), 2)
            .clock(clock.clone())
            .build()
            .unwrap();
        let service = layer.layer(service_fn(|()| async { Ok::<_, &'static str>(()) }));
        let callers: Vec<_> = (0..2)
            .map(|_| {
                let mut service = service.clone();
                thread::spawn(move || usize::from(block_on(service.call(())).is_ok()))
            })
            .collect();
        layer
            .set_limit(Limit::TokenBucket {
                rate: Rate::per_second(1),
                burst: 1,
            })
            .unwrap();
        let admitted: usize = callers.into_iter().map(|c| c.join().unwrap()).sum();
        // Both before the change (2 owed), or one (the other refused by a
        // bucket of 1 that owes it): never none, never a fresh burst.
        assert!((1..=2).contains(&admitted), "{admitted}");
        assert_eq!(layer.available(), 0);
        // One token a second now: what is owed decides the refill.
        clock.advance(Duration::from_secs(1));
        assert_eq!(layer.available(), 2 - admitted as u64);
    });
}

/// The capacity read while the limit changes is the old limit's or the new
/// one's: never what the word closed for the change, or a mix, would say.
#[test]
fn a_read_racing_a_change_sees_the_old_limit_or_the_new() {
    use palisade::rate_limit::{Limit, Rate, RateLimitLayer};

    loom::model(|| {
        let layer = RateLimitLayer::builder()
            .token_bucket(Rate::per_second(2), 2)
            .clock(ManualClock::new())
            .build()
            .unwrap();
        let reader = {
            let layer = layer.clone();
            thread::spawn(move || layer.available())
        };
        layer
            .set_limit(Limit::TokenBucket {
                rate: Rate::per_second(1),
                burst: 1,
            })
            .unwrap();
        let available = reader.join().unwrap();
        assert!([2, 1].contains(&available), "{available}");
    });
}

/// A reset racing a call that records its failure: whichever comes first,
/// the window's counts stay equal to what its slots hold — two healthy
/// calls afterwards fill a window of two with exactly two healthy calls.
#[test]
fn a_reset_racing_a_recorded_call_leaves_the_counts_equal_to_the_window() {
    loom::model(|| {
        let (clock, layer, _) = breaker(|b| b.count_window(2).minimum_calls(2).failure_rate(1.0));
        let handle = layer.handle();
        // Each call takes `millis` on the clock: its duration is kept too.
        let taking = |millis: u64| {
            let clock = clock.clone();
            service_fn(move |fail: bool| {
                clock.advance(Duration::from_millis(millis));
                failing_or_not(fail)
            })
        };
        let mut failing = layer.layer(taking(5));
        let recorder = thread::spawn(move || {
            let _ = block_on(failing.call(true));
        });
        handle.reset();
        recorder.join().unwrap();
        let mut service = layer.layer(taking(1));
        for _ in 0..2 {
            block_on(service.call(false)).unwrap();
        }
        let metrics = handle.metrics();
        assert_eq!((metrics.calls, metrics.failures), (2, 0));
        let durations = metrics.durations.expect("an observed breaker");
        assert_eq!(
            (durations.total, durations.max),
            (Duration::from_millis(2), Duration::from_millis(1))
        );
    });
}

/// A shared leaky bucket of one a second and a queue of 3, on a frozen
/// clock, with a call that does nothing.
fn leaky_bucket() -> (
    palisade::rate_limit::RateLimitLayer<
        palisade::rate_limit::NoKey,
        palisade::rate_limit::UnitCost,
        ManualClock,
    >,
    impl Service<(), Response = (), Error = tower::BoxError, Future: Send + 'static>
    + Clone
    + Send
    + 'static,
) {
    use palisade::rate_limit::{Rate, RateLimitLayer};

    let layer = RateLimitLayer::builder()
        .leaky_bucket(Rate::per_second(1), 3)
        .clock(ManualClock::new())
        .build()
        .unwrap();
    let service = layer.layer(service_fn(|()| async { Ok::<_, &'static str>(()) }));
    (layer, service)
}

/// Two requests racing into an idle leaky bucket — one through the
/// lock-free path, or both under the lock: exactly one goes at once, the
/// other waits for the next slot; the one that leaves gives it back.
#[test]
fn racing_requests_into_an_idle_leaky_bucket_take_one_slot_each() {
    use palisade::rate_limit::Check;

    loom::model(|| {
        let (layer, service) = leaky_bucket();
        let other = {
            let service = service.clone();
            thread::spawn(move || hold(service))
        };
        let (waits, call) = hold(service);
        let (other_waits, other_call) = other.join().unwrap();
        assert!(waits != other_waits, "one at once, the other waits");
        assert_eq!(layer.check(1), Check::After(Duration::from_secs(2)));
        drop(if waits { call } else { other_call });
        assert_eq!(layer.check(1), Check::After(Duration::from_secs(1)));
    });
}

/// A request racing a change of a leaky bucket's rate goes at once, and its
/// slot is the old rate's or the new one's, never lost.
#[test]
fn a_request_racing_a_leaky_bucket_s_new_rate_keeps_a_slot() {
    use palisade::rate_limit::{Check, Limit, Rate};

    loom::model(|| {
        let (layer, service) = leaky_bucket();
        let caller = thread::spawn(move || !hold(service).0);
        layer
            .set_limit(Limit::LeakyBucket {
                rate: Rate::per_second(2),
                queue: 3,
            })
            .unwrap();
        assert!(caller.join().unwrap(), "an idle bucket lets it go");
        let next = layer.check(1);
        assert!(
            [
                Check::After(Duration::from_secs(1)),
                Check::After(Duration::from_millis(500))
            ]
            .contains(&next),
            "{next:?}"
        );
    });
}

/// A request racing a change of a leaky bucket's rate and size is decided
/// wholly by the old numbers or wholly by the new: never the old size with
/// the new rate's slot, or the other way round.
#[test]
fn a_request_racing_a_leaky_bucket_s_new_numbers_reads_them_whole() {
    use palisade::rate_limit::{Check, Limit, Rate, RateLimitLayer};

    let mut model = loom::model::Builder::new();
    model.preemption_bound = Some(3);
    model.check(|| {
        let layer = RateLimitLayer::builder()
            .leaky_bucket(Rate::per_second(1), 3)
            .cost(|cost: &u32| *cost)
            .clock(ManualClock::new())
            .build()
            .unwrap();
        let mut service = layer.layer(service_fn(|_: u32| async { Ok::<_, &'static str>(()) }));
        let caller = thread::spawn(move || block_on(service.call(2)).is_ok());
        layer
            .set_limit(Limit::LeakyBucket {
                rate: Rate::per_second(2),
                queue: 1,
            })
            .unwrap();
        let admitted = caller.join().unwrap();
        let next = layer.check(1);
        if admitted {
            // Before the change: two slots of a second, kept by it.
            assert_eq!(next, Check::After(Duration::from_secs(2)));
        } else {
            // After it: a cost of 2 never fits a bucket of 1.
            assert_eq!(next, Check::Admitted);
        }
    });
}

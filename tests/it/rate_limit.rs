//! The rate limiter, driven by a `ManualClock`: shared state, exact waits for
//! every algorithm, weights, the three modes, keys in bounded memory, events
//! and configuration errors.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use palisade::{
    clock::{Clock, ManualClock},
    error::{KeyMissing, RateLimited, RejectionKind, Unsatisfiable},
    observe::EventKind,
    rate_limit::{MissingKey, NoKey, Rate, RateLimitBuilder, RateLimitLayer, UnitCost},
};
use tokio_test::{assert_pending, assert_ready, assert_ready_ok, task};
use tower::{BoxError, Layer, Service, ServiceExt, service_fn};

const NS: Duration = Duration::from_nanos(1);
const MS: Duration = Duration::from_millis(1);
const SEC: Duration = Duration::from_secs(1);

/// A service that answers its request and counts the calls that reach it.
fn echo(
    reached: Arc<AtomicUsize>,
) -> impl Service<u32, Response = u32, Error = BoxError, Future = impl Future + Send> + Clone {
    service_fn(move |request: u32| {
        reached.fetch_add(1, Ordering::SeqCst);
        async move { Ok::<_, BoxError>(request) }
    })
}

/// `ready` then `call`, polled once: the limiter answers at once or the
/// request is waiting.
fn try_call<S>(service: &mut S, request: u32) -> Option<Result<u32, BoxError>>
where
    S: Service<u32, Response = u32, Error = BoxError>,
{
    let mut call = task::spawn(async {
        service.ready().await?;
        service.call(request).await
    });
    match call.poll() {
        std::task::Poll::Ready(result) => Some(result),
        std::task::Poll::Pending => None,
    }
}

fn admitted<S>(service: &mut S) -> bool
where
    S: Service<u32, Response = u32, Error = BoxError>,
{
    match try_call(service, 0).expect("reject mode answers at once") {
        Ok(_) => true,
        Err(err) if err.is::<RateLimited>() => false,
        Err(err) => panic!("unexpected error: {err}"),
    }
}

fn retry_after<S>(service: &mut S, request: u32) -> Duration
where
    S: Service<u32, Response = u32, Error = BoxError>,
{
    let err = try_call(service, request)
        .expect("reject mode answers at once")
        .expect_err("refused");
    err.downcast_ref::<RateLimited>()
        .expect("a RateLimited error")
        .retry_after()
        .expect("a wait")
}

/// A limiter's builder on a manual clock.
type OnManual = RateLimitBuilder<NoKey, UnitCost, ManualClock>;

fn on(clock: &ManualClock) -> OnManual {
    RateLimitLayer::builder().clock(clock.clone())
}

/// `ready`, then `call`: the response future, not yet polled.
fn call_now<S>(service: &mut S, request: u32) -> S::Future
where
    S: Service<u32, Response = u32, Error = BoxError>,
{
    assert_ready_ok!(task::spawn(service.ready()).poll());
    service.call(request)
}

#[test]
fn every_service_and_clone_from_one_layer_shares_the_limit() {
    let clock = ManualClock::new();
    let layer = on(&clock)
        .token_bucket(Rate::per_second(1), 3)
        .build()
        .unwrap();
    let reached = Arc::new(AtomicUsize::new(0));
    let mut a = layer.layer(echo(Arc::clone(&reached)));
    let mut b = layer.layer(echo(Arc::clone(&reached)));
    let mut c = a.clone();
    assert!(admitted(&mut a));
    assert!(admitted(&mut b));
    assert!(admitted(&mut c));
    assert!(!admitted(&mut a));
    assert!(!admitted(&mut b));
    assert!(!admitted(&mut c));
    assert_eq!(
        reached.load(Ordering::SeqCst),
        3,
        "refused requests never reach the service"
    );
}

/// Each algorithm's `retry_after` is exact: still refused 1 ns before it,
/// admitted at it.
fn assert_exact_waits(
    layer: RateLimitLayer<NoKey, UnitCost, ManualClock>,
    clock: &ManualClock,
    limit: usize,
) {
    let reached = Arc::new(AtomicUsize::new(0));
    let mut service = layer.layer(echo(Arc::clone(&reached)));
    for round in 0..5 {
        while admitted(&mut service) {}
        let wait = retry_after(&mut service, 0);
        assert!(wait > Duration::ZERO);
        clock.advance(wait - NS);
        assert_eq!(
            retry_after(&mut service, 0),
            NS,
            "round {round}: 1 ns before the wait"
        );
        clock.advance(NS);
        assert!(admitted(&mut service), "round {round}: at the wait");
    }
    assert!(reached.load(Ordering::SeqCst) >= limit);
}

#[test]
fn token_bucket_waits_are_exact() {
    let clock = ManualClock::new();
    clock.advance(Duration::from_millis(1234));
    let layer = on(&clock)
        .token_bucket(Rate::per_second(3), 5)
        .build()
        .unwrap();
    assert_exact_waits(layer, &clock, 5);
}

#[test]
fn sliding_window_waits_are_exact() {
    let clock = ManualClock::new();
    clock.advance(Duration::from_millis(777));
    let layer = on(&clock).sliding_window(4, 10 * SEC, 5).build().unwrap();
    assert_exact_waits(layer, &clock, 4);
}

#[test]
fn sliding_log_waits_are_exact() {
    let clock = ManualClock::new();
    clock.advance(Duration::from_millis(5));
    let layer = on(&clock).sliding_log(3, SEC).build().unwrap();
    assert_exact_waits(layer, &clock, 3);
}

#[test]
fn fixed_window_waits_are_exact() {
    let clock = ManualClock::new();
    clock.advance(Duration::from_millis(250));
    let layer = on(&clock).fixed_window(2, SEC).build().unwrap();
    assert_exact_waits(layer, &clock, 2);
}

#[test]
fn a_full_burst_after_idling_long_enough_to_refill() {
    let clock = ManualClock::new();
    let layer = on(&clock)
        .token_bucket(Rate::per_second(10), 20)
        .build()
        .unwrap();
    let service = layer.layer(echo(Arc::default()));
    let burst = || (0..30).filter(|_| admitted(&mut service.clone())).count();
    assert_eq!(burst(), 20);
    clock.advance(2 * SEC - NS);
    assert_eq!(burst(), 19, "one token short of full");
    clock.advance(2 * SEC);
    assert_eq!(burst(), 20);
}

#[test]
fn weighted_requests_take_their_cost_and_an_oversized_one_never_passes() {
    let clock = ManualClock::new();
    let layer = on(&clock)
        .name("uploads")
        .token_bucket(Rate::per_second(10), 10)
        .cost(|request: &u32| *request)
        .build()
        .unwrap();
    let mut service = layer.layer(echo(Arc::default()));
    assert_eq!(try_call(&mut service, 7).unwrap().unwrap(), 7);
    assert_eq!(retry_after(&mut service, 5), 200 * MS);
    assert_eq!(try_call(&mut service, 3).unwrap().unwrap(), 3);
    assert_eq!(
        try_call(&mut service, 0).unwrap().unwrap(),
        0,
        "free requests always pass"
    );

    let err = try_call(&mut service, 11).unwrap().unwrap_err();
    let unsatisfiable = err.downcast_ref::<Unsatisfiable>().expect("Unsatisfiable");
    assert_eq!(
        (
            unsatisfiable.name(),
            unsatisfiable.cost(),
            unsatisfiable.capacity()
        ),
        ("uploads", 11, 10)
    );
    clock.advance(Duration::from_secs(3600));
    assert!(
        try_call(&mut service, 11)
            .unwrap()
            .unwrap_err()
            .is::<Unsatisfiable>()
    );
}

#[test]
fn wait_mode_reserves_in_order_and_wakes_each_waiter_at_its_time() {
    let clock = ManualClock::new();
    let layer = on(&clock)
        .token_bucket(Rate::per_second(10), 1)
        .wait_up_to(250 * MS)
        .build()
        .unwrap();
    let reached = Arc::new(AtomicUsize::new(0));
    let mut service = layer.layer(echo(Arc::clone(&reached)));

    let mut first = task::spawn(call_now(&mut service, 1));
    assert_eq!(assert_ready_ok!(first.poll()), 1);
    let mut waiters: Vec<_> = (2..=3)
        .map(|n| task::spawn(call_now(&mut service, n)))
        .collect();
    for waiter in &mut waiters {
        assert_pending!(waiter.poll());
    }
    // A fourth would be due at 300 ms, past the 250 ms bound: refused at once.
    let err = try_call(&mut service, 4).unwrap().unwrap_err();
    assert_eq!(
        err.downcast_ref::<RateLimited>().unwrap().retry_after(),
        Some(300 * MS)
    );
    assert_eq!(
        reached.load(Ordering::SeqCst),
        1,
        "waiters have not called the service yet"
    );

    clock.advance(100 * MS - NS);
    assert!(!waiters[0].is_woken());
    clock.advance(NS);
    assert!(waiters[0].is_woken());
    assert!(!waiters[1].is_woken(), "waiters do not all wake at once");
    assert_eq!(assert_ready_ok!(waiters[0].poll()), 2);
    assert_pending!(waiters[1].poll());
    clock.advance(100 * MS);
    assert!(waiters[1].is_woken());
    assert_eq!(assert_ready_ok!(waiters[1].poll()), 3);
    assert_eq!(reached.load(Ordering::SeqCst), 3);
}

#[test]
fn wait_mode_works_for_windows_too() {
    let clock = ManualClock::new();
    let layer = on(&clock)
        .sliding_log(2, SEC)
        .wait_up_to(1500 * MS)
        .build()
        .unwrap();
    let mut service = layer.layer(echo(Arc::default()));
    let mut calls: Vec<_> = (0..5)
        .map(|n| task::spawn(call_now(&mut service, n)))
        .collect();
    assert_ready_ok!(calls[0].poll());
    assert_ready_ok!(calls[1].poll());
    assert_pending!(calls[2].poll());
    assert_pending!(calls[3].poll());
    let err = assert_ready!(calls[4].poll()).unwrap_err();
    assert!(err.is::<RateLimited>(), "due at 2 s: past the bound");
    clock.advance(SEC);
    assert_eq!(assert_ready_ok!(calls[2].poll()), 2);
    assert_eq!(assert_ready_ok!(calls[3].poll()), 3);
}

#[test]
fn a_window_waits_exactly_up_to_its_bound() {
    let clock = ManualClock::new();
    // At 10 s, the second request is due at 12 s in a window of one
    // segment (counted until its segment has left), at 11 s in a log and a
    // fixed window.
    for (window, due) in [
        (on(&clock).sliding_window(1, SEC, 1), 2 * SEC),
        (on(&clock).sliding_log(1, SEC), SEC),
        (on(&clock).fixed_window(1, SEC), SEC),
    ] {
        clock.advance(10 * SEC);
        let layer = window.wait_up_to(due).build().unwrap();
        let mut service = layer.layer(echo(Arc::default()));
        assert!(try_call(&mut service, 0).unwrap().is_ok());
        // Due in exactly the bound: waits.
        let mut waiting = task::spawn(call_now(&mut service, 1));
        assert_pending!(waiting.poll());
        // The next is due a segment later: past it.
        let err = try_call(&mut service, 2).unwrap().unwrap_err();
        let retry_after = err.downcast_ref::<RateLimited>().unwrap().retry_after();
        assert!(retry_after > Some(due), "{retry_after:?}");
    }
}

#[test]
fn backpressure_wakes_exactly_when_a_unit_is_due() {
    let clock = ManualClock::new();
    let layer = on(&clock)
        .token_bucket(Rate::per_second(4), 1)
        .backpressure()
        .build()
        .unwrap();
    let mut service = layer.layer(echo(Arc::default()));
    {
        let mut ready = task::spawn(service.ready());
        assert_ready_ok!(ready.poll());
    }
    assert_eq!(assert_ready_ok!(task::spawn(service.call(1)).poll()), 1);
    let mut ready = task::spawn(service.ready());
    assert!(ready.poll().is_pending());
    clock.advance(250 * MS - NS);
    assert!(!ready.is_woken());
    clock.advance(NS);
    assert!(ready.is_woken());
    assert!(ready.poll().is_ready());
}

#[test]
fn keys_get_limits_of_their_own() {
    let clock = ManualClock::new();
    let layer = on(&clock)
        .fixed_window(2, SEC)
        .key(|request: &u32| Some(request % 10))
        .build()
        .unwrap();
    let mut service = layer.layer(echo(Arc::default()));
    for key in 0..10 {
        assert!(try_call(&mut service, key).unwrap().is_ok());
        assert!(try_call(&mut service, key + 10).unwrap().is_ok());
        assert!(
            try_call(&mut service, key + 20)
                .unwrap()
                .unwrap_err()
                .is::<RateLimited>()
        );
    }
    assert_eq!(layer.tracked_keys(), 10);
}

#[test]
fn requests_without_a_key_are_handled_as_configured() {
    let clock = ManualClock::new();
    let keyed = |missing| {
        on(&clock)
            .name("tenants")
            .fixed_window(1, SEC)
            .key(|request: &u32| (*request != 0).then_some(*request))
            .missing_key(missing)
            .build()
            .unwrap()
            .layer(echo(Arc::default()))
    };

    let mut reject = keyed(MissingKey::Reject);
    let err = try_call(&mut reject, 0).unwrap().unwrap_err();
    let missing = err.downcast_ref::<KeyMissing>().unwrap();
    assert_eq!(missing.name(), "tenants");
    assert_eq!(missing.why(), None, "a closure knows no missing step");

    let mut allow = keyed(MissingKey::Allow);
    assert!((0..5).all(|_| try_call(&mut allow, 0).unwrap().is_ok()));

    let mut shared = keyed(MissingKey::Shared);
    assert!(try_call(&mut shared, 0).unwrap().is_ok());
    assert!(
        try_call(&mut shared, 0)
            .unwrap()
            .unwrap_err()
            .is::<RateLimited>()
    );
    assert!(
        try_call(&mut shared, 7).unwrap().is_ok(),
        "keyed requests keep their own limit"
    );
}

#[test]
fn a_flood_of_distinct_keys_stays_within_the_bound() {
    let clock = ManualClock::new();
    let layer = on(&clock)
        .token_bucket(Rate::per_second(1), 1)
        .key(|request: &u32| Some(*request))
        .max_keys(1_024)
        .build()
        .unwrap();
    let mut service = layer.layer(echo(Arc::default()));
    for key in 0..1_000_000 {
        assert!(
            try_call(&mut service, key).unwrap().is_ok(),
            "a new key is admitted"
        );
        assert!(layer.tracked_keys() <= 1_024);
        if key % 1_000 == 999 {
            clock.advance(100 * MS);
        }
    }
}

/// A key still limited survives a flood of new keys at a full table as long
/// as it keeps asking; idle keys are forgotten before it, and keys seen
/// least recently after them.
fn assert_eviction_keeps_limited_keys(algorithm: OnManual, clock: &ManualClock) {
    let layer = algorithm
        .key(|request: &u32| Some(*request))
        .max_keys(16)
        .shards(1)
        .build()
        .unwrap();
    let mut service = layer.layer(echo(Arc::default()));
    assert!(try_call(&mut service, 1).unwrap().is_ok());
    assert!(try_call(&mut service, 1).unwrap().is_ok());
    // A flood of other keys, while key 1 is limited and keeps asking: every
    // new key is admitted, key 1 stays refused.
    for key in 100..5_100 {
        clock.advance(MS);
        assert!(try_call(&mut service, key).unwrap().is_ok());
        assert!(layer.tracked_keys() <= 16);
        if key % 10 == 0 {
            assert!(
                try_call(&mut service, 1)
                    .unwrap()
                    .unwrap_err()
                    .is::<RateLimited>(),
                "key 1 was not forgotten"
            );
        }
    }
    // Key 1 stops asking: after more than 14 other new keys (7/8 of the
    // shard) it is forgotten, and comes back with a limit of its own.
    for key in 10_000..10_015 {
        assert!(try_call(&mut service, key).unwrap().is_ok());
    }
    assert!(try_call(&mut service, 1).unwrap().is_ok());
}

#[test]
fn eviction_never_resets_a_key_that_is_still_limited() {
    // Each algorithm admits 2 at once, then 1 more within 10 s. (The token
    // bucket keeps its keys in a table of its own.)
    let algorithms: [fn(&ManualClock) -> OnManual; 4] = [
        |clock| on(clock).token_bucket(Rate::new(1, 10 * SEC), 2),
        |clock| on(clock).sliding_window(2, 10 * SEC, 10),
        |clock| on(clock).sliding_log(2, 10 * SEC),
        |clock| on(clock).fixed_window(2, 10 * SEC),
    ];
    for algorithm in algorithms {
        let clock = ManualClock::new();
        assert_eviction_keeps_limited_keys(algorithm(&clock), &clock);
    }
}

#[test]
fn idle_keys_are_forgotten_before_the_least_recently_seen() {
    let clock = ManualClock::new();
    let layer = on(&clock)
        .sliding_log(1, SEC)
        .key(|request: &u32| Some(*request))
        .max_keys(8)
        .shards(1)
        .build()
        .unwrap();
    let mut service = layer.layer(echo(Arc::default()));
    // Key 1 is seen first and recovers first.
    assert!(try_call(&mut service, 1).unwrap().is_ok());
    clock.advance(600 * MS);
    for key in 2..=8 {
        assert!(try_call(&mut service, key).unwrap().is_ok());
    }
    // Now every key but 1 is still limited.
    clock.advance(500 * MS);
    assert!(try_call(&mut service, 9).unwrap().is_ok());
    // Only the idle key 1 had to go: the others are still refused (and so
    // seen again, after key 9).
    for key in 2..=8 {
        assert!(try_call(&mut service, key).unwrap().is_err(), "key {key}");
    }
    assert_eq!(layer.tracked_keys(), 8);
    // Full again and nothing idle: key 9, seen least recently, goes.
    assert!(try_call(&mut service, 10).unwrap().is_ok());
    assert!(
        try_call(&mut service, 9).unwrap().is_ok(),
        "key 9 was forgotten"
    );
    assert!(try_call(&mut service, 3).unwrap().is_err(), "key 3 was not");
}

#[test]
fn an_admission_and_a_refusal_emit_one_event_each() {
    let clock = ManualClock::new();
    let events = Arc::new(Mutex::new(Vec::new()));
    let layer = on(&clock)
        .name("api")
        .fixed_window(1, SEC)
        .on_event({
            let events = Arc::clone(&events);
            move |event| {
                events
                    .lock()
                    .unwrap()
                    .push((event.name.to_string(), event.kind))
            }
        })
        .build()
        .unwrap();
    let mut service = layer.layer(echo(Arc::default()));
    assert!(admitted(&mut service));
    assert!(!admitted(&mut service));
    assert_eq!(
        *events.lock().unwrap(),
        [
            ("api".to_string(), EventKind::LetThrough),
            (
                "api".to_string(),
                EventKind::Rejected {
                    kind: RejectionKind::RateLimited,
                    retry_after: Some(SEC)
                }
            )
        ]
    );
}

#[test]
fn the_error_names_the_layer_and_the_wait() {
    let clock = ManualClock::new();
    let layer = on(&clock)
        .name("search")
        .fixed_window(1, SEC)
        .build()
        .unwrap();
    let mut service = layer.layer(echo(Arc::default()));
    assert!(admitted(&mut service));
    let err = try_call(&mut service, 0).unwrap().unwrap_err();
    assert_eq!(
        err.to_string(),
        "rate limiter `search` is over its limit; retry after 1s"
    );
}

fn field<X, W>(builder: RateLimitBuilder<X, W>) -> &'static str {
    builder.build().unwrap_err().field()
}

#[test]
fn invalid_config_names_the_field() {
    let b = RateLimitLayer::builder;
    let century = Duration::from_secs(3600 * 24 * 365 * 101);
    assert_eq!(
        field(b().token_bucket(Rate::per_second(0), 1)),
        "rate.tokens"
    );
    assert_eq!(
        field(b().token_bucket(Rate::new(1, Duration::ZERO), 1)),
        "rate.per"
    );
    assert_eq!(field(b().token_bucket(Rate::per_second(10), 0)), "burst");
    assert_eq!(field(b().token_bucket(Rate::new(u32::MAX, NS), 1)), "rate");
    assert_eq!(
        field(b().token_bucket(Rate::new(1, century), 1)),
        "rate.per"
    );
    assert_eq!(
        field(b().token_bucket(Rate::new(1, Duration::from_secs(3600 * 24 * 365)), 200)),
        "burst"
    );
    assert_eq!(field(b().sliding_window(0, SEC, 10)), "limit");
    assert_eq!(field(b().sliding_window(10, Duration::ZERO, 10)), "window");
    assert_eq!(field(b().sliding_window(10, SEC, 0)), "segments");
    assert_eq!(field(b().sliding_window(10, SEC, 5_000)), "segments");
    assert_eq!(field(b().sliding_log(10, Duration::ZERO)), "window");
    assert_eq!(field(b().sliding_log(10, century)), "window");
    assert_eq!(field(b().fixed_window(0, SEC)), "limit");
    assert_eq!(field(b().wait_up_to(Duration::ZERO)), "wait_up_to");
    assert_eq!(field(b().fixed_window(1, NS).wait_up_to(SEC)), "wait_up_to");
    assert_eq!(field(b().shards(3).key(|_: &u32| Some(1))), "shards");
    assert_eq!(field(b().max_keys(0).key(|_: &u32| Some(1))), "max_keys");
    assert_eq!(
        field(b().backpressure().key(|_: &u32| Some(1))),
        "backpressure"
    );
    let err = b().backpressure().cost(|_: &u32| 2).build().unwrap_err();
    assert_eq!(err.field(), "backpressure");
    assert!(
        err.to_string()
            .starts_with("invalid rate_limit config: `backpressure` needs"),
        "{err}"
    );
}

#[test]
fn the_clock_is_the_layers() {
    // The same limiter on a clock set far ahead behaves the same.
    let clock = ManualClock::new();
    clock.set(palisade::clock::Instant::from_nanos(u64::MAX / 2));
    let layer = on(&clock)
        .token_bucket(Rate::per_second(1), 1)
        .build()
        .unwrap();
    let mut service = layer.layer(echo(Arc::default()));
    assert!(admitted(&mut service));
    assert_eq!(retry_after(&mut service, 0), SEC);
    assert_eq!(clock.now().as_nanos(), u64::MAX / 2);
}

#[cfg(feature = "quanta")]
#[test]
fn on_the_counter_clock_a_refusal_waits_what_the_counter_measured() {
    use palisade::clock::QuantaClock;

    let hour = Duration::from_secs(3_600);
    let layer = RateLimitLayer::builder()
        .token_bucket(Rate::new(1, hour), 2)
        .clock(QuantaClock::new())
        .build()
        .unwrap();
    let mut service = layer.layer(echo(Arc::default()));
    assert!(admitted(&mut service));
    assert!(admitted(&mut service));
    let wait = retry_after(&mut service, 0);
    // Only the time these few calls took has passed since the first.
    assert!(wait <= hour && wait > hour - SEC, "{wait:?}");
}

/// A keyed limit read by hand: what a key would get and what it has left,
/// without consuming, without counting as a use, without tracking a key.
#[test]
fn a_key_s_capacity_can_be_read_without_using_it() {
    use palisade::rate_limit::Check;

    let clock = ManualClock::new();
    let layer = on(&clock)
        .token_bucket(Rate::per_second(10), 3)
        .key(|request: &u32| Some(*request % 2))
        .max_keys(16)
        .build()
        .unwrap();
    let mut service = layer.layer(echo(Arc::default()));
    // Key 0 takes two of its three tokens.
    for _ in 0..2 {
        assert!(try_call(&mut service, 0).unwrap().is_ok());
    }
    assert_eq!(layer.available_for(&0u32), 1);
    assert_eq!(layer.check_key(&0u32, 1), Check::Admitted);
    assert_eq!(
        layer.check_key(&0u32, 2),
        Check::After(Duration::from_millis(100))
    );
    assert_eq!(layer.check_key(&0u32, 4), Check::Never);
    // Asking took nothing: the third token is still there, once.
    assert_eq!(layer.available_for(&0u32), 1);
    assert!(try_call(&mut service, 0).unwrap().is_ok());
    assert_eq!(layer.available_for(&0u32), 0);
    // A key never seen is fresh, and asking about it does not track it.
    assert_eq!(layer.available_for(&1u32), 3);
    assert_eq!(layer.tracked_keys(), 1);
    clock.advance(Duration::from_millis(250));
    assert_eq!(layer.available_for(&0u32), 2);
}

#[test]
fn debug_shows_the_limiter_and_each_call_s_state() {
    let layer = RateLimitLayer::builder()
        .name("api")
        .token_bucket(Rate::per_second(1), 1)
        .wait_up_to(Duration::from_secs(1))
        .clock(ManualClock::new())
        .build()
        .unwrap();
    let mut service = layer.layer(service_fn(|n: u32| async move { Ok::<_, BoxError>(n) }));
    let shown = format!("{layer:?}");
    assert!(
        shown.starts_with(
            "RateLimitLayer { limiter: RateLimiter { name: \"api\", algorithm: TokenBucket("
        ),
        "{shown}"
    );
    let builder = format!("{:?}", RateLimitLayer::builder().name("api"));
    assert!(
        builder.starts_with("RateLimitBuilder { config: "),
        "{builder}"
    );
    assert!(builder.contains("\"api\""), "{builder}");
    let shown = format!("{service:?}");
    assert!(shown.starts_with("RateLimit { inner: ServiceFn"), "{shown}");
    assert!(shown.contains(", limiter: "), "{shown}");
    let mut call = |n| {
        assert_ready_ok!(task::spawn(service.ready()).poll());
        format!("{:?}", service.call(n))
    };
    assert_eq!(call(1), r#"ResponseFuture { state: "called", .. }"#);
    // Due in 1 s: within the wait.
    assert_eq!(call(2), r#"ResponseFuture { state: "waiting", .. }"#);
    // Due in 2 s: past it.
    assert_eq!(call(3), r#"ResponseFuture { state: "rejected", .. }"#);
}

/// A keyed token bucket of 1 a second and a burst of 2, in one shard of
/// `max_keys`: request `10 × key + cost`.
fn keyed_by_tens(
    clock: &ManualClock,
    max_keys: usize,
) -> RateLimitLayer<impl Fn(&u32) -> Option<u32> + Clone, impl Fn(&u32) -> u32 + Clone, ManualClock>
{
    on(clock)
        .token_bucket(Rate::per_second(1), 2)
        .key(|request: &u32| Some(request / 10))
        .cost(|request: &u32| request % 10)
        .max_keys(max_keys)
        .shards(1)
        .build()
        .unwrap()
}

#[test]
fn a_key_idle_at_the_instant_of_an_eviction_goes_before_any_limited_key() {
    let clock = ManualClock::new();
    let layer = keyed_by_tens(&clock, 8);
    let mut service = layer.layer(echo(Arc::default()));
    // Keys 1 to 7 take their whole burst (full again at 2 s); key 8, seen
    // last, one token (full again at 1 s).
    for key in 1..=7 {
        assert!(try_call(&mut service, 10 * key + 2).unwrap().is_ok());
    }
    assert!(try_call(&mut service, 81).unwrap().is_ok());
    clock.advance(SEC);
    // A ninth key at 1 s: key 8 is idle, and goes; the least recent key
    // (1) keeps its debt.
    assert!(try_call(&mut service, 91).unwrap().is_ok());
    assert_eq!(layer.tracked_keys(), 8);
    assert_eq!(layer.available_for(&1), 1);
}

#[test]
fn a_full_shard_frees_an_eighth_of_its_keys() {
    let clock = ManualClock::new();
    let layer = keyed_by_tens(&clock, 16);
    let mut service = layer.layer(echo(Arc::default()));
    for key in 1..=16 {
        assert!(try_call(&mut service, 10 * key + 1).unwrap().is_ok());
    }
    assert_eq!(layer.tracked_keys(), 16);
    // The 17th key: two of 16 go (the least recent), then it comes in.
    assert!(try_call(&mut service, 171).unwrap().is_ok());
    assert_eq!(layer.tracked_keys(), 15);
    assert_eq!(layer.available_for(&1), 2, "forgotten: a fresh bucket");
    assert_eq!(layer.available_for(&2), 2, "forgotten: a fresh bucket");
    assert_eq!(layer.available_for(&3), 1);
}

#[test]
fn keys_spread_over_the_shards() {
    // 4 shards of 1 000 keys: 2 000 keys fit, about 500 in each; in one
    // shard at most 1 000 would.
    let layer = RateLimitLayer::builder()
        .token_bucket(Rate::per_second(1), 1)
        .key(|request: &u32| Some(*request))
        .max_keys(4_000)
        .shards(4)
        .build()
        .unwrap();
    let mut service = layer.layer(echo(Arc::default()));
    for key in 0..2_000 {
        assert!(try_call(&mut service, key).unwrap().is_ok());
    }
    assert_eq!(layer.tracked_keys(), 2_000);
}

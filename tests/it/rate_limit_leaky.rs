//! The leaky bucket, driven by a `ManualClock`: a burst leaves it as an even
//! stream, in arrival order, nothing early; a full bucket refuses with the
//! exact wait; a waiter that leaves gives its slot back; and a property test
//! of all of it against a plain recomputation of the stream.

use std::{
    sync::{Arc, Mutex},
    task::Poll,
    time::Duration,
};

use palisade::{
    clock::{Clock, ManualClock},
    error::{RateLimited, Unsatisfiable},
    rate_limit::{Check, KeyExtractor, Limit, MissingKey, Rate, RateLimitLayer},
};
use proptest::prelude::*;
use tokio_test::task::{self, Spawn};
use tower::{BoxError, Layer, Service, ServiceExt, service_fn};

const NS: Duration = Duration::from_nanos(1);
const MS: Duration = Duration::from_millis(1);

/// When each request reached the wrapped service, and which it was.
type Arrivals = Arc<Mutex<Vec<(Duration, u32)>>>;

/// A service that records each request's arrival on `clock`.
fn recorder(
    clock: &ManualClock,
    arrivals: &Arrivals,
) -> impl Service<u32, Response = u32, Error = BoxError, Future = impl Future + Send + use<>>
+ Clone
+ use<> {
    let (clock, arrivals) = (clock.clone(), Arc::clone(arrivals));
    service_fn(move |request: u32| {
        let at = clock.now().since_epoch();
        arrivals.lock().unwrap().push((at, request));
        std::future::ready(Ok::<_, BoxError>(request))
    })
}

type Call = Spawn<std::pin::Pin<Box<dyn Future<Output = Result<u32, BoxError>> + Send>>>;

/// Makes the service ready, then calls it with `request`; the call is not
/// polled yet.
fn call<S>(service: &mut S, request: u32) -> Call
where
    S: Service<u32, Response = u32, Error = BoxError>,
    S::Future: Send + 'static,
{
    assert!(
        task::spawn(service.ready()).poll().is_ready(),
        "a rate limiter's service is ready at once"
    );
    task::spawn(Box::pin(service.call(request)))
}

/// The `retry_after` of a refusal as over the limit.
fn refused(result: Poll<Result<u32, BoxError>>) -> Duration {
    let Poll::Ready(Err(error)) = result else {
        panic!("not refused: {result:?}")
    };
    let refusal = error
        .downcast_ref::<RateLimited>()
        .unwrap_or_else(|| panic!("not a rate limit: {error}"));
    refusal.retry_after().expect("a leaky bucket knows when")
}

fn layer(
    clock: &ManualClock,
    per_second: u32,
    queue: u32,
) -> RateLimitLayer<palisade::rate_limit::NoKey, palisade::rate_limit::UnitCost, ManualClock> {
    RateLimitLayer::builder()
        .leaky_bucket(Rate::per_second(per_second), queue)
        .clock(clock.clone())
        .build()
        .unwrap()
}

/// Advances the clock to `at` (from the epoch) and polls every call woken;
/// those that are done leave `calls`.
fn advance_to(clock: &ManualClock, at: Duration, calls: &mut Vec<Call>) {
    clock.advance(at - clock.now().since_epoch());
    calls.retain_mut(|call| !call.is_woken() || call.poll().is_pending());
}

#[test]
fn a_burst_of_100_leaves_a_bucket_of_50_one_every_100_ms_and_the_rest_are_refused() {
    let clock = ManualClock::new();
    let arrivals = Arrivals::default();
    let mut service = layer(&clock, 10, 50).layer(recorder(&clock, &arrivals));
    let mut calls: Vec<Call> = (0..100).map(|id| call(&mut service, id)).collect();
    let results: Vec<_> = calls.iter_mut().map(Spawn::poll).collect();
    assert!(
        matches!(results[0], Poll::Ready(Ok(0))),
        "the first at once"
    );
    assert!(results[1..50].iter().all(Poll::is_pending), "49 wait");
    for result in results.into_iter().skip(50) {
        // A slot frees when the first one's ends: 100 ms.
        assert_eq!(refused(result), 100 * MS);
    }
    let mut waiting: Vec<Call> = calls.drain(1..50).collect();
    for slot in 1..50u32 {
        let at = 100 * MS * slot;
        advance_to(&clock, at - NS, &mut waiting);
        assert_eq!(
            arrivals.lock().unwrap().len(),
            slot as usize,
            "nothing early"
        );
        advance_to(&clock, at, &mut waiting);
        assert_eq!(
            arrivals.lock().unwrap().last(),
            Some(&(at, slot)),
            "at its slot, in order"
        );
    }
    assert!(waiting.is_empty());
}

#[test]
fn a_waiter_that_leaves_gives_its_slot_to_the_next() {
    let clock = ManualClock::new();
    let arrivals = Arrivals::default();
    let mut service = layer(&clock, 10, 50).layer(recorder(&clock, &arrivals));
    let mut calls: Vec<Call> = (0..=20).map(|id| call(&mut service, id)).collect();
    for call in &mut calls {
        let _ = call.poll();
    }
    let mut tenth = calls.remove(10);
    drop(calls.remove(0)); // answered at once
    for step in 1..=5 {
        advance_to(&clock, 100 * MS * step, &mut calls);
    }
    // Request 10 is the 10th waiter: its slot is at 1 s. It leaves at 500 ms.
    assert!(tenth.poll().is_pending());
    drop(tenth);
    for step in 6..=30 {
        advance_to(&clock, 100 * MS * step, &mut calls);
    }
    assert!(calls.is_empty());
    let at: Vec<(Duration, u32)> = arrivals.lock().unwrap().clone();
    let expected: Vec<(Duration, u32)> = (0..=20)
        .filter(|&id| id != 10)
        .enumerate()
        .map(|(slot, id)| (100 * MS * slot as u32, id))
        .collect();
    assert_eq!(at, expected, "the 11th in the 10th's slot, and so on");
}

#[test]
fn a_request_of_cost_3_takes_three_slots() {
    let clock = ManualClock::new();
    let arrivals = Arrivals::default();
    let mut service = RateLimitLayer::builder()
        .leaky_bucket(Rate::per_second(10), 10)
        .cost(|request: &u32| *request)
        .clock(clock.clone())
        .build()
        .unwrap()
        .layer(recorder(&clock, &arrivals));
    // Costs 3, 1, 2, 5: slots at 0, 300, 400, 600 ms; the last ends at 1.1 s,
    // more than the bucket's 1 s ahead: refused until 100 ms have drained.
    let mut calls: Vec<Call> = [3, 1, 2]
        .iter()
        .map(|&cost| call(&mut service, cost))
        .collect();
    for call in &mut calls {
        let _ = call.poll();
    }
    assert_eq!(refused(call(&mut service, 5).poll()), 100 * MS);
    let mut never = call(&mut service, 11);
    let Poll::Ready(Err(error)) = never.poll() else {
        panic!("a cost above the bucket")
    };
    assert!(error.is::<Unsatisfiable>(), "{error}");
    for step in 1..=10 {
        advance_to(&clock, 100 * MS * step, &mut calls);
    }
    assert_eq!(
        *arrivals.lock().unwrap(),
        [(Duration::ZERO, 3), (300 * MS, 1), (400 * MS, 2)]
    );
}

/// An idle bucket refuses a request costing more than it holds as a busy
/// one does; and a slot ending at the clock's very end is the last.
#[test]
fn an_idle_bucket_keeps_its_bounds_to_the_end_of_the_clock() {
    let clock = ManualClock::new();
    let arrivals = Arrivals::default();
    let mut service = RateLimitLayer::builder()
        .leaky_bucket(Rate::new(1, 100 * NS), 10)
        .cost(|request: &u32| *request)
        .clock(clock.clone())
        .build()
        .unwrap()
        .layer(recorder(&clock, &arrivals));
    let Poll::Ready(Err(error)) = call(&mut service, 11).poll() else {
        panic!("a cost above the bucket")
    };
    assert!(error.is::<Unsatisfiable>(), "{error}");
    // 100 ns before the end of the clock: one slot fits, exactly.
    clock.set(palisade::clock::Instant::MAX - 100 * NS);
    assert!(matches!(call(&mut service, 1).poll(), Poll::Ready(Ok(1))));
    assert_eq!(refused(call(&mut service, 1).poll()), 100 * NS);
    assert_eq!(arrivals.lock().unwrap().len(), 1);
}

#[test]
fn a_wait_bound_refuses_a_slot_too_far_with_the_time_until_it_is_near_enough() {
    let clock = ManualClock::new();
    let arrivals = Arrivals::default();
    let mut service = RateLimitLayer::builder()
        .leaky_bucket(Rate::per_second(10), 50)
        .wait_up_to(250 * MS)
        .clock(clock.clone())
        .build()
        .unwrap()
        .layer(recorder(&clock, &arrivals));
    let mut calls: Vec<Call> = (0..3).map(|id| call(&mut service, id)).collect();
    for call in &mut calls {
        let _ = call.poll();
    }
    // The next slot is at 300 ms: 250 ms ahead at 50 ms.
    assert_eq!(refused(call(&mut service, 3).poll()), 50 * MS);
    clock.advance(50 * MS - NS);
    assert_eq!(refused(call(&mut service, 3).poll()), NS);
    clock.advance(NS);
    let mut fourth = call(&mut service, 3);
    assert!(fourth.poll().is_pending());
    calls.push(fourth);
    for step in 1..=3 {
        advance_to(&clock, 100 * MS * step, &mut calls);
    }
    let at: Vec<Duration> = arrivals.lock().unwrap().iter().map(|(at, _)| *at).collect();
    assert_eq!(at, [Duration::ZERO, 100 * MS, 200 * MS, 300 * MS]);
}

#[test]
fn each_key_has_a_leaky_bucket_of_its_own() {
    let clock = ManualClock::new();
    let arrivals = Arrivals::default();
    let mut service = RateLimitLayer::builder()
        .leaky_bucket(Rate::per_second(10), 5)
        .key(|request: &u32| (*request < 100).then_some(*request % 2))
        .missing_key(MissingKey::Allow)
        .clock(clock.clone())
        .build()
        .unwrap()
        .layer(recorder(&clock, &arrivals));
    let mut calls: Vec<Call> = [0, 1, 2, 3, 4, 5, 100]
        .iter()
        .map(|&id| call(&mut service, id))
        .collect();
    for call in &mut calls {
        let _ = call.poll();
    }
    for step in 1..=3 {
        advance_to(&clock, 100 * MS * step, &mut calls);
    }
    assert_eq!(
        *arrivals.lock().unwrap(),
        [
            (Duration::ZERO, 0),
            (Duration::ZERO, 1),
            (Duration::ZERO, 100),
            (100 * MS, 2),
            (100 * MS, 3),
            (200 * MS, 4),
            (200 * MS, 5),
        ]
    );
}

/// A keyed leaky bucket of 10 a second and 5, in a table of 8 keys in one
/// shard (a key is a request's thousands), where key 0 has sent three
/// requests at 0: one went at once, and the two waiting for 100 and 200 ms
/// are returned, polled once.
fn eight_keys_and_two_waiters(
    clock: &ManualClock,
    arrivals: &Arrivals,
) -> (
    RateLimitLayer<impl KeyExtractor<u32> + use<>, palisade::rate_limit::UnitCost, ManualClock>,
    impl Service<u32, Response = u32, Error = BoxError, Future: Send + 'static> + use<>,
    Vec<Call>,
) {
    let layer = RateLimitLayer::builder()
        .leaky_bucket(Rate::per_second(10), 5)
        .key(|request: &u32| Some(*request / 1_000))
        .max_keys(8)
        .shards(1)
        .clock(clock.clone())
        .build()
        .unwrap();
    let mut service = layer.layer(recorder(clock, arrivals));
    let mut calls: Vec<Call> = (0..3).map(|id| call(&mut service, id)).collect();
    for call in &mut calls {
        let _ = call.poll();
    }
    drop(calls.remove(0));
    (layer, service, calls)
}

/// When the requests of key 0 reached the service, and which.
fn of_key_0(arrivals: &Arrivals) -> Vec<(Duration, u32)> {
    let arrivals = arrivals.lock().unwrap();
    arrivals
        .iter()
        .copied()
        .filter(|&(_, id)| id < 1_000)
        .collect()
}

/// In a full table, a key's next request queues behind its own waiters:
/// nothing is forgotten to make room for a key the table holds.
#[test]
fn a_full_table_keeps_a_known_key_s_queue() {
    let clock = ManualClock::new();
    let arrivals = Arrivals::default();
    let (layer, mut service, _waiting) = eight_keys_and_two_waiters(&clock, &arrivals);
    for key in 1..=7 {
        assert!(call(&mut service, key * 1_000).poll().is_ready());
    }
    assert_eq!(layer.check_key(&0, 1), Check::After(300 * MS));
    let mut next = call(&mut service, 3);
    assert!(next.poll().is_pending(), "behind the two waiting");
    assert_eq!(layer.check_key(&0, 1), Check::After(400 * MS));
    assert_eq!(layer.tracked_keys(), 8);
}

/// Keyed: a change of rate keeps what each key's slot draining now was
/// given (released at the change by the old rate); a full table forgets
/// idle keys before a key whose requests wait.
#[test]
fn each_key_keeps_its_slot_across_a_new_rate_and_its_waiters_across_an_eviction() {
    let clock = ManualClock::new();
    let arrivals = Arrivals::default();
    let (layer, mut service, mut calls) = eight_keys_and_two_waiters(&clock, &arrivals);
    // Seven other keys, one request each: idle from 100 ms.
    for key in 1..=7 {
        assert!(call(&mut service, key * 1_000).poll().is_ready());
    }
    // At 150 ms (nothing polled since 0), 20 a second: the first waiter's
    // slot began at 100 ms under 10 a second, and ends at 200 ms.
    clock.advance(150 * MS);
    layer
        .set_limit(Limit::LeakyBucket {
            rate: Rate::per_second(20),
            queue: 5,
        })
        .unwrap();
    // A new key: the full table forgets the seven idle keys, not key 0.
    assert!(call(&mut service, 8_000).poll().is_ready());
    assert_eq!(layer.tracked_keys(), 2);
    assert_ne!(layer.check_key(&0, 1), Check::Admitted, "key 0 still waits");
    for at in [150, 200] {
        advance_to(&clock, MS * at, &mut calls);
    }
    assert!(calls.is_empty());
    assert_eq!(
        of_key_0(&arrivals),
        [(Duration::ZERO, 0), (150 * MS, 1), (200 * MS, 2)],
        "the first waiter goes when polled, its slot having begun at 100 ms"
    );
}

/// A key forgotten under a flood of keys while requests wait for it: its
/// waiters still go at the slots they were given, none early.
#[test]
fn waiters_of_a_key_forgotten_in_a_flood_keep_their_slots() {
    let clock = ManualClock::new();
    let arrivals = Arrivals::default();
    let (layer, mut service, mut calls) = eight_keys_and_two_waiters(&clock, &arrivals);
    // Eight new keys, none idle yet: key 0, the least recently seen, goes.
    for key in 1..=8 {
        assert!(call(&mut service, key * 1_000).poll().is_ready());
    }
    assert_eq!(layer.tracked_keys(), 8);
    assert_eq!(layer.check_key(&0, 1), Check::Admitted, "forgotten");
    advance_to(&clock, 100 * MS - NS, &mut calls);
    advance_to(&clock, 100 * MS, &mut calls);
    advance_to(&clock, 200 * MS - NS, &mut calls);
    advance_to(&clock, 200 * MS, &mut calls);
    assert!(calls.is_empty());
    assert_eq!(
        of_key_0(&arrivals),
        [(Duration::ZERO, 0), (100 * MS, 1), (200 * MS, 2)]
    );
}

#[test]
fn a_new_rate_reslots_the_waiters_and_a_check_says_when_a_request_would_go() {
    let clock = ManualClock::new();
    let arrivals = Arrivals::default();
    let layer = layer(&clock, 10, 50);
    let mut service = layer.layer(recorder(&clock, &arrivals));
    assert_eq!(layer.check(1), Check::Admitted);
    assert_eq!(layer.check(50), Check::Admitted, "the whole bucket at once");
    assert_eq!(layer.check(51), Check::Never);
    assert_eq!(layer.available(), 50);
    let mut calls: Vec<Call> = (0..3).map(|id| call(&mut service, id)).collect();
    for call in &mut calls {
        let _ = call.poll();
    }
    assert_eq!(
        layer.check(1),
        Check::After(300 * MS),
        "behind the two waiting"
    );
    assert_eq!(layer.available(), 0);
    assert_eq!(layer.quota(), (50, Duration::from_secs(5)), "10 a second");
    // 5 a second from 50 ms: the slot draining now still ends at 100 ms;
    // the second waiter's follows 200 ms later.
    clock.advance(50 * MS);
    layer
        .set_limit(Limit::LeakyBucket {
            rate: Rate::per_second(5),
            queue: 50,
        })
        .unwrap();
    for step in 1..=6 {
        advance_to(&clock, 50 * MS + 50 * MS * step, &mut calls);
    }
    let at: Vec<Duration> = arrivals.lock().unwrap().iter().map(|(at, _)| *at).collect();
    assert_eq!(at, [Duration::ZERO, 100 * MS, 300 * MS]);
    assert_eq!(
        layer
            .set_limit(Limit::TokenBucket {
                rate: Rate::per_second(5),
                burst: 5
            })
            .unwrap_err()
            .field(),
        "algorithm"
    );
}

#[test]
fn a_leaky_bucket_s_numbers_are_checked_when_built() {
    let field =
        |builder: palisade::rate_limit::RateLimitBuilder| builder.build().unwrap_err().field();
    let leaky = || RateLimitLayer::builder().leaky_bucket(Rate::per_second(10), 50);
    assert_eq!(
        field(RateLimitLayer::builder().leaky_bucket(Rate::per_second(10), 0)),
        "queue"
    );
    assert_eq!(
        field(RateLimitLayer::builder().leaky_bucket(Rate::new(0, Duration::from_secs(1)), 5)),
        "rate.tokens"
    );
    assert_eq!(field(leaky().backpressure()), "backpressure");
    let error = RateLimitLayer::builder()
        .leaky_bucket(Rate::new(1, Duration::from_secs(3600 * 24 * 365)), 200)
        .build()
        .unwrap_err();
    assert_eq!(error.field(), "queue");
    assert!(
        error.rule().starts_with("drains in more than 100 years"),
        "{error}"
    );
    // A waiter a unit: 40 bytes, twice over; 2²⁵ units are 2.5 GiB.
    assert_eq!(
        field(RateLimitLayer::builder().leaky_bucket(Rate::per_second(1_000_000), 1 << 25)),
        "queue"
    );
    // 1 GiB holds 48 bytes and 13 421 772 waiters of 80 (40, twice over).
    let queue = |queue| RateLimitLayer::builder().leaky_bucket(Rate::per_second(1_000), queue);
    assert!(queue(13_421_772).build().is_ok());
    assert_eq!(field(queue(13_421_773)), "queue");
    // Per key, each key's queue counts: a million keys of 1 000 waiters.
    let keyed = RateLimitLayer::builder()
        .leaky_bucket(Rate::per_second(10), 1_000)
        .key(|request: &u32| Some(*request))
        .max_keys(1_000_000)
        .build()
        .unwrap_err();
    assert_eq!(keyed.field(), "max_keys");
    assert!(
        keyed.rule().contains("leaky bucket of up to 1000 waiting"),
        "{keyed}"
    );
}

/// What happens next in the property test.
#[derive(Clone, Debug)]
enum Step {
    /// A request of this cost arrives.
    Arrive(u32),
    /// The waiter at this index (modulo those waiting) leaves.
    Leave(usize),
    /// Time moves on by this many milliseconds.
    Wait(u64),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (1..=3u32).prop_map(Step::Arrive),
        1 => any::<usize>().prop_map(Step::Leave),
        3 => (0..250u64).prop_map(Step::Wait),
    ]
}

/// The stream as it must be: the requests admitted and still wanted, in
/// arrival order, each leaving at its arrival or when the one before it
/// has had its slot, whichever is later — recomputed from scratch.
fn departures(admitted: &[(Duration, u32)], interval: Duration) -> Vec<Duration> {
    let mut free = Duration::ZERO;
    admitted
        .iter()
        .map(|&(arrival, cost)| {
            let at = arrival.max(free);
            free = at + interval * cost;
            at
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("PROPTEST_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(256)
    ))]

    /// Random arrivals, costs and waiters leaving, against the recomputed
    /// stream: each request leaves exactly when it must, no two closer than
    /// the first one's slot, and each refusal comes when the bucket is full,
    /// with the exact wait.
    #[test]
    fn a_leaky_bucket_releases_the_stream_a_recomputation_predicts(
        steps in prop::collection::vec(step(), 1..80),
    ) {
        const QUEUE: u32 = 6;
        let interval = 100 * MS;
        let clock = ManualClock::new();
        let arrivals = Arrivals::default();
        let mut service = RateLimitLayer::builder()
            .leaky_bucket(Rate::per_second(10), QUEUE)
            .cost(|request: &u32| request % 10)
            .clock(clock.clone())
            .build()
            .unwrap()
            .layer(recorder(&clock, &arrivals));
        // Every admission still wanted: (arrival, cost, id); and the calls
        // not yet released.
        let mut admitted: Vec<(Duration, u32, u32)> = Vec::new();
        let mut waiting: Vec<(u32, Call)> = Vec::new();
        let mut next_id = 0;
        for step in steps {
            let now = clock.now().since_epoch();
            // The model: those gone (released) and those to come.
            let stream: Vec<(Duration, u32)> =
                admitted.iter().map(|&(at, cost, _)| (at, cost)).collect();
            let planned = departures(&stream, interval);
            match step {
                Step::Arrive(cost) => {
                    let id = next_id * 10 + cost;
                    next_id += 1;
                    let mut with = stream.clone();
                    with.push((now, cost));
                    let at = *departures(&with, interval).last().unwrap();
                    // The bucket holds its slot's end within QUEUE slots.
                    let over = (at + interval * cost).saturating_sub(now + interval * QUEUE);
                    let mut call = call(&mut service, id);
                    let result = call.poll();
                    if over > Duration::ZERO {
                        prop_assert_eq!(refused(result), over);
                    } else {
                        admitted.push((now, cost, id));
                        if at == now {
                            prop_assert!(matches!(result, Poll::Ready(Ok(_))), "{:?}", result);
                        } else {
                            prop_assert!(result.is_pending());
                            waiting.push((id, call));
                        }
                    }
                }
                Step::Leave(index) => {
                    if !waiting.is_empty() {
                        let (id, _) = waiting.remove(index % waiting.len());
                        let position = admitted.iter().position(|&(.., of)| of == id).unwrap();
                        // Only a waiter whose slot has not begun is still
                        // waiting: it leaves the stream.
                        prop_assert!(planned[position] > now);
                        admitted.remove(position);
                    }
                }
                Step::Wait(ms) => {
                    // To each departure due meanwhile, as timers fire.
                    let target = now + MS * u32::try_from(ms).unwrap();
                    let mut dues: Vec<Duration> =
                        planned.iter().copied().filter(|&due| due > now && due <= target).collect();
                    dues.push(target);
                    for due in dues {
                        clock.advance(due - clock.now().since_epoch());
                        let now = clock.now().since_epoch();
                        let mut still = Vec::new();
                        for (id, mut call) in waiting.drain(..) {
                            let position = admitted.iter().position(|&(.., of)| of == id).unwrap();
                            let due = planned[position];
                            match call.poll() {
                                Poll::Ready(result) => {
                                    prop_assert!(due <= now, "{} went at {:?}, due {:?}", id, now, due);
                                    prop_assert!(result.is_ok());
                                }
                                Poll::Pending => {
                                    prop_assert!(due > now, "{} waits at {:?}, due {:?}", id, now, due);
                                    still.push((id, call));
                                }
                            }
                        }
                        waiting = still;
                    }
                }
            }
        }
        // Every arrival at the service was at its planned departure, and
        // in order.
        let stream: Vec<(Duration, u32)> =
            admitted.iter().map(|&(at, cost, _)| (at, cost)).collect();
        let planned = departures(&stream, interval);
        let arrived = arrivals.lock().unwrap().clone();
        for (index, &(at, id)) in arrived.iter().enumerate() {
            prop_assert_eq!(admitted[index].2, id, "in arrival order");
            prop_assert_eq!(at, planned[index]);
            if index > 0 {
                let cost = admitted[index - 1].1;
                prop_assert!(at - arrived[index - 1].0 >= interval * cost, "a slot apart");
            }
        }
    }
}

/// A burst from many connections through axum, over loopback: the handler
/// sees an even stream.
#[cfg(feature = "axum")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_over_30_connections_reaches_an_axum_handler_as_an_even_stream() {
    use axum::{Router, routing::get};
    use palisade::stack::http::HttpAnswerLayer;
    use tower::ServiceBuilder;

    let clock = ManualClock::new();
    let limit = RateLimitLayer::builder()
        .leaky_bucket(Rate::per_second(10), 30)
        .clock(clock.clone())
        .build()
        .unwrap();
    let arrivals = Arc::new(Mutex::new(Vec::new()));
    let app = Router::new()
        .route(
            "/",
            get({
                let (clock, arrivals) = (clock.clone(), Arc::clone(&arrivals));
                move || async move {
                    arrivals.lock().unwrap().push(clock.now().since_epoch());
                    "ok"
                }
            }),
        )
        .layer(
            ServiceBuilder::new()
                .layer(HttpAnswerLayer::new())
                .layer(limit),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let clients: Vec<_> = (0..30)
        .map(|_| {
            tokio::spawn(async move {
                let mut sender = crate::common::connect(addr).await;
                crate::common::get(&mut sender, &[]).await.status().as_u16()
            })
        })
        .collect();
    // The first goes at once; the other 29 wait, each on a timer of the
    // clock, which has not moved.
    let arrived = || arrivals.lock().unwrap().len();
    while arrived() < 1 || clock.sleepers() < 29 {
        tokio::task::yield_now().await;
    }
    for slot in 1..30 {
        let next = clock.next_deadline().expect("a waiter's timer");
        assert_eq!(next.since_epoch(), 100 * MS * slot);
        clock.set(next);
        while arrived() < slot as usize + 1 {
            tokio::task::yield_now().await;
        }
    }
    for client in clients {
        assert_eq!(client.await.unwrap(), 200);
    }
    let expected: Vec<Duration> = (0..30).map(|slot| 100 * MS * slot).collect();
    assert_eq!(*arrivals.lock().unwrap(), expected);
    server.abort();
}

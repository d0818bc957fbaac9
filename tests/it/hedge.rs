//! Hedging on a `ManualClock`: when the extra attempt starts, what wins,
//! what the loser gives back, the budget over many requests, the delay at a
//! quantile following the latencies, and what fails.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicU32, Ordering},
    },
    task::Poll,
    time::Duration,
};

use palisade::{
    bulkhead::BulkheadLayer,
    clock::{Clock, Instant, ManualClock},
    hedge::{Delay, HedgeLayer},
    observe::EventKind,
};
use tokio_test::{assert_pending, task};
use tower::{BoxError, Layer, Service, ServiceExt, service_fn};

const MS: Duration = Duration::from_millis(1);

/// An upstream whose `n`th call (from 0) takes `took(n)` on the clock and
/// fails when `fails(n)`; it records when each call started.
#[derive(Clone)]
struct Upstream {
    clock: ManualClock,
    calls: Arc<AtomicU32>,
    started: Arc<Mutex<Vec<Instant>>>,
}

impl Upstream {
    fn new(clock: &ManualClock) -> Upstream {
        Upstream {
            clock: clock.clone(),
            calls: Arc::default(),
            started: Arc::default(),
        }
    }

    fn service<T, F>(
        &self,
        took: T,
        fails: F,
    ) -> impl Service<u32, Response = u32, Error = BoxError, Future: Send> + Clone + use<T, F>
    where
        T: Fn(u32) -> Duration + Clone + Send + Sync + 'static,
        F: Fn(u32) -> bool + Clone + Send + Sync + 'static,
    {
        let this = self.clone();
        service_fn(move |request: u32| {
            let n = this.calls.fetch_add(1, Ordering::SeqCst);
            this.started.lock().unwrap().push(this.clock.now());
            let sleep = this.clock.sleep(took(n));
            let failed = fails(n);
            async move {
                sleep.await;
                if failed {
                    Err("failed".into())
                } else {
                    Ok(request + n * 1000)
                }
            }
        })
    }

    fn calls(&self) -> u32 {
        self.calls.load(Ordering::SeqCst)
    }
}

fn fixed(
    millis: u64,
    clock: &ManualClock,
) -> HedgeLayer<palisade::classify::ErrorsAsFailures, palisade::retry::ViaClone, ManualClock> {
    HedgeLayer::builder(Delay::Fixed(MS * millis as u32))
        .clock(clock.clone())
        .build()
        .unwrap()
}

/// The extra attempt starts exactly at the delay, and the faster one wins.
#[test]
fn the_extra_attempt_starts_exactly_at_the_delay_and_the_first_answer_wins() {
    let clock = ManualClock::new();
    let upstream = Upstream::new(&clock);
    let mut service = fixed(50, &clock)
        .layer(upstream.service(|n| if n == 0 { MS * 1_000 } else { MS * 10 }, |_| false));
    let mut call = task::spawn(service.call(7));
    assert_pending!(call.poll());
    clock.advance(MS * 50 - Duration::from_nanos(1));
    assert_pending!(call.poll());
    assert_eq!(upstream.calls(), 1, "not a nanosecond early");
    clock.advance(Duration::from_nanos(1));
    assert_pending!(call.poll());
    assert_eq!(upstream.calls(), 2);
    assert_eq!(upstream.started.lock().unwrap()[1].since_epoch(), MS * 50);
    clock.advance(MS * 10);
    assert!(
        matches!(call.poll(), Poll::Ready(Ok(1007))),
        "the second call's answer"
    );
}

/// Each extra attempt is numbered after those before it, in its event and
/// in the event of the one that wins.
#[test]
fn the_events_number_each_extra_attempt_and_the_winner() {
    let clock = ManualClock::new();
    let upstream = Upstream::new(&clock);
    let events = Arc::new(Mutex::new(Vec::new()));
    let layer = HedgeLayer::builder(Delay::Fixed(MS * 10))
        .max_extra(2)
        .budget(1.0, 10)
        .clock(clock.clone())
        .on_event({
            let events = Arc::clone(&events);
            move |event| match event.kind {
                EventKind::Hedged { .. } | EventKind::HedgeWon { .. } => {
                    events.lock().unwrap().push(event.kind);
                }
                _ => {}
            }
        })
        .build()
        .unwrap();
    // The first two take a second; the third, started at 20 ms, 5 ms.
    let mut service =
        layer.layer(upstream.service(|n| if n < 2 { MS * 1_000 } else { MS * 5 }, |_| false));
    let answer = clock.block_on(async { service.ready().await?.call(7).await });
    assert_eq!(answer.unwrap(), 2007);
    // Answered before the delay: no event, no winner among hedges.
    let answer = clock.block_on(async { service.ready().await?.call(8).await });
    assert_eq!(answer.unwrap(), 3008);
    assert_eq!(
        *events.lock().unwrap(),
        [
            EventKind::Hedged { attempt: 2 },
            EventKind::Hedged { attempt: 3 },
            EventKind::HedgeWon { attempt: 3 },
        ]
    );
}

/// A first attempt that answers before the delay is not hedged, and one
/// answered at its first poll arms no timer at all.
#[test]
fn nothing_is_hedged_when_the_first_answers_in_time() {
    let clock = ManualClock::new();
    let upstream = Upstream::new(&clock);
    let layer = fixed(50, &clock);
    let mut quick = layer.layer(upstream.service(|_| MS * 20, |_| false));
    let mut call = task::spawn(quick.call(1));
    assert_pending!(call.poll());
    clock.advance(MS * 20);
    assert!(matches!(call.poll(), Poll::Ready(Ok(1))));
    clock.advance(MS * 100);
    assert_eq!(upstream.calls(), 1);

    let sleeps = clock.sleeps_created();
    let mut at_once = layer.layer(service_fn(|x: u32| async move { Ok::<_, BoxError>(x) }));
    for request in 0..100 {
        assert!(matches!(
            task::spawn(at_once.call(request)).poll(),
            Poll::Ready(Ok(_))
        ));
    }
    assert_eq!(clock.sleeps_created(), sleeps, "no timer armed");
}

/// The loser is dropped: a bulkhead inside gets its permit back as soon as
/// the winner answers.
#[test]
fn the_loser_is_dropped_and_its_permit_returned() {
    let clock = ManualClock::new();
    let upstream = Upstream::new(&clock);
    let bulkhead = BulkheadLayer::builder(4).build().unwrap();
    let mut service = fixed(50, &clock).layer(
        bulkhead.layer(upstream.service(|n| if n == 0 { MS * 1_000 } else { MS * 10 }, |_| false)),
    );
    let mut call = task::spawn(service.call(1));
    assert_pending!(call.poll());
    clock.advance(MS * 50);
    assert_pending!(call.poll());
    assert_eq!(bulkhead.in_flight(), 2, "each attempt holds a permit");
    clock.advance(MS * 10);
    assert!(call.poll().is_ready());
    assert_eq!(bulkhead.in_flight(), 0, "the loser gave its permit back");
}

/// Over 10 000 requests that are all slow (an outage), the budget keeps
/// the extra attempts to its ratio plus its burst.
#[test]
fn the_budget_bounds_the_extra_attempts_when_every_call_is_slow() {
    let clock = ManualClock::new();
    let upstream = Upstream::new(&clock);
    let hedged = Arc::new(AtomicU32::new(0));
    let refused = Arc::new(AtomicU32::new(0));
    let layer = HedgeLayer::builder(Delay::Fixed(MS * 10))
        .budget(0.05, 10)
        .clock(clock.clone())
        .on_event({
            let (hedged, refused) = (Arc::clone(&hedged), Arc::clone(&refused));
            move |event| match event.kind {
                EventKind::Hedged { .. } => drop(hedged.fetch_add(1, Ordering::SeqCst)),
                EventKind::BudgetExhausted => drop(refused.fetch_add(1, Ordering::SeqCst)),
                _ => {}
            }
        })
        .build()
        .unwrap();
    let mut service = layer.layer(upstream.service(|_| MS * 100, |_| false));
    for request in 0..10_000 {
        let answer = clock.block_on(async { service.ready().await?.call(request).await });
        assert!(answer.is_ok());
    }
    let extra = upstream.calls() - 10_000;
    assert_eq!(extra, hedged.load(Ordering::SeqCst));
    assert!(extra <= 500 + 10, "{extra} extra attempts");
    assert!(extra >= 490, "the budget is used: {extra}");
    assert_eq!(refused.load(Ordering::SeqCst), 10_000 - extra);
}

/// The delay at a quantile follows the latencies: hedges come at about the
/// p90 of what the upstream takes now, not of what it took minutes ago.
#[test]
fn the_delay_at_a_quantile_follows_a_changing_latency() {
    let clock = ManualClock::new();
    let upstream = Upstream::new(&clock);
    let layer = HedgeLayer::builder(Delay::Quantile {
        quantile: 0.9,
        min_samples: 50,
        window: Duration::from_secs(60),
        until_known: MS * 5_000,
    })
    .budget(1.0, 1)
    .clock(clock.clone())
    .build()
    .unwrap();
    // Calls take 1..=100 ms in turn; once `slow`, ten times as long.
    let slow = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut service = layer.layer(upstream.service(
        {
            let slow = Arc::clone(&slow);
            move |n| MS * ((n % 100) + 1) * if slow.load(Ordering::SeqCst) { 10 } else { 1 }
        },
        |_| false,
    ));
    // How many extra attempts `requests` requests made.
    let mut run = |requests: u32| {
        let before = upstream.calls();
        for request in 0..requests {
            let answer = clock.block_on(async { service.ready().await?.call(request).await });
            assert!(answer.is_ok());
        }
        upstream.calls() - before - requests
    };
    assert_eq!(run(50), 0, "5 s until 50 latencies are known");
    run(2_000);
    // Hedged at about 90 ms: about a tenth of the requests.
    let extra = run(500);
    assert!(
        (25..=90).contains(&extra),
        "{extra} hedges in 500 at 1..=100 ms"
    );
    // Ten times slower: right after, the old p90 hedges most of them...
    slow.store(true, Ordering::SeqCst);
    let extra = run(60);
    assert!(extra >= 40, "{extra} hedges in 60 just after the change");
    // ...and once the old latencies have left the windows, a tenth again.
    run(400);
    let extra = run(300);
    assert!(
        (15..=60).contains(&extra),
        "{extra} hedges in 300 at 10..=1000 ms"
    );
}

/// A failure waits for the other attempts by default (the hedge may still
/// succeed); with fail-fast it answers at once.
#[test]
fn a_failure_waits_for_the_other_attempts_unless_fail_fast() {
    for fail_fast in [false, true] {
        let clock = ManualClock::new();
        let upstream = Upstream::new(&clock);
        let builder = HedgeLayer::builder(Delay::Fixed(MS * 10)).clock(clock.clone());
        let layer = if fail_fast {
            builder.fail_fast()
        } else {
            builder
        }
        .build()
        .unwrap();
        // The first fails at 30 ms; the hedge (sent at 10 ms) succeeds at 50.
        let mut service =
            layer.layer(upstream.service(|n| if n == 0 { MS * 30 } else { MS * 40 }, |n| n == 0));
        let mut call = task::spawn(service.call(5));
        assert_pending!(call.poll());
        clock.advance(MS * 10);
        assert_pending!(call.poll());
        clock.advance(MS * 20);
        match (fail_fast, call.poll()) {
            (true, Poll::Ready(Err(err))) => assert_eq!(err.to_string(), "failed"),
            (false, Poll::Pending) => {
                clock.advance(MS * 20);
                assert!(matches!(call.poll(), Poll::Ready(Ok(1005))));
            }
            (_, other) => panic!("fail_fast {fail_fast}: {other:?}"),
        }
    }
}

/// An attempt overtaken by its hedge counts, at the time it has taken so
/// far, among the latencies the delay's quantile is read from: the delay
/// stays above what the hedges take.
#[test]
fn an_overtaken_attempt_counts_as_slow_for_the_quantile() {
    let clock = ManualClock::new();
    let upstream = Upstream::new(&clock);
    let layer = HedgeLayer::builder(Delay::Quantile {
        quantile: 0.9,
        min_samples: 2,
        window: Duration::from_secs(60),
        until_known: MS * 50,
    })
    .budget(1.0, 10)
    .clock(clock.clone())
    .build()
    .unwrap();
    // First attempts take a second; hedges 10 ms.
    let mut service =
        layer.layer(upstream.service(|n| if n % 2 == 0 { MS * 1_000 } else { MS * 10 }, |_| false));
    let mut hedged_at = Vec::new();
    for request in 0..3 {
        let start = clock.now();
        clock
            .block_on(async { service.ready().await?.call(request).await })
            .unwrap();
        let started = upstream.started.lock().unwrap().clone();
        hedged_at.push(started[started.len() - 1] - start);
    }
    // The first at 50 ms (unknown yet); then at the p90 of 10 ms and 60 ms
    // (the first attempt overtaken at 60 ms); then of 10, 60, 10 and 70.
    assert_eq!(hedged_at[0], MS * 50);
    assert!(hedged_at[1] >= MS * 60, "{hedged_at:?}");
    assert!(hedged_at[2] >= MS * 70, "{hedged_at:?}");
}

/// A hedge that fails while the first attempt still runs waits for it.
#[test]
fn a_failed_hedge_waits_for_the_first_attempt_still_running() {
    let clock = ManualClock::new();
    let upstream = Upstream::new(&clock);
    // The first succeeds at 100 ms; the hedge, sent at 10 ms, fails at 20.
    let mut service = fixed(10, &clock)
        .layer(upstream.service(|n| if n == 0 { MS * 100 } else { MS * 10 }, |n| n == 1));
    let mut call = task::spawn(service.call(5));
    for at in [0, 10, 20] {
        clock.set(Instant::ZERO + MS * at);
        assert_pending!(call.poll(), "at {at} ms");
    }
    clock.set(Instant::ZERO + MS * 100);
    assert!(matches!(call.poll(), Poll::Ready(Ok(5))));
}

/// With the first attempt already failed, a failed extra attempt still
/// waits for the extra attempts in flight.
#[test]
fn a_failed_hedge_waits_for_the_other_hedges_after_the_first_failed() {
    let clock = ManualClock::new();
    let upstream = Upstream::new(&clock);
    let layer = HedgeLayer::builder(Delay::Fixed(MS * 10))
        .max_extra(2)
        .clock(clock.clone())
        .build()
        .unwrap();
    // The first fails at 15 ms; the second (sent at 10 ms) at 20 ms, when
    // the third is sent; the third succeeds at 25 ms.
    let took = |n| match n {
        0 => MS * 15,
        1 => MS * 10,
        _ => MS * 5,
    };
    let mut service = layer.layer(upstream.service(took, |n| n < 2));
    let mut call = task::spawn(Box::pin(service.call(5)));
    for at in [0, 10, 15, 20] {
        clock.set(Instant::ZERO + MS * at);
        assert_pending!(call.poll(), "at {at} ms");
    }
    assert_eq!(upstream.calls(), 3);
    assert_eq!(
        format!("{:?}", *call),
        "ResponseFuture { extra_attempts: 2, in_flight: 1, .. }",
        "the third attempt in flight"
    );
    clock.set(Instant::ZERO + MS * 25);
    assert!(matches!(call.poll(), Poll::Ready(Ok(2005))));
}

/// Bad numbers are refused with the field's name.
#[test]
fn bad_hedging_configs_are_refused_by_field() {
    let field =
        |builder: palisade::hedge::HedgeBuilder| builder.build().unwrap_err().field().to_owned();
    assert_eq!(
        field(HedgeLayer::builder(Delay::Fixed(Duration::ZERO))),
        "delay"
    );
    let quantile = |quantile| Delay::Quantile {
        quantile,
        min_samples: 10,
        window: Duration::from_secs(1),
        until_known: MS,
    };
    assert_eq!(field(HedgeLayer::builder(quantile(1.0))), "delay");
    assert_eq!(
        field(HedgeLayer::builder(quantile(0.5)).budget(1.5, 1)),
        "budget"
    );
    assert_eq!(
        field(HedgeLayer::builder(quantile(0.5)).max_extra(17)),
        "max_extra"
    );
    assert_eq!(field(HedgeLayer::builder(quantile(0.0))), "delay");
    // The bounds themselves are accepted.
    assert!(
        HedgeLayer::builder(quantile(0.5))
            .max_extra(16)
            .build()
            .is_ok()
    );
    assert!(HedgeLayer::builder(quantile(1e-9)).build().is_ok());
}

/// The hedge is ready when the service it wraps is, and not before.
#[test]
fn the_hedge_is_ready_when_its_service_is() {
    let (mock, mut handle) = tower_test::mock::pair::<u32, u32>();
    let clock = ManualClock::new();
    let mut service = fixed(10, &clock).layer(mock);
    handle.allow(0);
    let mut ready = task::spawn(service.ready());
    assert_pending!(ready.poll());
    handle.allow(1);
    assert!(ready.is_woken());
    assert!(matches!(ready.poll(), Poll::Ready(Ok(_))));
}

#[test]
fn debug_shows_the_hedge_its_builder_and_its_services() {
    let builder = HedgeLayer::builder(Delay::Fixed(MS * 10)).max_extra(2);
    assert!(
        format!("{builder:?}").starts_with("HedgeBuilder { options: "),
        "{builder:?}"
    );
    let layer = builder.name("reads").build().unwrap();
    let hedge = "Hedge { name: \"reads\", delay: Fixed(10ms), max_extra: 2, fail_fast: false, .. }";
    assert_eq!(
        format!("{layer:?}"),
        format!("HedgeLayer {{ hedge: {hedge} }}")
    );
    assert_eq!(
        format!("{:?}", layer.layer(7u8)),
        format!("Hedge {{ inner: 7, hedge: {hedge} }}")
    );
}

/// How a hedged request ended, by the reference model: the answer of this
/// attempt (0: the first), or a failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ended {
    Answered(u32),
    Failed,
}

/// The reference: attempt `k` starts at `k × delay` while the request is
/// unanswered (at most `max_extra` extra ones) and ends `took[k]` later,
/// failed when `fails[k]`; the first success answers; a failure answers
/// when fail-fast or when nothing else is in flight, and is otherwise
/// kept. `None` when two attempts end at the same instant (the order they
/// are seen in is not specified). Also: how many attempts started.
fn reference(
    delay: u64,
    max_extra: u32,
    fail_fast: bool,
    took: &[u64],
    fails: &[bool],
) -> Option<(Ended, u32)> {
    let mut started: Vec<u64> = vec![0];
    let mut in_flight: Vec<usize> = vec![0];
    loop {
        let next_end = in_flight
            .iter()
            .map(|&k| (started[k] + took[k], k))
            .min()
            .expect("something is in flight");
        let ties = in_flight
            .iter()
            .filter(|&&k| started[k] + took[k] == next_end.0)
            .count();
        if ties > 1 {
            return None;
        }
        let next_hedge = (started.len() as u32 <= max_extra).then(|| started.len() as u64 * delay);
        match next_hedge {
            Some(at) if at < next_end.0 => {
                in_flight.push(started.len());
                started.push(at);
            }
            _ => {
                let (_, k) = next_end;
                in_flight.retain(|&other| other != k);
                let calls = started.len() as u32;
                if !fails[k] {
                    return Some((Ended::Answered(k as u32), calls));
                }
                if fail_fast || in_flight.is_empty() {
                    return Some((Ended::Failed, calls));
                }
            }
        }
    }
}

proptest::proptest! {
    /// Whatever the latencies and failures of its attempts, a hedged
    /// request starts the attempts and returns the answer the reference
    /// says.
    #[test]
    fn hedging_matches_the_reference_model(
        max_extra in 0u32..4,
        fail_fast in proptest::bool::ANY,
        // Odd microseconds against an even delay: no attempt ends exactly
        // when another starts.
        attempts in proptest::collection::vec((0u64..40, proptest::bool::weighted(0.3)), 5),
    ) {
        let delay = 10_000u64;
        let took: Vec<u64> = attempts.iter().map(|(t, _)| t * 2_500 + 1).collect();
        let fails: Vec<bool> = attempts.iter().map(|(_, f)| *f).collect();
        let Some((expected, calls)) = reference(delay, max_extra, fail_fast, &took, &fails) else {
            return Ok(());
        };
        let clock = ManualClock::new();
        let upstream = Upstream::new(&clock);
        let builder = HedgeLayer::builder(Delay::Fixed(Duration::from_micros(delay)))
            .max_extra(max_extra)
            .budget(1.0, 16)
            .clock(clock.clone());
        let layer = if fail_fast { builder.fail_fast() } else { builder }.build().unwrap();
        let (took_by_call, fails_by_call) = (took.clone(), fails.clone());
        let mut service = layer.layer(upstream.service(
            move |n| Duration::from_micros(took_by_call[n as usize]),
            move |n| fails_by_call[n as usize],
        ));
        let answer = clock.block_on(async { service.ready().await?.call(7).await });
        let ended = match answer {
            Ok(value) => Ended::Answered((value - 7) / 1000),
            Err(_) => Ended::Failed,
        };
        proptest::prop_assert_eq!(ended, expected);
        proptest::prop_assert_eq!(upstream.calls(), calls);
    }
}

#[cfg(feature = "http")]
mod http_preset {
    use std::{
        sync::{
            Arc,
            atomic::{AtomicU32, Ordering},
        },
        time::Duration,
    };

    use palisade::{
        clock::{Clock, ManualClock},
        hedge::{Delay, HedgeLayer, http::Idempotent},
        retry::body::{ReplayBody, ReplayRequests},
    };
    use tower::{BoxError, Layer, Service, ServiceExt, service_fn};

    type Request = ::http::Request<ReplayBody<String>>;

    /// A slow GET is hedged, with its body; a slow POST is not.
    #[test]
    fn only_requests_that_may_be_sent_twice_are_hedged() {
        let clock = ManualClock::new();
        let calls = Arc::new(AtomicU32::new(0));
        let layer = HedgeLayer::builder(Delay::Fixed(Duration::from_millis(20)))
            .clone_request(Idempotent::new(ReplayRequests))
            .clock(clock.clone())
            .build()
            .unwrap();
        let mut service = layer.layer(service_fn({
            let (clock, calls) = (clock.clone(), Arc::clone(&calls));
            move |request: Request| {
                calls.fetch_add(1, Ordering::SeqCst);
                let sleep = clock.sleep(Duration::from_millis(100));
                let method = request.method().clone();
                async move {
                    sleep.await;
                    Ok::<_, BoxError>(method)
                }
            }
        }));
        let mut send = |request: Request| {
            calls.store(0, Ordering::SeqCst);
            let answer = clock.block_on(async { service.ready().await?.call(request).await });
            (answer.unwrap(), calls.load(Ordering::SeqCst))
        };
        let body = || ReplayBody::whole("{}".into());
        let get = ::http::Request::get("/items").body(body()).unwrap();
        assert_eq!(send(get), (::http::Method::GET, 2));
        let post = ::http::Request::post("/orders").body(body()).unwrap();
        assert_eq!(send(post), (::http::Method::POST, 1));
        let keyed = ::http::Request::post("/orders")
            .header("idempotency-key", "abc")
            .body(body())
            .unwrap();
        assert_eq!(send(keyed), (::http::Method::POST, 2));
    }
}

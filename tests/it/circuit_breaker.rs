//! The circuit breaker, driven by a `ManualClock`: each model, each
//! transition, exact thresholds, the modes, the handle, and the events.

use std::{
    future::Future,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use palisade::{
    circuit_breaker::{
        CircuitBreakerBuilder, CircuitBreakerLayer, CircuitState, HalfOpen, OpenDuration,
    },
    classify::{Classify, ErrorsAsFailures, Outcome, Pushback},
    clock::{Clock, ManualClock},
    error::CircuitOpen,
    observe::EventKind,
    random::FastRandom,
};
use tokio_test::{assert_pending, assert_ready, task};
use tower::{BoxError, Layer, Service, ServiceExt, service_fn};

const NS: Duration = Duration::from_nanos(1);
const SEC: Duration = Duration::from_secs(1);

/// What the wrapped service does with a request.
#[derive(Clone, Copy, Debug)]
enum Call {
    Ok,
    Fail,
    /// Finish after this long on the clock, failing or not.
    Take(Duration, bool),
    /// Never finish.
    Hang,
}

type Reply<E = &'static str> = Result<&'static str, E>;

/// The wrapped service: counts the calls that reach it.
fn upstream(
    clock: &ManualClock,
    reached: &Arc<AtomicUsize>,
) -> impl Service<
    Call,
    Response = &'static str,
    Error = &'static str,
    Future = impl Future<Output = Reply> + Send,
> + Clone {
    let (clock, reached) = (clock.clone(), Arc::clone(reached));
    service_fn(move |call: Call| {
        reached.fetch_add(1, Ordering::SeqCst);
        let clock = clock.clone();
        async move {
            match call {
                Call::Ok => Ok("ok"),
                Call::Fail => Err("fail"),
                Call::Take(duration, fail) => {
                    clock.sleep(duration).await;
                    if fail { Err("fail") } else { Ok("ok") }
                }
                Call::Hang => std::future::pending().await,
            }
        }
    })
}

/// A breaker on a manual clock with a deterministic random source, its events
/// recorded as `(from, to, reason)` for transitions and names for the rest.
struct Rig {
    clock: ManualClock,
    reached: Arc<AtomicUsize>,
    transitions: Arc<Mutex<Vec<(String, String, String)>>>,
}

impl Rig {
    fn new() -> Rig {
        Rig {
            clock: ManualClock::new(),
            reached: Arc::new(AtomicUsize::new(0)),
            transitions: Arc::new(Mutex::new(Vec::new())),
        }
    }

    fn builder(&self) -> CircuitBreakerBuilder<ErrorsAsFailures, ManualClock, FastRandom> {
        let transitions = Arc::clone(&self.transitions);
        CircuitBreakerLayer::builder()
            .clock(self.clock.clone())
            .random(FastRandom::seeded(1))
            .on_event(move |event| {
                if let EventKind::Transition { from, to, reason } = event.kind {
                    transitions
                        .lock()
                        .unwrap()
                        .push((from.into(), to.into(), reason.into()));
                }
            })
    }

    fn transitions(&self) -> Vec<(String, String, String)> {
        self.transitions.lock().unwrap().clone()
    }

    fn reached(&self) -> usize {
        self.reached.load(Ordering::SeqCst)
    }

    /// A call through `service` that takes `duration`, the clock moved on
    /// while it runs.
    fn taking<S>(&self, service: &mut S, duration: Duration, fail: bool) -> Reply<BoxError>
    where
        S: Service<Call, Response = &'static str, Error = BoxError>,
    {
        let mut call = task::spawn(service.call(Call::Take(duration, fail)));
        assert_pending!(call.poll());
        self.clock.advance(duration);
        assert_ready!(call.poll())
    }
}

fn t(from: &str, to: &str, reason: &str) -> (String, String, String) {
    (from.into(), to.into(), reason.into())
}

async fn send<S>(service: &mut S, call: Call) -> Result<&'static str, BoxError>
where
    S: Service<Call, Response = &'static str, Error = BoxError>,
{
    service.ready().await?.call(call).await
}

fn open_error(result: Result<&'static str, BoxError>) -> CircuitOpen {
    let err = result.expect_err("the breaker should refuse the call");
    err.downcast_ref::<CircuitOpen>()
        .unwrap_or_else(|| panic!("not a CircuitOpen: {err}"))
        .clone()
}

#[tokio::test]
async fn consecutive_failures_open_at_exactly_k_and_a_success_resets() {
    let rig = Rig::new();
    let layer = rig.builder().consecutive_failures(3).build().unwrap();
    let handle = layer.handle();
    let mut service = layer.layer(upstream(&rig.clock, &rig.reached));

    send(&mut service, Call::Fail).await.unwrap_err();
    send(&mut service, Call::Fail).await.unwrap_err();
    assert_eq!(handle.metrics().consecutive_failures, 2);
    send(&mut service, Call::Ok).await.unwrap();
    assert_eq!(handle.metrics().consecutive_failures, 0);
    send(&mut service, Call::Fail).await.unwrap_err();
    send(&mut service, Call::Fail).await.unwrap_err();
    assert_eq!(handle.state(), CircuitState::Closed);
    send(&mut service, Call::Fail).await.unwrap_err();
    assert_eq!(
        handle.state(),
        CircuitState::Open,
        "opens on the 3rd failure in a row"
    );
    assert_eq!(
        rig.transitions(),
        [t("closed", "open", "consecutive_failures")]
    );
}

#[tokio::test]
async fn failure_rate_opens_on_the_call_that_reaches_it_never_below_minimum_calls() {
    let rig = Rig::new();
    let layer = rig
        .builder()
        .count_window(10)
        .failure_rate(0.5)
        .minimum_calls(10)
        .build()
        .unwrap();
    let handle = layer.handle();
    let mut service = layer.layer(upstream(&rig.clock, &rig.reached));

    // Nine failures: a 100 % failure rate, but below the minimum of 10 calls.
    for _ in 0..9 {
        send(&mut service, Call::Fail).await.unwrap_err();
    }
    assert_eq!(handle.state(), CircuitState::Closed);
    assert_eq!(handle.metrics().failure_rate, Some(1.0));
    // The 10th call is a success, and it is the one that reaches the minimum.
    send(&mut service, Call::Ok).await.unwrap();
    assert_eq!(handle.state(), CircuitState::Open);
    assert_eq!(rig.transitions(), [t("closed", "open", "failure_rate")]);
}

#[tokio::test]
async fn failure_rate_exactly_at_the_threshold_opens_one_below_does_not() {
    let rig = Rig::new();
    let layer = rig
        .builder()
        .count_window(10)
        .failure_rate(0.5)
        .minimum_calls(10)
        .build()
        .unwrap();
    let handle = layer.handle();
    let mut service = layer.layer(upstream(&rig.clock, &rig.reached));
    for _ in 0..6 {
        send(&mut service, Call::Ok).await.unwrap();
    }
    for _ in 0..4 {
        send(&mut service, Call::Fail).await.unwrap_err();
    }
    assert_eq!(handle.metrics().failure_rate, Some(0.4));
    assert_eq!(handle.state(), CircuitState::Closed);
    // The window slides: the oldest success leaves, a failure enters: 5/10.
    send(&mut service, Call::Fail).await.unwrap_err();
    assert_eq!(handle.state(), CircuitState::Open);
}

#[tokio::test]
async fn the_count_window_forgets_the_oldest_call() {
    let rig = Rig::new();
    let layer = rig
        .builder()
        .count_window(4)
        .failure_rate(0.75)
        .minimum_calls(4)
        .build()
        .unwrap();
    let handle = layer.handle();
    let mut service = layer.layer(upstream(&rig.clock, &rig.reached));
    for call in [Call::Fail, Call::Fail, Call::Ok, Call::Ok, Call::Ok] {
        let _ = send(&mut service, call).await;
    }
    // Window: F O O O.
    let metrics = handle.metrics();
    assert_eq!((metrics.calls, metrics.failures), (4, 1));
    for _ in 0..2 {
        send(&mut service, Call::Fail).await.unwrap_err();
    }
    // Window: O O F F = 50 %.
    assert_eq!(handle.state(), CircuitState::Closed);
    send(&mut service, Call::Fail).await.unwrap_err();
    // O F F F = 75 %.
    assert_eq!(handle.state(), CircuitState::Open);
}

#[tokio::test]
async fn the_time_window_ages_out_whole_buckets() {
    let rig = Rig::new();
    let layer = rig
        .builder()
        .time_window(Duration::from_secs(10), 5)
        .failure_rate(0.5)
        .minimum_calls(4)
        .build()
        .unwrap();
    let handle = layer.handle();
    let mut service = layer.layer(upstream(&rig.clock, &rig.reached));

    send(&mut service, Call::Fail).await.unwrap_err(); // t = 0 s, bucket [0, 2)
    send(&mut service, Call::Fail).await.unwrap_err();
    rig.clock.advance(Duration::from_secs(4));
    send(&mut service, Call::Ok).await.unwrap(); // bucket [4, 6)
    assert_eq!(handle.metrics().calls, 3);
    // At 10 s the window is [2, 12): the first bucket is gone.
    rig.clock.advance(Duration::from_secs(6));
    let metrics = handle.metrics();
    assert_eq!((metrics.calls, metrics.failures), (1, 0));
    // 1 ns before 10 s, it was still there.
    let rig2 = Rig::new();
    let layer2 = rig2
        .builder()
        .time_window(Duration::from_secs(10), 5)
        .minimum_calls(1)
        .failure_rate(1.0)
        .build()
        .unwrap();
    let mut service2 = layer2.layer(upstream(&rig2.clock, &rig2.reached));
    send(&mut service2, Call::Ok).await.unwrap();
    rig2.clock.advance(Duration::from_secs(10) - NS);
    assert_eq!(layer2.handle().metrics().calls, 1);
    rig2.clock.advance(NS);
    assert_eq!(layer2.handle().metrics().calls, 0);

    // Failures in the live buckets still open it.
    for _ in 0..3 {
        send(&mut service, Call::Fail).await.unwrap_err();
    }
    assert_eq!(handle.state(), CircuitState::Open);
}

#[tokio::test]
async fn after_a_long_idle_the_time_window_is_empty() {
    let rig = Rig::new();
    let layer = rig
        .builder()
        .time_window(Duration::from_secs(10), 10)
        .failure_rate(0.5)
        .minimum_calls(3)
        .build()
        .unwrap();
    let handle = layer.handle();
    let mut service = layer.layer(upstream(&rig.clock, &rig.reached));
    for _ in 0..2 {
        send(&mut service, Call::Fail).await.unwrap_err();
    }
    rig.clock.advance(Duration::from_secs(3600));
    assert_eq!(handle.metrics().calls, 0);
    send(&mut service, Call::Fail).await.unwrap_err();
    assert_eq!(
        handle.state(),
        CircuitState::Closed,
        "the old failures are gone"
    );
}

#[tokio::test]
async fn slow_calls_open_the_breaker_by_their_rate() {
    let rig = Rig::new();
    let layer = rig
        .builder()
        .count_window(4)
        .minimum_calls(2)
        .slow_calls(SEC, 1.0)
        .build()
        .unwrap();
    let handle = layer.handle();
    let mut service = layer.layer(upstream(&rig.clock, &rig.reached));

    // One call 1 ns short of the threshold: not slow.
    let mut fast = task::spawn(service.call(Call::Take(SEC - NS, false)));
    assert_pending!(fast.poll());
    rig.clock.advance(SEC - NS);
    assert_eq!(assert_ready!(fast.poll()).unwrap(), "ok");
    assert_eq!(handle.metrics().slow_calls, 0);

    // Two calls of exactly the threshold: slow, and successful.
    for _ in 0..2 {
        let mut slow = task::spawn(service.call(Call::Take(SEC, false)));
        assert_pending!(slow.poll());
        rig.clock.advance(SEC);
        assert_ready!(slow.poll()).unwrap();
    }
    let metrics = handle.metrics();
    assert_eq!(
        (metrics.calls, metrics.slow_calls, metrics.failures),
        (3, 2, 0)
    );
    assert_eq!(
        handle.state(),
        CircuitState::Closed,
        "2 of 3 is below 100 %"
    );
    let mut service = service; // a fourth, slow: the fast one is still in the window
    let mut slow = task::spawn(service.call(Call::Take(SEC * 2, false)));
    assert_pending!(slow.poll());
    rig.clock.advance(SEC * 2);
    assert_ready!(slow.poll()).unwrap();
    let mut slow = task::spawn(service.call(Call::Take(SEC * 2, false)));
    assert_pending!(slow.poll());
    rig.clock.advance(SEC * 2);
    assert_ready!(slow.poll()).unwrap();
    // Window of 4: the fast call has left; all four are slow.
    assert_eq!(handle.state(), CircuitState::Open);
    assert_eq!(rig.transitions(), [t("closed", "open", "slow_call_rate")]);
}

#[tokio::test]
async fn ignored_calls_count_for_nothing() {
    let rig = Rig::new();
    let classifier = |result: &Reply| match result {
        Ok(_) => Outcome::Success,
        Err(_) => Outcome::Ignored,
    };
    let layer = rig
        .builder()
        .classifier(classifier)
        .count_window(5)
        .minimum_calls(1)
        .failure_rate(0.1)
        .build()
        .unwrap();
    let handle = layer.handle();
    let mut service = layer.layer(upstream(&rig.clock, &rig.reached));
    for _ in 0..20 {
        send(&mut service, Call::Fail).await.unwrap_err();
    }
    assert_eq!(handle.metrics().calls, 0);
    assert_eq!(handle.state(), CircuitState::Closed);
}

#[tokio::test]
async fn open_refuses_without_calling_the_service_and_says_how_long() {
    let rig = Rig::new();
    let layer = rig
        .builder()
        .name("payments")
        .consecutive_failures(1)
        .open_duration(OpenDuration::fixed(Duration::from_secs(30)))
        .build()
        .unwrap();
    let handle = layer.handle();
    let mut service = layer.layer(upstream(&rig.clock, &rig.reached));
    send(&mut service, Call::Fail).await.unwrap_err();
    assert_eq!(rig.reached(), 1);

    rig.clock.advance(Duration::from_secs(10));
    let open = open_error(send(&mut service, Call::Ok).await);
    assert_eq!(open.name(), "payments");
    assert_eq!(open.retry_after(), Some(Duration::from_secs(20)));
    assert_eq!(rig.reached(), 1, "the service was not called");

    // Still open 1 ns before the wait is over, with 1 ns to go.
    rig.clock.advance(Duration::from_secs(20) - NS);
    assert_eq!(handle.state(), CircuitState::Open);
    let open = open_error(send(&mut service, Call::Ok).await);
    assert_eq!(open.retry_after(), Some(NS));
    assert_eq!(rig.reached(), 1);

    rig.clock.advance(NS);
    assert_eq!(handle.state(), CircuitState::HalfOpen);
    assert_eq!(
        rig.transitions(),
        [
            t("closed", "open", "consecutive_failures"),
            t("open", "half_open", "open_duration_elapsed")
        ]
    );
}

#[tokio::test]
async fn the_next_call_after_the_wait_moves_to_half_open_without_a_query() {
    let rig = Rig::new();
    let layer = rig.builder().consecutive_failures(1).build().unwrap();
    let handle = layer.handle();
    let mut service = layer.layer(upstream(&rig.clock, &rig.reached));
    send(&mut service, Call::Fail).await.unwrap_err();
    rig.clock.advance(Duration::from_secs(30));
    send(&mut service, Call::Ok).await.unwrap(); // the probe
    assert_eq!(handle.metrics().state, CircuitState::HalfOpen);
    assert_eq!(rig.reached(), 2);
}

/// Opens the breaker with one failure and waits out the open duration.
async fn half_open<S>(rig: &Rig, service: &mut S, wait: Duration)
where
    S: Service<Call, Response = &'static str, Error = BoxError>,
{
    send(service, Call::Fail).await.unwrap_err();
    rig.clock.advance(wait);
}

#[tokio::test]
async fn half_open_admits_at_most_max_probes_at_once() {
    let rig = Rig::new();
    let layer = rig
        .builder()
        .consecutive_failures(1)
        .half_open(HalfOpen::new().max_probes(2).probes(2))
        .build()
        .unwrap();
    let handle = layer.handle();
    let mut service = layer.layer(upstream(&rig.clock, &rig.reached));
    half_open(&rig, &mut service, Duration::from_secs(30)).await;

    let mut first = task::spawn(service.call(Call::Take(SEC, false)));
    let mut second = task::spawn(service.call(Call::Take(SEC, false)));
    assert_pending!(first.poll());
    assert_pending!(second.poll());
    assert_eq!(handle.metrics().probes_in_flight, 2);
    let third = open_error(send(&mut service, Call::Ok).await);
    assert_eq!(
        third.retry_after(),
        None,
        "no known time when probe slots are all taken"
    );
    assert_eq!(rig.reached(), 3);

    rig.clock.advance(SEC);
    assert_ready!(first.poll()).unwrap();
    assert_eq!(handle.state(), CircuitState::HalfOpen);
    assert_ready!(second.poll()).unwrap();
    assert_eq!(handle.state(), CircuitState::Closed);
    assert_eq!(
        rig.transitions().last().unwrap(),
        &t("half_open", "closed", "probes_succeeded")
    );
}

#[tokio::test]
async fn a_failed_probe_reopens_and_the_open_duration_grows_until_closed() {
    let rig = Rig::new();
    let layer = rig
        .builder()
        .consecutive_failures(1)
        .open_duration(OpenDuration::exponential(SEC * 5, 2.0, SEC * 15))
        .half_open(HalfOpen::new().probes(1))
        .build()
        .unwrap();
    let handle = layer.handle();
    let mut service = layer.layer(upstream(&rig.clock, &rig.reached));

    send(&mut service, Call::Fail).await.unwrap_err();
    // 5 s, then 10 s, then capped at 15 s.
    for wait in [5, 10, 15, 15] {
        let open = open_error(send(&mut service, Call::Ok).await);
        assert_eq!(open.retry_after(), Some(SEC * wait));
        rig.clock.advance(SEC * wait);
        send(&mut service, Call::Fail).await.unwrap_err(); // the probe fails
        assert_eq!(handle.state(), CircuitState::Open);
    }
    rig.clock.advance(SEC * 15);
    send(&mut service, Call::Ok).await.unwrap();
    assert_eq!(handle.state(), CircuitState::Closed);
    // Closed: the next open is back to 5 s.
    send(&mut service, Call::Fail).await.unwrap_err();
    assert_eq!(
        open_error(send(&mut service, Call::Ok).await).retry_after(),
        Some(SEC * 5)
    );
    assert_eq!(
        rig.transitions()
            .iter()
            .filter(|(_, _, reason)| reason == "probes_failed")
            .count(),
        4
    );
}

#[tokio::test]
async fn a_success_rate_over_the_probes_decides() {
    let rig = Rig::new();
    let layer = rig
        .builder()
        .consecutive_failures(1)
        .half_open(HalfOpen::new().max_probes(1).probes(4).success_rate(0.75))
        .build()
        .unwrap();
    let handle = layer.handle();
    let mut service = layer.layer(upstream(&rig.clock, &rig.reached));
    half_open(&rig, &mut service, Duration::from_secs(30)).await;
    // One failure is allowed out of four; three successes close.
    send(&mut service, Call::Fail).await.unwrap_err();
    assert_eq!(handle.state(), CircuitState::HalfOpen);
    send(&mut service, Call::Ok).await.unwrap();
    send(&mut service, Call::Ok).await.unwrap();
    assert_eq!(handle.state(), CircuitState::HalfOpen);
    send(&mut service, Call::Ok).await.unwrap();
    assert_eq!(handle.state(), CircuitState::Closed);

    // A second failure makes closing impossible: re-open at once.
    half_open(&rig, &mut service, Duration::from_secs(30)).await;
    send(&mut service, Call::Fail).await.unwrap_err();
    send(&mut service, Call::Fail).await.unwrap_err();
    assert_eq!(handle.state(), CircuitState::Open);
}

#[tokio::test]
async fn a_probe_that_outlives_its_timeout_fails_and_frees_its_slot() {
    let rig = Rig::new();
    let layer = rig
        .builder()
        .consecutive_failures(1)
        .half_open(HalfOpen::new().timeout(SEC * 5))
        .build()
        .unwrap();
    let handle = layer.handle();
    let mut service = layer.layer(upstream(&rig.clock, &rig.reached));
    half_open(&rig, &mut service, Duration::from_secs(30)).await;

    let mut hung = task::spawn(service.call(Call::Hang));
    assert_pending!(hung.poll());
    rig.clock.advance(SEC * 5 - NS);
    assert_eq!(handle.state(), CircuitState::HalfOpen);
    assert_eq!(handle.metrics().probes_in_flight, 1);
    rig.clock.advance(NS);
    assert_eq!(
        handle.state(),
        CircuitState::Open,
        "the timed-out probe counts as a failure"
    );
    assert_eq!(handle.metrics().probes_in_flight, 0);
    drop(hung); // its late end changes nothing
    assert_eq!(handle.state(), CircuitState::Open);
}

#[tokio::test]
async fn a_dropped_probe_frees_its_slot_and_counts_for_nothing() {
    let rig = Rig::new();
    let layer = rig
        .builder()
        .consecutive_failures(1)
        .half_open(HalfOpen::new().probes(1))
        .build()
        .unwrap();
    let handle = layer.handle();
    let mut service = layer.layer(upstream(&rig.clock, &rig.reached));
    half_open(&rig, &mut service, Duration::from_secs(30)).await;

    let mut cancelled = task::spawn(service.call(Call::Hang));
    assert_pending!(cancelled.poll());
    assert!(
        open_error(send(&mut service, Call::Ok).await)
            .retry_after()
            .is_none()
    );
    drop(cancelled);
    assert_eq!(handle.metrics().probes_in_flight, 0);
    assert_eq!(handle.state(), CircuitState::HalfOpen);
    send(&mut service, Call::Ok).await.unwrap();
    assert_eq!(handle.state(), CircuitState::Closed);
}

#[tokio::test]
async fn the_classifier_can_say_how_long_to_open_capped_by_config() {
    let rig = Rig::new();
    let classifier = Pushback::new(ErrorsAsFailures, |result: &Reply| {
        result.err().map(|_| Duration::from_secs(600))
    });
    let layer = rig
        .builder()
        .classifier(classifier)
        .count_window(100)
        .minimum_calls(50)
        .max_pushback(Duration::from_secs(120))
        .build()
        .unwrap();
    let handle = layer.handle();
    let mut service = layer.layer(upstream(&rig.clock, &rig.reached));
    send(&mut service, Call::Ok).await.unwrap();
    send(&mut service, Call::Fail).await.unwrap_err();
    assert_eq!(
        handle.state(),
        CircuitState::Open,
        "opened by the pushback, below minimum calls"
    );
    let open = open_error(send(&mut service, Call::Ok).await);
    assert_eq!(open.retry_after(), Some(Duration::from_secs(120)));
    assert_eq!(rig.transitions(), [t("closed", "open", "pushback")]);
}

#[tokio::test]
async fn a_failed_probe_with_a_pushback_reopens_at_once_for_the_pushback() {
    let rig = Rig::new();
    let pushing_back = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let classifier = Pushback::new(ErrorsAsFailures, {
        let pushing_back = Arc::clone(&pushing_back);
        move |result: &Reply| {
            (result.is_err() && pushing_back.load(Ordering::SeqCst)).then_some(SEC * 40)
        }
    });
    let layer = rig
        .builder()
        .classifier(classifier)
        .consecutive_failures(1)
        // One failed probe of four is allowed: an ordinary failure would
        // leave the breaker half-open.
        .half_open(HalfOpen::new().max_probes(1).probes(4).success_rate(0.75))
        .max_pushback(SEC * 120)
        .build()
        .unwrap();
    let handle = layer.handle();
    let mut service = layer.layer(upstream(&rig.clock, &rig.reached));
    half_open(&rig, &mut service, Duration::from_secs(30)).await;
    pushing_back.store(true, Ordering::SeqCst);
    send(&mut service, Call::Fail).await.unwrap_err(); // the probe, with a Retry-After
    assert_eq!(handle.state(), CircuitState::Open);
    let open = open_error(send(&mut service, Call::Ok).await);
    assert_eq!(
        open.retry_after(),
        Some(SEC * 40),
        "the pushback's, not the 30 s"
    );
    assert_eq!(
        rig.transitions().last().unwrap(),
        &t("half_open", "open", "pushback")
    );
}

/// A breaker with no listener: with default features nothing observes it,
/// and it takes the paths that read no clock and write nothing when the
/// service is healthy.
fn unobserved(clock: &ManualClock) -> CircuitBreakerBuilder<ErrorsAsFailures, ManualClock> {
    CircuitBreakerLayer::builder().clock(clock.clone())
}

#[tokio::test]
async fn a_slow_success_in_a_full_healthy_window_ages_out() {
    let (clock, reached) = (ManualClock::new(), Arc::new(AtomicUsize::new(0)));
    let layer = unobserved(&clock)
        .count_window(4)
        .minimum_calls(4)
        .slow_calls(SEC, 0.9)
        .build()
        .unwrap();
    let handle = layer.handle();
    let mut service = layer.layer(upstream(&clock, &reached));
    let empty = handle.metrics();
    assert_eq!(
        (empty.failure_rate, empty.slow_call_rate),
        (None, None),
        "no calls: no rates"
    );
    for _ in 0..4 {
        send(&mut service, Call::Ok).await.unwrap();
    }
    // A full window of fast successes; then a slow one.
    service.ready().await.unwrap();
    let mut slow = task::spawn(service.call(Call::Take(SEC * 2, false)));
    assert_pending!(slow.poll());
    clock.advance(SEC * 2);
    assert_ready!(slow.poll()).unwrap();
    assert_eq!(handle.metrics().slow_call_rate, Some(0.25));
    // Four fast successes later, it has left the window.
    for _ in 0..4 {
        send(&mut service, Call::Ok).await.unwrap();
    }
    let metrics = handle.metrics();
    assert_eq!((metrics.calls, metrics.slow_calls), (4, 0));
    assert_eq!(metrics.slow_call_rate, Some(0.0));
}

#[tokio::test]
async fn an_unobserved_time_window_breaker_counts_and_opens() {
    let (clock, reached) = (ManualClock::new(), Arc::new(AtomicUsize::new(0)));
    let layer = unobserved(&clock)
        .time_window(SEC * 10, 10)
        .minimum_calls(4)
        .failure_rate(0.5)
        .build()
        .unwrap();
    let handle = layer.handle();
    let mut service = layer.layer(upstream(&clock, &reached));
    // A minute in: a call placed at the wrong time would be out of the
    // window at once.
    clock.advance(60 * SEC);
    send(&mut service, Call::Ok).await.unwrap();
    clock.advance(SEC);
    send(&mut service, Call::Fail).await.unwrap_err();
    send(&mut service, Call::Ok).await.unwrap();
    assert_eq!(handle.state(), CircuitState::Closed);
    assert_eq!(handle.metrics().calls, 3);
    send(&mut service, Call::Fail).await.unwrap_err();
    assert_eq!(handle.state(), CircuitState::Open, "2 failures of 4");
}

#[tokio::test]
async fn jitter_spreads_the_open_duration_reproducibly() {
    async fn open_for(seed: u64) -> Duration {
        let rig = Rig::new();
        let layer = rig
            .builder()
            .random(FastRandom::seeded(seed))
            .consecutive_failures(1)
            .open_duration(OpenDuration::fixed(SEC * 10).jitter(0.5))
            .build()
            .unwrap();
        let mut service = layer.layer(upstream(&rig.clock, &rig.reached));
        send(&mut service, Call::Fail).await.unwrap_err();
        open_error(send(&mut service, Call::Ok).await)
            .retry_after()
            .unwrap()
    }
    let mut seen = Vec::new();
    for seed in 0..20 {
        let wait = open_for(seed).await;
        assert!(
            wait >= SEC * 5 && wait < SEC * 15,
            "{wait:?}: within 10 s ± 50 %"
        );
        assert_eq!(open_for(seed).await, wait, "same seed, same wait");
        seen.push(wait);
    }
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 20, "the waits differ across seeds: {seen:?}");
}

#[tokio::test]
async fn forced_open_disabled_metrics_only_close_and_reset() {
    let rig = Rig::new();
    let layer = rig
        .builder()
        .count_window(4)
        .minimum_calls(2)
        .failure_rate(0.5)
        .build()
        .unwrap();
    let handle = layer.handle();
    let mut service = layer.layer(upstream(&rig.clock, &rig.reached));

    handle.force_open();
    let open = open_error(send(&mut service, Call::Ok).await);
    assert_eq!(open.retry_after(), None);
    assert_eq!(rig.reached(), 0);
    rig.clock.advance(Duration::from_secs(3600));
    assert_eq!(
        handle.state(),
        CircuitState::ForcedOpen,
        "time does not end a forced open"
    );

    handle.disable();
    for _ in 0..10 {
        send(&mut service, Call::Fail).await.unwrap_err();
    }
    assert_eq!(handle.metrics().calls, 0, "disabled counts nothing");
    assert_eq!(handle.state(), CircuitState::Disabled);

    handle.metrics_only();
    for _ in 0..10 {
        send(&mut service, Call::Fail).await.unwrap_err();
    }
    let metrics = handle.metrics();
    assert_eq!((metrics.calls, metrics.failure_rate), (4, Some(1.0)));
    assert_eq!(handle.state(), CircuitState::MetricsOnly, "never trips");

    handle.close();
    assert_eq!(handle.metrics().calls, 0, "closing starts a fresh window");
    send(&mut service, Call::Ok).await.unwrap();
    handle.reset();
    assert_eq!(handle.metrics().calls, 0, "reset forgets even while closed");
    assert_eq!(
        rig.transitions(),
        [
            t("closed", "forced_open", "forced"),
            t("forced_open", "disabled", "forced"),
            t("disabled", "metrics_only", "forced"),
            t("metrics_only", "closed", "forced"),
        ]
    );
}

#[tokio::test]
async fn every_service_and_clone_from_one_layer_shares_the_breaker() {
    let rig = Rig::new();
    let layer = rig.builder().consecutive_failures(2).build().unwrap();
    let mut a = layer.layer(upstream(&rig.clock, &rig.reached));
    let mut b = layer.layer(upstream(&rig.clock, &rig.reached));
    let mut a2 = a.clone();
    send(&mut a, Call::Fail).await.unwrap_err();
    send(&mut a2, Call::Fail).await.unwrap_err();
    open_error(send(&mut b, Call::Ok).await);
    assert_eq!(rig.reached(), 2);
    // And a clone of the layer is the same breaker.
    assert_eq!(layer.clone().handle().state(), CircuitState::Open);
}

#[tokio::test]
async fn outcomes_of_calls_from_an_earlier_closed_period_are_not_counted() {
    let rig = Rig::new();
    let layer = rig
        .builder()
        .consecutive_failures(2)
        .half_open(HalfOpen::new().probes(1))
        .build()
        .unwrap();
    let handle = layer.handle();
    let mut service = layer.layer(upstream(&rig.clock, &rig.reached));
    // A slow failure admitted while closed...
    let mut old = task::spawn(service.call(Call::Take(SEC * 60, true)));
    assert_pending!(old.poll());
    send(&mut service, Call::Fail).await.unwrap_err();
    send(&mut service, Call::Fail).await.unwrap_err();
    rig.clock.advance(SEC * 30);
    send(&mut service, Call::Ok).await.unwrap(); // probe closes it
    assert_eq!(handle.state(), CircuitState::Closed);
    // ...ends in the new closed period: not counted.
    rig.clock.advance(SEC * 30);
    assert_ready!(old.poll()).unwrap_err();
    assert_eq!(handle.metrics().consecutive_failures, 0);
}

#[tokio::test]
async fn backpressure_holds_poll_ready_until_the_clock_reaches_half_open() {
    let rig = Rig::new();
    let layer = rig
        .builder()
        .consecutive_failures(1)
        .open_duration(OpenDuration::fixed(SEC * 10))
        .half_open(HalfOpen::new().probes(1))
        .backpressure()
        .build()
        .unwrap();
    let handle = layer.handle();
    let mut service = layer.layer(upstream(&rig.clock, &rig.reached));
    send(&mut service, Call::Fail).await.unwrap_err();

    let mut ready = task::spawn(std::future::poll_fn(|cx| service.poll_ready(cx)));
    assert_pending!(ready.poll());
    rig.clock.advance(SEC * 10 - NS);
    assert!(!ready.is_woken());
    assert_pending!(ready.poll());
    rig.clock.advance(NS);
    assert!(ready.is_woken(), "woken through the clock");
    assert_ready!(ready.poll()).unwrap();
    drop(ready);
    assert_eq!(handle.metrics().probes_in_flight, 1, "the permit is held");
    service.call(Call::Ok).await.unwrap();
    assert_eq!(handle.state(), CircuitState::Closed);
}

#[tokio::test]
async fn backpressure_wakes_waiters_when_forced_open_ends_or_a_probe_slot_frees() {
    let rig = Rig::new();
    let layer = rig
        .builder()
        .consecutive_failures(1)
        .half_open(HalfOpen::new().probes(2))
        .backpressure()
        .build()
        .unwrap();
    let handle = layer.handle();
    let mut service = layer.layer(upstream(&rig.clock, &rig.reached));
    let mut other = service.clone();

    handle.force_open();
    let mut ready = task::spawn(std::future::poll_fn(|cx| service.poll_ready(cx)));
    assert_pending!(ready.poll());
    handle.close();
    assert!(ready.is_woken());
    assert_ready!(ready.poll()).unwrap();
    drop(ready);
    service.call(Call::Fail).await.unwrap_err(); // opens
    rig.clock.advance(Duration::from_secs(30));

    // One probe slot: the first service takes it, the second waits for it.
    std::future::poll_fn(|cx| service.poll_ready(cx))
        .await
        .unwrap();
    let mut waiting = task::spawn(std::future::poll_fn(|cx| other.poll_ready(cx)));
    assert_pending!(waiting.poll());
    let probe = service.call(Call::Ok);
    assert!(!waiting.is_woken());
    probe.await.unwrap();
    assert!(waiting.is_woken(), "a freed probe slot wakes the waiter");
    assert_ready!(waiting.poll()).unwrap();
}

#[tokio::test]
async fn a_reserved_permit_is_released_when_the_service_is_dropped() {
    let rig = Rig::new();
    let layer = rig
        .builder()
        .consecutive_failures(1)
        .backpressure()
        .build()
        .unwrap();
    let handle = layer.handle();
    let mut service = layer.layer(upstream(&rig.clock, &rig.reached));
    send(&mut service, Call::Fail).await.unwrap_err();
    rig.clock.advance(Duration::from_secs(30));
    let mut ready_but_never_called = service.clone();
    std::future::poll_fn(|cx| ready_but_never_called.poll_ready(cx))
        .await
        .unwrap();
    assert_eq!(handle.metrics().probes_in_flight, 1);
    drop(ready_but_never_called);
    assert_eq!(handle.metrics().probes_in_flight, 0);
}

#[tokio::test]
async fn through_tower_test_mock_no_request_reaches_the_service_while_open() {
    let clock = ManualClock::new();
    let layer = CircuitBreakerLayer::builder()
        .consecutive_failures(2)
        .clock(clock.clone())
        .build()
        .unwrap();
    let (mut service, mut mock) = tower_test::mock::spawn_layer::<&str, &str, _>(layer);

    for _ in 0..2 {
        assert_ready!(service.poll_ready()).unwrap();
        let response = service.call("request");
        let (request, send) = mock.next_request().await.unwrap();
        assert_eq!(request, "request");
        send.send_error("boom");
        response.await.unwrap_err();
    }
    for _ in 0..100 {
        assert_ready!(service.poll_ready()).unwrap();
        let err = service.call("request").await.unwrap_err();
        assert!(err.is::<CircuitOpen>());
    }
    assert!(
        mock.poll_request().is_pending(),
        "no request reached the service"
    );
}

#[test]
fn classify_is_consulted_with_the_inner_result() {
    // A classifier sees the inner error type, before it becomes a BoxError.
    fn takes<K: Classify<&'static str, &'static str>>(_: &K) {}
    takes(&|r: &Reply| {
        if r.is_ok() {
            Outcome::Success
        } else {
            Outcome::Failure
        }
    });
}

#[test]
fn invalid_configs_are_refused_naming_the_field() {
    let b = || CircuitBreakerLayer::builder();
    let cases = [
        (b().failure_rate(0.0).build().err(), "failure_rate"),
        (b().failure_rate(f64::NAN).build().err(), "failure_rate"),
        (b().failure_rate(1.01).build().err(), "failure_rate"),
        (
            b().count_window(0).minimum_calls(1).build().err(),
            "count_window",
        ),
        (
            b().count_window(10).minimum_calls(11).build().err(),
            "minimum_calls",
        ),
        (b().minimum_calls(0).build().err(), "minimum_calls"),
        (
            b().consecutive_failures(0).build().err(),
            "consecutive_failures",
        ),
        (
            b().consecutive_failures(3)
                .slow_calls(SEC, 0.5)
                .build()
                .err(),
            "slow_calls",
        ),
        (
            b().slow_calls(Duration::ZERO, 0.5).build().err(),
            "slow_calls.threshold",
        ),
        (b().slow_calls(SEC, 2.0).build().err(), "slow_calls.rate"),
        (
            b().time_window(Duration::ZERO, 1).build().err(),
            "time_window.window",
        ),
        (b().time_window(SEC, 0).build().err(), "time_window.buckets"),
        (
            b().time_window(Duration::from_nanos(5), 6).build().err(),
            "time_window.buckets",
        ),
        (
            b().open_duration(OpenDuration::fixed(Duration::ZERO))
                .build()
                .err(),
            "open_duration.initial",
        ),
        (
            b().open_duration(OpenDuration::exponential(SEC, 0.5, SEC * 2))
                .build()
                .err(),
            "open_duration.multiplier",
        ),
        (
            b().open_duration(OpenDuration::exponential(SEC, f64::INFINITY, SEC * 2))
                .build()
                .err(),
            "open_duration.multiplier",
        ),
        (
            b().open_duration(OpenDuration::exponential(SEC * 2, 2.0, SEC))
                .build()
                .err(),
            "open_duration.max",
        ),
        (
            b().open_duration(OpenDuration::fixed(SEC).jitter(1.0))
                .build()
                .err(),
            "open_duration.jitter",
        ),
        (
            b().max_pushback(Duration::ZERO).build().err(),
            "max_pushback",
        ),
        (
            b().half_open(HalfOpen::new().max_probes(0)).build().err(),
            "half_open.max_probes",
        ),
        (
            b().half_open(HalfOpen::new().probes(0)).build().err(),
            "half_open.probes",
        ),
        (
            b().half_open(HalfOpen::new().success_rate(0.0))
                .build()
                .err(),
            "half_open.success_rate",
        ),
        (
            b().half_open(HalfOpen::new().timeout(Duration::ZERO))
                .build()
                .err(),
            "half_open.timeout",
        ),
    ];
    for (i, (err, field)) in cases.into_iter().enumerate() {
        let err = err.unwrap_or_else(|| panic!("case {i} ({field}) was accepted"));
        assert_eq!(err.field(), field, "case {i}: {err}");
        assert_eq!(err.layer(), "circuit_breaker");
        assert!(err.to_string().contains(field), "{err}");
    }
}

#[test]
fn clock_type_is_the_layers() {
    let clock = ManualClock::new();
    let layer = CircuitBreakerLayer::builder()
        .clock(clock.clone())
        .build()
        .unwrap();
    clock.advance(SEC);
    assert_eq!(layer.handle().state(), CircuitState::Closed);
    assert_eq!(clock.now().since_epoch(), SEC);
}

#[tokio::test]
async fn a_wrapped_call_that_panics_costs_no_probe_slot_and_no_count() {
    let rig = Rig::new();
    // No listener: an unobserved, untimed breaker takes its fastest path.
    let layer = CircuitBreakerLayer::builder()
        .clock(rig.clock.clone())
        .consecutive_failures(2)
        .half_open(HalfOpen::new().probes(1))
        .build()
        .unwrap();
    let handle = layer.handle();
    // The wrapped service's `call` panics for a `Call::Hang` request.
    let inner = upstream(&rig.clock, &rig.reached).map_request(|call: Call| {
        assert!(!matches!(call, Call::Hang), "the wrapped call panics");
        call
    });
    let mut service = layer.layer(inner);
    let panics = |service: &mut _| {
        let call = std::panic::AssertUnwindSafe(|| {
            drop(Service::call(service, Call::Hang));
        });
        assert!(std::panic::catch_unwind(call).is_err());
    };

    // Closed: the panic counts for nothing — not a failure (that would
    // open now), not a success (that would reset the count).
    send(&mut service, Call::Fail).await.unwrap_err();
    service.ready().await.unwrap();
    panics(&mut service);
    assert_eq!(handle.state(), CircuitState::Closed);
    send(&mut service, Call::Fail).await.unwrap_err();
    assert_eq!(handle.state(), CircuitState::Open);

    // Half-open: the panicking probe gives its slot back.
    rig.clock.advance(Duration::from_secs(30));
    service.ready().await.unwrap();
    panics(&mut service);
    assert_eq!(handle.metrics().probes_in_flight, 0);
    assert_eq!(handle.state(), CircuitState::HalfOpen);
    send(&mut service, Call::Ok).await.unwrap();
    assert_eq!(handle.state(), CircuitState::Closed);
}

/// Steering by hand during an incident: open for a given time (then
/// half-open as usual), and half-open now — each with its event and reason.
#[test]
fn a_breaker_opened_by_hand_for_a_while_half_opens_after_it_and_can_be_half_opened_now() {
    let clock = ManualClock::new();
    let transitions = Arc::new(Mutex::new(Vec::new()));
    let layer = CircuitBreakerLayer::builder()
        .clock(clock.clone())
        .half_open(HalfOpen::new().max_probes(1).probes(1))
        .on_event({
            let transitions = Arc::clone(&transitions);
            move |event| {
                if let EventKind::Transition { from, to, reason } = event.kind {
                    transitions.lock().unwrap().push((from, to, reason));
                }
            }
        })
        .build()
        .unwrap();
    let handle = layer.handle();
    let mut service = layer.layer(service_fn(|x: u32| async move { Ok::<_, BoxError>(x) }));

    handle.open_for(Duration::from_secs(30)).unwrap();
    let refused = task::spawn(service.call(1)).poll();
    let std::task::Poll::Ready(Err(err)) = refused else {
        panic!("open by hand refuses")
    };
    let open = err.downcast_ref::<CircuitOpen>().unwrap();
    assert_eq!(open.retry_after(), Some(Duration::from_secs(30)));
    clock.advance(Duration::from_secs(10));
    // Opened again for less: the new time replaces the old.
    handle.open_for(Duration::from_secs(5)).unwrap();
    clock.advance(Duration::from_secs(5));
    assert_eq!(handle.state(), CircuitState::HalfOpen);
    handle.force_open();
    handle.half_open();
    assert_eq!(handle.state(), CircuitState::HalfOpen);
    assert!(matches!(
        task::spawn(service.call(2)).poll(),
        std::task::Poll::Ready(Ok(2))
    ));
    assert_eq!(
        *transitions.lock().unwrap(),
        [
            ("closed", "open", "opened_by_hand"),
            ("open", "open", "opened_by_hand"),
            ("open", "half_open", "open_duration_elapsed"),
            ("half_open", "forced_open", "forced"),
            ("forced_open", "half_open", "half_opened_by_hand"),
            ("half_open", "closed", "probes_succeeded"),
        ]
    );
    let err = handle.open_for(Duration::from_secs(200 * 365 * 24 * 3600));
    assert_eq!(err.unwrap_err().field(), "duration");
}

/// The handle reads how long the window's calls took: overlapping calls
/// each timed on the clock, the sum and the longest leaving the window with
/// their calls. Failures and slow calls count like the rest; ignored calls
/// (dropped) do not.
#[test]
fn the_handle_reads_the_durations_of_the_calls_in_the_window() {
    let rig = Rig::new();
    let layer = rig
        .builder()
        .time_window(Duration::from_secs(10), 10)
        .minimum_calls(100)
        .slow_calls(Duration::from_millis(250), 1.0)
        .build()
        .unwrap();
    let handle = layer.handle();
    let mut service = layer.layer(upstream(&rig.clock, &rig.reached));
    let ms = Duration::from_millis;
    let mut calls: Vec<_> = [(100, false), (300, true), (50, false), (700, false)]
        .into_iter()
        .map(|(millis, fail)| task::spawn(service.call(Call::Take(ms(millis), fail))))
        .collect();
    let mut dropped = task::spawn(service.call(Call::Hang));
    assert_pending!(dropped.poll());
    for call in &mut calls {
        assert_pending!(call.poll());
    }
    // Each call's end is seen when the clock reaches it.
    for _ in 0..14 {
        rig.clock.advance(ms(50));
        calls.retain_mut(|call| call.poll().is_pending());
    }
    assert!(calls.is_empty());
    drop(dropped);
    let metrics = handle.metrics();
    assert_eq!(
        (metrics.calls, metrics.failures, metrics.slow_calls),
        (4, 1, 2)
    );
    let durations = metrics.durations.expect("the rig observes the breaker");
    assert_eq!(
        (durations.count, durations.total, durations.max),
        (4, ms(1150), ms(700))
    );
    assert_eq!(durations.mean(), Some(ms(287) + Duration::from_micros(500)));
    // The calls of the first second age out at 10 s.
    rig.clock.advance(Duration::from_secs(9));
    assert_eq!(handle.metrics().durations.unwrap().max, ms(700));
    rig.clock.advance(Duration::from_secs(1));
    let durations = handle.metrics().durations.unwrap();
    assert_eq!((durations.count, durations.total), (0, Duration::ZERO));
    assert_eq!((durations.max, durations.mean()), (Duration::ZERO, None));
}

/// A breaker nothing observes does not time its calls, so it has no
/// durations to tell (the `metrics` and `tracing` sinks observe every
/// breaker when compiled in); nor has the consecutive-failures model, which
/// keeps no window.
#[tokio::test]
async fn durations_are_kept_only_by_an_observed_breaker_with_a_window() {
    let rig = Rig::new();
    let unobserved = CircuitBreakerLayer::builder().build().unwrap();
    let mut service = unobserved.layer(upstream(&rig.clock, &rig.reached));
    send(&mut service, Call::Ok).await.unwrap();
    let observed_anyway = cfg!(any(feature = "metrics", feature = "tracing"));
    let metrics = unobserved.handle().metrics();
    assert_eq!(metrics.durations.is_some(), observed_anyway);
    assert_eq!(metrics.permitted.is_some(), observed_anyway);

    let consecutive = rig.builder().consecutive_failures(3).build().unwrap();
    assert_eq!(consecutive.handle().metrics().durations, None);
}

#[test]
fn a_state_displays_as_its_name_in_events() {
    let names = [
        (CircuitState::Closed, "closed"),
        (CircuitState::Open, "open"),
        (CircuitState::HalfOpen, "half_open"),
        (CircuitState::ForcedOpen, "forced_open"),
        (CircuitState::Disabled, "disabled"),
        (CircuitState::MetricsOnly, "metrics_only"),
    ];
    for (state, name) in names {
        assert_eq!(state.to_string(), name);
        assert_eq!(state.as_str(), name);
    }
}

#[test]
fn only_an_open_state_rejects_every_call() {
    let open = [
        CircuitState::Closed,
        CircuitState::Open,
        CircuitState::HalfOpen,
        CircuitState::ForcedOpen,
        CircuitState::Disabled,
        CircuitState::MetricsOnly,
    ]
    .map(CircuitState::rejects_all);
    assert_eq!(open, [false, true, false, true, false, false]);
}

#[test]
fn debug_shows_a_call_s_permit_and_stage_or_its_refusal() {
    let clock = ManualClock::new();
    let layer = CircuitBreakerLayer::builder()
        .consecutive_failures(1)
        .open_duration(OpenDuration::fixed(SEC))
        .clock(clock.clone())
        .on_event(|_| {}) // observed: every call is timed
        .build()
        .unwrap();
    let reached = Arc::default();
    let mut service = layer.layer(upstream(&clock, &reached));
    let breaker = r#"Shared { name: "circuit_breaker", state: Closed, .. }"#;
    assert_eq!(
        format!("{layer:?}"),
        format!("CircuitBreakerLayer {{ breaker: {breaker} }}")
    );
    assert_eq!(
        format!("{:?}", layer.handle()),
        r#"CircuitBreakerHandle { name: "circuit_breaker", .. }"#
    );
    let echo = layer.layer(service_fn(
        |call: Call| async move { Ok::<_, BoxError>(call) },
    ));
    let shown = format!("{echo:?}");
    assert!(
        shown.starts_with("CircuitBreaker { inner: ServiceFn"),
        "{shown}"
    );
    assert!(
        shown.ends_with(&format!(", breaker: {breaker}, reserved: None }}")),
        "{shown}"
    );
    let shown = format!("{:?}", CircuitBreakerLayer::builder().count_window(7));
    assert!(
        shown.starts_with("CircuitBreakerBuilder { config: Config { model: CountWindow(7), "),
        "{shown}"
    );
    let mut called = task::spawn(Box::pin(service.call(Call::Take(SEC, true))));
    assert_pending!(called.poll());
    assert_eq!(
        format!("{:?}", *called),
        "ResponseFuture { guard: Guard { permit: Counted { generation: 0 }, stage: Timed }, .. }"
    );
    clock.advance(SEC);
    assert!(assert_ready!(called.poll()).is_err());
    let refused = service.call(Call::Ok);
    assert_eq!(
        format!("{refused:?}"),
        r#"ResponseFuture { rejected: Some(CircuitOpen { name: "circuit_breaker", retry_after: Some(1s) }) }"#
    );
}

#[test]
fn a_slow_probe_that_succeeds_is_a_failed_probe() {
    let rig = Rig::new();
    let layer = rig
        .builder()
        .count_window(10)
        .minimum_calls(10)
        .slow_calls(SEC, 0.5)
        .half_open(HalfOpen::new().probes(1))
        .build()
        .unwrap();
    let handle = layer.handle();
    let mut service = layer.layer(upstream(&rig.clock, &rig.reached));
    handle.half_open();
    let probe = rig.taking(&mut service, SEC, false);
    assert_eq!(probe.unwrap(), "ok", "it succeeded");
    assert_eq!(handle.state(), CircuitState::Open, "but slowly: re-opened");
}

#[test]
fn a_call_longer_than_a_slot_holds_is_kept_as_the_longest() {
    let rig = Rig::new();
    // Observed (the rig listens): durations are kept.
    let layer = rig
        .builder()
        .count_window(2)
        .minimum_calls(2)
        .build()
        .unwrap();
    let handle = layer.handle();
    let mut service = layer.layer(upstream(&rig.clock, &rig.reached));
    let forty_years = Duration::from_secs(40 * 365 * 86_400);
    assert!(rig.taking(&mut service, forty_years, false).is_ok());
    let durations = handle.metrics().durations.unwrap();
    // 2^60 - 1 ns, about 36.5 years.
    let longest = Duration::from_nanos(u64::MAX >> 4);
    assert_eq!((durations.max, durations.total), (longest, longest));
}

#[test]
fn a_slow_failure_leaving_the_window_leaves_its_counts() {
    let rig = Rig::new();
    let layer = rig
        .builder()
        .count_window(3)
        .minimum_calls(3)
        .failure_rate(1.0)
        .slow_calls(SEC, 1.0)
        .build()
        .unwrap();
    let handle = layer.handle();
    let mut service = layer.layer(upstream(&rig.clock, &rig.reached));
    for fail in [true, false] {
        let _ = rig.taking(&mut service, SEC, fail);
    }
    let mut fast = |call| {
        let _ = assert_ready!(task::spawn(service.call(call)).poll());
    };
    fast(Call::Fail);
    let metrics = handle.metrics();
    assert_eq!((metrics.slow_successes, metrics.slow_failures), (1, 1));
    // The slow failure, first in, leaves.
    fast(Call::Ok);
    let metrics = handle.metrics();
    assert_eq!((metrics.failures, metrics.slow_calls), (1, 1));
    assert_eq!((metrics.slow_successes, metrics.slow_failures), (1, 0));
    assert_eq!(handle.state(), CircuitState::Closed);
}

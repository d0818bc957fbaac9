//! The circuit breaker against a reference model: random configurations and
//! random sequences of calls (quick, in flight, dropped), time advances,
//! state queries and changes by hand. After every step the breaker must agree
//! with the model on what it admitted and refused (with the same
//! `retry_after`), on its state, rates and probes in flight, and on the exact
//! list of transitions, each evented once. Settings also change mid-run
//! (`CircuitBreakerHandle::reconfigure`, same model kind and window): the
//! model then judges by the new numbers from its next decision on, keeping
//! its window and its state.

use std::{
    future::Future,
    pin::Pin,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use palisade::{
    circuit_breaker::{
        CircuitBreakerHandle, CircuitBreakerLayer, CircuitState, FailureModel, HalfOpen,
        OpenDuration, SlowCalls,
    },
    classify::Outcome,
    clock::{Clock, Instant, ManualClock},
    error::CircuitOpen,
    observe::EventKind,
    random::{FastRandom, Random},
};
use proptest::prelude::*;
use tokio_test::task::{self, Spawn};
use tower::{BoxError, Layer, Service, service_fn};

const MS: Duration = Duration::from_millis(1);

// ---------------------------------------------------------------- the model

#[derive(Clone, Copy, Debug)]
struct Cfg {
    model: FailureModel,
    failure_rate: f64,
    minimum_calls: u32,
    slow: Option<(Duration, f64)>,
    open: OpenDuration,
    open_initial: Duration,
    open_multiplier: f64,
    open_max: Duration,
    jitter: f64,
    max_probes: u32,
    probes: u32,
    success_rate: f64,
    probe_timeout: Duration,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Permit {
    Counted(u64),
    Uncounted,
    Probe(u64),
}

type Call = (Instant, bool, bool, Duration);

struct Model {
    cfg: Cfg,
    random: FastRandom,
    state: CircuitState,
    open_until: Instant,
    reopens: u32,
    probes: Vec<(u64, Instant)>,
    next_probe: u64,
    successes: u32,
    failures: u32,
    generation: u64,
    /// Counted calls of the window, oldest first: (finished at, failure,
    /// slow, took).
    calls: Vec<Call>,
    consecutive: u64,
    transitions: Vec<(CircuitState, CircuitState, &'static str)>,
    /// Calls refused so far.
    refused: u64,
    /// The largest `max_probes` configured so far.
    most_probes: u32,
}

impl Model {
    fn new(cfg: Cfg, seed: u64) -> Model {
        Model {
            cfg,
            random: FastRandom::seeded(seed),
            state: CircuitState::Closed,
            open_until: Instant::ZERO,
            reopens: 0,
            probes: Vec::new(),
            next_probe: 0,
            successes: 0,
            failures: 0,
            generation: 0,
            calls: Vec::new(),
            consecutive: 0,
            transitions: Vec::new(),
            refused: 0,
            most_probes: cfg.max_probes,
        }
    }

    fn go(&mut self, to: CircuitState, reason: &'static str) {
        self.transitions.push((self.state, to, reason));
        self.state = to;
        self.generation += 1;
        if matches!(to, CircuitState::Closed | CircuitState::MetricsOnly) {
            self.calls.clear();
            self.consecutive = 0;
        }
    }

    fn open(&mut self, now: Instant, reason: &'static str) {
        let c = &self.cfg;
        let grown = c.open_initial.as_secs_f64() * c.open_multiplier.powi(self.reopens as i32);
        let base = grown.min(c.open_max.as_secs_f64());
        let jittered = base * (1.0 + c.jitter * (2.0 * self.random.next_f64() - 1.0));
        self.reopens += 1;
        self.open_until = now + Duration::from_secs_f64(jittered);
        self.probes.clear();
        self.go(CircuitState::Open, reason);
    }

    fn needed(&self) -> u32 {
        ((self.cfg.success_rate * self.cfg.probes as f64).ceil() as u32).clamp(1, self.cfg.probes)
    }

    fn decide(&mut self, now: Instant) {
        if self.successes >= self.needed() {
            self.reopens = 0;
            self.probes.clear();
            self.go(CircuitState::Closed, "probes_succeeded");
        } else if self.failures > self.cfg.probes - self.needed() {
            self.open(now, "probes_failed");
        }
    }

    fn refresh(&mut self, now: Instant) {
        match self.state {
            CircuitState::Open if now >= self.open_until => {
                self.probes.clear();
                self.successes = 0;
                self.failures = 0;
                self.go(CircuitState::HalfOpen, "open_duration_elapsed");
            }
            CircuitState::HalfOpen => {
                let timeout = self.cfg.probe_timeout;
                let before = self.probes.len();
                self.probes
                    .retain(|&(_, admitted)| now - admitted < timeout);
                let expired = before - self.probes.len();
                if expired > 0 {
                    self.failures += expired as u32;
                    self.decide(now);
                }
            }
            _ => {}
        }
    }

    /// Ok(permit) or Err(retry_after).
    fn admit(&mut self, now: Instant) -> Result<Permit, Option<Duration>> {
        match self.state {
            CircuitState::Closed | CircuitState::MetricsOnly => {
                return Ok(Permit::Counted(self.generation));
            }
            CircuitState::Disabled => return Ok(Permit::Uncounted),
            CircuitState::Open if now < self.open_until => {
                return Err(Some(self.open_until - now));
            }
            _ => {}
        }
        self.refresh(now);
        match self.state {
            CircuitState::Closed | CircuitState::MetricsOnly => {
                Ok(Permit::Counted(self.generation))
            }
            CircuitState::Disabled => Ok(Permit::Uncounted),
            CircuitState::Open => Err(Some(self.open_until - now)),
            CircuitState::ForcedOpen => Err(None),
            CircuitState::HalfOpen if self.probes.len() < self.cfg.max_probes as usize => {
                let id = self.next_probe;
                self.next_probe += 1;
                self.probes.push((id, now));
                Ok(Permit::Probe(id))
            }
            CircuitState::HalfOpen => Err(None),
        }
    }

    /// Slow failures in the window.
    fn slow_failures(&self, now: Instant) -> u64 {
        self.live(now).iter().filter(|c| c.1 && c.2).count() as u64
    }

    /// The durations of the calls in the window: count, sum, longest.
    fn durations(&self, now: Instant) -> (u64, Duration, Duration) {
        let live = self.live(now);
        let took = live.iter().map(|c| c.3);
        (
            live.len() as u64,
            took.clone().sum(),
            took.max().unwrap_or_default(),
        )
    }

    fn window(&self, now: Instant) -> (u64, u64, u64) {
        let live = self.live(now);
        let failures = live.iter().filter(|c| c.1).count() as u64;
        let slow = live.iter().filter(|c| c.2).count() as u64;
        (live.len() as u64, failures, slow)
    }

    /// The calls the window holds at `now`.
    fn live(&self, now: Instant) -> Vec<Call> {
        match self.cfg.model {
            FailureModel::ConsecutiveFailures(_) => Vec::new(),
            FailureModel::CountWindow(n) => {
                self.calls.iter().rev().take(n as usize).copied().collect()
            }
            FailureModel::TimeWindow { window, buckets } => {
                let width = (window.as_nanos() / u128::from(buckets)) as u64;
                let current = now.as_nanos() / width;
                self.calls
                    .iter()
                    .filter(|(at, ..)| at.as_nanos() / width + u64::from(buckets) > current)
                    .copied()
                    .collect()
            }
        }
    }

    fn finish(&mut self, permit: Permit, outcome: Outcome, elapsed: Duration, now: Instant) {
        let slow = outcome != Outcome::Ignored
            && self
                .cfg
                .slow
                .is_some_and(|(threshold, _)| elapsed >= threshold);
        match permit {
            Permit::Uncounted => {}
            Permit::Counted(generation) => {
                if outcome == Outcome::Ignored || generation != self.generation {
                    return;
                }
                let failure = outcome == Outcome::Failure;
                self.calls.push((now, failure, slow, elapsed));
                self.consecutive = if failure { self.consecutive + 1 } else { 0 };
                if self.state != CircuitState::Closed {
                    return;
                }
                let reason = match self.cfg.model {
                    FailureModel::ConsecutiveFailures(k) => {
                        (self.consecutive >= u64::from(k)).then_some("consecutive_failures")
                    }
                    _ => {
                        let (calls, failures, slow_calls) = self.window(now);
                        if calls < u64::from(self.cfg.minimum_calls) {
                            None
                        } else if failures as f64 / calls as f64 >= self.cfg.failure_rate {
                            Some("failure_rate")
                        } else {
                            self.cfg
                                .slow
                                .filter(|&(_, rate)| slow_calls as f64 / calls as f64 >= rate)
                                .map(|_| "slow_call_rate")
                        }
                    }
                };
                if let Some(reason) = reason {
                    self.open(now, reason);
                }
            }
            Permit::Probe(id) => {
                if self.state != CircuitState::HalfOpen {
                    return;
                }
                let Some(index) = self.probes.iter().position(|p| p.0 == id) else {
                    return;
                };
                self.probes.remove(index);
                match outcome {
                    Outcome::Failure => self.failures += 1,
                    Outcome::Success if slow => self.failures += 1,
                    Outcome::Success => self.successes += 1,
                    _ => return,
                }
                self.decide(now);
            }
        }
    }

    /// Opened by hand: until `now + duration`, whatever the state; the
    /// growth of the open duration kept.
    fn open_for(&mut self, now: Instant, duration: Duration) {
        self.open_until = now + duration;
        self.probes.clear();
        self.go(CircuitState::Open, "opened_by_hand");
    }

    /// Half-open by hand: probes afresh.
    fn half_open(&mut self) {
        self.probes.clear();
        self.successes = 0;
        self.failures = 0;
        if self.state != CircuitState::HalfOpen {
            self.go(CircuitState::HalfOpen, "half_opened_by_hand");
        }
    }

    fn force(&mut self, target: CircuitState, reset: bool) {
        self.probes.clear();
        if target == CircuitState::Closed {
            self.reopens = 0;
        }
        if self.state != target {
            self.go(target, "forced");
        } else if reset {
            self.calls.clear();
            self.consecutive = 0;
            self.generation += 1;
        }
    }
}

// ---------------------------------------------------------------- the run

#[derive(Clone, Copy, Debug)]
enum Admin {
    ForceOpen,
    Close,
    Disable,
    MetricsOnly,
    Reset,
    OpenFor(Duration),
    HalfOpen,
}

#[derive(Clone, Copy, Debug)]
enum Step {
    /// A call; its inner future takes this long (0: done at first poll).
    Call(Outcome, Duration),
    Drop(usize),
    Advance(Duration),
    Query,
    Admin(Admin),
    /// New settings of the same model kind (a window keeps its size).
    Reconfigure(Cfg),
}

type Reply = Result<&'static str, &'static str>;
type CallFuture = Pin<Box<dyn Future<Output = Result<&'static str, BoxError>> + Send>>;

struct InFlight {
    future: Spawn<CallFuture>,
    permit: Permit,
    outcome: Outcome,
    started: Instant,
}

fn reply(outcome: Outcome) -> Reply {
    match outcome {
        Outcome::Success => Ok("ok"),
        Outcome::Failure => Err("fail"),
        _ => Err("ignored"),
    }
}

fn check_state(
    handle: &CircuitBreakerHandle,
    model: &mut Model,
    now: Instant,
) -> Result<(), TestCaseError> {
    model.refresh(now);
    let metrics = handle.metrics();
    prop_assert_eq!(metrics.state, model.state);
    prop_assert_eq!(metrics.probes_in_flight, model.probes.len());
    // A bound lowered while probes run lets them finish.
    prop_assert!(metrics.probes_in_flight <= model.most_probes as usize);
    if let FailureModel::ConsecutiveFailures(_) = model.cfg.model {
        prop_assert_eq!(metrics.consecutive_failures, model.consecutive);
        prop_assert_eq!(metrics.durations, None, "no window, no durations");
    } else {
        let durations = metrics
            .durations
            .expect("an observed breaker keeps durations");
        prop_assert_eq!(
            (durations.count, durations.total, durations.max),
            model.durations(now)
        );
        let (calls, failures, slow) = model.window(now);
        prop_assert_eq!(
            (metrics.calls, metrics.failures, metrics.slow_calls),
            (calls, failures, slow)
        );
        let rate = (calls > 0).then(|| failures as f64 / calls as f64);
        prop_assert_eq!(metrics.failure_rate, rate);
        let slow_failures = model.slow_failures(now);
        prop_assert_eq!(
            (
                metrics.successes,
                metrics.slow_failures,
                metrics.slow_successes
            ),
            (calls - failures, slow_failures, slow - slow_failures)
        );
        prop_assert_eq!(
            metrics.enough_calls,
            calls >= u64::from(model.cfg.minimum_calls)
        );
    }
    prop_assert_eq!(metrics.not_permitted, model.refused);
    let open_until = (model.state == CircuitState::Open).then_some(model.open_until);
    prop_assert_eq!(metrics.open_until, open_until);
    Ok(())
}

fn run(cfg: Cfg, seed: u64, steps: Vec<Step>) -> Result<(), TestCaseError> {
    let clock = ManualClock::new();
    let reached = Arc::new(AtomicUsize::new(0));
    let events = Arc::new(Mutex::new(Vec::new()));
    let (permitted, finished) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let mut builder = CircuitBreakerLayer::builder()
        .clock(clock.clone())
        .random(FastRandom::seeded(seed))
        .classifier(|r: &Reply| match r {
            Ok(_) => Outcome::Success,
            Err("ignored") => Outcome::Ignored,
            Err(_) => Outcome::Failure,
        })
        .model(cfg.model)
        .failure_rate(cfg.failure_rate)
        .minimum_calls(cfg.minimum_calls)
        .open_duration(cfg.open)
        .half_open(
            HalfOpen::new()
                .max_probes(cfg.max_probes)
                .probes(cfg.probes)
                .success_rate(cfg.success_rate)
                .timeout(cfg.probe_timeout),
        )
        .on_event({
            let (events, permitted, finished) = (
                Arc::clone(&events),
                Arc::clone(&permitted),
                Arc::clone(&finished),
            );
            move |event| match event.kind {
                EventKind::Transition { from, to, reason } => {
                    events.lock().unwrap().push((from, to, reason))
                }
                EventKind::Permitted => drop(permitted.fetch_add(1, Ordering::SeqCst)),
                EventKind::Finished { .. } => drop(finished.fetch_add(1, Ordering::SeqCst)),
                _ => {}
            }
        });
    if let Some((threshold, rate)) = cfg.slow {
        builder = builder.slow_calls(threshold, rate);
    }
    let layer = builder.build().expect("generated configs are valid");
    let handle = layer.handle();
    let mut service = layer.layer(service_fn({
        let (clock, reached) = (clock.clone(), Arc::clone(&reached));
        move |(outcome, take): (Outcome, Duration)| {
            reached.fetch_add(1, Ordering::SeqCst);
            let sleep = clock.sleep(take);
            async move {
                sleep.await;
                reply(outcome)
            }
        }
    }));
    // The window's memory, fixed when built: a count window may shrink and
    // grow back to this.
    let built = cfg.model;
    let mut model = Model::new(cfg, seed);
    let mut in_flight: Vec<InFlight> = Vec::new();

    for step in steps {
        let now = clock.now();
        match step {
            Step::Call(outcome, take) => {
                let before = reached.load(Ordering::SeqCst);
                let expected = model.admit(now);
                let mut future: Spawn<CallFuture> =
                    task::spawn(Box::pin(service.call((outcome, take))));
                let admitted = reached.load(Ordering::SeqCst) > before;
                match expected {
                    Ok(permit) => {
                        prop_assert!(admitted, "model admits {:?}, breaker refused", permit);
                        let call = InFlight {
                            future,
                            permit,
                            outcome,
                            started: now,
                        };
                        in_flight.push(call);
                        // A quick call finishes on its first poll.
                        if take.is_zero() {
                            let mut call = in_flight.pop().unwrap();
                            prop_assert!(call.future.poll().is_ready());
                            model.finish(call.permit, call.outcome, Duration::ZERO, now);
                        }
                    }
                    Err(retry_after) => {
                        model.refused += 1;
                        prop_assert!(!admitted, "model refuses, breaker called the service");
                        let Poll::Ready(Err(err)) = future.poll() else {
                            return Err(TestCaseError::fail("a refused call must fail at once"));
                        };
                        let open = err.downcast_ref::<CircuitOpen>().expect("a CircuitOpen");
                        prop_assert_eq!(open.retry_after(), retry_after);
                    }
                }
            }
            Step::Drop(i) if !in_flight.is_empty() => {
                let call = in_flight.remove(i % in_flight.len());
                drop(call.future);
                model.finish(call.permit, Outcome::Ignored, Duration::ZERO, now);
            }
            Step::Advance(d) => {
                clock.advance(d);
                let now = clock.now();
                let mut i = 0;
                while i < in_flight.len() {
                    if in_flight[i].future.poll().is_ready() {
                        let call = in_flight.remove(i);
                        model.finish(call.permit, call.outcome, now - call.started, now);
                    } else {
                        i += 1;
                    }
                }
            }
            Step::Query => check_state(&handle, &mut model, now)?,
            Step::Admin(Admin::OpenFor(duration)) => {
                handle
                    .open_for(duration)
                    .expect("generated durations are valid");
                model.open_for(now, duration);
            }
            Step::Admin(Admin::HalfOpen) => {
                handle.half_open();
                model.half_open();
            }
            Step::Admin(admin) => {
                let (target, reset) = match admin {
                    Admin::ForceOpen => (CircuitState::ForcedOpen, false),
                    Admin::Close => (CircuitState::Closed, false),
                    Admin::Disable => (CircuitState::Disabled, false),
                    Admin::MetricsOnly => (CircuitState::MetricsOnly, false),
                    _ => (CircuitState::Closed, true),
                };
                match admin {
                    Admin::ForceOpen => handle.force_open(),
                    Admin::Close => handle.close(),
                    Admin::Disable => handle.disable(),
                    Admin::MetricsOnly => handle.metrics_only(),
                    _ => handle.reset(),
                }
                model.force(target, reset);
            }
            Step::Reconfigure(new) => {
                let window = match (built, model.cfg.model, new.model) {
                    (
                        _,
                        FailureModel::ConsecutiveFailures(_),
                        limit @ FailureModel::ConsecutiveFailures(_),
                    ) => limit,
                    (
                        FailureModel::CountWindow(room),
                        FailureModel::CountWindow(_),
                        FailureModel::CountWindow(n),
                    ) => FailureModel::CountWindow(n.min(room)),
                    (_, kept, _) => kept,
                };
                let new = Cfg {
                    model: window,
                    minimum_calls: match window {
                        FailureModel::CountWindow(n) => new.minimum_calls.min(n),
                        _ => new.minimum_calls,
                    },
                    slow: match model.cfg.model {
                        FailureModel::ConsecutiveFailures(_) => None,
                        _ => new.slow,
                    },
                    ..new
                };
                let mut settings = handle.settings();
                settings.failure_model = new.model;
                settings.failure_rate = new.failure_rate;
                settings.minimum_calls = new.minimum_calls;
                settings.slow_calls = new
                    .slow
                    .map(|(threshold, rate)| SlowCalls { threshold, rate });
                settings.open_duration = new.open;
                settings.half_open = HalfOpen::new()
                    .max_probes(new.max_probes)
                    .probes(new.probes)
                    .success_rate(new.success_rate)
                    .timeout(new.probe_timeout);
                handle
                    .reconfigure(settings)
                    .expect("generated settings are valid");
                prop_assert_eq!(handle.settings(), settings);
                if let (FailureModel::CountWindow(old), FailureModel::CountWindow(n)) =
                    (model.cfg.model, new.model)
                {
                    // A count window made smaller keeps its latest calls, and
                    // grown back does not find the others again.
                    let held = model.calls.len().min(old as usize);
                    let gone = model.calls.len() - held.min(n as usize);
                    model.calls.drain(..gone);
                }
                model.cfg = new;
                model.most_probes = model.most_probes.max(new.max_probes);
            }
            Step::Drop(_) => {}
        }
        let expected: Vec<_> = model
            .transitions
            .iter()
            .map(|(from, to, reason)| (from.as_str(), to.as_str(), *reason))
            .collect();
        prop_assert_eq!(
            &*events.lock().unwrap(),
            &expected,
            "transitions, each evented once"
        );
    }
    check_state(&handle, &mut model, clock.now())?;
    for call in in_flight.drain(..) {
        drop(call.future);
    }
    prop_assert_eq!(
        permitted.load(Ordering::SeqCst),
        finished.load(Ordering::SeqCst)
    );
    prop_assert_eq!(
        handle.metrics().permitted,
        Some(permitted.load(Ordering::SeqCst) as u64),
        "the handle counts what the events say"
    );
    Ok(())
}

use std::task::Poll;

// ---------------------------------------------------------------- generators

fn cfg() -> impl Strategy<Value = Cfg> {
    let model = prop_oneof![
        (1u32..4).prop_map(FailureModel::ConsecutiveFailures),
        (1u32..7).prop_map(FailureModel::CountWindow),
        ((1u64..10), (1u32..5)).prop_map(|(secs, buckets)| FailureModel::TimeWindow {
            window: Duration::from_secs(secs),
            buckets,
        }),
    ];
    (
        model,
        prop::sample::select(vec![0.25, 0.5, 0.75, 1.0]),
        1u32..5,
        prop::option::of(((1u64..4), prop::sample::select(vec![0.5, 1.0]))),
        (
            1u64..5,
            prop::sample::select(vec![1.0, 2.0]),
            1u64..4,
            prop::sample::select(vec![0.0, 0.5]),
        ),
        (
            1u32..4,
            1u32..5,
            prop::sample::select(vec![0.5, 1.0]),
            1u64..7,
        ),
    )
        .prop_map(|(model, failure_rate, minimum, slow, open, half_open)| {
            let minimum_calls = match model {
                FailureModel::CountWindow(n) => minimum.min(n),
                _ => minimum,
            };
            let slow = match model {
                FailureModel::ConsecutiveFailures(_) => None,
                _ => slow.map(|(secs, rate)| (Duration::from_secs(secs), rate)),
            };
            let (initial, multiplier, growth, jitter) = open;
            let open_initial = Duration::from_secs(initial);
            let open_max = open_initial * growth as u32;
            let (max_probes, probes, success_rate, timeout) = half_open;
            Cfg {
                model,
                failure_rate,
                minimum_calls,
                slow,
                open: OpenDuration::exponential(open_initial, multiplier, open_max).jitter(jitter),
                open_initial,
                open_multiplier: multiplier,
                open_max,
                jitter,
                max_probes,
                probes,
                success_rate,
                probe_timeout: Duration::from_secs(timeout),
            }
        })
}

fn outcome() -> impl Strategy<Value = Outcome> {
    prop::sample::select(vec![
        Outcome::Success,
        Outcome::Success,
        Outcome::Failure,
        Outcome::Failure,
        Outcome::Ignored,
    ])
}

fn steps() -> impl Strategy<Value = Vec<Step>> {
    prop::collection::vec(
        prop_oneof![
            6 => outcome().prop_map(|o| Step::Call(o, Duration::ZERO)),
            3 => (outcome(), 1u64..4000).prop_map(|(o, ms)| Step::Call(o, MS * ms as u32)),
            1 => any::<usize>().prop_map(Step::Drop),
            3 => (0u64..3000).prop_map(|ms| Step::Advance(MS * ms as u32)),
            // Whole seconds land exactly on open durations and probe timeouts.
            2 => (0u64..4).prop_map(|secs| Step::Advance(Duration::from_secs(secs))),
            2 => Just(Step::Query),
            1 => prop::sample::select(vec![
                Admin::ForceOpen,
                Admin::Close,
                Admin::Disable,
                Admin::MetricsOnly,
                Admin::Reset,
                Admin::HalfOpen,
            ])
            .prop_map(Step::Admin),
            // By hand, open for whole seconds or an odd number of ms.
            1 => prop_oneof![(1u64..5).prop_map(Duration::from_secs), (1u64..3000).prop_map(|ms| MS * ms as u32)]
                .prop_map(|d| Step::Admin(Admin::OpenFor(d))),
            1 => cfg().prop_map(Step::Reconfigure),
        ],
        1..120,
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: crate::cases(512), ..ProptestConfig::default() })]

    #[test]
    fn the_breaker_matches_the_reference_model(cfg in cfg(), seed in any::<u64>(), steps in steps()) {
        run(cfg, seed, steps)?;
    }
}

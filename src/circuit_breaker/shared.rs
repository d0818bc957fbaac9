//! The state one breaker layer shares with every service and clone it makes:
//! the lock-free fast path in front of the state machine.
//!
//! A closed breaker admits with one atomic load and records into its window
//! with atomics. Everything else — admitting while open or half-open, tripping,
//! probe results, changes by hand — takes the lock around the pure
//! [`Machine`], then publishes the outcome to the atomics the fast path reads:
//! the window is reset first, then the generation moves on, then the state is
//! stored, so a call admitted under the new state carries the new generation.
//! Outcomes of calls admitted under an earlier generation are not counted.

use std::{fmt, task::Waker, time::Duration};

use super::{
    config::{Config, FailureModel, Mode, Settings},
    state::{Admission, CircuitState, Machine, ProbeOutcome, Reason, Transition},
    window::{Durations, Sample, Stats, Window},
};
use crate::{
    classify::Outcome,
    clock::{Clock, Instant, nanos},
    error::{CircuitOpen, ConfigError, RejectionKind},
    observe::{EventKind, Observer},
    random::Random,
    sync::{Arc, AtomicBool, AtomicU8, AtomicU64, CachePadded, Mutex, Ordering, lock},
};

/// A service clone's own reference to the layer's breaker.
///
/// Every call's future holds a reference to the breaker, and taking one is an
/// atomic write to the reference count. With one inner `Arc` per service
/// clone, the count written is the clone's own: threads that each call
/// through their own clone do not contend on one cache line.
pub(crate) type CloneRef<K, C, R> = Arc<Arc<Shared<K, C, R>>>;

/// What the handle reads of a breaker at one moment.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Readings {
    pub(crate) stats: Stats,
    pub(crate) probes_in_flight: usize,
    pub(crate) not_permitted: u64,
    /// Calls permitted, when they are counted (the breaker is observed).
    pub(crate) permitted: Option<u64>,
    /// The durations of the window's calls, when it keeps them.
    pub(crate) durations: Option<Durations>,
    pub(crate) open_until: Option<Instant>,
    pub(crate) minimum_calls: u32,
    /// The consecutive-failures model: no window, no minimum.
    pub(crate) windowless: bool,
}

/// A change of state made by hand, through the handle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Steer {
    /// To `ForcedOpen`, `Closed`, `Disabled` or `MetricsOnly`.
    To(CircuitState),
    /// Closed, the window forgotten even if closed already.
    Reset,
    /// Open for this long, then half-open as usual.
    OpenFor(Duration),
    /// Half-open now.
    HalfOpen,
}

pub(crate) struct Shared<K, C, R> {
    /// Fixed when built: whether `poll_ready` waits for a permit.
    pub(crate) mode: Mode,
    /// Fixed when built: whether a request's own deadline counts.
    pub(crate) count_request_deadlines: bool,
    pub(crate) classifier: K,
    pub(crate) clock: C,
    random: R,
    pub(crate) observer: Observer,
    timing: Timing,
    /// Read by every call: away from the `Arc`'s reference counts, which
    /// every call writes.
    hot: CachePadded<Hot>,
    /// Read by every counted call; written by a change of settings.
    thresholds: CachePadded<Thresholds>,
    /// Written by calls (count and time windows): away from `hot`.
    window: CachePadded<Window>,
    core: Mutex<Core>,
    /// Calls refused since the breaker was built (a refusal's path only).
    not_permitted: AtomicU64,
    /// Calls permitted since the breaker was built, counted only when it is
    /// observed: then each permitted call is timed and evented anyway, and
    /// the count costs no write the unobserved fast path would not make.
    permitted: AtomicU64,
}

/// What a call must read from the clock: decided when the layer is built,
/// and again when slow-call detection is turned on or off.
struct Timing {
    /// A call's start: for slow-call detection, or to time it for an
    /// observer.
    times_calls: AtomicBool,
    /// A call's end: to time it, or to place it in a time window.
    reads_end_time: AtomicBool,
    /// A time window places each call by its end.
    window_time: bool,
    observed: bool,
}

impl Timing {
    /// Decides again whether calls are timed, slow calls being detected or
    /// not.
    fn set(&self, detects_slow: bool) {
        let times_calls = self.observed || detects_slow;
        self.times_calls.store(times_calls, Ordering::Relaxed);
        self.reads_end_time
            .store(times_calls || self.window_time, Ordering::Relaxed);
    }
}

/// The numbers a counted call is judged by, changed live: the rest of the
/// settings are read under the lock ([`Core::config`]).
struct Thresholds {
    /// `f64` bits.
    failure_rate: AtomicU64,
    minimum_calls: AtomicU64,
    /// The consecutive-failures model's limit.
    consecutive: AtomicU64,
    /// In nanoseconds; [`NOT_SLOW`] without slow-call detection.
    slow_threshold: AtomicU64,
    /// `f64` bits.
    slow_rate: AtomicU64,
}

/// The slow threshold of a breaker that does not detect slow calls.
const NOT_SLOW: u64 = u64::MAX;

impl Thresholds {
    fn new(config: &Config) -> Thresholds {
        let thresholds = Thresholds {
            failure_rate: AtomicU64::new(0),
            minimum_calls: AtomicU64::new(0),
            consecutive: AtomicU64::new(0),
            slow_threshold: AtomicU64::new(NOT_SLOW),
            slow_rate: AtomicU64::new(0),
        };
        thresholds.set(config);
        thresholds
    }

    fn set(&self, config: &Config) {
        let store = |atomic: &AtomicU64, value: u64| atomic.store(value, Ordering::Relaxed);
        store(&self.failure_rate, config.failure_rate.to_bits());
        store(&self.minimum_calls, u64::from(config.minimum_calls));
        if let FailureModel::ConsecutiveFailures(limit) = config.model {
            store(&self.consecutive, u64::from(limit));
        }
        let (threshold, rate) = config
            .slow_calls
            .map_or((NOT_SLOW, 0.0), |slow| (nanos(slow.threshold), slow.rate));
        store(&self.slow_rate, rate.to_bits());
        store(&self.slow_threshold, threshold);
    }

    fn load(atomic: &AtomicU64) -> u64 {
        atomic.load(Ordering::Relaxed)
    }
}

struct Hot {
    state: AtomicU8,
    /// When an open breaker goes half-open, in clock nanoseconds.
    open_until: AtomicU64,
    generation: AtomicU64,
}

struct Core {
    machine: Machine,
    /// The settings now: the machine's numbers are read here.
    config: Config,
    /// Services waiting in `poll_ready` (backpressure mode) for a change.
    waiters: Vec<Waker>,
}

/// The right to make one call, held by the call's response future (or by a
/// service between `poll_ready` and `call` in backpressure mode).
#[derive(Debug)]
pub(crate) enum Permit {
    /// Closed or metrics-only: the outcome is counted in the window if the
    /// breaker is still in the same generation when it arrives.
    Counted { generation: u64 },
    /// Disabled: nothing is counted.
    Uncounted,
    /// Half-open: the outcome decides the breaker's fate.
    Probe { id: u64 },
}

impl Permit {
    /// Whether this permit holds a half-open probe slot.
    pub(crate) fn is_probe(&self) -> bool {
        matches!(self, Permit::Probe { .. })
    }
}

/// Why a call was refused: when a call may next go through, if known, and the
/// wait until then as seen at the refusal.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Refusal {
    pub(crate) until: Option<Instant>,
    pub(crate) retry_after: Option<Duration>,
}

/// What one finished call reports.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Report {
    pub(crate) outcome: Outcome,
    pub(crate) slow: bool,
    pub(crate) pushback: Option<Duration>,
    /// When it finished, if the clock was read.
    pub(crate) now: Option<Instant>,
    /// How long it took in nanoseconds, when the window keeps durations.
    pub(crate) nanos: Option<u64>,
}

impl<K, C: Clock, R: Random> Shared<K, C, R> {
    pub(crate) fn new(
        config: Config,
        classifier: K,
        clock: C,
        random: R,
        observer: Observer,
    ) -> Self {
        let window = Window::new(config.model);
        let timing = Timing {
            times_calls: AtomicBool::new(false),
            reads_end_time: AtomicBool::new(false),
            window_time: window.needs_time(),
            observed: observer.is_active(),
        };
        timing.set(config.slow_calls.is_some());
        Shared {
            timing,
            window: CachePadded(window),
            thresholds: CachePadded(Thresholds::new(&config)),
            mode: config.mode,
            count_request_deadlines: config.count_request_deadlines,
            classifier,
            clock,
            random,
            observer,
            hot: CachePadded(Hot {
                state: AtomicU8::new(CircuitState::Closed.to_u8()),
                open_until: AtomicU64::new(0),
                generation: AtomicU64::new(0),
            }),
            core: Mutex::new(Core {
                machine: Machine::new(),
                config,
                waiters: Vec::new(),
            }),
            not_permitted: AtomicU64::new(0),
            permitted: AtomicU64::new(0),
        }
    }

    #[inline]
    fn load_state(&self) -> CircuitState {
        CircuitState::from_u8(self.hot.state.load(Ordering::Acquire))
    }

    /// Whether a call's start must be read from the clock: for slow-call
    /// detection, or to time it for an observer.
    #[inline]
    pub(crate) fn times_calls(&self) -> bool {
        self.timing.times_calls.load(Ordering::Relaxed)
    }

    /// From how long a call is slow, if slow calls are detected.
    #[inline]
    pub(crate) fn slow_threshold(&self) -> Option<Duration> {
        match Thresholds::load(&self.thresholds.slow_threshold) {
            NOT_SLOW => None,
            threshold => Some(Duration::from_nanos(threshold)),
        }
    }

    /// Whether a call's end must be read from the clock: to time it, or to
    /// place it in a time window.
    #[inline]
    pub(crate) fn reads_end_time(&self) -> bool {
        self.timing.reads_end_time.load(Ordering::Relaxed)
    }

    /// Whether anyone receives events.
    #[inline]
    pub(crate) fn observed(&self) -> bool {
        self.timing.observed
    }

    /// Whether the window keeps its calls' durations: when the breaker is
    /// observed, and so times every call and writes for each anyway.
    #[inline]
    pub(crate) fn keeps_durations(&self) -> bool {
        self.timing.observed && !self.window.is_consecutive()
    }

    /// May a call go through now?
    ///
    /// `waker`, if given, is registered to be woken at the next change of
    /// state or freed probe slot (backpressure mode).
    #[inline]
    pub(crate) fn admit(&self, waker: Option<&Waker>) -> Result<Permit, Refusal> {
        match self.load_state() {
            CircuitState::Closed | CircuitState::MetricsOnly => Ok(Permit::Counted {
                generation: self.hot.generation.load(Ordering::Acquire),
            }),
            CircuitState::Disabled => Ok(Permit::Uncounted),
            state => self.admit_slow(state, waker),
        }
    }

    /// `admit` when not closed: under the lock, except to refuse while open.
    #[cold]
    fn admit_slow(&self, state: CircuitState, waker: Option<&Waker>) -> Result<Permit, Refusal> {
        let now = self.clock.now();
        if state == CircuitState::Open && waker.is_none() {
            // Refusing while open needs no lock.
            let until = Instant::from_nanos(self.hot.open_until.load(Ordering::Acquire));
            if !until.is_due(now) {
                return Err(self.refuse(now, Some(until)));
            }
        }
        let mut guard = lock(&self.core);
        let core = &mut *guard;
        let (admission, transition) = core.machine.admit(now, &core.config, &self.random);
        let woken = self.publish(core, transition);
        let result = match admission {
            Admission::Call if core.machine.state() == CircuitState::Disabled => {
                Ok(Permit::Uncounted)
            }
            Admission::Call => Ok(Permit::Counted {
                generation: self.hot.generation.load(Ordering::Acquire),
            }),
            Admission::Probe(id) => Ok(Permit::Probe { id }),
            Admission::Reject { until } => {
                if let Some(waker) = waker {
                    if !core.waiters.iter().any(|w| w.will_wake(waker)) {
                        core.waiters.push(waker.clone());
                    }
                }
                Err(until)
            }
        };
        drop(guard);
        self.announce(now, transition, woken);
        result.map_err(|until| self.refuse(now, until))
    }

    /// A permitted call starts at `now`, in an observed breaker: counted,
    /// and evented.
    pub(crate) fn permitted(&self, now: Instant) {
        self.permitted.fetch_add(1, Ordering::Relaxed);
        self.observer.emit(now, EventKind::Permitted);
    }

    /// A call refused at `now`, until `until` if known: the event, and what
    /// the caller needs.
    fn refuse(&self, now: Instant, until: Option<Instant>) -> Refusal {
        self.not_permitted.fetch_add(1, Ordering::Relaxed);
        let retry_after = until.map(|until| until - now);
        if self.observed() {
            self.observer.emit(
                now,
                EventKind::Rejected {
                    kind: RejectionKind::CircuitOpen,
                    retry_after,
                },
            );
        }
        Refusal { until, retry_after }
    }

    /// The error for a refused call.
    pub(crate) fn rejection(&self, refusal: &Refusal) -> CircuitOpen {
        CircuitOpen::new(self.observer.name().clone(), refusal.retry_after)
    }

    /// A call made under `permit` finished (or was dropped, as `Ignored`).
    #[inline]
    pub(crate) fn finish(&self, permit: &Permit, report: Report) {
        match *permit {
            Permit::Uncounted => {}
            Permit::Counted { generation } => self.count(generation, report),
            Permit::Probe { id } => self.probe_finished(id, report),
        }
    }

    #[cold]
    fn probe_finished(&self, id: u64, report: Report) {
        let outcome = match report.outcome {
            Outcome::Failure => ProbeOutcome::Failure,
            _ if report.slow => ProbeOutcome::Failure,
            Outcome::Success => ProbeOutcome::Success,
            _ => ProbeOutcome::Ignored,
        };
        let now = report.now.unwrap_or_else(|| self.clock.now());
        let mut guard = lock(&self.core);
        let core = &mut *guard;
        let transition = core.machine.probe_finished(
            id,
            outcome,
            report.pushback.filter(|_| outcome == ProbeOutcome::Failure),
            now,
            &core.config,
            &self.random,
        );
        // A freed probe slot is news to the waiters even without a
        // transition.
        let mut woken = self.publish(core, transition);
        woken.append(&mut core.waiters);
        drop(guard);
        self.announce(now, transition, woken);
    }

    #[inline]
    fn count(&self, generation: u64, report: Report) {
        if report.outcome == Outcome::Ignored
            || self.hot.generation.load(Ordering::Acquire) != generation
        {
            return;
        }
        let failure = report.outcome == Outcome::Failure;
        let now = report.now.unwrap_or(Instant::ZERO);
        let stats = self.window.record(
            now,
            Sample {
                failure,
                slow: report.slow,
                nanos: report.nanos,
            },
        );
        if self.observed() {
            if let (Some(failure_rate), Some(slow_call_rate)) =
                (stats.failure_rate(), stats.slow_call_rate())
            {
                self.observer.emit(
                    now,
                    EventKind::Rates {
                        failure_rate,
                        slow_call_rate,
                    },
                );
            }
        }
        let reason = match report.pushback {
            Some(_) if failure => Some(Reason::Pushback),
            _ => self.threshold_crossed(&stats),
        };
        if let Some(reason) = reason {
            if self.load_state() == CircuitState::Closed {
                self.trip(generation, reason, report.pushback);
            }
        }
    }

    /// Which threshold, if any, `stats` reaches.
    #[inline]
    fn threshold_crossed(&self, stats: &Stats) -> Option<Reason> {
        let thresholds = &self.thresholds;
        if self.window.is_consecutive() {
            return (stats.consecutive_failures >= Thresholds::load(&thresholds.consecutive))
                .then_some(Reason::ConsecutiveFailures);
        }
        if stats.calls < Thresholds::load(&thresholds.minimum_calls) {
            return None;
        }
        // Thresholds are above zero, so no failure (no slow call) means no
        // rate to work out: the happy path divides nothing.
        let rate = |bits: &AtomicU64| f64::from_bits(Thresholds::load(bits));
        if stats.failures > 0 && stats.failure_rate()? >= rate(&thresholds.failure_rate) {
            return Some(Reason::FailureRate);
        }
        self.slow_threshold()?;
        (stats.slow > 0 && stats.slow_call_rate()? >= rate(&thresholds.slow_rate))
            .then_some(Reason::SlowCallRate)
    }

    fn trip(&self, generation: u64, reason: Reason, pushback: Option<Duration>) {
        let now = self.clock.now();
        let mut guard = lock(&self.core);
        // Another call may have tripped it already: one transition, one event.
        if self.hot.generation.load(Ordering::Acquire) != generation {
            return;
        }
        let core = &mut *guard;
        let transition = core
            .machine
            .trip(now, reason, pushback, &core.config, &self.random);
        let woken = self.publish(core, transition);
        drop(guard);
        self.announce(now, transition, woken);
    }

    /// The state now, after moving it along with time (open to half-open,
    /// timed-out probes).
    pub(crate) fn state(&self) -> CircuitState {
        match self.load_state() {
            state @ (CircuitState::Closed
            | CircuitState::Disabled
            | CircuitState::MetricsOnly
            | CircuitState::ForcedOpen) => state,
            CircuitState::Open | CircuitState::HalfOpen => {
                let now = self.clock.now();
                let mut guard = lock(&self.core);
                let core = &mut *guard;
                let transition = core.machine.refresh(now, &core.config, &self.random);
                let woken = self.publish(core, transition);
                let state = core.machine.state();
                drop(guard);
                self.announce(now, transition, woken);
                state
            }
        }
    }

    /// What the handle reads: the window's counts, the probes in flight,
    /// the calls refused so far, and when an open state ends.
    pub(crate) fn stats(&self) -> Readings {
        let stats = self.window.stats(self.clock.now());
        let core = lock(&self.core);
        let open_until =
            (core.machine.state() == CircuitState::Open).then(|| core.machine.open_until());
        Readings {
            stats,
            probes_in_flight: core.machine.probes_in_flight(),
            not_permitted: self.not_permitted.load(Ordering::Relaxed),
            permitted: self
                .observed()
                .then(|| self.permitted.load(Ordering::Relaxed)),
            durations: self.keeps_durations().then(|| self.window.durations()),
            open_until,
            minimum_calls: core.config.minimum_calls,
            windowless: self.window.is_consecutive(),
        }
    }

    /// Moves the breaker by hand.
    pub(crate) fn steer(&self, steer: Steer) {
        let now = self.clock.now();
        let mut core = lock(&self.core);
        let transition = match steer {
            Steer::To(target) => core.machine.force(target),
            Steer::Reset => {
                let transition = core.machine.force(CircuitState::Closed);
                // Already closed: forget the window all the same.
                if transition.is_none() {
                    self.window.reset();
                    self.hot.generation.fetch_add(1, Ordering::AcqRel);
                }
                transition
            }
            Steer::OpenFor(duration) => Some(core.machine.open_for(now, duration)),
            Steer::HalfOpen => core.machine.half_open(),
        };
        let woken = self.publish(&mut core, transition);
        drop(core);
        self.announce(now, transition, woken);
    }

    /// The settings now.
    pub(crate) fn settings(&self) -> Settings {
        lock(&self.core).config.settings()
    }

    /// Changes the settings, checked as the builder checks them: the
    /// thresholds apply from the next counted outcome, the machine's numbers
    /// from its next decision. The window keeps its outcomes, resized within
    /// the memory it was built with. Emits an event per number changed.
    pub(crate) fn reconfigure(&self, settings: Settings) -> Result<(), ConfigError> {
        let mut core = lock(&self.core);
        let config = core.config.with(settings);
        config.validate()?;
        if !self.window.fits(config.model) {
            return Err(ConfigError::new(
                super::config::LAYER,
                "failure_model",
                format!(
                    "a running breaker keeps its kind of window, within the memory allocated \
                     when built ({}), got {:?}; build it with the largest window it may need",
                    self.window.allocated(),
                    config.model
                ),
            ));
        }
        let now = self.clock.now();
        if config.model != core.config.model {
            self.window.resize(config.model, now);
        }
        self.thresholds.set(&config);
        self.timing.set(config.slow_calls.is_some());
        let old = std::mem::replace(&mut core.config, config).settings();
        drop(core);
        self.observer
            .changes(now, numbers(&old), numbers(&settings));
        Ok(())
    }

    /// Makes a transition visible to the fast path; returns the waiters to
    /// wake once the lock is released.
    fn publish(&self, core: &mut Core, transition: Option<Transition>) -> Vec<Waker> {
        let Some(transition) = transition else {
            return Vec::new();
        };
        self.hot
            .open_until
            .store(core.machine.open_until().as_nanos(), Ordering::Release);
        if matches!(
            transition.to,
            CircuitState::Closed | CircuitState::MetricsOnly
        ) {
            self.window.reset();
        }
        self.hot.generation.fetch_add(1, Ordering::AcqRel);
        self.hot
            .state
            .store(transition.to.to_u8(), Ordering::Release);
        std::mem::take(&mut core.waiters)
    }

    /// Emits the transition's event and wakes the waiters, outside the lock.
    fn announce(&self, now: Instant, transition: Option<Transition>, woken: Vec<Waker>) {
        if let Some(transition) = transition {
            self.observer.emit(
                now,
                EventKind::Transition {
                    from: transition.from.as_str(),
                    to: transition.to.as_str(),
                    reason: transition.reason.as_str(),
                },
            );
        }
        for waker in woken {
            waker.wake();
        }
    }
}

/// The numbers of `settings` by name, as its change events report them
/// (durations in seconds; no slow-call detection is a rate and threshold
/// of 0).
fn numbers(settings: &Settings) -> [(&'static str, f64); 17] {
    let (consecutive, count, (window, buckets)) = match settings.failure_model {
        FailureModel::ConsecutiveFailures(limit) => (f64::from(limit), 0.0, (0.0, 0.0)),
        FailureModel::CountWindow(size) => (0.0, f64::from(size), (0.0, 0.0)),
        FailureModel::TimeWindow { window, buckets } => {
            (0.0, 0.0, (window.as_secs_f64(), f64::from(buckets)))
        }
    };
    let slow = settings.slow_calls;
    let open = settings.open_duration;
    let half_open = settings.half_open;
    [
        ("consecutive_failures", consecutive),
        ("count_window", count),
        ("time_window.window", window),
        ("time_window.buckets", buckets),
        ("failure_rate", settings.failure_rate),
        ("minimum_calls", f64::from(settings.minimum_calls)),
        (
            "slow_calls.threshold",
            slow.map_or(0.0, |s| s.threshold.as_secs_f64()),
        ),
        ("slow_calls.rate", slow.map_or(0.0, |s| s.rate)),
        ("open_duration.initial", open.initial.as_secs_f64()),
        ("open_duration.multiplier", open.multiplier),
        ("open_duration.max", open.max.as_secs_f64()),
        ("open_duration.jitter", open.jitter),
        ("max_pushback", settings.max_pushback.as_secs_f64()),
        ("half_open.max_probes", f64::from(half_open.max_probes)),
        ("half_open.probes", f64::from(half_open.probes)),
        ("half_open.success_rate", half_open.success_rate),
        ("half_open.timeout", half_open.timeout.as_secs_f64()),
    ]
}

impl<K, C, R> fmt::Debug for Shared<K, C, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shared")
            .field("name", self.observer.name())
            .field(
                "state",
                &CircuitState::from_u8(self.hot.state.load(Ordering::Relaxed)),
            )
            .finish_non_exhaustive()
    }
}

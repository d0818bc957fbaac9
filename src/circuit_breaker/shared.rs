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
    config::{Config, FailureModel},
    state::{Admission, CircuitState, Machine, ProbeOutcome, Reason, Transition},
    window::{Sample, Stats, Window},
};
use crate::{
    classify::Outcome,
    clock::{Clock, Instant},
    error::{CircuitOpen, RejectionKind},
    observe::{EventKind, Observer},
    random::Random,
    sync::{Arc, AtomicU8, AtomicU64, CachePadded, Mutex, Ordering, lock},
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
    pub(crate) config: Config,
    pub(crate) classifier: K,
    pub(crate) clock: C,
    random: R,
    pub(crate) observer: Observer,
    timing: Timing,
    /// Read by every call: away from the `Arc`'s reference counts, which
    /// every call writes.
    hot: CachePadded<Hot>,
    /// Written by calls (count and time windows): away from `hot`.
    window: CachePadded<Window>,
    core: Mutex<Core>,
    /// Calls refused since the breaker was built (a refusal's path only).
    not_permitted: AtomicU64,
}

/// What a call must read from the clock, decided once when the layer is
/// built.
struct Timing {
    times_calls: bool,
    reads_end_time: bool,
    observed: bool,
}

struct Hot {
    state: AtomicU8,
    /// When an open breaker goes half-open, in clock nanoseconds.
    open_until: AtomicU64,
    generation: AtomicU64,
}

struct Core {
    machine: Machine,
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
        let observed = observer.is_active();
        let times_calls = config.slow_calls.is_some() || observed;
        Shared {
            timing: Timing {
                times_calls,
                reads_end_time: times_calls || window.needs_time(),
                observed,
            },
            window: CachePadded(window),
            config,
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
                waiters: Vec::new(),
            }),
            not_permitted: AtomicU64::new(0),
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
        self.timing.times_calls
    }

    /// Whether a call's end must be read from the clock: to time it, or to
    /// place it in a time window.
    #[inline]
    pub(crate) fn reads_end_time(&self) -> bool {
        self.timing.reads_end_time
    }

    /// Whether anyone receives events.
    #[inline]
    pub(crate) fn observed(&self) -> bool {
        self.timing.observed
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
        let mut core = lock(&self.core);
        let (admission, transition) = core.machine.admit(now, &self.config, &self.random);
        let woken = self.publish(&mut core, transition);
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
        drop(core);
        self.announce(now, transition, woken);
        result.map_err(|until| self.refuse(now, until))
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
        let mut core = lock(&self.core);
        let transition = core.machine.probe_finished(
            id,
            outcome,
            report.pushback.filter(|_| outcome == ProbeOutcome::Failure),
            now,
            &self.config,
            &self.random,
        );
        // A freed probe slot is news to the waiters even without a
        // transition.
        let mut woken = self.publish(&mut core, transition);
        woken.append(&mut core.waiters);
        drop(core);
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
    fn threshold_crossed(&self, stats: &Stats) -> Option<Reason> {
        if let FailureModel::ConsecutiveFailures(limit) = self.config.model {
            return (stats.consecutive_failures >= u64::from(limit))
                .then_some(Reason::ConsecutiveFailures);
        }
        if stats.calls < u64::from(self.config.minimum_calls) {
            return None;
        }
        // Thresholds are above zero, so no failure (no slow call) means no
        // rate to work out: the happy path divides nothing.
        if stats.failures > 0 && stats.failure_rate()? >= self.config.failure_rate {
            return Some(Reason::FailureRate);
        }
        let slow = self.config.slow_calls?;
        (stats.slow > 0 && stats.slow_call_rate()? >= slow.rate).then_some(Reason::SlowCallRate)
    }

    fn trip(&self, generation: u64, reason: Reason, pushback: Option<Duration>) {
        let now = self.clock.now();
        let mut core = lock(&self.core);
        // Another call may have tripped it already: one transition, one event.
        if self.hot.generation.load(Ordering::Acquire) != generation {
            return;
        }
        let transition = core
            .machine
            .trip(now, reason, pushback, &self.config, &self.random);
        let woken = self.publish(&mut core, transition);
        drop(core);
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
                let mut core = lock(&self.core);
                let transition = core.machine.refresh(now, &self.config, &self.random);
                let woken = self.publish(&mut core, transition);
                let state = core.machine.state();
                drop(core);
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
            open_until,
            minimum_calls: self.config.minimum_calls,
            windowless: matches!(self.config.model, FailureModel::ConsecutiveFailures(_)),
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

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
    sync::{AtomicU8, AtomicU64, Mutex, Ordering, lock},
};

pub(crate) struct Shared<K, C, R> {
    pub(crate) config: Config,
    pub(crate) classifier: K,
    pub(crate) clock: C,
    random: R,
    pub(crate) observer: Observer,
    window: Window,
    state: AtomicU8,
    /// When an open breaker goes half-open, in clock nanoseconds.
    open_until: AtomicU64,
    generation: AtomicU64,
    core: Mutex<Core>,
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
        Shared {
            window: Window::new(config.model),
            config,
            classifier,
            clock,
            random,
            observer,
            state: AtomicU8::new(CircuitState::Closed.to_u8()),
            open_until: AtomicU64::new(0),
            generation: AtomicU64::new(0),
            core: Mutex::new(Core {
                machine: Machine::new(),
                waiters: Vec::new(),
            }),
        }
    }

    fn load_state(&self) -> CircuitState {
        CircuitState::from_u8(self.state.load(Ordering::Acquire))
    }

    /// Whether a finished call must read the clock: for a time window, for
    /// slow-call detection, or to time it for an observer.
    pub(crate) fn times_calls(&self) -> bool {
        self.window.needs_time() || self.config.slow_calls.is_some() || self.observer.is_active()
    }

    /// May a call go through now? On refusal, `Err(until)`: when a call may
    /// next go through, if known.
    ///
    /// `waker`, if given, is registered to be woken at the next change of
    /// state or freed probe slot (backpressure mode).
    pub(crate) fn admit(&self, waker: Option<&Waker>) -> Result<Permit, Option<Instant>> {
        match self.load_state() {
            CircuitState::Closed | CircuitState::MetricsOnly => {
                return Ok(Permit::Counted {
                    generation: self.generation.load(Ordering::Acquire),
                });
            }
            CircuitState::Disabled => return Ok(Permit::Uncounted),
            CircuitState::Open if waker.is_none() => {
                // Rejecting while open needs no lock.
                let now = self.clock.now();
                let until = Instant::from_nanos(self.open_until.load(Ordering::Acquire));
                if now < until {
                    self.reject(now, Some(until));
                    return Err(Some(until));
                }
            }
            _ => {}
        }
        let now = self.clock.now();
        let mut core = lock(&self.core);
        let (admission, transition) = core.machine.admit(now, &self.config, &self.random);
        let woken = self.publish(&mut core, transition);
        let result = match admission {
            Admission::Call if core.machine.state() == CircuitState::Disabled => {
                Ok(Permit::Uncounted)
            }
            Admission::Call => Ok(Permit::Counted {
                generation: self.generation.load(Ordering::Acquire),
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
        if let Err(until) = result {
            self.reject(now, until);
        }
        result
    }

    fn reject(&self, now: Instant, until: Option<Instant>) {
        if self.observer.is_active() {
            self.observer.emit(
                now,
                EventKind::Rejected {
                    kind: RejectionKind::CircuitOpen,
                    retry_after: until.map(|until| until - now),
                },
            );
        }
    }

    /// The error for a call refused at `until`.
    pub(crate) fn rejection(&self, until: Option<Instant>) -> CircuitOpen {
        let retry_after = until.map(|until| until - self.clock.now());
        CircuitOpen::new(self.observer.name().clone(), retry_after)
    }

    /// A call made under `permit` finished (or was dropped, as `Ignored`).
    pub(crate) fn finish(&self, permit: &Permit, report: Report) {
        match *permit {
            Permit::Uncounted => {}
            Permit::Counted { generation } => self.count(generation, report),
            Permit::Probe { id } => {
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
        }
    }

    fn count(&self, generation: u64, report: Report) {
        if report.outcome == Outcome::Ignored
            || self.generation.load(Ordering::Acquire) != generation
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
        if self.observer.is_active() {
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
        if stats.failure_rate()? >= self.config.failure_rate {
            return Some(Reason::FailureRate);
        }
        let slow = self.config.slow_calls?;
        (stats.slow_call_rate()? >= slow.rate).then_some(Reason::SlowCallRate)
    }

    fn trip(&self, generation: u64, reason: Reason, pushback: Option<Duration>) {
        let now = self.clock.now();
        let mut core = lock(&self.core);
        // Another call may have tripped it already: one transition, one event.
        if self.generation.load(Ordering::Acquire) != generation {
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

    /// The window's counts and the probes in flight.
    pub(crate) fn stats(&self) -> (Stats, usize) {
        let stats = self.window.stats(self.clock.now());
        (stats, lock(&self.core).machine.probes_in_flight())
    }

    /// Moves to `target` by hand; `reset` also forgets the window when the
    /// breaker is already closed.
    pub(crate) fn force(&self, target: CircuitState, reset: bool) {
        let now = self.clock.now();
        let mut core = lock(&self.core);
        let transition = core.machine.force(target);
        if transition.is_none() && reset {
            self.window.reset();
            self.generation.fetch_add(1, Ordering::AcqRel);
        }
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
        self.open_until
            .store(core.machine.open_until().as_nanos(), Ordering::Release);
        if matches!(
            transition.to,
            CircuitState::Closed | CircuitState::MetricsOnly
        ) {
            self.window.reset();
        }
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.state.store(transition.to.to_u8(), Ordering::Release);
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
                &CircuitState::from_u8(self.state.load(Ordering::Relaxed)),
            )
            .finish_non_exhaustive()
    }
}

//! The breaker's state machine, pure: it takes `now` (and a random source
//! where a jittered open duration is drawn) and returns decisions. It reads
//! no clock and does no I/O; the service shell around it publishes its
//! decisions to the atomics of the fast path and emits the events.
//!
//! The closed state's counting is not here but in `window.rs`: it runs
//! lock-free on every call. This machine runs under a lock, on the rare
//! paths: tripping open, admitting while not closed, probe results, and
//! administrative changes.

use std::{fmt, time::Duration};

use super::config::Config;
use crate::{clock::Instant, random::Random};

/// The state of a circuit breaker.
///
/// # Examples
///
/// ```
/// use palisade::circuit_breaker::CircuitState;
/// assert_eq!(CircuitState::HalfOpen.as_str(), "half_open");
/// assert!(CircuitState::ForcedOpen.rejects_all());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CircuitState {
    /// Calls flow and are counted; enough failures open the breaker.
    Closed,
    /// Calls are rejected until the open duration has passed.
    Open,
    /// A few probe calls are let through to decide between closing and
    /// re-opening.
    HalfOpen,
    /// Set by hand: every call is rejected until the state is changed by hand.
    ForcedOpen,
    /// Set by hand: every call flows and nothing is counted.
    Disabled,
    /// Set by hand: every call flows and is counted and reported, but the
    /// breaker never opens. For trying thresholds out on live traffic.
    MetricsOnly,
}

impl CircuitState {
    /// The snake_case name used in events and metrics.
    ///
    /// ```
    /// use palisade::circuit_breaker::CircuitState;
    /// assert_eq!(CircuitState::MetricsOnly.as_str(), "metrics_only");
    /// ```
    pub const fn as_str(self) -> &'static str {
        match self {
            CircuitState::Closed => "closed",
            CircuitState::Open => "open",
            CircuitState::HalfOpen => "half_open",
            CircuitState::ForcedOpen => "forced_open",
            CircuitState::Disabled => "disabled",
            CircuitState::MetricsOnly => "metrics_only",
        }
    }

    /// Whether every call is rejected in this state (`Open`, `ForcedOpen`).
    ///
    /// ```
    /// use palisade::circuit_breaker::CircuitState;
    /// assert!(CircuitState::Open.rejects_all());
    /// assert!(!CircuitState::HalfOpen.rejects_all());
    /// ```
    pub const fn rejects_all(self) -> bool {
        matches!(self, CircuitState::Open | CircuitState::ForcedOpen)
    }

    pub(crate) const fn to_u8(self) -> u8 {
        self as u8
    }

    pub(crate) const fn from_u8(value: u8) -> CircuitState {
        match value {
            0 => CircuitState::Closed,
            1 => CircuitState::Open,
            2 => CircuitState::HalfOpen,
            3 => CircuitState::ForcedOpen,
            4 => CircuitState::Disabled,
            _ => CircuitState::MetricsOnly,
        }
    }
}

impl fmt::Display for CircuitState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A change of state, with its reason.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Transition {
    pub(crate) from: CircuitState,
    pub(crate) to: CircuitState,
    pub(crate) reason: Reason,
}

/// Why the breaker changed state: the `reason` of the transition event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Reason {
    ConsecutiveFailures,
    FailureRate,
    SlowCallRate,
    /// The classifier said to open for a while (`Retry-After` and the like).
    Pushback,
    OpenDurationElapsed,
    ProbesSucceeded,
    ProbesFailed,
    Forced,
    /// Opened by hand for a given time ([`open_for`](Machine::open_for)).
    OpenedByHand,
    /// Moved to half-open by hand ([`half_open`](Machine::half_open)).
    HalfOpenedByHand,
}

impl Reason {
    pub(crate) const fn as_str(self) -> &'static str {
        match self {
            Reason::ConsecutiveFailures => "consecutive_failures",
            Reason::FailureRate => "failure_rate",
            Reason::SlowCallRate => "slow_call_rate",
            Reason::Pushback => "pushback",
            Reason::OpenDurationElapsed => "open_duration_elapsed",
            Reason::ProbesSucceeded => "probes_succeeded",
            Reason::ProbesFailed => "probes_failed",
            Reason::Forced => "forced",
            Reason::OpenedByHand => "opened_by_hand",
            Reason::HalfOpenedByHand => "half_opened_by_hand",
        }
    }
}

/// How a probe ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ProbeOutcome {
    Success,
    Failure,
    /// Dropped before it finished, or classified as ignored: frees the slot,
    /// counts for nothing.
    Ignored,
}

/// The answer to "may this call go through?" in a state other than closed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Admission {
    /// Let it through uncounted (disabled) or counted (closed, metrics-only).
    Call,
    /// Let it through as the half-open probe with this id.
    Probe(u64),
    /// Refuse it. `until` is when the breaker will next let a call through,
    /// if known (not when forced open, nor when half-open with every probe
    /// slot taken).
    Reject { until: Option<Instant> },
}

#[derive(Clone, Copy, Debug)]
struct Probe {
    id: u64,
    admitted: Instant,
}

/// The state machine. All methods take the current time; none reads a clock.
#[derive(Debug)]
pub(crate) struct Machine {
    state: CircuitState,
    /// When an open breaker goes half-open.
    open_until: Instant,
    /// Opens since the breaker last closed: the exponent of a growing open
    /// duration.
    reopens: u32,
    probes: Vec<Probe>,
    next_probe: u64,
    probe_successes: u32,
    probe_failures: u32,
}

impl Machine {
    pub(crate) fn new() -> Machine {
        Machine {
            state: CircuitState::Closed,
            open_until: Instant::ZERO,
            reopens: 0,
            probes: Vec::new(),
            next_probe: 0,
            probe_successes: 0,
            probe_failures: 0,
        }
    }

    pub(crate) fn state(&self) -> CircuitState {
        self.state
    }

    pub(crate) fn open_until(&self) -> Instant {
        self.open_until
    }

    /// Probes admitted and not yet finished.
    pub(crate) fn probes_in_flight(&self) -> usize {
        self.probes.len()
    }

    /// Brings the state up to date with `now`: an open breaker whose time is
    /// up goes half-open; a half-open breaker counts probes that have run
    /// past their timeout as failures.
    pub(crate) fn refresh(
        &mut self,
        now: Instant,
        config: &Config,
        random: &impl Random,
    ) -> Option<Transition> {
        match self.state {
            CircuitState::Open if self.open_until.is_due(now) => {
                self.probes.clear();
                self.probe_successes = 0;
                self.probe_failures = 0;
                Some(self.enter(CircuitState::HalfOpen, Reason::OpenDurationElapsed))
            }
            CircuitState::HalfOpen => {
                let timeout = config.half_open.timeout;
                let before = self.probes.len();
                self.probes
                    .retain(|probe| now.saturating_duration_since(probe.admitted) < timeout);
                let expired = (before - self.probes.len()) as u32;
                self.probe_failures += expired;
                if expired > 0 {
                    self.decide(now, config, random)
                } else {
                    None
                }
            }
            _ => None,
        }
    }

    /// May a call go through now? For any state but closed (the shell
    /// admits closed calls without the lock). Refreshes first.
    pub(crate) fn admit(
        &mut self,
        now: Instant,
        config: &Config,
        random: &impl Random,
    ) -> (Admission, Option<Transition>) {
        let transition = self.refresh(now, config, random);
        let admission = match self.state {
            CircuitState::Closed | CircuitState::Disabled | CircuitState::MetricsOnly => {
                Admission::Call
            }
            CircuitState::Open => Admission::Reject {
                until: Some(self.open_until),
            },
            CircuitState::ForcedOpen => Admission::Reject { until: None },
            CircuitState::HalfOpen => {
                if self.probes.len() < config.half_open.max_probes as usize {
                    let id = self.next_probe;
                    self.next_probe += 1;
                    self.probes.push(Probe { id, admitted: now });
                    Admission::Probe(id)
                } else {
                    Admission::Reject { until: None }
                }
            }
        };
        (admission, transition)
    }

    /// The closed window crossed a threshold (or the classifier asked to
    /// open for `pushback`): open, if still closed.
    pub(crate) fn trip(
        &mut self,
        now: Instant,
        reason: Reason,
        pushback: Option<Duration>,
        config: &Config,
        random: &impl Random,
    ) -> Option<Transition> {
        if self.state != CircuitState::Closed {
            return None;
        }
        Some(self.open(now, reason, pushback, config, random))
    }

    /// A probe finished. Results of probes no longer tracked (timed out, or
    /// from an earlier half-open period) are ignored.
    pub(crate) fn probe_finished(
        &mut self,
        id: u64,
        outcome: ProbeOutcome,
        pushback: Option<Duration>,
        now: Instant,
        config: &Config,
        random: &impl Random,
    ) -> Option<Transition> {
        if self.state != CircuitState::HalfOpen {
            return None;
        }
        let index = self.probes.iter().position(|probe| probe.id == id)?;
        self.probes.swap_remove(index);
        match outcome {
            ProbeOutcome::Ignored => return None,
            ProbeOutcome::Success => self.probe_successes += 1,
            ProbeOutcome::Failure if pushback.is_some() => {
                return Some(self.open(now, Reason::Pushback, pushback, config, random));
            }
            ProbeOutcome::Failure => self.probe_failures += 1,
        }
        self.decide(now, config, random)
    }

    /// Moves to `target` by hand. `Closed` also clears the growth of the open
    /// duration. `Open` and `HalfOpen` are not targets: use `ForcedOpen`, or
    /// let the breaker decide.
    pub(crate) fn force(&mut self, target: CircuitState) -> Option<Transition> {
        debug_assert!(!matches!(
            target,
            CircuitState::Open | CircuitState::HalfOpen
        ));
        self.probes.clear();
        if target == CircuitState::Closed {
            self.reopens = 0;
        }
        if self.state == target {
            return None;
        }
        Some(self.enter(target, Reason::Forced))
    }

    /// Opens by hand until `now + duration`, then half-open as usual. From
    /// any state, an open one included (its time is replaced); the growth
    /// of the open duration is left as it is.
    pub(crate) fn open_for(&mut self, now: Instant, duration: Duration) -> Transition {
        self.open_until = now.saturating_add(duration);
        self.probes.clear();
        self.enter(CircuitState::Open, Reason::OpenedByHand)
    }

    /// Half-open by hand, now: probes decide as after an open duration.
    pub(crate) fn half_open(&mut self) -> Option<Transition> {
        self.probes.clear();
        self.probe_successes = 0;
        self.probe_failures = 0;
        if self.state == CircuitState::HalfOpen {
            return None;
        }
        Some(self.enter(CircuitState::HalfOpen, Reason::HalfOpenedByHand))
    }

    /// Close or re-open once the probe results make the outcome certain.
    fn decide(
        &mut self,
        now: Instant,
        config: &Config,
        random: &impl Random,
    ) -> Option<Transition> {
        let needed = config.half_open.successes_to_close();
        let allowed_failures = config.half_open.probes - needed;
        if self.probe_successes >= needed {
            self.reopens = 0;
            self.probes.clear();
            Some(self.enter(CircuitState::Closed, Reason::ProbesSucceeded))
        } else if self.probe_failures > allowed_failures {
            Some(self.open(now, Reason::ProbesFailed, None, config, random))
        } else {
            None
        }
    }

    fn open(
        &mut self,
        now: Instant,
        reason: Reason,
        pushback: Option<Duration>,
        config: &Config,
        random: &impl Random,
    ) -> Transition {
        let duration = match pushback {
            Some(wait) => wait.min(config.max_pushback),
            None => config.open_duration.nth(self.reopens, random.next_f64()),
        };
        self.reopens = self.reopens.saturating_add(1);
        self.open_until = now + duration;
        self.probes.clear();
        self.enter(CircuitState::Open, reason)
    }

    fn enter(&mut self, to: CircuitState, reason: Reason) -> Transition {
        let from = self.state;
        self.state = to;
        Transition { from, to, reason }
    }
}

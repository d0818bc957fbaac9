//! Events as `metrics` counters, gauges and histograms (names in the module
//! docs of `observe`).

use std::sync::{Mutex, OnceLock, PoisonError};

use metrics::{Counter, Gauge, Histogram, Label, SharedString, Unit};

use super::EventKind;
use crate::{LayerName, classify::Outcome, error::RejectionKind};

const OUTCOMES: [Outcome; 3] = [Outcome::Success, Outcome::Failure, Outcome::Ignored];

/// The `result` labels of `palisade_retry_calls_total`, indexed by
/// `2 · retried + failed`.
const RETRY_RESULTS: [&str; 4] = [
    "succeeded_first_attempt",
    "failed_without_retry",
    "succeeded_after_retries",
    "failed_after_retries",
];

/// Every metric: its name, kind, unit and help text.
pub(super) const METRICS: [(&str, Kind, Option<Unit>, &str); 29] = [
    (
        "palisade_calls_permitted_total",
        Kind::Counter,
        Some(Unit::Count),
        "Calls let through to the wrapped service by a layer that follows them to their end (circuit breaker, bulkhead).",
    ),
    (
        "palisade_let_through_total",
        Kind::Counter,
        Some(Unit::Count),
        "Requests let through by a rate limiter (within its limit) or answered in time under a timeout.",
    ),
    (
        "palisade_calls_total",
        Kind::Counter,
        Some(Unit::Count),
        "Calls finished, by outcome as the layer's classifier saw them (success, failure, ignored).",
    ),
    (
        "palisade_call_duration_seconds",
        Kind::Histogram,
        Some(Unit::Seconds),
        "Time from a call's permit to its end, on the layer's clock, by outcome.",
    ),
    (
        "palisade_calls_in_flight",
        Kind::Gauge,
        Some(Unit::Count),
        "Calls permitted and not yet finished.",
    ),
    (
        "palisade_rejections_total",
        Kind::Counter,
        Some(Unit::Count),
        "Calls refused without calling the wrapped service, by kind of refusal.",
    ),
    (
        "palisade_transitions_total",
        Kind::Counter,
        Some(Unit::Count),
        "Circuit breaker state transitions, by state left and entered.",
    ),
    (
        "palisade_state",
        Kind::Gauge,
        None,
        "1 for the circuit breaker's current state, 0 for the states it left.",
    ),
    (
        "palisade_failure_ratio",
        Kind::Gauge,
        None,
        "Failures over calls in the circuit breaker's window, from 0 to 1.",
    ),
    (
        "palisade_slow_call_ratio",
        Kind::Gauge,
        None,
        "Slow calls over calls in the circuit breaker's window, from 0 to 1.",
    ),
    (
        "palisade_retries_total",
        Kind::Counter,
        Some(Unit::Count),
        "Retries scheduled.",
    ),
    (
        "palisade_retry_delay_seconds",
        Kind::Histogram,
        Some(Unit::Seconds),
        "The wait before each retry.",
    ),
    (
        "palisade_retries_exhausted_total",
        Kind::Counter,
        Some(Unit::Count),
        "Calls that failed after their last allowed attempt or past their deadline.",
    ),
    (
        "palisade_budget_exhausted_total",
        Kind::Counter,
        Some(Unit::Count),
        "Retries not made because the retry budget was spent.",
    ),
    (
        "palisade_bodies_not_buffered_total",
        Kind::Counter,
        Some(Unit::Count),
        "Request bodies over the buffering limit, sent once and not retried.",
    ),
    (
        "palisade_retry_calls_total",
        Kind::Counter,
        Some(Unit::Count),
        "Calls through a retry layer, by result (succeeded or failed, with or without retries).",
    ),
    (
        "palisade_timeouts_total",
        Kind::Counter,
        Some(Unit::Count),
        "Calls that timed out.",
    ),
    (
        "palisade_fallbacks_total",
        Kind::Counter,
        Some(Unit::Count),
        "Failed calls answered by a fallback, by reason.",
    ),
    (
        "palisade_cache_answers_total",
        Kind::Counter,
        Some(Unit::Count),
        "Failed calls answered from a cached fallback's last good answers, by reason.",
    ),
    (
        "palisade_cache_answer_age_seconds",
        Kind::Histogram,
        Some(Unit::Seconds),
        "The age of the answers a cached fallback served, on the layer's clock.",
    ),
    (
        "palisade_cache_misses_total",
        Kind::Counter,
        Some(Unit::Count),
        "Failed calls a cached fallback had no answer for, by reason and found (none, or stale: only one too old).",
    ),
    (
        "palisade_store_unavailable_total",
        Kind::Counter,
        Some(Unit::Count),
        "Rate-limit decisions made without the Redis store, by cause and answer.",
    ),
    (
        "palisade_denial_cache_hits_total",
        Kind::Counter,
        Some(Unit::Count),
        "Requests refused from the local denial cache without a Redis round trip.",
    ),
    (
        "palisade_keys_missing_total",
        Kind::Counter,
        Some(Unit::Count),
        "Requests the rate limiter could find no key for.",
    ),
    (
        "palisade_reconfigurations_total",
        Kind::Counter,
        Some(Unit::Count),
        "Settings changed on a running layer, by setting.",
    ),
    (
        "palisade_chaos_injections_total",
        Kind::Counter,
        Some(Unit::Count),
        "Faults and delays a chaos layer injected, by kind.",
    ),
    (
        "palisade_hedges_total",
        Kind::Counter,
        Some(Unit::Count),
        "Extra attempts a hedging layer sent.",
    ),
    (
        "palisade_hedge_wins_total",
        Kind::Counter,
        Some(Unit::Count),
        "Hedged requests answered, by the attempt that answered.",
    ),
    (
        "palisade_concurrency_limit",
        Kind::Gauge,
        Some(Unit::Count),
        "The calls an adaptive limit lets in flight.",
    ),
];

/// The kind of a metric.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    Counter,
    Gauge,
    Histogram,
}

/// Tells the installed recorder every metric's unit and help text.
pub(super) fn describe() {
    for (name, kind, unit, help) in METRICS {
        let help = SharedString::const_str(help);
        match (kind, unit) {
            (Kind::Counter, Some(unit)) => metrics::describe_counter!(name, unit, help),
            (Kind::Counter, None) => metrics::describe_counter!(name, help),
            (Kind::Gauge, Some(unit)) => metrics::describe_gauge!(name, unit, help),
            (Kind::Gauge, None) => metrics::describe_gauge!(name, help),
            (Kind::Histogram, Some(unit)) => metrics::describe_histogram!(name, unit, help),
            (Kind::Histogram, None) => metrics::describe_histogram!(name, help),
        }
    }
}

/// One layer's metric handles, each registered on first use and then kept.
///
/// Per-outcome and per-kind handles sit in arrays indexed by the enum's
/// discriminant (`Outcome` and `RejectionKind` are fieldless and declared in
/// the order of `OUTCOMES` and `RejectionKind::ALL`).
pub(super) struct MetricsSink {
    /// `layer` and `name`, the labels of every metric.
    labels: [Label; 2],
    permitted: OnceLock<Counter>,
    let_through: OnceLock<Counter>,
    in_flight: OnceLock<Gauge>,
    failure_rate: OnceLock<Gauge>,
    slow_call_rate: OnceLock<Gauge>,
    calls: [OnceLock<Counter>; OUTCOMES.len()],
    durations: [OnceLock<Histogram>; OUTCOMES.len()],
    rejections: [OnceLock<Counter>; RejectionKind::ALL.len()],
    retries: OnceLock<Counter>,
    retry_delays: OnceLock<Histogram>,
    retries_exhausted: OnceLock<Counter>,
    budget_exhausted: OnceLock<Counter>,
    bodies_not_buffered: OnceLock<Counter>,
    /// By `RETRY_RESULTS`.
    completed: [OnceLock<Counter>; RETRY_RESULTS.len()],
    timeouts: OnceLock<Counter>,
    denial_cache_hits: OnceLock<Counter>,
    keys_missing: OnceLock<Counter>,
    store_unavailable: Keyed<(&'static str, &'static str), Counter>,
    /// Keyed by labels only known at run time; these events are rare
    /// (transitions, fallbacks), so a short list behind a lock serves.
    transitions: Keyed<(&'static str, &'static str), Counter>,
    states: Keyed<&'static str, Gauge>,
    fallbacks: Keyed<&'static str, Counter>,
    cache_answers: Keyed<&'static str, Counter>,
    cache_ages: OnceLock<Histogram>,
    cache_misses: Keyed<(&'static str, bool), Counter>,
    reconfigurations: Keyed<&'static str, Counter>,
    injections: Keyed<&'static str, Counter>,
    hedges: OnceLock<Counter>,
    hedge_wins: Keyed<u32, Counter>,
    limit: OnceLock<Gauge>,
}

impl MetricsSink {
    pub(super) fn new(layer: &'static str, name: &LayerName) -> MetricsSink {
        describe();
        MetricsSink {
            labels: [
                Label::new("layer", layer),
                Label::new("name", name.to_string()),
            ],
            permitted: OnceLock::new(),
            let_through: OnceLock::new(),
            in_flight: OnceLock::new(),
            failure_rate: OnceLock::new(),
            slow_call_rate: OnceLock::new(),
            calls: Default::default(),
            durations: Default::default(),
            rejections: Default::default(),
            retries: OnceLock::new(),
            retry_delays: OnceLock::new(),
            retries_exhausted: OnceLock::new(),
            budget_exhausted: OnceLock::new(),
            bodies_not_buffered: OnceLock::new(),
            completed: Default::default(),
            timeouts: OnceLock::new(),
            denial_cache_hits: OnceLock::new(),
            keys_missing: OnceLock::new(),
            store_unavailable: Keyed::default(),
            transitions: Keyed::default(),
            states: Keyed::default(),
            fallbacks: Keyed::default(),
            cache_answers: Keyed::default(),
            cache_ages: OnceLock::new(),
            cache_misses: Keyed::default(),
            reconfigurations: Keyed::default(),
            injections: Keyed::default(),
            hedges: OnceLock::new(),
            hedge_wins: Keyed::default(),
            limit: OnceLock::new(),
        }
    }

    pub(super) fn record(&self, kind: &EventKind) {
        match *kind {
            EventKind::Permitted => {
                self.counter(&self.permitted, "palisade_calls_permitted_total", &[])
                    .increment(1);
                self.in_flight().increment(1.0);
            }
            EventKind::Reconfigured { setting, .. } => self
                .reconfigurations
                .get(setting, || {
                    let labels = [Label::new("setting", setting)];
                    metrics::counter!("palisade_reconfigurations_total", self.with(&labels))
                })
                .increment(1),
            EventKind::LetThrough => self
                .counter(&self.let_through, "palisade_let_through_total", &[])
                .increment(1),
            EventKind::Finished { outcome, elapsed } => {
                let label = [Label::new("outcome", outcome.as_str())];
                let i = outcome as usize;
                self.counter(&self.calls[i], "palisade_calls_total", &label)
                    .increment(1);
                self.histogram(&self.durations[i], "palisade_call_duration_seconds", &label)
                    .record(elapsed.as_secs_f64());
                self.in_flight().decrement(1.0);
            }
            EventKind::Rejected { kind, .. } => {
                let label = [Label::new("kind", kind.as_str())];
                self.counter(
                    &self.rejections[kind as usize],
                    "palisade_rejections_total",
                    &label,
                )
                .increment(1);
            }
            EventKind::Transition { from, to, .. } => {
                self.transitions
                    .get((from, to), || {
                        let labels = [Label::new("from", from), Label::new("to", to)];
                        metrics::counter!("palisade_transitions_total", self.with(&labels))
                    })
                    .increment(1);
                self.state(from).set(0.0);
                self.state(to).set(1.0);
            }
            EventKind::Rates {
                failure_rate,
                slow_call_rate,
            } => {
                self.gauge(&self.failure_rate, "palisade_failure_ratio")
                    .set(failure_rate);
                self.gauge(&self.slow_call_rate, "palisade_slow_call_ratio")
                    .set(slow_call_rate);
            }
            EventKind::RetryScheduled { delay, .. } => {
                self.counter(&self.retries, "palisade_retries_total", &[])
                    .increment(1);
                self.histogram(&self.retry_delays, "palisade_retry_delay_seconds", &[])
                    .record(delay.as_secs_f64());
            }
            EventKind::RetriesExhausted { .. } => self
                .counter(
                    &self.retries_exhausted,
                    "palisade_retries_exhausted_total",
                    &[],
                )
                .increment(1),
            EventKind::BudgetExhausted => self
                .counter(
                    &self.budget_exhausted,
                    "palisade_budget_exhausted_total",
                    &[],
                )
                .increment(1),
            EventKind::BodyNotBuffered { .. } => self
                .counter(
                    &self.bodies_not_buffered,
                    "palisade_bodies_not_buffered_total",
                    &[],
                )
                .increment(1),
            EventKind::Completed { attempts, success } => {
                let i = 2 * usize::from(attempts > 1) + usize::from(!success);
                let label = [Label::new("result", RETRY_RESULTS[i])];
                self.counter(&self.completed[i], "palisade_retry_calls_total", &label)
                    .increment(1);
            }
            EventKind::TimedOut { .. } => self
                .counter(&self.timeouts, "palisade_timeouts_total", &[])
                .increment(1),
            EventKind::StoreUnavailable { cause, answer } => self
                .store_unavailable
                .get((cause, answer), || {
                    let labels = [Label::new("cause", cause), Label::new("answer", answer)];
                    metrics::counter!("palisade_store_unavailable_total", self.with(&labels))
                })
                .increment(1),
            EventKind::KeyMissing { .. } => self
                .counter(&self.keys_missing, "palisade_keys_missing_total", &[])
                .increment(1),
            EventKind::Hedged { .. } => self
                .counter(&self.hedges, "palisade_hedges_total", &[])
                .increment(1),
            EventKind::HedgeWon { attempt } => self
                .hedge_wins
                .get(attempt, || {
                    let labels = [Label::new("attempt", attempt.to_string())];
                    metrics::counter!("palisade_hedge_wins_total", self.with(&labels))
                })
                .increment(1),
            EventKind::LimitChanged { limit } => self
                .gauge(&self.limit, "palisade_concurrency_limit")
                .set(f64::from(limit)),
            EventKind::Injected { fault } => self
                .injections
                .get(fault, || {
                    let labels = [Label::new("fault", fault)];
                    metrics::counter!("palisade_chaos_injections_total", self.with(&labels))
                })
                .increment(1),
            EventKind::DenialCacheHit => self
                .counter(
                    &self.denial_cache_hits,
                    "palisade_denial_cache_hits_total",
                    &[],
                )
                .increment(1),
            EventKind::CacheAnswered { reason, age } => {
                self.cache_answers
                    .get(reason, || {
                        let labels = [Label::new("reason", reason)];
                        metrics::counter!("palisade_cache_answers_total", self.with(&labels))
                    })
                    .increment(1);
                self.histogram(&self.cache_ages, "palisade_cache_answer_age_seconds", &[])
                    .record(age.as_secs_f64());
            }
            EventKind::CacheMissed { reason, stale } => self
                .cache_misses
                .get((reason, stale), || {
                    let found = if stale { "stale" } else { "none" };
                    let labels = [Label::new("reason", reason), Label::new("found", found)];
                    metrics::counter!("palisade_cache_misses_total", self.with(&labels))
                })
                .increment(1),
            EventKind::FallbackUsed { reason } => self
                .fallbacks
                .get(reason, || {
                    let labels = [Label::new("reason", reason)];
                    metrics::counter!("palisade_fallbacks_total", self.with(&labels))
                })
                .increment(1),
        }
    }

    fn counter<'a>(
        &self,
        slot: &'a OnceLock<Counter>,
        name: &'static str,
        extra: &[Label],
    ) -> &'a Counter {
        slot.get_or_init(|| metrics::counter!(name, self.with(extra)))
    }

    fn histogram<'a>(
        &self,
        slot: &'a OnceLock<Histogram>,
        name: &'static str,
        extra: &[Label],
    ) -> &'a Histogram {
        slot.get_or_init(|| metrics::histogram!(name, self.with(extra)))
    }

    fn gauge<'a>(&self, slot: &'a OnceLock<Gauge>, name: &'static str) -> &'a Gauge {
        slot.get_or_init(|| metrics::gauge!(name, self.with(&[])))
    }

    fn in_flight(&self) -> &Gauge {
        self.gauge(&self.in_flight, "palisade_calls_in_flight")
    }

    fn state(&self, state: &'static str) -> Gauge {
        self.states.get(state, || {
            let labels = [Label::new("state", state)];
            metrics::gauge!("palisade_state", self.with(&labels))
        })
    }

    /// The layer's labels followed by `extra`.
    fn with(&self, extra: &[Label]) -> Vec<Label> {
        self.labels.iter().chain(extra).cloned().collect()
    }
}

/// Handles for label values known only at run time.
struct Keyed<K, H> {
    handles: Mutex<Vec<(K, H)>>,
}

impl<K, H> Default for Keyed<K, H> {
    fn default() -> Self {
        Keyed {
            handles: Mutex::new(Vec::new()),
        }
    }
}

impl<K: PartialEq, H: Clone> Keyed<K, H> {
    fn get(&self, key: K, register: impl FnOnce() -> H) -> H {
        let mut handles = self.handles.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((_, handle)) = handles.iter().find(|(k, _)| *k == key) {
            return handle.clone();
        }
        let handle = register();
        handles.push((key, handle.clone()));
        handle
    }
}

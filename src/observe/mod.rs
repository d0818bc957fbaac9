//! One event vocabulary for every layer, and the sinks that receive it.
//!
//! Each layer owns an [`Observer`] and tells it what happens through
//! [`Observer::emit`]: a call let through, a call finished with its
//! [`Outcome`], a rejection, a state transition, a retry… ([`EventKind`]).
//! Every event carries the kind of layer, the layer's [`LayerName`] and the
//! [`Instant`] on the layer's clock. The observer hands it to:
//!
//! - **listeners** — plain closures you register with [`ObserverBuilder::on_event`].
//!   They run synchronously on the path of the call, so keep them quick. A
//!   listener that panics is caught: the layer and its state carry on, the
//!   other listeners still run, and the panic is counted
//!   ([`Observer::listener_panics`]). (Under `panic = "abort"` nothing can be
//!   caught.)
//! - **metrics** (feature `metrics`) — the `metrics` facade, with the names
//!   below. Each handle is registered with the recorder the first time it is
//!   needed and kept: no look-up per call. Install your recorder before
//!   traffic flows.
//! - **tracing** (feature `tracing`) — an event whose target is the layer's
//!   module (`palisade::circuit_breaker`, `palisade::rate_limit`,
//!   `palisade::retry`, …, so `RUST_LOG=palisade::retry=debug` picks one
//!   pattern) with the fields `layer` and `name`, at `TRACE` for calls
//!   permitted, let through and finished, `DEBUG` for rejections, retries,
//!   timeouts and fallbacks, `INFO` for state transitions, `WARN` when
//!   retries or a budget run out. The retry layer also runs each attempt
//!   inside a span `retry_attempt` with the field `attempt` (1 for the
//!   first call), so the wrapped service's own events say which attempt
//!   they belong to.
//!
//! # Metrics
//!
//! Every metric has the labels `layer` (the kind of layer, such as
//! `circuit_breaker`) and `name` (the [`LayerName`]). Names follow
//! Prometheus's conventions: `_total` for counters, `_seconds` for
//! durations, `_ratio` for gauges from 0 to 1. Each is described to the
//! recorder (unit and help text, Prometheus's `# HELP` line) when a layer is
//! built, and again by [`describe_metrics`] for a recorder installed later.
//!
//! | metric | type | extra labels | from |
//! |---|---|---|---|
//! | `palisade_calls_permitted_total` | counter | | [`EventKind::Permitted`] |
//! | `palisade_let_through_total` | counter | | [`EventKind::LetThrough`] (rate limiter, timeout) |
//! | `palisade_calls_total` | counter | `outcome` = `success` \| `failure` \| `ignored` | [`EventKind::Finished`] |
//! | `palisade_call_duration_seconds` | histogram | `outcome` | [`EventKind::Finished`] |
//! | `palisade_calls_in_flight` | gauge | | +1 on `Permitted`, −1 on `Finished` |
//! | `palisade_rejections_total` | counter | `kind` = [`RejectionKind::as_str`] | [`EventKind::Rejected`] |
//! | `palisade_transitions_total` | counter | `from`, `to` | [`EventKind::Transition`] |
//! | `palisade_state` | gauge | `state` | 1 for the current state, 0 for states left |
//! | `palisade_failure_ratio` | gauge (0–1) | | [`EventKind::Rates`] |
//! | `palisade_slow_call_ratio` | gauge (0–1) | | [`EventKind::Rates`] |
//! | `palisade_retries_total` | counter | | [`EventKind::RetryScheduled`] |
//! | `palisade_retry_delay_seconds` | histogram | | [`EventKind::RetryScheduled`] |
//! | `palisade_retries_exhausted_total` | counter | | [`EventKind::RetriesExhausted`] |
//! | `palisade_budget_exhausted_total` | counter | | [`EventKind::BudgetExhausted`] |
//! | `palisade_bodies_not_buffered_total` | counter | | [`EventKind::BodyNotBuffered`] |
//! | `palisade_retry_calls_total` | counter | `result` = `succeeded_first_attempt` \| `succeeded_after_retries` \| `failed_after_retries` \| `failed_without_retry` | [`EventKind::Completed`] |
//! | `palisade_timeouts_total` | counter | | [`EventKind::TimedOut`] |
//! | `palisade_fallbacks_total` | counter | `reason` | [`EventKind::FallbackUsed`] |
//! | `palisade_cache_answers_total` | counter | `reason` | [`EventKind::CacheAnswered`] |
//! | `palisade_cache_answer_age_seconds` | histogram | | [`EventKind::CacheAnswered`] |
//! | `palisade_cache_misses_total` | counter | `reason`, `found` = `none` \| `stale` | [`EventKind::CacheMissed`] |
//! | `palisade_store_unavailable_total` | counter | `cause`, `answer` | [`EventKind::StoreUnavailable`] |
//! | `palisade_denial_cache_hits_total` | counter | | [`EventKind::DenialCacheHit`] |
//! | `palisade_keys_missing_total` | counter | | [`EventKind::KeyMissing`] |
//! | `palisade_reconfigurations_total` | counter | `setting` | [`EventKind::Reconfigured`] |
//! | `palisade_chaos_injections_total` | counter | `fault` | [`EventKind::Injected`] |
//! | `palisade_hedges_total` | counter | | [`EventKind::Hedged`] |
//! | `palisade_hedge_wins_total` | counter | `attempt` | [`EventKind::HedgeWon`] |
//! | `palisade_concurrency_limit` | gauge | | [`EventKind::LimitChanged`] |
//!
//! # Examples
//!
//! ```
//! use std::sync::{Arc, Mutex};
//! use palisade::{clock::Instant, classify::Outcome, observe::{EventKind, ObserverBuilder}};
//!
//! let seen = Arc::new(Mutex::new(Vec::new()));
//! let observer = ObserverBuilder::new()
//!     .name("payments")
//!     .on_event({
//!         let seen = Arc::clone(&seen);
//!         move |event| seen.lock().unwrap().push((event.name.to_string(), event.kind))
//!     })
//!     .build("circuit_breaker");
//!
//! observer.emit(Instant::ZERO, EventKind::Permitted);
//! assert_eq!(seen.lock().unwrap()[0], ("payments".to_string(), EventKind::Permitted));
//! ```

#[cfg(feature = "metrics")]
mod metrics_sink;

/// Describes every palisade metric to the installed `metrics` recorder: its
/// unit and help text (feature `metrics`). Layers do it when built; call this
/// when the recorder is installed after the layers.
///
/// ```
/// palisade::observe::describe_metrics(); // a no-op without a recorder
/// ```
#[cfg(feature = "metrics")]
#[cfg_attr(docsrs, doc(cfg(feature = "metrics")))]
pub fn describe_metrics() {
    metrics_sink::describe();
}
#[cfg(feature = "tracing")]
mod tracing_sink;

use std::{
    fmt,
    panic::{AssertUnwindSafe, catch_unwind},
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use crate::{LayerName, classify::Outcome, clock::Instant, error::RejectionKind};

/// Something that happened in a layer.
///
/// # Examples
///
/// ```
/// use palisade::observe::{Event, EventKind, ObserverBuilder};
///
/// let observer = ObserverBuilder::new().on_event(|event: &Event<'_>| {
///     if let EventKind::Transition { from, to, .. } = event.kind {
///         println!("{} {}: {from} -> {to}", event.layer, event.name);
///     }
/// });
/// # let _ = observer;
/// ```
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Event<'a> {
    /// The kind of layer, such as `"circuit_breaker"` or `"retry"`.
    pub layer: &'static str,
    /// The layer's name.
    pub name: &'a LayerName,
    /// When it happened, on the layer's clock.
    pub at: Instant,
    /// What happened.
    pub kind: EventKind,
}

/// What happened, in the one vocabulary all layers share.
///
/// New kinds may be added in later versions, hence `#[non_exhaustive]`.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use palisade::{classify::Outcome, observe::EventKind};
///
/// let kind = EventKind::Finished { outcome: Outcome::Failure, elapsed: Duration::from_millis(12) };
/// assert_eq!(kind.as_str(), "finished");
/// ```
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum EventKind {
    /// A call was let through to the wrapped service.
    Permitted,
    /// A setting was changed on the running layer, from its handle: the
    /// setting's name (as the builder's method and the `ConfigError` field
    /// name it), its value before and after — durations in seconds, counts
    /// as numbers.
    Reconfigured {
        /// Such as `"timeout"` or `"max_concurrent"`.
        setting: &'static str,
        /// The value before.
        old: f64,
        /// The value now.
        new: f64,
    },
    /// A layer that does not follow the call to its end let it through: the
    /// rate limiter admitted it (within the limit, at once or after a
    /// wait), the timeout saw it answered in time. The counterpart of their
    /// `Rejected` and `TimedOut`.
    LetThrough,
    /// A permitted call finished. Every `Permitted` is followed by exactly
    /// one `Finished`; a call whose future was dropped finishes as
    /// [`Outcome::Ignored`] unless the layer is configured otherwise.
    Finished {
        /// How it turned out, by the layer's classifier.
        outcome: Outcome,
        /// From permitted to finished, on the layer's clock.
        elapsed: Duration,
    },
    /// The layer refused a call without calling the wrapped service.
    Rejected {
        /// Which rejection.
        kind: RejectionKind,
        /// The wait the rejection advised, if any.
        retry_after: Option<Duration>,
    },
    /// The layer moved from one state to another (circuit breakers).
    Transition {
        /// The state left, such as `"closed"`.
        from: &'static str,
        /// The state entered, such as `"open"`.
        to: &'static str,
        /// Why, such as `"failure_rate"` or `"forced"`.
        reason: &'static str,
    },
    /// The failure and slow-call rates of a breaker's window after a call
    /// was counted (emitted only while someone observes: a listener, or a
    /// sink feature).
    Rates {
        /// Failures over calls in the window.
        failure_rate: f64,
        /// Slow calls over calls in the window.
        slow_call_rate: f64,
    },
    /// A retry will be made after `delay`.
    RetryScheduled {
        /// The attempt about to be made: 2 for the first retry.
        attempt: u32,
        /// The wait before it.
        delay: Duration,
        /// Why: `"error"` (the attempt failed), `"response"` (the policy
        /// asked to retry a response) or `"pushback"` (the server said when).
        reason: &'static str,
    },
    /// The retry layer gave up: no attempts, or no time, left.
    RetriesExhausted {
        /// How many attempts were made.
        attempts: u32,
    },
    /// A budget refused an extra attempt: a retry's, or a hedge's.
    BudgetExhausted,
    /// A request body was larger than the retry layer's buffering limit:
    /// the request is sent once, and not retried.
    BodyNotBuffered {
        /// The limit, in bytes.
        limit: u64,
    },
    /// A call through a retry layer completed: its result was accepted, or
    /// attempts, time or budget ran out.
    Completed {
        /// How many attempts were made, the first included.
        attempts: u32,
        /// Whether the result returned is a response the policy accepted
        /// (as opposed to an error, or a result still asking for a retry).
        success: bool,
    },
    /// A call ran out of time and was dropped.
    TimedOut {
        /// The timeout that elapsed.
        after: Duration,
    },
    /// A fallback answered instead of the wrapped service.
    FallbackUsed {
        /// Why: a [`RejectionKind::as_str`], or `"failure"`.
        reason: &'static str,
    },
    /// A cached fallback answered a failed call with the last good answer
    /// to the same request.
    CacheAnswered {
        /// Why the call failed, as [`FallbackUsed`](EventKind::FallbackUsed)'s.
        reason: &'static str,
        /// How old the answer is.
        age: Duration,
    },
    /// A cached fallback had no answer for a failed call it would have
    /// answered (its request has no key, nothing was kept under it, or
    /// only an answer too old).
    CacheMissed {
        /// Why the call failed, as [`FallbackUsed`](EventKind::FallbackUsed)'s.
        reason: &'static str,
        /// Whether an answer was kept, too old to serve.
        stale: bool,
    },
    /// A rate limiter whose state lives in a store (Redis) decided without
    /// it: the store did not answer in time, failed, or its breaker is open.
    StoreUnavailable {
        /// Why: `"timeout"`, `"circuit_open"` or `"error"`.
        cause: &'static str,
        /// What the limiter did: `"admitted"` (fail open), `"refused"`
        /// (fail closed) or `"local"` (an in-process limit decided).
        answer: &'static str,
    },
    /// A rate limiter whose state lives in a store refused a request from
    /// what the store last said of its key, without asking it (a
    /// [`Rejected`](EventKind::Rejected) follows).
    DenialCacheHit,
    /// A keyed rate limiter refused a request because it found no key in
    /// it (usually a set-up step missing: the hint says which, when the key
    /// extractor knows).
    KeyMissing {
        /// Why the request has no key, when known.
        hint: Option<&'static str>,
    },
    /// A hedging layer sent another attempt at a request still unanswered.
    Hedged {
        /// Which: 2 for the first extra attempt.
        attempt: u32,
    },
    /// A request that was hedged was answered by attempt `attempt` (1: the
    /// first; the others were dropped).
    HedgeWon {
        /// The attempt whose answer was returned.
        attempt: u32,
    },
    /// A chaos layer injected a fault or a delay into a request.
    Injected {
        /// Which: `"error"`, `"response"`, `"hang"` or `"latency"`.
        fault: &'static str,
    },
    /// An adaptive limit moved: the calls it lets in flight now.
    LimitChanged {
        /// The new limit.
        limit: u32,
    },
}

impl EventKind {
    /// A snake_case name for the kind of event.
    ///
    /// ```
    /// use palisade::observe::EventKind;
    /// assert_eq!(EventKind::BudgetExhausted.as_str(), "budget_exhausted");
    /// ```
    pub const fn as_str(&self) -> &'static str {
        match self {
            EventKind::Permitted => "permitted",
            EventKind::Finished { .. } => "finished",
            EventKind::LetThrough => "let_through",
            EventKind::Reconfigured { .. } => "reconfigured",
            EventKind::Rejected { .. } => "rejected",
            EventKind::Transition { .. } => "transition",
            EventKind::Rates { .. } => "rates",
            EventKind::RetryScheduled { .. } => "retry_scheduled",
            EventKind::RetriesExhausted { .. } => "retries_exhausted",
            EventKind::BudgetExhausted => "budget_exhausted",
            EventKind::Completed { .. } => "completed",
            EventKind::BodyNotBuffered { .. } => "body_not_buffered",
            EventKind::TimedOut { .. } => "timed_out",
            EventKind::FallbackUsed { .. } => "fallback_used",
            EventKind::CacheAnswered { .. } => "cache_answered",
            EventKind::CacheMissed { .. } => "cache_missed",
            EventKind::StoreUnavailable { .. } => "store_unavailable",
            EventKind::DenialCacheHit => "denial_cache_hit",
            EventKind::KeyMissing { .. } => "key_missing",
            EventKind::Injected { .. } => "injected",
            EventKind::Hedged { .. } => "hedged",
            EventKind::HedgeWon { .. } => "hedge_won",
            EventKind::LimitChanged { .. } => "limit_changed",
        }
    }
}

type Listener = Arc<dyn Fn(&Event<'_>) + Send + Sync>;

/// How a layer is observed: its name and its listeners. Every layer's builder
/// holds one; [`build`](ObserverBuilder::build) turns it into the layer's
/// [`Observer`].
///
/// # Examples
///
/// ```
/// use palisade::observe::ObserverBuilder;
///
/// let observer = ObserverBuilder::new()
///     .name("inventory")
///     .on_event(|event| eprintln!("{}: {:?}", event.name, event.kind))
///     .build("bulkhead");
/// assert_eq!(observer.name().as_str(), "inventory");
/// ```
#[derive(Clone, Default)]
pub struct ObserverBuilder {
    name: Option<LayerName>,
    listeners: Vec<Listener>,
}

impl ObserverBuilder {
    /// No name (the layer's kind is used) and no listeners.
    ///
    /// ```
    /// let observer = palisade::observe::ObserverBuilder::new().build("retry");
    /// assert_eq!(observer.name().as_str(), "retry");
    /// ```
    pub fn new() -> ObserverBuilder {
        ObserverBuilder::default()
    }

    /// Names the layer.
    ///
    /// ```
    /// let observer = palisade::observe::ObserverBuilder::new().name("db").build("timeout");
    /// assert_eq!(observer.name().as_str(), "db");
    /// ```
    pub fn name(mut self, name: impl Into<LayerName>) -> ObserverBuilder {
        self.name = Some(name.into());
        self
    }

    /// Adds a listener, called with every event after those added before it.
    ///
    /// ```
    /// use palisade::{clock::Instant, observe::{EventKind, ObserverBuilder}};
    /// let observer = ObserverBuilder::new().on_event(|e| assert_eq!(e.kind, EventKind::Permitted)).build("x");
    /// observer.emit(Instant::ZERO, EventKind::Permitted);
    /// ```
    pub fn on_event<F>(mut self, listener: F) -> ObserverBuilder
    where
        F: Fn(&Event<'_>) + Send + Sync + 'static,
    {
        self.listeners.push(Arc::new(listener));
        self
    }

    /// The observer for a layer of kind `layer` (such as `"circuit_breaker"`).
    ///
    /// ```
    /// let observer = palisade::observe::ObserverBuilder::new().build("rate_limit");
    /// assert_eq!(observer.layer(), "rate_limit");
    /// ```
    pub fn build(self, layer: &'static str) -> Observer {
        let name = self.name.unwrap_or_else(|| LayerName::from(layer));
        Observer {
            inner: Arc::new(Inner {
                #[cfg(feature = "metrics")]
                metrics: metrics_sink::MetricsSink::new(layer, &name),
                layer,
                name,
                listeners: self.listeners.into_boxed_slice(),
                listener_panics: AtomicU64::new(0),
            }),
        }
    }
}

impl fmt::Debug for ObserverBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ObserverBuilder")
            .field("name", &self.name)
            .field("listeners", &self.listeners.len())
            .finish()
    }
}

/// The sink of one layer's events: listeners, metrics and tracing.
///
/// Made once per layer by [`ObserverBuilder::build`] and shared (a reference count)
/// by every service and clone the layer makes. Layers of your own can emit the
/// same vocabulary through one.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use palisade::{clock::Instant, error::RejectionKind, observe::{EventKind, ObserverBuilder}};
///
/// let observer = ObserverBuilder::new().name("api").build("rate_limit");
/// observer.emit(
///     Instant::ZERO,
///     EventKind::Rejected { kind: RejectionKind::RateLimited, retry_after: Some(Duration::from_millis(5)) },
/// );
/// ```
#[derive(Clone)]
pub struct Observer {
    inner: Arc<Inner>,
}

struct Inner {
    layer: &'static str,
    name: LayerName,
    listeners: Box<[Listener]>,
    listener_panics: AtomicU64,
    #[cfg(feature = "metrics")]
    metrics: metrics_sink::MetricsSink,
}

impl Observer {
    /// Sends an event that happened at `at` to every sink.
    ///
    /// Never panics because of a listener: a panicking listener is caught and
    /// counted, and the next listener runs.
    ///
    /// ```
    /// use palisade::{clock::Instant, observe::{EventKind, ObserverBuilder}};
    ///
    /// let observer = ObserverBuilder::new().on_event(|_| panic!("listener bug")).build("bulkhead");
    /// observer.emit(Instant::ZERO, EventKind::Permitted); // does not panic
    /// assert_eq!(observer.listener_panics(), 1);
    /// ```
    pub fn emit(&self, at: Instant, kind: EventKind) {
        let inner = &*self.inner;
        #[cfg(feature = "metrics")]
        inner.metrics.record(&kind);
        #[cfg(feature = "tracing")]
        tracing_sink::record(inner.layer, &inner.name, &kind);
        if inner.listeners.is_empty() {
            return;
        }
        let event = Event {
            layer: inner.layer,
            name: &inner.name,
            at,
            kind,
        };
        for listener in &inner.listeners {
            if catch_unwind(AssertUnwindSafe(|| listener(&event))).is_err() {
                inner.listener_panics.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Emits the [`Reconfigured`](EventKind::Reconfigured) event of a
    /// setting changed at `at` from `old` to `new`: the one way every
    /// layer's handle tells of a change.
    pub(crate) fn changed(&self, at: Instant, setting: &'static str, old: f64, new: f64) {
        // A setting given its own value again (a configuration reloaded
        // unchanged) is no change.
        if old != new {
            self.emit(at, EventKind::Reconfigured { setting, old, new });
        }
    }

    /// The [`changed`](Self::changed) events of settings whose numbers, by
    /// name and in the same order, were `old` and are `new`: one event per
    /// number that differs.
    pub(crate) fn changes(
        &self,
        at: Instant,
        old: impl IntoIterator<Item = (&'static str, f64)>,
        new: impl IntoIterator<Item = (&'static str, f64)>,
    ) {
        for ((setting, old), (_, new)) in old.into_iter().zip(new) {
            self.changed(at, setting, old, new);
        }
    }

    /// The layer's name.
    ///
    /// ```
    /// let observer = palisade::observe::ObserverBuilder::new().name("db").build("bulkhead");
    /// assert_eq!(observer.name(), "db");
    /// ```
    pub fn name(&self) -> &LayerName {
        &self.inner.name
    }

    /// The kind of layer.
    ///
    /// ```
    /// assert_eq!(palisade::observe::ObserverBuilder::new().build("timeout").layer(), "timeout");
    /// ```
    pub fn layer(&self) -> &'static str {
        self.inner.layer
    }

    /// Whether anything receives events: a listener, or a sink compiled in
    /// (features `metrics`, `tracing`). Layers skip the work of events —
    /// timing a call, computing rates — when nothing would receive them.
    ///
    /// ```
    /// use palisade::observe::ObserverBuilder;
    /// assert!(ObserverBuilder::new().on_event(|_| {}).build("x").is_active());
    /// ```
    pub fn is_active(&self) -> bool {
        cfg!(any(feature = "metrics", feature = "tracing")) || !self.inner.listeners.is_empty()
    }

    /// How many times a listener has panicked.
    ///
    /// ```
    /// assert_eq!(palisade::observe::ObserverBuilder::new().build("timeout").listener_panics(), 0);
    /// ```
    pub fn listener_panics(&self) -> u64 {
        self.inner.listener_panics.load(Ordering::Relaxed)
    }
}

impl fmt::Debug for Observer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Observer")
            .field("layer", &self.inner.layer)
            .field("name", &self.inner.name)
            .field("listeners", &self.inner.listeners.len())
            .finish()
    }
}

/// The settings every layer's builder shares, written once: `name` and
/// `on_event`, for a builder whose [`ObserverBuilder`] is at `$field`, with
/// doc examples that start from `$builder`.
macro_rules! name_and_listeners {
    ($($field:ident).+, $builder:literal) => {
        /// Names the layer in its events, metrics, log lines and errors.
        /// Default: the kind of layer (such as `"bulkhead"`).
        ///
        #[doc = concat!("```\n", $builder, "\n    .name(\"payments\");\n```")]
        pub fn name(mut self, name: impl Into<$crate::LayerName>) -> Self {
            self.$($field).+ = self.$($field).+.name(name);
            self
        }

        /// Adds a listener, called with each of the layer's events
        /// ([`EventKind`](crate::observe::EventKind)) after the listeners
        /// added before it. Listeners run on the path of the call: keep them
        /// quick. One that panics is caught, and the layer carries on.
        ///
        #[doc = concat!("```\n", $builder, "\n    .on_event(|event| println!(\"{}: {:?}\", event.name, event.kind));\n```")]
        pub fn on_event<L>(mut self, listener: L) -> Self
        where
            L: Fn(&$crate::observe::Event<'_>) + Send + Sync + 'static,
        {
            self.$($field).+ = self.$($field).+.on_event(listener);
            self
        }
    };
}
pub(crate) use name_and_listeners;

/// The other setting every builder shares, written once: `clock`, which
/// changes the builder's clock type, so the macro is given the builder's
/// type with the new clock `C2` and its other fields. `$what` says what the
/// clock drives; the doc example starts from `$builder`.
macro_rules! clock_setting {
    ($what:literal, $builder:literal, $name:ident<$($param:ident),*> { $($field:ident),* }) => {
        #[doc = concat!(
            "The clock ", $what, ". Default [`TokioClock`](crate::clock::TokioClock) ",
            "(which follows tokio's paused time); in tests, a ",
            "[`ManualClock`](crate::clock::ManualClock) moved by hand."
        )]
        ///
        #[doc = concat!("```\n", $builder, "\n    .clock(palisade::clock::ManualClock::new());\n```")]
        pub fn clock<C2: $crate::clock::Clock>(self, clock: C2) -> $name<$($param),*> {
            $name {
                clock,
                $($field: self.$field),*
            }
        }
    };
}
pub(crate) use clock_setting;

//! A handle to read a breaker's state and counters and to change its state by
//! hand.

use std::{fmt, sync::Arc, time::Duration};

use super::{
    config::{LAYER, Settings},
    shared::{Readings, Shared, Steer},
    state::CircuitState,
};
use crate::sync::Arc as SharedArc;
use crate::{
    LayerName,
    clock::Clock,
    error::{ConfigError, check},
    random::Random,
};

/// A cheap, cloneable handle on a breaker: its state, its counters, and
/// changes of state by hand. Get one from
/// [`CircuitBreakerLayer::handle`](super::CircuitBreakerLayer::handle).
///
/// Reading the state moves it along with time: an open breaker whose wait has
/// passed is reported — and becomes — half-open.
///
/// # Examples
///
/// ```
/// use palisade::circuit_breaker::{CircuitBreakerLayer, CircuitState};
///
/// let layer = CircuitBreakerLayer::builder().build().unwrap();
/// let handle = layer.handle();
/// assert_eq!(handle.state(), CircuitState::Closed);
///
/// handle.force_open(); // maintenance: reject everything
/// assert_eq!(handle.state(), CircuitState::ForcedOpen);
/// handle.close();
/// assert_eq!(handle.state(), CircuitState::Closed);
/// ```
#[derive(Clone)]
pub struct CircuitBreakerHandle {
    breaker: Arc<dyn Control>,
}

/// What a handle needs of a breaker, whatever its classifier, clock and
/// random source.
trait Control: Send + Sync {
    fn state(&self) -> CircuitState;
    fn stats(&self) -> Readings;
    fn steer(&self, steer: Steer);
    fn name(&self) -> &LayerName;
    fn settings(&self) -> Settings;
    fn reconfigure(&self, settings: Settings) -> Result<(), ConfigError>;
}

/// A breaker's counters at one moment. See [`CircuitBreakerHandle::metrics`].
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CircuitMetrics {
    /// The state.
    pub state: CircuitState,
    /// Calls counted in the window (0 for the consecutive-failures model).
    pub calls: u64,
    /// Successful calls in the window, slow ones included.
    pub successes: u64,
    /// Failed calls in the window, slow ones included.
    pub failures: u64,
    /// Slow calls in the window.
    pub slow_calls: u64,
    /// Slow calls in the window that succeeded.
    pub slow_successes: u64,
    /// Slow calls in the window that failed.
    pub slow_failures: u64,
    /// Failures over calls, when the window holds calls.
    pub failure_rate: Option<f64>,
    /// Slow calls over calls, when the window holds calls.
    pub slow_call_rate: Option<f64>,
    /// Whether the window holds the minimum number of calls for its rates
    /// to open the breaker: a rate of 0 with `false` here is "not enough
    /// calls yet", not "healthy". Always `true` for the
    /// consecutive-failures model, which needs no minimum.
    pub enough_calls: bool,
    /// Calls refused since the breaker was built (open, forced open, or
    /// half-open with every probe taken).
    pub not_permitted: u64,
    /// Calls permitted since the breaker was built, when it is observed (a
    /// listener, or the `metrics` or `tracing` sink compiled in): the count
    /// of its [`Permitted`](crate::observe::EventKind::Permitted) events.
    /// `None` when nothing observes it: counting every call would add a
    /// write shared by every thread to the path that makes none.
    pub permitted: Option<u64>,
    /// How long the calls in the window took, when the breaker is observed
    /// (as for `permitted`: it then times every call anyway) and has a
    /// window. `None` for a breaker nothing observes, and for the
    /// consecutive-failures model.
    pub durations: Option<CallDurations>,
    /// When the open state ends, on the breaker's clock (then half-open);
    /// `None` in any other state.
    pub open_until: Option<crate::clock::Instant>,
    /// Failures since the last success (consecutive-failures model).
    pub consecutive_failures: u64,
    /// Half-open probes admitted and not yet finished.
    pub probes_in_flight: usize,
}

/// How long the calls in a breaker's window took: those its
/// [`calls`](CircuitMetrics::calls) count, leaving the window with them. See
/// [`CircuitMetrics::durations`].
///
/// # Examples
///
/// ```
/// use std::time::Duration;
///
/// use palisade::{
///     circuit_breaker::{CircuitBreakerLayer, FailureModel},
///     clock::{Clock, ManualClock},
/// };
/// use tower::{Layer, Service, ServiceExt, service_fn};
///
/// let clock = ManualClock::new();
/// let layer = CircuitBreakerLayer::builder()
///     .model(FailureModel::CountWindow(2))
///     .minimum_calls(2)
///     .clock(clock.clone())
///     .on_event(|_| {}) // observed: calls are timed
///     .build()?;
/// let handle = layer.handle();
/// let mut service = layer.layer(service_fn({
///     let clock = clock.clone();
///     move |millis: u64| {
///         let sleep = clock.sleep(Duration::from_millis(millis));
///         async move {
///             sleep.await;
///             Ok::<_, std::io::Error>(())
///         }
///     }
/// }));
/// for millis in [30, 10, 20] {
///     clock.block_on(async { service.ready().await?.call(millis).await })?;
/// }
/// let durations = handle.metrics().durations.expect("observed");
/// // The last two calls: 10 ms and 20 ms.
/// assert_eq!(durations.count, 2);
/// assert_eq!(durations.total, Duration::from_millis(30));
/// assert_eq!(durations.max, Duration::from_millis(20));
/// assert_eq!(durations.mean(), Some(Duration::from_millis(15)));
/// # Ok::<_, tower::BoxError>(())
/// ```
#[non_exhaustive]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CallDurations {
    /// Calls in the window.
    pub count: u64,
    /// Their durations summed.
    pub total: Duration,
    /// The longest of them.
    pub max: Duration,
}

impl CallDurations {
    /// The mean duration, when the window holds calls.
    ///
    /// ```
    /// let none = palisade::circuit_breaker::CallDurations::default();
    /// assert_eq!(none.mean(), None);
    /// ```
    pub fn mean(&self) -> Option<Duration> {
        let count = u32::try_from(self.count).ok().filter(|&count| count > 0)?;
        Some(self.total / count)
    }
}

impl CircuitBreakerHandle {
    pub(crate) fn new<K, C, R>(shared: SharedArc<Shared<K, C, R>>) -> Self
    where
        K: Send + Sync + 'static,
        C: Clock,
        R: Random,
    {
        CircuitBreakerHandle {
            breaker: Arc::new(SharedControl(shared)),
        }
    }

    /// The state now.
    ///
    /// ```
    /// use palisade::circuit_breaker::{CircuitBreakerLayer, CircuitState};
    /// let handle = CircuitBreakerLayer::builder().build().unwrap().handle();
    /// assert_eq!(handle.state(), CircuitState::Closed);
    /// ```
    pub fn state(&self) -> CircuitState {
        self.breaker.state()
    }

    /// The counters now.
    ///
    /// ```
    /// use palisade::circuit_breaker::CircuitBreakerLayer;
    /// let handle = CircuitBreakerLayer::builder().build().unwrap().handle();
    /// let metrics = handle.metrics();
    /// assert_eq!(metrics.calls, 0);
    /// assert_eq!(metrics.failure_rate, None);
    /// assert!(!metrics.enough_calls); // 20 calls needed by default
    /// assert_eq!((metrics.not_permitted, metrics.open_until), (0, None));
    /// ```
    pub fn metrics(&self) -> CircuitMetrics {
        let state = self.breaker.state();
        let readings = self.breaker.stats();
        let stats = readings.stats;
        CircuitMetrics {
            state,
            calls: stats.calls,
            successes: stats.calls - stats.failures,
            failures: stats.failures,
            slow_calls: stats.slow,
            slow_successes: stats.slow - stats.slow_failures,
            slow_failures: stats.slow_failures,
            failure_rate: stats.failure_rate(),
            slow_call_rate: stats.slow_call_rate(),
            enough_calls: readings.windowless || stats.calls >= u64::from(readings.minimum_calls),
            not_permitted: readings.not_permitted,
            permitted: readings.permitted,
            durations: readings.durations.map(|durations| CallDurations {
                count: stats.calls,
                total: Duration::from_nanos(durations.nanos),
                max: Duration::from_nanos(durations.max_nanos),
            }),
            open_until: readings.open_until,
            consecutive_failures: stats.consecutive_failures,
            probes_in_flight: readings.probes_in_flight,
        }
    }

    /// The breaker's name.
    ///
    /// ```
    /// use palisade::circuit_breaker::CircuitBreakerLayer;
    /// let handle = CircuitBreakerLayer::builder().name("db").build().unwrap().handle();
    /// assert_eq!(handle.name(), "db");
    /// ```
    pub fn name(&self) -> &LayerName {
        self.breaker.name()
    }

    /// Rejects every call until the state is changed by hand
    /// ([`CircuitState::ForcedOpen`]).
    ///
    /// ```
    /// use palisade::circuit_breaker::{CircuitBreakerLayer, CircuitState};
    /// let handle = CircuitBreakerLayer::builder().build().unwrap().handle();
    /// handle.force_open();
    /// assert_eq!(handle.state(), CircuitState::ForcedOpen);
    /// ```
    pub fn force_open(&self) {
        self.breaker.steer(Steer::To(CircuitState::ForcedOpen));
    }

    /// Closes the breaker: calls flow and are counted afresh, and a growing
    /// open duration starts again from its initial value.
    ///
    /// ```
    /// use palisade::circuit_breaker::{CircuitBreakerLayer, CircuitState};
    /// let handle = CircuitBreakerLayer::builder().build().unwrap().handle();
    /// handle.disable();
    /// handle.close();
    /// assert_eq!(handle.state(), CircuitState::Closed);
    /// ```
    pub fn close(&self) {
        self.breaker.steer(Steer::To(CircuitState::Closed));
    }

    /// Lets every call through and counts nothing
    /// ([`CircuitState::Disabled`]).
    ///
    /// ```
    /// use palisade::circuit_breaker::{CircuitBreakerLayer, CircuitState};
    /// let handle = CircuitBreakerLayer::builder().build().unwrap().handle();
    /// handle.disable();
    /// assert_eq!(handle.state(), CircuitState::Disabled);
    /// ```
    pub fn disable(&self) {
        self.breaker.steer(Steer::To(CircuitState::Disabled));
    }

    /// Counts and reports every call but never opens
    /// ([`CircuitState::MetricsOnly`]).
    ///
    /// ```
    /// use palisade::circuit_breaker::{CircuitBreakerLayer, CircuitState};
    /// let handle = CircuitBreakerLayer::builder().build().unwrap().handle();
    /// handle.metrics_only();
    /// assert_eq!(handle.state(), CircuitState::MetricsOnly);
    /// ```
    pub fn metrics_only(&self) {
        self.breaker.steer(Steer::To(CircuitState::MetricsOnly));
    }

    /// Closes the breaker and forgets every call counted so far, even if it
    /// was closed already.
    ///
    /// ```
    /// use palisade::circuit_breaker::{CircuitBreakerLayer, CircuitState};
    /// let handle = CircuitBreakerLayer::builder().build().unwrap().handle();
    /// handle.reset();
    /// assert_eq!(handle.metrics().calls, 0);
    /// ```
    pub fn reset(&self) {
        self.breaker.steer(Steer::Reset);
    }

    /// Opens the breaker now for `duration` — every call refused with
    /// [`CircuitOpen`](crate::error::CircuitOpen) and a `retry_after` of
    /// what remains — then half-open as after any open duration: probes
    /// decide. From any state (an open breaker's time is replaced). The
    /// event's reason is `opened_by_hand`; the growth of the configured open
    /// duration is left as it was.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`](crate::error::ConfigError) on `duration` when it is
    /// zero or longer than 100 years; the breaker is left as it was.
    ///
    /// ```
    /// use std::time::Duration;
    /// use palisade::{circuit_breaker::{CircuitBreakerLayer, CircuitState}, clock::ManualClock};
    ///
    /// let clock = ManualClock::new();
    /// let handle = CircuitBreakerLayer::builder().clock(clock.clone()).build().unwrap().handle();
    /// handle.open_for(Duration::from_secs(30)).unwrap();
    /// assert_eq!(handle.state(), CircuitState::Open);
    /// clock.advance(Duration::from_secs(30));
    /// assert_eq!(handle.state(), CircuitState::HalfOpen);
    /// assert_eq!(handle.open_for(Duration::ZERO).unwrap_err().field(), "duration");
    /// ```
    pub fn open_for(&self, duration: Duration) -> Result<(), ConfigError> {
        check::positive(LAYER, "duration", duration)?;
        check::at_most_longest(LAYER, "duration", duration)?;
        self.breaker.steer(Steer::OpenFor(duration));
        Ok(())
    }

    /// Moves the breaker to half-open now: the configured number of probes
    /// go through and decide, as after an open duration (a half-open breaker
    /// starts its probes afresh). The event's reason is
    /// `half_opened_by_hand`.
    ///
    /// ```
    /// use palisade::circuit_breaker::{CircuitBreakerLayer, CircuitState};
    /// let handle = CircuitBreakerLayer::builder().build().unwrap().handle();
    /// handle.force_open();
    /// handle.half_open();
    /// assert_eq!(handle.state(), CircuitState::HalfOpen);
    /// ```
    pub fn half_open(&self) {
        self.breaker.steer(Steer::HalfOpen);
    }

    /// The settings now; see [`reconfigure`](Self::reconfigure).
    ///
    /// ```
    /// use palisade::circuit_breaker::{CircuitBreakerLayer, FailureModel};
    /// let handle = CircuitBreakerLayer::builder().consecutive_failures(5).build()?.handle();
    /// assert_eq!(handle.settings().failure_model, FailureModel::ConsecutiveFailures(5));
    /// # Ok::<(), palisade::error::ConfigError>(())
    /// ```
    pub fn settings(&self) -> Settings {
        self.breaker.settings()
    }

    /// Changes the settings of the running breaker, from any thread: every
    /// service and clone made from the layer is judged by the new numbers
    /// from then on. What is kept:
    ///
    /// - the **window keeps its outcomes**: new thresholds and a new minimum
    ///   judge the calls it already holds, at the next outcome counted (a
    ///   breaker whose window is already past a lowered threshold opens at
    ///   the next failure or slow call, not at the change);
    /// - the **state is kept**: an open breaker stays open until the instant
    ///   it was given (a new open duration applies from the next opening;
    ///   [`open_for`](Self::open_for) cuts one short), a half-open one goes
    ///   on with its probes, judged by the new probe numbers at its next
    ///   decision;
    /// - slow-call detection turned on judges the calls that start after the
    ///   change, and those already running if they were timed (for an
    ///   observer: a listener or a sink compiled in); turned off, it judges
    ///   none.
    ///
    /// The failure model keeps its kind. The consecutive-failures model may
    /// change its limit. A window may change its size within the memory
    /// allocated for it when the layer was built — build it with the largest
    /// window it may need, and lower it: a **count window** made smaller
    /// keeps its latest outcomes (grown back, it does not find the others
    /// again); a **time window** of another length or fewer buckets moves
    /// each bucket's outcomes to the new bucket holding its last instant and
    /// lets go of those the new length no longer reaches (made longer, it
    /// does not find again those the old length had let go). Emits
    /// [`Reconfigured`](crate::observe::EventKind::Reconfigured) for each
    /// number that changed, named as the builder's fields
    /// (`failure_rate`, `minimum_calls`, `consecutive_failures`,
    /// `count_window`, `time_window.window`, `time_window.buckets`,
    /// `slow_calls.threshold`, `slow_calls.rate`, `open_duration.initial`,
    /// `open_duration.multiplier`, `open_duration.max`,
    /// `open_duration.jitter`, `max_pushback`, `half_open.max_probes`,
    /// `half_open.probes`, `half_open.success_rate`, `half_open.timeout`;
    /// durations in seconds, no slow-call detection as 0).
    ///
    /// # Errors
    ///
    /// The [`ConfigError`] the builder would return for these settings (the
    /// field named), or one on `failure_model` for a model of another kind or
    /// a window larger than the one built. The breaker is then left as it
    /// was.
    ///
    /// ```
    /// use std::time::Duration;
    /// use palisade::circuit_breaker::{CircuitBreakerLayer, FailureModel, SlowCalls};
    ///
    /// let handle = CircuitBreakerLayer::builder().count_window(100).build()?.handle();
    /// let mut settings = handle.settings();
    /// settings.failure_rate = 0.8;
    /// settings.slow_calls = Some(SlowCalls { threshold: Duration::from_secs(2), rate: 0.5 });
    /// handle.reconfigure(settings)?;
    /// assert_eq!(handle.settings(), settings);
    ///
    /// settings.failure_rate = 1.5;
    /// assert_eq!(handle.reconfigure(settings).unwrap_err().field(), "failure_rate");
    /// settings.failure_rate = 0.8;
    /// settings.failure_model = FailureModel::CountWindow(50); // within the 100 built
    /// handle.reconfigure(settings)?;
    /// settings.failure_model = FailureModel::CountWindow(200);
    /// assert_eq!(handle.reconfigure(settings).unwrap_err().field(), "failure_model");
    /// # Ok::<(), palisade::error::ConfigError>(())
    /// ```
    pub fn reconfigure(&self, settings: Settings) -> Result<(), ConfigError> {
        self.breaker.reconfigure(settings)
    }
}

/// `Arc<Shared>` as a `Control`, so the handle can hold the breaker's own
/// `Arc` (loom's under `--cfg loom`) behind a std one.
struct SharedControl<K, C, R>(SharedArc<Shared<K, C, R>>);

impl<K, C, R> Control for SharedControl<K, C, R>
where
    K: Send + Sync + 'static,
    C: Clock,
    R: Random,
{
    fn state(&self) -> CircuitState {
        self.0.state()
    }

    fn stats(&self) -> Readings {
        self.0.stats()
    }

    fn steer(&self, steer: Steer) {
        self.0.steer(steer)
    }

    fn name(&self) -> &LayerName {
        self.0.observer.name()
    }

    fn settings(&self) -> Settings {
        self.0.settings()
    }

    fn reconfigure(&self, settings: Settings) -> Result<(), ConfigError> {
        self.0.reconfigure(settings)
    }
}

impl fmt::Debug for CircuitBreakerHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CircuitBreakerHandle")
            .field("name", self.breaker.name())
            .finish_non_exhaustive()
    }
}

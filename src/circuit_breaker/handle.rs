//! A handle to read a breaker's state and counters and to change its state by
//! hand.

use std::{fmt, sync::Arc};

use super::{shared::Shared, state::CircuitState, window::Stats};
use crate::sync::Arc as SharedArc;
use crate::{LayerName, clock::Clock, random::Random};

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
    fn stats(&self) -> (Stats, usize);
    fn force(&self, target: CircuitState, reset: bool);
    fn name(&self) -> &LayerName;
}

/// A breaker's counters at one moment. See [`CircuitBreakerHandle::metrics`].
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CircuitMetrics {
    /// The state.
    pub state: CircuitState,
    /// Calls counted in the window (0 for the consecutive-failures model).
    pub calls: u64,
    /// Failed calls in the window.
    pub failures: u64,
    /// Slow calls in the window.
    pub slow_calls: u64,
    /// Failures over calls, when the window holds calls.
    pub failure_rate: Option<f64>,
    /// Slow calls over calls, when the window holds calls.
    pub slow_call_rate: Option<f64>,
    /// Failures since the last success (consecutive-failures model).
    pub consecutive_failures: u64,
    /// Half-open probes admitted and not yet finished.
    pub probes_in_flight: usize,
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
    /// ```
    pub fn metrics(&self) -> CircuitMetrics {
        let state = self.breaker.state();
        let (stats, probes_in_flight) = self.breaker.stats();
        CircuitMetrics {
            state,
            calls: stats.calls,
            failures: stats.failures,
            slow_calls: stats.slow,
            failure_rate: stats.failure_rate(),
            slow_call_rate: stats.slow_call_rate(),
            consecutive_failures: stats.consecutive_failures,
            probes_in_flight,
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
        self.breaker.force(CircuitState::ForcedOpen, false);
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
        self.breaker.force(CircuitState::Closed, false);
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
        self.breaker.force(CircuitState::Disabled, false);
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
        self.breaker.force(CircuitState::MetricsOnly, false);
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
        self.breaker.force(CircuitState::Closed, true);
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

    fn stats(&self) -> (Stats, usize) {
        self.0.stats()
    }

    fn force(&self, target: CircuitState, reset: bool) {
        self.0.force(target, reset)
    }

    fn name(&self) -> &LayerName {
        self.0.observer.name()
    }
}

impl fmt::Debug for CircuitBreakerHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CircuitBreakerHandle")
            .field("name", self.breaker.name())
            .finish_non_exhaustive()
    }
}

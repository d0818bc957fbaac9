//! The breaker as a [`Layer`], and its builder.

use std::{fmt, time::Duration};

use tower::Layer;

use super::{
    config::{Config, FailureModel, HalfOpen, LAYER, Mode, OpenDuration, Settings, SlowCalls},
    handle::CircuitBreakerHandle,
    service::CircuitBreaker,
    shared::Shared,
};
use crate::{
    classify::ErrorsAsFailures,
    clock::{Clock, TokioClock},
    error::ConfigError,
    observe::ObserverBuilder,
    random::{FastRandom, Random},
    sync::Arc,
};

/// A [`Layer`] that wraps services in a circuit breaker.
///
/// The breaker's state is created when the layer is built: every service the
/// layer makes, and every clone of those, shares it.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use palisade::circuit_breaker::{CircuitBreakerLayer, OpenDuration};
/// use tower::ServiceBuilder;
///
/// let breaker = CircuitBreakerLayer::builder()
///     .name("payments")
///     .count_window(50)
///     .failure_rate(0.5)
///     .minimum_calls(10)
///     .open_duration(OpenDuration::fixed(Duration::from_secs(30)))
///     .build()?;
/// let service = ServiceBuilder::new()
///     .layer(breaker)
///     .service_fn(|request: String| async move { Ok::<_, std::io::Error>(request) });
/// # let _ = service;
/// # Ok::<(), palisade::error::ConfigError>(())
/// ```
pub struct CircuitBreakerLayer<K = ErrorsAsFailures, C: Clock = TokioClock, R: Random = FastRandom>
{
    shared: Arc<Shared<K, C, R>>,
}

impl CircuitBreakerLayer {
    /// A builder with the defaults: failure rate ≥ 50 % over the last 100
    /// calls, once at least 20 were counted; open for 30 s; then one probe at
    /// a time, three successes to close; errors are failures; the tokio
    /// clock.
    ///
    /// ```
    /// let layer = palisade::circuit_breaker::CircuitBreakerLayer::builder().build().unwrap();
    /// # let _ = layer;
    /// ```
    pub fn builder() -> CircuitBreakerBuilder {
        CircuitBreakerBuilder {
            config: Config::default(),
            classifier: ErrorsAsFailures,
            clock: TokioClock::new(),
            random: FastRandom::default(),
            observe: ObserverBuilder::new(),
        }
    }
}

impl CircuitBreakerLayer {
    /// A preset that opens early and backs off: failure rate ≥ 30 % over
    /// the last 20 calls (at least 10); open 10 s, doubling with each re-open
    /// up to 2 min, ±20 % jitter; one probe at a time, three successes to
    /// close. For a dependency whose failures are expensive to wait on.
    ///
    /// ```
    /// let layer = palisade::circuit_breaker::CircuitBreakerLayer::sensitive().name("payments").build()?;
    /// # let _ = layer;
    /// # Ok::<(), palisade::error::ConfigError>(())
    /// ```
    pub fn sensitive() -> CircuitBreakerBuilder {
        CircuitBreakerLayer::builder()
            .count_window(20)
            .failure_rate(0.3)
            .minimum_calls(10)
            .open_duration(
                OpenDuration::exponential(Duration::from_secs(10), 2.0, Duration::from_secs(120))
                    .jitter(0.2),
            )
    }

    /// A preset that rides out bursts: failure rate ≥ 75 % over the last
    /// minute (12 buckets of 5 s, at least 50 calls); open 30 s; two probes at
    /// a time, 8 successes out of 10 to close. For high-traffic dependencies
    /// with occasional error spikes.
    ///
    /// ```
    /// let layer = palisade::circuit_breaker::CircuitBreakerLayer::tolerant().build()?;
    /// # let _ = layer;
    /// # Ok::<(), palisade::error::ConfigError>(())
    /// ```
    pub fn tolerant() -> CircuitBreakerBuilder {
        CircuitBreakerLayer::builder()
            .time_window(Duration::from_secs(60), 12)
            .failure_rate(0.75)
            .minimum_calls(50)
            .open_duration(OpenDuration::fixed(Duration::from_secs(30)))
            .half_open(HalfOpen::new().max_probes(2).probes(10).success_rate(0.8))
    }
}

impl<K, C, R> CircuitBreakerLayer<K, C, R>
where
    K: Send + Sync + 'static,
    C: Clock,
    R: Random,
{
    /// A handle to read the breaker's state and counters and to change its
    /// state by hand.
    ///
    /// ```
    /// use palisade::circuit_breaker::{CircuitBreakerLayer, CircuitState};
    /// let layer = CircuitBreakerLayer::builder().build().unwrap();
    /// assert_eq!(layer.handle().state(), CircuitState::Closed);
    /// ```
    pub fn handle(&self) -> CircuitBreakerHandle {
        CircuitBreakerHandle::new(Arc::clone(&self.shared))
    }
}

impl<S, K, C: Clock, R: Random> Layer<S> for CircuitBreakerLayer<K, C, R> {
    type Service = CircuitBreaker<S, K, C, R>;

    fn layer(&self, inner: S) -> Self::Service {
        CircuitBreaker::new(inner, &self.shared)
    }
}

impl<K, C: Clock, R: Random> Clone for CircuitBreakerLayer<K, C, R> {
    fn clone(&self) -> Self {
        CircuitBreakerLayer {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<K, C: Clock, R: Random> fmt::Debug for CircuitBreakerLayer<K, C, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CircuitBreakerLayer")
            .field("breaker", &self.shared)
            .finish()
    }
}

/// Configures a [`CircuitBreakerLayer`]; [`build`](CircuitBreakerBuilder::build)
/// checks the configuration.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use palisade::{
///     circuit_breaker::{CircuitBreakerLayer, HalfOpen, OpenDuration},
///     clock::ManualClock,
/// };
///
/// let clock = ManualClock::new();
/// let layer = CircuitBreakerLayer::builder()
///     .time_window(Duration::from_secs(60), 6)
///     .failure_rate(0.25)
///     .minimum_calls(5)
///     .slow_calls(Duration::from_secs(2), 0.5)
///     .open_duration(OpenDuration::exponential(Duration::from_secs(5), 2.0, Duration::from_secs(120)))
///     .half_open(HalfOpen::new().max_probes(2).probes(4))
///     .clock(clock.clone())
///     .build()?;
/// # let _ = layer;
/// # Ok::<(), palisade::error::ConfigError>(())
/// ```
pub struct CircuitBreakerBuilder<K = ErrorsAsFailures, C = TokioClock, R = FastRandom> {
    config: Config,
    classifier: K,
    clock: C,
    random: R,
    observe: ObserverBuilder,
}

impl<K, C, R> CircuitBreakerBuilder<K, C, R> {
    crate::observe::name_and_listeners!(
        observe,
        "let _ = palisade::circuit_breaker::CircuitBreakerLayer::builder()"
    );

    /// Observed as `observe` says (its listeners and name): a layer built
    /// inside another shares that one's listeners.
    #[cfg(feature = "redis")]
    pub(crate) fn observed(mut self, observe: crate::observe::ObserverBuilder) -> Self {
        self.observe = observe;
        self
    }

    /// The failure model: see [`FailureModel`]. The shorthands
    /// [`consecutive_failures`](Self::consecutive_failures),
    /// [`count_window`](Self::count_window) and
    /// [`time_window`](Self::time_window) set it too.
    ///
    /// ```
    /// use palisade::circuit_breaker::{CircuitBreakerLayer, FailureModel};
    /// let _ = CircuitBreakerLayer::builder().model(FailureModel::CountWindow(20));
    /// ```
    pub fn model(mut self, model: FailureModel) -> Self {
        self.config.model = model;
        self
    }

    /// Open after `k` failures in a row.
    ///
    /// ```
    /// let _ = palisade::circuit_breaker::CircuitBreakerLayer::builder().consecutive_failures(5);
    /// ```
    pub fn consecutive_failures(self, k: u32) -> Self {
        self.model(FailureModel::ConsecutiveFailures(k))
    }

    /// Judge the failure rate over the last `n` calls.
    ///
    /// ```
    /// let _ = palisade::circuit_breaker::CircuitBreakerLayer::builder().count_window(100);
    /// ```
    pub fn count_window(self, n: u32) -> Self {
        self.model(FailureModel::CountWindow(n))
    }

    /// Judge the failure rate over the last `window` of time, kept in
    /// `buckets` buckets.
    ///
    /// ```
    /// # use std::time::Duration;
    /// let _ = palisade::circuit_breaker::CircuitBreakerLayer::builder()
    ///     .time_window(Duration::from_secs(30), 10);
    /// ```
    pub fn time_window(self, window: Duration, buckets: u32) -> Self {
        self.model(FailureModel::TimeWindow { window, buckets })
    }

    /// Open when failures make up at least this share of the window's calls,
    /// in (0, 1]. Default 0.5.
    ///
    /// ```
    /// let _ = palisade::circuit_breaker::CircuitBreakerLayer::builder().failure_rate(0.25);
    /// ```
    pub fn failure_rate(mut self, rate: f64) -> Self {
        self.config.failure_rate = rate;
        self
    }

    /// Judge no rate until the window holds at least `n` calls. Default 20.
    ///
    /// ```
    /// let _ = palisade::circuit_breaker::CircuitBreakerLayer::builder().minimum_calls(10);
    /// ```
    pub fn minimum_calls(mut self, n: u32) -> Self {
        self.config.minimum_calls = n;
        self
    }

    /// A call taking `threshold` or longer (on the breaker's clock) is slow;
    /// open when slow calls make up at least `rate` of the window's calls.
    /// Needs a count or time window.
    ///
    /// ```
    /// # use std::time::Duration;
    /// let _ = palisade::circuit_breaker::CircuitBreakerLayer::builder()
    ///     .slow_calls(Duration::from_secs(1), 0.5);
    /// ```
    pub fn slow_calls(mut self, threshold: Duration, rate: f64) -> Self {
        self.config.slow_calls = Some(SlowCalls { threshold, rate });
        self
    }

    /// How long to stay open. Default: 30 s, fixed.
    ///
    /// ```
    /// # use std::time::Duration;
    /// use palisade::circuit_breaker::{CircuitBreakerLayer, OpenDuration};
    /// let _ = CircuitBreakerLayer::builder().open_duration(OpenDuration::fixed(Duration::from_secs(5)));
    /// ```
    pub fn open_duration(mut self, open_duration: OpenDuration) -> Self {
        self.config.open_duration = open_duration;
        self
    }

    /// The longest a classifier's [`open_for`](crate::classify::Classify::open_for)
    /// may keep the breaker open. Default 5 min; at most a day.
    ///
    /// ```
    /// # use std::time::Duration;
    /// let _ = palisade::circuit_breaker::CircuitBreakerLayer::builder()
    ///     .max_pushback(Duration::from_secs(60));
    /// ```
    pub fn max_pushback(mut self, max: Duration) -> Self {
        self.config.max_pushback = max;
        self
    }

    /// Whether a call cut short at a deadline **the request chose**
    /// ([`DeadlineExceeded`](crate::error::DeadlineExceeded): a gRPC
    /// client's `grpc-timeout`, a remaining deadline, shorter than the
    /// timeout layer's own) counts as a failure. Default `false`: it is
    /// ignored, so that clients asking for impossibly short deadlines cannot
    /// open a breaker shared by everyone. A timeout at the layer's own
    /// duration ([`Elapsed`](crate::error::Elapsed)) always counts.
    ///
    /// The price of the default: a dependency that hangs is seen only
    /// through the calls that were given the layer's whole timeout. Where
    /// every request carries a deadline shorter than the timeout layer's (a
    /// gRPC service whose clients all send `grpc-timeout`, an overall
    /// [`Deadline`](crate::timeout::TimeoutFor) shorter than each attempt's
    /// timeout), count them, or make the timeout layer's own duration the
    /// shorter one.
    ///
    /// ```
    /// let _ = palisade::circuit_breaker::CircuitBreakerLayer::builder()
    ///     .count_request_deadlines(true);
    /// ```
    pub fn count_request_deadlines(mut self, count: bool) -> Self {
        self.config.count_request_deadlines = count;
        self
    }

    /// How to probe when half-open: see [`HalfOpen`].
    ///
    /// ```
    /// use palisade::circuit_breaker::{CircuitBreakerLayer, HalfOpen};
    /// let _ = CircuitBreakerLayer::builder().half_open(HalfOpen::new().max_probes(3));
    /// ```
    pub fn half_open(mut self, half_open: HalfOpen) -> Self {
        self.config.half_open = half_open;
        self
    }

    /// Every setting that can also change live, at once (what a
    /// configuration file holds): see [`Settings`]. The mode, the
    /// classifier, the clock and the rest stay as set.
    ///
    /// ```
    /// use palisade::circuit_breaker::CircuitBreakerLayer;
    /// let running = CircuitBreakerLayer::builder().consecutive_failures(3).build()?.handle();
    /// let twin = CircuitBreakerLayer::builder().settings(running.settings()).build()?;
    /// assert_eq!(twin.handle().settings(), running.settings());
    /// # Ok::<(), palisade::error::ConfigError>(())
    /// ```
    pub fn settings(mut self, settings: Settings) -> Self {
        self.config = self.config.with(settings);
        self
    }

    /// Backpressure mode: `poll_ready` stays pending while the breaker
    /// refuses calls, and is woken (through the clock) when it would let one
    /// through. The default, fail-fast mode, answers a refused call at once
    /// with a [`CircuitOpen`](crate::error::CircuitOpen) error.
    ///
    /// ```
    /// let _ = palisade::circuit_breaker::CircuitBreakerLayer::builder().backpressure();
    /// ```
    pub fn backpressure(mut self) -> Self {
        self.config.mode = Mode::Backpressure;
        self
    }

    /// What counts as a failure: any [`Classify`](crate::classify::Classify)
    /// for the service's `Result`. Default: every error.
    ///
    /// ```
    /// use palisade::{circuit_breaker::CircuitBreakerLayer, classify::Outcome};
    /// let _ = CircuitBreakerLayer::builder().classifier(|result: &Result<u16, std::io::Error>| {
    ///     match result {
    ///         Ok(status) if *status >= 500 => Outcome::Failure,
    ///         Ok(_) => Outcome::Success,
    ///         Err(_) => Outcome::Failure,
    ///     }
    /// });
    /// ```
    pub fn classifier<K2>(self, classifier: K2) -> CircuitBreakerBuilder<K2, C, R> {
        CircuitBreakerBuilder {
            config: self.config,
            classifier,
            clock: self.clock,
            random: self.random,
            observe: self.observe,
        }
    }

    crate::observe::clock_setting!(
        "every timing decision reads (the open duration, time windows, slow calls)",
        "let _ = palisade::circuit_breaker::CircuitBreakerLayer::builder()",
        CircuitBreakerBuilder<K, C2, R> { config, classifier, random, observe }
    );

    /// The random source of the open duration's jitter. Default:
    /// [`FastRandom`] seeded from the system.
    ///
    /// ```
    /// use palisade::{circuit_breaker::CircuitBreakerLayer, random::FastRandom};
    /// let _ = CircuitBreakerLayer::builder().random(FastRandom::seeded(7));
    /// ```
    pub fn random<R2: Random>(self, random: R2) -> CircuitBreakerBuilder<K, C, R2> {
        CircuitBreakerBuilder {
            config: self.config,
            classifier: self.classifier,
            clock: self.clock,
            random,
            observe: self.observe,
        }
    }
}

impl<K, C: Clock, R: Random> CircuitBreakerBuilder<K, C, R> {
    /// Checks the configuration and builds the layer, creating the breaker's
    /// shared state.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming the field when a rate is outside (0, 1], a
    /// size or count is 0, a duration is 0, the minimum number of calls
    /// exceeds a count window, a count window exceeds 1 048 576 calls, a time
    /// window exceeds 100 years or has more buckets than 4096 or than
    /// nanoseconds, slow-call detection is asked of the consecutive-failures
    /// model, or an open duration's multiplier, maximum or jitter is out of
    /// range.
    ///
    /// ```
    /// use palisade::circuit_breaker::CircuitBreakerLayer;
    /// let err = CircuitBreakerLayer::builder().failure_rate(1.5).build().unwrap_err();
    /// assert_eq!(err.field(), "failure_rate");
    /// ```
    pub fn build(self) -> Result<CircuitBreakerLayer<K, C, R>, ConfigError> {
        self.config.validate()?;
        let observer = self.observe.build(LAYER);
        Ok(CircuitBreakerLayer {
            shared: Arc::new(Shared::new(
                self.config,
                self.classifier,
                self.clock,
                self.random,
                observer,
            )),
        })
    }
}

impl<K, C, R> fmt::Debug for CircuitBreakerBuilder<K, C, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CircuitBreakerBuilder")
            .field("config", &self.config)
            .field("observe", &self.observe)
            .finish_non_exhaustive()
    }
}

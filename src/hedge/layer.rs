//! The hedging layer, its builder, and what its services share.

use std::{fmt, time::Duration};

use tower::Layer;

use super::{budget::Budget, latencies::Latencies, service::Hedge};
use crate::{
    LayerName,
    classify::ErrorsAsFailures,
    clock::{Clock, Instant, TokioClock},
    error::{ConfigError, check},
    observe::{EventKind, Observer, ObserverBuilder},
    retry::ViaClone,
    sync::Arc,
};

/// The kind of layer, and the name of one not given its own.
pub(crate) const LAYER: &str = "hedge";

/// When a request still unanswered gets another attempt.
///
/// ```
/// use std::time::Duration;
/// use palisade::hedge::Delay;
///
/// // At the 95th percentile of the latencies of the last 10 to 20 s, once
/// // 100 are known; 50 ms until then.
/// let _ = Delay::Quantile {
///     quantile: 0.95,
///     min_samples: 100,
///     window: Duration::from_secs(10),
///     until_known: Duration::from_millis(50),
/// };
/// let _ = Delay::Fixed(Duration::from_millis(20));
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub enum Delay {
    /// Always this long after the previous attempt.
    Fixed(Duration),
    /// The `quantile` of the latencies of the attempts that completed in
    /// the current `window` of time and the one before it, on the layer's
    /// clock, read from a histogram (never below the true value, at most 2 % above); `until_known`
    /// while the two windows hold fewer than `min_samples`.
    Quantile {
        /// In (0, 1): 0.95 hedges the slowest 5 %.
        quantile: f64,
        /// The latencies needed before the quantile is trusted.
        min_samples: u32,
        /// The length of one window.
        window: Duration,
        /// The delay until then.
        until_known: Duration,
    },
}

/// What every service and clone made by one layer shares.
pub(crate) struct Shared<K, Q, C> {
    pub(crate) delay: Delay,
    /// Extra attempts a request may get.
    pub(crate) max_extra: u32,
    /// Whether a failed attempt answers the request at once.
    pub(crate) fail_fast: bool,
    pub(crate) classifier: K,
    pub(crate) cloner: Q,
    pub(crate) clock: C,
    pub(crate) budget: Budget,
    /// Kept for a delay at a quantile.
    latencies: Option<Latencies>,
    pub(crate) observer: Observer,
}

impl<K, Q, C: Clock> Shared<K, Q, C> {
    /// How long after `now` the next attempt is due.
    pub(crate) fn delay(&self, now: Instant) -> Duration {
        match (self.delay, &self.latencies) {
            (
                Delay::Quantile {
                    quantile,
                    min_samples,
                    until_known,
                    ..
                },
                Some(latencies),
            ) => latencies
                .quantile(now.as_nanos(), quantile, u64::from(min_samples))
                .unwrap_or(until_known),
            (Delay::Fixed(delay), _)
            | (
                Delay::Quantile {
                    until_known: delay, ..
                },
                None,
            ) => delay,
        }
    }

    /// An attempt started at `started` completed now: its latency counted
    /// when a quantile needs it (the clock read only then).
    pub(crate) fn completed(&self, started: Instant) {
        if let Some(latencies) = &self.latencies {
            let now = self.clock.now();
            latencies.record(now.as_nanos(), now - started);
        }
    }

    pub(crate) fn emit(&self, kind: EventKind) {
        if self.observer.is_active() {
            self.observer.emit(self.clock.now(), kind);
        }
    }
}

/// A [`Layer`] that sends another attempt at a request still unanswered
/// after a delay, and returns the first acceptable answer; see
/// [the module docs](super).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use palisade::hedge::{Delay, HedgeLayer};
/// use tower::{Layer, service_fn};
///
/// let layer = HedgeLayer::builder(Delay::Fixed(Duration::from_millis(20)))
///     .max_extra(1)
///     .budget(0.05, 10)
///     .build()?;
/// let service = layer.layer(service_fn(|x: u32| async move { Ok::<_, std::io::Error>(x) }));
/// # let _ = service;
/// # Ok::<(), palisade::error::ConfigError>(())
/// ```
pub struct HedgeLayer<K = ErrorsAsFailures, Q = ViaClone, C = TokioClock> {
    shared: Arc<Shared<K, Q, C>>,
}

impl HedgeLayer {
    /// Hedges after `delay`: one extra attempt at most, within a budget of
    /// 10 % of requests (20 at once), failures of the wrapped service
    /// ([`ErrorsAsFailures`]) answered by a later attempt, `Clone`
    /// requests, the tokio clock.
    ///
    /// ```
    /// use std::time::Duration;
    /// use palisade::hedge::{Delay, HedgeLayer};
    /// let _ = HedgeLayer::builder(Delay::Fixed(Duration::from_millis(10))).build().unwrap();
    /// ```
    pub fn builder(delay: Delay) -> HedgeBuilder {
        HedgeBuilder {
            options: Options {
                delay,
                max_extra: 1,
                ratio: 0.1,
                burst: 20,
                fail_fast: false,
                observe: ObserverBuilder::new(),
            },
            classifier: ErrorsAsFailures,
            cloner: ViaClone,
            clock: TokioClock::new(),
        }
    }
}

impl<K, Q, C> HedgeLayer<K, Q, C> {
    /// The layer's name, as in its events.
    ///
    /// ```
    /// use std::time::Duration;
    /// use palisade::hedge::{Delay, HedgeLayer};
    /// let layer = HedgeLayer::builder(Delay::Fixed(Duration::from_millis(10))).name("search").build().unwrap();
    /// assert_eq!(layer.name(), "search");
    /// ```
    pub fn name(&self) -> &LayerName {
        self.shared.observer.name()
    }
}

impl<S, K, Q, C> Layer<S> for HedgeLayer<K, Q, C> {
    type Service = Hedge<S, K, Q, C>;

    fn layer(&self, inner: S) -> Self::Service {
        Hedge::new(inner, Arc::clone(&self.shared))
    }
}

impl<K, Q, C> Clone for HedgeLayer<K, Q, C> {
    fn clone(&self) -> Self {
        HedgeLayer {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<K, Q, C> fmt::Debug for HedgeLayer<K, Q, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HedgeLayer")
            .field("hedge", &self.shared)
            .finish()
    }
}

impl<K, Q, C> fmt::Debug for Shared<K, Q, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hedge")
            .field("name", self.observer.name())
            .field("delay", &self.delay)
            .field("max_extra", &self.max_extra)
            .field("fail_fast", &self.fail_fast)
            .finish_non_exhaustive()
    }
}

/// Configures a [`HedgeLayer`]; [`build`](HedgeBuilder::build) checks the
/// configuration.
///
/// ```
/// use std::time::Duration;
/// use palisade::{clock::ManualClock, hedge::{Delay, HedgeLayer}};
///
/// let layer = HedgeLayer::builder(Delay::Fixed(Duration::from_millis(30)))
///     .name("profiles")
///     .max_extra(2)
///     .budget(0.02, 5)
///     .fail_fast()
///     .clone_request(|request: &String| Some(request.clone()))
///     .clock(ManualClock::new())
///     .build()?;
/// # let _ = layer;
/// # Ok::<(), palisade::error::ConfigError>(())
/// ```
pub struct HedgeBuilder<K = ErrorsAsFailures, Q = ViaClone, C = TokioClock> {
    options: Options,
    classifier: K,
    cloner: Q,
    clock: C,
}

/// The builder's settings whose types do not change.
#[derive(Debug)]
struct Options {
    delay: Delay,
    max_extra: u32,
    ratio: f64,
    burst: u32,
    fail_fast: bool,
    observe: ObserverBuilder,
}

impl<K, Q, C> HedgeBuilder<K, Q, C> {
    crate::observe::name_and_listeners!(
        options.observe,
        "# use std::time::Duration;\nlet _ = palisade::hedge::HedgeLayer::builder(palisade::hedge::Delay::Fixed(Duration::from_millis(5)))"
    );

    crate::observe::clock_setting!(
        "of the delays and latencies",
        "# use std::time::Duration;\nlet _ = palisade::hedge::HedgeLayer::builder(palisade::hedge::Delay::Fixed(Duration::from_millis(5)))",
        HedgeBuilder<K, Q, C2> { options, classifier, cloner }
    );

    /// At most `max_extra` extra attempts a request (each `delay` after
    /// the one before). Default 1.
    ///
    /// ```
    /// # use std::time::Duration;
    /// let _ = palisade::hedge::HedgeLayer::builder(palisade::hedge::Delay::Fixed(Duration::from_millis(5))).max_extra(2);
    /// ```
    pub fn max_extra(mut self, max_extra: u32) -> Self {
        self.options.max_extra = max_extra;
        self
    }

    /// Extra attempts at most `ratio` (in [0, 1]) of the requests, with up
    /// to `burst` in hand (one at least), shared by every service and
    /// clone: over any `n` requests, at most `ratio × n + burst` extra
    /// attempts. Default 10 %, 20. A hedge the budget refuses emits
    /// [`BudgetExhausted`](crate::observe::EventKind::BudgetExhausted).
    ///
    /// ```
    /// # use std::time::Duration;
    /// let _ = palisade::hedge::HedgeLayer::builder(palisade::hedge::Delay::Fixed(Duration::from_millis(5))).budget(0.05, 10);
    /// ```
    pub fn budget(mut self, ratio: f64, burst: u32) -> Self {
        (self.options.ratio, self.options.burst) = (ratio, burst);
        self
    }

    /// A failed attempt answers the request at once, even while others
    /// run. By default a failure waits for the other attempts (and is
    /// returned if none does better).
    ///
    /// ```
    /// # use std::time::Duration;
    /// let _ = palisade::hedge::HedgeLayer::builder(palisade::hedge::Delay::Fixed(Duration::from_millis(5))).fail_fast();
    /// ```
    pub fn fail_fast(mut self) -> Self {
        self.options.fail_fast = true;
        self
    }

    /// What is acceptable: any [`Classify`](crate::classify::Classify) of
    /// an attempt's result — a success or ignored result answers the
    /// request, a failure waits for the other attempts (or answers at once,
    /// [`fail_fast`](Self::fail_fast)). Default
    /// [`ErrorsAsFailures`]; for HTTP, a status classifier.
    ///
    /// ```
    /// use std::time::Duration;
    /// use palisade::{classify::Outcome, hedge::{Delay, HedgeLayer}};
    /// use tower::BoxError;
    /// let _ = HedgeLayer::builder(Delay::Fixed(Duration::from_millis(5)))
    ///     .classifier(|result: &Result<u16, BoxError>| match result {
    ///         Ok(status) if *status < 500 => Outcome::Success,
    ///         _ => Outcome::Failure,
    ///     });
    /// ```
    pub fn classifier<K2>(self, classifier: K2) -> HedgeBuilder<K2, Q, C> {
        HedgeBuilder {
            options: self.options,
            classifier,
            cloner: self.cloner,
            clock: self.clock,
        }
    }

    /// How each extra attempt gets its request, as the retry's: any
    /// [`RequestCloner`](crate::retry::RequestCloner) — `Clone` requests
    /// by default, a closure, or for HTTP bodies
    /// [`ReplayRequests`](crate::retry::body::ReplayRequests). A request
    /// that cannot be copied gets no extra attempt.
    ///
    /// ```
    /// # use std::time::Duration;
    /// let _ = palisade::hedge::HedgeLayer::builder(palisade::hedge::Delay::Fixed(Duration::from_millis(5)))
    ///     .clone_request(|request: &Vec<u8>| (request.len() < 1024).then(|| request.clone()));
    /// ```
    pub fn clone_request<Q2>(self, cloner: Q2) -> HedgeBuilder<K, Q2, C> {
        HedgeBuilder {
            options: self.options,
            classifier: self.classifier,
            cloner,
            clock: self.clock,
        }
    }
}

impl<K, Q, C: Clock> HedgeBuilder<K, Q, C> {
    /// Checks the configuration and builds the layer.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming the field: a zero or over-100-year delay or
    /// window (`delay`), a quantile outside (0, 1) (`delay`), a budget
    /// ratio outside [0, 1] (`budget`), more than 16 extra attempts
    /// (`max_extra`).
    ///
    /// ```
    /// use std::time::Duration;
    /// use palisade::hedge::{Delay, HedgeLayer};
    /// let err = HedgeLayer::builder(Delay::Fixed(Duration::ZERO)).build().unwrap_err();
    /// assert_eq!(err.field(), "delay");
    /// ```
    pub fn build(self) -> Result<HedgeLayer<K, Q, C>, ConfigError> {
        let options = self.options;
        let latencies = check_delay(options.delay)?;
        if !(0.0..=1.0).contains(&options.ratio) {
            return Err(ConfigError::new(
                LAYER,
                "budget",
                format!("the ratio must be in [0, 1], got {}", options.ratio),
            ));
        }
        if options.max_extra > 16 {
            return Err(ConfigError::new(
                LAYER,
                "max_extra",
                format!("must be at most 16, got {}", options.max_extra),
            ));
        }
        Ok(HedgeLayer {
            shared: Arc::new(Shared {
                delay: options.delay,
                max_extra: options.max_extra,
                fail_fast: options.fail_fast,
                classifier: self.classifier,
                cloner: self.cloner,
                clock: self.clock,
                budget: Budget::new(options.ratio, options.burst),
                latencies,
                observer: options.observe.build(LAYER),
            }),
        })
    }
}

/// Checks a delay; the histogram it needs, for a quantile.
fn check_delay(delay: Delay) -> Result<Option<Latencies>, ConfigError> {
    let duration = |duration: Duration| {
        check::positive(LAYER, "delay", duration)?;
        check::at_most_longest(LAYER, "delay", duration)
    };
    match delay {
        Delay::Fixed(delay) => duration(delay).map(|()| None),
        Delay::Quantile {
            quantile,
            window,
            until_known,
            ..
        } => {
            duration(window)?;
            duration(until_known)?;
            if !(quantile > 0.0 && quantile < 1.0) {
                return Err(ConfigError::new(
                    LAYER,
                    "delay",
                    format!("the quantile must be in (0, 1), got {quantile}"),
                ));
            }
            Ok(Some(Latencies::new(window)))
        }
    }
}

impl<K, Q, C> fmt::Debug for HedgeBuilder<K, Q, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HedgeBuilder")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

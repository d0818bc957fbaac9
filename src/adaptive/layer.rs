//! The adaptive limit's layer, its builder, and what its services share.

use std::{fmt, time::Duration};

use tower::Layer;

use super::{
    algorithm::{Algorithm, Sample},
    service::{Adaptive, Measured},
};
use crate::{
    bulkhead::BulkheadLayer,
    classify::ErrorsAsFailures,
    clock::{Clock, Instant, TokioClock},
    error::{ConfigError, check},
    observe::{EventKind, Observer, ObserverBuilder},
    sync::{Arc, AtomicU32, Mutex, Ordering, lock},
};

/// The kind of layer, and the name of one not given its own.
pub(crate) const LAYER: &str = "adaptive";

/// What every service and clone made by one layer shares.
pub(crate) struct Shared<A, K, C> {
    /// Admits the calls: its bound is the limit.
    pub(crate) bulkhead: BulkheadLayer<C>,
    algorithm: Mutex<A>,
    /// The limit, as last set (read without the lock).
    limit: AtomicU32,
    pub(crate) classifier: K,
    pub(crate) clock: C,
    /// One call in this many (on each thread) is timed and given to the
    /// algorithm.
    pub(crate) sample_every: u64,
    observer: Observer,
}

impl<A: Algorithm, K, C: Clock> Shared<A, K, C> {
    /// Gives the algorithm a sample of a call that ended at `now`, and the
    /// bulkhead the limit it sets.
    pub(crate) fn learn(&self, sample: Sample, now: Instant) {
        let mut algorithm = lock(&self.algorithm);
        let limit = algorithm.update(&sample, now).max(1);
        if self.limit.swap(limit, Ordering::Relaxed) != limit {
            // Under the algorithm's lock: two samples racing cannot leave
            // the bound at the older one's limit.
            self.bulkhead.set_bound(limit);
            drop(algorithm);
            if self.observer.is_active() {
                self.observer.emit(now, EventKind::LimitChanged { limit });
            }
        }
    }
}

/// A [`Layer`] that bounds the calls in flight like a bulkhead, at a limit
/// an [`Algorithm`] moves from each call's latency and outcome; see [the
/// module docs](super).
///
/// # Examples
///
/// ```
/// use palisade::adaptive::{AdaptiveLayer, Gradient2};
/// use tower::ServiceBuilder;
///
/// let adaptive = AdaptiveLayer::builder(Gradient2::new(20).bounds(4, 200)).name("search").build()?;
/// assert_eq!(adaptive.limit(), 20);
/// let service = ServiceBuilder::new()
///     .layer(adaptive)
///     .service_fn(|request: u32| async move { Ok::<_, std::io::Error>(request) });
/// # let _ = service;
/// # Ok::<(), palisade::error::ConfigError>(())
/// ```
pub struct AdaptiveLayer<A, K = ErrorsAsFailures, C = TokioClock> {
    shared: Arc<Shared<A, K, C>>,
}

impl<A: Algorithm> AdaptiveLayer<A> {
    /// A builder of a layer whose limit `algorithm` moves; the tokio clock,
    /// every error a drop, every call a sample, no queue.
    ///
    /// ```
    /// use palisade::adaptive::{AdaptiveLayer, Vegas};
    /// let _ = AdaptiveLayer::builder(Vegas::new(10)).build().unwrap();
    /// ```
    pub fn builder(algorithm: A) -> AdaptiveBuilder<A> {
        AdaptiveBuilder {
            algorithm,
            classifier: ErrorsAsFailures,
            clock: TokioClock::new(),
            queue: None,
            sample_every: 1,
            observe: ObserverBuilder::new(),
        }
    }
}

impl<A, K, C> AdaptiveLayer<A, K, C> {
    /// The limit now: how many calls may be in flight.
    ///
    /// ```
    /// use palisade::adaptive::{AdaptiveLayer, Aimd};
    /// assert_eq!(AdaptiveLayer::builder(Aimd::new(8)).build()?.limit(), 8);
    /// # Ok::<(), palisade::error::ConfigError>(())
    /// ```
    pub fn limit(&self) -> u32 {
        self.shared.limit.load(Ordering::Relaxed)
    }

    /// Calls in flight now.
    ///
    /// ```
    /// use palisade::adaptive::{AdaptiveLayer, Aimd};
    /// assert_eq!(AdaptiveLayer::builder(Aimd::new(8)).build()?.in_flight(), 0);
    /// # Ok::<(), palisade::error::ConfigError>(())
    /// ```
    pub fn in_flight(&self) -> u64 {
        self.shared.bulkhead.in_flight()
    }

    /// Calls waiting for a place now (with a [queue](AdaptiveBuilder::queue)).
    ///
    /// ```
    /// use palisade::adaptive::{AdaptiveLayer, Aimd};
    /// assert_eq!(AdaptiveLayer::builder(Aimd::new(8)).build()?.waiting(), 0);
    /// # Ok::<(), palisade::error::ConfigError>(())
    /// ```
    pub fn waiting(&self) -> u64 {
        self.shared.bulkhead.waiting()
    }
}

impl<S, A, K, C: Clock> Layer<S> for AdaptiveLayer<A, K, C> {
    type Service = Adaptive<S, A, K, C>;

    fn layer(&self, inner: S) -> Self::Service {
        let measured = Measured::new(inner, Arc::clone(&self.shared));
        Adaptive::new(self.shared.bulkhead.layer(measured))
    }
}

impl<A, K, C> Clone for AdaptiveLayer<A, K, C> {
    fn clone(&self) -> Self {
        AdaptiveLayer {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<A, K, C> fmt::Debug for AdaptiveLayer<A, K, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AdaptiveLayer")
            .field("name", self.shared.observer.name())
            .field("limit", &self.limit())
            .field("in_flight", &self.in_flight())
            .field("sample_every", &self.shared.sample_every)
            .finish_non_exhaustive()
    }
}

/// Configures an [`AdaptiveLayer`].
///
/// ```
/// use std::time::Duration;
/// use palisade::{adaptive::{AdaptiveLayer, Vegas}, clock::ManualClock};
///
/// let _ = AdaptiveLayer::builder(Vegas::new(16).bounds(2, 256))
///     .name("inventory")
///     .queue(32, Duration::from_millis(50))
///     .sample_every(4)
///     .clock(ManualClock::new())
///     .build()?;
/// # Ok::<(), palisade::error::ConfigError>(())
/// ```
pub struct AdaptiveBuilder<A, K = ErrorsAsFailures, C = TokioClock> {
    algorithm: A,
    classifier: K,
    clock: C,
    queue: Option<(u32, Duration)>,
    sample_every: u32,
    observe: ObserverBuilder,
}

impl<A, K, C> AdaptiveBuilder<A, K, C> {
    crate::observe::name_and_listeners!(
        observe,
        "let _ = palisade::adaptive::AdaptiveLayer::builder(palisade::adaptive::Aimd::new(8))"
    );

    crate::observe::clock_setting!(
        "of the calls' round trips",
        "let _ = palisade::adaptive::AdaptiveLayer::builder(palisade::adaptive::Aimd::new(8))",
        AdaptiveBuilder<A, K, C2> { algorithm, classifier, queue, sample_every, observe }
    );

    /// Decides which calls were dropped — failed in a way that says the
    /// dependency is overloaded — as the breaker's classifier does. Default:
    /// every error ([`ErrorsAsFailures`]); with feature `http`,
    /// [`ServerErrorsAsFailures`](crate::classify::ServerErrorsAsFailures)
    /// for `5xx` answers.
    ///
    /// ```
    /// use palisade::{adaptive::{AdaptiveLayer, Aimd}, classify::ErrorsAsFailures};
    /// let _ = AdaptiveLayer::builder(Aimd::new(8)).classifier(ErrorsAsFailures);
    /// ```
    pub fn classifier<K2>(self, classifier: K2) -> AdaptiveBuilder<A, K2, C> {
        AdaptiveBuilder {
            algorithm: self.algorithm,
            classifier,
            clock: self.clock,
            queue: self.queue,
            sample_every: self.sample_every,
            observe: self.observe,
        }
    }

    /// Lets up to `max_waiting` calls that find the limit reached wait for
    /// a place, in arrival order, each for at most `max_wait`, as the
    /// bulkhead's [`queue`](crate::bulkhead::BulkheadBuilder::queue). By
    /// default no call waits.
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use palisade::adaptive::{AdaptiveLayer, Aimd};
    /// let _ = AdaptiveLayer::builder(Aimd::new(8)).queue(16, Duration::from_millis(20));
    /// ```
    pub fn queue(mut self, max_waiting: u32, max_wait: Duration) -> Self {
        self.queue = Some((max_waiting, max_wait));
        self
    }

    /// Times one call in `calls` (counted on each thread) and gives only
    /// those to the algorithm — an even sample of the calls, their latency,
    /// in-flight count and drops alike. Default 1: every call, as the
    /// published algorithms are described; under heavy traffic, a sample of
    /// one in 8 or 16 saves the others the two clock reads and the lock of
    /// a sample (see the benchmark) and learns at the same pace in
    /// samples.
    ///
    /// ```
    /// # use palisade::adaptive::{AdaptiveLayer, Aimd};
    /// let _ = AdaptiveLayer::builder(Aimd::new(8)).sample_every(16);
    /// ```
    pub fn sample_every(mut self, calls: u32) -> Self {
        self.sample_every = calls;
        self
    }
}

impl<A: Algorithm, K, C: Clock> AdaptiveBuilder<A, K, C> {
    /// Checks the configuration and builds the layer.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming the field: the algorithm's (`min`, `max`,
    /// `initial`, `backoff`, `smoothing`, …), `sample_every` (0), or
    /// `queue.max_waiting` / `queue.max_wait` (0).
    ///
    /// ```
    /// use palisade::adaptive::{AdaptiveLayer, Aimd};
    /// let err = AdaptiveLayer::builder(Aimd::new(50).bounds(1, 10)).build().unwrap_err();
    /// assert_eq!(err.field(), "initial");
    /// ```
    pub fn build(self) -> Result<AdaptiveLayer<A, K, C>, ConfigError> {
        self.algorithm.check()?;
        check::at_least_one(LAYER, "sample_every", self.sample_every)?;
        let limit = self.algorithm.limit().max(1);
        let mut bulkhead = BulkheadLayer::builder(limit);
        if let Some((max_waiting, max_wait)) = self.queue {
            bulkhead = bulkhead.queue(max_waiting, max_wait);
        }
        let bulkhead = bulkhead
            .clock(self.clock.clone())
            .observe(self.observe.clone())
            .build_as(LAYER)?;
        let observer = self.observe.build(LAYER);
        if observer.is_active() {
            observer.emit(self.clock.now(), EventKind::LimitChanged { limit });
        }
        Ok(AdaptiveLayer {
            shared: Arc::new(Shared {
                bulkhead,
                algorithm: Mutex::new(self.algorithm),
                limit: AtomicU32::new(limit),
                classifier: self.classifier,
                clock: self.clock,
                sample_every: u64::from(self.sample_every),
                observer,
            }),
        })
    }
}

impl<A: fmt::Debug, K, C> fmt::Debug for AdaptiveBuilder<A, K, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AdaptiveBuilder")
            .field("algorithm", &self.algorithm)
            .field("queue", &self.queue)
            .field("sample_every", &self.sample_every)
            .field("observe", &self.observe)
            .finish_non_exhaustive()
    }
}

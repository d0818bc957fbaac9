//! The bulkhead layer and its builder.

use std::{fmt, num::NonZeroUsize, time::Duration};

use tower::Layer;

use super::{
    permits::Permits,
    queue::{Queue, Waiting},
    service::Bulkhead,
};
use crate::{
    clock::{Clock, TokioClock},
    error::{ConfigError, check},
    observe::{Observer, ObserverBuilder},
    sync::Arc,
};

/// The kind of layer, and the name of one not given its own.
const LAYER: &str = "bulkhead";

/// What every service and clone made by one layer shares.
pub(crate) struct Shared<C> {
    pub(crate) permits: Permits,
    pub(crate) queue: Queue,
    pub(crate) waiting: Option<Waiting>,
    pub(crate) clock: C,
    pub(crate) observer: Observer,
    /// Whether anything receives events: decided once, read per call.
    pub(crate) observed: bool,
}

/// A [`Layer`] that bounds the calls in flight; see [the module docs](super).
///
/// ```
/// use palisade::bulkhead::BulkheadLayer;
/// use tower::ServiceBuilder;
///
/// let bulkhead = BulkheadLayer::builder(32).name("payments").build()?;
/// let service = ServiceBuilder::new()
///     .layer(bulkhead)
///     .service_fn(|request: u32| async move { Ok::<_, std::io::Error>(request) });
/// # let _ = service;
/// # Ok::<(), palisade::error::ConfigError>(())
/// ```
pub struct BulkheadLayer<C = TokioClock> {
    shared: Arc<Shared<C>>,
}

impl BulkheadLayer {
    /// At most `max_concurrent` calls in flight, the others refused at once;
    /// no name, no listener, the tokio clock. Nothing here can be invalid,
    /// so nothing to check, as with tower's `ConcurrencyLimitLayer::new`; a
    /// bound past `u32::MAX` is `u32::MAX`. [`builder`](Self::builder) sets
    /// the rest.
    ///
    /// ```
    /// use std::num::NonZeroUsize;
    /// use palisade::bulkhead::BulkheadLayer;
    ///
    /// let layer = BulkheadLayer::new(NonZeroUsize::new(32).unwrap());
    /// assert_eq!(layer.in_flight(), 0);
    /// ```
    pub fn new(max_concurrent: NonZeroUsize) -> BulkheadLayer {
        let max_concurrent = u32::try_from(max_concurrent.get()).unwrap_or(u32::MAX);
        BulkheadLayer::builder(max_concurrent)
            .build()
            .expect("a bound of at least one and no queue is valid")
    }

    /// At most `max_concurrent` calls in flight; the tokio clock (which
    /// times calls for the `Finished` events).
    ///
    /// ```
    /// let _ = palisade::bulkhead::BulkheadLayer::builder(10).build().unwrap();
    /// ```
    pub fn builder(max_concurrent: u32) -> BulkheadBuilder {
        BulkheadBuilder {
            max_concurrent,
            waiting: None,
            clock: TokioClock::new(),
            observe: ObserverBuilder::new(),
        }
    }
}

impl<C> BulkheadLayer<C> {
    /// Calls in flight now, through every service and clone of the layer.
    ///
    /// ```
    /// let layer = palisade::bulkhead::BulkheadLayer::builder(10).build().unwrap();
    /// assert_eq!(layer.in_flight(), 0);
    /// ```
    pub fn in_flight(&self) -> u64 {
        self.shared.permits.in_flight()
    }

    /// Calls waiting for a permit now.
    ///
    /// ```
    /// let layer = palisade::bulkhead::BulkheadLayer::builder(10).build().unwrap();
    /// assert_eq!(layer.waiting(), 0);
    /// ```
    pub fn waiting(&self) -> u64 {
        self.shared.permits.waiting()
    }
}

impl<S, C: Clock> Layer<S> for BulkheadLayer<C> {
    type Service = Bulkhead<S, C>;

    fn layer(&self, inner: S) -> Self::Service {
        Bulkhead::new(inner, Arc::clone(&self.shared))
    }
}

impl<C> Clone for BulkheadLayer<C> {
    fn clone(&self) -> Self {
        BulkheadLayer {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<C> fmt::Debug for BulkheadLayer<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BulkheadLayer")
            .field("bulkhead", &self.shared)
            .finish()
    }
}

impl<C> fmt::Debug for Shared<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Bulkhead")
            .field("name", self.observer.name())
            .field("max_concurrent", &self.permits.max())
            .field("in_flight", &self.permits.in_flight())
            .field("waiting", &self.permits.waiting())
            .finish_non_exhaustive()
    }
}

/// Configures a [`BulkheadLayer`].
///
/// ```
/// use palisade::{bulkhead::BulkheadLayer, clock::ManualClock};
/// let _ = BulkheadLayer::builder(4).name("search").clock(ManualClock::new()).build()?;
/// # Ok::<(), palisade::error::ConfigError>(())
/// ```
pub struct BulkheadBuilder<C = TokioClock> {
    max_concurrent: u32,
    waiting: Option<Waiting>,
    clock: C,
    observe: ObserverBuilder,
}

impl<C> BulkheadBuilder<C> {
    crate::observe::name_and_listeners!(
        observe,
        "let _ = palisade::bulkhead::BulkheadLayer::builder(4)"
    );

    /// Lets up to `max_waiting` calls that find every permit taken wait for
    /// one, in arrival order, each for at most `max_wait` (then it is refused
    /// with [`BulkheadFull`](crate::error::BulkheadFull)). By default no call
    /// waits. A waiting call holds the service made ready for it, so the
    /// wrapped service must be `Clone` (as for tower's `Buffer`).
    ///
    /// ```
    /// # use std::time::Duration;
    /// let _ = palisade::bulkhead::BulkheadLayer::builder(4).queue(16, Duration::from_millis(50));
    /// ```
    pub fn queue(mut self, max_waiting: u32, max_wait: Duration) -> Self {
        self.waiting = Some(Waiting {
            max_waiting: max_waiting as usize,
            max_wait,
        });
        self
    }

    crate::observe::clock_setting!(
        "of the queue's waits and of the `Finished` events' timings",
        "let _ = palisade::bulkhead::BulkheadLayer::builder(4)",
        BulkheadBuilder<C2> { max_concurrent, waiting, observe }
    );

    /// Checks the configuration and builds the layer.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming `max_concurrent`, `queue.max_waiting` or
    /// `queue.max_wait` when it is 0.
    ///
    /// ```
    /// let err = palisade::bulkhead::BulkheadLayer::builder(0).build().unwrap_err();
    /// assert_eq!(err.field(), "max_concurrent");
    /// ```
    pub fn build(self) -> Result<BulkheadLayer<C>, ConfigError> {
        check::at_least_one(LAYER, "max_concurrent", self.max_concurrent)?;
        if let Some(waiting) = self.waiting {
            let max_waiting = u32::try_from(waiting.max_waiting).unwrap_or(u32::MAX);
            check::at_least_one(LAYER, "queue.max_waiting", max_waiting)?;
            check::positive(LAYER, "queue.max_wait", waiting.max_wait)?;
        }
        let observer = self.observe.build(LAYER);
        Ok(BulkheadLayer {
            shared: Arc::new(Shared {
                permits: Permits::new(u64::from(self.max_concurrent)),
                queue: Queue::default(),
                waiting: self.waiting,
                clock: self.clock,
                observed: observer.is_active(),
                observer,
            }),
        })
    }
}

impl<C> fmt::Debug for BulkheadBuilder<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BulkheadBuilder")
            .field("max_concurrent", &self.max_concurrent)
            .field("waiting", &self.waiting)
            .field("observe", &self.observe)
            .finish_non_exhaustive()
    }
}

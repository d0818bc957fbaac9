//! The bulkhead layer and its builder.

use std::{fmt, num::NonZeroUsize, time::Duration};

use tower::Layer;

use super::{
    permits::Permits,
    queue::{Queue, Waiting},
    service::Bulkhead,
    settings::{QueueBounds, Settings},
};
use crate::{
    clock::{Clock, TokioClock},
    error::{ConfigError, check},
    observe::{Observer, ObserverBuilder},
    sync::Arc,
};

/// The kind of layer, and the name of one not given its own.
pub(crate) const LAYER: &str = "bulkhead";

/// What every service and clone made by one layer shares.
pub(crate) struct Shared<C> {
    pub(crate) permits: Permits,
    pub(crate) queue: Queue,
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

    /// The bound on calls in flight now.
    ///
    /// ```
    /// let layer = palisade::bulkhead::BulkheadLayer::builder(10).build().unwrap();
    /// assert_eq!(layer.max_concurrent(), 10);
    /// ```
    pub fn max_concurrent(&self) -> u64 {
        self.shared.permits.max()
    }

    /// The queue's bounds now — how many may wait, and for how long — or
    /// `None` without a queue.
    ///
    /// ```
    /// use std::time::Duration;
    /// let layer = palisade::bulkhead::BulkheadLayer::builder(1)
    ///     .queue(8, Duration::from_millis(50))
    ///     .build()
    ///     .unwrap();
    /// assert_eq!(layer.queue(), Some((8, Duration::from_millis(50))));
    /// ```
    pub fn queue(&self) -> Option<(usize, Duration)> {
        let bounds = self.shared.queue.bounds();
        bounds.map(|bounds| (bounds.max_waiting, bounds.max_wait))
    }

    /// The settings now: the bound and the queue's bounds.
    ///
    /// ```
    /// let layer = palisade::bulkhead::BulkheadLayer::builder(10).build().unwrap();
    /// assert_eq!(layer.settings().max_concurrent, 10);
    /// ```
    pub fn settings(&self) -> Settings {
        Settings {
            max_concurrent: u32::try_from(self.max_concurrent()).unwrap_or(u32::MAX),
            queue: self.shared.queue.bounds().map(QueueBounds::of),
        }
    }
}

impl<C: Clock> BulkheadLayer<C> {
    /// Changes the bound on calls in flight of the running layer, from any
    /// thread, for every service and clone made from it.
    ///
    /// What is kept: every call in flight. Lowered below the calls in
    /// flight, the bulkhead lets them finish and admits none until they are
    /// fewer than the new bound. Raised, the permits it frees go at once to
    /// the calls waiting in the queue, first come first served. Checked as
    /// the builder checks it; emits
    /// [`Reconfigured`](crate::observe::EventKind::Reconfigured) (setting
    /// `max_concurrent`).
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] on `max_concurrent` when it is 0; the bound is left
    /// as it was.
    ///
    /// ```
    /// let layer = palisade::bulkhead::BulkheadLayer::builder(10).build().unwrap();
    /// layer.set_max_concurrent(4)?;
    /// assert_eq!(layer.max_concurrent(), 4);
    /// assert_eq!(layer.set_max_concurrent(0).unwrap_err().field(), "max_concurrent");
    /// # Ok::<(), palisade::error::ConfigError>(())
    /// ```
    pub fn set_max_concurrent(&self, max_concurrent: u32) -> Result<(), ConfigError> {
        check::at_least_one(LAYER, "max_concurrent", max_concurrent)?;
        let shared = &self.shared;
        let old = shared
            .queue
            .set_max(&shared.permits, u64::from(max_concurrent));
        self.changed("max_concurrent", old as f64, f64::from(max_concurrent));
        Ok(())
    }

    /// Gives the running layer a queue, or changes its bounds: up to
    /// `max_waiting` calls that find every permit taken wait, each at most
    /// `max_wait`. What is kept: the calls waiting keep their place and
    /// their deadline; a room made smaller than the calls in it turns
    /// newcomers away until it has room again. Checked as the builder's
    /// [`queue`](BulkheadBuilder::queue); emits a
    /// [`Reconfigured`](crate::observe::EventKind::Reconfigured) event per
    /// setting (`queue.max_waiting`, `queue.max_wait`; 0 for no queue).
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming `queue.max_waiting` or `queue.max_wait` when
    /// it is 0; the queue is left as it was.
    ///
    /// ```
    /// use std::time::Duration;
    /// let layer = palisade::bulkhead::BulkheadLayer::builder(4).build().unwrap();
    /// layer.set_queue(16, Duration::from_millis(100))?;
    /// assert_eq!(layer.queue(), Some((16, Duration::from_millis(100))));
    /// let err = layer.set_queue(0, Duration::from_millis(100)).unwrap_err();
    /// assert_eq!(err.field(), "queue.max_waiting");
    /// # Ok::<(), palisade::error::ConfigError>(())
    /// ```
    pub fn set_queue(&self, max_waiting: u32, max_wait: Duration) -> Result<(), ConfigError> {
        check::at_least_one(LAYER, "queue.max_waiting", max_waiting)?;
        check::positive(LAYER, "queue.max_wait", max_wait)?;
        self.swap_queue(Some(Waiting {
            max_waiting: max_waiting as usize,
            max_wait,
        }));
        Ok(())
    }

    /// Changes every setting at once on the running layer, as
    /// [`set_max_concurrent`](Self::set_max_concurrent),
    /// [`set_queue`](Self::set_queue) and
    /// [`remove_queue`](Self::remove_queue) do (what is kept is theirs);
    /// all are checked before any changes. A setting given its own value
    /// again is no change, and no event.
    ///
    /// # Errors
    ///
    /// The [`ConfigError`] of the first invalid setting (the field named);
    /// the layer is then left as it was.
    ///
    /// ```
    /// let layer = palisade::bulkhead::BulkheadLayer::builder(10).build().unwrap();
    /// let mut settings = layer.settings();
    /// settings.max_concurrent = 0;
    /// assert_eq!(layer.reconfigure(settings).unwrap_err().field(), "max_concurrent");
    /// assert_eq!(layer.max_concurrent(), 10);
    /// ```
    pub fn reconfigure(&self, settings: Settings) -> Result<(), ConfigError> {
        settings.check()?;
        let now = self.settings();
        if settings.max_concurrent != now.max_concurrent {
            self.set_max_concurrent(settings.max_concurrent)?;
        }
        if settings.queue != now.queue {
            match settings.queue {
                Some(queue) => self.set_queue(queue.max_waiting, queue.max_wait)?,
                None => self.remove_queue(),
            }
        }
        Ok(())
    }

    /// Takes the running layer's queue away: calls that find every permit
    /// taken are refused at once from now on. The calls waiting keep their
    /// place until a permit or their deadline comes.
    ///
    /// ```
    /// use std::time::Duration;
    /// let layer = palisade::bulkhead::BulkheadLayer::builder(4)
    ///     .queue(8, Duration::from_millis(50))
    ///     .build()
    ///     .unwrap();
    /// layer.remove_queue();
    /// assert_eq!(layer.queue(), None);
    /// ```
    pub fn remove_queue(&self) {
        self.swap_queue(None);
    }

    fn swap_queue(&self, waiting: Option<Waiting>) {
        let old = self.shared.queue.set_bounds(waiting);
        let bounds = |waiting: Option<Waiting>| {
            waiting.map_or((0.0, 0.0), |waiting| {
                (waiting.max_waiting as f64, waiting.max_wait.as_secs_f64())
            })
        };
        let ((old_waiting, old_wait), (new_waiting, new_wait)) = (bounds(old), bounds(waiting));
        self.changed("queue.max_waiting", old_waiting, new_waiting);
        self.changed("queue.max_wait", old_wait, new_wait);
    }

    /// Moves the bound as [`set_max_concurrent`](Self::set_max_concurrent)
    /// does, without an event: for a layer that moves it on every sample
    /// (the adaptive limit) and reports it its own way.
    pub(crate) fn set_bound(&self, max_concurrent: u32) {
        let shared = &self.shared;
        shared
            .queue
            .set_max(&shared.permits, u64::from(max_concurrent.max(1)));
    }

    /// The event of a change.
    fn changed(&self, setting: &'static str, old: f64, new: f64) {
        let shared = &self.shared;
        shared
            .observer
            .changed(shared.clock.now(), setting, old, new);
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

    /// The bound and the queue at once, as a [`Settings`] value (what a
    /// configuration file holds).
    ///
    /// ```
    /// use palisade::bulkhead::BulkheadLayer;
    /// let running = BulkheadLayer::builder(8).build()?;
    /// let twin = BulkheadLayer::builder(1).settings(running.settings()).build()?;
    /// assert_eq!(twin.settings(), running.settings());
    /// # Ok::<(), palisade::error::ConfigError>(())
    /// ```
    pub fn settings(mut self, settings: Settings) -> Self {
        self.max_concurrent = settings.max_concurrent;
        self.waiting = settings.queue.map(|queue| queue.waiting());
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
        self.build_as(LAYER)
    }

    /// Observed as `kind` (its events' layer), for a layer built on a
    /// bulkhead (the adaptive limit), with that layer's name and listeners.
    pub(crate) fn observe(mut self, observe: ObserverBuilder) -> Self {
        self.observe = observe;
        self
    }

    /// [`build`](Self::build), the events' layer being `kind`.
    pub(crate) fn build_as(self, kind: &'static str) -> Result<BulkheadLayer<C>, ConfigError> {
        check::at_least_one(kind, "max_concurrent", self.max_concurrent)?;
        if let Some(waiting) = self.waiting {
            let max_waiting = u32::try_from(waiting.max_waiting).unwrap_or(u32::MAX);
            check::at_least_one(kind, "queue.max_waiting", max_waiting)?;
            check::positive(kind, "queue.max_wait", waiting.max_wait)?;
        }
        let observer = self.observe.build(kind);
        Ok(BulkheadLayer {
            shared: Arc::new(Shared {
                permits: Permits::new(u64::from(self.max_concurrent)),
                queue: Queue::new(self.waiting),
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

#[cfg(all(test, not(loom)))]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[test]
    fn a_bound_moved_quietly_applies_at_least_one_and_says_nothing() {
        let events = Arc::new(AtomicUsize::new(0));
        let seen = Arc::clone(&events);
        let layer = BulkheadLayer::builder(4)
            .on_event(move |_| {
                seen.fetch_add(1, Ordering::Relaxed);
            })
            .build()
            .unwrap();
        layer.set_bound(2);
        assert_eq!(layer.max_concurrent(), 2);
        layer.set_bound(0);
        assert_eq!(layer.max_concurrent(), 1);
        assert_eq!(events.load(Ordering::Relaxed), 0);
    }
}

//! The timeout layer and its builder.

use std::{fmt, time::Duration};

use tower::Layer;

use super::{service::Timeout, settings::Settings};
use crate::{
    clock::{Clock, TokioClock, nanos},
    error::ConfigError,
    observe::{Observer, ObserverBuilder},
    sync::{Arc, AtomicU64, Ordering},
};

/// What every service and clone made by one layer shares.
pub(crate) struct Shared<T, C> {
    /// The timeout in nanoseconds, as a call's future holds it; changed
    /// live by [`TimeoutLayer::set_timeout`], read once per call.
    pub(crate) timeout: AtomicU64,
    pub(crate) per_request: T,
    pub(crate) clock: C,
    pub(crate) observer: Observer,
    /// Nothing to tell (no listener, no sink) and no name but the default: a
    /// firing needs nothing from the layer, so response futures do not hold
    /// it.
    pub(crate) quiet: bool,
}

/// The kind of layer, and the name of one not given its own.
pub(crate) const LAYER: &str = "timeout";

/// The time a request asks for, when it asks: a function of the request —
/// a `grpc-timeout` header, a deadline the caller put in the request.
/// Closures `Fn(&Req) -> Option<Duration>` are such functions. The layer
/// uses the shorter of this and its own timeout.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use palisade::timeout::TimeoutFor;
///
/// // A request that says how many milliseconds it may take.
/// let asked = |request: &(u64, String)| Some(Duration::from_millis(request.0));
/// assert_eq!(asked.timeout_for(&(250, "GET".into())), Some(Duration::from_millis(250)));
/// ```
pub trait TimeoutFor<Req> {
    /// The time `request` asks for, if any.
    fn timeout_for(&self, request: &Req) -> Option<Duration>;
}

impl<Req, F> TimeoutFor<Req> for F
where
    F: Fn(&Req) -> Option<Duration>,
{
    fn timeout_for(&self, request: &Req) -> Option<Duration> {
        self(request)
    }
}

/// No request asks for its own time: the layer's timeout applies to all. The
/// default [`TimeoutFor`].
///
/// ```
/// use palisade::timeout::{FixedTimeout, TimeoutFor};
/// assert_eq!(FixedTimeout.timeout_for(&"any request"), None);
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct FixedTimeout;

impl<Req> TimeoutFor<Req> for FixedTimeout {
    fn timeout_for(&self, _: &Req) -> Option<Duration> {
        None
    }
}

/// A [`Layer`] that fails calls taking longer than a timeout, on the layer's
/// clock; see [the module docs](super).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use palisade::timeout::TimeoutLayer;
/// use tower::ServiceBuilder;
///
/// let timeout = TimeoutLayer::builder(Duration::from_millis(500)).name("inventory").build()?;
/// let service = ServiceBuilder::new()
///     .layer(timeout)
///     .service_fn(|request: u32| async move { Ok::<_, std::io::Error>(request) });
/// # let _ = service;
/// # Ok::<(), palisade::error::ConfigError>(())
/// ```
pub struct TimeoutLayer<T = FixedTimeout, C = TokioClock> {
    shared: Arc<Shared<T, C>>,
}

impl TimeoutLayer {
    /// A timeout of `timeout` for every call; no name, no listener, the
    /// tokio clock. Infallible, as tower's `TimeoutLayer::new`: a zero
    /// timeout is taken as one nanosecond, so a call not ready at its first
    /// poll times out at the timer's next tick. [`builder`](Self::builder)
    /// sets the rest, and refuses a zero timeout as the likely mistake it is.
    ///
    /// ```
    /// use std::time::Duration;
    /// use palisade::timeout::TimeoutLayer;
    ///
    /// let layer = TimeoutLayer::new(Duration::from_millis(250));
    /// # let _ = layer;
    /// ```
    pub fn new(timeout: Duration) -> TimeoutLayer {
        TimeoutBuilder {
            timeout: timeout.max(Duration::from_nanos(1)),
            ..TimeoutLayer::builder(timeout)
        }
        .build()
        .expect("a positive timeout is valid")
    }

    /// A timeout of `timeout` for every call, on the tokio clock.
    ///
    /// ```
    /// # use std::time::Duration;
    /// let _ = palisade::timeout::TimeoutLayer::builder(Duration::from_secs(1)).build().unwrap();
    /// ```
    pub fn builder(timeout: Duration) -> TimeoutBuilder {
        TimeoutBuilder {
            timeout,
            per_request: FixedTimeout,
            clock: TokioClock::new(),
            observe: ObserverBuilder::new(),
        }
    }
}

impl<T, C> Shared<T, C> {
    /// The layer's timeout now.
    pub(crate) fn timeout(&self) -> Duration {
        Duration::from_nanos(self.timeout.load(Ordering::Relaxed))
    }
}

impl<T, C: Clock> TimeoutLayer<T, C> {
    /// The timeout now (the builder's, or the last
    /// [`set_timeout`](Self::set_timeout)'s).
    ///
    /// ```
    /// use std::time::Duration;
    /// let layer = palisade::timeout::TimeoutLayer::new(Duration::from_secs(2));
    /// assert_eq!(layer.timeout(), Duration::from_secs(2));
    /// ```
    pub fn timeout(&self) -> Duration {
        self.shared.timeout()
    }

    /// Changes the timeout of the running layer, from any thread: every
    /// service and clone made from it applies the new one to the calls it
    /// makes from now on. A call already running keeps the timeout it
    /// started with (its timer, if armed, is not moved). Checked as the
    /// builder checks it; emits
    /// [`Reconfigured`](crate::observe::EventKind::Reconfigured) (setting
    /// `timeout`, old and new in seconds).
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] on `timeout` when it is zero; the timeout is left
    /// as it was.
    ///
    /// ```
    /// use std::time::Duration;
    /// use palisade::timeout::TimeoutLayer;
    ///
    /// let layer = TimeoutLayer::new(Duration::from_secs(2));
    /// layer.set_timeout(Duration::from_millis(500))?;
    /// assert_eq!(layer.timeout(), Duration::from_millis(500));
    /// assert_eq!(layer.set_timeout(Duration::ZERO).unwrap_err().field(), "timeout");
    /// # Ok::<(), palisade::error::ConfigError>(())
    /// ```
    pub fn set_timeout(&self, timeout: Duration) -> Result<(), ConfigError> {
        Settings { timeout }.check()?;
        let shared = &self.shared;
        let old = shared.timeout.swap(nanos(timeout), Ordering::Relaxed);
        let old = Duration::from_nanos(old).as_secs_f64();
        let at = shared.clock.now();
        shared
            .observer
            .changed(at, "timeout", old, timeout.as_secs_f64());
        Ok(())
    }

    /// The settings now.
    ///
    /// ```
    /// use std::time::Duration;
    /// let layer = palisade::timeout::TimeoutLayer::new(Duration::from_secs(2));
    /// assert_eq!(layer.settings().timeout, Duration::from_secs(2));
    /// ```
    pub fn settings(&self) -> Settings {
        Settings {
            timeout: self.timeout(),
        }
    }

    /// Changes the settings of the running layer: see
    /// [`set_timeout`](Self::set_timeout). The same value again is no
    /// change, and no event.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] on `timeout` when it is zero.
    ///
    /// ```
    /// use std::time::Duration;
    /// let layer = palisade::timeout::TimeoutLayer::new(Duration::from_secs(2));
    /// let mut settings = layer.settings();
    /// settings.timeout = Duration::ZERO;
    /// assert_eq!(layer.reconfigure(settings).unwrap_err().field(), "timeout");
    /// ```
    pub fn reconfigure(&self, settings: Settings) -> Result<(), ConfigError> {
        self.set_timeout(settings.timeout)
    }
}

impl<S, T, C: Clock> Layer<S> for TimeoutLayer<T, C> {
    type Service = Timeout<S, T, C>;

    fn layer(&self, inner: S) -> Self::Service {
        Timeout::new(inner, Arc::clone(&self.shared))
    }
}

impl<T, C> Clone for TimeoutLayer<T, C> {
    fn clone(&self) -> Self {
        TimeoutLayer {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<T, C> fmt::Debug for TimeoutLayer<T, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TimeoutLayer")
            .field("timeout", &self.shared)
            .finish()
    }
}

impl<T, C> fmt::Debug for Shared<T, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Timeout")
            .field("name", self.observer.name())
            .field("timeout", &self.timeout())
            .finish_non_exhaustive()
    }
}

/// Configures a [`TimeoutLayer`]; [`build`](TimeoutBuilder::build) checks the
/// configuration.
///
/// ```
/// use std::time::Duration;
/// use palisade::{clock::ManualClock, timeout::TimeoutLayer};
///
/// let layer = TimeoutLayer::builder(Duration::from_secs(5))
///     .per_request(|request: &Option<Duration>| *request)
///     .clock(ManualClock::new())
///     .build()?;
/// # let _ = layer;
/// # Ok::<(), palisade::error::ConfigError>(())
/// ```
pub struct TimeoutBuilder<T = FixedTimeout, C = TokioClock> {
    timeout: Duration,
    per_request: T,
    clock: C,
    observe: ObserverBuilder,
}

impl<T, C> TimeoutBuilder<T, C> {
    crate::observe::name_and_listeners!(
        observe,
        "# use std::time::Duration;\nlet _ = palisade::timeout::TimeoutLayer::builder(Duration::from_secs(1))"
    );

    /// Observed as `observe` says (its listeners and name): a layer built
    /// inside another shares that one's listeners.
    #[cfg(feature = "redis")]
    pub(crate) fn observed(mut self, observe: crate::observe::ObserverBuilder) -> Self {
        self.observe = observe;
        self
    }

    /// Lets each request ask for less time: any [`TimeoutFor`]. The shorter
    /// of what it asks and the layer's timeout applies.
    ///
    /// ```
    /// # use std::time::Duration;
    /// let _ = palisade::timeout::TimeoutLayer::builder(Duration::from_secs(1))
    ///     .per_request(|_: &String| Some(Duration::from_millis(100)));
    /// ```
    pub fn per_request<T2>(self, per_request: T2) -> TimeoutBuilder<T2, C> {
        TimeoutBuilder {
            timeout: self.timeout,
            per_request,
            clock: self.clock,
            observe: self.observe,
        }
    }

    crate::observe::clock_setting!(
        "of the timer",
        "# use std::time::Duration;\nlet _ = palisade::timeout::TimeoutLayer::builder(Duration::from_secs(1))",
        TimeoutBuilder<T, C2> { timeout, per_request, observe }
    );

    /// Checks the configuration and builds the layer.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] on `timeout` when it is zero.
    ///
    /// ```
    /// # use std::time::Duration;
    /// let err = palisade::timeout::TimeoutLayer::builder(Duration::ZERO).build().unwrap_err();
    /// assert_eq!(err.field(), "timeout");
    /// ```
    pub fn build(self) -> Result<TimeoutLayer<T, C>, ConfigError> {
        Settings {
            timeout: self.timeout,
        }
        .check()?;
        let observer = self.observe.build(LAYER);
        Ok(TimeoutLayer {
            shared: Arc::new(Shared {
                timeout: AtomicU64::new(nanos(self.timeout)),
                per_request: self.per_request,
                clock: self.clock,
                quiet: !observer.is_active() && *observer.name() == LAYER,
                observer,
            }),
        })
    }
}

impl<T, C> fmt::Debug for TimeoutBuilder<T, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TimeoutBuilder")
            .field("timeout", &self.timeout)
            .field("observe", &self.observe)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use std::{future::Ready, time::Duration};

    use tower::{Layer, Service, service_fn};

    use super::TimeoutLayer;
    use crate::sync::Arc;

    fn answer(x: u8) -> Ready<Result<u8, std::io::Error>> {
        std::future::ready(Ok(x))
    }

    #[test]
    fn a_call_holds_the_layer_only_when_a_firing_needs_it() {
        let observed = cfg!(any(feature = "metrics", feature = "tracing"));
        for (name, holds) in [(None, observed), (Some("upstream"), true)] {
            let builder = TimeoutLayer::builder(Duration::from_secs(1));
            let builder = match name {
                Some(name) => builder.name(name),
                None => builder,
            };
            let layer = builder.build().unwrap();
            let mut service = layer.layer(service_fn(answer));
            let before = Arc::strong_count(&layer.shared);
            let call = service.call(1);
            assert_eq!(
                Arc::strong_count(&layer.shared) - before,
                usize::from(holds)
            );
            drop(call);
            assert_eq!(Arc::strong_count(&layer.shared), before);
        }
    }
}

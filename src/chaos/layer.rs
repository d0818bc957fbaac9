//! The chaos layer, its builder, and what its services share.

use std::{fmt, time::Duration};

use tower::{BoxError, Layer};

use super::{
    latency::Latency,
    service::Chaos,
    settings::{Fault, Settings},
};
use crate::{
    LayerName,
    clock::{Clock, TokioClock},
    error::ConfigError,
    observe::{EventKind, Observer, ObserverBuilder},
    random::{FastRandom, Random},
    sync::{Arc, AtomicBool, Mutex, Ordering, lock},
};

/// The kind of layer, and the name of one not given its own.
pub(crate) const LAYER: &str = "chaos";

type MakeError<Req> = Box<dyn Fn(&Req) -> BoxError + Send + Sync>;
type MakeResponse<Req, Res> = Box<dyn Fn(&Req) -> Res + Send + Sync>;
type OptIn<Req> = Box<dyn Fn(&Req) -> bool + Send + Sync>;

/// The error a [`ChaosLayer`] fails a request with when it was given no
/// error of its own to inject: a stand-in for a dependency failure, counted
/// as one by a circuit breaker and retried by a retry.
///
/// ```
/// use palisade::chaos::{ChaosLayer, InjectedFault};
/// use tower::{Layer, Service, service_fn};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let layer = ChaosLayer::builder().name("db").error(1.0).build().unwrap();
/// let mut service = layer.layer(service_fn(|x: u32| async move { Ok::<_, std::io::Error>(x) }));
/// let err = service.call(1).await.unwrap_err();
/// assert_eq!(err.downcast_ref::<InjectedFault>().unwrap().layer(), "db");
/// assert_eq!(err.to_string(), "fault injected by chaos layer `db`");
/// # }
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InjectedFault {
    layer: LayerName,
}

impl InjectedFault {
    /// The name of the layer that injected it.
    ///
    /// ```
    /// # use palisade::chaos::InjectedFault;
    /// let fault = InjectedFault::new("db");
    /// assert_eq!(fault.layer(), "db");
    /// ```
    pub fn layer(&self) -> &LayerName {
        &self.layer
    }

    /// A fault as injected by the layer named `layer`.
    ///
    /// ```
    /// # use palisade::chaos::InjectedFault;
    /// let _ = InjectedFault::new("payments");
    /// ```
    pub fn new(layer: impl Into<LayerName>) -> InjectedFault {
        InjectedFault {
            layer: layer.into(),
        }
    }
}

impl fmt::Display for InjectedFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "fault injected by chaos layer `{}`", self.layer)
    }
}

impl std::error::Error for InjectedFault {}

/// What every service and clone made by one layer shares.
pub(crate) struct Shared<Req, Res, C, R> {
    /// Read by every request: the whole cost of a disabled layer. A
    /// mirror of `settings.enabled`, written under its lock.
    enabled: AtomicBool,
    /// The rest of the settings, read by a request of an enabled layer.
    settings: Mutex<Settings>,
    error: MakeError<Req>,
    response: Option<MakeResponse<Req, Res>>,
    opt_in: Option<OptIn<Req>>,
    pub(crate) clock: C,
    random: R,
    observer: Observer,
}

/// What the layer does to one request.
pub(crate) struct Plan<Res> {
    /// Wait this long first (on the layer's clock).
    pub(crate) delay: Option<Duration>,
    pub(crate) then: Then<Res>,
}

/// After the delay, if any.
pub(crate) enum Then<Res> {
    /// Call the wrapped service.
    Call,
    /// Answer this, without calling it.
    Answer(Result<Res, BoxError>),
    /// Never answer.
    Hang,
}

impl<Req, Res, C: Clock, R: Random> Shared<Req, Res, C, R> {
    /// Whether anything may be injected: one relaxed atomic read.
    #[inline]
    pub(crate) fn enabled(&self) -> bool {
        self.enabled.load(Ordering::Relaxed)
    }

    /// What to do to `request`, in an enabled layer.
    pub(crate) fn plan(&self, request: &Req) -> Plan<Res> {
        let pass = Plan {
            delay: None,
            then: Then::Call,
        };
        if self.opt_in.as_ref().is_some_and(|opt_in| !opt_in(request)) {
            return pass;
        }
        let settings = *lock(&self.settings);
        if !settings.enabled {
            return pass;
        }
        let delay = settings
            .delays(self.random.next_f64())
            .then(|| settings.delay.sample(self.random.next_f64()));
        if delay.is_some() {
            self.injected("latency");
        }
        let then = match settings.fault(self.random.next_f64()) {
            None => Then::Call,
            Some(fault) => {
                self.injected(fault.as_str());
                match fault {
                    Fault::Error => Then::Answer(Err((self.error)(request))),
                    Fault::Response => match &self.response {
                        Some(response) => Then::Answer(Ok(response(request))),
                        None => Then::Call,
                    },
                    Fault::Hang => Then::Hang,
                }
            }
        };
        Plan { delay, then }
    }

    fn injected(&self, fault: &'static str) {
        if self.observer.is_active() {
            self.observer
                .emit(self.clock.now(), EventKind::Injected { fault });
        }
    }
}

/// A [`Layer`] that injects faults and latency on purpose; see
/// [the module docs](super).
///
/// `Req` and `Res` are the request and response types of the services it
/// wraps (the made-up errors and responses are functions of the request):
/// inferred from the closures given and the services called, or named as
/// `ChaosLayer::<Req, Res>::builder()`.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use palisade::{chaos::{ChaosLayer, Latency}, clock::ManualClock, random::FastRandom};
/// use tower::{Layer, Service, service_fn};
///
/// let layer = ChaosLayer::<u32, u32, _, _>::builder()
///     .error(0.05)
///     .latency(0.2, Latency::Exponential { mean: Duration::from_millis(50) })
///     .clock(ManualClock::new())
///     .random(FastRandom::seeded(7))
///     .build()?;
/// let service = layer.layer(service_fn(|x: u32| async move { Ok::<_, std::io::Error>(x) }));
/// # let _ = service;
/// # Ok::<(), palisade::error::ConfigError>(())
/// ```
pub struct ChaosLayer<Req, Res, C = TokioClock, R = FastRandom> {
    shared: Arc<Shared<Req, Res, C, R>>,
}

impl<Req, Res> ChaosLayer<Req, Res> {
    /// A layer that injects nothing until told, on the tokio clock and an
    /// unseeded random source.
    ///
    /// ```
    /// let layer = palisade::chaos::ChaosLayer::<String, String>::builder().build().unwrap();
    /// assert!(layer.is_enabled());
    /// ```
    pub fn builder() -> ChaosBuilder<Req, Res> {
        ChaosBuilder {
            settings: Settings::default(),
            error: None,
            response: None,
            opt_in: None,
            clock: TokioClock::new(),
            random: FastRandom::default(),
            observe: ObserverBuilder::new(),
        }
    }
}

impl<Req, Res, C: Clock, R: Random> ChaosLayer<Req, Res, C, R> {
    /// The settings now.
    ///
    /// ```
    /// let layer = palisade::chaos::ChaosLayer::<(), ()>::builder().hang(0.5).build().unwrap();
    /// assert_eq!(layer.settings().hang, 0.5);
    /// ```
    pub fn settings(&self) -> Settings {
        *lock(&self.shared.settings)
    }

    /// Changes what the running layer injects, from any thread: every
    /// service and clone made from it follows the new settings from its
    /// next request. A delay or hang already under way is not cut short.
    /// Emits a [`Reconfigured`](crate::observe::EventKind::Reconfigured)
    /// event per number changed (`enabled` as 0 or 1).
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming the field: a probability outside [0, 1],
    /// `error`, `response` and `hang` adding up to more than 1, a bad
    /// `latency` distribution, or `response` above 0 in a layer built with
    /// no response to inject. The settings are then left as they were.
    ///
    /// ```
    /// use palisade::chaos::ChaosLayer;
    ///
    /// let layer = ChaosLayer::<u32, u32>::builder().build()?;
    /// let mut settings = layer.settings();
    /// settings.error = 0.25;
    /// layer.reconfigure(settings)?;
    /// settings.response = 0.5; // no response was given to the builder
    /// assert_eq!(layer.reconfigure(settings).unwrap_err().field(), "response");
    /// # Ok::<(), palisade::error::ConfigError>(())
    /// ```
    pub fn reconfigure(&self, settings: Settings) -> Result<(), ConfigError> {
        self.shared.check(&settings)?;
        let old = {
            let mut current = lock(&self.shared.settings);
            // The switch mirrors `enabled`, written under the same lock.
            self.shared
                .enabled
                .store(settings.enabled, Ordering::Relaxed);
            std::mem::replace(&mut *current, settings)
        };
        let numbers = |s: &Settings| {
            [
                ("enabled", f64::from(u8::from(s.enabled))),
                ("error", s.error),
                ("response", s.response),
                ("hang", s.hang),
                ("latency", s.latency),
            ]
        };
        let now = self.shared.clock.now();
        self.shared
            .observer
            .changes(now, numbers(&old), numbers(&settings));
        Ok(())
    }

    /// Injects as the settings say (the default).
    ///
    /// ```
    /// let layer = palisade::chaos::ChaosLayer::<(), ()>::builder().disabled().build().unwrap();
    /// layer.enable();
    /// assert!(layer.is_enabled());
    /// ```
    pub fn enable(&self) {
        self.switch(true);
    }

    /// Injects nothing: every request passes through, for one atomic read.
    ///
    /// ```
    /// let layer = palisade::chaos::ChaosLayer::<(), ()>::builder().build().unwrap();
    /// layer.disable();
    /// assert!(!layer.is_enabled());
    /// ```
    pub fn disable(&self) {
        self.switch(false);
    }

    fn switch(&self, enabled: bool) {
        let settings = Settings {
            enabled,
            ..self.settings()
        };
        self.reconfigure(settings)
            .expect("settings that were valid stay valid");
    }

    /// Whether the layer injects anything.
    ///
    /// ```
    /// let layer = palisade::chaos::ChaosLayer::<(), ()>::builder().build().unwrap();
    /// assert!(layer.is_enabled());
    /// ```
    pub fn is_enabled(&self) -> bool {
        self.shared.enabled()
    }

    /// The layer's name, as in its events and errors.
    ///
    /// ```
    /// let layer = palisade::chaos::ChaosLayer::<(), ()>::builder().name("db").build().unwrap();
    /// assert_eq!(layer.name(), "db");
    /// ```
    pub fn name(&self) -> &LayerName {
        self.shared.observer.name()
    }
}

impl<Req, Res, C, R> Shared<Req, Res, C, R> {
    /// Checks settings as the builder does, and against what was built.
    fn check(&self, settings: &Settings) -> Result<(), ConfigError> {
        check(settings, self.response.is_some())
    }
}

/// Checks `settings`, `responds` if a response to inject was given.
fn check(settings: &Settings, responds: bool) -> Result<(), ConfigError> {
    settings.check()?;
    if settings.response > 0.0 && !responds {
        return Err(ConfigError::new(
            LAYER,
            "response",
            "needs a response to inject: give the builder one with `response`",
        ));
    }
    Ok(())
}

impl<S, Req, Res, C, R> Layer<S> for ChaosLayer<Req, Res, C, R> {
    type Service = Chaos<S, Req, Res, C, R>;

    fn layer(&self, inner: S) -> Self::Service {
        Chaos::new(inner, Arc::clone(&self.shared))
    }
}

impl<Req, Res, C, R> Clone for ChaosLayer<Req, Res, C, R> {
    fn clone(&self) -> Self {
        ChaosLayer {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<Req, Res, C, R> fmt::Debug for ChaosLayer<Req, Res, C, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChaosLayer")
            .field("chaos", &self.shared)
            .finish()
    }
}

impl<Req, Res, C, R> fmt::Debug for Shared<Req, Res, C, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Chaos")
            .field("name", self.observer.name())
            .field("enabled", &self.enabled.load(Ordering::Relaxed))
            .field("settings", &*lock(&self.settings))
            .finish_non_exhaustive()
    }
}

/// Configures a [`ChaosLayer`]; [`build`](ChaosBuilder::build) checks the
/// configuration.
///
/// ```
/// use std::time::Duration;
/// use palisade::{chaos::{ChaosLayer, Latency}, clock::ManualClock, random::FastRandom};
///
/// let layer = ChaosLayer::builder()
///     .name("inventory")
///     .error_with(0.02, |request: &String| format!("injected for {request}"))
///     .response(0.01, |_: &String| "stale".to_owned())
///     .hang(0.001)
///     .latency(0.1, Latency::Fixed(Duration::from_millis(300)))
///     .opt_in(|request: &String| request.starts_with("test-"))
///     .clock(ManualClock::new())
///     .random(FastRandom::seeded(42))
///     .build()?;
/// # let _ = layer;
/// # Ok::<(), palisade::error::ConfigError>(())
/// ```
pub struct ChaosBuilder<Req, Res, C = TokioClock, R = FastRandom> {
    settings: Settings,
    error: Option<MakeError<Req>>,
    response: Option<MakeResponse<Req, Res>>,
    opt_in: Option<OptIn<Req>>,
    clock: C,
    random: R,
    observe: ObserverBuilder,
}

impl<Req, Res, C, R> ChaosBuilder<Req, Res, C, R> {
    crate::observe::name_and_listeners!(
        observe,
        "let _ = palisade::chaos::ChaosLayer::<u8, u8>::builder()"
    );

    crate::observe::clock_setting!(
        "of the delays",
        "let _ = palisade::chaos::ChaosLayer::<u8, u8>::builder()",
        ChaosBuilder<Req, Res, C2, R> { settings, error, response, opt_in, random, observe }
    );

    /// The random source the layer draws from — for a run repeatable to
    /// the request, a seeded one. Default: [`FastRandom`], seeded from the
    /// operating system.
    ///
    /// ```
    /// use palisade::{chaos::ChaosLayer, random::FastRandom};
    /// let _ = ChaosLayer::<u8, u8>::builder().random(FastRandom::seeded(7));
    /// ```
    pub fn random<R2: Random>(self, random: R2) -> ChaosBuilder<Req, Res, C, R2> {
        ChaosBuilder {
            settings: self.settings,
            error: self.error,
            response: self.response,
            opt_in: self.opt_in,
            clock: self.clock,
            random,
            observe: self.observe,
        }
    }

    /// Fails a request with `probability` with an [`InjectedFault`],
    /// without calling the wrapped service.
    ///
    /// ```
    /// let _ = palisade::chaos::ChaosLayer::<u8, u8>::builder().error(0.05);
    /// ```
    pub fn error(mut self, probability: f64) -> Self {
        self.settings.error = probability;
        self
    }

    /// Fails a request with `probability` with the error `make` makes of
    /// it — any error, such as a palisade rejection or the error the real
    /// dependency would return — without calling the wrapped service.
    ///
    /// ```
    /// use palisade::{chaos::ChaosLayer, error::Overloaded};
    /// let _ = ChaosLayer::<u8, u8>::builder().error_with(0.05, |_: &u8| Overloaded::new("db", None));
    /// ```
    pub fn error_with<E, F>(mut self, probability: f64, make: F) -> Self
    where
        F: Fn(&Req) -> E + Send + Sync + 'static,
        E: Into<BoxError>,
    {
        self.settings.error = probability;
        self.error = Some(Box::new(move |request| make(request).into()));
        self
    }

    /// Answers a request with `probability` with the response `make` makes
    /// of it — an HTTP `503` with `Retry-After`, a stale value — without
    /// calling the wrapped service.
    ///
    /// ```
    /// let _ = palisade::chaos::ChaosLayer::<u8, String>::builder()
    ///     .response(0.1, |request: &u8| format!("made up for {request}"));
    /// ```
    pub fn response<F>(mut self, probability: f64, make: F) -> Self
    where
        F: Fn(&Req) -> Res + Send + Sync + 'static,
    {
        self.settings.response = probability;
        self.response = Some(Box::new(make));
        self
    }

    /// Never answers a request with `probability` (until the caller gives
    /// up: a timeout, a client that hangs up), without calling the wrapped
    /// service.
    ///
    /// ```
    /// let _ = palisade::chaos::ChaosLayer::<u8, u8>::builder().hang(0.01);
    /// ```
    pub fn hang(mut self, probability: f64) -> Self {
        self.settings.hang = probability;
        self
    }

    /// Delays a request with `probability`, by a time drawn from `delay`,
    /// on the layer's clock; then it meets its fault, if it was given one,
    /// or its call.
    ///
    /// ```
    /// use std::time::Duration;
    /// use palisade::chaos::{ChaosLayer, Latency};
    /// let _ = ChaosLayer::<u8, u8>::builder()
    ///     .latency(0.5, Latency::Uniform { min: Duration::from_millis(10), max: Duration::from_millis(90) });
    /// ```
    pub fn latency(mut self, probability: f64, delay: Latency) -> Self {
        self.settings.latency = probability;
        self.settings.delay = delay;
        self
    }

    /// Injects only into the requests `opt_in` says yes to — for a test
    /// environment shared with real traffic. With feature `http`,
    /// [`http::opt_in`](super::http::opt_in) accepts a request marked with
    /// the [`OptIn`](super::OptIn) extension or an opt-in header.
    ///
    /// ```
    /// let _ = palisade::chaos::ChaosLayer::<String, u8>::builder()
    ///     .opt_in(|request: &String| request.contains("chaos"));
    /// ```
    pub fn opt_in<F>(mut self, opt_in: F) -> Self
    where
        F: Fn(&Req) -> bool + Send + Sync + 'static,
    {
        self.opt_in = Some(Box::new(opt_in));
        self
    }

    /// Starts disabled: nothing is injected until
    /// [`enable`](ChaosLayer::enable).
    ///
    /// ```
    /// let layer = palisade::chaos::ChaosLayer::<u8, u8>::builder().disabled().build().unwrap();
    /// assert!(!layer.is_enabled());
    /// ```
    pub fn disabled(mut self) -> Self {
        self.settings.enabled = false;
        self
    }

    /// Starts with `settings` (read from a configuration file, say),
    /// replacing the probabilities, the delay and whether it is enabled.
    ///
    /// ```
    /// use palisade::chaos::{ChaosLayer, Settings};
    /// let mut settings = Settings::default();
    /// settings.hang = 0.01;
    /// let layer = ChaosLayer::<u8, u8>::builder().settings(settings).build().unwrap();
    /// assert_eq!(layer.settings(), settings);
    /// ```
    pub fn settings(mut self, settings: Settings) -> Self {
        self.settings = settings;
        self
    }
}

impl<Req, Res, C: Clock, R: Random> ChaosBuilder<Req, Res, C, R> {
    /// Checks the configuration and builds the layer.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming the field: a probability outside [0, 1]
    /// (`error`, `response`, `hang`, `latency`), the first three adding up
    /// to more than 1, a bad delay distribution (`latency`), or a response
    /// probability with no response to inject (`response`).
    ///
    /// ```
    /// let err = palisade::chaos::ChaosLayer::<u8, u8>::builder()
    ///     .error(0.7)
    ///     .hang(0.7)
    ///     .build()
    ///     .unwrap_err();
    /// assert_eq!(err.field(), "hang");
    /// ```
    pub fn build(self) -> Result<ChaosLayer<Req, Res, C, R>, ConfigError> {
        check(&self.settings, self.response.is_some())?;
        let observer = self.observe.build(LAYER);
        let error = match self.error {
            Some(error) => error,
            None => {
                let name = observer.name().clone();
                Box::new(move |_: &Req| InjectedFault::new(name.clone()).into())
            }
        };
        Ok(ChaosLayer {
            shared: Arc::new(Shared {
                enabled: AtomicBool::new(self.settings.enabled),
                settings: Mutex::new(self.settings),
                error,
                response: self.response,
                opt_in: self.opt_in,
                clock: self.clock,
                random: self.random,
                observer,
            }),
        })
    }
}

impl<Req, Res, C, R> fmt::Debug for ChaosBuilder<Req, Res, C, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChaosBuilder")
            .field("settings", &self.settings)
            .field("observe", &self.observe)
            .finish_non_exhaustive()
    }
}

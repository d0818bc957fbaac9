//! Client-side adaptive throttling, as the SRE book describes it: refuse
//! locally, with a probability that grows as the dependency accepts less
//! of what is sent to it.

use std::{
    fmt,
    future::Future,
    pin::Pin,
    task::{Context, Poll, ready},
    time::Duration,
};

use pin_project_lite::pin_project;
use tower::{BoxError, Layer, Service};

use crate::{
    classify::{Classify, ErrorsAsFailures, Outcome},
    clock::{Clock, TokioClock},
    error::{ConfigError, Overloaded, RejectionKind, check},
    observe::{EventKind, Observer, ObserverBuilder},
    random::{FastRandom, Random},
    sync::{Arc, Mutex, lock},
};

/// The kind of layer, and the name of one not given its own.
const LAYER: &str = "throttle";

/// The window is counted in this many buckets.
const BUCKETS: usize = 10;

/// Requests and accepts over a rolling window of buckets.
#[derive(Debug)]
struct Counts {
    /// Nanoseconds a bucket spans.
    width: u64,
    /// The bucket of the newest counts (`now / width`).
    newest: u64,
    /// `(requests, accepts)`, bucket `b` at `b % BUCKETS`.
    buckets: [(u64, u64); BUCKETS],
}

impl Counts {
    /// Forgets the buckets that left the window by `now` (nanoseconds).
    fn advance(&mut self, now: u64) -> &mut (u64, u64) {
        let bucket = now / self.width;
        if bucket > self.newest {
            let stale = (bucket - self.newest).min(BUCKETS as u64);
            for gone in 0..stale {
                self.buckets[((bucket - gone) % BUCKETS as u64) as usize] = (0, 0);
            }
            self.newest = bucket;
        }
        &mut self.buckets[(self.newest % BUCKETS as u64) as usize]
    }

    fn totals(&self) -> (u64, u64) {
        self.buckets
            .iter()
            .fold((0, 0), |(r, a), &(requests, accepts)| {
                (r + requests, a + accepts)
            })
    }
}

/// The refusal probability of the SRE book's client-side throttling:
/// `max(0, (requests − k × accepts) / (requests + 1))`.
fn refusal(requests: u64, accepts: u64, k: f64) -> f64 {
    let (requests, accepts) = (requests as f64, accepts as f64);
    ((requests - k * accepts) / (requests + 1.0)).max(0.0)
}

struct Shared<K, C, R> {
    k: f64,
    counts: Mutex<Counts>,
    classifier: K,
    clock: C,
    random: R,
    observer: Observer,
}

impl<K, C: Clock, R: Random> Shared<K, C, R> {
    /// Counts a request, and says whether to refuse it.
    fn refuse(&self) -> bool {
        let now = self.clock.now().as_nanos();
        let probability = {
            let mut counts = lock(&self.counts);
            counts.advance(now);
            let (requests, accepts) = counts.totals();
            counts.advance(now).0 += 1;
            refusal(requests, accepts, self.k)
        };
        probability > 0.0 && self.random.next_f64() < probability
    }

    fn accepted(&self) {
        let now = self.clock.now().as_nanos();
        lock(&self.counts).advance(now).1 += 1;
    }
}

/// A [`Layer`] that refuses requests locally, before they reach a
/// dependency that has been refusing them — Google's client-side adaptive
/// throttling (*Site Reliability Engineering*, "Handling Overload").
///
/// Over a rolling [`window`](ThrottleBuilder::window), it counts the
/// requests it is given and the ones the dependency accepted (by the
/// [classifier](ThrottleBuilder::classifier): whatever is not a failure),
/// and refuses each new request with the probability
///
/// ```text
/// max(0, (requests − k × accepts) / (requests + 1))
/// ```
///
/// drawn from its [`Random`]. While the dependency accepts everything,
/// nothing is refused; as it accepts less, the client sends less, until
/// it sends about `k` times what is accepted — so the dependency spends
/// little on requests it would refuse anyway, and a recovering one is not
/// met by the whole backlog at once. The refusal is an
/// [`Overloaded`](crate::error::Overloaded) rejection (answered `503`,
/// ignored by a breaker, not retried by palisade's retry policies).
/// Requests refused locally count as requests: a dependency that accepts
/// nothing is sent less and less.
///
/// `k` is 2 by default: the dependency may refuse up to half of what it
/// is sent before the client holds back; a lower `k` (1.1 to 1.5) holds
/// back sooner, and wastes less of the dependency's work.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use palisade::{adaptive::ThrottleLayer, clock::ManualClock, error::Overloaded, random::FastRandom};
/// use tower::{Layer, Service, ServiceExt, service_fn};
///
/// # fn main() -> Result<(), tower::BoxError> {
/// let clock = ManualClock::new();
/// let throttle = ThrottleLayer::builder()
///     .k(2.0)
///     .window(Duration::from_secs(60))
///     .clock(clock.clone())
///     .random(FastRandom::seeded(1))
///     .build()?;
/// // A dependency that refuses everything.
/// let mut service = throttle.layer(service_fn(|_: u32| async { Err::<u32, _>(tower::BoxError::from("no")) }));
/// let mut refused_here = 0;
/// for request in 0..1_000 {
///     let err = clock.block_on(async { service.ready().await?.call(request).await }).unwrap_err();
///     refused_here += u32::from(err.is::<Overloaded>());
/// }
/// // Nearly all refused before being sent: the probability is 999/1000 by now.
/// assert!(refused_here > 980, "{refused_here}");
/// assert_eq!(throttle.requests(), 1_000);
/// assert_eq!(throttle.accepts(), 0);
/// assert!((throttle.refusal_probability() - 1_000.0 / 1_001.0).abs() < 1e-9);
/// # Ok(()) }
/// ```
pub struct ThrottleLayer<K = ErrorsAsFailures, C = TokioClock, R = FastRandom> {
    shared: Arc<Shared<K, C, R>>,
}

impl ThrottleLayer {
    /// A builder: `k` = 2, a window of 2 minutes (the SRE book's), every
    /// error a refusal by the dependency, the tokio clock, a random source
    /// seeded from the operating system.
    ///
    /// ```
    /// let _ = palisade::adaptive::ThrottleLayer::builder().build().unwrap();
    /// ```
    pub fn builder() -> ThrottleBuilder {
        ThrottleBuilder {
            k: 2.0,
            window: Duration::from_secs(120),
            classifier: ErrorsAsFailures,
            clock: TokioClock::new(),
            random: FastRandom::default(),
            observe: ObserverBuilder::new(),
        }
    }
}

impl<K, C: Clock, R> ThrottleLayer<K, C, R> {
    /// The requests counted in the window now, those refused here included.
    ///
    /// ```
    /// assert_eq!(palisade::adaptive::ThrottleLayer::builder().build()?.requests(), 0);
    /// # Ok::<(), palisade::error::ConfigError>(())
    /// ```
    pub fn requests(&self) -> u64 {
        self.totals().0
    }

    /// The requests the dependency accepted in the window now.
    ///
    /// ```
    /// assert_eq!(palisade::adaptive::ThrottleLayer::builder().build()?.accepts(), 0);
    /// # Ok::<(), palisade::error::ConfigError>(())
    /// ```
    pub fn accepts(&self) -> u64 {
        self.totals().1
    }

    /// The probability a request is refused here now.
    ///
    /// ```
    /// assert_eq!(palisade::adaptive::ThrottleLayer::builder().build()?.refusal_probability(), 0.0);
    /// # Ok::<(), palisade::error::ConfigError>(())
    /// ```
    pub fn refusal_probability(&self) -> f64 {
        let (requests, accepts) = self.totals();
        refusal(requests, accepts, self.shared.k)
    }

    fn totals(&self) -> (u64, u64) {
        let mut counts = lock(&self.shared.counts);
        counts.advance(self.shared.clock.now().as_nanos());
        counts.totals()
    }
}

impl<S, K, C, R> Layer<S> for ThrottleLayer<K, C, R> {
    type Service = Throttle<S, K, C, R>;

    fn layer(&self, inner: S) -> Self::Service {
        Throttle {
            inner,
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<K, C, R> Clone for ThrottleLayer<K, C, R> {
    fn clone(&self) -> Self {
        ThrottleLayer {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<K, C, R> fmt::Debug for ThrottleLayer<K, C, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ThrottleLayer")
            .field("name", self.shared.observer.name())
            .field("k", &self.shared.k)
            .finish_non_exhaustive()
    }
}

/// Configures a [`ThrottleLayer`].
///
/// ```
/// use std::time::Duration;
/// use palisade::{adaptive::ThrottleLayer, clock::ManualClock, random::FastRandom};
///
/// let _ = ThrottleLayer::builder()
///     .name("search")
///     .k(1.5)
///     .window(Duration::from_secs(30))
///     .clock(ManualClock::new())
///     .random(FastRandom::seeded(3))
///     .build()?;
/// # Ok::<(), palisade::error::ConfigError>(())
/// ```
pub struct ThrottleBuilder<K = ErrorsAsFailures, C = TokioClock, R = FastRandom> {
    k: f64,
    window: Duration,
    classifier: K,
    clock: C,
    random: R,
    observe: ObserverBuilder,
}

impl<K, C, R> ThrottleBuilder<K, C, R> {
    crate::observe::name_and_listeners!(
        observe,
        "let _ = palisade::adaptive::ThrottleLayer::builder()"
    );

    crate::observe::clock_setting!(
        "of the window",
        "let _ = palisade::adaptive::ThrottleLayer::builder()",
        ThrottleBuilder<K, C2, R> { k, window, classifier, random, observe }
    );

    /// How many times what the dependency accepts the client may send, at
    /// least 1. Default 2.
    ///
    /// ```
    /// let _ = palisade::adaptive::ThrottleLayer::builder().k(1.5);
    /// ```
    pub fn k(mut self, k: f64) -> Self {
        self.k = k;
        self
    }

    /// How far back requests and accepts count. Default 2 minutes.
    ///
    /// ```
    /// let _ = palisade::adaptive::ThrottleLayer::builder().window(std::time::Duration::from_secs(30));
    /// ```
    pub fn window(mut self, window: Duration) -> Self {
        self.window = window;
        self
    }

    /// What the dependency accepted: whatever this does not call a failure.
    /// Default: every error is a refusal; with feature `http`,
    /// [`ServerErrorsAsFailures`](crate::classify::ServerErrorsAsFailures)
    /// (with `429`) for an HTTP dependency.
    ///
    /// ```
    /// use palisade::{adaptive::ThrottleLayer, classify::ErrorsAsFailures};
    /// let _ = ThrottleLayer::builder().classifier(ErrorsAsFailures);
    /// ```
    pub fn classifier<K2>(self, classifier: K2) -> ThrottleBuilder<K2, C, R> {
        ThrottleBuilder {
            k: self.k,
            window: self.window,
            classifier,
            clock: self.clock,
            random: self.random,
            observe: self.observe,
        }
    }

    /// The random source of the refusals — seeded, for a repeatable run.
    ///
    /// ```
    /// use palisade::{adaptive::ThrottleLayer, random::FastRandom};
    /// let _ = ThrottleLayer::builder().random(FastRandom::seeded(7));
    /// ```
    pub fn random<R2: Random>(self, random: R2) -> ThrottleBuilder<K, C, R2> {
        ThrottleBuilder {
            k: self.k,
            window: self.window,
            classifier: self.classifier,
            clock: self.clock,
            random,
            observe: self.observe,
        }
    }
}

impl<K, C: Clock, R: Random> ThrottleBuilder<K, C, R> {
    /// Checks the configuration and builds the layer.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming `k` (below 1, or not a number) or `window`
    /// (shorter than 10 ns — a bucket a tenth of it — or over 100 years).
    ///
    /// ```
    /// let err = palisade::adaptive::ThrottleLayer::builder().k(0.5).build().unwrap_err();
    /// assert_eq!(err.field(), "k");
    /// ```
    pub fn build(self) -> Result<ThrottleLayer<K, C, R>, ConfigError> {
        if !(self.k >= 1.0 && self.k.is_finite()) {
            return Err(ConfigError::new(
                LAYER,
                "k",
                format!("must be at least 1, got {}", self.k),
            ));
        }
        check::at_most_longest(LAYER, "window", self.window)?;
        let width = u64::try_from(self.window.as_nanos() / BUCKETS as u128).unwrap_or(u64::MAX);
        if width == 0 {
            return Err(ConfigError::new(
                LAYER,
                "window",
                format!("must be at least {BUCKETS} ns, got {:?}", self.window),
            ));
        }
        Ok(ThrottleLayer {
            shared: Arc::new(Shared {
                k: self.k,
                counts: Mutex::new(Counts {
                    width,
                    newest: self.clock.now().as_nanos() / width,
                    buckets: [(0, 0); BUCKETS],
                }),
                classifier: self.classifier,
                clock: self.clock,
                random: self.random,
                observer: self.observe.build(LAYER),
            }),
        })
    }
}

impl<K, C, R> fmt::Debug for ThrottleBuilder<K, C, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ThrottleBuilder")
            .field("k", &self.k)
            .field("window", &self.window)
            .field("observe", &self.observe)
            .finish_non_exhaustive()
    }
}

/// A service that refuses requests locally as its dependency accepts less;
/// made by [`ThrottleLayer`].
///
/// ```
/// use palisade::adaptive::{Throttle, ThrottleLayer};
/// use tower::{Layer, service_fn};
///
/// let layer = ThrottleLayer::builder().build().unwrap();
/// let service: Throttle<_> = layer.layer(service_fn(|x: u32| async move { Ok::<_, std::io::Error>(x) }));
/// # let _ = service;
/// ```
pub struct Throttle<S, K = ErrorsAsFailures, C = TokioClock, R = FastRandom> {
    inner: S,
    shared: Arc<Shared<K, C, R>>,
}

impl<S, K, C, R> Throttle<S, K, C, R> {
    /// The wrapped service.
    ///
    /// ```
    /// use tower::Layer;
    /// let layer = palisade::adaptive::ThrottleLayer::builder().build().unwrap();
    /// assert_eq!(*layer.layer(4u8).get_ref(), 4);
    /// ```
    pub fn get_ref(&self) -> &S {
        &self.inner
    }
}

impl<S, K, C, R, Req> Service<Req> for Throttle<S, K, C, R>
where
    S: Service<Req>,
    S::Error: Into<BoxError>,
    K: Classify<S::Response, BoxError>,
    C: Clock,
    R: Random,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = ResponseFuture<S::Future, K, C, R>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: Req) -> Self::Future {
        let shared = &self.shared;
        if shared.refuse() {
            let observer = &shared.observer;
            if observer.is_active() {
                let rejected = EventKind::Rejected {
                    kind: RejectionKind::Overloaded,
                    retry_after: None,
                };
                observer.emit(shared.clock.now(), rejected);
            }
            return ResponseFuture {
                state: State::Refused {
                    error: Some(Overloaded::new(observer.name().clone(), None)),
                },
            };
        }
        ResponseFuture {
            state: State::Sent {
                future: self.inner.call(request),
                shared: Arc::clone(shared),
            },
        }
    }
}

impl<S: Clone, K, C, R> Clone for Throttle<S, K, C, R> {
    fn clone(&self) -> Self {
        Throttle {
            inner: self.inner.clone(),
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<S: fmt::Debug, K, C, R> fmt::Debug for Throttle<S, K, C, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Throttle")
            .field("inner", &self.inner)
            .field("name", self.shared.observer.name())
            .finish_non_exhaustive()
    }
}

pin_project! {
    /// The response future of [`Throttle`]: the dependency's answer, counted
    /// as accepted unless a failure; or the local refusal.
    pub struct ResponseFuture<F, K, C, R> {
        #[pin]
        state: State<F, K, C, R>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F, K, C, R> {
        Sent { #[pin] future: F, shared: Arc<Shared<K, C, R>> },
        Refused { error: Option<Overloaded> },
    }
}

impl<F, T, E, K, C, R> Future for ResponseFuture<F, K, C, R>
where
    F: Future<Output = Result<T, E>>,
    E: Into<BoxError>,
    K: Classify<T, BoxError>,
    C: Clock,
    R: Random,
{
    type Output = Result<T, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().state.project() {
            StateProj::Sent { future, shared } => {
                let result = ready!(future.poll(cx)).map_err(Into::into);
                if shared.classifier.classify(&result) != Outcome::Failure {
                    shared.accepted();
                }
                Poll::Ready(result)
            }
            StateProj::Refused { error } => {
                Poll::Ready(Err(error.take().expect("polled after completion").into()))
            }
        }
    }
}

impl<F, K, C, R> fmt::Debug for ResponseFuture<F, K, C, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_probability_is_the_sre_book_s() {
        assert_eq!(refusal(0, 0, 2.0), 0.0);
        assert_eq!(refusal(100, 50, 2.0), 0.0);
        assert!((refusal(100, 25, 2.0) - 50.0 / 101.0).abs() < 1e-12);
        assert!((refusal(9, 0, 1.5) - 0.9).abs() < 1e-12);
    }

    #[test]
    fn counts_leave_the_window_bucket_by_bucket() {
        let mut counts = Counts {
            width: 10,
            newest: 0,
            buckets: [(0, 0); BUCKETS],
        };
        counts.advance(5).0 += 3;
        counts.advance(55).1 += 1;
        assert_eq!(counts.totals(), (3, 1));
        counts.advance(99);
        assert_eq!(counts.totals(), (3, 1), "the first bucket still counts");
        counts.advance(100);
        assert_eq!(counts.totals(), (0, 1), "the first bucket is gone");
        counts.advance(10_000);
        assert_eq!(counts.totals(), (0, 0));
    }
}

//! Composition: every layer in one [`ResilienceLayer`], in the order that
//! works, plus [`ServiceBuilderExt`] for `tower::ServiceBuilder`, and (with
//! features `http` / `grpc`) the layers that turn palisade's rejections into
//! HTTP or gRPC answers.
//!
//! # The order, outermost first
//!
//! ```text
//! fallback → retry → hedge → circuit breaker → rate limit → bulkhead → timeout → service
//! ```
//!
//! [`ResilienceLayer`] takes any subset of the seven and always stacks them
//! in this order, whatever order its methods are called in:
//!
//! 1. **fallback** is outermost so that it sees every failure the stack can
//!    produce — the service's, a timeout, a refusal, and the last error the
//!    retry layer gave up on — and answers in their place once. A cached
//!    fallback ([`CachedLayer`](crate::fallback::CachedLayer), feature
//!    `cache`) takes this place too: it sees each request's final result
//!    after every retry, and so keeps only answers that finally succeeded
//!    and answers a request only once all its attempts failed — an open
//!    breaker's refusal (`circuit_open`), a retry budget spent, a timeout,
//!    the service's last error — with the last good answer to it.
//! 2. **retry** sits outside the breaker, the limiter and the bulkhead so
//!    that each attempt asks them again: an attempt refused by an open
//!    breaker or a full bulkhead is a refusal the retry policy can see (and
//!    palisade's retry policies do not retry refusals), and every attempt
//!    spends a token of the rate limit. Its deadline bounds all attempts.
//! 3. **hedge** inside the retry, so that the retry sees one answer per
//!    attempt — the first acceptable one of its hedges — and its budget and
//!    the hedging budget each bound their own extra calls; outside the
//!    breaker, the limiter and the bulkhead, so that each hedged attempt
//!    asks them again: it takes a bulkhead permit and a rate-limit token of
//!    its own, an open breaker refuses it (a refusal the other attempt
//!    outlives), and the loser, dropped when the winner answers, gives its
//!    permit back and is counted by the breaker as ignored, not failed.
//! 4. **circuit breaker** outside the limiter and the bulkhead, so that an
//!    open breaker spends no rate-limit tokens and takes no bulkhead permits;
//!    the refusals of those inner layers are the caller's own limits, which
//!    the breaker ignores rather than counting against the dependency.
//! 5. **rate limit** before the **bulkhead**, so that a call over the rate
//!    never occupies a concurrency permit.
//! 6. **timeout** innermost, so that it bounds *one attempt* (a hedged
//!    one too) (the retry
//!    layer's deadline bounds them all), and a timed-out attempt is a
//!    failure the breaker counts and the retry layer may retry; the bulkhead
//!    permit is given back when the timeout fires.
//!
//! The adaptive limit ([`AdaptiveLayer`](crate::adaptive::AdaptiveLayer))
//! takes the bulkhead's slot, for the bulkhead's reasons (and outside the
//! timeout, so that a call that times out is a drop it sees); client-side
//! throttling ([`ThrottleLayer`](crate::adaptive::ThrottleLayer)) takes the
//! rate limit's, inside the retry, so that each attempt is a request it
//! counts.
//!
//! What goes wrong in other orders (the questions resilience4j users ask
//! about its decorator order):
//!
//! - *retry inside the breaker*: the breaker sees one call however many
//!   attempts failed, so it opens late; and the retries keep hammering a
//!   dependency the breaker would have cut off.
//! - *timeout outside retry*: one timeout for all attempts together, so a
//!   slow first attempt leaves no time for a second, and the breaker never
//!   sees the slow attempt as a failure (the outer timeout drops it, which
//!   the breaker counts as ignored).
//! - *breaker inside the rate limiter or the bulkhead*: a call the open
//!   breaker refuses at once has already spent a rate-limit token, so the
//!   quota drains on calls that never reach the dependency. (The other way
//!   round is safe: the breaker ignores the refusals of palisade layers
//!   inside it, so "rate limited" and "bulkhead full" never open it — see
//!   [the breaker's docs](crate::circuit_breaker#models).)
//! - *fallback inside retry*: every failure is turned into a success before
//!   retry can see it, so nothing is ever retried.
//!
//! # Compared with tower
//!
//! tower's `ServiceBuilder` applies layers in the order written, and
//! nothing stops an order above. [`ResilienceLayer`] fixes the order once;
//! it is itself a [`Layer`], so it goes into a `ServiceBuilder`, axum's
//! `Router::layer`, or a tonic `Channel`'s stack like any other.
//!
//! # Examples
//!
//! ```
//! use std::time::Duration;
//! use palisade::{
//!     bulkhead::BulkheadLayer, circuit_breaker::CircuitBreakerLayer, retry::RetryLayer,
//!     stack::ResilienceLayer, timeout::TimeoutLayer,
//! };
//! use tower::{Service, ServiceBuilder, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower::BoxError> {
//! let resilience = ResilienceLayer::new()
//!     .timeout(TimeoutLayer::builder(Duration::from_secs(2)).name("upstream").build()?)
//!     .retry(RetryLayer::builder().name("upstream").build()?)
//!     .circuit_breaker(CircuitBreakerLayer::builder().name("upstream").build()?)
//!     .bulkhead(BulkheadLayer::builder(64).name("upstream").build()?);
//!
//! let mut client = ServiceBuilder::new()
//!     .layer(resilience)
//!     .service_fn(|request: u32| async move { Ok::<_, std::io::Error>(request * 2) });
//! assert_eq!(client.ready().await?.call(21).await?, 42);
//! # Ok(()) }
//! ```

use std::fmt;

use tower::{Layer, ServiceBuilder, layer::util::Identity, layer::util::Stack};

use crate::{
    bulkhead::BulkheadLayer,
    circuit_breaker::CircuitBreakerLayer,
    clock::Clock,
    fallback::{AlternateLayer, FallbackLayer},
    hedge::HedgeLayer,
    random::Random,
    rate_limit::RateLimitLayer,
    retry::RetryLayer,
    timeout::TimeoutLayer,
};

#[cfg(feature = "http")]
#[cfg_attr(docsrs, doc(cfg(feature = "http")))]
pub mod future;
#[cfg(feature = "grpc")]
pub mod grpc;
#[cfg(feature = "http")]
pub mod http;

/// Any subset of palisade's seven layers, stacked in the documented order; see
/// [the module docs](self).
///
/// Each slot starts as [`Identity`] (no layer) and holds any [`Layer`], so a
/// slot can also take a layer of your own (say, tower's `LoadShed` in the
/// bulkhead's place: its `Overloaded` is read as palisade's
/// [`Overloaded`](crate::error::Overloaded) refusal, ignored by the breaker,
/// not retried, answered `503`). Setting a slot twice replaces the first.
///
/// ```
/// use palisade::{rate_limit::{Rate, RateLimitLayer}, stack::ResilienceLayer};
/// use tower::Layer;
///
/// let stack = ResilienceLayer::new().rate_limit(
///     RateLimitLayer::builder().token_bucket(Rate::per_second(100), 20).build()?,
/// );
/// let service = stack.layer(tower::service_fn(|x: u8| async move { Ok::<_, std::io::Error>(x) }));
/// # let _ = service;
/// # Ok::<(), palisade::error::ConfigError>(())
/// ```
#[derive(Clone)]
pub struct ResilienceLayer<
    F = Identity,
    R = Identity,
    G = Identity,
    B = Identity,
    L = Identity,
    H = Identity,
    T = Identity,
> {
    /// The slots, outermost first.
    layers: (F, R, G, B, L, H, T),
}

impl ResilienceLayer {
    /// A stack with no layers yet: it passes calls straight through.
    ///
    /// ```
    /// let _ = palisade::stack::ResilienceLayer::new();
    /// ```
    pub fn new() -> ResilienceLayer {
        let none = Identity::new;
        ResilienceLayer {
            layers: (none(), none(), none(), none(), none(), none(), none()),
        }
    }
}

impl Default for ResilienceLayer {
    fn default() -> ResilienceLayer {
        ResilienceLayer::new()
    }
}

impl<F, R, G, B, L, H, T> ResilienceLayer<F, R, G, B, L, H, T> {
    /// The outermost layer: a [`FallbackLayer`] or an [`AlternateLayer`].
    ///
    /// ```
    /// use palisade::{fallback::FallbackLayer, stack::ResilienceLayer};
    /// let fallback = FallbackLayer::builder(|_: palisade::fallback::Failed<'_, u32>| Some(0)).build();
    /// let _ = ResilienceLayer::new().fallback(fallback);
    /// ```
    pub fn fallback<F2>(self, fallback: F2) -> ResilienceLayer<F2, R, G, B, L, H, T> {
        let (_, r, g, b, l, h, t) = self.layers;
        ResilienceLayer {
            layers: (fallback, r, g, b, l, h, t),
        }
    }

    /// A [`RetryLayer`] inside the fallback.
    ///
    /// ```
    /// use palisade::{retry::RetryLayer, stack::ResilienceLayer};
    /// let _ = ResilienceLayer::new().retry(RetryLayer::builder().build().unwrap());
    /// ```
    pub fn retry<R2>(self, retry: R2) -> ResilienceLayer<F, R2, G, B, L, H, T> {
        let (f, _, g, b, l, h, t) = self.layers;
        ResilienceLayer {
            layers: (f, retry, g, b, l, h, t),
        }
    }

    /// A [`HedgeLayer`] inside the retry layer.
    ///
    /// ```
    /// # use std::time::Duration;
    /// use palisade::{hedge::{Delay, HedgeLayer}, stack::ResilienceLayer};
    /// let hedge = HedgeLayer::builder(Delay::Fixed(Duration::from_millis(20))).build().unwrap();
    /// let _ = ResilienceLayer::new().hedge(hedge);
    /// ```
    pub fn hedge<G2>(self, hedge: G2) -> ResilienceLayer<F, R, G2, B, L, H, T> {
        let (f, r, _, b, l, h, t) = self.layers;
        ResilienceLayer {
            layers: (f, r, hedge, b, l, h, t),
        }
    }

    /// A [`CircuitBreakerLayer`] inside the hedge.
    ///
    /// ```
    /// use palisade::{circuit_breaker::CircuitBreakerLayer, stack::ResilienceLayer};
    /// let _ = ResilienceLayer::new().circuit_breaker(CircuitBreakerLayer::builder().build().unwrap());
    /// ```
    pub fn circuit_breaker<B2>(self, circuit_breaker: B2) -> ResilienceLayer<F, R, G, B2, L, H, T> {
        let (f, r, g, _, l, h, t) = self.layers;
        ResilienceLayer {
            layers: (f, r, g, circuit_breaker, l, h, t),
        }
    }

    /// A [`RateLimitLayer`] inside the circuit breaker.
    ///
    /// ```
    /// use palisade::{rate_limit::RateLimitLayer, stack::ResilienceLayer};
    /// let _ = ResilienceLayer::new().rate_limit(RateLimitLayer::builder().build().unwrap());
    /// ```
    pub fn rate_limit<L2>(self, rate_limit: L2) -> ResilienceLayer<F, R, G, B, L2, H, T> {
        let (f, r, g, b, _, h, t) = self.layers;
        ResilienceLayer {
            layers: (f, r, g, b, rate_limit, h, t),
        }
    }

    /// A [`BulkheadLayer`] inside the rate limit.
    ///
    /// ```
    /// use palisade::{bulkhead::BulkheadLayer, stack::ResilienceLayer};
    /// let _ = ResilienceLayer::new().bulkhead(BulkheadLayer::builder(10).build().unwrap());
    /// ```
    pub fn bulkhead<H2>(self, bulkhead: H2) -> ResilienceLayer<F, R, G, B, L, H2, T> {
        let (f, r, g, b, l, _, t) = self.layers;
        ResilienceLayer {
            layers: (f, r, g, b, l, bulkhead, t),
        }
    }

    /// The innermost layer: a [`TimeoutLayer`] for each attempt.
    ///
    /// ```
    /// # use std::time::Duration;
    /// use palisade::{stack::ResilienceLayer, timeout::TimeoutLayer};
    /// let _ = ResilienceLayer::new().timeout(TimeoutLayer::builder(Duration::from_secs(1)).build().unwrap());
    /// ```
    pub fn timeout<T2>(self, timeout: T2) -> ResilienceLayer<F, R, G, B, L, H, T2> {
        let (f, r, g, b, l, h, _) = self.layers;
        ResilienceLayer {
            layers: (f, r, g, b, l, h, timeout),
        }
    }
}

impl<S, F, R, G, B, L, H, T> Layer<S> for ResilienceLayer<F, R, G, B, L, H, T>
where
    T: Layer<S>,
    H: Layer<T::Service>,
    L: Layer<H::Service>,
    B: Layer<L::Service>,
    G: Layer<B::Service>,
    R: Layer<G::Service>,
    F: Layer<R::Service>,
{
    type Service = F::Service;

    fn layer(&self, service: S) -> Self::Service {
        let (fallback, retry, hedge, circuit_breaker, rate_limit, bulkhead, timeout) = &self.layers;
        let service = timeout.layer(service);
        let service = bulkhead.layer(service);
        let service = rate_limit.layer(service);
        let service = circuit_breaker.layer(service);
        let service = hedge.layer(service);
        let service = retry.layer(service);
        fallback.layer(service)
    }
}

impl<F, R, G, B, L, H, T> fmt::Debug for ResilienceLayer<F, R, G, B, L, H, T>
where
    F: fmt::Debug,
    R: fmt::Debug,
    G: fmt::Debug,
    B: fmt::Debug,
    L: fmt::Debug,
    H: fmt::Debug,
    T: fmt::Debug,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (fallback, retry, hedge, circuit_breaker, rate_limit, bulkhead, timeout) = &self.layers;
        f.debug_struct("ResilienceLayer")
            .field("fallback", fallback)
            .field("retry", retry)
            .field("hedge", hedge)
            .field("circuit_breaker", circuit_breaker)
            .field("rate_limit", rate_limit)
            .field("bulkhead", bulkhead)
            .field("timeout", timeout)
            .finish()
    }
}

mod sealed {
    pub trait Sealed {}
    impl<L> Sealed for tower::ServiceBuilder<L> {}
}

/// palisade's layers as `ServiceBuilder` methods, in the style of
/// tower-http's `ServiceBuilderExt`.
///
/// Each method adds one layer *below* the ones already added, as
/// [`ServiceBuilder::layer`] does: unlike [`ResilienceLayer`], the order is
/// the order you write ([`ResilienceLayer`] goes in with `.layer(..)`). The names carry a `with_` so that they never collide
/// with `ServiceBuilder`'s own `timeout`, `rate_limit` and `retry` (which add
/// tower's layers).
///
/// ```
/// use std::time::Duration;
/// use palisade::{bulkhead::BulkheadLayer, stack::ServiceBuilderExt, timeout::TimeoutLayer};
/// use tower::{Service, ServiceBuilder, ServiceExt};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower::BoxError> {
/// let mut service = ServiceBuilder::new()
///     .with_bulkhead(BulkheadLayer::builder(8).build()?)
///     .with_timeout(TimeoutLayer::builder(Duration::from_secs(1)).build()?)
///     .service_fn(|x: u32| async move { Ok::<_, std::io::Error>(x + 1) });
/// assert_eq!(service.ready().await?.call(1).await?, 2);
/// # Ok(()) }
/// ```
pub trait ServiceBuilderExt<L>: sealed::Sealed + Sized {
    /// Adds a [`CircuitBreakerLayer`].
    ///
    /// ```
    /// use palisade::{circuit_breaker::CircuitBreakerLayer, stack::ServiceBuilderExt};
    /// let _ = tower::ServiceBuilder::new().with_circuit_breaker(CircuitBreakerLayer::builder().build().unwrap());
    /// ```
    fn with_circuit_breaker<K, C: Clock, R: Random>(
        self,
        layer: CircuitBreakerLayer<K, C, R>,
    ) -> ServiceBuilder<Stack<CircuitBreakerLayer<K, C, R>, L>>;

    /// Adds a [`RateLimitLayer`].
    ///
    /// ```
    /// use palisade::{rate_limit::RateLimitLayer, stack::ServiceBuilderExt};
    /// let _ = tower::ServiceBuilder::new().with_rate_limit(RateLimitLayer::builder().build().unwrap());
    /// ```
    fn with_rate_limit<X, W, C: Clock>(
        self,
        layer: RateLimitLayer<X, W, C>,
    ) -> ServiceBuilder<Stack<RateLimitLayer<X, W, C>, L>>;

    /// Adds a [`RetryLayer`].
    ///
    /// ```
    /// use palisade::{retry::RetryLayer, stack::ServiceBuilderExt};
    /// let _ = tower::ServiceBuilder::new().with_retry(RetryLayer::builder().build().unwrap());
    /// ```
    fn with_retry<P, Q, C: Clock, R: Random>(
        self,
        layer: RetryLayer<P, Q, C, R>,
    ) -> ServiceBuilder<Stack<RetryLayer<P, Q, C, R>, L>>;

    /// Adds a [`BulkheadLayer`].
    ///
    /// ```
    /// use palisade::{bulkhead::BulkheadLayer, stack::ServiceBuilderExt};
    /// let _ = tower::ServiceBuilder::new().with_bulkhead(BulkheadLayer::builder(4).build().unwrap());
    /// ```
    fn with_bulkhead<C>(
        self,
        layer: BulkheadLayer<C>,
    ) -> ServiceBuilder<Stack<BulkheadLayer<C>, L>>;

    /// Adds a [`TimeoutLayer`].
    ///
    /// ```
    /// # use std::time::Duration;
    /// use palisade::{stack::ServiceBuilderExt, timeout::TimeoutLayer};
    /// let _ = tower::ServiceBuilder::new().with_timeout(TimeoutLayer::builder(Duration::from_secs(1)).build().unwrap());
    /// ```
    fn with_timeout<T, C>(
        self,
        layer: TimeoutLayer<T, C>,
    ) -> ServiceBuilder<Stack<TimeoutLayer<T, C>, L>>;

    /// Adds a [`HedgeLayer`].
    ///
    /// ```
    /// # use std::time::Duration;
    /// use palisade::{hedge::{Delay, HedgeLayer}, stack::ServiceBuilderExt};
    /// let _ = tower::ServiceBuilder::new()
    ///     .with_hedge(HedgeLayer::builder(Delay::Fixed(Duration::from_millis(20))).build().unwrap());
    /// ```
    fn with_hedge<K, Q, C>(
        self,
        layer: HedgeLayer<K, Q, C>,
    ) -> ServiceBuilder<Stack<HedgeLayer<K, Q, C>, L>>;

    /// Adds a [`FallbackLayer`].
    ///
    /// ```
    /// use palisade::{fallback::{Failed, FallbackLayer}, stack::ServiceBuilderExt};
    /// let fallback = FallbackLayer::builder(|_: Failed<'_, u8>| Some(0)).build();
    /// let _ = tower::ServiceBuilder::new().with_fallback(fallback);
    /// ```
    fn with_fallback<F, K, C>(
        self,
        layer: FallbackLayer<F, K, C>,
    ) -> ServiceBuilder<Stack<FallbackLayer<F, K, C>, L>>;

    /// Adds an [`AlternateLayer`].
    ///
    /// ```
    /// use palisade::{fallback::AlternateLayer, stack::ServiceBuilderExt};
    /// let backup = tower::service_fn(|x: u8| async move { Ok::<_, std::io::Error>(x) });
    /// let _ = tower::ServiceBuilder::new().with_alternate(AlternateLayer::builder(backup).build());
    /// ```
    fn with_alternate<T, P, K, C>(
        self,
        layer: AlternateLayer<T, P, K, C>,
    ) -> ServiceBuilder<Stack<AlternateLayer<T, P, K, C>, L>>;
}

impl<L> ServiceBuilderExt<L> for ServiceBuilder<L> {
    fn with_circuit_breaker<K, C: Clock, R: Random>(
        self,
        layer: CircuitBreakerLayer<K, C, R>,
    ) -> ServiceBuilder<Stack<CircuitBreakerLayer<K, C, R>, L>> {
        self.layer(layer)
    }

    fn with_rate_limit<X, W, C: Clock>(
        self,
        layer: RateLimitLayer<X, W, C>,
    ) -> ServiceBuilder<Stack<RateLimitLayer<X, W, C>, L>> {
        self.layer(layer)
    }

    fn with_retry<P, Q, C: Clock, R: Random>(
        self,
        layer: RetryLayer<P, Q, C, R>,
    ) -> ServiceBuilder<Stack<RetryLayer<P, Q, C, R>, L>> {
        self.layer(layer)
    }

    fn with_bulkhead<C>(
        self,
        layer: BulkheadLayer<C>,
    ) -> ServiceBuilder<Stack<BulkheadLayer<C>, L>> {
        self.layer(layer)
    }

    fn with_timeout<T, C>(
        self,
        layer: TimeoutLayer<T, C>,
    ) -> ServiceBuilder<Stack<TimeoutLayer<T, C>, L>> {
        self.layer(layer)
    }

    fn with_hedge<K, Q, C>(
        self,
        layer: HedgeLayer<K, Q, C>,
    ) -> ServiceBuilder<Stack<HedgeLayer<K, Q, C>, L>> {
        self.layer(layer)
    }

    fn with_fallback<F, K, C>(
        self,
        layer: FallbackLayer<F, K, C>,
    ) -> ServiceBuilder<Stack<FallbackLayer<F, K, C>, L>> {
        self.layer(layer)
    }

    fn with_alternate<T, P, K, C>(
        self,
        layer: AlternateLayer<T, P, K, C>,
    ) -> ServiceBuilder<Stack<AlternateLayer<T, P, K, C>, L>> {
        self.layer(layer)
    }
}

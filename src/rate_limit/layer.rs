//! The rate limiter as a [`Layer`], and its builder.

use std::{fmt, hash::Hash, time::Duration};

use tower::Layer;

use super::{
    config::{Check, Config, LAYER, Limit, MissingKey, Mode, Rate},
    core::{Available, WouldAdmit},
    request::{NoKey, UnitCost},
    service::RateLimit,
    shared::Shared,
};
use crate::{
    LayerName,
    clock::{Clock, TokioClock},
    error::ConfigError,
    observe::ObserverBuilder,
    sync::Arc,
};

/// A [`Layer`] that puts services behind a rate limit.
///
/// The limit's state is created when the layer is built: every service the
/// layer makes, and every clone of those, counts against it — one limit
/// across every connection of a server.
///
/// # Examples
///
/// ```
/// use palisade::rate_limit::{Rate, RateLimitLayer};
/// use tower::ServiceBuilder;
///
/// // 100 requests a second, bursts of up to 120.
/// let limit = RateLimitLayer::builder()
///     .name("api")
///     .token_bucket(Rate::per_second(100), 120)
///     .build()?;
/// let service = ServiceBuilder::new()
///     .layer(limit)
///     .service_fn(|request: String| async move { Ok::<_, std::io::Error>(request) });
/// # let _ = service;
/// # Ok::<(), palisade::error::ConfigError>(())
/// ```
pub struct RateLimitLayer<X = NoKey, W = UnitCost, C: Clock = TokioClock> {
    shared: Arc<Shared<X, W, C>>,
}

impl RateLimitLayer {
    /// A builder with the defaults: a token bucket of 100 requests a second
    /// with bursts of 100, one limit shared by all requests, refusing at once
    /// what is over it; the tokio clock.
    ///
    /// ```
    /// let layer = palisade::rate_limit::RateLimitLayer::builder().build().unwrap();
    /// # let _ = layer;
    /// ```
    pub fn builder() -> RateLimitBuilder {
        RateLimitBuilder {
            config: Config::default(),
            keyed: false,
            weighted: false,
            keys: NoKey,
            costs: UnitCost,
            clock: TokioClock::new(),
            observe: ObserverBuilder::new(),
        }
    }
}

impl<X, W, C: Clock> RateLimitLayer<X, W, C> {
    /// How many keys a keyed limit holds state for right now (at most
    /// [`max_keys`](RateLimitBuilder::max_keys)); 0 for a shared limit.
    ///
    /// ```
    /// let layer = palisade::rate_limit::RateLimitLayer::builder().build().unwrap();
    /// assert_eq!(layer.tracked_keys(), 0);
    /// ```
    pub fn tracked_keys(&self) -> usize {
        self.shared.tracked_keys()
    }

    /// Requests refused since the layer was built: over the limit (each
    /// refusal a [`RateLimited`](crate::error::RateLimited), or a
    /// backpressure `poll_ready` told to wait) or costing more than the
    /// limit ever admits ([`Unsatisfiable`](crate::error::Unsatisfiable)).
    /// Requests refused for want of a key are not counted here (they emit
    /// `KeyMissing`). Counted on the refusal's path only.
    ///
    /// ```
    /// use palisade::{clock::ManualClock, rate_limit::{Rate, RateLimitLayer}};
    /// use tower::{Layer, Service, ServiceExt, service_fn};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower::BoxError> {
    /// let layer = RateLimitLayer::builder()
    ///     .token_bucket(Rate::per_second(1), 1)
    ///     .clock(ManualClock::new())
    ///     .build()?;
    /// let mut service = layer.layer(service_fn(|x: u8| async move { Ok::<_, tower::BoxError>(x) }));
    /// for _ in 0..3 {
    ///     let _ = service.ready().await?.call(1).await;
    /// }
    /// assert_eq!(layer.refused(), 2);
    /// # Ok(()) }
    /// ```
    pub fn refused(&self) -> u64 {
        self.shared.refused()
    }

    /// The limit as a quota per window — a window's limit and length, or a
    /// bucket's capacity and the time it takes to refill it — as the
    /// `RateLimit-Policy` header states it.
    ///
    /// ```
    /// use std::time::Duration;
    /// use palisade::rate_limit::{Rate, RateLimitLayer};
    ///
    /// let layer = RateLimitLayer::builder().token_bucket(Rate::per_second(10), 20).build()?;
    /// assert_eq!(layer.quota(), (20, Duration::from_secs(2)));
    /// # Ok::<(), palisade::error::ConfigError>(())
    /// ```
    pub fn quota(&self) -> (u64, Duration) {
        let (quota, window) = self.shared.algorithm().quota();
        (quota, Duration::from_nanos(window))
    }

    /// What a request of `cost` would get now from the shared limit, asked
    /// without consuming anything: admitted at once, after a wait, or
    /// never. A waiting mode's requests may wait for what this calls
    /// [`After`](Check::After); a leaky bucket's would wait for their slot
    /// that long (or be refused, past the bucket's bound). On a keyed limit: the limit of the requests
    /// without a key ([`MissingKey::Shared`](super::MissingKey::Shared)); see
    /// [`check_key`](Self::check_key).
    ///
    /// ```
    /// use std::time::Duration;
    /// use palisade::{clock::ManualClock, rate_limit::{Check, Rate, RateLimitLayer}};
    /// use tower::{Layer, Service, ServiceExt, service_fn};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower::BoxError> {
    /// let layer = RateLimitLayer::builder()
    ///     .token_bucket(Rate::per_second(10), 2)
    ///     .clock(ManualClock::new())
    ///     .build()?;
    /// let mut service = layer.layer(service_fn(|x: u8| async move { Ok::<_, tower::BoxError>(x) }));
    /// service.ready().await?.call(1).await?;
    /// assert_eq!(layer.check(1), Check::Admitted);
    /// assert_eq!(layer.check(2), Check::After(Duration::from_millis(100)));
    /// assert_eq!(layer.available(), 1); // checking took nothing
    /// # Ok(()) }
    /// ```
    pub fn check(&self, cost: u32) -> Check {
        Check::from_peek(self.shared.ask::<(), _>(None, &WouldAdmit(u64::from(cost))))
    }

    /// What a request of `cost` with key `key` would get now, asked without
    /// consuming anything (the key's recency is not touched either). `key`
    /// is a value of the key extractor's key type; a key the limiter does
    /// not track (never seen, or forgotten) is a fresh one. On a shared
    /// limit the key is ignored.
    ///
    /// ```
    /// use std::net::IpAddr;
    /// use palisade::rate_limit::{Check, Rate, RateLimitLayer};
    ///
    /// let layer = RateLimitLayer::builder()
    ///     .token_bucket(Rate::per_second(1), 3)
    ///     .key(|ip: &IpAddr| Some(*ip))
    ///     .build()?;
    /// let client: IpAddr = [192, 0, 2, 1].into();
    /// assert_eq!(layer.check_key(&client, 3), Check::Admitted);
    /// assert_eq!(layer.available_for(&client), 3);
    /// # Ok::<(), palisade::error::ConfigError>(())
    /// ```
    pub fn check_key<K: Hash + ?Sized>(&self, key: &K, cost: u32) -> Check {
        Check::from_peek(self.shared.ask(Some(key), &WouldAdmit(u64::from(cost))))
    }

    /// The capacity available now from the shared limit: the largest cost a
    /// request could take at once (tokens in the bucket, room in the
    /// window; a leaky bucket's capacity when idle, and 0 while a slot
    /// lasts). On a keyed limit: that of the requests without a key.
    ///
    /// ```
    /// use palisade::rate_limit::{Rate, RateLimitLayer};
    /// let layer = RateLimitLayer::builder().token_bucket(Rate::per_second(10), 20).build()?;
    /// assert_eq!(layer.available(), 20);
    /// # Ok::<(), palisade::error::ConfigError>(())
    /// ```
    pub fn available(&self) -> u64 {
        self.shared.ask::<(), _>(None, &Available)
    }

    /// The capacity available now to requests with key `key`; see
    /// [`check_key`](Self::check_key) for what the key is.
    ///
    /// ```
    /// use palisade::rate_limit::{Rate, RateLimitLayer};
    /// let layer = RateLimitLayer::builder()
    ///     .sliding_window(100, std::time::Duration::from_secs(60), 6)
    ///     .key(|tenant: &String| Some(tenant.clone()))
    ///     .build()?;
    /// assert_eq!(layer.available_for("acme"), 100);
    /// # Ok::<(), palisade::error::ConfigError>(())
    /// ```
    pub fn available_for<K: Hash + ?Sized>(&self, key: &K) -> u64 {
        self.shared.ask(Some(key), &Available)
    }

    /// The limit as configured now.
    ///
    /// ```
    /// use palisade::rate_limit::{Limit, Rate, RateLimitLayer};
    /// let layer = RateLimitLayer::builder().token_bucket(Rate::per_second(5), 10).build()?;
    /// assert_eq!(layer.limit(), Limit::TokenBucket { rate: Rate::per_second(5), burst: 10 });
    /// # Ok::<(), palisade::error::ConfigError>(())
    /// ```
    pub fn limit(&self) -> Limit {
        self.shared.limit()
    }

    /// Changes the limit's numbers on the running layer, from any thread:
    /// every service and clone made from the layer decides by the new
    /// numbers from its next request on. The algorithm stays the same, and
    /// so does what the limit has learned:
    ///
    /// - a **token bucket** keeps its debt in tokens: a client that took its
    ///   whole burst still owes it, now refilled at the new rate — a lowered
    ///   limit hands out no fresh burst, and a raised one does not forget who
    ///   is over it (a larger burst adds room above the debt, no more);
    /// - a **sliding or fixed window** keeps the counts of its current
    ///   window (and those booked ahead): with new segment lengths, each
    ///   segment's count moves to the new segment that holds its last
    ///   instant, so what was admitted is counted no shorter than before;
    /// - a **sliding log** keeps the entries of its current window, exact
    ///   under the new one (a longer window does not count again what the
    ///   old one had let go).
    ///
    /// A keyed limit changes every key's state the same way, shard by shard.
    /// A request deciding while the change is made is decided by the old
    /// numbers (and counted in the carried state) or by the new ones, never
    /// by a mix. Emits [`Reconfigured`](crate::observe::EventKind::Reconfigured)
    /// for each number that changed: `rate` (tokens a second), `burst`,
    /// `limit`, `window` (seconds), `segments`.
    ///
    /// # Errors
    ///
    /// The [`ConfigError`] the builder would return for these numbers (the
    /// field named), or one on `algorithm` when `limit` is of another
    /// algorithm. The layer is then left as it was.
    ///
    /// ```
    /// use std::time::Duration;
    /// use palisade::{clock::ManualClock, rate_limit::{Limit, Rate, RateLimitLayer}};
    /// use tower::{Layer, Service, ServiceExt, service_fn};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower::BoxError> {
    /// let layer = RateLimitLayer::builder()
    ///     .token_bucket(Rate::per_second(10), 5)
    ///     .clock(ManualClock::new())
    ///     .build()?;
    /// let mut service = layer.layer(service_fn(|x: u8| async move { Ok::<_, tower::BoxError>(x) }));
    /// for _ in 0..5 {
    ///     service.ready().await?.call(1).await?;
    /// }
    /// // The downstream announces a lower quota: the 5 taken are still owed.
    /// layer.set_limit(Limit::TokenBucket { rate: Rate::per_second(1), burst: 2 })?;
    /// assert_eq!(layer.available(), 0);
    /// assert!(service.ready().await?.call(1).await.is_err());
    ///
    /// let err = layer.set_limit(Limit::TokenBucket { rate: Rate::per_second(1), burst: 0 });
    /// assert_eq!(err.unwrap_err().field(), "burst");
    /// let err = layer.set_limit(Limit::FixedWindow { limit: 5, window: Duration::from_secs(1) });
    /// assert_eq!(err.unwrap_err().field(), "algorithm");
    /// # Ok(()) }
    /// ```
    pub fn set_limit(&self, limit: Limit) -> Result<(), ConfigError> {
        self.shared.reconfigure(limit)
    }

    /// The layer's name, as in its events and errors.
    ///
    /// ```
    /// let layer = palisade::rate_limit::RateLimitLayer::builder().name("api").build().unwrap();
    /// assert_eq!(layer.name(), "api");
    /// ```
    pub fn name(&self) -> &LayerName {
        self.shared.observer().name()
    }
}

impl<S, X, W, C: Clock> Layer<S> for RateLimitLayer<X, W, C> {
    type Service = RateLimit<S, X, W, C>;

    fn layer(&self, inner: S) -> Self::Service {
        RateLimit::new(inner, Arc::clone(&self.shared))
    }
}

impl<X, W, C: Clock> Clone for RateLimitLayer<X, W, C> {
    fn clone(&self) -> Self {
        RateLimitLayer {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<X, W, C: Clock> fmt::Debug for RateLimitLayer<X, W, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimitLayer")
            .field("limiter", &self.shared)
            .finish()
    }
}

/// Configures a [`RateLimitLayer`]; [`build`](RateLimitBuilder::build)
/// checks the configuration.
///
/// # Examples
///
/// ```
/// use std::{net::IpAddr, time::Duration};
/// use palisade::{clock::ManualClock, rate_limit::RateLimitLayer};
///
/// // Per client: 60 requests a minute over a sliding window of 6 segments;
/// // a request over the limit may wait up to 250 ms for room.
/// let layer = RateLimitLayer::builder()
///     .sliding_window(60, Duration::from_secs(60), 6)
///     .key(|request: &(IpAddr, String)| Some(request.0))
///     .max_keys(50_000)
///     .wait_up_to(Duration::from_millis(250))
///     .clock(ManualClock::new())
///     .build()?;
/// # let _ = layer;
/// # Ok::<(), palisade::error::ConfigError>(())
/// ```
pub struct RateLimitBuilder<X = NoKey, W = UnitCost, C = TokioClock> {
    pub(super) config: Config,
    pub(super) keyed: bool,
    pub(super) weighted: bool,
    pub(super) keys: X,
    pub(super) costs: W,
    pub(super) clock: C,
    pub(super) observe: ObserverBuilder,
}

impl<X, W, C> RateLimitBuilder<X, W, C> {
    crate::observe::name_and_listeners!(
        observe,
        "let _ = palisade::rate_limit::RateLimitLayer::builder()"
    );

    /// A token bucket holding `burst` tokens, refilled at `rate`: bursts of
    /// up to `burst`, and `rate` on average. See
    /// [the module docs](super#algorithms).
    ///
    /// ```
    /// use palisade::rate_limit::{Rate, RateLimitLayer};
    /// let _ = RateLimitLayer::builder().token_bucket(Rate::per_second(100), 120);
    /// ```
    pub fn token_bucket(mut self, rate: Rate, burst: u32) -> Self {
        self.config.limit = Limit::TokenBucket { rate, burst };
        self
    }

    /// At most `limit` per `window`, counted in `segments` segments: never
    /// more than `limit` in any interval of length `window`. See
    /// [the module docs](super#algorithms) for its error bound.
    ///
    /// ```
    /// # use std::time::Duration;
    /// let _ = palisade::rate_limit::RateLimitLayer::builder()
    ///     .sliding_window(1_000, Duration::from_secs(60), 12);
    /// ```
    pub fn sliding_window(mut self, limit: u32, window: Duration, segments: u32) -> Self {
        self.config.limit = Limit::SlidingWindow {
            limit,
            window,
            segments,
        };
        self
    }

    /// Exactly `limit` per sliding `window`, remembering each request (memory
    /// up to `limit` entries per limit).
    ///
    /// ```
    /// # use std::time::Duration;
    /// let _ = palisade::rate_limit::RateLimitLayer::builder()
    ///     .sliding_log(10, Duration::from_secs(1));
    /// ```
    pub fn sliding_log(mut self, limit: u32, window: Duration) -> Self {
        self.config.limit = Limit::SlidingLog { limit, window };
        self
    }

    /// The limit as a value: one of the four algorithms with its numbers
    /// (what a configuration file holds).
    ///
    /// ```
    /// use std::time::Duration;
    /// use palisade::rate_limit::{Limit, RateLimitLayer};
    /// let _ = RateLimitLayer::builder()
    ///     .limit(Limit::SlidingLog { limit: 10, window: Duration::from_secs(1) });
    /// ```
    pub fn limit(mut self, limit: Limit) -> Self {
        self.config.limit = limit;
        self
    }

    /// `limit` per fixed `window`, windows laid end to end from the clock's
    /// zero. Lets up to 2 × `limit` through across a window's edge.
    ///
    /// ```
    /// # use std::time::Duration;
    /// let _ = palisade::rate_limit::RateLimitLayer::builder()
    ///     .fixed_window(100, Duration::from_secs(1));
    /// ```
    pub fn fixed_window(mut self, limit: u32, window: Duration) -> Self {
        self.config.limit = Limit::FixedWindow { limit, window };
        self
    }

    /// A leaky bucket: requests are released at `rate`, evenly — one every
    /// `1/rate`, a request of cost `n` taking `n` slots — in arrival order;
    /// the bucket holds at most `queue` requests (units of cost): the one
    /// released last, while its slot lasts, and those waiting for theirs. A
    /// request that finds it full is refused at once, its `retry_after()`
    /// the time until a slot frees. A waiter dropped before its slot gives
    /// it back. [`wait_up_to`](Self::wait_up_to) also bounds the wait;
    /// backpressure mode is refused. See
    /// [the module docs](super#smoothing-or-bursts).
    ///
    /// ```
    /// use std::time::Duration;
    /// use palisade::{clock::{Clock, ManualClock}, rate_limit::{Rate, RateLimitLayer}};
    /// use tower::{Layer, Service, ServiceExt, service_fn};
    ///
    /// // A payment provider that takes 10 requests a second, never a burst.
    /// let clock = ManualClock::new();
    /// let layer = RateLimitLayer::builder()
    ///     .leaky_bucket(Rate::per_second(10), 50)
    ///     .clock(clock.clone())
    ///     .build()?;
    /// // The provider answers when each request reached it.
    /// let mut provider = layer.layer(service_fn({
    ///     let clock = clock.clone();
    ///     move |_: u32| std::future::ready(Ok::<_, tower::BoxError>(clock.now().since_epoch()))
    /// }));
    /// let mut reached = Vec::new();
    /// for request in 0..3 {
    ///     reached.push(clock.block_on(async { provider.ready().await?.call(request).await })?);
    /// }
    /// let ms = Duration::from_millis;
    /// assert_eq!(reached, [ms(0), ms(100), ms(200)]);
    /// # Ok::<(), tower::BoxError>(())
    /// ```
    pub fn leaky_bucket(mut self, rate: Rate, queue: u32) -> Self {
        self.config.limit = Limit::LeakyBucket { rate, queue };
        self
    }

    /// Reject mode (the default): a request over the limit fails at once
    /// with a [`RateLimited`](crate::error::RateLimited) error whose
    /// `retry_after()` is the exact time until it would be admitted.
    ///
    /// ```
    /// let _ = palisade::rate_limit::RateLimitLayer::builder().reject();
    /// ```
    pub fn reject(mut self) -> Self {
        self.config.mode = Mode::Reject;
        self
    }

    /// Wait mode: a request over the limit reserves capacity to come and
    /// waits for it (on the clock) when it is due within `max_wait`; it is
    /// refused otherwise. Waiters go in the order they came, each at its own
    /// time. A leaky bucket's requests wait for their slots whatever the
    /// mode: this bounds their wait too.
    ///
    /// ```
    /// # use std::time::Duration;
    /// let _ = palisade::rate_limit::RateLimitLayer::builder().wait_up_to(Duration::from_millis(100));
    /// ```
    pub fn wait_up_to(mut self, max_wait: Duration) -> Self {
        self.config.mode = Mode::Wait(max_wait);
        self
    }

    /// Backpressure mode: `poll_ready` stays pending until a unit of the
    /// limit is available, woken through the clock when it is due, and takes
    /// it for the next call. Needs a shared limit of one unit a request (no
    /// [`key`](Self::key), no [`cost`](Self::cost)).
    ///
    /// ```
    /// let _ = palisade::rate_limit::RateLimitLayer::builder().backpressure();
    /// ```
    pub fn backpressure(mut self) -> Self {
        self.config.mode = Mode::Backpressure;
        self
    }

    /// A limit per key: `keys` picks each request's key (any
    /// [`KeyExtractor`](super::KeyExtractor), such as a closure
    /// `Fn(&Req) -> Option<K>`). See [the module docs](super#keys).
    ///
    /// ```
    /// let _ = palisade::rate_limit::RateLimitLayer::builder()
    ///     .key(|request: &(u64, String)| Some(request.0));
    /// ```
    pub fn key<X2>(self, keys: X2) -> RateLimitBuilder<X2, W, C> {
        RateLimitBuilder {
            config: self.config,
            keyed: true,
            weighted: self.weighted,
            keys,
            costs: self.costs,
            clock: self.clock,
            observe: self.observe,
        }
    }

    /// The most keys a keyed limit holds state for. Default 100 000.
    ///
    /// ```
    /// let _ = palisade::rate_limit::RateLimitLayer::builder().max_keys(10_000);
    /// ```
    pub fn max_keys(mut self, max_keys: usize) -> Self {
        self.config.max_keys = max_keys;
        self
    }

    /// How many independently locked shards a keyed limit's table is split
    /// in; a power of two. Default 16.
    ///
    /// ```
    /// let _ = palisade::rate_limit::RateLimitLayer::builder().shards(64);
    /// ```
    pub fn shards(mut self, shards: usize) -> Self {
        self.config.shards = shards;
        self
    }

    /// What to do with a request in which the key extractor finds no key.
    /// Default: [`MissingKey::Reject`].
    ///
    /// ```
    /// use palisade::rate_limit::{MissingKey, RateLimitLayer};
    /// let _ = RateLimitLayer::builder().missing_key(MissingKey::Shared);
    /// ```
    pub fn missing_key(mut self, missing_key: MissingKey) -> Self {
        self.config.missing_key = missing_key;
        self
    }

    /// What a request costs: any [`Cost`](super::Cost), such as a closure
    /// `Fn(&Req) -> u32`. Default: 1 per request. A request costing more
    /// than the limit admits at once fails with
    /// [`Unsatisfiable`](crate::error::Unsatisfiable).
    ///
    /// ```
    /// let _ = palisade::rate_limit::RateLimitLayer::builder()
    ///     .cost(|batch: &Vec<u8>| batch.len() as u32);
    /// ```
    pub fn cost<W2>(self, costs: W2) -> RateLimitBuilder<X, W2, C> {
        RateLimitBuilder {
            config: self.config,
            keyed: self.keyed,
            weighted: true,
            keys: self.keys,
            costs,
            clock: self.clock,
            observe: self.observe,
        }
    }

    crate::observe::clock_setting!(
        "every decision reads and every wait sleeps on",
        "let _ = palisade::rate_limit::RateLimitLayer::builder()",
        RateLimitBuilder<X, W, C2> { config, keyed, weighted, keys, costs, observe }
    );
}

impl<X, W, C: Clock> RateLimitBuilder<X, W, C> {
    /// Checks the configuration and builds the layer, creating the limit's
    /// shared state.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming the field when a limit, burst, rate, count or
    /// duration is 0, a rate exceeds one token a nanosecond, a window or
    /// refill time exceeds 100 years, a window has more segments than 4096
    /// or than nanoseconds, `shards` is not a power of two, exceeds 65 536 or
    /// exceeds `max_keys`, a wait spans more than 65 536 window segments,
    /// backpressure is asked of a keyed or weighted limit, or the limit's
    /// state could take more than 1 GiB at its largest (every key's table
    /// entry, window counters or log full; the error says how much).
    ///
    /// ```
    /// use std::time::Duration;
    /// use palisade::rate_limit::{Rate, RateLimitLayer};
    /// let err = RateLimitLayer::builder().token_bucket(Rate::per_second(10), 0).build().unwrap_err();
    /// assert_eq!(err.field(), "burst");
    ///
    /// let err = RateLimitLayer::builder()
    ///     .sliding_log(100_000, Duration::from_secs(60))
    ///     .key(|user: &u64| Some(*user))
    ///     .build()
    ///     .unwrap_err();
    /// assert_eq!(err.field(), "max_keys");
    /// assert_eq!(
    ///     err.to_string(),
    ///     "invalid rate_limit config: `max_keys` makes a limit that may take 298.0 GiB of memory \
    ///      (sliding log of up to 100000 entries); at most 1.0 GiB (fewer keys, a lower limit, \
    ///      or a sliding window instead of a log)"
    /// );
    /// ```
    pub fn build(self) -> Result<RateLimitLayer<X, W, C>, ConfigError> {
        let algorithm = self.config.algorithm(self.keyed, self.weighted)?;
        let observer = self.observe.build(LAYER);
        Ok(RateLimitLayer {
            shared: Arc::new(Shared::new(
                &self.config,
                algorithm,
                (self.keyed, self.weighted),
                self.keys,
                self.costs,
                self.clock,
                observer,
            )),
        })
    }
}

impl<X, W, C> fmt::Debug for RateLimitBuilder<X, W, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimitBuilder")
            .field("config", &self.config)
            .field("keyed", &self.keyed)
            .field("weighted", &self.weighted)
            .field("observe", &self.observe)
            .finish_non_exhaustive()
    }
}

//! The Redis-backed rate limiter as a [`Layer`], and its builder.

use std::{fmt, time::Duration};

use redis::aio::ConnectionLike;
use tower::Layer;

use super::{
    backend::{Backend, Limit},
    denials::Denials,
    leases::Leases,
    service::RedisRateLimit,
};
use crate::{
    circuit_breaker::{CircuitBreaker, CircuitBreakerHandle, CircuitBreakerLayer, OpenDuration},
    classify::ErrorsAsFailures,
    clock::Clock,
    error::{ConfigError, Unsatisfiable},
    random::FastRandom,
    rate_limit::{
        RateLimitBuilder,
        config::{Config, LAYER, Limit as Given, Mode, Rate},
        core::Algorithm,
        shared::Shared,
    },
    sync::{Arc, AtomicU64, Mutex, Ordering, lock},
    timeout::{FixedTimeout, Timeout, TimeoutLayer},
};

/// What a decision does when Redis does not answer in time (down, slow,
/// failing over, answering errors) or the breaker around it is open.
///
/// ```
/// use palisade::rate_limit::redis::Unavailable;
/// let _ = Unavailable::Local { instances: 4 };
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Unavailable {
    /// Admit the request, unlimited, until Redis is back: the dependency
    /// behind the limiter takes the load. The default, as a limiter is
    /// usually there to protect, not to gate.
    #[default]
    Open,
    /// Refuse with [`StoreUnavailable`](crate::error::StoreUnavailable)
    /// (`503`, not `429`: the limit is unknown, not exceeded).
    Closed,
    /// Limit in this process, with the rate and burst divided by the
    /// expected number of `instances`, so that the fleet as a whole stays
    /// near the limit.
    Local {
        /// How many instances share the limit.
        instances: u32,
    },
}

/// The guarded call to Redis: palisade's own timeout and circuit breaker
/// around the script.
pub(super) type Guarded<R, C> =
    CircuitBreaker<Timeout<Backend<R>, FixedTimeout, C>, ErrorsAsFailures, C, FastRandom>;

/// What every service and clone made by one layer shares.
pub(super) struct RedisShared<X, W, C: Clock, R> {
    /// Keys, costs, clock, name and events — and the in-process limit of
    /// [`Unavailable::Local`].
    pub(super) local: Shared<X, W, C>,
    pub(super) guard: Guarded<R, C>,
    /// The breaker in `guard`.
    breaker: CircuitBreakerHandle,
    /// The limit's numbers now. Each service keeps a copy, and takes this
    /// lock only when `generation` says they changed.
    numbers: Mutex<Numbers>,
    /// The numbers' generation, moved on after each change.
    generation: AtomicU64,
    /// The configuration built, its limit aside: what a change is checked
    /// against.
    config: Config,
    weighted: bool,
    /// The longest wait that still admits, in microseconds.
    pub(super) max_wait: u64,
    /// Whether `now` is the layer's clock's (else the server's).
    pub(super) layer_time: bool,
    /// Prepended to every key.
    pub(super) prefix: String,
    /// Whether a key function was given (else one limit for all).
    pub(super) keyed: bool,
    pub(super) denials: Denials,
    /// The most tokens a round trip takes (1: no leases).
    pub(super) batch: u64,
    pub(super) leases: Leases,
    pub(super) unavailable: Unavailable,
}

/// The limit's numbers, changed live.
#[derive(Clone, Copy, Debug)]
pub(super) struct Numbers {
    /// As given, to the builder or by the last change.
    given: Given,
    /// As Redis keeps them.
    pub(super) limit: Limit,
    /// Changes made so far: what Redis answers to a decision asked before
    /// the latest is not kept in this instance's caches.
    pub(super) generation: u64,
}

/// A rate limiter whose state lives in Redis, shared by every instance of a
/// fleet; see [the module docs](super).
///
/// Cheap to clone: every clone, and every service made from it, shares one
/// connection and one limit.
///
/// ```no_run
/// use palisade::rate_limit::{Rate, RateLimitLayer};
///
/// # async fn run() -> Result<(), tower::BoxError> {
/// let client = redis::Client::open("redis://127.0.0.1:6379")?;
/// let connection = redis::aio::ConnectionManager::new(client).await?;
/// let layer = RateLimitLayer::builder()
///     .name("api")
///     .token_bucket(Rate::per_second(100), 50)
///     .key(|user: &u64| Some(*user))
///     .redis(connection)
///     .build()?;
/// # let _ = layer;
/// # Ok(()) }
/// ```
pub struct RedisRateLimitLayer<X, W, C: Clock, R> {
    shared: Arc<RedisShared<X, W, C, R>>,
}

impl<X, W, C: Clock, R> RedisRateLimitLayer<X, W, C, R> {
    /// The circuit breaker around the calls to Redis: open while Redis is
    /// considered unavailable (decisions then make no round trip and the
    /// [`Unavailable`] policy answers), with its state, counters and
    /// manual control.
    ///
    /// ```no_run
    /// use palisade::{circuit_breaker::CircuitState, rate_limit::RateLimitLayer};
    /// # async fn run(connection: redis::aio::ConnectionManager) {
    /// let layer = RateLimitLayer::builder().redis(connection).build().unwrap();
    /// assert_eq!(layer.store_breaker().state(), CircuitState::Closed);
    /// # }
    /// ```
    pub fn store_breaker(&self) -> &CircuitBreakerHandle {
        &self.shared.breaker
    }

    /// The limit's numbers now.
    ///
    /// ```no_run
    /// use palisade::rate_limit::{Limit, Rate, RateLimitLayer};
    /// # async fn run(connection: redis::aio::ConnectionManager) {
    /// let layer = RateLimitLayer::builder()
    ///     .token_bucket(Rate::per_second(100), 20)
    ///     .redis(connection)
    ///     .build()
    ///     .unwrap();
    /// assert_eq!(layer.limit(), Limit::TokenBucket { rate: Rate::per_second(100), burst: 20 });
    /// # }
    /// ```
    pub fn limit(&self) -> Given {
        self.shared.numbers().given
    }

    /// Changes the limit's numbers on the running layer, from any thread,
    /// checked as the builder checks them: every service and clone made
    /// from the layer decides by the new numbers from its next request on,
    /// and its in-process fallback ([`Unavailable::Local`]) takes its share
    /// of them.
    ///
    /// What Redis holds is kept as
    /// [`RateLimitLayer::set_limit`](super::super::RateLimitLayer::set_limit)
    /// keeps it in a process: a token bucket's debt in tokens (rounded up to
    /// the microsecond), a window's counts, each moved to the new segment
    /// holding its old segment's last instant. Each key's state in Redis
    /// carries the numbers it was written with, so the change happens key
    /// by key, at the first decision on it with the new numbers: an idle key
    /// has nothing to change, a busy one changes at once.
    ///
    /// The numbers live in each instance: change every instance of the
    /// fleet (reload the same configuration everywhere). Until each has,
    /// a decision by one on the old numbers changes a key back, keeping its
    /// debt again, so that neither set of numbers forgets who is over it.
    /// This instance's memory of refused keys (the
    /// [denial cache](super#the-denial-cache)) is cleared, as it was worked
    /// out with the old numbers; tokens it holds leased are kept (Redis gave
    /// them out).
    ///
    /// # Errors
    ///
    /// The [`ConfigError`] [`build`](RedisRateLimitBuilder::build) would
    /// return for these numbers (the field named), or one on `algorithm`
    /// when `limit` is of another algorithm. The layer is then left as it
    /// was.
    ///
    /// ```no_run
    /// use palisade::rate_limit::{Limit, Rate, RateLimitLayer};
    /// # async fn run(connection: redis::aio::ConnectionManager) -> Result<(), tower::BoxError> {
    /// let layer = RateLimitLayer::builder()
    ///     .token_bucket(Rate::per_second(100), 20)
    ///     .redis(connection)
    ///     .build()?;
    /// // The downstream announced a lower quota, to every instance.
    /// layer.set_limit(Limit::TokenBucket { rate: Rate::per_second(50), burst: 10 })?;
    /// // Above a token a microsecond: Redis counts in microseconds.
    /// let err = layer.set_limit(Limit::TokenBucket { rate: Rate::per_second(2_000_000), burst: 10 });
    /// assert_eq!(err.unwrap_err().field(), "rate");
    /// # Ok(()) }
    /// ```
    pub fn set_limit(&self, limit: Given) -> Result<(), ConfigError> {
        self.shared.reconfigure(limit)
    }
}

impl<X, W, C: Clock, R> Clone for RedisRateLimitLayer<X, W, C, R> {
    fn clone(&self) -> Self {
        RedisRateLimitLayer {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<S, X, W, C: Clock, R> Layer<S> for RedisRateLimitLayer<X, W, C, R> {
    type Service = RedisRateLimit<S, X, W, C, R>;

    fn layer(&self, inner: S) -> Self::Service {
        RedisRateLimit::new(inner, Arc::clone(&self.shared))
    }
}

impl<X, W, C: Clock, R> fmt::Debug for RedisRateLimitLayer<X, W, C, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisRateLimitLayer")
            .field("name", self.shared.local.observer().name())
            .field("prefix", &self.shared.prefix)
            .field("unavailable", &self.shared.unavailable)
            .finish_non_exhaustive()
    }
}

/// Builds a [`RedisRateLimitLayer`]; made by
/// [`RateLimitBuilder::redis`].
///
/// ```no_run
/// use std::time::Duration;
/// use palisade::rate_limit::{Rate, RateLimitLayer, redis::Unavailable};
///
/// # async fn run(connection: redis::aio::ConnectionManager) -> Result<(), tower::BoxError> {
/// let layer = RateLimitLayer::builder()
///     .token_bucket(Rate::per_second(100), 50)
///     .redis(connection)
///     .timeout(Duration::from_millis(20))
///     .on_unavailable(Unavailable::Local { instances: 4 })
///     .build()?;
/// # let _ = layer;
/// # Ok(()) }
/// ```
pub struct RedisRateLimitBuilder<X, W, C, R> {
    limit: RateLimitBuilder<X, W, C>,
    connection: R,
    timeout: Duration,
    unavailable: Unavailable,
    layer_time: bool,
    prefix: Option<String>,
    denial_cache: usize,
    batch: u32,
}

impl<X, W, C> RateLimitBuilder<X, W, C> {
    /// Keeps the limit's state in Redis, on `connection` — a
    /// [`ConnectionManager`](redis::aio::ConnectionManager) (one server,
    /// multiplexed, reconnecting by itself) or any
    /// [`ConnectionLike`] that can be cloned — so that every instance built
    /// against the same Redis with the same name shares one limit. See
    /// [`rate_limit::redis`](super).
    ///
    /// ```no_run
    /// use palisade::rate_limit::RateLimitLayer;
    /// # async fn run(connection: redis::aio::ConnectionManager) {
    /// let _ = RateLimitLayer::builder().redis(connection);
    /// # }
    /// ```
    pub fn redis<R>(self, connection: R) -> RedisRateLimitBuilder<X, W, C, R> {
        RedisRateLimitBuilder {
            limit: self,
            connection,
            timeout: Duration::from_millis(50),
            unavailable: Unavailable::default(),
            layer_time: false,
            prefix: None,
            denial_cache: 10_000,
            batch: 1,
        }
    }
}

impl<X, W, C, R> RedisRateLimitBuilder<X, W, C, R> {
    /// How long a decision waits for Redis before the
    /// [`Unavailable`] policy answers. Default 50 ms.
    ///
    /// ```no_run
    /// # use std::time::Duration;
    /// # async fn run(connection: redis::aio::ConnectionManager) {
    /// let _ = palisade::rate_limit::RateLimitLayer::builder()
    ///     .redis(connection)
    ///     .timeout(Duration::from_millis(10));
    /// # }
    /// ```
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// What to do when Redis is unavailable. Default [`Unavailable::Open`].
    ///
    /// ```no_run
    /// use palisade::rate_limit::redis::Unavailable;
    /// # async fn run(connection: redis::aio::ConnectionManager) {
    /// let _ = palisade::rate_limit::RateLimitLayer::builder()
    ///     .redis(connection)
    ///     .on_unavailable(Unavailable::Closed);
    /// # }
    /// ```
    pub fn on_unavailable(mut self, unavailable: Unavailable) -> Self {
        self.unavailable = unavailable;
        self
    }

    /// Decide on the layer's [`Clock`] instead of the Redis server's. The
    /// server's clock (the default) is one clock for the whole fleet, so an
    /// instance whose clock is off cannot admit more than its share; the
    /// layer's clock makes decisions repeatable in tests (a
    /// [`ManualClock`](crate::clock::ManualClock)) but trusts every
    /// instance's clock to agree.
    ///
    /// ```no_run
    /// # async fn run(connection: redis::aio::ConnectionManager) {
    /// let _ = palisade::rate_limit::RateLimitLayer::builder()
    ///     .redis(connection)
    ///     .layer_clock();
    /// # }
    /// ```
    pub fn layer_clock(mut self) -> Self {
        self.layer_time = true;
        self
    }

    /// How many refused keys this instance remembers, to refuse them again
    /// without a round trip until their tokens come back (see
    /// [the module docs](super#the-denial-cache)). Default 10 000; 0: none.
    ///
    /// ```no_run
    /// # async fn run(connection: redis::aio::ConnectionManager) {
    /// let _ = palisade::rate_limit::RateLimitLayer::builder()
    ///     .redis(connection)
    ///     .denial_cache(100_000);
    /// # }
    /// ```
    pub fn denial_cache(mut self, max_keys: usize) -> Self {
        self.denial_cache = max_keys;
        self
    }

    /// Takes up to `batch` tokens a round trip and spends them here: fewer
    /// round trips, at the price of a bounded over-admission across the
    /// fleet — see [leased tokens](super#leased-tokens). Default 1: no
    /// leases, every decision exact.
    ///
    /// ```no_run
    /// # async fn run(connection: redis::aio::ConnectionManager) {
    /// let _ = palisade::rate_limit::RateLimitLayer::builder()
    ///     .redis(connection)
    ///     .lease(10);
    /// # }
    /// ```
    pub fn lease(mut self, batch: u32) -> Self {
        self.batch = batch;
        self
    }

    /// The text every Redis key of this limiter starts with. Default
    /// `palisade:{name}:`, with braces in the name replaced (they would
    /// change the key's Redis Cluster slot).
    ///
    /// ```no_run
    /// # async fn run(connection: redis::aio::ConnectionManager) {
    /// let _ = palisade::rate_limit::RateLimitLayer::builder()
    ///     .redis(connection)
    ///     .prefix("shop:limits:");
    /// # }
    /// ```
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = Some(prefix.into());
        self
    }
}

impl<X, W, C: Clock, R> RedisRateLimitBuilder<X, W, C, R>
where
    R: ConnectionLike + Clone + Send + 'static,
{
    /// Checks the configuration and builds the layer. Nothing is sent to
    /// Redis yet: the script is loaded by the first decision.
    ///
    /// # Errors
    ///
    /// The [`ConfigError`]s of [`RateLimitBuilder::build`], and: the
    /// sliding log or the leaky bucket (field `algorithm`), the backpressure mode
    /// (`backpressure`), a rate above one token a microsecond (`rate`), a
    /// window segment shorter than a microsecond (`window`), a zero timeout
    /// (`timeout`), a prefix with a brace in it (`prefix`), `instances` 0
    /// (`on_unavailable`), or a lease of 0, larger than the bucket, on a
    /// window or in wait mode (`lease`).
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// use palisade::rate_limit::RateLimitLayer;
    /// # async fn run(connection: redis::aio::ConnectionManager) {
    /// let err = RateLimitLayer::builder()
    ///     .sliding_log(10, Duration::from_secs(1))
    ///     .redis(connection)
    ///     .build()
    ///     .unwrap_err();
    /// assert_eq!(err.field(), "algorithm");
    /// # }
    /// ```
    pub fn build(self) -> Result<RedisRateLimitLayer<X, W, C, R>, ConfigError> {
        let limit = self.limit;
        let config = &limit.config;
        if config.mode == Mode::Backpressure {
            return Err(ConfigError::new(
                LAYER,
                "backpressure",
                "is not available on Redis: a decision needs a round trip (use `wait_up_to`)",
            ));
        }
        crate::error::check::at_least_one(LAYER, "lease", self.batch)?;
        let store_limit = on_redis(config, limit.keyed, limit.weighted, u64::from(self.batch))?;
        crate::error::check::positive(LAYER, "timeout", self.timeout)?;
        // The guards around Redis tell the limiter's listeners too, under
        // the limiter's name with `.redis` appended.
        let guards = limit.observe.clone();
        let observer = limit.observe.build(LAYER);
        let name = observer.name().clone();
        let prefix = match self.prefix {
            Some(prefix) if prefix.contains(['{', '}']) => {
                return Err(ConfigError::new(
                    LAYER,
                    "prefix",
                    format!(
                        "must not hold a brace (it would pick the key's cluster slot), got {prefix:?}"
                    ),
                ));
            }
            Some(prefix) => prefix,
            None => format!("palisade:{}:", name.replace(['{', '}'], "_")),
        };
        // The in-process limit: the fallback of `Unavailable::Local`, the
        // whole limit divided among the instances.
        let mut local_config = config.clone();
        if let Unavailable::Local { instances } = self.unavailable {
            crate::error::check::at_least_one(LAYER, "on_unavailable", instances)?;
        }
        local_config.limit = self.unavailable.local(config.limit);
        let local_algorithm = local_config.algorithm(limit.keyed, limit.weighted)?;
        let timeout = TimeoutLayer::builder(self.timeout)
            .observed(guards.clone())
            .name(format!("{name}.redis"))
            .clock(limit.clock.clone())
            .build()?;
        let breaker = CircuitBreakerLayer::builder()
            .observed(guards)
            .name(format!("{name}.redis"))
            .consecutive_failures(5)
            .open_duration(OpenDuration::exponential(
                Duration::from_millis(500),
                2.0,
                Duration::from_secs(10),
            ))
            .clock(limit.clock.clone())
            .build()?;
        let handle = breaker.handle();
        let guard = breaker.layer(timeout.layer(Backend::new(self.connection)));
        let built = config.clone();
        let local = Shared::new(
            &local_config,
            local_algorithm,
            (limit.keyed, limit.weighted),
            limit.keys,
            limit.costs,
            limit.clock,
            observer,
        );
        Ok(RedisRateLimitLayer {
            shared: Arc::new(RedisShared {
                local,
                guard,
                breaker: handle,
                numbers: Mutex::new(Numbers {
                    given: built.limit,
                    limit: store_limit,
                    generation: 0,
                }),
                generation: AtomicU64::new(0),
                config: built,
                weighted: limit.weighted,
                max_wait: config.mode.max_wait() / 1_000,
                layer_time: self.layer_time,
                prefix,
                keyed: limit.keyed,
                // Only a bucket's refusals carry what the cache needs.
                denials: Denials::new(match store_limit {
                    Limit::Bucket { .. } => self.denial_cache,
                    Limit::Window { .. } => 0,
                }),
                batch: u64::from(self.batch),
                leases: Leases::new(if self.batch > 1 {
                    self.denial_cache.max(10_000)
                } else {
                    0
                }),
                unavailable: self.unavailable,
            }),
        })
    }
}

/// The limit as Redis keeps it, checked as the builder checks it, and for
/// Redis: whole microseconds, no sliding log, a lease that fits the bucket
/// (`batch`: the lease's size, 1 for none).
fn on_redis(
    config: &Config,
    keyed: bool,
    weighted: bool,
    batch: u64,
) -> Result<Limit, ConfigError> {
    let limit = match config.algorithm(keyed, weighted)? {
        Algorithm::TokenBucket(bucket) => {
            if bucket.interval() < 1_000 {
                return Err(ConfigError::new(
                    LAYER,
                    "rate",
                    "must be at most one token a microsecond on Redis",
                ));
            }
            Limit::Bucket {
                interval: bucket.interval().div_ceil(1_000),
                capacity: bucket.capacity(),
            }
        }
        Algorithm::Segments(segments) => {
            let (limit, segment, counted) = segments.parts();
            if segment < 1_000 {
                return Err(ConfigError::new(
                    LAYER,
                    "window",
                    "must give each segment at least a microsecond on Redis",
                ));
            }
            Limit::Window {
                limit,
                segment: segment.div_ceil(1_000),
                counted,
            }
        }
        Algorithm::SlidingLog(_) => {
            return Err(ConfigError::new(
                LAYER,
                "algorithm",
                "cannot be the sliding log on Redis (a log a key is memory Redis should not \
                 hold): use the sliding window",
            ));
        }
        Algorithm::LeakyBucket(_) => {
            return Err(ConfigError::new(
                LAYER,
                "algorithm",
                "cannot be the leaky bucket on Redis (its waiting requests are held by the \
                 instance that took them, so a cancelled one cannot give its slot to another \
                 instance's): use a token bucket with a burst of 1 and `wait_up_to`, which \
                 spaces the fleet's requests as evenly",
            ));
        }
    };
    if batch > 1 {
        let fits = matches!(limit, Limit::Bucket { capacity, .. } if batch <= capacity);
        if !fits || config.mode != Mode::Reject {
            return Err(ConfigError::new(
                LAYER,
                "lease",
                format!("needs a token bucket of at least {batch} tokens in reject mode"),
            ));
        }
    }
    Ok(limit)
}

impl Unavailable {
    /// The limit of the in-process fallback: with [`Unavailable::Local`],
    /// this instance's share of `limit`.
    fn local(self, limit: Given) -> Given {
        match self {
            Unavailable::Local { instances } => share(limit, instances),
            _ => limit,
        }
    }
}

/// One instance's share of a limit among `instances`.
fn share(limit: Given, instances: u32) -> Given {
    match limit {
        Given::TokenBucket { rate, burst } => Given::TokenBucket {
            rate: Rate::new(rate.tokens(), rate.per().saturating_mul(instances)),
            burst: burst.div_ceil(instances),
        },
        Given::SlidingWindow {
            limit,
            window,
            segments,
        } => Given::SlidingWindow {
            limit: limit.div_ceil(instances),
            window,
            segments,
        },
        Given::FixedWindow { limit, window } => Given::FixedWindow {
            limit: limit.div_ceil(instances),
            window,
        },
        Given::LeakyBucket { .. } => unreachable!("a leaky bucket is refused on Redis when built"),
        Given::SlidingLog { limit, window } => Given::SlidingLog {
            limit: limit.div_ceil(instances),
            window,
        },
    }
}

impl<X, W, C: Clock, R> RedisShared<X, W, C, R> {
    /// The refusal of a request of `cost` above what `limit` admits at once.
    pub(super) fn unsatisfiable(&self, cost: u64, limit: Limit) -> tower::BoxError {
        let name = self.local.observer().name().clone();
        Unsatisfiable::new(name, cost, limit.capacity()).into()
    }

    /// The numbers now.
    pub(super) fn numbers(&self) -> Numbers {
        *lock(&self.numbers)
    }

    /// Whether numbers of `generation` are still the numbers now: one
    /// atomic read.
    #[inline]
    pub(super) fn is_current(&self, generation: u64) -> bool {
        self.generation.load(Ordering::Acquire) == generation
    }

    /// Changes the numbers (see [`RedisRateLimitLayer::set_limit`]): checked
    /// first, then the in-process fallback's share, then Redis's numbers,
    /// the denial cache cleared; an event per number changed.
    fn reconfigure(&self, limit: Given) -> Result<(), ConfigError> {
        let mut numbers = lock(&self.numbers);
        let old = *numbers;
        old.given.same_kind(limit)?;
        let config = Config {
            limit,
            ..self.config.clone()
        };
        let store = on_redis(&config, self.keyed, self.weighted, self.batch)?;
        self.local.change(self.unavailable.local(limit))?;
        *numbers = Numbers {
            given: limit,
            limit: store,
            generation: old.generation + 1,
        };
        // Release: a service that sees the new generation finds the new
        // numbers behind the lock.
        self.generation.store(old.generation + 1, Ordering::Release);
        // After the new generation: an answer to a decision asked on the
        // old numbers is no longer cached from here on, and what was cached
        // before is gone.
        self.denials.clear();
        drop(numbers);
        let now = self.local.clock.now();
        self.local
            .observer()
            .changes(now, old.given.numbers(), limit.numbers());
        Ok(())
    }
}

impl<X, W, C, R> fmt::Debug for RedisRateLimitBuilder<X, W, C, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisRateLimitBuilder")
            .field("timeout", &self.timeout)
            .field("unavailable", &self.unavailable)
            .field("layer_time", &self.layer_time)
            .finish_non_exhaustive()
    }
}

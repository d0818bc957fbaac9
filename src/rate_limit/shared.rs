//! The state every service and clone made by one layer shares, and the one
//! decision the service asks of it.

use std::{fmt, hash::Hash, time::Duration};

use tower::BoxError;

use super::{
    bucket_cell::BucketCell,
    config::{Config, Limit, MissingKey, Mode},
    core::{Algorithm, Denied, Question, Rule, State},
    keyed::Keyed,
    request::{Cost, KeyExtractor},
};
use crate::{
    clock::{Clock, Instant},
    error::{ConfigError, KeyMissing, RateLimited, RejectionKind, Unsatisfiable},
    observe::{EventKind, Observer},
    sync::{AtomicU64, CachePadded, Mutex, Ordering, lock},
};

pub(crate) struct Shared<X, W, C> {
    /// The numbers as configured now; held while they change, so that one
    /// change runs at a time.
    current: Mutex<Current>,
    store: Store,
    pub(crate) mode: Mode,
    max_wait: u64,
    missing_key: MissingKey,
    keys: X,
    costs: W,
    pub(crate) clock: C,
    observer: Observer,
    /// Whether anything receives events: decided once, read per call.
    observed: bool,
    /// Requests refused since the limit was built (a refusal's path only).
    refused: AtomicU64,
}

/// The limit's numbers now, as given and as made.
#[derive(Clone, Debug)]
struct Current {
    config: Config,
    keyed: bool,
    weighted: bool,
    algorithm: Algorithm,
}

/// Where the limit's state lives, with the numbers it is decided by.
enum Store {
    /// A shared token bucket: its TAT, in one atomic word.
    Bucket(CachePadded<BucketCell>),
    /// A shared window or log.
    Locked(Mutex<(Algorithm, State)>),
    /// A state per key.
    Keyed(Keyed),
}

/// What the limiter says of a request.
pub(crate) enum Admission {
    /// Go now.
    Now,
    /// Capacity is reserved: go at this instant.
    At(Instant),
    /// Refused, with the error to return.
    Refused(BoxError),
}

impl<X, W, C: Clock> Shared<X, W, C> {
    /// A limit of `algorithm`, made from `config`; `keyed` and `weighted`
    /// say whether a key and a cost function were given.
    pub(crate) fn new(
        config: &Config,
        algorithm: Algorithm,
        (keyed, weighted): (bool, bool),
        keys: X,
        costs: W,
        clock: C,
        observer: Observer,
    ) -> Self {
        let store = match algorithm {
            _ if keyed => Store::Keyed(Keyed::new(algorithm, config.max_keys, config.shards)),
            Algorithm::TokenBucket(bucket) => Store::Bucket(CachePadded(BucketCell::new(bucket))),
            _ => Store::Locked(Mutex::new((algorithm, algorithm.fresh()))),
        };
        Shared {
            current: Mutex::new(Current {
                config: config.clone(),
                keyed,
                weighted,
                algorithm,
            }),
            store,
            mode: config.mode,
            max_wait: config.mode.max_wait(),
            missing_key: config.missing_key,
            keys,
            costs,
            clock,
            observed: observer.is_active(),
            observer,
            refused: AtomicU64::new(0),
        }
    }

    /// Decides `request`: reads the clock once, asks the algorithm.
    #[inline]
    pub(crate) fn admit<Req>(&self, request: &Req) -> Admission
    where
        X: KeyExtractor<Req>,
        W: Cost<Req>,
    {
        let cost = u64::from(self.costs.cost(request));
        let now = self.clock.now();
        let verdict = match &self.store {
            Store::Bucket(bucket) => bucket.take(now.as_nanos(), cost, self.max_wait),
            Store::Locked(locked) => {
                let (algorithm, state) = &mut *lock(locked);
                algorithm.acquire(state, now.as_nanos(), cost, self.max_wait)
            }
            Store::Keyed(keyed) => {
                let key = match self.keys.extract(request) {
                    Some(key) => keyed.hash(&key),
                    None => match self.missing_key {
                        MissingKey::Reject => {
                            return Admission::Refused(self.key_missing::<Req>(now));
                        }
                        MissingKey::Allow => return Admission::Now,
                        MissingKey::Shared => keyed.keyless(),
                    },
                };
                keyed.acquire(key, now.as_nanos(), cost, self.max_wait)
            }
        };
        match verdict {
            Ok(due) => {
                self.emit_let_through(now);
                if due <= now.as_nanos() {
                    Admission::Now
                } else {
                    Admission::At(Instant::from_nanos(due))
                }
            }
            Err(denied) => Admission::Refused(self.refusal(now, cost, denied)),
        }
    }

    /// Whether anything receives the limiter's events.
    #[cfg(feature = "redis")]
    pub(crate) fn is_observed(&self) -> bool {
        self.observed
    }

    /// The event of a request admitted at `now`, when someone observes.
    #[inline]
    pub(crate) fn emit_let_through(&self, now: Instant) {
        if self.observed {
            self.observer.emit(now, EventKind::LetThrough);
        }
    }

    /// Backpressure mode: takes one unit of the shared limit now, or says
    /// when to try again.
    pub(crate) fn take_unit(&self) -> Result<(), Instant> {
        let now = self.clock.now();
        let verdict = match &self.store {
            Store::Bucket(bucket) => bucket.take(now.as_nanos(), 1, 0),
            Store::Locked(locked) => {
                let (algorithm, state) = &mut *lock(locked);
                algorithm.acquire(state, now.as_nanos(), 1, 0)
            }
            Store::Keyed(_) => unreachable!("backpressure is refused for keyed limits when built"),
        };
        match verdict {
            Ok(_) => {
                self.emit_let_through(now);
                Ok(())
            }
            Err(denied) => {
                let wait = match denied {
                    Denied::Wait(wait) => wait,
                    Denied::Never => unreachable!("every limit is at least 1"),
                };
                self.refused.fetch_add(1, Ordering::Relaxed);
                self.emit_rejected(now, Some(Duration::from_nanos(wait)));
                Err(now.saturating_add(Duration::from_nanos(wait)))
            }
        }
    }

    /// The key of `request`, or what to do without one: `Err` holds the
    /// refusal for [`MissingKey::Reject`], `Ok(None)` means no limit
    /// ([`MissingKey::Allow`]).
    #[cfg(feature = "redis")]
    pub(crate) fn key_of<Req>(&self, request: &Req) -> Result<Option<Option<X::Key>>, BoxError>
    where
        X: KeyExtractor<Req>,
    {
        match self.keys.extract(request) {
            Some(key) => Ok(Some(Some(key))),
            None => match self.missing_key {
                MissingKey::Reject => Err(self.key_missing::<Req>(self.clock.now())),
                MissingKey::Allow => Ok(None),
                MissingKey::Shared => Ok(Some(None)),
            },
        }
    }

    /// The cost of `request`.
    #[cfg(feature = "redis")]
    pub(crate) fn cost_of<Req>(&self, request: &Req) -> u64
    where
        W: Cost<Req>,
    {
        u64::from(self.costs.cost(request))
    }

    /// The refusal of a request without a key at `now`, with its event and
    /// the extractor's hint.
    #[cold]
    fn key_missing<Req>(&self, now: Instant) -> BoxError
    where
        X: KeyExtractor<Req>,
    {
        let hint = self.keys.missing_hint();
        if self.observer.is_active() {
            self.observer.emit(now, EventKind::KeyMissing { hint });
        }
        let error = KeyMissing::new(self.observer.name().clone());
        match hint {
            Some(hint) => error.hint(hint).into(),
            None => error.into(),
        }
    }

    /// The refusal of a request of `cost` at `now`, with its event.
    #[cold]
    pub(crate) fn refusal(&self, now: Instant, cost: u64, denied: Denied) -> BoxError {
        self.refused.fetch_add(1, Ordering::Relaxed);
        let name = self.observer.name().clone();
        match denied {
            Denied::Wait(wait) => {
                let wait = Some(Duration::from_nanos(wait));
                self.emit_rejected(now, wait);
                RateLimited::new(name, wait).into()
            }
            Denied::Never => Unsatisfiable::new(name, cost, self.algorithm().capacity()).into(),
        }
    }

    fn emit_rejected(&self, now: Instant, retry_after: Option<Duration>) {
        if self.observer.is_active() {
            self.observer.emit(
                now,
                EventKind::Rejected {
                    kind: RejectionKind::RateLimited,
                    retry_after,
                },
            );
        }
    }

    /// The answer to `question` now, leaving the limit as it is: of the
    /// shared limit, or of `key` in a keyed one (the keyless requests'
    /// limit when `None`).
    pub(crate) fn ask<K: Hash + ?Sized, Q: Question>(
        &self,
        key: Option<&K>,
        question: &Q,
    ) -> Q::Answer {
        let now = self.clock.now().as_nanos();
        match &self.store {
            Store::Bucket(bucket) => {
                let (bucket, tat) = bucket.read();
                question.ask(&bucket, &tat, now)
            }
            Store::Locked(locked) => {
                let (algorithm, state) = &*lock(locked);
                question.ask(algorithm, state, now)
            }
            Store::Keyed(keyed) => {
                let key = key.map_or(keyed.keyless(), |key| keyed.hash(key));
                keyed.ask(key, now, question)
            }
        }
    }

    /// Requests refused so far: over the limit, or costing more than it
    /// ever admits (not those refused for want of a key).
    pub(crate) fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    /// How many keys a keyed limit tracks (0 for a shared one).
    pub(crate) fn tracked_keys(&self) -> usize {
        match &self.store {
            Store::Keyed(keyed) => keyed.len(),
            Store::Bucket(_) | Store::Locked(_) => 0,
        }
    }

    /// The algorithm as configured now.
    pub(crate) fn algorithm(&self) -> Algorithm {
        lock(&self.current).algorithm
    }

    /// The limit as given now.
    pub(crate) fn limit(&self) -> Limit {
        lock(&self.current).config.limit
    }

    /// Changes the limit's numbers to `limit`, checked as the builder checks
    /// them, keeping what the limit remembers (see
    /// [`RateLimitLayer::set_limit`](super::RateLimitLayer::set_limit));
    /// emits an event per number changed.
    pub(crate) fn reconfigure(&self, limit: Limit) -> Result<(), ConfigError> {
        let old = self.change(limit)?;
        self.observer
            .changes(self.clock.now(), old.numbers(), limit.numbers());
        Ok(())
    }

    /// [`reconfigure`](Self::reconfigure) without the events: the limit it
    /// replaced.
    pub(crate) fn change(&self, limit: Limit) -> Result<Limit, ConfigError> {
        let mut current = lock(&self.current);
        current.config.limit.same_kind(limit)?;
        let config = Config {
            limit,
            ..current.config.clone()
        };
        let algorithm = config.algorithm(current.keyed, current.weighted)?;
        let now = self.clock.now();
        match &self.store {
            Store::Bucket(bucket) => match algorithm {
                Algorithm::TokenBucket(into) => bucket.set(into, now.as_nanos()),
                _ => unreachable!("a token bucket stays one"),
            },
            Store::Locked(locked) => {
                let (from, state) = &mut *lock(locked);
                from.carry(&algorithm, state, now.as_nanos());
                *from = algorithm;
            }
            Store::Keyed(keyed) => keyed.reconfigure(algorithm, now.as_nanos()),
        }
        let old = std::mem::replace(&mut current.config.limit, limit);
        current.algorithm = algorithm;
        Ok(old)
    }

    pub(crate) fn observer(&self) -> &Observer {
        &self.observer
    }
}

impl<X, W, C> fmt::Debug for Shared<X, W, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimiter")
            .field("name", self.observer.name())
            .field("algorithm", &lock(&self.current).algorithm)
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}

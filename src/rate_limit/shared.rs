//! The state every service and clone made by one layer shares, and the one
//! decision the service asks of it.

use std::{fmt, hash::Hash, time::Duration};

use tower::BoxError;

use super::{
    bucket_cell::BucketCell,
    config::{Config, Limit, MissingKey, Mode},
    core::{Algorithm, Denied, Question, Rule, State},
    keyed::Keyed,
    leaky_bucket::Admitted,
    queued::{Key, Queues, Ticket},
    request::{Cost, KeyExtractor},
};
use crate::{
    clock::{Clock, Instant},
    error::{ConfigError, KeyMissing, RateLimited, RejectionKind, Unsatisfiable},
    observe::{EventKind, Observer},
    sync::{Arc, AtomicU64, CachePadded, Mutex, Ordering, lock},
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
    /// A leaky bucket, shared or keyed: its waiters reach it from their
    /// response futures.
    Queued(Arc<Queues>),
}

/// What the limiter says of a request.
pub(crate) enum Admission {
    /// Go now.
    Now,
    /// Capacity is reserved: go at this instant.
    At(Instant),
    /// Wait in a leaky bucket's queue for a slot. (Boxed: the common
    /// answers stay small, and cheap to return.)
    Queued(Box<(Key, Admitted)>),
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
        let table = keyed.then(|| Keyed::new(algorithm, config.max_keys, config.shards));
        let store = match (algorithm, table) {
            (Algorithm::LeakyBucket(bucket), table) => {
                Store::Queued(Arc::new(Queues::new(bucket, table)))
            }
            (_, Some(table)) => Store::Keyed(table),
            (Algorithm::TokenBucket(bucket), None) => {
                Store::Bucket(CachePadded(BucketCell::new(bucket)))
            }
            (_, None) => Store::Locked(Mutex::new((algorithm, algorithm.fresh()))),
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
            max_wait: config.max_wait(),
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
    /// (Inlined always, as is the leaky bucket's part: left to itself, the
    /// compiler kept either out of line, a call more on every request.)
    #[inline(always)]
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
            Store::Keyed(keyed) => match self.key(keyed, request, now) {
                Ok(key) => keyed.acquire(key, now.as_nanos(), cost, self.max_wait),
                Err(admission) => return admission,
            },
            Store::Queued(queues) => return self.enqueue(queues, request, now, cost),
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

    /// The hash of `request`'s key in `keyed`, or what to do without one.
    #[inline]
    fn key<Req>(&self, keyed: &Keyed, request: &Req, now: Instant) -> Result<u64, Admission>
    where
        X: KeyExtractor<Req>,
    {
        match self.keys.extract(request) {
            Some(key) => Ok(keyed.hash(&key)),
            None => match self.missing_key {
                MissingKey::Reject => Err(Admission::Refused(self.key_missing::<Req>(now))),
                MissingKey::Allow => Err(Admission::Now),
                MissingKey::Shared => Ok(keyed.keyless()),
            },
        }
    }

    /// Decides `request` of `cost` at `now` for the leaky bucket of
    /// `queues`: released now, queued for its slot, or refused.
    #[inline(always)]
    fn enqueue<Req>(&self, queues: &Queues, request: &Req, now: Instant, cost: u64) -> Admission
    where
        X: KeyExtractor<Req>,
    {
        let key = match queues {
            Queues::Keyed(keyed) => match self.key(keyed, request, now) {
                Ok(key) => Key::Keyed(key),
                Err(admission) => return admission,
            },
            Queues::Shared(_) => Key::Shared,
        };
        match queues.enqueue(key, now.as_nanos(), cost, self.max_wait) {
            Ok(Admitted::Now) => {
                self.emit_let_through(now);
                Admission::Now
            }
            Ok(admitted) => {
                self.emit_let_through(now);
                Admission::Queued(Box::new((key, admitted)))
            }
            Err(denied) => Admission::Refused(self.refusal(now, cost, denied)),
        }
    }

    /// The ticket of a request `admitted` to wait in the leaky bucket for
    /// `key`.
    pub(crate) fn ticket(&self, key: Key, admitted: Admitted) -> Ticket<C> {
        let Store::Queued(queues) = &self.store else {
            unreachable!("only a leaky bucket queues")
        };
        Ticket::new(queues, self.clock.clone(), key, admitted)
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
            Store::Keyed(_) | Store::Queued(_) => {
                unreachable!(
                    "backpressure is refused for keyed limits and leaky buckets when built"
                )
            }
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
        self.store.ask(key, self.clock.now().as_nanos(), question)
    }

    /// Requests refused so far: over the limit, or costing more than it
    /// ever admits (not those refused for want of a key).
    pub(crate) fn refused(&self) -> u64 {
        self.refused.load(Ordering::Relaxed)
    }

    /// How many keys a keyed limit tracks (0 for a shared one).
    pub(crate) fn tracked_keys(&self) -> usize {
        self.store.tracked_keys()
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
        self.store.change(algorithm, self.clock.now().as_nanos());
        let old = std::mem::replace(&mut current.config.limit, limit);
        current.algorithm = algorithm;
        Ok(old)
    }

    pub(crate) fn observer(&self) -> &Observer {
        &self.observer
    }
}

impl Store {
    /// See [`Shared::ask`].
    fn ask<K: Hash + ?Sized, Q: Question>(
        &self,
        key: Option<&K>,
        now: u64,
        question: &Q,
    ) -> Q::Answer {
        match self {
            Store::Bucket(bucket) => {
                let (bucket, tat) = bucket.read();
                question.ask(&bucket, &tat, now)
            }
            Store::Locked(locked) => {
                let (algorithm, state) = &*lock(locked);
                question.ask(algorithm, state, now)
            }
            Store::Keyed(keyed) => keyed.ask(key, now, question),
            Store::Queued(queues) => queues.ask(key, now, question),
        }
    }

    fn tracked_keys(&self) -> usize {
        match self {
            Store::Keyed(keyed) => keyed.len(),
            Store::Queued(queues) => queues.tracked_keys(),
            Store::Bucket(_) | Store::Locked(_) => 0,
        }
    }

    /// Makes `algorithm` the limit at `now`, carrying every state.
    fn change(&self, algorithm: Algorithm, now: u64) {
        match self {
            Store::Bucket(bucket) => match algorithm {
                Algorithm::TokenBucket(into) => bucket.set(into, now),
                _ => unreachable!("a token bucket stays one"),
            },
            Store::Locked(locked) => {
                let (from, state) = &mut *lock(locked);
                from.carry(&algorithm, state, now);
                *from = algorithm;
            }
            Store::Keyed(keyed) => keyed.reconfigure(algorithm, now),
            Store::Queued(queues) => queues.change(algorithm, now),
        }
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

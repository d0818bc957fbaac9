//! The state every service and clone made by one layer shares, and the one
//! decision the service asks of it.

use std::{fmt, hash::Hash, time::Duration};

use tower::BoxError;

use super::{
    config::{Config, MissingKey, Mode},
    core::{Algorithm, Denied, Limit, Question, State},
    keyed::Keyed,
    request::{Cost, KeyExtractor},
    token_bucket::TokenBucket,
};
use crate::{
    clock::{Clock, Instant},
    error::{KeyMissing, RateLimited, RejectionKind, Unsatisfiable},
    observe::{EventKind, Observer},
    sync::{AtomicU64, CachePadded, Mutex, Ordering, lock},
};

pub(crate) struct Shared<X, W, C> {
    algorithm: Algorithm,
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
}

/// Where the limit's state lives.
enum Store {
    /// A shared token bucket: its TAT, in one atomic word.
    Bucket(TokenBucket, CachePadded<AtomicU64>),
    /// A shared window or log.
    Locked(Mutex<State>),
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
    pub(crate) fn new(
        config: &Config,
        algorithm: Algorithm,
        keyed: bool,
        keys: X,
        costs: W,
        clock: C,
        observer: Observer,
    ) -> Self {
        let store = match algorithm {
            _ if keyed => Store::Keyed(Keyed::new(algorithm, config.max_keys, config.shards)),
            Algorithm::TokenBucket(bucket) => Store::Bucket(bucket, CachePadded(AtomicU64::new(0))),
            _ => Store::Locked(Mutex::new(algorithm.fresh())),
        };
        Shared {
            algorithm,
            store,
            mode: config.mode,
            max_wait: config.mode.max_wait(),
            missing_key: config.missing_key,
            keys,
            costs,
            clock,
            observed: observer.is_active(),
            observer,
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
            Store::Bucket(bucket, tat) => take(bucket, tat, now.as_nanos(), cost, self.max_wait),
            Store::Locked(state) => {
                self.algorithm
                    .acquire(&mut lock(state), now.as_nanos(), cost, self.max_wait)
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
            Store::Bucket(bucket, tat) => take(bucket, tat, now.as_nanos(), 1, 0),
            Store::Locked(state) => self
                .algorithm
                .acquire(&mut lock(state), now.as_nanos(), 1, 0),
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
        let name = self.observer.name().clone();
        match denied {
            Denied::Wait(wait) => {
                let wait = Some(Duration::from_nanos(wait));
                self.emit_rejected(now, wait);
                RateLimited::new(name, wait).into()
            }
            Denied::Never => Unsatisfiable::new(name, cost, self.algorithm.capacity()).into(),
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
    /// limit when `None`); with the instant it was asked at, in nanoseconds.
    pub(crate) fn ask<K: Hash + ?Sized, Q: Question>(
        &self,
        key: Option<&K>,
        question: &Q,
    ) -> (Q::Answer, u64) {
        let now = self.clock.now().as_nanos();
        let answer = match &self.store {
            Store::Bucket(bucket, tat) => question.ask(bucket, &tat.load(Ordering::Relaxed), now),
            Store::Locked(state) => question.ask(&self.algorithm, &lock(state), now),
            Store::Keyed(keyed) => {
                let key = key.map_or(keyed.keyless(), |key| keyed.hash(key));
                keyed.ask(key, now, question)
            }
        };
        (answer, now)
    }

    /// How many keys a keyed limit tracks (0 for a shared one).
    pub(crate) fn tracked_keys(&self) -> usize {
        match &self.store {
            Store::Keyed(keyed) => keyed.len(),
            Store::Bucket(..) | Store::Locked(_) => 0,
        }
    }

    pub(crate) fn algorithm(&self) -> &Algorithm {
        &self.algorithm
    }

    pub(crate) fn observer(&self) -> &Observer {
        &self.observer
    }
}

/// Takes `cost` tokens of a shared bucket: compare-and-swap the TAT, and on
/// a refusal return without writing.
#[inline]
fn take(
    bucket: &TokenBucket,
    tat: &AtomicU64,
    now: u64,
    cost: u64,
    max_wait: u64,
) -> Result<u64, Denied> {
    let mut current = tat.load(Ordering::Relaxed);
    loop {
        let (new, due) = bucket.decide(current, now, cost, max_wait)?;
        match tat.compare_exchange_weak(current, new, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return Ok(due),
            Err(actual) => current = actual,
        }
    }
}

impl<X, W, C> fmt::Debug for Shared<X, W, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimiter")
            .field("name", self.observer.name())
            .field("algorithm", &self.algorithm)
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}

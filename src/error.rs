//! The errors palisade's layers originate, and the configuration error.
//!
//! Layers return [`tower::BoxError`], tower's convention. When a layer refuses
//! a call itself — without calling the service it wraps — the error is one of
//! the small *rejection* types below, each its own type so that
//! `err.is::<CircuitOpen>()` tells them apart. Each carries the
//! [`LayerName`] of the layer that refused and, where the layer knows it, how
//! long to wait before trying again ([`retry_after`](CircuitOpen::retry_after)).
//!
//! Errors of the wrapped service pass through unchanged. A rejection wrapped by
//! another layer's error is still found by [`Rejection::find`], which walks the
//! [`source`](std::error::Error::source) chain.
//!
//! Invalid configuration is refused when a layer is built, with a
//! [`ConfigError`] that names the field and the rule it broke — never with a
//! panic at request time.
//!
//! # Examples
//!
//! ```
//! use std::time::Duration;
//! use palisade::error::{CircuitOpen, Rejection, RejectionKind};
//!
//! let err: tower::BoxError = CircuitOpen::new("payments", Some(Duration::from_secs(5))).into();
//! assert!(err.is::<CircuitOpen>());
//!
//! let rejection = Rejection::find(&*err).expect("a palisade rejection");
//! assert_eq!(rejection.kind(), RejectionKind::CircuitOpen);
//! assert_eq!(rejection.name(), "payments");
//! assert_eq!(rejection.retry_after(), Some(Duration::from_secs(5)));
//! ```

use std::{error::Error, fmt, sync::LazyLock, time::Duration};

use crate::LayerName;

macro_rules! rejection {
    (
        $(#[$doc:meta])*
        $ty:ident, $kind:ident, $before:literal, $after:literal
    ) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq)]
        pub struct $ty {
            name: LayerName,
            retry_after: Option<Duration>,
        }

        impl $ty {
            /// The rejection made by the layer called `name`, with the time to
            /// wait before trying again if the layer knows it.
            ///
            /// ```
            #[doc = concat!("let err = palisade::error::", stringify!($ty), "::new(\"api\", None);")]
            /// assert_eq!(err.name(), "api");
            /// ```
            pub fn new(name: impl Into<LayerName>, retry_after: Option<Duration>) -> $ty {
                $ty { name: name.into(), retry_after }
            }

            /// The name of the layer that refused the call.
            ///
            /// ```
            #[doc = concat!("let err = palisade::error::", stringify!($ty), "::new(\"db\", None);")]
            /// assert_eq!(err.name(), "db");
            /// ```
            pub fn name(&self) -> &str {
                &self.name
            }

            /// How long until a call is expected to be let through again, when
            /// the layer knows.
            ///
            /// ```
            /// use std::time::Duration;
            #[doc = concat!("let err = palisade::error::", stringify!($ty), "::new(\"db\", Some(Duration::from_secs(2)));")]
            /// assert_eq!(err.retry_after(), Some(Duration::from_secs(2)));
            /// ```
            pub fn retry_after(&self) -> Option<Duration> {
                self.retry_after
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!($before, " `{}` ", $after), self.name)?;
                match self.retry_after {
                    Some(wait) => write!(f, "; retry after {wait:?}"),
                    None => Ok(()),
                }
            }
        }

        impl Error for $ty {}

        impl<'a> From<&'a $ty> for Rejection<'a> {
            fn from(rejection: &'a $ty) -> Rejection<'a> {
                Rejection::$kind(rejection)
            }
        }
    };
}

rejection! {
    /// A circuit breaker is open (or forced open) and refused the call.
    ///
    /// `retry_after` is the time left until the breaker lets a probe through.
    ///
    /// ```
    /// use std::time::Duration;
    /// use palisade::error::CircuitOpen;
    ///
    /// let err = CircuitOpen::new("payments", Some(Duration::from_millis(1500)));
    /// assert_eq!(err.to_string(), "circuit breaker `payments` is open; retry after 1.5s");
    /// assert_eq!(err.name(), "payments");
    /// assert_eq!(err.retry_after(), Some(Duration::from_millis(1500)));
    /// ```
    CircuitOpen, CircuitOpen, "circuit breaker", "is open"
}

rejection! {
    /// A rate limiter refused the call: over the limit.
    ///
    /// `retry_after` is the exact time until enough capacity exists.
    ///
    /// ```
    /// use std::time::Duration;
    /// use palisade::error::RateLimited;
    ///
    /// let err = RateLimited::new("api", Some(Duration::from_millis(20)));
    /// assert_eq!(err.to_string(), "rate limiter `api` is over its limit; retry after 20ms");
    /// ```
    RateLimited, RateLimited, "rate limiter", "is over its limit"
}

rejection! {
    /// A bulkhead refused the call: all its permits are in use and its waiting
    /// queue, if any, is full or the wait ran out.
    ///
    /// ```
    /// use palisade::error::BulkheadFull;
    ///
    /// let err = BulkheadFull::new("db", None);
    /// assert_eq!(err.to_string(), "bulkhead `db` is full");
    /// assert_eq!(err.retry_after(), None);
    /// ```
    BulkheadFull, BulkheadFull, "bulkhead", "is full"
}

rejection! {
    /// A timeout elapsed before the call completed; the call was dropped.
    ///
    /// ```
    /// use palisade::error::Elapsed;
    ///
    /// let err = Elapsed::new("upstream", None);
    /// assert_eq!(err.to_string(), "timeout `upstream` elapsed");
    /// ```
    Elapsed, Elapsed, "timeout", "elapsed"
}

rejection! {
    /// A timeout reached the **request's own deadline** — one the request
    /// asked for (a gRPC client's `grpc-timeout`, the time left before a
    /// [`Deadline`](crate::timeout::TimeoutFor)) that was shorter than the
    /// timeout layer's own — before the call completed; the call was
    /// dropped.
    ///
    /// It is the caller's choice, not a sign of the dependency's health: a
    /// circuit breaker ignores it unless told to count it
    /// ([`count_request_deadlines`](crate::circuit_breaker::CircuitBreakerBuilder::count_request_deadlines)),
    /// and the retry does not retry it (the request's time is up). A timeout
    /// that fires at the layer's own duration is an [`Elapsed`].
    ///
    /// ```
    /// use palisade::error::DeadlineExceeded;
    ///
    /// let err = DeadlineExceeded::new("upstream", None);
    /// assert_eq!(err.to_string(), "timeout `upstream` reached the request's deadline");
    /// ```
    DeadlineExceeded, DeadlineExceeded, "timeout", "reached the request's deadline"
}

rejection! {
    /// A layer refused the call because it, or what it protects, is
    /// overloaded: the call was not made. palisade reads tower's
    /// [`Overloaded`](tower::load_shed::error::Overloaded) (from `LoadShed`)
    /// as this rejection, named `tower::load_shed`.
    ///
    /// # For other crates
    ///
    /// A layer of another crate marks its refusals as palisade rejections
    /// by returning this error — or, to keep an error type of its own, by
    /// holding one and returning it from
    /// [`source`](std::error::Error::source), where [`Rejection::find`]
    /// finds it. Either way palisade's circuit breaker ignores the refusal,
    /// its retry does not retry it (by default) and `HttpAnswerLayer`
    /// answers `503` with the `retry_after` given.
    ///
    /// ```
    /// use std::{error::Error, fmt, sync::LazyLock, time::Duration};
    /// use palisade::error::{Overloaded, Rejection, RejectionKind};
    ///
    /// #[derive(Debug)]
    /// struct QueueFull(Overloaded);
    /// impl fmt::Display for QueueFull {
    ///     fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result { f.write_str("queue full") }
    /// }
    /// impl Error for QueueFull {
    ///     fn source(&self) -> Option<&(dyn Error + 'static)> { Some(&self.0) }
    /// }
    ///
    /// let err: tower::BoxError = QueueFull(Overloaded::new("jobs", Some(Duration::from_secs(1)))).into();
    /// let rejection = Rejection::find(&*err).unwrap();
    /// assert_eq!(rejection.kind(), RejectionKind::Overloaded);
    /// assert_eq!(rejection.retry_after(), Some(Duration::from_secs(1)));
    /// assert_eq!(Overloaded::new("jobs", None).to_string(), "layer `jobs` is overloaded");
    /// ```
    Overloaded, Overloaded, "layer", "is overloaded"
}

rejection! {
    /// A rate limiter whose state lives in a shared store (Redis) could not
    /// reach it in time, and is set to refuse rather than guess
    /// (`Unavailable::Closed`, feature `redis`):
    /// the limit is unknown, not exceeded, so it answers `503`, not `429`.
    /// `retry_after` is when the store is next tried, when known.
    ///
    /// ```
    /// use palisade::error::StoreUnavailable;
    ///
    /// let err = StoreUnavailable::new("api", None);
    /// assert_eq!(err.to_string(), "rate limiter `api` cannot reach its store");
    /// ```
    StoreUnavailable, StoreUnavailable, "rate limiter", "cannot reach its store"
}

rejection! {
    /// A retry budget had nothing left to spend on a retry.
    ///
    /// ```
    /// use palisade::error::BudgetExhausted;
    ///
    /// let err = BudgetExhausted::new("client", None);
    /// assert_eq!(err.to_string(), "retry budget `client` is exhausted");
    /// ```
    BudgetExhausted, BudgetExhausted, "retry budget", "is exhausted"
}

/// Any of palisade's rejections, borrowed from an error.
///
/// # Examples
///
/// Telling rejections apart in an error handler (an axum `HandleErrorLayer`,
/// a fallback), whatever wraps them:
///
/// ```
/// use std::time::Duration;
/// use palisade::error::{RateLimited, Rejection};
///
/// fn status(err: &tower::BoxError) -> u16 {
///     match Rejection::find(&**err) {
///         Some(Rejection::RateLimited(_)) => 429,
///         Some(Rejection::Elapsed(_)) => 504,
///         Some(_) => 503,
///         None => 500,
///     }
/// }
///
/// assert_eq!(status(&RateLimited::new("api", None).into()), 429);
/// assert_eq!(status(&"boom".into()), 500);
/// ```
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rejection<'a> {
    /// See [`CircuitOpen`].
    CircuitOpen(&'a CircuitOpen),
    /// See [`RateLimited`].
    RateLimited(&'a RateLimited),
    /// See [`BulkheadFull`].
    BulkheadFull(&'a BulkheadFull),
    /// See [`Elapsed`].
    Elapsed(&'a Elapsed),
    /// See [`BudgetExhausted`].
    BudgetExhausted(&'a BudgetExhausted),
    /// See [`DeadlineExceeded`].
    DeadlineExceeded(&'a DeadlineExceeded),
    /// See [`Overloaded`]; also tower's `Overloaded`.
    Overloaded(&'a Overloaded),
    /// See [`StoreUnavailable`].
    StoreUnavailable(&'a StoreUnavailable),
}

/// What tower's own refusals and timeouts read as.
static TOWER_OVERLOADED: LazyLock<Overloaded> =
    LazyLock::new(|| Overloaded::new("tower::load_shed", None));
static TOWER_ELAPSED: LazyLock<Elapsed> = LazyLock::new(|| Elapsed::new("tower::timeout", None));

impl<'a> Rejection<'a> {
    /// The first palisade rejection in `err` or its chain of
    /// [`source`](Error::source)s.
    ///
    /// ```
    /// use palisade::error::{BulkheadFull, Rejection};
    ///
    /// let err: tower::BoxError = BulkheadFull::new("db", None).into();
    /// assert!(matches!(Rejection::find(&*err), Some(Rejection::BulkheadFull(_))));
    /// ```
    pub fn find(err: &'a (dyn Error + 'static)) -> Option<Rejection<'a>> {
        chain(err).find_map(Rejection::of)
    }

    /// `err` itself as a rejection, without looking at its sources.
    ///
    /// tower's own errors are read as rejections too: `LoadShed`'s
    /// `Overloaded` as [`Overloaded`] (named `tower::load_shed`) and
    /// `Timeout`'s `Elapsed` as [`Elapsed`] (named `tower::timeout`).
    ///
    /// ```
    /// use palisade::error::{Elapsed, Rejection, RejectionKind};
    /// let err = Elapsed::new("t", None);
    /// assert!(Rejection::of(&err).is_some());
    ///
    /// let shed = tower::load_shed::error::Overloaded::new();
    /// assert_eq!(Rejection::of(&shed).unwrap().kind(), RejectionKind::Overloaded);
    /// ```
    pub fn of(err: &'a (dyn Error + 'static)) -> Option<Rejection<'a>> {
        if let Some(r) = err.downcast_ref::<CircuitOpen>() {
            Some(r.into())
        } else if let Some(r) = err.downcast_ref::<RateLimited>() {
            Some(r.into())
        } else if let Some(r) = err.downcast_ref::<BulkheadFull>() {
            Some(r.into())
        } else if let Some(r) = err.downcast_ref::<Elapsed>() {
            Some(r.into())
        } else if let Some(r) = err.downcast_ref::<BudgetExhausted>() {
            Some(r.into())
        } else if let Some(r) = err.downcast_ref::<DeadlineExceeded>() {
            Some(r.into())
        } else if let Some(r) = err.downcast_ref::<Overloaded>() {
            Some(r.into())
        } else if let Some(r) = err.downcast_ref::<StoreUnavailable>() {
            Some(r.into())
        } else if err.is::<tower::load_shed::error::Overloaded>() {
            Some(Rejection::Overloaded(&TOWER_OVERLOADED))
        } else if err.is::<tower::timeout::error::Elapsed>() {
            Some(Rejection::Elapsed(&TOWER_ELAPSED))
        } else {
            None
        }
    }

    /// Which kind of rejection this is.
    ///
    /// ```
    /// use palisade::error::{RateLimited, Rejection, RejectionKind};
    /// let err = RateLimited::new("api", None);
    /// assert_eq!(Rejection::from(&err).kind(), RejectionKind::RateLimited);
    /// ```
    pub fn kind(&self) -> RejectionKind {
        match self {
            Rejection::CircuitOpen(_) => RejectionKind::CircuitOpen,
            Rejection::RateLimited(_) => RejectionKind::RateLimited,
            Rejection::BulkheadFull(_) => RejectionKind::BulkheadFull,
            Rejection::Elapsed(_) => RejectionKind::Elapsed,
            Rejection::BudgetExhausted(_) => RejectionKind::BudgetExhausted,
            Rejection::DeadlineExceeded(_) => RejectionKind::DeadlineExceeded,
            Rejection::Overloaded(_) => RejectionKind::Overloaded,
            Rejection::StoreUnavailable(_) => RejectionKind::StoreUnavailable,
        }
    }

    /// The name of the layer that refused the call.
    ///
    /// ```
    /// use palisade::error::{CircuitOpen, Rejection};
    /// let err = CircuitOpen::new("payments", None);
    /// assert_eq!(Rejection::from(&err).name(), "payments");
    /// ```
    pub fn name(&self) -> &'a str {
        match *self {
            Rejection::CircuitOpen(r) => r.name(),
            Rejection::RateLimited(r) => r.name(),
            Rejection::BulkheadFull(r) => r.name(),
            Rejection::Elapsed(r) => r.name(),
            Rejection::BudgetExhausted(r) => r.name(),
            Rejection::DeadlineExceeded(r) => r.name(),
            Rejection::Overloaded(r) => r.name(),
            Rejection::StoreUnavailable(r) => r.name(),
        }
    }

    /// How long until a call is expected to be let through, when known.
    ///
    /// ```
    /// use std::time::Duration;
    /// use palisade::error::{RateLimited, Rejection};
    /// let err = RateLimited::new("api", Some(Duration::from_millis(7)));
    /// assert_eq!(Rejection::from(&err).retry_after(), Some(Duration::from_millis(7)));
    /// ```
    pub fn retry_after(&self) -> Option<Duration> {
        match *self {
            Rejection::CircuitOpen(r) => r.retry_after(),
            Rejection::RateLimited(r) => r.retry_after(),
            Rejection::BulkheadFull(r) => r.retry_after(),
            Rejection::Elapsed(r) => r.retry_after(),
            Rejection::BudgetExhausted(r) => r.retry_after(),
            Rejection::DeadlineExceeded(r) => r.retry_after(),
            Rejection::Overloaded(r) => r.retry_after(),
            Rejection::StoreUnavailable(r) => r.retry_after(),
        }
    }
}

/// The kinds of [`Rejection`], for labels and matching without a borrow.
///
/// # Examples
///
/// ```
/// use palisade::error::RejectionKind;
/// assert_eq!(RejectionKind::CircuitOpen.as_str(), "circuit_open");
/// assert_eq!(RejectionKind::ALL.len(), 8);
/// ```
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RejectionKind {
    /// See [`CircuitOpen`].
    CircuitOpen,
    /// See [`RateLimited`].
    RateLimited,
    /// See [`BulkheadFull`].
    BulkheadFull,
    /// See [`Elapsed`].
    Elapsed,
    /// See [`BudgetExhausted`].
    BudgetExhausted,
    /// See [`DeadlineExceeded`].
    DeadlineExceeded,
    /// See [`Overloaded`].
    Overloaded,
    /// See [`StoreUnavailable`].
    StoreUnavailable,
}

impl RejectionKind {
    /// Every kind, in declaration order: `ALL[kind as usize] == kind`, so
    /// tables indexed by kind are arrays.
    ///
    /// ```
    /// use palisade::error::RejectionKind;
    /// for (i, kind) in RejectionKind::ALL.into_iter().enumerate() {
    ///     assert_eq!(kind as usize, i);
    /// }
    /// ```
    pub const ALL: [RejectionKind; 8] = [
        RejectionKind::CircuitOpen,
        RejectionKind::RateLimited,
        RejectionKind::BulkheadFull,
        RejectionKind::Elapsed,
        RejectionKind::BudgetExhausted,
        RejectionKind::DeadlineExceeded,
        RejectionKind::Overloaded,
        RejectionKind::StoreUnavailable,
    ];

    /// Whether this is a refusal made on the caller's side — the call was
    /// not let through to the dependency (circuit open, rate limited,
    /// bulkhead full, retry budget exhausted, overloaded) — rather than a
    /// call that was made and cut short, which a timeout ([`Elapsed`],
    /// [`DeadlineExceeded`]) is.
    ///
    /// ```
    /// use palisade::error::RejectionKind;
    /// assert!(RejectionKind::BulkheadFull.is_refusal());
    /// assert!(RejectionKind::Overloaded.is_refusal());
    /// assert!(!RejectionKind::Elapsed.is_refusal());
    /// assert!(!RejectionKind::DeadlineExceeded.is_refusal());
    /// ```
    pub const fn is_refusal(self) -> bool {
        !matches!(
            self,
            RejectionKind::Elapsed | RejectionKind::DeadlineExceeded
        )
    }

    /// Whether this says something of the dependency's health: a timeout
    /// at the layer's own duration ([`Elapsed`]) does; a refusal, or a
    /// timeout at a deadline the request chose ([`DeadlineExceeded`]),
    /// does not. What a circuit breaker counts by default.
    ///
    /// ```
    /// use palisade::error::RejectionKind;
    /// assert!(RejectionKind::Elapsed.is_dependency_failure());
    /// assert!(!RejectionKind::DeadlineExceeded.is_dependency_failure());
    /// assert!(!RejectionKind::RateLimited.is_dependency_failure());
    /// ```
    pub const fn is_dependency_failure(self) -> bool {
        matches!(self, RejectionKind::Elapsed)
    }

    /// The snake_case name used as the `kind` label of metrics and in events.
    ///
    /// ```
    /// use palisade::error::RejectionKind;
    /// assert_eq!(RejectionKind::Elapsed.as_str(), "elapsed");
    /// ```
    pub const fn as_str(self) -> &'static str {
        match self {
            RejectionKind::CircuitOpen => "circuit_open",
            RejectionKind::RateLimited => "rate_limited",
            RejectionKind::BulkheadFull => "bulkhead_full",
            RejectionKind::Elapsed => "elapsed",
            RejectionKind::BudgetExhausted => "budget_exhausted",
            RejectionKind::DeadlineExceeded => "deadline_exceeded",
            RejectionKind::Overloaded => "overloaded",
            RejectionKind::StoreUnavailable => "store_unavailable",
        }
    }
}

impl fmt::Display for RejectionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `err`, then its source, then that one's source, and so on.
fn chain<'a>(err: &'a (dyn Error + 'static)) -> impl Iterator<Item = &'a (dyn Error + 'static)> {
    std::iter::successors(Some(err), |&err| err.source())
}

/// A rate limiter refused a request whose cost exceeds what the limit can
/// ever admit at once (its burst, or its limit per window): waiting would
/// not help, so no `retry_after` is given. Not a [`Rejection`] — the request
/// itself is at fault, and retrying it is pointless.
///
/// # Examples
///
/// ```
/// use palisade::error::Unsatisfiable;
///
/// let err = Unsatisfiable::new("uploads", 500, 100);
/// assert_eq!(
///     err.to_string(),
///     "rate limiter `uploads` can never admit a request of cost 500: it admits at most 100 at once"
/// );
/// assert_eq!((err.cost(), err.capacity()), (500, 100));
/// ```
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "rate limiter `{name}` can never admit a request of cost {cost}: it admits at most {capacity} at once"
)]
pub struct Unsatisfiable {
    name: LayerName,
    cost: u64,
    capacity: u64,
}

impl Unsatisfiable {
    /// A request of `cost` refused by the rate limiter `name`, which admits
    /// at most `capacity` at once.
    ///
    /// ```
    /// let err = palisade::error::Unsatisfiable::new("api", 3, 2);
    /// assert_eq!(err.name(), "api");
    /// ```
    pub fn new(name: impl Into<LayerName>, cost: u64, capacity: u64) -> Unsatisfiable {
        Unsatisfiable {
            name: name.into(),
            cost,
            capacity,
        }
    }

    /// The name of the rate limiter.
    ///
    /// ```
    /// assert_eq!(palisade::error::Unsatisfiable::new("api", 3, 2).name(), "api");
    /// ```
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The request's cost.
    ///
    /// ```
    /// assert_eq!(palisade::error::Unsatisfiable::new("api", 3, 2).cost(), 3);
    /// ```
    pub fn cost(&self) -> u64 {
        self.cost
    }

    /// The most the limiter admits at once.
    ///
    /// ```
    /// assert_eq!(palisade::error::Unsatisfiable::new("api", 3, 2).capacity(), 2);
    /// ```
    pub fn capacity(&self) -> u64 {
        self.capacity
    }
}

/// A keyed rate limiter found no key in a request and is configured to
/// refuse such requests ([`MissingKey::Reject`](crate::rate_limit::MissingKey::Reject),
/// the default). Usually a set-up problem — say, a peer-address key on a
/// server that does not record peer addresses — so it is not a
/// [`Rejection`]; when the key extractor knows which step is missing
/// ([`KeyExtractor::missing_hint`](crate::rate_limit::KeyExtractor::missing_hint)),
/// the error says it.
///
/// # Examples
///
/// ```
/// use palisade::error::KeyMissing;
///
/// let err = KeyMissing::new("per_client");
/// assert_eq!(err.to_string(), "rate limiter `per_client` found no key in the request");
/// assert_eq!(err.name(), "per_client");
///
/// let err = KeyMissing::new("per_client").hint("serve with connect info");
/// assert_eq!(
///     err.to_string(),
///     "rate limiter `per_client` found no key in the request: serve with connect info"
/// );
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyMissing {
    name: LayerName,
    hint: Option<&'static str>,
}

impl KeyMissing {
    /// The refusal of the rate limiter `name`.
    ///
    /// ```
    /// let _ = palisade::error::KeyMissing::new("api");
    /// ```
    pub fn new(name: impl Into<LayerName>) -> KeyMissing {
        KeyMissing {
            name: name.into(),
            hint: None,
        }
    }

    /// Says why the request has no key.
    ///
    /// ```
    /// let err = palisade::error::KeyMissing::new("api").hint("no tenant header");
    /// assert_eq!(err.why(), Some("no tenant header"));
    /// ```
    pub fn hint(mut self, hint: &'static str) -> KeyMissing {
        self.hint = Some(hint);
        self
    }

    /// The name of the rate limiter.
    ///
    /// ```
    /// assert_eq!(palisade::error::KeyMissing::new("api").name(), "api");
    /// ```
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Why the request has no key, when the key extractor knows.
    ///
    /// ```
    /// assert_eq!(palisade::error::KeyMissing::new("api").why(), None);
    /// ```
    pub fn why(&self) -> Option<&'static str> {
        self.hint
    }
}

impl fmt::Display for KeyMissing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "rate limiter `{}` found no key in the request",
            self.name
        )?;
        match self.hint {
            Some(hint) => write!(f, ": {hint}"),
            None => Ok(()),
        }
    }
}

impl Error for KeyMissing {}

/// A layer's configuration broke a rule: the layer was not built.
///
/// Names the layer, the field and the rule, so the message says what to fix.
///
/// # Examples
///
/// ```
/// use palisade::error::ConfigError;
///
/// let err = ConfigError::new("circuit_breaker", "failure_rate", "must be in (0, 1], got 1.5");
/// assert_eq!(
///     err.to_string(),
///     "invalid circuit_breaker config: `failure_rate` must be in (0, 1], got 1.5"
/// );
/// assert_eq!(err.field(), "failure_rate");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid {layer} config: `{field}` {rule}")]
pub struct ConfigError {
    layer: &'static str,
    field: &'static str,
    rule: String,
}

impl ConfigError {
    /// The error for `field` of `layer`'s config, which broke `rule` (phrased to
    /// follow the field name: "must be at least 1, got 0").
    ///
    /// ```
    /// use palisade::error::ConfigError;
    /// let err = ConfigError::new("bulkhead", "max_concurrent", "must be at least 1, got 0");
    /// assert_eq!(err.rule(), "must be at least 1, got 0");
    /// ```
    pub fn new(layer: &'static str, field: &'static str, rule: impl Into<String>) -> ConfigError {
        ConfigError {
            layer,
            field,
            rule: rule.into(),
        }
    }

    /// The kind of layer whose config was refused, such as `"retry"`.
    ///
    /// ```
    /// let err = palisade::error::ConfigError::new("retry", "max_attempts", "must be at least 1, got 0");
    /// assert_eq!(err.layer(), "retry");
    /// ```
    pub fn layer(&self) -> &'static str {
        self.layer
    }

    /// The field that broke the rule.
    ///
    /// ```
    /// let err = palisade::error::ConfigError::new("retry", "max_attempts", "must be at least 1, got 0");
    /// assert_eq!(err.field(), "max_attempts");
    /// ```
    pub fn field(&self) -> &'static str {
        self.field
    }

    /// The rule, as a phrase that follows the field name.
    ///
    /// ```
    /// let err = palisade::error::ConfigError::new("retry", "max_attempts", "must be at least 1, got 0");
    /// assert_eq!(err.rule(), "must be at least 1, got 0");
    /// ```
    pub fn rule(&self) -> &str {
        &self.rule
    }
}

/// The rules every layer's config shares, phrased for [`ConfigError`].
pub(crate) mod check {
    use std::time::Duration;

    use super::ConfigError;

    /// The most memory a configuration may make a layer hold: beyond it,
    /// a number is surely a mistake, and building the layer would take the
    /// process down instead of refusing.
    pub(crate) const MAX_MEMORY: u128 = 1 << 30;

    /// The longest window, period or wait: 100 years keeps every sum of an
    /// instant and a duration in range.
    pub(crate) const LONGEST: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

    /// `bytes` for a person: `1.5 GiB`, `640 KiB`, `12 B`.
    pub(crate) fn bytes(bytes: u128) -> String {
        const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
        let mut value = bytes as f64;
        let mut unit = 0;
        while value >= 1024.0 && unit + 1 < UNITS.len() {
            value /= 1024.0;
            unit += 1;
        }
        if unit == 0 {
            format!("{bytes} B")
        } else {
            format!("{value:.1} {}", UNITS[unit])
        }
    }

    /// `duration` must be at most [`LONGEST`].
    pub(crate) fn at_most_longest(
        layer: &'static str,
        field: &'static str,
        duration: Duration,
    ) -> Result<(), ConfigError> {
        if duration > LONGEST {
            return Err(ConfigError::new(
                layer,
                field,
                format!("must be at most 100 years, got {duration:?}"),
            ));
        }
        Ok(())
    }

    /// `duration` must not be zero.
    pub(crate) fn positive(
        layer: &'static str,
        field: &'static str,
        duration: Duration,
    ) -> Result<(), ConfigError> {
        if duration.is_zero() {
            return Err(ConfigError::new(layer, field, "must be greater than zero"));
        }
        Ok(())
    }

    /// `n` must be at least 1.
    pub(crate) fn at_least_one(
        layer: &'static str,
        field: &'static str,
        n: u32,
    ) -> Result<(), ConfigError> {
        if n == 0 {
            return Err(ConfigError::new(layer, field, "must be at least 1, got 0"));
        }
        Ok(())
    }

    /// `rate` must lie in (0, 1] (which also refuses NaN).
    pub(crate) fn rate(
        layer: &'static str,
        field: &'static str,
        rate: f64,
    ) -> Result<(), ConfigError> {
        if !(rate > 0.0 && rate <= 1.0) {
            return Err(ConfigError::new(
                layer,
                field,
                format!("must be in (0, 1], got {rate}"),
            ));
        }
        Ok(())
    }
}

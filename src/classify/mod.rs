//! What counts as a success, a failure, or neither.
//!
//! Every layer that reacts to how calls turn out — the circuit breaker's
//! failure rate, the retry layer's decision to try again, the fallback's choice
//! to step in — asks a [`Classify`] about the call's
//! `Result<Response, Error>` and gets an [`Outcome`]:
//!
//! - [`Outcome::Success`] and [`Outcome::Failure`] count as you would expect;
//! - [`Outcome::Ignored`] counts as neither (a client that hung up, a request
//!   the caller cancelled, a `404` that says nothing about the dependency's
//!   health).
//!
//! The default, [`ErrorsAsFailures`], calls every `Err` a failure and every
//! `Ok` a success. Any closure `Fn(&Result<Res, E>) -> Outcome` is a
//! classifier too. With the `http` feature, [`ServerErrorsAsFailures`] and
//! [`StatusInRangeAsFailures`] classify by status code; with `grpc`,
//! [`GrpcErrorsAsFailures`] classifies by the `grpc-status` header. Their
//! status logic is tower-http's [`classify`](tower_http::classify) module.
//!
//! # Examples
//!
//! ```
//! use palisade::classify::{Classify, ErrorsAsFailures, Outcome};
//!
//! let default = ErrorsAsFailures;
//! assert_eq!(default.classify(&Ok::<u32, &str>(1)), Outcome::Success);
//! assert_eq!(default.classify(&Err::<u32, _>("refused")), Outcome::Failure);
//!
//! // Responses above 499 are failures, an error saying "cancelled" is ignored.
//! let custom = |result: &Result<u16, String>| match result {
//!     Ok(status) if *status >= 500 => Outcome::Failure,
//!     Ok(_) => Outcome::Success,
//!     Err(e) if e == "cancelled" => Outcome::Ignored,
//!     Err(_) => Outcome::Failure,
//! };
//! assert_eq!(custom.classify(&Ok(503)), Outcome::Failure);
//! assert_eq!(custom.classify(&Err("cancelled".into())), Outcome::Ignored);
//! ```

#[cfg(feature = "grpc")]
mod grpc;
#[cfg(feature = "http")]
mod http;
#[cfg(feature = "http")]
pub(crate) mod retry_after;
#[cfg(feature = "grpc")]
pub mod trailers;

use std::{
    fmt,
    sync::{Arc, Mutex, PoisonError},
    time::Duration,
};

#[cfg(feature = "grpc")]
#[cfg_attr(docsrs, doc(cfg(feature = "grpc")))]
pub use self::grpc::{GrpcCode, GrpcErrorsAsFailures, grpc_status};
#[cfg(feature = "http")]
#[cfg_attr(docsrs, doc(cfg(feature = "http")))]
pub use self::http::{ServerErrorsAsFailures, StatusInRangeAsFailures};
#[cfg(feature = "grpc")]
#[cfg_attr(docsrs, doc(cfg(feature = "grpc")))]
pub use self::trailers::GrpcTrailersLayer;

/// How a call turned out, as far as a resilience layer is concerned.
///
/// More variants may be added in later versions (for example for outcomes only
/// known at the end of a streaming body), hence `#[non_exhaustive]`.
///
/// # Examples
///
/// ```
/// use palisade::classify::Outcome;
/// assert_eq!(Outcome::Failure.as_str(), "failure");
/// assert!(Outcome::Failure.is_failure());
/// assert!(!Outcome::Ignored.is_failure());
/// ```
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// The call succeeded.
    Success,
    /// The call failed, in a way that says something about the service.
    Failure,
    /// The call counts as neither (for instance, it was cancelled).
    Ignored,
}

impl Outcome {
    /// The lowercase name used as the `outcome` label of metrics.
    ///
    /// ```
    /// use palisade::classify::Outcome;
    /// assert_eq!(Outcome::Ignored.as_str(), "ignored");
    /// ```
    pub const fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
            Outcome::Ignored => "ignored",
        }
    }

    /// Whether this is [`Outcome::Failure`].
    ///
    /// ```
    /// use palisade::classify::Outcome;
    /// assert!(!Outcome::Success.is_failure());
    /// ```
    pub const fn is_failure(self) -> bool {
        matches!(self, Outcome::Failure)
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Decides the [`Outcome`] of a call from its result.
///
/// Implemented by [`ErrorsAsFailures`] (the default), by the HTTP and gRPC
/// classifiers behind features, and by every closure
/// `Fn(&Result<Res, E>) -> Outcome + Send + Sync + 'static`.
///
/// New methods added to this trait in later versions come with default
/// bodies, so implementing it stays non-breaking.
///
/// # Examples
///
/// A classifier for a service whose `Ok` responses carry an error flag:
///
/// ```
/// use palisade::classify::{Classify, Outcome};
///
/// struct Reply { ok: bool }
///
/// #[derive(Clone)]
/// struct ByFlag;
///
/// impl<E> Classify<Reply, E> for ByFlag {
///     fn classify(&self, result: &Result<Reply, E>) -> Outcome {
///         match result {
///             Ok(reply) if reply.ok => Outcome::Success,
///             _ => Outcome::Failure,
///         }
///     }
/// }
///
/// assert_eq!(ByFlag.classify(&Ok::<_, ()>(Reply { ok: false })), Outcome::Failure);
/// ```
pub trait Classify<Res, E>: Send + Sync + 'static {
    /// The outcome of a call that produced `result`.
    fn classify(&self, result: &Result<Res, E>) -> Outcome;

    /// How long a circuit breaker should stay open because of `result`, when
    /// the result itself says so (a `503` or `429` with `Retry-After`, say).
    /// Consulted only for failures. The default says nothing; wrap a
    /// classifier in [`Pushback`] to add a rule.
    ///
    /// ```
    /// use palisade::classify::{Classify, ErrorsAsFailures};
    /// assert_eq!(Classify::<(), ()>::open_for(&ErrorsAsFailures, &Err(())), None);
    /// ```
    fn open_for(&self, result: &Result<Res, E>) -> Option<Duration> {
        let _ = result;
        None
    }

    /// Whether the outcome of `result` is known only later — a gRPC
    /// response whose status comes in the trailers at the end of its body
    /// ([`GrpcErrorsAsFailures::from_trailers`]). Then a layer that reports
    /// outcomes (the circuit breaker) does not call
    /// [`classify`](Classify::classify) but hands a [`DeferredOutcome`] to
    /// [`defer`](Classify::defer). The default: never.
    ///
    /// ```
    /// use palisade::classify::{Classify, ErrorsAsFailures};
    /// assert!(!Classify::<(), ()>::defers(&ErrorsAsFailures, &Ok(())));
    /// ```
    fn defers(&self, result: &Result<Res, E>) -> bool {
        let _ = result;
        false
    }

    /// Keeps `outcome` with `result` (in a response's extensions, say) for
    /// whoever learns the outcome to [`report`](DeferredOutcome::report) it.
    /// Called only when [`defers`](Classify::defers) said so. The default
    /// drops it: the call counts as ignored.
    fn defer(&self, result: &mut Result<Res, E>, outcome: DeferredOutcome) {
        let _ = (result, outcome);
    }
}

/// The outcome of a call, reported later by whoever learns it: the first
/// [`report`](DeferredOutcome::report) counts, and if every clone is dropped
/// without one, the call counts as [`Outcome::Ignored`] (what happens to a
/// gRPC response whose body is dropped before its trailers).
///
/// Made by the circuit breaker for a classifier that
/// [`defers`](Classify::defers); clones share one report.
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use palisade::classify::{DeferredOutcome, Outcome};
///
/// let seen = Arc::new(Mutex::new(Vec::new()));
/// let record = |seen: &Arc<Mutex<Vec<Outcome>>>| {
///     let seen = Arc::clone(seen);
///     DeferredOutcome::new(move |outcome| seen.lock().unwrap().push(outcome))
/// };
///
/// let later = record(&seen);
/// later.clone().report(Outcome::Failure);
/// later.report(Outcome::Success); // too late: the first report counts
/// drop(record(&seen));            // never reported: ignored
/// assert_eq!(*seen.lock().unwrap(), [Outcome::Failure, Outcome::Ignored]);
/// ```
#[derive(Clone)]
pub struct DeferredOutcome {
    report: Arc<Pending>,
}

/// The report not yet made; made as ignored when the last clone goes.
struct Pending(Mutex<Option<Report>>);

type Report = Box<dyn FnOnce(Outcome) + Send>;

impl Drop for Pending {
    fn drop(&mut self) {
        let report = self
            .0
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(report) = report {
            report(Outcome::Ignored);
        }
    }
}

impl DeferredOutcome {
    /// An outcome that `report` receives, once: from the first
    /// [`report`](DeferredOutcome::report), or as [`Outcome::Ignored`] when
    /// the last clone is dropped without one.
    ///
    /// ```
    /// let _ = palisade::classify::DeferredOutcome::new(|outcome| println!("{outcome}"));
    /// ```
    pub fn new(report: impl FnOnce(Outcome) + Send + 'static) -> DeferredOutcome {
        DeferredOutcome {
            report: Arc::new(Pending(Mutex::new(Some(Box::new(report))))),
        }
    }

    /// Reports the call's outcome, if nothing has yet.
    ///
    /// ```
    /// use palisade::classify::{DeferredOutcome, Outcome};
    /// DeferredOutcome::new(|outcome| assert_eq!(outcome, Outcome::Success)).report(Outcome::Success);
    /// ```
    pub fn report(&self, outcome: Outcome) {
        let report = self
            .report
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(report) = report {
            report(outcome);
        }
    }
}

impl fmt::Debug for DeferredOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeferredOutcome").finish_non_exhaustive()
    }
}

impl<F, Res, E> Classify<Res, E> for F
where
    F: Fn(&Result<Res, E>) -> Outcome + Send + Sync + 'static,
{
    fn classify(&self, result: &Result<Res, E>) -> Outcome {
        self(result)
    }
}

/// The default classifier: every `Err` is a failure, every `Ok` a success.
///
/// # Examples
///
/// ```
/// use palisade::classify::{Classify, ErrorsAsFailures, Outcome};
/// assert_eq!(ErrorsAsFailures.classify(&Err::<(), _>("timeout")), Outcome::Failure);
/// assert_eq!(ErrorsAsFailures.classify(&Ok::<_, ()>(())), Outcome::Success);
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct ErrorsAsFailures;

impl<Res, E> Classify<Res, E> for ErrorsAsFailures {
    fn classify(&self, result: &Result<Res, E>) -> Outcome {
        match result {
            Ok(_) => Outcome::Success,
            Err(_) => Outcome::Failure,
        }
    }
}

/// A classifier with a rule for how long a circuit breaker should stay open
/// after a failure: [`Classify::open_for`].
///
/// # Examples
///
/// An error that carries the server's `Retry-After`:
///
/// ```
/// use std::time::Duration;
/// use palisade::classify::{Classify, ErrorsAsFailures, Outcome, Pushback};
///
/// #[derive(Debug)]
/// struct Overloaded { retry_after: Option<Duration> }
///
/// let classifier = Pushback::new(ErrorsAsFailures, |result: &Result<(), Overloaded>| {
///     result.as_ref().err().and_then(|e| e.retry_after)
/// });
/// let err = Err(Overloaded { retry_after: Some(Duration::from_secs(20)) });
/// assert_eq!(classifier.classify(&err), Outcome::Failure);
/// assert_eq!(classifier.open_for(&err), Some(Duration::from_secs(20)));
/// ```
#[derive(Clone, Copy, Debug)]
pub struct Pushback<C, F> {
    classifier: C,
    open_for: F,
}

impl<C, F> Pushback<C, F> {
    /// Classifies with `classifier`; asks `open_for` how long to stay open.
    ///
    /// ```
    /// use palisade::classify::{ErrorsAsFailures, Pushback};
    /// use std::time::Duration;
    /// let _ = Pushback::new(ErrorsAsFailures, |_: &Result<(), ()>| None::<Duration>);
    /// ```
    pub fn new(classifier: C, open_for: F) -> Pushback<C, F> {
        Pushback {
            classifier,
            open_for,
        }
    }
}

impl<C, F, Res, E> Classify<Res, E> for Pushback<C, F>
where
    C: Classify<Res, E>,
    F: Fn(&Result<Res, E>) -> Option<Duration> + Send + Sync + 'static,
{
    fn classify(&self, result: &Result<Res, E>) -> Outcome {
        self.classifier.classify(result)
    }

    fn open_for(&self, result: &Result<Res, E>) -> Option<Duration> {
        (self.open_for)(result)
    }

    fn defers(&self, result: &Result<Res, E>) -> bool {
        self.classifier.defers(result)
    }

    fn defer(&self, result: &mut Result<Res, E>, outcome: DeferredOutcome) {
        self.classifier.defer(result, outcome);
    }
}

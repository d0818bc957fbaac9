//! Which results are worth another attempt, and how each attempt gets its
//! own request.

use std::{error::Error, time::Duration};

use tower::BoxError;

use crate::error::{KeyMissing, Rejection, RejectionKind, Unsatisfiable};

/// What to do with the result of an attempt.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use palisade::retry::Decision;
///
/// let decision = Decision::RetryAfter(Duration::from_secs(2));
/// assert!(decision.retries());
/// assert!(!Decision::Accept.retries());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Return this result to the caller.
    Accept,
    /// Try again after the backoff's next delay.
    Retry,
    /// Try again after this delay instead of the backoff's (server pushback;
    /// still capped by the layer's
    /// [`max_pushback`](super::RetryBuilder::max_pushback), and never shorter
    /// than the backoff's delay unless
    /// [`pushback_may_shorten`](super::RetryBuilder::pushback_may_shorten)).
    RetryAfter(Duration),
}

impl Decision {
    /// Whether this asks for another attempt.
    ///
    /// ```
    /// assert!(palisade::retry::Decision::Retry.retries());
    /// ```
    pub fn retries(&self) -> bool {
        !matches!(self, Decision::Accept)
    }
}

/// Decides, from a request and the result of an attempt at it, whether to
/// try again. The error is the attempt's error as a [`BoxError`] (the layer's
/// error type), so a policy can downcast it. Closures
/// `Fn(&Req, &Result<Res, BoxError>) -> Decision` are policies.
///
/// Both come `&mut`, as tower's `Policy::retry` has them: a policy may
/// change the request kept for the next attempt (say, count attempts in a
/// header) or the result returned. A tower policy is a palisade one through
/// `TowerPolicy` (feature `tower-retry`).
///
/// # Examples
///
/// ```
/// use palisade::retry::{Decision, RetryPolicy};
/// use tower::BoxError;
///
/// // Retry timeouts only.
/// let policy = |_: &String, result: &Result<u16, BoxError>| match result {
///     Err(err) if err.is::<palisade::error::Elapsed>() => Decision::Retry,
///     _ => Decision::Accept,
/// };
/// let timed_out: BoxError = palisade::error::Elapsed::new("upstream", None).into();
/// assert_eq!(policy.decide(&mut "GET /".to_string(), &mut Err(timed_out)), Decision::Retry);
/// ```
pub trait RetryPolicy<Req, Res> {
    /// The decision for `result`, the outcome of an attempt at `request`
    /// (the copy kept for the next attempt).
    fn decide(&self, request: &mut Req, result: &mut Result<Res, BoxError>) -> Decision;
}

impl<Req, Res, F> RetryPolicy<Req, Res> for F
where
    F: Fn(&Req, &Result<Res, BoxError>) -> Decision,
{
    fn decide(&self, request: &mut Req, result: &mut Result<Res, BoxError>) -> Decision {
        self(request, result)
    }
}

/// The default policy: accept every response; retry every error except
/// refusals (circuit open, rate limited, bulkhead full, budget exhausted,
/// overloaded — tower's `LoadShed` included) and a request's own deadline
/// reached ([`DeadlineExceeded`](crate::error::DeadlineExceeded): its time
/// is up). A timeout ([`Elapsed`](crate::error::Elapsed), tower's `Timeout`
/// included) is retried.
///
/// Retrying into an open breaker or a rate limit is how an outage becomes a
/// retry storm, so those are not retried unless
/// [`retrying_rejections`](RetryErrors::retrying_rejections) says so. A
/// timeout is a failure of the attempt, not a refusal: it is retried.
/// Requests that can never pass
/// ([`Unsatisfiable`], [`KeyMissing`]) are never retried.
///
/// # Examples
///
/// ```
/// use palisade::{error::{CircuitOpen, Elapsed}, retry::{Decision, RetryErrors, RetryPolicy}};
/// use tower::BoxError;
///
/// let policy = RetryErrors::new();
/// let open: BoxError = CircuitOpen::new("db", None).into();
/// let timeout: BoxError = Elapsed::new("db", None).into();
/// assert_eq!(RetryPolicy::<(), ()>::decide(&policy, &mut (), &mut Err(open)), Decision::Accept);
/// assert_eq!(RetryPolicy::<(), ()>::decide(&policy, &mut (), &mut Err(timeout)), Decision::Retry);
/// assert_eq!(RetryPolicy::<(), ()>::decide(&policy, &mut (), &mut Ok(())), Decision::Accept);
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct RetryErrors {
    rejections: bool,
}

impl RetryErrors {
    /// Retry errors, not palisade's refusals.
    ///
    /// ```
    /// let _ = palisade::retry::RetryErrors::new();
    /// ```
    pub const fn new() -> RetryErrors {
        RetryErrors { rejections: false }
    }

    /// Retry refusals too (circuit open, rate limited, bulkhead full, budget
    /// exhausted) — for a retry layer placed inside those layers, or with a
    /// budget to bound the cost.
    ///
    /// ```
    /// let _ = palisade::retry::RetryErrors::new().retrying_rejections();
    /// ```
    pub const fn retrying_rejections(mut self) -> RetryErrors {
        self.rejections = true;
        self
    }
}

impl RetryErrors {
    /// The decision for an attempt that failed with `err`: presets that
    /// look at responses themselves hand their errors here.
    pub(crate) fn decide_error(&self, err: &(dyn Error + 'static)) -> Decision {
        if err.is::<Unsatisfiable>() || err.is::<KeyMissing>() {
            return Decision::Accept;
        }
        let kind = Rejection::find(err).map(|rejection| rejection.kind());
        if kind == Some(RejectionKind::DeadlineExceeded) {
            return Decision::Accept;
        }
        if kind.is_some_and(RejectionKind::is_refusal) && !self.rejections {
            Decision::Accept
        } else {
            Decision::Retry
        }
    }
}

impl<Req, Res> RetryPolicy<Req, Res> for RetryErrors {
    fn decide(&self, _: &mut Req, result: &mut Result<Res, BoxError>) -> Decision {
        match result {
            Ok(_) => Decision::Accept,
            Err(err) => self.decide_error(&**err),
        }
    }
}

/// Makes the request of each further attempt. `Clone` requests are cloned
/// ([`ViaClone`], the default); closures `Fn(&Req) -> Option<Req>` are
/// hooks for requests that are not `Clone`. `None`: this request cannot be
/// repeated, its first attempt is its only one.
///
/// # Examples
///
/// ```
/// use palisade::retry::RequestCloner;
///
/// // A request carrying a one-shot channel cannot be repeated.
/// let hook = |request: &(u32, bool)| (!request.1).then_some(*request);
/// assert_eq!(hook.clone_request(&(7, false)), Some((7, false)));
/// assert_eq!(hook.clone_request(&(7, true)), None);
/// ```
pub trait RequestCloner<Req> {
    /// A copy of `request` for another attempt, if one can be made.
    fn clone_request(&self, request: &Req) -> Option<Req>;
}

impl<Req, F> RequestCloner<Req> for F
where
    F: Fn(&Req) -> Option<Req>,
{
    fn clone_request(&self, request: &Req) -> Option<Req> {
        self(request)
    }
}

/// Clones the request: the default [`RequestCloner`].
///
/// ```
/// use palisade::retry::{RequestCloner, ViaClone};
/// assert_eq!(ViaClone.clone_request(&"GET /".to_string()), Some("GET /".to_string()));
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct ViaClone;

impl<Req: Clone> RequestCloner<Req> for ViaClone {
    fn clone_request(&self, request: &Req) -> Option<Req> {
        Some(request.clone())
    }
}

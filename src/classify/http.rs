use std::{ops::RangeInclusive, time::Duration};

use http::{Response, StatusCode};
use tower_http::classify::{self as th, ClassifiedResponse, ClassifyResponse};

use super::{Classify, Outcome};
use crate::error::ConfigError;

/// The HTTP preset: a `5xx` response or an error is a failure; every other
/// response is a success.
///
/// `429 Too Many Requests` is a success by default — it usually speaks of the
/// caller's quota, not the dependency's health — and a failure after
/// [`too_many_requests_as_failure(true)`](ServerErrorsAsFailures::too_many_requests_as_failure).
/// The `5xx` rule is tower-http's
/// [`ServerErrorsAsFailures`](tower_http::classify::ServerErrorsAsFailures).
///
/// # Examples
///
/// ```
/// use http::{Response, StatusCode};
/// use palisade::classify::{Classify, Outcome, ServerErrorsAsFailures};
///
/// fn reply(status: u16) -> Result<Response<()>, std::io::Error> {
///     Ok(Response::builder().status(status).body(()).unwrap())
/// }
///
/// let classifier = ServerErrorsAsFailures::new();
/// assert_eq!(classifier.classify(&reply(200)), Outcome::Success);
/// assert_eq!(classifier.classify(&reply(503)), Outcome::Failure);
/// assert_eq!(classifier.classify(&reply(429)), Outcome::Success);
///
/// let strict = ServerErrorsAsFailures::new().too_many_requests_as_failure(true);
/// assert_eq!(strict.classify(&reply(429)), Outcome::Failure);
/// ```
///
/// A circuit breaker can stay open as long as a failed response's
/// `Retry-After` asks ([`open_for_retry_after`](Self::open_for_retry_after)):
///
/// ```
/// use std::time::Duration;
/// use http::Response;
/// use palisade::classify::{Classify, ServerErrorsAsFailures};
///
/// let classifier = ServerErrorsAsFailures::new().open_for_retry_after(true);
/// let busy = Response::builder().status(503).header("retry-after", "20").body(()).unwrap();
/// assert_eq!(classifier.open_for(&Ok::<_, ()>(busy)), Some(Duration::from_secs(20)));
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct ServerErrorsAsFailures {
    too_many_requests_is_failure: bool,
    open_for_retry_after: bool,
}

impl ServerErrorsAsFailures {
    /// `5xx` and errors are failures; `429` is a success.
    ///
    /// ```
    /// let _ = palisade::classify::ServerErrorsAsFailures::new();
    /// ```
    pub const fn new() -> ServerErrorsAsFailures {
        ServerErrorsAsFailures {
            too_many_requests_is_failure: false,
            open_for_retry_after: false,
        }
    }

    /// Whether `429 Too Many Requests` counts as a failure.
    ///
    /// ```
    /// let _ = palisade::classify::ServerErrorsAsFailures::new().too_many_requests_as_failure(true);
    /// ```
    pub const fn too_many_requests_as_failure(mut self, yes: bool) -> ServerErrorsAsFailures {
        self.too_many_requests_is_failure = yes;
        self
    }

    /// Whether a failed response's `Retry-After` (a `503`, or a `429` counted
    /// as a failure) says how long a circuit breaker stays open
    /// ([`Classify::open_for`]); the breaker opens at once for that long,
    /// capped by its own maximum. The header is read as
    /// [`retry::http::retry_after`](crate::retry::http::retry_after) reads
    /// it: garbage, negative or fractional values are ignored. Off by default.
    ///
    /// ```
    /// let _ = palisade::classify::ServerErrorsAsFailures::new().open_for_retry_after(true);
    /// ```
    pub const fn open_for_retry_after(mut self, yes: bool) -> ServerErrorsAsFailures {
        self.open_for_retry_after = yes;
        self
    }
}

impl<B, E> Classify<Response<B>, E> for ServerErrorsAsFailures {
    fn classify(&self, result: &Result<Response<B>, E>) -> Outcome {
        match result {
            Err(_) => Outcome::Failure,
            Ok(res)
                if self.too_many_requests_is_failure
                    && res.status() == StatusCode::TOO_MANY_REQUESTS =>
            {
                Outcome::Failure
            }
            Ok(res) => ready_outcome(th::ServerErrorsAsFailures::new().classify_response(res)),
        }
    }

    fn open_for(&self, result: &Result<Response<B>, E>) -> Option<Duration> {
        if !self.open_for_retry_after || self.classify(result) != Outcome::Failure {
            return None;
        }
        let response = result.as_ref().ok()?;
        super::retry_after::parse(response.headers())
    }
}

/// A response whose status lies in a range is a failure, as is an error.
///
/// Built on tower-http's
/// [`StatusInRangeAsFailures`](tower_http::classify::StatusInRangeAsFailures),
/// but a range that is not made of valid status codes is a [`ConfigError`]
/// rather than a panic.
///
/// # Examples
///
/// ```
/// use http::Response;
/// use palisade::classify::{Classify, Outcome, StatusInRangeAsFailures};
///
/// let classifier = StatusInRangeAsFailures::new(400..=599)?;
/// let reply = |status| Ok::<_, ()>(Response::builder().status(status).body(()).unwrap());
/// assert_eq!(classifier.classify(&reply(404)), Outcome::Failure);
/// assert_eq!(classifier.classify(&reply(302)), Outcome::Success);
///
/// assert!(StatusInRangeAsFailures::new(500..=1000).is_err());
/// # Ok::<(), palisade::error::ConfigError>(())
/// ```
#[derive(Clone, Debug)]
pub struct StatusInRangeAsFailures {
    inner: th::StatusInRangeAsFailures,
}

impl StatusInRangeAsFailures {
    /// Statuses in `range` (inclusive) are failures.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] for the field `range` if either end is not a valid
    /// status code (100 to 999) or the range is empty.
    ///
    /// ```
    /// use palisade::classify::StatusInRangeAsFailures;
    /// let err = StatusInRangeAsFailures::new(599..=500).unwrap_err();
    /// assert_eq!(err.field(), "range");
    /// ```
    pub fn new(range: RangeInclusive<u16>) -> Result<StatusInRangeAsFailures, ConfigError> {
        let (start, end) = (*range.start(), *range.end());
        let invalid = |code: u16| StatusCode::from_u16(code).is_err();
        if invalid(start) || invalid(end) {
            return Err(ConfigError::new(
                "classify",
                "range",
                format!("must hold valid status codes (100 to 999), got {start}..={end}"),
            ));
        }
        if start > end {
            return Err(ConfigError::new(
                "classify",
                "range",
                format!("must not be empty, got {start}..={end}"),
            ));
        }
        Ok(StatusInRangeAsFailures {
            inner: th::StatusInRangeAsFailures::new(range),
        })
    }
}

impl<B, E> Classify<Response<B>, E> for StatusInRangeAsFailures {
    fn classify(&self, result: &Result<Response<B>, E>) -> Outcome {
        match result {
            Err(_) => Outcome::Failure,
            Ok(res) => ready_outcome(self.inner.clone().classify_response(res)),
        }
    }
}

/// The outcome of a classifier that decides from the status line alone.
fn ready_outcome<F, Eos>(classified: ClassifiedResponse<F, Eos>) -> Outcome {
    match classified {
        ClassifiedResponse::Ready(Ok(())) => Outcome::Success,
        ClassifiedResponse::Ready(Err(_)) => Outcome::Failure,
        // These classifiers never defer to the end of the stream.
        ClassifiedResponse::RequiresEos(_) => Outcome::Success,
    }
}

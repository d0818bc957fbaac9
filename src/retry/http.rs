//! HTTP and gRPC retry policies (features `http`, `grpc`), and the parsers of
//! server pushback they use: `Retry-After` and `grpc-retry-pushback-ms`.
//!
//! # Pushback from a hostile server
//!
//! A pushback header is read defensively: only ASCII digits (a delay) or a
//! well-formed HTTP-date are understood; anything else — garbage, a negative
//! or fractional `Retry-After`, a number too large for 64 bits, non-ASCII
//! bytes, a date the calendar does not have — is ignored, and the backoff
//! applies as if the header were absent. What is understood is still capped
//! by the layer's [`max_pushback`](super::RetryBuilder::max_pushback), so no
//! server can make a client sleep longer than that, and never shortens the
//! backoff (unless [`pushback_may_shorten`](super::RetryBuilder::pushback_may_shorten)).
//!
//! # Requests for each attempt
//!
//! An `http::Request<B>` whose body is `Clone` (`String`, `Bytes`,
//! `Full<Bytes>`, …) is `Clone` itself, so the retry's default
//! [`ViaClone`](super::ViaClone) copies it for each attempt: no
//! hook to write. A streaming body is read once; put
//! [`BufferBodyLayer`](super::body::BufferBodyLayer) outside the retry and
//! use [`ReplayRequests`](super::body::ReplayRequests).

use std::time::Duration;

use http::{HeaderMap, Method, Request, Response, StatusCode};
use tower::BoxError;

use super::{Decision, RetryErrors, RetryPolicy};

/// The delay a `Retry-After` header asks for: delta-seconds, or an
/// HTTP-date (IMF-fixdate, RFC 850 or asctime) measured from the response's
/// `Date` header when it has a valid one — the server's own clock, so the
/// two clocks' skew does not matter — else from this machine's clock. A
/// date in the past asks for no delay. `None` when the header is absent or
/// not understood.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use palisade::retry::http::retry_after;
///
/// let mut headers = http::HeaderMap::new();
/// headers.insert("retry-after", "120".parse().unwrap());
/// assert_eq!(retry_after(&headers), Some(Duration::from_secs(120)));
///
/// headers.insert("date", "Sun, 06 Nov 1994 08:49:37 GMT".parse().unwrap());
/// headers.insert("retry-after", "Sun, 06 Nov 1994 08:50:07 GMT".parse().unwrap());
/// assert_eq!(retry_after(&headers), Some(Duration::from_secs(30)));
///
/// headers.insert("retry-after", "-5".parse().unwrap());
/// assert_eq!(retry_after(&headers), None);
/// ```
pub fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    crate::classify::retry_after::parse(headers)
}

/// What a `grpc-retry-pushback-ms` header (in the headers of a trailers-only
/// response) says: wait this long, or do not retry (a negative value).
/// `None` when absent or not understood.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use palisade::retry::{Decision, http::grpc_pushback};
///
/// let mut headers = http::HeaderMap::new();
/// headers.insert("grpc-retry-pushback-ms", "250".parse().unwrap());
/// assert_eq!(grpc_pushback(&headers), Some(Decision::RetryAfter(Duration::from_millis(250))));
/// headers.insert("grpc-retry-pushback-ms", "-1".parse().unwrap());
/// assert_eq!(grpc_pushback(&headers), Some(Decision::Accept));
/// headers.insert("grpc-retry-pushback-ms", "soon".parse().unwrap());
/// assert_eq!(grpc_pushback(&headers), None);
/// ```
pub fn grpc_pushback(headers: &HeaderMap) -> Option<Decision> {
    let value = headers.get("grpc-retry-pushback-ms")?.to_str().ok()?.trim();
    let (negative, digits) = match value.strip_prefix('-') {
        Some(digits) => (true, digits),
        None => (false, value),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if negative {
        return Some(Decision::Accept);
    }
    digits
        .parse::<u64>()
        .ok()
        .map(|ms| Decision::RetryAfter(Duration::from_millis(ms)))
}

/// The HTTP preset: retry only requests that may safely be repeated —
/// idempotent methods (GET, HEAD, OPTIONS, PUT, DELETE, TRACE) or any
/// request with an `Idempotency-Key` header — on errors (a connection
/// refused or reset, a timeout; palisade's refusals excepted, as in
/// [`RetryErrors`]) and on `502`, `503`, `504` and `429`, waiting what a
/// `Retry-After` on the response asks ([`retry_after`]), within the layer's
/// `max_pushback`.
///
/// # Examples
///
/// ```
/// use palisade::retry::{Decision, RetryPolicy, http::HttpRetry};
///
/// let policy = HttpRetry::new();
/// let mut get = http::Request::get("/items").body(()).unwrap();
/// let mut post = http::Request::post("/orders").body(()).unwrap();
/// let unavailable = || Ok(http::Response::builder().status(503).body(()).unwrap());
/// assert_eq!(policy.decide(&mut get, &mut unavailable()), Decision::Retry);
/// assert_eq!(policy.decide(&mut post, &mut unavailable()), Decision::Accept);
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct HttpRetry {
    errors: RetryErrors,
}

impl HttpRetry {
    /// The preset.
    ///
    /// ```
    /// let _ = palisade::retry::http::HttpRetry::new();
    /// ```
    pub const fn new() -> HttpRetry {
        HttpRetry {
            errors: RetryErrors::new(),
        }
    }

    /// Whether `request` may be sent again (the hedging preset asks too).
    pub(crate) fn repeatable<B>(request: &Request<B>) -> bool {
        matches!(
            *request.method(),
            Method::GET
                | Method::HEAD
                | Method::OPTIONS
                | Method::PUT
                | Method::DELETE
                | Method::TRACE
        ) || request.headers().contains_key("idempotency-key")
    }
}

impl<B, RB> RetryPolicy<Request<B>, Response<RB>> for HttpRetry {
    fn decide(
        &self,
        request: &mut Request<B>,
        result: &mut Result<Response<RB>, BoxError>,
    ) -> Decision {
        if !HttpRetry::repeatable(request) {
            return Decision::Accept;
        }
        let response = match &*result {
            Ok(response) => response,
            Err(err) => return self.errors.decide_error(&**err),
        };
        match response.status() {
            StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE => {
                retry_after(response.headers()).map_or(Decision::Retry, Decision::RetryAfter)
            }
            StatusCode::BAD_GATEWAY | StatusCode::GATEWAY_TIMEOUT => Decision::Retry,
            _ => Decision::Accept,
        }
    }
}

/// The gRPC preset, after gRPC's retry design: retry on the given status
/// codes (default UNAVAILABLE) read from `grpc-status` in the response
/// headers (trailers-only responses), and on errors (palisade's refusals
/// excepted, as in [`RetryErrors`]); a `grpc-retry-pushback-ms` header sets
/// the delay, and a negative one stops the retries ([`grpc_pushback`]).
/// gRPC leaves it to the service config to say which methods are safe to
/// retry: put this layer on the clients of those.
///
/// # Examples
///
/// ```
/// use palisade::{classify::GrpcCode, retry::{Decision, RetryPolicy, http::GrpcRetry}};
///
/// let policy = GrpcRetry::new();
/// let mut request = http::Request::post("/pkg.Svc/Get").body(()).unwrap();
/// let status = |code: &str| Ok(http::Response::builder().header("grpc-status", code).body(()).unwrap());
/// assert_eq!(policy.decide(&mut request, &mut status("14")), Decision::Retry); // UNAVAILABLE
/// assert_eq!(policy.decide(&mut request, &mut status("5")), Decision::Accept); // NOT_FOUND
/// let aborted_too = GrpcRetry::codes([GrpcCode::Unavailable, GrpcCode::Aborted]);
/// assert_eq!(aborted_too.decide(&mut request, &mut status("10")), Decision::Retry);
/// ```
#[cfg(feature = "grpc")]
#[derive(Clone, Debug)]
pub struct GrpcRetry {
    codes: crate::classify::GrpcErrorsAsFailures,
    errors: RetryErrors,
}

#[cfg(feature = "grpc")]
impl GrpcRetry {
    /// Retry UNAVAILABLE.
    ///
    /// ```
    /// let _ = palisade::retry::http::GrpcRetry::new();
    /// ```
    pub fn new() -> GrpcRetry {
        GrpcRetry::codes([crate::classify::GrpcCode::Unavailable])
    }

    /// Retry these codes.
    ///
    /// ```
    /// use palisade::{classify::GrpcCode, retry::http::GrpcRetry};
    /// let _ = GrpcRetry::codes([GrpcCode::Unavailable, GrpcCode::ResourceExhausted]);
    /// ```
    pub fn codes(codes: impl IntoIterator<Item = crate::classify::GrpcCode>) -> GrpcRetry {
        GrpcRetry {
            codes: crate::classify::GrpcErrorsAsFailures::only(codes),
            errors: RetryErrors::new(),
        }
    }
}

#[cfg(feature = "grpc")]
impl Default for GrpcRetry {
    fn default() -> GrpcRetry {
        GrpcRetry::new()
    }
}

#[cfg(feature = "grpc")]
impl<B, RB> RetryPolicy<Request<B>, Response<RB>> for GrpcRetry {
    fn decide(&self, _: &mut Request<B>, result: &mut Result<Response<RB>, BoxError>) -> Decision {
        use crate::classify::{Classify, Outcome};

        let response = match &*result {
            Ok(response) => response,
            Err(err) => return self.errors.decide_error(&**err),
        };
        match self.codes.classify(&*result) {
            Outcome::Failure => grpc_pushback(response.headers()).unwrap_or(Decision::Retry),
            _ => Decision::Accept,
        }
    }
}

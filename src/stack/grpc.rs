//! palisade's refusals as gRPC statuses (feature `grpc`).
//!
//! [`GrpcAnswers`] answers an error with a *trailers-only* response — HTTP
//! 200, `content-type: application/grpc`, and the status in the headers —
//! which is how a gRPC server answers a call that fails before any message,
//! and what a gRPC client (tonic's included) reads as that status:
//!
//! | error | `grpc-status` |
//! |---|---|
//! | [`RateLimited`](crate::error::RateLimited) | `RESOURCE_EXHAUSTED` (8) |
//! | [`CircuitOpen`](crate::error::CircuitOpen) | `UNAVAILABLE` (14) |
//! | [`BulkheadFull`](crate::error::BulkheadFull) | `UNAVAILABLE` (14) |
//! | [`BudgetExhausted`](crate::error::BudgetExhausted) | `UNAVAILABLE` (14) |
//! | [`Overloaded`](crate::error::Overloaded), tower's `load_shed::error::Overloaded` | `UNAVAILABLE` (14) |
//! | [`Elapsed`](crate::error::Elapsed), tower's `timeout::error::Elapsed` | `DEADLINE_EXCEEDED` (4) |
//! | [`DeadlineExceeded`](crate::error::DeadlineExceeded) | `DEADLINE_EXCEEDED` (4) |
//! | [`StoreUnavailable`](crate::error::StoreUnavailable) | `UNAVAILABLE` (14) |
//! | any other error | `UNKNOWN` (2) |
//!
//! `grpc-message` carries the error's text, percent-encoded as the gRPC
//! spec asks, and when the refusal knows its wait, `grpc-retry-pushback-ms`
//! carries it (the pushback a gRPC client's retry policy honours, and
//! palisade's [`GrpcRetry`](crate::retry::http::GrpcRetry) reads).
//! Use it through [`HttpAnswerLayer::grpc`]; every code can be changed.
//!
//! The status of a call that fails *after* sending messages comes in the
//! trailers at the end of the body, which a layer that looks at the
//! response headers does not see. For the circuit breaker, classify with
//! [`GrpcErrorsAsFailures::from_trailers`](crate::classify::GrpcErrorsAsFailures::from_trailers)
//! and put a [`GrpcTrailersLayer`](crate::classify::GrpcTrailersLayer)
//! outermost: the call then counts when its body ends. The retry layer
//! decides on headers only (a call whose messages were already read cannot
//! be retried anyway).
//!
//! # Examples
//!
//! ```
//! use palisade::{error::CircuitOpen, stack::grpc::GrpcAnswers};
//! use std::time::Duration;
//!
//! let open = CircuitOpen::new("billing", Some(Duration::from_millis(250)));
//! let response: http::Response<()> = GrpcAnswers::new().response(&open);
//! assert_eq!(response.status(), 200);
//! assert_eq!(response.headers()["grpc-status"], "14");
//! assert_eq!(response.headers()["grpc-retry-pushback-ms"], "250");
//! ```

use std::{error::Error, fmt::Write as _};

use http::{HeaderName, HeaderValue, Response, header};
use tower::BoxError;

use super::http::{Answer, HttpAnswerLayer};
use crate::{
    classify::GrpcCode,
    error::{Rejection, RejectionKind},
};

/// The standard gRPC answers; see [the module docs](self).
///
/// ```
/// use palisade::{classify::GrpcCode, error::{Elapsed, RejectionKind}, stack::grpc::GrpcAnswers};
/// let answers = GrpcAnswers::new().code(RejectionKind::Elapsed, GrpcCode::Cancelled);
/// let response: http::Response<()> = answers.response(&Elapsed::new("t", None));
/// assert_eq!(response.headers()["grpc-status"], "1");
/// ```
#[derive(Clone, Copy, Debug)]
pub struct GrpcAnswers {
    /// Indexed by `RejectionKind as usize`.
    codes: [GrpcCode; RejectionKind::ALL.len()],
    error: GrpcCode,
}

impl GrpcAnswers {
    /// The codes of [the module docs](self).
    ///
    /// ```
    /// let _ = palisade::stack::grpc::GrpcAnswers::new();
    /// ```
    pub fn new() -> GrpcAnswers {
        let codes = RejectionKind::ALL.map(|kind| match kind {
            RejectionKind::RateLimited => GrpcCode::ResourceExhausted,
            RejectionKind::Elapsed | RejectionKind::DeadlineExceeded => GrpcCode::DeadlineExceeded,
            RejectionKind::CircuitOpen
            | RejectionKind::BulkheadFull
            | RejectionKind::BudgetExhausted
            | RejectionKind::Overloaded
            | RejectionKind::StoreUnavailable => GrpcCode::Unavailable,
        });
        GrpcAnswers {
            codes,
            error: GrpcCode::Unknown,
        }
    }

    /// Answers refusals of `kind` with `code`.
    ///
    /// ```
    /// use palisade::{classify::GrpcCode, error::RejectionKind, stack::grpc::GrpcAnswers};
    /// let _ = GrpcAnswers::new().code(RejectionKind::BulkheadFull, GrpcCode::ResourceExhausted);
    /// ```
    pub fn code(mut self, kind: RejectionKind, code: GrpcCode) -> GrpcAnswers {
        self.codes[kind as usize] = code;
        self
    }

    /// Answers every error that is not a palisade refusal with `code`.
    ///
    /// ```
    /// use palisade::{classify::GrpcCode, stack::grpc::GrpcAnswers};
    /// let _ = GrpcAnswers::new().error_code(GrpcCode::Internal);
    /// ```
    pub fn error_code(mut self, code: GrpcCode) -> GrpcAnswers {
        self.error = code;
        self
    }

    /// The trailers-only response for `error`.
    ///
    /// ```
    /// use palisade::{error::RateLimited, stack::grpc::GrpcAnswers};
    /// let response: http::Response<()> = GrpcAnswers::new().response(&RateLimited::new("api", None));
    /// assert_eq!(response.headers()["grpc-status"], "8");
    /// assert_eq!(response.headers()["grpc-message"], "rate limiter `api` is over its limit");
    /// ```
    pub fn response<B: Default>(&self, error: &(dyn Error + 'static)) -> Response<B> {
        let rejection = Rejection::find(error);
        let code = match &rejection {
            Some(rejection) => self.codes[rejection.kind() as usize],
            None => self.error,
        };
        let mut response = Response::new(B::default());
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/grpc"),
        );
        headers.insert(
            HeaderName::from_static("grpc-status"),
            HeaderValue::from(code as i32),
        );
        if let Ok(message) = HeaderValue::try_from(percent_encode(&error.to_string())) {
            headers.insert(HeaderName::from_static("grpc-message"), message);
        }
        if let Some(wait) = rejection.and_then(|rejection| rejection.retry_after()) {
            let millis = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX);
            headers.insert(
                HeaderName::from_static("grpc-retry-pushback-ms"),
                HeaderValue::from(millis),
            );
        }
        response
    }
}

impl Default for GrpcAnswers {
    fn default() -> GrpcAnswers {
        GrpcAnswers::new()
    }
}

impl<B: Default> Answer<B> for GrpcAnswers {
    fn answer(&self, error: BoxError) -> Response<B> {
        self.response(&*error)
    }
}

impl HttpAnswerLayer<GrpcAnswers> {
    /// A layer that answers errors with the standard [`GrpcAnswers`].
    ///
    /// ```
    /// use palisade::stack::http::HttpAnswerLayer;
    /// let _ = HttpAnswerLayer::grpc();
    /// ```
    pub fn grpc() -> HttpAnswerLayer<GrpcAnswers> {
        HttpAnswerLayer::with(GrpcAnswers::new())
    }
}

/// The gRPC spec's `grpc-message` encoding: bytes outside `0x20..=0x7E`,
/// and `%` itself, as `%XX`.
fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if (0x20..0x7f).contains(&byte) && byte != b'%' {
            out.push(char::from(byte));
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::percent_encode;

    #[test]
    fn percent_encoding_keeps_printable_ascii_only() {
        assert_eq!(percent_encode("a b%c"), "a b%25c");
        assert_eq!(percent_encode("é"), "%C3%A9");
        assert_eq!(percent_encode("x\ny"), "x%0Ay");
    }
}

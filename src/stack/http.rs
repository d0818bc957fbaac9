//! palisade's refusals as HTTP responses (feature `http`).
//!
//! [`HttpAnswerLayer`] goes outside the other layers and turns every error
//! into a response, so the whole stack has `Error = Infallible` and drops
//! into axum's `Router::layer` or `route_layer` without a
//! `HandleErrorLayer`:
//!
//! | error | answer |
//! |---|---|
//! | [`RateLimited`](crate::error::RateLimited) | `429 Too Many Requests` + `Retry-After` (+ `RateLimit-Policy` / `RateLimit` with [`Answers::rate_limit_policy`]) |
//! | [`CircuitOpen`](crate::error::CircuitOpen) | `503 Service Unavailable` + `Retry-After` when known |
//! | [`BulkheadFull`](crate::error::BulkheadFull) | `503 Service Unavailable` + `Retry-After` when known |
//! | [`BudgetExhausted`](crate::error::BudgetExhausted) | `503 Service Unavailable` |
//! | [`Overloaded`](crate::error::Overloaded), tower's `load_shed::error::Overloaded` | `503 Service Unavailable` + `Retry-After` when known |
//! | [`Elapsed`](crate::error::Elapsed), tower's `timeout::error::Elapsed` | `504 Gateway Timeout` |
//! | [`DeadlineExceeded`](crate::error::DeadlineExceeded) | `504 Gateway Timeout` |
//! | [`StoreUnavailable`](crate::error::StoreUnavailable) | `503 Service Unavailable` + `Retry-After` when known |
//! | any other error | `500 Internal Server Error` |
//!
//! A refusal is found anywhere in the error's chain of sources.
//! `Retry-After` is in whole seconds, rounded up. Every status can be changed
//! ([`Answers::status`], [`Answers::error_status`]), or the whole answer
//! replaced by a closure ([`HttpAnswerLayer::with`]). Responses from the
//! service pass through untouched.
//!
//! Compared with tower: tower's layers leave their errors to the caller; in
//! axum that means a `HandleErrorLayer` with a hand-written mapping per
//! error type, in the right place of the stack.
//!
//! # Examples
//!
//! ```
//! use std::{convert::Infallible, time::Duration};
//! use palisade::{bulkhead::BulkheadLayer, stack::http::HttpAnswerLayer};
//! use tower::{Service, ServiceBuilder, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mut service = ServiceBuilder::new()
//!     .layer(HttpAnswerLayer::new())
//!     .layer(BulkheadLayer::builder(1).build()?)
//!     .service_fn(|_: http::Request<()>| async {
//!         Ok::<_, std::io::Error>(http::Response::new(String::from("hello")))
//!     });
//!
//! let first = service.ready().await?.call(http::Request::new(()));  // holds the only permit
//! let second = service.ready().await?.call(http::Request::new(())).await?;
//! assert_eq!(second.status(), 503);
//! let first: Result<_, Infallible> = first.await;
//! assert_eq!(first?.status(), 200);
//! # Ok(()) }
//! ```

use std::{
    convert::Infallible,
    error::Error,
    fmt,
    sync::Arc,
    task::{Context, Poll, ready},
};

use http::{HeaderValue, Response, StatusCode, header};
use tower::{BoxError, Layer, Service};

use super::future::AnswerFuture;
use crate::{
    error::{Rejection, RejectionKind},
    rate_limit::http::{TooManyRequests, retry_after_seconds},
};

/// Makes the response for an error. [`Answers`] is the standard table;
/// closures `Fn(BoxError) -> Response<B>` are answers too.
///
/// ```
/// use palisade::stack::http::Answer;
/// let teapot = |_: tower::BoxError| http::Response::builder().status(418).body(()).unwrap();
/// assert_eq!(teapot.answer("boom".into()).status(), 418);
/// ```
pub trait Answer<B> {
    /// The response for `error`.
    fn answer(&self, error: BoxError) -> Response<B>;
}

impl<B, F> Answer<B> for F
where
    F: Fn(BoxError) -> Response<B>,
{
    fn answer(&self, error: BoxError) -> Response<B> {
        self(error)
    }
}

/// The standard answers: a status per kind of refusal, one for every other
/// error, `Retry-After` when the wait is known; see
/// [the module docs](self).
///
/// ```
/// use http::StatusCode;
/// use palisade::{error::{CircuitOpen, RejectionKind}, stack::http::Answers};
///
/// let answers = Answers::new().status(RejectionKind::CircuitOpen, StatusCode::BAD_GATEWAY);
/// let response: http::Response<()> = answers.response(&CircuitOpen::new("db", None));
/// assert_eq!(response.status(), 502);
/// ```
#[derive(Clone, Debug)]
pub struct Answers {
    /// Indexed by `RejectionKind as usize`.
    statuses: [StatusCode; RejectionKind::ALL.len()],
    error: StatusCode,
    too_many_requests: TooManyRequests,
}

impl Answers {
    /// 429 for rate limited; 503 for circuit open, bulkhead full, retry
    /// budget exhausted and overloaded (tower's `LoadShed` among others); 504
    /// for timed out (tower's `Timeout` too) and for a request's own deadline
    /// reached; 500 for any other error.
    ///
    /// ```
    /// let _ = palisade::stack::http::Answers::new();
    /// ```
    pub fn new() -> Answers {
        let statuses = RejectionKind::ALL.map(|kind| match kind {
            RejectionKind::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            RejectionKind::Elapsed | RejectionKind::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
            RejectionKind::CircuitOpen
            | RejectionKind::BulkheadFull
            | RejectionKind::BudgetExhausted
            | RejectionKind::Overloaded
            | RejectionKind::StoreUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        });
        Answers {
            statuses,
            error: StatusCode::INTERNAL_SERVER_ERROR,
            too_many_requests: TooManyRequests::new(),
        }
    }

    /// Answers refusals of `kind` with `status`.
    ///
    /// ```
    /// use palisade::{error::RejectionKind, stack::http::Answers};
    /// let _ = Answers::new().status(RejectionKind::Elapsed, http::StatusCode::REQUEST_TIMEOUT);
    /// ```
    pub fn status(mut self, kind: RejectionKind, status: StatusCode) -> Answers {
        self.statuses[kind as usize] = status;
        self
    }

    /// Answers every error that is not a palisade refusal with `status`.
    ///
    /// ```
    /// let _ = palisade::stack::http::Answers::new().error_status(http::StatusCode::BAD_GATEWAY);
    /// ```
    pub fn error_status(mut self, status: StatusCode) -> Answers {
        self.error = status;
        self
    }

    /// How a 429 is written (see [`TooManyRequests::policy_of`] for the IETF
    /// `RateLimit` headers); used while the rate-limited status is 429.
    ///
    /// ```
    /// use palisade::{rate_limit::{RateLimitLayer, http::TooManyRequests}, stack::http::Answers};
    /// let limit = RateLimitLayer::builder().build().unwrap();
    /// let _ = Answers::new().rate_limit_policy(TooManyRequests::new().policy_of(&limit));
    /// ```
    pub fn rate_limit_policy(mut self, too_many_requests: TooManyRequests) -> Answers {
        self.too_many_requests = too_many_requests;
        self
    }

    /// The response for `error`, with an empty body.
    ///
    /// ```
    /// use std::time::Duration;
    /// use palisade::{error::BulkheadFull, stack::http::Answers};
    ///
    /// let full = BulkheadFull::new("db", Some(Duration::from_millis(1_500)));
    /// let response: http::Response<()> = Answers::new().response(&full);
    /// assert_eq!(response.status(), 503);
    /// assert_eq!(response.headers()["retry-after"], "2");
    ///
    /// let other: http::Response<()> = Answers::new().response(&std::io::Error::other("boom"));
    /// assert_eq!(other.status(), 500);
    /// ```
    pub fn response<B: Default>(&self, error: &(dyn Error + 'static)) -> Response<B> {
        let Some(rejection) = Rejection::find(error) else {
            return with_status(self.error);
        };
        let status = self.statuses[rejection.kind() as usize];
        if let (Rejection::RateLimited(refused), StatusCode::TOO_MANY_REQUESTS) =
            (rejection, status)
        {
            return self.too_many_requests.response(refused);
        }
        let mut response = with_status(status);
        if let Some(wait) = rejection.retry_after() {
            response.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from(retry_after_seconds(wait)),
            );
        }
        response
    }
}

impl Default for Answers {
    fn default() -> Answers {
        Answers::new()
    }
}

impl<B: Default> Answer<B> for Answers {
    fn answer(&self, error: BoxError) -> Response<B> {
        self.response(&*error)
    }
}

fn with_status<B: Default>(status: StatusCode) -> Response<B> {
    let mut response = Response::new(B::default());
    *response.status_mut() = status;
    response
}

/// A [`Layer`] that answers errors with HTTP responses; see
/// [the module docs](self).
///
/// ```
/// use palisade::stack::http::HttpAnswerLayer;
/// let layer = HttpAnswerLayer::new();
/// # let _ = layer;
/// ```
pub struct HttpAnswerLayer<A = Answers> {
    answer: Arc<A>,
}

impl HttpAnswerLayer {
    /// The standard [`Answers`].
    ///
    /// ```
    /// let _ = palisade::stack::http::HttpAnswerLayer::new();
    /// ```
    pub fn new() -> HttpAnswerLayer {
        HttpAnswerLayer::with(Answers::new())
    }
}

impl Default for HttpAnswerLayer {
    fn default() -> HttpAnswerLayer {
        HttpAnswerLayer::new()
    }
}

impl<A> HttpAnswerLayer<A> {
    /// Answers with `answer`: a changed [`Answers`] table, or a closure.
    ///
    /// ```
    /// use palisade::stack::http::{Answers, HttpAnswerLayer};
    /// let table = Answers::new();
    /// let _ = HttpAnswerLayer::with(move |error: tower::BoxError| {
    ///     let mut response: http::Response<String> = table.response(&*error);
    ///     *response.body_mut() = error.to_string();
    ///     response
    /// });
    /// ```
    pub fn with(answer: A) -> HttpAnswerLayer<A> {
        HttpAnswerLayer {
            answer: Arc::new(answer),
        }
    }
}

impl<A> Clone for HttpAnswerLayer<A> {
    fn clone(&self) -> Self {
        HttpAnswerLayer {
            answer: Arc::clone(&self.answer),
        }
    }
}

impl<A> fmt::Debug for HttpAnswerLayer<A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpAnswerLayer").finish_non_exhaustive()
    }
}

impl<S, A> Layer<S> for HttpAnswerLayer<A> {
    type Service = HttpAnswer<S, A>;

    fn layer(&self, inner: S) -> HttpAnswer<S, A> {
        HttpAnswer {
            inner,
            answer: Arc::clone(&self.answer),
            unready: None,
        }
    }
}

/// The service made by [`HttpAnswerLayer`]: the wrapped service with every
/// error answered by a response.
///
/// An error from the wrapped service's `poll_ready` is kept, `poll_ready`
/// reports ready, and the next call is answered with that error's response
/// without calling the service.
///
/// ```
/// use palisade::stack::http::{HttpAnswer, HttpAnswerLayer};
/// use tower::Layer;
/// let service: HttpAnswer<_, _> = HttpAnswerLayer::new()
///     .layer(tower::service_fn(|_: http::Request<()>| async { Ok::<_, std::io::Error>(http::Response::new(())) }));
/// # let _ = service;
/// ```
pub struct HttpAnswer<S, A = Answers> {
    inner: S,
    answer: Arc<A>,
    unready: Option<BoxError>,
}

impl<S: Clone, A> Clone for HttpAnswer<S, A> {
    fn clone(&self) -> Self {
        HttpAnswer {
            inner: self.inner.clone(),
            answer: Arc::clone(&self.answer),
            unready: None,
        }
    }
}

impl<S: fmt::Debug, A> fmt::Debug for HttpAnswer<S, A> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpAnswer")
            .field("inner", &self.inner)
            .field("unready", &self.unready)
            .finish_non_exhaustive()
    }
}

impl<S, A, Req, B> Service<Req> for HttpAnswer<S, A>
where
    S: Service<Req, Response = Response<B>>,
    S::Error: Into<BoxError>,
    A: Answer<B>,
{
    type Response = Response<B>;
    type Error = Infallible;
    type Future = AnswerFuture<S::Future, A>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        if self.unready.is_none() {
            if let Err(error) = ready!(self.inner.poll_ready(cx)) {
                self.unready = Some(error.into());
            }
        }
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Req) -> Self::Future {
        match self.unready.take() {
            Some(error) => AnswerFuture::unready(error, Arc::clone(&self.answer)),
            None => AnswerFuture::called(self.inner.call(request), Arc::clone(&self.answer)),
        }
    }
}

//! The gRPC status in the trailers at the end of a response body (feature
//! `grpc`).
//!
//! A gRPC call that sends messages carries its status in the *trailers*,
//! after the last message, not in the response headers a layer sees when
//! the call returns. With
//! [`GrpcErrorsAsFailures::from_trailers`](super::GrpcErrorsAsFailures::from_trailers),
//! a circuit breaker does not count such a call when its response arrives:
//! it leaves a pending report in the response's extensions, and
//! [`GrpcTrailersLayer`], placed **outside the breaker** (outermost in a
//! stack), wraps the response body in a [`GrpcStatusBody`] that makes the
//! report when the body ends (`grpc-status` read as in the headers, by
//! [`grpc_status`]: one reading, one answer):
//!
//! | the body… | the call counts as |
//! |---|---|
//! | ends with trailers whose `grpc-status` is in the failure set | failure |
//! | ends with another `grpc-status`, or none | success (as a missing status in headers) |
//! | yields an error | failure |
//! | is dropped before its end (the caller stopped reading) | ignored — and a half-open probe slot is freed |
//!
//! The breaker's slow-call clock runs until the body ends. A response
//! without a pending report (any other classifier, a status in the
//! headers) goes through the layer unchanged, its body only wrapped.
//!
//! # Examples
//!
//! ```
//! use http::{HeaderMap, Response};
//! use bytes::Bytes;
//! use http_body_util::{BodyExt, Full};
//! use palisade::{
//!     circuit_breaker::{CircuitBreakerLayer, CircuitState},
//!     classify::{GrpcErrorsAsFailures, GrpcTrailersLayer},
//! };
//! use tower::{Service, ServiceBuilder, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower::BoxError> {
//! let breaker = CircuitBreakerLayer::builder()
//!     .classifier(GrpcErrorsAsFailures::new().from_trailers())
//!     .consecutive_failures(1)
//!     .build()?;
//! let state = breaker.handle();
//! let mut client = ServiceBuilder::new()
//!     .layer(GrpcTrailersLayer::new())
//!     .layer(breaker)
//!     .service_fn(|_: ()| async {
//!         // A message, then trailers saying UNAVAILABLE.
//!         let mut trailers = HeaderMap::new();
//!         trailers.insert("grpc-status", "14".parse().unwrap());
//!         let body = Full::new(Bytes::from("msg")).with_trailers(async { Some(Ok(trailers)) });
//!         Ok::<_, std::io::Error>(Response::new(body))
//!     });
//!
//! let response = client.ready().await?.call(()).await?;
//! assert_eq!(state.state(), CircuitState::Closed); // not known yet
//! let _ = response.into_body().collect().await?;   // read to the end
//! assert_eq!(state.state(), CircuitState::Open);
//! # Ok(()) }
//! ```

use std::{
    fmt,
    future::Future,
    pin::Pin,
    task::{Context, Poll, ready},
};

use http::{HeaderMap, Response};
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use tower::{Layer, Service};

use super::{
    DeferredOutcome, Outcome,
    grpc::{grpc_status, is_failure},
};

/// The report a breaker left in a response's extensions, with the failure
/// set of its classifier.
#[derive(Clone)]
pub(super) struct PendingStatus {
    failures: u32,
    outcome: DeferredOutcome,
}

impl PendingStatus {
    pub(super) fn new(failures: u32, outcome: DeferredOutcome) -> PendingStatus {
        PendingStatus { failures, outcome }
    }

    /// Reports by the status in `trailers`, read as in the headers
    /// ([`grpc_status`]): a failure if it is one of the failure codes, else
    /// (another code, or no status) a success.
    fn finish(self, trailers: Option<&HeaderMap>) {
        let status = trailers.and_then(|trailers| trailers.get("grpc-status"));
        let outcome = match status {
            Some(status) if is_failure(self.failures, grpc_status(status)) => Outcome::Failure,
            _ => Outcome::Success,
        };
        self.outcome.report(outcome);
    }
}

/// A [`Layer`] that reads the gRPC status at the end of response bodies for
/// the breaker inside it; see [the module docs](self).
///
/// ```
/// let _ = palisade::classify::GrpcTrailersLayer::new();
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct GrpcTrailersLayer {
    _private: (),
}

impl GrpcTrailersLayer {
    /// The layer.
    ///
    /// ```
    /// let _ = palisade::classify::GrpcTrailersLayer::new();
    /// ```
    pub fn new() -> GrpcTrailersLayer {
        GrpcTrailersLayer { _private: () }
    }
}

impl<S> Layer<S> for GrpcTrailersLayer {
    type Service = GrpcTrailers<S>;

    fn layer(&self, inner: S) -> GrpcTrailers<S> {
        GrpcTrailers { inner }
    }
}

/// The service made by [`GrpcTrailersLayer`]: the wrapped service with its
/// response bodies wrapped in [`GrpcStatusBody`].
///
/// ```
/// use palisade::classify::{GrpcTrailersLayer, trailers::GrpcTrailers};
/// use tower::Layer;
/// let service: GrpcTrailers<_> = GrpcTrailersLayer::new()
///     .layer(tower::service_fn(|_: ()| async { Ok::<_, std::io::Error>(http::Response::new(String::new())) }));
/// # let _ = service;
/// ```
#[derive(Clone, Debug)]
pub struct GrpcTrailers<S> {
    inner: S,
}

impl<S, Req, B> Service<Req> for GrpcTrailers<S>
where
    S: Service<Req, Response = Response<B>>,
{
    type Response = Response<GrpcStatusBody<B>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Req) -> Self::Future {
        ResponseFuture {
            inner: self.inner.call(request),
        }
    }
}

pin_project! {
    /// The response future of [`GrpcTrailers`].
    ///
    /// # Cancellation
    ///
    /// Dropped before the response arrives, the wrapped future is dropped and a pending
    /// report of the call's outcome with it (a breaker counts the call as ignored). Once
    /// the response is out, its body carries the report: see the table in the module docs
    /// for a body dropped before its end.
    ///
    /// # Examples
    ///
    /// ```
    /// use palisade::classify::GrpcTrailersLayer;
    /// use tower::{Layer, Service};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let mut service = GrpcTrailersLayer::new()
    ///     .layer(tower::service_fn(|_: ()| async { Ok::<_, std::io::Error>(http::Response::new(String::new())) }));
    /// assert_eq!(service.call(()).await.unwrap().status(), 200);
    /// # }
    /// ```
    #[derive(Debug)]
    pub struct ResponseFuture<F> {
        #[pin]
        inner: F,
    }
}

impl<F, B, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<GrpcStatusBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut response = ready!(self.project().inner.poll(cx))?;
        let pending = response.extensions_mut().remove::<PendingStatus>();
        Poll::Ready(Ok(response.map(|inner| GrpcStatusBody { inner, pending })))
    }
}

pin_project! {
    /// A response body that reports the gRPC status of its trailers when
    /// it ends; see [the module docs](self). Frames pass through unchanged.
    ///
    /// ```
    /// use http_body_util::BodyExt;
    /// use palisade::classify::trailers::GrpcStatusBody;
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let body = GrpcStatusBody::new(String::from("hello"));
    /// assert_eq!(body.collect().await.unwrap().to_bytes(), "hello");
    /// # }
    /// ```
    pub struct GrpcStatusBody<B> {
        #[pin]
        inner: B,
        pending: Option<PendingStatus>,
    }
}

impl<B> GrpcStatusBody<B> {
    /// `inner`, with no report to make.
    ///
    /// ```
    /// let _ = palisade::classify::trailers::GrpcStatusBody::new(String::new());
    /// ```
    pub fn new(inner: B) -> GrpcStatusBody<B> {
        GrpcStatusBody {
            inner,
            pending: None,
        }
    }
}

impl<B: Default> Default for GrpcStatusBody<B> {
    fn default() -> GrpcStatusBody<B> {
        GrpcStatusBody::new(B::default())
    }
}

impl<B: Body> Body for GrpcStatusBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        let this = self.project();
        let frame = ready!(this.inner.poll_frame(cx));
        let ends = !matches!(&frame, Some(Ok(data)) if !data.is_trailers());
        if let Some(pending) = this.pending.take_if(|_| ends) {
            match &frame {
                Some(Ok(trailers)) => pending.finish(trailers.trailers_ref()),
                Some(Err(_)) => pending.outcome.report(Outcome::Failure),
                None => pending.finish(None),
            }
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        // While a report is pending, the end must be polled for, to make it.
        self.pending.is_none() && self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl<B: fmt::Debug> fmt::Debug for GrpcStatusBody<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GrpcStatusBody")
            .field("inner", &self.inner)
            .field("pending", &self.pending.is_some())
            .finish()
    }
}

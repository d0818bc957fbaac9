//! The response future of [`Adaptive`](super::Adaptive), and the timing of
//! the calls sampled.

use std::{
    fmt,
    future::Future,
    pin::Pin,
    task::{Context, Poll, ready},
};

use pin_project_lite::pin_project;
use tower::{BoxError, Service};

use super::{
    algorithm::{Algorithm, Sample},
    layer::Shared,
    service::Measured,
};
use crate::{
    bulkhead::future::ResponseFuture as Admitted,
    classify::{Classify, Outcome},
    clock::{Clock, Instant},
    sync::Arc,
};

pin_project! {
    /// The response future of [`Adaptive`](super::Adaptive): the call,
    /// admitted (or waiting, or refused with
    /// [`BulkheadFull`](crate::error::BulkheadFull)) at the limit.
    pub struct ResponseFuture<S, Req, A, K, C>
    where
        S: Service<Req>,
        S::Error: Into<BoxError>,
        A: Algorithm,
        K: Classify<S::Response, BoxError>,
        C: Clock,
    {
        #[pin]
        inner: Admitted<Measured<S, A, K, C>, Req, C>,
    }
}

impl<S, Req, A, K, C> ResponseFuture<S, Req, A, K, C>
where
    S: Service<Req>,
    S::Error: Into<BoxError>,
    A: Algorithm,
    K: Classify<S::Response, BoxError>,
    C: Clock,
{
    pub(crate) fn new(inner: Admitted<Measured<S, A, K, C>, Req, C>) -> Self {
        ResponseFuture { inner }
    }
}

impl<S, Req, A, K, C> Future for ResponseFuture<S, Req, A, K, C>
where
    S: Service<Req>,
    S::Error: Into<BoxError>,
    A: Algorithm,
    K: Classify<S::Response, BoxError>,
    C: Clock,
{
    type Output = Result<S::Response, BoxError>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.project().inner.poll(cx)
    }
}

impl<S, Req, A, K, C> fmt::Debug for ResponseFuture<S, Req, A, K, C>
where
    S: Service<Req>,
    S::Error: Into<BoxError>,
    A: Algorithm,
    K: Classify<S::Response, BoxError>,
    C: Clock,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

pin_project! {
    /// A call admitted: timed if sampled, and then given to the algorithm.
    /// Dropped before it ends (cancelled), it is no sample.
    pub(crate) struct Measuring<F, A, K, C> {
        #[pin]
        future: F,
        timed: Option<(Instant, u32, Arc<Shared<A, K, C>>)>,
    }
}

impl<F, A, K, C> Measuring<F, A, K, C> {
    #[inline]
    pub(crate) fn untimed(future: F) -> Self {
        Measuring {
            future,
            timed: None,
        }
    }

    pub(crate) fn timed(
        future: F,
        started: Instant,
        in_flight: u32,
        shared: Arc<Shared<A, K, C>>,
    ) -> Self {
        Measuring {
            future,
            timed: Some((started, in_flight, shared)),
        }
    }
}

impl<F, T, E, A, K, C> Future for Measuring<F, A, K, C>
where
    F: Future<Output = Result<T, E>>,
    E: Into<BoxError>,
    A: Algorithm,
    K: Classify<T, BoxError>,
    C: Clock,
{
    type Output = Result<T, BoxError>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = ready!(this.future.poll(cx)).map_err(Into::into);
        if let Some((started, in_flight, shared)) = this.timed.take() {
            let dropped = shared.classifier.classify(&result) == Outcome::Failure;
            // One read of the clock: the call's end, for its round trip and
            // for the algorithm.
            let now = shared.clock.now();
            let rtt = now.saturating_duration_since(started);
            shared.learn(
                Sample {
                    rtt,
                    in_flight,
                    dropped,
                },
                now,
            );
        }
        Poll::Ready(result)
    }
}

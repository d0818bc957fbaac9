//! The adaptive limit as a [`Service`]: a bulkhead whose bound the
//! algorithm sets, over the wrapped service timed.

use std::{
    cell::Cell,
    fmt,
    task::{Context, Poll},
};

use tower::{BoxError, Service};

use super::{
    algorithm::Algorithm,
    future::{Measuring, ResponseFuture},
    layer::Shared,
};
use crate::{
    bulkhead::Bulkhead,
    classify::{Classify, ErrorsAsFailures},
    clock::{Clock, TokioClock},
    sync::Arc,
};

/// A service that bounds the calls in flight to the one it wraps at an
/// adaptive limit; made by [`AdaptiveLayer`](super::AdaptiveLayer).
///
/// ```
/// use palisade::adaptive::{Adaptive, AdaptiveLayer, Aimd};
/// use tower::{Layer, service_fn};
///
/// let layer = AdaptiveLayer::builder(Aimd::new(10)).build().unwrap();
/// let service: Adaptive<_, Aimd> =
///     layer.layer(service_fn(|x: u32| async move { Ok::<_, std::io::Error>(x) }));
/// # let _ = service;
/// ```
pub struct Adaptive<S, A, K = ErrorsAsFailures, C = TokioClock> {
    inner: Bulkhead<Measured<S, A, K, C>, C>,
}

impl<S, A, K, C> Adaptive<S, A, K, C> {
    pub(crate) fn new(inner: Bulkhead<Measured<S, A, K, C>, C>) -> Self {
        Adaptive { inner }
    }

    /// The wrapped service.
    ///
    /// ```
    /// use palisade::adaptive::{AdaptiveLayer, Aimd};
    /// use tower::Layer;
    /// let layer = AdaptiveLayer::builder(Aimd::new(10)).build().unwrap();
    /// assert_eq!(*layer.layer(7u8).get_ref(), 7);
    /// ```
    pub fn get_ref(&self) -> &S {
        &self.inner.get_ref().inner
    }
}

impl<S, A, K, C, Req> Service<Req> for Adaptive<S, A, K, C>
where
    S: Service<Req> + Clone,
    S::Error: Into<BoxError>,
    A: Algorithm,
    K: Classify<S::Response, BoxError>,
    C: Clock,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = ResponseFuture<S, Req, A, K, C>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx)
    }

    #[inline]
    fn call(&mut self, request: Req) -> Self::Future {
        ResponseFuture::new(self.inner.call(request))
    }
}

impl<S: Clone, A, K, C> Clone for Adaptive<S, A, K, C> {
    fn clone(&self) -> Self {
        Adaptive {
            inner: self.inner.clone(),
        }
    }
}

impl<S: fmt::Debug, A, K, C> fmt::Debug for Adaptive<S, A, K, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Adaptive")
            .field("inner", &self.inner.get_ref().inner)
            .field(
                "limit",
                &self.inner.get_ref().shared.bulkhead.max_concurrent(),
            )
            .finish_non_exhaustive()
    }
}

/// The wrapped service inside the bulkhead: times the calls sampled, and
/// gives the algorithm what they came to.
pub(crate) struct Measured<S, A, K, C> {
    inner: S,
    shared: Arc<Shared<A, K, C>>,
}

impl<S, A, K, C> Measured<S, A, K, C> {
    pub(crate) fn new(inner: S, shared: Arc<Shared<A, K, C>>) -> Self {
        Measured { inner, shared }
    }
}

impl<S, A, K, C, Req> Service<Req> for Measured<S, A, K, C>
where
    S: Service<Req>,
    S::Error: Into<BoxError>,
    A: Algorithm,
    K: Classify<S::Response, BoxError>,
    C: Clock,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = Measuring<S::Future, A, K, C>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    #[inline]
    fn call(&mut self, request: Req) -> Self::Future {
        let shared = &self.shared;
        let sampled = shared.sample_every == 1 || next_call() % shared.sample_every == 0;
        let future = self.inner.call(request);
        if !sampled {
            return Measuring::untimed(future);
        }
        // Admitted by the bulkhead: its permit is counted.
        let in_flight = u32::try_from(shared.bulkhead.in_flight()).unwrap_or(u32::MAX);
        Measuring::timed(future, shared.clock.now(), in_flight, Arc::clone(shared))
    }
}

thread_local! {
    /// Calls made through adaptive limits on this thread, for the sampling:
    /// counted here rather than in the layer, so that a call that is not a
    /// sample writes nothing shared.
    static CALLS: Cell<u64> = const { Cell::new(0) };
}

/// This thread's call count, then one more.
fn next_call() -> u64 {
    CALLS.with(|calls| {
        let n = calls.get();
        calls.set(n.wrapping_add(1));
        n
    })
}

impl<S: Clone, A, K, C> Clone for Measured<S, A, K, C> {
    fn clone(&self) -> Self {
        Measured::new(self.inner.clone(), Arc::clone(&self.shared))
    }
}

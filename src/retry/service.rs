//! The retry layer as a [`Service`].

use std::{
    fmt,
    task::{Context, Poll},
};

use tower::{BoxError, Service};

use super::{
    future::ResponseFuture,
    layer::Shared,
    policy::{CloneRequest, CloneRequests, RetryErrors, RetryPolicy},
};
use crate::{
    clock::{Clock, TokioClock},
    deferred::take_ready,
    random::{FastRandom, Random},
    sync::Arc,
};

/// A service whose failed calls are retried; made by
/// [`RetryLayer`](super::RetryLayer).
///
/// Each call takes the service that `poll_ready` made ready for it, and the
/// layer keeps a clone for the next call — the wrapped service must be
/// `Clone`, as for tower's `Retry`. Before every further attempt the response
/// future drives that service's `poll_ready` to `Ready`; it never calls it
/// without.
///
/// # Examples
///
/// ```
/// use palisade::retry::{Retry, RetryLayer};
/// use tower::{Layer, service_fn};
///
/// let layer = RetryLayer::builder().build().unwrap();
/// let service: Retry<_> = layer.layer(service_fn(|x: u32| async move { Ok::<_, std::io::Error>(x) }));
/// # let _ = service;
/// ```
pub struct Retry<
    S,
    P = RetryErrors,
    Q = CloneRequests,
    C: Clock = TokioClock,
    R: Random = FastRandom,
> {
    inner: S,
    shared: Arc<Shared<P, Q, C, R>>,
}

impl<S, P, Q, C: Clock, R: Random> Retry<S, P, Q, C, R> {
    pub(crate) fn new(inner: S, shared: Arc<Shared<P, Q, C, R>>) -> Self {
        Retry { inner, shared }
    }

    /// The wrapped service.
    ///
    /// ```
    /// use tower::Layer;
    /// let service = palisade::retry::RetryLayer::builder().build().unwrap().layer(5u8);
    /// assert_eq!(*service.get_ref(), 5);
    /// ```
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The wrapped service, mutably.
    ///
    /// ```
    /// use tower::Layer;
    /// let mut service = palisade::retry::RetryLayer::builder().build().unwrap().layer(5u8);
    /// *service.get_mut() = 6;
    /// assert_eq!(*service.get_ref(), 6);
    /// ```
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The wrapped service, unwrapped.
    ///
    /// ```
    /// use tower::Layer;
    /// let service = palisade::retry::RetryLayer::builder().build().unwrap().layer("inner");
    /// assert_eq!(service.into_inner(), "inner");
    /// ```
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, P, Q, C, R, Req> Service<Req> for Retry<S, P, Q, C, R>
where
    S: Service<Req> + Clone,
    S::Error: Into<BoxError>,
    P: RetryPolicy<Req, S::Response>,
    Q: CloneRequest<Req>,
    C: Clock,
    R: Random,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = ResponseFuture<S, Req, P, Q, C, R>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    #[inline]
    fn call(&mut self, request: Req) -> Self::Future {
        let ready = take_ready(&mut self.inner);
        ResponseFuture::new(ready, request, Arc::clone(&self.shared))
    }
}

impl<S: Clone, P, Q, C: Clock, R: Random> Clone for Retry<S, P, Q, C, R> {
    fn clone(&self) -> Self {
        Retry::new(self.inner.clone(), Arc::clone(&self.shared))
    }
}

impl<S: fmt::Debug, P, Q, C: Clock, R: Random> fmt::Debug for Retry<S, P, Q, C, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Retry")
            .field("inner", &self.inner)
            .field("retry", &self.shared)
            .finish()
    }
}

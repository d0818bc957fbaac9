//! The retry layer as a [`Service`].

use std::{
    fmt,
    task::{Context, Poll},
};

use tower::{BoxError, Service};

use super::{
    future::ResponseFuture,
    layer::Shared,
    policy::{RequestCloner, RetryErrors, RetryPolicy, ViaClone},
};
use crate::{
    clock::{Clock, TokioClock},
    random::{FastRandom, Random},
    sync::{Arc, Mutex, lock},
};

/// A service whose failed calls are retried; made by
/// [`RetryLayer`](super::RetryLayer).
///
/// The first attempt is made on the service that `poll_ready` made ready for
/// it. A further attempt is made on a fresh clone of the service as the
/// layer wrapped it (kept aside when the layer made this service, shared by
/// its clones), so the wrapped service must be `Clone`, as for tower's
/// `Retry` — but a call that is not retried clones nothing: around a deep
/// stack that is one reference count per call instead of one per layer.
/// Before every further attempt the response future drives that clone's
/// `poll_ready` to `Ready`; it never calls it without.
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
pub struct Retry<S, P = RetryErrors, Q = ViaClone, C: Clock = TokioClock, R: Random = FastRandom> {
    inner: S,
    spare: Arc<Spare<S, P, Q, C, R>>,
}

/// What a call's future needs besides its first attempt: the layer's
/// settings, and the service further attempts are made on clones of.
pub(crate) struct Spare<S, P, Q, C, R> {
    pub(crate) shared: Arc<Shared<P, Q, C, R>>,
    prototype: Mutex<S>,
}

impl<S: Clone, P, Q, C, R> Spare<S, P, Q, C, R> {
    /// A fresh clone of the service, for another attempt.
    pub(crate) fn service(&self) -> S {
        lock(&self.prototype).clone()
    }
}

impl<S, P, Q, C: Clock, R: Random> Retry<S, P, Q, C, R> {
    pub(crate) fn new(inner: S, shared: Arc<Shared<P, Q, C, R>>) -> Self
    where
        S: Clone,
    {
        let prototype = Mutex::new(inner.clone());
        Retry {
            inner,
            spare: Arc::new(Spare { shared, prototype }),
        }
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
    Q: RequestCloner<Req>,
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
        ResponseFuture::new(&mut self.inner, request, Arc::clone(&self.spare))
    }
}

impl<S: Clone, P, Q, C: Clock, R: Random> Clone for Retry<S, P, Q, C, R> {
    fn clone(&self) -> Self {
        Retry {
            inner: self.inner.clone(),
            spare: Arc::clone(&self.spare),
        }
    }
}

impl<S: fmt::Debug, P, Q, C: Clock, R: Random> fmt::Debug for Retry<S, P, Q, C, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Retry")
            .field("inner", &self.inner)
            .field("retry", &self.spare.shared)
            .finish()
    }
}

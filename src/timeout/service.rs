//! The timeout as a [`Service`].

use std::{
    fmt,
    task::{Context, Poll},
};

use tower::{BoxError, Service};

use super::{
    future::{Held, ResponseFuture},
    layer::{FixedTimeout, Shared, TimeoutFor},
};
use crate::{
    clock::{Clock, TokioClock, nanos},
    sync::{Arc, Ordering},
};

/// A service whose calls fail when they take too long; made by
/// [`TimeoutLayer`](super::TimeoutLayer).
///
/// ```
/// use std::time::Duration;
/// use palisade::timeout::{Timeout, TimeoutLayer};
/// use tower::{Layer, service_fn};
///
/// let layer = TimeoutLayer::builder(Duration::from_secs(1)).build().unwrap();
/// let service: Timeout<_> = layer.layer(service_fn(|x: u32| async move { Ok::<_, std::io::Error>(x) }));
/// # let _ = service;
/// ```
pub struct Timeout<S, T = FixedTimeout, C = TokioClock> {
    inner: S,
    shared: Arc<Shared<T, C>>,
}

impl<S, T, C> Timeout<S, T, C> {
    pub(crate) fn new(inner: S, shared: Arc<Shared<T, C>>) -> Self {
        Timeout { inner, shared }
    }

    /// The wrapped service.
    ///
    /// ```
    /// # use std::time::Duration;
    /// use tower::Layer;
    /// let service = palisade::timeout::TimeoutLayer::builder(Duration::from_secs(1)).build().unwrap().layer(5u8);
    /// assert_eq!(*service.get_ref(), 5);
    /// ```
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The wrapped service, mutably.
    ///
    /// ```
    /// # use std::time::Duration;
    /// use tower::Layer;
    /// let mut service = palisade::timeout::TimeoutLayer::builder(Duration::from_secs(1)).build().unwrap().layer(5u8);
    /// *service.get_mut() = 6;
    /// assert_eq!(*service.get_ref(), 6);
    /// ```
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The wrapped service, unwrapped.
    ///
    /// ```
    /// # use std::time::Duration;
    /// use tower::Layer;
    /// let service = palisade::timeout::TimeoutLayer::builder(Duration::from_secs(1)).build().unwrap().layer("inner");
    /// assert_eq!(service.into_inner(), "inner");
    /// ```
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, T, C, Req> Service<Req> for Timeout<S, T, C>
where
    S: Service<Req>,
    S::Error: Into<BoxError>,
    T: TimeoutFor<Req>,
    C: Clock,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = ResponseFuture<S::Future, T, C>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    #[inline]
    fn call(&mut self, request: Req) -> Self::Future {
        // A request that asks for less than the layer's own time sets the
        // deadline itself: reaching it is the caller's choice.
        let ours = self.shared.timeout.load(Ordering::Relaxed);
        let (timeout, asked) = match self.shared.per_request.timeout_for(&request) {
            Some(asked) if nanos(asked) < ours => (nanos(asked), true),
            _ => (ours, false),
        };
        let shared = &self.shared;
        let held = if shared.quiet {
            Held::Clock(shared.clock.clone())
        } else {
            Held::Layer(Arc::clone(shared))
        };
        ResponseFuture::new(self.inner.call(request), timeout, asked, held)
    }
}

impl<S: Clone, T, C> Clone for Timeout<S, T, C> {
    fn clone(&self) -> Self {
        Timeout::new(self.inner.clone(), Arc::clone(&self.shared))
    }
}

impl<S: fmt::Debug, T, C> fmt::Debug for Timeout<S, T, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Timeout")
            .field("inner", &self.inner)
            .field("timeout", &self.shared)
            .finish()
    }
}

//! Hedging as a [`Service`].

use std::{
    fmt,
    task::{Context, Poll},
};

use tower::{BoxError, Service};

use super::{future::ResponseFuture, layer::Shared};
use crate::{
    classify::{Classify, ErrorsAsFailures},
    clock::{Clock, TokioClock},
    retry::{RequestCloner, ViaClone},
    sync::Arc,
};

/// A service that sends another attempt at a request still unanswered
/// after a delay; made by [`HedgeLayer`](super::HedgeLayer).
///
/// # Clone
///
/// Extra attempts go to clones of the wrapped service, made when the
/// request is: it must be `Clone`, and cheap to clone (a client handle, a
/// `service_fn`), as tower's `Hedge` requires.
///
/// ```
/// use std::time::Duration;
/// use palisade::hedge::{Delay, Hedge, HedgeLayer};
/// use tower::{Layer, service_fn};
///
/// let layer = HedgeLayer::builder(Delay::Fixed(Duration::from_millis(10))).build().unwrap();
/// let service: Hedge<_> = layer.layer(service_fn(|x: u32| async move { Ok::<_, std::io::Error>(x) }));
/// # let _ = service;
/// ```
pub struct Hedge<S, K = ErrorsAsFailures, Q = ViaClone, C = TokioClock> {
    inner: S,
    shared: Arc<Shared<K, Q, C>>,
}

impl<S, K, Q, C> Hedge<S, K, Q, C> {
    pub(crate) fn new(inner: S, shared: Arc<Shared<K, Q, C>>) -> Self {
        Hedge { inner, shared }
    }

    /// The wrapped service.
    ///
    /// ```
    /// # use std::time::Duration;
    /// use tower::Layer;
    /// let layer = palisade::hedge::HedgeLayer::builder(palisade::hedge::Delay::Fixed(Duration::from_millis(5))).build().unwrap();
    /// assert_eq!(*layer.layer(3u8).get_ref(), 3);
    /// ```
    pub fn get_ref(&self) -> &S {
        &self.inner
    }
}

impl<S, K, Q, C, Req> Service<Req> for Hedge<S, K, Q, C>
where
    S: Service<Req> + Clone,
    S::Error: Into<BoxError>,
    K: Classify<S::Response, BoxError>,
    Q: RequestCloner<Req>,
    C: Clock,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = ResponseFuture<S, Req, K, Q, C>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    #[inline]
    fn call(&mut self, request: Req) -> Self::Future {
        let shared = &self.shared;
        shared.budget.deposit();
        // What an extra attempt needs: a copy of the request, a service.
        let spare = match shared.max_extra {
            0 => None,
            _ => shared
                .cloner
                .clone_request(&request)
                .map(|request| (request, self.inner.clone())),
        };
        ResponseFuture::new(self.inner.call(request), spare, Arc::clone(shared))
    }
}

impl<S: Clone, K, Q, C> Clone for Hedge<S, K, Q, C> {
    fn clone(&self) -> Self {
        Hedge::new(self.inner.clone(), Arc::clone(&self.shared))
    }
}

impl<S: fmt::Debug, K, Q, C> fmt::Debug for Hedge<S, K, Q, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hedge")
            .field("inner", &self.inner)
            .field("hedge", &self.shared)
            .finish()
    }
}

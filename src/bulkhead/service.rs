//! The bulkhead as a [`Service`].

use std::{
    fmt,
    task::{Context, Poll},
};

use tower::{BoxError, Service};

use super::{
    future::{Permit, ResponseFuture},
    layer::Shared,
};
use crate::{
    clock::{Clock, TokioClock},
    error::{BulkheadFull, RejectionKind},
    observe::EventKind,
    sync::Arc,
};

/// A service behind a bulkhead; made by
/// [`BulkheadLayer`](super::BulkheadLayer).
///
/// ```
/// use palisade::bulkhead::{Bulkhead, BulkheadLayer};
/// use tower::{Layer, service_fn};
///
/// let layer = BulkheadLayer::builder(8).build().unwrap();
/// let service: Bulkhead<_> = layer.layer(service_fn(|x: u32| async move { Ok::<_, std::io::Error>(x) }));
/// # let _ = service;
/// ```
pub struct Bulkhead<S, C = TokioClock> {
    inner: S,
    shared: Arc<Shared<C>>,
}

impl<S, C> Bulkhead<S, C> {
    pub(crate) fn new(inner: S, shared: Arc<Shared<C>>) -> Self {
        Bulkhead { inner, shared }
    }

    /// The wrapped service.
    ///
    /// ```
    /// use tower::Layer;
    /// let service = palisade::bulkhead::BulkheadLayer::builder(1).build().unwrap().layer(5u8);
    /// assert_eq!(*service.get_ref(), 5);
    /// ```
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The wrapped service, mutably.
    ///
    /// ```
    /// use tower::Layer;
    /// let mut service = palisade::bulkhead::BulkheadLayer::builder(1).build().unwrap().layer(5u8);
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
    /// let service = palisade::bulkhead::BulkheadLayer::builder(1).build().unwrap().layer("inner");
    /// assert_eq!(service.into_inner(), "inner");
    /// ```
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, C, Req> Service<Req> for Bulkhead<S, C>
where
    S: Service<Req>,
    S::Error: Into<BoxError>,
    C: Clock,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = ResponseFuture<S::Future, C>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    #[inline]
    fn call(&mut self, request: Req) -> Self::Future {
        if !self.shared.permits.try_acquire() {
            let observer = &self.shared.observer;
            if observer.is_active() {
                let kind = RejectionKind::BulkheadFull;
                let rejected = EventKind::Rejected {
                    kind,
                    retry_after: None,
                };
                observer.emit(self.shared.clock.now(), rejected);
            }
            return ResponseFuture::rejected(BulkheadFull::new(observer.name().clone(), None));
        }
        let permit = Permit::new(Arc::clone(&self.shared));
        ResponseFuture::called(self.inner.call(request), permit)
    }
}

impl<S: Clone, C> Clone for Bulkhead<S, C> {
    fn clone(&self) -> Self {
        Bulkhead::new(self.inner.clone(), Arc::clone(&self.shared))
    }
}

impl<S: fmt::Debug, C> fmt::Debug for Bulkhead<S, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Bulkhead")
            .field("inner", &self.inner)
            .field("bulkhead", &self.shared)
            .finish()
    }
}

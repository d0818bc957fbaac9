//! The bulkhead as a [`Service`].

use std::{
    fmt,
    task::{Context, Poll},
};

use tower::{BoxError, Service};

use super::{
    future::{Permit, ResponseFuture, Ticket},
    layer::Shared,
    queue::Enqueued,
};
use crate::{
    clock::{Clock, TokioClock},
    deferred::take_ready,
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
    S: Service<Req> + Clone,
    S::Error: Into<BoxError>,
    C: Clock,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = ResponseFuture<S, Req, C>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    #[inline]
    fn call(&mut self, request: Req) -> Self::Future {
        let shared = &self.shared;
        if shared.permits.try_acquire() {
            let permit = Permit::new(Arc::clone(shared));
            return ResponseFuture::called(self.inner.call(request), permit);
        }
        self.full(request)
    }
}

impl<S, C: Clock> Bulkhead<S, C> {
    /// Every permit is taken: wait in the queue if there is one and it has
    /// room, else refuse.
    #[cold]
    fn full<Req>(&mut self, request: Req) -> ResponseFuture<S, Req, C>
    where
        S: Service<Req> + Clone,
    {
        let shared = &self.shared;
        if shared.queue.is_open() {
            match shared.queue.enqueue(&shared.permits) {
                Enqueued::Admitted => {
                    let permit = Permit::new(Arc::clone(shared));
                    return ResponseFuture::called(self.inner.call(request), permit);
                }
                Enqueued::Queued(id, max_wait) => {
                    let deadline = shared.clock.now().saturating_add(max_wait);
                    let sleep = shared.clock.sleep_until(deadline);
                    let ready = take_ready(&mut self.inner);
                    let ticket = Ticket::new(id, Arc::clone(shared));
                    return ResponseFuture::waiting(ticket, sleep, ready, request);
                }
                Enqueued::Full => {}
            }
        }
        let observer = &shared.observer;
        if shared.observed {
            let kind = RejectionKind::BulkheadFull;
            let rejected = EventKind::Rejected {
                kind,
                retry_after: None,
            };
            observer.emit(shared.clock.now(), rejected);
        }
        ResponseFuture::rejected(BulkheadFull::new(observer.name().clone(), None))
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

//! The rate limiter as a [`Service`].

use std::{
    fmt,
    pin::Pin,
    task::{Context, Poll},
};

use tower::{BoxError, Service};

use super::{
    config::Mode,
    future::ResponseFuture,
    request::{Cost, KeyExtractor, NoKey, UnitCost},
    shared::{Admission, Shared},
};
use crate::{
    clock::{Clock, Sleep, TokioClock},
    deferred::take_ready,
    sync::Arc,
};

/// A service behind a rate limit; made by
/// [`RateLimitLayer`](super::RateLimitLayer).
///
/// Every `RateLimit` made by one layer, and every clone of one, counts
/// against the layer's limit.
///
/// # Examples
///
/// ```
/// use palisade::rate_limit::{RateLimit, RateLimitLayer};
/// use tower::{Layer, service_fn};
///
/// let layer = RateLimitLayer::builder().build().unwrap();
/// let service: RateLimit<_> = layer.layer(service_fn(|()| async { Ok::<_, std::io::Error>(()) }));
/// # let _ = service;
/// ```
///
/// # Panics
///
/// In backpressure mode, `call` panics when `poll_ready` did not return
/// `Ready` first (the unit of the limit is taken there), as tower's own
/// `RateLimit` does.
///
/// # Clone
///
/// The wrapped service must be `Clone`: a request that waits for reserved
/// capacity takes the service that was made ready for it into its response
/// future, and the layer keeps a clone for the next request — as tower's
/// `Buffer` and `Retry` do. A request admitted at once uses the service in
/// place; nothing is cloned. A clone does not share a unit `poll_ready` took
/// in backpressure mode: call `poll_ready` on the clone before calling it.
pub struct RateLimit<S, X = NoKey, W = UnitCost, C: Clock = TokioClock> {
    inner: S,
    shared: Arc<Shared<X, W, C>>,
    /// Backpressure mode: a unit of the limit `poll_ready` took for the next
    /// call.
    reserved: bool,
    /// Backpressure mode: the timer that wakes the task when a unit is due.
    sleep: Option<Pin<Box<C::Sleep>>>,
}

impl<S, X, W, C: Clock> RateLimit<S, X, W, C> {
    pub(crate) fn new(inner: S, shared: Arc<Shared<X, W, C>>) -> Self {
        RateLimit {
            inner,
            shared,
            reserved: false,
            sleep: None,
        }
    }

    /// The wrapped service.
    ///
    /// ```
    /// use tower::Layer;
    /// let service = palisade::rate_limit::RateLimitLayer::builder().build().unwrap().layer(5u8);
    /// assert_eq!(*service.get_ref(), 5);
    /// ```
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The wrapped service, mutably.
    ///
    /// ```
    /// use tower::Layer;
    /// let mut service = palisade::rate_limit::RateLimitLayer::builder().build().unwrap().layer(5u8);
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
    /// let service = palisade::rate_limit::RateLimitLayer::builder().build().unwrap().layer("inner");
    /// assert_eq!(service.into_inner(), "inner");
    /// ```
    pub fn into_inner(self) -> S {
        self.inner
    }

    /// Backpressure mode: takes a unit, or registers to be woken when one
    /// is due.
    fn poll_unit(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        while !self.reserved {
            match self.shared.take_unit() {
                Ok(()) => self.reserved = true,
                Err(due) => {
                    let sleep = self
                        .sleep
                        .get_or_insert_with(|| Box::pin(self.shared.clock.sleep_until(due)));
                    sleep.as_mut().reset(due);
                    if sleep.as_mut().poll(cx).is_pending() {
                        return Poll::Pending;
                    }
                }
            }
        }
        Poll::Ready(())
    }
}

impl<S, X, W, C, Req> Service<Req> for RateLimit<S, X, W, C>
where
    S: Service<Req> + Clone,
    S::Error: Into<BoxError>,
    X: KeyExtractor<Req>,
    W: Cost<Req>,
    C: Clock,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = ResponseFuture<S, Req, C>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        if self.shared.mode == Mode::Backpressure && self.poll_unit(cx).is_pending() {
            return Poll::Pending;
        }
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    #[inline]
    fn call(&mut self, request: Req) -> Self::Future {
        if self.shared.mode == Mode::Backpressure {
            assert!(
                std::mem::take(&mut self.reserved),
                "RateLimit called without poll_ready returning Ready first"
            );
            return ResponseFuture::called(self.inner.call(request));
        }
        match self.shared.admit(&request) {
            Admission::Now => ResponseFuture::called(self.inner.call(request)),
            Admission::At(due) => {
                let ready = take_ready(&mut self.inner);
                ResponseFuture::waiting(self.shared.clock.sleep_until(due), ready, request)
            }
            Admission::Queued(queued) => {
                let (key, admitted) = *queued;
                let ticket = self.shared.ticket(key, admitted);
                ResponseFuture::queued(
                    ticket,
                    &self.shared.clock,
                    take_ready(&mut self.inner),
                    request,
                )
            }
            Admission::Refused(error) => ResponseFuture::rejected(error),
        }
    }
}

impl<S: Clone, X, W, C: Clock> Clone for RateLimit<S, X, W, C> {
    fn clone(&self) -> Self {
        RateLimit::new(self.inner.clone(), Arc::clone(&self.shared))
    }
}

impl<S: fmt::Debug, X, W, C: Clock> fmt::Debug for RateLimit<S, X, W, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimit")
            .field("inner", &self.inner)
            .field("limiter", &self.shared)
            .field("reserved", &self.reserved)
            .finish()
    }
}

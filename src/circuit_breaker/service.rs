//! The breaker as a [`Service`].

use std::{
    fmt,
    pin::Pin,
    task::{Context, Poll},
};

use tower::{BoxError, Service};

use super::{
    config::Mode,
    future::{Guard, ResponseFuture},
    shared::{CloneRef, Refusal, Shared},
};
use crate::{
    classify::{Classify, ErrorsAsFailures},
    clock::{Clock, Sleep, TokioClock},
    random::{FastRandom, Random},
    sync::Arc,
};

/// A service wrapped in a circuit breaker; made by
/// [`CircuitBreakerLayer`](super::CircuitBreakerLayer).
///
/// Every `CircuitBreaker` made by one layer, and every clone of one, shares
/// the layer's breaker.
///
/// # Examples
///
/// ```
/// use palisade::circuit_breaker::{CircuitBreaker, CircuitBreakerLayer};
/// use tower::{Layer, service_fn};
///
/// let layer = CircuitBreakerLayer::builder().consecutive_failures(3).build().unwrap();
/// let service: CircuitBreaker<_> = layer.layer(service_fn(|()| async { Ok::<_, std::io::Error>(()) }));
/// # let _ = service;
/// ```
///
/// # Clone
///
/// A clone shares the breaker but not a permit reserved by `poll_ready` in
/// backpressure mode: call `poll_ready` on the clone before calling it.
pub struct CircuitBreaker<S, K = ErrorsAsFailures, C: Clock = TokioClock, R: Random = FastRandom> {
    inner: S,
    shared: CloneRef<K, C, R>,
    /// Backpressure mode: the permit `poll_ready` obtained for the next call.
    reserved: Option<Guard<K, C, R>>,
    /// Backpressure mode: a timer to wake up when an open breaker's wait ends.
    sleep: Option<Pin<Box<C::Sleep>>>,
}

impl<S, K, C: Clock, R: Random> CircuitBreaker<S, K, C, R> {
    pub(crate) fn new(inner: S, shared: &Arc<Shared<K, C, R>>) -> Self {
        CircuitBreaker {
            inner,
            shared: Arc::new(Arc::clone(shared)),
            reserved: None,
            sleep: None,
        }
    }

    /// The wrapped service.
    ///
    /// ```
    /// use palisade::circuit_breaker::CircuitBreakerLayer;
    /// use tower::Layer;
    /// let service = CircuitBreakerLayer::builder().build().unwrap().layer(5u8);
    /// assert_eq!(*service.get_ref(), 5);
    /// ```
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The wrapped service, mutably.
    ///
    /// ```
    /// use palisade::circuit_breaker::CircuitBreakerLayer;
    /// use tower::Layer;
    /// let mut service = CircuitBreakerLayer::builder().build().unwrap().layer(5u8);
    /// *service.get_mut() = 6;
    /// assert_eq!(service.into_inner(), 6);
    /// ```
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The wrapped service, unwrapped.
    ///
    /// ```
    /// use palisade::circuit_breaker::CircuitBreakerLayer;
    /// use tower::Layer;
    /// let service = CircuitBreakerLayer::builder().build().unwrap().layer("inner");
    /// assert_eq!(service.into_inner(), "inner");
    /// ```
    pub fn into_inner(self) -> S {
        self.inner
    }

    /// Backpressure mode: holds a permit, or registers to be woken when one
    /// may be had.
    fn poll_permit(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        while self.reserved.is_none() {
            match self.shared.admit(Some(cx.waker())) {
                Ok(permit) => self.reserved = Some(Guard::new(Arc::clone(&self.shared), permit)),
                Err(Refusal {
                    until: Some(until), ..
                }) => {
                    let sleep = self
                        .sleep
                        .get_or_insert_with(|| Box::pin(self.shared.clock.sleep_until(until)));
                    sleep.as_mut().reset(until);
                    if sleep.as_mut().poll(cx).is_pending() {
                        return Poll::Pending;
                    }
                }
                Err(_) => return Poll::Pending,
            }
        }
        Poll::Ready(())
    }
}

impl<S, K, C, R, Req> Service<Req> for CircuitBreaker<S, K, C, R>
where
    S: Service<Req>,
    S::Error: Into<BoxError> + 'static,
    K: Classify<S::Response, S::Error>,
    C: Clock,
    R: Random,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = ResponseFuture<S::Future, K, C, R>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        if self.shared.mode == Mode::Backpressure && self.poll_permit(cx).is_pending() {
            return Poll::Pending;
        }
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    // Always inlined: the caller then writes the response future in place;
    // returned from a call, it was copied twice in a stack of layers.
    #[inline(always)]
    fn call(&mut self, request: Req) -> Self::Future {
        let reserved = self.reserved.take();
        let mut guard = match reserved {
            Some(guard) => guard,
            None => match self.shared.admit(None) {
                // A permit that owes nothing if the wrapped `call` panics (no
                // probe slot), for a call that is not timed: the guard is made
                // after the call, straight into the response future. Made
                // before, it would be copied there across the call, a copy
                // that stalls on the stores that just wrote it.
                Ok(permit) if !permit.is_probe() && !self.shared.times_calls() => {
                    let future = self.inner.call(request);
                    let guard = Guard::called(Arc::clone(&self.shared), permit);
                    return ResponseFuture::called(future, guard);
                }
                Ok(permit) => Guard::new(Arc::clone(&self.shared), permit),
                Err(refusal) => return ResponseFuture::rejected(self.shared.rejection(&refusal)),
            },
        };
        guard.start();
        ResponseFuture::called(self.inner.call(request), guard)
    }
}

impl<S: Clone, K, C: Clock, R: Random> Clone for CircuitBreaker<S, K, C, R> {
    fn clone(&self) -> Self {
        CircuitBreaker::new(self.inner.clone(), &self.shared)
    }
}

impl<S: fmt::Debug, K, C: Clock, R: Random> fmt::Debug for CircuitBreaker<S, K, C, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CircuitBreaker")
            .field("inner", &self.inner)
            .field("breaker", &self.shared)
            .field("reserved", &self.reserved)
            .finish()
    }
}

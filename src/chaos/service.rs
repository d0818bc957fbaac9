//! The chaos layer as a [`Service`].

use std::{
    fmt,
    task::{Context, Poll},
};

use tower::{BoxError, Service};

use super::{
    future::{Next, ResponseFuture},
    layer::{Plan, Shared, Then},
};
use crate::{
    clock::{Clock, TokioClock},
    random::{FastRandom, Random},
    sync::Arc,
};

/// A service that injects faults and latency into the calls to the one it
/// wraps; made by [`ChaosLayer`](super::ChaosLayer).
///
/// ```
/// use palisade::chaos::{Chaos, ChaosLayer};
/// use tower::{Layer, service_fn};
///
/// let layer = ChaosLayer::builder().error(0.1).build().unwrap();
/// let service: Chaos<_, u32, u32> =
///     layer.layer(service_fn(|x: u32| async move { Ok::<_, std::io::Error>(x) }));
/// # let _ = service;
/// ```
pub struct Chaos<S, Req, Res, C = TokioClock, R = FastRandom> {
    inner: S,
    shared: Arc<Shared<Req, Res, C, R>>,
}

impl<S, Req, Res, C, R> Chaos<S, Req, Res, C, R> {
    pub(crate) fn new(inner: S, shared: Arc<Shared<Req, Res, C, R>>) -> Self {
        Chaos { inner, shared }
    }

    /// The wrapped service.
    ///
    /// ```
    /// use tower::Layer;
    /// let layer = palisade::chaos::ChaosLayer::<u8, u8>::builder().build().unwrap();
    /// assert_eq!(*layer.layer(5u8).get_ref(), 5);
    /// ```
    pub fn get_ref(&self) -> &S {
        &self.inner
    }
}

impl<S, Req, Res, C, R> Service<Req> for Chaos<S, Req, Res, C, R>
where
    S: Service<Req, Response = Res>,
    S::Error: Into<BoxError>,
    C: Clock,
    R: Random,
{
    type Response = Res;
    type Error = BoxError;
    type Future = ResponseFuture<S::Future, Res, C>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    #[inline]
    fn call(&mut self, request: Req) -> Self::Future {
        if !self.shared.enabled() {
            return ResponseFuture::called(self.inner.call(request));
        }
        self.call_with_chaos(request)
    }
}

impl<S, Req, Res, C, R> Chaos<S, Req, Res, C, R>
where
    S: Service<Req, Response = Res>,
    S::Error: Into<BoxError>,
    C: Clock,
    R: Random,
{
    /// `call` in an enabled layer: out of the disabled path's way.
    #[cold]
    #[inline(never)]
    fn call_with_chaos(&mut self, request: Req) -> ResponseFuture<S::Future, Res, C> {
        let Plan { delay, then } = self.shared.plan(&request);
        if let (None, Then::Call) = (delay, &then) {
            return ResponseFuture::called(self.inner.call(request));
        }
        // The wrapped service is called at once, as `poll_ready` promised
        // it: its future is polled from the end of the delay, which starts
        // at the first poll (so the delays of chaos layers wrapping one
        // another add up).
        let next = match then {
            Then::Call => Next::Call(self.inner.call(request)),
            Then::Answer(answer) => Next::Answer(answer),
            Then::Hang => Next::Hang,
        };
        match delay {
            Some(delay) => ResponseFuture::delayed(self.shared.clock.clone(), delay, next),
            None => ResponseFuture::now(next),
        }
    }
}

impl<S: Clone, Req, Res, C, R> Clone for Chaos<S, Req, Res, C, R> {
    fn clone(&self) -> Self {
        Chaos::new(self.inner.clone(), Arc::clone(&self.shared))
    }
}

impl<S: fmt::Debug, Req, Res, C, R> fmt::Debug for Chaos<S, Req, Res, C, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Chaos")
            .field("inner", &self.inner)
            .field("chaos", &self.shared)
            .finish()
    }
}

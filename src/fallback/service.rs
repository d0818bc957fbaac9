//! The fallback service.

use std::{
    fmt,
    task::{Context, Poll},
};

use tower::{BoxError, Service};

use super::{
    future::ResponseFuture,
    layer::{FallbackLayer, FallbackTo},
};
use crate::{
    classify::{Classify, ErrorsAsFailures},
    clock::{Clock, TokioClock},
};

/// A service whose failed calls are answered by a fallback; made by
/// [`FallbackLayer`].
///
/// ```
/// use palisade::fallback::{Failed, FallbackLayer};
/// use tower::Layer;
/// let service = FallbackLayer::builder(|_: Failed<'_, u8>| Some(0)).build().layer(5u8);
/// assert_eq!(*service.get_ref(), 5);
/// ```
#[derive(Clone)]
pub struct Fallback<S, F, K = ErrorsAsFailures, C = TokioClock> {
    pub(super) inner: S,
    pub(super) layer: FallbackLayer<F, K, C>,
}

impl<S, F, K, C> Fallback<S, F, K, C> {
    /// The wrapped service.
    ///
    /// ```
    /// use palisade::fallback::{Failed, FallbackLayer};
    /// use tower::Layer;
    /// let service = FallbackLayer::builder(|_: Failed<'_, u8>| Some(0)).build().layer("inner");
    /// assert_eq!(*service.get_ref(), "inner");
    /// ```
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The wrapped service, unwrapped.
    ///
    /// ```
    /// use palisade::fallback::{Failed, FallbackLayer};
    /// use tower::Layer;
    /// let service = FallbackLayer::builder(|_: Failed<'_, u8>| Some(0)).build().layer("inner");
    /// assert_eq!(service.into_inner(), "inner");
    /// ```
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, F, K, C, Req> Service<Req> for Fallback<S, F, K, C>
where
    S: Service<Req>,
    S::Error: Into<BoxError>,
    F: FallbackTo<S::Response> + Clone,
    K: Classify<S::Response, BoxError> + Clone,
    C: Clock,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = ResponseFuture<S::Future, F, K, C>;

    #[inline]
    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        // Readiness errors are the caller's to see: a service that cannot be
        // called is not a failed call.
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    #[inline]
    fn call(&mut self, request: Req) -> Self::Future {
        ResponseFuture::new(
            self.inner.call(request),
            self.layer.fallback.clone(),
            self.layer.classifier.clone(),
            self.layer.observer.clone(),
        )
    }
}

impl<S: fmt::Debug, F, K, C> fmt::Debug for Fallback<S, F, K, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fallback")
            .field("inner", &self.inner)
            .field("layer", &self.layer)
            .finish()
    }
}

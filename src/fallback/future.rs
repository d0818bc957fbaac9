//! The response future of [`FallbackService`](super::FallbackService).

use std::{
    fmt,
    future::Future,
    pin::Pin,
    task::{Context, Poll, ready},
};

use pin_project_lite::pin_project;
use tower::BoxError;

use super::layer::{Failed, FallbackTo};
use crate::{
    classify::{Classify, Outcome},
    clock::Clock,
    observe::{EventKind, Observer},
};

pin_project! {
    /// The response future of [`FallbackService`](super::FallbackService):
    /// the wrapped future, whose failure the fallback may answer.
    ///
    /// ```
    /// use palisade::fallback::{Failed, FallbackLayer};
    /// use tower::{Layer, Service, service_fn};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let layer = FallbackLayer::builder(|_: Failed<'_, u32>| Some(0)).build();
    /// let mut service = layer.layer(service_fn(|x: u32| async move { Ok::<_, std::io::Error>(x) }));
    /// assert_eq!(service.call(4).await.unwrap(), 4);
    /// # }
    /// ```
    pub struct ResponseFuture<Fut, F, K, C> {
        #[pin]
        inner: Fut,
        fallback: F,
        classifier: K,
        observer: Option<(Observer, C)>,
    }
}

impl<Fut, F, K, C> ResponseFuture<Fut, F, K, C> {
    #[inline(always)]
    pub(crate) fn new(
        inner: Fut,
        fallback: F,
        classifier: K,
        observer: Option<(Observer, C)>,
    ) -> Self {
        ResponseFuture {
            inner,
            fallback,
            classifier,
            observer,
        }
    }
}

impl<Fut, F, K, C, Res, E> Future for ResponseFuture<Fut, F, K, C>
where
    C: Clock,
    Fut: Future<Output = Result<Res, E>>,
    E: Into<BoxError>,
    F: FallbackTo<Res>,
    K: Classify<Res, BoxError>,
{
    type Output = Result<Res, BoxError>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = ready!(this.inner.poll(cx)).map_err(Into::into);
        if this.classifier.classify(&result) != Outcome::Failure {
            return Poll::Ready(result);
        }
        let failed = match &result {
            Err(err) => Failed::Error(err),
            Ok(response) => Failed::Response(response),
        };
        let reason = failed.reason();
        match this.fallback.fallback(failed) {
            Some(answer) => {
                if let Some((observer, clock)) = this.observer {
                    observer.emit(clock.now(), EventKind::FallbackUsed { reason });
                }
                Poll::Ready(Ok(answer))
            }
            None => Poll::Ready(result),
        }
    }
}

impl<Fut, F, K, C> fmt::Debug for ResponseFuture<Fut, F, K, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

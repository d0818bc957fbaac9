//! The response futures of [`Fallback`](super::Fallback) and
//! [`Alternate`](super::Alternate).

use std::{
    fmt,
    future::Future,
    pin::Pin,
    task::{Context, Poll, ready},
};

use pin_project_lite::pin_project;
use tower::{BoxError, Service};

use super::{
    FallbackWhen,
    layer::{Failed, FallbackTo},
};
use crate::{
    classify::{Classify, Outcome},
    clock::Clock,
    observe::{EventKind, Observer},
};

pin_project! {
    /// The response future of [`Fallback`](super::Fallback):
    /// the wrapped future, whose failure the fallback may answer.
    ///
    /// # Cancellation
    ///
    /// Dropped before the wrapped future completes, it is dropped with it and the fallback
    /// is never asked; nothing is counted.
    ///
    /// # Examples
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

pin_project! {
    /// The response future of [`Alternate`]: the primary's call, then — if
    /// it failed — the alternate made ready and called with a copy of the
    /// request.
    ///
    /// # Cancellation
    ///
    /// Dropped while the primary's or the alternate's call runs, that call is dropped with
    /// the kept copy of the request; dropped while the alternate is made ready, the
    /// alternate is never called. No `FallbackUsed` event is emitted unless the alternate
    /// was called.
    ///
    /// # Examples
    ///
    /// ```
    /// use palisade::fallback::AlternateLayer;
    /// use tower::{Layer, Service, service_fn};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let alternate = service_fn(|x: u8| async move { Ok::<_, tower::BoxError>(x + 100) });
    /// let mut service = AlternateLayer::builder(alternate).build()
    ///     .layer(service_fn(|x: u8| async move { Ok::<_, tower::BoxError>(x) }));
    /// let future /* : AlternateFuture<..> */ = service.call(1);
    /// assert_eq!(future.await.unwrap(), 1);
    /// # }
    /// ```
    pub struct AlternateFuture<F, T: Service<Req>, Req, P, K, C> {
        #[pin]
        state: State<F, T::Future>,
        alternate: Option<T>,
        request: Option<Req>,
        predicate: P,
        classifier: K,
        observer: Option<(Observer, C)>,
    }
}

impl<F, T: Service<Req>, Req, P, K, C> AlternateFuture<F, T, Req, P, K, C> {
    pub(super) fn new(
        primary: F,
        alternate: T,
        request: Req,
        predicate: P,
        classifier: K,
        observer: Option<(Observer, C)>,
    ) -> Self {
        AlternateFuture {
            state: State::Primary { future: primary },
            alternate: Some(alternate),
            request: Some(request),
            predicate,
            classifier,
            observer,
        }
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F, G> {
        Primary {
            #[pin]
            future: F,
        },
        Readying,
        Alternate {
            #[pin]
            future: G,
        },
    }
}

impl<F, T, Req, P, K, C, Res, E> Future for AlternateFuture<F, T, Req, P, K, C>
where
    F: Future<Output = Result<Res, E>>,
    E: Into<BoxError>,
    T: Service<Req, Response = Res>,
    T::Error: Into<BoxError>,
    P: FallbackWhen<Res>,
    K: Classify<Res, BoxError>,
    C: Clock,
{
    type Output = Result<Res, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            match this.state.as_mut().project() {
                StateProj::Primary { future } => {
                    let result = ready!(future.poll(cx)).map_err(Into::into);
                    if this.classifier.classify(&result) != Outcome::Failure {
                        return Poll::Ready(result);
                    }
                    let failed = match &result {
                        Err(err) => Failed::Error(err),
                        Ok(response) => Failed::Response(response),
                    };
                    if !this.predicate.when(&failed) {
                        return Poll::Ready(result);
                    }
                    if let Some((observer, clock)) = this.observer {
                        let reason = failed.reason();
                        observer.emit(clock.now(), EventKind::FallbackUsed { reason });
                    }
                    this.state.set(State::Readying);
                }
                StateProj::Readying => {
                    let alternate = this
                        .alternate
                        .as_mut()
                        .expect("the alternate is called once");
                    ready!(alternate.poll_ready(cx)).map_err(Into::into)?;
                    let request = this.request.take().expect("the copy is sent once");
                    let future = alternate.call(request);
                    this.state.set(State::Alternate { future });
                }
                StateProj::Alternate { future } => {
                    return future.poll(cx).map_err(Into::into);
                }
            }
        }
    }
}

impl<F, T: Service<Req>, Req, P, K, C> fmt::Debug for AlternateFuture<F, T, Req, P, K, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AlternateFuture").finish_non_exhaustive()
    }
}

//! Falling back to another service: the same request, sent to an alternate
//! backend (a replica, a cache, a degraded mode) when the primary fails.

use std::{
    fmt,
    future::Future,
    pin::Pin,
    task::{Context, Poll, ready},
};

use pin_project_lite::pin_project;
use tower::{BoxError, Layer, Service};

use super::layer::{Failed, LAYER};
use crate::{
    LayerName,
    classify::{Classify, ErrorsAsFailures, Outcome},
    clock::{Clock, TokioClock},
    observe::{EventKind, Observe, Observer},
};

/// A [`Layer`] that sends a failed call's request to an alternate service.
///
/// Each call keeps a copy of its request (requests must be `Clone`) and a
/// clone of the alternate service; when the primary's result is a failure
/// (by the [`Classify`], default every error) and the predicate accepts it
/// (default: every failure), the alternate is driven to readiness and
/// called with the copy. Its result, success or not, is the answer.
///
/// # Examples
///
/// ```
/// use palisade::fallback::AlternateLayer;
/// use tower::{Layer, Service, service_fn};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let replica = service_fn(|key: &'static str| async move { Ok::<_, tower::BoxError>(format!("replica:{key}")) });
/// let layer = AlternateLayer::builder(replica).build();
/// let mut service = layer.layer(service_fn(|_: &'static str| async { Err::<String, tower::BoxError>("primary down".into()) }));
/// assert_eq!(service.call("k").await.unwrap(), "replica:k");
/// # }
/// ```
#[derive(Clone)]
pub struct AlternateLayer<T, P = AnyFailure, K = ErrorsAsFailures, C = TokioClock> {
    alternate: T,
    predicate: P,
    classifier: K,
    observer: Option<(Observer, C)>,
    name: LayerName,
}

/// The default predicate: every failure goes to the alternate.
///
/// ```
/// use palisade::fallback::{AnyFailure, Failed, FallbackWhen};
/// let err: tower::BoxError = "x".into();
/// assert!(AnyFailure.when(&Failed::<()>::Error(&err)));
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct AnyFailure;

/// Which failures go to the alternate. Closures `Fn(&Failed<'_, Res>) ->
/// bool` are predicates.
///
/// ```
/// use palisade::fallback::{Failed, FallbackWhen};
/// let only_errors = |failed: &Failed<'_, u16>| matches!(failed, Failed::Error(_));
/// assert!(!only_errors.when(&Failed::Response(&503)));
/// ```
pub trait FallbackWhen<Res> {
    /// Whether `failed` goes to the alternate.
    fn when(&self, failed: &Failed<'_, Res>) -> bool;
}

impl<Res> FallbackWhen<Res> for AnyFailure {
    fn when(&self, _: &Failed<'_, Res>) -> bool {
        true
    }
}

impl<Res, F> FallbackWhen<Res> for F
where
    F: Fn(&Failed<'_, Res>) -> bool,
{
    fn when(&self, failed: &Failed<'_, Res>) -> bool {
        self(failed)
    }
}

impl<T> AlternateLayer<T> {
    /// Falls back to `alternate` on every failure.
    ///
    /// ```
    /// use palisade::fallback::AlternateLayer;
    /// let _ = AlternateLayer::builder(tower::service_fn(|x: u8| async move { Ok::<_, tower::BoxError>(x) }));
    /// ```
    pub fn builder(alternate: T) -> AlternateBuilder<T> {
        AlternateBuilder {
            alternate,
            predicate: AnyFailure,
            classifier: ErrorsAsFailures,
            clock: TokioClock::new(),
            observe: Observe::new(),
        }
    }
}

/// Configures an [`AlternateLayer`].
///
/// ```
/// use palisade::fallback::{AlternateLayer, Failed};
/// let _ = AlternateLayer::builder(tower::service_fn(|x: u8| async move { Ok::<_, tower::BoxError>(x) }))
///     .name("catalog")
///     .when(|failed: &Failed<'_, u8>| failed.rejection().is_some())
///     .build();
/// ```
pub struct AlternateBuilder<T, P = AnyFailure, K = ErrorsAsFailures, C = TokioClock> {
    alternate: T,
    predicate: P,
    classifier: K,
    clock: C,
    observe: Observe,
}

impl<T, P, K, C: Clock> AlternateBuilder<T, P, K, C> {
    /// Names the layer in events and metrics.
    ///
    /// ```
    /// let alternate = tower::service_fn(|x: u8| async move { Ok::<_, tower::BoxError>(x) });
    /// let _ = palisade::fallback::AlternateLayer::builder(alternate).name("replica");
    /// ```
    pub fn name(mut self, name: impl Into<LayerName>) -> Self {
        self.observe = self.observe.name(name);
        self
    }

    /// Adds a listener for the layer's `FallbackUsed` events.
    ///
    /// ```
    /// let alternate = tower::service_fn(|x: u8| async move { Ok::<_, tower::BoxError>(x) });
    /// let _ = palisade::fallback::AlternateLayer::builder(alternate).on_event(|e| println!("{:?}", e.kind));
    /// ```
    pub fn on_event<L>(mut self, listener: L) -> Self
    where
        L: Fn(&crate::observe::Event<'_>) + Send + Sync + 'static,
    {
        self.observe = self.observe.on_event(listener);
        self
    }

    /// Which failures go to the alternate: any [`FallbackWhen`].
    ///
    /// ```
    /// let alternate = tower::service_fn(|x: u8| async move { Ok::<_, tower::BoxError>(x) });
    /// let _ = palisade::fallback::AlternateLayer::builder(alternate)
    ///     .when(|failed: &palisade::fallback::Failed<'_, u8>| failed.rejection().is_none());
    /// ```
    pub fn when<P2>(self, predicate: P2) -> AlternateBuilder<T, P2, K, C> {
        AlternateBuilder {
            alternate: self.alternate,
            predicate,
            classifier: self.classifier,
            clock: self.clock,
            observe: self.observe,
        }
    }

    /// What counts as a failed response: any [`Classify`].
    ///
    /// ```
    /// let alternate = tower::service_fn(|x: u8| async move { Ok::<_, tower::BoxError>(x) });
    /// let _ = palisade::fallback::AlternateLayer::builder(alternate).classifier(palisade::classify::ErrorsAsFailures);
    /// ```
    pub fn classifier<K2>(self, classifier: K2) -> AlternateBuilder<T, P, K2, C> {
        AlternateBuilder {
            alternate: self.alternate,
            predicate: self.predicate,
            classifier,
            clock: self.clock,
            observe: self.observe,
        }
    }

    /// The clock that dates the events. Default [`TokioClock`].
    ///
    /// ```
    /// let alternate = tower::service_fn(|x: u8| async move { Ok::<_, tower::BoxError>(x) });
    /// let _ = palisade::fallback::AlternateLayer::builder(alternate).clock(palisade::clock::ManualClock::new());
    /// ```
    pub fn clock<C2: Clock>(self, clock: C2) -> AlternateBuilder<T, P, K, C2> {
        AlternateBuilder {
            alternate: self.alternate,
            predicate: self.predicate,
            classifier: self.classifier,
            clock,
            observe: self.observe,
        }
    }

    /// Builds the layer (nothing to check).
    ///
    /// ```
    /// let alternate = tower::service_fn(|x: u8| async move { Ok::<_, tower::BoxError>(x) });
    /// let _ = palisade::fallback::AlternateLayer::builder(alternate).build();
    /// ```
    pub fn build(self) -> AlternateLayer<T, P, K, C> {
        let observer = self.observe.build(LAYER);
        AlternateLayer {
            alternate: self.alternate,
            predicate: self.predicate,
            classifier: self.classifier,
            name: observer.name().clone(),
            observer: observer.is_active().then_some((observer, self.clock)),
        }
    }
}

impl<T, P, K, C> fmt::Debug for AlternateBuilder<T, P, K, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AlternateBuilder")
            .field("observe", &self.observe)
            .finish_non_exhaustive()
    }
}

impl<T, P, K, C> fmt::Debug for AlternateLayer<T, P, K, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AlternateLayer")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl<S, T: Clone, P: Clone, K: Clone, C: Clock> Layer<S> for AlternateLayer<T, P, K, C> {
    type Service = Alternate<S, T, P, K, C>;

    fn layer(&self, inner: S) -> Self::Service {
        Alternate {
            inner,
            layer: self.clone(),
        }
    }
}

/// A service whose failed calls go to an alternate service; made by
/// [`AlternateLayer`].
///
/// ```
/// use palisade::fallback::AlternateLayer;
/// use tower::Layer;
/// let alternate = tower::service_fn(|x: u8| async move { Ok::<_, tower::BoxError>(x) });
/// let _service = AlternateLayer::builder(alternate).build().layer(());
/// ```
#[derive(Clone)]
pub struct Alternate<S, T, P = AnyFailure, K = ErrorsAsFailures, C = TokioClock> {
    inner: S,
    layer: AlternateLayer<T, P, K, C>,
}

impl<S: fmt::Debug, T, P, K, C> fmt::Debug for Alternate<S, T, P, K, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Alternate")
            .field("inner", &self.inner)
            .field("layer", &self.layer)
            .finish()
    }
}

impl<S, T, P, K, C, Req> Service<Req> for Alternate<S, T, P, K, C>
where
    Req: Clone,
    S: Service<Req>,
    S::Error: Into<BoxError>,
    T: Service<Req, Response = S::Response> + Clone,
    T::Error: Into<BoxError>,
    P: FallbackWhen<S::Response> + Clone,
    K: Classify<S::Response, BoxError> + Clone,
    C: Clock,
{
    type Response = S::Response;
    type Error = BoxError;
    type Future = AlternateFuture<S::Future, T, Req, P, K, C>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        self.inner.poll_ready(cx).map_err(Into::into)
    }

    fn call(&mut self, request: Req) -> Self::Future {
        let copy = request.clone();
        AlternateFuture {
            state: State::Primary {
                future: self.inner.call(request),
            },
            alternate: Some(self.layer.alternate.clone()),
            request: Some(copy),
            predicate: self.layer.predicate.clone(),
            classifier: self.layer.classifier.clone(),
            observer: self.layer.observer.clone(),
        }
    }
}

pin_project! {
    /// The response future of [`Alternate`]: the primary's call, then — if
    /// it failed — the alternate made ready and called with a copy of the
    /// request.
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

//! Falling back to another service: the same request, sent to an alternate
//! backend (a replica, a cache, a degraded mode) when the primary fails.

use std::{
    fmt,
    task::{Context, Poll},
};

use tower::{BoxError, Layer, Service};

use super::{
    future::AlternateFuture,
    layer::{Failed, LAYER},
};
use crate::{
    LayerName,
    classify::{Classify, ErrorsAsFailures},
    clock::{Clock, TokioClock},
    observe::{Observer, ObserverBuilder},
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
            observe: ObserverBuilder::new(),
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
    observe: ObserverBuilder,
}

impl<T, P, K, C: Clock> AlternateBuilder<T, P, K, C> {
    crate::observe::name_and_listeners!(
        observe,
        "let alternate = tower::service_fn(|x: u8| async move { Ok::<_, tower::BoxError>(x) });\nlet _ = palisade::fallback::AlternateLayer::builder(alternate)"
    );

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

    crate::observe::clock_setting!(
        "that dates the events",
        "let alternate = tower::service_fn(|x: u8| async move { Ok::<_, tower::BoxError>(x) });\nlet _ = palisade::fallback::AlternateLayer::builder(alternate)",
        AlternateBuilder<T, P, K, C2> { alternate, predicate, classifier, observe }
    );

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
        AlternateFuture::new(
            self.inner.call(request),
            self.layer.alternate.clone(),
            copy,
            self.layer.predicate.clone(),
            self.layer.classifier.clone(),
            self.layer.observer.clone(),
        )
    }
}

//! The fallback layer and its builder.

use std::fmt;

use tower::{BoxError, Layer};

use super::Fallback;
use crate::{
    LayerName,
    classify::ErrorsAsFailures,
    clock::{Clock, TokioClock},
    error::Rejection,
    observe::{Observer, ObserverBuilder},
};

/// The kind of layer, and the name of one not given its own.
pub(crate) const LAYER: &str = "fallback";

/// What failed: an error (maybe one of palisade's refusals) or a response
/// the classifier calls a failure.
///
/// ```
/// use palisade::{error::CircuitOpen, fallback::Failed};
/// let err: tower::BoxError = CircuitOpen::new("db", None).into();
/// let failed = Failed::<()>::Error(&err);
/// assert_eq!(failed.reason(), "circuit_open");
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum Failed<'a, Res> {
    /// The call failed with this error.
    Error(&'a BoxError),
    /// The call answered, and the classifier calls the answer a failure.
    Response(&'a Res),
}

impl<'a, Res> Failed<'a, Res> {
    /// The palisade refusal behind the failure, if it is one.
    ///
    /// ```
    /// use palisade::{error::{Elapsed, RejectionKind}, fallback::Failed};
    /// let err: tower::BoxError = Elapsed::new("t", None).into();
    /// assert_eq!(Failed::<()>::Error(&err).rejection().unwrap().kind(), RejectionKind::Elapsed);
    /// ```
    pub fn rejection(&self) -> Option<Rejection<'a>> {
        match self {
            Failed::Error(err) => Rejection::find(&***err),
            Failed::Response(_) => None,
        }
    }

    /// Why, as the `reason` of the events: the refusal's kind
    /// ([`RejectionKind::as_str`](crate::error::RejectionKind::as_str)),
    /// `"error"` or `"response"`.
    ///
    /// ```
    /// let err: tower::BoxError = "boom".into();
    /// assert_eq!(palisade::fallback::Failed::<()>::Error(&err).reason(), "error");
    /// assert_eq!(palisade::fallback::Failed::Response(&503).reason(), "response");
    /// ```
    pub fn reason(&self) -> &'static str {
        match self {
            Failed::Error(_) => self
                .rejection()
                .map_or("error", |rejection| rejection.kind().as_str()),
            Failed::Response(_) => "response",
        }
    }
}

/// Makes the answer for a failed call, or declines (`None`): then the
/// original result goes through. Closures `Fn(Failed<'_, Res>) ->
/// Option<Res>` are fallbacks.
///
/// ```
/// use palisade::fallback::{Failed, FallbackTo};
/// let zero = |_: Failed<'_, u32>| Some(0);
/// let err: tower::BoxError = "boom".into();
/// assert_eq!(zero.fallback(Failed::Error(&err)), Some(0));
/// ```
pub trait FallbackTo<Res> {
    /// The answer for `failed`, if this fallback gives one.
    fn fallback(&self, failed: Failed<'_, Res>) -> Option<Res>;
}

impl<Res, F> FallbackTo<Res> for F
where
    F: Fn(Failed<'_, Res>) -> Option<Res>,
{
    fn fallback(&self, failed: Failed<'_, Res>) -> Option<Res> {
        self(failed)
    }
}

/// A [`Layer`] that answers failed calls with a fallback; see
/// [the module docs](super).
///
/// ```
/// use palisade::fallback::FallbackLayer;
/// let layer = FallbackLayer::builder(|_: palisade::fallback::Failed<'_, u32>| Some(0)).build();
/// # let _ = layer;
/// ```
#[derive(Clone)]
pub struct FallbackLayer<F, K = ErrorsAsFailures, C = TokioClock> {
    pub(super) fallback: F,
    pub(super) classifier: K,
    /// Set only when something receives events (with the clock that dates
    /// them): the success path then takes no reference count.
    pub(super) observer: Option<(Observer, C)>,
    name: LayerName,
}

impl<F> FallbackLayer<F> {
    /// A fallback for every error; see [`FallbackTo`].
    ///
    /// ```
    /// use palisade::fallback::{Failed, FallbackLayer};
    /// let _ = FallbackLayer::builder(|_: Failed<'_, String>| Some(String::new()));
    /// ```
    pub fn builder(fallback: F) -> FallbackBuilder<F> {
        FallbackBuilder {
            fallback,
            classifier: ErrorsAsFailures,
            clock: TokioClock::new(),
            observe: ObserverBuilder::new(),
        }
    }
}

impl<S, F: Clone, K: Clone, C: Clock> Layer<S> for FallbackLayer<F, K, C> {
    type Service = Fallback<S, F, K, C>;

    fn layer(&self, inner: S) -> Self::Service {
        Fallback {
            inner,
            layer: self.clone(),
        }
    }
}

impl<F, K, C> fmt::Debug for FallbackLayer<F, K, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FallbackLayer")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// Configures a [`FallbackLayer`].
///
/// ```
/// use palisade::{classify::Outcome, fallback::{Failed, FallbackLayer}};
/// let _ = FallbackLayer::builder(|_: Failed<'_, u16>| Some(200))
///     .name("catalog")
///     .classifier(|result: &Result<u16, std::io::Error>| match result {
///         Ok(status) if *status >= 500 => Outcome::Failure,
///         Ok(_) => Outcome::Success,
///         Err(_) => Outcome::Failure,
///     })
///     .build();
/// ```
pub struct FallbackBuilder<F, K = ErrorsAsFailures, C = TokioClock> {
    fallback: F,
    classifier: K,
    clock: C,
    observe: ObserverBuilder,
}

impl<F, K, C: Clock> FallbackBuilder<F, K, C> {
    crate::observe::name_and_listeners!(
        observe,
        "use palisade::fallback::{Failed, FallbackLayer};\nlet _ = FallbackLayer::builder(|_: Failed<'_, u8>| Some(0))"
    );

    /// What counts as a failed response: any [`Classify`](crate::classify::Classify). Default: every
    /// error, no response.
    ///
    /// ```
    /// use palisade::fallback::{Failed, FallbackLayer};
    /// let _ = FallbackLayer::builder(|_: Failed<'_, u8>| Some(0)).classifier(palisade::classify::ErrorsAsFailures);
    /// ```
    pub fn classifier<K2>(self, classifier: K2) -> FallbackBuilder<F, K2, C> {
        FallbackBuilder {
            fallback: self.fallback,
            classifier,
            clock: self.clock,
            observe: self.observe,
        }
    }

    crate::observe::clock_setting!(
        "that dates the events",
        "use palisade::fallback::{Failed, FallbackLayer};\nlet _ = FallbackLayer::builder(|_: Failed<'_, u8>| Some(0))",
        FallbackBuilder<F, K, C2> { fallback, classifier, observe }
    );

    /// Builds the layer (nothing to check).
    ///
    /// ```
    /// use palisade::fallback::{Failed, FallbackLayer};
    /// let _ = FallbackLayer::builder(|_: Failed<'_, u8>| Some(0)).build();
    /// ```
    pub fn build(self) -> FallbackLayer<F, K, C> {
        let observer = self.observe.build(LAYER);
        FallbackLayer {
            fallback: self.fallback,
            classifier: self.classifier,
            name: observer.name().clone(),
            observer: observer.is_active().then_some((observer, self.clock)),
        }
    }
}

impl<F, K, C> fmt::Debug for FallbackBuilder<F, K, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FallbackBuilder")
            .field("observe", &self.observe)
            .finish_non_exhaustive()
    }
}

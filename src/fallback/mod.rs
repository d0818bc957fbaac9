//! Fallback: answer with something else when a call fails or is refused —
//! a cached value, a degraded answer, an error response built from the
//! reason.
//!
//! tower has no fallback layer. This one:
//!
//! - decides what failed with the same [`Classify`](crate::classify::Classify)
//!   as the other layers (default: every error), so a `503` response can get
//!   the fallback too;
//! - hands the fallback a [`Failed`] that tells a palisade refusal (circuit
//!   open, rate limited, bulkhead full, timeout, budget exhausted) from an
//!   error of the wrapped service and from a failed response, so one
//!   fallback can answer each differently — or decline (`None`) and let the
//!   original result through;
//! - emits a [`FallbackUsed`](crate::observe::EventKind::FallbackUsed) event
//!   with the reason ([`Failed::reason`]).
//!
//! On the success path it adds no allocation, no lock and no reference
//! count (when nothing observes the layer): the fallback and the classifier
//! are copied into the response future, so they must be `Clone` (closures
//! capturing little are).
//!
//! To send the failed call's request to another backend instead, use
//! [`AlternateLayer`]: it keeps a copy of each request, drives the alternate
//! service to readiness and calls it; a predicate ([`FallbackWhen`]) picks
//! the failures it takes.
//!
//! # Examples
//!
//! ```
//! use palisade::{error::RejectionKind, fallback::{Failed, FallbackLayer}};
//! use tower::{Layer, Service, service_fn};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let layer = FallbackLayer::builder(|failed: Failed<'_, String>| match failed.rejection() {
//!     Some(rejection) if rejection.kind() == RejectionKind::CircuitOpen => Some("cached".to_string()),
//!     Some(_) => None,
//!     None => Some("degraded".to_string()),
//! })
//! .build();
//! let mut service = layer.layer(service_fn(|_: ()| async { Err::<String, _>("upstream down") }));
//! assert_eq!(service.call(()).await.unwrap(), "degraded");
//! # }
//! ```

mod alternate;
pub mod future;
mod layer;
mod service;

pub use alternate::{Alternate, AlternateBuilder, AlternateLayer, AnyFailure, FallbackWhen};
pub use layer::{Failed, FallbackBuilder, FallbackLayer, FallbackTo};
pub use service::Fallback;

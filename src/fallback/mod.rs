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
//!
//! # The last good answer: [`CachedLayer`] (feature `cache`)
//!
//! [`CachedLayer`] remembers each successful response under a key of its
//! request, and answers a failed call to the same key with the remembered
//! one if it is not older than `max_stale` — the "cached" half of the
//! fallback, as HTTP's `stale-if-error` does for a cache in front of a
//! server. Otherwise it asks a fallback of its own (`otherwise`, as
//! [`FallbackLayer`] does), or declines and lets the
//! failure through.
//!
//! - **Keys**: a closure of the request (`None`: this request is never
//!   remembered nor answered from the cache); for HTTP,
//!   [`MethodAndUri`](http::MethodAndUri) — `GET` and `HEAD` by
//!   method and URI.
//! - **What fails**: the layer's [`Classify`](crate::classify::Classify)
//!   decides; a predicate ([`FallbackWhen`], default every failure) picks
//!   the failures the cache answers (say, an open breaker and timeouts but
//!   not a `404`).
//! - **Bounded memory**: at most `max_entries` entries, and optionally
//!   `max_bytes` of them (each entry weighs its size, at least
//!   `max_bytes / max_entries`, so both bounds hold), in a
//!   [`quick_cache`](https://docs.rs/quick_cache) cache: sharded, no
//!   background thread, its eviction a Clock-PRO variant (akin to S3-FIFO)
//!   — an entry read since it came in outlives one that was not, and a
//!   flood of new keys, each seen once, pushes out mostly its own kind, not
//!   the answers requested again and again. An answer too old to serve is
//!   dropped when next looked up. The cache is split in shards, each with
//!   its share of `max_bytes`: an answer heavier than that share is not
//!   kept (see `shards`). Keys are hashed with std's keyed SipHash: keys a
//!   client crafts (URIs) cannot be made to collide.
//! - **Ages on the layer's clock** ([`ManualClock`](crate::clock::ManualClock)
//!   in tests): an answer's age is the time since its response arrived.
//! - **A cached answer is told apart**: [`Remember`] makes the answer from
//!   what was kept, given its age — for HTTP with an `Age` header and a
//!   [`CachedAnswer`] extension; for other responses ([`Clones`]) through a
//!   closure that marks it. Events: [`CacheAnswered`](crate::observe::EventKind::CacheAnswered)
//!   (the cache saved the call, with the answer's age) and
//!   [`CacheMissed`](crate::observe::EventKind::CacheMissed) (it had nothing, or only an
//!   answer too old), each with the failure's reason; metrics
//!   `palisade_cache_answers_total` and `palisade_cache_misses_total`.
//! - **Nothing kept that was not asked for**: a response is copied only if
//!   it is kept (a success with a key); a response passed through is not
//!   touched. For HTTP, a body is kept as it streams to the caller (its
//!   chunks shared, not copied, while it does), and only once it ended
//!   within `max_body`.
//!
//!
//! ## Example
//!
//! ```
//! use std::time::Duration;
//! use palisade::{clock::ManualClock, fallback::CachedLayer};
//! use tower::{Layer, Service, ServiceExt, service_fn};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let clock = ManualClock::new();
//! let layer = CachedLayer::builder(|city: &&'static str| Some(city.to_string()))
//!     .max_stale(Duration::from_secs(600))
//!     .clock(clock.clone())
//!     .build()
//!     .unwrap();
//! let up = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
//! let weather = service_fn({
//!     let up = up.clone();
//!     move |city: &'static str| {
//!         let up = up.load(std::sync::atomic::Ordering::Relaxed);
//!         async move { if up { Ok(format!("sunny in {city}")) } else { Err("down") } }
//!     }
//! });
//! let mut service = layer.layer(weather);
//! assert_eq!(service.ready().await.unwrap().call("Oslo").await.unwrap(), "sunny in Oslo");
//!
//! up.store(false, std::sync::atomic::Ordering::Relaxed);
//! clock.advance(Duration::from_secs(60));
//! // The last good answer, a minute old.
//! assert_eq!(service.ready().await.unwrap().call("Oslo").await.unwrap(), "sunny in Oslo");
//! // Nothing for a city never answered: the failure goes through.
//! assert!(service.ready().await.unwrap().call("Rome").await.is_err());
//! # }
//! ```
//!

mod alternate;
#[cfg(feature = "cache")]
mod cached;
pub mod future;
#[cfg(all(feature = "cache", feature = "http"))]
pub mod http;
mod layer;
mod service;

pub use alternate::{Alternate, AlternateBuilder, AlternateLayer, AnyFailure, FallbackWhen};
pub use layer::{Failed, FallbackBuilder, FallbackLayer, FallbackTo};
pub use service::Fallback;

#[cfg(feature = "cache")]
pub use cached::{
    CacheKey, Cached, CachedAnswer, CachedBuilder, CachedFuture, CachedLayer, Clones, Decline,
    Keeper, KeyFn, Keys, Mark, Remember,
};

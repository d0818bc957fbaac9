//! Retry: call again when a call fails, with capped exponential backoff and
//! jitter, within a number of attempts, an overall deadline and a budget —
//! without turning an outage into a retry storm.
//!
//! Compared with tower's `Retry`, which leaves every decision (and the
//! sleeping) to a `Policy` you write:
//!
//! - **Backoff built in**, capped, with the jitters the literature
//!   recommends ([`Backoff`], [`Jitter`]); every delay is drawn from the
//!   layer's [`Random`](crate::random::Random) and slept on its
//!   [`Clock`](crate::clock::Clock), so a test with a seed and a
//!   [`ManualClock`](crate::clock::ManualClock) sees the exact sequence.
//! - **Bounded three ways**: [`max_attempts`](RetryBuilder::max_attempts)
//!   (counting the first call), an overall
//!   [`deadline`](RetryBuilder::deadline) no sleep may cross, and a
//!   [`RetryBudget`] shared across clones and layers (tower's `TpsBudget`
//!   over-allows fractional ratios, tower#857; this one does not).
//! - **Refusals are not retried.** By default ([`RetryErrors`]) an error from
//!   palisade's own layers — circuit open, rate limited, bulkhead full,
//!   budget exhausted — ends the call: retrying into an open breaker is the
//!   storm this layer exists to prevent.
//! - **Server pushback**: a policy may answer
//!   [`Decision::RetryAfter`] to wait what the server asked, capped by
//!   [`max_pushback`](RetryBuilder::max_pushback).
//! - **Presets** (features `http`, `grpc`): [`http::HttpRetry`] (idempotent
//!   requests; errors, 502, 503, 504, 429; `Retry-After`) and
//!   [`http::GrpcRetry`] (UNAVAILABLE by default; `grpc-retry-pushback-ms`).
//! - **Requests**: each attempt gets its own request, cloned by default or
//!   made by a [`RequestCloner`] hook; a request that cannot be copied is sent
//!   once.
//! - **Either way round with tower** (feature `tower-retry`): a
//!   `tower::retry::Policy` you already have decides here through
//!   `TowerPolicy`, and palisade's backoff times tower's `Retry` through
//!   `TowerBackoff` (on a palisade clock, so `ManualClock` drives it).
//!
//! The response future is written by hand (no boxing): calling, sleeping,
//! readying the service again — it never calls the service without a
//! `Ready` from its `poll_ready`. What only a retry needs — the sleep
//! between attempts, the clone of the service — is boxed when the first
//! retry is due, so a call that is not retried allocates nothing and its
//! future stays small.
//!
//! # Events
//!
//! [`RetryScheduled`](crate::observe::EventKind::RetryScheduled) (the attempt
//! about to be made and the delay before it),
//! [`RetriesExhausted`](crate::observe::EventKind::RetriesExhausted) (out of
//! attempts or time), [`BudgetExhausted`](crate::observe::EventKind::BudgetExhausted).
//!
//! # Examples
//!
//! ```
//! use std::{sync::{Arc, atomic::{AtomicU32, Ordering}}, time::Duration};
//! use palisade::{clock::ManualClock, random::FastRandom, retry::{Backoff, RetryLayer}};
//! use tower::{Layer, Service, ServiceExt, service_fn};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let clock = ManualClock::new();
//! let layer = RetryLayer::builder()
//!     .max_attempts(3)
//!     .backoff(Backoff::constant(Duration::from_millis(100)))
//!     .clock(clock.clone())
//!     .random(FastRandom::seeded(1))
//!     .build()
//!     .unwrap();
//! let calls = Arc::new(AtomicU32::new(0));
//! let flaky = service_fn({
//!     let calls = Arc::clone(&calls);
//!     move |()| {
//!         let n = calls.fetch_add(1, Ordering::SeqCst);
//!         async move { if n == 0 { Err("flaky") } else { Ok(n) } }
//!     }
//! });
//! let mut service = layer.layer(flaky);
//! let call = service.ready().await.unwrap().call(());
//! let answer = tokio::spawn(call);
//! tokio::task::yield_now().await;
//! clock.advance(Duration::from_millis(100)); // the backoff, in no real time
//! assert_eq!(answer.await.unwrap().unwrap(), 1);
//! assert_eq!(calls.load(Ordering::SeqCst), 2);
//! # }
//! ```

mod backoff;
#[cfg(feature = "http")]
pub mod body;
mod budget;
pub mod future;
#[cfg(feature = "http")]
pub mod http;
#[cfg(feature = "tower-retry")]
mod interop;
mod layer;
mod policy;
mod service;
mod settings;

pub use backoff::{Backoff, Jitter};
pub use budget::RetryBudget;
#[cfg(feature = "tower-retry")]
#[cfg_attr(docsrs, doc(cfg(feature = "tower-retry")))]
pub use interop::{BackoffSession, TowerBackoff, TowerPolicy};
pub use layer::{RetryBuilder, RetryLayer};
pub use policy::{Decision, RequestCloner, RetryErrors, RetryPolicy, ViaClone};
pub use service::Retry;
pub use settings::{BudgetSettings, Settings};

//! Resilience middleware for [`tower`]: circuit breaker, rate limiting, retry,
//! bulkhead, timeout and fallback, as composable `Layer`s over any async
//! `Service`, all driven by one [`Clock`](clock::Clock) you can control in
//! tests.
//!
//! | module | what it gives |
//! |---|---|
//! | [`circuit_breaker`] | stop calling a failing service, probe before trusting it again |
//! | [`rate_limit`] | token bucket, sliding window, sliding log, fixed window, leaky bucket; shared or per key |
//! | [`retry`] | capped backoff with jitter, attempts, deadline, retry budgets, pushback |
//! | [`timeout`] | a per-call timeout armed lazily, per-request timeouts |
//! | [`adaptive`] | a bound on the calls in flight whose limit an algorithm (AIMD, Vegas, Gradient2) moves from each call's latency and outcome |
//! | [`bulkhead`] | a lock-free bound on the calls in flight, refusing when full |
//! | [`fallback`] | an answer instead of a failure, chosen by what failed |
//! | [`hedge`] | another attempt at a request still unanswered after a delay (fixed, or a recent quantile), within a budget; the first acceptable answer wins |
//! | [`chaos`] | errors, made-up responses, hangs and latency injected on purpose, seeded and switchable at runtime |
//! | [`sim`] | a stack against a model dependency (capacity, latency, failures, an outage schedule) and virtual clients, in virtual time: outcomes and latency percentiles, a chart |
//! | [`guide`] | one worked example per pattern; testing with [`ManualClock`](clock::ManualClock) |
//! | [`stack`] | all of them in one layer, in the order that works; `ServiceBuilder` methods; HTTP and gRPC answers for refusals |
//! | [`clock`] | the [`Clock`](clock::Clock) trait (now + sleep), [`TokioClock`](clock::TokioClock) (default), [`ManualClock`](clock::ManualClock) (tests) and `QuantaClock` (feature `quanta`: a cheaper read) |
//! | [`random`] | seedable randomness for every jittered decision |
//! | [`classify`] | success / failure / ignored, with HTTP and gRPC presets |
//! | [`error`] | the typed rejections layers return, and [`ConfigError`](error::ConfigError) |
//! | [`observe`] | one event vocabulary, listeners, `metrics` and `tracing` sinks |
//!
//! # Design
//!
//! - **State is shared, always.** A layer's state is created when the layer
//!   is built; every service it makes, and every clone of those, shares it.
//! - **One clock.** Every timing decision reads the layer's
//!   [`Clock`](clock::Clock) and sleeps on it, so a
//!   [`ManualClock`](clock::ManualClock) makes a test of any layer
//!   deterministic: no real sleeps, no flakes.
//! - **Typed rejections.** A layer that refuses a call returns its own small
//!   error type inside [`tower::BoxError`], with `retry_after()` when known.
//!
//! # Feature flags
//!
//! | feature | default | enables |
//! |---|---|---|
//! | `metrics` | no | the `metrics` sink of [`observe`] |
//! | `tracing` | no | the `tracing` sink of [`observe`] |
//! | `cache` | no | `fallback::CachedLayer`: failed calls answered with the last good answer to the same request, from a bounded cache; with `http`, `fallback::http` |
//! | `http` | no | HTTP status classifiers ([`classify::ServerErrorsAsFailures`], [`classify::StatusInRangeAsFailures`]); [`rate_limit::http`], `retry::http`, `retry::body`, `timeout::http`, `stack::http` |
//! | `grpc` | no | gRPC status classifier ([`classify::GrpcErrorsAsFailures`]), the status in trailers (`classify::trailers`), `retry::http::GrpcRetry`, `stack::grpc`; implies `http` |
//! | `axum` | no | the rate limiter's client-address key reads axum 0.8's `ConnectInfo` (any other type: `ClientIp::peer_from`); implies `http` |
//! | `quanta` | no | `clock::QuantaClock`: real time read from the CPU's time-stamp counter, for layers that read the clock on every call |
//! | `redis` | no | `rate_limit::redis`: one limit for a whole fleet, its state in Redis (needs Rust 1.88) |
//! | `tower-retry` | no | `retry::TowerPolicy` (a tower retry policy in palisade's retry) and `retry::TowerBackoff` (palisade's backoff in tower's retry) |
//! | `plot` | no | `sim::Report::svg`: a simulation's timeline drawn as an SVG chart (with `plotters`) |
//! | `full` | no | all of the above |
//!
//! # Example: a test that controls time
//!
//! ```
//! use std::{future::Future, pin::pin, task::{Context, Waker}, time::Duration};
//! use palisade::clock::{Clock, ManualClock};
//!
//! let clock = ManualClock::new();
//! let mut wait = pin!(clock.sleep(Duration::from_secs(30)));
//! let mut cx = Context::from_waker(Waker::noop());
//!
//! assert!(wait.as_mut().poll(&mut cx).is_pending());
//! clock.advance(Duration::from_secs(30)); // no real time passes
//! assert!(wait.as_mut().poll(&mut cx).is_ready());
//! ```
#![cfg_attr(docsrs, feature(doc_cfg))]
#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations, unreachable_pub)]

pub mod adaptive;
pub mod bulkhead;
pub mod chaos;
pub mod circuit_breaker;
pub mod classify;
pub mod clock;
pub mod error;
pub mod fallback;
pub mod guide;
pub mod hedge;
pub mod observe;
pub mod random;
pub mod rate_limit;
pub mod retry;
#[cfg(not(loom))]
pub mod sim;
pub mod stack;
pub mod timeout;

mod deferred;
mod name;
#[cfg(feature = "serde")]
mod settings;
mod sync;

pub use name::LayerName;

/// The README's code, compiled and run as a doc test so it cannot rot.
#[cfg(all(doctest, feature = "full"))]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

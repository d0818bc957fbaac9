//! Chaos: faults and latency injected on purpose, so that a team sees its
//! breaker, retry, timeout and fallback work before production makes them.
//!
//! A [`ChaosLayer`] wraps any service and, for each request, with the
//! probabilities of its [`Settings`]:
//!
//! - **fails it** with an error — an [`InjectedFault`] (a stand-in for a
//!   dependency failure), or any error of your own, such as the one the
//!   real dependency returns or a palisade rejection
//!   ([`error_with`](ChaosBuilder::error_with));
//! - **answers it** with a made-up response — with feature `http`,
//!   [`http::unavailable`] is a `503` with `Retry-After`
//!   ([`response`](ChaosBuilder::response));
//! - **never answers it**, until the caller gives up
//!   ([`hang`](ChaosBuilder::hang));
//! - and, independently, **delays it** by a time drawn from a [`Latency`]
//!   distribution (fixed, uniform, exponential, a Pareto long tail) before
//!   its fault or its call ([`latency`](ChaosBuilder::latency)).
//!
//! A request is given one fault at most: one draw picks it. A faulted
//! request does not reach the wrapped service.
//!
//! Everything is drawn from the layer's [`Random`](crate::random::Random)
//! and waited on its [`Clock`](crate::clock::Clock): with a seeded
//! [`FastRandom`](crate::random::FastRandom) and a
//! [`ManualClock`](crate::clock::ManualClock), a run is repeatable to the
//! request, and seconds of injected latency take no real time.
//!
//! # Switching it on and off
//!
//! The layer is enabled or disabled, and its probabilities changed, while
//! it runs ([`ChaosLayer::enable`], [`disable`](ChaosLayer::disable),
//! [`reconfigure`](ChaosLayer::reconfigure)); disabled, a request costs one
//! atomic read. [`opt_in`](ChaosBuilder::opt_in) limits it to the requests
//! that ask for it — in a test environment shared with real traffic — and
//! with feature `http`, [`http::opt_in`] accepts a request carrying the
//! [`OptIn`] extension or an opt-in header (honoured only while the layer
//! is enabled: a disabled layer ignores it).
//!
//! tower has no chaos layer; tower-resilience's injects errors and latency
//! with fixed rates. This one adds made-up responses, hangs, latency
//! distributions with long tails, runtime switches, per-request opt-in,
//! and repeatable runs through the layer's clock and random source.
//!
//! # Events
//!
//! Each injection emits [`Injected`](crate::observe::EventKind::Injected)
//! with its kind (`error`, `response`, `hang`, `latency`), and with the
//! sink features the `palisade_chaos_injections_total` counter.
//!
//! # Examples
//!
//! A breaker meets an upstream made of chaos: half the calls fail, and the
//! breaker opens.
//!
//! ```
//! use palisade::{
//!     chaos::ChaosLayer,
//!     circuit_breaker::{CircuitBreakerLayer, CircuitState},
//!     clock::ManualClock,
//!     random::FastRandom,
//! };
//! use tower::{Layer, Service, ServiceExt, service_fn};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower::BoxError> {
//! let clock = ManualClock::new();
//! let chaos = ChaosLayer::builder()
//!     .error(0.5)
//!     .clock(clock.clone())
//!     .random(FastRandom::seeded(1))
//!     .build()?;
//! let breaker = CircuitBreakerLayer::builder()
//!     .count_window(20)
//!     .minimum_calls(20)
//!     .failure_rate(0.3)
//!     .clock(clock)
//!     .build()?;
//! let handle = breaker.handle();
//! let upstream = service_fn(|x: u32| async move { Ok::<_, std::io::Error>(x) });
//! let mut service = breaker.layer(chaos.layer(upstream));
//! for i in 0..20 {
//!     let _ = service.ready().await?.call(i).await;
//! }
//! assert_eq!(handle.state(), CircuitState::Open);
//! # Ok(()) }
//! ```

pub mod future;
#[cfg(feature = "http")]
pub mod http;
mod latency;
mod layer;
mod service;
mod settings;

pub use latency::Latency;
pub use layer::{ChaosBuilder, ChaosLayer, InjectedFault};
pub use service::Chaos;
pub use settings::Settings;

/// Marks a request as asking for chaos, for a layer built with an opt-in
/// (with feature `http`, [`http::opt_in`] looks for it in the request's
/// extensions).
///
/// ```
/// let mut request = http::Request::new(());
/// request.extensions_mut().insert(palisade::chaos::OptIn);
/// assert!(request.extensions().get::<palisade::chaos::OptIn>().is_some());
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OptIn;

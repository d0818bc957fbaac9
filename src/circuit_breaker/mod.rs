//! Circuit breaker: stop calling a service that is failing, give it time, and
//! probe carefully before trusting it again.
//!
//! tower has no circuit breaker. Compared with the ones a tower user would
//! otherwise reach for:
//!
//! - **The state is created once, with the layer.** Every service the layer
//!   makes and every clone shares it — there is no way to get a breaker per
//!   connection by accident.
//! - **Closed is lock-free.** Admitting a call is one atomic load; counting
//!   its outcome is a few atomic operations (no `Mutex`, no allocation, no
//!   boxed future). Only transitions and half-open probing take a lock.
//! - **Time comes from the [`Clock`](crate::clock::Clock).** Window edges,
//!   open durations, probe timeouts and slow-call measurement all read the
//!   layer's clock, so a test with a [`ManualClock`](crate::clock::ManualClock)
//!   says "advance 30 s, the breaker is half-open" and never sleeps.
//! - **It cannot get stuck half-open.** A probe's permit lives in its response
//!   future: dropping the future frees the slot (counted as ignored), and a
//!   probe that runs past its timeout counts as a failure.
//!
//! # Models
//!
//! One [`FailureModel`] per breaker: consecutive failures, failure rate over
//! the last N calls, or failure rate over a time window kept in buckets.
//! With a window, slow-call detection can open the breaker too
//! ([`slow_calls`](CircuitBreakerBuilder::slow_calls)). No rate is judged
//! before the window holds [`minimum_calls`](CircuitBreakerBuilder::minimum_calls).
//! A threshold opens the breaker on the call that reaches it. What counts as a
//! failure is the [`Classify`](crate::classify::Classify) you give
//! (default: every `Err`); ignored calls count for nothing.
//!
//! A classifier may leave the outcome for later
//! ([`Classify::defers`](crate::classify::Classify::defers)): a gRPC call
//! whose status is in the trailers counts when its body ends
//! ([`classify::trailers`](crate::classify::trailers), feature `grpc`), and
//! holds its half-open probe slot until then.
//!
//! A refusal by a layer *inside* the breaker — rate limited, bulkhead full,
//! an inner breaker open, a retry budget spent, overloaded (tower's
//! `LoadShed` too, or another crate's [`Overloaded`](crate::error::Overloaded)),
//! found in a `BoxError` error's chain — is always ignored, whatever the
//! classifier: it is the caller's own limit speaking, not the dependency. So
//! is, by default, a timeout at a deadline the request chose
//! ([`DeadlineExceeded`](crate::error::DeadlineExceeded); see
//! [`count_request_deadlines`](CircuitBreakerBuilder::count_request_deadlines)).
//! A timeout at the layer's own duration ([`Elapsed`](crate::error::Elapsed),
//! tower's `Timeout` too) is not a refusal and is classified like any error
//! (a failure by default). This is what lets a breaker sit outside a rate
//! limiter and a bulkhead ([the stack's order](crate::stack)).
//!
//! Start from [`CircuitBreakerLayer::builder`] (failure rate ≥ 50 % over the
//! last 100 calls), or from a preset: [`CircuitBreakerLayer::sensitive`],
//! [`CircuitBreakerLayer::tolerant`].
//!
//! # States
//!
//! [`CircuitState`]: `Closed` → `Open` (for the [`OpenDuration`], fixed or
//! growing with each re-open, optionally jittered; or for as long as the
//! classifier's [`open_for`](crate::classify::Classify::open_for) says, up to
//! [`max_pushback`](CircuitBreakerBuilder::max_pushback) — for HTTP, a
//! failed response's `Retry-After` with
//! [`ServerErrorsAsFailures::open_for_retry_after`](crate::classify::ServerErrorsAsFailures::open_for_retry_after),
//! feature `http`) → `HalfOpen` at the
//! first call or state query after the wait (no background task) → `Closed`
//! or back to `Open` by the probes' results ([`HalfOpen`]). By hand, through
//! the [`CircuitBreakerHandle`]: `ForcedOpen`, `Disabled`, `MetricsOnly`,
//! close and reset. Each transition emits exactly one
//! [`Transition`](crate::observe::EventKind::Transition) event.
//!
//! The handle also changes the [`Settings`] of the running breaker
//! ([`CircuitBreakerHandle::reconfigure`]): thresholds, minimum calls,
//! slow-call detection, open duration, pushback bound, probes, and the
//! window's size within the memory it was built with. The window keeps its
//! outcomes and the state is kept; the new numbers judge from the next
//! outcome or decision on.
//!
//! [`CircuitBreakerHandle::metrics`] reads the window as the breaker sees it
//! ([`CircuitMetrics`]): calls, successes, failures, slow successes and slow
//! failures, both rates (`None` before any call, and `enough_calls` to tell
//! "too few calls to judge" from a healthy 0), the calls refused, and when an
//! open state ends. A breaker that is observed — a listener, or the
//! `metrics` or `tracing` sink compiled in — times every call for its events
//! anyway, so it also counts the calls it permitted and keeps each call's
//! duration in the window ([`CallDurations`]: count, sum and longest, leaving
//! the window with their calls); one nothing observes reads neither, so that
//! its fast path writes nothing for them.
//!
//! # Modes
//!
//! - **Fail fast** (default): `poll_ready` is the wrapped service's; a call
//!   the breaker refuses returns at once an error that downcasts to
//!   [`CircuitOpen`](crate::error::CircuitOpen), with `retry_after()` the time
//!   left open (none when forced open or when every probe slot is taken). The
//!   wrapped service is not called.
//! - **Backpressure** ([`backpressure`](CircuitBreakerBuilder::backpressure)):
//!   `poll_ready` is pending while the breaker refuses calls and is woken
//!   through the clock when it would admit one. The permit is taken in
//!   `poll_ready` and used by the next `call`; a service that is ready but
//!   never called holds a half-open probe slot only until the probe timeout.
//!
//! # Examples
//!
//! A breaker under test: three failures in a row open it; thirty seconds later
//! it lets a probe through.
//!
//! ```
//! use std::time::Duration;
//! use palisade::{
//!     circuit_breaker::{CircuitBreakerLayer, CircuitState, HalfOpen, OpenDuration},
//!     clock::ManualClock,
//!     error::CircuitOpen,
//! };
//! use tower::{Layer, Service, ServiceExt, service_fn};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let clock = ManualClock::new();
//! let layer = CircuitBreakerLayer::builder()
//!     .consecutive_failures(3)
//!     .open_duration(OpenDuration::fixed(Duration::from_secs(30)))
//!     .half_open(HalfOpen::new().probes(1))
//!     .clock(clock.clone())
//!     .build()
//!     .unwrap();
//! let handle = layer.handle();
//! let mut service = layer.layer(service_fn(|fail: bool| async move {
//!     if fail { Err("upstream down") } else { Ok("fine") }
//! }));
//!
//! for _ in 0..3 {
//!     assert!(service.ready().await.unwrap().call(true).await.is_err());
//! }
//! assert_eq!(handle.state(), CircuitState::Open);
//!
//! let err = service.ready().await.unwrap().call(false).await.unwrap_err();
//! let open = err.downcast_ref::<CircuitOpen>().unwrap();
//! assert_eq!(open.retry_after(), Some(Duration::from_secs(30)));
//!
//! clock.advance(Duration::from_secs(30));
//! assert_eq!(handle.state(), CircuitState::HalfOpen);
//! assert_eq!(service.ready().await.unwrap().call(false).await.unwrap(), "fine");
//! assert_eq!(handle.state(), CircuitState::Closed);
//! # }
//! ```

mod config;
pub mod future;
mod handle;
mod layer;
mod service;
mod shared;
mod state;
mod window;

pub use self::{
    config::{FailureModel, HalfOpen, OpenDuration, Settings, SlowCalls},
    handle::{CallDurations, CircuitBreakerHandle, CircuitMetrics},
    layer::{CircuitBreakerBuilder, CircuitBreakerLayer},
    service::CircuitBreaker,
    state::CircuitState,
};

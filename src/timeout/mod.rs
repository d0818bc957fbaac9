//! Timeout: fail a call that takes too long, on the layer's clock.
//!
//! Compared with tower's `Timeout`:
//!
//! - **The timer is armed lazily.** tower's `Timeout` creates a tokio
//!   `Sleep` (a clock read and a timer entry) in every `call`. Here the
//!   response future polls the wrapped future first, and only when that is
//!   not ready does it read the clock and arm a timer: a call that
//!   completes on its first poll costs no clock read and no timer. The
//!   timeout therefore runs from the **first poll** of the response future
//!   (futures do nothing before it). The timer, once made, is boxed: the
//!   response future stays the wrapped future plus four words, instead of
//!   carrying a tokio `Sleep` (over a hundred bytes) that every layer
//!   outside moves on every call. A call that does arm the timer pays for
//!   one allocation (`BENCHMARKS.md` has both cases next to tower's). A
//!   timeout with no name of its own and no one to tell (no listener, and
//!   neither the `metrics` nor the `tracing` feature) needs nothing from the
//!   layer when it fires, so its response futures do not hold the layer: no
//!   reference count is taken and given back per call.
//! - **A timeout per request.** A [`TimeoutFor`] function of the request
//!   (a `grpc-timeout` header, a deadline the caller set…) may ask for less
//!   time than the layer's; never for more. A call cut short at such a
//!   deadline fails with [`DeadlineExceeded`](crate::error::DeadlineExceeded),
//!   not [`Elapsed`](crate::error::Elapsed): the caller chose it, so a
//!   circuit breaker does not count it against the dependency (a client
//!   sending `grpc-timeout: 1n` cannot open a breaker shared by everyone)
//!   and the retry does not retry it.
//! - **Time comes from the [`Clock`](crate::clock::Clock)**, so a
//!   [`ManualClock`](crate::clock::ManualClock) test sees it fire exactly at
//!   the deadline, not a nanosecond before.
//! - **Deadlines that travel** (feature `http`): [`http::DeadlineLayer`]
//!   stamps requests with a [`http::Deadline`]; inside it,
//!   [`http::RemainingTime`] gives each attempt no more than the time left,
//!   and [`http::GrpcTimeout`] honours a client's `grpc-timeout`.
//! - **A typed error**: the call fails with
//!   [`Elapsed`](crate::error::Elapsed), which names the layer and says how
//!   long it waited, and a
//!   [`TimedOut`](crate::observe::EventKind::TimedOut) event is emitted. The
//!   wrapped future is dropped.
//!
//! # Examples
//!
//! ```
//! use std::time::Duration;
//! use palisade::{clock::ManualClock, error::Elapsed, timeout::TimeoutLayer};
//! use tower::{Layer, Service, ServiceExt, service_fn};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let clock = ManualClock::new();
//! let layer = TimeoutLayer::builder(Duration::from_secs(2)).clock(clock.clone()).build().unwrap();
//! let mut service = layer.layer(service_fn(|()| std::future::pending::<Result<(), std::io::Error>>()));
//! let call = tokio::spawn(service.ready().await.unwrap().call(()));
//! tokio::task::yield_now().await; // the first poll arms the timer
//! clock.advance(Duration::from_secs(2));
//! let err = call.await.unwrap().unwrap_err();
//! assert_eq!(err.downcast_ref::<Elapsed>().unwrap().retry_after(), None);
//! # }
//! ```

pub mod future;
#[cfg(feature = "http")]
pub mod http;
mod layer;
mod service;
mod settings;

pub use layer::{FixedTimeout, TimeoutBuilder, TimeoutFor, TimeoutLayer};
pub use service::Timeout;
pub use settings::Settings;

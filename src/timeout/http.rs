//! Deadlines carried by HTTP requests (feature `http`): how much time a
//! request has left, seen by every layer it passes through.
//!
//! [`DeadlineLayer`], placed outermost, stamps each request with a
//! [`Deadline`] in its extensions (keeping an earlier one already there).
//! Inside, [`RemainingTime`] lets a [`TimeoutLayer`](super::TimeoutLayer)
//! give each attempt no more than what is left, so retries below an overall
//! deadline cannot run past it; [`GrpcTimeout`] reads the time a gRPC client
//! asked for in its `grpc-timeout` header.
//!
//! # Examples
//!
//! ```
//! use std::time::Duration;
//! use palisade::{
//!     clock::ManualClock,
//!     timeout::{TimeoutLayer, http::{DeadlineLayer, RemainingTime}},
//! };
//! use tower::ServiceBuilder;
//!
//! let clock = ManualClock::new();
//! let per_attempt = TimeoutLayer::builder(Duration::from_secs(2))
//!     .per_request(RemainingTime::new(clock.clone()))
//!     .clock(clock.clone())
//!     .build()?;
//! let service = ServiceBuilder::new()
//!     .layer(DeadlineLayer::new(Duration::from_secs(5), clock.clone()))
//!     // … a retry layer would go here …
//!     .layer(per_attempt)
//!     .service_fn(|_: http::Request<()>| async { Ok::<_, std::io::Error>(()) });
//! # let _ = service;
//! # Ok::<(), palisade::error::ConfigError>(())
//! ```

use std::{
    task::{Context, Poll},
    time::Duration,
};

use http::Request;
use tower::{Layer, Service};

use super::TimeoutFor;
use crate::clock::{Clock, Instant};

/// The instant, on the layers' clock, by which a request must be answered.
/// Carried in `http::Request` extensions.
///
/// ```
/// use std::time::Duration;
/// use palisade::{clock::Instant, timeout::http::Deadline};
/// let deadline = Deadline(Instant::ZERO + Duration::from_secs(3));
/// assert_eq!(deadline.remaining(Instant::ZERO + Duration::from_secs(1)), Duration::from_secs(2));
/// assert_eq!(deadline.remaining(Instant::ZERO + Duration::from_secs(9)), Duration::ZERO);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Deadline(pub Instant);

impl Deadline {
    /// The time left at `now` (zero once past).
    pub fn remaining(&self, now: Instant) -> Duration {
        self.0.saturating_duration_since(now)
    }
}

/// A [`Layer`] that gives each request a [`Deadline`] of `timeout` from the
/// call, unless it carries an earlier one.
///
/// ```
/// # use std::time::Duration;
/// use palisade::{clock::TokioClock, timeout::http::DeadlineLayer};
/// let _ = DeadlineLayer::new(Duration::from_secs(5), TokioClock::new());
/// ```
#[derive(Clone, Debug)]
pub struct DeadlineLayer<C> {
    timeout: Duration,
    clock: C,
}

impl<C: Clock> DeadlineLayer<C> {
    /// Deadlines `timeout` after each call, on `clock`.
    pub fn new(timeout: Duration, clock: C) -> DeadlineLayer<C> {
        DeadlineLayer { timeout, clock }
    }
}

impl<S, C: Clock> Layer<S> for DeadlineLayer<C> {
    type Service = SetDeadline<S, C>;

    fn layer(&self, inner: S) -> SetDeadline<S, C> {
        SetDeadline {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service of [`DeadlineLayer`].
///
/// ```
/// # use std::time::Duration;
/// use palisade::{clock::TokioClock, timeout::http::DeadlineLayer};
/// use tower::Layer;
/// let _service = DeadlineLayer::new(Duration::from_secs(1), TokioClock::new()).layer(());
/// ```
#[derive(Clone, Debug)]
pub struct SetDeadline<S, C> {
    inner: S,
    layer: DeadlineLayer<C>,
}

impl<S, C, B> Service<Request<B>> for SetDeadline<S, C>
where
    S: Service<Request<B>>,
    C: Clock,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> S::Future {
        let ours = Deadline(self.layer.clock.now().saturating_add(self.layer.timeout));
        let deadline = match request.extensions().get::<Deadline>() {
            Some(earlier) => ours.min(*earlier),
            None => ours,
        };
        request.extensions_mut().insert(deadline);
        self.inner.call(request)
    }
}

/// A [`TimeoutFor`] that asks for the time left before the request's
/// [`Deadline`], if it carries one.
///
/// ```
/// use std::time::Duration;
/// use palisade::{clock::{Clock, ManualClock}, timeout::{TimeoutFor, http::{Deadline, RemainingTime}}};
///
/// let clock = ManualClock::new();
/// let mut request = http::Request::new(());
/// request.extensions_mut().insert(Deadline(clock.now() + Duration::from_millis(300)));
/// clock.advance(Duration::from_millis(100));
/// assert_eq!(RemainingTime::new(clock).timeout_for(&request), Some(Duration::from_millis(200)));
/// ```
#[derive(Clone, Debug)]
pub struct RemainingTime<C> {
    clock: C,
}

impl<C: Clock> RemainingTime<C> {
    /// Reads the time left on `clock` — the clock that set the deadline.
    pub fn new(clock: C) -> RemainingTime<C> {
        RemainingTime { clock }
    }
}

impl<C: Clock, B> TimeoutFor<Request<B>> for RemainingTime<C> {
    fn timeout_for(&self, request: &Request<B>) -> Option<Duration> {
        let deadline = request.extensions().get::<Deadline>()?;
        Some(deadline.remaining(self.clock.now()))
    }
}

/// A [`TimeoutFor`] that asks for the time in a gRPC request's
/// `grpc-timeout` header: up to 8 digits and a unit (`H`, `M`, `S`, `m`,
/// `u`, `n`). A malformed header asks for nothing.
///
/// ```
/// use std::time::Duration;
/// use palisade::timeout::{TimeoutFor, http::GrpcTimeout};
///
/// let request = http::Request::builder().header("grpc-timeout", "250m").body(()).unwrap();
/// assert_eq!(GrpcTimeout.timeout_for(&request), Some(Duration::from_millis(250)));
/// let garbage = http::Request::builder().header("grpc-timeout", "123456789S").body(()).unwrap();
/// assert_eq!(GrpcTimeout.timeout_for(&garbage), None);
/// ```
#[derive(Clone, Copy, Debug, Default)]
pub struct GrpcTimeout;

impl<B> TimeoutFor<Request<B>> for GrpcTimeout {
    fn timeout_for(&self, request: &Request<B>) -> Option<Duration> {
        let value = request.headers().get("grpc-timeout")?.to_str().ok()?;
        let (digits, unit) = value.split_at_checked(value.len().checked_sub(1)?)?;
        if digits.is_empty() || digits.len() > 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let amount: u64 = digits.parse().ok()?;
        Some(match unit {
            "H" => Duration::from_secs(amount * 3600),
            "M" => Duration::from_secs(amount * 60),
            "S" => Duration::from_secs(amount),
            "m" => Duration::from_millis(amount),
            "u" => Duration::from_micros(amount),
            "n" => Duration::from_nanos(amount),
            _ => return None,
        })
    }
}

//! Hedging: when a request is still unanswered after a delay, send another
//! attempt, and take the first acceptable answer — the tail latency of one
//! slow server traded for a few extra requests ("The Tail at Scale", Dean
//! and Barroso, 2013).
//!
//! A [`HedgeLayer`] wraps a `Clone` service. Each request's first attempt
//! goes out at once; if it has not answered after the [`Delay`] — fixed, or
//! a quantile (say the p95) of the latencies of recent attempts, measured
//! on the layer's clock — a copy of the request goes to a clone of the
//! service, and another after each further delay, up to
//! [`max_extra`](HedgeBuilder::max_extra). The first acceptable answer (by
//! the [classifier](HedgeBuilder::classifier)) is returned and the other
//! attempts are dropped: cancelled, like any dropped future — a bulkhead
//! inside gets its permit back, a breaker inside counts the loser as
//! ignored, not failed. A failure waits for the other attempts, unless
//! [`fail_fast`](HedgeBuilder::fail_fast).
//!
//! A **budget** shared by every clone bounds the extra attempts to a
//! fraction of the requests ([`budget`](HedgeBuilder::budget)): when every
//! call is slow — an outage, not a straggler — hedging cannot double the
//! load. Requests are copied as the retry copies them
//! ([`clone_request`](HedgeBuilder::clone_request): `Clone`, a closure, or
//! replayable HTTP bodies); with feature `http`, [`http::Idempotent`]
//! hedges only the requests that may safely be sent twice.
//!
//! Compared with tower's `Hedge`: the delay can be fixed or a quantile read
//! from a constant-memory histogram (never below the true value, at most 2 % above, two
//! rotating windows of time) rather than only a percentile over a rotating
//! histogram with a minimum of data points; the budget is a fraction of
//! requests with a burst, shared by clones; up to 16 extra attempts rather
//! than one; the classifier decides what answers; and a first attempt
//! answered at its first poll reads no clock and arms no timer.
//!
//! # Latencies
//!
//! An attempt's latency is measured from when it is found pending (its
//! first poll, for the first attempt) to its answer, and recorded in the
//! histogram of the current window (one logarithm and two atomic additions
//! an attempt). An attempt answered at its first poll is not timed and
//! counts for nothing. A loser dropped because a later attempt answered
//! counts with the time it had taken so far: a lower bound of its latency,
//! but above the answer's, so the quantile keeps its rank — a straggler
//! overtaken by its hedge still counts as slow (counted for nothing, the
//! stragglers would vanish from the histogram, the quantile would fall to
//! the hedges' latencies, and the layer would hedge more). A loser started
//! after the answer's attempt counts for nothing.
//!
//! # Events
//!
//! [`Hedged`](crate::observe::EventKind::Hedged) for each extra attempt,
//! [`HedgeWon`](crate::observe::EventKind::HedgeWon) with the attempt that
//! answered a hedged request, and
//! [`BudgetExhausted`](crate::observe::EventKind::BudgetExhausted) when the
//! budget refuses a hedge.
//!
//! # Examples
//!
//! A slow first attempt is overtaken by the hedge sent 50 ms later:
//!
//! ```
//! use std::{sync::{Arc, atomic::{AtomicU32, Ordering}}, time::Duration};
//! use palisade::{clock::{Clock, ManualClock}, hedge::{Delay, HedgeLayer}};
//! use tower::{Layer, Service, ServiceExt, service_fn};
//!
//! # fn main() -> Result<(), tower::BoxError> {
//! let clock = ManualClock::new();
//! let layer = HedgeLayer::builder(Delay::Fixed(Duration::from_millis(50)))
//!     .clock(clock.clone())
//!     .build()?;
//! let calls = Arc::new(AtomicU32::new(0));
//! let mut service = layer.layer(service_fn({
//!     let (clock, calls) = (clock.clone(), Arc::clone(&calls));
//!     move |request: u32| {
//!         // The first call takes a second, the next 10 ms.
//!         let first = calls.fetch_add(1, Ordering::SeqCst) == 0;
//!         let sleep = clock.sleep(Duration::from_millis(if first { 1_000 } else { 10 }));
//!         async move {
//!             sleep.await;
//!             Ok::<_, std::io::Error>(request)
//!         }
//!     }
//! }));
//! let answer = clock.block_on(async { service.ready().await?.call(7).await })?;
//! assert_eq!(answer, 7);
//! assert_eq!(clock.now().since_epoch(), Duration::from_millis(60));
//! # Ok(()) }
//! ```

mod budget;
pub mod future;
#[cfg(feature = "http")]
pub mod http;
mod latencies;
mod layer;
mod service;

pub use layer::{Delay, HedgeBuilder, HedgeLayer};
pub use service::Hedge;

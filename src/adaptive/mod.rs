//! Adaptive limits that find the right number themselves: a bound on the
//! calls in flight moved by each call's latency and outcome, and
//! client-side throttling moved by what the dependency accepts.
//!
//! A fixed [bulkhead](crate::bulkhead) is a guess: too high and an
//! overloaded dependency collapses under the queue it lets build, too low
//! and capacity is wasted — and the right number moves with deploys, load
//! and the dependency's health. An [`AdaptiveLayer`] admits calls like a
//! bulkhead (refusing with [`BulkheadFull`](crate::error::BulkheadFull)
//! when the limit is reached, or queueing a bounded number of them), at a
//! limit an [`Algorithm`] moves from a [`Sample`] of each call — its round
//! trip on the layer's clock, the calls in flight with it, and whether it
//! was dropped (failed, by the layer's classifier):
//!
//! - [`Aimd`] — one more for each call that ends well, a fraction less for
//!   each drop: finds the capacity where the dependency fails (a timeout, a
//!   queue bound), blind to latency below that.
//! - [`Vegas`] — sizes the queue the latency says is building against the
//!   no-load latency (re-learned every so often), and keeps it small:
//!   reacts before anything fails.
//! - [`Gradient2`] — scales the limit by how far the latency rose above its
//!   baseline, with a tolerance and a headroom: ignores single outliers,
//!   re-learns the baseline every so often.
//!
//! Each is a pure core — samples and `now` in, a limit out — so its
//! behaviour is tested on any sequence, and an algorithm of your own plugs
//! in through the trait. The limit is read from
//! [`AdaptiveLayer::limit`] and, with the sink features, the
//! `palisade_concurrency_limit` gauge
//! ([`LimitChanged`](crate::observe::EventKind::LimitChanged) events).
//!
//! How well: against a simulated dependency serving 100 calls at once in
//! about 100 ms, offered three times that by callers who give up after
//! 250 ms, each algorithm starting at 200 is within 25 % of the capacity
//! in 1 to 5 s (at most 15 000 calls, 50 round trips), follows it to half
//! and back as fast, and keeps every call it lets through in time — where a
//! bulkhead fixed at four times the capacity answers none in time (see
//! `BENCHMARKS.md` and `examples/adaptive.rs`). Each call a sample costs two
//! clock reads and a lock; [`sample_every`](AdaptiveBuilder::sample_every)
//! samples fewer.
//!
//! tower has no adaptive limit (its `ConcurrencyLimit` is fixed and waits
//! rather than refusing); these are the algorithms of Netflix's
//! concurrency-limits, in the shape of palisade's bulkhead.
//!
//! # Client-side throttling
//!
//! A [`ThrottleLayer`] bounds not the calls in flight but the share of
//! requests sent: it refuses locally, with the probability
//! `max(0, (requests − k × accepts) / (requests + 1))` of Google's SRE book
//! over a rolling window, so that a client of a dependency refusing much of
//! what it gets sends about `k` times what is accepted (a `k` of 1.5
//! against a dependency taking half of what it is offered: 75 % sent), and
//! goes back to sending everything within the window once the dependency is
//! well. Its refusals are [`Overloaded`](crate::error::Overloaded)
//! rejections.
//!
//! # Examples
//!
//! ```
//! use std::time::Duration;
//! use palisade::{adaptive::{AdaptiveLayer, Aimd}, clock::{Clock, ManualClock}};
//! use tower::{Layer, Service, ServiceExt, service_fn};
//!
//! let clock = ManualClock::new();
//! let layer = AdaptiveLayer::builder(Aimd::new(4).bounds(1, 100))
//!     .clock(clock.clone())
//!     .build()?;
//! let mut service = layer.layer(service_fn(|x: u32| async move { Ok::<_, std::io::Error>(x) }));
//! // Each call that ends well while the limit is in use (here, 1 of 4 in
//! // flight is less than half: unchanged) ...
//! clock.block_on(async { service.ready().await?.call(1).await })?;
//! assert_eq!(layer.limit(), 4);
//! # Ok::<(), tower::BoxError>(())
//! ```

mod aimd;
mod algorithm;
pub mod future;
mod gradient;
mod layer;
mod service;
mod throttle;
mod vegas;

pub use aimd::Aimd;
pub use algorithm::{Algorithm, Sample};
pub use gradient::Gradient2;
pub use layer::{AdaptiveBuilder, AdaptiveLayer};
pub use service::Adaptive;
pub use throttle::{ResponseFuture as ThrottleFuture, Throttle, ThrottleBuilder, ThrottleLayer};
pub use vegas::Vegas;

//! Bulkhead: bound the calls in flight to one dependency, so that a slow
//! dependency cannot take every task, connection and buffer of the service.
//!
//! Compared with tower's `ConcurrencyLimit`:
//!
//! - **It refuses when full** instead of making `poll_ready` wait
//!   (tower#793): a call over the limit fails at once with
//!   [`BulkheadFull`](crate::error::BulkheadFull), so a caller can shed
//!   load, fall back, or answer 503.
//! - **The permit is taken in `call`, not in `poll_ready`**, and lives in the
//!   response future: released when the call completes, when its future is
//!   dropped (cancelled), and when it unwinds from a panic. A service made
//!   ready and never called holds nothing (the tower#408 problem cannot
//!   happen).
//! - **Lock-free**: admission is one compare-and-swap on a counter, release
//!   one atomic subtraction — no semaphore, no mutex (tokio's `Semaphore`
//!   takes a mutex on every release).
//! - **An optional waiting room** ([`queue`](BulkheadBuilder::queue)): up
//!   to `max_waiting` calls that find every permit taken wait for one, served
//!   in arrival order, each for at most `max_wait`, then refused. A permit
//!   given back while someone waits goes to the first waiter (a call
//!   arriving at that very moment may take it first; then its own release
//!   serves the waiter); a
//!   waiter that gives up (its time ran out, its future was dropped) leaves
//!   the queue. Only the queue takes a lock; the count of waiters shares the
//!   atomic word of the permits, so a permit given back and a call joining
//!   the queue can never miss each other (checked by a loom model).
//! - The state is created with the layer: every service and clone made from
//!   it shares one bound.
//!
//! # Events
//!
//! [`Permitted`](crate::observe::EventKind::Permitted) and
//! [`Finished`](crate::observe::EventKind::Finished) for each call let
//! through (the `palisade_calls_in_flight` gauge follows them), and
//! [`Rejected`](crate::observe::EventKind::Rejected) for each refusal.
//!
//! # Examples
//!
//! ```
//! use palisade::{bulkhead::BulkheadLayer, error::BulkheadFull};
//! use tower::{Layer, Service, service_fn};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let layer = BulkheadLayer::builder(1).name("db").build().unwrap();
//! let mut service = layer.layer(service_fn(|x: u32| async move { Ok::<_, std::io::Error>(x) }));
//! let first = service.call(1); // holds the only permit until it completes or is dropped
//! let err = service.call(2).await.unwrap_err();
//! assert!(err.is::<BulkheadFull>());
//! assert_eq!(first.await.unwrap(), 1);
//! assert_eq!(service.call(3).await.unwrap(), 3);
//! # }
//! ```

pub mod future;
mod layer;
mod permits;
mod queue;
mod service;
mod settings;

pub use layer::{BulkheadBuilder, BulkheadLayer};
pub use service::Bulkhead;
pub use settings::{QueueBounds, Settings};

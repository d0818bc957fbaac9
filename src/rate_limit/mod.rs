//! Rate limiting: admit at most so many requests per unit of time — shared
//! by every connection, or per client — and tell the caller exactly when to
//! come back.
//!
//! Compared with tower's `RateLimit`:
//!
//! - **One limit across every clone and connection.** The state is created
//!   when the layer is built; every service it makes, and every clone,
//!   counts against it. tower's `RateLimit` keeps its state per service
//!   instance (tower#794), so under axum, which clones the service per
//!   connection, a limit of 5 a second let 1 500 through (axum#2634).
//! - **It refuses instead of stalling** (by default). tower's `RateLimit`
//!   only makes `poll_ready` wait. Here a request over the limit fails at
//!   once with [`RateLimited`](crate::error::RateLimited), whose
//!   `retry_after()` is the exact wait; waiting up to a bound and
//!   `poll_ready` backpressure are opt-in modes.
//! - **Bursts or an even stream, weights, keys.** Five algorithms — among
//!   them a leaky bucket that releases requests at a fixed rate — a cost per
//!   request, a limit per key in bounded memory.
//! - **Time comes from the [`Clock`](crate::clock::Clock)**: a test with a
//!   [`ManualClock`](crate::clock::ManualClock) advances time and never
//!   sleeps.
//!
//! # Algorithms
//!
//! Each is a pure core that takes `now`; all count in whole nanoseconds of
//! the layer's clock.
//!
//! | builder | admits | state | notes |
//! |---|---|---|---|
//! | [`token_bucket(rate, burst)`](RateLimitBuilder::token_bucket) (default) | bursts up to `burst`, `rate` on average: at most `burst + rate·t` in any span `t` | one atomic word | GCRA: an admission is one compare-and-swap, a refusal writes nothing |
//! | [`sliding_window(limit, window, segments)`](RateLimitBuilder::sliding_window) | never more than `limit` in any interval of length `window` | `segments + 1` counters | a request counts until its whole segment has left the window: at most `window / segments` longer than exact |
//! | [`sliding_log(limit, window)`](RateLimitBuilder::sliding_log) | exactly `limit` per sliding `window` | up to `limit` entries | exact, and the most memory |
//! | [`fixed_window(limit, window)`](RateLimitBuilder::fixed_window) | `limit` per window, windows aligned on the clock's zero | one counter | up to 2 × `limit` across a window's edge |
//! | [`leaky_bucket(rate, queue)`](RateLimitBuilder::leaky_bucket) | one request every `1/rate`, never two closer, in arrival order | the end of the last slot, and a queue of up to `queue` waiters | requests wait for their slots; see below |
//!
//! A request's [`Cost`] (default 1) is taken from the limit. A cost above
//! what the limit admits at once — the burst, the window's limit — can never
//! be satisfied: it fails with [`Unsatisfiable`](crate::error::Unsatisfiable)
//! instead of waiting.
//!
//! A shared token bucket is lock-free, and so is a shared leaky bucket for a
//! request that finds it idle. Windows and logs, keyed limits, and a leaky
//! bucket's waiters take a lock for the decision (one per shard for keyed
//! limits).
//!
//! ## Smoothing or bursts
//!
//! The first four limit how much gets through; the leaky bucket also shapes
//! *when*. Which to pick depends on whom the limit protects:
//!
//! - **Protecting yourself** from clients — a token bucket or a window.
//!   A client under its limit is answered at once, bursts included; over
//!   it, refused at once with the exact `retry_after`. Nothing waits, and
//!   nothing is held in memory for a request.
//! - **Protecting a fragile downstream** that must never see a burst — a
//!   payment provider that takes 10 requests a second, a legacy system — a
//!   leaky bucket. Each admitted request waits for its *slot*, `1/rate`
//!   after the previous one's (a request of cost `n` takes `n` slots), and
//!   is released at its start, in arrival order: the downstream sees an
//!   even stream. At most `queue` requests are in the bucket — the one
//!   released last while its slot lasts, and those waiting — so a burst of
//!   100 into a bucket of 10 a second and a queue of 50 releases one at
//!   once and one every 100 ms after it for the next 49, and refuses the
//!   other 50 at once, each with `retry_after` = 100 ms (when a slot
//!   frees). [`wait_up_to`](RateLimitBuilder::wait_up_to) also bounds the
//!   wait. A waiter dropped before its slot — its client went away — gives
//!   the slot back: everyone behind it moves up, so the stream keeps no gap
//!   and no burst follows.
//!
//! | | token bucket | sliding window | sliding log | fixed window | leaky bucket |
//! |---|---|---|---|---|---|
//! | bursts | up to `burst` at once | up to `limit` at once | up to `limit` at once | up to 2 × `limit` across an edge | none: one a slot |
//! | memory (shared; a key adds 24 or 32 bytes) | one word | `segments + 1` counters | `limit` entries | one counter | 48 bytes, and 40 a waiter |
//! | exactness | exact | up to a segment late | exact | exact per window | exact slots |
//! | what the caller sees | at once, or refused | at once, or refused | at once, or refused | at once, or refused | after its slot's wait, or refused |
//!
//! A token bucket of burst 1 in [`wait_up_to`](RateLimitBuilder::wait_up_to)
//! mode spaces requests the same way, but a reservation is never given
//! back: a waiter that leaves leaves a gap in the stream. The leaky bucket is
//! not available on Redis (`rate_limit::redis`): its waiters are held by
//! the instance that took them, so one that leaves cannot give its slot to
//! another instance's; there, a token bucket of burst 1 with `wait_up_to`
//! spaces the fleet's requests evenly.
//!
//! Most of what an admission costs is reading the clock: the operating
//! system's monotonic clock takes tens of nanoseconds to read in many virtual
//! machines, against a few for the decision itself. Where that matters, build
//! the limiter on `QuantaClock` (feature `quanta`), which reads the CPU's
//! time-stamp counter:
//!
//! ```
//! # #[cfg(feature = "quanta")] {
//! use palisade::{clock::QuantaClock, rate_limit::{Rate, RateLimitLayer}};
//!
//! let layer = RateLimitLayer::builder()
//!     .token_bucket(Rate::per_second(100), 120)
//!     .clock(QuantaClock::new())
//!     .build()
//!     .unwrap();
//! # let _ = layer;
//! # }
//! ```
//!
//! # Modes
//!
//! - **Reject** (default): over the limit, the call fails at once with
//!   [`RateLimited`](crate::error::RateLimited); `retry_after()` is exact —
//!   the same request is still refused 1 ns before it and admitted at it,
//!   if nothing else is admitted meanwhile. The wrapped service is not
//!   called.
//! - **Wait up to `d`** ([`wait_up_to`](RateLimitBuilder::wait_up_to)): a
//!   request over the limit reserves capacity to come and its response
//!   future sleeps on the clock until it is due — when that is within `d`;
//!   otherwise it is refused as in reject mode. Reservations are made in
//!   arrival order and each waiter wakes at its own time, not all at once.
//!   The future holds the service made ready for it while it sleeps (see
//!   [`RateLimit`]'s *Clone*); dropping it does not give its reservation
//!   back.
//! - **Backpressure** ([`backpressure`](RateLimitBuilder::backpressure)):
//!   `poll_ready` is pending until a unit of the limit is available, woken
//!   through the clock exactly when it is due, and takes it for the next
//!   call (as tower's `RateLimit` does; a unit taken by a service that is
//!   then never called is not given back). Since `poll_ready` does not see
//!   the request, this mode needs a shared limit of one unit a request.
//!
//! # Keys
//!
//! With [`key`](RateLimitBuilder::key), each key gets a limit of its own:
//! per client address, API key, tenant. A request without a key is handled
//! as [`MissingKey`] says.
//!
//! - **Identity.** Keys are identified by a 64-bit SipHash under a random
//!   per-layer seed: eight bytes a key whatever its type, and a client
//!   cannot pick keys that collide. Two distinct keys share a limit only by
//!   a hash collision, with odds around `keys² / 2⁶⁵` (under 3 × 10⁻⁸ for a
//!   million keys). The requests without a key that share one limit
//!   ([`MissingKey::Shared`]) have an identity of their own, a random number
//!   drawn when the layer is built.
//! - **Concurrency.** The table is split in [`shards`](RateLimitBuilder::shards),
//!   each behind its own lock, chosen by the hash.
//! - **Memory bound.** Each shard holds at most `max_keys / shards` keys,
//!   so the table never holds more than
//!   [`max_keys`](RateLimitBuilder::max_keys), whatever the number of
//!   distinct keys seen. A token bucket key's table entry is 24 bytes (its
//!   identity, its state and when it was last seen); a window's is 32, plus
//!   the window's counts or log on the heap.
//! - **Eviction.** A new key arriving at a full shard frees an eighth of
//!   the shard: first the *idle* keys — whose limit has fully recovered (a
//!   full bucket, a window with nothing left in it), so that forgetting them
//!   changes no decision — then, if that is not enough, the keys **seen
//!   least recently** (every request counts as a sighting, refused or not).
//!   The new key always gets a limit of its own, and the shard's map is
//!   rebuilt at the size of its keys, so the keys it forgot take no room.
//!   Idle keys are not removed otherwise: the table fills up to its bound
//!   and stays there.
//!
//! ## What a flood of keys can and cannot do
//!
//! A client that can mint keys — many addresses, many API keys — can fill
//! the table. Bounded memory cannot remember more than `max_keys` keys, so
//! something must give; palisade forgets the least recently seen keys rather
//! than refusing newcomers:
//!
//! - **It cannot lock anyone out.** A new client is admitted as any new key
//!   is, flood or not (before this rule a full table of non-idle keys refused
//!   every new key until one went idle).
//! - **It cannot loosen the limit of an active key.** A key is forgotten
//!   only after more than `7/8 · max_keys / shards` other keys were seen in
//!   its shard since its last request; a client that keeps sending — an
//!   honest one, or one being refused — stays in the table with its state.
//!   Under a flood of `f` new keys a second, a key seen at least once every
//!   `7/8 · max_keys / f` seconds keeps its limit (12 s at 7 000 new keys a
//!   second under the defaults).
//! - **Resetting one's own limit costs what it gains.** To have its own key
//!   forgotten, a client must stop using it and bring `7/8 · max_keys / shards`
//!   new keys into the same shard (the shard is chosen by a secret hash:
//!   about `7/8 · max_keys` new keys in all). Each of those is a new key,
//!   admitted with a full limit anyway; the forgotten key comes back with one
//!   more. A client with a single key cannot do it at all.
//! - **What it can do:** a client cycling through more than `max_keys` keys
//!   faster than they recover gets each of them treated as new (the table
//!   cannot tell it has seen them). Size `max_keys` above the number of
//!   clients active within one recovery period (the time a full bucket or
//!   window takes to empty), and key clients by network
//!   ([`http::ClientIp`] keys IPv6 by `/64`) so that one host cannot mint keys
//!   cheaply.
//! - **A leaky bucket's waiters** are kept with their key. A key forgotten
//!   while requests wait for it (only the least recently seen keys of a
//!   flood can be) does not lose them: each still goes at the slot it was
//!   given, none earlier; but the key starts afresh, so its stream is denser
//!   than its rate until they have gone.
//!
//! With feature `http`, [`http`] has key extractors for the client's address
//! — the peer's, or from forwarding headers only when the peer is a trusted
//! proxy — and turns a refusal into `429 Too Many Requests` with
//! `Retry-After`.
//!
//! # Changing the limit while it runs
//!
//! [`RateLimitLayer::set_limit`] changes the numbers of a running limit —
//! a downstream announced a lower quota — from any thread, checked as the
//! builder checks them. What the limit has learned is kept: a token bucket
//! its debt in tokens (lowered mid-burst, it hands out no fresh burst;
//! raised, it does not forget who is over), a window its counts, a log the
//! entries of its window, a leaky bucket its queue (the slot draining now
//! ends when it was to; the waiters keep their order, their slots follow the
//! new rate); a keyed limit changes every key's state the same way. The
//! shared token bucket stays lock-free: a change closes its word, so no
//! decision made on the old numbers can commit, and reopens it with the new
//! ones ([`RateLimitLayer::limit`] reads them back). The algorithm,
//! the mode and the keys are fixed when built. A limit kept in Redis
//! (`rate_limit::redis`, feature `redis`) changes the same way, key by key
//! in Redis, with its own `set_limit`.
//!
//! # Events
//!
//! Each refusal as over the limit emits a
//! [`Rejected`](crate::observe::EventKind::Rejected) event (and, with the
//! sink features, the `palisade_rejections_total` counter).
//!
//! # Examples
//!
//! ```
//! use std::time::Duration;
//! use palisade::{
//!     clock::ManualClock,
//!     error::RateLimited,
//!     rate_limit::{Rate, RateLimitLayer},
//! };
//! use tower::{Layer, Service, ServiceExt, service_fn};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let clock = ManualClock::new();
//! let layer = RateLimitLayer::builder()
//!     .token_bucket(Rate::per_second(10), 2)
//!     .clock(clock.clone())
//!     .build()
//!     .unwrap();
//! let mut service = layer.layer(service_fn(|x: u32| async move { Ok::<_, std::io::Error>(x) }));
//!
//! assert_eq!(service.ready().await.unwrap().call(1).await.unwrap(), 1);
//! assert_eq!(service.ready().await.unwrap().call(2).await.unwrap(), 2);
//! let err = service.ready().await.unwrap().call(3).await.unwrap_err();
//! let refused = err.downcast_ref::<RateLimited>().unwrap();
//! assert_eq!(refused.retry_after(), Some(Duration::from_millis(100)));
//!
//! clock.advance(Duration::from_millis(100));
//! assert_eq!(service.ready().await.unwrap().call(3).await.unwrap(), 3);
//! # }
//! ```

mod bucket_cell;
mod config;
mod core;
mod fixed_window;
pub mod future;
#[cfg(feature = "http")]
pub mod http;
mod keyed;
mod layer;
mod leaky_bucket;
mod leaky_cell;
mod queued;
#[cfg(feature = "redis")]
pub mod redis;
mod request;
mod service;
mod shared;
mod sliding_log;
mod sliding_window;
mod token_bucket;

pub use config::{Check, Limit, MissingKey, ParseRateError, Rate};
pub use layer::{RateLimitBuilder, RateLimitLayer};
pub use request::{Cost, KeyExtractor, NoKey, UnitCost};
pub use service::RateLimit;

//! One rate limit for a whole fleet (feature `redis`): the limit's state in
//! Redis, decided atomically by a Lua script, so that N instances behind a
//! load balancer enforce the limit once, not N times.
//!
//! [`RateLimitBuilder::redis`](super::RateLimitBuilder::redis) turns the
//! usual builder into one whose layer keeps its state in Redis: the same
//! keys ([`ClientIp`](super::http::ClientIp), closures — any key that is
//! [`Display`](std::fmt::Display)), the same costs, the same refusals
//! ([`RateLimited`](crate::error::RateLimited) with `retry_after`,
//! [`Unsatisfiable`](crate::error::Unsatisfiable)), reject or wait-up-to.
//! The token bucket (GCRA), the sliding window counter and the fixed window
//! are available on Redis, each deciding exactly as in the process (a
//! property test runs both side by side); the sliding log is not (a log a
//! key is memory Redis should not hold), nor the leaky bucket (its waiters
//! are held by the instance that took them: see
//! [the comparison](super#smoothing-or-bursts)).
//!
//! # One round trip a decision
//!
//! A decision is one `EVALSHA` of a Lua script that reads the bucket,
//! decides and writes it back atomically; the script is loaded by the
//! first decision and again, transparently, after Redis forgets it
//! (`SCRIPT FLUSH`, a restart: `NOSCRIPT`). Decisions share one multiplexed
//! connection — a [`ConnectionManager`](redis::aio::ConnectionManager)
//! reconnects by itself — so concurrent decisions are pipelined on it, not
//! serialised.
//!
//! # Time
//!
//! By default the script reads the **Redis server's clock** (`TIME`): the
//! fleet shares one clock, and an instance whose own clock is off by
//! seconds cannot admit more than its share. Time on Redis is counted in
//! whole microseconds (the script's numbers are doubles, exact below
//! 2⁵³): the interval between tokens is rounded up to a microsecond, and a
//! refusal's `retry_after` is exact to the microsecond. With
//! [`layer_clock`](RedisRateLimitBuilder::layer_clock) the layer's
//! [`Clock`](crate::clock::Clock) is used instead — repeatable tests on a
//! [`ManualClock`](crate::clock::ManualClock), at the price of trusting
//! every instance's clock.
//!
//! # Memory on Redis
//!
//! A token bucket is one string a key, holding the bucket's theoretical
//! arrival time and the interval it was written with, with a TTL that ends
//! when the bucket is full again; a window is one hash a key, a field a
//! segment still in the window (besides the latest admission's segment and
//! the segments' length), with a TTL that ends when its latest admission
//! has left the window (either at least 100 ms, so that a key due to end
//! within a round trip is not lost to a decision on a clock a little
//! behind) — an idle key leaves nothing behind. Keys are
//! `prefix{digest}`: the prefix defaults to
//! `palisade:{name}:`, and the digest (SHA-1 of the key's text) in braces
//! is a Redis Cluster hash tag, so a client's keys share a slot, and a
//! client can neither choose long keys nor break the tag.
//!
//! # When Redis is slow or down
//!
//! Each decision waits at most a [`timeout`](RedisRateLimitBuilder::timeout)
//! (default 50 ms) — palisade's own [`Timeout`](crate::timeout::Timeout) —
//! and the calls to Redis go through palisade's own
//! [`CircuitBreaker`](crate::circuit_breaker::CircuitBreaker) (named after
//! the layer, `.redis` appended; open after 5 failures in a row, for 0.5 s
//! doubling up to 10 s), so that during an outage a decision costs no round
//! trip and no timeout, and probes bring Redis back in. Then
//! [`Unavailable`] decides: admit (the default), refuse with
//! [`StoreUnavailable`](crate::error::StoreUnavailable) (`503`), or limit
//! in-process at the rate divided by the expected number of instances.
//! Never a hang, never a panic: every request is answered.
//!
//! # Events
//!
//! Besides the limiter's own ([`Rejected`](crate::observe::EventKind::Rejected)),
//! each decision made without Redis emits
//! [`StoreUnavailable`](crate::observe::EventKind::StoreUnavailable) with
//! its cause (`timeout`, `circuit_open`, `error`) and answer, and each
//! refusal from the denial cache
//! [`DenialCacheHit`](crate::observe::EventKind::DenialCacheHit). The
//! timeout and breaker around Redis tell the same listeners and sinks under
//! the limiter's name with `.redis` appended: their
//! [`Finished`](crate::observe::EventKind::Finished) events (and the
//! `palisade_call_duration_seconds` histogram) are Redis's latency and
//! errors, their transitions Redis going and coming back.
//!
//! # The denial cache
//!
//! A client hammering a key it is refused on would cost a round trip a
//! request. Instead each instance remembers, for the keys Redis refused
//! ([`denial_cache`](RedisRateLimitBuilder::denial_cache), default 10 000
//! keys), a lower bound of the bucket's theoretical arrival time, and
//! refuses locally while that bound alone refuses — with `retry_after`
//! computed from it, so never longer than Redis would say (shorter by at
//! most the round trip on the server's clock; equal on the layer's). It
//! **cannot over-admit**: a bucket's TAT only moves later (admissions
//! anywhere push it; refusals and time do not pull it back), so whatever
//! the bound refuses, Redis refuses too; the cache never admits anything
//! itself, it only saves asking. If Redis loses the key (a restart without
//! persistence), the cache keeps refusing until the remembered instant, no
//! longer.
//!
//! # Leased tokens
//!
//! Exact limiting costs a round trip a request. With
//! [`lease(batch)`](RedisRateLimitBuilder::lease), a round trip takes up to
//! `batch` of a key's tokens at once — as many as the bucket holds — and
//! the instance spends them on that key's next requests with no round trip,
//! for as long as the batch takes to refill (`batch` intervals); what is
//! left then is dropped. Redis hands each token out once, so the fleet never
//! admits more tokens than the bucket gave; but a token leased at one
//! instant may be spent later, when the bucket has refilled too. The bound:
//! **over any span of time, the fleet admits at most what the bucket allows
//! in that span, plus `(batch − 1)` for each instance** (the tokens each
//! may hold leased and unspent from before the span). A lease never waits:
//! requests the leases cannot serve ask Redis as usual. Token bucket only,
//! reject mode only.
//!
//! # Changing the limit while it runs
//!
//! [`RedisRateLimitLayer::set_limit`] changes the numbers, checked as the
//! builder checks them, and keeps what Redis holds as the in-process limit
//! keeps it: a bucket's debt in tokens, a window's counts. Each key's state
//! in Redis carries the numbers it was written with (the bucket's interval
//! beside its TAT, the window's segment length in its hash), and the script
//! changes a key at the first decision made on it with other numbers — an
//! idle key has nothing to change, a busy one changes at once; until then
//! its debt drains at the old rate. Every instance holds its own numbers:
//! change them all (the same configuration reloaded everywhere). Meanwhile
//! an instance still on the old numbers changes a key back, keeping its debt
//! again, so that neither set of numbers hands out a fresh burst.
//!
//! # Examples
//!
//! ```no_run
//! use std::time::Duration;
//! use palisade::rate_limit::{Rate, RateLimitLayer, redis::Unavailable};
//! use tower::{Layer, Service, ServiceExt, service_fn};
//!
//! # async fn run() -> Result<(), tower::BoxError> {
//! let client = redis::Client::open("redis://127.0.0.1:6379")?;
//! let connection = redis::aio::ConnectionManager::new(client).await?;
//! let layer = RateLimitLayer::builder()
//!     .name("api")
//!     .token_bucket(Rate::per_second(100), 20)
//!     .key(|tenant: &String| Some(tenant.clone()))
//!     .redis(connection)
//!     .timeout(Duration::from_millis(20))
//!     .on_unavailable(Unavailable::Local { instances: 4 })
//!     .build()?;
//! let mut service = layer.layer(service_fn(|tenant: String| async move { Ok::<_, std::io::Error>(tenant) }));
//! let answer = service.ready().await?.call("acme".to_owned()).await?;
//! # let _ = answer;
//! # Ok(()) }
//! ```

mod backend;
mod denials;
pub mod future;
mod layer;
mod leases;
mod service;
mod table;

pub use layer::{RedisRateLimitBuilder, RedisRateLimitLayer, Unavailable};
pub use service::RedisRateLimit;

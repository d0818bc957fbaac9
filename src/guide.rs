//! A guide: one worked example per pattern, then how to test with
//! [`ManualClock`](crate::clock::ManualClock).
//!
//! Every layer is built the same way — `XLayer::builder(..)`, a few
//! settings, `.name(..)` (shown in events, metrics and errors), `.build()?`
//! (a [`ConfigError`](crate::error::ConfigError) naming the field if a
//! setting is invalid) — and shares its state with every service and clone
//! it makes. Refusals are small typed errors inside [`tower::BoxError`].
//!
//! # Circuit breaker: stop calling what is down
//!
//! ```
//! use std::time::Duration;
//! use palisade::{circuit_breaker::{CircuitBreakerLayer, CircuitState, OpenDuration}, error::CircuitOpen};
//! use tower::{Layer, Service, ServiceExt, service_fn};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower::BoxError> {
//! // Opens when half of the last 20 calls failed (from 10 calls on), for 5 s.
//! let breaker = CircuitBreakerLayer::builder()
//!     .name("inventory")
//!     .count_window(20)
//!     .minimum_calls(10)
//!     .failure_rate(0.5)
//!     .open_duration(OpenDuration::fixed(Duration::from_secs(5)))
//!     .build()?;
//! let handle = breaker.handle();
//! let mut service = breaker.layer(service_fn(|_: ()| async { Err::<(), _>("down") }));
//! for _ in 0..10 {
//!     let _ = service.ready().await?.call(()).await;
//! }
//! assert_eq!(handle.state(), CircuitState::Open);
//! let refused = service.ready().await?.call(()).await.unwrap_err();
//! assert!(refused.downcast_ref::<CircuitOpen>().unwrap().retry_after().is_some());
//! # Ok(()) }
//! ```
//!
//! # Rate limit: a budget of calls per time
//!
//! ```
//! use palisade::{error::RateLimited, rate_limit::{Rate, RateLimitLayer}};
//! use tower::{Layer, Service, ServiceExt, service_fn};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower::BoxError> {
//! let limit = RateLimitLayer::builder().name("search").token_bucket(Rate::per_second(10), 1).build()?;
//! let mut service = limit.layer(service_fn(|x: u32| async move { Ok::<_, std::io::Error>(x) }));
//! service.ready().await?.call(1).await?;
//! let refused = service.ready().await?.call(2).await.unwrap_err();
//! assert!(refused.is::<RateLimited>()); // retry_after() says exactly when
//! # Ok(()) }
//! ```
//!
//! # Retry: try again, later, within a budget
//!
//! ```
//! use std::{sync::{Arc, atomic::{AtomicU32, Ordering}}, time::Duration};
//! use palisade::retry::{Backoff, Jitter, RetryLayer};
//! use tower::{Layer, Service, ServiceExt, service_fn};
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> Result<(), tower::BoxError> {
//! let retry = RetryLayer::builder()
//!     .name("quotes")
//!     .max_attempts(3)
//!     .backoff(Backoff::exponential(Duration::from_millis(100), 2.0).jitter(Jitter::Full))
//!     .build()?;
//! let tries = Arc::new(AtomicU32::new(0));
//! let counted = Arc::clone(&tries);
//! let mut service = retry.layer(service_fn(move |_: ()| {
//!     let attempt = counted.fetch_add(1, Ordering::SeqCst);
//!     async move { if attempt < 2 { Err("flaky") } else { Ok("quote") } }
//! }));
//! assert_eq!(service.ready().await?.call(()).await?, "quote");
//! assert_eq!(tries.load(Ordering::SeqCst), 3);
//! # Ok(()) }
//! ```
//!
//! # Bulkhead: a bound on the calls in flight
//!
//! ```
//! use palisade::{bulkhead::BulkheadLayer, error::BulkheadFull};
//! use tower::{Layer, Service, service_fn};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower::BoxError> {
//! let bulkhead = BulkheadLayer::builder(1).name("reports").build()?;
//! let mut service = bulkhead.layer(service_fn(|x: u32| async move { Ok::<_, std::io::Error>(x) }));
//! let first = service.call(1); // holds the permit until it completes
//! assert!(service.call(2).await.unwrap_err().is::<BulkheadFull>());
//! assert_eq!(first.await?, 1);
//! # Ok(()) }
//! ```
//!
//! # Timeout: a bound on each call
//!
//! ```
//! use std::time::Duration;
//! use palisade::{error::Elapsed, timeout::TimeoutLayer};
//! use tower::{Layer, Service, ServiceExt, service_fn};
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() -> Result<(), tower::BoxError> {
//! let timeout = TimeoutLayer::builder(Duration::from_millis(200)).name("pricing").build()?;
//! let mut service = timeout.layer(service_fn(|_: ()| async {
//!     tokio::time::sleep(Duration::from_secs(1)).await;
//!     Ok::<_, std::io::Error>(())
//! }));
//! assert!(service.ready().await?.call(()).await.unwrap_err().is::<Elapsed>());
//! # Ok(()) }
//! ```
//!
//! # Fallback: an answer instead of a failure
//!
//! ```
//! use palisade::{error::RejectionKind, fallback::{Failed, FallbackLayer}};
//! use tower::{Layer, Service, ServiceExt, service_fn};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower::BoxError> {
//! let fallback = FallbackLayer::builder(|failed: Failed<'_, String>| match failed.rejection() {
//!     Some(refusal) if refusal.kind() == RejectionKind::CircuitOpen => Some("stale copy".into()),
//!     Some(_) => None,                      // other refusals go through
//!     None => Some("default".into()),       // the service's own errors
//! })
//! .build();
//! let mut service = fallback.layer(service_fn(|_: ()| async { Err::<String, _>("boom") }));
//! assert_eq!(service.ready().await?.call(()).await?, "default");
//! # Ok(()) }
//! ```
//!
//! # The last good answer while a dependency is down (feature `cache`)
//!
//! A read that failed can often be answered with what the same read
//! returned a moment ago: the price, the profile, the configuration.
//! [`CachedLayer`](crate::fallback::CachedLayer), outermost, remembers each
//! successful answer by a key of its request and serves it, with its age,
//! when a later call fails — here while a breaker is open:
//!
//! ```
//! # #[cfg(feature = "cache")]
//! use std::time::Duration;
//! # #[cfg(feature = "cache")]
//! use palisade::{
//!     circuit_breaker::{CircuitBreakerLayer, CircuitState},
//!     clock::ManualClock,
//!     fallback::{CachedLayer, Clones},
//! };
//! # #[cfg(feature = "cache")]
//! use tower::{Service, ServiceBuilder, ServiceExt, service_fn};
//!
//! # #[cfg(not(feature = "cache"))] fn main() {}
//! # #[cfg(feature = "cache")]
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower::BoxError> {
//! let clock = ManualClock::new();
//! let breaker = CircuitBreakerLayer::builder().consecutive_failures(2).clock(clock.clone()).build()?;
//! let state = breaker.handle();
//! let cache = CachedLayer::builder(|sku: &u32| Some(*sku))
//!     .responses(Clones::marking(|price: &mut String, age: Duration| {
//!         price.push_str(&format!(" (as of {}s ago)", age.as_secs()))
//!     }))
//!     .max_stale(Duration::from_secs(300))
//!     .clock(clock.clone())
//!     .build()?;
//! let calls = std::sync::atomic::AtomicU32::new(0);
//! let prices = service_fn(move |sku: u32| {
//!     // Up for the first call only.
//!     let up = calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed) == 0;
//!     async move { if up { Ok(format!("{sku}: 42 EUR")) } else { Err("price service down") } }
//! });
//! let mut service = ServiceBuilder::new().layer(cache).layer(breaker).service(prices);
//!
//! assert_eq!(service.ready().await?.call(7).await?, "7: 42 EUR");
//! for seconds in [10, 20, 30] {
//!     clock.advance(Duration::from_secs(10));
//!     let answer = service.ready().await?.call(7).await?;
//!     assert_eq!(answer, format!("7: 42 EUR (as of {seconds}s ago)"));
//! }
//! // Two failures opened the breaker; the third answer came from the cache
//! // without calling the price service.
//! assert_eq!(state.state(), CircuitState::Open);
//! # Ok(()) }
//! ```
//!
//! For HTTP, [`CachedLayer::http`](crate::fallback::CachedLayer::http) keys
//! `GET`s by method and URI, keeps only `2xx` bodies within a size, never a
//! `Cache-Control: no-store` one, and marks each answer with an `Age` header.
//! The events [`CacheAnswered`](crate::observe::EventKind::CacheAnswered)
//! and [`CacheMissed`](crate::observe::EventKind::CacheMissed) count how
//! often the cache saved a call and how often it had nothing to offer.
//!
//! # All of them: [`ResilienceLayer`](crate::stack::ResilienceLayer)
//!
//! The [`stack`](crate::stack) module puts any subset in the order that
//! works (fallback → retry → breaker → rate limit → bulkhead → timeout) and
//! explains it; with feature `http`,
//! [`HttpAnswerLayer`](crate::stack) turns refusals into `429` / `503` /
//! `504` so an axum `Router` can take the stack as it is.
//!
//! # One limit for a fleet: Redis (feature `redis`)
//!
//! **When.** A limit kept in each process is enforced once per instance: N
//! instances behind a load balancer admit N times the limit, and a client
//! that spreads its requests over them gets N times its quota. When the
//! limit protects something shared — a downstream's quota, a paid API, a
//! database — or is a promise to clients, keep it in Redis:
//! `RateLimitBuilder::redis(connection)` takes the same builder (algorithm,
//! key, cost, mode) and decides each request by one atomic Lua script.
//! When each instance only protects itself (its own CPU, its own pool), the
//! in-process limiter is exact, costs nanoseconds instead of a round trip,
//! and is the better choice.
//!
//! **When Redis fails**, a decision waits at most its timeout, and after a
//! few failures a breaker stops asking until a probe finds Redis back; what
//! is decided meanwhile is the policy's (`Unavailable`):
//!
//! | policy | during an outage | costs |
//! |---|---|---|
//! | `Open` (default) | every request admitted | the limit is off until Redis is back: the dependency takes the load |
//! | `Closed` | every request refused, `503` | an outage of Redis is an outage of the service |
//! | `Local { instances }` | each instance limits alone, at the rate and burst divided by `instances` | near the limit if `instances` is right; over it if more instances run, under it if fewer |
//!
//! **Clocks.** By default the script reads Redis's clock, one clock for the
//! fleet: an instance whose clock is off cannot admit more than its share.
//! `layer_clock()` decides on the layer's clock instead — for tests on a
//! `ManualClock` — and then trusts every instance's clock.
//!
//! **Redis Cluster.** Pass a cluster connection: each client's state lives
//! under one key whose hash tag (its digest in braces) puts it in one slot;
//! clients spread over the slots.
//!
//! **The denial cache.** A key Redis refused is refused again by the
//! instance, with no round trip, while what Redis said still refuses it; it
//! can only refuse what Redis would refuse, never admit — see
//! `rate_limit::redis` for why. A flood from refused clients then costs
//! Redis nothing.
//!
//! # Changing limits while the service runs
//!
//! A downstream announces a lower quota; a breaker is too twitchy; an
//! incident needs a tighter bulkhead. Each layer changes its settings while
//! it runs, from any thread, checked as its builder checks them, and keeps
//! what it has learned:
//!
//! | layer | change | what is kept |
//! |---|---|---|
//! | rate limit | `set_limit(Limit)` | a bucket's debt in tokens (no fresh burst), a window's counts, a log's entries; every key's (on Redis, each key at its next decision) |
//! | circuit breaker | `handle().reconfigure(Settings)` | the window's outcomes (judged at the next outcome), the state; a window resized within the memory built |
//! | bulkhead | `reconfigure(Settings)`, `set_max_concurrent`, `set_queue` | the calls in flight (lowered: none admitted until below), the waiters' places |
//! | timeout | `reconfigure(Settings)`, `set_timeout` | a running call's own timeout |
//! | retry | `reconfigure(Settings)`, `set_budget`, … | a call's deadline; the budget's deposits and tokens |
//!
//! Each layer's `settings()` reads the settings back as one value, its
//! builder's `settings(…)` (`limit(…)` for the rate limit) takes them, and
//! each change emits one `Reconfigured` event per number changed. With
//! feature `serde` the settings are configuration-file data, durations
//! humane (`"250ms"`), checked while read — the `live_config` example
//! reloads a TOML file into a running axum server.
//!
//! # Testing with `ManualClock`
//!
//! Every layer reads time from its [`Clock`](crate::clock::Clock). Give it a
//! [`ManualClock`](crate::clock::ManualClock) and time moves only when the
//! test says so: no sleeps, no flakes, exact thresholds. (Layers on the
//! default [`TokioClock`](crate::clock::TokioClock) follow tokio's paused
//! time instead: `#[tokio::test(start_paused = true)]`.)
//!
//! ```
//! use std::time::Duration;
//! use palisade::{clock::ManualClock, error::RateLimited, rate_limit::{Rate, RateLimitLayer}};
//! use tower::{Layer, Service, ServiceExt, service_fn};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), tower::BoxError> {
//! let clock = ManualClock::new();
//! let limit = RateLimitLayer::builder()
//!     .token_bucket(Rate::per_second(2), 1)
//!     .clock(clock.clone())
//!     .build()?;
//! let mut service = limit.layer(service_fn(|x: u32| async move { Ok::<_, std::io::Error>(x) }));
//!
//! service.ready().await?.call(1).await?;
//! let refused = service.ready().await?.call(2).await.unwrap_err();
//! let wait = refused.downcast_ref::<RateLimited>().unwrap().retry_after().unwrap();
//! assert_eq!(wait, Duration::from_millis(500));
//!
//! clock.advance(wait - Duration::from_nanos(1)); // one nanosecond early: still refused
//! assert!(service.ready().await?.call(3).await.is_err());
//! clock.advance(Duration::from_nanos(1)); // exactly on time: let through
//! assert!(service.ready().await?.call(4).await.is_ok());
//! # Ok(()) }
//! ```
//!
//! # Testing your stack against a dependency that misbehaves
//!
//! Put [`chaos`](crate::chaos) layers where the dependency would be, seed
//! their random source, give everything the same `ManualClock`, and your
//! stack meets errors, made-up responses, hangs and latency in virtual
//! time — the same ones on every run. Here an upstream fails 30 % of calls
//! and hangs on 10 %; a timeout of 100 ms cuts each hang, and a retry of
//! four attempts brings the failures down from 40 % to about 0.4⁴ ≈ 2.6 %.
//! A thousand requests, their hangs and backoffs included, take no real
//! time:
//!
//! ```
//! use std::time::Duration;
//! use palisade::{
//!     chaos::ChaosLayer,
//!     clock::{Clock, ManualClock},
//!     random::FastRandom,
//!     retry::{Backoff, RetryLayer},
//!     timeout::TimeoutLayer,
//! };
//! use tower::{Layer, Service, ServiceExt, service_fn};
//!
//! # fn main() -> Result<(), tower::BoxError> {
//! let clock = ManualClock::new();
//! let upstream = ChaosLayer::builder()
//!     .error(0.3)
//!     .hang(0.1)
//!     .clock(clock.clone())
//!     .random(FastRandom::seeded(7))
//!     .build()?
//!     .layer(service_fn(|x: u32| async move { Ok::<_, std::io::Error>(x) }));
//! let timeout = TimeoutLayer::builder(Duration::from_millis(100)).clock(clock.clone()).build()?;
//! let retry = RetryLayer::builder()
//!     .max_attempts(4)
//!     .backoff(Backoff::exponential(Duration::from_millis(10), 2.0))
//!     .clock(clock.clone())
//!     .random(FastRandom::seeded(8))
//!     .build()?;
//! let mut service = retry.layer(timeout.layer(upstream));
//! let mut failed = 0;
//! for request in 0..1000 {
//!     let answer = clock.block_on(async { service.ready().await?.call(request).await });
//!     failed += u32::from(answer.is_err());
//! }
//! assert!((10..=45).contains(&failed), "{failed} of 1000 failed"); // 25 with these seeds
//! // Seconds of hangs and backoffs (27 s here), in no real time.
//! assert!(clock.now().since_epoch() > Duration::from_secs(20));
//! # Ok(()) }
//! ```
//!
//! # What does my stack do when the dependency slows down 10×?
//!
//! Ask [`sim`](crate::sim): a model [`Upstream`](crate::sim::Upstream)
//! with the dependency's latency and capacity and a schedule of
//! [`Phase`](crate::sim::Phase)s, your stack over it, a
//! [`Load`](crate::sim::Load) of virtual clients, all on one `ManualClock`.
//! The [`Report`](crate::sim::Report) counts each outcome with its latency
//! percentiles, interval by interval, with probes of anything you want to
//! watch. Here the dependency (20–60 ms, 64 calls at once) is ten times
//! slower from second 20 to second 50, behind a timeout of 250 ms, a
//! breaker and a bulkhead of 48: while it is slow, the timeouts open the
//! breaker, which answers at once instead of letting calls pile up; when it
//! is well again, the breaker closes and the answers come back. A minute
//! and a half of traffic takes milliseconds:
//!
//! ```
//! use std::time::Duration;
//! use palisade::{
//!     bulkhead::BulkheadLayer,
//!     chaos::Latency,
//!     circuit_breaker::{CircuitBreakerLayer, CircuitState, OpenDuration},
//!     clock::ManualClock,
//!     error::RejectionKind,
//!     sim::{Load, Outcome, Phase, Simulation, Upstream},
//!     stack::ResilienceLayer,
//!     timeout::TimeoutLayer,
//! };
//! use tower::Layer;
//!
//! # fn main() -> Result<(), tower::BoxError> {
//! let (ms, secs) = (Duration::from_millis, Duration::from_secs);
//! let clock = ManualClock::new();
//! let upstream = Upstream::<u64, _>::builder(clock.clone())
//!     .latency(Latency::Uniform { min: ms(20), max: ms(60) })
//!     .capacity(64)
//!     .phase(secs(20)..secs(50), Phase::new().slower(10.0))
//!     .build()?;
//! let breaker = CircuitBreakerLayer::builder()
//!     .time_window(secs(10), 10)
//!     .minimum_calls(50)
//!     .open_duration(OpenDuration::fixed(secs(5)))
//!     .clock(clock.clone())
//!     .build()?;
//! let stack = ResilienceLayer::new()
//!     .timeout(TimeoutLayer::builder(ms(250)).clock(clock.clone()).build()?)
//!     .circuit_breaker(breaker.clone())
//!     .bulkhead(BulkheadLayer::builder(48).clock(clock.clone()).build()?);
//!
//! let handle = breaker.handle();
//! let simulation = Simulation::builder(clock.clone(), Load::Poisson { rate: 200.0 })
//!     .duration(secs(90))
//!     .seed(4)
//!     .probe("breaker open", move || f64::from(handle.state() != CircuitState::Closed))
//!     .build()?;
//! let report = clock.block_on(simulation.run(stack.layer(upstream), |n| n));
//! println!("{report}");
//!
//! let second = |s: usize| &report.timeline()[s];
//! // Healthy: every call answered, none refused.
//! assert_eq!(second(10).count(Outcome::Ok), report.timeline()[10].finished.iter().sum());
//! // Slow: the breaker is open, and refuses at once.
//! assert_eq!(second(40).probes[0], 1.0);
//! assert!(second(40).count(Outcome::Rejected(RejectionKind::CircuitOpen)) > 150);
//! // Well again: the breaker has closed, and the answers are back.
//! assert_eq!(second(70).probes[0], 0.0);
//! assert!(second(70).count(Outcome::Ok) > 150);
//! # Ok(()) }
//! ```
//!
//! `cargo run --release --example simulate` runs a fuller version (a retry
//! too, the bulkhead and the upstream watched) and prints its timeline;
//! with `--features plot`, [`Report::svg`](crate::sim::Report) draws it —
//! latency percentiles, outcomes by kind and the probes over time — into
//! `simulate.svg`. `cargo run --release --example tail_at_scale` is "The
//! Tail at Scale" measured the same way: hedging against stragglers (see
//! `BENCHMARKS.md`).
//!
//! # Finding the right limit: adaptive concurrency
//!
//! A [bulkhead](crate::bulkhead)'s bound is a guess. An
//! [`AdaptiveLayer`](crate::adaptive::AdaptiveLayer) is a bulkhead whose
//! bound an algorithm moves from each call's round trip and outcome:
//!
//! - [`Aimd`](crate::adaptive::Aimd) when the dependency says "too much" by
//!   failing or timing out: give it a `timeout` a little above the usual
//!   latency (1.2×), and it saws just under the capacity.
//! - [`Vegas`](crate::adaptive::Vegas) when latency is steady unless
//!   something queues: it keeps a few calls queued and reacts before
//!   anything fails.
//! - [`Gradient2`](crate::adaptive::Gradient2) when latency is noisy: it
//!   tolerates a rise (1.1 to settle near the capacity, 1.5 by default) and
//!   ignores outliers.
//!
//! It takes the bulkhead's place in
//! [`ResilienceLayer`](crate::stack::ResilienceLayer) (`.bulkhead(adaptive)`):
//! inside the breaker and the rate limiter, so its refusals
//! ([`BulkheadFull`](crate::error::BulkheadFull), answered `503`) are the
//! caller's own limit — ignored by the breaker, not retried by palisade's
//! retry policies, and spending no retry budget — and outside the timeout,
//! so that a call that times out is a drop the algorithm sees. Watch it
//! with [`limit`](crate::adaptive::AdaptiveLayer::limit), the
//! `palisade_concurrency_limit` gauge, or
//! [`LimitChanged`](crate::observe::EventKind::LimitChanged) events.
//!
//! Here a dependency serving 20 calls at once in about 100 ms is offered
//! three times what it can take, by callers who give up after 250 ms; AIMD,
//! told nothing of the capacity and starting at 100, settles a little above
//! 20 — the capacity, and the queue a 120 ms timeout allows — and every
//! call it lets through is answered in time:
//!
//! ```
//! use std::time::Duration;
//! use palisade::{
//!     adaptive::{AdaptiveLayer, Aimd},
//!     chaos::Latency,
//!     clock::ManualClock,
//!     sim::{Load, Outcome, Simulation, Upstream},
//!     stack::ResilienceLayer,
//!     timeout::TimeoutLayer,
//! };
//! use tower::Layer;
//!
//! # fn main() -> Result<(), tower::BoxError> {
//! let ms = Duration::from_millis;
//! let clock = ManualClock::new();
//! let upstream = Upstream::<u64, _>::builder(clock.clone())
//!     .latency(Latency::Uniform { min: ms(90), max: ms(110) })
//!     .capacity(20)
//!     .queue(40)
//!     .build()?;
//! let adaptive = AdaptiveLayer::builder(Aimd::new(100).timeout(ms(120)))
//!     .clock(clock.clone())
//!     .build()?;
//! let stack = ResilienceLayer::new()
//!     .bulkhead(adaptive.clone())
//!     .timeout(TimeoutLayer::builder(ms(250)).clock(clock.clone()).build()?);
//! let watched = adaptive.clone();
//! let simulation = Simulation::builder(clock.clone(), Load::Poisson { rate: 600.0 })
//!     .duration(Duration::from_secs(20))
//!     .probe("limit", move || f64::from(watched.limit()))
//!     .build()?;
//! let report = clock.block_on(simulation.run(stack.layer(upstream), |n| n));
//!
//! let last_ten: Vec<f64> = report.timeline()[10..20].iter().map(|i| i.probes[0]).collect();
//! assert!(last_ten.iter().all(|limit| (20.0..=30.0).contains(limit)), "{last_ten:?}");
//! let answered: u64 = report.timeline()[10..20].iter().map(|i| i.count(Outcome::Ok)).sum();
//! assert!(answered >= 1800, "{answered} in 10 s; the best is 2000");
//! # Ok(()) }
//! ```
//!
//! `cargo run --release --example adaptive` runs the three algorithms and a
//! fixed bulkhead side by side against a capacity that halves for a while.
//!
//! A client of a dependency that refuses much of what it is sent (a quota,
//! an overloaded server answering `503` fast) wants
//! [`ThrottleLayer`](crate::adaptive::ThrottleLayer): it sends about `k`
//! times what the dependency accepts and refuses the rest locally, so the
//! dependency is not kept busy refusing. It fits
//! [`ResilienceLayer`](crate::stack::ResilienceLayer)'s rate-limit slot
//! (`.rate_limit(throttle)`): inside the retry, so that every attempt is a
//! request it counts (as the SRE book counts them), and its refusals end the
//! retries rather than feed them.

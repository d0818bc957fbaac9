//! A rate limiter's happy path — a request well within the limit, admitted —
//! through palisade's layer (a leaky bucket's when idle among them), next to governor's direct and keyed checks,
//! tower's `RateLimit` and tower-resilience's limiter; and two threads
//! sharing one limiter.
//!
//! Every limit is set so high that no request in the run is refused: a
//! token bucket refilling one token a nanosecond with a burst of 4 × 10⁹ (or
//! the same quota for the peers), windows of 4 × 10⁹ a minute.

use std::{hint::black_box, num::NonZeroU32, sync::Arc, time::Duration};

use criterion::{
    BenchmarkGroup, Criterion, criterion_group, criterion_main, measurement::WallTime,
};
use governor::{Quota, RateLimiter};
use palisade::{
    clock::{Clock, ManualClock, QuantaClock, TokioClock},
    rate_limit::{NoKey, Rate, RateLimitLayer, UnitCost},
};
use palisade_benches::{Echo, leaky_on, on_two_threads, ready_call, timer_runtime, two_threads};
use tower::{Layer, Service};

const HUGE: u32 = u32::MAX;

fn bucket_on<C: Clock>(clock: C) -> RateLimitLayer<NoKey, UnitCost, C> {
    RateLimitLayer::builder()
        .token_bucket(Rate::per_second(1_000_000_000), HUGE)
        .clock(clock)
        .build()
        .unwrap()
}

fn quota() -> Quota {
    Quota::per_second(NonZeroU32::new(HUGE).unwrap()).allow_burst(NonZeroU32::new(HUGE).unwrap())
}

/// A token bucket per key (1 024 keys) on `clock`, around `Echo`.
fn keyed_on<C: Clock>(clock: C) -> impl Service<u64> {
    RateLimitLayer::builder()
        .token_bucket(Rate::per_second(1_000_000_000), HUGE)
        .key(|request: &u64| Some(request % 1024))
        .clock(clock)
        .build()
        .unwrap()
        .layer(Echo)
}

/// Benchmarks `service` on request after request, each of the next key.
fn bench_keys<S: Service<u64>>(
    group: &mut BenchmarkGroup<'_, WallTime>,
    name: &str,
    mut service: S,
) {
    let mut i = 0u64;
    group.bench_function(name, |b| {
        b.iter(|| {
            i = i.wrapping_add(1);
            ready_call(&mut service, black_box(i))
        })
    });
}

fn single_thread(c: &mut Criterion) {
    let runtime = timer_runtime();
    let _entered = runtime.enter();

    let mut group = c.benchmark_group("rate limit, admitted, 1 thread");
    let mut bare = Echo;
    group.bench_function("bare service (baseline)", |b| {
        b.iter(|| ready_call(&mut bare, black_box(1)))
    });

    let mut bucket = bucket_on(TokioClock::new()).layer(Echo);
    group.bench_function("palisade, token bucket", |b| {
        b.iter(|| ready_call(&mut bucket, black_box(1)))
    });
    let mut quanta = bucket_on(QuantaClock::new()).layer(Echo);
    group.bench_function("palisade, token bucket, QuantaClock", |b| {
        b.iter(|| ready_call(&mut quanta, black_box(1)))
    });
    let clock = ManualClock::new();
    let mut manual = bucket_on(clock.clone()).layer(Echo);
    group.bench_function("palisade, token bucket, ManualClock (no clock cost)", |b| {
        b.iter(|| ready_call(&mut manual, black_box(1)))
    });
    // One a nanosecond: each request finds the bucket idle (the last slot
    // ended before the clock's next reading), and goes at once.
    let mut leaky = leaky_on(TokioClock::new()).layer(Echo);
    group.bench_function("palisade, leaky bucket, idle", |b| {
        b.iter(|| ready_call(&mut leaky, black_box(1)))
    });
    let mut leaky_quanta = leaky_on(QuantaClock::new()).layer(Echo);
    group.bench_function("palisade, leaky bucket, idle, QuantaClock", |b| {
        b.iter(|| ready_call(&mut leaky_quanta, black_box(1)))
    });
    let mut window = RateLimitLayer::builder()
        .sliding_window(HUGE, Duration::from_secs(60), 10)
        .build()
        .unwrap()
        .layer(Echo);
    group.bench_function("palisade, sliding window (10 segments)", |b| {
        b.iter(|| ready_call(&mut window, black_box(1)))
    });
    let mut fixed = RateLimitLayer::builder()
        .fixed_window(HUGE, Duration::from_secs(60))
        .build()
        .unwrap()
        .layer(Echo);
    group.bench_function("palisade, fixed window", |b| {
        b.iter(|| ready_call(&mut fixed, black_box(1)))
    });

    let governor = RateLimiter::direct(quota());
    group.bench_function("governor, direct check (not a layer)", |b| {
        b.iter(|| governor.check().unwrap())
    });

    let mut tower_limit =
        tower::limit::RateLimitLayer::new(u64::MAX, Duration::from_secs(1)).layer(Echo);
    group.bench_function("tower RateLimit (per instance)", |b| {
        b.iter(|| ready_call(&mut tower_limit, black_box(1)))
    });

    let mut theirs =
        tower_resilience::ratelimiter::RateLimiterLayer::burst(1_000_000_000, 4_000_000_000)
            .build()
            .unwrap()
            .layer(Echo);
    group.bench_function("tower-resilience, token bucket", |b| {
        b.iter(|| ready_call(&mut theirs, black_box(1)))
    });
    group.finish();

    let mut group = c.benchmark_group("rate limit, keyed (1024 keys), admitted, 1 thread");
    bench_keys(
        &mut group,
        "palisade, token bucket per key",
        keyed_on(TokioClock::new()),
    );
    bench_keys(
        &mut group,
        "palisade, token bucket per key, QuantaClock",
        keyed_on(QuantaClock::new()),
    );
    bench_keys(
        &mut group,
        "palisade, token bucket per key, ManualClock (no clock cost)",
        keyed_on(clock.clone()),
    );
    let governor = RateLimiter::keyed(quota());
    let mut i = 0u64;
    group.bench_function("governor, keyed check (not a layer)", |b| {
        b.iter(|| {
            i = i.wrapping_add(1);
            governor.check_key(&(black_box(i) % 1024)).unwrap()
        })
    });
    group.finish();
}

fn shared_by_two_threads(c: &mut Criterion) {
    let mut group = c.benchmark_group("rate limit, admitted, 2 threads on one limiter");
    group.bench_function("bare service (baseline)", |b| {
        b.iter_custom(|iters| two_threads(Echo, iters))
    });
    let bucket = bucket_on(TokioClock::new()).layer(Echo);
    group.bench_function("palisade, token bucket", |b| {
        b.iter_custom(|iters| two_threads(bucket.clone(), iters))
    });
    let quanta = bucket_on(QuantaClock::new()).layer(Echo);
    group.bench_function("palisade, token bucket, QuantaClock", |b| {
        b.iter_custom(|iters| two_threads(quanta.clone(), iters))
    });
    let governor = Arc::new(RateLimiter::direct(quota()));
    group.bench_function("governor, direct check (not a layer)", |b| {
        b.iter_custom(|iters| {
            on_two_threads(Arc::clone(&governor), iters, |governor, _| {
                governor.check().unwrap();
            })
        })
    });
    group.finish();
}

criterion_group!(benches, single_thread, shared_by_two_threads);
criterion_main!(benches);

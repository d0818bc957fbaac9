//! A rate limiter's happy path — a request well within the limit, admitted —
//! through palisade's layer, next to governor's direct and keyed checks,
//! tower's `RateLimit` and tower-resilience's limiter; and two threads
//! sharing one limiter.
//!
//! Every limit is set so high that no request in the run is refused: a
//! token bucket refilling one token a nanosecond with a burst of 4 × 10⁹ (or
//! the same quota for the peers), windows of 4 × 10⁹ a minute.

use std::{hint::black_box, num::NonZeroU32, sync::Arc, time::Duration};

use criterion::{Criterion, criterion_group, criterion_main};
use governor::{Quota, RateLimiter};
use palisade::{
    clock::{ManualClock, QuantaClock},
    rate_limit::{Rate, RateLimitLayer},
};
use palisade_benches::{Echo, on_two_threads, ready_call, timer_runtime, two_threads};
use tower::Layer;

const HUGE: u32 = u32::MAX;

fn palisade_bucket() -> RateLimitLayer {
    RateLimitLayer::builder()
        .token_bucket(Rate::per_second(1_000_000_000), HUGE)
        .build()
        .unwrap()
}

fn quota() -> Quota {
    Quota::per_second(NonZeroU32::new(HUGE).unwrap()).allow_burst(NonZeroU32::new(HUGE).unwrap())
}

fn single_thread(c: &mut Criterion) {
    let runtime = timer_runtime();
    let _entered = runtime.enter();

    let mut group = c.benchmark_group("rate limit, admitted, 1 thread");
    let mut bare = Echo;
    group.bench_function("bare service (baseline)", |b| {
        b.iter(|| ready_call(&mut bare, black_box(1)))
    });

    let mut bucket = palisade_bucket().layer(Echo);
    group.bench_function("palisade, token bucket", |b| {
        b.iter(|| ready_call(&mut bucket, black_box(1)))
    });
    let mut quanta = RateLimitLayer::builder()
        .token_bucket(Rate::per_second(1_000_000_000), HUGE)
        .clock(QuantaClock::new())
        .build()
        .unwrap()
        .layer(Echo);
    group.bench_function("palisade, token bucket, QuantaClock", |b| {
        b.iter(|| ready_call(&mut quanta, black_box(1)))
    });
    let clock = ManualClock::new();
    let mut manual = RateLimitLayer::builder()
        .token_bucket(Rate::per_second(1_000_000_000), HUGE)
        .clock(clock.clone())
        .build()
        .unwrap()
        .layer(Echo);
    group.bench_function("palisade, token bucket, ManualClock (no clock cost)", |b| {
        b.iter(|| ready_call(&mut manual, black_box(1)))
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
    let mut keyed = RateLimitLayer::builder()
        .token_bucket(Rate::per_second(1_000_000_000), HUGE)
        .key(|request: &u64| Some(request % 1024))
        .build()
        .unwrap()
        .layer(Echo);
    let mut i = 0u64;
    group.bench_function("palisade, token bucket per key", |b| {
        b.iter(|| {
            i = i.wrapping_add(1);
            ready_call(&mut keyed, black_box(i))
        })
    });
    let mut keyed_quanta = RateLimitLayer::builder()
        .token_bucket(Rate::per_second(1_000_000_000), HUGE)
        .key(|request: &u64| Some(request % 1024))
        .clock(QuantaClock::new())
        .build()
        .unwrap()
        .layer(Echo);
    let mut i = 0u64;
    group.bench_function("palisade, token bucket per key, QuantaClock", |b| {
        b.iter(|| {
            i = i.wrapping_add(1);
            ready_call(&mut keyed_quanta, black_box(i))
        })
    });
    let mut keyed_manual = RateLimitLayer::builder()
        .token_bucket(Rate::per_second(1_000_000_000), HUGE)
        .key(|request: &u64| Some(request % 1024))
        .clock(clock.clone())
        .build()
        .unwrap()
        .layer(Echo);
    let mut i = 0u64;
    group.bench_function(
        "palisade, token bucket per key, ManualClock (no clock cost)",
        |b| {
            b.iter(|| {
                i = i.wrapping_add(1);
                ready_call(&mut keyed_manual, black_box(i))
            })
        },
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
    let bucket = palisade_bucket().layer(Echo);
    group.bench_function("palisade, token bucket", |b| {
        b.iter_custom(|iters| two_threads(bucket.clone(), iters))
    });
    let quanta = RateLimitLayer::builder()
        .token_bucket(Rate::per_second(1_000_000_000), HUGE)
        .clock(QuantaClock::new())
        .build()
        .unwrap()
        .layer(Echo);
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

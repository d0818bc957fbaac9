//! Every layer at once on the success path: palisade's full six-layer stack
//! (fallback, retry, circuit breaker, token bucket, bulkhead, timeout), the
//! same three layers tower has (rate limit, concurrency limit, timeout) in
//! palisade and in tower, all around a service that answers at once. The six
//! layers once more with the rate limiter on `QuantaClock`.

use std::{hint::black_box, time::Duration};

use criterion::{Criterion, criterion_group, criterion_main};
use palisade::{
    bulkhead::BulkheadLayer,
    circuit_breaker::CircuitBreakerLayer,
    clock::{Clock, QuantaClock, TokioClock},
    fallback::{Failed, FallbackLayer},
    rate_limit::{NoKey, Rate, RateLimitLayer, UnitCost},
    retry::RetryLayer,
    stack::ResilienceLayer,
    timeout::TimeoutLayer,
};
use palisade_benches::{Echo, ready_call, timer_runtime};
use tower::{Layer, Service, ServiceBuilder};

/// A limit no benchmark reaches, on `clock`.
fn rate_limit_on<C: Clock>(clock: C) -> RateLimitLayer<NoKey, UnitCost, C> {
    RateLimitLayer::builder()
        .token_bucket(Rate::per_second(1_000_000_000), u32::MAX)
        .clock(clock)
        .build()
        .unwrap()
}

/// A limit no benchmark reaches.
fn rate_limit() -> RateLimitLayer {
    rate_limit_on(TokioClock::new())
}

/// All six layers around `Echo`, with `rate_limit` as the rate limiter.
fn six_layers<C: Clock>(rate_limit: RateLimitLayer<NoKey, UnitCost, C>) -> impl Service<u64> {
    ResilienceLayer::new()
        .fallback(FallbackLayer::builder(|_: Failed<'_, u64>| Some(0)).build())
        .retry(RetryLayer::builder().build().unwrap())
        .circuit_breaker(CircuitBreakerLayer::builder().build().unwrap())
        .rate_limit(rate_limit)
        .bulkhead(BulkheadLayer::builder(1_000).build().unwrap())
        .timeout(
            TimeoutLayer::builder(Duration::from_secs(1))
                .build()
                .unwrap(),
        )
        .layer(Echo)
}

fn stacks(c: &mut Criterion) {
    let runtime = timer_runtime();
    let _entered = runtime.enter();
    let second = Duration::from_secs(1);

    let mut group = c.benchmark_group("stack, call succeeds, 1 thread");
    let mut bare = Echo;
    group.bench_function("bare service (baseline)", |b| {
        b.iter(|| ready_call(&mut bare, black_box(1)))
    });

    let mut ours = six_layers(rate_limit());
    group.bench_function("palisade, 6 layers", |b| {
        b.iter(|| ready_call(&mut ours, black_box(1)))
    });
    // The same, with the rate limiter (the one layer here that reads the
    // clock on every call) on the time-stamp counter.
    let mut ours = six_layers(rate_limit_on(QuantaClock::new()));
    group.bench_function("palisade, 6 layers, rate limit on QuantaClock", |b| {
        b.iter(|| ready_call(&mut ours, black_box(1)))
    });

    let five = ResilienceLayer::new()
        .fallback(FallbackLayer::builder(|_: Failed<'_, u64>| Some(0)).build())
        .circuit_breaker(CircuitBreakerLayer::builder().build().unwrap())
        .rate_limit(rate_limit())
        .bulkhead(BulkheadLayer::builder(1_000).build().unwrap())
        .timeout(TimeoutLayer::builder(second).build().unwrap());
    let mut ours = five.layer(Echo);
    group.bench_function("palisade, 5 layers (all but retry)", |b| {
        b.iter(|| ready_call(&mut ours, black_box(1)))
    });

    let three = ResilienceLayer::new()
        .rate_limit(rate_limit())
        .bulkhead(BulkheadLayer::builder(1_000).build().unwrap())
        .timeout(TimeoutLayer::builder(second).build().unwrap());
    let mut ours = three.layer(Echo);
    group.bench_function("palisade, rate limit + bulkhead + timeout", |b| {
        b.iter(|| ready_call(&mut ours, black_box(1)))
    });

    let mut towers = ServiceBuilder::new()
        .layer(tower::limit::RateLimitLayer::new(u64::MAX, second))
        .layer(tower::limit::ConcurrencyLimitLayer::new(1_000))
        .layer(tower::timeout::TimeoutLayer::new(second))
        .service(Echo);
    group.bench_function("tower, RateLimit + ConcurrencyLimit + Timeout", |b| {
        b.iter(|| ready_call(&mut towers, black_box(1)))
    });
    group.finish();
}

criterion_group!(benches, stacks);
criterion_main!(benches);

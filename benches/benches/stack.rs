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
    clock::{QuantaClock, TokioClock},
    fallback::{Failed, FallbackLayer},
    rate_limit::RateLimitLayer,
    stack::ResilienceLayer,
    timeout::TimeoutLayer,
};
use palisade_benches::{
    Echo, rate_limit_on, ready_call, six_layers, timer_runtime, towers_three_layers,
};
use tower::Layer;

/// A limit no benchmark reaches.
fn rate_limit() -> RateLimitLayer {
    rate_limit_on(TokioClock::new())
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

    let mut towers = towers_three_layers();
    group.bench_function("tower, RateLimit + ConcurrencyLimit + Timeout", |b| {
        b.iter(|| ready_call(&mut towers, black_box(1)))
    });
    group.finish();
}

criterion_group!(benches, stacks);
criterion_main!(benches);

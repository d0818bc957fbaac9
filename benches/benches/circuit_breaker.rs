//! A closed circuit breaker's happy path: `ready().await` + `call` + await on
//! an always-ready service, next to the bare service and tower-resilience's
//! breaker; and two threads sharing one breaker.

use std::{hint::black_box, sync::Arc, time::Duration};

use criterion::{Criterion, criterion_group, criterion_main};
use palisade::circuit_breaker::CircuitBreakerLayer;
use palisade_benches::{Echo, ready_call, two_threads};
use tower::Layer;

fn single_thread(c: &mut Criterion) {
    let mut group = c.benchmark_group("circuit breaker, closed, 1 thread");
    let mut bare = Echo;
    group.bench_function("bare service (baseline)", |b| {
        b.iter(|| ready_call(&mut bare, black_box(1)))
    });

    let mut count = CircuitBreakerLayer::builder().build().unwrap().layer(Echo);
    group.bench_function("palisade, count window 100 (default)", |b| {
        b.iter(|| ready_call(&mut count, black_box(1)))
    });
    let mut consecutive = CircuitBreakerLayer::builder()
        .consecutive_failures(5)
        .build()
        .unwrap()
        .layer(Echo);
    group.bench_function("palisade, consecutive failures", |b| {
        b.iter(|| ready_call(&mut consecutive, black_box(1)))
    });
    let mut time = CircuitBreakerLayer::builder()
        .time_window(Duration::from_secs(60), 60)
        .build()
        .unwrap()
        .layer(Echo);
    group.bench_function("palisade, time window 60 s (reads the clock)", |b| {
        b.iter(|| ready_call(&mut time, black_box(1)))
    });

    let disabled = CircuitBreakerLayer::builder().build().unwrap();
    disabled.handle().disable();
    let mut disabled = disabled.layer(Echo);
    group.bench_function("palisade, disabled (admits, counts nothing)", |b| {
        b.iter(|| ready_call(&mut disabled, black_box(1)))
    });

    let mut theirs = tower_resilience::circuitbreaker::CircuitBreakerLayer::builder()
        .failure_rate_threshold(0.5)
        .sliding_window_size(100)
        .build()
        .unwrap()
        .layer(Echo);
    group.bench_function("tower-resilience, count window 100", |b| {
        b.iter(|| ready_call(&mut theirs, black_box(1)))
    });

    // What every response future that refers to shared state pays.
    let shared = Arc::new(0u64);
    group.bench_function("reference: Arc clone + drop", |b| {
        b.iter(|| drop(black_box(Arc::clone(&shared))))
    });
    group.finish();
}

fn shared_by_two_threads(c: &mut Criterion) {
    let mut group = c.benchmark_group("circuit breaker, closed, 2 threads on one breaker");
    group.bench_function("bare service (baseline)", |b| {
        b.iter_custom(|iters| two_threads(Echo, iters))
    });
    let count = CircuitBreakerLayer::builder().build().unwrap().layer(Echo);
    group.bench_function("palisade, count window 100 (default)", |b| {
        b.iter_custom(|iters| two_threads(count.clone(), iters))
    });
    let consecutive = CircuitBreakerLayer::builder()
        .consecutive_failures(5)
        .build()
        .unwrap()
        .layer(Echo);
    group.bench_function("palisade, consecutive failures", |b| {
        b.iter_custom(|iters| two_threads(consecutive.clone(), iters))
    });
    let theirs = tower_resilience::circuitbreaker::CircuitBreakerLayer::builder()
        .failure_rate_threshold(0.5)
        .sliding_window_size(100)
        .build()
        .unwrap()
        .layer(Echo);
    group.bench_function("tower-resilience, count window 100", |b| {
        b.iter_custom(|iters| two_threads(theirs.clone(), iters))
    });
    group.finish();
}

criterion_group!(benches, single_thread, shared_by_two_threads);
criterion_main!(benches);

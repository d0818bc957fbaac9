//! A closed circuit breaker's happy path: `ready().await` + `call` + await on
//! an always-ready service, next to the bare service and tower-resilience's
//! breaker; and two threads sharing one breaker.

use std::{
    hint::black_box,
    sync::{Arc, Barrier},
    time::{Duration, Instant},
};

use criterion::{Criterion, criterion_group, criterion_main};
use palisade::circuit_breaker::CircuitBreakerLayer;
use palisade_benches::{Echo, ready_call};
use tower::{Layer, Service};

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

/// Each iteration: both threads make one call through clones of one service.
/// Aggregate throughput holds up if this takes at most twice the one-thread
/// time of a call.
fn two_threads<S>(service: S, iters: u64) -> Duration
where
    S: Service<u64> + Clone + Send,
    S::Error: std::fmt::Debug,
{
    let barrier = Barrier::new(2);
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..2)
            .map(|_| {
                let mut service = service.clone();
                let barrier = &barrier;
                scope.spawn(move || {
                    barrier.wait();
                    let start = Instant::now();
                    for i in 0..iters {
                        black_box(ready_call(&mut service, black_box(i)).unwrap());
                    }
                    start.elapsed()
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().unwrap())
            .max()
            .unwrap()
    })
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

//! A bulkhead's happy path — a permit free, taken and given back — next to
//! tower's `ConcurrencyLimit` and tower-resilience's bulkhead (both built on
//! tokio's `Semaphore`); and two threads sharing one bulkhead.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use palisade::bulkhead::BulkheadLayer;
use palisade_benches::{Echo, ready_call, two_threads};
use tower::Layer;

const PERMITS: u32 = 64;

fn single_thread(c: &mut Criterion) {
    let mut group = c.benchmark_group("bulkhead, permit free, 1 thread");
    let mut bare = Echo;
    group.bench_function("bare service (baseline)", |b| {
        b.iter(|| ready_call(&mut bare, black_box(1)))
    });
    let mut ours = BulkheadLayer::builder(PERMITS).build().unwrap().layer(Echo);
    group.bench_function("palisade", |b| {
        b.iter(|| ready_call(&mut ours, black_box(1)))
    });
    let mut towers = tower::limit::ConcurrencyLimitLayer::new(PERMITS as usize).layer(Echo);
    group.bench_function("tower ConcurrencyLimit", |b| {
        b.iter(|| ready_call(&mut towers, black_box(1)))
    });
    let mut theirs = tower_resilience::bulkhead::BulkheadLayer::builder()
        .max_concurrent_calls(PERMITS as usize)
        .build()
        .unwrap()
        .layer(Echo);
    group.bench_function("tower-resilience", |b| {
        b.iter(|| ready_call(&mut theirs, black_box(1)))
    });
    group.finish();
}

fn shared_by_two_threads(c: &mut Criterion) {
    let mut group = c.benchmark_group("bulkhead, permit free, 2 threads on one bulkhead");
    group.bench_function("bare service (baseline)", |b| {
        b.iter_custom(|iters| two_threads(Echo, iters))
    });
    let ours = BulkheadLayer::builder(PERMITS).build().unwrap().layer(Echo);
    group.bench_function("palisade", |b| {
        b.iter_custom(|iters| two_threads(ours.clone(), iters))
    });
    let towers = tower::limit::ConcurrencyLimitLayer::new(PERMITS as usize).layer(Echo);
    group.bench_function("tower ConcurrencyLimit", |b| {
        b.iter_custom(|iters| two_threads(towers.clone(), iters))
    });
    group.finish();
}

criterion_group!(benches, single_thread, shared_by_two_threads);
criterion_main!(benches);

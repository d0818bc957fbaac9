//! The adaptive limit's happy path — a call admitted under the limit, timed
//! (or not, when only one call in 16 is a sample) and given to the
//! algorithm — next to the fixed bulkhead it is built on, in the same run.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use palisade::{
    adaptive::{AdaptiveLayer, Aimd, Gradient2, Vegas},
    bulkhead::BulkheadLayer,
};
use palisade_benches::{Echo, ready_call};
use tower::Layer;

const LIMIT: u32 = 64;

fn admitted(c: &mut Criterion) {
    let mut group = c.benchmark_group("adaptive limit, admitted, 1 thread");
    let mut bare = Echo;
    group.bench_function("bare service (baseline)", |b| {
        b.iter(|| ready_call(&mut bare, black_box(1)))
    });
    let mut bulkhead = BulkheadLayer::builder(LIMIT).build().unwrap().layer(Echo);
    group.bench_function("palisade bulkhead (fixed)", |b| {
        b.iter(|| ready_call(&mut bulkhead, black_box(1)))
    });
    let mut aimd = AdaptiveLayer::builder(Aimd::new(LIMIT))
        .build()
        .unwrap()
        .layer(Echo);
    group.bench_function("AIMD, every call a sample", |b| {
        b.iter(|| ready_call(&mut aimd, black_box(1)))
    });
    let mut vegas = AdaptiveLayer::builder(Vegas::new(LIMIT))
        .build()
        .unwrap()
        .layer(Echo);
    group.bench_function("Vegas, every call a sample", |b| {
        b.iter(|| ready_call(&mut vegas, black_box(1)))
    });
    let mut gradient = AdaptiveLayer::builder(Gradient2::new(LIMIT))
        .build()
        .unwrap()
        .layer(Echo);
    group.bench_function("Gradient2, every call a sample", |b| {
        b.iter(|| ready_call(&mut gradient, black_box(1)))
    });
    let mut sampled = AdaptiveLayer::builder(Gradient2::new(LIMIT))
        .sample_every(16)
        .build()
        .unwrap()
        .layer(Echo);
    group.bench_function("Gradient2, one call in 16 a sample", |b| {
        b.iter(|| ready_call(&mut sampled, black_box(1)))
    });
    let mut rarely = AdaptiveLayer::builder(Gradient2::new(LIMIT))
        .sample_every(64)
        .build()
        .unwrap()
        .layer(Echo);
    group.bench_function("Gradient2, one call in 64 a sample", |b| {
        b.iter(|| ready_call(&mut rarely, black_box(1)))
    });
    group.finish();
}

criterion_group!(benches, admitted);
criterion_main!(benches);

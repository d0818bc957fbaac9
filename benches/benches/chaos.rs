//! The chaos layer on the path of a call that is ready at once: disabled
//! (what it costs where it is compiled in but switched off), and enabled
//! with nothing to inject (the draws alone), next to the bare service and
//! tower-resilience's chaos layer at rate 0 (it has no switch).

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use palisade::{chaos::ChaosLayer, random::FastRandom};
use palisade_benches::{Echo, ready_call};
use tower::Layer;

fn ready_inner(c: &mut Criterion) {
    let mut group = c.benchmark_group("chaos, inner ready at once, 1 thread");
    let mut bare = Echo;
    group.bench_function("bare service (baseline)", |b| {
        b.iter(|| ready_call(&mut bare, black_box(1)))
    });
    let build = || {
        ChaosLayer::<u64, u64>::builder()
            .error(0.0)
            .random(FastRandom::seeded(1))
    };
    let disabled = build().disabled().build().unwrap();
    let mut off = disabled.layer(Echo);
    group.bench_function("palisade, disabled", |b| {
        b.iter(|| ready_call(&mut off, black_box(1)))
    });
    let mut idle = build().build().unwrap().layer(Echo);
    group.bench_function("palisade, enabled, injecting nothing", |b| {
        b.iter(|| ready_call(&mut idle, black_box(1)))
    });
    let mut theirs = tower_resilience::chaos::ChaosLayer::builder()
        .latency_rate(0.0)
        .seed(1)
        .build()
        .layer(Echo);
    group.bench_function("tower-resilience chaos, rate 0", |b| {
        b.iter(|| ready_call(&mut theirs, black_box(1)))
    });
    group.finish();
}

criterion_group!(benches, ready_inner);
criterion_main!(benches);

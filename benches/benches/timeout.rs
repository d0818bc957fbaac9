//! A timeout around a call that is ready at once — the common fast call —
//! next to tower's `Timeout` and tower-resilience's time limiter, all at 1 s;
//! around a call that is not, so that the timer is made; and the fallback
//! layer on the success path.

use std::{hint::black_box, time::Duration};

use criterion::{Criterion, criterion_group, criterion_main};
use palisade::{
    fallback::{Failed, FallbackLayer},
    timeout::TimeoutLayer,
};
use palisade_benches::{Echo, PendingOnce, ready_call, timer_runtime};
use tower::Layer;

fn ready_inner(c: &mut Criterion) {
    let runtime = timer_runtime();
    let _entered = runtime.enter();
    let second = Duration::from_secs(1);

    let mut group = c.benchmark_group("timeout, inner ready at once, 1 thread");
    let mut bare = Echo;
    group.bench_function("bare service (baseline)", |b| {
        b.iter(|| ready_call(&mut bare, black_box(1)))
    });
    let mut ours = TimeoutLayer::builder(second).build().unwrap().layer(Echo);
    group.bench_function("palisade (timer armed lazily)", |b| {
        b.iter(|| ready_call(&mut ours, black_box(1)))
    });
    let mut towers = tower::timeout::TimeoutLayer::new(second).layer(Echo);
    group.bench_function("tower Timeout", |b| {
        b.iter(|| ready_call(&mut towers, black_box(1)))
    });
    let mut theirs = tower_resilience::timelimiter::TimeLimiterLayer::builder()
        .timeout_duration(second)
        .build()
        .layer(Echo);
    group.bench_function("tower-resilience time limiter", |b| {
        b.iter(|| ready_call(&mut theirs, black_box(1)))
    });
    group.finish();
}

/// A call that is not ready on its first poll, so that every timeout makes
/// and registers its timer: palisade's (boxed once made) next to tower's
/// (inline in its future). Nothing is awaited; the timer is dropped unfired.
fn pending_inner(c: &mut Criterion) {
    let runtime = timer_runtime();
    let _entered = runtime.enter();
    let second = Duration::from_secs(1);

    let mut group = c.benchmark_group("timeout, inner pending once (timer armed), 1 thread");
    let mut bare = PendingOnce;
    group.bench_function("bare service (baseline)", |b| {
        b.iter(|| ready_call(&mut bare, black_box(1)))
    });
    let mut ours = TimeoutLayer::builder(second)
        .build()
        .unwrap()
        .layer(PendingOnce);
    group.bench_function("palisade", |b| {
        b.iter(|| ready_call(&mut ours, black_box(1)))
    });
    let mut towers = tower::timeout::TimeoutLayer::new(second).layer(PendingOnce);
    group.bench_function("tower Timeout", |b| {
        b.iter(|| ready_call(&mut towers, black_box(1)))
    });
    group.finish();
}

/// The fallback layer on the success path: the call succeeds, the fallback
/// is never asked.
fn fallback_success(c: &mut Criterion) {
    let mut group = c.benchmark_group("fallback, call succeeds, 1 thread");
    let mut bare = Echo;
    group.bench_function("bare service (baseline)", |b| {
        b.iter(|| ready_call(&mut bare, black_box(1)))
    });
    let mut ours = FallbackLayer::builder(|_: Failed<'_, u64>| Some(0))
        .build()
        .layer(Echo);
    group.bench_function("palisade", |b| {
        b.iter(|| ready_call(&mut ours, black_box(1)))
    });
    group.finish();
}

criterion_group!(benches, ready_inner, pending_inner, fallback_success);
criterion_main!(benches);

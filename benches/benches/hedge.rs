//! Hedging around a call whose first attempt answers at once — the common
//! case, which must cost next to nothing (no clock read, no timer) — next
//! to the bare service and tower's `Hedge` (a p95 over a rotating
//! histogram; its timer runs in a tokio runtime).

use std::{hint::black_box, time::Duration};

use criterion::{Criterion, criterion_group, criterion_main};
use palisade::hedge::{Delay, HedgeLayer};
use palisade_benches::{Echo, ready_call, timer_runtime};
use tower::Layer;

/// tower's hedge policy: every request may be copied and hedged.
#[derive(Clone, Copy)]
struct Always;

impl tower::hedge::Policy<u64> for Always {
    fn clone_request(&self, request: &u64) -> Option<u64> {
        Some(*request)
    }

    fn can_retry(&self, _: &u64) -> bool {
        true
    }
}

fn answered_at_once(c: &mut Criterion) {
    let runtime = timer_runtime();
    let _entered = runtime.enter();
    let mut group = c.benchmark_group("hedge, first attempt answers at once, 1 thread");
    let mut bare = Echo;
    group.bench_function("bare service (baseline)", |b| {
        b.iter(|| ready_call(&mut bare, black_box(1)))
    });
    let fixed = HedgeLayer::builder(Delay::Fixed(Duration::from_millis(10)))
        .build()
        .unwrap();
    let mut ours = fixed.layer(Echo);
    group.bench_function("palisade, fixed delay", |b| {
        b.iter(|| ready_call(&mut ours, black_box(1)))
    });
    let quantile = HedgeLayer::builder(Delay::Quantile {
        quantile: 0.95,
        min_samples: 10,
        window: Duration::from_secs(10),
        until_known: Duration::from_millis(10),
    })
    .build()
    .unwrap();
    let mut ours_p95 = quantile.layer(Echo);
    group.bench_function("palisade, p95 delay", |b| {
        b.iter(|| ready_call(&mut ours_p95, black_box(1)))
    });
    let mut towers = tower::hedge::Hedge::new(Echo, Always, 10, 0.95, Duration::from_secs(10));
    group.bench_function("tower Hedge (p95)", |b| {
        b.iter(|| ready_call(&mut towers, black_box(1)))
    });
    group.finish();
}

criterion_group!(benches, answered_at_once);
criterion_main!(benches);

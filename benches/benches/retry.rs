//! The retry layer's happy path — the first attempt succeeds, no retry is
//! needed — on an always-ready service with a cheap `Clone` request, next to
//! tower's `Retry` with an equivalent policy (three attempts, errors
//! retried) and tower-resilience's retry.

use std::{convert::Infallible, future::Ready, hint::black_box};

use criterion::{Criterion, criterion_group, criterion_main};
use palisade::retry::RetryLayer;
use palisade_benches::{Echo, ready_call};
use tower::Layer;

/// tower's `Retry` needs a policy written by hand: this one retries errors
/// up to two more times, at once (the happy path never gets there).
#[derive(Clone, Copy)]
struct Attempts(u32);

impl tower::retry::Policy<u64, u64, Infallible> for Attempts {
    type Future = Ready<()>;

    fn retry(&mut self, _: &mut u64, result: &mut Result<u64, Infallible>) -> Option<Self::Future> {
        match result {
            Ok(_) => None,
            Err(_) if self.0 == 0 => None,
            Err(_) => {
                self.0 -= 1;
                Some(std::future::ready(()))
            }
        }
    }

    fn clone_request(&mut self, request: &u64) -> Option<u64> {
        Some(*request)
    }
}

fn happy_path(c: &mut Criterion) {
    let mut group = c.benchmark_group("retry, first attempt succeeds, 1 thread");
    let mut bare = Echo;
    group.bench_function("bare service (baseline)", |b| {
        b.iter(|| ready_call(&mut bare, black_box(1)))
    });
    let mut ours = RetryLayer::builder().build().unwrap().layer(Echo);
    group.bench_function("palisade (3 attempts, exponential backoff)", |b| {
        b.iter(|| ready_call(&mut ours, black_box(1)))
    });
    let mut towers = tower::retry::RetryLayer::new(Attempts(2)).layer(Echo);
    group.bench_function("tower Retry (3 attempts)", |b| {
        b.iter(|| ready_call(&mut towers, black_box(1)))
    });
    let mut theirs = tower_resilience::retry::RetryLayer::<u64, u64, Infallible>::builder()
        .max_attempts(3)
        .build()
        .layer(Echo);
    group.bench_function("tower-resilience (3 attempts)", |b| {
        b.iter(|| ready_call(&mut theirs, black_box(1)))
    });
    group.finish();
}

criterion_group!(benches, happy_path);
criterion_main!(benches);

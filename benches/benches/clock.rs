//! The foundation's costs: reading a clock, making a sleep, drawing a random
//! number, emitting an event. Each next to what a user would use instead.

use std::{future::Future, hint::black_box, pin::pin, task::Context, task::Waker, time::Duration};

use criterion::{Criterion, criterion_group, criterion_main};
use palisade::{
    clock::{Clock, ManualClock, QuantaClock, TokioClock},
    observe::{EventKind, ObserverBuilder},
    random::{FastRandom, Random, SharedRng},
};
use palisade_benches::timer_runtime;
use rand::{Rng, SeedableRng, rngs::StdRng};

fn now(c: &mut Criterion) {
    let mut group = c.benchmark_group("now");
    group.bench_function("std::time::Instant::now", |b| {
        b.iter(std::time::Instant::now)
    });
    group.bench_function("tokio::time::Instant::now", |b| {
        b.iter(tokio::time::Instant::now)
    });
    let tokio_clock = TokioClock::new();
    group.bench_function("TokioClock::now", |b| b.iter(|| tokio_clock.now()));
    let quanta_clock = QuantaClock::new();
    group.bench_function("QuantaClock::now", |b| b.iter(|| quanta_clock.now()));
    let manual = ManualClock::new();
    group.bench_function("ManualClock::now", |b| b.iter(|| manual.now()));
    group.finish();
}

fn sleep(c: &mut Criterion) {
    let runtime = timer_runtime();
    let _guard = runtime.enter();
    let mut cx = Context::from_waker(Waker::noop());
    let mut group = c.benchmark_group("sleep create + poll + drop");
    group.bench_function("tokio::time::sleep", |b| {
        b.iter(|| {
            let sleep = pin!(tokio::time::sleep(Duration::from_secs(1)));
            black_box(sleep.poll(&mut cx)).is_pending()
        })
    });
    let tokio_clock = TokioClock::new();
    group.bench_function("TokioClock::sleep", |b| {
        b.iter(|| {
            let sleep = pin!(tokio_clock.sleep(Duration::from_secs(1)));
            black_box(sleep.poll(&mut cx)).is_pending()
        })
    });
    let quanta_clock = QuantaClock::new();
    group.bench_function("QuantaClock::sleep", |b| {
        b.iter(|| {
            let sleep = pin!(quanta_clock.sleep(Duration::from_secs(1)));
            black_box(sleep.poll(&mut cx)).is_pending()
        })
    });
    let manual = ManualClock::new();
    group.bench_function("ManualClock::sleep", |b| {
        b.iter(|| {
            let sleep = pin!(manual.sleep(Duration::from_secs(1)));
            black_box(sleep.poll(&mut cx)).is_pending()
        })
    });
    group.finish();
}

fn random(c: &mut Criterion) {
    let mut group = c.benchmark_group("next_u64");
    let fast = FastRandom::seeded(1);
    group.bench_function("FastRandom", |b| b.iter(|| fast.next_u64()));
    let shared = SharedRng::new(StdRng::seed_from_u64(1));
    group.bench_function("SharedRng<StdRng>", |b| b.iter(|| shared.next_u64()));
    let mut thread_rng = rand::rng();
    group.bench_function("rand::rng() (ThreadRng)", |b| {
        b.iter(|| thread_rng.next_u64())
    });
    group.finish();
}

fn emit(c: &mut Criterion) {
    let mut group = c.benchmark_group("Observer::emit");
    let silent = ObserverBuilder::new().build("bench");
    let at = palisade::clock::Instant::ZERO;
    group.bench_function("no listener", |b| {
        b.iter(|| silent.emit(at, black_box(EventKind::Permitted)))
    });
    let listened = ObserverBuilder::new()
        .on_event(|event| {
            black_box(event);
        })
        .build("bench");
    group.bench_function("one listener", |b| {
        b.iter(|| listened.emit(at, black_box(EventKind::Permitted)))
    });
    group.finish();
}

criterion_group!(benches, now, sleep, random, emit);
criterion_main!(benches);

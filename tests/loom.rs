//! Loom models of the crate's concurrent cores. Run with
//! `RUSTFLAGS="--cfg loom" cargo test --release --test loom`.

#![cfg(loom)]

use std::{
    future::Future,
    task::{Context, Waker},
    time::Duration,
};

use loom::{future::block_on, thread};
use palisade::{
    clock::{Clock, ManualClock},
    random::{FastRandom, Random},
};

/// A sleep that registers while another thread advances the clock past its
/// deadline is always woken: it either sees the new time or is seen by the
/// advance. (If not, `block_on` would never return and loom would report a
/// deadlock.)
#[test]
fn manual_sleep_registration_never_misses_an_advance() {
    loom::model(|| {
        let clock = ManualClock::new();
        let advancer = {
            let clock = clock.clone();
            thread::spawn(move || clock.advance(Duration::from_secs(1)))
        };
        block_on(clock.sleep(Duration::from_secs(1)));
        advancer.join().unwrap();
        assert_eq!(clock.sleepers(), 0);
    });
}

/// Two advances racing each other: time ends at their sum, and a sleeper due
/// only after both is woken.
#[test]
fn concurrent_advances_add_up_and_wake_the_sleeper() {
    loom::model(|| {
        let clock = ManualClock::new();
        let advancers: Vec<_> = (0..2)
            .map(|_| {
                let clock = clock.clone();
                thread::spawn(move || clock.advance(Duration::from_secs(1)))
            })
            .collect();
        block_on(clock.sleep(Duration::from_secs(2)));
        for advancer in advancers {
            advancer.join().unwrap();
        }
        assert_eq!(clock.now().since_epoch(), Duration::from_secs(2));
        assert_eq!(clock.sleepers(), 0);
    });
}

/// A sleep dropped while the clock advances leaves no registration behind.
#[test]
fn a_dropped_sleep_never_stays_registered() {
    loom::model(|| {
        let clock = ManualClock::new();
        let sleeper = {
            let clock = clock.clone();
            thread::spawn(move || {
                let mut sleep = Box::pin(clock.sleep(Duration::from_secs(5)));
                let _ = sleep.as_mut().poll(&mut Context::from_waker(Waker::noop()));
                drop(sleep);
            })
        };
        clock.advance(Duration::from_secs(5));
        sleeper.join().unwrap();
        assert_eq!(clock.sleepers(), 0);
    });
}

/// Draws racing on one shared source never repeat a state.
#[test]
fn fast_random_draws_are_distinct_under_races() {
    loom::model(|| {
        let rng = FastRandom::seeded(1);
        let other = {
            let rng = rng.clone();
            thread::spawn(move || rng.next_u64())
        };
        let mine = rng.next_u64();
        assert_ne!(mine, other.join().unwrap());
    });
}

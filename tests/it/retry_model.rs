//! Property tests of the retry layer and its budgets, on a `ManualClock`
//! with seeded randomness:
//!
//! - every delay is at most the cap, whatever the backoff, jitter and seed;
//! - attempts never exceed `max_attempts`; no attempt starts past the
//!   deadline; server pushback is capped by `max_pushback`;
//! - a TTL budget never goes below zero, and when it allows a retry the
//!   retries of the window are within its reserve plus its ratio of the
//!   window's requests — also when its numbers change mid-run
//!   (`RetryBudget::reconfigure`): the window's deposits and retries are
//!   kept and judged by the numbers in force.

use std::{
    sync::{Arc, Mutex},
    task::Poll,
    time::Duration,
};

use palisade::{
    clock::{Clock, Instant, ManualClock},
    random::FastRandom,
    retry::{Backoff, Decision, Jitter, RetryBudget, RetryLayer},
};
use proptest::prelude::*;
use tokio_test::task;
use tower::{BoxError, Layer, Service, ServiceExt, service_fn};

/// A backoff, and the cap it was given.
fn backoff() -> impl Strategy<Value = (Backoff, Duration)> {
    let ms = |range: std::ops::Range<u64>| range.prop_map(Duration::from_millis);
    let growth = prop_oneof![
        ms(0..5_000).prop_map(Backoff::constant),
        (ms(0..5_000), ms(0..5_000)).prop_map(|(base, step)| Backoff::linear(base, step)),
        (ms(0..5_000), 1.0..10.0f64)
            .prop_map(|(base, multiplier)| Backoff::exponential(base, multiplier)),
    ];
    let jitter = prop_oneof![
        Just(Jitter::None),
        Just(Jitter::Full),
        Just(Jitter::Equal),
        Just(Jitter::Decorrelated),
        (0.0..=1.0f64).prop_map(Jitter::Proportional),
    ];
    (growth, jitter, ms(1..60_000))
        .prop_map(|(growth, jitter, max)| (growth.jitter(jitter).max_delay(max), max))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(crate::cases(256)))]

    #[test]
    fn every_delay_is_at_most_the_cap((backoff, max) in backoff(), seed in any::<u64>()) {
        for delay in backoff.delays(FastRandom::seeded(seed)).take(200) {
            prop_assert!(delay <= max, "{:?} > {:?} for {:?}", delay, max, backoff);
        }
    }

    #[test]
    fn attempts_deadline_and_pushback_hold(
        (backoff, backoff_cap) in backoff(),
        seed in any::<u64>(),
        may_shorten in any::<bool>(),
        max_attempts in 1..8u32,
        deadline_ms in proptest::option::of(1..20_000u64),
        pushback_ms in proptest::collection::vec(proptest::option::of(0..100_000u64), 8),
        max_pushback_ms in 1..10_000u64,
    ) {
        let clock = ManualClock::new();
        let calls = Arc::new(Mutex::new(Vec::new()));
        let inner = service_fn({
            let (clock, calls) = (clock.clone(), Arc::clone(&calls));
            move |_: u32| {
                let mut calls = calls.lock().unwrap();
                calls.push(clock.now());
                let attempt = calls.len() - 1;
                std::future::ready(Ok::<_, BoxError>(attempt))
            }
        });
        let pushbacks = pushback_ms.clone();
        let max_pushback = Duration::from_millis(max_pushback_ms);
        let mut builder = RetryLayer::builder()
            .max_attempts(max_attempts)
            .backoff(backoff)
            .max_pushback(max_pushback)
            .pushback_may_shorten(may_shorten)
            .random(FastRandom::seeded(seed))
            .clock(clock.clone());
        if let Some(ms) = deadline_ms {
            builder = builder.deadline(Duration::from_millis(ms));
        }
        let layer = builder
            .policy(move |_: &u32, result: &Result<usize, BoxError>| {
                let attempt = *result.as_ref().unwrap();
                match pushbacks[attempt] {
                    Some(ms) => Decision::RetryAfter(Duration::from_millis(ms)),
                    None => Decision::Retry,
                }
            })
            .build()
            .unwrap();
        let mut service = layer.layer(inner);
        let mut call = task::spawn(async { service.ready().await?.call(0).await });
        let result = loop {
            if let Poll::Ready(result) = call.poll() {
                break result;
            }
            clock.set(clock.next_deadline().expect("a retry sleeps"));
        };
        prop_assert!(result.is_ok());
        let calls = calls.lock().unwrap();
        prop_assert!(calls.len() as u32 <= max_attempts);
        if let Some(ms) = deadline_ms {
            let deadline = Instant::ZERO + Duration::from_millis(ms);
            prop_assert!(calls.iter().all(|at| *at <= deadline), "{calls:?} past {deadline:?}");
        }
        for (attempt, pair) in calls.windows(2).enumerate() {
            if let Some(ms) = pushback_ms[attempt] {
                let asked = Duration::from_millis(ms).min(max_pushback);
                let waited = pair[1] - pair[0];
                if may_shorten {
                    prop_assert_eq!(waited, asked);
                } else {
                    // The longer of the pushback and the backoff's delay.
                    prop_assert!(waited >= asked, "{waited:?} < {asked:?}");
                    prop_assert!(waited <= asked.max(backoff_cap), "{waited:?}");
                }
            }
        }
    }

    #[test]
    fn a_ttl_budget_allows_its_reserve_plus_its_ratio_of_the_window(
        min_per_second in 0..5u32,
        ratio in 0.0..2.0f64,
        steps in proptest::collection::vec(
            (0..3_000u64, 0..4u32, 0..4u32, proptest::option::weighted(0.1, (0..5u32, 0.0..2.0f64))),
            1..60,
        ),
    ) {
        let (mut min_per_second, mut ratio) = (min_per_second, ratio);
        let ttl = Duration::from_secs(10);
        let budget = RetryBudget::ttl(ttl, min_per_second, ratio).unwrap();
        let slot = ttl.as_nanos() as u64 / 10;
        let mut now = Instant::ZERO;
        // (slot number, deposits, retries allowed)
        let mut history: Vec<(u64, u64, u64)> = Vec::new();
        for (advance_ms, deposits, withdrawals, change) in steps {
            now += Duration::from_millis(advance_ms);
            if let Some((new_min, new_ratio)) = change {
                budget.reconfigure(&RetryBudget::ttl(ttl, new_min, new_ratio).unwrap(), now).unwrap();
                (min_per_second, ratio) = (new_min, new_ratio);
            }
            let number = now.as_nanos() / slot;
            for _ in 0..deposits {
                budget.deposit(now);
            }
            let allowed = (0..withdrawals).filter(|_| budget.withdraw(now)).count() as u64;
            history.push((number, u64::from(deposits), allowed));
            let window = history.iter().filter(|(n, ..)| number - n < 10);
            let (deposited, retried) = window.fold((0, 0), |(d, r), (_, dd, rr)| (d + dd, r + rr));
            let bound = f64::from(min_per_second) * 10.0 + (ratio * 1e6).round() / 1e6 * deposited as f64;
            if allowed > 0 {
                prop_assert!(retried as f64 <= bound + 1e-9, "{retried} retries > {bound}");
            }
            let left = (bound - retried as f64).max(0.0);
            prop_assert!(budget.available(now) as f64 <= left + 1e-9);
        }
    }
}

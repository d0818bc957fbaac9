//! A rate limit's numbers changed while requests flow.

use std::{
    sync::{
        Arc, Barrier,
        atomic::{AtomicUsize, Ordering},
    },
    thread,
    time::Duration,
};

use palisade::{
    clock::ManualClock,
    error::RateLimited,
    rate_limit::{Limit, NoKey, Rate, RateLimitLayer, UnitCost},
};
use tokio_test::task;
use tower::{BoxError, Layer, Service, service_fn};

use super::{Changes, MS, record};

fn echo() -> impl Service<u32, Response = u32, Error = BoxError, Future: Send> + Clone {
    service_fn(|x: u32| async move { Ok::<_, BoxError>(x) })
}

/// A sliding window of 10 a second in 10 segments on `clock`, and a service
/// under it.
fn ten_a_second(
    clock: &ManualClock,
) -> (
    RateLimitLayer<NoKey, UnitCost, ManualClock>,
    impl Service<u32, Response = u32, Error = BoxError>,
) {
    let layer = RateLimitLayer::builder()
        .sliding_window(10, Duration::from_secs(1), 10)
        .clock(clock.clone())
        .build()
        .unwrap();
    let service = layer.layer(echo());
    (layer, service)
}

/// Calls `service` once: admitted or refused (reject mode answers at once).
fn admitted<S: Service<u32, Error = BoxError>>(service: &mut S) -> bool {
    match task::spawn(service.call(1)).poll() {
        std::task::Poll::Ready(Ok(_)) => true,
        std::task::Poll::Ready(Err(err)) => {
            assert!(err.is::<RateLimited>(), "{err}");
            false
        }
        std::task::Poll::Pending => unreachable!("reject mode answers at once"),
    }
}

/// Four threads drain a bucket through their own clones while a fifth
/// lowers the limit mid-burst, on a frozen clock. Whatever the interleaving,
/// every admission is either under the old numbers or the new, and what was
/// taken stays owed: from then on, each refill admits exactly what the new
/// rate allows after the debt, as a single caller can count.
#[test]
fn a_bucket_lowered_mid_burst_by_another_thread_keeps_its_debt_under_load() {
    for _ in 0..20 {
        let clock = ManualClock::new();
        let layer = RateLimitLayer::builder()
            .token_bucket(Rate::per_second(100), 50)
            .clock(clock.clone())
            .build()
            .unwrap();
        let service = layer.layer(echo());
        let taken = Arc::new(AtomicUsize::new(0));
        let start = Arc::new(Barrier::new(5));
        let callers: Vec<_> = (0..4)
            .map(|_| {
                let (mut service, taken, start) =
                    (service.clone(), Arc::clone(&taken), Arc::clone(&start));
                thread::spawn(move || {
                    start.wait();
                    for _ in 0..40 {
                        if admitted(&mut service) {
                            taken.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                })
            })
            .collect();
        start.wait();
        while taken.load(Ordering::SeqCst) < 10 {
            thread::yield_now();
        }
        layer
            .set_limit(Limit::TokenBucket {
                rate: Rate::per_second(10),
                burst: 5,
            })
            .unwrap();
        for caller in callers {
            caller.join().unwrap();
        }
        let owed = taken.load(Ordering::SeqCst);
        // The old burst bounds what went at the frozen instant; the new one
        // gave nothing on top of a debt of at least 10.
        assert!((10..=50).contains(&owed), "{owed}");
        assert_eq!(layer.available(), 0);

        // Then, 100 ms a token: the k-th refill step admits exactly what
        // the bucket holds once the debt is paid (at most the new burst).
        let mut service = service;
        let mut total = 0;
        for step in 1..=80u32 {
            clock.advance(100 * MS);
            while admitted(&mut service) {
                total += 1;
            }
            let refilled = step as usize + 5;
            assert_eq!(
                total,
                refilled.saturating_sub(owed),
                "step {step}, owed {owed}"
            );
        }
    }
}

#[test]
fn a_raised_bucket_adds_room_above_the_debt_and_refills_faster() {
    let clock = ManualClock::new();
    let changes = Changes::default();
    let layer = RateLimitLayer::builder()
        .token_bucket(Rate::per_second(10), 4)
        .clock(clock.clone())
        .on_event(record(&changes))
        .build()
        .unwrap();
    let mut service = layer.layer(echo());
    assert_eq!((0..6).filter(|_| admitted(&mut service)).count(), 4);
    layer
        .set_limit(Limit::TokenBucket {
            rate: Rate::per_second(20),
            burst: 6,
        })
        .unwrap();
    // 4 owed of 6: 2 at once, then one every 50 ms.
    assert_eq!(layer.available(), 2);
    assert_eq!((0..4).filter(|_| admitted(&mut service)).count(), 2);
    clock.advance(49 * MS);
    assert!(!admitted(&mut service));
    clock.advance(MS);
    assert!(admitted(&mut service));
    assert_eq!(
        *changes.lock().unwrap(),
        [("rate", 10.0, 20.0), ("burst", 4.0, 6.0)]
    );
}

#[test]
fn a_window_keeps_its_counts_across_a_new_limit_and_new_segments() {
    let clock = ManualClock::new();
    let (layer, mut service) = ten_a_second(&clock);
    clock.advance(50 * MS);
    assert_eq!((0..8).filter(|_| admitted(&mut service)).count(), 8);

    // Raised to 12: only the 4 not yet used.
    layer
        .set_limit(Limit::SlidingWindow {
            limit: 12,
            window: Duration::from_secs(1),
            segments: 10,
        })
        .unwrap();
    assert_eq!(layer.available(), 4);
    // Lowered to 5, the window doubled in 4 segments of 500 ms: the 8
    // admitted in 0-100 ms now count in 0-500 ms, until that segment leaves
    // the 2 s window at 2.5 s.
    layer
        .set_limit(Limit::SlidingWindow {
            limit: 5,
            window: Duration::from_secs(2),
            segments: 4,
        })
        .unwrap();
    assert!(!admitted(&mut service));
    clock.advance(Duration::from_millis(2_449));
    assert_eq!(layer.available(), 0);
    clock.advance(MS);
    assert_eq!(layer.available(), 5);
}

#[test]
fn a_window_made_shorter_keeps_what_it_cannot_place_in_its_oldest_segment() {
    let clock = ManualClock::new();
    let (layer, mut service) = ten_a_second(&clock);
    // 5 in the segment 0-100 ms, 5 in 500-600 ms.
    assert_eq!((0..5).filter(|_| admitted(&mut service)).count(), 5);
    clock.advance(500 * MS);
    assert_eq!((0..5).filter(|_| admitted(&mut service)).count(), 5);
    clock.advance(50 * MS);
    // 300 ms in segments of 100 ms, at 550 ms: the window holds 300-600
    // ms, and the first 5, older, count in its oldest segment (300-400 ms)
    // — until it leaves, at 600 ms.
    layer
        .set_limit(Limit::SlidingWindow {
            limit: 10,
            window: Duration::from_millis(300),
            segments: 3,
        })
        .unwrap();
    assert_eq!(layer.available(), 0);
    clock.advance(50 * MS - Duration::from_nanos(1));
    assert_eq!(layer.available(), 0);
    clock.advance(Duration::from_nanos(1));
    assert_eq!(layer.available(), 5);
}

#[test]
fn a_log_keeps_the_entries_of_its_window_and_no_others() {
    let clock = ManualClock::new();
    let layer = RateLimitLayer::builder()
        .sliding_log(3, Duration::from_secs(1))
        .clock(clock.clone())
        .build()
        .unwrap();
    let mut service = layer.layer(echo());
    assert!(admitted(&mut service));
    clock.advance(Duration::from_millis(1_500));
    assert!(admitted(&mut service));
    assert!(admitted(&mut service));
    // A 10 s window from 1.5 s: the entry at 0 had left the old window, so
    // the new one counts the 2 at 1.5 s only.
    layer
        .set_limit(Limit::SlidingLog {
            limit: 3,
            window: Duration::from_secs(10),
        })
        .unwrap();
    assert_eq!(layer.available(), 1);
    assert!(admitted(&mut service));
    let refused = task::spawn(service.call(1)).poll();
    let std::task::Poll::Ready(Err(err)) = refused else {
        panic!("refused")
    };
    assert_eq!(
        err.downcast_ref::<RateLimited>().unwrap().retry_after(),
        Some(Duration::from_secs(10))
    );
}

#[test]
fn every_key_keeps_its_own_debt_when_the_keyed_limit_changes() {
    let clock = ManualClock::new();
    let layer = RateLimitLayer::builder()
        .token_bucket(Rate::per_second(10), 4)
        .key(|user: &u32| Some(*user))
        .shards(4)
        .clock(clock.clone())
        .build()
        .unwrap();
    let mut service = layer.layer(echo());
    for user in 0..100u32 {
        for _ in 0..user % 5 {
            assert!(admitted_as(&mut service, user));
        }
    }
    layer
        .set_limit(Limit::TokenBucket {
            rate: Rate::per_second(5),
            burst: 2,
        })
        .unwrap();
    for user in 0..100u32 {
        // Owes user % 5 tokens of a bucket of 2.
        let expected = 2u64.saturating_sub(u64::from(user % 5));
        assert_eq!(layer.available_for(&user), expected, "user {user}");
    }
    // 200 ms a token now: who owed 4 has one back after 600 ms.
    clock.advance(599 * MS);
    assert_eq!(layer.available_for(&4u32), 0);
    clock.advance(MS);
    assert_eq!(layer.available_for(&4u32), 1);
    assert_eq!(layer.tracked_keys(), 80);
}

fn admitted_as<S: Service<u32, Error = BoxError>>(service: &mut S, user: u32) -> bool {
    matches!(
        task::spawn(service.call(user)).poll(),
        std::task::Poll::Ready(Ok(_))
    )
}

#[test]
fn a_bad_limit_is_refused_with_its_field_and_changes_nothing() {
    let changes = Changes::default();
    let layer = RateLimitLayer::builder()
        .token_bucket(Rate::per_second(10), 4)
        .clock(ManualClock::new())
        .on_event(record(&changes))
        .build()
        .unwrap();
    let bad = |limit: Limit| layer.set_limit(limit).unwrap_err().field();
    assert_eq!(
        bad(Limit::TokenBucket {
            rate: Rate::per_second(10),
            burst: 0
        }),
        "burst"
    );
    assert_eq!(
        bad(Limit::TokenBucket {
            rate: Rate::new(0, Duration::from_secs(1)),
            burst: 4
        }),
        "rate.tokens"
    );
    assert_eq!(
        bad(Limit::SlidingLog {
            limit: 4,
            window: Duration::from_secs(1)
        }),
        "algorithm"
    );
    let other = layer.set_limit(Limit::FixedWindow {
        limit: 4,
        window: Duration::from_secs(1),
    });
    let rule = other.unwrap_err().rule().to_owned();
    assert!(
        rule.contains("keeps its algorithm (token bucket)"),
        "{rule}"
    );
    assert_eq!(
        layer.limit(),
        Limit::TokenBucket {
            rate: Rate::per_second(10),
            burst: 4
        }
    );
    assert_eq!(layer.available(), 4);
    assert!(changes.lock().unwrap().is_empty());

    let keyed = RateLimitLayer::builder()
        .sliding_window(10, Duration::from_secs(1), 10)
        .key(|user: &u32| Some(*user))
        .max_keys(1_000_000)
        .build()
        .unwrap();
    let err = keyed
        .set_limit(Limit::SlidingWindow {
            limit: 10,
            window: Duration::from_secs(1),
            segments: 4096,
        })
        .unwrap_err();
    assert_eq!(err.field(), "max_keys", "{err}");
}

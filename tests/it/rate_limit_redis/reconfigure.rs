//! The limit kept in Redis changed while it runs
//! (`RedisRateLimitLayer::set_limit`): what Redis holds is kept as the
//! in-process limit keeps it, key by key at the first decision with the new
//! numbers; the denial cache forgets what the old numbers worked out; the
//! in-process fallback takes its share; bad numbers are refused by field.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use palisade::{
    clock::ManualClock,
    observe::EventKind,
    rate_limit::{
        Limit, NoKey, Rate, RateLimitBuilder, RateLimitLayer,
        redis::{RedisRateLimitLayer, Unavailable},
    },
};
use proptest::{prelude::*, test_runner::FileFailurePersistence};
use tower::{BoxError, Layer, Service, service_fn};

use super::{Said, ask, server::RedisServer};

const MS: Duration = Duration::from_millis(1);
const US: Duration = Duration::from_micros(1);

/// Asks Redis's service, then the in-process one, for `cost`: each must
/// say `said`.
macro_rules! both_say {
    ($there:ident, $here:ident, $cost:expr, $said:expr) => {
        assert_eq!(ask(&mut $there, $cost).await, $said, "on Redis");
        assert_eq!(ask(&mut $here, $cost).await, $said, "in process");
    };
}

type Local<W> = RateLimitLayer<NoKey, W, ManualClock>;
type Remote<W> = RedisRateLimitLayer<NoKey, W, ManualClock, ::redis::aio::ConnectionManager>;

/// The limit `start` builds, in process and on Redis (on the layer's
/// clock), side by side.
async fn side_by_side<W>(
    server: &RedisServer,
    start: impl Fn() -> RateLimitBuilder<NoKey, W, ManualClock>,
) -> (Local<W>, Remote<W>) {
    let local = start().build().unwrap();
    let remote = start()
        .redis(server.connection().await)
        .layer_clock()
        .build()
        .unwrap();
    (local, remote)
}

/// Changes both to `limit`.
fn set_both<W>(local: &Local<W>, remote: &Remote<W>, limit: Limit) {
    local.set_limit(limit).unwrap();
    remote.set_limit(limit).unwrap();
    assert_eq!((local.limit(), remote.limit()), (limit, limit));
}

fn echo() -> impl Service<u32, Response = u32, Error = BoxError, Future: Send> + Clone + Send {
    service_fn(|cost: u32| async move { Ok::<_, BoxError>(cost) })
}

/// A builder on `clock`, each request costing its number.
fn builder(
    clock: &ManualClock,
) -> RateLimitBuilder<NoKey, impl Fn(&u32) -> u32 + Clone + Send + Sync + 'static, ManualClock> {
    RateLimitLayer::builder()
        .clock(clock.clone())
        .cost(|cost: &u32| *cost)
}

/// A token bucket lowered mid-burst on Redis still owes its burst, refilled
/// at the new rate: no fresh burst. Raised, it does not forget the debt.
/// Side by side with the in-process limit, to the microsecond.
#[tokio::test]
async fn a_bucket_on_redis_keeps_its_debt_in_tokens_when_its_rate_changes() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let clock = ManualClock::new();
    let start = || builder(&clock).token_bucket(Rate::per_second(10), 5);
    let (local, remote) = side_by_side(&server, start).await;
    let (mut here, mut there) = (local.layer(echo()), remote.layer(echo()));
    for _ in 0..5 {
        both_say!(there, here, 1, Said::Admitted);
    }
    // 5 tokens owed (500 ms at 10/s); at 1/s with a burst of 2 they are
    // 5 s, so the next token comes at 5 + 1 − 2 = 4 s.
    set_both(
        &local,
        &remote,
        Limit::TokenBucket {
            rate: Rate::per_second(1),
            burst: 2,
        },
    );
    let expected = Said::Refused(Duration::from_secs(4));
    both_say!(there, here, 1, expected);
    clock.advance(Duration::from_secs(4) - US);
    both_say!(there, here, 1, Said::Refused(US));
    clock.advance(US);
    both_say!(there, here, 1, Said::Admitted);
    // Raised: the two tokens owed (2 s at 1/s) are 20 ms at 100/s; with a
    // burst of 3 there is room for 1 more at once, not a fresh burst of 3.
    set_both(
        &local,
        &remote,
        Limit::TokenBucket {
            rate: Rate::per_second(100),
            burst: 3,
        },
    );
    both_say!(there, here, 1, Said::Admitted);
    both_say!(there, here, 1, Said::Refused(10 * MS));
}

/// A window changed on Redis keeps its counts, each moved to the new
/// segment holding its old segment's last instant: counted no shorter.
#[tokio::test]
async fn a_window_on_redis_keeps_its_counts_when_its_segments_change() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let clock = ManualClock::new();
    // 4 a second, in 2 segments of 500 ms.
    let start = || builder(&clock).sliding_window(4, Duration::from_secs(1), 2);
    let (local, remote) = side_by_side(&server, start).await;
    let (mut here, mut there) = (local.layer(echo()), remote.layer(echo()));
    clock.advance(100 * MS);
    both_say!(there, here, 4, Said::Admitted);
    // 6 a second in 5 segments of 200 ms: the 4 admitted in 0–500 ms move
    // to the segment holding 499 ms (400–600 ms).
    set_both(
        &local,
        &remote,
        Limit::SlidingWindow {
            limit: 6,
            window: Duration::from_secs(1),
            segments: 5,
        },
    );
    // Bookings land no earlier than the latest, now counted as made at
    // 499 ms: a request is placed in the new segment of 400–600 ms, 300 ms
    // from now — in reject mode, refused for as long.
    both_say!(there, here, 2, Said::Refused(300 * MS));
    clock.advance(300 * MS);
    // 6 of 6 in segment 2, counted until it leaves the window of 6
    // segments: at 1.6 s, 1.2 s from now.
    both_say!(there, here, 2, Said::Admitted);
    both_say!(there, here, 1, Said::Refused(Duration::from_millis(1_200)));
    clock.advance(Duration::from_millis(1_200) - US);
    both_say!(there, here, 1, Said::Refused(US));
}

/// An instance still on the old numbers changes a key back, keeping its
/// debt again: during a rolling change, neither set of numbers hands out a
/// fresh burst.
#[tokio::test]
async fn instances_on_old_and_new_numbers_both_keep_the_debt() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let clock = ManualClock::new();
    let instance = || async {
        builder(&clock)
            .token_bucket(Rate::per_second(10), 10)
            .redis(server.connection().await)
            .layer_clock()
            .denial_cache(0)
            .build()
            .unwrap()
    };
    let (changed, unchanged) = (instance().await, instance().await);
    let (mut a, mut b) = (changed.layer(echo()), unchanged.layer(echo()));
    assert_eq!(ask(&mut a, 10).await, Said::Admitted);
    // A lowers the rate: 10 tokens owed at 1/s are 10 s.
    changed
        .set_limit(Limit::TokenBucket {
            rate: Rate::per_second(1),
            burst: 10,
        })
        .unwrap();
    assert_eq!(ask(&mut a, 1).await, Said::Refused(Duration::from_secs(1)));
    // B, still at 10/s, finds 10 tokens owed (10 s at 1/s): 1 s at its rate.
    assert_eq!(ask(&mut b, 1).await, Said::Refused(100 * MS));
    clock.advance(100 * MS);
    assert_eq!(ask(&mut b, 1).await, Said::Admitted);
    // Back on A's numbers: 10 tokens owed again (one refilled at 10/s, the
    // one B took), 10 s at 1/s: the next one 1 s past the burst.
    assert_eq!(ask(&mut a, 1).await, Said::Refused(Duration::from_secs(1)));
}

/// The denial cache is worked out with the numbers: a raised limit forgets
/// it, so a key refused before is not refused here by what the old numbers
/// said.
#[tokio::test]
async fn a_raised_limit_is_not_refused_by_what_the_old_numbers_cached() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let clock = ManualClock::new();
    let layer = builder(&clock)
        .token_bucket(Rate::per_second(1), 1)
        .redis(server.connection().await)
        .layer_clock()
        .build()
        .unwrap();
    let mut service = layer.layer(echo());
    assert_eq!(ask(&mut service, 1).await, Said::Admitted);
    // Refused by Redis, then from the cache without a round trip.
    assert_eq!(
        ask(&mut service, 1).await,
        Said::Refused(Duration::from_secs(1))
    );
    assert_eq!(
        ask(&mut service, 1).await,
        Said::Refused(Duration::from_secs(1))
    );
    // One token owed at 10/s is 100 ms, well within a burst of 10.
    layer
        .set_limit(Limit::TokenBucket {
            rate: Rate::per_second(10),
            burst: 10,
        })
        .unwrap();
    for _ in 0..9 {
        assert_eq!(ask(&mut service, 1).await, Said::Admitted);
    }
    assert_eq!(ask(&mut service, 1).await, Said::Refused(100 * MS));
}

/// When Redis is unavailable, the in-process fallback decides by this
/// instance's share of the new numbers; and each change is evented,
/// number by number, under the limiter's name.
#[tokio::test]
async fn the_local_fallback_takes_its_share_of_the_new_numbers_and_each_change_is_evented() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let clock = ManualClock::new();
    let events = Arc::new(Mutex::new(Vec::new()));
    let layer = builder(&clock)
        .name("api")
        .token_bucket(Rate::per_second(10), 10)
        .on_event({
            let events = Arc::clone(&events);
            move |event| {
                if let EventKind::Reconfigured { setting, old, new } = event.kind {
                    events
                        .lock()
                        .unwrap()
                        .push((event.name.to_string(), setting, old, new));
                }
            }
        })
        .redis(server.connection().await)
        .layer_clock()
        .on_unavailable(Unavailable::Local { instances: 2 })
        .build()
        .unwrap();
    layer
        .set_limit(Limit::TokenBucket {
            rate: Rate::per_second(10),
            burst: 20,
        })
        .unwrap();
    // Redis considered down: no round trip, the local share decides.
    layer.store_breaker().force_open();
    let mut service = layer.layer(echo());
    for _ in 0..10 {
        assert_eq!(ask(&mut service, 1).await, Said::Admitted);
    }
    assert!(matches!(ask(&mut service, 1).await, Said::Refused(_)));
    assert_eq!(
        *events.lock().unwrap(),
        [("api".to_owned(), "burst", 10.0, 20.0)],
        "one event, the burst's, with the whole limit's numbers"
    );
}

/// Numbers Redis cannot keep, or of another algorithm, are refused with the
/// field's name, and the layer keeps deciding by the old ones.
#[tokio::test]
async fn numbers_redis_cannot_keep_are_refused_by_field_and_change_nothing() {
    let Some(server) = RedisServer::start() else {
        return;
    };
    let clock = ManualClock::new();
    let layer = builder(&clock)
        .token_bucket(Rate::per_second(10), 10)
        .redis(server.connection().await)
        .layer_clock()
        .lease(5)
        .build()
        .unwrap();
    let field = |limit| layer.set_limit(limit).unwrap_err().field().to_owned();
    let bucket = |rate, burst| Limit::TokenBucket { rate, burst };
    assert_eq!(field(bucket(Rate::per_second(2_000_000), 10)), "rate");
    assert_eq!(field(bucket(Rate::per_second(10), 0)), "burst");
    assert_eq!(
        field(bucket(Rate::per_second(10), 4)),
        "lease",
        "a lease of 5 must fit"
    );
    assert_eq!(
        field(Limit::FixedWindow {
            limit: 5,
            window: Duration::from_secs(1)
        }),
        "algorithm"
    );
    assert_eq!(layer.limit(), bucket(Rate::per_second(10), 10));
    let mut service = layer.layer(echo());
    assert_eq!(ask(&mut service, 10).await, Said::Admitted);

    let window = builder(&clock)
        .sliding_window(5, Duration::from_secs(1), 2)
        .redis(server.connection().await)
        .build()
        .unwrap();
    let err = window
        .set_limit(Limit::SlidingWindow {
            limit: 5,
            window: Duration::from_micros(3),
            segments: 4,
        })
        .unwrap_err();
    assert_eq!(err.field(), "window");

    // Nor is a leaky bucket built on Redis: its waiters live in the process.
    let err = builder(&clock)
        .leaky_bucket(Rate::per_second(10), 50)
        .redis(server.connection().await)
        .build()
        .unwrap_err();
    assert_eq!(err.field(), "algorithm");
    assert!(
        err.rule().contains("token bucket with a burst of 1"),
        "{err}"
    );
}

/// The in-process result rounded up to Redis's microsecond.
fn in_micros(said: Said) -> Said {
    match said {
        Said::Refused(wait) => {
            Said::Refused(Duration::from_micros(wait.as_nanos().div_ceil(1_000) as u64))
        }
        said => said,
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: crate::cases(48),
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(
            "tests/it/rate_limit_redis/reconfigure.proptest-regressions",
        ))),
        ..ProptestConfig::default()
    })]

    /// The token bucket's script keeps the debt as the in-process bucket
    /// does across a change, made in process at the instant of the first
    /// decision Redis makes on the new numbers (when Redis changes the
    /// key): the same decisions, the waits the same to the microsecond
    /// Redis counts in.
    #[test]
    fn a_bucket_changed_mid_run_decides_on_redis_as_in_process(
        before in (1u64..20_000, 1u32..8),
        after in (1u64..20_000, 1u32..8),
        schedule in proptest::collection::vec((0u64..40_000, 1u32..10), 2..40),
        change_at in any::<prop::sample::Index>(),
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let Some(server) = RedisServer::start() else { return Ok(()) };
        let change_at = change_at.index(schedule.len());
        runtime.block_on(async {
            let clock = ManualClock::new();
            let bucket = |(unit_us, burst): (u64, u32)| Limit::TokenBucket {
                rate: Rate::new(1, Duration::from_micros(unit_us)),
                burst,
            };
            let local = builder(&clock).limit(bucket(before)).build().unwrap();
            let remote = builder(&clock)
                .limit(bucket(before))
                .redis(server.connection().await)
                .layer_clock()
                .build()
                .unwrap();
            let (mut here, mut there) = (local.layer(echo()), remote.layer(echo()));
            // Changed in Redis at the first decision on the new numbers; a
            // cost above the new burst is refused before asking.
            let mut pending = false;
            for (step, (advance_us, cost)) in schedule.into_iter().enumerate() {
                clock.advance(Duration::from_micros(advance_us));
                if step == change_at {
                    remote.set_limit(bucket(after)).unwrap();
                    pending = true;
                }
                if pending && cost > after.1 {
                    prop_assert_eq!(ask(&mut there, cost).await, Said::Never);
                    continue;
                }
                if pending {
                    local.set_limit(bucket(after)).unwrap();
                    pending = false;
                }
                let expected = in_micros(ask(&mut here, cost).await);
                prop_assert_eq!(ask(&mut there, cost).await, expected, "step {}", step);
            }
            Ok(())
        })?;
    }
}

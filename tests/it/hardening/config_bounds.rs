//! Every size a configuration controls is bounded when the layer is built:
//! a careless number is a `ConfigError` naming the field, never a panic, an
//! abort or gigabytes taken.

use std::time::Duration;

use palisade::{
    circuit_breaker::CircuitBreakerLayer,
    error::ConfigError,
    rate_limit::{Rate, RateLimitLayer},
};

fn keyed() -> palisade::rate_limit::RateLimitBuilder<fn(&u64) -> Option<u64>> {
    RateLimitLayer::builder().key((|key: &u64| Some(*key)) as fn(&u64) -> Option<u64>)
}

fn field(result: Result<impl Sized, ConfigError>) -> (&'static str, String) {
    let err = result.err().expect("refused");
    (err.field(), err.rule().to_owned())
}

#[test]
fn shard_counts_that_would_panic_or_abort_are_refused() {
    for shards in [1 << 63, 1 << 28, 1 << 17] {
        assert_eq!(
            field(keyed().shards(shards).build()).0,
            "shards",
            "{shards}"
        );
    }
    // More shards than keys would hold more keys than the bound.
    let (name, rule) = field(keyed().max_keys(8).shards(16).build());
    assert_eq!(name, "shards");
    assert!(rule.contains("max_keys"), "{rule}");
    assert!(keyed().max_keys(1 << 16).shards(1 << 16).build().is_ok());
}

#[test]
fn breaker_windows_are_bounded() {
    let (name, rule) = field(
        CircuitBreakerLayer::builder()
            .count_window(u32::MAX)
            .build(),
    );
    assert_eq!(name, "count_window");
    assert!(rule.contains("GiB"), "{rule}");
    assert!(
        CircuitBreakerLayer::builder()
            .count_window(1 << 20)
            .build()
            .is_ok()
    );

    let huge = CircuitBreakerLayer::builder().time_window(Duration::MAX, u32::MAX);
    assert_eq!(field(huge.build()).0, "time_window.window");
    let many = CircuitBreakerLayer::builder().time_window(Duration::from_secs(3600), u32::MAX);
    assert_eq!(field(many.build()).0, "time_window.buckets");
    let hour = CircuitBreakerLayer::builder().time_window(Duration::from_secs(3600), 3600);
    assert!(hour.build().is_ok());
    // Each bound is the largest value allowed.
    let window = |n| CircuitBreakerLayer::builder().count_window(n).build();
    assert!(window(1 << 20).is_ok());
    assert_eq!(field(window((1 << 20) + 1)).0, "count_window");
    let buckets = |n| {
        CircuitBreakerLayer::builder()
            .time_window(Duration::from_secs(3600), n)
            .build()
    };
    assert!(buckets(4096).is_ok());
    assert_eq!(field(buckets(4097)).0, "time_window.buckets");
    // A bucket is at least a nanosecond.
    let nanos = |n| {
        CircuitBreakerLayer::builder()
            .time_window(Duration::from_nanos(100), n)
            .build()
    };
    assert!(nanos(100).is_ok());
    assert_eq!(field(nanos(101)).0, "time_window.buckets");
}

#[test]
fn a_breaker_s_pushback_is_at_most_a_day() {
    let day = Duration::from_secs(86_400);
    let pushback = |max| CircuitBreakerLayer::builder().max_pushback(max).build();
    assert!(pushback(day).is_ok());
    let (name, rule) = field(pushback(day + Duration::from_nanos(1)));
    assert_eq!(name, "max_pushback");
    assert!(rule.contains("at most a day"), "{rule}");
}

#[test]
fn a_rate_is_at_most_one_token_a_nanosecond() {
    let rate = |tokens| {
        RateLimitLayer::builder()
            .token_bucket(Rate::new(tokens, Duration::from_micros(1)), 1)
            .build()
    };
    assert!(rate(1_000).is_ok());
    let (name, rule) = field(rate(1_001));
    assert_eq!(name, "rate");
    assert!(rule.contains("one token a nanosecond"), "{rule}");
}

#[test]
fn each_rate_limit_bound_is_the_largest_value_allowed() {
    let century = Duration::from_secs(100 * 365 * 24 * 3600);
    // A bucket refills in at most 100 years.
    let bucket = |burst| {
        RateLimitLayer::builder()
            .token_bucket(Rate::new(1, century), burst)
            .build()
    };
    assert!(bucket(1).is_ok());
    assert_eq!(field(bucket(2)).0, "burst");
    // A segment is at least a nanosecond.
    let segments = |n| {
        RateLimitLayer::builder()
            .sliding_window(10, Duration::from_nanos(100), n)
            .build()
    };
    assert!(segments(100).is_ok());
    assert_eq!(field(segments(101)).0, "segments");
    // A wait books at most 65 536 segments ahead: with segments of a
    // second, a wait of 65 535 s (the segment it ends in is the 65 536th).
    let wait = |secs| {
        RateLimitLayer::builder()
            .sliding_window(10, Duration::from_secs(1), 1)
            .wait_up_to(Duration::from_secs(secs))
            .build()
    };
    assert!(wait(65_535).is_ok());
    let (name, rule) = field(wait(65_536));
    assert_eq!(name, "wait_up_to");
    assert!(rule.contains("spans 65537 window segments"), "{rule}");
}

#[test]
fn a_wait_s_reservations_count_in_a_keyed_window_s_memory() {
    // 4 097 counters of a millisecond a key (256 MiB for 8 192 keys); a
    // wait of up to 4 095 ms books 4 096 more (512 MiB).
    let window = || {
        keyed()
            .sliding_window(10, Duration::from_millis(4_096), 4_096)
            .max_keys(8_192)
    };
    assert!(window().build().is_ok());
    let waiting = window().wait_up_to(Duration::from_millis(4_095));
    assert!(waiting.build().is_ok());
    let (name, rule) = field(
        window()
            .max_keys(16_384)
            .wait_up_to(Duration::from_millis(4_095))
            .build(),
    );
    assert_eq!(name, "max_keys");
    assert!(rule.contains("may take 1.0 GiB"), "{rule}");
    assert!(window().max_keys(16_384).build().is_ok());
}

#[test]
fn a_limit_that_could_take_gigabytes_is_refused_with_its_size() {
    // 100 000 keys of 4 096 segments: 3 GiB of counters.
    let segments = keyed().sliding_window(100, Duration::from_secs(1), 4096);
    let (name, rule) = field(segments.build());
    assert_eq!(name, "max_keys");
    assert!(
        rule.contains("GiB") && rule.contains("4096 segments"),
        "{rule}"
    );
    // A log of up to 10 000 entries a key, 100 000 keys: 30 GiB.
    let (name, rule) = field(keyed().sliding_log(10_000, Duration::from_secs(1)).build());
    assert_eq!(name, "max_keys");
    assert!(rule.contains("GiB"), "{rule}");
    // One shared log of 4 billion entries.
    let shared = RateLimitLayer::builder().sliding_log(u32::MAX, Duration::from_secs(1));
    assert_eq!(field(shared.build()).0, "limit");
    // A log's entry is 16 bytes, and its queue may double: 20 million
    // entries may take 640 MB, 40 million 1.28 GB.
    let log = |limit| {
        RateLimitLayer::builder()
            .sliding_log(limit, Duration::from_secs(1))
            .build()
    };
    assert!(log(20_000_000).is_ok());
    let (name, rule) = field(log(40_000_000));
    assert_eq!(name, "limit");
    assert!(rule.contains("may take 1.2 GiB"), "{rule}");
    // Sizes people use build.
    assert!(
        keyed()
            .sliding_window(100, Duration::from_secs(1), 10)
            .build()
            .is_ok()
    );
    assert!(
        keyed()
            .sliding_log(100, Duration::from_secs(1))
            .build()
            .is_ok()
    );
    assert!(
        keyed()
            .token_bucket(Rate::per_second(10), 10)
            .max_keys(10_000_000)
            .build()
            .is_ok()
    );
}

//! A flood of distinct keys against a keyed rate limit: memory stays
//! bounded, new clients are admitted, and the clients that keep sending keep
//! their limits.

use std::{
    future::Future,
    pin::pin,
    task::{Context, Poll, Waker},
    time::Duration,
};

use palisade::{
    clock::ManualClock,
    rate_limit::{Rate, RateLimitLayer},
};
use tower::{Layer, Service, service_fn};

/// Whether the call for `key` is admitted (the limiter decides at once).
fn admitted<S>(service: &mut S, key: u64) -> bool
where
    S: Service<u64>,
{
    let call = pin!(service.call(key));
    match call.poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(result) => result.is_ok(),
        Poll::Pending => unreachable!("the limiter decides at once"),
    }
}

const FLOOD: u64 = 10_000_000;
/// Honest clients: keys from here up; the flood's are below.
const HONEST: u64 = 1 << 40;

#[test]
fn ten_million_new_keys_neither_lock_out_new_clients_nor_loosen_active_ones() {
    let clock = ManualClock::new();
    // Defaults: 100 000 keys in 16 shards. One request every 10 s a client.
    let layer = RateLimitLayer::builder()
        .token_bucket(Rate::new(1, Duration::from_secs(10)), 1)
        .key(|key: &u64| Some(*key))
        .clock(clock.clone())
        .build()
        .unwrap();
    let mut service = layer.layer(service_fn(|_: u64| async { Ok::<_, std::io::Error>(()) }));

    // 100 clients that ask every second, ten times their limit; one more
    // new client every 10 s. The flood: 10 000 new keys a second for
    // 1 000 s, each key asking once.
    let steady: Vec<u64> = (HONEST..HONEST + 100).collect();
    let mut steady_admitted = vec![0u32; steady.len()];
    let mut newcomers_refused = 0;
    let mut flood_key = 0;
    for second in 0..1_000u64 {
        for (client, admissions) in steady.iter().zip(&mut steady_admitted) {
            *admissions += u32::from(admitted(&mut service, *client));
        }
        if second % 10 == 5 {
            newcomers_refused += u32::from(!admitted(&mut service, HONEST + 1_000 + second));
        }
        for _ in 0..FLOOD / 1_000 {
            assert!(
                admitted(&mut service, flood_key),
                "a new key of the flood is admitted"
            );
            flood_key += 1;
            clock.advance(Duration::from_micros(100));
        }
        assert!(layer.tracked_keys() <= 100_000);
    }
    assert_eq!(flood_key, FLOOD);
    assert_eq!(newcomers_refused, 0);
    // Admitted at 0 s, 10 s, …, 990 s: exactly their limit, no more.
    assert!(
        steady_admitted.iter().all(|&n| n == 100),
        "{steady_admitted:?}"
    );
}

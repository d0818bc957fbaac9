//! Client-side adaptive throttling in virtual time: against a dependency
//! that can take half of what it is offered, the share of requests sent
//! settles where the formula puts it, and returns to all of them within
//! the window once the dependency is well again.

use std::time::Duration;

use palisade::{
    adaptive::ThrottleLayer,
    chaos::Latency,
    clock::ManualClock,
    error::{Overloaded, RejectionKind},
    random::FastRandom,
    sim::{Interval, Load, Outcome, Phase, Report, Simulation, Upstream},
};
use tower::{BoxError, Layer, Service, ServiceExt, service_fn};

const SECOND: Duration = Duration::from_secs(1);

/// The share of the requests finished in `interval` that were sent (not
/// refused here).
fn sent(interval: &Interval) -> f64 {
    let all: u64 = interval.finished.iter().sum();
    let refused = interval.count(Outcome::Rejected(RejectionKind::Overloaded));
    (all - refused) as f64 / all as f64
}

fn mean_sent(report: &Report, seconds: std::ops::Range<usize>) -> f64 {
    let len = seconds.len() as f64;
    report.timeline()[seconds].iter().map(sent).sum::<f64>() / len
}

/// An upstream serving 50 calls at once in 100 ms (500 a second) and
/// refusing at once what finds them all busy, offered 1000 a second: it
/// refuses half of what it is sent, until 40 s, when it gets four times
/// the capacity. A throttle with `k` over a 10 s window in front.
fn run(k: f64) -> (Report, f64) {
    let clock = ManualClock::new();
    let upstream = Upstream::<u64, _>::builder(clock.clone())
        .latency(Latency::Fixed(Duration::from_millis(100)))
        .capacity(50)
        .queue(1)
        .phase(SECOND * 40..SECOND * 120, Phase::new().capacity(200))
        .seed(3)
        .build()
        .unwrap();
    let throttle = ThrottleLayer::builder()
        .k(k)
        .window(SECOND * 10)
        .clock(clock.clone())
        .random(FastRandom::seeded(4))
        .build()
        .unwrap();
    let watched = throttle.clone();
    let simulation = Simulation::builder(clock.clone(), Load::Poisson { rate: 1000.0 })
        .duration(SECOND * 60)
        .seed(5)
        .probe("refusal probability", move || watched.refusal_probability())
        .build()
        .unwrap();
    let report = clock.block_on(simulation.run(throttle.layer(upstream), |n| n));
    let probability = report.timeline()[39].probes[0];
    (report, probability)
}

#[test]
fn the_share_sent_settles_where_the_formula_puts_it_and_comes_back_within_the_window() {
    // k = 1.5 against a dependency that accepts 500 of 1000 a second: the
    // client settles where requests = 1.5 × accepts, sending
    // 1.5 × 500 = 750 a second — 75 %, a refusal probability of 0.25.
    let (report, probability) = run(1.5);
    let settled = mean_sent(&report, 20..40);
    assert!((settled - 0.75).abs() < 0.03, "sent {settled}");
    assert!(
        (probability - 0.25).abs() < 0.05,
        "refusal probability {probability}"
    );
    // Well again at 40 s: within the 10 s window, everything is sent.
    let well = mean_sent(&report, 50..60);
    assert!(well > 0.99, "sent {well} after the window");
    assert!(report.timeline()[50].probes[0] < 0.01);

    // k = 2: the dependency may refuse half before the client holds back:
    // all is sent, and half refused there.
    let (report, probability) = run(2.0);
    assert!(mean_sent(&report, 20..40) > 0.97);
    assert!(probability < 0.03, "{probability}");
}

#[test]
fn a_dependency_that_accepts_nothing_is_sent_less_and_less() {
    let clock = ManualClock::new();
    let throttle = ThrottleLayer::builder()
        .clock(clock.clone())
        .random(FastRandom::seeded(9))
        .build()
        .unwrap();
    let mut service = throttle.layer(service_fn(|_: u32| async {
        Err::<u32, BoxError>("refused".into())
    }));
    let mut sent = 0;
    for request in 0..10_000 {
        let err = clock
            .block_on(async { service.ready().await?.call(request).await })
            .unwrap_err();
        if !err.is::<Overloaded>() {
            sent += 1;
        }
        // The probability is the formula's, on the counts so far.
        let (requests, accepts) = (throttle.requests() as f64, throttle.accepts() as f64);
        let expected = ((requests - 2.0 * accepts) / (requests + 1.0)).max(0.0);
        assert!((throttle.refusal_probability() - expected).abs() < 1e-12);
    }
    // Each request n is sent with probability 1/(n + 1): about ln 10 000.
    assert!((3..=30).contains(&sent), "{sent} sent");
}

#[test]
fn a_local_refusal_is_an_overloaded_rejection_named_for_the_layer() {
    let clock = ManualClock::new();
    let throttle = ThrottleLayer::builder()
        .name("search")
        .k(1.0)
        .clock(clock.clone())
        .random(FastRandom::seeded(2))
        .build()
        .unwrap();
    let service = throttle.layer(service_fn(|_: u32| async {
        Err::<u32, BoxError>("refused".into())
    }));
    let refusal = (0..100)
        .map(|n| clock.block_on(service.clone().oneshot(n)).unwrap_err())
        .find(|err| err.is::<Overloaded>())
        .expect("refused here once the dependency refuses");
    let rejection = palisade::error::Rejection::find(&*refusal).unwrap();
    assert_eq!(rejection.kind(), RejectionKind::Overloaded);
    assert_eq!(rejection.name(), "search");
}

#[test]
fn bad_numbers_are_refused_with_the_field_named() {
    let builder = ThrottleLayer::builder;
    assert_eq!(builder().k(0.9).build().unwrap_err().field(), "k");
    assert_eq!(builder().k(f64::NAN).build().unwrap_err().field(), "k");
    assert_eq!(
        builder()
            .window(Duration::from_nanos(5))
            .build()
            .unwrap_err()
            .field(),
        "window"
    );
    assert_eq!(
        builder().window(Duration::MAX).build().unwrap_err().field(),
        "window"
    );
}

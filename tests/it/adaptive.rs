//! The adaptive limit: its algorithms' cores on any sequence of samples,
//! the layer (admission, samples, events), and — on a model upstream in
//! virtual time — each algorithm finding the capacity, following it down
//! and back up, and keeping the goodput where a fixed bulkhead collapses.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use palisade::{
    adaptive::{AdaptiveLayer, Aimd, Algorithm, Gradient2, Sample, Vegas},
    clock::{Clock, Instant, ManualClock},
    error::BulkheadFull,
    observe::EventKind,
    sim::{Outcome, Report},
};
use proptest::prelude::*;
use tower::{BoxError, Layer, Service, ServiceExt, service_fn};

#[allow(dead_code, unreachable_pub)]
#[path = "../../examples/adaptive.rs"]
mod example;

use example::{CAPACITY, HALVED, SECONDS};

const MS: Duration = Duration::from_millis(1);

/// The limit read at the end of each second.
fn limits(report: &Report) -> Vec<u32> {
    report
        .timeline()
        .iter()
        .map(|interval| interval.probes[0] as u32)
        .collect()
}

/// The seconds from which the limit stays within 25 % of `capacity` to the
/// end of `seconds`, and the calls answered (samples) before it got there.
fn settled(report: &Report, seconds: std::ops::Range<usize>, capacity: u32) -> (usize, u64) {
    let limits = limits(report);
    let band = f64::from(capacity) * 0.75..=f64::from(capacity) * 1.25;
    let from = (seconds.start..seconds.end)
        .rev()
        .take_while(|&s| band.contains(&f64::from(limits[s])))
        .last()
        .unwrap_or(seconds.end);
    let samples = report.timeline()[seconds.start..from]
        .iter()
        .map(|interval| interval.finished.iter().sum::<u64>())
        .sum();
    (from, samples)
}

/// Each algorithm, from a limit of 200 (twice the capacity), settles within
/// 25 % of the capacity, follows it to half, and back: the number of calls
/// answered before it settles in each phase is what the docs quote.
fn finds_the_capacity<A: Algorithm>(name: &str, algorithm: A) {
    let report = example::adaptive(algorithm);
    let limits = limits(&report);
    let (full, half) = (CAPACITY, CAPACITY / 2);
    let phases = [
        (0..HALVED.start as usize, full),
        (HALVED.start as usize..HALVED.end as usize, half),
        (HALVED.end as usize..SECONDS as usize, full),
    ];
    for (seconds, capacity) in phases {
        let (from, samples) = settled(&report, seconds.clone(), capacity);
        // Settled within 6 of the 10 seconds (about 60 round trips), and
        // for good.
        assert!(
            from <= seconds.start + 6,
            "{name}: limits {limits:?} not within 25 % of {capacity} in {seconds:?} from its 6th second"
        );
        println!("{name}: within 25 % of {capacity} from second {from}, after {samples} calls");
    }
}

#[test]
fn aimd_finds_the_capacity_follows_it_down_and_back_up() {
    finds_the_capacity("AIMD", example::aimd());
}

#[test]
fn vegas_finds_the_capacity_follows_it_down_and_back_up() {
    finds_the_capacity("Vegas", example::vegas());
}

#[test]
fn gradient2_finds_the_capacity_follows_it_down_and_back_up() {
    finds_the_capacity("Gradient2", example::gradient2());
}

#[test]
fn under_three_times_the_load_the_adaptive_limit_keeps_the_goodput_a_fixed_bulkhead_loses() {
    let best = f64::from(CAPACITY) * 10.0; // 100 at once, 100 ms each
    for (name, report) in [
        ("AIMD", example::adaptive(example::aimd())),
        ("Vegas", example::adaptive(example::vegas())),
        ("Gradient2", example::adaptive(example::gradient2())),
    ] {
        let goodput = example::goodput(&report, 5..10);
        assert!(goodput >= 0.9 * best, "{name}: {goodput}/s");
        let halved = example::goodput(&report, 15..20);
        assert!(
            halved >= 0.9 * best / 2.0,
            "{name} at half capacity: {halved}/s"
        );
    }
    // A bulkhead at 4× the capacity: its calls wait past their deadline,
    // the upstream serves calls nobody waits for any more.
    let fixed = example::fixed(CAPACITY * 4);
    let goodput = example::goodput(&fixed, 5..10);
    assert!(goodput < 0.1 * best, "bulkhead of 4×: {goodput}/s");
    assert!(fixed.count(Outcome::Rejected(palisade::error::RejectionKind::Elapsed)) > 10_000);
}

/// An algorithm that records what it is given, and holds the limit it is
/// told.
#[derive(Clone, Default)]
struct Recorder {
    samples: Arc<Mutex<Vec<(Sample, Instant)>>>,
    limit: Arc<Mutex<u32>>,
}

impl Algorithm for Recorder {
    fn limit(&self) -> u32 {
        (*self.limit.lock().unwrap()).max(1)
    }

    fn update(&mut self, sample: &Sample, now: Instant) -> u32 {
        self.samples.lock().unwrap().push((*sample, now));
        self.limit()
    }
}

#[test]
fn each_sample_is_the_call_s_round_trip_in_flight_count_and_outcome() {
    let clock = ManualClock::new();
    let recorder = Recorder::default();
    *recorder.limit.lock().unwrap() = 2;
    let layer = AdaptiveLayer::builder(recorder.clone())
        .clock(clock.clone())
        .build()
        .unwrap();
    let service = layer.layer(service_fn({
        let clock = clock.clone();
        move |millis: u64| {
            let sleep = clock.sleep(MS * millis as u32);
            async move {
                sleep.await;
                if millis == 30 {
                    Err::<u64, BoxError>("failed".into())
                } else {
                    Ok(millis)
                }
            }
        }
    }));
    let results = clock.block_on(async {
        let (a, b, c) = tokio::join!(
            service.clone().oneshot(10),
            service.clone().oneshot(30),
            service.clone().oneshot(5), // the limit of 2 is reached: refused
        );
        (a.unwrap(), b.unwrap_err().to_string(), c.unwrap_err())
    });
    assert_eq!((results.0, results.1.as_str()), (10, "failed"));
    assert!(results.2.is::<BulkheadFull>(), "{}", results.2);
    let samples = recorder.samples.lock().unwrap().clone();
    let start = Instant::ZERO;
    assert_eq!(
        samples,
        [
            (
                Sample {
                    rtt: MS * 10,
                    in_flight: 1,
                    dropped: false
                },
                start + MS * 10
            ),
            (
                Sample {
                    rtt: MS * 30,
                    in_flight: 2,
                    dropped: true
                },
                start + MS * 30
            ),
        ]
    );
}

#[test]
fn one_call_in_n_is_a_sample_and_the_limit_moves_the_bound_with_an_event() {
    let clock = ManualClock::new();
    let recorder = Recorder::default();
    *recorder.limit.lock().unwrap() = 10;
    let events = Arc::new(Mutex::new(Vec::new()));
    let layer = AdaptiveLayer::builder(recorder.clone())
        .name("search")
        .sample_every(4)
        .on_event({
            let events = Arc::clone(&events);
            move |event| {
                if let EventKind::LimitChanged { limit } = event.kind {
                    events.lock().unwrap().push(limit);
                }
            }
        })
        .clock(clock.clone())
        .build()
        .unwrap();
    assert_eq!(*events.lock().unwrap(), [10], "the initial limit, reported");
    let mut service = layer.layer(service_fn(|x: u32| async move { Ok::<_, BoxError>(x) }));
    for call in 0..12 {
        if call == 6 {
            *recorder.limit.lock().unwrap() = 1;
        }
        clock
            .block_on(async { service.ready().await?.call(call).await })
            .unwrap();
    }
    // Calls 0, 4 and 8 were samples; the one after the change moved it.
    assert_eq!(recorder.samples.lock().unwrap().len(), 3);
    assert_eq!(layer.limit(), 1);
    assert_eq!(*events.lock().unwrap(), [10, 1]);
    // The bound followed: one call at a time now.
    let first = service.call(100);
    let refused = clock.block_on(service.call(101)).unwrap_err();
    assert!(refused.is::<BulkheadFull>());
    assert_eq!(Rejection::name_of(&refused), "search");
    drop(first);
}

/// The name of the layer that refused.
struct Rejection;

impl Rejection {
    fn name_of(err: &BoxError) -> String {
        palisade::error::Rejection::find(&**err)
            .map(|rejection| rejection.name().to_owned())
            .unwrap_or_default()
    }
}

#[test]
fn bad_numbers_are_refused_with_the_field_named() {
    fn field<A>(result: Result<AdaptiveLayer<A>, palisade::error::ConfigError>) -> &'static str {
        result.map(|_| ()).unwrap_err().field()
    }
    assert_eq!(
        field(AdaptiveLayer::builder(Aimd::new(5).bounds(0, 10)).build()),
        "min"
    );
    assert_eq!(
        field(AdaptiveLayer::builder(Aimd::new(5).bounds(10, 5)).build()),
        "max"
    );
    assert_eq!(
        field(AdaptiveLayer::builder(Aimd::new(50).bounds(1, 10)).build()),
        "initial"
    );
    assert_eq!(
        field(AdaptiveLayer::builder(Aimd::new(5).backoff(1.0)).build()),
        "backoff"
    );
    assert_eq!(
        field(AdaptiveLayer::builder(Aimd::new(5).backoff(0.0)).build()),
        "backoff"
    );
    assert_eq!(
        field(AdaptiveLayer::builder(Aimd::new(5).timeout(Duration::ZERO)).build()),
        "timeout"
    );
    assert_eq!(
        field(AdaptiveLayer::builder(Vegas::new(5).smoothing(0.0)).build()),
        "smoothing"
    );
    assert_eq!(
        field(AdaptiveLayer::builder(Vegas::new(5).probe(Duration::ZERO)).build()),
        "probe"
    );
    assert_eq!(
        field(AdaptiveLayer::builder(Gradient2::new(5).tolerance(0.9)).build()),
        "tolerance"
    );
    assert_eq!(
        field(AdaptiveLayer::builder(Gradient2::new(5).long_window(3)).build()),
        "long_window"
    );
    assert_eq!(
        field(AdaptiveLayer::builder(Aimd::new(5)).sample_every(0).build()),
        "sample_every"
    );
    assert_eq!(
        field(AdaptiveLayer::builder(Aimd::new(5)).queue(0, MS).build()),
        "queue.max_waiting"
    );
    // The bounds themselves are accepted: a limit pinned to one value.
    assert!(
        AdaptiveLayer::builder(Aimd::new(5).bounds(5, 5))
            .build()
            .is_ok()
    );
}

/// Any sample: latencies from none to an hour (and exactly the 500 ms
/// timeout of the AIMD rule's test), any in-flight count, dropped or not; a
/// moment later than the last.
fn samples() -> impl Strategy<Value = Vec<(Sample, Duration)>> {
    let rtt = prop_oneof![
        Just(Duration::ZERO),
        Just(MS * 500),
        (0u64..5_000_000_000).prop_map(Duration::from_nanos),
        (0u64..3_600).prop_map(Duration::from_secs),
    ];
    let in_flight = prop_oneof![Just(0u32), Just(u32::MAX), 0u32..2_000];
    let step = (0u64..2_000_000_000).prop_map(Duration::from_nanos);
    proptest::collection::vec(
        (rtt, in_flight, any::<bool>(), step).prop_map(|(rtt, in_flight, dropped, step)| {
            (
                Sample {
                    rtt,
                    in_flight,
                    dropped,
                },
                step,
            )
        }),
        1..300,
    )
}

/// Feeds `samples` to `algorithm`; the limit stays within `min..=max`.
fn stays_within<A: Algorithm>(
    mut algorithm: A,
    min: u32,
    max: u32,
    samples: &[(Sample, Duration)],
) {
    algorithm.check().unwrap();
    let mut now = Instant::ZERO;
    for (sample, step) in samples {
        now = now.saturating_add(*step);
        let limit = algorithm.update(sample, now);
        assert_eq!(limit, algorithm.limit());
        assert!(
            (min..=max).contains(&limit),
            "{limit} outside {min}..={max}"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(crate::cases(256)))]

    #[test]
    fn aimd_s_limit_stays_within_its_bounds(
        samples in samples(),
        (min, max) in (1u32..50).prop_flat_map(|min| (Just(min), min..5_000)),
        backoff in 0.01f64..0.99,
        timeout in proptest::option::of(1u64..10_000),
    ) {
        let mut aimd = Aimd::new(min).bounds(min, max).backoff(backoff);
        if let Some(timeout) = timeout {
            aimd = aimd.timeout(MS * timeout as u32);
        }
        stays_within(aimd, min, max, &samples);
    }

    #[test]
    fn vegas_s_limit_stays_within_its_bounds(
        samples in samples(),
        (min, max) in (1u32..50).prop_flat_map(|min| (Just(min), min..5_000)),
        smoothing in 0.01f64..=1.0,
        probe in 1u64..100_000,
    ) {
        let vegas = Vegas::new(max).bounds(min, max).smoothing(smoothing).probe(MS * probe as u32);
        stays_within(vegas, min, max, &samples);
    }

    #[test]
    fn gradient2_s_limit_stays_within_its_bounds(
        samples in samples(),
        (min, max) in (1u32..50).prop_flat_map(|min| (Just(min), min..5_000)),
        smoothing in 0.01f64..=1.0,
        tolerance in 1.0f64..4.0,
        long_window in 10u32..2_000,
        queue in 0u32..100,
    ) {
        let gradient = Gradient2::new(min)
            .bounds(min, max)
            .smoothing(smoothing)
            .tolerance(tolerance)
            .long_window(long_window)
            .queue(queue);
        stays_within(gradient, min, max, &samples);
    }

    /// AIMD against its rule, written plainly: once per round trip, a drop
    /// (or a call past the timeout) backs off, a call with half the limit
    /// in use adds one.
    #[test]
    fn aimd_follows_its_rule(samples in samples(), backoff in 0.1f64..0.95) {
        let timeout = MS * 500;
        let mut aimd = Aimd::new(100).bounds(1, 1_000).backoff(backoff).timeout(timeout);
        let (mut limit, mut changed): (u32, Option<Instant>) = (100, None);
        let mut now = Instant::ZERO;
        for (sample, step) in &samples {
            now = now.saturating_add(*step);
            let started = now.saturating_sub(sample.rtt);
            if changed.is_none_or(|at| started >= at) {
                let next = if sample.dropped || sample.rtt > timeout {
                    ((f64::from(limit) * backoff) as u32).min(limit - 1).max(1)
                } else if u64::from(sample.in_flight) * 2 >= u64::from(limit) {
                    (limit + 1).min(1_000)
                } else {
                    limit
                };
                if next != limit {
                    (limit, changed) = (next, Some(now));
                }
            }
            prop_assert_eq!(aimd.update(sample, now), limit);
        }
    }
}

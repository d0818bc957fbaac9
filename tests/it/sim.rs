//! The simulation: the model upstream (capacity, queue, phases, faults),
//! the load driver (open and closed, drain, probes, repeatable runs), and
//! "The Tail at Scale" in virtual time, hedged and not.

use std::time::Duration;

use palisade::{
    chaos::{InjectedFault, Latency},
    clock::{Clock, ManualClock, TokioClock},
    error::RejectionKind,
    sim::{Load, Outcome, Phase, Refused, Report, Simulation, Upstream},
    timeout::TimeoutLayer,
};
use tower::{BoxError, Layer, Service, ServiceExt};

#[allow(dead_code, unreachable_pub)]
#[path = "../../examples/tail_at_scale.rs"]
mod tail_at_scale;

use tail_at_scale::{Case, Hedging};

const MS: Duration = Duration::from_millis(1);
const SECOND: Duration = Duration::from_secs(1);

fn simulation(clock: &ManualClock, load: Load, seconds: u64) -> Simulation<ManualClock> {
    Simulation::builder(clock.clone(), load)
        .duration(SECOND * seconds as u32)
        .build()
        .unwrap()
}

#[test]
fn hedging_at_the_p95_brings_the_tail_of_stragglers_within_a_few_medians() {
    // 2 % of calls take 100× the median (the upstream is what it claims).
    let plain = tail_at_scale::palisade_row(Case::Stragglers, Hedging::None);
    let p50 = plain.report.latency(0.5).unwrap();
    assert_eq!(p50.as_millis(), 10);
    assert!(
        plain.report.latency(0.99).unwrap() >= p50 * 99,
        "{}",
        plain.report
    );
    assert_eq!(plain.extra, 0.0);

    let hedged = tail_at_scale::palisade_row(Case::Stragglers, Hedging::AtP95);
    let report = &hedged.report;
    // A minute at 500 a second, at random.
    assert!(report.sent().abs_diff(30_000) < 600, "{}", report.sent());
    assert_eq!(report.count(Outcome::Ok), report.sent(), "{report}");
    let p50 = report.latency(0.5).unwrap();
    assert!(report.latency(0.99).unwrap() <= p50 * 3, "{report}");
    assert!(report.latency(0.999).unwrap() <= p50 * 10, "{report}");
    assert!(hedged.extra <= 0.06, "{} extra", hedged.extra);
    // Hedging at the p95 hedges about the slowest 5 %, no fewer than the
    // 2 % of stragglers.
    assert!(hedged.extra >= 0.02, "{} extra", hedged.extra);
}

#[test]
fn in_an_outage_the_budget_bounds_the_extra_requests() {
    // Every call 1 s, a hedge after 20 ms: unbounded, every request would be
    // sent twice.
    let fixed = tail_at_scale::palisade_row(Case::Outage, Hedging::After20ms);
    let sent = fixed.report.sent() as f64;
    let bound = (0.1 * sent + 20.0) / sent;
    assert!(fixed.extra <= bound, "{} extra, bound {bound}", fixed.extra);
    assert!(
        fixed.extra >= 0.09,
        "the budget is what binds: {}",
        fixed.extra
    );
    // At the p95, the delay follows the outage's latencies, and few are.
    let quantile = tail_at_scale::palisade_row(Case::Outage, Hedging::AtP95);
    assert!(quantile.extra <= bound, "{}", quantile.extra);
    assert!(quantile.extra < fixed.extra / 2.0, "{}", quantile.extra);
}

#[test]
fn a_run_is_repeatable_to_the_request_for_a_seed() {
    let run = |seed: u64| {
        let clock = ManualClock::new();
        let upstream = Upstream::<u64, _>::builder(clock.clone())
            .latency(Latency::Exponential { mean: 20 * MS })
            .stragglers(0.05, Latency::Fixed(200 * MS))
            .errors(0.1)
            .capacity(4)
            .queue(8)
            .seed(seed)
            .build()
            .unwrap();
        let timeout = TimeoutLayer::builder(100 * MS)
            .clock(clock.clone())
            .build()
            .unwrap();
        let simulation = Simulation::builder(clock.clone(), Load::Poisson { rate: 150.0 })
            .duration(SECOND * 20)
            .seed(seed)
            .build()
            .unwrap();
        clock.block_on(simulation.run(timeout.layer(upstream), |n| n))
    };
    let first = run(1);
    assert_eq!(first, run(1));
    assert_ne!(first, run(2));
    // Every kind of outcome this stack can give, and each request once.
    for outcome in [
        Outcome::Ok,
        Outcome::Failed,
        Outcome::Rejected(RejectionKind::Elapsed),
    ] {
        assert!(first.count(outcome) > 0, "{outcome}: {first}");
    }
    let counted: u64 = Outcome::ALL.iter().map(|&o| first.count(o)).sum();
    assert_eq!(counted, first.sent());
}

#[test]
fn calls_beyond_the_capacity_wait_in_order_and_beyond_the_queue_are_refused() {
    let clock = ManualClock::new();
    let upstream = Upstream::builder(clock.clone())
        .latency(Latency::Fixed(10 * MS))
        .capacity(2)
        .queue(1)
        .build()
        .unwrap();
    let results = clock.block_on(async {
        // Four calls at once, each a task of its own (`join!` polls them
        // together, as an executor would).
        let call = |n: u32| {
            let (mut upstream, clock) = (upstream.clone(), clock.clone());
            async move {
                let result: Result<u32, BoxError> = upstream.ready().await.unwrap().call(n).await;
                (
                    result.map_err(|err| err.is::<Refused>()),
                    clock.now().since_epoch(),
                )
            }
        };
        let (a, b, c, d) = tokio::join!(call(0), call(1), call(2), call(3));
        vec![a, b, c, d]
    });
    assert_eq!(
        results,
        [
            (Ok(0), 10 * MS),
            (Ok(1), 10 * MS),
            (Ok(2), 20 * MS),            // waited for a place, then served
            (Err(true), Duration::ZERO), // the queue was full: refused at once
        ]
    );
    assert_eq!(upstream.calls(), 4);
}

#[test]
fn a_phase_changes_the_upstream_for_its_time_only() {
    let clock = ManualClock::new();
    let upstream = Upstream::<u64, _>::builder(clock.clone())
        .latency(Latency::Fixed(10 * MS))
        .phase(SECOND * 2..SECOND * 4, Phase::new().slower(10.0))
        .phase(SECOND * 6..SECOND * 7, Phase::new().errors(1.0))
        .build()
        .unwrap();
    let report =
        clock.block_on(simulation(&clock, Load::Even { rate: 100.0 }, 10).run(upstream, |n| n));
    let timeline = report.timeline();
    assert_eq!(report.sent(), 1000);
    for (second, interval) in timeline.iter().enumerate().take(10) {
        let expected = match second {
            // Calls sent from 2 s to 4 s take 100 ms (the last of them
            // finishing in second 4).
            2..=4 => Some(100 * MS),
            _ => Some(10 * MS),
        };
        assert_eq!(interval.max, expected, "second {second}");
        // Calls sent from 6 s to 7 s fail after their 10 ms (the one sent
        // at 6 s finishing at 6.01 s, the last at 7.0 s).
        let failed = interval.count(Outcome::Failed);
        assert_eq!(failed, if second == 6 { 100 } else { 0 }, "second {second}");
    }
    assert_eq!(report.count(Outcome::Failed), 100);
    assert_eq!(report.latency_of(Outcome::Ok, 1.0), Some(100 * MS));
}

#[test]
fn a_closed_load_sends_when_answered() {
    let clock = ManualClock::new();
    let upstream = Upstream::<u64, _>::builder(clock.clone())
        .latency(Latency::Fixed(10 * MS))
        .build()
        .unwrap();
    let load = Load::Closed {
        clients: 4,
        think: 15 * MS,
    };
    let report = clock.block_on(simulation(&clock, load, 1).run(upstream.clone(), |n| n));
    // Each client: a request every 25 ms, the last sent at 975 ms.
    assert_eq!(report.sent(), 4 * 40);
    assert_eq!(report.count(Outcome::Ok), 160);
    assert_eq!(upstream.calls(), 160);
    // The last answers came at 985 ms; their clients' pause ended at 1 s,
    // and they stopped.
    assert_eq!(report.elapsed(), SECOND);
}

#[test]
fn what_is_unanswered_after_the_drain_is_unfinished() {
    let clock = ManualClock::new();
    let upstream = Upstream::<u64, _>::builder(clock.clone())
        .latency(Latency::Fixed(10 * MS))
        .hangs(1.0)
        .build()
        .unwrap();
    let simulation = Simulation::builder(clock.clone(), Load::Even { rate: 10.0 })
        .duration(SECOND)
        .drain(SECOND * 5)
        .build()
        .unwrap();
    let report = clock.block_on(simulation.run(upstream.clone(), |n| n));
    assert_eq!(report.count(Outcome::Unfinished), 10);
    assert_eq!(report.elapsed(), SECOND * 6);
    // The first was sent at 0 and waited the whole 6 s; the last at 900 ms.
    assert_eq!(
        report.latency_of(Outcome::Unfinished, 1.0),
        Some(SECOND * 6)
    );
    assert_eq!(report.latency_of(Outcome::Unfinished, 0.0), Some(5100 * MS));
    assert_eq!(report.latency(0.5), None, "none answered");
    // Dropped, they left the upstream.
    assert_eq!(upstream.in_flight(), 0);
    assert!(report.to_string().contains("unfinished"), "{report}");
}

#[test]
fn probes_are_read_at_the_end_of_every_interval() {
    let clock = ManualClock::new();
    let upstream = Upstream::<u64, _>::builder(clock.clone())
        .latency(Latency::Fixed(150 * MS))
        .build()
        .unwrap();
    let (watched, now) = (upstream.clone(), clock.clone());
    let simulation = Simulation::builder(clock.clone(), Load::Even { rate: 20.0 })
        .duration(SECOND)
        .interval(100 * MS)
        .probe("time", move || now.now().since_epoch().as_secs_f64())
        .probe("in flight", move || watched.in_flight() as f64)
        .build()
        .unwrap();
    let report = clock.block_on(simulation.run(upstream, |n| n));
    assert_eq!(report.probes(), ["time", "in flight"]);
    let timeline = report.timeline();
    // Ten intervals of load, then the last answers at 1.1 s.
    assert_eq!(timeline.len(), 11);
    for (i, interval) in timeline.iter().enumerate() {
        assert_eq!(interval.start, 100 * MS * i as u32);
        let read_at = (interval.start + interval.length).as_secs_f64();
        assert!((interval.probes[0] - read_at).abs() < 1e-9, "{interval:?}");
    }
    // A call every 50 ms, each 150 ms: three in flight once under way.
    assert_eq!(timeline[5].probes[1], 3.0);
    assert_eq!(timeline[10].probes[1], 0.0);
}

#[test]
fn on_tokio_s_paused_time_a_simulation_sees_what_it_sees_on_a_manual_clock_to_the_millisecond() {
    // (No random draws: tokio may wake timers due at one instant in
    // another order than a `ManualClock`, which would give the draws to
    // other requests.)
    fn run<C: Clock>(clock: C) -> impl Future<Output = Report> {
        let upstream = Upstream::<u64, _>::builder(clock.clone())
            .latency(Latency::Fixed(70 * MS))
            .capacity(3)
            .phase(SECOND * 3..SECOND * 5, Phase::new().errors(1.0))
            .phase(SECOND * 6..SECOND * 7, Phase::new().slower(2.0))
            .build()
            .unwrap();
        let simulation = Simulation::builder(clock, Load::Even { rate: 50.0 })
            .duration(SECOND * 8)
            .build()
            .unwrap();
        simulation.run(upstream, |n| n)
    }
    let clock = ManualClock::new();
    let manual = clock.block_on(run(clock.clone()));
    let tokio = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap()
        .block_on(run(TokioClock::new()));
    // The same outcomes; the latencies within tokio's timer resolution
    // (it rounds each deadline up to its next millisecond tick, and a queue
    // adds up the roundings).
    for outcome in Outcome::ALL {
        assert_eq!(
            manual.count(outcome),
            tokio.count(outcome),
            "{manual}\n{tokio}"
        );
    }
    for quantile in [0.5, 0.9, 0.99, 1.0] {
        let (m, t) = (
            manual.latency(quantile).unwrap(),
            tokio.latency(quantile).unwrap(),
        );
        assert!(m.abs_diff(t) <= m / 40, "p{quantile}: {m:?} vs {t:?}");
    }
    assert!(manual.count(Outcome::Failed) > 0);
    // Capacity 3 for 3.5 calls' worth of work: the queue grows.
    assert!(manual.latency(0.99).unwrap() > SECOND, "{manual}");
}

#[test]
fn bad_numbers_are_refused_with_the_field_named() {
    let clock = ManualClock::new();
    let builder = || Upstream::<u64, _>::builder(clock.clone());
    let field = |result: Result<Upstream<u64, ManualClock>, palisade::error::ConfigError>| {
        result.unwrap_err().field()
    };
    assert_eq!(field(builder().capacity(0).build()), "capacity");
    assert_eq!(field(builder().queue(0).build()), "queue");
    assert_eq!(field(builder().errors(1.5).build()), "errors");
    assert_eq!(
        field(
            builder()
                .stragglers(
                    0.5,
                    Latency::Exponential {
                        mean: Duration::ZERO
                    }
                )
                .build()
        ),
        "stragglers"
    );
    assert_eq!(
        field(builder().latency(Latency::Fixed(Duration::MAX)).build()),
        "latency"
    );
    let phases = [
        builder().phase(SECOND..SECOND, Phase::new()),
        builder()
            .phase(SECOND..SECOND * 3, Phase::new())
            .phase(SECOND * 2..SECOND * 4, Phase::new()),
        builder().phase(SECOND..SECOND * 2, Phase::new().slower(0.0)),
    ];
    for phase in phases {
        assert_eq!(field(phase.build()), "phases");
    }
    let err = builder()
        .errors(0.5)
        .phase(SECOND..SECOND * 2, Phase::new().hangs(0.6))
        .build()
        .unwrap_err();
    assert_eq!(err.field(), "hangs");
    assert!(err.to_string().contains("phase 0"), "{err}");
    assert_eq!(
        field(
            builder()
                .phase(SECOND..SECOND * 2, Phase::new().capacity(0))
                .build()
        ),
        "capacity"
    );

    let simulation = |load| Simulation::builder(clock.clone(), load);
    let load_err = |load| simulation(load).build().unwrap_err().field();
    assert_eq!(load_err(Load::Even { rate: f64::NAN }), "load");
    assert_eq!(load_err(Load::Poisson { rate: -1.0 }), "load");
    assert_eq!(
        load_err(Load::Closed {
            clients: 0,
            think: MS
        }),
        "load"
    );
    let even = Load::Even { rate: 1.0 };
    assert_eq!(
        simulation(even)
            .duration(Duration::ZERO)
            .build()
            .unwrap_err()
            .field(),
        "duration"
    );
    assert_eq!(
        simulation(even)
            .interval(Duration::ZERO)
            .build()
            .unwrap_err()
            .field(),
        "interval"
    );
    assert_eq!(
        simulation(even)
            .drain(Duration::MAX)
            .build()
            .unwrap_err()
            .field(),
        "drain"
    );
}

#[test]
fn the_upstream_s_failures_are_failures_not_rejections() {
    let clock = ManualClock::new();
    let upstream = Upstream::<u64, _>::builder(clock.clone())
        .errors(1.0)
        .build()
        .unwrap();
    let err = clock.block_on(upstream.clone().oneshot(1)).unwrap_err();
    assert!(err.is::<InjectedFault>(), "{err}");
    let report =
        clock.block_on(simulation(&clock, Load::Even { rate: 10.0 }, 1).run(upstream, |n| n));
    assert_eq!(report.count(Outcome::Failed), 10);
}

#[cfg(feature = "plot")]
#[test]
fn the_chart_draws_each_outcome_and_probe_over_the_run() {
    let clock = ManualClock::new();
    let upstream = Upstream::<u64, _>::builder(clock.clone())
        .phase(SECOND * 2..SECOND * 3, Phase::new().errors(1.0))
        .build()
        .unwrap();
    let watched = upstream.clone();
    let simulation = Simulation::builder(clock.clone(), Load::Even { rate: 20.0 })
        .duration(SECOND * 5)
        .probe("upstream calls so far", move || watched.calls() as f64)
        .build()
        .unwrap();
    let report = clock.block_on(simulation.run(upstream, |n| n));
    let svg = report.svg();
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    for text in [
        "latency of the answers (ms)",
        "p50",
        "p99",
        "requests finished per second, by outcome",
        "ok",
        "failed",
        "probes",
        "upstream calls so far",
    ] {
        assert!(svg.contains(&format!("\n{text}\n")), "{text} missing");
    }
    // Each series drawn once and in the legend: p50 blue, p99 and failed
    // red, ok green.
    for (color, lines) in [("#0000FF", 2), ("#FF0000", 4), ("#00963C", 2)] {
        let stroke = format!("stroke=\"{color}\"");
        assert_eq!(svg.matches(&stroke).count(), lines, "{color}");
    }
}

//! What does a stack do when its dependency slows down 10×? A simulation in
//! virtual time: an upstream answering in 20–60 ms with room for 64 calls
//! at once, ten times slower from second 20 to second 50, behind a
//! timeout, a retry, a circuit breaker and a bulkhead, under 200 requests a
//! second at random. Two minutes of traffic take a fraction of a second;
//! the same seed gives the same report.
//!
//! Run with `cargo run --release --example simulate`; add `--features plot`
//! to draw the run into `simulate.svg` (or the path given as argument).

use std::time::Duration;

use palisade::{
    bulkhead::BulkheadLayer,
    chaos::Latency,
    circuit_breaker::{CircuitBreakerLayer, CircuitState, OpenDuration},
    clock::ManualClock,
    random::FastRandom,
    retry::{Backoff, RetryLayer},
    sim::{Load, Outcome, Phase, Simulation, Upstream},
    stack::ResilienceLayer,
    timeout::TimeoutLayer,
};
use tower::{BoxError, Layer};

fn main() -> Result<(), BoxError> {
    let (ms, secs) = (Duration::from_millis, Duration::from_secs);
    let clock = ManualClock::new();

    // The dependency: 20–60 ms a call, 64 at once (256 more may queue),
    // 1 % errors; from 20 s to 50 s, ten times slower.
    let upstream = Upstream::<u64, _>::builder(clock.clone())
        .latency(Latency::Uniform {
            min: ms(20),
            max: ms(60),
        })
        .errors(0.01)
        .capacity(64)
        .queue(256)
        .phase(secs(20)..secs(50), Phase::new().slower(10.0))
        .seed(1)
        .build()?;

    // The stack under test.
    let breaker = CircuitBreakerLayer::builder()
        .time_window(secs(10), 10)
        .failure_rate(0.5)
        .minimum_calls(50)
        .open_duration(OpenDuration::fixed(secs(5)))
        .clock(clock.clone())
        .random(FastRandom::seeded(2))
        .build()?;
    let bulkhead = BulkheadLayer::builder(48).clock(clock.clone()).build()?;
    let stack = ResilienceLayer::new()
        .timeout(
            TimeoutLayer::builder(ms(250))
                .clock(clock.clone())
                .build()?,
        )
        .retry(
            RetryLayer::builder()
                .max_attempts(3)
                .backoff(Backoff::exponential(ms(50), 2.0))
                .clock(clock.clone())
                .random(FastRandom::seeded(3))
                .build()?,
        )
        .circuit_breaker(breaker.clone())
        .bulkhead(bulkhead.clone());

    // The load, and what to watch each second.
    let handle = breaker.handle();
    let (in_flight, upstream_watch) = (bulkhead.clone(), upstream.clone());
    let simulation = Simulation::builder(clock.clone(), Load::Poisson { rate: 200.0 })
        .duration(secs(80))
        .seed(4)
        .probe("breaker open (1) / half-open (0.5)", move || {
            match handle.state() {
                CircuitState::Open | CircuitState::ForcedOpen => 1.0,
                CircuitState::HalfOpen => 0.5,
                _ => 0.0,
            }
        })
        .probe("bulkhead permits taken / 48", move || {
            in_flight.in_flight() as f64 / 48.0
        })
        .probe("upstream calls in flight / 64", move || {
            upstream_watch.in_flight() as f64 / 64.0
        })
        .build()?;

    let started = std::time::Instant::now();
    let report = clock.block_on(simulation.run(stack.layer(upstream.clone()), |n| n));
    let took = started.elapsed();

    println!("{report}");
    println!(
        "{} upstream calls for {} requests; {} s of traffic simulated in {took:.0?}\n",
        upstream.calls(),
        report.sent(),
        report.elapsed().as_secs()
    );
    println!("second   ok/s  failed/s  refused/s    p50      p99    breaker");
    for (second, interval) in report.timeline().iter().enumerate().step_by(5) {
        let refused: u64 = Outcome::ALL
            .iter()
            .filter(|outcome| matches!(outcome, Outcome::Rejected(_)))
            .map(|&outcome| interval.count(outcome))
            .sum();
        let show = |d: Option<Duration>| d.map_or("-".into(), |d| format!("{:.0?}", d));
        println!(
            "{second:>6} {:>6} {:>9} {:>10} {:>7} {:>8} {:>9}",
            interval.count(Outcome::Ok),
            interval.count(Outcome::Failed),
            refused,
            show(interval.p50),
            show(interval.p99),
            match interval.probes[0] {
                1.0 => "open",
                0.5 => "half-open",
                _ => "closed",
            }
        );
    }
    chart(&report)?;
    Ok(())
}

#[cfg(feature = "plot")]
fn chart(report: &palisade::sim::Report) -> Result<(), BoxError> {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "simulate.svg".into());
    std::fs::write(&path, report.svg())?;
    println!("\nthe run, drawn: {path}");
    Ok(())
}

#[cfg(not(feature = "plot"))]
fn chart(_: &palisade::sim::Report) -> Result<(), BoxError> {
    println!("\n(with `--features plot`, the run is drawn into simulate.svg)");
    Ok(())
}

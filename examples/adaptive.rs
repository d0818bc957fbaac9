//! An adaptive limit finding the capacity of a dependency it was not told:
//! an upstream that serves 100 calls at once in about 100 ms (the rest
//! queue, and past 200 queued it refuses), offered three times what it can
//! serve, in virtual time, by callers who give up after 250 ms. Each
//! algorithm starts far from the capacity (at 200) and is printed second by
//! second: its limit, and the goodput (calls answered in time per second;
//! the upstream's best is 1000). From 10 s to 20 s the upstream has half
//! its capacity. Next to them, a bulkhead fixed at 4× the capacity: its
//! calls queue past their deadline, the upstream serves calls nobody waits
//! for, and the goodput collapses.
//!
//! Run with `cargo run --release --example adaptive`.

use std::time::Duration;

use palisade::{
    adaptive::{AdaptiveLayer, Aimd, Algorithm, Gradient2, Vegas},
    bulkhead::BulkheadLayer,
    chaos::Latency,
    clock::ManualClock,
    sim::{Load, Outcome, Phase, Report, Simulation, Upstream},
    timeout::TimeoutLayer,
};
use tower::Layer;

/// The upstream's capacity: calls served at once.
pub const CAPACITY: u32 = 100;
/// How long the load lasts.
pub const SECONDS: u64 = 30;
/// When the upstream has half its capacity.
pub const HALVED: std::ops::Range<u64> = 10..20;

/// The model upstream: 100 at once, 90–110 ms each, 200 more may queue;
/// from 10 s to 20 s, 50 at once.
pub fn upstream(clock: &ManualClock) -> Upstream<u64, ManualClock> {
    let ms = Duration::from_millis;
    Upstream::builder(clock.clone())
        .latency(Latency::Uniform {
            min: ms(90),
            max: ms(110),
        })
        .capacity(CAPACITY)
        .queue(2 * CAPACITY)
        .phase(
            Duration::from_secs(HALVED.start)..Duration::from_secs(HALVED.end),
            Phase::new().capacity(CAPACITY / 2),
        )
        .seed(22)
        .build()
        .expect("a valid upstream")
}

/// Three times what the upstream can serve (1000 a second), at random.
pub fn simulation(
    clock: &ManualClock,
    limit: impl Fn() -> f64 + 'static,
) -> Simulation<ManualClock> {
    Simulation::builder(clock.clone(), Load::Poisson { rate: 3000.0 })
        .duration(Duration::from_secs(SECONDS))
        .seed(7)
        .probe("limit", limit)
        .build()
        .expect("a valid simulation")
}

/// The callers' patience: each call through the limit is given up after
/// 250 ms (a timeout inside the limit, as in `ResilienceLayer`: a call
/// that times out is a drop the limit sees).
fn patience(clock: &ManualClock) -> TimeoutLayer<palisade::timeout::FixedTimeout, ManualClock> {
    TimeoutLayer::builder(Duration::from_millis(250))
        .clock(clock.clone())
        .build()
        .expect("a valid timeout")
}

/// The upstream behind an adaptive limit run by `algorithm`.
pub fn adaptive<A: Algorithm>(algorithm: A) -> Report {
    let clock = ManualClock::new();
    let layer = AdaptiveLayer::builder(algorithm)
        .clock(clock.clone())
        .build()
        .expect("a valid layer");
    let watched = layer.clone();
    let simulation = simulation(&clock, move || f64::from(watched.limit()));
    let stack = layer.layer(patience(&clock).layer(upstream(&clock)));
    clock.block_on(simulation.run(stack, |n| n))
}

/// The upstream behind a bulkhead fixed at `bound`.
pub fn fixed(bound: u32) -> Report {
    let clock = ManualClock::new();
    let layer = BulkheadLayer::builder(bound)
        .clock(clock.clone())
        .build()
        .expect("a valid bulkhead");
    let simulation = simulation(&clock, move || f64::from(bound));
    let stack = layer.layer(patience(&clock).layer(upstream(&clock)));
    clock.block_on(simulation.run(stack, |n| n))
}

/// Calls answered well per second over `seconds`.
pub fn goodput(report: &Report, seconds: std::ops::Range<usize>) -> f64 {
    let len = seconds.len() as f64;
    let ok: u64 = report.timeline()[seconds]
        .iter()
        .map(|interval| interval.count(Outcome::Ok))
        .sum();
    ok as f64 / len
}

/// AIMD starting at 200, a call slower than 120 ms (1.2× the usual) a
/// drop.
pub fn aimd() -> Aimd {
    Aimd::new(200).timeout(Duration::from_millis(120))
}

/// Vegas starting at 200, its defaults.
pub fn vegas() -> Vegas {
    Vegas::new(200)
}

/// Gradient2 starting at 200, a tolerance of 1.1.
pub fn gradient2() -> Gradient2 {
    Gradient2::new(200).tolerance(1.1)
}

#[allow(dead_code)] // (also compiled as a module of the tests)
fn main() {
    let runs = [
        ("AIMD", adaptive(aimd())),
        ("Vegas", adaptive(vegas())),
        ("Gradient2", adaptive(gradient2())),
        ("bulkhead of 4×", fixed(CAPACITY * 4)),
    ];
    print!("second");
    for (name, _) in &runs {
        print!(" | {name:>14}");
    }
    println!("\n       (limit / ok per second)");
    for second in 0..SECONDS as usize {
        print!("{second:>6}");
        for (_, report) in &runs {
            let interval = &report.timeline()[second];
            print!(
                " | {:>5} / {:>6}",
                interval.probes[0],
                interval.count(Outcome::Ok)
            );
        }
        println!();
    }
    println!();
    for (name, report) in &runs {
        println!(
            "{name:>14}: goodput {:.0}/s at full capacity (5–10 s, 25–30 s), {:.0}/s at half (15–20 s), p99 {:?}",
            (goodput(report, 5..10) + goodput(report, 25..30)) / 2.0,
            goodput(report, 15..20),
            report.latency_of(Outcome::Ok, 0.99).unwrap_or_default()
        );
    }
}

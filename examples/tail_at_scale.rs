//! "The Tail at Scale" (Dean and Barroso, 2013) in virtual time: an upstream
//! where 2 % of calls take 100× the median, with and without hedging at the
//! p95, and tower's `Hedge` on the same upstream; then an outage where every
//! call is slow, where the hedging budget bounds the extra requests.
//!
//! Run with `cargo run --release --example tail_at_scale`. Each row is a
//! simulation of 30 000 requests; the whole run takes about a second.

use std::time::Duration;

use palisade::{
    chaos::Latency,
    clock::{Clock, ManualClock, TokioClock},
    hedge::{Delay, HedgeLayer},
    sim::{Load, Phase, Report, Simulation, Upstream},
};
use tower::Layer;

const MS: Duration = Duration::from_millis(1);

/// The load of every row: 500 requests a second for a minute, at random.
const LOAD: Load = Load::Poisson { rate: 500.0 };
const SECONDS: u64 = 60;

/// What is measured of a row.
pub struct Row {
    pub name: &'static str,
    pub report: Report,
    /// Calls the upstream received, per request sent, less one.
    pub extra: f64,
}

/// Which upstream.
#[derive(Clone, Copy)]
pub enum Case {
    /// 10 ms (9 to 11), 2 % of calls 990 ms more: 100× the median.
    Stragglers,
    /// Every call 100× slower, from the start.
    Outage,
}

impl Case {
    fn upstream<C: Clock>(self, clock: C) -> Upstream<u64, C> {
        let mut upstream = Upstream::builder(clock)
            .latency(Latency::Uniform {
                min: 9 * MS,
                max: 11 * MS,
            })
            .stragglers(0.02, Latency::Fixed(990 * MS))
            .seed(2013);
        if let Case::Outage = self {
            upstream = upstream.phase(
                Duration::ZERO..Duration::from_secs(SECONDS * 2),
                Phase::new()
                    .slower(100.0)
                    .stragglers(0.0, Latency::Fixed(Duration::ZERO)),
            );
        }
        upstream.build().expect("a valid upstream")
    }
}

fn simulation<C: Clock>(clock: C) -> Simulation<C> {
    Simulation::builder(clock, LOAD)
        .duration(Duration::from_secs(SECONDS))
        .seed(7)
        .build()
        .expect("a valid simulation")
}

/// How palisade hedges in a row.
#[derive(Clone, Copy, PartialEq)]
pub enum Hedging {
    None,
    /// After the p95 of recent latencies.
    AtP95,
    /// After a fixed 20 ms: every call of an outage is hedged, but for the
    /// budget.
    After20ms,
}

/// palisade's stack on a `ManualClock`: the upstream, hedged or not. The
/// hedge keeps the default budget: extra attempts at most 10 % of requests,
/// plus a burst of 20.
pub fn palisade_row(case: Case, hedging: Hedging) -> Row {
    let clock = ManualClock::new();
    let upstream = case.upstream(clock.clone());
    let run = simulation(clock.clone());
    let (name, delay) = match hedging {
        Hedging::None => ("no hedging", None),
        Hedging::AtP95 => (
            "palisade HedgeLayer, p95",
            Some(Delay::Quantile {
                quantile: 0.95,
                min_samples: 200,
                window: Duration::from_secs(5),
                until_known: 20 * MS,
            }),
        ),
        Hedging::After20ms => (
            "palisade HedgeLayer, fixed 20 ms",
            Some(Delay::Fixed(20 * MS)),
        ),
    };
    let report = match delay {
        None => clock.block_on(run.run(upstream.clone(), |n| n)),
        Some(delay) => {
            let hedge = HedgeLayer::builder(delay)
                .clock(clock.clone())
                .build()
                .expect("a valid hedge");
            clock.block_on(run.run(hedge.layer(upstream.clone()), |n| n))
        }
    };
    let extra = upstream.calls() as f64 / report.sent() as f64 - 1.0;
    Row {
        name,
        report,
        extra,
    }
}

/// Any request may be sent twice.
#[derive(Clone)]
struct Always;

impl tower::hedge::Policy<u64> for Always {
    fn clone_request(&self, request: &u64) -> Option<u64> {
        Some(*request)
    }

    fn can_retry(&self, _: &u64) -> bool {
        true
    }
}

/// tower's `Hedge` at the p95 (of the last 5 to 10 seconds, once 200 are
/// known — tower's own timers and clock), behind a `Buffer`, on tokio's
/// paused time: the
/// upstream and the simulation sleep on a `TokioClock`, so all three move
/// together.
pub fn tower_row(case: Case) -> Row {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("a runtime");
    runtime.block_on(async {
        let clock = TokioClock::new();
        let upstream = case.upstream(clock);
        let hedge =
            tower::hedge::Hedge::new(upstream.clone(), Always, 200, 0.95, Duration::from_secs(5));
        // (tower's `Hedge` is not `Clone`: shared through a `Buffer`, as
        // a tower user would.)
        let service = tower::buffer::Buffer::new(hedge, 4096);
        let report = simulation(clock).run(service, |n| n).await;
        let extra = upstream.calls() as f64 / report.sent() as f64 - 1.0;
        Row {
            name: "tower Hedge, p95",
            report,
            extra,
        }
    })
}

/// Each row of a case: its median, p99 and p99.9, and its extra requests.
pub fn table(case: Case) -> Vec<Row> {
    vec![
        palisade_row(case, Hedging::None),
        palisade_row(case, Hedging::AtP95),
        palisade_row(case, Hedging::After20ms),
        tower_row(case),
    ]
}

fn print(title: &str, rows: &[Row]) {
    println!("{title}\n");
    println!("| | p50 | p99 | p99.9 | p99 / p50 | p99.9 / p50 | extra requests |");
    println!("|---|---|---|---|---|---|---|");
    for row in rows {
        let at = |q| row.report.latency(q).expect("answers");
        let (p50, p99, p999) = (at(0.5), at(0.99), at(0.999));
        let ratio = |d: Duration| d.as_secs_f64() / p50.as_secs_f64();
        println!(
            "| {} | {:.1} ms | {:.1} ms | {:.1} ms | {:.1}× | {:.1}× | {:.2} % |",
            row.name,
            p50.as_secs_f64() * 1e3,
            p99.as_secs_f64() * 1e3,
            p999.as_secs_f64() * 1e3,
            ratio(p99),
            ratio(p999),
            row.extra * 100.0
        );
    }
    println!();
}

#[allow(dead_code)] // (also compiled as a module of the tests)
fn main() {
    let started = std::time::Instant::now();
    print(
        "2 % of calls take 100× the median (30 000 requests at 500/s, Poisson):",
        &table(Case::Stragglers),
    );
    print(
        "An outage: every call 100× slower (1 s):",
        &table(Case::Outage),
    );
    println!(
        "(8 simulated minutes in {:?} of real time)",
        started.elapsed()
    );
}

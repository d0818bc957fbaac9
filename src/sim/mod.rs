//! Simulation: a whole stack against a model dependency and a load of
//! virtual clients, in virtual time — "what does my stack do when the
//! dependency slows down 10×?" answered in milliseconds, repeatable to the
//! request.
//!
//! - [`Upstream`] is the model dependency: a capacity (calls served at
//!   once, the others queued, then refused), a [`Latency`](crate::chaos::Latency)
//!   distribution with stragglers, errors and hangs, and a schedule of
//!   [`Phase`]s — an outage from second 30 to 60, a slowdown, a loss of
//!   capacity. Its queue is exact (each call's start and end fixed when it
//!   arrives) and, like a real server's, blind to callers who gave up; its
//!   faults are a [`ChaosLayer`](crate::chaos::ChaosLayer)'s.
//! - [`Simulation`] drives a [`Load`] — open (a rate, evenly or at random)
//!   or closed (a number of clients) — through any stack over it, and
//!   returns a [`Report`]: each [`Outcome`] (answered, failed, refused by
//!   which layer, unfinished) with exact latency percentiles, and a
//!   timeline of intervals with [probes](SimulationBuilder::probe) of
//!   anything (a breaker's state, a limit, the upstream's queue).
//! - With feature `plot`, [`Report::svg`] draws the timeline: latency
//!   percentiles, outcomes by kind, and the probes, over virtual time.
//!
//! Everything sleeps on one [`Clock`](crate::clock::Clock): with a
//! [`ManualClock`](crate::clock::ManualClock) and
//! [`block_on`](crate::clock::ManualClock::block_on), time jumps from one
//! deadline to the next, so a minute of traffic at hundreds of requests a
//! second takes milliseconds; every draw comes from seeded sources, so a
//! run is repeatable to the request. With a
//! [`TokioClock`](crate::clock::TokioClock) in a runtime whose time is
//! paused, the same simulation drives layers that sleep on tokio's timers
//! (tower's own, say).
//!
//! # Examples
//!
//! A timeout and a retry, while the dependency is ten times slower for
//! twenty seconds:
//!
//! ```
//! use std::time::Duration;
//! use palisade::{
//!     chaos::Latency,
//!     clock::ManualClock,
//!     error::RejectionKind,
//!     sim::{Load, Outcome, Phase, Simulation, Upstream},
//!     timeout::TimeoutLayer,
//! };
//! use tower::Layer;
//!
//! let (ms, secs) = (Duration::from_millis, Duration::from_secs);
//! let clock = ManualClock::new();
//! let upstream = Upstream::<u64, _>::builder(clock.clone())
//!     .latency(Latency::Uniform { min: ms(20), max: ms(60) })
//!     .phase(secs(20)..secs(40), Phase::new().slower(10.0))
//!     .build()?;
//! let timeout = TimeoutLayer::builder(ms(250)).clock(clock.clone()).build()?;
//! let simulation = Simulation::builder(clock.clone(), Load::Poisson { rate: 50.0 })
//!     .duration(secs(60))
//!     .build()?;
//! let report = clock.block_on(simulation.run(timeout.layer(upstream), |n| n));
//! println!("{report}");
//!
//! // Before and after the slowdown, every answer in time; during it, most
//! // calls give up at 250 ms instead of waiting up to 600.
//! let elapsed = report.count(Outcome::Rejected(RejectionKind::Elapsed));
//! assert!(elapsed > 600 && elapsed < 1000, "{elapsed}");
//! assert!(report.latency(1.0) <= Some(ms(250)));
//! # Ok::<(), palisade::error::ConfigError>(())
//! ```

#[cfg(feature = "plot")]
mod chart;
mod report;
mod run;
mod upstream;

pub use report::{Interval, Outcome, Report};
pub use run::{Load, Simulation, SimulationBuilder};
pub use upstream::{Phase, Refused, Upstream, UpstreamBuilder};

/// The name in configuration errors.
const LAYER: &str = "sim";

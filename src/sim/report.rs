//! What a simulation saw: every request's outcome and latency, in total
//! and interval by interval.

use std::{fmt, time::Duration};

use tower::BoxError;

use crate::{
    classify::{Classify, Outcome as Classified},
    error::{Rejection, RejectionKind},
};

/// What became of one request of a [`Simulation`](super::Simulation).
///
/// ```
/// use palisade::{error::RejectionKind, sim::Outcome};
/// assert_eq!(Outcome::Rejected(RejectionKind::CircuitOpen).as_str(), "circuit_open");
/// assert_eq!(Outcome::ALL.len(), 11);
/// ```
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// Answered, and the classifier did not call the answer a failure.
    Ok,
    /// Failed — an error or a response the classifier calls a failure —
    /// and not refused by a palisade layer.
    Failed,
    /// Refused by a palisade layer (found anywhere in the error's chain).
    Rejected(RejectionKind),
    /// Still unanswered when the simulation ended; dropped then.
    Unfinished,
}

impl Outcome {
    /// Every outcome: `Ok`, `Failed`, each rejection kind, `Unfinished` —
    /// the order of the report's rows.
    pub const ALL: [Outcome; 11] = {
        let mut all = [Outcome::Ok; 11];
        all[1] = Outcome::Failed;
        let mut kind = 0;
        while kind < RejectionKind::ALL.len() {
            all[2 + kind] = Outcome::Rejected(RejectionKind::ALL[kind]);
            kind += 1;
        }
        all[10] = Outcome::Unfinished;
        all
    };

    /// Its name in reports: `ok`, `failed`, the rejection kind's name
    /// (`circuit_open`, `elapsed`, …), `unfinished`.
    ///
    /// ```
    /// assert_eq!(palisade::sim::Outcome::Unfinished.as_str(), "unfinished");
    /// ```
    pub fn as_str(&self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Failed => "failed",
            Outcome::Rejected(kind) => kind.as_str(),
            Outcome::Unfinished => "unfinished",
        }
    }

    /// What `classifier` makes of a request's `result`: a palisade rejection
    /// anywhere in an error's chain is [`Rejected`](Outcome::Rejected), a
    /// failure is [`Failed`](Outcome::Failed), anything else
    /// [`Ok`](Outcome::Ok).
    ///
    /// ```
    /// use palisade::{classify::ErrorsAsFailures, error::{CircuitOpen, RejectionKind}, sim::Outcome};
    ///
    /// let open: Result<(), tower::BoxError> = Err(CircuitOpen::new("db", None).into());
    /// assert_eq!(Outcome::of(&open, &ErrorsAsFailures), Outcome::Rejected(RejectionKind::CircuitOpen));
    /// assert_eq!(Outcome::of(&Err::<(), _>("boom".into()), &ErrorsAsFailures), Outcome::Failed);
    /// assert_eq!(Outcome::of(&Ok::<_, tower::BoxError>(()), &ErrorsAsFailures), Outcome::Ok);
    /// ```
    pub fn of<Res, K>(result: &Result<Res, BoxError>, classifier: &K) -> Outcome
    where
        K: Classify<Res, BoxError>,
    {
        if let Err(err) = result
            && let Some(rejection) = Rejection::find(&**err)
        {
            return Outcome::Rejected(rejection.kind());
        }
        match classifier.classify(result) {
            Classified::Failure => Outcome::Failed,
            Classified::Success | Classified::Ignored => Outcome::Ok,
        }
    }

    /// Its row in [`ALL`](Outcome::ALL).
    pub(crate) fn index(self) -> usize {
        match self {
            Outcome::Ok => 0,
            Outcome::Failed => 1,
            Outcome::Rejected(kind) => 2 + kind as usize,
            Outcome::Unfinished => 10,
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One interval of a [`Report`]'s timeline: what finished in it (after its
/// start, up to and including its end), and what the probes read at its
/// end.
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq)]
pub struct Interval {
    /// When it starts, from the start of the simulation.
    pub start: Duration,
    /// How long it lasts (the last one may be shorter).
    pub length: Duration,
    /// How many requests finished in it, by outcome, in the order of
    /// [`Outcome::ALL`].
    pub finished: [u64; 11],
    /// The median latency of the requests answered in it.
    pub p50: Option<Duration>,
    /// The 99th percentile latency of the requests answered in it.
    pub p99: Option<Duration>,
    /// The longest latency of a request answered in it.
    pub max: Option<Duration>,
    /// Each probe's reading at its end, in the order they were added.
    pub probes: Vec<f64>,
}

impl Interval {
    /// How many requests finished in it with `outcome`.
    ///
    /// ```
    /// # use palisade::sim::{Interval, Outcome};
    /// # fn check(interval: &Interval) {
    /// let ok_per_second = interval.count(Outcome::Ok) as f64 / interval.length.as_secs_f64();
    /// # let _ = ok_per_second; }
    /// ```
    pub fn count(&self, outcome: Outcome) -> u64 {
        self.finished[outcome.index()]
    }
}

/// Latencies of one kind, sorted.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Latencies(Vec<Duration>);

impl Latencies {
    pub(crate) fn new(mut latencies: Vec<Duration>) -> Latencies {
        latencies.sort_unstable();
        Latencies(latencies)
    }

    /// The nearest-rank `quantile`: the smallest latency at least that share
    /// of them do not exceed.
    pub(crate) fn quantile(&self, quantile: f64) -> Option<Duration> {
        let n = self.0.len();
        if n == 0 {
            return None;
        }
        let rank = (quantile.clamp(0.0, 1.0) * n as f64).ceil() as usize;
        Some(self.0[rank.clamp(1, n) - 1])
    }

    fn len(&self) -> usize {
        self.0.len()
    }
}

/// What a [`Simulation`](super::Simulation) saw: every request's outcome
/// and latency (on the simulation's clock), in total and interval by
/// interval, with the probes' readings. Its `Display` is a table.
///
/// Percentiles are exact (nearest rank over every latency kept).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use palisade::{clock::ManualClock, sim::{Load, Outcome, Simulation, Upstream}};
///
/// let clock = ManualClock::new();
/// let upstream = Upstream::<u64, _>::builder(clock.clone()).build()?;
/// let simulation = Simulation::builder(clock.clone(), Load::Even { rate: 100.0 })
///     .duration(Duration::from_secs(10))
///     .build()?;
/// let report = clock.block_on(simulation.run(upstream, |n| n));
/// assert_eq!(report.sent(), 1000);
/// assert_eq!(report.count(Outcome::Ok), 1000);
/// assert_eq!(report.latency(0.99), Some(Duration::from_millis(10)));
/// assert_eq!(report.timeline().len(), 10);
/// println!("{report}");
/// # Ok::<(), palisade::error::ConfigError>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Report {
    pub(crate) elapsed: Duration,
    pub(crate) sent: u64,
    /// By outcome, in the order of [`Outcome::ALL`].
    pub(crate) outcomes: Vec<Latencies>,
    /// Every answered request's (every outcome but `Unfinished`).
    pub(crate) answered: Latencies,
    pub(crate) timeline: Vec<Interval>,
    pub(crate) probes: Vec<String>,
}

impl Report {
    /// How many requests were sent.
    pub fn sent(&self) -> u64 {
        self.sent
    }

    /// How long the simulation ran, in its clock's time: until the last
    /// request finished, or the end of the drain.
    pub fn elapsed(&self) -> Duration {
        self.elapsed
    }

    /// How many requests ended with `outcome`.
    pub fn count(&self, outcome: Outcome) -> u64 {
        self.outcomes[outcome.index()].len() as u64
    }

    /// The latency `quantile` (0.99 for the p99) of every answered request,
    /// whatever its outcome (unfinished ones left out); `None` if none was.
    pub fn latency(&self, quantile: f64) -> Option<Duration> {
        self.answered.quantile(quantile)
    }

    /// The latency `quantile` of the requests that ended with `outcome`
    /// (for [`Unfinished`](Outcome::Unfinished): how long they had waited
    /// when dropped).
    pub fn latency_of(&self, outcome: Outcome, quantile: f64) -> Option<Duration> {
        self.outcomes[outcome.index()].quantile(quantile)
    }

    /// The timeline, interval by interval.
    pub fn timeline(&self) -> &[Interval] {
        &self.timeline
    }

    /// The probes' names, in the order of [`Interval::probes`].
    pub fn probes(&self) -> &[String] {
        &self.probes
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let answered = self.answered.len();
        writeln!(
            f,
            "{} requests in {} of simulated time, {} answered",
            self.sent,
            Human(self.elapsed),
            answered
        )?;
        writeln!(
            f,
            "{:<18} {:>9} {:>8} {:>9} {:>9} {:>9} {:>9} {:>9}",
            "outcome", "requests", "share", "p50", "p90", "p99", "p99.9", "max"
        )?;
        let rows = Outcome::ALL
            .iter()
            .map(|outcome| (outcome.as_str(), &self.outcomes[outcome.index()]))
            .filter(|(_, latencies)| latencies.len() > 0)
            .chain([("every answer", &self.answered)]);
        for (name, latencies) in rows {
            let share = 100.0 * latencies.len() as f64 / self.sent.max(1) as f64;
            write!(f, "{name:<18} {:>9} {share:>7.2}%", latencies.len())?;
            for quantile in [0.5, 0.9, 0.99, 0.999, 1.0] {
                match latencies.quantile(quantile) {
                    Some(latency) => write!(f, " {:>9}", Human(latency).to_string())?,
                    None => write!(f, " {:>9}", "-")?,
                }
            }
            writeln!(f)?;
        }
        Ok(())
    }
}

/// A duration in the unit that suits it, three significant figures.
pub(crate) struct Human(pub(crate) Duration);

impl fmt::Display for Human {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.0.as_secs_f64();
        let (value, unit) = if secs >= 1.0 {
            (secs, "s")
        } else if secs >= 1e-3 {
            (secs * 1e3, "ms")
        } else if secs >= 1e-6 {
            (secs * 1e6, "µs")
        } else {
            (secs * 1e9, "ns")
        };
        let decimals = if value >= 100.0 {
            0
        } else if value >= 10.0 {
            1
        } else {
            2
        };
        write!(f, "{value:.decimals$}{unit}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_quantile_is_the_nearest_rank() {
        let ms = Duration::from_millis;
        let latencies = Latencies::new((1..=100).rev().map(ms).collect());
        assert_eq!(latencies.quantile(0.5), Some(ms(50)));
        assert_eq!(latencies.quantile(0.99), Some(ms(99)));
        assert_eq!(latencies.quantile(0.991), Some(ms(100)));
        assert_eq!(latencies.quantile(0.0), Some(ms(1)));
        assert_eq!(latencies.quantile(1.0), Some(ms(100)));
        assert_eq!(Latencies::default().quantile(0.5), None);
    }

    #[test]
    fn every_outcome_has_its_row() {
        for (index, outcome) in Outcome::ALL.into_iter().enumerate() {
            assert_eq!(outcome.index(), index, "{outcome}");
        }
    }

    #[test]
    fn durations_read_in_their_unit() {
        let human = |d| Human(d).to_string();
        assert_eq!(human(Duration::from_millis(1500)), "1.50s");
        assert_eq!(human(Duration::from_micros(10_260)), "10.3ms");
        assert_eq!(human(Duration::from_micros(250)), "250µs");
        assert_eq!(human(Duration::from_nanos(5)), "5.00ns");
    }
}

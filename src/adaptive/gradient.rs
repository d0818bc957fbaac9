//! Gradient2: the limit scaled by how far the latency has drifted from
//! its long-run average.

use std::time::Duration;

use super::algorithm::{Algorithm, Bounds, Probe, RoundTrips, Sample, nanos, ratio};
use crate::{clock::Instant, error::ConfigError};

const NAME: &str = "adaptive::Gradient2";

/// Samples averaged plainly before the long-run average turns exponential.
const WARM_UP: u32 = 10;

/// The limit scaled by the gradient between the baseline latency and the
/// latest: `gradient = clamp(tolerance × baseline / rtt, 0.5, 1)`, then
/// `limit × gradient + queue`, taken with [`smoothing`](Gradient2::smoothing),
/// at most once per round trip. A drop counts as the lowest gradient (0.5).
/// The `queue` headroom lets the limit probe above what is in use; the
/// [`tolerance`](Gradient2::tolerance) lets the latency rise that much above
/// the baseline before the limit shrinks.
///
/// The baseline is the average of the first ten latencies, then an
/// exponential average over about [`long_window`](Gradient2::long_window)
/// samples of those at or below it — the latency without a queue, which a
/// queue only adds to — learned afresh every [`probe`](Gradient2::probe) of
/// time, so that a dependency that got slower for good is followed.
/// Netflix's Gradient2 averages every latency into a long-run average
/// instead; against a queueing dependency that average follows the queue up,
/// and (in this crate's simulation) the limit climbs until calls time out.
///
/// It ignores single outliers (a gradient halves the limit at most) and the
/// limit grows only while at least half of it is in use. With a tolerance of
/// 1.1 it settles a little above the dependency's capacity (the baseline is
/// near the fastest latencies); the default 1.5 trades more queueing for
/// calm under noisy latencies.
///
/// Defaults: bounds 1 to 1000, smoothing 0.2, tolerance 1.5, long window
/// 600 samples, queue 4, probe every 30 s.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use palisade::{adaptive::{Algorithm, Gradient2, Sample}, clock::Instant};
///
/// let ms = Duration::from_millis;
/// let at = |t| Instant::ZERO + ms(t);
/// let mut gradient = Gradient2::new(50).smoothing(1.0).tolerance(1.0);
/// let sample = |rtt| Sample { rtt: ms(rtt), in_flight: 50, dropped: false };
/// assert_eq!(gradient.update(&sample(10), at(10)), 54); // as usual: + queue
/// // A round trip later, 20 ms against a baseline of 15 (the first two
/// // averaged): × 0.75, + queue.
/// assert_eq!(gradient.update(&sample(20), at(30)), 44);
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Gradient2 {
    estimate: f64,
    initial: u32,
    bounds: Bounds,
    smoothing: f64,
    tolerance: f64,
    long_window: u32,
    queue: u32,
    /// The long-run latency in nanoseconds, and the samples it holds.
    long: Option<(f64, u32)>,
    probe: Probe,
    round_trips: RoundTrips,
}

impl Gradient2 {
    /// Starting at `initial` calls in flight.
    ///
    /// ```
    /// use palisade::adaptive::{Algorithm, Gradient2};
    /// assert_eq!(Gradient2::new(16).limit(), 16);
    /// ```
    pub fn new(initial: u32) -> Gradient2 {
        Gradient2 {
            estimate: f64::from(initial),
            initial,
            bounds: Bounds::DEFAULT,
            smoothing: 0.2,
            tolerance: 1.5,
            long_window: 600,
            queue: 4,
            long: None,
            probe: Probe::new(Duration::from_secs(30)),
            round_trips: RoundTrips::default(),
        }
    }

    super::algorithm::shared_settings!(Gradient2, "0.2", "the baseline");

    /// How much the latency may exceed the baseline before the limit
    /// shrinks, at least 1. Default 1.5.
    ///
    /// ```
    /// let _ = palisade::adaptive::Gradient2::new(16).tolerance(2.0);
    /// ```
    pub fn tolerance(mut self, tolerance: f64) -> Gradient2 {
        self.tolerance = tolerance;
        self
    }

    /// About how many samples the baseline averages, at least 10. Default
    /// 600.
    ///
    /// ```
    /// let _ = palisade::adaptive::Gradient2::new(16).long_window(100);
    /// ```
    pub fn long_window(mut self, samples: u32) -> Gradient2 {
        self.long_window = samples;
        self
    }

    /// The headroom added to the limit at each sample. Default 4.
    ///
    /// ```
    /// let _ = palisade::adaptive::Gradient2::new(16).queue(2);
    /// ```
    pub fn queue(mut self, calls: u32) -> Gradient2 {
        self.queue = calls;
        self
    }

    /// The baseline in nanoseconds, with `rtt` (a call that ended at `now`)
    /// added if it is at or below it.
    fn average(&mut self, rtt: f64, now: Instant) -> f64 {
        if self.probe.due(now) {
            self.long = None;
        }
        let (average, count) = match self.long {
            None => (rtt, 1),
            Some((average, count)) if count < WARM_UP => {
                let count = count + 1;
                (average + (rtt - average) / f64::from(count), count)
            }
            // Above the baseline: a queue adds to it, and is left out.
            Some((average, count)) if rtt > average => (average, count),
            Some((average, count)) => {
                let factor = 2.0 / (f64::from(self.long_window) + 1.0);
                (average + (rtt - average) * factor, count)
            }
        };
        self.long = Some((average, count));
        average
    }
}

impl Algorithm for Gradient2 {
    fn limit(&self) -> u32 {
        self.estimate as u32
    }

    fn update(&mut self, sample: &Sample, now: Instant) -> u32 {
        let rtt = nanos(sample.rtt);
        // A drop says nothing of the latency (a refusal comes back at
        // once), only that the limit is too high.
        let mut long = match (sample.dropped, self.long) {
            (true, Some((average, _))) => average,
            (true, None) => rtt,
            (false, _) => self.average(rtt, now),
        };
        if !sample.dropped && long / rtt > 2.0 {
            // The overload is over: come down faster than the average would.
            long *= 0.9;
            if let Some((average, _)) = &mut self.long {
                *average = long;
            }
        }
        let limit = self.estimate;
        if !self.round_trips.may_change(sample, now)
            || !sample.dropped && f64::from(sample.in_flight) * 2.0 < limit
        {
            return self.limit();
        }
        let gradient = if sample.dropped {
            0.5
        } else {
            (self.tolerance * long / rtt).clamp(0.5, 1.0)
        };
        let target = limit * gradient + f64::from(self.queue);
        self.estimate = self.bounds.toward(limit, target, self.smoothing);
        self.round_trips.changed(now);
        self.limit()
    }

    fn check(&self) -> Result<(), ConfigError> {
        self.bounds.check(NAME, f64::from(self.initial))?;
        ratio(NAME, "smoothing", self.smoothing, 0.0..=1.0, true)?;
        if !(self.tolerance >= 1.0 && self.tolerance.is_finite()) {
            return Err(ConfigError::new(
                NAME,
                "tolerance",
                format!("must be at least 1, got {}", self.tolerance),
            ));
        }
        crate::error::check::positive(NAME, "probe", self.probe.every)?;
        if self.long_window < WARM_UP {
            return Err(ConfigError::new(
                NAME,
                "long_window",
                format!(
                    "must be at least {WARM_UP} samples, got {}",
                    self.long_window
                ),
            ));
        }
        Ok(())
    }
}

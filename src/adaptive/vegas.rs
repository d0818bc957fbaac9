//! Vegas: the limit from the queue the latency says is building, as TCP
//! Vegas sizes its window.

use std::time::Duration;

use super::algorithm::{Algorithm, Bounds, Probe, RoundTrips, Sample, nanos, ratio};
use crate::{clock::Instant, error::ConfigError};

const NAME: &str = "adaptive::Vegas";

/// The limit from the queue the latency says is building: with `noload`
/// the lowest round-trip time seen (the dependency's latency with nothing
/// queued) and `rtt` a call's, `limit × (1 − noload / rtt)` calls are
/// queued. With `log = max(1, log10 limit)`: a queue of at most `log` grows
/// the limit by `6 log`, below `3 log` by `log`; above `6 log` it shrinks
/// by `log`, as does a drop; in between it holds. Every
/// [`probe`](Vegas::probe) of time it re-learns `noload` from the next
/// call, so a dependency that got slower for good is not taken for a queue
/// for ever. A [`smoothing`](Vegas::smoothing) below 1 moves only part of
/// the way each time.
///
/// Reacts to latency before anything fails — its strength, and its
/// weakness when latency varies for reasons other than load. The limit
/// grows only while at least half of it is in use.
///
/// Defaults: bounds 1 to 1000, smoothing 1, probe every 30 s.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use palisade::{adaptive::{Algorithm, Sample, Vegas}, clock::Instant};
///
/// let ms = Duration::from_millis;
/// let mut vegas = Vegas::new(100);
/// let at = |rtt, in_flight| Sample { rtt: ms(rtt), in_flight, dropped: false };
/// vegas.update(&at(10, 100), Instant::ZERO); // learns noload = 10 ms
/// // 10 ms: nothing queued — grows by 6 log10(100) = 12.
/// assert_eq!(vegas.update(&at(10, 100), Instant::ZERO), 112);
/// // 20 ms: half the calls are queued — shrinks by log10(112).
/// assert_eq!(vegas.update(&at(20, 112), Instant::ZERO), 109);
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Vegas {
    estimate: f64,
    initial: u32,
    bounds: Bounds,
    smoothing: f64,
    probe: Probe,
    noload: Option<Duration>,
    round_trips: RoundTrips,
}

impl Vegas {
    /// Starting at `initial` calls in flight.
    ///
    /// ```
    /// use palisade::adaptive::{Algorithm, Vegas};
    /// assert_eq!(Vegas::new(16).limit(), 16);
    /// ```
    pub fn new(initial: u32) -> Vegas {
        Vegas {
            estimate: f64::from(initial),
            initial,
            bounds: Bounds::DEFAULT,
            smoothing: 1.0,
            probe: Probe::new(Duration::from_secs(30)),
            noload: None,
            round_trips: RoundTrips::default(),
        }
    }

    super::algorithm::shared_settings!(Vegas, "1 (all)", "the no-load latency");

    /// The no-load latency it goes by: the lowest seen since it was last
    /// re-learned.
    ///
    /// ```
    /// use std::time::Duration;
    /// use palisade::{adaptive::{Algorithm, Sample, Vegas}, clock::Instant};
    /// let mut vegas = Vegas::new(16);
    /// assert_eq!(vegas.noload(), None);
    /// vegas.update(&Sample { rtt: Duration::from_millis(7), in_flight: 1, dropped: false }, Instant::ZERO);
    /// assert_eq!(vegas.noload(), Some(Duration::from_millis(7)));
    /// ```
    pub fn noload(&self) -> Option<Duration> {
        self.noload
    }
}

impl Algorithm for Vegas {
    fn limit(&self) -> u32 {
        self.estimate as u32
    }

    fn update(&mut self, sample: &Sample, now: Instant) -> u32 {
        if sample.dropped {
            // A drop says nothing of the no-load latency (a refusal comes
            // back at once), only that the limit is too high.
            if self.round_trips.may_change(sample, now) {
                let limit = self.estimate;
                let target = limit - limit.log10().max(1.0);
                self.estimate = self.bounds.toward(limit, target, self.smoothing);
                self.round_trips.changed(now);
            }
            return self.limit();
        }
        let relearn = self.probe.due(now);
        let noload = match self.noload {
            Some(noload) if !relearn && sample.rtt >= noload => noload,
            _ => {
                // A new lowest, or time to re-learn: it is the no-load
                // latency now, and says nothing of a queue.
                self.noload = Some(sample.rtt);
                return self.limit();
            }
        };
        if !self.round_trips.may_change(sample, now) {
            return self.limit();
        }
        let limit = self.estimate;
        let log = limit.log10().max(1.0);
        let queued = (limit * (1.0 - nanos(noload) / nanos(sample.rtt))).ceil();
        let target = if f64::from(sample.in_flight) * 2.0 < limit {
            return self.limit();
        } else if queued <= log {
            limit + 6.0 * log
        } else if queued < 3.0 * log {
            limit + log
        } else if queued > 6.0 * log {
            limit - log
        } else {
            return self.limit();
        };
        self.estimate = self.bounds.toward(limit, target, self.smoothing);
        self.round_trips.changed(now);
        self.limit()
    }

    fn check(&self) -> Result<(), ConfigError> {
        self.bounds.check(NAME, f64::from(self.initial))?;
        ratio(NAME, "smoothing", self.smoothing, 0.0..=1.0, true)?;
        crate::error::check::positive(NAME, "probe", self.probe.every)
    }
}

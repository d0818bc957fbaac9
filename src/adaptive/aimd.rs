//! AIMD: additive increase, multiplicative decrease — TCP Reno's rule.

use std::time::Duration;

use super::algorithm::{Algorithm, Bounds, RoundTrips, Sample, ratio};
use crate::{clock::Instant, error::ConfigError};

const NAME: &str = "adaptive::Aimd";

/// Additive increase, multiplicative decrease, once per round trip: one
/// more when a round trip ends well with the limit in use, `backoff` times
/// the limit (at least one less) when a call is dropped — a failure, or a
/// call slower than [`timeout`](Aimd::timeout).
///
/// The limit changes at most once per round trip: a call admitted before
/// the last change says nothing of the new limit (when an overload drops
/// every call in flight, the limit backs off once, not once per call). It
/// grows only while at least half of it is in use, so a quiet period does
/// not inflate it.
///
/// The simplest, and blind to latency below the timeout: it finds the
/// capacity where the dependency says so — by failing, or by a latency
/// past the timeout (set it a little above the dependency's usual latency,
/// such as 1.2×) — and saws just below it.
///
/// Defaults: bounds 1 to 1000, backoff 0.9, no timeout.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use palisade::{adaptive::{Aimd, Algorithm, Sample}, clock::Instant};
///
/// let ms = Duration::from_millis;
/// let at = |t| Instant::ZERO + ms(t);
/// let mut aimd = Aimd::new(20).bounds(5, 100).backoff(0.5).timeout(ms(100));
/// let slow = Sample { rtt: ms(150), in_flight: 20, dropped: false };
/// assert_eq!(aimd.update(&slow, at(1_000)), 10); // too slow: halved
/// // Another call admitted before the change, as slow: said already.
/// assert_eq!(aimd.update(&slow, at(1_010)), 10);
/// // A round trip later, in use: one more.
/// let fine = Sample { rtt: ms(50), in_flight: 10, dropped: false };
/// assert_eq!(aimd.update(&fine, at(1_060)), 11);
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Aimd {
    limit: u32,
    initial: u32,
    bounds: Bounds,
    backoff: f64,
    timeout: Option<Duration>,
    round_trips: RoundTrips,
}

impl Aimd {
    /// Starting at `initial` calls in flight.
    ///
    /// ```
    /// use palisade::adaptive::{Aimd, Algorithm};
    /// assert_eq!(Aimd::new(16).limit(), 16);
    /// ```
    pub fn new(initial: u32) -> Aimd {
        Aimd {
            limit: initial,
            initial,
            bounds: Bounds::DEFAULT,
            backoff: 0.9,
            timeout: None,
            round_trips: RoundTrips::default(),
        }
    }

    /// The limit stays within `min` and `max` (`1 ≤ min ≤ initial ≤ max`).
    ///
    /// ```
    /// let _ = palisade::adaptive::Aimd::new(16).bounds(4, 64);
    /// ```
    pub fn bounds(mut self, min: u32, max: u32) -> Aimd {
        self.bounds = Bounds { min, max };
        self.limit = self.initial.clamp(min, max.max(min));
        self
    }

    /// What a drop multiplies the limit by, in (0, 1). Default 0.9.
    ///
    /// ```
    /// let _ = palisade::adaptive::Aimd::new(16).backoff(0.5);
    /// ```
    pub fn backoff(mut self, ratio: f64) -> Aimd {
        self.backoff = ratio;
        self
    }

    /// A call slower than `timeout` counts as dropped. Default: none.
    ///
    /// ```
    /// let _ = palisade::adaptive::Aimd::new(16).timeout(std::time::Duration::from_millis(250));
    /// ```
    pub fn timeout(mut self, timeout: Duration) -> Aimd {
        self.timeout = Some(timeout);
        self
    }
}

impl Algorithm for Aimd {
    fn limit(&self) -> u32 {
        self.limit
    }

    fn update(&mut self, sample: &Sample, now: Instant) -> u32 {
        if !self.round_trips.may_change(sample, now) {
            return self.limit;
        }
        let limit = self.limit;
        let dropped = sample.dropped || self.timeout.is_some_and(|timeout| sample.rtt > timeout);
        let next = if dropped {
            let backed_off = (f64::from(limit) * self.backoff).floor() as u32;
            backed_off.min(limit.saturating_sub(1))
        } else if u64::from(sample.in_flight) * 2 >= u64::from(limit) {
            limit.saturating_add(1)
        } else {
            limit
        };
        let next = next.clamp(self.bounds.min, self.bounds.max);
        if next != limit {
            self.limit = next;
            self.round_trips.changed(now);
        }
        self.limit
    }

    fn check(&self) -> Result<(), ConfigError> {
        self.bounds.check(NAME, f64::from(self.initial))?;
        ratio(NAME, "backoff", self.backoff, 0.0..=1.0, true)?;
        if self.backoff >= 1.0 {
            return Err(ConfigError::new(NAME, "backoff", "must be below 1"));
        }
        if let Some(timeout) = self.timeout {
            crate::error::check::positive(NAME, "timeout", timeout)?;
        }
        Ok(())
    }
}

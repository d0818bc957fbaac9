//! What the adaptive limit learns from (a [`Sample`] of each call) and the
//! trait of the algorithms that move it.

use std::time::Duration;

use crate::{clock::Instant, error::ConfigError};

/// One finished call, as an [`Algorithm`] sees it.
///
/// ```
/// use std::time::Duration;
/// use palisade::adaptive::Sample;
///
/// let sample = Sample { rtt: Duration::from_millis(12), in_flight: 8, dropped: false };
/// # let _ = sample;
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sample {
    /// How long the call took, from its admission to its end.
    pub rtt: Duration,
    /// How many calls were in flight when it was admitted, itself included.
    pub in_flight: u32,
    /// Whether it was dropped: failed in a way that says the dependency is
    /// overloaded (by the layer's classifier: a failure, a timeout).
    pub dropped: bool,
}

/// A concurrency limit moved by samples: a pure core, given each call's
/// [`Sample`] and the time, with no clock or lock of its own — so that a
/// test can feed it any sequence, and a property test any sequence at all.
///
/// palisade's are [`Aimd`](super::Aimd), [`Vegas`](super::Vegas) and
/// [`Gradient2`](super::Gradient2); implement it for an algorithm of your
/// own.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use palisade::{adaptive::{Aimd, Algorithm, Sample}, clock::Instant};
///
/// let mut aimd = Aimd::new(10);
/// let busy = Sample { rtt: Duration::from_millis(5), in_flight: 10, dropped: false };
/// assert_eq!(aimd.update(&busy, Instant::ZERO), 11);
/// let dropped = Sample { dropped: true, ..busy };
/// assert_eq!(aimd.update(&dropped, Instant::ZERO), 9); // 11 × 0.9, rounded down
/// ```
pub trait Algorithm: Send + 'static {
    /// The limit now, within the algorithm's bounds.
    fn limit(&self) -> u32;

    /// Learns from `sample`, a call that ended at `now`, and returns the new
    /// limit.
    fn update(&mut self, sample: &Sample, now: Instant) -> u32;

    /// Checks the algorithm's numbers (the layer's builder calls it).
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming the field out of range.
    fn check(&self) -> Result<(), ConfigError> {
        Ok(())
    }
}

/// The bounds every algorithm keeps its limit in, and where it starts.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Bounds {
    pub(crate) min: u32,
    pub(crate) max: u32,
}

impl Bounds {
    pub(crate) const DEFAULT: Bounds = Bounds { min: 1, max: 1000 };

    /// `limit` brought within the bounds; a NaN stays at `fallback`.
    pub(crate) fn clamp(&self, limit: f64, fallback: f64) -> f64 {
        if limit.is_nan() {
            return fallback;
        }
        limit.clamp(f64::from(self.min), f64::from(self.max))
    }

    /// `limit` moved toward `target` (brought within the bounds) by the
    /// share `smoothing` of the way.
    pub(crate) fn toward(&self, limit: f64, target: f64, smoothing: f64) -> f64 {
        let target = self.clamp(target, limit);
        self.clamp(limit + (target - limit) * smoothing, limit)
    }

    pub(crate) fn check(&self, layer: &'static str, initial: f64) -> Result<(), ConfigError> {
        crate::error::check::at_least_one(layer, "min", self.min)?;
        if self.max < self.min {
            return Err(ConfigError::new(
                layer,
                "max",
                format!("must be at least min ({}), got {}", self.min, self.max),
            ));
        }
        if !(f64::from(self.min)..=f64::from(self.max)).contains(&initial) {
            return Err(ConfigError::new(
                layer,
                "initial",
                format!(
                    "must be within min and max ({} to {}), got {initial}",
                    self.min, self.max
                ),
            ));
        }
        Ok(())
    }
}

/// When the limit last changed, so that it changes at most once per round
/// trip: a call admitted before the last change was admitted under the old
/// limit, and says nothing of the new one (TCP's rule: one window, one
/// decision).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct RoundTrips {
    changed: Option<Instant>,
}

impl RoundTrips {
    /// Whether `sample`, which ended at `now`, may change the limit: it
    /// started after the last change.
    pub(crate) fn may_change(&self, sample: &Sample, now: Instant) -> bool {
        let started = now.saturating_sub(sample.rtt);
        self.changed.is_none_or(|changed| started >= changed)
    }

    /// The limit changed at `now`.
    pub(crate) fn changed(&mut self, now: Instant) {
        self.changed = Some(now);
    }
}

/// When to learn a baseline latency afresh: every `every` of time.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Probe {
    pub(crate) every: Duration,
    learned_at: Option<Instant>,
}

impl Probe {
    pub(crate) fn new(every: Duration) -> Probe {
        Probe {
            every,
            learned_at: None,
        }
    }

    /// Whether it is time to learn afresh at `now` (the first time, or
    /// `every` since the last); if so, the time is noted.
    pub(crate) fn due(&mut self, now: Instant) -> bool {
        let due = self
            .learned_at
            .is_none_or(|at| now.saturating_duration_since(at) >= self.every);
        if due {
            self.learned_at = Some(now);
        }
        due
    }
}

/// A ratio that must lie in `range`, or the field is named.
pub(crate) fn ratio(
    layer: &'static str,
    field: &'static str,
    value: f64,
    range: std::ops::RangeInclusive<f64>,
    open_below: bool,
) -> Result<(), ConfigError> {
    let inside = range.contains(&value) && !(open_below && value == *range.start());
    if !inside {
        let (low, high) = (range.start(), range.end());
        let low = if open_below { "(" } else { "[" }.to_owned() + &low.to_string();
        return Err(ConfigError::new(
            layer,
            field,
            format!("must be in {low}, {high}], got {value}"),
        ));
    }
    Ok(())
}

/// A round-trip time in nanoseconds, at least 1 (so that ratios stay
/// finite).
pub(crate) fn nanos(rtt: Duration) -> f64 {
    (rtt.as_nanos() as f64).max(1.0)
}

/// The settings Vegas and Gradient2 share, written once: `bounds`,
/// `smoothing` and `probe`, for a type with fields `initial`, `estimate`,
/// `bounds`, `smoothing` and `probe`; `$smoothing` is the default's text.
macro_rules! shared_settings {
    ($ty:ident, $smoothing:literal, $probed:literal) => {
        /// The limit stays within `min` and `max` (`1 ≤ min ≤ initial ≤ max`).
        ///
        #[doc = concat!("```\nlet _ = palisade::adaptive::", stringify!($ty), "::new(16).bounds(4, 64);\n```")]
        pub fn bounds(mut self, min: u32, max: u32) -> $ty {
            self.bounds = $crate::adaptive::algorithm::Bounds { min, max };
            self.estimate = f64::from(self.initial.clamp(min, max.max(min)));
            self
        }

        #[doc = concat!("How much of each change is taken, in (0, 1]. Default ", $smoothing, ".")]
        ///
        #[doc = concat!("```\nlet _ = palisade::adaptive::", stringify!($ty), "::new(16).smoothing(0.5);\n```")]
        pub fn smoothing(mut self, smoothing: f64) -> $ty {
            self.smoothing = smoothing;
            self
        }

        #[doc = concat!("How often ", $probed, " is learned afresh. Default 30 s.")]
        ///
        #[doc = concat!("```\nlet _ = palisade::adaptive::", stringify!($ty), "::new(16).probe(std::time::Duration::from_secs(10));\n```")]
        pub fn probe(mut self, every: std::time::Duration) -> $ty {
            self.probe.every = every;
            self
        }
    };
}
pub(crate) use shared_settings;

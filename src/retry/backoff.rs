//! How long to wait before each retry: a pure function of the retry's
//! number, the previous delay and a random draw.

use std::time::Duration;

use super::layer::LAYER;
use crate::{
    error::{ConfigError, check},
    random::Random,
};

/// The growth of the delays before retries, capped by a maximum, and their
/// jitter.
///
/// The `n`-th retry (0 for the first) waits, before jitter:
///
/// | kind | delay |
/// |---|---|
/// | [`constant(d)`](Backoff::constant) | `d` |
/// | [`linear(base, step)`](Backoff::linear) | `min(max, base + step · n)` |
/// | [`exponential(base, multiplier)`](Backoff::exponential) | `min(max, base · multiplierⁿ)` |
///
/// then [`Jitter`] spreads it, never beyond [`max_delay`](Backoff::max_delay)
/// (default 30 s). The arithmetic saturates: retry 10 000 of an exponential
/// backoff waits the maximum, it does not overflow.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use palisade::{random::FastRandom, retry::{Backoff, Jitter}};
///
/// let backoff = Backoff::exponential(Duration::from_millis(100), 2.0)
///     .max_delay(Duration::from_secs(1));
/// let delays: Vec<_> = backoff.delays(FastRandom::seeded(1)).take(6).collect();
/// assert_eq!(delays, [100, 200, 400, 800, 1000, 1000].map(Duration::from_millis));
///
/// // Full jitter: anywhere in [0, d].
/// let jittered = backoff.jitter(Jitter::Full);
/// assert!(jittered.delays(FastRandom::seeded(1)).take(100).all(|d| d <= Duration::from_secs(1)));
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
pub struct Backoff {
    #[cfg_attr(feature = "serde", serde(flatten))]
    growth: Growth,
    #[cfg_attr(
        feature = "serde",
        serde(
            rename = "max_delay",
            with = "humantime_serde",
            default = "thirty_seconds"
        )
    )]
    max: Duration,
    #[cfg_attr(feature = "serde", serde(default))]
    jitter: Jitter,
}

/// The default maximum delay.
#[cfg(feature = "serde")]
fn thirty_seconds() -> Duration {
    Duration::from_secs(30)
}

#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
enum Growth {
    Constant(#[cfg_attr(feature = "serde", serde(with = "humantime_serde"))] Duration),
    Linear {
        #[cfg_attr(feature = "serde", serde(with = "humantime_serde"))]
        base: Duration,
        #[cfg_attr(feature = "serde", serde(with = "humantime_serde"))]
        step: Duration,
    },
    Exponential {
        #[cfg_attr(feature = "serde", serde(with = "humantime_serde"))]
        base: Duration,
        multiplier: f64,
    },
}

/// An exponential backoff from 100 ms, doubling, with full jitter, at most
/// 30 s: the retry builder's default.
///
/// ```
/// use std::time::Duration;
/// use palisade::retry::{Backoff, Jitter};
/// let default = Backoff::exponential(Duration::from_millis(100), 2.0).jitter(Jitter::Full);
/// assert_eq!(Backoff::default(), default);
/// ```
impl Default for Backoff {
    fn default() -> Backoff {
        Backoff::exponential(Duration::from_millis(100), 2.0).jitter(Jitter::Full)
    }
}

/// How a delay `d` is spread at random, so that clients that failed together
/// do not retry together. Draws come from the layer's
/// [`Random`](crate::random::Random).
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use palisade::retry::{Backoff, Jitter};
///
/// let _ = Backoff::exponential(Duration::from_millis(50), 2.0).jitter(Jitter::Equal);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum Jitter {
    /// `d` exactly.
    #[default]
    None,
    /// Uniform in `[0, d]`.
    Full,
    /// `d/2` plus uniform in `[0, d/2]`.
    Equal,
    /// Uniform in `[base, 3 · previous delay]` (the first draw's previous
    /// delay is `base`), capped: the delays wander instead of following the
    /// growth. `base` is the backoff's first delay.
    Decorrelated,
    /// `d · U[1 − f, 1 + f]` for a fraction `f` in `[0, 1]`, as gRPC spreads
    /// its backoff. Capped by the maximum after the spread.
    Proportional(f64),
}

impl Backoff {
    /// The same delay before every retry.
    ///
    /// ```
    /// # use std::time::Duration;
    /// let _ = palisade::retry::Backoff::constant(Duration::from_millis(200));
    /// ```
    pub const fn constant(delay: Duration) -> Backoff {
        Backoff::new(Growth::Constant(delay))
    }

    /// `base`, then `step` more before each further retry.
    ///
    /// ```
    /// # use std::time::Duration;
    /// let _ = palisade::retry::Backoff::linear(Duration::from_millis(100), Duration::from_millis(100));
    /// ```
    pub const fn linear(base: Duration, step: Duration) -> Backoff {
        Backoff::new(Growth::Linear { base, step })
    }

    /// `base`, multiplied by `multiplier` (at least 1) before each further
    /// retry.
    ///
    /// ```
    /// # use std::time::Duration;
    /// let _ = palisade::retry::Backoff::exponential(Duration::from_millis(100), 2.0);
    /// ```
    pub const fn exponential(base: Duration, multiplier: f64) -> Backoff {
        Backoff::new(Growth::Exponential { base, multiplier })
    }

    const fn new(growth: Growth) -> Backoff {
        Backoff {
            growth,
            max: Duration::from_secs(30),
            jitter: Jitter::None,
        }
    }

    /// No delay, jittered or not, exceeds `max`. Default 30 s.
    ///
    /// ```
    /// # use std::time::Duration;
    /// let _ = palisade::retry::Backoff::exponential(Duration::from_millis(100), 2.0)
    ///     .max_delay(Duration::from_secs(5));
    /// ```
    pub const fn max_delay(mut self, max: Duration) -> Backoff {
        self.max = max;
        self
    }

    /// Spreads the delays: see [`Jitter`]. Default [`Jitter::None`].
    ///
    /// ```
    /// # use std::time::Duration;
    /// use palisade::retry::{Backoff, Jitter};
    /// let _ = Backoff::constant(Duration::from_millis(100)).jitter(Jitter::Proportional(0.2));
    /// ```
    pub const fn jitter(mut self, jitter: Jitter) -> Backoff {
        self.jitter = jitter;
        self
    }

    /// The delays before the first, second, … retry, drawing from `random`.
    /// An endless sequence: the layer stops by attempts, deadline or budget.
    ///
    /// ```
    /// # use std::time::Duration;
    /// use palisade::{random::FastRandom, retry::Backoff};
    /// let linear = Backoff::linear(Duration::from_secs(1), Duration::from_secs(2));
    /// let delays: Vec<_> = linear.delays(FastRandom::seeded(0)).take(3).collect();
    /// assert_eq!(delays, [1, 3, 5].map(Duration::from_secs));
    /// ```
    pub fn delays<R: Random>(self, random: R) -> impl Iterator<Item = Duration> {
        let mut previous = self.base();
        (0u32..).map(move |retry| {
            let delay = self.delay(retry, previous, &random);
            previous = delay;
            delay
        })
    }

    /// The first delay, before growth and jitter.
    ///
    /// ```
    /// # use std::time::Duration;
    /// let backoff = palisade::retry::Backoff::exponential(Duration::from_millis(100), 2.0);
    /// assert_eq!(backoff.base(), Duration::from_millis(100));
    /// ```
    pub fn base(&self) -> Duration {
        match self.growth {
            Growth::Constant(base)
            | Growth::Linear { base, .. }
            | Growth::Exponential { base, .. } => base,
        }
    }

    /// The most any delay is ([`max_delay`](Self::max_delay)).
    ///
    /// ```
    /// # use std::time::Duration;
    /// let backoff = palisade::retry::Backoff::constant(Duration::from_millis(100));
    /// assert_eq!(backoff.cap(), Duration::from_secs(30));
    /// ```
    pub fn cap(&self) -> Duration {
        self.max
    }

    /// The delay before retry number `retry` (0 for the first), after a
    /// delay of `previous` (the base before the first).
    pub(crate) fn delay<R: Random>(&self, retry: u32, previous: Duration, random: &R) -> Duration {
        let grown = match self.growth {
            Growth::Constant(delay) => delay,
            Growth::Linear { base, step } => base.saturating_add(step.saturating_mul(retry)),
            Growth::Exponential { base, multiplier } => {
                // Past 2¹⁰ retries the product is either the cap or infinite.
                let factor = multiplier.powi(retry.min(1 << 10) as i32);
                seconds(base.as_secs_f64() * factor, self.max)
            }
        };
        let d = grown.min(self.max);
        let jittered = match self.jitter {
            Jitter::None => d,
            Jitter::Full => d.mul_f64(random.next_f64()),
            Jitter::Equal => d / 2 + (d / 2).mul_f64(random.next_f64()),
            Jitter::Decorrelated => {
                let low = self.base().as_secs_f64();
                let high = (previous.as_secs_f64() * 3.0).max(low);
                seconds(low + (high - low) * random.next_f64(), self.max)
            }
            Jitter::Proportional(fraction) => {
                let spread = 1.0 + fraction * (2.0 * random.next_f64() - 1.0);
                seconds(d.as_secs_f64() * spread, self.max)
            }
        };
        jittered.min(self.max)
    }

    /// Refuses what no backoff can mean.
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        check::positive(LAYER, "backoff.max_delay", self.max)?;
        if let Growth::Exponential { multiplier, .. } = self.growth {
            if !(multiplier.is_finite() && multiplier >= 1.0) {
                return Err(ConfigError::new(
                    LAYER,
                    "backoff.multiplier",
                    format!("must be a finite number ≥ 1, got {multiplier}"),
                ));
            }
        }
        if let Jitter::Proportional(fraction) = self.jitter {
            if !(0.0..=1.0).contains(&fraction) {
                return Err(ConfigError::new(
                    LAYER,
                    "backoff.jitter",
                    format!("proportional jitter must be in [0, 1], got {fraction}"),
                ));
            }
        }
        Ok(())
    }
}

/// `secs` as a duration, at most `max` (also for infinity; NaN cannot
/// occur: every factor is finite and non-negative, or the product of
/// infinity and a positive number).
fn seconds(secs: f64, max: Duration) -> Duration {
    Duration::try_from_secs_f64(secs).map_or(max, |d| d.min(max))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::random::FastRandom;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn retry_ten_thousand_waits_the_cap() {
        let random = FastRandom::seeded(0);
        let backoff = Backoff::exponential(MS, 10.0).max_delay(60 * MS);
        assert_eq!(backoff.delay(10_000, MS, &random), 60 * MS);
        assert_eq!(backoff.delay(u32::MAX, MS, &random), 60 * MS);
        let linear = Backoff::linear(Duration::MAX, Duration::MAX).max_delay(MS);
        assert_eq!(linear.delay(u32::MAX, MS, &random), MS);
    }

    #[test]
    fn invalid_factors_name_the_field() {
        let field = |b: Backoff| b.validate().unwrap_err().field();
        assert_eq!(
            field(Backoff::exponential(MS, f64::NAN)),
            "backoff.multiplier"
        );
        assert_eq!(field(Backoff::exponential(MS, -2.0)), "backoff.multiplier");
        assert_eq!(
            field(Backoff::exponential(MS, f64::INFINITY)),
            "backoff.multiplier"
        );
        assert_eq!(field(Backoff::exponential(MS, 0.5)), "backoff.multiplier");
        assert_eq!(
            field(Backoff::constant(MS).jitter(Jitter::Proportional(-0.1))),
            "backoff.jitter"
        );
        assert_eq!(
            field(Backoff::constant(MS).jitter(Jitter::Proportional(f64::NAN))),
            "backoff.jitter"
        );
        assert_eq!(
            field(Backoff::constant(MS).max_delay(Duration::ZERO)),
            "backoff.max_delay"
        );
    }
}

//! How long an injected delay lasts: a distribution, sampled from one
//! uniform draw (pure: the layer draws, this turns the draw into a time).

use std::time::Duration;

use super::layer::LAYER;
use crate::error::{ConfigError, check};

/// The distribution of an injected delay.
///
/// Each is sampled by inverting its distribution function at one uniform
/// draw of the layer's [`Random`](crate::random::Random), so a seeded run
/// draws the same delays again. Every delay is at most 100 years.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use palisade::chaos::Latency;
///
/// let ms = Duration::from_millis;
/// assert_eq!(Latency::Fixed(ms(50)).sample(0.3), ms(50));
/// assert_eq!(Latency::Uniform { min: ms(10), max: ms(30) }.sample(0.5), ms(20));
/// // The median of an exponential is its mean times ln 2.
/// let median = Latency::Exponential { mean: ms(100) }.sample(0.5);
/// assert_eq!(median.as_millis(), 69);
/// // A Pareto tail: most delays near the scale, a few far beyond it.
/// let tail = Latency::Pareto { scale: ms(10), shape: 1.5, max: Duration::from_secs(10) };
/// assert_eq!(tail.sample(0.0), ms(10));
/// assert!(tail.sample(0.999) > ms(500));
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub enum Latency {
    /// Always this long.
    Fixed(Duration),
    /// Evenly spread from `min` to `max`.
    Uniform {
        /// The shortest.
        min: Duration,
        /// The longest, at least `min`.
        max: Duration,
    },
    /// Memoryless, of this mean: many short, some several times the mean.
    Exponential {
        /// The mean delay, above zero.
        mean: Duration,
    },
    /// A long tail (Pareto): at least `scale`, and beyond `x` with
    /// probability `(scale / x)^shape` — a smaller shape, a heavier tail.
    /// Capped at `max`.
    Pareto {
        /// The shortest delay, above zero.
        scale: Duration,
        /// The tail's exponent, above zero.
        shape: f64,
        /// The longest delay drawn.
        max: Duration,
    },
}

impl Default for Latency {
    /// A fixed 100 ms.
    fn default() -> Latency {
        Latency::Fixed(Duration::from_millis(100))
    }
}

impl Latency {
    /// The delay at the uniform draw `u` in `[0, 1)`: the inverse of the
    /// distribution function (a draw outside is clamped into the range).
    pub fn sample(&self, u: f64) -> Duration {
        let u = if u.is_nan() { 0.0 } else { u.clamp(0.0, 1.0) };
        // In nanoseconds, rounded to the nearest.
        let nanos = |duration: Duration| duration.as_nanos() as f64;
        let drawn = match *self {
            Latency::Fixed(delay) => return delay,
            Latency::Uniform { min, max } => nanos(min) + (nanos(max) - nanos(min)) * u,
            Latency::Exponential { mean } => -nanos(mean) * (1.0 - u).ln(),
            Latency::Pareto { scale, shape, max } => {
                (nanos(scale) / (1.0 - u).powf(1.0 / shape)).min(nanos(max))
            }
        };
        Duration::from_nanos(drawn.clamp(0.0, nanos(check::LONGEST)).round() as u64)
    }

    /// Every time of the distribution `factor` times longer (`factor`
    /// above 0; each time capped at 100 years). (For `sim`, which the loom
    /// build leaves out.)
    #[cfg(not(loom))]
    pub(crate) fn scaled(self, factor: f64) -> Latency {
        let scale = |duration: Duration| {
            Duration::try_from_secs_f64(duration.as_secs_f64() * factor)
                .unwrap_or(check::LONGEST)
                .min(check::LONGEST)
        };
        match self {
            Latency::Fixed(delay) => Latency::Fixed(scale(delay)),
            Latency::Uniform { min, max } => Latency::Uniform {
                min: scale(min),
                max: scale(max),
            },
            Latency::Exponential { mean } => Latency::Exponential { mean: scale(mean) },
            Latency::Pareto {
                scale: s,
                shape,
                max,
            } => Latency::Pareto {
                scale: scale(s),
                shape,
                max: scale(max),
            },
        }
    }

    /// Checks the numbers, as the builder does.
    pub(crate) fn check(&self) -> Result<(), ConfigError> {
        const FIELD: &str = "latency";
        let long = |duration| check::at_most_longest(LAYER, FIELD, duration);
        match *self {
            Latency::Fixed(delay) => long(delay),
            Latency::Uniform { min, max } => {
                long(max)?;
                if min > max {
                    return Err(ConfigError::new(
                        LAYER,
                        FIELD,
                        format!("a uniform delay needs min ≤ max, got {min:?} > {max:?}"),
                    ));
                }
                Ok(())
            }
            Latency::Exponential { mean } => {
                check::positive(LAYER, FIELD, mean)?;
                long(mean)
            }
            Latency::Pareto { scale, shape, max } => {
                check::positive(LAYER, FIELD, scale)?;
                long(max)?;
                if !(shape > 0.0 && shape.is_finite()) || scale > max {
                    return Err(ConfigError::new(
                        LAYER,
                        FIELD,
                        format!(
                            "a Pareto delay needs a finite shape above 0 and scale ≤ max, got \
                             shape {shape}, scale {scale:?}, max {max:?}"
                        ),
                    ));
                }
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn samples_follow_each_distribution_s_quantiles() {
        let uniform = Latency::Uniform {
            min: 10 * MS,
            max: 20 * MS,
        };
        assert_eq!(uniform.sample(0.0), 10 * MS);
        assert_eq!(uniform.sample(0.25), 12 * MS + MS / 2);
        let exponential = Latency::Exponential { mean: 100 * MS };
        assert_eq!(exponential.sample(0.0), Duration::ZERO);
        // The 95th percentile of an exponential is its mean times ln 20.
        let p95 = exponential.sample(0.95).as_secs_f64();
        assert!((p95 - 0.1 * 20f64.ln()).abs() < 1e-9, "{p95}");
        let pareto = Latency::Pareto {
            scale: 10 * MS,
            shape: 2.0,
            max: Duration::from_secs(1),
        };
        // P(X > x) = (10 ms / x)²: beyond 100 ms with probability 1 %.
        assert_eq!(pareto.sample(0.99).as_millis(), 100);
        assert_eq!(pareto.sample(0.999_999_9), Duration::from_secs(1), "capped");
        assert_eq!(pareto.sample(f64::NAN), 10 * MS, "a NaN draw is the lowest");
    }

    #[test]
    fn a_scaled_distribution_draws_times_that_many_times_longer() {
        let pareto = Latency::Pareto {
            scale: 10 * MS,
            shape: 2.0,
            max: Duration::from_secs(1),
        };
        for latency in [
            Latency::Fixed(10 * MS),
            Latency::Uniform {
                min: MS,
                max: 30 * MS,
            },
            Latency::Exponential { mean: 20 * MS },
            pareto,
        ] {
            for u in [0.0, 0.5, 0.9] {
                let (scaled, times_ten) = (latency.scaled(10.0).sample(u), latency.sample(u) * 10);
                // (Each draw is rounded to the nanosecond before the ×10.)
                assert!(
                    scaled.abs_diff(times_ten) <= Duration::from_nanos(10),
                    "{latency:?} at {u}: {scaled:?} vs {times_ten:?}"
                );
            }
        }
        assert_eq!(
            Latency::Fixed(Duration::from_secs(1)).scaled(1e30),
            Latency::Fixed(check::LONGEST),
            "capped"
        );
    }

    #[test]
    fn bad_numbers_are_refused() {
        let bad = [
            Latency::Uniform {
                min: 2 * MS,
                max: MS,
            },
            Latency::Exponential {
                mean: Duration::ZERO,
            },
            Latency::Pareto {
                scale: MS,
                shape: 0.0,
                max: MS,
            },
            Latency::Pareto {
                scale: 2 * MS,
                shape: 1.0,
                max: MS,
            },
            Latency::Fixed(Duration::MAX),
        ];
        for latency in bad {
            assert_eq!(
                latency.check().unwrap_err().field(),
                "latency",
                "{latency:?}"
            );
        }
        assert!(Latency::default().check().is_ok());
    }
}

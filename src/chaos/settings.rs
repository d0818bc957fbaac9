//! The chaos layer's settings as one value — what is injected, how often —
//! and the pure decision a request's draws make of them.

use super::{latency::Latency, layer::LAYER};
use crate::error::ConfigError;

/// What a [`ChaosLayer`](super::ChaosLayer) injects, and how often: read
/// back with [`settings`](super::ChaosLayer::settings), changed while it
/// runs with [`reconfigure`](super::ChaosLayer::reconfigure).
///
/// A request is given at most one fault — an error, a response or a hang,
/// with the probabilities `error`, `response` and `hang`, which add up to
/// one at most — and, independently, a delay with probability `latency`,
/// drawn from `delay`, before its fault or its call.
///
/// With feature `serde`, in TOML:
///
/// ```toml
/// enabled = true
/// error = 0.05
/// response = 0.0
/// hang = 0.01
/// latency = 0.2
/// delay = { exponential = { mean = "50ms" } }
/// ```
///
/// ```
/// use palisade::chaos::{ChaosLayer, Settings};
///
/// let layer = ChaosLayer::<u32, u32>::builder().error(0.1).build()?;
/// let mut settings = layer.settings();
/// assert_eq!(settings.error, 0.1);
/// settings.error = 0.5;
/// layer.reconfigure(settings)?;
/// assert_eq!(layer.settings().error, 0.5);
/// # Ok::<(), palisade::error::ConfigError>(())
/// ```
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Settings {
    /// Whether anything is injected at all. Disabled, the layer passes
    /// every request through, at the cost of one atomic read.
    pub enabled: bool,
    /// The probability of failing a request with an error, without calling
    /// the wrapped service.
    pub error: f64,
    /// The probability of answering a request with a made-up response,
    /// without calling the wrapped service.
    pub response: f64,
    /// The probability of never answering a request (until the caller
    /// gives up and drops it), without calling the wrapped service.
    pub hang: f64,
    /// The probability of delaying a request, independently of the faults.
    pub latency: f64,
    /// How long a delay lasts.
    pub delay: Latency,
}

impl Default for Settings {
    /// Enabled, injecting nothing, a delay of 100 ms should one be asked.
    fn default() -> Settings {
        Settings {
            enabled: true,
            error: 0.0,
            response: 0.0,
            hang: 0.0,
            latency: 0.0,
            delay: Latency::default(),
        }
    }
}

/// What a request is given instead of the wrapped service's answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Fault {
    Error,
    Response,
    Hang,
}

impl Fault {
    /// Its name in events and metrics.
    pub(crate) const fn as_str(self) -> &'static str {
        match self {
            Fault::Error => "error",
            Fault::Response => "response",
            Fault::Hang => "hang",
        }
    }
}

impl Settings {
    /// Checks the settings as the builder checks them.
    pub(crate) fn check(&self) -> Result<(), ConfigError> {
        let mut sum = 0.0;
        for (field, probability) in [
            ("error", self.error),
            ("response", self.response),
            ("hang", self.hang),
        ] {
            probable(field, probability)?;
            sum += probability;
            // (Leeway for sums such as 0.1 + 0.2 + 0.7, a hair above 1 in
            // floating point.)
            if sum > 1.0 + 1e-9 {
                return Err(ConfigError::new(
                    LAYER,
                    field,
                    format!(
                        "brings the probabilities of error, response and hang to {sum}: a \
                         request gets one fault at most, so they must add up to 1 at most"
                    ),
                ));
            }
        }
        probable("latency", self.latency)?;
        self.delay.check()
    }

    /// The fault, if any, that the uniform draw `draw` in `[0, 1)` gives a
    /// request.
    pub(crate) fn fault(&self, draw: f64) -> Option<Fault> {
        let mut below = 0.0;
        for (fault, probability) in [
            (Fault::Error, self.error),
            (Fault::Response, self.response),
            (Fault::Hang, self.hang),
        ] {
            below += probability;
            if draw < below {
                return Some(fault);
            }
        }
        None
    }

    /// Whether the uniform draw `draw` in `[0, 1)` delays a request.
    pub(crate) fn delays(&self, draw: f64) -> bool {
        draw < self.latency
    }
}

/// `probability` must lie in [0, 1] (which also refuses NaN).
fn probable(field: &'static str, probability: f64) -> Result<(), ConfigError> {
    if !(0.0..=1.0).contains(&probability) {
        return Err(ConfigError::new(
            LAYER,
            field,
            format!("must be a probability, in [0, 1], got {probability}"),
        ));
    }
    Ok(())
}

#[cfg(feature = "serde")]
mod form {
    use std::time::Duration;

    use super::{Latency, Settings};

    #[derive(serde::Serialize, serde::Deserialize)]
    #[serde(remote = "Latency", rename_all = "snake_case", deny_unknown_fields)]
    enum LatencyForm {
        Fixed(#[serde(with = "humantime_serde")] Duration),
        Uniform {
            #[serde(with = "humantime_serde")]
            min: Duration,
            #[serde(with = "humantime_serde")]
            max: Duration,
        },
        Exponential {
            #[serde(with = "humantime_serde")]
            mean: Duration,
        },
        Pareto {
            #[serde(with = "humantime_serde")]
            scale: Duration,
            shape: f64,
            #[serde(with = "humantime_serde")]
            max: Duration,
        },
    }

    #[derive(serde::Serialize, serde::Deserialize)]
    #[serde(remote = "Settings", deny_unknown_fields)]
    struct Form {
        #[serde(default = "enabled")]
        enabled: bool,
        #[serde(default)]
        error: f64,
        #[serde(default)]
        response: f64,
        #[serde(default)]
        hang: f64,
        #[serde(default)]
        latency: f64,
        #[serde(with = "LatencyForm", default)]
        delay: Latency,
    }

    fn enabled() -> bool {
        true
    }

    crate::settings::checked_serde!(Settings, Form, Settings::check);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_draw_picks_at_most_one_fault_by_its_probability() {
        let settings = Settings {
            error: 0.1,
            response: 0.2,
            hang: 0.3,
            ..Settings::default()
        };
        assert_eq!(settings.fault(0.0), Some(Fault::Error));
        assert_eq!(settings.fault(0.099), Some(Fault::Error));
        assert_eq!(settings.fault(0.1), Some(Fault::Response));
        assert_eq!(settings.fault(0.299), Some(Fault::Response));
        // (0.1 + 0.2 is a hair above 0.3 in floating point.)
        assert_eq!(settings.fault(0.301), Some(Fault::Hang));
        assert_eq!(settings.fault(0.61), None);
        assert_eq!(Settings::default().fault(0.0), None, "0 never injects");
        let always = Settings {
            hang: 1.0,
            latency: 1.0,
            ..Settings::default()
        };
        assert_eq!(always.fault(0.999_999), Some(Fault::Hang));
        assert!(always.delays(0.999_999));
        let half = Settings {
            latency: 0.5,
            ..Settings::default()
        };
        assert!(half.delays(0.499_999));
        assert!(!half.delays(0.5), "a draw at the probability is above it");
        assert!(!Settings::default().delays(0.0), "0 never delays");
    }

    #[test]
    fn probabilities_may_add_up_to_a_hair_above_one() {
        // 0.1 + 0.2 + 0.7 is a hair above 1 in floating point; the leeway is
        // 10⁻⁹, and not a bit more.
        let leeway = |error: f64| Settings {
            error,
            hang: 1.0,
            ..Settings::default()
        };
        assert!(leeway(1e-9).check().is_ok());
        assert_eq!(leeway(2e-9).check().unwrap_err().field(), "hang");
        let tenths = Settings {
            error: 0.1,
            response: 0.2,
            hang: 0.7,
            ..Settings::default()
        };
        assert!(tenths.check().is_ok());
    }

    #[test]
    fn probabilities_out_of_range_or_above_one_together_are_refused_by_field() {
        let field = |settings: Settings| settings.check().unwrap_err().field().to_owned();
        let base = Settings::default();
        assert_eq!(
            field(Settings {
                error: -0.1,
                ..base
            }),
            "error"
        );
        assert_eq!(
            field(Settings {
                latency: f64::NAN,
                ..base
            }),
            "latency"
        );
        assert_eq!(
            field(Settings {
                error: 0.6,
                response: 0.3,
                hang: 0.2,
                ..base
            }),
            "hang"
        );
        assert!(
            Settings {
                error: 0.5,
                response: 0.5,
                ..base
            }
            .check()
            .is_ok()
        );
    }
}

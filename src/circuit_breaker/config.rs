//! What a breaker is told: the failure model, the thresholds, how long it
//! stays open, how it probes. Validated once, when the layer is built.

use std::time::Duration;

use super::window;
use crate::error::{ConfigError, check};

pub(crate) const LAYER: &str = "circuit_breaker";

/// The most calls a count window remembers (a word each).
const MAX_COUNT_WINDOW: u32 = 1 << 20;

/// The longest a server's pushback may keep a breaker open.
const MAX_PUSHBACK: Duration = Duration::from_secs(86_400);

/// The most buckets of a time window.
const MAX_BUCKETS: u32 = 4096;

/// How a closed breaker decides that the service is failing.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use palisade::circuit_breaker::FailureModel;
///
/// let in_a_row = FailureModel::ConsecutiveFailures(5);
/// let last_100 = FailureModel::CountWindow(100);
/// let last_minute = FailureModel::TimeWindow { window: Duration::from_secs(60), buckets: 12 };
/// # let _ = (in_a_row, last_100, last_minute);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(
    feature = "serde",
    serde(rename_all = "snake_case", deny_unknown_fields)
)]
pub enum FailureModel {
    /// Open after this many failures in a row; a success resets the count.
    /// Slow-call detection needs a window and is not available here.
    ConsecutiveFailures(u32),
    /// Failure rate over the last `n` calls.
    CountWindow(u32),
    /// Failure rate over the calls of the last `window` of time, kept in
    /// `buckets` buckets of `window / buckets` each: memory is O(buckets),
    /// and a bucket ages out whole, so the window covers between
    /// `window - window / buckets` and `window` of history.
    TimeWindow {
        /// How far back the window reaches.
        #[cfg_attr(feature = "serde", serde(with = "humantime_serde"))]
        window: Duration,
        /// How many buckets hold it.
        buckets: u32,
    },
}

/// How long a breaker stays open before it lets probes through.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use palisade::circuit_breaker::OpenDuration;
///
/// let fixed = OpenDuration::fixed(Duration::from_secs(30));
/// // 5 s, then 10 s, 20 s, … up to 5 min for each re-open in a row, ±20 % jitter.
/// let growing = OpenDuration::exponential(Duration::from_secs(5), 2.0, Duration::from_secs(300))
///     .jitter(0.2);
/// # let _ = (fixed, growing);
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(default, deny_unknown_fields))]
pub struct OpenDuration {
    #[cfg_attr(feature = "serde", serde(with = "humantime_serde"))]
    pub(crate) initial: Duration,
    pub(crate) multiplier: f64,
    #[cfg_attr(feature = "serde", serde(with = "humantime_serde"))]
    pub(crate) max: Duration,
    pub(crate) jitter: f64,
}

/// Fixed, 30 s (the builder's default).
///
/// ```
/// use std::time::Duration;
/// use palisade::circuit_breaker::OpenDuration;
/// assert_eq!(OpenDuration::default(), OpenDuration::fixed(Duration::from_secs(30)));
/// ```
impl Default for OpenDuration {
    fn default() -> OpenDuration {
        OpenDuration::fixed(Duration::from_secs(30))
    }
}

impl OpenDuration {
    /// Always `duration`.
    ///
    /// ```
    /// # use std::time::Duration;
    /// let _ = palisade::circuit_breaker::OpenDuration::fixed(Duration::from_secs(10));
    /// ```
    pub const fn fixed(duration: Duration) -> OpenDuration {
        OpenDuration {
            initial: duration,
            multiplier: 1.0,
            max: duration,
            jitter: 0.0,
        }
    }

    /// `initial` the first time the breaker opens, multiplied by
    /// `multiplier` for each re-open in a row (half-open probes failed), never
    /// more than `max`. Closing the breaker starts the sequence again.
    ///
    /// ```
    /// # use std::time::Duration;
    /// let _ = palisade::circuit_breaker::OpenDuration::exponential(
    ///     Duration::from_secs(1), 2.0, Duration::from_secs(60));
    /// ```
    pub const fn exponential(initial: Duration, multiplier: f64, max: Duration) -> OpenDuration {
        OpenDuration {
            initial,
            multiplier,
            max,
            jitter: 0.0,
        }
    }

    /// Spreads each duration `d` uniformly over `d · [1 − fraction, 1 +
    /// fraction)`, so that many clients do not probe at the same instant. The
    /// maximum caps `d` before the spread. The draw comes from the layer's
    /// [`Random`](crate::random::Random).
    ///
    /// ```
    /// # use std::time::Duration;
    /// let _ = palisade::circuit_breaker::OpenDuration::fixed(Duration::from_secs(10)).jitter(0.1);
    /// ```
    pub const fn jitter(mut self, fraction: f64) -> OpenDuration {
        self.jitter = fraction;
        self
    }

    /// The duration of the `reopens`-th re-open in a row (0 for the first
    /// open), for a uniform draw `unit` in `[0, 1)`.
    pub(crate) fn nth(&self, reopens: u32, unit: f64) -> Duration {
        let grown = self.initial.as_secs_f64() * self.multiplier.powi(reopens.min(1_000) as i32);
        // `min` keeps an overflowing product (infinity) within the maximum.
        let capped = grown.min(self.max.as_secs_f64());
        let spread = 1.0 + self.jitter * (2.0 * unit - 1.0);
        Duration::try_from_secs_f64(capped * spread).unwrap_or(Duration::MAX)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        positive("open_duration.initial", self.initial)?;
        if !(self.multiplier.is_finite() && self.multiplier >= 1.0) {
            return Err(ConfigError::new(
                LAYER,
                "open_duration.multiplier",
                format!("must be a finite number ≥ 1, got {}", self.multiplier),
            ));
        }
        if self.max < self.initial {
            return Err(ConfigError::new(
                LAYER,
                "open_duration.max",
                format!(
                    "must be at least the initial duration {:?}, got {:?}",
                    self.initial, self.max
                ),
            ));
        }
        if !(0.0..1.0).contains(&self.jitter) {
            return Err(ConfigError::new(
                LAYER,
                "open_duration.jitter",
                format!("must be in [0, 1), got {}", self.jitter),
            ));
        }
        Ok(())
    }
}

/// How a half-open breaker probes the service.
///
/// At most `max_probes` calls are let through at once. After `probes`
/// probe results the breaker closes if at least `success_rate` of them
/// succeeded; it decides as soon as the result is certain, so with the
/// default `success_rate` of 1 the first failed probe re-opens it.
///
/// A probe that has not finished `timeout` after it was admitted counts as a
/// failure and frees its slot; a probe whose future is dropped frees its slot
/// and counts for nothing. Either way the breaker cannot stay half-open
/// forever.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use palisade::circuit_breaker::HalfOpen;
///
/// // Two probes at a time; close when 8 of 10 succeed.
/// let half_open = HalfOpen::new()
///     .max_probes(2)
///     .probes(10)
///     .success_rate(0.8)
///     .timeout(Duration::from_secs(5));
/// # let _ = half_open;
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(default, deny_unknown_fields))]
pub struct HalfOpen {
    pub(crate) max_probes: u32,
    pub(crate) probes: u32,
    pub(crate) success_rate: f64,
    #[cfg_attr(feature = "serde", serde(with = "humantime_serde"))]
    pub(crate) timeout: Duration,
}

impl HalfOpen {
    /// One probe at a time; three successes in a row close; a failure
    /// re-opens; a probe times out after 30 s.
    ///
    /// ```
    /// let _ = palisade::circuit_breaker::HalfOpen::new();
    /// ```
    pub const fn new() -> HalfOpen {
        HalfOpen {
            max_probes: 1,
            probes: 3,
            success_rate: 1.0,
            timeout: Duration::from_secs(30),
        }
    }

    /// How many probes may be in flight at once.
    ///
    /// ```
    /// let _ = palisade::circuit_breaker::HalfOpen::new().max_probes(4);
    /// ```
    pub const fn max_probes(mut self, max_probes: u32) -> HalfOpen {
        self.max_probes = max_probes;
        self
    }

    /// How many probe results decide between closing and re-opening.
    ///
    /// ```
    /// let _ = palisade::circuit_breaker::HalfOpen::new().probes(5);
    /// ```
    pub const fn probes(mut self, probes: u32) -> HalfOpen {
        self.probes = probes;
        self
    }

    /// The share of successful probes needed to close, in (0, 1].
    ///
    /// ```
    /// let _ = palisade::circuit_breaker::HalfOpen::new().probes(10).success_rate(0.9);
    /// ```
    pub const fn success_rate(mut self, rate: f64) -> HalfOpen {
        self.success_rate = rate;
        self
    }

    /// How long a probe may run before it counts as a failure.
    ///
    /// ```
    /// # use std::time::Duration;
    /// let _ = palisade::circuit_breaker::HalfOpen::new().timeout(Duration::from_secs(2));
    /// ```
    pub const fn timeout(mut self, timeout: Duration) -> HalfOpen {
        self.timeout = timeout;
        self
    }

    /// Successes needed to close: `ceil(success_rate · probes)`, at least 1.
    pub(crate) fn successes_to_close(&self) -> u32 {
        ((self.success_rate * f64::from(self.probes)).ceil() as u32).clamp(1, self.probes)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        at_least_one("half_open.max_probes", self.max_probes)?;
        at_least_one("half_open.probes", self.probes)?;
        rate("half_open.success_rate", self.success_rate)?;
        positive("half_open.timeout", self.timeout)
    }
}

impl Default for HalfOpen {
    fn default() -> HalfOpen {
        HalfOpen::new()
    }
}

/// Slow-call detection: a call slower than `threshold` is slow, and the
/// breaker opens when the share of slow calls in the window reaches `rate`
/// (see [`CircuitBreakerBuilder::slow_calls`](super::CircuitBreakerBuilder::slow_calls)).
///
/// ```
/// use std::time::Duration;
/// use palisade::circuit_breaker::SlowCalls;
/// let slow = SlowCalls { threshold: Duration::from_secs(2), rate: 0.5 };
/// # let _ = slow;
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(deny_unknown_fields))]
pub struct SlowCalls {
    /// A call that takes at least this long is slow.
    #[cfg_attr(feature = "serde", serde(with = "humantime_serde"))]
    pub threshold: Duration,
    /// The share of slow calls in the window that opens the breaker, in
    /// (0, 1].
    pub rate: f64,
}

/// The settings of a breaker that can change while it runs: what
/// [`CircuitBreakerHandle::settings`](super::CircuitBreakerHandle::settings)
/// reads and
/// [`CircuitBreakerHandle::reconfigure`](super::CircuitBreakerHandle::reconfigure)
/// changes. Each field is the builder's method of the same name.
///
/// # Examples
///
/// ```
/// use palisade::circuit_breaker::CircuitBreakerLayer;
///
/// let handle = CircuitBreakerLayer::builder().build()?.handle();
/// let mut settings = handle.settings();
/// settings.failure_rate = 0.8; // too twitchy at 50 %
/// settings.minimum_calls = 50;
/// handle.reconfigure(settings)?;
/// assert_eq!(handle.settings().failure_rate, 0.8);
/// # Ok::<(), palisade::error::ConfigError>(())
/// ```
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Settings {
    /// How a closed breaker decides that the service is failing. Live, it
    /// keeps its kind, and a window its memory; see
    /// [`reconfigure`](super::CircuitBreakerHandle::reconfigure).
    pub failure_model: FailureModel,
    /// The failure rate that opens the breaker, in (0, 1].
    pub failure_rate: f64,
    /// The calls the window must hold before its rates may open the breaker.
    pub minimum_calls: u32,
    /// Slow-call detection, if any.
    pub slow_calls: Option<SlowCalls>,
    /// How long the breaker stays open.
    pub open_duration: OpenDuration,
    /// The longest a server's pushback may keep the breaker open.
    pub max_pushback: Duration,
    /// How the half-open breaker probes.
    pub half_open: HalfOpen,
}

/// The builder's defaults: a count window of 100 calls, 50 % failures over
/// at least 20, no slow-call detection, open 30 s, pushback up to 5 min,
/// [`HalfOpen::new`].
///
/// ```
/// use palisade::circuit_breaker::{FailureModel, Settings};
/// assert_eq!(Settings::default().failure_model, FailureModel::CountWindow(100));
/// ```
impl Default for Settings {
    fn default() -> Settings {
        Config::default().settings()
    }
}

#[cfg(feature = "serde")]
#[derive(serde::Serialize, serde::Deserialize)]
#[serde(
    remote = "Settings",
    default = "Settings::default",
    deny_unknown_fields
)]
struct Form {
    failure_model: FailureModel,
    failure_rate: f64,
    minimum_calls: u32,
    slow_calls: Option<SlowCalls>,
    open_duration: OpenDuration,
    #[serde(with = "humantime_serde")]
    max_pushback: Duration,
    half_open: HalfOpen,
}

#[cfg(feature = "serde")]
crate::settings::checked_serde!(Settings, Form, |settings| Config::default()
    .with(*settings)
    .validate());

/// Whether the breaker decides in `call` or holds callers in `poll_ready`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    FailFast,
    Backpressure,
}

/// The validated configuration of a breaker.
#[derive(Clone, Debug)]
pub(crate) struct Config {
    pub(crate) model: FailureModel,
    pub(crate) failure_rate: f64,
    pub(crate) minimum_calls: u32,
    pub(crate) slow_calls: Option<SlowCalls>,
    pub(crate) open_duration: OpenDuration,
    pub(crate) max_pushback: Duration,
    pub(crate) half_open: HalfOpen,
    pub(crate) mode: Mode,
    pub(crate) count_request_deadlines: bool,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            model: FailureModel::CountWindow(100),
            failure_rate: 0.5,
            minimum_calls: 20,
            slow_calls: None,
            open_duration: OpenDuration::fixed(Duration::from_secs(30)),
            max_pushback: Duration::from_secs(300),
            half_open: HalfOpen::new(),
            mode: Mode::FailFast,
            count_request_deadlines: false,
        }
    }
}

impl Config {
    /// The settings that can change live.
    pub(crate) fn settings(&self) -> Settings {
        Settings {
            failure_model: self.model,
            failure_rate: self.failure_rate,
            minimum_calls: self.minimum_calls,
            slow_calls: self.slow_calls,
            open_duration: self.open_duration,
            max_pushback: self.max_pushback,
            half_open: self.half_open,
        }
    }

    /// This configuration with `settings` in place of its own.
    pub(crate) fn with(&self, settings: Settings) -> Config {
        Config {
            model: settings.failure_model,
            failure_rate: settings.failure_rate,
            minimum_calls: settings.minimum_calls,
            slow_calls: settings.slow_calls,
            open_duration: settings.open_duration,
            max_pushback: settings.max_pushback,
            half_open: settings.half_open,
            ..self.clone()
        }
    }

    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        match self.model {
            FailureModel::ConsecutiveFailures(k) => {
                at_least_one("consecutive_failures", k)?;
                if self.slow_calls.is_some() {
                    return Err(ConfigError::new(
                        LAYER,
                        "slow_calls",
                        "needs a count or time window, not consecutive failures",
                    ));
                }
            }
            FailureModel::CountWindow(n) => {
                at_least_one("count_window", n)?;
                if n > MAX_COUNT_WINDOW {
                    return Err(ConfigError::new(
                        LAYER,
                        "count_window",
                        format!(
                            "must be at most {MAX_COUNT_WINDOW} calls (8 bytes a call: {} for \
                             {n}), got {n}",
                            check::bytes(u128::from(n) * 8)
                        ),
                    ));
                }
                if self.minimum_calls > n {
                    return Err(ConfigError::new(
                        LAYER,
                        "minimum_calls",
                        format!(
                            "must not exceed the count window of {n} calls, got {}",
                            self.minimum_calls
                        ),
                    ));
                }
            }
            FailureModel::TimeWindow { window, buckets } => {
                positive("time_window.window", window)?;
                check::at_most_longest(LAYER, "time_window.window", window)?;
                at_least_one("time_window.buckets", buckets)?;
                if buckets > MAX_BUCKETS {
                    return Err(ConfigError::new(
                        LAYER,
                        "time_window.buckets",
                        format!(
                            "must be at most {MAX_BUCKETS} ({} for {buckets}), got {buckets}",
                            check::bytes(u128::from(buckets) * window::BUCKET_BYTES)
                        ),
                    ));
                }
                if u128::from(buckets) > window.as_nanos() {
                    return Err(ConfigError::new(
                        LAYER,
                        "time_window.buckets",
                        format!(
                            "must not exceed the window in nanoseconds, got {buckets} for {window:?}"
                        ),
                    ));
                }
            }
        }
        rate("failure_rate", self.failure_rate)?;
        at_least_one("minimum_calls", self.minimum_calls)?;
        if let Some(slow) = self.slow_calls {
            positive("slow_calls.threshold", slow.threshold)?;
            rate("slow_calls.rate", slow.rate)?;
        }
        self.open_duration.validate()?;
        positive("max_pushback", self.max_pushback)?;
        if self.max_pushback > MAX_PUSHBACK {
            return Err(ConfigError::new(
                LAYER,
                "max_pushback",
                format!(
                    "must be at most a day (a server could keep the breaker open that long), got {:?}",
                    self.max_pushback
                ),
            ));
        }
        self.half_open.validate()
    }
}

fn positive(field: &'static str, duration: Duration) -> Result<(), ConfigError> {
    check::positive(LAYER, field, duration)
}

fn at_least_one(field: &'static str, n: u32) -> Result<(), ConfigError> {
    check::at_least_one(LAYER, field, n)
}

fn rate(field: &'static str, rate: f64) -> Result<(), ConfigError> {
    check::rate(LAYER, field, rate)
}

//! The retry's settings as one value: what a running layer reads back and
//! changes at once, and (feature `serde`) what a configuration file holds.

use std::time::Duration;

use super::{backoff::Backoff, budget::RetryBudget, layer::LAYER};
use crate::error::{ConfigError, check};

/// A retry layer's settings. What
/// [`RetryLayer::settings`](super::RetryLayer::settings) reads and
/// [`RetryLayer::reconfigure`](super::RetryLayer::reconfigure) changes; the
/// builder's [`settings`](super::RetryBuilder::settings) takes it. The
/// policy, the way requests are cloned, the clock and the random source
/// are code, not settings.
///
/// With feature `serde` (in TOML):
///
/// ```toml
/// max_attempts = 4
/// backoff = { exponential = { base = "50ms", multiplier = 2.0 }, max_delay = "2s", jitter = "full" }
/// deadline = "5s"
/// max_pushback = "1m"
/// budget = { ttl = { ttl = "10s", min_per_second = 5, ratio = 0.2 } }
/// ```
///
/// checked while read.
///
/// ```
/// use std::time::Duration;
/// use palisade::retry::RetryLayer;
///
/// let layer = RetryLayer::builder().build()?;
/// let mut settings = layer.settings();
/// settings.max_attempts = 5;
/// settings.deadline = Some(Duration::from_secs(2));
/// layer.reconfigure(settings)?;
/// assert_eq!(layer.settings(), settings);
/// # Ok::<(), palisade::error::ConfigError>(())
/// ```
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Settings {
    /// Attempts in all, the first included; at least 1.
    pub max_attempts: u32,
    /// The waits between attempts.
    pub backoff: Backoff,
    /// The overall deadline of a call and its retries, if any.
    pub deadline: Option<Duration>,
    /// The longest wait a server's pushback may ask for.
    pub max_pushback: Duration,
    /// The retry budget's numbers, if the layer has one.
    pub budget: Option<BudgetSettings>,
}

/// The numbers of a [`RetryBudget`]: what [`RetryBudget::ttl`] or
/// [`RetryBudget::tokens`] take.
///
/// ```
/// use std::time::Duration;
/// use palisade::retry::BudgetSettings;
/// let numbers = BudgetSettings::Ttl { ttl: Duration::from_secs(10), min_per_second: 5, ratio: 0.2 };
/// let budget = numbers.budget()?;
/// assert_eq!(budget.settings(), numbers);
/// # Ok::<(), palisade::error::ConfigError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(
    feature = "serde",
    serde(rename_all = "snake_case", deny_unknown_fields)
)]
pub enum BudgetSettings {
    /// See [`RetryBudget::ttl`].
    Ttl {
        /// How long a request's deposit lasts.
        #[cfg_attr(feature = "serde", serde(with = "humantime_serde"))]
        ttl: Duration,
        /// Retries a second always allowed.
        min_per_second: u32,
        /// Retries per request.
        ratio: f64,
    },
    /// See [`RetryBudget::tokens`].
    Tokens {
        /// The tokens of a full budget.
        max_tokens: u32,
        /// Tokens back per success.
        token_ratio: f64,
    },
}

impl BudgetSettings {
    /// A new budget of these numbers.
    ///
    /// # Errors
    ///
    /// The [`ConfigError`] of [`RetryBudget::ttl`] or [`RetryBudget::tokens`].
    ///
    /// ```
    /// use palisade::retry::BudgetSettings;
    /// let bad = BudgetSettings::Tokens { max_tokens: 0, token_ratio: 0.1 };
    /// assert_eq!(bad.budget().unwrap_err().field(), "budget.max_tokens");
    /// ```
    pub fn budget(&self) -> Result<RetryBudget, ConfigError> {
        match *self {
            BudgetSettings::Ttl {
                ttl,
                min_per_second,
                ratio,
            } => RetryBudget::ttl(ttl, min_per_second, ratio),
            BudgetSettings::Tokens {
                max_tokens,
                token_ratio,
            } => RetryBudget::tokens(max_tokens, token_ratio),
        }
    }
}

impl Settings {
    /// Checks the settings as the builder checks them.
    pub(crate) fn check(&self) -> Result<(), ConfigError> {
        check::at_least_one(LAYER, "max_attempts", self.max_attempts)?;
        if let Some(deadline) = self.deadline {
            check::positive(LAYER, "deadline", deadline)?;
        }
        check_max_pushback(self.max_pushback)?;
        self.backoff.validate()?;
        if let Some(budget) = self.budget {
            budget.budget()?;
        }
        Ok(())
    }
}

/// The longest a pushback may be allowed to hold a request.
const MAX_PUSHBACK: Duration = Duration::from_secs(3600);

/// The check of `max_pushback`, when built and when changed.
pub(crate) fn check_max_pushback(max: Duration) -> Result<(), ConfigError> {
    check::positive(LAYER, "max_pushback", max)?;
    if max > MAX_PUSHBACK {
        return Err(ConfigError::new(
            LAYER,
            "max_pushback",
            format!(
                "must be at most 1 hour (a server could hold a request that long), got {max:?}"
            ),
        ));
    }
    Ok(())
}

/// The builder's defaults: 3 attempts, an exponential backoff from 100 ms
/// doubling (full jitter, at most 30 s), no deadline, pushback up to 60 s,
/// no budget.
///
/// ```
/// assert_eq!(palisade::retry::Settings::default().max_attempts, 3);
/// ```
impl Default for Settings {
    fn default() -> Settings {
        Settings {
            max_attempts: 3,
            backoff: Backoff::default(),
            deadline: None,
            max_pushback: Duration::from_secs(60),
            budget: None,
        }
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
    max_attempts: u32,
    backoff: Backoff,
    #[serde(with = "humantime_serde")]
    deadline: Option<Duration>,
    #[serde(with = "humantime_serde")]
    max_pushback: Duration,
    budget: Option<BudgetSettings>,
}

#[cfg(feature = "serde")]
crate::settings::checked_serde!(Settings, Form, Settings::check);

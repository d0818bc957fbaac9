//! The timeout's settings as one value: what a running layer reads back
//! and changes, and (feature `serde`) what a configuration file holds.

use std::time::Duration;

use super::layer::LAYER;
use crate::error::{ConfigError, check};

/// A timeout's settings: the duration (a per-request timeout is code, not
/// a setting). What [`TimeoutLayer::settings`](super::TimeoutLayer::settings)
/// reads and [`TimeoutLayer::reconfigure`](super::TimeoutLayer::reconfigure)
/// changes.
///
/// With feature `serde`: `timeout = "2s"` (in TOML), checked while read.
///
/// ```
/// use std::time::Duration;
/// use palisade::timeout::TimeoutLayer;
///
/// let layer = TimeoutLayer::new(Duration::from_secs(2));
/// let mut settings = layer.settings();
/// settings.timeout = Duration::from_millis(500);
/// layer.reconfigure(settings)?;
/// assert_eq!(layer.timeout(), Duration::from_millis(500));
/// # Ok::<(), palisade::error::ConfigError>(())
/// ```
#[non_exhaustive]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Settings {
    /// How long a call may take, above zero.
    pub timeout: Duration,
}

impl Settings {
    /// Checks the settings as the builder checks them.
    pub(crate) fn check(&self) -> Result<(), ConfigError> {
        check::positive(LAYER, "timeout", self.timeout)
    }
}

#[cfg(feature = "serde")]
#[derive(serde::Serialize, serde::Deserialize)]
#[serde(remote = "Settings", deny_unknown_fields)]
struct Form {
    #[serde(with = "humantime_serde")]
    timeout: Duration,
}

#[cfg(feature = "serde")]
crate::settings::checked_serde!(Settings, Form, Settings::check);
